// Runs host scripts and parses each one's outcome where its output arrives. Scripts that concurrent operations
// send to one host share one round trip: independent scripts are wrapped into one batch script (each still in
// a shell of its own), and items of a group (netns creates) share one script with one lock and one scan.
import { Buffer } from "node:buffer";
import { REPORT_ITEM, ScriptOutcome, ScriptRun, batchMark, parseBatch, parseOutcome } from "../host/protocol";
import { assignments, script } from "../host/shell";
import { SshHost } from "../ssh";
import { Batcher } from "./batcher";

/** Items that share one script on a host: `build` makes that script for a batch of them. */
export interface ScriptGroup<Item> {
  readonly name: string;
  build(items: readonly Item[], mark: string): string;
}

/** One host script to run: on its own (merged with others only as an independent item), or in a group. */
export type HostJob = (
  | { readonly display: string; readonly script: string; readonly alone?: boolean }
  | { readonly display: string; readonly group: ScriptGroup<unknown>; readonly item: unknown }
) & {
  /** How long it may take on the host, its lock waits included. @default 300 */
  readonly timeoutSeconds?: number;
};

/** A job that shares one script with the other items of its group sent to the same host at the same time. */
export function groupJob<Item>(group: ScriptGroup<Item>, item: Item, display: string): HostJob {
  // The group only ever builds from items submitted through this function, so they are Items.
  return { display, group: group as ScriptGroup<unknown>, item };
}

/**
 * One argument of `sh -c` (and so one batched item) may hold at most 128 KiB of bytes on Linux
 * (MAX_ARG_STRLEN): a larger script goes alone, over stdin.
 */
const MAX_BATCHED_SCRIPT_BYTES = 100_000;

/**
 * Reads ITEM_OUTPUT_DIR. Defines `run_item INDEX SCRIPT`: runs SCRIPT in a shell of its own with stdin from
 * /dev/null (so none can swallow the rest of the batch) and reports its output and exit code.
 */
const RUN_ITEM = String.raw`ITEM_OUTPUT_DIR=$(mktemp -d)
trap 'rm -rf "$ITEM_OUTPUT_DIR"' EXIT
run_item() {
  set +e
  sh -c "$2" < /dev/null > "$ITEM_OUTPUT_DIR/out" 2> "$ITEM_OUTPUT_DIR/err"
  item_exit_code=$?
  set -e
  report_item "$1" "$item_exit_code"
}
`;

/**
 * One script that runs each of `scripts` in a shell of its own and reports each one's stdout, stderr and exit
 * code in the form parseBatch reads.
 */
export function buildBatchScript(scripts: readonly string[], mark: string): string {
  const body = scripts.map(
    (text, i) => `${assignments({ [`ITEM_${i}`]: text })}\nrun_item ${i} "$ITEM_${i}"`,
  );
  return script("set -eu", assignments({ PNC_MARK: mark }), REPORT_ITEM, RUN_ITEM, ...body);
}

/** How long a job may run: its timeout, or the default five minutes. */
function secondsOf(job: { readonly timeoutSeconds?: number }): number {
  return job.timeoutSeconds ?? 300;
}

/** The command limit of a job that may take `seconds`: exactly its timeout. */
function commandMs(seconds: number): number {
  return seconds * 1000;
}

/**
 * How long the script may wait for a host lock within `seconds`: a quarter less (at most 30 s less), so that a
 * lock timeout is reported by the script itself, before the command timer ends it.
 */
export function lockWaitOf(seconds: number): number {
  return Math.max(1, seconds - Math.min(30, Math.ceil(seconds / 4)));
}

/** The script as it runs: its lock waits bounded within the job's timeout. */
function withLockWait(text: string, seconds: number): string {
  return `LOCK_WAIT_SECONDS=${lockWaitOf(seconds)}\n${text}`;
}

/** Runs one script that reports items, and splits its output; items that never ran share the whole result. */
async function runItems(
  host: SshHost,
  text: string,
  count: number,
  mark: string,
  display: string,
  ms: number,
) {
  const whole = await host.runScript(text, { display, check: false, timeoutMs: ms });
  return parseBatch(whole.stdout, count, mark).map((item): ScriptRun =>
    item.code === -1 ? { stdout: whole.stdout, stderr: whole.stderr, code: whole.code ?? -1 } : item,
  );
}

