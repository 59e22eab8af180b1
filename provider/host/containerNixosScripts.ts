// Host scripts of the `nixos` driver: the host's own `nixos-container` command creates, starts, reads and
// destroys the container; we pass both addresses (allocated and kept by us) and do the collision check it
// does not do. Every create, update and read script ends with the same report.
import { ContainerSpec } from "../core/containerSpec";
import * as shared from "./containerScripts";
import { EXIT, MARK } from "./protocol";
import * as shell from "./shell";

/** Reads CONTAINER_NAME. Defines `find_conf`: prints NAME's conf in whichever layout this host uses. */
const FIND_CONF = String.raw`find_conf() {
  for conf in "/etc/nixos-containers/$CONTAINER_NAME.conf" "/etc/containers/$CONTAINER_NAME.conf"; do
    if [ -f "$conf" ] && grep -q '^PRIVATE_NETWORK=\|^HOST_ADDRESS=' "$conf"; then echo "$conf"; return 0; fi
  done
  return 0
}
`;

/** CONFIG, CONFIG_FILE, FLAKE and AUTO_START of the spec. */
function configVariables(spec: ContainerSpec): string {
  return shell.assignments({
    CONFIG: spec.config ?? "",
    CONFIG_FILE: spec.configFile ?? "",
    FLAKE: spec.flake ?? "",
    AUTO_START: spec.autoStart,
  });
}

/**
 * Reads CONFIG_FILE. Sets taken=1 (printing why) when the configFile does not exist: nixos-container would
 * build the container without it (`imports = [ ];`) and succeed.
 */
const CONFIG_FILE_EXISTS = String.raw`if [ -n "$CONFIG_FILE" ] && [ ! -f "$CONFIG_FILE" ]; then
  echo "${MARK.clash} configFile $CONFIG_FILE does not exist on the host (nixos-container would build the container without it)" >&2; taken=1
fi
`;

/**
 * Sets taken=1 (printing why) for an empty conf of any container: nixos-container's create reads every conf
 * with `read_file(...) or die` and so dies on one that is empty (podman's files in /etc/containers excepted).
 */
const NO_EMPTY_CONF = String.raw`for conf in /etc/nixos-containers/*.conf /etc/containers/*.conf; do
  case "$conf" in /etc/containers/libpod.conf | /etc/containers/containers.conf | /etc/containers/registries.conf) continue ;; esac
  if [ -f "$conf" ] && [ ! -s "$conf" ]; then
    echo "${MARK.clash} $conf is empty, and nixos-container create fails on any empty conf: remove it or give it its container's settings" >&2; taken=1
  fi
done
`;

/**
 * Reads CONTAINER_NAME (and what find_conf reads). Refuses a declarative container: its conf is a link into the
 * Nix store that NixOS manages (`containers.<name>` in the host's configuration). Rewriting it would replace the
 * link by a file of ours (and let a later destroy wipe the container's state), and a build of ours would make a
 * profile its unit ignores.
 */
const NOT_DECLARATIVE = String.raw`declarative_conf=$(find_conf)
if [ -n "$declarative_conf" ] && [ -L "$declarative_conf" ]; then
  echo "${MARK.clash} container $CONTAINER_NAME is declarative ($declarative_conf links to $(readlink "$declarative_conf")): change it with containers.$CONTAINER_NAME in the host's NixOS configuration, or give this resource another name" >&2
  exit ${EXIT.refused}
fi
`;

/** Where a config too large for one command argument is kept, as a module file of ours. */
const LARGE_CONFIGS = "/var/lib/pulumi-nixos-containers/configs";

/**
 * Reads and may set CONFIG, CONFIG_FILE; reads CONTAINER_NAME. One command argument holds at most 128 KiB
 * (Linux's MAX_ARG_STRLEN), so a larger config cannot go to `nixos-container --config`: it is written as a
 * module of ours (the same text, in the scope --config gives it) and passed with --config-file, which
 * nixos-container imports; delete removes it. (`printf` is a shell builtin: no argument limit.)
 */
