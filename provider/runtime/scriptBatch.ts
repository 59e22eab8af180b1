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
export type HostJob =
  | { readonly display: string; readonly script: string }
  | { readonly display: string; readonly group: ScriptGroup<unknown>; readonly item: unknown };

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

/** Runs one script that reports items, and splits its output; items that never ran share the whole result. */
async function runItems(host: SshHost, text: string, count: number, mark: string, display: string) {
  const whole = await host.runScript(text, { display, check: false });
  return parseBatch(whole.stdout, count, mark).map((item): ScriptRun =>
    item.code === -1 ? { stdout: whole.stdout, stderr: whole.stderr, code: whole.code ?? -1 } : item,
  );
}

const independent = new Batcher<SshHost, { readonly script: string; readonly display: string }, ScriptRun>(
  async (host, jobs) => {
    if (jobs.length === 1) {
      // Alone: run it as it is, without the wrapper.
      const r = await host.runScript(jobs[0].script, { display: jobs[0].display, check: false });
      return [{ stdout: r.stdout, stderr: r.stderr, code: r.code ?? -1 }];
    }
    const mark = batchMark();
    const display = `${jobs.length} operations: ${jobs.map((j) => j.display).join(", ")}`;
    return runItems(
      host,
      buildBatchScript(
        jobs.map((j) => j.script),
        mark,
      ),
      jobs.length,
      mark,
      display,
    );
  },
);

/** One Batcher per group, keyed by host. */
const groups = new Map<string, Batcher<SshHost, { item: unknown; display: string }, ScriptRun>>();

function groupBatcher(group: ScriptGroup<unknown>) {
  let batcher = groups.get(group.name);
  if (!batcher) {
    batcher = new Batcher(async (host, entries) => {
      const mark = batchMark();
      const display = `${group.name} ${entries.map((e) => e.display).join(", ")}`;
      const items = entries.map((e) => e.item);
      return runItems(host, group.build(items, mark), entries.length, mark, display);
    });
    groups.set(group.name, batcher);
  }
  return batcher;
}

/** The script a job runs when nothing else shares its round trip (a group job: a group of one). */
export function scriptOf(job: HostJob, mark: string): string {
  return "group" in job ? job.group.build([job.item], mark) : job.script;
}

/**
 * Runs a job on a host, sharing the round trip with what else is sent there at the same time, and returns
 * its outcome. Throws an SshError only when the run itself failed (unreachable, cut off, timed out).
 */
export async function runJob(host: SshHost, job: HostJob): Promise<ScriptOutcome> {
  if ("group" in job)
    return parseOutcome(await groupBatcher(job.group).submit(host, { item: job.item, display: job.display }));
  if (Buffer.byteLength(job.script, "utf8") > MAX_BATCHED_SCRIPT_BYTES) {
    const r = await host.runScript(job.script, { display: job.display, check: false });
    return parseOutcome({ stdout: r.stdout, stderr: r.stderr, code: r.code ?? -1 });
  }
  return parseOutcome(await independent.submit(host, job));
}
