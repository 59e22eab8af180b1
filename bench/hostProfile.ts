// Where one host script batch spends its time (issue 16, item 4): a batch of N netns creates, reads and
// deletes, built exactly as the provider sends them to one host, run on a private lab host three times:
// under `time`, under `strace -c -f` (syscall time) and under `strace -f -e trace=execve` (which programs
// each batch starts), next to the kernel floor for the same N containers.
//
//   bash tools/with-node -- bash bench/launch hostProfile [--containers 25] [--keep-lab]
// (The lines above are what --help prints.) Needs root; brings up and takes down the bench's private lab.
import * as fs from "node:fs";
import * as path from "node:path";
import { readLab } from "../test/lab/labHosts";
import { batchScriptFor, type HostOperation } from "./hostScripts";
import {
  LAB_ENV,
  RESULTS,
  fleet,
  item,
  labExecScript,
  labRun,
  machine,
  parseArgs,
  requireRoot,
  runKernelFloor,
  type FleetHost,
} from "./run";

type Mode = "time" | "strace -c" | "execs";

/** The command `lab exec` runs around the script (on stdin) for each mode; reports go to stderr. */
const WRAPPERS: Record<Mode, string> = {
  time: `TIMEFORMAT='PNC_TIME real %R user %U sys %S'; time sh -s`,
  "strace -c": `f=$(mktemp); strace -f -c -o "$f" sh -s; s=$?; cat "$f" >&2; rm -f "$f"; exit $s`,
  execs: `f=$(mktemp); strace -f -qq -e trace=execve -e signal=none -o "$f" sh -s; s=$?; cat "$f" >&2; rm -f "$f"; exit $s`,
};

interface Measurement {
  op: HostOperation;
  /** Wall, user and system seconds under `time` (all processes of the batch). */
  real: number;
  user: number;
  sys: number;
  /** Programs started (successful execve), by name. */
  execs: Record<string, number>;
  /** strace -c's table, its top rows by time. */
  syscalls: { name: string; seconds: number; calls: number; percent: number }[];
  syscallTotalSeconds: number;
}

