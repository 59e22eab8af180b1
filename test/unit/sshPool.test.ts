// The SSH pool against ssh2's own in-process Server (no sshd, no root, no lab): dial retries and their limit,
// handshake timeouts, the per-host channel cap, dropped connections (never re-run), host key refusal before
// authenticating, and one shared connection per target. Counted on the server side wherever possible.
import * as net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AuthContext, Connection, ParsedKey, Server, ServerChannel, utils } from "ssh2";
import {
  ConnectionSpec,
  SshError,
  SshPool,
  fingerprintOf,
  parseConnection,
  quoteArgv,
} from "../../provider/ssh";

const HOST_KEY = utils.generateKeyPairSync("ed25519");
const OTHER_HOST_KEY = utils.generateKeyPairSync("ed25519");
const CLIENT_KEY = utils.generateKeyPairSync("ed25519");
const STRANGER_KEY = utils.generateKeyPairSync("ed25519");

function parsed(text: string): ParsedKey {
  const key = utils.parseKey(text);
  if (key instanceof Error) throw key;
  return key;
}

const CLIENT_PUBLIC = parsed(CLIENT_KEY.public);
const HOST_FINGERPRINT = fingerprintOf(parsed(HOST_KEY.public).getPublicSSH());
const OTHER_FINGERPRINT = fingerprintOf(parsed(OTHER_HOST_KEY.public).getPublicSSH());

/** One exec request as the server saw it: reply with `finish`, or keep the channel open. */
interface ExecCall {
  readonly command: string;
  readonly stream: ServerChannel;
  finish(stdout?: string, code?: number): void;
}

/**
 * An SSH server in this process: ssh2's `Server`, fed the sockets of a plain TCP listener (`injectSocket`), so
 * the test can count TCP connections and drop them abruptly. Accepts only CLIENT_KEY, for user root.
 */
class FakeSshd {
  /** TCP connections accepted. */
  tcpConnections = 0;
  /** ssh2 `connection` events (one per client that sent its identification). */
  sshConnections = 0;
  /** Every authentication request, as `method` (including `none`). */
  readonly authAttempts: string[] = [];
  /** Every exec request, in order. */
  readonly execs: string[] = [];
  /** Exec channels open right now, and the most ever open at once. */
  open = 0;
  maxOpen = 0;
  /** Refuse this many session channel opens before accepting again. */
  refuseSessions = 0;
  refusedSessions = 0;
  /** Leave this many session channel opens unanswered (neither accepted nor refused). */
  ignoreSessions = 0;
  ignoredSessions = 0;
  onExec: (call: ExecCall) => void = (call) => call.finish(`ran ${call.command}\n`);

  private readonly sockets = new Set<net.Socket>();
  private readonly connections = new Set<Connection>();
  private readonly tcp: net.Server;
  private readonly ssh: Server;

  constructor(hostKey: string = HOST_KEY.private) {
    this.ssh = new Server({ hostKeys: [hostKey] }, (connection) => this.onConnection(connection));
    this.tcp = net.createServer((socket) => {
      this.tcpConnections++;
      this.sockets.add(socket);
      socket.setNoDelay(true);
      socket.on("close", () => this.sockets.delete(socket));
      this.ssh.injectSocket(socket);
    });
  }

  /** TCP connections open right now. */
  get liveConnections(): number {
    return this.sockets.size;
  }

  get port(): number {
    return (this.tcp.address() as net.AddressInfo).port;
  }

  listen(port = 0): Promise<void> {
    return new Promise((resolve, reject) => {
      this.tcp.once("error", reject);
      this.tcp.listen(port, "127.0.0.1", () => resolve());
    });
  }

