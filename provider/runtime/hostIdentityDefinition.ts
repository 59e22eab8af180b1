// HostIdentity: the one known key of a host (and of its jump host) for a whole stack. It records the keys the
// host presents at create (or the ones pinned in `connection.hostKey` / `connection.proxy.hostKey`), and
// every resource of that host takes them as its own pins (see resources/hostIdentity.ts), so a host that
// answers with another key is refused before authenticating, by resources made later included, in whatever
// order the engine runs the steps. It changes nothing on the host.
import {
  Handler,
  Props,
  connectionFailures,
  diffWith,
  machineOf,
  scrubbed,
  toCheckFailures,
  withoutKeys,
} from "./common";
import { withPins } from "../core/hostKeyPins";
import { SshError, fingerprintOf, parseConnection, parseHostKeySpec, sharedPool } from "../ssh";

/** What a HostIdentity records (outputs, never inputs). */
const RECORDED = ["hostKey", "hostKeyFingerprint", "proxyHostKey", "proxyHostKeys"] as const;

/** The connection with the recorded keys as pins wherever the program pins none, on every hop. */
function pinned(connection: unknown, recorded: Props): Props {
  const hops = Array.isArray(recorded.proxyHostKeys) ? (recorded.proxyHostKeys as unknown[]) : [];
  return withPins(connection as Props, recorded.hostKey, hops);
}

/** Connects with `connection` (its pins enforced on every hop) and returns what to record. */
async function observe(connection: Props): Promise<Props> {
  const spec = parseConnection(connection);
  const keys = await sharedPool()
    .host(spec)
    .presentedKeys()
    .catch((err: unknown) => {
      throw explained(err);
    });
  const blob = parseHostKeySpec(keys.hostKey);
  return {
    hostKey: keys.hostKey,
    hostKeyFingerprint: blob?.kind === "key" ? fingerprintOf(blob.blob) : undefined,
    // Jump hosts, nearest first; the first also alone, for the common one-hop case.
    ...(keys.proxyHostKeys.length > 0
      ? { proxyHostKey: keys.proxyHostKeys[0], proxyHostKeys: keys.proxyHostKeys }
      : {}),
  };
}

/** A refused key, said for this resource: which host, and the one way to accept a deliberate change. */
function explained(err: unknown): unknown {
  if (err instanceof SshError && err.kind === "host-key-mismatch") {
    err.message +=
      "\n  HostIdentity: every resource of this host trusts the key recorded here. If the key changed on purpose, set connection.hostKey (or proxy.hostKey) to the new key, or replace this HostIdentity (pulumi up --replace <its URN>).";
  }
  return err;
}

const RULES = { replace: [], update: [], deleteBeforeReplace: () => false };

export const hostIdentityHandler: Handler = {
  check(_olds, news) {
    return { inputs: news, failures: toCheckFailures(connectionFailures(news.connection)) };
  },

  diff(_id, olds, news) {
    return diffWith(RULES, olds, news);
  },

  async create(inputs) {
    return scrubbed(inputs, async () => {
      const recorded = await observe(inputs.connection as Props);
      return { id: machineOf(inputs.connection), outs: { ...inputs, ...recorded } };
    });
  },

  async read(id, props) {
    return scrubbed(props, async () => {
      // The recorded keys are enforced: a host that changed its key fails the refresh, naming both.
      const recorded = await observe(pinned(props.connection, props));
      return { id, props: { ...props, ...recorded } };
    });
  },

  async update(_id, olds, news) {
    return scrubbed(news, async () => {
      // Pins the program sets win (a deliberate key change); otherwise the recorded keys stay enforced.
      const recorded = await observe(pinned(news.connection, olds));
      return { outs: { ...news, ...recorded } };
    });
  },

  async delete() {
    // Nothing on the host.
  },

  inputsOf(props) {
    return withoutKeys(props, RECORDED);
  },
};
