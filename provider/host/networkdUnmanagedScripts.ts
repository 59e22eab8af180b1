// Host scripts of NetworkdUnmanaged: write our `.network` file atomically, reload systemd-networkd where it runs
// and wait until the matching links show as unmanaged, and report the file and each matching link's setup state
// (`networkctl list`); where networkd does not run, write and say so. Create, update and read end with the same
// report.
import {
  NetworkdSpec,
  networkdFilePath,
  nixosNetworkdDeclaration,
  renderNetworkdFile,
} from "../core/networkdUnmanagedSpec";
import { EXIT, MARK, parseDevices } from "./protocol";
import * as shell from "./shell";

/** NETWORK_FILE, NETWORK_CONTENT, LINK_GLOBS and NIXOS_DECLARATION of the spec, and its owner's variables. */
function vars(spec: NetworkdSpec, owner: shell.Ownership): string {
  return shell.script(
    shell.assignments({
      NETWORK_FILE: networkdFilePath(spec.name),
      NETWORK_CONTENT: renderNetworkdFile(spec),
      LINK_GLOBS: spec.interfaces.join(" "),
      NIXOS_DECLARATION: nixosNetworkdDeclaration(spec),
    }),
    shell.ownerVariables(owner, "networkd", spec.name),
  );
}

/**
 * Reads LINK_GLOBS (with `set -f`: the globs are patterns for `case`, never for the file system). Defines:
 * - `networkd_running`: whether systemd-networkd runs, i.e. owns its bus name `org.freedesktop.network1` (a
 *   process list would also show the networkd of every NixOS container on the host; its state files outlive it);
 * - `link_states_known`: whether networkd's state files exist: `networkctl list` reads the setup state from them,
 *   and without them shows every link as "unmanaged";
 * - `matching_links`: "LINK SETUP" for each link `networkctl list` shows whose name matches a glob;
 * - `settle_links`: waits (at most 5 s) until no matching link is still being set up, since networkd applies a
 *   reload to its links asynchronously, after `networkctl reload` has returned.
 */
const NETWORKD = String.raw`networkd_running() {
  command -v networkctl >/dev/null 2>&1 && command -v busctl >/dev/null 2>&1 &&
    busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus NameHasOwner s org.freedesktop.network1 2>/dev/null | grep -qx 'b true'
}
link_states_known() {
  [ -e /run/systemd/netif/state ]
}
matching_links() {
  networkctl list --no-legend --no-pager 2>/dev/null | while read -r _index link _type _operational setup _rest; do
    for glob in $LINK_GLOBS; do
      # shellcheck disable=SC2254 # the glob is a pattern on purpose (ve-*)
      case "$link" in $glob) echo "$link $setup"; break ;; esac
    done
  done
}
settle_links() {
  link_states_known || return 0
  tries=0
  while [ "$tries" -lt 50 ]; do
    matching_links | awk '$2 != "unmanaged" && $2 != "linger" { busy = 1 } END { exit busy }' && return 0
    sleep 0.1
    tries=$((tries + 1))
  done
  return 0
}
`;

/**
 * Reads NETWORK_FILE. Prints the observation every NetworkdUnmanaged script ends with: exists=1|0, content
 * (base64), running=1|0, and a device line (LINK:SETUP, plus the `.network` file networkd applies to the link
 * when it still manages it) for each matching link, or linkStates=unknown when networkctl cannot tell.
 */
const REPORT = String.raw`if [ -f "$NETWORK_FILE" ]; then
  ${shell.result("exists", "1")}
  ${shell.result("content", '$(base64 -w0 < "$NETWORK_FILE")')}
else
  ${shell.result("exists", "0")}
fi
if networkd_running; then
  ${shell.result("running", "1")}
  link_states_known || ${shell.result("linkStates", "unknown")}
  link_states_known && matching_links | while read -r link setup; do
    network_file=""
    case "$setup" in
      unmanaged | pending | linger) ;;
      *) network_file=$(networkctl status --no-pager -- "$link" 2>/dev/null | sed -n 's/^ *Network File: //p') ;;
    esac
    echo "${MARK.device} $link:$setup $network_file"
  done
else
  ${shell.result("running", "0")}
fi`;

/**
 * Reads NETWORK_FILE, NIXOS_DECLARATION. Refuses, changing nothing, when the file's directory cannot be written
 * (NixOS with a read-only /etc: the declaration does the same job there). Leaves the new content's file
 * (`$NETWORK_FILE.pnc-new`) for WRITE_AND_RELOAD.
 */
const WRITABLE = String.raw`network_dir=$(dirname "$NETWORK_FILE")
mkdir -p "$network_dir" 2>/dev/null || true
if ! (printf '%s' "$NETWORK_CONTENT" > "$NETWORK_FILE.pnc-new") 2>/dev/null; then
  echo "${MARK.clash} $network_dir cannot be written (on NixOS /etc can be read-only, e.g. system.etc.overlay.mutable = false): declare the file in the host's configuration instead: $NIXOS_DECLARATION (with systemd.network.enable = true)" >&2
  exit ${EXIT.refused}
fi
`;

