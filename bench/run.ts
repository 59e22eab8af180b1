// Fleet deployment benchmark (issues 6, 16): our provider (one process, one SSH connection per host) against
// the @pulumi/command baseline (a fresh SSH connection per resource operation), the floor (the same host
// scripts run locally, no SSH) and the kernel floor (the same kernel objects by `ip -batch`, no checks).
//
//   npm run bench -- [--hosts 4] [--containers 50] [--delays 0,10,50] [--parallel 16] [--quick] [--scale]
//                    [--skip-baseline] [--skip-floor] [--check-resources 1000] [--alloc-sizes 1000,64000]
//                    [--cpu-prof] [--keep-lab] [--no-lab] [--out FILE]
// (The lines above are what --help prints.) bench/launch compiles this file together with a private snapshot
// of provider/ and the test harness into bench/.build, then runs bench/.build/bench/run.js: every module
// imported here, provider code included, is loaded from that snapshot, so other engineers rebuilding bin/ (or
// editing provider/) during a run cannot change what is measured.
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { allocate } from "../provider/core/allocator";
import { SshPool, parseConnection, type PoolStats } from "../provider/ssh";
import { MiniEngine, type StateEntry } from "../test/harness/engine";
import { readLab, type Lab, type LabHost } from "../test/lab/labHosts";
import {
  RUNTIME_MODULE,
  poolAllocations,
  checkInputs,
  scriptsFor,
  type HostOperation,
  type ScriptItem,
} from "./hostScripts";

// Where this file runs from: bench/.build/bench/run.js. The snapshot is one level up, the repository three.
const BUILD = path.resolve(__dirname, "..");
const REPO = path.resolve(BUILD, "../..");
const BENCH = path.join(REPO, "bench");
const LAB_SCRIPT = path.join(REPO, "test/lab/lab");
export const RESULTS = path.join(BENCH, "results");

// A lab of our own, never the shared default one (/tmp/pnc-lab). Overridable from the environment.
export const LAB_ENV = {
  PNC_LAB_DIR: process.env.PNC_BENCH_LAB_DIR ?? "/tmp/pnc-bench",
  PNC_LAB_PREFIX: process.env.PNC_BENCH_LAB_PREFIX ?? "pncb-",
  PNC_LAB_WAN: process.env.PNC_BENCH_LAB_WAN ?? "198.18.40.0/24",
  PNC_LAB_JUMP: process.env.PNC_BENCH_LAB_JUMP ?? "198.18.42.0/24",
  PNC_LAB_RELAY_BASE: process.env.PNC_BENCH_LAB_RELAY_BASE ?? "41000",
};

// ---------------------------------------------------------------------------------------------------------
// options

export interface Options {
  hosts: number;
  containers: number;
  delays: number[];
  parallel: number;
  baseline: boolean;
  floor: boolean;
  cpuProf: boolean;
  keepLab: boolean;
  out: string;
  /** Pool sizes for the allocation bench (10.0.0.0/8, /30 blocks); growth is last/first per member. */
  allocSizes: number[];
  /** Resources in the `check` bench (a preview of a fleet of that many); 0 skips it. */
  checkResources: number;
  /** --scale: the 16 hosts × 25 containers at P = 64 run (memory goal at 400 resources). */
  scale: boolean;
  /** --no-lab: only the pure parts (allocation, check); no root, no lab. */
  lab: boolean;
}

/** The usage lines at the top of this file's source. */
export function usage(): string {
  return fs.readFileSync(path.join(BENCH, "run.ts"), "utf8").split("\n").slice(0, 7).join("\n");
}

export function parseArgs(argv: readonly string[]): Options {
  const o: Options = {
    hosts: 4,
    containers: 50,
    delays: [0, 10, 50],
    parallel: 16,
    baseline: true,
    floor: true,
    cpuProf: false,
    keepLab: false,
    out: path.join(RESULTS, "latest.json"),
    allocSizes: [1000, 64000],
    checkResources: 1000,
    scale: false,
    lab: true,
  };
  const num = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`${name} needs a whole number, got ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2) as [string, string | undefined];
    const value = (): string | undefined => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case "--hosts":
        o.hosts = num(flag, value());
        break;
      case "--containers":
        o.containers = num(flag, value());
        break;
      case "--delays":
        o.delays = String(value())
          .split(",")
          .filter(Boolean)
          .map((d) => num(flag, d));
        break;
      case "--parallel":
        o.parallel = num(flag, value());
        break;
      case "--quick":
        o.hosts = 2;
        o.containers = 10;
        o.allocSizes = [1000, 4000];
        break;
      case "--scale":
        // Issue 16's scale run; later flags still override (e.g. --scale --delays 0,50).
        o.scale = true;
        o.hosts = 16;
        o.containers = 25;
        o.parallel = 64;
        o.delays = [0];
        o.out = path.join(RESULTS, "scale.json");
        break;
      case "--check-resources":
        o.checkResources = num(flag, value());
        break;
      case "--alloc-sizes":
        o.allocSizes = String(value())
          .split(",")
          .filter(Boolean)
          .map((d) => num(flag, d));
        break;
      case "--skip-baseline":
        o.baseline = false;
        break;
      case "--skip-floor":
        o.floor = false;
        break;
      case "--cpu-prof":
        o.cpuProf = true;
        break;
      case "--no-lab":
        o.lab = false;
        break;
      case "--keep-lab":
        o.keepLab = true;
        break;
      case "--out": {
        const v = value();
        if (v === undefined) throw new Error("--out needs a file name");
        o.out = path.resolve(v);
        break;
      }
      case "--help":
      case "-h":
        console.log(usage());
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${argv[i]} (try --help)`);
    }
  }
  if (o.hosts < 1 || o.hosts > 50) throw new Error("--hosts must be 1..50");
  if (o.containers < 1 || o.containers > 16000) throw new Error("--containers must be 1..16000");
  if (o.parallel < 1) throw new Error("--parallel must be >= 1");
  if (o.delays.length === 0) throw new Error("--delays needs at least one value");
  if (o.allocSizes.length < 2 || o.allocSizes.some((n) => n < 1 || n > 4_000_000))
    throw new Error("--alloc-sizes needs at least two sizes of 1..4000000 members");
  return o;
}

// ---------------------------------------------------------------------------------------------------------
// build: bench/launch compiled the snapshot (provider/, the test harness and this bench) into bench/.build;
// what tsc does not make is added here

