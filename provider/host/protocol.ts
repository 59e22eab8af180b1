// The protocol between our host scripts and the runtime, in one place: the markers a script prints, the exit
// codes it ends with, and the one parser that turns what came back into a typed outcome, where it arrives.
// Error messages are built from that outcome (runtime/hostScriptError.ts), never by searching stderr again.
import { randomBytes } from "node:crypto";

/** Line prefixes a script prints. Results go to stdout; reasons, tools and rollbacks to stderr. */
export const MARK = {
  /** stdout `PNC-RESULT key=value`: one observed value (the last one of a key wins). */
  result: "PNC-RESULT",
  /** stdout `PNC-DEVICE name:state`: a NetworkManager device the resource cares about. */
  device: "PNC-DEVICE",
  /** stderr `PNC-CLASH reason`: why the script refused (exit REFUSED), one line per reason. */
  clash: "PNC-CLASH",
  /** stderr `PNC-MISSING tool`: a command the host lacks (exit MISSING_TOOL). */
  missing: "PNC-MISSING",
  /** stderr `PNC-LOCK message`: the host lock was not had in time (exit LOCK_TIMEOUT). */
  lock: "PNC-LOCK",
  /** stderr `PNC-ROLLEDBACK`: the script failed after making something and removed it again. */
  rolledBack: "PNC-ROLLEDBACK",
} as const;

/** Exit codes with a meaning; any other non-zero code is a plain failure. */
export const EXIT = {
  /** Refused before changing anything (a name or address held by someone else, a bad input on the host). */
  refused: 3,
  /** A needed command is missing (sysexits EX_UNAVAILABLE); nothing was changed. */
  missingTool: 69,
  /** The host lock was held by someone else for too long (EX_TEMPFAIL); nothing was changed. */
  lockTimeout: 75,
} as const;

/** What one host script's run came to. */
export type ScriptOutcome =
  | { readonly kind: "done"; readonly results: Readonly<Record<string, string>>; readonly stdout: string }
  | { readonly kind: "refused"; readonly reasons: readonly string[] }
  | { readonly kind: "missing-tool"; readonly tool: string }
  | { readonly kind: "lock-timeout"; readonly message: string }
  | {
      readonly kind: "failed";
      /** The script's own rollback removed what it had made. */
      readonly rolledBack: boolean;
      readonly exitCode: number;
      readonly stdout: string;
      readonly stderr: string;
    };

/** A script's raw result: stdout, stderr and exit code (-1: it never ran, or died before reporting). */
export interface ScriptRun {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

function linesAfter(text: string, prefix: string): string[] {
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${prefix} `))
    .map((line) => line.slice(prefix.length + 1));
}

/** The `PNC-RESULT key=value` lines of a script's stdout. */
export function parseResults(stdout: string): Record<string, string> {
  const results: Record<string, string> = {};
  for (const line of linesAfter(stdout, MARK.result)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) results[m[1]] = m[2];
  }
  return results;
}

/** The `PNC-DEVICE name:state` lines of a script's stdout. */
export function parseDevices(stdout: string): Record<string, string> {
  const devices: Record<string, string> = {};
  for (const line of linesAfter(stdout, MARK.device)) {
    const m = /^(.+):([^:]*)$/.exec(line);
    if (m) devices[m[1]] = m[2];
  }
  return devices;
}

/** Turns a script's raw result into its outcome. */
export function parseOutcome(run: ScriptRun): ScriptOutcome {
  if (run.code === 0) return { kind: "done", results: parseResults(run.stdout), stdout: run.stdout };
  if (run.code === EXIT.refused) {
    const reasons = linesAfter(run.stderr, MARK.clash);
    if (reasons.length > 0) return { kind: "refused", reasons };
  }
  if (run.code === EXIT.missingTool) {
    const [tool] = linesAfter(run.stderr, MARK.missing);
    if (tool) return { kind: "missing-tool", tool: tool.trim() };
  }
  if (run.code === EXIT.lockTimeout) {
    const [message] = linesAfter(run.stderr, MARK.lock);
    if (message) return { kind: "lock-timeout", message };
  }
  return {
    kind: "failed",
    rolledBack: run.stderr.split("\n").includes(MARK.rolledBack),
    exitCode: run.code,
    stdout: run.stdout,
    stderr: run.stderr,
  };
}

/**
 * A fresh marker for one batch: an item's own output cannot forge the lines that separate items, and the
 * batch's scratch directory on the host is named after it (so every script must get its own).
 */
export function batchMark(): string {
  return randomBytes(8).toString("hex");
}

/**
 * Shell function `report_item INDEX EXIT_CODE [SUFFIX]` (reads PNC_MARK and the files "$ITEM_OUTPUT_DIR/out"
 * and "$ITEM_OUTPUT_DIR/err", each with SUFFIX appended when given): prints one batch item's captured stdout and stderr between the markers
 * parseBatch reads, with shell builtins only (no process per item).
 */
export const REPORT_ITEM = String.raw`report_item() {
  echo "PNC-ITEM-$PNC_MARK-OUT $1"
  while IFS= read -r line || [ -n "$line" ]; do printf '%s\n' "$line"; done < "$ITEM_OUTPUT_DIR/out${"${3-}"}"
  echo "PNC-ITEM-$PNC_MARK-ERR $1"
  while IFS= read -r line || [ -n "$line" ]; do printf '%s\n' "$line"; done < "$ITEM_OUTPUT_DIR/err${"${3-}"}"
  echo "PNC-ITEM-$PNC_MARK-END $1 $2"
}
`;

/** Splits a batch's stdout (see REPORT_ITEM) into each item's own result, as if it had run alone. */
export function parseBatch(stdout: string, count: number, mark: string): ScriptRun[] {
  const marker = new RegExp(`^PNC-ITEM-${mark}-(OUT|ERR|END) (\\d+)(?: (-?\\d+))?$`);
  const out: string[][] = Array.from({ length: count }, () => []);
  const err: string[][] = Array.from({ length: count }, () => []);
  const codes: (number | undefined)[] = Array.from({ length: count }, () => undefined);
  let current: string[] | undefined;
  for (const line of stdout.split("\n")) {
    const m = marker.exec(line);
    if (!m) {
      current?.push(line);
      continue;
    }
    const i = Number(m[2]);
    if (i >= count) {
      current = undefined;
    } else if (m[1] === "OUT") {
      current = out[i];
    } else if (m[1] === "ERR") {
      current = err[i];
    } else {
      codes[i] = Number(m[3]);
      current = undefined;
    }
  }
  const text = (lines: string[]): string => (lines.length > 0 ? `${lines.join("\n")}\n` : "");
  return out.map((lines, i) => ({
    stdout: text(lines),
    stderr: text(err[i]),
    // An item that never reported (the script died before it) did not run.
    code: codes[i] ?? -1,
  }));
}
