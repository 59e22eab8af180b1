// `Host`: one machine's container networking wired from one description: an address pool, its containers (with
// extra veths), NAT out of the external interface and the NetworkManager drop-in. Only wiring lives here; the
// naming rules are small pure functions exported for tests.
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { ContainerDriverName, NatBackend } from "../core/types";
import { isContainerName } from "../core/validate";
import { AddressPair, AddressPool } from "./addressPool";
import { NatRule } from "./natRule";
import { NmUnmanaged } from "./nmUnmanaged";
import { NetworkdUnmanaged } from "./networkdUnmanaged";
import { ConnectionInput } from "./connectionArgs";
import { HostIdentity, pinnedConnection } from "./hostIdentity";
import { Container, ContainerArgs } from "./container";
import { VethPair } from "./vethPair";

/** An extra veth between the host and one container (like NixOS `extraVeths`). */
export interface HostVethArgs {
  /** Host end's interface name (1-15 characters, unique on the host). */
  readonly hostInterface: string;
  /** Interface name inside the container (not eth0). */
  readonly containerInterface: pulumi.Input<string>;
  /** Host end's address. @default none: give both addresses, or hostBridge */
  readonly hostAddress?: pulumi.Input<string>;
  /** Container end's address. @default none */
  readonly localAddress?: pulumi.Input<string>;
  /** Enslave the host end to this existing bridge instead of addressing it. @default none */
  readonly hostBridge?: pulumi.Input<string>;
}

/**
 * One container of a host: `driver`, `config`, `configFile`, `flake`, `autoStart`, `adopt` and `hostBridge` as on
 * Container. A bridged container takes no address from the host's pool: its `addresses` are the bridge's
 * network's (`localAddress` with a prefix, `hostAddress` the gateway), or none (DHCP).
 */
export interface HostContainerArgs extends Pick<
  ContainerArgs,
  "driver" | "config" | "configFile" | "flake" | "autoStart" | "adopt" | "hostBridge"
> {
  /** Container name: 1-11 characters a-z, 0-9, "-", starting with a letter; unique on the host. */
  readonly name: string;
  /**
   * Fixed addresses instead of allocated ones (both ends; the pool never hands them to others); with
   * `hostBridge`, the container's own on the bridge's network. @default allocated from the host's pool (none when bridged)
   */
  readonly addresses?: AddressPair | BridgedAddresses;
  /** Extra veths. @default none */
  readonly veths?: readonly HostVethArgs[];
}

/** A bridged container's addresses: its own on the bridge's network (with prefix), and its gateway. */
export interface BridgedAddresses {
  readonly localAddress?: string;
  readonly hostAddress?: string;
}

/** A host port forwarded to a container: by container name (address from the pool) or by explicit destination. */
export interface HostForwardPortArgs {
  /** Host port, or a range "8000:8010" / "8000-8010". */
  readonly sourcePort: pulumi.Input<number | string>;
  /** "tcp" or "udp". @default "tcp" */
  readonly proto?: pulumi.Input<"tcp" | "udp">;
  /** A container of this host: the destination is its allocated local address. @default none: set `destination` */
  readonly container?: string;
  /** Port (or range) on the container. @default the same as sourcePort */
  readonly port?: number | string;
  /** "10.233.1.2", "10.233.1.2:80"...; instead of `container`. @default derived from `container` */
  readonly destination?: pulumi.Input<string>;
}

