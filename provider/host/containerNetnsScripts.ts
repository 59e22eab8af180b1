// Host scripts of the `netns` driver: a container is a plain Linux network namespace named after it, linked
// to the host by `ve-<name>` ↔ `eth0` with /32 addresses and routes exactly as a NixOS container's unit sets
// them up. Creates and deletes of one host that arrive together share one script (one lock, one scan).
import { randomInt } from "node:crypto";
import { ContainerSpec } from "../core/containerSpec";
import * as shared from "./containerScripts";
import { EXIT, MARK, REPORT_ITEM } from "./protocol";
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
 * Reads CONTAINER_NAME, HOST_INTERFACE, OWNER_MARKER, MADE_NAMESPACE, MADE_LINK, MADE_MARKER. `rollback`, run
 * as the EXIT trap (ROLLBACK installs it), removes only what this run made when the script fails, so a failed
 * create leaves nothing.
 */
const ROLLBACK_FUNCTION = String.raw`rollback() {
  exit_code=$?
  if [ "$exit_code" -ne 0 ]; then
    [ "$MADE_LINK" = 1 ] && ip link del "$HOST_INTERFACE" 2>/dev/null
    [ "$MADE_NAMESPACE" = 1 ] && { ip netns del "$CONTAINER_NAME" 2>/dev/null; rm -f "${OURS}/$CONTAINER_NAME"; }
    [ "$MADE_MARKER" = 1 ] && rm -f "$OWNER_MARKER" "$ADDRESS_RECORD"
    echo "${MARK.rolledBack}" >&2
  fi
  exit "$exit_code"
}
`;
const ROLLBACK = shell.script(
  "MADE_NAMESPACE=0",
  "MADE_LINK=0",
  "MADE_MARKER=0",
  ROLLBACK_FUNCTION,
  "trap rollback EXIT\n",
);

/** Reads CONTAINER_NAME (and what report_live reads). Prints the driver's observation of the container. */
const REPORT = String.raw`if [ -e "/run/netns/$CONTAINER_NAME" ]; then ${shell.result("namespace", "1")}; else ${shell.result("namespace", "0")}; fi
report_live`;

/**
 * What every batch of netns containers reads once instead of once per item (with `host_snapshot` of
 * shell.ADDRESSES). Defines:
 * - `in_list LIST WORD`: whether WORD is one of LIST's lines (builtins only);
 * - `live_reads`: appends to ADDR_READS and LINK_READS the `ip -batch` lines that read the item's veth (its
 *   addresses, its link); run the addresses first: in one `ip -batch`, an `addr show dev` after a `link show`
 *   prints the link again (iproute2 6.1);
 * - `live_from FILE`: sets LIVE_TABLE from FILE (the `ip -o` output of `live_reads` of the batch's items):
 *   "L DEV UP MASTER" per link and "A4 DEV ADDRESS" / "A6 DEV ADDRESS" for each link's first IPv4 and first
 *   global IPv6 address, each after a newline (builtins only: the file holds a few lines per item);
 * - `live_of KEY`: sets `found` to the rest of LIVE_TABLE's line for KEY ("L ve-web", "A4 ve-web"), false
 *   without one (builtins only);
 * - `report_batched FILE`: prints what REPORT prints for the container of the current item variables, from
 *   LIVE_TABLE and FILE (the container's `ip -o` output of `addr show dev eth0` and `route show default`),
 *   with builtins only. liveGateway6 is not reported: only bridged containers (reported by `report_live`)
 *   read it.
 */
