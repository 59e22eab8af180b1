// `AddressPool`: stable private addresses for a host's containers, allocated at preview and kept in state.
import * as pulumi from "@pulumi/pulumi";
import { defaultCidr6 } from "../core/allocator6";
import { makeProvider } from "./shim";

/** The two ends of a container's veth; the IPv6 pair only from a pool with IPv6 on. */
export interface AddressPair {
  readonly hostAddress: string;
  readonly localAddress: string;
  /** The host end's IPv6 address, e.g. "fd12:3456:789a:1::1" (block N's ::1). */
  readonly hostAddress6?: string;
  /** The container's IPv6 address, e.g. "fd12:3456:789a:1::2" (block N's ::2). */
  readonly localAddress6?: string;
}

/** A static entry with only the IPv6 pair: its IPv4 pair is allocated from the pool. */
export interface AddressPair6 {
  readonly hostAddress6: string;
  readonly localAddress6: string;
}

export interface AddressPoolArgs {
  /** The range addresses come from. @default "10.233.0.0/16" (what nixos-container uses) */
  readonly cidr?: pulumi.Input<string>;
  /** Size of each container's block, 24-31. @default 24: block N gives host 10.233.N.1 and container 10.233.N.2 */
  readonly blockPrefixLength?: pulumi.Input<number>;
  /** Names of the containers that need addresses; each keeps its block while it stays listed. */
  readonly members: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * Fixed addresses for some members (which must also be listed in `members`): the IPv4 pair, the IPv6 pair
   * or both; a family left out is allocated. @default none: all allocated
   */
  readonly static?: pulumi.Input<Record<string, pulumi.Input<AddressPair | AddressPair6>>>;
  /** Addresses or CIDRs never handed out (every block they touch is skipped), IPv4 or IPv6. @default none */
  readonly exclude?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * Allocate IPv6 too: every allocation gains hostAddress6/localAddress6; IPv4 allocations do not move.
   * @default false, or true when `cidr6` is given
   */
  readonly ipv6?: pulumi.Input<boolean>;
  /**
   * The IPv6 range addresses come from. @default a ULA /48 (RFC 4193) derived from the project, stack and
   * pool names, e.g. "fd3c:91ab:4e02::/48": renaming the project, stack or pool changes it
   */
  readonly cidr6?: pulumi.Input<string>;
  /** Size of each container's IPv6 block, 64-127. @default 64: block N gives host <prefix>:N::1 and container <prefix>:N::2 */
  readonly blockPrefixLength6?: pulumi.Input<number>;
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
  /** How many IPv6 blocks the pool can hand out (capped at Number.MAX_SAFE_INTEGER); undefined without IPv6. */
  declare readonly capacity6: pulumi.Output<number | undefined>;
  /** The IPv6 pool in use (given or derived); undefined without IPv6. */
  declare readonly cidr6: pulumi.Output<string | undefined>;
  declare readonly blockPrefixLength6: pulumi.Output<number | undefined>;

  constructor(name: string, args: AddressPoolArgs, opts?: pulumi.CustomResourceOptions) {
    // The default cidr6 is derived here, where project and stack are known, and passed as an input: check
    // stays pure and preview shows it. Only when ipv6 is set at all, so IPv4-only pools' inputs stay as they were.
    const derived =
      args.ipv6 !== undefined && args.cidr6 === undefined
        ? defaultCidr6(pulumi.getProject(), pulumi.getStack(), name)
        : undefined;
    super(
      provider,
      name,
      {
        ...args,
        // Present (even undefined) so outputs of these names exist; undefined values are not sent.
        cidr6: args.cidr6,
        blockPrefixLength6: args.blockPrefixLength6,
        defaultCidr6: derived,
        allocations: undefined,
        capacity: undefined,
        capacity6: undefined,
      },
      opts,
      "nixos",
      "AddressPool",
    );
  }
}
