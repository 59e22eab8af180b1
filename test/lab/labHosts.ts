// Typed access to the local lab (test/lab/lab): read lab.json, run commands inside a host's namespaces,
// count SSH handshakes, restart a host's sshd. Synchronous on purpose: tests call these between steps.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export interface LabHost {
  name: string;
  /** Address reachable from the root namespace (a /32 route); for `hj` only from h1 (see `via`). */
  address: string;
  port: number;
  user: string;
  privateKeyPath: string;
  /** The same key, encrypted with `keyPassphrase` (OpenSSH format, bcrypt KDF). */
  encryptedKeyPath: string;
  keyPassphrase: string;
  /** A non-root user that logs in with a password. */
  passwordUser: string;
  password: string;
  /** `ssh-ed25519 AAAA...` (type and base64, no comment): the only host key this host's sshd offers. */
  hostKey: string;
  /** `SHA256:` + unpadded base64 of the SHA-256 of the key blob, as `ssh-keygen -l` prints it. */
  hostKeyFingerprint: string;
  initPid: number;
  nm: boolean;
  /** systemd-networkd runs in the host (`--networkd`; its stock 80-container-ve/vb.network masked). */
  networkd: boolean;
  nixos: boolean;
  /** 127.0.0.1 port of the latency relay in front of this host's sshd, or null. */
  relayPort: number | null;
  /** Name of the host to jump through (hj: "h1"), or null. */
  via: string | null;
  /** The "internet" address the host's default route points to, or null (hj has none). */
  wanAddress: string | null;
  /**
   * The host's IPv6 address (canonical text, no length): on its uplink `eth0` as a /64 of `Lab.wanCidr6`
   * (`2001:db8::11` for h1); for hj, on the jump link (`2001:db8:0:2::2`). Reachable only from lab namespaces.
   */
  address6: string;
  /** The WAN's IPv6 address the host's IPv6 default route points to (`2001:db8::254`), or null (hj). */
  wanAddress6: string | null;
  /**
   * The IPv6 prefix the WAN routes to this host via `address6` (`2001:db8:0:100::/56` for h1), for containers
   * in routed mode; the lab puts no address in it. Null for hj.
   */
  routedPrefix6: string | null;
  netns: string;
  sshdLogPath: string;
}

