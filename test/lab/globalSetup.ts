// vitest globalSetup of the `lab` project: brings the local lab up when it is not, and takes it down again
// afterwards, unless PNC_LAB_KEEP=1 or the lab was already up before the run (then it is left alone).
// Every run holds a lease (a file named after its PID) while it uses the lab, so a run that brought the lab
// up does not take it down under another run that is still using it.
import * as fs from "fs";
import * as path from "path";
import { labDir, labScript } from "./labHosts";

export const LAB_UP_ARGS = ["up", "3", "--nm", "h2", "--jump", "--nixos", "h3", "--networkd", "h3"];

function leaseDir(): string {
  return path.join(labDir(), "leases");
}

function otherLiveLeases(): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(leaseDir());
  } catch {
    return [];
  }
  return names.filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid && fs.existsSync(`/proc/${n}`));
}

export default function setup(): () => void {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new Error("the lab tests need root (network namespaces, mounts): run them as root");
  }
  const status = labScript(["status"]);
  const broughtUp = status.code === 3;
  if (status.code === 0) {
    process.stderr.write(`lab: using the lab that is already up in ${labDir()}\n`);
  } else {
    if (!broughtUp) process.stderr.write(`lab: lab in ${labDir()} is degraded, repairing:\n${status.stdout}`);
    // `up` is idempotent and serialized by a lock: a concurrent run's `up` just finds the lab up.
    const up = labScript(LAB_UP_ARGS);
    if (up.code !== 0) {
      if (broughtUp && otherLiveLeases().length === 0) labScript(["down"]);
      throw new Error(`lab up failed (${up.code}):\n${up.stderr}`);
    }
  }
  fs.mkdirSync(leaseDir(), { recursive: true });
  const lease = path.join(leaseDir(), String(process.pid));
  fs.writeFileSync(lease, "");
  return () => {
    fs.rmSync(lease, { force: true });
    if (!broughtUp || process.env.PNC_LAB_KEEP === "1") return;
    const others = otherLiveLeases();
    if (others.length > 0) {
      process.stderr.write(`lab: left up for other runs using it (PIDs ${others.join(", ")})\n`);
      return;
    }
    const down = labScript(["down"]);
    if (down.code !== 0) throw new Error(`lab down failed (${down.code}):\n${down.stderr}`);
  };
}
