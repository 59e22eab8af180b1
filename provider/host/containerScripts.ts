// What the two container drivers' host scripts share: the script variables of one container, how to reach
// its network namespace, and the report of its live veth that create, update and read all end with.
import { ContainerSpec, withPrefix } from "../core/containerSpec";
import { ContainerDriverName } from "../core/types";
import { EXIT, MARK } from "./protocol";
import { ADDRESS_RECORDS, Ownership, assignments, ownerVariables, result, script, sh } from "./shell";

/** What is really on the host for one container, as its driver's scripts report it. */
export interface ObservedContainer {
  readonly exists: boolean;
  readonly running: boolean;
  readonly hostAddress?: string;
  readonly localAddress?: string;
  /** IPv6, as found (the conf's for a nixos container); absent when the container has none. */
  readonly hostAddress6?: string;
  readonly localAddress6?: string;
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
  readonly hostAddress6?: string;
  readonly localAddress6?: string;
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
      HOST_ADDRESS6: addresses.hostAddress6 ?? "",
      LOCAL_ADDRESS6: addresses.localAddress6 ?? "",
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
localAddress=$LOCAL_ADDRESS
hostAddress6=$HOST_ADDRESS6
localAddress6=$LOCAL_ADDRESS6"
claim`;

/**
 * Reads HOST_BRIDGE, HOST_ADDRESS, LOCAL_ADDRESS. Defines `claimed_addresses`: prints, one a line, the
 * addresses the container holds on this host and that must be free: both ends when routed; when bridged only
 * its own (without prefix): its hostAddress is a gateway on the LAN, someone else's (the bridge's, a router's).
 * Defines `claimed_free`: clash_check of each (see ADDRESSES), failing when any is held.
 */
export const CLAIMED_ADDRESSES = sh`claimed_addresses() {
  if [ -n "$HOST_BRIDGE" ]; then
    for address in "$LOCAL_ADDRESS" "$LOCAL_ADDRESS6"; do [ -z "$address" ] || printf '%s\n' "\${address%%/*}"; done
  else
    for address in "$HOST_ADDRESS" "$LOCAL_ADDRESS" "$HOST_ADDRESS6" "$LOCAL_ADDRESS6"; do [ -z "$address" ] || printf '%s\n' "$address"; done
  fi
}
claimed_free() {
  all_free=0
  if [ -n "$HOST_BRIDGE" ]; then
    set -- "\${LOCAL_ADDRESS%%/*}" "\${LOCAL_ADDRESS6%%/*}"
  else
    set -- "$HOST_ADDRESS" "$LOCAL_ADDRESS" "$HOST_ADDRESS6" "$LOCAL_ADDRESS6"
  fi
  for address in "$@"; do [ -z "$address" ] || clash_check "$address" || all_free=1; done
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
 * Reads ADDRESS_RECORD, HOST_BRIDGE, LOCAL_ADDRESS, LOCAL_ADDRESS6, CONTAINER_NAME (and `claimed_addresses`,
 * see CLAIMED_ADDRESSES). A bridged container's addresses have no host route (the scan's way to see a running
 * container): record them under the lock, so the next scan sees them.
 */
export const RECORD_BRIDGED_ADDRESS = String.raw`if [ -n "$HOST_BRIDGE" ] && [ -n "$LOCAL_ADDRESS$LOCAL_ADDRESS6" ]; then
  mkdir -p ${ADDRESS_RECORDS}
  for address in $(claimed_addresses); do
    printf '%s\tcontainer "%s" (bridged to %s)\n' "$address" "$CONTAINER_NAME" "$HOST_BRIDGE"
  done > "$ADDRESS_RECORD"
else
  rm -f "$ADDRESS_RECORD"
fi
`;

/**
 * Reads CONTAINER_NAME, HOST_BRIDGE, HOST_ADDRESS, LOCAL_ADDRESS (what an update keeps or sets) and what
 * `host_snapshot` reads. Refuses an update that would leave a routed container without addresses (a cut-off
 * create that never learned the host's choice), or move it onto an address someone else holds.
 */
export const UPDATE_ADDRESSES_FREE = String.raw`${CLAIMED_ADDRESSES}if [ -z "$HOST_BRIDGE" ] && { [ -z "$HOST_ADDRESS" ] || [ -z "$LOCAL_ADDRESS" ]; }; then
  echo "${MARK.clash} container $CONTAINER_NAME has no addresses to keep: set hostAddress and localAddress" >&2
  exit ${EXIT.refused}
fi
host_snapshot
claimed_free || exit ${EXIT.refused}
`;

/** The addresses an update works with: the spec's, or else the ones kept from before (routed only). */
export function updateAddresses(
  spec: Pick<ContainerSpec, "hostAddress" | "localAddress" | "hostAddress6" | "localAddress6" | "hostBridge">,
  previous: PreviousAddresses,
): PreviousAddresses {
  // Bridged: nothing was allocated, so no address is kept that the spec does not set.
  if (spec.hostBridge !== undefined)
    return {
      hostAddress: spec.hostAddress,
      localAddress: spec.localAddress,
      hostAddress6: spec.hostAddress6,
      localAddress6: spec.localAddress6,
    };
  // IPv6 is never picked by the host: the spec's or none.
  return {
    hostAddress: spec.hostAddress ?? previous.hostAddress,
    localAddress: spec.localAddress ?? previous.localAddress,
    hostAddress6: spec.hostAddress6,
    localAddress6: spec.localAddress6,
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
  ${result("liveHostAddress6", `$(ip -o -6 addr show dev "$HOST_INTERFACE" scope global 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')`)}
  live_cidr6=$( (in_container_ip -o -6 addr show dev eth0 scope global 2>/dev/null || true) | awk '{ print $4; exit }')
  ${result("liveLocalAddress6", '$(printf %s "$live_cidr6" | cut -d/ -f1)')}
  ${result("liveLocalCidr6", "$live_cidr6")}
  ${result("liveGateway6", `$( (in_container_ip -6 route show default 2>/dev/null || true) | awk '{ print $3; exit }')`)}
}
`;

/**
 * A bridged container as found: up with its host end on the bridge, and the address (and gateway) it was
 * given inside. Without a localAddress, whatever eth0 carries is the container's own (DHCP from the LAN):
 * neither address is reported then, so that it never shows as a change.
 */
function observeBridged(
  results: Readonly<Record<string, string>>,
  want: BridgedWant,
): Pick<
  ObservedContainer,
  "running" | "hostAddress" | "localAddress" | "hostAddress6" | "localAddress6" | "hostBridge"
> {
  const cidr = results.liveLocalCidr || undefined;
  const localMatches = want.localAddress === undefined || cidr === withPrefix(want.localAddress);
  const gatewayMatches = want.hostAddress === undefined || results.liveGateway === want.hostAddress;
  const cidr6 = results.liveLocalCidr6 || undefined;
  const local6Matches = want.localAddress6 === undefined || cidr6 === withPrefix6(want.localAddress6);
  const gateway6Matches = want.hostAddress6 === undefined || results.liveGateway6 === want.hostAddress6;
  return {
    running:
      results.hostLink === "1" &&
      results.hostUp === "1" &&
      results.hostMaster === want.hostBridge &&
      localMatches &&
      gatewayMatches &&
      local6Matches &&
      gateway6Matches,
    ...(want.localAddress6 === undefined
      ? {}
      : { localAddress6: local6Matches ? want.localAddress6 : cidr6 }),
    ...(want.hostAddress6 === undefined
      ? {}
      : { hostAddress6: gateway6Matches ? want.hostAddress6 : results.liveGateway6 || undefined }),
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

/** What a bridged container should show: its bridge, and the addresses (and gateways) it was given. */
interface BridgedWant {
  readonly hostBridge: string;
  readonly hostAddress?: string;
  readonly localAddress?: string;
  readonly hostAddress6?: string;
  readonly localAddress6?: string;
}

/** An IPv6 address as eth0 carries it: with the prefix given, else /128. */
function withPrefix6(address: string): string {
  return address.includes("/") ? address : `${address}/128`;
}

/**
 * A routed container's live ends against what it should have (`want`: the spec's, or a conf's addresses):
 * an address it should have and does not, or another one, means not running (a drift the next up repairs).
 */
function routedLive(results: Readonly<Record<string, string>>, want: PreviousAddresses): boolean {
  const pairs: [string | undefined, string | undefined][] = [
    [results.liveHostAddress, want.hostAddress],
    [results.liveLocalAddress, want.localAddress],
    [results.liveHostAddress6, want.hostAddress6],
    [results.liveLocalAddress6, want.localAddress6],
  ];
  return (
    !!results.liveHostAddress &&
    !!results.liveLocalAddress &&
    pairs.every(([live, wanted]) => wanted === undefined || live === wanted)
  );
}

/** The netns driver's report: namespace=1|0 plus report_live. */
function observeNetns(
  spec: Pick<ContainerSpec, "hostBridge" | "hostAddress" | "localAddress" | "hostAddress6" | "localAddress6">,
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
    running: results.namespace === "1" && results.hostLink === "1" && routedLive(results, spec),
    hostAddress: results.liveHostAddress || undefined,
    localAddress: results.liveLocalAddress || undefined,
    ...(results.liveHostAddress6 ? { hostAddress6: results.liveHostAddress6 } : {}),
    ...(results.liveLocalAddress6 ? { localAddress6: results.liveLocalAddress6 } : {}),
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
  // The conf's addresses as written (bridged: with their prefixes); IPv6 ones only when set.
  const conf: PreviousAddresses = {
    hostAddress: results.confHostAddress || undefined,
    localAddress: results.confLocalAddress || undefined,
    ...(results.confHostAddress6 ? { hostAddress6: results.confHostAddress6 } : {}),
    ...(results.confLocalAddress6 ? { localAddress6: results.confLocalAddress6 } : {}),
  };
  // Bridged (the conf's HOST_BRIDGE): running as its conf says, the conf's addresses as written (with prefix).
  if (results.confHostBridge) {
    const bridged = observeBridged(results, { hostBridge: results.confHostBridge, ...conf });
    return { ...common, ...conf, running: active && bridged.running, hostBridge: bridged.hostBridge };
  }
  // Running means as configured: active (or reloading a new configuration, which keeps it serving), with the
  // conf's addresses live on both ends (drift shows as not running).
  const routed: PreviousAddresses = {
    hostAddress: strip(conf.hostAddress),
    localAddress: strip(conf.localAddress),
    ...(conf.hostAddress6 ? { hostAddress6: strip(conf.hostAddress6) } : {}),
    ...(conf.localAddress6 ? { localAddress6: strip(conf.localAddress6) } : {}),
  };
  return { ...common, ...routed, running: active && results.hostLink === "1" && routedLive(results, routed) };
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
  want: Pick<
    ContainerSpec,
    "hostBridge" | "hostAddress" | "localAddress" | "hostAddress6" | "localAddress6"
  > = {},
): ObservedContainer {
  return driver === "netns" ? observeNetns(want, results) : observeNixos(results);
}