const LARGE_CONFIG = String.raw`if [ -n "$CONFIG" ] && [ "$(printf %s "$CONFIG" | wc -c)" -gt 100000 ]; then
  mkdir -p ${LARGE_CONFIGS}
  chmod 0700 ${LARGE_CONFIGS}
  { echo '{ config, lib, pkgs, ... }: with lib; {'; printf '%s\n' "$CONFIG"; echo '}'; } > "${LARGE_CONFIGS}/$CONTAINER_NAME.nix"
  CONFIG_FILE="${LARGE_CONFIGS}/$CONTAINER_NAME.nix"
  CONFIG=
fi
`;

/**
 * Reads CONTAINER_NAME, HOST_ADDRESS, LOCAL_ADDRESS, HOST_BRIDGE, CONFIG, CONFIG_FILE, FLAKE, AUTO_START. Sets
 * the positional parameters to `nixos-container create`'s arguments, so each value stays one argument. Both
 * addresses always go, empty ones too: nixos-container allocates 10.233.N.1/.2 unless `--host-address` is
 * defined (Getopt takes '' as a value), and a bridged container without addresses must keep its conf empty.
 */
const CREATE_ARGUMENTS = String.raw`set -- create "$CONTAINER_NAME" --host-address "$HOST_ADDRESS" --local-address "$LOCAL_ADDRESS"
[ -n "$HOST_BRIDGE" ] && set -- "$@" --bridge "$HOST_BRIDGE"
[ -n "$CONFIG" ] && set -- "$@" --config "$CONFIG"
[ -n "$CONFIG_FILE" ] && set -- "$@" --config-file "$CONFIG_FILE"
[ -n "$FLAKE" ] && set -- "$@" --flake "$FLAKE"
[ "$AUTO_START" = 1 ] && set -- "$@" --auto-start
`;

/**
 * Reads HOST_ADDRESS6, LOCAL_ADDRESS6. Defines `set_conf_ipv6 CONF`: writes the conf's HOST_ADDRESS6 and
 * LOCAL_ADDRESS6, which the container@ unit reads (its postStart and container-init set them, as for a
 * declarative container's hostAddress6/localAddress6) and which `nixos-container create` has no option for. A
 * key is added only with a value; one that is there is emptied when the spec drops IPv6.
 */
const CONF_IPV6 = String.raw`set_conf_ipv6() {
  set_conf_key "$1" HOST_ADDRESS6 "$HOST_ADDRESS6"
  set_conf_key "$1" LOCAL_ADDRESS6 "$LOCAL_ADDRESS6"
}
set_conf_key() {
  if grep -q "^$2=" "$1"; then sed -i "s|^$2=.*|$2=$3|" "$1"
  elif [ -n "$3" ]; then echo "$2=$3" >> "$1"; fi
}
conf_ipv6_differs() {
  [ "$(sed -n 's/^HOST_ADDRESS6=//p' "$1")" != "$HOST_ADDRESS6" ] || [ "$(sed -n 's/^LOCAL_ADDRESS6=//p' "$1")" != "$LOCAL_ADDRESS6" ]
}
`;

/**
 * Reads FLAKE. Sets taken=1 (printing why) when a build without a flake could not find `<nixpkgs/nixos>`
 * (nixos-container builds a config with `nix-env -f '<nixpkgs/nixos>'`): on hosts without channels and
 * without nix.nixPath it fails only after the conf is written.
 */
const NIXPKGS_RESOLVES = String.raw`if [ -z "$FLAKE" ] && command -v nix-instantiate >/dev/null 2>&1 && ! nix-instantiate --find-file nixpkgs/nixos >/dev/null 2>&1; then
  echo "${MARK.clash} <nixpkgs/nixos> does not resolve on the host (NIX_PATH of the SSH session: \${NIX_PATH:-unset}), and nixos-container builds a config with it: give the host a nixpkgs channel or nix.nixPath, or use flake" >&2; taken=1
fi
`;

/**
 * Reads CONTAINER_NAME. Refuses (taken=1) a name whose marker holds another resource's token: its build may be
 * under way without a conf yet.
 */
const NAME_NOT_CLAIMED = String.raw`if [ -n "$(marker_owner)" ] && [ "$(marker_owner)" != "$OWNER" ]; then
  echo "${MARK.clash} name $CONTAINER_NAME: $(not_ours)" >&2; taken=1
fi
`;

/** Where the addresses of a container being built are recorded until its conf holds them (see ADDRESSES). */
const BUILD_RECORD = `${shell.ADDRESS_RECORDS}/nixos-$CONTAINER_NAME`;