const SNAPSHOT = shell.sh`in_list() {
  case "$NL$1$NL" in *"$NL$2$NL"*) return 0 ;; esac
  return 1
}
live_reads() {
  ADDR_READS="\${ADDR_READS}addr show dev $HOST_INTERFACE$NL"
  LINK_READS="\${LINK_READS}link show dev $HOST_INTERFACE$NL"
}
live_from() {
  LIVE_TABLE=
  live_file=$1
  while IFS= read -r live_line; do
    set -f
    # shellcheck disable=SC2086 # the fields of the line
    set -- $live_line
    set +f
    [ $# -ge 4 ] || continue
    live_dev=\${2%:}
    live_dev=\${live_dev%%@*}
    case "$3" in
      "<"*)
        case "$3" in *"<UP,"* | *",UP,"* | *",UP>"* | "<UP>") live_up=1 ;; *) live_up=0 ;; esac
        live_master=
        shift 3
        while [ $# -gt 1 ]; do
          [ "$1" != master ] || live_master=$2
          shift
        done
        LIVE_TABLE="$LIVE_TABLE\${NL}L $live_dev $live_up $live_master"
        ;;
      inet | inet6)
        live_key="A4 $live_dev"
        if [ "$3" = inet6 ]; then
          live_key="A6 $live_dev"
          case " $live_line " in *" scope global "*) ;; *) continue ;; esac
        fi
        case "$LIVE_TABLE$NL" in *"$NL$live_key "*) ;; *) LIVE_TABLE="$LIVE_TABLE$NL$live_key \${4%%/*}" ;; esac
        ;;
    esac
  done < "$live_file"
}
live_of() {
  case "$LIVE_TABLE$NL" in
    *"$NL$1 "*) found=\${LIVE_TABLE#*"$NL$1 "}; found=\${found%%"$NL"*}; return 0 ;;
  esac
  found=
  return 1
}
report_batched() {
  if [ -e "/run/netns/$CONTAINER_NAME" ]; then ${shell.result("namespace", "1")}; else ${shell.result("namespace", "0")}; fi
  if live_of "L $HOST_INTERFACE"; then
    ${shell.result("hostLink", "1")}
    ${shell.result("hostUp", "${found%% *}")}
    ${shell.result("hostMaster", "${found#* }")}
    live_of "A4 $HOST_INTERFACE" || :
    ${shell.result("liveHostAddress", "$found")}
  else
    ${shell.result("hostLink", "0")}
  fi
  live_cidr=
  live_cidr6=
  live_gateway=
  while read -r inside_a inside_b inside_c inside_d inside_rest; do
    case "$inside_a" in
      default) [ "$inside_b" != via ] || [ -n "$live_gateway" ] || live_gateway=$inside_c ;;
      *) case "$inside_c" in
          inet) [ -n "$live_cidr" ] || live_cidr=$inside_d ;;
          inet6) case " $inside_rest " in *" scope global "*) [ -n "$live_cidr6" ] || live_cidr6=$inside_d ;; esac ;;
        esac ;;
    esac
  done < "$1"
  ${shell.result("liveLocalAddress", "${live_cidr%%/*}")}
  ${shell.result("liveLocalCidr", "$live_cidr")}
  ${shell.result("liveGateway", "$live_gateway")}
  live_of "A6 $HOST_INTERFACE" || :
  ${shell.result("liveHostAddress6", "$found")}
  ${shell.result("liveLocalAddress6", "${live_cidr6%%/*}")}
  ${shell.result("liveLocalCidr6", "$live_cidr6")}
}
`;

/** `item_vars_I`: one function per item of a batch, setting that container's script variables. */
function itemFunctions(items: readonly shared.ContainerItem[], own: boolean): string[] {
  return items.map(({ spec, owner }, i) =>
    shell.script(`item_vars_${i}() {`, shared.containerVariables(spec, own, owner, spec), "}"),
  );
}

/** The end of every batch: each item's output and exit code (ITEM_CODE_I), in the form parseBatch reads. */
const REPORT_ALL = String.raw`for item in $BATCH_ITEMS; do eval "report_item $item \"\$ITEM_CODE_$item\" .$item"; done`;

function indexes(count: number): string {
  return Array.from({ length: count }, (_, i) => i).join(" ");
}

/** Where the batches that hold the host lock keep their items' output (one such batch at a time). */
const LOCKED_OUTPUT_DIR = `${shell.STATE_DIR}/batch`;

/**
 * The start of every batch script: its items' variables, and where their output goes. A batch that holds
 * the host lock (create, delete) uses LOCKED_OUTPUT_DIR as it is, each file written afresh before use, and
 * left for the next batch to overwrite (no mkdir or rm on its path); a read (no lock) a private directory
 * named after its mark, made with `private_dirs` and removed at exit.
 */
