// Host scripts of NmUnmanaged: write our drop-in atomically, check NetworkManager parses it, reload, and
// report the file and the state of matching devices; where NetworkManager does not run, write and say so.
// Create, update and read all end with the same report.
import { NmSpec, nmDropInPath, renderNmConf } from "../core/nmUnmanagedSpec";
import { EXIT, MARK, parseDevices } from "./protocol";
import * as shell from "./shell";

/** The shell globs of `interface-name:GLOB` specs, to confirm which present devices must be unmanaged. */
function interfaceGlobs(devices: readonly string[]): string[] {
  return devices
    .map((d) => /^interface-name:(?![~=])(.*)$/.exec(d)?.[1])
    .filter((g): g is string => g !== undefined && g !== "");
}

/** DROP_IN_PATH, DROP_IN_CONTENT and DEVICE_GLOBS of the spec, and its owner's variables. */
function vars(spec: NmSpec, owner: shell.Ownership): string {
  return shell.script(
    shell.assignments({
      DROP_IN_PATH: nmDropInPath(spec.name),
      DROP_IN_CONTENT: renderNmConf(spec),
      DEVICE_GLOBS: interfaceGlobs(spec.devices).join(" "),
    }),
    shell.ownerVariables(owner, "nm", spec.name),
  );
}

/** Defines `nm_running`: whether NetworkManager runs (nmcli answers "running"). */
const NM_RUNNING = String.raw`nm_running() {
  command -v nmcli >/dev/null 2>&1 && nmcli -t -f RUNNING general 2>/dev/null | grep -qx running
}
`;

/**
 * Reads DROP_IN_PATH, DEVICE_GLOBS (with `set -f`: the globs are patterns for `case`, never for the file
 * system). Prints the observation every NmUnmanaged script ends with: exists=1|0, content (base64),
 * running=1|0, and a device line (name:state) for each NetworkManager device matching our globs.
 */
const REPORT = String.raw`if [ -f "$DROP_IN_PATH" ]; then
  ${shell.result("exists", "1")}
  ${shell.result("content", '$(base64 -w0 < "$DROP_IN_PATH")')}
else
  ${shell.result("exists", "0")}
fi
if nm_running; then
  ${shell.result("running", "1")}
  nmcli -t -f DEVICE,STATE device status 2>/dev/null | while IFS=: read -r device state; do
    for glob in $DEVICE_GLOBS; do
      # shellcheck disable=SC2254 # the glob is a pattern on purpose (interface-name:ve-*)
      case "$device" in $glob) echo "${MARK.device} $device:$state"; break ;; esac
    done
  done
else
  ${shell.result("running", "0")}
fi`;

/**
 * Reads DROP_IN_PATH, DROP_IN_CONTENT, OWNER_MARKER. Writes the drop-in atomically and, where NetworkManager is installed,
 * checks that it parses the result (`--print-config` fails on a file it cannot parse; a reload would not);
 * on a rejection the previous file is put back (or, on a create, the file and its marker removed) and the
 * script refuses. Then reloads.
 */
const WRITE_AND_RELOAD = String.raw`mkdir -p "$(dirname "$DROP_IN_PATH")"
had_file=0; [ -f "$DROP_IN_PATH" ] && { cp -p "$DROP_IN_PATH" "$DROP_IN_PATH.pnc-old"; had_file=1; }
printf '%s' "$DROP_IN_CONTENT" > "$DROP_IN_PATH.pnc-new" && mv -f "$DROP_IN_PATH.pnc-new" "$DROP_IN_PATH"
if command -v NetworkManager >/dev/null 2>&1; then
  check_output=$(private_tmp -q)
  if ! NetworkManager --print-config >/dev/null 2>"$check_output"; then
    if [ "$had_file" = 1 ]; then mv -f "$DROP_IN_PATH.pnc-old" "$DROP_IN_PATH"; else rm -f "$DROP_IN_PATH" "$OWNER_MARKER"; fi
    echo "${MARK.clash} NetworkManager rejects the drop-in: $(cat "$check_output")" >&2
    rm -f "$check_output"
    exit ${EXIT.refused}
  fi
  rm -f "$check_output"
fi
rm -f "$DROP_IN_PATH.pnc-old"
if nm_running; then nmcli general reload conf; fi
`;

/** Reads DROP_IN_PATH. Refuses to take over a drop-in of this name already there (a stale marker is replaced). */
const NAME_FREE = String.raw`if [ -e "$DROP_IN_PATH" ]; then
  echo "${MARK.clash} $DROP_IN_PATH already exists (another stack or resource with this name?): give this one another name, or remove the file" >&2
  exit ${EXIT.refused}
fi
`;

function writeScript(spec: NmSpec, owner: shell.Ownership, create: boolean): string {
  return shell.changingScript(
    ["flock"],
    vars(spec, owner),
    "set -f",
    NM_RUNNING,
    create ? shell.script(NAME_FREE, "claim") : "require_ours",
    WRITE_AND_RELOAD,
    REPORT,
    "report_owner",
  );
}

/** A create: refuses a drop-in of this name that is already there, then writes, reloads and reports. */
export function nmCreateScript(spec: NmSpec, owner: shell.Ownership): string {
  return writeScript(spec, owner, true);
}

/** An update: rewrites our drop-in, reloads and reports. */
export function nmUpdateScript(spec: NmSpec, _previous: unknown, owner: shell.Ownership): string {
  return writeScript(spec, owner, false);
}

/** Reports the drop-in and the matching devices; changes nothing. */
export function nmReadScript(spec: NmSpec, owner: shell.Ownership): string {
  return shell.reportingScript(vars(spec, owner), "set -f", NM_RUNNING, REPORT, "report_owner");
}

/** Removes our drop-in (else reports what it left and why) and reloads; succeeds when already gone. */
export function nmDeleteScript(spec: NmSpec, owner: shell.Ownership): string {
  return shell.changingScript(
    ["flock"],
    vars(spec, owner),
    NM_RUNNING,
    'if [ -e "$DROP_IN_PATH" ] && ! ours; then',
    `  ${shell.result("leftBehind", "$DROP_IN_PATH: $(not_ours)")}`,
    "  exit 0",
    "fi",
    'rm -f "$DROP_IN_PATH" "$OWNER_MARKER"',
    "if nm_running; then nmcli general reload conf; fi",
  );
}

/** What an NmUnmanaged script reports. */
export interface ObservedNm {
  readonly exists: boolean;
  readonly content?: string;
  readonly running: boolean;
  /** Devices matching our interface-name globs, with their NetworkManager state. */
  readonly devices: Readonly<Record<string, string>>;
}

export function observeNm(results: Readonly<Record<string, string>>, stdout: string): ObservedNm {
  return {
    exists: results.exists === "1",
    content:
      results.content !== undefined ? Buffer.from(results.content, "base64").toString("utf8") : undefined,
    running: results.running === "1",
    devices: parseDevices(stdout),
  };
}
