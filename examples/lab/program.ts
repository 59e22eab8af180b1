// The program the repository's root Pulumi.yaml runs: a few containers on every host of the local lab
// (test/lab), NAT out of each host's eth0 and the NetworkManager drop-in, as one Fleet. `labProgram` reads
// lab.json itself and takes the rest from a plain config object, so tests can run it under mocks.
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Fleet, FleetHostArgs, HostContainerArgs, HostPlan } from "pulumi-nixos-containers";

export interface LabProgramConfig {
  /** Directory of the lab's lab.json. @default $PNC_LAB_DIR, else /tmp/pnc-lab */
  readonly labDir?: string;
  /** Prefix of host, container, NAT table and drop-in names (so several deployments can share the lab). @default "lab-" */
  readonly prefix?: string;
  /** Address pool of every host. @default "10.233.160.0/19" */
  readonly cidr?: string;
  /** Lab hosts to deploy to. @default every lab host with a WAN (not the jump-only hj) */
  readonly hosts?: readonly string[];
  /** Containers per host (web, db, cache, queue in that order). @default 2 */
  readonly containersPerHost?: number;
  /** @default "nftables" */
  readonly backend?: "nftables" | "iptables";
  /** Use the nixos driver (the host's nixos-container) on lab hosts that have it. @default true */
  readonly nixosDriver?: boolean;
  /** The SSH private key. @default the lab's own key (lab.json privateKeyPath), as a secret */
  readonly privateKey?: pulumi.Input<string>;
}

/** The part of lab.json this program needs. */
interface LabHostInfo {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly user: string;
  readonly privateKeyPath: string;
  readonly hostKey: string;
  readonly nixos: boolean;
  readonly via: string | null;
  readonly wanAddress: string | null;
}

const CONTAINERS = ["web", "db", "cache", "queue"] as const;

export function defaultLabDir(): string {
  return process.env.PNC_LAB_DIR || "/tmp/pnc-lab";
}

function readLabHosts(dir: string): LabHostInfo[] {
  const file = path.join(dir, "lab.json");
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new Error(`the lab is not up (${file} missing): run 'bash test/lab/lab up 3 --nm h2 --nixos h3'`);
  }
  const lab = JSON.parse(text) as { hosts?: LabHostInfo[] };
  if (!Array.isArray(lab.hosts)) throw new Error(`${file}: no hosts`);
  return lab.hosts;
}

export function labProgram(cfg: LabProgramConfig = {}): {
  fleet: Fleet;
  plan: pulumi.Output<Record<string, HostPlan>>;
} {
  const prefix = cfg.prefix ?? "lab-";
  const count = cfg.containersPerHost ?? 2;
  if (!/^[a-z][a-z0-9-]{0,5}$/.test(prefix)) {
    throw new Error(
      `prefix ${JSON.stringify(prefix)} is invalid: use 1-6 characters a-z, 0-9 and "-", starting with a letter (container names are prefix + "cache" and must fit in 11)`,
    );
  }
  if (!Number.isInteger(count) || count < 1 || count > CONTAINERS.length) {
    throw new Error(`containersPerHost ${count} is invalid: use 1 to ${CONTAINERS.length}`);
  }
  const all = readLabHosts(cfg.labDir || defaultLabDir());
  const wanted =
    cfg.hosts && cfg.hosts.length > 0 ? cfg.hosts : all.filter((h) => h.wanAddress).map((h) => h.name);
  const missing = wanted.filter((n) => !all.some((h) => h.name === n));
  if (missing.length > 0) {
    throw new Error(
      `lab hosts ${missing.join(", ")} are not up (the lab has ${all.map((h) => h.name).join(", ")})`,
    );
  }
  const byName = new Map(all.map((h) => [h.name, h]));
  const keyOf = (h: LabHostInfo) =>
    cfg.privateKey ?? pulumi.secret(fs.readFileSync(h.privateKeyPath, "utf8"));

  const hosts: FleetHostArgs[] = wanted.map((name) => {
    const h = byName.get(name) as LabHostInfo;
    const jump = h.via ? byName.get(h.via) : undefined;
    const containers: HostContainerArgs[] = CONTAINERS.slice(0, count).map((c) => ({
      name: `${prefix}${c}`,
      driver: h.nixos && (cfg.nixosDriver ?? true) ? "nixos" : "netns",
    }));
    return {
      name: `${prefix}${h.name}`,
      address: h.address,
      port: h.port,
      user: h.user,
      // lab.json knows every host's key: pin it, as production stacks should.
      hostKey: h.hostKey,
      privateKey: keyOf(h),
      proxy: jump
        ? { host: jump.address, port: jump.port, user: jump.user, privateKey: keyOf(jump) }
        : undefined,
      externalInterface: "eth0",
      containers,
      nat: {
        backend: cfg.backend,
        forwardPorts: [{ sourcePort: 8080, container: `${prefix}web`, port: 80 }],
      },
    };
  });
  const fleet = new Fleet(`${prefix}fleet`, {
    defaults: { pool: { cidr: cfg.cidr ?? "10.233.160.0/19" }, networkManager: true },
    hosts,
  });
  return { fleet, plan: fleet.plan };
}
