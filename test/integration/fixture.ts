// What every lab test of the resources shares: the lab's hosts, the client key, and connections in the
// shape users pass (@pulumi/command's ConnectionArgs).
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { LabHost, labExec, labExecOk, labHost, readLab, restartSshd } from "../lab/labHosts";
import { MiniEngine, ResourceType } from "../harness/engine";
import { ProviderHostError, revealMap } from "../harness/providerHost";

export const lab = readLab();
export const h1 = labHost("h1", lab);
export const h2 = labHost("h2", lab);
export const h3 = labHost("h3", lab);
export const key = fs.readFileSync(h1.privateKeyPath, "utf8");

export function connection(host: LabHost): Record<string, unknown> {
  return { host: host.address, port: host.port, user: host.user, privateKey: key };
}

/** Inputs of a nixos-driver Container `name` on `host`, with the addresses 10.233.BLOCK.1 and .2. */
export function nixosInputs(
  host: LabHost,
  name: string,
  block: number,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    connection: connection(host),
    name,
    driver: "nixos",
    hostAddress: `10.233.${block}.1`,
    localAddress: `10.233.${block}.2`,
    ...extra,
  };
}

/** How many system profile generations (one per build) the lab's Nix stand-in has for container `name`. */
export function profileGenerations(host: LabHost, name: string): number {
  const dir = `/var/lib/nix-stand-in/var/nix/profiles/per-container/${name}`;
  return Number(labExecOk(host, ["sh", "-c", `ls -d ${dir}/system-*-link 2>/dev/null | wc -l`]).trim());
}

/**
 * ARGV run inside container `name`'s network namespace: a named one (netns driver), or the anonymous one of
 * a NixOS container's leader process (nixos driver; as systemd-nspawn makes it).
 */
export function inContainer(name: string, argv: readonly string[]): string[] {
  const enter =
    'if [ -e "/run/netns/$0" ]; then exec ip netns exec "$0" "$@"; fi; ' +
    'leader=$(machinectl show "$0" -p Leader --value) && exec nsenter -t "$leader" -n -- "$@"';
  return ["sh", "-c", enter, name, ...argv];
}

/** One ping from the host (or from inside container `from` on it) to `address`. */
export function reachable(host: LabHost, from: string | undefined, address: string): boolean {
  const argv = ["ping", "-c", "1", "-W", "2", address];
  return labExec(host, from ? inContainer(from, argv) : argv).code === 0;
}

/** One IPv6 ping from the host (or from inside container `from` on it) to `address`. */
export function reachable6(host: LabHost, from: string | undefined, address: string): boolean {
  const argv = ["ping", "-6", "-c", "1", "-W", "2", address];
  return labExec(host, from ? inContainer(from, argv) : argv).code === 0;
}

/**
 * True when no IPv6 address on the host (or inside container `from`) is still tentative (duplicate address
 * detection, about 1 s after an `ip -6 addr add` without `nodad`, as on real hosts); poll it with `until`.
 */
export function dadSettled6(host: LabHost, from?: string): boolean {
  const argv = ["ip", "-6", "-j", "addr", "show", "tentative"];
  const r = labExec(host, from ? inContainer(from, argv) : argv);
  if (r.code !== 0) return false;
  const links = JSON.parse(r.stdout || "[]") as { addr_info?: unknown[] }[];
  return links.every((l) => (l.addr_info ?? []).length === 0);
}

const started: ChildProcess[] = [];

/** Remembers a helper process a test started, so killStarted ends it. */
export function trackStarted(child: ChildProcess): void {
  started.push(child);
}

/** Ends (by PID) every helper process these tests started, and what they run; call in afterAll. */
export function killStarted(): void {
  // SIGTERM, not SIGKILL: `timeout` passes TERM on to the command it runs; a killed `timeout` would orphan it.
  for (const child of started.splice(0)) child.kill("SIGTERM");
}

/**
 * A TCP listener in the lab's WAN namespace (the lab's "internet") that answers each connection with the peer
 * address it saw: the address NAT gave the container. Ends by itself after `seconds`.
 */
