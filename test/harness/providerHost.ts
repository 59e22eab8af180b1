// Test harness: spawns the REAL @pulumi/pulumi dynamic-provider host (`cmd/dynamic-provider`) and drives it over
// gRPC exactly as the Pulumi engine does (Configure, Check, Diff, Create, Read, Update, Delete), without the CLI.
//
// How the engine talks to this host, and what the harness reproduces:
// - Process: `node <@pulumi/pulumi>/cmd/dynamic-provider <engine-address>`; it binds 127.0.0.1:0 and prints the
//   port as the first stdout line. The engine address argument is REQUIRED but never dialled by the host.
//   The CLI starts the plugin with the project directory as cwd, and the host deserializes providers with
//   require-from-string, whose module paths derive from process.cwd(): `cwd` therefore decides what a provider
//   shim's run-time `require("pulumi-nixos-containers/bin/runtime")` resolves to. Pass `{ cwd: projectDir }`.
//   @pulumi/pulumi itself is resolved from `cwd` first (as the CLI's `pulumi-resource-pulumi-nodejs` does),
//   falling back to the copy next to this harness.
// - Configure is sent once at start (the engine always configures a provider before using it); its
//   `acceptSecrets` answer is false for this host, so, like the engine, the harness then sends secrets as
//   plaintext and re-marks outputs secret only where the input of the same key held a secret (annotateSecrets).
// - Properties carry `__provider` (serializeProvider's text) next to the inputs; Check/Create/Update/Read
//   results carry it back. `undefined` properties are omitted on the way in, as the engine does.
// - Provider errors become thrown ProviderHostError with the provider's message; a create/update error that
//   carries `id` comes back with `initFailure: { id, properties, reasons }` (ErrorResourceInitFailed detail).
// - What the provider prints (stdout after the port line, stderr) is what the CLI shows the user: see logs().
//   pulumi.log.* in provider code prints to the console too, because the CLI does not set PULUMI_NODEJS_ENGINE
//   for plugins; `routeLogsToEngine: true` sets it to a fake Engine service so those calls arrive as Log RPCs.
// - Always `await closeAll()` in afterAll (or close() each host): hosts are real processes. As a backstop, each
//   host is preloaded with parentWatch.cjs and exits when its stdin pipe from this process closes, i.e. when the
//   test worker dies by any means; a process 'exit' hook also SIGKILLs leftovers.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import * as readline from "node:readline";
import * as grpc from "@grpc/grpc-js";
import * as anyproto from "google-protobuf/google/protobuf/any_pb";
import * as provrpc from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import * as statusproto from "@pulumi/pulumi/proto/status_pb";
import { startFakeEngine, type EngineLog, type FakeEngine } from "./fakeEngine";
import {
  PROVIDER_KEY,
  annotateSecrets,
  fromStruct,
  revealMap,
  toMap,
  toStruct,
  type PropertyMap,
} from "./wire";

export * from "./wire";
export type { EngineLog } from "./fakeEngine";

export interface StartOptions {
  /** Working directory of the host process (the Pulumi project dir in real use). Default: process.cwd(). */
  cwd?: string;
  /** Extra environment, merged over this process's environment minus PULUMI_NODEJS_* (the CLI sets none). */
  env?: Record<string, string>;
  /** Stack config sent in Configure (keys like "project:key"; values may be secret(...)). Default {}. */
  config?: Record<string, unknown>;
  /** Send Configure at start, as the engine does. Default true. */
  configure?: boolean;
  /** Set PULUMI_NODEJS_ENGINE so pulumi.log.* in provider code becomes Log RPCs to the fake engine. */
  routeLogsToEngine?: boolean;
  /** Give up if the host has not printed its port within this time. Default 20 s. */
  startTimeoutMs?: number;
  /** gRPC deadline per call. Default 60 s. */
  callTimeoutMs?: number;
}

export interface CheckFailure {
  property: string;
  reason: string;
}

export interface DiffResult {
  /** true when the provider reported DIFF_SOME. */
  changes: boolean;
  /** DIFF_SOME / DIFF_NONE / DIFF_UNKNOWN (no diff method, or `changes` left undefined: the engine then diffs inputs itself, __provider included). */
  kind: "some" | "none" | "unknown";
  replaces: string[];
  deleteBeforeReplace: boolean;
}