  /** Cuts every connection at the TCP level, as a crash or a network failure would. */
  dropAbruptly(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  /** Ends every connection the polite way: SSH_MSG_DISCONNECT, then FIN. */
  disconnectAll(): void {
    for (const connection of this.connections) connection.end();
  }

  close(): Promise<void> {
    this.dropAbruptly();
    if (!this.tcp.listening) return Promise.resolve();
    return new Promise((resolve) => this.tcp.close(() => resolve()));
  }

  private onConnection(connection: Connection): void {
    this.sshConnections++;
    this.connections.add(connection);
    connection.on("close", () => this.connections.delete(connection));
    connection.on("error", () => undefined); // dropped sockets are the point of some tests
    connection.on("authentication", (ctx: AuthContext) => this.authenticate(ctx));
    connection.on("session", (accept, reject) => {
      if (this.ignoredSessions < this.ignoreSessions) {
        this.ignoredSessions++;
        return;
      }
      if (this.refusedSessions < this.refuseSessions) {
        this.refusedSessions++;
        reject();
        return;
      }
      const session = accept();
      session.on("exec", (acceptExec, _rejectExec, info) => {
        this.execs.push(info.command);
        const stream = acceptExec();
        stream.resume(); // drain stdin
        this.open++;
        this.maxOpen = Math.max(this.maxOpen, this.open);
        let counted = true;
        const uncount = (): void => {
          if (!counted) return;
          counted = false;
          this.open--;
        };
        stream.on("close", uncount);
        this.onExec({
          command: info.command,
          stream,
          finish: (stdout = "", code = 0) => {
            // Uncounted before the client can see the close and open its next channel.
            uncount();
            stream.write(stdout);
            stream.exit(code);
            stream.end();
          },
        });
      });
    });
  }

  private authenticate(ctx: AuthContext): void {
    this.authAttempts.push(ctx.method);
    if (ctx.method !== "publickey" || ctx.username !== "root") return ctx.reject(["publickey"]);
    if (ctx.key.algo !== CLIENT_PUBLIC.type || !ctx.key.data.equals(CLIENT_PUBLIC.getPublicSSH())) {
      return ctx.reject(["publickey"]);
    }
    // Without a signature this is the client asking whether the key would do; with one, it must verify.
    if (ctx.signature && CLIENT_PUBLIC.verify(ctx.blob as Buffer, ctx.signature, ctx.hashAlgo) !== true) {
      return ctx.reject(["publickey"]);
    }
    ctx.accept();
  }
}

/** Closes every server a test started (and cuts its connections), so nothing is left listening. */
const closers: (() => Promise<void>)[] = [];
const pools: SshPool[] = [];

async function startSshd(hostKey?: string, port = 0): Promise<FakeSshd> {
  const sshd = new FakeSshd(hostKey);
  closers.push(() => sshd.close());
  await sshd.listen(port);
  return sshd;
}

function newPool(options: ConstructorParameters<typeof SshPool>[0] = {}): SshPool {
  const pool = new SshPool({ idleMs: 60_000, retryBaseMs: 20, ...options });
  pools.push(pool);
  return pool;
}

function spec(port: number, extra: Record<string, unknown> = {}): ConnectionSpec {
  return parseConnection({
    host: "127.0.0.1",
    port,
    user: "root",
    privateKey: CLIENT_KEY.private,
    dialErrorLimit: 3,
    perDialTimeout: 5,
    ...extra,
  });
}

/** A port nothing listens on (it was free a moment ago). */
async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", () => resolve()));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

async function failure(p: Promise<unknown>): Promise<SshError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SshError) return err;
    throw new Error(`expected an SshError, got ${String(err)}`, { cause: err });
  }
  throw new Error("expected the promise to fail");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** The only value of a per-target counter (each test's pool has one target). */
function only(counter: Record<string, number>): number {
  const values = Object.values(counter);
  expect(values).toHaveLength(1);
  return values[0];
}

let savedAgent: string | undefined;
beforeAll(() => {
  // parseConnection picks up an ambient agent: these tests authenticate with CLIENT_KEY only.
  savedAgent = process.env.SSH_AUTH_SOCK;
  delete process.env.SSH_AUTH_SOCK;
});

afterEach(async () => {
  for (const pool of pools.splice(0)) pool.closeAll();
  await Promise.all(closers.splice(0).map((close) => close()));
});

afterAll(() => {
  if (savedAgent !== undefined) process.env.SSH_AUTH_SOCK = savedAgent;
});

describe("the in-process server", () => {
  it("runs a command with the client key and reports the host key's OpenSSH fingerprint", async () => {
    const sshd = await startSshd();
    const host = newPool().host(spec(sshd.port));
    const result = await host.exec(["echo", "hello world"]);
    expect(result).toEqual({ stdout: "ran echo 'hello world'\n", stderr: "", code: 0, signal: null });
    expect(sshd.execs).toEqual([quoteArgv(["echo", "hello world"])]);
    expect(await host.fingerprint()).toBe(HOST_FINGERPRINT);
    expect(sshd.authAttempts).toContain("publickey");
  });

  it("refuses a client key it does not know, so the authentication tests below mean something", async () => {
    const sshd = await startSshd();
    const pool = newPool();
    const err = await failure(
      pool.host(spec(sshd.port, { privateKey: STRANGER_KEY.private })).exec(["true"]),
    );
    expect(err.kind).toBe("authentication");
    expect(err.message).toContain(`root@127.0.0.1:${sshd.port}`);
    // Authentication failures are not dial failures: no retry.
    expect(only(pool.stats().dials)).toBe(1);
    // The server counts the connection in its own event, which may come after the client has given up.
    await waitFor("the server counted the connection", () => sshd.tcpConnections > 0);
    expect(sshd.tcpConnections).toBe(1);
    expect(sshd.execs).toEqual([]);
  });
});

describe("bounded waits", () => {
  it("gives up on a channel the host never opens after perDialTimeout, and the next command dials afresh", async () => {
    const sshd = await startSshd();
    sshd.ignoreSessions = 1;
    const pool = newPool();
    const host = pool.host(spec(sshd.port, { perDialTimeout: 1 }));
    const err = await failure(host.exec(["echo", "stuck"]));
    expect(err.kind).toBe("timeout");
    expect(err.message).toMatch(
      /did not open a channel within 1 s \(perDialTimeout\); the command never started/,
    );
    expect(sshd.execs).toEqual([]);
    expect((await host.exec(["echo", "next"])).stdout).toBe("ran echo next\n");
    expect(sshd.tcpConnections).toBe(2);
  });
});

describe("retries: only dialing is retried, up to dialErrorLimit", () => {
  it("keeps dialing a port where nothing listens yet, and succeeds once a server starts there", async () => {
    const port = await freePort();
    const pool = newPool({ retryBaseMs: 50 });
    const running = pool.host(spec(port, { dialErrorLimit: 10 })).exec(["echo", "late"]);
    // Start listening only after the pool has failed at least twice.
    await waitFor("3 dials", () => (pool.stats().dials[`root@127.0.0.1:${port}`] ?? 0) >= 3);
    const sshd = await startSshd(undefined, port);
    expect((await running).stdout).toBe("ran echo late\n");
    const dials = only(pool.stats().dials);
    expect(dials).toBeGreaterThanOrEqual(3);
    expect(dials).toBeLessThanOrEqual(10);
    expect(only(pool.stats().handshakes)).toBe(1);
    expect(sshd.tcpConnections).toBe(1);
    expect(sshd.execs).toEqual(["echo late"]);
  });

  it("gives up after dialErrorLimit attempts when nothing ever listens: unreachable, naming user@host:port", async () => {
    const port = await freePort();
    const pool = newPool();
    const err = await failure(pool.host(spec(port, { dialErrorLimit: 3, perDialTimeout: 1 })).exec(["true"]));
    expect(err.kind).toBe("unreachable");
    expect(err.message).toContain(`root@127.0.0.1:${port}`);
    expect(err.message).toContain("after 3 attempts");
    expect(err.message).toContain("ECONNREFUSED");
    expect(err.details.target).toBe(`root@127.0.0.1:${port}`);
    expect(only(pool.stats().dials)).toBe(3);
    expect(pool.stats().handshakes).toEqual({});
  });

  it("dials once when dialErrorLimit is 1", async () => {
    const port = await freePort();
    const pool = newPool();
    const err = await failure(pool.host(spec(port, { dialErrorLimit: 1 })).exec(["true"]));
    expect(err.kind).toBe("unreachable");
    expect(err.message).toContain("after 1 attempt");
    expect(err.message).not.toContain("after 1 attempts");
    expect(only(pool.stats().dials)).toBe(1);
  });

  it("does not re-run a command that failed: command-failed, one exec on the server", async () => {
    const sshd = await startSshd();
    sshd.onExec = (call) => {
      call.stream.stderr.write("boom\n");
      call.finish("", 7);
    };
    const pool = newPool();
    const err = await failure(pool.host(spec(sshd.port)).exec(["sh", "-c", "exit 7"]));
    expect(err.kind).toBe("command-failed");
    expect(err.details.exitCode).toBe(7);
    expect(err.message).toContain("stderr: boom");
    expect(err.message).toContain(quoteArgv(["sh", "-c", "exit 7"]));
    expect(sshd.execs).toHaveLength(1);
    expect(only(pool.stats().dials)).toBe(1);
  });

  it("retries a refused channel open (the command never started), and runs the command once", async () => {
    const sshd = await startSshd();
    sshd.refuseSessions = 2;
    const host = newPool().host(spec(sshd.port));
    expect((await host.exec(["echo", "once"])).stdout).toBe("ran echo once\n");
    expect(sshd.refusedSessions).toBe(2);
    expect(sshd.execs).toEqual(["echo once"]);
    expect(sshd.tcpConnections).toBe(1);
  });
});

describe("timeouts", () => {
  it("times out a TCP server that accepts and never speaks SSH, after perDialTimeout, on each attempt", async () => {
    const sockets = new Set<net.Socket>();
    let accepted = 0;
    const silent = net.createServer((socket) => {
      accepted++;
      sockets.add(socket);
      socket.resume(); // read (and ignore) the client's identification, so its FIN is seen
      socket.on("close", () => sockets.delete(socket));
    });
    closers.push(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", () => resolve()));
    const { port } = silent.address() as net.AddressInfo;
    {
      const pool = newPool();
      const started = Date.now();
      const err = await failure(
        pool.host(spec(port, { dialErrorLimit: 2, perDialTimeout: 1 })).exec(["true"]),
      );
      expect(err.kind).toBe("timeout");
      expect(err.message).toContain(`root@127.0.0.1:${port}`);
      expect(err.message).toContain("no SSH handshake within 1 s after 2 attempts");
      expect(err.message).toContain("raise perDialTimeout");
      expect(only(pool.stats().dials)).toBe(2);
      expect(accepted).toBe(2);
      // Two 1 s handshake timeouts, not the 5 minutes of a hung dial; generous for a loaded machine.
      expect(Date.now() - started).toBeLessThan(20_000);
      // The timed-out sockets are closed by the client, not left dangling.
      await waitFor("the silent server's sockets to close", () => sockets.size === 0);
    }
  });

  it("fails a command that outlives timeoutMs as a timeout, without re-running it", async () => {
    const sshd = await startSshd();
    sshd.onExec = () => undefined; // never answers
    const host = newPool().host(spec(sshd.port));
    const err = await failure(host.exec(["sleep", "1000"], { timeoutMs: 300 }));
    expect(err.kind).toBe("timeout");
    expect(err.message).toContain("did not finish within 300 ms");
    expect(err.message).toContain("sleep 1000");
    // The pool closed the channel; the connection stays usable.
    await waitFor("the channel to close", () => sshd.open === 0);
    sshd.onExec = (call) => call.finish("fine\n");
    expect((await host.exec(["echo"])).stdout).toBe("fine\n");
    expect(sshd.execs).toEqual(["sleep 1000", "echo"]);
    expect(sshd.tcpConnections).toBe(1);
  });
});

describe("the channel cap", () => {
  it("keeps at most 8 exec channels open per host, and runs all 20 commands once released", async () => {
    const sshd = await startSshd();
    const held: (() => void)[] = [];
    let released = false;
    sshd.onExec = (call) => {
      const reply = (): void => call.finish(`done ${call.command}\n`);
      // Once released, still hold each channel briefly, so the remaining commands overlap too.
      if (released) setTimeout(reply, 5);
      else held.push(reply);
    };
    const pool = newPool();
    expect(pool.options.maxChannels).toBe(8);
    const host = pool.host(spec(sshd.port));
    const running = Promise.all(Array.from({ length: 20 }, (_, i) => host.exec(["job", String(i)])));

    await waitFor("8 open channels", () => sshd.open === 8);
    // A 9th channel, if the cap were broken, would arrive well within this.
    await sleep(300);
    expect(sshd.open).toBe(8);
    expect(sshd.execs).toHaveLength(8);

    released = true;
    for (const reply of held.splice(0)) reply();
    const results = await running;
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 20 }, (_, i) => `done job ${i}\n`));
    expect(sshd.maxOpen).toBeLessThanOrEqual(8);
    expect(sshd.maxOpen).toBe(8);
    expect([...sshd.execs].sort()).toEqual(Array.from({ length: 20 }, (_, i) => `job ${i}`).sort());
    expect(sshd.tcpConnections).toBe(1);
    expect(only(pool.stats().commands)).toBe(20);
  });

  it("shares the cap between handles on one target (with and without a recorded fingerprint)", async () => {
    const sshd = await startSshd();
    const held: (() => void)[] = [];
    sshd.onExec = (call) => held.push(() => call.finish("ok\n"));
    const pool = newPool();
    const plain = pool.host(spec(sshd.port));
    const pinned = pool.host(spec(sshd.port), HOST_FINGERPRINT);
    expect(pinned).not.toBe(plain);
    const running = Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? plain : pinned).exec(["job", String(i)])),
    );
    await waitFor("8 open channels", () => sshd.open === 8);
    await sleep(300);
    expect(sshd.open).toBe(8);
    const releaseUntilDone = setInterval(() => held.splice(0).forEach((reply) => reply()), 10);
    try {
      expect(await running).toHaveLength(12);
    } finally {
      clearInterval(releaseUntilDone);
    }
    expect(sshd.maxOpen).toBe(8);
    expect(sshd.tcpConnections).toBe(1);
  });
});

