// One rule for pinning host keys on a connection and its chain of jump hosts, shared by HostIdentity's
// provider (which enforces what it recorded) and pinnedConnection (which hands it to every resource).

/** A connection's shape as far as pins go: its own key, and the jump host it is reached through. */
interface Pinnable {
  readonly hostKey?: unknown;
  readonly proxy?: unknown;
}

/**
 * `connection` (resolved values) with the recorded keys as pins wherever it sets none: `hostKey` on the host,
 * `hops[0]` on its jump host, `hops[1]` on that one's, and so on.
 */
export function withPins<T extends Pinnable>(
  connection: T,
  hostKey: unknown,
  hops: readonly unknown[],
  at = 0,
): T {
  const pinned: Record<string, unknown> = { ...(connection as Record<string, unknown>) };
  if (!pinned.hostKey && typeof hostKey === "string" && hostKey !== "") pinned.hostKey = hostKey;
  if (connection.proxy && typeof connection.proxy === "object") {
    pinned.proxy = withPins(connection.proxy as Pinnable, hops[at], hops, at + 1);
  }
  return pinned as T;
}
