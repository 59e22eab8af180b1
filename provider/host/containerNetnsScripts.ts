// Host scripts of the `netns` driver: a container is a plain Linux network namespace named after it, linked
// to the host by `ve-<name>` ↔ `eth0` with /32 addresses and routes exactly as a NixOS container's unit sets
// them up. Creates and deletes of one host that arrive together share one script (one lock, one scan).
import { ContainerSpec } from "../core/containerSpec";
import * as shared from "./containerScripts";
import { MARK, REPORT_ITEM } from "./protocol";
import * as shell from "./shell";

/** Where we record the namespaces we made, so the address scan need not enter them. */
const OURS = "/run/pulumi-nixos-containers/netns";

/**
 * Reads CONTAINER_NAME, HOST_INTERFACE, HOST_ADDRESS, LOCAL_ADDRESS, HOST_ADDRESS6, LOCAL_ADDRESS6 (both or
 * neither), HOST_BRIDGE, DROP_ADDRESS (1: remove the
 * address a bridged container had before and no longer gets). Defines `ensure_container`:
 * creates what is missing, sets addresses and routes to the spec, and records in MADE_NAMESPACE / MADE_LINK
 * what it made (for `rollback`). Idempotent: everything a netns container is comes from this one function.
 * Bridged (NixOS's container@ unit with HOST_BRIDGE): the host end `vb-<name>` is enslaved to the bridge and
 * up, without address; eth0 gets localAddress as given (no prefix: /32), and hostAddress is a route and the
 * default route inside; without localAddress eth0 is only brought up (what it gets by DHCP is kept).
 */
const ENSURE = String.raw`ensure_container() {
  if [ ! -e "/run/netns/$CONTAINER_NAME" ]; then ip netns add "$CONTAINER_NAME"; MADE_NAMESPACE=1; fi
  mkdir -p ${OURS}
  : > "${OURS}/$CONTAINER_NAME"
  if ! ip link show dev "$HOST_INTERFACE" >/dev/null 2>&1; then
    [ "$MADE_NAMESPACE" = 1 ] || ip -n "$CONTAINER_NAME" link del eth0 2>/dev/null || true
    ip link add "$HOST_INTERFACE" type veth peer name eth0 netns "$CONTAINER_NAME"
    MADE_LINK=1
  fi
  if [ -n "$HOST_BRIDGE" ]; then ensure_bridged; return; fi
  ip -batch - <<PNC_HOST
link set $HOST_INTERFACE up
addr flush dev $HOST_INTERFACE
addr add $HOST_ADDRESS/32 dev $HOST_INTERFACE
route replace $LOCAL_ADDRESS/32 dev $HOST_INTERFACE
PNC_HOST
  ip -n "$CONTAINER_NAME" -batch - <<PNC_INSIDE
link set lo up
link set eth0 up
addr flush dev eth0
addr add $LOCAL_ADDRESS/32 dev eth0
route replace $HOST_ADDRESS/32 dev eth0
route replace default via $HOST_ADDRESS dev eth0
PNC_INSIDE
  [ -n "$HOST_ADDRESS6" ] || return 0
  # IPv6 as NixOS's postStart and container-init set it (/128 each end, routes both ways, the default route
  # inside), without duplicate address detection: the addresses are ours and usable at once.
  ip -6 -batch - <<PNC_HOST6
addr add $HOST_ADDRESS6/128 dev $HOST_INTERFACE nodad
route replace $LOCAL_ADDRESS6/128 dev $HOST_INTERFACE
PNC_HOST6
  ip -n "$CONTAINER_NAME" -6 -batch - <<PNC_INSIDE6
addr add $LOCAL_ADDRESS6/128 dev eth0 nodad
route replace $HOST_ADDRESS6/128 dev eth0
route replace default via $HOST_ADDRESS6 dev eth0
PNC_INSIDE6
}
ensure_bridged() {
  ip addr flush dev "$HOST_INTERFACE"
  ip link set "$HOST_INTERFACE" master "$HOST_BRIDGE" up
  ip -n "$CONTAINER_NAME" link set lo up
  ip -n "$CONTAINER_NAME" link set eth0 up
  if [ -z "$LOCAL_ADDRESS" ] && [ -z "$LOCAL_ADDRESS6" ]; then
    # An address of ours that the spec no longer sets goes; one from DHCP stays.
    [ "$DROP_ADDRESS" != 1 ] || ip -n "$CONTAINER_NAME" addr flush dev eth0 scope global
    return 0
  fi
  ip -n "$CONTAINER_NAME" addr flush dev eth0 scope global
  if [ -n "$LOCAL_ADDRESS" ]; then
    case "$LOCAL_ADDRESS" in */*) eth0_address=$LOCAL_ADDRESS ;; *) eth0_address=$LOCAL_ADDRESS/32 ;; esac
    ip -n "$CONTAINER_NAME" addr add "$eth0_address" dev eth0
    if [ -n "$HOST_ADDRESS" ]; then
      ip -n "$CONTAINER_NAME" route replace "$HOST_ADDRESS/32" dev eth0
      ip -n "$CONTAINER_NAME" route replace default via "$HOST_ADDRESS" dev eth0
    fi
  fi
  if [ -n "$LOCAL_ADDRESS6" ]; then
    case "$LOCAL_ADDRESS6" in */*) eth0_address6=$LOCAL_ADDRESS6 ;; *) eth0_address6=$LOCAL_ADDRESS6/128 ;; esac
    ip -n "$CONTAINER_NAME" -6 addr add "$eth0_address6" dev eth0 nodad
    if [ -n "$HOST_ADDRESS6" ]; then
      ip -n "$CONTAINER_NAME" -6 route replace "$HOST_ADDRESS6/128" dev eth0
      ip -n "$CONTAINER_NAME" -6 route replace default via "$HOST_ADDRESS6" dev eth0
    fi
  fi
}
`;

