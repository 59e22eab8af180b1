// The `nixos` driver: the host's own `nixos-container` command creates, starts, reads and destroys the
// container; we pass both addresses (allocated and kept by us) and do the collision check it does not do.
import { ContainerDriver, ContainerSpec, IN_CONTAINER, ObservedContainer, REPORT_LIVE } from "./driver";
import { LOCKS, PRELUDE, USED_ADDRESSES, assignments, parseResults } from "./script";

/** The conf of NAME in whichever layout this host uses (22.05+ or the older /etc/containers). */
const FIND_CONF = String.raw`find_conf() {
  for conf in "/etc/nixos-containers/$NAME.conf" "/etc/containers/$NAME.conf"; do
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

function vars(
  spec: Pick<ContainerSpec, "name" | "hostInterface">,
  own: boolean,
  extra: Record<string, string | boolean | undefined> = {},
): string {
  return assignments({
    NAME: spec.name,
    HIF: spec.hostInterface,
    OWN_NAME: own ? spec.name : "",
    OWN_IF: own ? spec.hostInterface : "",
    ...extra,
  });
}

function specVars(
  spec: ContainerSpec,
  ha: string | undefined,
  la: string | undefined,
): Record<string, string | boolean | undefined> {
  return {
    HA: ha ?? "",
    LA: la ?? "",
    CONFIG: spec.config ?? "",
    CONFIG_FILE: spec.configFile ?? "",
    FLAKE: spec.flake ?? "",
    AUTO_START: spec.autoStart,
  };
}

/** Builds the create options as positional parameters, so each value stays one argument. */
const CREATE_ARGS = String.raw`set -- create "$NAME" --host-address "$HA" --local-address "$LA"
[ -n "$CONFIG" ] && set -- "$@" --config "$CONFIG"
[ -n "$CONFIG_FILE" ] && set -- "$@" --config-file "$CONFIG_FILE"
[ -n "$FLAKE" ] && set -- "$@" --flake "$FLAKE"
[ "$AUTO_START" = 1 ] && set -- "$@" --auto-start
`;

const ROLLBACK = String.raw`MADE=0
rollback() {
  rc=$?
  if [ $rc -ne 0 ] && [ "$MADE" = 1 ]; then
    nixos-container destroy "$NAME" >/dev/null 2>&1 || true
    ip link del "$HIF" 2>/dev/null || true
    echo "PNC-ROLLEDBACK" >&2
  fi
  exit $rc
}
trap rollback EXIT
`;

const REPORT = String.raw`conf=$(find_conf)
echo "PNC-RESULT conf=$conf"
echo "PNC-RESULT hostAddress=$HA"
echo "PNC-RESULT localAddress=$LA"
`;

export const nixosDriver: ContainerDriver = {
  createScript(spec) {
    return [
      PRELUDE,
      "need ip flock nixos-container",
      vars(spec, false, specVars(spec, spec.hostAddress, spec.localAddress)),
      LOCKS,
      USED_ADDRESSES,
      FIND_CONF,
      "taken=0",
      'if [ -n "$(find_conf)" ]; then echo "PNC-CLASH name $NAME: a nixos container of that name exists ($(find_conf))" >&2; taken=1; fi',
      'if [ -e "/run/netns/$NAME" ]; then echo "PNC-CLASH name $NAME: a network namespace /run/netns/$NAME already exists" >&2; taken=1; fi',
      'if ip link show dev "$HIF" >/dev/null 2>&1; then echo "PNC-CLASH interface $HIF already exists on the host" >&2; taken=1; fi',
      "USED=$(used_addresses)",
      'if [ -z "$HA" ]; then n=$(allocate_block); HA="10.233.$n.1"; LA="10.233.$n.2"; fi',
      'clash_check "$HA" "$LA" || taken=1',
      '[ "$taken" = 0 ] || { echo "PNC-NOTHING-CHANGED" >&2; exit 3; }',
      RELEASE_NIXOS_LOCK,
      ROLLBACK,
      CREATE_ARGS,
      'nixos-container "$@" >&2',
      "MADE=1",
      'nixos-container start "$NAME" >&2',
      REPORT,
    ].join("\n");
  },

  convergeScript(spec, previous) {
    const ha = spec.hostAddress ?? previous.hostAddress;
    const la = spec.localAddress ?? previous.localAddress;
    return [
      PRELUDE,
      "need ip flock nixos-container",
      vars(spec, true, specVars(spec, ha, la)),
      LOCKS,
      USED_ADDRESSES,
      FIND_CONF,
      "USED=$(used_addresses)",
      'clash_check "$HA" "$LA" || { echo "PNC-NOTHING-CHANGED" >&2; exit 3; }',
      RELEASE_NIXOS_LOCK,
      "conf=$(find_conf)",
      'if [ -z "$conf" ]; then',
      CREATE_ARGS,
      '  nixos-container "$@" >&2',
      "  conf=$(find_conf)",
      "fi",
      // The conf is read only at start: rewrite it, then restart if anything the unit reads changed.
      'before=$(cat "$conf")',
      String.raw`sed -i -e "s|^HOST_ADDRESS=.*|HOST_ADDRESS=$HA|" -e "s|^LOCAL_ADDRESS=.*|LOCAL_ADDRESS=$LA|" -e "s|^AUTO_START=.*|AUTO_START=$AUTO_START|" "$conf"`,
      'if [ -n "$CONFIG$CONFIG_FILE$FLAKE" ]; then',
      '  set -- update "$NAME"',
      '  [ -n "$CONFIG" ] && set -- "$@" --config "$CONFIG"',
      '  [ -n "$CONFIG_FILE" ] && set -- "$@" --config-file "$CONFIG_FILE"',
      '  [ -n "$FLAKE" ] && set -- "$@" --flake "$FLAKE"',
      '  nixos-container "$@" >&2',
      "fi",
      'state=$(nixos-container status "$NAME" 2>/dev/null || true)',
      'if [ "$before" != "$(cat "$conf")" ] && [ "$state" = up ]; then nixos-container stop "$NAME" >&2; state=down; fi',
      'if [ "$state" != up ]; then nixos-container start "$NAME" >&2; fi',
      REPORT,
    ].join("\n");
  },

  readScript(spec) {
    return [
      PRELUDE,
      vars(spec, true),
      IN_CONTAINER,
      REPORT_LIVE,
      FIND_CONF,
      "conf=$(find_conf)",
      'echo "PNC-RESULT conf=$conf"',
      'if [ -n "$conf" ]; then',
      String.raw`  sed -n 's/^\(HOST_ADDRESS\|LOCAL_ADDRESS\|AUTO_START\)=\(.*\)$/PNC-RESULT conf_\1=\2/p' "$conf"`,
      '  echo "PNC-RESULT status=$(nixos-container status "$NAME" 2>/dev/null || true)"',
      "  report_live",
      "fi",
    ].join("\n");
  },

  parseRead(stdout): ObservedContainer {
    const r = parseResults(stdout);
    if (!r.conf) return { exists: false, running: false };
    const strip = (a: string | undefined): string | undefined => (a ? a.replace(/\/\d+$/, "") : undefined);
    return {
      exists: true,
      running: r.status === "up" && r.hostLink === "1",
      hostAddress: strip(r.conf_HOST_ADDRESS),
      localAddress: strip(r.conf_LOCAL_ADDRESS),
      confPath: r.conf,
      autoStart: r.conf_AUTO_START === "1",
    };
  },

  deleteScript(spec) {
    return [
      PRELUDE,
      "need ip flock",
      vars(spec, true),
      LOCKS,
      RELEASE_NIXOS_LOCK,
      'if command -v nixos-container >/dev/null 2>&1; then nixos-container destroy "$NAME" >&2; fi',
      // Stale ve-* links outlive containers (nixpkgs #16330) and block address reuse: remove ours.
      'ip link del "$HIF" 2>/dev/null || true',
    ].join("\n");
  },
};
