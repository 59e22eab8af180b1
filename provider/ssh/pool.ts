// The SSH connection pool: one connection per distinct target per process, shared by every resource type,
// reopened when it drops, closed when idle, with a per-host cap on concurrent channels.
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { Client, ClientChannel, ConnectConfig } from "ssh2";
import { ConnectionSpec, ProxySpec, describeTarget, parseHostKeySpec } from "./connection";
import { SshError, SshErrorKind, tail } from "./errors";
import {
  describeHostKeySpec,
  fingerprintOf,
  hostKeyAlgorithmsFor,
  keyTypeOf,
  matchesHostKey,
} from "./hostKey";
import { quoteArgv } from "./quote";

export interface ExecOptions {
  /** Bytes written to the command's stdin, then closed. */
  readonly stdin?: string | Buffer;
  /** Our own timeout (the engine passes none to providers). @default 300 s */
  readonly timeoutMs?: number;
  /** Throw a `command-failed` SshError on a non-zero exit. @default true */
  readonly check?: boolean;
  /** What to show for the command in errors, when argv would be too long or too noisy. */
  readonly display?: string;
}

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  /** Exit status, or null when the command died of a signal. */
  readonly code: number | null;
  readonly signal: string | null;
}

export interface PoolOptions {
  /** Concurrent channels per connection; sshd refuses more than MaxSessions (10 by default). @default 8 */
  readonly maxChannels: number;
  /** Close a connection after this long with nothing running, so the provider process can exit. @default 5000 */
  readonly idleMs: number;
  /** First retry delay after a failed dial; doubles each time, capped at 2 s. @default 100 */
  readonly retryBaseMs: number;
}

export interface PoolStats {
  /** Completed SSH handshakes, per target. */
  readonly handshakes: Record<string, number>;
  /** Dial attempts, per target (a preview must make none). */
  readonly dials: Record<string, number>;
  /** Commands (channels) run, per target. */
  readonly commands: Record<string, number>;
}

const DEFAULT_OPTIONS: PoolOptions = {
  maxChannels: Number(process.env.PNC_SSH_MAX_CHANNELS ?? 8),
  idleMs: Number(process.env.PNC_SSH_IDLE_MS ?? 5000),
  retryBaseMs: 100,
};

/** The server refused a new channel (e.g. at MaxSessions): the command was never started. */
class ChannelOpenError extends SshError {
  constructor(message: string, details: { target: string; command: string }) {
    super("disconnected", message, details);
  }
}