/**
 * Reads CONTAINER_NAME, HOST_INTERFACE, OWNER_MARKER, MADE_NAMESPACE, MADE_LINK, MADE_MARKER. Installs an
 * EXIT trap that, when the script fails, removes only what this run made, so a failed create leaves nothing.
 */
const ROLLBACK = String.raw`MADE_NAMESPACE=0
MADE_LINK=0
MADE_MARKER=0
rollback() {
  exit_code=$?
  if [ "$exit_code" -ne 0 ]; then
    [ "$MADE_LINK" = 1 ] && ip link del "$HOST_INTERFACE" 2>/dev/null
    [ "$MADE_NAMESPACE" = 1 ] && { ip netns del "$CONTAINER_NAME" 2>/dev/null; rm -f "${OURS}/$CONTAINER_NAME"; }
    [ "$MADE_MARKER" = 1 ] && rm -f "$OWNER_MARKER" "$ADDRESS_RECORD"
    echo "${MARK.rolledBack}" >&2
  fi
  exit "$exit_code"
}
trap rollback EXIT
`;

/** Reads CONTAINER_NAME (and what report_live reads). Prints the driver's observation of the container. */
const REPORT = String.raw`if [ -e "/run/netns/$CONTAINER_NAME" ]; then ${shell.result("namespace", "1")}; else ${shell.result("namespace", "0")}; fi
report_live`;

/**
 * Reads CONTAINER_NAME, HOST_INTERFACE and what OWNERSHIP reads. Removes one container if it is ours (else
 * reports what it left behind and why); succeeds when already gone. The veth goes
 * first: deleting one end removes both at once, while a deleted namespace is torn down by the kernel in the
 * background, its veth a moment later.
 */