export async function wanEchoPeer(port: number, seconds = 150): Promise<void> {
  const argv = [
    "netns",
    "exec",
    lab.wanNetns,
    "socat",
    `TCP-LISTEN:${port},reuseaddr,fork`,
    "SYSTEM:echo $SOCAT_PEERADDR",
  ];
  started.push(spawn("timeout", [String(seconds), "ip", ...argv], { stdio: "ignore" }));
  for (let i = 0; i < 50; i++) {
    const ss = spawnSync("ip", ["netns", "exec", lab.wanNetns, "ss", "-ltn"], { encoding: "utf8" });
    if (ss.stdout.includes(`:${port} `)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("WAN listener did not start");
}

/** Connects from inside container `name` on `host` to the WAN echo listener: what the WAN saw as its address. */
export function fromContainer(host: LabHost, name: string, port: number): { ok: boolean; seenAs: string } {
  const socat = ["socat", "-T", "3", "-", `TCP:${lab.wanAddress}:${port},connect-timeout=2`];
  const r = labExec(host, inContainer(name, ["timeout", "5", ...socat]));
  return { ok: r.code === 0 && r.stdout.trim() !== "", seenAs: r.stdout.trim() };
}

/**
 * The IPv6 twin of wanEchoPeer: a TCP listener on the WAN's IPv6 address (`lab.wanAddress6`, IPv6 only, so it
 * can share a port number with an IPv4 one) answering each connection with the peer address it saw, without
 * brackets: the host's address under NAT66, the container's own in routed mode. Ends by itself after `seconds`.
 */
export async function wanEchoPeer6(port: number, seconds = 150): Promise<void> {
  const argv = [
    "netns",
    "exec",
    lab.wanNetns,
    "socat",
    `TCP6-LISTEN:${port},bind=[${lab.wanAddress6}],reuseaddr,fork,ipv6only=1`,
    "SYSTEM:echo $SOCAT_PEERADDR",
  ];
  started.push(spawn("timeout", [String(seconds), "ip", ...argv], { stdio: "ignore" }));
  for (let i = 0; i < 50; i++) {
    const ss = spawnSync(
      "ip",
      ["netns", "exec", lab.wanNetns, "ss", "-H", "-6", "-ltn", "sport", "=", `:${port}`],
      {
        encoding: "utf8",
      },
    );
    if (ss.stdout.trim() !== "") return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("WAN IPv6 listener did not start");
}

/**
 * Connects from inside container `name` on `host` to the WAN's IPv6 echo listener (wanEchoPeer6): what the
 * WAN saw as the connection's source address (canonical text, no brackets).
 */
export function fromContainer6(host: LabHost, name: string, port: number): { ok: boolean; seenAs: string } {
  const socat = ["socat", "-T", "3", "-", `TCP6:[${lab.wanAddress6}]:${port},connect-timeout=2`];
  const r = labExec(host, inContainer(name, ["timeout", "5", ...socat]));
  const seen = r.stdout.trim();
  return { ok: r.code === 0 && seen !== "", seenAs: seen === "" ? "" : canonical6(seen) };
}

/**
 * RFC 5952 text of an IPv6 address, as `ip` and lab.json write it: socat's SOCAT_PEERADDR is
 * `[2001:0db8:0000:...:0011]`, in brackets and uncompressed. (The WHATWG URL parser compresses it.)
 */
export function canonical6(address: string): string {
  const bare = address.replace(/^\[(.*)\]$/, "$1");
  return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
}

/** Polls `test` every 50 ms for up to 5 s. */
export async function until(what: string, test: () => boolean): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (test()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting until ${what}`);
}

/**
 * A create cut off by a lost connection: holds the host lock on `host` (so the create waits inside its
 * script, before its checks), starts the create, restarts sshd dropping every session, and returns the
 * init failure the provider reported (id, recorded properties with secrets revealed, reasons).
 */
export async function cutOffCreate(
  engine: MiniEngine,
  host: LabHost,
  type: ResourceType,
  name: string,
  inputs: Record<string, unknown>,
  hold: () => ChildProcess = () => holdLock(host, 6),
) {
  const holder = hold();
  try {
    await until(
      "the lock is held",
      () => labExec(host, ["flock", "-n", "/run/pulumi-nixos-containers/lock", "true"]).code !== 0,
    );
    const creating = engine.create(type, name, inputs).then(
      () => undefined,
      (e: unknown) => e,
    );
    await new Promise((r) => setTimeout(r, 1000));
    restartSshd(host, { dropSessions: true });
    const err = await creating;
    if (!(err instanceof ProviderHostError) || !err.initFailure) {
      throw new Error(`${type} create failed without an init error: ${String(err)}`);
    }
    await until("the holder exits", () => holder.exitCode !== null);
    return { ...err.initFailure, properties: revealMap(err.initFailure.properties) };
  } finally {
    holder.kill("SIGKILL"); // by PID; the flock inside the host ends by its own timeout
  }
}

/** Holds our host lock on `host` for `seconds` (a process of this test; end it by PID). */
export function holdLock(host: LabHost, seconds: number): ChildProcess {
  return spawn(
    "bash",
    [
      lab.script,
      "exec",
      host.name,
      "--",
      "timeout",
      String(seconds),
      "sh",
      "-c",
      // The lock's directory exists once any operation ran on the host; a fresh host has none yet.
      'mkdir -p "$(dirname "$0")" && exec flock "$0" sleep "$1"',
      "/run/pulumi-nixos-containers/lock",
      String(seconds),
    ],
    { stdio: "ignore", env: { ...process.env, PNC_LAB_DIR: lab.dir } },
  );
}

/**
 * Makes `host` drop what it sends to ADDRESS:22 (an iptables rule at the top of OUTPUT) and returns the undo:
 * the rule goes, and so do the table and chains iptables-nft made for it when they were not there before, so
 * the host's firewall ends exactly as it was (later tests compare whole rulesets).
 */
export function dropSshTo(host: LabHost, address: string): () => void {
  const rule = ["OUTPUT", "-d", address, "-p", "tcp", "--dport", "22", "-j", "DROP"];
  const hadTable = labExec(host, ["nft", "list", "table", "ip", "filter"]).code === 0;
  labExecOk(host, ["iptables", "-w", "-I", ...rule]);
  return () => {
    labExec(host, ["iptables", "-w", "-D", ...rule]);
    if (!hadTable) labExec(host, ["nft", "delete", "table", "ip", "filter"]);
  };
}

/**
 * A TCP server on PORT in container `name` on `host` (IPv4, or with `ipv6` on [::]) answering every connection
 * with `reply`; it ends after 60 s, and is ended by killStarted. Resolves once it listens.
 */
export async function serveInContainer(
  host: LabHost,
  name: string,
  port: number,
  reply: string,
  options: { ipv6?: boolean } = {},
): Promise<void> {
  const listen = `${options.ipv6 ? "TCP6" : "TCP"}-LISTEN:${port},reuseaddr,fork`;
  const argv = ["timeout", "60", "socat", listen, `SYSTEM:echo ${reply}`];
  started.push(
    spawn("bash", [lab.script, "exec", host.name, "--", ...inContainer(name, argv)], {
      stdio: "ignore",
      env: { ...process.env, PNC_LAB_DIR: lab.dir },
    }),
  );
  await until(`the server in ${name} listens on ${port}`, () =>
    labExec(host, inContainer(name, ["ss", "-ltn"])).stdout.includes(`:${port} `),
  );
}

/** What a TCP connection from the lab's WAN to ADDRESS:PORT (IPv4 or IPv6) got back. */
export function fromWan(address: string, port: number): string {
  const target = address.includes(":") ? `TCP6:[${address}]:${port}` : `TCP:${address}:${port}`;
  const argv = [
    "netns",
    "exec",
    lab.wanNetns,
    "timeout",
    "5",
    "socat",
    "-T",
    "3",
    "-",
    `${target},connect-timeout=2`,
  ];
  return spawnSync("ip", argv, { encoding: "utf8" }).stdout.trim();
}

/** What a TCP connection from `host` itself (or from inside its container `from`) to ADDRESS:PORT got back. */
export function ask(host: LabHost, from: string | undefined, address: string, port: number): string {
  const target = address.includes(":") ? `TCP6:[${address}]:${port}` : `TCP:${address}:${port}`;
  const argv = ["timeout", "5", "socat", "-T", "3", "-", `${target},connect-timeout=2`];
  return labExec(host, from ? inContainer(from, argv) : argv).stdout.trim();
}