export interface Lab {
  dir: string;
  script: string;
  prefix: string;
  wanCidr: string;
  jumpCidr: string;
  rootAddress: string;
  wanAddress: string;
  wanNetns: string;
  latencyMs: number | null;
  /** All of the lab's IPv6 (`PNC_LAB_NET6`, default `2001:db8::/48`). */
  net6: string;
  /** The WAN segment's IPv6 network (`2001:db8::/64`). */
  wanCidr6: string;
  /** The jump link's IPv6 network (`2001:db8:0:2::/64`). */
  jumpCidr6: string;
  /** The WAN's IPv6 address on the WAN segment (`2001:db8::254`). */
  wanAddress6: string;
  hosts: LabHost[];
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export const LAB_SCRIPT = path.join(__dirname, "lab");

export function labDir(): string {
  return process.env.PNC_LAB_DIR ?? "/tmp/pnc-lab";
}

type Json = Record<string, unknown>;

function field<T>(obj: Json, key: string, check: (v: unknown) => v is T, what: string, where: string): T {
  const v = obj[key];
  if (!check(v)) throw new Error(`lab.json: ${where}.${key} must be ${what}, got ${JSON.stringify(v)}`);
  return v;
}
const isString = (v: unknown): v is string => typeof v === "string";
const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isBool = (v: unknown): v is boolean => typeof v === "boolean";
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const orNull =
  <T>(check: (v: unknown) => v is T) =>
  (v: unknown): v is T | null =>
    v === null || check(v);

// What a lab.json of a lab brought up before the lab had IPv6 lacks; `lab up` again adds it.
const OLD_LAB =
  "a string (a lab brought up by an older lab script has no IPv6: run 'bash test/lab/lab up' again)";

function parseHost(raw: unknown, i: number): LabHost {
  const where = `hosts[${i}]`;
  if (!isObject(raw)) throw new Error(`lab.json: ${where} must be an object`);
  const s = (k: string) => field(raw, k, isString, "a string", where);
  return {
    name: s("name"),
    address: s("address"),
    port: field(raw, "port", isNumber, "a number", where),
    user: s("user"),
    privateKeyPath: s("privateKeyPath"),
    encryptedKeyPath: s("encryptedKeyPath"),
    keyPassphrase: s("keyPassphrase"),
    passwordUser: s("passwordUser"),
    password: s("password"),
    hostKey: s("hostKey"),
    hostKeyFingerprint: s("hostKeyFingerprint"),
    initPid: field(raw, "initPid", isNumber, "a number", where),
    nm: field(raw, "nm", isBool, "a boolean", where),
    // Absent in a lab.json written before --networkd existed.
    networkd: raw.networkd === true,
    nixos: field(raw, "nixos", isBool, "a boolean", where),
    relayPort: field(raw, "relayPort", orNull(isNumber), "a number or null", where),
    via: field(raw, "via", orNull(isString), "a string or null", where),
    wanAddress: field(raw, "wanAddress", orNull(isString), "a string or null", where),
    address6: field(raw, "address6", isString, OLD_LAB, where),
    wanAddress6: field(raw, "wanAddress6", orNull(isString), "a string or null", where),
    routedPrefix6: field(raw, "routedPrefix6", orNull(isString), "a string or null", where),
    netns: s("netns"),
    sshdLogPath: s("sshdLogPath"),
  };
}

/** Reads `${PNC_LAB_DIR:-/tmp/pnc-lab}/lab.json` (or `dir`/lab.json); throws a clear error if the lab is down. */
export function readLab(dir: string = labDir()): Lab {
  const file = path.join(dir, "lab.json");
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new Error(`the lab is not up (${file} missing): run 'bash test/lab/lab up'`);
  }
  const raw: unknown = JSON.parse(text);
  if (!isObject(raw)) throw new Error(`${file}: not an object`);
  const where = "lab";
  const hosts = raw.hosts;
  if (!Array.isArray(hosts)) throw new Error(`${file}: hosts must be an array`);
  return {
    dir: field(raw, "dir", isString, "a string", where),
    script: field(raw, "script", isString, "a string", where),
    prefix: field(raw, "prefix", isString, "a string", where),
    wanCidr: field(raw, "wanCidr", isString, "a string", where),
    jumpCidr: field(raw, "jumpCidr", isString, "a string", where),
    rootAddress: field(raw, "rootAddress", isString, "a string", where),
    wanAddress: field(raw, "wanAddress", isString, "a string", where),
    wanNetns: field(raw, "wanNetns", isString, "a string", where),
    latencyMs: field(raw, "latencyMs", orNull(isNumber), "a number or null", where),
    net6: field(raw, "net6", isString, OLD_LAB, where),
    wanCidr6: field(raw, "wanCidr6", isString, OLD_LAB, where),
    jumpCidr6: field(raw, "jumpCidr6", isString, OLD_LAB, where),
    wanAddress6: field(raw, "wanAddress6", isString, OLD_LAB, where),
    hosts: hosts.map(parseHost),
  };
}

/** The host called `name` (h1, h2, ..., hj). */
export function labHost(name: string, lab: Lab = readLab()): LabHost {
  const h = lab.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`lab host ${name} is not up (hosts: ${lab.hosts.map((x) => x.name).join(", ")})`);
  return h;
}

function hostName(host: LabHost | string): string {
  return typeof host === "string" ? host : host.name;
}

/** Environment for the lab script: the lab dir of `host` (so a lab in another PNC_LAB_DIR works too). */
function labEnv(dir?: string): NodeJS.ProcessEnv {
  return dir ? { ...process.env, PNC_LAB_DIR: dir } : process.env;
}

function dirOf(host: LabHost | string): string | undefined {
  return typeof host === "string" ? undefined : path.dirname(host.privateKeyPath);
}