/** NAT out of the host's external interface. */
export interface HostNatArgs {
  /** Set false to leave NAT to someone else. @default true */
  readonly enabled?: boolean;
  /** Names our nftables table / iptables chains (1-15 characters). @default derived from the host's name */
  readonly name?: string;
  /** "nftables" or "iptables". @default "nftables" */
  readonly backend?: pulumi.Input<NatBackend>;
  /** SNAT to this address instead of masquerading. @default masquerade */
  readonly externalIP?: pulumi.Input<string>;
  /** Interfaces whose traffic is translated. @default ["ve-+"] */
  readonly internalInterfaces?: pulumi.Input<pulumi.Input<string>[]>;
  /** Source addresses or CIDRs whose traffic is translated. @default none */
  readonly internalIPs?: pulumi.Input<pulumi.Input<string>[]>;
  /** Ports forwarded from the external interface to containers. @default none */
  readonly forwardPorts?: readonly HostForwardPortArgs[];
  /** Let container traffic pass a forward path that drops by default (Docker); see NatRuleArgs.allowForward. @default false */
  readonly allowForward?: pulumi.Input<boolean>;
  /**
   * Addresses on which the forwards also answer for the host and its containers (e.g. the host's public
   * address, "127.0.0.1"); see NatRuleArgs.loopbackIPs. The NatRule then waits for the containers. @default none
   */
  readonly loopbackIPs?: pulumi.Input<pulumi.Input<string>[]>;
  /** IPv6: "nat66" or "routed" (see NatRuleArgs.ipv6). @default IPv4 only */
  readonly ipv6?: pulumi.Input<"nat66" | "routed">;
  /** IPv6 ranges of the containers (e.g. the pool's cidr6); see NatRuleArgs.internalIPv6s. @default none */
  readonly internalIPv6s?: pulumi.Input<pulumi.Input<string>[]>;
  /** "nat66": SNAT to this address instead of masquerading. @default masquerade */
  readonly externalIPv6?: pulumi.Input<string>;
}

/** The host's address pool. */
export interface HostPoolArgs {
  /** @default "10.233.0.0/16" */
  readonly cidr?: pulumi.Input<string>;
  /** @default 24 (host .1, container .2 of each /24) */
  readonly blockPrefixLength?: pulumi.Input<number>;
  /** Addresses or CIDRs never handed out (IPv4, or IPv6 with IPv6 on). @default none */
  readonly exclude?: pulumi.Input<pulumi.Input<string>[]>;
  /** Allocate IPv6 too (see AddressPoolArgs.ipv6). @default false, or true when cidr6 is given */
  readonly ipv6?: pulumi.Input<boolean>;
  /** @default a ULA /48 derived from the project, stack and pool name (`<host>-pool`) */
  readonly cidr6?: pulumi.Input<string>;
  /** @default 64 (host ::1, container ::2 of each /64) */
  readonly blockPrefixLength6?: pulumi.Input<number>;
}

export interface HostArgs {
  /** How to reach the host over SSH (the shape of @pulumi/command's remote.ConnectionArgs). */
  readonly connection: ConnectionInput;
  /** The host's interface to the outside world, e.g. "eth0". */
  readonly externalInterface: pulumi.Input<string>;
  /** The host's containers. */
  readonly containers: readonly HostContainerArgs[];
  /** Driver of containers that name none. @default "nixos" */
  readonly driver?: pulumi.Input<ContainerDriverName>;
  /** NAT settings. @default masquerade with nftables, no forwarded ports */
  readonly nat?: HostNatArgs;
  /** Address pool settings. @default 10.233.0.0/16 in /24 blocks */
  readonly pool?: HostPoolArgs;
  /** Write the NetworkManager drop-in that leaves ve-* alone (harmless where NetworkManager is absent). @default true */
  readonly networkManager?: boolean;
  /**
   * Write the systemd-networkd file that leaves ve-* and vb-* alone (a NetworkdUnmanaged named after the host),
   * so networkd's stock `80-container-ve.network` does not take container veths. Turn it on where networkd runs
   * (NixOS with `systemd.network.enable` or `networking.useNetworkd`); on a NixOS host whose /etc is read-only,
   * declare the file in the host's configuration instead. @default false
   */
  readonly networkd?: boolean;
  /**
   * Persist what is live (`persist` on every resource of the host): netns containers and the NAT get systemd
   * units of ours that restore them at boot (NAT also after a firewall reload), nixos containers start at boot
   * (autoStart). See the README's "After a reboot". @default false
   */
  readonly persist?: boolean;
}

