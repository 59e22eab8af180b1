// Host scripts for NmUnmanaged: write our drop-in atomically, check NetworkManager parses it, reload, and
// confirm that matching devices are unmanaged; where NetworkManager does not run, write and say so.
import { LOCKS, PRELUDE, assignments, parseResults } from "./script";

/** The shell globs of `interface-name:GLOB` specs, to confirm which present devices must be unmanaged. */
export function interfaceGlobs(devices: readonly string[]): string[] {
  return devices
    .map((d) => /^interface-name:(?![~=])(.*)$/.exec(d)?.[1])
    .filter((g): g is string => g !== undefined && g !== "");
}

const NM_RUNNING = String.raw`nm_running() {
  command -v nmcli >/dev/null 2>&1 && nmcli -t -f RUNNING general 2>/dev/null | grep -qx running
}
`;

/** Lists devices matching our globs and their state, "NAME:STATE" lines (PNC-DEVICE ...). */
const REPORT_DEVICES = String.raw`report_devices() {
  nmcli -t -f DEVICE,STATE device status 2>/dev/null | while IFS=: read -r dev state; do
    for glob in $GLOBS; do
      case "$dev" in $glob) echo "PNC-DEVICE $dev:$state"; break ;; esac
    done
  done
}
`;

/** @param fresh a create: refuse to take over a drop-in of this name that is already there. */
export function nmApplyScript(
  path: string,
  content: string,
  globs: readonly string[],
  fresh = false,
): string {
  return [
    PRELUDE,
    "need flock",
    assignments({ DROPIN: path, CONTENT: content, GLOBS: globs.join(" ") }),
    "set -f", // the globs are patterns for `case`, never for the file system
    LOCKS,
    NM_RUNNING,
    REPORT_DEVICES,
    fresh
      ? 'if [ -e "$DROPIN" ]; then echo "PNC-CLASH $DROPIN already exists (another stack or resource with this name?): give this one another name, or remove the file" >&2; exit 3; fi'
      : "",
    'mkdir -p "$(dirname "$DROPIN")"',
    'had=0; [ -f "$DROPIN" ] && { cp -p "$DROPIN" "$DROPIN.pnc-old"; had=1; }',
    `printf '%s' "$CONTENT" > "$DROPIN.pnc-new" && mv -f "$DROPIN.pnc-new" "$DROPIN"`,
    // NetworkManager --print-config fails (and names the line) on a file it cannot parse; reload would not.
    "if command -v NetworkManager >/dev/null 2>&1; then",
    "  if ! NetworkManager --print-config >/dev/null 2>/tmp/pnc-nm-check.$$; then",
    '    if [ "$had" = 1 ]; then mv -f "$DROPIN.pnc-old" "$DROPIN"; else rm -f "$DROPIN"; fi',
    '    echo "PNC-CLASH NetworkManager rejects the drop-in: $(cat /tmp/pnc-nm-check.$$)" >&2; rm -f /tmp/pnc-nm-check.$$',
    "    exit 3",
    "  fi",
    "  rm -f /tmp/pnc-nm-check.$$",
    "fi",
    'rm -f "$DROPIN.pnc-old"',
    "if nm_running; then",
    "  nmcli general reload conf",
    '  echo "PNC-RESULT running=1"',
    "  report_devices",
    "else",
    '  echo "PNC-RESULT running=0"',
    "fi",
  ].join("\n");
}

export function nmReadScript(path: string, globs: readonly string[]): string {
  return [
    PRELUDE,
    assignments({ DROPIN: path, GLOBS: globs.join(" ") }),
    "set -f",
    NM_RUNNING,
    REPORT_DEVICES,
    'if [ -f "$DROPIN" ]; then echo "PNC-RESULT exists=1"; echo "PNC-RESULT content=$(base64 -w0 < "$DROPIN")"; else echo "PNC-RESULT exists=0"; fi',
    'if nm_running; then echo "PNC-RESULT running=1"; report_devices; else echo "PNC-RESULT running=0"; fi',
  ].join("\n");
}

export function nmDeleteScript(path: string): string {
  return [
    PRELUDE,
    "need flock",
    assignments({ DROPIN: path }),
    LOCKS,
    NM_RUNNING,
    'rm -f "$DROPIN"',
    "if nm_running; then nmcli general reload conf; fi",
  ].join("\n");
}

export interface ObservedNm {
  readonly exists: boolean;
  readonly content?: string;
  readonly running: boolean;
  /** Devices matching our interface-name globs, with their NetworkManager state. */
  readonly devices: Record<string, string>;
}

export function parseNm(stdout: string): ObservedNm {
  const r = parseResults(stdout);
  const devices: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const m = /^PNC-DEVICE (.+):([^:]*)$/.exec(line);
    if (m) devices[m[1]] = m[2];
  }
  return {
    exists: r.exists === "1",
    content: r.content !== undefined ? Buffer.from(r.content, "base64").toString("utf8") : undefined,
    running: r.running === "1",
    devices,
  };
}
