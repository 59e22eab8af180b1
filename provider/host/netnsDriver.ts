// The `netns` driver: a container is a plain Linux network namespace named after it, linked to the host by
// `ve-<name>` ↔ `eth0` with /32 addresses and routes exactly as a NixOS container's unit sets them up.
import { ContainerDriver, ContainerSpec, IN_CONTAINER, ObservedContainer, REPORT_LIVE } from "./driver";
import { LOCKS, PRELUDE, REPORT_ITEM, USED_ADDRESSES, assignments, parseResults } from "./script";
export { BatchItemResult, batchMark, parseBatch } from "./script";

/** Idempotent: creates what is missing, sets addresses and routes to the spec. Records what it made. */
const ENSURE = String.raw`if [ ! -e "/run/netns/$NAME" ]; then ip netns add "$NAME"; MADE_NS=1; fi
mkdir -p /run/pulumi-nixos-containers/netns
: > "/run/pulumi-nixos-containers/netns/$NAME"
if ! ip link show dev "$HIF" >/dev/null 2>&1; then
  [ "$MADE_NS" = 1 ] || ip -n "$NAME" link del eth0 2>/dev/null || true
  ip link add "$HIF" type veth peer name eth0 netns "$NAME"
  MADE_LINK=1
fi
ip -batch - <<PNC_HOST
link set $HIF up
addr flush dev $HIF
addr add $HA/32 dev $HIF
route replace $LA/32 dev $HIF
PNC_HOST
ip -n "$NAME" -batch - <<PNC_INSIDE
link set lo up
link set eth0 up
addr flush dev eth0
addr add $LA/32 dev eth0
route replace $HA/32 dev eth0
route replace default via $HA dev eth0
PNC_INSIDE
`;

/** On failure, undo only what this run made, so a failed create leaves nothing behind. */
const ROLLBACK = String.raw`MADE_NS=0
MADE_LINK=0
rollback() {
  rc=$?
  if [ $rc -ne 0 ]; then
    [ "$MADE_LINK" = 1 ] && ip link del "$HIF" 2>/dev/null
    [ "$MADE_NS" = 1 ] && { ip netns del "$NAME" 2>/dev/null; rm -f "/run/pulumi-nixos-containers/netns/$NAME"; }
    echo "PNC-ROLLEDBACK" >&2
  fi
  exit $rc
}
trap rollback EXIT
`;

function vars(
  spec: Pick<ContainerSpec, "name" | "hostInterface">,
  own: boolean,
  ha?: string,
  la?: string,
): string {
  return assignments({
    NAME: spec.name,
    HIF: spec.hostInterface,
    HA: ha ?? "",
    LA: la ?? "",
    OWN_NAME: own ? spec.name : "",
    OWN_IF: own ? spec.hostInterface : "",
  });
}

/**
 * Removes one container; succeeds when already gone. The veth goes first: deleting one end removes both at
 * once, while a deleted namespace is torn down by the kernel in the background, its veth a moment later.
 */
const DELETE_ONE = String.raw`ip link del "$HIF" 2>/dev/null || true
ip netns del "$NAME" 2>/dev/null || true
rm -f "/run/pulumi-nixos-containers/netns/$NAME"
if [ -e "/run/netns/$NAME" ]; then echo "could not remove network namespace $NAME (is a process still using it?)" >&2; exit 1; fi
if ip link show dev "$HIF" >/dev/null 2>&1; then echo "could not remove interface $HIF" >&2; exit 1; fi
`;

const ALLOCATE_IF_NEEDED = String.raw`if [ -z "$HA" ]; then
  n=$(allocate_block)
  HA="10.233.$n.1"
  LA="10.233.$n.2"
fi
`;

const NAME_FREE = String.raw`taken=0
if [ -e "/run/netns/$NAME" ]; then echo "PNC-CLASH name $NAME: a network namespace /run/netns/$NAME already exists" >&2; taken=1; fi
if ip link show dev "$HIF" >/dev/null 2>&1; then echo "PNC-CLASH interface $HIF already exists on the host" >&2; taken=1; fi
for conf in "/etc/nixos-containers/$NAME.conf" "/etc/containers/$NAME.conf"; do
  if [ -f "$conf" ] && grep -q '^HOST_ADDRESS=\|^LOCAL_ADDRESS=' "$conf"; then echo "PNC-CLASH name $NAME: a nixos container of that name exists ($conf)" >&2; taken=1; fi
done
`;

/**
 * Creates several containers in one script: the locks are taken and the host's addresses scanned once; each
 * container is then checked against that scan (plus what earlier ones in the batch took) and made in a
 * subshell of its own, which rolls back only itself. Prints each container's output between
 * `PNC-ITEM-<mark>-OUT|ERR|END <i>` markers (see parseBatch).
 */