function completeSnapshot(): void {
  // engine.ts loads the shims from <root>/bin/resources/shim.js; parentWatch.cjs is not compiled.
  const bin = path.join(BUILD, "bin");
  if (!fs.existsSync(bin)) fs.symlinkSync("provider", bin);
  fs.copyFileSync(
    path.join(REPO, "test/harness/parentWatch.cjs"),
    path.join(BUILD, "test/harness/parentWatch.cjs"),
  );
}

/** Stops before anything is touched unless we are root: the lab is made of namespaces, veths and routes. */
export function requireRoot(): void {
  if (process.getuid?.() === 0) return;
  process.stderr.write(
    "bench: must run as root (the lab it brings up is network namespaces, veths and routes on this " +
      "machine): try sudo npm run bench\n",
  );
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------------------
// small helpers

function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

const now = (): number => performance.now();

/** Runs tasks with at most `p` in flight, in list order (like the engine's --parallel); first error wins. */
async function runLimited(tasks: readonly (() => Promise<void>)[], p: number): Promise<void> {
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < tasks.length && !failed) {
      const task = tasks[next++];
      try {
        await task();
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(p, tasks.length) }, worker));
  if (failed) throw failed.error;
}

/** Interleaves per-host lists (h1[0], h2[0], ..., h1[1], ...): independent resources of a fleet, in parallel. */
function interleave<T>(lists: readonly (readonly T[])[]): T[] {
  const out: T[] = [];
  const max = Math.max(0, ...lists.map((l) => l.length));
  for (let i = 0; i < max; i++) for (const l of lists) if (i < l.length) out.push(l[i]);
  return out;
}

interface LabRunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function labRun(
  args: readonly string[],
  opts: { timeoutMs?: number; input?: string } = {},
): LabRunResult {
  const r = spawnSync("bash", [LAB_SCRIPT, ...args], {
    encoding: "utf8",
    env: { ...process.env, ...LAB_ENV },
    timeout: opts.timeoutMs ?? 300_000,
    input: opts.input,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { code: r.status ?? 137, stdout: r.stdout, stderr: r.stderr };
}

/** `lab exec HOST -- sh -s` with `script` on stdin, asynchronously (hosts run in parallel); resolves timing. */
export function labExecScript(
  host: string,
  script: string,
): Promise<{ ms: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t = now();
    const child = spawn("bash", [LAB_SCRIPT, "exec", host, "--", "sh", "-s"], {
      env: { ...process.env, ...LAB_ENV },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) => {
      const ms = now() - t;
      const stderr = Buffer.concat(err).toString();
      if (code !== 0) reject(new Error(`floor batch on ${host} failed (${code}):\n${stderr.slice(-2000)}`));
      else resolve({ ms, stdout: Buffer.concat(out).toString(), stderr });
    });
    child.stdin.end(script);
  });
}

/** One shell script per operation, run one after the other in a fresh `sh` each (as sshd would start it). */
function batchOf(scripts: readonly string[]): string {
  return scripts
    .map((s, i) => {
      const eof = `PNC_BENCH_EOF_${i}`;
      if (s.includes(eof)) throw new Error("internal: heredoc delimiter occurs in a script");
      return `sh <<'${eof}' || { echo "bench: operation ${i} failed" >&2; exit 1; }\n${s}\n${eof}\n`;
    })
    .join("");
}

/** The provider process's SSH counters, as the pool writes them to PNC_SSH_STATS_FILE.PID. */
function readStats(file: string): PoolStats {
  for (let i = 0; i < 20; i++) {
    try {
      return JSON.parse(fs.readFileSync(file, "utf8")) as PoolStats;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        return { handshakes: {}, dials: {}, commands: {} };
      // Rewritten with writeFileSync (at most every 50 ms): a read can meet a half-written file; try again.
    }
  }
  throw new Error(`cannot parse ${file}`);
}

function sum(obj: Readonly<Record<string, number>> | undefined): number {
  return Object.values(obj ?? {}).reduce((a, b) => a + b, 0);
}

/** User + system CPU seconds a process has used so far (from /proc/PID/stat). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime (fields 14, 15) in clock ticks
}

function hwmKiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
}

// ---------------------------------------------------------------------------------------------------------
// the fleet: what a program would declare, per host

type Connection = { host: string; port: number; user: string; privateKey: string };
type PoolInputs = { members: string[]; blockPrefixLength: number };
type ContainerInputs = {
  connection: Connection;
  name: string;
  driver: "netns";
  hostAddress: string;
  localAddress: string;
};
type NatInputs = { connection: Connection; name: string; externalInterface: string };
type NmInputs = { connection: Connection; name: string };

/** One resource of a host's declaration: its resource name and its inputs. */
interface Declared<I> {
  name: string;
  inputs: I;
}

export interface FleetHost {
  host: LabHost;
  /** host:port as the SSH pool names it (after user@). */
  target: string;
  connection: Connection;
  pool: Declared<PoolInputs>;
  containers: Declared<ContainerInputs>[];
  nat: Declared<NatInputs>;
  nm: Declared<NmInputs>;
}

/** One resource operation's subject: what scriptsFor needs, plus the host it belongs to and its name. */
export interface Item extends ScriptItem {
  readonly host: FleetHost;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
}

interface Wave {
  label: string;
  items: Item[];
}

/** What a program declares for one host of N containers: its pool, containers (addresses from the pool), NAT, drop-in. */
function declareHost(
  hostName: string,
  connection: Connection,
  containers: number,
): Pick<FleetHost, "pool" | "containers" | "nat" | "nm"> {
  const width = String(containers).length;
  const blockPrefixLength = containers <= 254 ? 24 : containers <= 16382 ? 30 : 31;
  const names = Array.from({ length: containers }, (_, i) => `c${String(i + 1).padStart(width, "0")}`);
  const pool: PoolInputs = { members: names, blockPrefixLength };
  // Allocations as the pool's check computes them (pure): the containers' addresses.
  const allocations = poolAllocations(pool);
  return {
    pool: { name: `${hostName}-pool`, inputs: pool },
    containers: names.map((name): Declared<ContainerInputs> => ({
      name: `${hostName}-${name}`,
      inputs: {
        connection,
        name,
        driver: "netns",
        hostAddress: allocations[name].hostAddress,
        localAddress: allocations[name].localAddress,
      },
    })),
    nat: { name: `${hostName}-nat`, inputs: { connection, name: "pncbench", externalInterface: "eth0" } },
    nm: { name: `${hostName}-nm`, inputs: { connection, name: "pncbench" } },
  };
}

