// The shell fragments every host script shares, and the one way user values enter a script: as variable
// assignments quoted by the one quoting function. Each fragment says which variables it reads and which
// functions it defines; the bodies are fixed text. Markers and exit codes come from protocol.ts.
import { quoteArg } from "../ssh/quote";
import { EXIT, MARK } from "./protocol";

/** `NAME='value'` lines for a script's inputs. Names are ours (fixed identifiers), values are quoted. */
export function assignments(vars: Readonly<Record<string, string | number | boolean | undefined>>): string {
  return Object.entries(vars)
    .map(([key, value]) => {
      if (!/^[A-Z_][A-Z0-9_]*$/.test(key)) throw new Error(`internal: bad script variable name ${key}`);
      const text =
        value === undefined ? "" : typeof value === "boolean" ? (value ? "1" : "0") : String(value);
      return `${key}=${quoteArg(text)}`;
    })
    .join("\n");
}

/**
 * String.raw for shell text that uses parameter expansions: `\${` in the template is the shell's `${` (a
 * plain `${` stays a template substitution of ours).
 */
export function sh(strings: TemplateStringsArray, ...values: readonly unknown[]): string {
  return String.raw({ raw: strings.raw.map((r) => r.split("\\${").join("${")) }, ...values);
}

/** One script from its fragments, one per line block (empty fragments are left out). */
export function script(...fragments: readonly string[]): string {
  return fragments.filter((f) => f !== "").join("\n");
}

/**
 * Our root-only directory in /run (made 0700 by whoever comes first; only root can write /run, so an existing
 * one is ours): locks, scratch files, the records of what we made since boot.
 */
export const STATE_DIR = "/run/pulumi-nixos-containers";

/** Our host lock, in STATE_DIR: no other user can open it (and flock it, to stall us). */
export const HOST_LOCK = `${STATE_DIR}/lock`;

/**
 * Strict mode, a PATH that finds tools on NixOS and Debian alike, LOCK_WAIT_SECONDS (120 unless set), and NL
 * and TAB (a newline and a tab, for matching lists with builtins).
 * Defines `need TOOL...`: exits MISSING_TOOL naming the first tool the host lacks; `private_tmp [-d]`: mktemp
 * in a root-only directory of ours (nothing of ours in /tmp, where other users can look); and `private_dirs
 * DIR...`: makes the directories (root-only where they are new) with one mkdir.
 */
export const PRELUDE =
  String.raw`set -eu
PATH=/run/wrappers/bin:/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
` +
  // (A plain string: `${` is shell here, not a template.)
  ': "${LOCK_WAIT_SECONDS:=120}"' +
  String.raw`
NL='
'
TAB='${"\t"}'
need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "${MARK.missing} $tool" >&2; exit ${EXIT.missingTool}; }
  done
}
private_root() {
  [ -d ${STATE_DIR}/tmp ] || { mkdir -p ${STATE_DIR}/tmp; chmod 0700 ${STATE_DIR} ${STATE_DIR}/tmp; }
}
private_tmp() {
  private_root
  mktemp "$@" -p ${STATE_DIR}/tmp
}
private_dirs() {
  private_root
  (umask 077 && mkdir -p "$@")
}
`;

/** `need TOOL...` as a script line. */
export function need(...tools: readonly string[]): string {
  return `need ${tools.join(" ")}`;
}

/**
 * Takes the host locks (file descriptors 8 and 9), waiting at most LOCK_WAIT_SECONDS for each (the
 * operation's timeout less a margin, set by the runtime in front of the script; 120 s when unset, see
 * PRELUDE). Our own lock serialises every change this package makes on a host (across stacks and processes);
 * the nixos-container lock is the one `nixos-container create` takes, so hand-run creates wait for us too
 * (made root-only when we are the first to make it). That one is taken only where nixos-container is
 * installed: elsewhere no one else takes it, and our own lock already orders us. Reads and defines nothing.
 */
export const LOCKS = String.raw`[ -d ${STATE_DIR} ] || { mkdir -p ${STATE_DIR}; chmod 0700 ${STATE_DIR}; }
exec 8>>${HOST_LOCK}
flock -w "$LOCK_WAIT_SECONDS" 8 || { echo "${MARK.lock} timed out after $LOCK_WAIT_SECONDS s waiting for ${HOST_LOCK}" >&2; exit ${EXIT.lockTimeout}; }
if command -v nixos-container >/dev/null 2>&1; then
  [ -d /run/lock ] || mkdir -p /run/lock
  [ -e /run/lock/nixos-container ] || (umask 077 && : >> /run/lock/nixos-container)
  exec 9>>/run/lock/nixos-container
  flock -w "$LOCK_WAIT_SECONDS" 9 || { echo "${MARK.lock} timed out after $LOCK_WAIT_SECONDS s waiting for /run/lock/nixos-container" >&2; exit ${EXIT.lockTimeout}; }
fi
`;