/** What one container gets: the network plan preview shows. */
export interface ContainerPlan {
  readonly hostInterface: string;
  readonly containerInterface: string;
  readonly hostAddress: string;
  readonly localAddress: string;
  /** The pool's IPv6 pair; absent when the pool has no IPv6 (and for bridged containers). */
  readonly hostAddress6?: string;
  readonly localAddress6?: string;
}

/** One host's network plan: per container its interfaces and addresses, and the NAT ruleset. */
export interface HostPlan {
  readonly externalInterface: string;
  readonly containers: Record<string, ContainerPlan>;
  /** Absent when NAT is disabled. */
  readonly nat?: { readonly name: string; readonly backend: string; readonly ruleset: string };
  /** Path of the NetworkManager drop-in; absent when disabled. */
  readonly networkManagerDropIn?: string;
  /** Path of the systemd-networkd file; absent when disabled. */
  readonly networkdFile?: string;
}

/** Host names: they prefix child resource names and name the NAT table and NetworkManager drop-in. */
const HOST_NAME = /^[a-z][a-z0-9-]{0,40}$/;
const NAT_NAME_MAX = 15;

/** Throws unless `name` can name a Host (and so, derived, its NatRule and NmUnmanaged). */
export function validateHostName(name: string): void {
  if (!HOST_NAME.test(name)) {
    throw new Error(
      `Host name ${JSON.stringify(name)} is invalid: use 1-41 characters a-z, 0-9 and "-", starting with a letter ` +
        `(it prefixes the host's resource names and names its NAT table and NetworkManager drop-in)`,
    );
  }
}

/**
 * The NatRule name for a host: the host name when it fits in 15 characters, else its first 10 characters and
 * 4 hex digits of its hash (stable, and distinct for distinct long names with high probability).
 */
export function natNameFor(hostName: string): string {
  if (hostName.length <= NAT_NAME_MAX) return hostName;
  const hash = createHash("sha256").update(hostName).digest("hex").slice(0, 4);
  return `${hostName.slice(0, 10).replace(/-+$/, "")}-${hash}`;
}

/** Throws, listing every offender, when container names are invalid or repeated. */
export function validateHostContainers(hostName: string, containers: readonly HostContainerArgs[]): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  const interfaces = new Set<string>();
  for (const c of containers) {
    if (!isContainerName(c.name)) {
      problems.push(
        `container name ${JSON.stringify(c.name)} is invalid: use 1-11 characters a-z, 0-9 and "-", starting with a letter`,
      );
    } else if (seen.has(c.name)) {
      problems.push(`container name "${c.name}" is used twice: names are unique per host`);
    }
    seen.add(c.name);
    for (const v of c.veths ?? []) {
      if (interfaces.has(v.hostInterface) || v.hostInterface === `ve-${c.name}`) {
        problems.push(`veth host interface "${v.hostInterface}" is used twice on the host`);
      }
      interfaces.add(v.hostInterface);
    }
  }
  if (problems.length > 0) throw new Error(`Host "${hostName}": ${problems.join("; ")}`);
}

/** Throws when a forwarded port names no container of the host, or neither a container nor a destination. */
function validateForwardPorts(
  hostName: string,
  containers: readonly HostContainerArgs[],
  forwardPorts: readonly HostForwardPortArgs[],
): void {
  const names = containers.map((c) => c.name);
  const bridged = containers.filter((c) => c.hostBridge !== undefined).map((c) => c.name);
  const problems: string[] = [];
  for (const f of forwardPorts) {
    if (f.container === undefined && f.destination === undefined) {
      problems.push(`forwarded port ${String(f.sourcePort)} needs "container" or "destination"`);
    } else if (f.container !== undefined && !names.includes(f.container)) {
      problems.push(
        `forwarded port ${String(f.sourcePort)} names container "${f.container}", which is not one of this host's containers (${names.join(", ")})`,
      );
    } else if (f.container !== undefined && bridged.includes(f.container)) {
      problems.push(
        `forwarded port ${String(f.sourcePort)} names container "${f.container}", which is bridged (its address is the bridge network's, not the pool's): give "destination" instead`,
      );
    }
  }
  if (problems.length > 0) throw new Error(`Host "${hostName}": ${problems.join("; ")}`);
}

