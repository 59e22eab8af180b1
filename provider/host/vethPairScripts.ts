// Host scripts of VethPair, an extra veth between the host and a container (NixOS `extraVeths`): addresses as
// /32 with routes both ways, or the host end enslaved to a bridge. Create, update and read end with one report.
import { VethPairSpec } from "../core/vethPairSpec";
import { IN_CONTAINER } from "./containerScripts";
import { EXIT, MARK } from "./protocol";
import * as shell from "./shell";

/**
 * The script variables: CONTAINER_NAME, HOST_INTERFACE, CONTAINER_INTERFACE, HOST_ADDRESS, LOCAL_ADDRESS,
 * HOST_BRIDGE, and OWN_CONTAINER / OWN_HOST_INTERFACE for the address scan (the veth itself, when `own`).
 */
function vars(spec: VethPairSpec, own: boolean, owner: shell.Ownership): string {
  return shell.script(
    shell.assignments({
      CONTAINER_NAME: spec.container,
      HOST_INTERFACE: spec.hostInterface,
      CONTAINER_INTERFACE: spec.containerInterface,
      HOST_ADDRESS: spec.hostAddress ?? "",
      LOCAL_ADDRESS: spec.localAddress ?? "",
      HOST_ADDRESS6: spec.hostAddress6 ?? "",
      LOCAL_ADDRESS6: spec.localAddress6 ?? "",
      HOST_BRIDGE: spec.hostBridge ?? "",
      OWN_CONTAINER: "",
      OWN_HOST_INTERFACE: own ? spec.hostInterface : "",
      OWN_RECORD: own ? `veth-${spec.hostInterface}` : "",
      ADDRESS_RECORD: `${shell.ADDRESS_RECORDS}/veth-${spec.hostInterface}`,
    }),
    shell.ownerVariables(owner, "veth", spec.hostInterface),
  );
}

/**
 * Reads ADDRESS_RECORD, LOCAL_ADDRESS, HOST_INTERFACE, CONTAINER_NAME. Records the address the veth gives
 * inside the container (under the lock), so the next scan sees it without entering the namespace.
 */
const RECORD_ADDRESS = String.raw`mkdir -p ${shell.ADDRESS_RECORDS}
if [ -n "$LOCAL_ADDRESS$LOCAL_ADDRESS6" ]; then
  for address in "$LOCAL_ADDRESS" "$LOCAL_ADDRESS6"; do
    [ -z "$address" ] || printf '%s	veth %s in container %s
' "$(printf %s "$address" | cut -d/ -f1)" "$HOST_INTERFACE" "$CONTAINER_NAME"
  done > "$ADDRESS_RECORD"
else
  rm -f "$ADDRESS_RECORD"
fi
`;

/** Reads HOST_ADDRESS, LOCAL_ADDRESS. Sets taken=1 (printing who holds it) for each address held on the host. */
const ADDRESSES_FREE = String.raw`host_snapshot
for address in $HOST_ADDRESS $HOST_ADDRESS6 $(printf %s "$LOCAL_ADDRESS" | cut -d/ -f1) $(printf %s "$LOCAL_ADDRESS6" | cut -d/ -f1); do clash_check "$address" || taken=1; done
`;

/**
 * Reads CONTAINER_NAME. Sets NAMESPACE_TARGET to where the container's network namespace is: its name
 * (netns driver, the lab's stand-in) or its leader's PID; refuses when the container is not running.
 */
const FIND_NAMESPACE = String.raw`if [ -e "/run/netns/$CONTAINER_NAME" ]; then NAMESPACE_TARGET="$CONTAINER_NAME"; else
  NAMESPACE_TARGET=$(machinectl show "$CONTAINER_NAME" -p Leader --value 2>/dev/null || true)
  [ -n "$NAMESPACE_TARGET" ] || { echo "${MARK.clash} container $CONTAINER_NAME is not running on the host (no network namespace found)" >&2; exit ${EXIT.refused}; }
fi
`;

/**
 * Reads every variable of `vars` and NAMESPACE_TARGET. Makes the veth when missing (removed again if the
 * script then fails), puts the host end on the bridge or gives it its address, addresses the container end,
 * and routes both ways. Idempotent.
 */