const DELETE_ONE = String.raw`if ! ours; then
  ${shell.result("leftBehind", "network namespace $CONTAINER_NAME and interface $HOST_INTERFACE: $(not_ours)")}
  exit 0
fi
ip link del "$HOST_INTERFACE" 2>/dev/null || true
ip netns del "$CONTAINER_NAME" 2>/dev/null || true
rm -f "${OURS}/$CONTAINER_NAME"
if [ -e "/run/netns/$CONTAINER_NAME" ]; then echo "could not remove network namespace $CONTAINER_NAME (is a process still using it?)" >&2; exit 1; fi
if ip link show dev "$HOST_INTERFACE" >/dev/null 2>&1; then echo "could not remove interface $HOST_INTERFACE" >&2; exit 1; fi
rm -f "$OWNER_MARKER" "$ADDRESS_RECORD"
`;

/**
 * Reads and sets HOST_ADDRESS / LOCAL_ADDRESS: when empty, the host picks a free 10.233.N.0/24 block (never
 * for a bridged container: its addresses are the LAN's, or DHCP's).
 */
const ALLOCATE_IF_NEEDED = String.raw`if [ -z "$HOST_ADDRESS" ] && [ -z "$HOST_BRIDGE" ]; then
  block=$(allocate_block)
  HOST_ADDRESS="10.233.$block.1"
  LOCAL_ADDRESS="10.233.$block.2"
fi
`;

/** Reads CONTAINER_NAME, HOST_INTERFACE. Sets taken=1 (printing why) when the name is held on the host. */
const NAME_FREE = String.raw`taken=0
if [ -e "/run/netns/$CONTAINER_NAME" ]; then echo "${MARK.clash} name $CONTAINER_NAME: a network namespace /run/netns/$CONTAINER_NAME already exists" >&2; taken=1; fi
if ip link show dev "$HOST_INTERFACE" >/dev/null 2>&1; then echo "${MARK.clash} interface $HOST_INTERFACE already exists on the host" >&2; taken=1; fi
for conf in "/etc/nixos-containers/$CONTAINER_NAME.conf" "/etc/containers/$CONTAINER_NAME.conf"; do
  if [ -f "$conf" ] && grep -q '^HOST_ADDRESS=\|^LOCAL_ADDRESS=' "$conf"; then echo "${MARK.clash} name $CONTAINER_NAME: a nixos container of that name exists ($conf)" >&2; taken=1; fi
done
`;

/**
 * One script for several containers of one host: the header runs once under the host locks, then each
 * container's `body` runs in a subshell of its own (its own exit code and output, reported between
 * `PNC-ITEM-<mark>-…` markers, see parseBatch); `after` runs in the batch's shell after an item succeeded.
 */
function itemBatch(
  items: readonly shared.ContainerItem[],
  mark: string,
  own: boolean,
  header: readonly string[],
  body: readonly string[],
  after: readonly string[] = [],
): string {
  const calls = items.map(({ spec, owner }, i) =>
    shell.script(shared.containerVariables(spec, own, owner, spec), `item ${i}`),
  );
  return shell.changingScript(
    ["ip", "flock"],
    shell.assignments({ PNC_MARK: mark }),
    ...header,
    REPORT_ITEM,
    "ITEM_OUTPUT_DIR=$(private_tmp -d)",
    `trap 'rm -rf "$ITEM_OUTPUT_DIR"' EXIT`,
    "item() {",
    "  set +e",
    "  (",
    "    set -e",
    ...body,
    '  ) < /dev/null > "$ITEM_OUTPUT_DIR/out" 2> "$ITEM_OUTPUT_DIR/err"',
    "  item_exit_code=$?",
    "  set -e",
    '  report_item "$1" "$item_exit_code"',
    ...(after.length > 0 ? ['  if [ "$item_exit_code" = 0 ]; then', ...after, "  fi"] : []),
    "}",
    ...calls,
  );
}

/**
 * Creates several containers in one script: the locks are taken and the host's addresses scanned once; each
 * container is then checked against that scan (plus what earlier ones in the batch took) and made in a
 * subshell of its own, which rolls back only itself. Each item reports like `netnsReadScript`.
 */
