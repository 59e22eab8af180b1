// What the two container drivers' host scripts share: the script variables of one container, how to reach
// its network namespace, and the report of its live veth that create, update and read all end with.
import { ContainerSpec, withPrefix } from "../core/containerSpec";
import { ContainerDriverName } from "../core/types";
import { EXIT, MARK } from "./protocol";
import { ADDRESS_RECORDS, Ownership, assignments, ownerVariables, result, script } from "./shell";

/** What is really on the host for one container, as its driver's scripts report it. */
export interface ObservedContainer {
  readonly exists: boolean;
  readonly running: boolean;
  readonly hostAddress?: string;
  readonly localAddress?: string;
  /** Bridged: the bridge the host end is enslaved to (its master), as found. */
  readonly hostBridge?: string;
  /** nixos driver: the conf file (its layout is detected per host). */
  readonly confPath?: string;
  /** nixos driver: whether machines.target wants the container's unit (it starts at boot). */
  readonly autoStart?: boolean;
  /**
   * nixos driver: the container@ unit's ActiveState. `activating`, `reloading` and `deactivating` are busy (a
   * start, a switch to a new configuration or a stop is under way), not stopped.
   */
  readonly unitState?: string;
  /** The addresses our marker keeps for the container (what it was made with), when the report has them. */
  readonly recordedHostAddress?: string;
  readonly recordedLocalAddress?: string;
}

/** The addresses a container had before an update (what the host picked at create, when it did). */
export interface PreviousAddresses {
  readonly hostAddress?: string;
  readonly localAddress?: string;
}

/**
 * One container's script variables: CONTAINER_NAME, HOST_INTERFACE, HOST_ADDRESS, LOCAL_ADDRESS, HOST_BRIDGE,
 * ADDRESS_RECORD (where a bridged container's address is recorded: it has no host route), and
 * OWN_CONTAINER / OWN_HOST_INTERFACE / OWN_RECORD (the resource itself, left out of the address scan) when
 * `own`.
 */
export function containerVariables(
  spec: Pick<ContainerSpec, "name" | "hostInterface" | "hostBridge">,
  own: boolean,
  owner: Ownership,
  addresses: PreviousAddresses = {},
): string {
  return script(
    assignments({
      CONTAINER_NAME: spec.name,
      HOST_INTERFACE: spec.hostInterface,
      HOST_ADDRESS: addresses.hostAddress ?? "",
      LOCAL_ADDRESS: addresses.localAddress ?? "",
      HOST_BRIDGE: spec.hostBridge ?? "",
      ADDRESS_RECORD: `${ADDRESS_RECORDS}/container-${spec.name}`,
      OWN_CONTAINER: own ? spec.name : "",
      OWN_HOST_INTERFACE: own ? spec.hostInterface : "",
      OWN_RECORD: own ? `container-${spec.name}` : "",
    }),
    ownerVariables(owner, "container", spec.name),
  );
}

/** A container and the owner it is made for: one item of a batch. */
export interface ContainerItem {
  readonly spec: ContainerSpec;
  readonly owner: Ownership;
}

/** Marks the container as ours, with the addresses it gets (they survive a lost connection). */
export const CLAIM = String.raw`MARKER_EXTRA="hostAddress=$HOST_ADDRESS
localAddress=$LOCAL_ADDRESS"
claim`;

/**
 * Reads HOST_BRIDGE, HOST_ADDRESS, LOCAL_ADDRESS. Defines `claimed_addresses`: prints, one a line, the
 * addresses the container holds on this host and that must be free: both ends when routed; when bridged only
 * its own (without prefix): its hostAddress is a gateway on the LAN, someone else's (the bridge's, a router's).
 * Defines `claimed_free`: clash_check of each (see ADDRESSES), failing when any is held.
 */
export const CLAIMED_ADDRESSES = String.raw`claimed_addresses() {
  if [ -n "$HOST_BRIDGE" ]; then
    [ -z "$LOCAL_ADDRESS" ] || printf '%s\n' "$LOCAL_ADDRESS" | cut -d/ -f1
  else
    printf '%s\n%s\n' "$HOST_ADDRESS" "$LOCAL_ADDRESS"
  fi
}
claimed_free() {
  all_free=0
  for address in $(claimed_addresses); do clash_check "$address" || all_free=1; done
  return "$all_free"
}
`;

/**
 * Reads HOST_BRIDGE and CONTAINER_NAME. Sets taken=1 (printing why) when the bridge is missing or is no
 * bridge: it is the host's (we never make or remove it), and systemd-nspawn would fail the start for either.
 */
export const BRIDGE_EXISTS = String.raw`if [ -n "$HOST_BRIDGE" ]; then
  if ! ip link show dev "$HOST_BRIDGE" >/dev/null 2>&1; then
    echo "${MARK.clash} bridge $HOST_BRIDGE (hostBridge of container $CONTAINER_NAME) does not exist on the host: make it first (it is the host's: we never create or remove it)" >&2; taken=1
  elif ! ip -d -o link show dev "$HOST_BRIDGE" | grep -q ' bridge '; then
    echo "${MARK.clash} interface $HOST_BRIDGE (hostBridge of container $CONTAINER_NAME) is not a bridge on the host" >&2; taken=1
  fi
fi
`;

