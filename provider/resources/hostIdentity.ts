// `HostIdentity`: the one known key of a host (and of its jump host) for the whole stack. `Host` (and so
// `Fleet`) makes one per host first and hands its keys to every resource of that host as pins; wire resources
// by hand the same way with `pinnedConnection`. A key that changes is then refused by every resource, new
// ones included, before authenticating.
import * as pulumi from "@pulumi/pulumi";
import { ConnectionArgs, ConnectionInput, ProxyConnectionArgs } from "./connectionArgs";
import { HostResource } from "./shim";

export interface HostIdentityArgs {
  /** How to reach the host. Set `hostKey` (and `proxy.hostKey`) to pin keys; otherwise the first ones seen are recorded. */
  readonly connection: ConnectionInput;
}

export class HostIdentity extends HostResource {
  /** The host's public key line (`ssh-ed25519 AAAA…`), recorded at create (or the pinned one). */
  declare readonly hostKey: pulumi.Output<string>;
  /** The jump host's public key line, when the connection has a `proxy`. */
  declare readonly proxyHostKey: pulumi.Output<string | undefined>;

  constructor(name: string, args: HostIdentityArgs, opts?: pulumi.CustomResourceOptions) {
    super("HostIdentity", name, args, ["hostKey", "proxyHostKey"], opts);
  }
}

/**
 * `connection` with the identity's keys as pins wherever the program sets none, and a dependency on the
 * identity: every resource given it checks the one key recorded for the host. Field by field, so a preview
 * (before the identity exists) still shows host, port and jump host as known; only the pins are unknown then.
 */
export function pinnedConnection(connection: ConnectionInput, identity: HostIdentity): ConnectionInput {
  const pin = (own: pulumi.Input<string> | undefined, recorded: pulumi.Output<string | undefined>) =>
    pulumi.all([own, recorded]).apply(([o, r]) => (o ? o : r)) as pulumi.Output<string>;
  if (pulumi.Output.isInstance(connection)) {
    // One output for the whole connection: its fields are known only together (preview shows it unknown).
    return pulumi
      .all([connection, identity.hostKey, identity.proxyHostKey])
      .apply(([c, hostKey, proxyHostKey]) => pinResolved(c, hostKey, proxyHostKey));
  }
  const c = connection as ConnectionArgs;
  const proxy = c.proxy;
  return {
    ...c,
    hostKey: pin(c.hostKey, identity.hostKey),
    ...(proxy === undefined
      ? {}
      : pulumi.Output.isInstance(proxy)
        ? {
            proxy: pulumi
              .all([proxy, identity.proxyHostKey])
              .apply(([p, k]) => ({ ...p, hostKey: p.hostKey || k })),
          }
        : {
            proxy: {
              ...(proxy as ProxyConnectionArgs),
              hostKey: pin((proxy as ProxyConnectionArgs).hostKey, identity.proxyHostKey),
            },
          }),
  };
}

function pinResolved(
  c: pulumi.Unwrap<ConnectionArgs>,
  hostKey: string,
  proxyHostKey: string | undefined,
): pulumi.Unwrap<ConnectionArgs> {
  return {
    ...c,
    hostKey: c.hostKey || hostKey,
    ...(c.proxy ? { proxy: { ...c.proxy, hostKey: c.proxy.hostKey || proxyHostKey } } : {}),
  };
}