function forwardDestination(
  f: HostForwardPortArgs,
  allocations: pulumi.Output<Record<string, AddressPair>>,
): pulumi.Input<string> {
  const container = f.container;
  // validateForwardPorts made sure one of the two is set.
  if (container === undefined) return f.destination as pulumi.Input<string>;
  return pulumi
    .all([allocations, f.port ?? f.sourcePort])
    .apply(([a, port]) => `${a[container].localAddress}:${String(port)}`);
}

/** One host: its pool, containers, NAT and NetworkManager drop-in, and the resulting network plan. */
export class Host extends pulumi.ComponentResource {
  /** The network plan: per container interfaces and addresses, and the NAT ruleset; known at preview. */
  readonly plan: pulumi.Output<HostPlan>;
  readonly pool: AddressPool;
  readonly containers: Record<string, Container>;
  readonly veths: VethPair[];
  readonly nat?: NatRule;
  readonly networkManager?: NmUnmanaged;
  readonly networkd?: NetworkdUnmanaged;
  /** The host's one known key (and its jump host's): every resource above is pinned to it. */
  readonly identity: HostIdentity;

  constructor(name: string, args: HostArgs, opts?: pulumi.ComponentResourceOptions) {
    validateHostName(name);
    validateHostContainers(name, args.containers);
    validateForwardPorts(name, args.containers, args.nat?.forwardPorts ?? []);
    super("nixos-containers:index:Host", name, {}, opts);
    // The engine does not pass deletedWith from a component to its children: hand it on, so deleting the
    // machine skips every delete on it (no SSH to a host that is gone).
    const child = { parent: this, deletedWith: opts?.deletedWith };

    // Bridged containers live on the bridge's network: the pool neither allocates nor reserves for them.
    const routed = args.containers.filter((c) => c.hostBridge === undefined);
    const statics: Record<string, AddressPair> = {};
    for (const c of routed) if (c.addresses) statics[c.name] = c.addresses as AddressPair;
    this.pool = new AddressPool(
      `${name}-pool`,
      {
        members: routed.map((c) => c.name),
        cidr: args.pool?.cidr,
        blockPrefixLength: args.pool?.blockPrefixLength,
        exclude: args.pool?.exclude,
        ipv6: args.pool?.ipv6,
        cidr6: args.pool?.cidr6,
        blockPrefixLength6: args.pool?.blockPrefixLength6,
        static: Object.keys(statics).length > 0 ? statics : undefined,
      },
      child,
    );
    const allocations = this.pool.allocations;

    // First the host's identity (its key, recorded once or pinned), then everything on the host trusts only it.
    this.identity = new HostIdentity(`${name}-identity`, { connection: args.connection }, child);
    const connection = pinnedConnection(args.connection, this.identity);

    // The drop-in goes first, so NetworkManager never takes a container's veth for one of its own.
    if (args.networkManager ?? true) {
      // Bridged containers' host ends are vb-<name> (the default leaves ve-* alone only).
      const devices =
        routed.length < args.containers.length ? ["interface-name:ve-*", "interface-name:vb-*"] : undefined;
      this.networkManager = new NmUnmanaged(
        `${name}-nm`,
        { connection, name, devices, persist: args.persist },
        child,
      );
    }
    // Likewise networkd's file, before any veth appears.
    if (args.networkd ?? false) {
      this.networkd = new NetworkdUnmanaged(
        `${name}-networkd`,
        { connection, name, persist: args.persist },
        child,
      );
    }
    const unmanagedFirst = [this.networkManager, this.networkd].filter(
      (r): r is NmUnmanaged | NetworkdUnmanaged => r !== undefined,
    );

    this.containers = {};
    this.veths = [];
    for (const c of args.containers) {
      const container = new Container(
        `${name}-${c.name}`,
        {
          connection,
          name: c.name,
          driver: c.driver ?? args.driver ?? "nixos",
          ...(c.hostBridge === undefined
            ? {
                hostAddress: allocations.apply((a) => a[c.name].hostAddress),
                localAddress: allocations.apply((a) => a[c.name].localAddress),
                // Undefined (no input) when the pool has no IPv6.
                hostAddress6: allocations.apply((a) => a[c.name].hostAddress6) as pulumi.Output<string>,
                localAddress6: allocations.apply((a) => a[c.name].localAddress6) as pulumi.Output<string>,
              }
            : { hostBridge: c.hostBridge, ...c.addresses }),
          config: c.config,
          configFile: c.configFile,
          flake: c.flake,
          autoStart: c.autoStart,
          adopt: c.adopt,
          persist: args.persist,
        },
        { ...child, dependsOn: unmanagedFirst },
      );
      this.containers[c.name] = container;
      for (const v of c.veths ?? []) {
        this.veths.push(
          new VethPair(
            `${name}-${c.name}-${v.hostInterface}`,
            {
              connection,
              container: container.name,
              hostInterface: v.hostInterface,
              containerInterface: v.containerInterface,
              hostAddress: v.hostAddress,
              localAddress: v.localAddress,
              hostBridge: v.hostBridge,
              persist: args.persist,
            },
            child,
          ),
        );
      }
    }

    const nat = args.nat ?? {};
    const natName = nat.name ?? natNameFor(name);
    if (nat.enabled ?? true) {
      this.nat = new NatRule(
        `${name}-nat`,
        {
          connection,
          name: natName,
          externalInterface: args.externalInterface,
          externalIP: nat.externalIP,
          backend: nat.backend,
          internalInterfaces: nat.internalInterfaces,
          internalIPs: nat.internalIPs,
          forwardPorts: (nat.forwardPorts ?? []).map((f) => ({
            sourcePort: f.sourcePort,
            proto: f.proto,
            destination: forwardDestination(f, allocations),
          })),
          allowForward: nat.allowForward,
          loopbackIPs: nat.loopbackIPs,
          ipv6: nat.ipv6,
          internalIPv6s: nat.internalIPv6s,
          externalIPv6: nat.externalIPv6,
          persist: args.persist,
        },
        // Loopback forwards set route_localnet on the containers' veths: they must exist first.
        nat.loopbackIPs === undefined ? child : { ...child, dependsOn: Object.values(this.containers) },
      );
    }

    // The IPv6 pair only where the container has one (the pool has IPv6, or a bridged container's own).
    const containerPlans = Object.entries(this.containers).map(([n, c]) =>
      pulumi
        .all([
          c.hostInterface,
          c.containerInterface,
          c.hostAddress,
          c.localAddress,
          c.hostAddress6,
          c.localAddress6,
        ])
        .apply(
          ([hostInterface, containerInterface, hostAddress, localAddress, hostAddress6, localAddress6]) => ({
            name: n,
            plan: {
              hostInterface,
              containerInterface,
              hostAddress,
              localAddress,
              ...(hostAddress6 !== undefined ? { hostAddress6 } : {}),
              ...(localAddress6 !== undefined ? { localAddress6 } : {}),
            },
          }),
        ),
    );
    const natPlan = this.nat
      ? pulumi
          .all([this.nat.backend, this.nat.ruleset])
          .apply(([backend, ruleset]) => ({ name: natName, backend, ruleset }))
      : undefined;
    this.plan = pulumi
      .all([
        args.externalInterface,
        pulumi.all(containerPlans),
        natPlan,
        this.networkManager ? this.networkManager.path : undefined,
        this.networkd ? this.networkd.path : undefined,
      ])
      .apply(([externalInterface, cs, natValue, dropIn, networkdFile]) => {
        const plan: HostPlan = {
          externalInterface,
          containers: Object.fromEntries(cs.map((c) => [c.name, c.plan])),
          ...(natValue ? { nat: natValue } : {}),
          ...(dropIn !== undefined ? { networkManagerDropIn: dropIn } : {}),
          ...(networkdFile !== undefined ? { networkdFile } : {}),
        };
        return plan;
      });
    this.registerOutputs({ plan: this.plan });
  }
}