/** Runs `argv` (no shell) inside the host's network, mount, UTS and PID namespaces, as root. */
export function labExec(
  host: LabHost | string,
  argv: readonly string[],
  opts: { input?: string; timeoutMs?: number } = {},
): ExecResult {
  if (argv.length === 0) throw new Error("labExec: empty argv");
  const r = spawnSync("bash", [LAB_SCRIPT, "exec", hostName(host), "--", ...argv], {
    encoding: "utf8",
    input: opts.input,
    timeout: opts.timeoutMs ?? 60_000,
    env: labEnv(dirOf(host)),
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { stdout: r.stdout, stderr: r.stderr, code: r.status ?? 128 + 9 };
}

/** Like labExec, but throws (with stderr) unless the command exits 0; returns stdout. */
export function labExecOk(
  host: LabHost | string,
  argv: readonly string[],
  opts: { input?: string } = {},
): string {
  const r = labExec(host, argv, opts);
  if (r.code !== 0) {
    throw new Error(`lab exec on ${hostName(host)} failed (${r.code}): ${argv.join(" ")}\n${r.stderr}`);
  }
  return r.stdout;
}

/**
 * SSH logins accepted by the host's sshd so far: lines `Accepted <method> for <user> from ...` in its log.
 * (With LogLevel VERBOSE sshd also logs `Accepted key ... found at ...` while checking a public key; those
 * are not logins and are not counted.)
 */
export function countHandshakes(host: LabHost): number {
  let text: string;
  try {
    text = fs.readFileSync(host.sshdLogPath, "utf8");
  } catch {
    return 0;
  }
  return text.split("\n").filter((l) => /Accepted \S+ for \S+ from /.test(l)).length;
}

/** Restarts the host's sshd (same host key). Open sessions survive unless `dropSessions`. */
export function restartSshd(host: LabHost | string, opts: { dropSessions?: boolean } = {}): void {
  const args = [LAB_SCRIPT, "restart-sshd", hostName(host)];
  if (opts.dropSessions) args.push("--drop-sessions");
  const r = spawnSync("bash", args, { encoding: "utf8", env: labEnv(dirOf(host)), timeout: 30_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`restart-sshd ${hostName(host)} failed: ${r.stderr}`);
}

/** Runs the lab script (`up`, `down`, `status`, ...) and returns its result. */
export function labScript(args: readonly string[], env: NodeJS.ProcessEnv = process.env): ExecResult {
  const r = spawnSync("bash", [LAB_SCRIPT, ...args], { encoding: "utf8", env, timeout: 300_000 });
  if (r.error) throw r.error;
  return { stdout: r.stdout, stderr: r.stderr, code: r.status ?? 128 + 9 };
}

/** Arguments for the `ssh` binary to reach `host` (via h1 for hj, via the relay when `viaRelay`). */
export function sshArgs(
  host: LabHost,
  opts: { viaRelay?: boolean; jump?: LabHost; knownHostsFile?: string } = {},
): string[] {
  const common = [
    "-o",
    "BatchMode=yes",
    "-o",
    `StrictHostKeyChecking=${opts.knownHostsFile ? "yes" : "no"}`,
    "-o",
    `UserKnownHostsFile=${opts.knownHostsFile ?? "/dev/null"}`,
    "-o",
    "LogLevel=ERROR",
    "-i",
    host.privateKeyPath,
  ];
  if (host.via) {
    const jump = opts.jump;
    if (!jump) throw new Error(`host ${host.name} is reachable only via ${host.via}: pass opts.jump`);
    // ProxyCommand is a shell string for ssh itself; every part here comes from lab.json, not from users.
    const proxy = ["ssh", ...common, "-W", "%h:%p", `${jump.user}@${jump.address}`].join(" ");
    return [...common, "-o", `ProxyCommand=${proxy}`, `${host.user}@${host.address}`];
  }
  if (opts.viaRelay) {
    if (host.relayPort === null) throw new Error(`host ${host.name} has no relay (lab up --latency MS)`);
    return [...common, "-p", String(host.relayPort), `${host.user}@127.0.0.1`];
  }
  return [...common, "-p", String(host.port), `${host.user}@${host.address}`];
}

/** A plain object in the shape of @pulumi/command's remote ConnectionArgs for this host. */
export interface LabConnection {
  host: string;
  port: number;
  user: string;
  privateKey?: string;
  privateKeyPassword?: string;
  password?: string;
  hostKey?: string;
  proxy?: Omit<LabConnection, "proxy" | "hostKey">;
}

export function labConnection(
  host: LabHost,
  opts: {
    auth?: "key" | "encryptedKey" | "password";
    viaRelay?: boolean;
    withHostKey?: boolean;
    lab?: Lab;
  } = {},
): LabConnection {
  const auth = opts.auth ?? "key";
  const conn: LabConnection =
    opts.viaRelay && host.relayPort !== null
      ? { host: "127.0.0.1", port: host.relayPort, user: host.user }
      : { host: host.address, port: host.port, user: host.user };
  if (auth === "password") {
    conn.user = host.passwordUser;
    conn.password = host.password;
  } else if (auth === "encryptedKey") {
    conn.privateKey = fs.readFileSync(host.encryptedKeyPath, "utf8");
    conn.privateKeyPassword = host.keyPassphrase;
  } else {
    conn.privateKey = fs.readFileSync(host.privateKeyPath, "utf8");
  }
  if (opts.withHostKey) conn.hostKey = host.hostKey;
  if (host.via) {
    const j = labHost(host.via, opts.lab ?? readLab(dirOf(host)));
    conn.proxy = {
      host: j.address,
      port: j.port,
      user: j.user,
      privateKey: fs.readFileSync(j.privateKeyPath, "utf8"),
    };
  }
  return conn;
}