export interface InitFailure {
  id: string;
  properties: PropertyMap;
  reasons: string[];
}

/** A failed RPC, carrying the provider's own error text as `message`. */
export class ProviderHostError extends Error {
  constructor(
    message: string,
    readonly method: string,
    readonly code: grpc.status,
    readonly initFailure?: InitFailure,
  ) {
    super(message);
    this.name = "ProviderHostError";
  }
}

export interface OutputLine {
  stream: "stdout" | "stderr";
  line: string;
}

export interface ProviderHost {
  check(
    urn: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<{ inputs: PropertyMap; failures: CheckFailure[] }>;
  diff(
    urn: string,
    id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
    oldInputs?: Record<string, unknown>,
  ): Promise<DiffResult>;
  create(urn: string, inputs: Record<string, unknown>): Promise<{ id: string; outs: PropertyMap }>;
  read(
    urn: string,
    id: string,
    props: Record<string, unknown>,
    inputs?: Record<string, unknown>,
  ): Promise<{ id: string; props: PropertyMap; inputs: PropertyMap; returnedInputs: boolean }>;
  update(
    urn: string,
    id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
    oldInputs?: Record<string, unknown>,
  ): Promise<{ outs: PropertyMap }>;
  delete(
    urn: string,
    id: string,
    olds: Record<string, unknown>,
    oldInputs?: Record<string, unknown>,
  ): Promise<void>;
  /** PID of the provider host process (for memory measurement, see rssKiB()). */
  readonly pid: number;
  /** Milliseconds from spawn until the host printed its port. */
  readonly startupMs: number;
  /** What Configure answered (false for @pulumi/pulumi's host). */
  readonly acceptsSecrets: boolean;
  /** Resident set size of the host process now, from /proc (Linux). */
  rssKiB(): number;
  /** Everything the user would see: "[stdout] …", "[stderr] …", "[engine:info] …". Complete after close(). */
  logs(): string[];
  output(): OutputLine[];
  engineLogs(): EngineLog[];
  /** Exit code/signal once the process has exited, else undefined. */
  exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  close(): Promise<void>;
}

const live = new Set<HostImpl>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const h of live) h.killNow();
  });
}

/** Close every host started by this process (use in afterAll). */
export async function closeAll(): Promise<void> {
  await Promise.all([...live].map((h) => h.close()));
}

/** Number of hosts started and not yet closed (tests can assert it is 0). */
export function liveHosts(): number {
  return live.size;
}

/** The text the engine stores in `__provider`: what dynamic.Resource computes for `provider`. */
export async function serializeProvider(provider: object): Promise<string> {
  // Loaded lazily: @pulumi/pulumi is slow to import and only this helper needs the whole SDK.
  const pulumi = await import("@pulumi/pulumi");
  const sf = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
  return sf.text;
}

/** Inputs plus `__provider`, as the program registers a dynamic resource. */
export function withProvider(providerText: string, inputs: Record<string, unknown>): Record<string, unknown> {
  return { ...inputs, [PROVIDER_KEY]: providerText };
}

/**
 * URN of a dynamic resource: `new dynamic.Resource(p, name, props, opts, module, type)` registers type
 * `pulumi-nodejs:dynamic/<module>:<type>`; pass that (or any full type token) as `type`.
 */
export function urnFor(type: string, name: string, stack = "dev", project = "test"): string {
  return `urn:pulumi:${stack}::${project}::${type}::${name}`;
}

function resolveHostScript(cwd: string): string {
  const candidates = [path.join(cwd, "noop.js"), __filename];
  for (const from of candidates) {
    try {
      const pkg = createRequire(from).resolve("@pulumi/pulumi/package.json");
      return path.join(path.dirname(pkg), "cmd", "dynamic-provider", "index.js");
    } catch {
      // try the next candidate
    }
  }
  throw new Error(`cannot resolve @pulumi/pulumi from ${cwd} or from the harness`);
}

