// What every lab test of the resources shares: the lab's hosts, the client key, and connections in the
// shape users pass (@pulumi/command's ConnectionArgs).
import * as fs from "node:fs";
import { LabHost, labExec, labHost, readLab } from "../lab/labHosts";

export const lab = readLab();
export const h1 = labHost("h1", lab);
export const h2 = labHost("h2", lab);
export const h3 = labHost("h3", lab);
export const key = fs.readFileSync(h1.privateKeyPath, "utf8");

export function connection(host: LabHost): Record<string, unknown> {
  return { host: host.address, port: host.port, user: host.user, privateKey: key };
}

/** One ping from the host (or from inside network namespace `from` on it) to `address`. */
export function reachable(host: LabHost, from: string | undefined, address: string): boolean {
  const argv = ["ping", "-c", "1", "-W", "2", address];
  return labExec(host, from ? ["ip", "netns", "exec", from, ...argv] : argv).code === 0;
}