/**
 * Reads ADDRESS_RECORD, HOST_BRIDGE, LOCAL_ADDRESS, CONTAINER_NAME. A bridged container's address has no host
 * route (the scan's way to see a running container): record it under the lock, so the next scan sees it.
 */
export const RECORD_BRIDGED_ADDRESS = String.raw`if [ -n "$HOST_BRIDGE" ] && [ -n "$LOCAL_ADDRESS" ]; then
  mkdir -p ${ADDRESS_RECORDS}
  printf '%s\tcontainer "%s" (bridged to %s)\n' "$(printf %s "$LOCAL_ADDRESS" | cut -d/ -f1)" "$CONTAINER_NAME" "$HOST_BRIDGE" > "$ADDRESS_RECORD"
else
  rm -f "$ADDRESS_RECORD"
fi
`;

/**
 * Reads CONTAINER_NAME, HOST_BRIDGE, HOST_ADDRESS, LOCAL_ADDRESS (what an update keeps or sets) and what
 * `used_addresses` reads. Refuses an update that would leave a routed container without addresses (a cut-off
 * create that never learned the host's choice), or move it onto an address someone else holds.
 */
export const UPDATE_ADDRESSES_FREE = String.raw`${CLAIMED_ADDRESSES}if [ -z "$HOST_BRIDGE" ] && { [ -z "$HOST_ADDRESS" ] || [ -z "$LOCAL_ADDRESS" ]; }; then
  echo "${MARK.clash} container $CONTAINER_NAME has no addresses to keep: set hostAddress and localAddress" >&2
  exit ${EXIT.refused}
fi
USED_ADDRESS_LIST=$(used_addresses)
claimed_free || exit ${EXIT.refused}
`;

/** The addresses an update works with: the spec's, or else the ones kept from before (routed only). */
export function updateAddresses(
  spec: Pick<ContainerSpec, "hostAddress" | "localAddress" | "hostBridge">,
  previous: PreviousAddresses,
): PreviousAddresses {
  // Bridged: nothing was allocated, so no address is kept that the spec does not set.
  if (spec.hostBridge !== undefined)
    return { hostAddress: spec.hostAddress, localAddress: spec.localAddress };
  return {
    hostAddress: spec.hostAddress ?? previous.hostAddress,
    localAddress: spec.localAddress ?? previous.localAddress,
  };
}

/**
 * Reads CONTAINER_NAME. Defines `in_container_ip ARGS...`: runs `ip` in the container's network namespace,
 * a named one (netns driver, the lab's stand-in) or, for a NixOS container run by systemd-nspawn, the
 * namespace of its leader process.
 */
export const IN_CONTAINER = String.raw`in_container_ip() {
  if [ -e "/run/netns/$CONTAINER_NAME" ]; then
    ip -n "$CONTAINER_NAME" "$@"
  else
    leader=$(machinectl show "$CONTAINER_NAME" -p Leader --value 2>/dev/null || true)
    [ -n "$leader" ] || { echo "container $CONTAINER_NAME has no network namespace (is it running?)" >&2; return 1; }
    nsenter -t "$leader" -n ip "$@"
  fi
}
`;

/**
 * Reads HOST_INTERFACE and CONTAINER_NAME. Defines `in_container_ip` (see IN_CONTAINER), `host_master`
 * (prints the bridge the host end is enslaved to, if any) and `report_live`: prints whether the host end
 * exists (hostLink=1|0), is up (hostUp=1|0) and its master (hostMaster), the first IPv4 address on each end
 * (liveHostAddress, liveLocalAddress; liveLocalCidr with its prefix) and the default gateway inside
 * (liveGateway).
 */
export const REPORT_LIVE = String.raw`${IN_CONTAINER}host_master() {
  ip -o link show dev "$HOST_INTERFACE" 2>/dev/null | sed -n 's/.* master \([^ ]*\) .*/\1/p'
}
report_live() {
  if ip link show dev "$HOST_INTERFACE" >/dev/null 2>&1; then
    ${result("hostLink", "1")}
    ${result("liveHostAddress", `$(ip -o -4 addr show dev "$HOST_INTERFACE" | awk '{ split($4, a, "/"); print a[1]; exit }')`)}
    ${result("hostMaster", "$(host_master)")}
    if ip -o link show dev "$HOST_INTERFACE" | grep -q '[<,]UP[,>]'; then ${result("hostUp", "1")}; else ${result("hostUp", "0")}; fi
  else
    ${result("hostLink", "0")}
  fi
  live_cidr=$( (in_container_ip -o -4 addr show dev eth0 2>/dev/null || true) | awk '{ print $4; exit }')
  ${result("liveLocalAddress", '$(printf %s "$live_cidr" | cut -d/ -f1)')}
  ${result("liveLocalCidr", "$live_cidr")}
  ${result("liveGateway", `$( (in_container_ip -4 route show default 2>/dev/null || true) | awk '{ print $3; exit }')`)}
}
`;