/** Runs one script on its own command. */
async function runAlone(host: SshHost, text: string, display: string, seconds: number): Promise<ScriptRun> {
  const r = await host.runScript(withLockWait(text, seconds), {
    display,
    check: false,
    timeoutMs: commandMs(seconds),
  });
  return { stdout: r.stdout, stderr: r.stderr, code: r.code ?? -1 };
}

type IndependentJob = Extract<HostJob, { script: string }>;

/**
 * One batch of a host (per group) runs at a time: what arrives while it runs goes in the next one, sent over
 * the channel opened ahead (see provider/ssh/pool.ts) the moment it ends. Batches are then as large as the
 * engine's --parallel allows and each pays the fixed part of a batch (the locks, the read of the host, the
 * shell) once. Sending the next batch while one runs (Batcher's depth 2) hides the round trip between two
 * batches but splits what is in flight into more, smaller batches: measured slower, at 0 and at 50 ms (see
 * bench/README.md).
 */
const PIPELINE_DEPTH = 1;
const WINDOW_MS = 10;
const MAX_BATCH = 64;

const independent = new Batcher<SshHost, IndependentJob, ScriptRun>(
  async (host, jobs) => {
    // Alone: run it as it is, without the wrapper.
    if (jobs.length === 1) return [await runAlone(host, jobs[0].script, jobs[0].display, secondsOf(jobs[0]))];
    const mark = batchMark();
    const display = `${jobs.length} operations: ${jobs.map((j) => j.display).join(", ")}`;
    const scripts = jobs.map((j) => withLockWait(j.script, secondsOf(j)));
    const seconds = Math.max(...jobs.map(secondsOf));
    return runItems(host, buildBatchScript(scripts, mark), jobs.length, mark, display, commandMs(seconds));
  },
  WINDOW_MS,
  MAX_BATCH,
  PIPELINE_DEPTH,
);

/** One Batcher per group, keyed by host. */
const groups = new Map<
  string,
  Batcher<SshHost, { item: unknown; display: string; seconds: number }, ScriptRun>
>();

function groupBatcher(group: ScriptGroup<unknown>) {
  let batcher = groups.get(group.name);
  if (!batcher) {
    batcher = new Batcher(
      async (host, entries) => {
        const mark = batchMark();
        const display = `${group.name} ${entries.map((e) => e.display).join(", ")}`;
        const items = entries.map((e) => e.item);
        const seconds = Math.max(...entries.map((e) => e.seconds));
        const text = withLockWait(group.build(items, mark), seconds);
        return runItems(host, text, entries.length, mark, display, commandMs(seconds));
      },
      WINDOW_MS,
      MAX_BATCH,
      PIPELINE_DEPTH,
    );
    groups.set(group.name, batcher);
  }
  return batcher;
}

/** The script a job runs when nothing else shares its round trip (a group job: a group of one). */
export function scriptOf(job: HostJob, mark: string): string {
  return "group" in job ? job.group.build([job.item], mark) : job.script;
}

/**
 * Runs a job on a host, sharing the round trip with what else is sent there at the same time (unless it is
 * too large for a batch, or marked `alone`: a long build must not hold others' results), and returns its
 * outcome. Throws an SshError only when the run itself failed (unreachable, cut off, timed out).
 */
export async function runJob(host: SshHost, job: HostJob): Promise<ScriptOutcome> {
  const seconds = secondsOf(job);
  if ("group" in job) {
    const entry = { item: job.item, display: job.display, seconds };
    return parseOutcome(await groupBatcher(job.group).submit(host, entry));
  }
  if (job.alone || Buffer.byteLength(job.script, "utf8") > MAX_BATCHED_SCRIPT_BYTES) {
    return parseOutcome(await runAlone(host, job.script, job.display, seconds));
  }
  return parseOutcome(await independent.submit(host, job));
}