describe("dropped connections", () => {
  it.each([
    ["cut at the TCP level", (sshd: FakeSshd) => sshd.dropAbruptly()],
    ["closed with SSH_MSG_DISCONNECT", (sshd: FakeSshd) => sshd.disconnectAll()],
  ])(
    "fails a running command as disconnected when the connection is %s, never re-runs it, and reconnects for the next",
    async (_how, drop) => {
      const sshd = await startSshd();
      sshd.onExec = (call) => {
        if (call.command === "drop me") {
          call.stream.write("partial\n");
          setTimeout(() => drop(sshd), 50);
        } else {
          call.finish("ok\n");
        }
      };
      const pool = newPool();
      const host = pool.host(spec(sshd.port));
      expect((await host.exec(["echo", "before"])).stdout).toBe("ok\n");

      const err = await failure(host.exec(["drop", "me"]));
      expect(err.kind).toBe("disconnected");
      expect(err.message).toContain(`root@127.0.0.1:${sshd.port}`);
      expect(err.message).toContain("command: drop me");
      expect(err.message).toContain("it was not re-run");

      // Give the client time to notice the dead connection, then a later command reconnects.
      // No pause: the very next command must reconnect, not reuse the dead client.
      expect((await host.exec(["echo", "after"])).stdout).toBe("ok\n");
      expect(sshd.execs.filter((c) => c === "drop me")).toHaveLength(1);
      expect(sshd.execs).toEqual(["echo before", "drop me", "echo after"]);
      expect(sshd.tcpConnections).toBe(2);
      expect(only(pool.stats().handshakes)).toBe(2);
    },
  );

  it("runs commands queued behind the channel cap on a new connection when the old one drops", async () => {
    const sshd = await startSshd();
    sshd.onExec = (call) => {
      if (call.command.startsWith("held")) return; // never answers: dropped with the connection
      call.finish(`ran ${call.command}\n`);
    };
    const host = newPool().host(spec(sshd.port));
    const held = Array.from({ length: 8 }, (_, i) => failure(host.exec(["held", String(i)])));
    await waitFor("8 open channels", () => sshd.open === 8);
    // These four wait for a channel slot: they have not started, so they may run on the next connection.
    const queued = Promise.all(Array.from({ length: 4 }, (_, i) => host.exec(["queued", String(i)])));
    await sleep(100);
    sshd.dropAbruptly();
    for (const err of await Promise.all(held)) expect(err.kind).toBe("disconnected");
    expect((await queued).map((r) => r.stdout)).toEqual(
      Array.from({ length: 4 }, (_, i) => `ran queued ${i}\n`),
    );
    expect(sshd.execs.filter((c) => c.startsWith("queued"))).toHaveLength(4);
    expect(sshd.tcpConnections).toBe(2);
  });

  it("reconnects after the pool closed an idle connection", async () => {
    const sshd = await startSshd();
    const pool = newPool({ idleMs: 100 });
    const host = pool.host(spec(sshd.port));
    await host.exec(["echo", "1"]);
    // The pool, not the server, closes the connection once it has been idle for idleMs.
    await waitFor("the idle connection to close", () => sshd.liveConnections === 0);
    await host.exec(["echo", "2"]);
    expect(sshd.tcpConnections).toBe(2);
    expect(sshd.execs).toEqual(["echo 1", "echo 2"]);
  });
});