/**
 * Where we record, under the lock, the addresses we give inside namespaces (one file per object, lines
 * "ADDRESS<TAB>HOLDER"): the scan reads these instead of entering every namespace on every operation.
 */
export const ADDRESS_RECORDS = "/run/pulumi-nixos-containers/addresses";

/** Where the owner markers of the host objects we make live (root only; kept across reboots). */
export const OWNERS_DIR = "/var/lib/pulumi-nixos-containers/owners";

/** Who a script works for: the resource's owner token, and whether its state predates markers. */
export interface Ownership {
  /** The per-create nonce recorded in state; every object the resource makes is marked with it. */
  readonly token: string;
  /** State from before markers existed: an object without a marker is taken as ours and marked. */
  readonly legacy: boolean;
  /** How the marker names the resource: `Container web`. */
  readonly resource: string;
}

/**
 * OWNER_MARKER (the marker of object `kind`-`name`), OWNER_OBJECT (how messages name it: `container web`),
 * OWNER, OWNER_RESOURCE and LEGACY_OWNER of a script.
 */
export function ownerVariables(ownership: Ownership, kind: string, name: string): string {
  return assignments({
    OWNER_MARKER: `${OWNERS_DIR}/${kind}-${name}`,
    OWNER_OBJECT: `${kind} ${name}`,
    OWNER: ownership.token,
    OWNER_RESOURCE: ownership.resource,
    LEGACY_OWNER: ownership.legacy,
    MARKER_EXTRA: "",
  });
}

/**
 * Ownership of one host object. Reads the variables of ownerVariables. Defines:
 * - `read_owner` / `marker_owner`: sets found_owner to / prints the token the object's marker holds (empty
 *   without a marker), with shell builtins only (batches call these once per item);
 * - `claim`: writes our marker (token, resource, and the KEY=VALUE lines in MARKER_EXTRA: what must survive
 *   a lost connection, e.g. addresses the host picked), atomically;
 * - `ours`: whether the object is ours: its marker holds our token, or (state from before markers) it has
 *   no marker, which is then written;
 * - `not_ours`: why it is not, for messages;
 * - `report_owner`: prints owner=TOKEN and the marker's KEY=VALUE lines as marker_KEY results;
 * - `require_ours`: refuses (exit REFUSED) unless the object is ours. Hold the host locks first.
 */
export const OWNERSHIP = sh`read_owner() {
  found_owner=
  if [ -f "$OWNER_MARKER" ]; then IFS= read -r found_owner < "$OWNER_MARKER" || :; fi
}
marker_owner() {
  read_owner
  [ -z "$found_owner" ] || printf '%s\n' "$found_owner"
}
claim() {
  [ -d "\${OWNER_MARKER%/*}" ] || { mkdir -p "\${OWNER_MARKER%/*}"; chmod 0700 "\${OWNER_MARKER%/*}"; }
  { echo "$OWNER"; echo "resource=$OWNER_RESOURCE"; [ -z "$MARKER_EXTRA" ] || printf '%s\n' "$MARKER_EXTRA"; } > "$OWNER_MARKER.new"
  mv -f "$OWNER_MARKER.new" "$OWNER_MARKER"
}
ours() {
  read_owner
  [ "$found_owner" = "$OWNER" ] && return 0
  if [ -z "$found_owner" ] && [ "$LEGACY_OWNER" = 1 ]; then claim; return 0; fi
  return 1
}
not_ours() {
  found_owner=$(marker_owner)
  if [ -z "$found_owner" ]; then echo "it carries no marker of this resource ($OWNER_MARKER), so someone else made it"
  else echo "its marker ($OWNER_MARKER) names another resource: $(sed -n 2p "$OWNER_MARKER")"; fi
}
require_ours() {
  ours || { echo "${MARK.clash} $OWNER_OBJECT on the host is not ours: $(not_ours)" >&2; exit ${EXIT.refused}; }
}
report_owner() {
  read_owner
  echo "${MARK.result} owner=$found_owner"
  [ -f "$OWNER_MARKER" ] || return 0
  while IFS= read -r marker_line || [ -n "$marker_line" ]; do
    marker_key=\${marker_line%%=*}
    case "$marker_line" in [A-Za-z]*=*) ;; *) continue ;; esac
    case "$marker_key" in *[!A-Za-z0-9]*) continue ;; esac
    echo "${MARK.result} marker_$marker_key=\${marker_line#*=}"
  done < "$OWNER_MARKER"
}
`;

/** A script that only marks an object of a resource whose state predates markers (touching nothing else). */
export function claimScript(ownership: Ownership, kind: string, name: string): string {
  return changingScript(["flock"], ownerVariables(ownership, kind, name), "require_ours", "report_owner");
}

