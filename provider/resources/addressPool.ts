// `AddressPool`: stable private addresses for a host's containers, allocated at preview and kept in state.
import * as pulumi from "@pulumi/pulumi";
import { makeProvider } from "./shim";

/** The two ends of a container's veth. */
export interface AddressPair {
  readonly hostAddress: string;
  readonly localAddress: string;
}

export interface AddressPoolArgs {
  /** The range addresses come from. @default "10.233.0.0/16" (what nixos-container uses) */
  readonly cidr?: pulumi.Input<string>;
  /** Size of each container's block, 24-31. @default 24: block N gives host 10.233.N.1 and container 10.233.N.2 */
  readonly blockPrefixLength?: pulumi.Input<number>;
  /** Names of the containers that need addresses; each keeps its block while it stays listed. */
  readonly members: pulumi.Input<pulumi.Input<string>[]>;
  /** Fixed addresses for some members (which must also be listed in `members`). @default none: all allocated */
  readonly static?: pulumi.Input<Record<string, pulumi.Input<AddressPair>>>;
  /** Addresses or CIDRs never handed out (every block they touch is skipped). @default none */
  readonly exclude?: pulumi.Input<pulumi.Input<string>[]>;
}

const provider = makeProvider("AddressPool");

export class AddressPool extends pulumi.dynamic.Resource {
  /** name → addresses; known at preview. */
  declare readonly allocations: pulumi.Output<Record<string, AddressPair>>;
  /** How many blocks the pool can hand out. */
  declare readonly capacity: pulumi.Output<number>;
  declare readonly cidr: pulumi.Output<string>;
  declare readonly blockPrefixLength: pulumi.Output<number>;
  declare readonly members: pulumi.Output<string[]>;

  constructor(name: string, args: AddressPoolArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      { ...args, allocations: undefined, capacity: undefined },
      opts,
      "nixos",
      "AddressPool",
    );
  }
}