function batchHeader(
  mark: string,
  items: readonly shared.ContainerItem[],
  own: boolean,
  locked: boolean,
): string[] {
  const head = [
    shell.assignments({ PNC_MARK: mark, BATCH_ITEMS: indexes(items.length) }),
    REPORT_ITEM,
    ...itemFunctions(items, own),
  ];
  if (locked) return [...head, `ITEM_OUTPUT_DIR=${LOCKED_OUTPUT_DIR}`];
  return [
    ...head,
    `ITEM_OUTPUT_DIR="${shell.STATE_DIR}/tmp/batch-$PNC_MARK"`,
    // Never another script's (a mark used twice): it stops before its EXIT trap could remove that one.
    `[ ! -e "$ITEM_OUTPUT_DIR" ] || { echo "internal: $ITEM_OUTPUT_DIR exists: a batch mark was used twice" >&2; exit 1; }`,
    `trap 'rm -rf "$ITEM_OUTPUT_DIR"' EXIT`,
    'private_dirs "$ITEM_OUTPUT_DIR"',
  ];
}

/**
 * Reads the item functions (`item_vars_I`). Defines the phases of a create batch, all under the host locks:
 * - `create_check I`: item I's checks against what the batch read once (names, links, addresses) plus what
 *   earlier items of the batch took, with builtins only; an accepted item's addresses, name and interface are
 *   then taken for the items after it, and its marker is written (one \`printf\`, a builtin: one write of a
 *   few lines; cut off, an empty marker marks nothing);
 * - `host_lines I`: item I's host side (namespace, veth, addresses, routes) as lines of the one `ip -batch`
 *   of the host, remembering which lines made its namespace and its veth;
 * - `create_inside I`: item I's inside as one `ip -n NAME -batch` that also reads eth0 back (the report);
 * - `create_alone I MADE_NAMESPACE MADE_LINK [failed]`: item I the way a batch of one makes it, in a
 *   subshell with its own rollback (of only what this run made for it): a bridged container, and the
 *   fallback of an item whose batched kernel work failed; `failed`: the item whose host line failed, which
 *   only rolls back (its interface may be someone else's that appeared since the read).
 */
