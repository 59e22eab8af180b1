// Host scripts for an extra veth between the host and a container (NixOS `extraVeths`): addresses as /32 with
// routes both ways, or the host end enslaved to a bridge. One script per operation, one round trip.
import { IN_CONTAINER } from "./driver";
import { LOCKS, PRELUDE, USED_ADDRESSES, assignments, parseResults } from "./script";

export interface VethSpec {
  readonly container: string;
  readonly hostInterface: string;
  readonly containerInterface: string;
  readonly hostAddress?: string;
  /** An address, or with a bridge an address with prefix (e.g. 192.168.50.5/24). */
  readonly localAddress?: string;
  readonly hostBridge?: string;
}

function vars(spec: VethSpec, own: boolean): string {
  return assignments({
    NAME: spec.container,
    HIF: spec.hostInterface,
    CIF: spec.containerInterface,
    HA: spec.hostAddress ?? "",
    LA: spec.localAddress ?? "",
    BR: spec.hostBridge ?? "",
    OWN_NAME: "",
    OWN_IF: own ? spec.hostInterface : "",
  });
}

/** Where the container's network namespace is: its name (netns driver, stand-in) or its leader's PID. */
const TARGET = String.raw`if [ -e "/run/netns/$NAME" ]; then TARGET="$NAME"; else
  TARGET=$(machinectl show "$NAME" -p Leader --value 2>/dev/null || true)
  [ -n "$TARGET" ] || { echo "PNC-CLASH container $NAME is not running on the host (no network namespace found)" >&2; exit 3; }
fi
`;

const ENSURE = String.raw`MADE=0
rollback() { rc=$?; if [ $rc -ne 0 ] && [ "$MADE" = 1 ]; then ip link del "$HIF" 2>/dev/null; echo PNC-ROLLEDBACK >&2; fi; exit $rc; }
trap rollback EXIT
if ! ip link show dev "$HIF" >/dev/null 2>&1; then
  cip link del "$CIF" 2>/dev/null || true
  ip link add "$HIF" type veth peer name "$CIF" netns "$TARGET"
  MADE=1
fi
if [ -n "$BR" ]; then
  ip link show dev "$BR" >/dev/null 2>&1 || { echo "PNC-CLASH bridge $BR does not exist on the host" >&2; exit 3; }
  ip addr flush dev "$HIF"
  ip link set "$HIF" master "$BR"
else
  ip link set "$HIF" nomaster 2>/dev/null || true
  ip addr flush dev "$HIF"
  [ -z "$HA" ] || ip addr add "$HA/32" dev "$HIF"
fi
ip link set "$HIF" up
cip link set "$CIF" up
cip addr flush dev "$CIF"
if [ -n "$LA" ]; then
  case "$LA" in */*) cip addr add "$LA" dev "$CIF" ;; *) cip addr add "$LA/32" dev "$CIF" ;; esac
fi
if [ -z "$BR" ] && [ -n "$HA" ] && [ -n "$LA" ]; then
  ip route replace "$LA/32" dev "$HIF"
  cip route replace "$HA/32" dev "$CIF"
fi
`;

export function vethCreateScript(spec: VethSpec): string {
  return [
    PRELUDE,
    "need ip flock",
    vars(spec, false),
    IN_CONTAINER,
    LOCKS,
    USED_ADDRESSES,
    TARGET,
    "taken=0",
    'if ip link show dev "$HIF" >/dev/null 2>&1; then echo "PNC-CLASH interface $HIF already exists on the host" >&2; taken=1; fi',
    'if cip link show dev "$CIF" >/dev/null 2>&1; then echo "PNC-CLASH interface $CIF already exists in container $NAME" >&2; taken=1; fi',
    "USED=$(used_addresses)",
    'for a in $HA $(printf %s "$LA" | cut -d/ -f1); do clash_check "$a" || taken=1; done',
    '[ "$taken" = 0 ] || { echo "PNC-NOTHING-CHANGED" >&2; exit 3; }',
    ENSURE,
  ].join("\n");
}

export function vethConvergeScript(spec: VethSpec): string {
  return [PRELUDE, "need ip flock", vars(spec, true), IN_CONTAINER, LOCKS, TARGET, ENSURE].join("\n");
}

export function vethReadScript(spec: VethSpec): string {
  return [
    PRELUDE,
    vars(spec, true),
    IN_CONTAINER,
    'if ip link show dev "$HIF" >/dev/null 2>&1; then echo "PNC-RESULT host=1"; else echo "PNC-RESULT host=0"; fi',
    String.raw`echo "PNC-RESULT hostAddr=$(ip -o -4 addr show dev "$HIF" 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')"`,
    String.raw`echo "PNC-RESULT master=$(ip -o link show dev "$HIF" 2>/dev/null | sed -n 's/.* master \([^ ]*\) .*/\1/p')"`,
    String.raw`echo "PNC-RESULT localAddr=$( (cip -o -4 addr show dev "$CIF" 2>/dev/null || true) | awk '{ print $4; exit }')"`,
  ].join("\n");
}

export interface ObservedVeth {
  readonly exists: boolean;
  readonly hostAddress?: string;
  readonly localAddress?: string;
  readonly hostBridge?: string;
}

export function parseVethRead(stdout: string): ObservedVeth {
  const r = parseResults(stdout);
  return {
    exists: r.host === "1",
    hostAddress: r.hostAddr || undefined,
    localAddress: r.localAddr || undefined,
    hostBridge: r.master || undefined,
  };
}

export function vethDeleteScript(spec: VethSpec): string {
  // Deleting one end of a veth deletes both.
  return [PRELUDE, vars(spec, true), LOCKS, 'ip link del "$HIF" 2>/dev/null || true'].join("\n");
}