/**
 * Reads CONTAINER_NAME and what `claimed_addresses` reads. Records the addresses while nixos-container has not
 * written them into a conf yet: other operations, running while we build, see them taken.
 */
const RECORD_ADDRESSES = String.raw`mkdir -p ${shell.ADDRESS_RECORDS}
: > "${BUILD_RECORD}"
for address in $(claimed_addresses); do printf '%s\tnixos container "%s" (being built)\n' "$address" "$CONTAINER_NAME" >> "${BUILD_RECORD}"; done
`;

/**
 * Defines SCRATCH, a private directory the build runs in and which is removed at the end: `nix build -o .tmp`
 * (a flake build without --system-path) leaves a GC root in the working directory. Defines `run_logged
 * COMMAND...`: runs it with its output in a log there, printing the log's tail on failure. Nothing a build
 * writes goes to the SSH channel, so a build outlives a connection that ends (or an operation that times out):
 * it finishes under the container's lock, and the next operation on the container waits for it.
 */
const SCRATCH = String.raw`SCRATCH=$(private_tmp -d)
cd "$SCRATCH"
run_logged() {
  "$@" > "$SCRATCH/build.log" 2>&1 && return 0
  logged_status=$?
  tail -n 40 "$SCRATCH/build.log" >&2
  return "$logged_status"
}
`;

/** Where a container's boot-time wants-link is: a persistent unit directory that NixOS leaves writable. */
const AUTO_START_LINK = "/etc/systemd/system.control/machines.target.wants/container@$CONTAINER_NAME.service";

/**
 * Reads CONTAINER_NAME, AUTO_START. Makes `autoStart` real: NixOS starts at boot only the containers that
 * machines.target wants (nothing reads an imperative conf's AUTO_START), so a wants-link of ours for
 * container@NAME.service goes into /etc/systemd/system.control (in systemd's unit search path, kept across
 * reboots), or is removed.
 */
const SET_AUTO_START = String.raw`auto_start_link="${AUTO_START_LINK}"
if [ "$AUTO_START" = 1 ]; then
  mkdir -p "$(dirname "$auto_start_link")"
  ln -sfn /etc/systemd/system/container@.service "$auto_start_link"
elif [ -L "$auto_start_link" ]; then
  rm -f "$auto_start_link"
fi
`;

/**
 * Reads CONTAINER_NAME. Defines, for the container's unit container@NAME.service:
 * - `unit_state`: prints its ActiveState (`active`; `activating`, `reloading`, `deactivating` while busy);
 * - `stop_unit`: stops it and waits (a start under way, or a restart after a failed one, is cancelled;
 *   `systemctl stop` returns when the container is down);
 * - `reset_failed`: forgets a failed state (systemd keeps failed units listed);
 * - `destroy_container`: stop_unit, then `nixos-container destroy` (which by itself terminates only an
 *   `active` unit: a booting, reloading or stopping one would keep running), then reset_failed.
 */
const UNIT = String.raw`unit_state() { systemctl show -p ActiveState --value "container@$CONTAINER_NAME.service" 2>/dev/null || true; }
stop_unit() { systemctl stop "container@$CONTAINER_NAME.service" || true; }
reset_failed() { systemctl reset-failed "container@$CONTAINER_NAME.service" >/dev/null 2>&1 || true; }
destroy_container() {
  stop_unit
  nixos-container destroy "$CONTAINER_NAME"
  reset_failed
}
`;

/**
 * Reads CONTAINER_NAME, HOST_INTERFACE, OWNER_MARKER, MADE, SCRATCH; uses UNIT. Installs an EXIT trap that removes the
 * scratch directory and destroys what this run created: armed before `nixos-container create`, whose failed
 * builds leave the conf and profile behind.
 */
const ROLLBACK = String.raw`MADE=0
SCRATCH=
rollback() {
  exit_code=$?
  cd /
  [ -z "$SCRATCH" ] || rm -rf "$SCRATCH"
  if [ "$exit_code" -ne 0 ] && [ "$MADE" = 1 ]; then
    destroy_container >/dev/null 2>&1 || true
    ip link del "$HOST_INTERFACE" 2>/dev/null || true
    rm -f "$OWNER_MARKER" "${BUILD_RECORD}" "${AUTO_START_LINK}"
    echo "${MARK.rolledBack}" >&2
  fi
  exit "$exit_code"
}
trap rollback EXIT
`;