describe("host keys", () => {
  it.each([
    ["a public key line", OTHER_HOST_KEY.public],
    ["a SHA256: fingerprint", OTHER_FINGERPRINT],
  ])(
    "refuses a host whose key differs from connection.hostKey given as %s, before authenticating",
    async (_form, hostKey) => {
      const sshd = await startSshd();
      const pool = newPool();
      const err = await failure(pool.host(spec(sshd.port, { hostKey })).exec(["true"]));
      expect(err.kind).toBe("host-key-mismatch");
      expect(err.message).toContain(`root@127.0.0.1:${sshd.port}`);
      expect(err.message).toContain(`expected ${OTHER_FINGERPRINT}`);
      expect(err.message).toContain(`presented ${HOST_FINGERPRINT}`);
      expect(err.message).toContain("before authenticating");
      // The server got a TCP connection and a key exchange, but no credentials and no command.
      expect(sshd.tcpConnections).toBe(1);
      expect(sshd.sshConnections).toBe(1);
      expect(sshd.authAttempts).toEqual([]);
      expect(sshd.execs).toEqual([]);
      // A wrong host key is not retried.
      expect(only(pool.stats().dials)).toBe(1);
    },
  );

  it.each([
    ["a public key line", HOST_KEY.public],
    ["a SHA256: fingerprint", HOST_FINGERPRINT],
  ])("accepts the host's own key given as %s", async (_form, hostKey) => {
    const sshd = await startSshd();
    const host = newPool().host(spec(sshd.port, { hostKey }));
    expect((await host.exec(["true"])).stdout).toBe("ran true\n");
    // The same server does see authentication when the key matches: the refusals above are not vacuous.
    expect(sshd.authAttempts).toContain("publickey");
  });

  it("refuses a host whose key differs from the fingerprint recorded in state, before authenticating", async () => {
    const sshd = await startSshd();
    const pool = newPool();
    const err = await failure(pool.host(spec(sshd.port), OTHER_FINGERPRINT).exec(["true"]));
    expect(err.kind).toBe("host-key-mismatch");
    expect(err.message).toContain(
      `expected ${OTHER_FINGERPRINT}, but the host presented ${HOST_FINGERPRINT}`,
    );
    expect(sshd.authAttempts).toEqual([]);
    expect(sshd.execs).toEqual([]);
    expect(only(pool.stats().dials)).toBe(1);
  });

  it("refuses a host whose key changed since it was recorded (same port, new key)", async () => {
    const first = await startSshd(HOST_KEY.private);
    const port = first.port;
    const pool = newPool();
    const recorded = await pool.host(spec(port)).fingerprint();
    expect(recorded).toBe(HOST_FINGERPRINT);
    pool.closeAll();
    await first.close();

    const reinstalled = await startSshd(OTHER_HOST_KEY.private, port);
    const err = await failure(pool.host(spec(port), recorded).exec(["true"]));
    expect(err.kind).toBe("host-key-mismatch");
    expect(err.message).toContain(
      `expected ${HOST_FINGERPRINT}, but the host presented ${OTHER_FINGERPRINT}`,
    );
    expect(reinstalled.authAttempts).toEqual([]);
    expect(reinstalled.execs).toEqual([]);
  });

  it("checks a recorded fingerprint against a connection another caller already opened", async () => {
    const sshd = await startSshd();
    const pool = newPool();
    await pool.host(spec(sshd.port)).exec(["true"]);
    const err = await failure(pool.host(spec(sshd.port), OTHER_FINGERPRINT).exec(["echo", "never"]));
    expect(err.kind).toBe("host-key-mismatch");
    expect(err.message).toContain(
      `expected ${OTHER_FINGERPRINT}, but the host presented ${HOST_FINGERPRINT}`,
    );
    expect((await pool.host(spec(sshd.port), HOST_FINGERPRINT).exec(["echo", "fine"])).stdout).toBe(
      "ran echo fine\n",
    );
    expect(sshd.execs).toEqual(["true", "echo fine"]);
    expect(sshd.tcpConnections).toBe(1);
  });
});

