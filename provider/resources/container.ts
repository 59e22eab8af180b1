// `Container`: a container on a remote host with its own network namespace, linked by `ve-<name>` ↔ `eth0`.
import * as pulumi from "@pulumi/pulumi";
import { ConnectionInput, TimeoutsArgs } from "./connectionArgs";
import { ContainerDriverName } from "../core/types";
import { HostResource } from "./shim";

export interface ContainerArgs {
  /** How to reach the host over SSH (the shape of @pulumi/command's remote.ConnectionArgs). */
  readonly connection: ConnectionInput;
  /** How long each operation may take on the host (seconds). @default see TimeoutsArgs */
  readonly timeouts?: pulumi.Input<TimeoutsArgs>;
  /**
   * Restore the container after a reboot. netns driver: a systemd unit of ours recreates the namespace, veth,
   * addresses and routes before the network comes up (needs hostAddress and localAddress, or hostBridge).
   * nixos driver: the container starts at boot, as with autoStart. @default false
   */
  readonly persist?: pulumi.Input<boolean>;
  /** Container name: 1-11 characters a-z, 0-9, "-", starting with a letter. @default the resource name */
  readonly name?: pulumi.Input<string>;
  /** "nixos" runs the host's nixos-container; "netns" makes a plain network namespace (any Linux host). @default "nixos" */
  readonly driver?: pulumi.Input<ContainerDriverName>;
  /**
   * Host end of the veth (set together with localAddress). With `hostBridge`: the container's default gateway
   * on the bridge's network (a route and the default route inside, as NixOS's container-init sets them; never
   * an address of the host's), optional.
   * @default allocated on the host at create (10.233.N.1, nixos-container's layout), then kept in state; with `hostBridge`, no gateway
   */
  readonly hostAddress?: pulumi.Input<string>;
  /**
   * Container end of the veth (set together with hostAddress). With `hostBridge`: the container's address on
   * the bridge's network, with a prefix (`192.168.50.5/24`; without one it is a /32), optional.
   * @default allocated with hostAddress (10.233.N.2); with `hostBridge`, none: eth0 comes up without an address (DHCP from the LAN is the container's own)
   */
  readonly localAddress?: pulumi.Input<string>;
  /**
   * IPv6 of the host end (set together with localAddress6; NixOS `hostAddress6`), e.g. "fd00:233:1::1" from
   * an AddressPool with IPv6. Routed: each end a /128 with routes both ways and the default route inside.
   * With `hostBridge`: the container's IPv6 gateway. @default none (IPv6 is never picked on the host)
   */
  readonly hostAddress6?: pulumi.Input<string>;
  /** IPv6 of the container end (NixOS `localAddress6`); with `hostBridge` it may carry a prefix. @default none */
  readonly localAddress6?: pulumi.Input<string>;
  /**
   * A bridge of the host to put the container on (NixOS `hostBridge`, `nixos-container --bridge`): the host end
   * is `vb-<name>`, enslaved to it, without address. The bridge must exist (it is the host's: never created or
   * removed); changing it replaces the container.
   * @default none: the container is routed through `ve-<name>`
   */
  readonly hostBridge?: pulumi.Input<string>;
  /** NixOS configuration text for the container (nixos driver; `--config`). @default nixos-container's minimal configuration */
  readonly config?: pulumi.Input<string>;
  /** Path of a NixOS configuration file on the host (nixos driver; `--config-file`). @default none */
  readonly configFile?: pulumi.Input<string>;
  /** Flake reference of the container's system (nixos driver; `--flake`). @default none */
  readonly flake?: pulumi.Input<string>;
  /** Start the container at boot (nixos driver; `--auto-start`). @default false */
  readonly autoStart?: pulumi.Input<boolean>;
  /**
   * Take over a container of this name that is already on the host (instead of `pulumi import`, which dynamic
   * resources cannot do): it is brought to these inputs, keeping its addresses unless others are set.
   * @default false: a container of the same name on the host is a clash and nothing is changed
   */
  readonly adopt?: pulumi.Input<boolean>;
}

export class Container extends HostResource {
  declare readonly name: pulumi.Output<string>;
  declare readonly driver: pulumi.Output<ContainerDriverName>;
  /** `ve-<name>`, or `vb-<name>` with a hostBridge; known at preview. */
  declare readonly hostInterface: pulumi.Output<string>;
  /** `eth0`. */
  declare readonly containerInterface: pulumi.Output<string>;
  declare readonly hostAddress: pulumi.Output<string>;
  declare readonly localAddress: pulumi.Output<string>;
  /** IPv6 of each end as applied (canonical text); undefined without IPv6. */
  declare readonly hostAddress6: pulumi.Output<string | undefined>;
  declare readonly localAddress6: pulumi.Output<string | undefined>;
  /** The bridge the host end is enslaved to, as given. */
  declare readonly hostBridge: pulumi.Output<string | undefined>;
  /** Whether the container was up with its addresses at the last create, update or refresh. */
  declare readonly running: pulumi.Output<boolean>;
  /**
   * nixos driver: the container@ unit's ActiveState at the last create, update or refresh (`active`;
   * `activating`, `reloading`, `deactivating` while busy; `inactive`, `failed`).
   */
  declare readonly unitState: pulumi.Output<string | undefined>;
  /** Bookkeeping: whether the host picked the addresses at create (they are kept while none are set). */
  declare readonly allocatedOnHost: pulumi.Output<boolean>;
  /** Bookkeeping (nixos driver): the container's conf file on the host. */
  declare readonly confPath: pulumi.Output<string | undefined>;

  constructor(name: string, args: ContainerArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      "Container",
      name,
      { ...args, name: args.name ?? name },
      [
        "hostInterface",
        "containerInterface",
        "hostAddress",
        "localAddress",
        "hostAddress6",
        "localAddress6",
        "running",
        "unitState",
        "allocatedOnHost",
        "confPath",
      ],
      opts,
    );
  }
}