/** Removes the scratch directory (SCRATCH) when the script ends, keeping its exit code. */
const REMOVE_SCRATCH_AT_EXIT = String.raw`SCRATCH=
remove_scratch() {
  exit_code=$?
  cd /
  [ -z "$SCRATCH" ] || rm -rf "$SCRATCH"
  exit "$exit_code"
}
trap remove_scratch EXIT
`;

/**
 * Marks the container as ours with its addresses and whether its system was built (a create cut off during
 * its build is finished by the next update, which builds when `built` is not 1).
 */
function claimBuilt(built: boolean): string {
  return String.raw`MARKER_EXTRA="hostAddress=$HOST_ADDRESS
localAddress=$LOCAL_ADDRESS
built=${built ? 1 : 0}"
claim`;
}

/**
 * Reads CONTAINER_NAME (and what find_conf and report_live read); uses UNIT. Prints the driver's observation: the conf,
 * its addresses and bridge, the unit's ActiveState, the boot-time wants-link and the live veth.
 */
const REPORT = String.raw`conf=$(find_conf)
${shell.result("conf", "$conf")}
if [ -n "$conf" ]; then
  sed -n 's/^HOST_ADDRESS=\(.*\)$/PNC-RESULT confHostAddress=\1/p; s/^LOCAL_ADDRESS=\(.*\)$/PNC-RESULT confLocalAddress=\1/p; s/^HOST_ADDRESS6=\(.*\)$/PNC-RESULT confHostAddress6=\1/p; s/^LOCAL_ADDRESS6=\(.*\)$/PNC-RESULT confLocalAddress6=\1/p; s/^HOST_BRIDGE=\(.*\)$/PNC-RESULT confHostBridge=\1/p' "$conf"
  ${shell.result("unitState", "$(unit_state)")}
  if [ -L "${AUTO_START_LINK}" ]; then ${shell.result("autoStartLink", "1")}; else ${shell.result("autoStartLink", "0")}; fi
  report_live
fi`;

/** What create and update start with: the spec's variables, the container's lock, the host locks, the functions. */
function header(
  spec: ContainerSpec,
  own: boolean,
  owner: shell.Ownership,
  addresses: shared.PreviousAddresses,
): string {
  return shell.objectScript(
    ["ip", "flock", "nixos-container", "systemctl"],
    shell.script(
      shared.containerVariables(spec, own, owner, addresses),
      configVariables(spec),
      lockAndRecord(spec, own),
    ),
    shell.ADDRESSES,
    shared.CLAIMED_ADDRESSES,
    FIND_CONF,
    CONF_IPV6,
    UNIT,
    shared.REPORT_LIVE,
  );
}

/**
 * OBJECT_LOCK of a container (every nixos operation on it holds that lock throughout, builds included), and
 * for its own operations OWN_RECORD: the address record of its build is its own, not a clash.
 */
function lockAndRecord(spec: Pick<ContainerSpec, "name">, own: boolean): string {
  return shell.assignments({
    OBJECT_LOCK: `container-${spec.name}`,
    ...(own ? { OWN_RECORD: `nixos-${spec.name}` } : {}),
  });
}

/**
 * Checks name and addresses and claims them under the host locks; then, holding only the container's lock,
 * builds (`nixos-container create`) and starts it; rolls back on failure.
 */