/** The script line that exits REFUSED when an earlier check set `taken=1` (each check printed its reason). */
export const REFUSE_IF_TAKEN = `[ "$taken" = 0 ] || exit ${EXIT.refused}`;

/**
 * Address bookkeeping under the lock. Reads OWN_CONTAINER, OWN_HOST_INTERFACE and OWN_RECORD (holders that
 * are the resource itself, for updates; empty for creates). Defines:
 * - `host_snapshot`: one read of the host for everything a check needs, from one `ip -o -batch` (links,
 *   addresses, routes of every table; links last: in one `ip -batch`, an `addr show` after a `link show` may
 *   print links again) and one awk that also reads the nixos-container confs and our address
 *   records. Sets
 *   - USED_ADDRESS_LIST: every IPv4 and global IPv6 address in use on the host, one "ADDRESS<TAB>HOLDER" line
 *     each: nixos-container confs (both layouts), the host's addresses, addresses inside every named network
 *     namespace we did not make, host routes of the main table to single addresses (how a running container
 *     shows), and the address records of what we made inside namespaces (see ADDRESS_RECORDS: bridged veths
 *     have no route);
 *   - HOST_LINKS: the name of every link on the host, one a line;
 * - `address_held ADDRESS`: whether $USED_ADDRESS_LIST holds it (builtins only);
 * - `clash_check ADDRESS...`: prints a clash for each address held in $USED_ADDRESS_LIST (set it once with
 *   `host_snapshot`; a batch appends what it makes); returns 1 if any is held;
 * - `allocate_block`: the lowest N in 1..254 with 10.233.N.1 and 10.233.N.2 both free (nixos-container's
 *   layout); refuses when none is.
 * Every name in the assignments comes from the host (links, namespaces, files): quoted by awk's `q`.
 */
export const ADDRESSES = sh`snapshot_awk() {
  awk -v own_if="\${OWN_HOST_INTERFACE-}" -v own_container="\${OWN_CONTAINER-}" -v records="${ADDRESS_RECORDS}/" -v own_record="${ADDRESS_RECORDS}/\${OWN_RECORD-}" '
    function q(s) { gsub(/\047/, "\047\\\047\047", s); return "\047" s "\047" }
    function use(line) { used = used "\n" line }
    function conf_flush(i) {
      for (i = 1; i <= n; i++) if (!(bridged && kind[i] == "HOST")) use(value[i] "\tnixos container \"" name "\" (" file ")")
      n = 0
    }
    # A nixos-container conf (podman files in /etc/containers have no such lines). A bridged conf HOST_ADDRESS is
    # the container gateway on the LAN, not an address it holds: each conf is used once read to its end.
    function conf_line(v) {
      if (FNR == 1) { conf_flush(); name = FILENAME; sub(/.*\//, "", name); sub(/\.conf$/, "", name); file = FILENAME; bridged = 0 }
      if (/^HOST_BRIDGE=./) bridged = 1
      if (/^(HOST|LOCAL)_ADDRESS6?=/ && name != own_container) {
        v = tolower($0); sub(/^[a-z_0-9]*=/, "", v); sub(/\/.*/, "", v)
        if (v ~ /^[0-9.]+$/ || v ~ /^[0-9a-f:]+:[0-9a-f:]*$/) { n++; kind[n] = substr($0, 1, 4); value[n] = v }
      }
    }
    index(FILENAME, records) == 1 { if (FILENAME != own_record && $0 != "") use($0); next }
    FILENAME ~ /^\/etc\// { conf_line(); next }
    # ip -o output (stdin or a file of ours): links and addresses start with "INDEX:", routes with their
    # destination.
    $1 ~ /^[0-9]+:$/ {
      dev = $2; sub(/:$/, "", dev); sub(/@.*/, "", dev)
      if ($3 ~ /^</) links = links "\n" dev
      else if (($3 == "inet" || ($3 == "inet6" && / scope global /)) && dev != own_if) {
        split($4, a, "/")
        use(a[1] "\thost interface " dev)
      }
      next
    }
    $1 !~ /\// && $1 != "default" && $2 == "dev" && $3 != own_if && !/ table / && ($1 ~ /:/ || / scope link/) {
      use($1 "\thost route to it via " $3)
    }
    END {
      conf_flush()
      print "USED_ADDRESS_LIST=" q(substr(used, 2))
      print "HOST_LINKS=" q(links)
    }' "$@"
}
host_snapshot() {
  set --
  for snapshot_file in /etc/nixos-containers/*.conf /etc/containers/*.conf ${ADDRESS_RECORDS}/*; do
    [ -f "$snapshot_file" ] && set -- "$@" "$snapshot_file"
  done
  eval "$(printf '%s\n' 'addr show' 'route show table all' 'link show' | ip -o -batch - | snapshot_awk - "$@")"
  [ -d /run/netns ] || return 0
  for snapshot_namespace in /run/netns/*; do
    snapshot_namespace=\${snapshot_namespace#/run/netns/}
    [ -e "/run/netns/$snapshot_namespace" ] || continue
    [ "$snapshot_namespace" = "$OWN_CONTAINER" ] && continue
    # Namespaces we made hold exactly the addresses their ve- link and host route show above: no need to
    # enter each one (that scan grew with every container on the host).
    [ -e "/run/pulumi-nixos-containers/netns/$snapshot_namespace" ] && continue
    USED_ADDRESS_LIST="$USED_ADDRESS_LIST$NL$({ ip -n "$snapshot_namespace" -o -4 addr show 2>/dev/null; ip -n "$snapshot_namespace" -o -6 addr show scope global 2>/dev/null; } |
      awk -v ns="$snapshot_namespace" '{ split($4, a, "/"); sub(/@.*/, "", $2); printf "%s\tinterface %s in network namespace \"%s\"\n", a[1], $2, ns }')"
  done
}
address_held() {
  case "$NL$USED_ADDRESS_LIST$NL" in *"$NL$1$TAB"* | *"$NL$1$NL"*) return 0 ;; esac
  return 1
}
clash_check() {
  # Builtins first (a batch checks every item this way); awk only to name the holders of a clash.
  clash_held=0
  for clash_address in "$@"; do address_held "$clash_address" && clash_held=1; done
  [ "$clash_held" = 1 ] || return 0
  awk -F '\t' -v want=" $* " 'index(want, " " $1 " ") && !seen[$0]++ { printf "${MARK.clash} address %s is already held by %s\n", $1, $2; found = 1 } END { exit found }' >&2 <<PNC_USED
$USED_ADDRESS_LIST
PNC_USED
}
allocate_block() {
  n=1
  while [ $n -le 254 ]; do
    if ! address_held "10.233.$n.1" && ! address_held "10.233.$n.2"; then
      echo "$n"
      return 0
    fi
    n=$((n + 1))
  done
  echo "${MARK.clash} no free 10.233.N.0/24 block is left on the host (out of IP addresses)" >&2
  return 1
}
`;

