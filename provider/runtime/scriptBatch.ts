// Runs the independent scripts that concurrent operations send to one host (reads of a refresh, deletes of
// a destroy) as one script: one channel and one round trip for the lot. Each script still runs in a shell
// of its own and fails on its own, with its own output and exit code.
import { REPORT_ITEM, assignments, batchMark, parseBatch } from "../host/script";
import { ExecResult, SshError, SshHost, tail } from "../ssh";
import { Batcher } from "./batcher";

const MAX_BATCHED_SCRIPT = 100_000;

interface Job {
  readonly script: string;
  readonly display: string;
}

const BATCH_RUNNER = String.raw`TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
run_item() {
  set +e
  sh -c "$2" < /dev/null > "$TMPD/out" 2> "$TMPD/err"
  rc=$?
  set -e
  report_item "$1" "$rc"
}
`;

/**
 * One script that runs each of `scripts` in a shell of its own (stdin from /dev/null, so none can swallow the
 * rest of the batch) and reports each one's stdout, stderr and exit code in the form parseBatch reads.
 */
export function buildBatchScript(scripts: readonly string[], mark: string): string {
  const body = scripts.map(
    (script, i) => `${assignments({ [`ITEM_${i}`]: script })}\nrun_item ${i} "$ITEM_${i}"`,
  );
  return ["set -eu", assignments({ PNC_MARK: mark }), REPORT_ITEM, BATCH_RUNNER, ...body].join("\n");
}

const batcher = new Batcher<SshHost, Job, ExecResult>(async (host, jobs) => {
  if (jobs.length === 1) {
    // Alone: run it as it is, without the wrapper.
    return [await host.runScript(jobs[0].script, { display: jobs[0].display, check: false })];
  }
  const display = `${jobs.length} operations: ${jobs.map((j) => j.display).join(", ")}`;
  const mark = batchMark();
  const whole = await host.runScript(
    buildBatchScript(
      jobs.map((j) => j.script),
      mark,
    ),
    {
      display,
      check: false,
    },
  );
  return parseBatch(whole.stdout, jobs.length, mark).map((item) =>
    item.code === -1
      ? { stdout: whole.stdout, stderr: whole.stderr, code: whole.code ?? -1, signal: whole.signal }
      : {
          stdout: item.stdout,
          stderr: item.stderr,
          code: item.code,
          signal: null,
        },
  );
});

/**
 * Like `host.runScript(script)`, but shares a round trip with the other scripts sent to the same host at the
 * same time. Throws a `command-failed` SshError for a non-zero exit, as runScript does.
 */
export async function runBatched(host: SshHost, script: string, display: string): Promise<ExecResult> {
  // One argument of `sh -c` may hold at most 128 KiB on Linux: a larger script goes alone, over stdin.
  if (script.length > MAX_BATCHED_SCRIPT) return host.runScript(script, { display });
  const result = await batcher.submit(host, { script, display });
  if (result.code !== 0) {
    throw new SshError("command-failed", "the command failed", {
      target: host.target,
      command: display,
      exitCode: result.code,
      signal: result.signal,
      stderrTail: tail(result.stderr),
      stdout: result.stdout,
      stderr: result.stderr,
    });
  }
  return result;
}