const CREATE_PHASES = shell.sh`create_check() {
  taken=0
  if [ -e "/run/netns/$CONTAINER_NAME" ] || in_list "$BATCH_NAMESPACES" "$CONTAINER_NAME"; then echo "${MARK.clash} name $CONTAINER_NAME: a network namespace /run/netns/$CONTAINER_NAME already exists" >&2; taken=1; fi
  if in_list "$HOST_LINKS" "$HOST_INTERFACE"; then echo "${MARK.clash} interface $HOST_INTERFACE already exists on the host" >&2; taken=1; fi
  for conf in "/etc/nixos-containers/$CONTAINER_NAME.conf" "/etc/containers/$CONTAINER_NAME.conf"; do
    if [ -f "$conf" ] && grep -q '^HOST_ADDRESS=\|^LOCAL_ADDRESS=' "$conf"; then echo "${MARK.clash} name $CONTAINER_NAME: a nixos container of that name exists ($conf)" >&2; taken=1; fi
  done
${shared.BRIDGE_EXISTS}  if [ -z "$HOST_ADDRESS" ] && [ -z "$HOST_BRIDGE" ]; then
    block=$(allocate_block) || return 1
    HOST_ADDRESS="10.233.$block.1"
    LOCAL_ADDRESS="10.233.$block.2"
  fi
  claimed_free || taken=1
  [ "$taken" = 0 ] || return ${EXIT.refused}
}
check_item() {
  item=$1
  "item_vars_$item"
  if create_check > "$ITEM_OUTPUT_DIR/out.$item" 2> "$ITEM_OUTPUT_DIR/err.$item"; then
    eval "ITEM_CODE_$item=ok ITEM_HOST_ADDRESS_$item=\$HOST_ADDRESS ITEM_LOCAL_ADDRESS_$item=\$LOCAL_ADDRESS"
    BATCH_NAMESPACES=$BATCH_NAMESPACES$NL$CONTAINER_NAME
    HOST_LINKS=$HOST_LINKS$NL$HOST_INTERFACE
    if [ -n "$HOST_BRIDGE" ]; then
      BATCH_BRIDGED="$BATCH_BRIDGED $item"
      set -- "\${LOCAL_ADDRESS%%/*}" "\${LOCAL_ADDRESS6%%/*}"
    else
      BATCH_ROUTED="$BATCH_ROUTED $item"
      STALE_RECORDS="$STALE_RECORDS $item"
      set -- "$HOST_ADDRESS" "$LOCAL_ADDRESS" "$HOST_ADDRESS6" "$LOCAL_ADDRESS6"
    fi
    for address in "$@"; do
      [ -z "$address" ] || USED_ADDRESS_LIST="$USED_ADDRESS_LIST$NL$address\${TAB}container \"$CONTAINER_NAME\" (created just before)"
    done
    printf '%s\n' "$OWNER" "resource=$OWNER_RESOURCE" "hostAddress=$HOST_ADDRESS" "localAddress=$LOCAL_ADDRESS" "hostAddress6=$HOST_ADDRESS6" "localAddress6=$LOCAL_ADDRESS6" > "$OWNER_MARKER"
  else
    eval "ITEM_CODE_$item=$?"
  fi
}
item_addresses() {
  "item_vars_$1"
  eval "HOST_ADDRESS=\$ITEM_HOST_ADDRESS_$1 LOCAL_ADDRESS=\$ITEM_LOCAL_ADDRESS_$1"
}
host_line() {
  HOST_LINE=$((HOST_LINE + 1))
  HOST_BATCH=$HOST_BATCH$1$NL
}
host_lines() {
  item_addresses "$1"
  host_line "netns add $CONTAINER_NAME"
  eval "ITEM_NAMESPACE_LINE_$1=$HOST_LINE"
  host_line "link add $HOST_INTERFACE type veth peer name eth0 netns $CONTAINER_NAME"
  eval "ITEM_LINK_LINE_$1=$HOST_LINE"
  host_line "link set $HOST_INTERFACE up"
  host_line "addr add $HOST_ADDRESS/32 dev $HOST_INTERFACE"
  host_line "route replace $LOCAL_ADDRESS/32 dev $HOST_INTERFACE"
  if [ -n "$HOST_ADDRESS6" ]; then
    host_line "addr add $HOST_ADDRESS6/128 dev $HOST_INTERFACE nodad"
    host_line "route replace $LOCAL_ADDRESS6/128 dev $HOST_INTERFACE"
  fi
  eval "ITEM_LAST_LINE_$1=$HOST_LINE"
  live_reads
}
create_inside() {
  item_addresses "$1"
  : > "${OURS}/$CONTAINER_NAME"
  inside6=
  if [ -n "$HOST_ADDRESS6" ]; then
    inside6="addr add $LOCAL_ADDRESS6/128 dev eth0 nodad$NL"
    inside6="\${inside6}route replace $HOST_ADDRESS6/128 dev eth0$NL"
    inside6="\${inside6}route replace default via $HOST_ADDRESS6 dev eth0"
  fi
  ip -o -n "$CONTAINER_NAME" -batch - > "$ITEM_OUTPUT_DIR/inside.$1" 2>> "$ITEM_OUTPUT_DIR/err.$1" <<PNC_INSIDE
link set lo up
link set eth0 up
addr add $LOCAL_ADDRESS/32 dev eth0
route replace $HOST_ADDRESS/32 dev eth0
route replace default via $HOST_ADDRESS dev eth0
$inside6
addr show dev eth0
route show default
PNC_INSIDE
}
create_alone() {
  item_addresses "$1"
  set +e
  (
    set -e
    MADE_NAMESPACE=$2
    MADE_LINK=$3
    MADE_MARKER=1
    trap rollback EXIT
    if [ "\${4-}" = failed ]; then cat "$ITEM_OUTPUT_DIR/host.err" >&2; exit 1; fi
${shared.RECORD_BRIDGED_ADDRESS}    ensure_container
${REPORT}
  ) < /dev/null >> "$ITEM_OUTPUT_DIR/out.$1" 2>> "$ITEM_OUTPUT_DIR/err.$1"
  eval "ITEM_CODE_$1=$?"
  set -e
}
`;

/**
 * Creates several containers in one script, at the cost of what they share: the locks are taken and the
 * host read once (addresses, links); each container is checked against that (plus what earlier ones in the
 * batch took) with builtins; each accepted one's marker is written by a builtin; the host side of all
 * routed ones is one `ip -batch`, which ends by reading the host's links and addresses back (every item's
 * report), and each one's inside one `ip -n NAME -batch` that reads eth0 back. A failed batched step falls back to the
 * item alone (`ensure_container` in a subshell with its own rollback): an item whose host lines never ran or
 * failed is made (or rolled back) on its own, removing only what this run made for it (known from the line
 * `ip -batch` stopped at). Bridged containers are made alone. Each item reports like `netnsReadScript`.
 */