/** Where the locks of single objects live (root only: no other user can hold one and stall us). */
export const OBJECT_LOCKS_DIR = "/run/pulumi-nixos-containers/locks";

/**
 * Reads OBJECT_LOCK (a file name). Takes the lock of one object of ours (file descriptor 7), waiting at most
 * LOCK_WAIT_SECONDS. Take it before the host locks (every script that takes both does so in this order):
 * what runs long for one object (a NixOS build) holds only this lock, after `RELEASE_HOST_LOCKS`.
 */
export const OBJECT_LOCK = String.raw`mkdir -p ${OBJECT_LOCKS_DIR}
chmod 0700 ${OBJECT_LOCKS_DIR}
exec 7>>"${OBJECT_LOCKS_DIR}/$OBJECT_LOCK"
flock -w "$LOCK_WAIT_SECONDS" 7 || { echo "${MARK.lock} timed out after $LOCK_WAIT_SECONDS s waiting for ${OBJECT_LOCKS_DIR}/$OBJECT_LOCK (another operation on it is still running, e.g. a build)" >&2; exit ${EXIT.lockTimeout}; }
`;

/** Lets other operations on the host go on (closing the host locks' descriptors); the object lock stays. */
export const RELEASE_HOST_LOCKS = "exec 8>&- 9>&-";

/**
 * A script that changes one object for long: like `changingScript`, with the object's lock (OBJECT_LOCK)
 * taken before the host locks.
 */
export function objectScript(
  tools: readonly string[],
  variables: string,
  ...body: readonly string[]
): string {
  return script(PRELUDE, need(...tools), variables, OBJECT_LOCK, LOCKS, OWNERSHIP, ...body);
}

/**
 * A script that changes the host: strict mode, the tools it needs (`need`), its variables, the host locks and
 * the ownership functions, then its body.
 */
export function changingScript(
  tools: readonly string[],
  variables: string,
  ...body: readonly string[]
): string {
  return script(PRELUDE, need(...tools), variables, LOCKS, OWNERSHIP, ...body);
}

/** A script that only reports (no lock): strict mode, its variables and the ownership functions, then its body. */
export function reportingScript(variables: string, ...body: readonly string[]): string {
  return script(PRELUDE, variables, OWNERSHIP, ...body);
}

/** Prints one observed value as `PNC-RESULT key=value` (the shell expression is expanded by the script). */
export function result(key: string, shellValue: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`internal: bad result key ${key}`);
  return `echo "${MARK.result} ${key}=${shellValue}"`;
}