export function netnsCreateScript(items: readonly shared.ContainerItem[], mark: string): string {
  return itemBatch(
    items,
    mark,
    false,
    [
      shell.assignments({ OWN_CONTAINER: "", OWN_HOST_INTERFACE: "", OWN_RECORD: "", DROP_ADDRESS: "0" }),
      shell.ADDRESSES,
      shared.REPORT_LIVE,
      shared.CLAIMED_ADDRESSES,
      ENSURE,
      "USED_ADDRESS_LIST=$(used_addresses)",
    ],
    [
      NAME_FREE,
      shared.BRIDGE_EXISTS,
      ALLOCATE_IF_NEEDED,
      "    claimed_free || taken=1",
      `    ${shell.REFUSE_IF_TAKEN}`,
      ROLLBACK,
      `    ${shared.CLAIM}`,
      "    MADE_MARKER=1",
      shared.RECORD_BRIDGED_ADDRESS,
      "    ensure_container",
      REPORT,
      '    claimed_addresses > "$ITEM_OUTPUT_DIR/addresses"',
    ],
    [
      // Builtins only: the next containers of the batch must see these addresses as taken.
      "    while read -r made_address; do",
      '      [ -z "$made_address" ] || USED_ADDRESS_LIST="$USED_ADDRESS_LIST\n$made_address\tcontainer \\"$CONTAINER_NAME\\" (created just before)"',
      '    done < "$ITEM_OUTPUT_DIR/addresses"',
    ],
  );
}

/** Removes several containers under one take of the host locks; each succeeds when already gone. */
export function netnsDeleteScript(items: readonly shared.ContainerItem[], mark: string): string {
  return itemBatch(items, mark, true, [], [DELETE_ONE]);
}

/**
 * Brings an existing container back to the spec (addresses, links, routes), checking that new addresses are
 * free; addresses the host picked at create (`previous`) are kept while the spec sets none.
 */
export function netnsUpdateScript(
  spec: ContainerSpec,
  previous: shared.PreviousAddresses,
  owner: shell.Ownership,
): string {
  return shell.changingScript(
    ["ip", "flock"],
    shared.containerVariables(spec, true, owner, shared.updateAddresses(spec, previous)),
    shell.assignments({
      DROP_ADDRESS: spec.localAddress === undefined && previous.localAddress !== undefined,
    }),
    "require_ours",
    shell.ADDRESSES,
    shared.REPORT_LIVE,
    ENSURE,
    "taken=0",
    shared.BRIDGE_EXISTS,
    shell.REFUSE_IF_TAKEN,
    shared.UPDATE_ADDRESSES_FREE,
    ROLLBACK,
    shared.RECORD_BRIDGED_ADDRESS,
    "ensure_container",
    shared.CLAIM,
    REPORT,
  );
}

/** Reports what the host has for the container (namespace, veth, live addresses); changes nothing. */
export function netnsReadScript(
  spec: Pick<ContainerSpec, "name" | "hostInterface" | "hostBridge">,
  owner: shell.Ownership,
): string {
  return shell.reportingScript(
    shared.containerVariables(spec, true, owner),
    shared.REPORT_LIVE,
    REPORT,
    "report_owner",
  );
}

/** Who the boot script works for: nobody's marker is checked there (its unit is ours, written under our marker). */
const BOOT: shell.Ownership = { token: "", legacy: false, resource: "" };

/**
 * What a persisted container's boot unit runs (see core/persistence.ts): `ensure_container` under our host
 * lock, as create and update run it, with the spec's addresses (persist requires them). It makes what is
 * missing and sets addresses and routes again, so running it on a live container ends where it started.
 */
export function netnsRestoreScript(spec: ContainerSpec): string {
  return shell.script(
    shell.PRELUDE,
    shell.need("ip", "flock"),
    shared.containerVariables(spec, false, BOOT, spec),
    shell.assignments({ DROP_ADDRESS: "0", MADE_NAMESPACE: "0", MADE_LINK: "0" }),
    shell.LOCKS,
    shared.CLAIMED_ADDRESSES,
    ENSURE,
    "ensure_container",
    shared.RECORD_BRIDGED_ADDRESS,
  );
}
