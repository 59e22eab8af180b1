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

/**
 * `nixos-container create` takes /run/lock/nixos-container itself, so we hold it only while checking and
 * release it before calling create; our own lock stays held throughout, so our operations never interleave.
 */
const RELEASE_NIXOS_LOCK = "exec 9>&-";

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
 * Reads CONTAINER_NAME, HOST_ADDRESS, LOCAL_ADDRESS, CONFIG, CONFIG_FILE, FLAKE, AUTO_START. Sets the
 * positional parameters to `nixos-container create`'s arguments, so each value stays one argument.
 */
const CREATE_ARGUMENTS = String.raw`set -- create "$CONTAINER_NAME" --host-address "$HOST_ADDRESS" --local-address "$LOCAL_ADDRESS"
[ -n "$CONFIG" ] && set -- "$@" --config "$CONFIG"
[ -n "$CONFIG_FILE" ] && set -- "$@" --config-file "$CONFIG_FILE"
[ -n "$FLAKE" ] && set -- "$@" --flake "$FLAKE"
[ "$AUTO_START" = 1 ] && set -- "$@" --auto-start
`;

/**
 * Reads CONTAINER_NAME, HOST_INTERFACE, OWNER_MARKER, MADE. Installs an EXIT trap that destroys what this
 * run created: armed before `nixos-container create`, whose failed builds leave the conf and profile behind.
 */
const ROLLBACK = String.raw`MADE=0
rollback() {
  exit_code=$?
  if [ "$exit_code" -ne 0 ] && [ "$MADE" = 1 ]; then
    nixos-container destroy "$CONTAINER_NAME" >/dev/null 2>&1 || true
    ip link del "$HOST_INTERFACE" 2>/dev/null || true
    rm -f "$OWNER_MARKER"
    echo "${MARK.rolledBack}" >&2
  fi
  exit "$exit_code"
}
trap rollback EXIT
`;

/**
 * Reads CONTAINER_NAME (and what find_conf and report_live read). Prints the driver's observation: the conf,
 * its addresses and AUTO_START, nixos-container's status and the live veth.
 */
const REPORT = String.raw`conf=$(find_conf)
${shell.result("conf", "$conf")}
if [ -n "$conf" ]; then
  sed -n 's/^HOST_ADDRESS=\(.*\)$/PNC-RESULT confHostAddress=\1/p; s/^LOCAL_ADDRESS=\(.*\)$/PNC-RESULT confLocalAddress=\1/p; s/^AUTO_START=\(.*\)$/PNC-RESULT confAutoStart=\1/p' "$conf"
  ${shell.result("status", '$(nixos-container status "$CONTAINER_NAME" 2>/dev/null || true)')}
  report_live
fi`;

/** What create and update start with: the spec's variables, the host locks, and the functions they use. */
function header(
  spec: ContainerSpec,
  own: boolean,
  owner: shell.Ownership,
  addresses: shared.PreviousAddresses,
): string {
  return shell.changingScript(
    ["ip", "flock", "nixos-container"],
    shared.containerVariables(spec, own, owner, addresses),
    configVariables(spec),
    shell.ADDRESSES,
    FIND_CONF,
    shared.REPORT_LIVE,
  );
}

/** Checks name and addresses (under the host locks), then creates and starts; rolls back on failure. */
export function nixosCreateScript(spec: ContainerSpec, owner: shell.Ownership): string {
  return shell.script(
    header(spec, false, owner, spec),
    "taken=0",
    `if [ -n "$(find_conf)" ]; then echo "${MARK.clash} name $CONTAINER_NAME: a nixos container of that name exists ($(find_conf))" >&2; taken=1; fi`,
    `if [ -e "/run/netns/$CONTAINER_NAME" ]; then echo "${MARK.clash} name $CONTAINER_NAME: a network namespace /run/netns/$CONTAINER_NAME already exists" >&2; taken=1; fi`,
    `if ip link show dev "$HOST_INTERFACE" >/dev/null 2>&1; then echo "${MARK.clash} interface $HOST_INTERFACE already exists on the host" >&2; taken=1; fi`,
    "USED_ADDRESS_LIST=$(used_addresses)",
    'if [ -z "$HOST_ADDRESS" ]; then block=$(allocate_block); HOST_ADDRESS="10.233.$block.1"; LOCAL_ADDRESS="10.233.$block.2"; fi',
    'clash_check "$HOST_ADDRESS" "$LOCAL_ADDRESS" || taken=1',
    CONFIG_FILE_EXISTS,
    NO_EMPTY_CONF,
    shell.REFUSE_IF_TAKEN,
    RELEASE_NIXOS_LOCK,
    ROLLBACK,
    shared.CLAIM,
    "MADE=1",
    LARGE_CONFIG,
    CREATE_ARGUMENTS,
    'nixos-container "$@" >&2',
    'nixos-container start "$CONTAINER_NAME" >&2',
    REPORT,
  );
}