export function nixosCreateScript(spec: ContainerSpec, owner: shell.Ownership): string {
  return shell.script(
    header(spec, false, owner, spec),
    "taken=0",
    `if [ -n "$(find_conf)" ]; then echo "${MARK.clash} name $CONTAINER_NAME: a nixos container of that name exists ($(find_conf))" >&2; taken=1; fi`,
    `if [ -e "/run/netns/$CONTAINER_NAME" ]; then echo "${MARK.clash} name $CONTAINER_NAME: a network namespace /run/netns/$CONTAINER_NAME already exists" >&2; taken=1; fi`,
    `if ip link show dev "$HOST_INTERFACE" >/dev/null 2>&1; then echo "${MARK.clash} interface $HOST_INTERFACE already exists on the host" >&2; taken=1; fi`,
    NAME_NOT_CLAIMED,
    shared.BRIDGE_EXISTS,
    "host_snapshot",
    // A bridged container's addresses are the LAN's (or DHCP's): nothing to allocate.
    'if [ -z "$HOST_ADDRESS" ] && [ -z "$HOST_BRIDGE" ]; then block=$(allocate_block); HOST_ADDRESS="10.233.$block.1"; LOCAL_ADDRESS="10.233.$block.2"; fi',
    "claimed_free || taken=1",
    CONFIG_FILE_EXISTS,
    NO_EMPTY_CONF,
    NIXPKGS_RESOLVES,
    shell.REFUSE_IF_TAKEN,
    ROLLBACK,
    claimBuilt(false),
    RECORD_ADDRESSES,
    "MADE=1",
    // Name and addresses are ours now: the build (minutes) runs without the host locks.
    shell.RELEASE_HOST_LOCKS,
    SCRATCH,
    LARGE_CONFIG,
    CREATE_ARGUMENTS,
    'run_logged nixos-container "$@"',
    'set_conf_ipv6 "$(find_conf)"',
    claimBuilt(true),
    `rm -f "${BUILD_RECORD}"`,
    SET_AUTO_START,
    'nixos-container start "$CONTAINER_NAME" >&2',
    // Made and running: a report that cannot be written any more (the connection ended) must not undo it.
    "MADE=0",
    REPORT,
  );
}

/**
 * Brings an existing container to the spec. Under the host locks: checks, and the conf's addresses and
 * AUTO_START. Then, holding only the container's lock: stop when the addresses change (or drifted), build
 * (`nixos-container update`, which reloads a running container) only when config, configFile or flake changed
 * or the last build never finished, and start. Creates the conf when it has none (adopting by hand).
 */
export function nixosUpdateScript(
  spec: ContainerSpec,
  previous: shared.PreviousAddresses,
  owner: shell.Ownership,
  rebuild: boolean,
): string {
  return shell.script(
    header(spec, true, owner, shared.updateAddresses(spec, previous)),
    shell.assignments({ REBUILD: rebuild }),
    NOT_DECLARATIVE,
    "require_ours",
    // A create cut off during its build: build again (Nix reuses what the first one finished).
    `if [ -f "$OWNER_MARKER" ] && grep -q '^built=0$' "$OWNER_MARKER"; then REBUILD=1; fi`,
    "taken=0",
    CONFIG_FILE_EXISTS,
    shared.BRIDGE_EXISTS,
    'if [ "$REBUILD" = 1 ] || [ -z "$(find_conf)" ]; then',
    NIXPKGS_RESOLVES,
    "fi",
    shell.REFUSE_IF_TAKEN,
    shared.UPDATE_ADDRESSES_FREE,
    REMOVE_SCRATCH_AT_EXIT,
    "conf=$(find_conf)",
    "restart=0",
    'if [ -n "$conf" ]; then',
    // The conf is read only at start: changed addresses (or live ones that drifted) need a stop first.
    `  live_address=$(ip -o -4 addr show dev "$HOST_INTERFACE" 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')`,
    `  if ! grep -qx "HOST_ADDRESS=$HOST_ADDRESS" "$conf" || ! grep -qx "LOCAL_ADDRESS=$LOCAL_ADDRESS" "$conf" || [ "$(sed -n 's/^HOST_BRIDGE=//p' "$conf")" != "$HOST_BRIDGE" ] || conf_ipv6_differs "$conf"; then restart=1; fi`,
    // Live IPv6 drift of a routed host end.
    `  if [ -z "$HOST_BRIDGE" ] && [ -n "$HOST_ADDRESS6" ] && [ "$(ip -o -6 addr show dev "$HOST_INTERFACE" scope global 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')" != "$HOST_ADDRESS6" ]; then restart=1; fi`,
    // Live drift: a routed host end lost its address, a bridged one its bridge.
    '  if [ -n "$HOST_BRIDGE" ]; then [ "$(host_master)" = "$HOST_BRIDGE" ] || restart=1; elif [ "$live_address" != "$HOST_ADDRESS" ]; then restart=1; fi',
    String.raw`  sed -i -e "s|^HOST_ADDRESS=.*|HOST_ADDRESS=$HOST_ADDRESS|" -e "s|^LOCAL_ADDRESS=.*|LOCAL_ADDRESS=$LOCAL_ADDRESS|" -e "s|^HOST_BRIDGE=.*|HOST_BRIDGE=$HOST_BRIDGE|" -e "s|^AUTO_START=.*|AUTO_START=$AUTO_START|" "$conf"`,
    `  grep -q '^HOST_BRIDGE=' "$conf" || [ -z "$HOST_BRIDGE" ] || echo "HOST_BRIDGE=$HOST_BRIDGE" >> "$conf"`,
    '  set_conf_ipv6 "$conf"',
    "fi",
    shell.RELEASE_HOST_LOCKS,
    SCRATCH,
    LARGE_CONFIG,
    "state=$(unit_state)",
    'if [ "$restart" = 1 ] && [ "$state" != inactive ] && [ "$state" != failed ]; then stop_unit >&2; fi',
    'if [ -z "$conf" ]; then',
    CREATE_ARGUMENTS,
    '  run_logged nixos-container "$@"',
    "  conf=$(find_conf)",
    '  set_conf_ipv6 "$conf"',
    "  REBUILD=0",
    "fi",
    // `nixos-container update --config` writes etc/nixos/configuration.nix without making the directory, which
    // only a create without --flake made: a container made from a flake could never switch to a config.
    'case "$conf" in /etc/containers/*) container_root="/var/lib/containers/$CONTAINER_NAME" ;; *) container_root="/var/lib/nixos-containers/$CONTAINER_NAME" ;; esac',
    'if [ -n "$CONFIG$CONFIG_FILE" ]; then mkdir -p "$container_root/etc/nixos"; fi',
    // A build only when config, configFile or flake changed (or its last build never finished).
    'if [ "$REBUILD" = 1 ] && [ -n "$CONFIG$CONFIG_FILE$FLAKE" ]; then',
    '  set -- update "$CONTAINER_NAME"',
    '  [ -n "$CONFIG" ] && set -- "$@" --config "$CONFIG"',
    '  [ -n "$CONFIG_FILE" ] && set -- "$@" --config-file "$CONFIG_FILE"',
    '  [ -n "$FLAKE" ] && set -- "$@" --flake "$FLAKE"',
    '  run_logged nixos-container "$@"',
    "fi",
    claimBuilt(true),
    `rm -f "${BUILD_RECORD}"`,
    SET_AUTO_START,
    "state=$(unit_state)",
    'if [ "$state" = failed ]; then reset_failed; fi',
    'if [ "$state" != active ] && [ "$state" != reloading ]; then nixos-container start "$CONTAINER_NAME" >&2; fi',
    REPORT,
  );
}