/** A counting semaphore: callers wait in order for one of `size` slots. */
class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}

  async acquire(): Promise<void> {
    if (this.active < this.size) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Takes a slot only if one is free now. */
  tryAcquire(): boolean {
    if (this.active >= this.size || this.waiting.length > 0) return false;
    this.active++;
    return true;
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

/** The command every script runs under (the script comes over stdin). */
const SCRIPT_COMMAND = "sh -s";

/**
 * A channel opened ahead of need, running SCRIPT_COMMAND and waiting for its script on stdin: the next script
 * sent to the host skips the channel open and the exec request (two round trips, and sshd's fork and exec of
 * the shell). It holds one channel slot of the host while it waits.
 */
interface WarmChannel {
  readonly client: Client;
  /** The channel, or undefined when it could not be opened. */
  readonly stream: Promise<ClientChannel | undefined>;
  /** Whether the channel closed before anyone took it. */
  closed(): boolean;
  /** Hands the channel and its slot to a command. */
  take(): void;
}

/** One SSH target (host, port, user, credentials, jump host): one live connection at most, shared. */
export class SshConnection {
  readonly target: string;
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private observedFingerprint: string | undefined;
  private observedKey: Buffer | undefined;
  private readonly channels: Semaphore;
  private warm: WarmChannel | undefined;
  private busy = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pool: SshPool,
    private readonly spec: ProxySpec,
    private readonly proxy: SshConnection | undefined,
  ) {
    this.target = describeTarget(spec) + (proxy ? ` (via ${proxy.target})` : "");
    this.channels = new Semaphore(pool.options.maxChannels);
  }

  /** The fingerprint of the key this host presented, connecting first if needed. */
  async fingerprint(expected?: string): Promise<string> {
    await this.hold(async () => undefined, expected);
    return this.observedFingerprint as string;
  }

  /** Runs one command built from an argument vector with the one quoting function. */
  exec(argv: readonly string[], options: ExecOptions = {}, expected?: string): Promise<ExecResult> {
    return this.run(quoteArgv(argv), options, expected);
  }

  /** The public key lines this host and its jump host (when it has one) presented, connecting first if needed. */
  async presentedKeys(expected?: string): Promise<{ hostKey: string; proxyHostKeys: string[] }> {
    await this.fingerprint(expected);
    const line = (key: Buffer | undefined) => (key ? `${keyTypeOf(key)} ${key.toString("base64")}` : "");
    const hops: string[] = [];
    for (let hop = this.proxy; hop; hop = hop.proxy) hops.push(line(hop.observedKey));
    return { hostKey: line(this.observedKey), proxyHostKeys: hops };
  }

  /**
   * Runs a whole batch of commands in one round trip: the script goes to `sh -s` over stdin, so it never
   * shows in `ps` and has no argv length limit. Build its lines with `quoteArgv`.
   */
  runScript(
    script: string,
    options: Omit<ExecOptions, "stdin"> = {},
    expected?: string,
  ): Promise<ExecResult> {
    return this.run(
      SCRIPT_COMMAND,
      { display: options.display ?? firstLines(script), ...options, stdin: script },
      expected,
    );
  }

  private async run(
    command: string,
    options: ExecOptions,
    expected: string | undefined,
  ): Promise<ExecResult> {
    // The channel slot first, the connection second: a command queued behind the cap must not hold a
    // connection that may drop while it waits (it then starts on the next one). A warm channel comes with
    // its slot.
    const warm = this.takeWarm(command);
    if (!warm) await this.channels.acquire();
    try {
      this.pool.count("commands", this.target);
      // A refused channel open means the command never started, so trying again cannot run it twice.
      // sshd frees a session slot a moment after the channel closes, so a burst can briefly hit MaxSessions.
      for (let attempt = 1; ; attempt++) {
        try {
          const ready = attempt === 1 ? warm : undefined;
          return await this.hold((client) => this.execOn(client, command, options, ready), expected);
        } catch (err) {
          if (!(err instanceof ChannelOpenError) || attempt >= 8) throw err;
          await sleep(25 * attempt);
        }
      }
    } finally {
      this.channels.release();
    }
  }

  /** The warm channel for `command`, with its slot, if there is one. */
  private takeWarm(command: string): WarmChannel | undefined {
    const warm = this.warm;
    if (command !== SCRIPT_COMMAND || !warm) return undefined;
    this.warm = undefined;
    warm.take();
    return warm;
  }

  /**
   * Opens a warm channel on `client` for the next script, when none is waiting and a channel slot is free:
   * called as a script starts, so the next batch of the host finds its channel open.
   */
  private warmUp(client: Client): void {
    if (this.spec.sudo || this.warm || this.client !== client || !this.channels.tryAcquire()) return;
    let taken = false;
    let closed = false;
    const drop = (): void => {
      closed = true;
      client.removeListener("close", drop);
      if (this.warm === warm) this.warm = undefined;
      if (!taken) {
        taken = true;
        this.channels.release();
      }
    };
    client.once("close", drop);
    const stream = new Promise<ClientChannel | undefined>((resolve) => {
      const failed = attempt(() =>
        client.exec(SCRIPT_COMMAND, (err, channel: ClientChannel) => {
          if (err) {
            drop();
            resolve(undefined);
            return;
          }
          // A shell that ended before its script came (killed, or the session ended) is no use.
          channel.once("exit", drop);
          channel.once("close", drop);
          resolve(channel);
        }),
      );
      if (failed) {
        drop();
        resolve(undefined);
      }
    });
    const warm: WarmChannel = {
      client,
      stream,
      closed: () => closed,
      take: () => {
        taken = true;
        client.removeListener("close", drop);
      },
    };
    this.warm = warm;
  }

  /** Opens a channel for `command` on `client`, or uses the warm one taken for it. */
  private openOn(
    client: Client,
    command: string,
    warm: WarmChannel | undefined,
    opened: (err: Error | undefined, stream: ClientChannel) => void,
  ): void {
    const open = (): void => {
      const failed = attempt(() => client.exec(command, opened));
      if (failed) opened(failed, undefined as unknown as ClientChannel);
    };
    if (!warm) return open();
    void warm.stream.then((stream) => {
      if (stream && warm.client === client && !warm.closed()) return opened(undefined, stream);
      stream?.close();
      open();
    });
  }

  private execOn(
    client: Client,
    plain: string,
    options: ExecOptions,
    warm?: WarmChannel,
  ): Promise<ExecResult> {
    const display = options.display ?? plain;
    const sudo = this.spec.sudo ? { password: this.spec.sudoPassword } : undefined;
    const command = sudo ? sudoCommand(plain, sudo.password !== undefined) : plain;
    const timeoutMs = options.timeoutMs ?? 300_000;
    const refused = (message: string) =>
      new ChannelOpenError(`could not open a channel: ${message}`, { target: this.target, command: display });
    return new Promise<ExecResult>((resolve, reject) => {
      // A server that never answers the channel request must not hang us: bounded like a dial. The command
      // never started then, so it is safe to say so (and to retry on another connection).
      let channelOpen = false;
      const openMs = this.spec.perDialTimeout > 0 ? this.spec.perDialTimeout * 1000 : timeoutMs;
      const openTimer = setTimeout(() => {
        if (channelOpen) return;
        channelOpen = true;
        client.end();
        // Not retried (that could take long again): the next operation dials afresh.
        reject(
          new SshError(
            "timeout",
            `the host did not open a channel within ${openMs / 1000} s (perDialTimeout); the command never started`,
            { target: this.target, command: display },
          ),
        );
      }, openMs);
      // ssh2 throws at once on a client whose connection has just ended: the command never started.
      const opened = attempt(() =>
        this.openOn(client, command, warm, (err, stream: ClientChannel) => {
          if (channelOpen) {
            stream?.close();
            return;
          }
          channelOpen = true;
          clearTimeout(openTimer);
          if (err) {
            reject(refused(err.message));
            return;
          }
          if (command === SCRIPT_COMMAND) this.warmUp(client);
          const out: Buffer[] = [];
          const errOut: Buffer[] = [];
          let exit: { code: number | null; signal: string | null } | undefined;
          let settled = false;
          const timer = setTimeout(() => {
            settled = true;
            stream.close();
            reject(
              new SshError(
                "timeout",
                `the command did not finish within ${timeoutMs} ms (it may still be running)`,
                {
                  target: this.target,
                  command: display,
                  hint: "the operation took longer than its limit: raise the resource's `timeouts` input (seconds, e.g. timeouts: { create: 3600 } for a long NixOS build); the next `pulumi up` finishes what it began",
                },
              ),
            );
          }, timeoutMs);
          stream.on("data", (chunk: Buffer) => out.push(chunk));
          // Through sudo, stdin waits until sudo has let the command run (SUDO_RAN on stderr), so no byte
          // of it can reach sudo's password prompt; the password goes only when sudo asks (SUDO_PROMPT).
          const gate = sudo ? new SudoGate(sudo.password) : undefined;
          stream.stderr.on("data", (chunk: Buffer) => {
            if (!gate) {
              errOut.push(chunk);
              return;
            }
            const { passthrough, write } = gate.feed(chunk);
            if (passthrough.length > 0) errOut.push(passthrough);
            if (write === "password") stream.write(`${sudo?.password ?? ""}\n`);
            else if (write === "stdin") stream.end(options.stdin ?? undefined);
            else if (write === "close") stream.end();
          });
          stream.on("exit", (code: number | null, signal?: string) => {
            exit = { code: typeof code === "number" ? code : null, signal: signal ?? null };
          });
          stream.on("close", () => {
            clearTimeout(timer);
            if (settled) return;
            settled = true;
            const stdout = Buffer.concat(out).toString("utf8");
            const stderr = Buffer.concat(errOut).toString("utf8");
            if (!exit) {
              reject(
                new SshError(
                  "disconnected",
                  "the connection closed before the command reported its exit status",
                  {
                    target: this.target,
                    command: display,
                    stderrTail: tail(stderr),
                  },
                ),
              );
              return;
            }
            if (gate && !gate.ran) {
              reject(sudoRefused(this.target, this.spec.user, display, stderr + gate.leftover));
              return;
            }
            const result: ExecResult = { stdout, stderr, ...exit };
            if (options.check !== false && result.code !== 0) {
              reject(
                new SshError("command-failed", "the command failed", {
                  target: this.target,
                  command: display,
                  exitCode: result.code,
                  signal: result.signal,
                  stderrTail: tail(stderr),
                  stdout,
                  stderr,
                }),
              );
              return;
            }
            resolve(result);
          });
          if (!gate) stream.end(options.stdin ?? undefined);
        }),
      );
      if (opened !== undefined) {
        clearTimeout(openTimer);
        reject(refused(opened.message));
      }
    });
  }

  /** Keeps the connection open (and not idle) while `work` runs. */
  private async hold<T>(work: (client: Client) => Promise<T>, expected?: string): Promise<T> {
    this.busy++;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    try {
      const client = await this.connect(expected);
      // The connection may have been opened for another caller: check this caller's recorded key too.
      if (expected && !this.spec.hostKey && this.observedFingerprint !== expected) {
        throw new SshError(
          "host-key-mismatch",
          `host key mismatch for ${this.spec.host}:${this.spec.port}: expected ${expected}, but the host presented ${this.observedFingerprint}; refused`,
          { target: this.target },
        );
      }
      return await work(client);
    } finally {
      this.busy--;
      this.armIdleTimer();
    }
  }

  private armIdleTimer(): void {
    if (this.busy > 0 || !this.client) return;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.close(), this.pool.options.idleMs);
    this.idleTimer.unref();
  }

  /** Opens a TCP tunnel through this host (used when this host is another target's jump host). */
  async tunnel(host: string, port: number, timeoutSeconds: number): Promise<ClientChannel> {
    this.busy++;
    let held = true;
    const releaseHold = (): void => {
      if (!held) return;
      held = false;
      this.busy--;
      this.armIdleTimer();
    };
    try {
      const client = await this.connect(undefined);
      // A bastion that never answers the tunnel request: bounded like a dial of the target.
      const openMs = (timeoutSeconds > 0 ? timeoutSeconds : 15) * 1000;
      const stream = await new Promise<ClientChannel>((resolve, reject) => {
        let settled = false;
        const timer = setTimeout(
          () =>
            reject(
              new SshError(
                "timeout",
                `the jump host did not open a tunnel to ${host}:${port} within ${openMs / 1000} s`,
                {
                  target: this.target,
                },
              ),
            ),
          openMs,
        );
        client.forwardOut("127.0.0.1", 0, host, port, (err, s) => {
          clearTimeout(timer);
          if (settled) {
            s?.close(); // answered after we gave up
            return;
          }
          settled = true;
          if (err) reject(err);
          else resolve(s);
        });
      });
      stream.on("close", releaseHold);
      return stream;
    } catch (err) {
      releaseHold();
      throw err;
    }
  }

  close(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const client = this.client;
    this.client = undefined;
    client?.end();
  }

  private connect(expected: string | undefined): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    if (!this.connecting) {
      this.connecting = this.dialWithRetries(expected).finally(() => (this.connecting = undefined));
    }
    return this.connecting;
  }

  private async dialWithRetries(expected: string | undefined): Promise<Client> {
    const limit = this.spec.dialErrorLimit < 0 ? Infinity : Math.max(1, this.spec.dialErrorLimit);
    let lastError: SshError | undefined;
    for (let attempt = 1; attempt <= limit; attempt++) {
      try {
        const client = await this.dialOnce(expected);
        this.client = client;
        client.on("close", () => {
          if (this.client === client) this.client = undefined;
        });
        return client;
      } catch (err) {
        lastError =
          err instanceof SshError ? err : new SshError("unreachable", String(err), { target: this.target });
        // Only dialing is retried, and only when retrying can help.
        if (lastError.kind === "authentication" || lastError.kind === "host-key-mismatch") throw lastError;
        if (attempt < limit) await sleep(Math.min(this.pool.options.retryBaseMs * 2 ** (attempt - 1), 2000));
      }
    }
    const attempts = limit === Infinity ? "" : ` after ${limit} attempt${limit === 1 ? "" : "s"}`;
    throw new SshError(
      lastError!.kind,
      `${lastError!.message.split("\n")[0].replace(/^ssh \S+: /, "")}${attempts}`,
      {
        target: this.target,
      },
    );
  }

  private async dialOnce(expected: string | undefined): Promise<Client> {
    this.pool.count("dials", this.target);
    const spec = this.spec;
    const sock = this.proxy
      ? await this.proxy.tunnel(spec.host, spec.port, spec.perDialTimeout).catch((err: unknown) => {
          if (err instanceof SshError) throw err;
          throw new SshError(
            "unreachable",
            `the jump host could not reach ${spec.host}:${spec.port}: ${String(err)}`,
            {
              target: this.target,
            },
          );
        })
      : undefined;
    const hostKeySpec = spec.hostKey ? parseHostKeySpec(spec.hostKey) : undefined;
    let rejected: { expected: string; presented: string } | undefined;
    const config: ConnectConfig = {
      host: spec.host,
      port: spec.port,
      username: spec.user,
      sock,
      readyTimeout: spec.perDialTimeout > 0 ? spec.perDialTimeout * 1000 : 2_147_483_647,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      hostVerifier: (key: Buffer) => {
        const presented = fingerprintOf(key);
        this.observedFingerprint = presented;
        this.observedKey = key;
        if (hostKeySpec && !matchesHostKey(hostKeySpec, key)) {
          rejected = { expected: describeHostKeySpec(hostKeySpec), presented };
          return false;
        }
        // Checked before authenticating, so credentials never go to a host with the wrong key.
        if (!hostKeySpec && expected && expected !== presented) {
          rejected = { expected, presented };
          return false;
        }
        return true;
      },
    };
    // Pinned to one key: negotiate that key's algorithm, whatever else the host offers.
    const serverHostKey = hostKeyAlgorithmsFor(hostKeySpec);
    if (serverHostKey) config.algorithms = { serverHostKey: serverHostKey as never };
    const methods: string[] = [];
    if (spec.privateKey) {
      config.privateKey = spec.privateKey;
      if (spec.privateKeyPassword) config.passphrase = spec.privateKeyPassword;
      methods.push("publickey");
    }
    if (spec.agentSocketPath) {
      config.agent = spec.agentSocketPath;
      methods.push("agent");
    }
    if (spec.password) {
      config.password = spec.password;
      methods.push("password");
    }
    // @pulumi/command's order: the key takes preference over the password.
    config.authHandler = methods as ConnectConfig["authHandler"];

    return new Promise<Client>((resolve, reject) => {
      const client = new Client();
      let done = false;
      const fail = (kind: SshErrorKind, message: string): void => {
        if (done) return;
        done = true;
        client.end();
        sock?.destroy();
        reject(new SshError(kind, message, { target: this.target }));
      };
      client.on("ready", () => {
        if (done) return;
        done = true;
        this.pool.count("handshakes", this.target);
        resolve(client);
      });
      client.on("error", (err: Error & { level?: string; code?: string }) => {
        if (rejected) {
          fail(
            "host-key-mismatch",
            `host key mismatch for ${spec.host}:${spec.port}: expected ${rejected.expected}, but the host presented ${rejected.presented}; connection refused before authenticating`,
          );
        } else if (err.level === "client-authentication") {
          fail(
            "authentication",
            `authentication failed for user "${spec.user}" (tried: ${methods.join(", ") || "none"})`,
          );
        } else if (err.level === "client-timeout" || err.code === "ETIMEDOUT") {
          fail("timeout", `no SSH handshake within ${spec.perDialTimeout} s`);
        } else {
          fail("unreachable", `cannot connect: ${err.code ?? ""} ${err.message}`.replace(/\s+/g, " ").trim());
        }
      });
      client.on("close", () => fail("unreachable", "the server closed the connection during the handshake"));
      try {
        client.connect(config);
        // Request/response traffic: without this, Nagle's algorithm and delayed ACKs add ~40 ms per command.
        client.setNoDelay(true);
      } catch (err) {
        // ssh2 throws synchronously for unusable credentials (e.g. a key it cannot parse, a missing passphrase).
        fail("authentication", `unusable credentials: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
  }
}

/** What callers use: the shared connection of a target, with the host key this caller expects (from state). */
export class SshHost {
  constructor(
    private readonly connection: SshConnection,
    private readonly expectedFingerprint: string | undefined,
  ) {}

  get target(): string {
    return this.connection.target;
  }

  /** The fingerprint of the key this host presented, connecting first if needed. */
  fingerprint(): Promise<string> {
    return this.connection.fingerprint(this.expectedFingerprint);
  }

  /** The public key lines the host and its jump hosts (nearest first) presented. */
  presentedKeys(): Promise<{ hostKey: string; proxyHostKeys: string[] }> {
    return this.connection.presentedKeys(this.expectedFingerprint);
  }

  /** Runs one command built from an argument vector with the one quoting function. */
  exec(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return this.connection.exec(argv, options, this.expectedFingerprint);
  }

  /** Runs a batch of commands as one script over stdin (`sh -s`): one round trip. */
  runScript(script: string, options: Omit<ExecOptions, "stdin"> = {}): Promise<ExecResult> {
    return this.connection.runScript(script, options, this.expectedFingerprint);
  }

  close(): void {
    this.connection.close();
  }
}

/** The process-wide pool. Reached through `require()`, so every resource type in the provider process shares it. */
export class SshPool {
  readonly options: PoolOptions;
  private readonly connections = new Map<string, SshConnection>();
  private readonly handles = new Map<string, SshHost>();
  private readonly counters: {
    handshakes: Map<string, number>;
    dials: Map<string, number>;
    commands: Map<string, number>;
  } = {
    handshakes: new Map(),
    dials: new Map(),
    commands: new Map(),
  };

  constructor(options: Partial<PoolOptions> = {}) {
    this.options = { ...DEFAULT_OPTIONS, ...options };
  }

  /**
   * A handle on the shared connection for a target. `expectedFingerprint` is the key recorded in state: a
   * host presenting another key is refused (when `hostKey` is set, that wins). Callers with and without a
   * recorded key share one connection.
   */
  host(spec: ConnectionSpec, expectedFingerprint?: string): SshHost {
    const key = poolKey(spec);
    let connection = this.connections.get(key);
    if (!connection) connection = this.connectionFor(spec);
    const handleKey = `${key}/${expectedFingerprint ?? ""}`;
    let handle = this.handles.get(handleKey);
    if (!handle) {
      handle = new SshHost(connection, expectedFingerprint);
      this.handles.set(handleKey, handle);
    }
    return handle;
  }

  /** The shared connection of a target, reached through its chain of jump hosts (each one shared too). */
  private connectionFor(spec: ProxySpec): SshConnection {
    const key = poolKey(spec);
    let connection = this.connections.get(key);
    if (!connection) {
      const proxy = spec.proxy ? this.connectionFor(spec.proxy) : undefined;
      const { proxy: _proxy, ...own } = spec;
      connection = new SshConnection(this, own, proxy);
      this.connections.set(key, connection);
    }
    return connection;
  }

  count(counter: keyof PoolStats, target: string): void {
    const map = this.counters[counter];
    map.set(target, (map.get(target) ?? 0) + 1);
    // Tests and benchmarks read the counters of a provider process they cannot call into. Written at most
    // every 50 ms (the last change always lands), so counting does not slow a busy provider.
    const file = process.env.PNC_SSH_STATS_FILE;
    if (file && !this.statsTimer) {
      this.statsTimer = setTimeout(() => {
        this.statsTimer = undefined;
        writeFileSync(`${file}.${process.pid}`, JSON.stringify(this.stats()));
      }, 50);
    }
  }

  private statsTimer: NodeJS.Timeout | undefined;

  stats(): PoolStats {
    return {
      handshakes: Object.fromEntries(this.counters.handshakes),
      dials: Object.fromEntries(this.counters.dials),
      commands: Object.fromEntries(this.counters.commands),
    };
  }

  closeAll(): void {
    for (const connection of this.connections.values()) connection.close();
  }
}

/** Identity of a target (with its jump host): a hash, so credentials never sit in a map key someone might log. */
function poolKey(spec: ProxySpec | ConnectionSpec): string {
  return createHash("sha256").update(JSON.stringify(spec)).digest("hex");
}

function firstLines(script: string): string {
  const lines = script.trim().split("\n");
  return lines.length <= 3 ? lines.join("; ") : `${lines.slice(0, 3).join("; ")}; … (${lines.length} lines)`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const GLOBAL_KEY = Symbol.for("pulumi-nixos-containers.sshPool");
type GlobalWithPool = typeof globalThis & { [GLOBAL_KEY]?: SshPool };

/**
 * The pool of this process. Kept on `globalThis` as well as in this module, so that two copies of the package
 * loaded in one process (a nested node_modules) still share connections.
 */
export function sharedPool(): SshPool {
  const g = globalThis as GlobalWithPool;
  g[GLOBAL_KEY] ??= new SshPool();
  return g[GLOBAL_KEY];
}

/** Runs `work`, returning what it threw (undefined when it did not). */
function attempt(work: () => unknown): Error | undefined {
  try {
    work();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/** What sudo prints when it asks for the password, and what the command prints once sudo let it run. */
const SUDO_PROMPT = "PNC-SUDO-PROMPT:";
const SUDO_RAN = "PNC-SUDO-RAN";

/**
 * `command` run as root through sudo: `-n` (never ask) without a password, `-S` (the password on stdin, only
 * when asked) with one; either way the password is never on a command line. The inner shell announces that
 * sudo let it run before anything reads stdin.
 */
function sudoCommand(command: string, withPassword: boolean): string {
  const inner = `echo ${SUDO_RAN} >&2; exec ${command}`;
  const how = withPassword ? ["-S", "-p", SUDO_PROMPT] : ["-n"];
  return quoteArgv(["sudo", ...how, "--", "sh", "-c", inner]);
}

/** Watches a sudo command's stderr: says when to send the password and when stdin may flow. */
class SudoGate {
  ran = false;
  private asked = 0;
  private buffer = "";
  constructor(private readonly password: string | undefined) {}

  /** What sudo said that is not passed through yet (its error, when it never ran the command). */
  get leftover(): string {
    return this.buffer;
  }

  feed(chunk: Buffer): { passthrough: Buffer; write?: "password" | "stdin" | "close" } {
    if (this.ran) return { passthrough: chunk };
    this.buffer += chunk.toString("utf8");
    if (this.buffer.includes(SUDO_RAN)) {
      this.ran = true;
      const rest = this.buffer.slice(this.buffer.indexOf(SUDO_RAN) + SUDO_RAN.length).replace(/^\n/, "");
      const before = this.buffer.slice(0, this.buffer.indexOf(SUDO_RAN)).split(SUDO_PROMPT).join("");
      this.buffer = "";
      return { passthrough: Buffer.from(before + rest), write: "stdin" };
    }
    if (this.buffer.includes(SUDO_PROMPT)) {
      this.asked++;
      const text = this.buffer.split(SUDO_PROMPT).join("");
      this.buffer = "";
      // Asked again: the password was wrong; give sudo nothing more (it then fails).
      return {
        passthrough: Buffer.from(text),
        write: this.asked === 1 && this.password !== undefined ? "password" : "close",
      };
    }
    return { passthrough: Buffer.alloc(0) };
  }
}

/** sudo did not run the command: say why, and what to change. */
function sudoRefused(target: string, user: string, command: string, stderr: string): SshError {
  const said = stderr
    .split("\n")
    .filter((l) => /^sudo:|sorry|incorrect|not in the sudoers|not allowed/i.test(l))
    .join("; ");
  return new SshError(
    "authentication",
    `sudo refused to run commands as root for user "${user}"${said ? `: ${said}` : ""}`,
    {
      target,
      command,
      hint: `give "${user}" sudo rights on the host (passwordless, NOPASSWD, or set connection.sudoPassword), or connect as root`,
    },
  );
}