const ENSURE = String.raw`MADE=0
rollback() {
  exit_code=$?
  if [ "$exit_code" -ne 0 ] && [ "$MADE$MADE_MARKER" != 00 ]; then
    [ "$MADE" = 1 ] && ip link del "$HOST_INTERFACE" 2>/dev/null
    [ "$MADE_MARKER" = 1 ] && rm -f "$OWNER_MARKER" "$ADDRESS_RECORD"
    echo ${MARK.rolledBack} >&2
  fi
  exit "$exit_code"
}
trap rollback EXIT
if ! ip link show dev "$HOST_INTERFACE" >/dev/null 2>&1; then
  in_container_ip link del "$CONTAINER_INTERFACE" 2>/dev/null || true
  ip link add "$HOST_INTERFACE" type veth peer name "$CONTAINER_INTERFACE" netns "$NAMESPACE_TARGET"
  MADE=1
fi
if [ -n "$HOST_BRIDGE" ]; then
  ip link show dev "$HOST_BRIDGE" >/dev/null 2>&1 || { echo "${MARK.clash} bridge $HOST_BRIDGE does not exist on the host" >&2; exit ${EXIT.refused}; }
  ip addr flush dev "$HOST_INTERFACE"
  ip link set "$HOST_INTERFACE" master "$HOST_BRIDGE"
else
  ip link set "$HOST_INTERFACE" nomaster 2>/dev/null || true
  ip addr flush dev "$HOST_INTERFACE"
  [ -z "$HOST_ADDRESS" ] || ip addr add "$HOST_ADDRESS/32" dev "$HOST_INTERFACE"
fi
ip link set "$HOST_INTERFACE" up
in_container_ip link set "$CONTAINER_INTERFACE" up
in_container_ip addr flush dev "$CONTAINER_INTERFACE"
if [ -n "$LOCAL_ADDRESS" ]; then
  case "$LOCAL_ADDRESS" in */*) in_container_ip addr add "$LOCAL_ADDRESS" dev "$CONTAINER_INTERFACE" ;; *) in_container_ip addr add "$LOCAL_ADDRESS/32" dev "$CONTAINER_INTERFACE" ;; esac
fi
if [ -z "$HOST_BRIDGE" ] && [ -n "$HOST_ADDRESS" ] && [ -n "$LOCAL_ADDRESS" ]; then
  ip route replace "$LOCAL_ADDRESS/32" dev "$HOST_INTERFACE"
  in_container_ip route replace "$HOST_ADDRESS/32" dev "$CONTAINER_INTERFACE"
fi
[ -z "$HOST_ADDRESS6" ] || [ -n "$HOST_BRIDGE" ] || ip -6 addr add "$HOST_ADDRESS6/128" dev "$HOST_INTERFACE" nodad
if [ -n "$LOCAL_ADDRESS6" ]; then
  case "$LOCAL_ADDRESS6" in */*) in_container_ip -6 addr add "$LOCAL_ADDRESS6" dev "$CONTAINER_INTERFACE" nodad ;; *) in_container_ip -6 addr add "$LOCAL_ADDRESS6/128" dev "$CONTAINER_INTERFACE" nodad ;; esac
fi
if [ -z "$HOST_BRIDGE" ] && [ -n "$HOST_ADDRESS6" ] && [ -n "$LOCAL_ADDRESS6" ]; then
  ip -6 route replace "$LOCAL_ADDRESS6/128" dev "$HOST_INTERFACE"
  in_container_ip -6 route replace "$HOST_ADDRESS6/128" dev "$CONTAINER_INTERFACE"
fi
`;

/**
 * Reads HOST_INTERFACE, CONTAINER_INTERFACE (and what in_container_ip reads). Prints the observation every
 * VethPair script ends with: host=1|0, hostAddress, master (the bridge) and localAddress (with prefix).
 */