function cleanEnv(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("PULUMI_NODEJS_") && v !== undefined) env[k] = v;
  }
  return { ...env, ...extra };
}

function typeOfUrn(urn: string): string {
  const parts = urn.split("::");
  return parts.length >= 4 ? (parts[2].split("$").pop() ?? "") : "";
}

function nameOfUrn(urn: string): string {
  const parts = urn.split("::");
  return parts.length >= 4 ? parts.slice(3).join("::") : "";
}

function parseInitFailure(err: grpc.ServiceError): InitFailure | undefined {
  const bins = err.metadata?.get("grpc-status-details-bin") ?? [];
  for (const bin of bins) {
    if (typeof bin === "string") continue;
    const status = statusproto.Status.deserializeBinary(new Uint8Array(bin));
    for (const detail of status.getDetailsList() as anyproto.Any[]) {
      if (detail.getTypeName() !== "pulumirpc.ErrorResourceInitFailed") continue;
      const f = provproto.ErrorResourceInitFailed.deserializeBinary(detail.getValue_asU8());
      return { id: f.getId(), properties: fromStruct(f.getProperties()), reasons: f.getReasonsList() };
    }
  }
  return undefined;
}

type Unary<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: Partial<grpc.CallOptions>,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => grpc.ClientUnaryCall;

