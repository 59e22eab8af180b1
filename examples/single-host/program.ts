// One host, two containers (web and db), NAT out of the external interface with web's port 80 reachable on the
// host's port 8080, and the NetworkManager drop-in. `singleHost` builds it from a plain config object, so tests
// can run it under mocks; index.ts is the Pulumi entry that reads stack config.
import * as pulumi from "@pulumi/pulumi";
import { Host, HostPlan } from "pulumi-nixos-containers";
import { SshAuth } from "../shared/sshAuth";

export interface SingleHostConfig extends SshAuth {
  /** Address or DNS name of the host. */
  readonly host: string;
  readonly port?: number;
  readonly user?: string;
  /** Pin the host key ("ssh-ed25519 AAAA..."). @default the key seen first is recorded and enforced */
  readonly hostKey?: string;
  /** The host's interface to the outside world. */
  readonly externalInterface: string;
  /** @default "nftables" */
  readonly backend?: "nftables" | "iptables";
  /** @default "nixos" */
  readonly driver?: "nixos" | "netns";
  /** Names the host's resources, NAT table and drop-in. @default "server" */
  readonly name?: string;
  /** The address pool. @default "10.233.0.0/16" */
  readonly cidr?: string;
}

export function singleHost(cfg: SingleHostConfig): { host: Host; plan: pulumi.Output<HostPlan> } {
  const host = new Host(cfg.name ?? "server", {
    connection: {
      host: cfg.host,
      port: cfg.port,
      user: cfg.user,
      hostKey: cfg.hostKey,
      privateKey: cfg.privateKey,
      agentSocketPath: cfg.agentSocketPath,
    },
    externalInterface: cfg.externalInterface,
    driver: cfg.driver,
    pool: { cidr: cfg.cidr },
    containers: [{ name: "web" }, { name: "db" }],
    nat: {
      backend: cfg.backend,
      forwardPorts: [{ sourcePort: 8080, container: "web", port: 80 }],
    },
  });
  return { host, plan: host.plan };
}