describe("one connection per target", () => {
  it("runs two concurrent commands from two handles on the same target over one TCP/SSH connection", async () => {
    const sshd = await startSshd();
    const pool = newPool();
    const a = pool.host(spec(sshd.port));
    const b = pool.host(spec(sshd.port));
    expect(b).toBe(a);
    const [ra, rb] = await Promise.all([a.exec(["echo", "a"]), b.exec(["echo", "b"])]);
    expect([ra.stdout, rb.stdout]).toEqual(["ran echo a\n", "ran echo b\n"]);
    expect(sshd.tcpConnections).toBe(1);
    expect(sshd.sshConnections).toBe(1);
    expect(sshd.authAttempts.filter((m) => m === "publickey").length).toBeGreaterThanOrEqual(1);
    expect(only(pool.stats().handshakes)).toBe(1);
    expect(only(pool.stats().dials)).toBe(1);
  });

  it("reuses the connection for later commands and scripts, and opens separate ones for separate targets", async () => {
    const sshd = await startSshd();
    const other = await startSshd();
    const pool = newPool();
    const host = pool.host(spec(sshd.port));
    await host.exec(["echo", "1"]);
    await host.runScript("echo 2\necho 3\n");
    await pool.host(spec(sshd.port), HOST_FINGERPRINT).exec(["echo", "4"]);
    await pool.host(spec(other.port)).exec(["echo", "elsewhere"]);
    // The script's start opened a channel ahead for the next script (this server ends it at once: unused).
    expect(sshd.execs).toEqual(["echo 1", "sh -s", "sh -s", "echo 4"]);
    expect(sshd.tcpConnections).toBe(1);
    expect(other.execs).toEqual(["echo elsewhere"]);
    expect(other.tcpConnections).toBe(1);
    expect(Object.values(pool.stats().handshakes)).toEqual([1, 1]);
  });
});