/**
 * Reads NETWORK_FILE. Moves the new content in place (atomically) and, where networkd runs, reloads it and waits
 * for its links; prints reloaded=1|0 and, when the reload failed, reloadError.
 */
const WRITE_AND_RELOAD = String.raw`chmod 0644 "$NETWORK_FILE.pnc-new"
mv -f "$NETWORK_FILE.pnc-new" "$NETWORK_FILE"
if networkd_running; then
  reload_output=$(private_tmp -q)
  if networkctl reload >/dev/null 2>"$reload_output"; then
    ${shell.result("reloaded", "1")}
    settle_links
  else
    ${shell.result("reloaded", "0")}
    ${shell.result("reloadError", '$(tr "\\n" " " < "$reload_output")')}
  fi
  rm -f "$reload_output"
else
  ${shell.result("reloaded", "0")}
fi
`;

/** Reads NETWORK_FILE. Refuses to take over a file of this name already there (a stale marker is replaced). */
const NAME_FREE = String.raw`if [ -e "$NETWORK_FILE" ] || [ -L "$NETWORK_FILE" ]; then
  echo "${MARK.clash} $NETWORK_FILE already exists (another stack or resource with this name?): give this one another name, or remove the file" >&2
  exit ${EXIT.refused}
fi
`;

function writeScript(spec: NetworkdSpec, owner: shell.Ownership, create: boolean): string {
  return shell.changingScript(
    ["flock"],
    vars(spec, owner),
    "set -f",
    NETWORKD,
    create ? NAME_FREE : "require_ours",
    WRITABLE,
    create ? "claim" : "",
    WRITE_AND_RELOAD,
    REPORT,
    "report_owner",
  );
}

/** A create: refuses a file of this name that is already there, or a directory it cannot write; writes, reloads, reports. */
export function networkdCreateScript(spec: NetworkdSpec, owner: shell.Ownership): string {
  return writeScript(spec, owner, true);
}

/** An update: rewrites our file, reloads and reports. */
export function networkdUpdateScript(spec: NetworkdSpec, _previous: unknown, owner: shell.Ownership): string {
  return writeScript(spec, owner, false);
}

/** Reports the file and the matching links; changes nothing. */
export function networkdReadScript(spec: NetworkdSpec, owner: shell.Ownership): string {
  return shell.reportingScript(vars(spec, owner), "set -f", NETWORKD, REPORT, "report_owner");
}

/** Removes our file (else reports what it left and why) and reloads; succeeds when already gone. */
export function networkdDeleteScript(spec: NetworkdSpec, owner: shell.Ownership): string {
  return shell.changingScript(
    ["flock"],
    vars(spec, owner),
    "set -f",
    NETWORKD,
    'if { [ -e "$NETWORK_FILE" ] || [ -L "$NETWORK_FILE" ]; } && ! ours; then',
    `  ${shell.result("leftBehind", "$NETWORK_FILE: $(not_ours)")}`,
    "  exit 0",
    "fi",
    'rm -f "$NETWORK_FILE" "$NETWORK_FILE.pnc-new" "$OWNER_MARKER"',
    // The file is gone either way: a reload that fails is reported, not a reason to keep the resource.
    "if networkd_running; then",
    `  networkctl reload >/dev/null 2>&1 || ${shell.result("reloadError", "networkctl reload failed")}`,
    "fi",
  );
}

/** One link matching our globs, as networkd reports it. */
export interface ObservedLink {
  /** networkd's setup state: `unmanaged`, `configuring`, `configured`, `pending`, `failed`, `linger`... */
  readonly setup: string;
  /** The `.network` file networkd applies to it, when it manages it. */
  readonly networkFile?: string;
}

/** What a NetworkdUnmanaged script reports. */
export interface ObservedNetworkd {
  readonly exists: boolean;
  readonly content?: string;
  readonly running: boolean;
  /** Whether this create or update reloaded networkd; undefined from a read. */
  readonly reloaded?: boolean;
  /** Why `networkctl reload` failed, when it did. */
  readonly reloadError?: string;
  /** Whether networkctl could show the links' setup states (networkd's state files exist). */
  readonly linkStatesKnown: boolean;
  /** Links matching our globs. */
  readonly links: Readonly<Record<string, ObservedLink>>;
}

export function observeNetworkd(results: Readonly<Record<string, string>>, stdout: string): ObservedNetworkd {
  const links: Record<string, ObservedLink> = {};
  for (const [link, state] of Object.entries(parseDevices(stdout))) {
    const space = state.indexOf(" ");
    const setup = space < 0 ? state : state.slice(0, space);
    const networkFile = space < 0 ? "" : state.slice(space + 1).trim();
    links[link] = networkFile === "" ? { setup } : { setup, networkFile };
  }
  return {
    exists: results.exists === "1",
    content:
      results.content !== undefined ? Buffer.from(results.content, "base64").toString("utf8") : undefined,
    running: results.running === "1",
    reloaded: results.reloaded === undefined ? undefined : results.reloaded === "1",
    reloadError: results.reloadError || undefined,
    linkStatesKnown: results.linkStates !== "unknown",
    links,
  };
}
