// `HostIdentity`: the one known key of a host (and of its jump host) for the whole stack. `Host` (and so
// `Fleet`) makes one per host first and hands its keys to every resource of that host as pins; wire resources
// by hand the same way with `pinnedConnection`. A key that changes is then refused by every resource, new
// ones included, before authenticating.
import * as pulumi from "@pulumi/pulumi";
import { ConnectionArgs, ConnectionInput, ProxyConnectionArgs } from "./connectionArgs";
import { withPins } from "../core/hostKeyPins";
import { HostResource } from "./shim";

export interface HostIdentityArgs {
  /** How to reach the host. Set `hostKey` (and `proxy.hostKey`) to pin keys; otherwise the first ones seen are recorded. */
  readonly connection: ConnectionInput;
}

export class HostIdentity extends HostResource {
  /** The host's public key line (`ssh-ed25519 AAAA…`), recorded at create (or the pinned one). */
  declare readonly hostKey: pulumi.Output<string>;
  /** The jump host's public key line, when the connection has a `proxy` (the first of `proxyHostKeys`). */
  declare readonly proxyHostKey: pulumi.Output<string | undefined>;
  /** Every jump host's key line, nearest first (`proxy`, then `proxy.proxy`, ...). */
  declare readonly proxyHostKeys: pulumi.Output<string[] | undefined>;

  constructor(name: string, args: HostIdentityArgs, opts?: pulumi.CustomResourceOptions) {
    super("HostIdentity", name, args, ["hostKey", "proxyHostKey", "proxyHostKeys"], opts);
  }
}

type Connection = pulumi.Unwrap<ConnectionArgs>;

/**
 * `connection` with the identity's keys as pins wherever the program sets none (the host and every jump host),
 * and a dependency on the identity: every resource given it checks the one key recorded for each host. Field
 * by field for a connection given as an object, so a preview (before the identity exists) still shows host,
 * port and jump hosts as known; only the pins are unknown then.
 */
export function pinnedConnection(connection: ConnectionInput, identity: HostIdentity): ConnectionInput {
  const hops = identity.proxyHostKeys.apply((k) => k ?? []);
  const pinObject = (
    c: pulumi.Input<ProxyConnectionArgs>,
    key: pulumi.Output<string | undefined>,
    at: number,
  ): pulumi.Input<ProxyConnectionArgs> => {
    if (pulumi.Output.isInstance(c)) {
      // One output for the whole (jump) connection: its fields are known only together.
      return pulumi.all([c, key, hops]).apply(([v, k, h]) => withPins(v as Connection, k, h, at));
    }
    const plain = c as ProxyConnectionArgs;
    return {
      ...plain,
      hostKey: pulumi
        .all([plain.hostKey, key])
        .apply(([own, recorded]) => (own ? own : recorded)) as pulumi.Output<string>,
      ...(plain.proxy === undefined
        ? {}
        : {
            proxy: pinObject(
              plain.proxy,
              hops.apply((h) => h[at]),
              at + 1,
            ),
          }),
    };
  };
  return pinObject(connection, identity.hostKey, 0) as ConnectionInput;
}