export function netnsCreateScript(items: readonly shared.ContainerItem[], mark: string): string {
  return shell.changingScript(
    ["ip", "flock"],
    shell.assignments({ OWN_CONTAINER: "", OWN_HOST_INTERFACE: "", OWN_RECORD: "", DROP_ADDRESS: "0" }),
    shell.ADDRESSES,
    shared.REPORT_LIVE,
    shared.CLAIMED_ADDRESSES,
    ENSURE,
    ROLLBACK_FUNCTION,
    SNAPSHOT,
    CREATE_PHASES,
    ...batchHeader(mark, items, false, true),
    "host_snapshot",
    `if [ ! -d "$ITEM_OUTPUT_DIR" ] || [ ! -d ${OURS} ] || [ ! -d ${shell.OWNERS_DIR} ]; then private_dirs "$ITEM_OUTPUT_DIR" ${OURS} ${shell.OWNERS_DIR}; fi`,
    "BATCH_NAMESPACES=",
    "BATCH_ROUTED=",
    "BATCH_BRIDGED=",
    "STALE_RECORDS=",
    // Each accepted item's check writes its marker, before anything it marks (a cut-off create is found by
    // its marker).
    `for item in $BATCH_ITEMS; do check_item "$item"; done`,
    // Stale address records (rare) need an rm.
    "set --",
    'for item in $STALE_RECORDS; do "item_vars_$item"; [ ! -e "$ADDRESS_RECORD" ] || set -- "$@" "$ADDRESS_RECORD"; done',
    '[ $# -eq 0 ] || rm -f "$@"',
    "HOST_LINE=0",
    "HOST_BATCH=",
    "ADDR_READS=",
    "LINK_READS=",
    'for item in $BATCH_ROUTED; do host_lines "$item"; done',
    "HOST_FAILED_LINE=0",
    // The batch ends by reading each item's veth back (its report), in the same `ip`.
    'if [ -n "$HOST_BATCH" ] && ! printf %s "$HOST_BATCH$ADDR_READS$LINK_READS" | ip -o -batch - > "$ITEM_OUTPUT_DIR/host.out" 2> "$ITEM_OUTPUT_DIR/host.err"; then',
    // Which line `ip` stopped at: the lines before it ran, the ones after never did (-1: not known).
    "  HOST_FAILED_LINE=",
    "  while IFS= read -r line; do",
    '    case "$line" in "Command failed -:"*) HOST_FAILED_LINE=${line#"Command failed -:"} ;; esac',
    '  done < "$ITEM_OUTPUT_DIR/host.err"',
    '  case "$HOST_FAILED_LINE" in "" | 0 | *[!0-9]*) HOST_FAILED_LINE=-1 ;; esac',
    "fi",
    "for item in $BATCH_ROUTED; do",
    '  if [ "$HOST_FAILED_LINE" = 0 ]; then',
    '    if create_inside "$item"; then continue; fi',
    // The host lines all ran and the inside failed: this run made the namespace and the veth.
    '    create_alone "$item" 1 1',
    "    continue",
    "  fi",
    // Made by this run: what the lines before the failed one made; with the line unknown, nothing is assumed
    // made (what the batch made for the item is then left, never something someone else made).
    "  namespace_line=",
    "  link_line=",
    "  last_line=",
    '  eval "namespace_line=\\$ITEM_NAMESPACE_LINE_$item link_line=\\$ITEM_LINK_LINE_$item last_line=\\$ITEM_LAST_LINE_$item"',
    "  made_namespace=0",
    "  made_link=0",
    "  failed=",
    '  [ "$HOST_FAILED_LINE" -le 0 ] || [ "$namespace_line" -ge "$HOST_FAILED_LINE" ] || made_namespace=1',
    '  [ "$HOST_FAILED_LINE" -le 0 ] || [ "$link_line" -ge "$HOST_FAILED_LINE" ] || made_link=1',
    '  [ "$HOST_FAILED_LINE" -le 0 ] || [ "$namespace_line" -gt "$HOST_FAILED_LINE" ] || [ "$last_line" -lt "$HOST_FAILED_LINE" ] || failed=failed',
    '  create_alone "$item" "$made_namespace" "$made_link" "$failed"',
    "done",
    'for item in $BATCH_BRIDGED; do create_alone "$item" 0 0; done',
    'if [ -n "$HOST_BATCH" ] && [ "$HOST_FAILED_LINE" = 0 ]; then live_from "$ITEM_OUTPUT_DIR/host.out"; fi',
    "for item in $BATCH_ROUTED; do",
    "  item_code=",
    '  eval "item_code=\\$ITEM_CODE_$item"',
    '  [ "$item_code" = ok ] || continue',
    '  item_addresses "$item"',
    '  report_batched "$ITEM_OUTPUT_DIR/inside.$item" >> "$ITEM_OUTPUT_DIR/out.$item"',
    '  eval "ITEM_CODE_$item=0"',
    "done",
    REPORT_ALL,
  );
}