/** Reports the conf, unit state, wants-link and live veth of the container; changes nothing. */
export function nixosReadScript(
  spec: Pick<ContainerSpec, "name" | "hostInterface" | "hostBridge">,
  owner: shell.Ownership,
): string {
  const variables = shared.containerVariables(spec, true, owner);
  return shell.reportingScript(variables, FIND_CONF, UNIT, shared.REPORT_LIVE, REPORT, "report_owner");
}

/**
 * Stops (and waits for) the container, then destroys it and its stale veth if it is ours (else leaves it,
 * saying why); succeeds when gone.
 */
export function nixosDeleteScript(
  spec: Pick<ContainerSpec, "name" | "hostInterface" | "hostBridge">,
  owner: shell.Ownership,
): string {
  return shell.objectScript(
    ["ip", "flock"],
    shell.script(shared.containerVariables(spec, true, owner), lockAndRecord(spec, true)),
    FIND_CONF,
    UNIT,
    'if [ -n "$(find_conf)" ] && ! ours; then',
    `  ${shell.result("leftBehind", "nixos container $CONTAINER_NAME ($(find_conf)): $(not_ours)")}`,
    "  exit 0",
    "fi",
    shell.RELEASE_HOST_LOCKS,
    // Without the command a conf must not be left behind as if the delete had worked.
    'if [ -n "$(find_conf)" ]; then',
    "  need nixos-container systemctl",
    "  destroy_container >&2",
    "fi",
    // Stale ve-* links outlive containers (nixpkgs #16330) and block address reuse: remove ours.
    'ip link del "$HOST_INTERFACE" 2>/dev/null || true',
    `rm -f "$OWNER_MARKER" "${LARGE_CONFIGS}/$CONTAINER_NAME.nix" "${BUILD_RECORD}"`,
    `if [ -L "${AUTO_START_LINK}" ]; then rm -f "${AUTO_START_LINK}"; fi`,
  );
}