export function fleet(lab: Lab, opts: Options, delay: number): FleetHost[] {
  const key = fs.readFileSync(lab.hosts[0].privateKeyPath, "utf8");
  const hosts = lab.hosts.filter((h) => /^h\d+$/.test(h.name)).slice(0, opts.hosts);
  return hosts.map((h) => {
    const relayPort = h.relayPort;
    if (delay > 0 && !relayPort) throw new Error(`host ${h.name} has no relay`);
    const connection: Connection =
      delay > 0 && relayPort
        ? { host: "127.0.0.1", port: relayPort, user: h.user, privateKey: key }
        : { host: h.address, port: h.port, user: h.user, privateKey: key };
    return {
      host: h,
      target: `${connection.host}:${connection.port}`,
      connection,
      ...declareHost(h.name, connection, opts.containers),
    };
  });
}

export function item(type: Item["type"], host: FleetHost, declared: Declared<Record<string, unknown>>): Item {
  return { type, host, ...declared };
}

/** The resources in dependency order: pools, then containers, then NAT and NetworkManager. */
function waves(hosts: readonly FleetHost[]): Wave[] {
  return [
    { label: "AddressPool", items: hosts.map((h) => item("AddressPool", h, h.pool)) },
    {
      label: "Container",
      items: interleave(hosts.map((h) => h.containers.map((c) => item("Container", h, c)))),
    },
    {
      label: "NatRule+NmUnmanaged",
      items: interleave(hosts.map((h) => [item("NatRule", h, h.nat), item("NmUnmanaged", h, h.nm)])),
    },
  ];
}

/** Host scripts of `op` for the items of `order` that are on host `h`, in order (pools have none). */
function scriptsOnHost(order: readonly Wave[], h: FleetHost, op: HostOperation): string[] {
  return order
    .flatMap((w) => w.items)
    .filter((i) => i.host === h)
    .map((i) => scriptsFor(i, op))
    .filter((s): s is string => s !== undefined);
}

// ---------------------------------------------------------------------------------------------------------
// result shapes (bench/results/*.json)

interface RoundTrips {
  operations: number;
  commands: number;
  handshakes: number;
  perOperation: number;
  ms: number;
}

interface OursResult {
  phases: Record<string, { ms: number; outcomes: Record<string, number>; providerCpuS: number }>;
  /** Per "phase:wave". */
  roundTrips: Record<string, RoundTrips>;
  cpu: Record<string, number>;
  startupMs: number;
  handshakesPerHost: Record<string, number>;
  dialsPerHost: Record<string, number>;
  commandsPerHost: Record<string, number>;
  peakRssKiB: number;
  sampledPeakRssKiB: number;
}

interface TimedPhases<P> {
  phases: Record<string, P>;
}

type BaselineResult = TimedPhases<{ ms: number; note?: string }> & { handshakes: number };
type FloorResult = TimedPhases<{ ms: number; perHostMs?: number[]; note?: string }>;
export type KernelFloorResult = TimedPhases<{ ms: number; perHostMs: number[] }>;
type Leftovers = Record<string, { netns: number; veths: number }>;

interface RunResult {
  delayMs: number;
  ours: OursResult;
  leftoversAfterOurs: Leftovers;
  baseline?: BaselineResult;
  floor?: FloorResult;
  kernelFloor?: KernelFloorResult;
  leftovers?: Leftovers;
}

interface AllocationRow {
  members: number;
  freshMs: number;
  stableMs: number;
  freshUsPerMember: number;
  stableUsPerMember: number;
}

export interface CheckResult {
  resources: number;
  parallel: number;
  /** All checks through the provider host, after one warm-up check per resource type. */
  grpcMs: number;
  grpcMsPerResource: number;
  providerCpuS: number;
  /** The warm-up: the first check of each resource type (loads the runtime). */
  firstChecksMs: number;
  providerRssBeforeKiB: number;
  providerPeakRssKiB: number;
  /** The runtime's check called directly, in this process (median of 3). */
  inProcessMs: number;
  inProcessMsPerResource: number;
}

export interface AllocationResult {
  rows: AllocationRow[];
  growthFresh: number;
  growthStable: number;
}

interface Machine {
  nproc: number;
  model: string;
  kernel: string;
  memMiB: number;
  node: string;
}

interface Goal {
  goal: string;
  value: string;
  /** null: not measured in this run. */
  met: boolean | null;
}

interface Measured {
  date: string;
  commit: string;
  options: Options;
  machine: Machine;
  runs: RunResult[];
  allocation: AllocationResult;
  check?: CheckResult;
}

interface Results extends Measured {
  goals: Goal[];
  totalSeconds: number;
}

/** The provider host's environment: our runtime, and with --cpu-prof a profile into results/cpu-prof-TAG. */
function providerEnv(cpuProf: boolean, tag: string): Record<string, string> {
  const env: Record<string, string> = { PULUMI_NIXOS_CONTAINERS_RUNTIME: RUNTIME_MODULE };
  if (cpuProf) {
    const dir = path.join(RESULTS, `cpu-prof-${tag}`);
    fs.mkdirSync(dir, { recursive: true });
    env.PNC_BENCH_CPU_PROF_DIR = dir;
    env.NODE_OPTIONS =
      `${process.env.NODE_OPTIONS ?? ""} --require ${path.join(BENCH, "cpuProfile.cjs")}`.trim();
  }
  return env;
}

// ---------------------------------------------------------------------------------------------------------
// ours: the real dynamic-provider host, driven like the engine