describe("a channel opened ahead for the next script", () => {
  /** Runs each `sh -s` as a shell would: its script comes over stdin, the answer once stdin ends. */
  function shellLike(sshd: FakeSshd): void {
    sshd.onExec = (call) => {
      if (call.command !== "sh -s") return call.finish(`ran ${call.command}\n`);
      const chunks: Buffer[] = [];
      call.stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      call.stream.on("end", () => call.finish(`script ${Buffer.concat(chunks).toString()}`));
    };
  }

  it("runs the next script on the channel opened while the last one started: no open on its path", async () => {
    const sshd = await startSshd();
    shellLike(sshd);
    const pool = newPool();
    const host = pool.host(spec(sshd.port));
    expect((await host.runScript("first")).stdout).toBe("script first");
    await waitFor("the channel opened ahead", () => sshd.execs.length === 2 && sshd.open === 1);
    const second = host.runScript("second");
    // The script went over the waiting channel: the only new exec is the next one opened ahead.
    expect((await second).stdout).toBe("script second");
    await waitFor("the next channel opened ahead", () => sshd.execs.length === 3);
    expect(sshd.execs).toEqual(["sh -s", "sh -s", "sh -s"]);
    expect(sshd.open).toBe(1);
    expect(only(pool.stats().commands)).toBe(2);
  });

  it("opens a fresh channel when the one opened ahead was closed by the server, and never runs a script twice", async () => {
    const sshd = await startSshd();
    let execs = 0;
    sshd.onExec = (call) => {
      execs++;
      // The second exec (the channel opened ahead) is ended by the server before any script reaches it.
      if (execs === 2) return call.finish("");
      const chunks: Buffer[] = [];
      call.stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      call.stream.on("end", () => call.finish(`script ${Buffer.concat(chunks).toString()}`));
    };
    const host = newPool().host(spec(sshd.port));
    expect((await host.runScript("first")).stdout).toBe("script first");
    await waitFor("the channel opened ahead to close", () => sshd.execs.length === 2 && sshd.open === 0);
    await new Promise((resolve) => setTimeout(resolve, 50)); // its close reaches the client
    expect((await host.runScript("second")).stdout).toBe("script second");
    expect(sshd.execs.length).toBeGreaterThanOrEqual(3);
  });

  it("keeps the channel opened ahead within the per-host cap", async () => {
    const sshd = await startSshd();
    const held: (() => void)[] = [];
    sshd.onExec = (call) => {
      const chunks: Buffer[] = [];
      call.stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      call.stream.on("end", () => held.push(() => call.finish(`script ${Buffer.concat(chunks).toString()}`)));
    };
    const host = newPool({ maxChannels: 3 }).host(spec(sshd.port));
    let done = 0;
    const runs = Array.from({ length: 6 }, (_, i) => host.runScript(`s${i}`).finally(() => done++));
    await waitFor("3 scripts held", () => held.length === 3);
    expect(sshd.maxOpen).toBe(3);
    while (done < 6) {
      held.shift()?.();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const outputs = (await Promise.all(runs)).map((r) => r.stdout);
    expect(outputs).toEqual(Array.from({ length: 6 }, (_, i) => `script s${i}`));
    expect(sshd.maxOpen).toBe(3);
  });
});