/**
 * Reads the item functions and LINK_GROUP. Defines `delete_check I`: whether item I is ours (else its result
 * says what it left behind and why), queueing its lines for the batch's `ip -batch`es; `links_of FILE`: sets
 * LINKS_FOUND to the names of the links in FILE (\`ip -o link\` output), each after a newline, and LINKS_FOREIGN
 * to 1 when one is not in OUR_LINKS (builtins: FILE holds only a few links); and
 * `delete_verify I`: after the batch, whether item I's namespace and veth are gone (queueing its files for
 * the batch's one \`rm\`), else why not.
 */
const DELETE_PHASES = shell.sh`delete_check() {
  "item_vars_$1"
  if ours; then
    BATCH_DELETES="$BATCH_DELETES $1"
    OUR_LINKS="$OUR_LINKS$NL$HOST_INTERFACE"
    GROUP_LINES="\${GROUP_LINES}link set dev $HOST_INTERFACE group $LINK_GROUP$NL"
    LINK_DELETES="\${LINK_DELETES}link del $HOST_INTERFACE$NL"
    NETNS_DELETES="\${NETNS_DELETES}netns del $CONTAINER_NAME$NL"
    LINK_READS="\${LINK_READS}link show dev $HOST_INTERFACE$NL"
    REMOVED_FILES="$REMOVED_FILES$NL${OURS}/$CONTAINER_NAME"
  else
    ${shell.result("leftBehind", "network namespace $CONTAINER_NAME and interface $HOST_INTERFACE: $(not_ours)")}
  fi
}
links_of() {
  LINKS_FOUND=
  LINKS_FOREIGN=0
  while IFS= read -r link_line; do
    link_name=\${link_line#*: }
    link_name=\${link_name%%: *}
    link_name=\${link_name%%@*}
    LINKS_FOUND=$LINKS_FOUND$NL$link_name
    in_list "$OUR_LINKS" "$link_name" || LINKS_FOREIGN=1
  done < "$1"
}
delete_verify() {
  "item_vars_$1"
  if [ -e "/run/netns/$CONTAINER_NAME" ]; then echo "could not remove network namespace $CONTAINER_NAME (is a process still using it?)" >&2; return 1; fi
  if in_list "$HOST_LINKS" "$HOST_INTERFACE"; then echo "could not remove interface $HOST_INTERFACE" >&2; return 1; fi
  REMOVED_FILES="$REMOVED_FILES$NL$OWNER_MARKER$NL$ADDRESS_RECORD"
}
`;

/**
 * The link group a delete batch puts its veths in: a random one of the high half of the numbers (the groups
 * people set by hand are small), so no one else's links are in it; the batch checks that before deleting it.
 */
function deleteLinkGroup(): number {
  return randomInt(0x10000000, 0x7fffffff);
}

/**
 * Removes several containers under one take of the host locks: each one's marker is checked (builtins).
 * The veths of all that are ours are put in the batch's own link group and deleted as one (one kernel
 * unregister for all, one wait for its grace period, instead of one per veth), once a read of the group shows
 * it holds only ours (else one by one); then their namespaces go, in the same \`ip -force -batch\` (each line on
 * its own: one already gone fails alone), which ends by reading back each veth. One \`rm\` removes the files of
 * those that are gone. Each succeeds when already gone.
 */
