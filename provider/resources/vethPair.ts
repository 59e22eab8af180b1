// `VethPair`: an extra veth between the host and a container (like NixOS `extraVeths`).
import * as pulumi from "@pulumi/pulumi";
import { ConnectionInput, TimeoutsArgs } from "./connectionArgs";
import { HostResource } from "./shim";

export interface VethPairArgs {
  /** How to reach the host over SSH (the shape of @pulumi/command's remote.ConnectionArgs). */
  readonly connection: ConnectionInput;
  /** How long each operation may take on the host (seconds). @default see TimeoutsArgs */
  readonly timeouts?: pulumi.Input<TimeoutsArgs>;
  /**
   * Restore the veth after a reboot: a systemd unit of ours, ordered after its container's (netns driver).
   * A nixos container's namespace appears only when it starts, later at boot: there the unit fails and the
   * next `pulumi up` adds the veth again. @default false
   */
  readonly persist?: pulumi.Input<boolean>;
  /** Name of the (running) container. */
  readonly container: pulumi.Input<string>;
  /** Host end's interface name (1-15 characters). */
  readonly hostInterface: pulumi.Input<string>;
  /** Interface name inside the container (not eth0). */
  readonly containerInterface: pulumi.Input<string>;
  /** Host end's address (/32, routed to localAddress). @default none: set it with localAddress, or use hostBridge */
  readonly hostAddress?: pulumi.Input<string>;
  /** Container end's address (/32; with hostBridge may carry a prefix, e.g. "192.168.50.5/24"). @default none */
  readonly localAddress?: pulumi.Input<string>;
  /** Host end's IPv6 (/128, routed to localAddress6; set both or neither). @default none */
  readonly hostAddress6?: pulumi.Input<string>;
  /** Container end's IPv6 (/128; with hostBridge may carry a prefix). @default none */
  readonly localAddress6?: pulumi.Input<string>;
  /** Enslave the host end to this existing bridge instead of giving it an address. @default none */
  readonly hostBridge?: pulumi.Input<string>;
}

export class VethPair extends HostResource {
  declare readonly container: pulumi.Output<string>;
  declare readonly hostInterface: pulumi.Output<string>;
  declare readonly containerInterface: pulumi.Output<string>;
  declare readonly hostAddress: pulumi.Output<string | undefined>;
  declare readonly localAddress: pulumi.Output<string | undefined>;
  declare readonly hostAddress6: pulumi.Output<string | undefined>;
  declare readonly localAddress6: pulumi.Output<string | undefined>;
  declare readonly hostBridge: pulumi.Output<string | undefined>;
  /** Whether both ends were there with their addresses at the last create, update or refresh. */
  declare readonly present: pulumi.Output<boolean>;

  constructor(name: string, args: VethPairArgs, opts?: pulumi.CustomResourceOptions) {
    super("VethPair", name, args, ["present"], opts);
  }
}