const REPORT = String.raw`if ip link show dev "$HOST_INTERFACE" >/dev/null 2>&1; then ${shell.result("host", "1")}; else ${shell.result("host", "0")}; fi
${shell.result("hostAddress", `$(ip -o -4 addr show dev "$HOST_INTERFACE" 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')`)}
${shell.result("master", `$(ip -o link show dev "$HOST_INTERFACE" 2>/dev/null | sed -n 's/.* master \\([^ ]*\\) .*/\\1/p')`)}
${shell.result("localAddress", `$( (in_container_ip -o -4 addr show dev "$CONTAINER_INTERFACE" 2>/dev/null || true) | awk '{ print $4; exit }')`)}
${shell.result("hostAddress6", `$(ip -o -6 addr show dev "$HOST_INTERFACE" scope global 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')`)}
${shell.result("localAddress6", `$( (in_container_ip -o -6 addr show dev "$CONTAINER_INTERFACE" scope global 2>/dev/null || true) | awk '{ print $4; exit }')`)}`;

/** Checks that both interface names and the addresses are free (under the host locks), then makes the veth. */
export function vethCreateScript(spec: VethPairSpec, owner: shell.Ownership): string {
  return shell.changingScript(
    ["ip", "flock"],
    vars(spec, false, owner),
    IN_CONTAINER,
    shell.ADDRESSES,
    FIND_NAMESPACE,
    "taken=0",
    `if ip link show dev "$HOST_INTERFACE" >/dev/null 2>&1; then echo "${MARK.clash} interface $HOST_INTERFACE already exists on the host" >&2; taken=1; fi`,
    `if in_container_ip link show dev "$CONTAINER_INTERFACE" >/dev/null 2>&1; then echo "${MARK.clash} interface $CONTAINER_INTERFACE already exists in container $CONTAINER_NAME" >&2; taken=1; fi`,
    ADDRESSES_FREE,
    shell.REFUSE_IF_TAKEN,
    "claim",
    "MADE_MARKER=1",
    ENSURE,
    RECORD_ADDRESS,
    REPORT,
    "report_owner",
  );
}

/** Brings the veth back to the spec (addresses or bridge), making it again when it is gone. */
export function vethUpdateScript(spec: VethPairSpec, _previous: unknown, owner: shell.Ownership): string {
  return shell.changingScript(
    ["ip", "flock"],
    vars(spec, true, owner),
    IN_CONTAINER,
    shell.ADDRESSES,
    "require_ours",
    FIND_NAMESPACE,
    "taken=0",
    ADDRESSES_FREE,
    shell.REFUSE_IF_TAKEN,
    "MADE_MARKER=0",
    ENSURE,
    RECORD_ADDRESS,
    REPORT,
    "report_owner",
  );
}

/** Reports both ends of the veth; changes nothing. */
export function vethReadScript(spec: VethPairSpec, owner: shell.Ownership): string {
  return shell.reportingScript(vars(spec, true, owner), IN_CONTAINER, REPORT, "report_owner");
}

/** Removes the veth (deleting one end deletes both); succeeds when already gone. */
export function vethDeleteScript(spec: VethPairSpec, owner: shell.Ownership): string {
  return shell.changingScript(
    ["ip", "flock"],
    vars(spec, true, owner),
    'if ip link show dev "$HOST_INTERFACE" >/dev/null 2>&1 && ! ours; then',
    `  ${shell.result("leftBehind", "interface $HOST_INTERFACE: $(not_ours)")}`,
    "  exit 0",
    "fi",
    // Deleting one end of a veth deletes both.
    'ip link del "$HOST_INTERFACE" 2>/dev/null || true',
    'rm -f "$OWNER_MARKER" "$ADDRESS_RECORD"',
  );
}

/** Who the boot script works for: nobody's marker is checked there (its unit is ours, written under our marker). */
const BOOT: shell.Ownership = { token: "", legacy: false, resource: "" };

/**
 * What a persisted VethPair's boot unit runs (see core/persistence.ts), after its container's unit: the same
 * steps as an update, under our host lock, without the ownership and address checks. It fails when the
 * container has no network namespace (a nixos container starts later at boot: see the README's limits).
 */
export function vethRestoreScript(spec: VethPairSpec): string {
  return shell.script(
    shell.PRELUDE,
    shell.need("ip", "flock"),
    vars(spec, false, BOOT),
    IN_CONTAINER,
    shell.LOCKS,
    FIND_NAMESPACE,
    "MADE_MARKER=0",
    ENSURE,
    RECORD_ADDRESS,
  );
}

/** What a VethPair script reports. */
export interface ObservedVeth {
  readonly exists: boolean;
  readonly hostAddress?: string;
  /** With its prefix length, as the container end carries it. */
  readonly localAddress?: string;
  readonly hostBridge?: string;
  readonly hostAddress6?: string;
  /** With its prefix length, as the container end carries it. */
  readonly localAddress6?: string;
}

export function observeVeth(results: Readonly<Record<string, string>>): ObservedVeth {
  return {
    exists: results.host === "1",
    hostAddress: results.hostAddress || undefined,
    localAddress: results.localAddress || undefined,
    hostBridge: results.master || undefined,
    hostAddress6: results.hostAddress6 || undefined,
    localAddress6: results.localAddress6 || undefined,
  };
}