/** Like labExecScript, with a wrapper command (`bash -c WRAPPER`) instead of `sh -s`; resolves stderr. */
async function labExecScriptWith(h: FleetHost, wrapper: string, script: string): Promise<string> {
  // labExecScript runs `sh -s` with the script on stdin: hand it a script that runs the wrapper over the rest.
  const eof = "PNC_PROFILE_EOF";
  if (script.includes(eof)) throw new Error("internal: heredoc delimiter occurs in the script");
  const outer = `bash -c '${wrapper.replace(/'/g, `'\\''`)}' <<'${eof}'\n${script}\n${eof}\n`;
  const r = await labExecScript(h.host.name, outer);
  return r.stderr;
}

function parseTime(stderr: string): { real: number; user: number; sys: number } {
  const m = /PNC_TIME real ([\d.]+) user ([\d.]+) sys ([\d.]+)/.exec(stderr);
  if (!m) throw new Error(`no time report in:\n${stderr.slice(-1000)}`);
  return { real: Number(m[1]), user: Number(m[2]), sys: Number(m[3]) };
}

function parseExecs(stderr: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of stderr.matchAll(/^\d+\s+execve\("([^"]+)",.*= 0$/gm)) {
    const name = path.basename(m[1]);
    out[name] = (out[name] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]));
}

function parseStrace(stderr: string): Pick<Measurement, "syscalls" | "syscallTotalSeconds"> {
  const rows: Measurement["syscalls"] = [];
  let total = 0;
  for (const line of stderr.split("\n")) {
    const m = /^\s*([\d.]+)\s+([\d.]+)\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
    if (!m) continue;
    if (m[4] === "total") total = Number(m[2]);
    else rows.push({ percent: Number(m[1]), seconds: Number(m[2]), calls: Number(m[3]), name: m[4] });
  }
  return { syscalls: rows.slice(0, 8), syscallTotalSeconds: total };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(
      fs
        .readFileSync(path.join(__dirname, "../../../bench/hostProfile.ts"), "utf8")
        .split("\n")
        .slice(0, 6)
        .join("\n"),
    );
    return;
  }
  const keepLab = argv.includes("--keep-lab");
  const opts = parseArgs(["--hosts", "1", ...argv.filter((a) => a !== "--keep-lab")]);
  if (!argv.includes("--containers")) opts.containers = 25;
  requireRoot();
  labRun(["down"]);
  const up = labRun(["up", "1"]);
  if (up.code !== 0) throw new Error(`lab up failed (${up.code}):\n${up.stderr}`);
  try {
    const [h] = fleet(readLab(LAB_ENV.PNC_LAB_DIR), opts, 0);
    const items = h.containers.map((c) => item("Container", h, c));
    const scripts = {
      create: batchScriptFor(items, "create"),
      read: batchScriptFor(items, "read"),
      delete: batchScriptFor(items, "delete"),
    };
    const ops: HostOperation[] = ["create", "read", "delete"];
    const raw: Record<Mode, Record<string, string>> = { time: {}, "strace -c": {}, execs: {} };
    for (const mode of Object.keys(WRAPPERS) as Mode[]) {
      for (const op of ops) raw[mode][op] = await labExecScriptWith(h, WRAPPERS[mode], scripts[op]);
      console.error(`hostProfile: ${mode} done`);
    }
    const measurements = ops.map((op): Measurement => ({
      op,
      ...parseTime(raw.time[op]),
      execs: parseExecs(raw.execs[op]),
      ...parseStrace(raw["strace -c"][op]),
    }));
    const kernel = await runKernelFloor([h], 0);
    const m = machine();
    const lines: string[] = [
      `one lab host, a batch of ${opts.containers} netns containers as the provider sends it (one script); ${m.nproc} cores, ${m.model}, kernel ${m.kernel}`,
      "",
      "| batch | wall s | user s | sys s | processes started | top programs | kernel floor s |",
      "|---|---:|---:|---:|---:|---|---:|",
    ];
    const kernelOf: Record<HostOperation, string> = {
      create: "create",
      read: "refresh (with inside)",
      delete: "delete",
    };
    for (const x of measurements) {
      const total = Object.values(x.execs).reduce((a, b) => a + b, 0);
      const top = Object.entries(x.execs)
        .slice(0, 6)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      lines.push(
        `| ${x.op} | ${x.real.toFixed(2)} | ${x.user.toFixed(2)} | ${x.sys.toFixed(2)} | ${total} | ${top} | ${(kernel.phases[kernelOf[x.op]].ms / 1000).toFixed(3)} |`,
      );
    }
    for (const x of measurements) {
      lines.push(
        "",
        `strace -c -f, ${x.op} (syscall time ${x.syscallTotalSeconds.toFixed(3)} s, under strace):`,
        ...x.syscalls.map(
          (r) =>
            `  ${r.percent.toFixed(1).padStart(5)}%  ${r.seconds.toFixed(3)} s  ${String(r.calls).padStart(6)} calls  ${r.name}`,
        ),
      );
    }
    const text = lines.join("\n");
    console.log(text);
    fs.mkdirSync(RESULTS, { recursive: true });
    const out = path.join(RESULTS, "hostProfile.json");
    fs.writeFileSync(
      out,
      JSON.stringify(
        { machine: m, containers: opts.containers, measurements, kernel, raw, table: text },
        null,
        2,
      ) + "\n",
    );
    console.error(`hostProfile: results in ${out}`);
  } finally {
    if (!keepLab) labRun(["down"]);
  }
}

main().catch((err: unknown) => {
  console.error(`hostProfile: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  if (!process.argv.includes("--keep-lab")) labRun(["down"]);
  process.exit(1);
});