/**
 * A bridged container as found: up with its host end on the bridge, and the address (and gateway) it was
 * given inside. Without a localAddress, whatever eth0 carries is the container's own (DHCP from the LAN):
 * neither address is reported then, so that it never shows as a change.
 */
function observeBridged(
  results: Readonly<Record<string, string>>,
  want: { hostBridge: string; hostAddress?: string; localAddress?: string },
): Pick<ObservedContainer, "running" | "hostAddress" | "localAddress" | "hostBridge"> {
  const cidr = results.liveLocalCidr || undefined;
  const localMatches = want.localAddress === undefined || cidr === withPrefix(want.localAddress);
  const gatewayMatches = want.hostAddress === undefined || results.liveGateway === want.hostAddress;
  return {
    running:
      results.hostLink === "1" &&
      results.hostUp === "1" &&
      results.hostMaster === want.hostBridge &&
      localMatches &&
      gatewayMatches,
    hostBridge: results.hostMaster || undefined,
    // The spec's spelling while it matches (no prefix = /32), else what eth0 carries (a drift to repair).
    localAddress: want.localAddress === undefined ? undefined : localMatches ? want.localAddress : cidr,
    hostAddress:
      want.hostAddress === undefined
        ? undefined
        : gatewayMatches
          ? want.hostAddress
          : results.liveGateway || undefined,
  };
}

/** The netns driver's report: namespace=1|0 plus report_live. */
function observeNetns(
  spec: Pick<ContainerSpec, "hostBridge" | "hostAddress" | "localAddress">,
  results: Readonly<Record<string, string>>,
): ObservedContainer {
  const exists = results.namespace === "1" || results.hostLink === "1";
  if (spec.hostBridge !== undefined) {
    const bridged = observeBridged(results, { ...spec, hostBridge: spec.hostBridge });
    return {
      ...recorded(results),
      exists,
      ...bridged,
      running: results.namespace === "1" && bridged.running,
    };
  }
  return {
    ...recorded(results),
    exists,
    running:
      results.namespace === "1" &&
      results.hostLink === "1" &&
      !!results.liveHostAddress &&
      !!results.liveLocalAddress,
    hostAddress: results.liveHostAddress || undefined,
    localAddress: results.liveLocalAddress || undefined,
  };
}

/** The nixos driver's report: the conf and its addresses, the unit's state and wants-link, plus report_live. */
function observeNixos(results: Readonly<Record<string, string>>): ObservedContainer {
  if (!results.conf) return { exists: false, running: false };
  const strip = (a: string | undefined): string | undefined => (a ? a.replace(/\/\d+$/, "") : undefined);
  const unitState = results.unitState || "inactive";
  const active = unitState === "active" || unitState === "reloading";
  const common = {
    ...recorded(results),
    exists: true,
    unitState,
    confPath: results.conf,
    autoStart: results.autoStartLink === "1",
  };
  // Bridged (the conf's HOST_BRIDGE): running as its conf says, the conf's addresses as written (with prefix).
  if (results.confHostBridge) {
    const bridged = observeBridged(results, {
      hostBridge: results.confHostBridge,
      hostAddress: results.confHostAddress || undefined,
      localAddress: results.confLocalAddress || undefined,
    });
    return {
      ...common,
      running: active && bridged.running,
      hostBridge: bridged.hostBridge,
      hostAddress: results.confHostAddress || undefined,
      localAddress: results.confLocalAddress || undefined,
    };
  }
  // Running means as configured: active (or reloading a new configuration, which keeps it serving), with the
  // conf's addresses live on both ends (drift shows as not running).
  const live =
    results.liveHostAddress === strip(results.confHostAddress) &&
    results.liveLocalAddress === strip(results.confLocalAddress);
  return {
    ...common,
    running: active && results.hostLink === "1" && live,
    hostAddress: strip(results.confHostAddress),
    localAddress: strip(results.confLocalAddress),
  };
}

/** The addresses in our marker, as `report_owner` prints them. */
function recorded(results: Readonly<Record<string, string>>): Partial<ObservedContainer> {
  return {
    ...(results.marker_hostAddress ? { recordedHostAddress: results.marker_hostAddress } : {}),
    ...(results.marker_localAddress ? { recordedLocalAddress: results.marker_localAddress } : {}),
  };
}

/**
 * One parser per driver, for the report every create, update and read script of that driver ends with. A
 * netns container's bridge and addresses come from its spec (`want`); a nixos container's from its conf.
 */
export function observeContainer(
  driver: ContainerDriverName,
  results: Readonly<Record<string, string>>,
  want: Pick<ContainerSpec, "hostBridge" | "hostAddress" | "localAddress"> = {},
): ObservedContainer {
  return driver === "netns" ? observeNetns(want, results) : observeNixos(results);
}
