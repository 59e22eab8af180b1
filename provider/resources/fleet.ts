// `Fleet`: many `Host`s from one description (typically a stack's config), with the settings every host shares
// (SSH user, key, port, NAT backend...) given once. Hosts are independent, so the engine works on them in parallel.
import * as pulumi from "@pulumi/pulumi";
import { ContainerDriverName } from "../core/types";
import { ConnectionArgs } from "./connectionArgs";
import { Host, HostContainerArgs, HostNatArgs, HostPlan, HostPoolArgs, validateHostName } from "./host";

/** SSH settings of a connection, except `host` (each host's `address`) and `hostKey` (each host's own). */
export type FleetConnectionArgs = Omit<ConnectionArgs, "host" | "hostKey">;

/** Settings every host gets unless it sets its own. */
export interface FleetDefaults extends FleetConnectionArgs {
  /** @default none: each host must name its own */
  readonly externalInterface?: pulumi.Input<string>;
  /** Driver of containers that name none. @default "nixos" */
  readonly driver?: pulumi.Input<ContainerDriverName>;
  /** NAT settings, merged field by field under each host's own. @default masquerade with nftables */
  readonly nat?: HostNatArgs;
  /** Pool settings, merged field by field under each host's own. @default 10.233.0.0/16 in /24 blocks */
  readonly pool?: HostPoolArgs;
  /** @default true */
  readonly networkManager?: boolean;
  /** The systemd-networkd file that leaves ve-* and vb-* alone (see HostArgs.networkd). @default false */
  readonly networkd?: boolean;
  /** Persist what is live on the host (see HostArgs.persist). @default false */
  readonly persist?: boolean;
}

/** One host of the fleet. */
export interface FleetHostArgs extends FleetDefaults {
  /** The host's name in the fleet: names its resources, NAT table and drop-in (1-41 characters a-z, 0-9, "-"). */
  readonly name: string;
  /** Address or DNS name to reach it over SSH. */
  readonly address: pulumi.Input<string>;
  /** The host's SSH host key ("ssh-ed25519 AAAA..."): any other key is refused. @default the key seen first is recorded and enforced */
  readonly hostKey?: pulumi.Input<string>;
  /** The host's containers. @default none */
  readonly containers?: readonly HostContainerArgs[];
}

export interface FleetArgs {
  /** Shared settings, set once. @default none */
  readonly defaults?: FleetDefaults;
  readonly hosts: readonly FleetHostArgs[];
}

/** The connection of one host: its own fields over the defaults; unset fields are left out. */
export function fleetConnection(host: FleetHostArgs, defaults: FleetDefaults = {}): ConnectionArgs {
  const merged: ConnectionArgs = {
    host: host.address,
    port: host.port ?? defaults.port,
    user: host.user ?? defaults.user,
    password: host.password ?? defaults.password,
    privateKey: host.privateKey ?? defaults.privateKey,
    privateKeyPassword: host.privateKeyPassword ?? defaults.privateKeyPassword,
    agentSocketPath: host.agentSocketPath ?? defaults.agentSocketPath,
    hostKey: host.hostKey,
    proxy: host.proxy ?? defaults.proxy,
    dialErrorLimit: host.dialErrorLimit ?? defaults.dialErrorLimit,
    perDialTimeout: host.perDialTimeout ?? defaults.perDialTimeout,
    sudo: host.sudo ?? defaults.sudo,
    sudoPassword: host.sudoPassword ?? defaults.sudoPassword,
  };
  // Unset fields are left out, so the stored connection shows only what the program set.
  return Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)) as ConnectionArgs;
}

/** Throws, listing every offender, when host names are invalid or repeated or a host lacks an external interface. */
export function validateFleet(args: FleetArgs): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const h of args.hosts) {
    try {
      validateHostName(h.name);
    } catch (err) {
      problems.push((err as Error).message);
    }
    if (seen.has(h.name)) problems.push(`host name "${h.name}" is used twice: names are unique in a fleet`);
    seen.add(h.name);
    if (h.externalInterface === undefined && args.defaults?.externalInterface === undefined) {
      problems.push(
        `host "${h.name}" has no externalInterface: set it on the host or in defaults (e.g. "eth0")`,
      );
    }
  }
  if (problems.length > 0) throw new Error(`Fleet: ${problems.join("; ")}`);
}

/** Many hosts from one description; `plan` is every host's network plan, keyed by host name. */
export class Fleet extends pulumi.ComponentResource {
  /** Host name → its network plan (containers' interfaces and addresses, NAT ruleset); known at preview. */
  readonly plan: pulumi.Output<Record<string, HostPlan>>;
  readonly hosts: Record<string, Host>;

  constructor(name: string, args: FleetArgs, opts?: pulumi.ComponentResourceOptions) {
    validateFleet(args);
    super("nixos-containers:index:Fleet", name, {}, opts);
    const d = args.defaults ?? {};
    this.hosts = {};
    for (const h of args.hosts) {
      this.hosts[h.name] = new Host(
        h.name,
        {
          connection: fleetConnection(h, d),
          // validateFleet made sure one of the two is set.
          externalInterface: (h.externalInterface ?? d.externalInterface) as pulumi.Input<string>,
          containers: h.containers ?? [],
          driver: h.driver ?? d.driver,
          nat: { ...d.nat, ...h.nat },
          pool: { ...d.pool, ...h.pool },
          networkManager: h.networkManager ?? d.networkManager,
          networkd: h.networkd ?? d.networkd,
          persist: h.persist ?? d.persist,
        },
        { parent: this, deletedWith: opts?.deletedWith },
      );
    }
    const plans = Object.entries(this.hosts).map(([n, host]) => host.plan.apply((p) => [n, p] as const));
    this.plan = pulumi.all(plans).apply((entries) => Object.fromEntries(entries));
    this.registerOutputs({ plan: this.plan });
  }
}