/**
 * Brings an existing container to the spec: creates its conf when it has none (adopting by hand), rewrites
 * addresses and AUTO_START, runs `nixos-container update` for a config, and restarts when the conf changed.
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
    "taken=0",
    CONFIG_FILE_EXISTS,
    shell.REFUSE_IF_TAKEN,
    shared.UPDATE_ADDRESSES_FREE,
    RELEASE_NIXOS_LOCK,
    LARGE_CONFIG,
    "conf=$(find_conf)",
    'if [ -z "$conf" ]; then',
    CREATE_ARGUMENTS,
    '  nixos-container "$@" >&2',
    "  conf=$(find_conf)",
    "fi",
    // `nixos-container update --config` writes etc/nixos/configuration.nix without making the directory, which
    // only a create without --flake made: a container made from a flake could never switch to a config.
    'case "$conf" in /etc/containers/*) container_root="/var/lib/containers/$CONTAINER_NAME" ;; *) container_root="/var/lib/nixos-containers/$CONTAINER_NAME" ;; esac',
    'if [ -n "$CONFIG$CONFIG_FILE" ] && [ -d "$container_root" ]; then mkdir -p "$container_root/etc/nixos"; fi',
    // The conf is read only at start: rewrite it, then restart if anything the unit reads changed.
    // What the unit reads at start, less AUTO_START (which only matters at boot: no restart for it).
    `before=$(grep -v '^AUTO_START=' "$conf" || true)`,
    String.raw`sed -i -e "s|^HOST_ADDRESS=.*|HOST_ADDRESS=$HOST_ADDRESS|" -e "s|^LOCAL_ADDRESS=.*|LOCAL_ADDRESS=$LOCAL_ADDRESS|" -e "s|^AUTO_START=.*|AUTO_START=$AUTO_START|" "$conf"`,
    // A build only when config, configFile or flake changed (or nothing is known of the last one).
    'if [ "$REBUILD" = 1 ] && [ -n "$CONFIG$CONFIG_FILE$FLAKE" ]; then',
    '  set -- update "$CONTAINER_NAME"',
    '  [ -n "$CONFIG" ] && set -- "$@" --config "$CONFIG"',
    '  [ -n "$CONFIG_FILE" ] && set -- "$@" --config-file "$CONFIG_FILE"',
    '  [ -n "$FLAKE" ] && set -- "$@" --flake "$FLAKE"',
    '  nixos-container "$@" >&2',
    "fi",
    'state=$(nixos-container status "$CONTAINER_NAME" 2>/dev/null || true)',
    // A changed conf is read only at start; live addresses that drifted from it come back with a restart too.
    `live_address=$(ip -o -4 addr show dev "$HOST_INTERFACE" 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')`,
    `after=$(grep -v '^AUTO_START=' "$conf" || true)`,
    'if { [ "$before" != "$after" ] || [ "$live_address" != "$HOST_ADDRESS" ]; } && [ "$state" = up ]; then nixos-container stop "$CONTAINER_NAME" >&2; state=down; fi',
    'if [ "$state" != up ]; then nixos-container start "$CONTAINER_NAME" >&2; fi',
    shared.CLAIM,
    REPORT,
  );
}

/** Reports the conf, status and live veth of the container; changes nothing. */
export function nixosReadScript(
  spec: Pick<ContainerSpec, "name" | "hostInterface">,
  owner: shell.Ownership,
): string {
  const variables = shared.containerVariables(spec, true, owner);
  return shell.reportingScript(variables, FIND_CONF, shared.REPORT_LIVE, REPORT, "report_owner");
}

/** Destroys the container and its stale veth if it is ours (else leaves it, saying why); succeeds when gone. */
export function nixosDeleteScript(
  spec: Pick<ContainerSpec, "name" | "hostInterface">,
  owner: shell.Ownership,
): string {
  return shell.changingScript(
    ["ip", "flock"],
    shared.containerVariables(spec, true, owner),
    FIND_CONF,
    'if [ -n "$(find_conf)" ] && ! ours; then',
    `  ${shell.result("leftBehind", "nixos container $CONTAINER_NAME ($(find_conf)): $(not_ours)")}`,
    "  exit 0",
    "fi",
    RELEASE_NIXOS_LOCK,
    // Without the command a conf must not be left behind as if the delete had worked.
    'if [ -n "$(find_conf)" ]; then need nixos-container; nixos-container destroy "$CONTAINER_NAME" >&2; fi',
    // Stale ve-* links outlive containers (nixpkgs #16330) and block address reuse: remove ours.
    'ip link del "$HOST_INTERFACE" 2>/dev/null || true',
    `rm -f "$OWNER_MARKER" "${LARGE_CONFIGS}/$CONTAINER_NAME.nix"`,
  );
}