class HostImpl implements ProviderHost {
  readonly pid: number;
  acceptsSecrets = false;
  private readonly lines: OutputLine[] = [];
  private status: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly child: ChildProcess,
    private readonly client: provrpc.ResourceProviderClient,
    private readonly engine: FakeEngine,
    readonly startupMs: number,
    private readonly callTimeoutMs: number,
    firstLines: OutputLine[],
    exited: Promise<void>,
  ) {
    if (child.pid === undefined) throw new Error("provider host has no pid");
    this.pid = child.pid;
    this.lines = firstLines;
    this.exited = exited;
    void exited.then(() => {
      this.status = { code: child.exitCode, signal: child.signalCode };
    });
  }

  private call<Req, Res>(name: string, method: Unary<Req, Res>, req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      const deadline = new Date(Date.now() + this.callTimeoutMs);
      method.call(this.client, req, new grpc.Metadata(), { deadline }, (err, res) => {
        if (err) {
          let message = err.details || err.message;
          if (this.status) {
            const tail = this.lines
              .filter((l) => l.stream === "stderr")
              .slice(-10)
              .map((l) => l.line)
              .join("\n");
            message += ` (provider host exited: code ${this.status.code}, signal ${this.status.signal}; stderr:\n${tail})`;
          }
          reject(new ProviderHostError(message, name, err.code, parseInitFailure(err)));
        } else {
          resolve(res);
        }
      });
    });
  }

  /** What the engine marshals for a provider: secrets stripped unless the provider accepts them. */
  private outgoing(m: Record<string, unknown>): PropertyMap {
    const typed = toMap(m);
    return this.acceptsSecrets ? typed : revealMap(typed);
  }

  private incoming(s: Parameters<typeof fromStruct>[0], ins: PropertyMap): PropertyMap {
    const outs = fromStruct(s);
    return this.acceptsSecrets ? outs : annotateSecrets(outs, ins);
  }

  async configure(config: Record<string, unknown>): Promise<void> {
    const req = new provproto.ConfigureRequest();
    const args = toMap(config);
    const vars = req.getVariablesMap();
    for (const [k, v] of Object.entries(args)) vars.set(k, typeof v === "string" ? v : JSON.stringify(v));
    req.setArgs(toStruct(args));
    req.setAcceptsecrets(true);
    req.setAcceptresources(true);
    req.setSendsOldInputs(true);
    req.setSendsOldInputsToDelete(true);
    req.setUrn(urnFor("pulumi:providers:pulumi-nodejs", "default"));
    req.setName("default");
    req.setType("pulumi:providers:pulumi-nodejs");
    const res = await this.call("configure", this.client.configure, req);
    this.acceptsSecrets = res.getAcceptsecrets();
  }

  async check(urn: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    const req = new provproto.CheckRequest();
    const newsTyped = toMap(news);
    req.setUrn(urn);
    req.setName(nameOfUrn(urn));
    req.setType(typeOfUrn(urn));
    req.setOlds(toStruct(this.outgoing(olds)));
    req.setNews(toStruct(this.outgoing(news)));
    const res = await this.call("check", this.client.check, req);
    return {
      inputs: this.incoming(res.getInputs(), newsTyped),
      failures: res.getFailuresList().map((f) => ({ property: f.getProperty(), reason: f.getReason() })),
    };
  }

  async diff(
    urn: string,
    id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
    oldInputs?: Record<string, unknown>,
  ): Promise<DiffResult> {
    const req = new provproto.DiffRequest();
    req.setId(id);
    req.setUrn(urn);
    req.setName(nameOfUrn(urn));
    req.setType(typeOfUrn(urn));
    req.setOlds(toStruct(this.outgoing(olds)));
    req.setNews(toStruct(this.outgoing(news)));
    req.setOldInputs(toStruct(this.outgoing(oldInputs ?? olds)));
    const res = await this.call("diff", this.client.diff, req);
    const c = res.getChanges();
    const kind =
      c === provproto.DiffResponse.DiffChanges.DIFF_SOME
        ? "some"
        : c === provproto.DiffResponse.DiffChanges.DIFF_NONE
          ? "none"
          : "unknown";
    return {
      changes: kind === "some",
      kind,
      replaces: res.getReplacesList(),
      deleteBeforeReplace: res.getDeletebeforereplace(),
    };
  }

  async create(urn: string, inputs: Record<string, unknown>) {
    const req = new provproto.CreateRequest();
    const typed = toMap(inputs);
    req.setUrn(urn);
    req.setName(nameOfUrn(urn));
    req.setType(typeOfUrn(urn));
    req.setProperties(toStruct(this.outgoing(inputs)));
    req.setTimeout(this.callTimeoutMs / 1000);
    const res = await this.call("create", this.client.create, req);
    return { id: res.getId(), outs: this.incoming(res.getProperties(), typed) };
  }

  async read(urn: string, id: string, props: Record<string, unknown>, inputs?: Record<string, unknown>) {
    const req = new provproto.ReadRequest();
    const propsTyped = toMap(props);
    const inputsTyped = toMap(inputs ?? props);
    req.setId(id);
    req.setUrn(urn);
    req.setName(nameOfUrn(urn));
    req.setType(typeOfUrn(urn));
    req.setProperties(toStruct(this.outgoing(props)));
    req.setInputs(toStruct(this.outgoing(inputs ?? props)));
    const res = await this.call("read", this.client.read, req);
    // No inputs in the response: the engine keeps the old inputs.
    const resInputs = res.getInputs();
    return {
      id: res.getId(),
      props: this.incoming(res.getProperties(), propsTyped),
      inputs: resInputs ? this.incoming(resInputs, inputsTyped) : inputsTyped,
      /** Whether the provider handed inputs back (else the engine keeps the old ones). */
      returnedInputs: resInputs !== undefined && resInputs !== null,
    };
  }

  async update(
    urn: string,
    id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
    oldInputs?: Record<string, unknown>,
  ) {
    const req = new provproto.UpdateRequest();
    const newsTyped = toMap(news);
    req.setId(id);
    req.setUrn(urn);
    req.setName(nameOfUrn(urn));
    req.setType(typeOfUrn(urn));
    req.setOlds(toStruct(this.outgoing(olds)));
    req.setNews(toStruct(this.outgoing(news)));
    req.setOldInputs(toStruct(this.outgoing(oldInputs ?? olds)));
    req.setTimeout(this.callTimeoutMs / 1000);
    const res = await this.call("update", this.client.update, req);
    return { outs: this.incoming(res.getProperties(), newsTyped) };
  }

  async delete(urn: string, id: string, olds: Record<string, unknown>, oldInputs?: Record<string, unknown>) {
    const req = new provproto.DeleteRequest();
    req.setId(id);
    req.setUrn(urn);
    req.setName(nameOfUrn(urn));
    req.setType(typeOfUrn(urn));
    req.setProperties(toStruct(this.outgoing(olds)));
    req.setOldInputs(toStruct(this.outgoing(oldInputs ?? olds)));
    req.setTimeout(this.callTimeoutMs / 1000);
    await this.call("delete", this.client.delete, req);
  }

  rssKiB(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, "utf8");
    const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    if (!m) throw new Error(`no VmRSS for pid ${this.pid}`);
    return Number(m[1]);
  }

  output(): OutputLine[] {
    return [...this.lines];
  }

  engineLogs(): EngineLog[] {
    return this.engine.logs();
  }

  logs(): string[] {
    return [
      ...this.lines.map((l) => `[${l.stream}] ${l.line}`),
      ...this.engine.logs().map((l) => `[engine:${l.severity}] ${l.message}`),
    ];
  }

  exitStatus() {
    return this.status;
  }

  killNow(): void {
    if (this.status === undefined && this.child.exitCode === null && this.child.signalCode === null) {
      try {
        process.kill(this.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.client.close();
      if (this.child.exitCode === null && this.child.signalCode === null) {
        try {
          process.kill(this.pid, "SIGTERM");
        } catch {
          // already gone
        }
        const timer = setTimeout(() => this.killNow(), 2000);
        await this.exited;
        clearTimeout(timer);
      }
      await this.engine.close();
      live.delete(this);
    })();
    return this.closing;
  }
}