export function netnsDeleteScript(items: readonly shared.ContainerItem[], mark: string): string {
  return shell.changingScript(
    ["ip", "flock"],
    shell.assignments({ LINK_GROUP: deleteLinkGroup() }),
    SNAPSHOT,
    DELETE_PHASES,
    ...batchHeader(mark, items, true, true),
    "BATCH_DELETES=",
    "OUR_LINKS=",
    "GROUP_LINES=",
    "LINK_DELETES=",
    "NETNS_DELETES=",
    "LINK_READS=",
    "REMOVED_FILES=",
    '[ -d "$ITEM_OUTPUT_DIR" ] || private_dirs "$ITEM_OUTPUT_DIR"',
    "for item in $BATCH_ITEMS; do",
    '  if delete_check "$item" > "$ITEM_OUTPUT_DIR/out.$item" 2> "$ITEM_OUTPUT_DIR/err.$item"; then eval "ITEM_CODE_$item=0"; else eval "ITEM_CODE_$item=$?"; fi',
    "done",
    'if [ -n "$BATCH_DELETES" ]; then',
    '  printf %s "${GROUP_LINES}link show group $LINK_GROUP$NL" | ip -o -force -batch - > "$ITEM_OUTPUT_DIR/group" 2> /dev/null || :',
    '  links_of "$ITEM_OUTPUT_DIR/group"',
    '  DELETES="link del group $LINK_GROUP$NL"',
    '  [ "$LINKS_FOREIGN" = 0 ] || DELETES=$LINK_DELETES',
    // Veths first: deleting one end removes both at once, while a deleted namespace is torn down by the
    // kernel in the background, its veth a moment later. What is still there is read back at the end.
    '  printf %s "$DELETES$NETNS_DELETES$LINK_READS" | ip -o -force -batch - > "$ITEM_OUTPUT_DIR/left" 2> /dev/null || :',
    '  links_of "$ITEM_OUTPUT_DIR/left"',
    "  HOST_LINKS=$LINKS_FOUND",
    "  for item in $BATCH_DELETES; do",
    '    if delete_verify "$item" >> "$ITEM_OUTPUT_DIR/out.$item" 2>> "$ITEM_OUTPUT_DIR/err.$item"; then :; else eval "ITEM_CODE_$item=$?"; fi',
    "  done",
    "  set --",
    '  while IFS= read -r removed; do [ -z "$removed" ] || set -- "$@" "$removed"; done <<PNC_REMOVED',
    "$REMOVED_FILES",
    "PNC_REMOVED",
    '  rm -f "$@"',
    "fi",
    REPORT_ALL,
  );
}

/** Reads the item functions and LIVE_TABLE. Defines `read_item I`: item I's report and owner (see REPORT). */
const READ_PHASE = shell.sh`read_item() {
  "item_vars_$1"
  if [ -n "$HOST_BRIDGE" ]; then
${REPORT}
  else
    : > "$ITEM_OUTPUT_DIR/inside.$1"
    if [ -e "/run/netns/$CONTAINER_NAME" ]; then
      printf '%s\n' 'addr show dev eth0' 'route show default' | ip -force -o -n "$CONTAINER_NAME" -batch - > "$ITEM_OUTPUT_DIR/inside.$1" 2> /dev/null || :
    fi
    report_batched "$ITEM_OUTPUT_DIR/inside.$1"
  fi
  report_owner
}
`;

/**
 * Reads several containers of one host in one script (no lock, like a read alone): one read of the host's
 * links and addresses for all; for each routed container, one \`ip -n NAME -batch\` reads eth0 and the default
 * route; a bridged one is read by \`report_live\`. Each item reports like \`netnsReadScript\`.
 */
export function netnsReadsScript(items: readonly shared.ContainerItem[], mark: string): string {
  return shell.reportingScript(
    "",
    shared.REPORT_LIVE,
    SNAPSHOT,
    READ_PHASE,
    ...batchHeader(mark, items, true, false),
    // One `ip` reads every item's veth (one missing fails alone), for the host side of each report.
    "ADDR_READS=",
    "LINK_READS=",
    'for item in $BATCH_ITEMS; do "item_vars_$item"; live_reads; done',
    'printf %s "$ADDR_READS$LINK_READS" | ip -o -force -batch - > "$ITEM_OUTPUT_DIR/live" 2> /dev/null || :',
    'live_from "$ITEM_OUTPUT_DIR/live"',
    "for item in $BATCH_ITEMS; do",
    '  if read_item "$item" > "$ITEM_OUTPUT_DIR/out.$item" 2> "$ITEM_OUTPUT_DIR/err.$item"; then eval "ITEM_CODE_$item=0"; else eval "ITEM_CODE_$item=$?"; fi',
    "done",
    REPORT_ALL,
  );
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