/**
 * One script for several containers of one host: the header runs once under the host locks, then each
 * container's `body` runs in a subshell of its own (its own exit code and output, reported between
 * `PNC-ITEM-<mark>-…` markers, see parseBatch); `after` runs in the batch's shell after an item succeeded.
 */
function itemBatch(
  specs: readonly ContainerSpec[],
  mark: string,
  own: boolean,
  header: readonly string[],
  body: readonly string[],
  after: readonly string[] = [],
): string {
  const items = specs.map((spec, i) =>
    [vars(spec, own, spec.hostAddress, spec.localAddress), `item ${i}`].join("\n"),
  );
  return [
    PRELUDE,
    "need ip flock",
    assignments({ PNC_MARK: mark }),
    LOCKS,
    ...header,
    REPORT_ITEM,
    "TMPD=$(mktemp -d)",
    `trap 'rm -rf "$TMPD"' EXIT`,
    "item() {",
    "  set +e",
    "  (",
    "    set -e",
    ...body,
    '  ) < /dev/null > "$TMPD/out" 2> "$TMPD/err"',
    "  rc=$?",
    "  set -e",
    '  report_item "$1" "$rc"',
    ...(after.length > 0 ? ['  if [ "$rc" = 0 ]; then', ...after, "  fi"] : []),
    "}",
    ...items,
  ].join("\n");
}

/**
 * Creates several containers in one script: the locks are taken and the host's addresses scanned once; each
 * container is then checked against that scan (plus what earlier ones in the batch took) and made in a
 * subshell of its own, which rolls back only itself.
 */
export function netnsBatchCreateScript(specs: readonly ContainerSpec[], mark: string): string {
  return itemBatch(
    specs,
    mark,
    false,
    [assignments({ OWN_NAME: "", OWN_IF: "" }), USED_ADDRESSES, "USED=$(used_addresses)"],
    [
      NAME_FREE,
      ALLOCATE_IF_NEEDED,
      '    clash_check "$HA" "$LA" || taken=1',
      '    [ "$taken" = 0 ] || { echo "PNC-NOTHING-CHANGED" >&2; exit 3; }',
      ROLLBACK,
      ENSURE,
      '    echo "PNC-RESULT hostAddress=$HA"',
      '    echo "PNC-RESULT localAddress=$LA"',
      '    echo "$HA $LA" > "$TMPD/addr"',
    ],
    [
      '    read -r ha la < "$TMPD/addr"',
      // Builtins only: the next containers of the batch must see these addresses as taken.
      '    USED="$USED\n$ha\tcontainer \\"$NAME\\" (created just before)\n$la\tcontainer \\"$NAME\\" (created just before)"',
    ],
  );
}

/** Removes several containers under one take of the host locks; each succeeds when already gone. */
export function netnsBatchDeleteScript(specs: readonly ContainerSpec[], mark: string): string {
  return itemBatch(specs, mark, true, [], [DELETE_ONE]);
}

export const netnsDriver: ContainerDriver = {
  /** A batch of one, marked "single": its output is in the form parseBatch reads. */
  createScript(spec) {
    return netnsBatchCreateScript([spec], "single");
  },

  convergeScript(spec, previous) {
    return [
      PRELUDE,
      "need ip flock",
      vars(spec, true, spec.hostAddress ?? previous.hostAddress, spec.localAddress ?? previous.localAddress),
      LOCKS,
      USED_ADDRESSES,
      "USED=$(used_addresses)",
      'clash_check "$HA" "$LA" || { echo "PNC-NOTHING-CHANGED" >&2; exit 3; }',
      ROLLBACK,
      ENSURE,
      'echo "PNC-RESULT hostAddress=$HA"',
      'echo "PNC-RESULT localAddress=$LA"',
    ].join("\n");
  },

  readScript(spec) {
    return [
      PRELUDE,
      vars(spec, true),
      IN_CONTAINER,
      REPORT_LIVE,
      'if [ -e "/run/netns/$NAME" ]; then echo "PNC-RESULT ns=1"; else echo "PNC-RESULT ns=0"; fi',
      "report_live",
    ].join("\n");
  },

  parseRead(stdout): ObservedContainer {
    const r = parseResults(stdout);
    const exists = r.ns === "1" || r.hostLink === "1";
    return {
      exists,
      running: r.ns === "1" && r.hostLink === "1" && !!r.hostAddr && !!r.localAddr,
      hostAddress: r.hostAddr || undefined,
      localAddress: r.localAddr || undefined,
    };
  },

  deleteScript(spec) {
    return [PRELUDE, "need ip flock", vars(spec, true), LOCKS, DELETE_ONE].join("\n");
  },
};
