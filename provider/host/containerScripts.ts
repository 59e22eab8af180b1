// What the two container drivers' host scripts share: the script variables of one container, how to reach
// its network namespace, and the report of its live veth that create, update and read all end with.
import { ContainerSpec } from "../core/containerSpec";
import { ContainerDriverName } from "../core/types";
import { EXIT, MARK } from "./protocol";
import { Ownership, assignments, ownerVariables, result, script } from "./shell";

/** What is really on the host for one container, as its driver's scripts report it. */
export interface ObservedContainer {
  readonly exists: boolean;
  readonly running: boolean;
  readonly hostAddress?: string;
  readonly localAddress?: string;
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
 * One container's script variables: CONTAINER_NAME, HOST_INTERFACE, HOST_ADDRESS, LOCAL_ADDRESS, and
 * OWN_CONTAINER / OWN_HOST_INTERFACE (the resource itself, left out of the address scan) when `own`.
 */
export function containerVariables(
  spec: Pick<ContainerSpec, "name" | "hostInterface">,
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
      OWN_CONTAINER: own ? spec.name : "",
      OWN_HOST_INTERFACE: own ? spec.hostInterface : "",
      OWN_RECORD: "",
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
 * Reads CONTAINER_NAME, HOST_ADDRESS, LOCAL_ADDRESS (what an update keeps or sets) and what `used_addresses`
 * reads. Refuses an update that would leave the container without addresses (a cut-off create that never
 * learned the host's choice), or move it onto an address someone else holds.
 */
export const UPDATE_ADDRESSES_FREE = String.raw`if [ -z "$HOST_ADDRESS" ] || [ -z "$LOCAL_ADDRESS" ]; then
  echo "${MARK.clash} container $CONTAINER_NAME has no addresses to keep: set hostAddress and localAddress" >&2
  exit ${EXIT.refused}
fi
USED_ADDRESS_LIST=$(used_addresses)
clash_check "$HOST_ADDRESS" "$LOCAL_ADDRESS" || exit ${EXIT.refused}
`;

/** The addresses an update works with: the spec's, or else the ones kept from before. */
export function updateAddresses(
  spec: Pick<ContainerSpec, "hostAddress" | "localAddress">,
  previous: PreviousAddresses,
): PreviousAddresses {
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
 * Reads HOST_INTERFACE and CONTAINER_NAME. Defines `in_container_ip` (see IN_CONTAINER) and `report_live`:
 * prints whether the host end exists (hostLink=1|0) and the first IPv4 address on each end
 * (liveHostAddress, liveLocalAddress).
 */
export const REPORT_LIVE = String.raw`${IN_CONTAINER}report_live() {
  if ip link show dev "$HOST_INTERFACE" >/dev/null 2>&1; then
    ${result("hostLink", "1")}
    ${result("liveHostAddress", `$(ip -o -4 addr show dev "$HOST_INTERFACE" | awk '{ split($4, a, "/"); print a[1]; exit }')`)}
  else
    ${result("hostLink", "0")}
  fi
  live_local=$( (in_container_ip -o -4 addr show dev eth0 2>/dev/null || true) | awk '{ split($4, a, "/"); print a[1]; exit }')
  ${result("liveLocalAddress", "$live_local")}
}
`;

/** The netns driver's report: namespace=1|0 plus report_live. */
function observeNetns(results: Readonly<Record<string, string>>): ObservedContainer {
  const exists = results.namespace === "1" || results.hostLink === "1";
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
  // Running means as configured: active (or reloading a new configuration, which keeps it serving), with the
  // conf's addresses live on both ends (drift shows as not running).
  const live =
    results.liveHostAddress === strip(results.confHostAddress) &&
    results.liveLocalAddress === strip(results.confLocalAddress);
  const unitState = results.unitState || "inactive";
  return {
    ...recorded(results),
    exists: true,
    running: (unitState === "active" || unitState === "reloading") && results.hostLink === "1" && live,
    unitState,
    hostAddress: strip(results.confHostAddress),
    localAddress: strip(results.confLocalAddress),
    confPath: results.conf,
    autoStart: results.autoStartLink === "1",
  };
}

/** The addresses in our marker, as `report_owner` prints them. */
function recorded(results: Readonly<Record<string, string>>): Partial<ObservedContainer> {
  return {
    ...(results.marker_hostAddress ? { recordedHostAddress: results.marker_hostAddress } : {}),
    ...(results.marker_localAddress ? { recordedLocalAddress: results.marker_localAddress } : {}),
  };
}

/** One parser per driver, for the report every create, update and read script of that driver ends with. */
export function observeContainer(
  driver: ContainerDriverName,
  results: Readonly<Record<string, string>>,
): ObservedContainer {
  return driver === "netns" ? observeNetns(results) : observeNixos(results);
}
