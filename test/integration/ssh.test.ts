// The SSH layer against real sshd on lab hosts: every auth method, jump hosts, host keys, byte-exact argv,
// one handshake for many commands (counted by the server), reconnects, and clear errors that name the target.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshError, SshPool, parseConnection, quoteArgv } from "../../provider/ssh";
import { countHandshakes, labExec, labHost, readLab, restartSshd } from "../lab/labHosts";
import { dropSshTo } from "./fixture";
import { HOSTILE } from "../fixtures/hostile";

const lab = readLab();
const h1 = labHost("h1", lab);
const h2 = labHost("h2", lab);
const hj = labHost("hj", lab);
const key = fs.readFileSync(h1.privateKeyPath, "utf8");

/** Pools made by these tests; each is closed at the end so no connection outlives the run. */
const pools: SshPool[] = [];
function newPool(): SshPool {
  const pool = new SshPool({ idleMs: 60_000 });
  pools.push(pool);
  return pool;
}

function conn(host = h1, extra: Record<string, unknown> = {}) {
  return parseConnection({ host: host.address, port: host.port, user: host.user, privateKey: key, ...extra });
}

async function failure(p: Promise<unknown>): Promise<SshError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SshError) return err;
    throw err;
  }
  throw new Error("expected the promise to fail");
}

let savedAgent: string | undefined;
beforeAll(() => {
  // The tests choose their auth methods explicitly: no ambient agent.
  savedAgent = process.env.SSH_AUTH_SOCK;
  delete process.env.SSH_AUTH_SOCK;
});
afterAll(() => {
  for (const pool of pools) pool.closeAll();
  if (savedAgent !== undefined) process.env.SSH_AUTH_SOCK = savedAgent;
});