/** Spawn the dynamic-provider host, read its port, connect, and (by default) Configure it. */
export async function startProviderHost(opts: StartOptions = {}): Promise<ProviderHost> {
  installExitHook();
  const cwd = opts.cwd ?? process.cwd();
  const script = resolveHostScript(cwd);
  const engine = await startFakeEngine();
  const env = cleanEnv(opts.env);
  if (opts.routeLogsToEngine) env.PULUMI_NODEJS_ENGINE = engine.address;

  const t0 = performance.now();
  // parentWatch.cjs makes the host exit when this process dies (stdin EOF), even if afterAll never runs.
  const watch = path.join(__dirname, "parentWatch.cjs");
  const child = spawn(process.execPath, ["--require", watch, script, engine.address], {
    cwd,
    env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const lines: OutputLine[] = [];
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // Streams close after exit: wait for them too so logs() is complete after close().
  const drained = Promise.all([
    new Promise<void>((r) => child.stdout?.once("close", () => r())),
    new Promise<void>((r) => child.stderr?.once("close", () => r())),
  ]);
  const exitedAndDrained = exited.then(() => drained).then(() => undefined);
  child.once("error", () => undefined);

  let resolvePort: (p: number) => void = () => undefined;
  const portPromise = new Promise<number>((r) => (resolvePort = r));
  let portSeen = false;
  if (!child.stdout || !child.stderr) throw new Error("provider host has no stdio pipes");
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    if (!portSeen && /^\d+$/.test(line.trim())) {
      portSeen = true;
      resolvePort(Number(line.trim()));
    } else {
      lines.push({ stream: "stdout", line });
    }
  });
  readline
    .createInterface({ input: child.stderr })
    .on("line", (line) => lines.push({ stream: "stderr", line }));

  const timeoutMs = opts.startTimeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  const failure = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`provider host printed no port within ${timeoutMs} ms`)),
      timeoutMs,
    );
    void exited.then(() => reject(new Error(`provider host exited before printing its port`)));
    child.once("error", reject);
  });
  let port: number;
  try {
    port = await Promise.race([portPromise, failure]);
  } catch (e) {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGKILL");
    await engine.close();
    const stderr = lines.map((l) => l.line).join("\n");
    throw new Error(`${(e as Error).message}\n${stderr}`);
  } finally {
    clearTimeout(timer);
  }
  const startupMs = performance.now() - t0;

  const client = new provrpc.ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const host = new HostImpl(
    child,
    client,
    engine,
    startupMs,
    opts.callTimeoutMs ?? 60_000,
    lines,
    exitedAndDrained,
  );
  live.add(host);
  if (opts.configure ?? true) {
    try {
      await host.configure(opts.config ?? {});
    } catch (e) {
      await host.close();
      throw e;
    }
  }
  return host;
}