async function runOurs(hosts: readonly FleetHost[], opts: Options, delay: number): Promise<OursResult> {
  const statsBase = path.join(os.tmpdir(), `pnc-bench-stats-${process.pid}-${delay}`);
  const env = { ...providerEnv(opts.cpuProf, `D${delay}`), PNC_SSH_STATS_FILE: statsBase };
  const engine = await MiniEngine.start({ cwd: BUILD, env });
  const pid = engine.host.pid;
  const statsFile = `${statsBase}.${pid}`;
  let peakRss = engine.host.rssKiB();
  const sampler = setInterval(() => {
    try {
      peakRss = Math.max(peakRss, engine.host.rssKiB());
    } catch {
      // exited
    }
  }, 50);
  const ws = waves(hosts);
  const state = new Map<string, StateEntry>(); // resource name -> StateEntry
  const stateOf = (item: Item): StateEntry => {
    const entry = state.get(item.name);
    if (!entry) throw new Error(`internal: no state for ${item.name}`);
    return entry;
  };
  const result: Pick<OursResult, "phases" | "roundTrips" | "cpu" | "startupMs"> = {
    phases: {},
    roundTrips: {},
    cpu: {},
    startupMs: engine.host.startupMs,
  };
  const byHost = (stats: PoolStats, key: keyof PoolStats): Record<string, number> =>
    Object.fromEntries(hosts.map((h) => [h.host.name, (stats[key] ?? {})[`root@${h.target}`] ?? 0]));
  const targetsOk = (stats: PoolStats): void => {
    // Pool targets are named user@host:port; fail loudly if that ever changes, instead of reporting zeros.
    const keys = Object.keys(stats.commands ?? {});
    if (keys.length && !keys.some((k) => hosts.some((h) => k === `root@${h.target}`))) {
      throw new Error(`unexpected SSH target names in stats: ${keys.join(", ")}`);
    }
  };

  const phase = async (
    name: string,
    order: readonly Wave[],
    op: (item: Item) => Promise<string>,
    expect?: string,
  ): Promise<void> => {
    const t0 = now();
    const cpuBefore = cpuSeconds(pid);
    const outcomes: Record<string, number> = {};
    for (const wave of order) {
      const before = readStats(statsFile);
      const tw = now();
      await runLimited(
        wave.items.map((item) => async () => {
          const r = await op(item);
          outcomes[r] = (outcomes[r] ?? 0) + 1;
        }),
        opts.parallel,
      );
      const after = readStats(statsFile);
      targetsOk(after);
      const commands = sum(after.commands) - sum(before.commands);
      const handshakes = sum(after.handshakes) - sum(before.handshakes);
      const withHost = wave.items.filter((i) => i.type !== "AddressPool").length;
      result.roundTrips[`${name}:${wave.label}`] = {
        operations: wave.items.length,
        commands,
        handshakes,
        perOperation: withHost ? commands / withHost : 0,
        ms: now() - tw,
      };
    }
    const ms = now() - t0;
    result.cpu[name] = cpuSeconds(pid) - cpuBefore;
    if (expect && Object.keys(outcomes).some((k) => k !== expect)) {
      throw new Error(`${name}: expected every resource to be "${expect}", got ${JSON.stringify(outcomes)}`);
    }
    result.phases[name] = { ms, outcomes, providerCpuS: result.cpu[name] };
    log(`  ours D=${delay} ${name}: ${(ms / 1000).toFixed(2)} s ${JSON.stringify(outcomes)}`);
  };

  try {
    await phase("create", ws, async (item) => {
      state.set(item.name, await engine.create(item.type, item.name, item.inputs));
      return "created";
    });
    await phase("update (no change)", ws, (item) => engine.up(stateOf(item), item.inputs), "same");
    // Force the update path: new provider code, same inputs (what a package upgrade does to every resource).
    for (const type of Object.keys(engine.providers) as (keyof MiniEngine["providers"])[]) {
      engine.providers[type] = `${engine.providers[type]}\n// bench: forced update ${Date.now()}\n`;
    }
    await phase("update (forced)", ws, (item) => engine.up(stateOf(item), item.inputs), "updated");
    await phase(
      "refresh",
      ws,
      async (item) => ((await engine.refresh(stateOf(item))) ? "found" : "gone"),
      "found",
    );
    await phase(
      "delete",
      [...ws].reverse(),
      async (item) => {
        await engine.destroy(stateOf(item));
        state.delete(item.name);
        return "deleted";
      },
      "deleted",
    );
    const stats = readStats(statsFile);
    const handshakesPerHost = byHost(stats, "handshakes");
    const dialsPerHost = byHost(stats, "dials");
    const commandsPerHost = byHost(stats, "commands");
    peakRss = Math.max(peakRss, engine.host.rssKiB());
    return {
      ...result,
      handshakesPerHost,
      dialsPerHost,
      commandsPerHost,
      peakRssKiB: Math.max(peakRss, hwmKiB(pid)),
      sampledPeakRssKiB: peakRss,
    };
  } catch (err) {
    if (err instanceof Error) {
      const logs = engine.host.logs().slice(-30).join("\n");
      err.message += `\nprovider host output (last lines):\n${logs}`;
    }
    throw err;
  } finally {
    clearInterval(sampler);
    await engine.close();
    fs.rmSync(statsFile, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------
// baseline: @pulumi/command's remote.Command: a fresh SSH connection for every resource operation

async function runBaseline(
  hosts: readonly FleetHost[],
  opts: Options,
  delay: number,
): Promise<BaselineResult> {
  const ws = waves(hosts);
  const result: BaselineResult = { phases: {}, handshakes: 0 };
  const once = async (item: Item, op: HostOperation): Promise<void> => {
    const script = scriptsFor(item, op);
    if (script === undefined) return; // AddressPool: state only, no host work either way
    const pool = new SshPool();
    try {
      await pool.host(parseConnection(item.inputs.connection)).runScript(script);
      result.handshakes += sum(pool.stats().handshakes);
    } finally {
      pool.closeAll();
    }
  };
  const phase = async (name: string, order: readonly Wave[], op: HostOperation): Promise<void> => {
    const t0 = now();
    for (const wave of order)
      await runLimited(
        wave.items.map((item) => () => once(item, op)),
        opts.parallel,
      );
    const ms = now() - t0;
    result.phases[name] = { ms };
    log(`  baseline D=${delay} ${name}: ${(ms / 1000).toFixed(2)} s`);
  };
  await phase("create", ws, "create");
  // remote.Command with unchanged inputs: its diff reports no change, and nothing runs on the host.
  result.phases["update (no change)"] = { ms: 0, note: "no host work (diff only)" };
  result.phases["update (forced)"] = { ms: 0, note: "no host work (ours runs none either)" };
  await phase("refresh", ws, "read");
  await phase("delete", [...ws].reverse(), "delete");
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// floor: the same scripts, locally on each host in one batch, no SSH (hosts in parallel)

async function runFloor(hosts: readonly FleetHost[], delay: number): Promise<FloorResult> {
  const ws = waves(hosts);
  const result: FloorResult = { phases: {} };
  const phase = async (name: string, order: readonly Wave[], op: HostOperation): Promise<void> => {
    const batches = hosts.map((h) => ({ h, script: batchOf(scriptsOnHost(order, h, op)) }));
    const t0 = now();
    const runs = await Promise.all(batches.map(({ h, script }) => labExecScript(h.host.name, script)));
    const ms = now() - t0;
    result.phases[name] = { ms, perHostMs: runs.map((r) => r.ms) };
    log(`  floor D=${delay} ${name}: ${(ms / 1000).toFixed(2)} s`);
  };
  await phase("create", ws, "create");
  result.phases["update (no change)"] = { ms: 0, note: "no host work" };
  result.phases["update (forced)"] = { ms: 0, note: "no host work" };
  await phase("refresh", ws, "read");
  await phase("delete", [...ws].reverse(), "delete");
  return result;
}

/**
 * Kernel floor: the same namespaces, veths, addresses and routes made and removed with `ip -batch` (one `ip`
 * process for the host side, one per namespace inside), no checks, no locks, no shell per operation: what the
 * kernel work itself costs. NAT and NetworkManager (two operations per host) are left out. Refresh, between
 * the two: the cheapest observation of every container of a host, one `ip -json -batch` of all links,
 * addresses, routes and namespaces ("refresh"); and, since a read also looks inside (eth0's address, the
 * default route), that plus one `ip -n NAME -json -batch` per namespace ("refresh (with inside)").
 * "exec overhead" is `lab exec HOST -- sh -s` of an empty script, hosts in parallel: included in every floor.
 */
export async function runKernelFloor(hosts: readonly FleetHost[], delay: number): Promise<KernelFloorResult> {
  const result: KernelFloorResult = { phases: {} };
  const createScript = (h: FleetHost): string => {
    const host: string[] = [];
    const inside: string[] = [];
    for (const c of h.containers) {
      const { name, hostAddress: ha, localAddress: la } = c.inputs;
      host.push(
        `netns add ${name}`,
        `link add ve-${name} type veth peer name eth0 netns ${name}`,
        `link set ve-${name} up`,
        `addr add ${ha}/32 dev ve-${name}`,
        `route replace ${la}/32 dev ve-${name}`,
      );
      inside.push(
        `printf '%s\n' 'link set lo up' 'link set eth0 up' 'addr add ${la}/32 dev eth0' 'route replace ${ha}/32 dev eth0' 'route replace default via ${ha} dev eth0' | ip -n ${name} -batch -`,
      );
    }
    return `set -e
ip -batch - <<'EOF'
${host.join("\n")}
EOF
${inside.join("\n")}
`;
  };
  const hostRead = `ip -json -batch - <<'EOF'
link show
addr show
route show
netns list
EOF
`;
  const insideRead = (h: FleetHost): string =>
    h.containers
      .map((c) => `ip -n ${c.inputs.name} -json -batch - <<'EOF'\naddr show dev eth0\nroute show\nEOF\n`)
      .join("");
  const deleteScript = (h: FleetHost): string => `ip -batch - <<'EOF'
${h.containers.map((c) => `netns del ${c.inputs.name}`).join("\n")}
EOF
`;
  // `netns del` returns before the kernel has torn anything down (namespace cleanup runs in a workqueue, the
  // veths go with it): a delete that confirms its veths are gone, as ours does, waits for that too.
  const untilGone = `while :; do case "$(ip -o link show)" in *" ve-c"*) sleep 0.02 ;; *) break ;; esac; done\n`;
  const steps: [string, (h: FleetHost) => string][] = [
    ["exec overhead", () => ""],
    ["create", createScript],
    ["refresh", () => hostRead],
    ["refresh (with inside)", (h) => hostRead + insideRead(h)],
    ["delete", deleteScript],
    ["create again", createScript],
    ["delete (until gone)", (h) => deleteScript(h) + untilGone],
  ];
  for (const [name, make] of steps) {
    const t0 = now();
    const runs = await Promise.all(hosts.map((h) => labExecScript(h.host.name, make(h))));
    const ms = now() - t0;
    result.phases[name] = { ms, perHostMs: runs.map((r) => r.ms) };
    if (name.startsWith("refresh")) {
      // The read must have seen every container: each namespace in the host's own listing.
      const missing = hosts.filter((h, i) =>
        h.containers.some((c) => !runs[i].stdout.includes(`"${c.inputs.name}"`)),
      );
      if (missing.length)
        throw new Error(
          `kernel floor ${name}: containers missing on ${missing.map((h) => h.host.name).join(", ")}`,
        );
    }
    log(`  kernel floor D=${delay} ${name}: ${(ms / 1000).toFixed(3)} s`);
  }
  return result;
}

/** Removes anything a failed run left on the hosts (the delete scripts are idempotent), and checks. */
async function cleanHosts(hosts: readonly FleetHost[]): Promise<void> {
  const reversed = [...waves(hosts)].reverse();
  await Promise.all(
    hosts.map((h) => labExecScript(h.host.name, batchOf(scriptsOnHost(reversed, h, "delete")))),
  );
}

function leftovers(hosts: readonly FleetHost[]): Leftovers {
  const out: Leftovers = {};
  for (const h of hosts) {
    const r = labRun([
      "exec",
      h.host.name,
      "--",
      "sh",
      "-c",
      "ls /run/netns | wc -l; ip -o link | grep -c ' ve-' || true",
    ]);
    const [ns, links] = r.stdout.trim().split("\n").map(Number);
    if (ns || links) out[h.host.name] = { netns: ns, veths: links };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// allocation: AddressPool's allocator, pools of 1,000 and 64,000 members in a /8 (pure: no lab, no root)

const ALLOCATION_CIDR = "10.0.0.0/8";

export function benchAllocation(sizes: readonly number[]): AllocationResult {
  const rows: AllocationRow[] = [];
  const time = (fn: () => void): number => {
    fn(); // warm up
    const runs: number[] = [];
    let reps = 0;
    const t0 = now();
    while (reps < 5 || (now() - t0 < 1000 && reps < 50)) {
      const t = now();
      fn();
      runs.push(now() - t);
      reps++;
    }
    runs.sort((a, b) => a - b);
    return runs[Math.floor(runs.length / 2)];
  };
  for (const n of sizes) {
    const width = String(n).length;
    const members = Array.from({ length: n }, (_, i) => `c${String(i).padStart(width, "0")}`);
    const spec = { cidr: ALLOCATION_CIDR, blockPrefixLength: 30, members, static: {}, exclude: [] };
    const fresh = time(() => allocate(spec, {}));
    const previous = allocate(spec, {});
    // The common check path: everything already allocated, plus one new member.
    const grown = { ...spec, members: [...members.slice(1), "znew"] };
    const stable = time(() => allocate(grown, previous));
    rows.push({
      members: n,
      freshMs: fresh,
      stableMs: stable,
      freshUsPerMember: (fresh * 1000) / n,
      stableUsPerMember: (stable * 1000) / n,
    });
  }
  const [a, b] = [rows[0], rows[rows.length - 1]];
  return {
    rows,
    growthFresh: b.freshUsPerMember / a.freshUsPerMember,
    growthStable: b.stableUsPerMember / a.stableUsPerMember,
  };
}

// ---------------------------------------------------------------------------------------------------------
// check: the cost of `check` for a preview of a fleet of R resources (no lab: check never uses SSH)

/** A placeholder key: check only keeps it (as a secret); nothing connects. */
const PLACEHOLDER_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nbench placeholder\n-----END OPENSSH PRIVATE KEY-----\n";

/** A resource of a preview: its type, name and raw inputs. */
type PreviewItem = Pick<Item, "type" | "name" | "inputs">;

/** A fleet of about `resources` resources, 50 per host (pool, 47 containers, NAT, drop-in), pools first. */
function previewFleet(resources: number): PreviewItem[] {
  const hostCount = Math.max(1, Math.round(resources / 50));
  const containers = Math.max(1, Math.floor(resources / hostCount) - 3);
  const hosts = Array.from({ length: hostCount }, (_, i) =>
    declareHost(
      `p${i + 1}`,
      { host: `192.0.2.${i + 1}`, port: 22, user: "root", privateKey: PLACEHOLDER_KEY },
      containers,
    ),
  );
  return [
    ...hosts.map((h): PreviewItem => ({ type: "AddressPool", ...h.pool })),
    ...hosts.flatMap((h) => h.containers.map((c): PreviewItem => ({ type: "Container", ...c }))),
    ...hosts.flatMap((h): PreviewItem[] => [
      { type: "NatRule", ...h.nat },
      { type: "NmUnmanaged", ...h.nm },
    ]),
  ];
}

export async function benchCheck(resources: number, parallel: number, cpuProf = false): Promise<CheckResult> {
  const items = previewFleet(resources);
  // In process: the runtime's check, as the provider host calls it (median of 3).
  const inProcess: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    const t = now();
    for (const i of items) checkInputs(i.type, i.inputs);
    inProcess.push(now() - t);
  }
  inProcess.sort((a, b) => a - b);
  // Through the real dynamic-provider host over gRPC, P at a time, as the engine runs a preview.
  const engine = await MiniEngine.start({
    cwd: BUILD,
    env: providerEnv(cpuProf, "check"),
  });
  try {
    const pid = engine.host.pid;
    const rssBefore = engine.host.rssKiB();
    const tc = now();
    const firstOfType = new Map(items.map((i) => [i.type, i]));
    for (const i of firstOfType.values()) await engine.check(i.type, i.name, i.inputs);
    const coldMs = now() - tc;
    const cpu0 = cpuSeconds(pid);
    const t0 = now();
    await runLimited(
      items.map((i) => async () => {
        await engine.check(i.type, i.name, i.inputs);
      }),
      parallel,
    );
    const grpcMs = now() - t0;
    const result: CheckResult = {
      resources: items.length,
      parallel,
      grpcMs,
      grpcMsPerResource: grpcMs / items.length,
      providerCpuS: cpuSeconds(pid) - cpu0,
      firstChecksMs: coldMs,
      providerRssBeforeKiB: rssBefore,
      providerPeakRssKiB: hwmKiB(pid),
      inProcessMs: inProcess[1],
      inProcessMsPerResource: inProcess[1] / items.length,
    };
    log(
      `check of ${items.length} resources: ${grpcMs.toFixed(0)} ms over gRPC (P = ${parallel}), ${inProcess[1].toFixed(0)} ms in process`,
    );
    return result;
  } finally {
    await engine.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// report

const PHASES = ["create", "update (no change)", "update (forced)", "refresh", "delete"];

function fmtS(ms: number | undefined): string {
  return ms === undefined ? "—" : (ms / 1000).toFixed(2);
}
function fmtX(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || !b || !a ? "—" : `${(a / b).toFixed(2)}`;
}

function table(run: RunResult): string {
  const lines: string[] = [];
  lines.push(
    `| phase (D = ${run.delayMs} ms) | ours s | baseline s | floor s | kernel floor s | ours/baseline | ours/floor | ours/kernel floor | provider CPU s |`,
  );
  lines.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const p of PHASES) {
    const o = run.ours.phases[p]?.ms;
    const b = run.baseline?.phases[p]?.ms;
    const f = run.floor?.phases[p]?.ms;
    const cpu = run.ours.phases[p]?.providerCpuS;
    const k = run.kernelFloor?.phases[p]?.ms;
    lines.push(
      `| ${p} | ${fmtS(o)} | ${b ? fmtS(b) : "—"} | ${f ? fmtS(f) : "—"} | ${k ? fmtS(k) : "—"} | ${fmtX(o, b)} | ${fmtX(o, f)} | ${fmtX(o, k)} | ${cpu === undefined ? "—" : cpu.toFixed(2)} |`,
    );
  }
  const kf = run.kernelFloor?.phases;
  if (kf) {
    lines.push(
      "",
      `kernel floor: refresh = one \`ip -json -batch\` (links, addresses, routes, netns) per host, ${fmtS(kf.refresh?.ms)} s; ` +
        `with one \`ip -n NAME -json -batch\` inside each namespace too, ${fmtS(kf["refresh (with inside)"]?.ms)} s ` +
        `(ours/that ${fmtX(run.ours.phases.refresh?.ms, kf["refresh (with inside)"]?.ms)}); ` +
        (kf["delete (until gone)"]
          ? `delete = one \`ip -batch\` of \`netns del\` per host, which returns before the kernel has torn the ` +
            `namespaces and their veths down; waiting until every veth is gone, ${fmtS(kf["delete (until gone)"].ms)} s ` +
            `(ours/that ${fmtX(run.ours.phases.delete?.ms, kf["delete (until gone)"].ms)}); `
          : "") +
        `every floor includes \`lab exec\` start-up, ${fmtS(kf["exec overhead"]?.ms)} s for an empty script.`,
    );
  }
  return lines.join("\n");
}

function rtTable(run: RunResult): string {
  const lines = [
    "| operation | ops | SSH commands | per op | new handshakes | wave s |",
    "|---|---:|---:|---:|---:|---:|",
  ];
  for (const [k, v] of Object.entries(run.ours.roundTrips)) {
    if (k.endsWith("AddressPool")) continue;
    lines.push(
      `| ${k} | ${v.operations} | ${v.commands} | ${v.perOperation.toFixed(2)} | ${v.handshakes} | ${fmtS(v.ms)} |`,
    );
  }
  return lines.join("\n");
}

/** Resources of a bench fleet: per host a pool, its containers, NAT and the drop-in. */
function resourceCount(opts: Options): number {
  return opts.hosts * (opts.containers + 3);
}

function goals(results: Measured, opts: Options): Goal[] {
  const g: Goal[] = [];
  const at = (d: number): RunResult | undefined => results.runs.find((r) => r.delayMs === d);
  const [d0, d10, d50] = [at(0), at(10), at(50)];
  const add = (goal: string, value: string, met: boolean | null): void => {
    g.push({ goal, value, met });
  };
  const notMeasured = (goal: string): void => add(goal, "not measured", null);
  const x = (v: number): string => `${v.toFixed(2)}×`;

  // Issue 16: the physical limit.
  const kernel = (goal: string, phase: string, limit: number, kernelPhase = phase): number | undefined => {
    const k = d0?.kernelFloor?.phases[kernelPhase]?.ms;
    const o = d0?.ours.phases[phase]?.ms;
    if (k === undefined || o === undefined) return void notMeasured(goal);
    add(goal, x(o / k), o / k <= limit);
    return o / k;
  };
  kernel("create ≤ 1.5× kernel floor at D = 0", "create", 1.5);
  const deleteRatio = kernel("delete ≤ 2× kernel floor at D = 0", "delete", 2);
  const gone = d0?.kernelFloor?.phases["delete (until gone)"]?.ms;
  if (deleteRatio !== undefined && gone !== undefined) {
    g[g.length - 1].value +=
      ` (${x(d0!.ours.phases.delete.ms / gone)} of the floor that waits until the veths are gone)`;
  }
  const refreshGoal = "refresh ≤ 1.5× its kernel floor at D = 0 (one `ip -json` read per host)";
  const kr = d0?.kernelFloor?.phases.refresh?.ms;
  const ki = d0?.kernelFloor?.phases["refresh (with inside)"]?.ms;
  if (d0 && kr !== undefined && ki !== undefined) {
    const o = d0.ours.phases.refresh.ms;
    add(
      refreshGoal,
      `${x(o / kr)} (${x(o / ki)} of the floor that also reads inside each namespace)`,
      o / kr <= 1.5,
    );
  } else notMeasured(refreshGoal);
  const vsBaseline = "create at D = 50 ms ≥ 5× faster than the baseline";
  if (d50?.baseline) {
    const v = d50.baseline.phases.create.ms / d50.ours.phases.create.ms;
    add(vsBaseline, x(v), v >= 5);
  } else notMeasured(vsBaseline);
  const vsD0 = "create at D = 50 ms within 1.3× of ours at D = 0";
  if (d50 && d0) {
    const v = d50.ours.phases.create.ms / d0.ours.phases.create.ms;
    add(vsD0, x(v), v <= 1.3);
  } else notMeasured(vsD0);
  const a = results.allocation;
  const sizes = a.rows.map((r) => r.members).join(" → ");
  add(
    `allocation growth per member ≤ 1.5× (${sizes} members, ${ALLOCATION_CIDR}, /30 blocks)`,
    `fresh ${x(a.growthFresh)}, stable re-check ${x(a.growthStable)}`,
    Math.max(a.growthFresh, a.growthStable) <= 1.5,
  );
  const resources = resourceCount(opts);
  const memoryGoal = `provider ≤ 200 MB at 400 resources (this run: ${resources})`;
  if (results.runs.length) {
    const rss = Math.max(...results.runs.map((r) => r.ours.peakRssKiB)) / 1024;
    add(memoryGoal, `${rss.toFixed(0)} MB`, resources >= 400 ? rss <= 200 : null);
  } else notMeasured(memoryGoal);

  // Issue 6, still reported.
  if (d10?.baseline) {
    const v = d10.baseline.phases.create.ms / d10.ours.phases.create.ms;
    add("(issue 6) create ≥ 10× faster than baseline at D = 10 ms", `${v.toFixed(1)}×`, v >= 10);
  } else notMeasured("(issue 6) create ≥ 10× faster than baseline at D = 10 ms");
  if (results.runs.length) {
    const hs = results.runs.flatMap((r) => Object.values(r.ours.handshakesPerHost));
    add(
      "(issue 6) one SSH handshake per host per provider process",
      `max ${Math.max(...hs)} (per host, per run)`,
      Math.max(...hs) <= 1,
    );
    const rt = results.runs.map((r) => r.ours.roundTrips["create:Container"].perOperation);
    add(
      "(issue 6) ≤ 2 round trips per Container create",
      `${Math.max(...rt).toFixed(2)}`,
      Math.max(...rt) <= 2,
    );
  }
  if (d0?.floor) {
    const floor = d0.floor;
    const worst = ["create", "refresh", "delete"].map((p): [string, number] => [
      p,
      d0.ours.phases[p].ms / floor.phases[p].ms,
    ]);
    const max = Math.max(...worst.map((w) => w[1]));
    add(
      "(issue 6) ours ≤ 2× floor (our scripts, no SSH) at D = 0",
      worst.map(([p, v]) => `${p} ${v.toFixed(2)}×`).join(", "),
      max <= 2,
    );
  } else notMeasured("(issue 6) ours ≤ 2× floor (our scripts, no SSH) at D = 0");
  return g;
}

function report(results: Results, opts: Options): string {
  const out: string[] = [];
  out.push(
    `H = ${opts.hosts} hosts × N = ${opts.containers} containers (netns driver), ${resourceCount(opts)} resources, P = ${opts.parallel}; ${results.machine.nproc} cores, ${results.machine.model}, kernel ${results.machine.kernel}, ${results.machine.node}; commit ${results.commit}; whole run ${results.totalSeconds.toFixed(0)} s`,
    "",
  );
  for (const run of results.runs) {
    out.push(table(run), "");
    out.push(
      `handshakes per host (ours, whole run): ${JSON.stringify(run.ours.handshakesPerHost)}; baseline handshakes: ${run.baseline?.handshakes ?? "—"}; ` +
        `provider peak RSS ${(run.ours.peakRssKiB / 1024).toFixed(0)} MB; provider start ${fmtS(run.ours.startupMs)} s`,
      "",
    );
    out.push(rtTable(run), "");
  }
  out.push(
    `| allocation (${ALLOCATION_CIDR}, /30 blocks) | fresh ms | µs/member | stable re-check ms | µs/member |`,
    "|---:|---:|---:|---:|---:|",
  );
  const rows = results.allocation.rows;
  for (const r of rows) {
    out.push(
      `| ${r.members} | ${r.freshMs.toFixed(2)} | ${r.freshUsPerMember.toFixed(2)} | ${r.stableMs.toFixed(2)} | ${r.stableUsPerMember.toFixed(2)} |`,
    );
  }
  out.push(
    `growth per member ${rows[0].members} → ${rows[rows.length - 1].members}: fresh ${results.allocation.growthFresh.toFixed(2)}×, stable ${results.allocation.growthStable.toFixed(2)}×`,
    "",
  );
  const c = results.check;
  if (c) {
    out.push(
      `| check, preview of ${c.resources} resources | total ms | ms/resource | provider CPU s | provider peak RSS MB |`,
      "|---|---:|---:|---:|---:|",
      `| provider host over gRPC (P = ${c.parallel}) | ${c.grpcMs.toFixed(0)} | ${c.grpcMsPerResource.toFixed(2)} | ${c.providerCpuS.toFixed(2)} | ${(c.providerPeakRssKiB / 1024).toFixed(0)} |`,
      `| runtime check in process | ${c.inProcessMs.toFixed(0)} | ${c.inProcessMsPerResource.toFixed(2)} | — | — |`,
      "",
      `(first check of each of the 4 types, loading the runtime: ${c.firstChecksMs.toFixed(0)} ms, not in the total; provider RSS at start ${(c.providerRssBeforeKiB / 1024).toFixed(0)} MB)`,
      "",
    );
  }
  out.push("| goal | value | status |", "|---|---|---|");
  for (const g of results.goals) {
    out.push(`| ${g.goal} | ${g.value} | ${g.met === null ? "n/a" : g.met ? "met" : "MISSED"} |`);
  }
  return out.join("\n");
}

export function machine(): Machine {
  const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
  return {
    nproc: os.cpus().length,
    model: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    kernel: os.release(),
    memMiB: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
  };
}

// ---------------------------------------------------------------------------------------------------------
// main

let labIsUp = false;

function labDown(): void {
  if (!labIsUp) return;
  labIsUp = false;
  const r = labRun(["down"], { timeoutMs: 120_000 });
  if (r.code !== 0) log(`lab down failed (${r.code}): ${r.stderr}`);
}

async function main(): Promise<void> {
  if (path.basename(BUILD) !== ".build") {
    throw new Error(`run the compiled bench (npm run bench), not ${__filename}`);
  }
  const opts = parseArgs(process.argv.slice(2));
  if (opts.lab) requireRoot();
  const t0 = now();
  completeSnapshot();
  const head: Omit<Measured, "allocation"> = {
    date: new Date().toISOString(),
    commit: spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO, encoding: "utf8" }).stdout.trim(),
    options: opts,
    machine: machine(),
    runs: [],
  };
  log(`allocation: pools of ${opts.allocSizes.join(" and ")} members`);
  const measured: Measured = { ...head, allocation: benchAllocation(opts.allocSizes) };
  if (opts.checkResources > 0)
    measured.check = await benchCheck(opts.checkResources, opts.parallel, opts.cpuProf);

  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      log(`${sig}: taking the lab down`);
      if (!opts.keepLab) labDown();
      process.exit(130);
    });
  }
  // A clean lab of our own: never the shared one.
  if (opts.lab) {
    labRun(["down"]);
    labIsUp = true;
  }
  const latencies = opts.lab ? [...new Set(opts.delays)] : [];
  try {
    for (const delay of latencies) {
      const up = labRun(["up", String(opts.hosts), ...(delay > 0 ? ["--latency", String(delay)] : [])]);
      if (up.code !== 0) throw new Error(`lab up failed (${up.code}):\n${up.stderr}`);
      const lab = readLab(LAB_ENV.PNC_LAB_DIR);
      if (delay > 0 && lab.latencyMs !== delay)
        throw new Error(`lab latency is ${lab.latencyMs}, wanted ${delay}`);
      const hosts = fleet(lab, opts, delay);
      log(`D = ${delay} ms: ${hosts.length} hosts × ${opts.containers} containers, P = ${opts.parallel}`);
      let run: RunResult | undefined;
      try {
        const ours = await runOurs(hosts, opts, delay);
        run = { delayMs: delay, ours, leftoversAfterOurs: leftovers(hosts) };
        if (opts.baseline) run.baseline = await runBaseline(hosts, opts, delay);
        if (opts.floor) {
          run.floor = await runFloor(hosts, delay);
          run.kernelFloor = await runKernelFloor(hosts, delay);
        }
        run.leftovers = leftovers(hosts);
      } finally {
        await cleanHosts(hosts).catch((err: unknown) =>
          log(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`),
        );
      }
      measured.runs.push(run);
    }
  } finally {
    if (!opts.keepLab) labDown();
  }
  const results: Results = {
    ...measured,
    goals: goals(measured, opts),
    totalSeconds: (now() - t0) / 1000,
  };
  const text = report(results, opts);
  console.log(text);
  fs.mkdirSync(path.dirname(opts.out), { recursive: true });
  fs.writeFileSync(opts.out, JSON.stringify({ ...results, table: text }, null, 2) + "\n");
  log(`done in ${results.totalSeconds.toFixed(0)} s; results in ${path.relative(process.cwd(), opts.out)}`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`bench: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    labDown();
    process.exit(1);
  });
}