describe("authentication", () => {
  it("logs in with a private key and returns the host key fingerprint", async () => {
    const host = newPool().host(conn());
    expect((await host.exec(["hostname"])).stdout.trim()).toBe("h1");
    expect(await host.fingerprint()).toBe(h1.hostKeyFingerprint);
  });

  it("logs in with an encrypted private key and its password", async () => {
    const spec = conn(h1, {
      privateKey: fs.readFileSync(h1.encryptedKeyPath, "utf8"),
      privateKeyPassword: h1.keyPassphrase,
    });
    expect((await newPool().host(spec).exec(["id", "-un"])).stdout.trim()).toBe("root");
  });

  it("logs in with a password", async () => {
    const spec = parseConnection({ host: h1.address, user: h1.passwordUser, password: h1.password });
    expect((await newPool().host(spec).exec(["id", "-un"])).stdout.trim()).toBe(h1.passwordUser);
  });

  it("logs in through ssh-agent at agentSocketPath", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pnc-agent-"));
    const socket = path.join(dir, "agent.sock");
    const agent: ChildProcess = spawn("ssh-agent", ["-D", "-a", socket], { stdio: "ignore" });
    try {
      for (let i = 0; i < 50 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
      execFileSync("ssh-add", [h1.privateKeyPath], {
        env: { ...process.env, SSH_AUTH_SOCK: socket },
        stdio: "ignore",
      });
      const spec = parseConnection({ host: h1.address, user: "root", agentSocketPath: socket });
      expect((await newPool().host(spec).exec(["hostname"])).stdout.trim()).toBe("h1");
    } finally {
      agent.kill("SIGTERM"); // by PID: the ChildProcess we started
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("fails with an authentication error that names the user and never the password", async () => {
    const spec = parseConnection({ host: h1.address, user: h1.passwordUser, password: "wrong-password-123" });
    const err = await failure(newPool().host(spec).exec(["true"]));
    expect(err.kind).toBe("authentication");
    expect(err.message).toContain(`${h1.passwordUser}@${h1.address}:22`);
    expect(err.message).not.toContain("wrong-password-123");
  });
});

describe("jump host", () => {
  it("reaches a host only reachable through another, tunnelled through the first connection", async () => {
    const pool = newPool();
    const spec = conn(hj, { proxy: { host: h1.address, user: "root", privateKey: key } });
    const host = pool.host(spec);
    expect((await host.exec(["hostname"])).stdout.trim()).toBe("hj");
    expect(await host.fingerprint()).toBe(hj.hostKeyFingerprint);
    expect(host.target).toContain(`via root@${h1.address}:22`);
  });

  it("gives up on a bastion that drops the packets to the target, within dialErrorLimit × perDialTimeout", async () => {
    // h1 (the bastion) silently drops what it sends to hj: its sshd never answers the tunnel request.
    const undo = dropSshTo(h1, hj.address);
    try {
      const pool = newPool();
      const spec = conn(hj, {
        dialErrorLimit: 2,
        perDialTimeout: 2,
        proxy: { host: h1.address, user: "root", privateKey: key },
      });
      const err = await failure(pool.host(spec).exec(["hostname"]));
      expect(err.kind).toBe("timeout");
      expect(err.message).toMatch(
        new RegExp(`the jump host did not open a tunnel to ${hj.address}:22 within 2 s after 2 attempts`),
      );
    } finally {
      undo();
    }
  });
});

describe("host keys", () => {
  it("accepts the host's real key given as hostKey", async () => {
    const host = newPool().host(conn(h1, { hostKey: h1.hostKey }));
    expect((await host.exec(["hostname"])).stdout.trim()).toBe("h1");
  });

  it("rejects a host presenting another key than hostKey, naming the host and both fingerprints", async () => {
    const err = await failure(
      newPool()
        .host(conn(h1, { hostKey: h2.hostKey }))
        .exec(["true"]),
    );
    expect(err.kind).toBe("host-key-mismatch");
    expect(err.message).toContain(`${h1.address}:22`);
    expect(err.message).toContain(h2.hostKeyFingerprint);
    expect(err.message).toContain(h1.hostKeyFingerprint);
  });

  it.each(["ecdsa", "rsa"])(
    "negotiates a pinned %s key although the host also offers ed25519 (which clients prefer)",
    async (type) => {
      // A second sshd on h1 with three host keys; ended by the PID in its pid file.
      const setup = [
        "rm -f /tmp/pnc-hk-ecdsa /tmp/pnc-hk-ecdsa.pub /tmp/pnc-hk-rsa /tmp/pnc-hk-rsa.pub",
        "ssh-keygen -q -t ecdsa -N '' -f /tmp/pnc-hk-ecdsa",
        "ssh-keygen -q -t rsa -b 2048 -N '' -f /tmp/pnc-hk-rsa",
        "/usr/sbin/sshd -f /etc/ssh/sshd_config -p 2222 -o PidFile=/tmp/pnc-sshd2.pid -o HostKey=/etc/ssh/ssh_host_ed25519_key -o HostKey=/tmp/pnc-hk-ecdsa -o HostKey=/tmp/pnc-hk-rsa",
      ].join(" && ");
      expect(labExec(h1, ["sh", "-c", setup]).code).toBe(0);
      try {
        const pinned = labExec(h1, ["cat", `/tmp/pnc-hk-${type}.pub`]).stdout.trim();
        const pool = newPool();
        const host = pool.host(conn(h1, { port: 2222, hostKey: pinned }));
        expect((await host.exec(["echo", "pinned"])).stdout).toBe("pinned\n");
        const blob = Buffer.from(pinned.split(" ")[1], "base64");
        expect(await host.fingerprint()).toBe(
          "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, ""),
        );
      } finally {
        labExec(h1, ["sh", "-c", "kill $(cat /tmp/pnc-sshd2.pid); rm -f /tmp/pnc-sshd2.pid /tmp/pnc-hk-*"]);
      }
    },
  );

  it("rejects a host whose key differs from the fingerprint recorded earlier", async () => {
    const err = await failure(newPool().host(conn(h1), h2.hostKeyFingerprint).exec(["true"]));
    expect(err.kind).toBe("host-key-mismatch");
    expect(err.message).toMatch(/expected SHA256:.*presented SHA256:/);
  });

  it("does not authenticate to a host with the wrong key (no login in its sshd log)", async () => {
    const before = countHandshakes(h1);
    await failure(
      newPool()
        .host(conn(h1, { hostKey: h2.hostKey }))
        .exec(["true"]),
    );
    expect(countHandshakes(h1)).toBe(before);
  });
});

describe("commands", () => {
  it("passes hostile arguments to a real host byte for byte, and runs none of them", async () => {
    const host = newPool().host(conn());
    const canary = "/tmp/pnc-canary";
    labExec(h1, ["rm", "-f", canary]);
    const { stdout } = await host.exec(["printf", "%s\\0", ...HOSTILE]);
    expect(stdout.split("\0").slice(0, -1)).toEqual(HOSTILE);
    expect(labExec(h1, ["test", "-e", canary]).code).not.toBe(0);
  });

  it("returns stdout, stderr and the exit code; a failure names host, user, command, code and stderr", async () => {
    const host = newPool().host(conn());
    const ok = await host.exec(["sh", "-c", "echo out; echo err >&2; exit 3"], { check: false });
    expect(ok).toMatchObject({ stdout: "out\n", stderr: "err\n", code: 3 });
    const err = await failure(host.exec(["sh", "-c", "echo boom >&2; exit 7"]));
    expect(err.kind).toBe("command-failed");
    expect(err.message).toContain(`root@${h1.address}:22`);
    expect(err.message).toContain("exit code: 7");
    expect(err.message).toContain("stderr: boom");
    expect(err.message).toContain(quoteArgv(["sh", "-c", "echo boom >&2; exit 7"]));
  });

  it("runs a batch of commands as one script in one round trip", async () => {
    const pool = newPool();
    const host = pool.host(conn());
    const script = [quoteArgv(["echo", "a b"]), quoteArgv(["printf", "%s\\n", "it's"]), "hostname"].join(
      "\n",
    );
    const { stdout } = await host.runScript(script);
    expect(stdout).toBe("a b\nit's\nh1\n");
    expect(Object.values(pool.stats().commands)).toEqual([1]);
  });

  it("runs 100 commands over exactly one SSH handshake, counted by the server", async () => {
    const pool = newPool();
    const host = pool.host(conn(h2));
    const before = countHandshakes(h2);
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => host.exec(["echo", String(i)])));
    expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
    expect(countHandshakes(h2) - before).toBe(1);
    expect(Object.values(pool.stats().handshakes)).toEqual([1]);
  });

  it("shares one connection between callers with and without a recorded host key, and refuses a wrong one", async () => {
    const pool = newPool();
    const before = countHandshakes(h1);
    await pool.host(conn()).exec(["true"]);
    await pool.host(conn(), h1.hostKeyFingerprint).exec(["true"]);
    const err = await failure(pool.host(conn(), h2.hostKeyFingerprint).exec(["true"]));
    expect(err.kind).toBe("host-key-mismatch");
    expect(countHandshakes(h1) - before).toBe(1);
  });

  it("shares one connection between callers asking for the same target", () => {
    const pool = newPool();
    expect(pool.host(conn())).toBe(pool.host(conn()));
    expect(pool.host(conn())).not.toBe(pool.host(conn(h2)));
  });
});

describe("reconnecting", () => {
  it("reconnects transparently after sshd restarts and drops the connection", async () => {
    const pool = newPool();
    const host = pool.host(conn());
    expect((await host.exec(["hostname"])).stdout.trim()).toBe("h1");
    const before = countHandshakes(h1);
    restartSshd(h1, { dropSessions: true });
    // Give the client a moment to notice the closed socket.
    await new Promise((r) => setTimeout(r, 300));
    expect((await host.exec(["hostname"])).stdout.trim()).toBe("h1");
    expect(countHandshakes(h1) - before).toBe(1);
  });

  it("does not re-run a command whose connection dropped: it fails as disconnected", async () => {
    const host = newPool().host(conn());
    const marker = `/tmp/pnc-runs-${process.pid}`;
    labExec(h1, ["rm", "-f", marker]);
    const running = host.exec(["sh", "-c", `echo x >> ${marker}; sleep 5`]);
    await new Promise((r) => setTimeout(r, 500));
    restartSshd(h1, { dropSessions: true });
    const err = await failure(running);
    expect(err.kind).toBe("disconnected");
    expect(labExec(h1, ["cat", marker]).stdout).toBe("x\n");
    labExec(h1, ["rm", "-f", marker]);
  });
});

describe("unreachable hosts", () => {
  it("fails fast and clearly when nothing listens (only the dial is retried)", async () => {
    const spec = parseConnection({
      host: "127.0.0.1",
      port: 1,
      user: "root",
      privateKey: key,
      dialErrorLimit: 3,
    });
    const pool = newPool();
    const started = Date.now();
    const err = await failure(pool.host(spec).exec(["true"]));
    expect(err.kind).toBe("unreachable");
    expect(err.message).toContain("root@127.0.0.1:1");
    expect(err.message).toContain("after 3 attempts");
    expect(Object.values(pool.stats().dials)).toEqual([3]);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("times out a server that never speaks SSH, after perDialTimeout", async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const spec = parseConnection({
        host: "127.0.0.1",
        port,
        privateKey: key,
        dialErrorLimit: 1,
        perDialTimeout: 1,
      });
      const err = await failure(newPool().host(spec).exec(["true"]));
      expect(err.kind).toBe("timeout");
      expect(err.message).toContain(`root@127.0.0.1:${port}`);
    } finally {
      silent.close();
    }
  });
});
