// The lab's own lifecycle: `up` gives reachable, distinct hosts, and `down` leaves the root namespace exactly
// as it found it (namespaces, links, addresses, routes, mounts, processes), three times in a row. Runs a lab
// of its own (own state dir, namespace prefix and ranges), so a lab already up on the machine is not touched.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, describe, expect, it } from "vitest";
import { countHandshakes, labExec, labScript, readLab, sshArgs, type LabHost } from "./labHosts";

const DIR = fs.mkdtempSync(path.join(os.tmpdir(), "pnc-lab-lifecycle-"));
fs.rmSync(DIR, { recursive: true });
const ENV: NodeJS.ProcessEnv = {
  ...process.env,
  PNC_LAB_DIR: DIR,
  PNC_LAB_PREFIX: "pnct-",
  PNC_LAB_WAN: "198.18.20.0/24",
  PNC_LAB_JUMP: "198.18.22.0/24",
  PNC_LAB_NET6: "2001:db8:20::/48",
  PNC_LAB_RELAY_BASE: "43000",
};
// Things of the default lab (prefix pnc-) may come and go while this runs (other test runs): not ours.
const FOREIGN = /^pnc-/;

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}
function json(args: string[]): unknown[] {
  const out = run("ip", ["-j", ...args]).trim();
  const v: unknown = out ? JSON.parse(out) : [];
  return Array.isArray(v) ? v : [];
}
function str(o: unknown, k: string): string {
  if (typeof o !== "object" || o === null) return "";
  const v = (o as Record<string, unknown>)[k];
  return v === undefined || v === null ? "" : String(v);
}

function netnsNames(): string[] {
  return json(["netns", "list"]).map((n) => str(n, "name"));
}

function nsInode(p: string): string {
  try {
    return fs.readlinkSync(p);
  } catch {
    return "";
  }
}

interface Snapshot {
  netns: string[];
  links: string[];
  addresses: string[];
  routes: string[];
  mounts: string[];
  processes: string[];
}

function snapshot(): Snapshot {
  const ns = netnsNames();
  const foreignNs = ns.filter((n) => FOREIGN.test(n));
  const links = json(["link", "show"])
    .filter((l) => !FOREIGN.test(str(l, "ifname")))
    .map((l) => `${str(l, "ifname")} ${str(l, "link_type")} ${str(l, "operstate")}`);
  const addresses = json(["addr", "show"])
    .filter((l) => !FOREIGN.test(str(l, "ifname")))
    .flatMap((l) => {
      const info = (l as Record<string, unknown>).addr_info;
      return (Array.isArray(info) ? info : []).map(
        (a) => `${str(l, "ifname")} ${str(a, "local")}/${str(a, "prefixlen")}`,
      );
    });
  const defaultLabRoute = (r: unknown) =>
    FOREIGN.test(str(r, "dev")) ||
    (str(r, "type") === "unreachable" &&
      str(r, "protocol") === "211" &&
      (/^198\.18\.[02]\.0\/24$/.test(str(r, "dst")) || str(r, "dst") === "2001:db8::/48"));
  const routes = [
    ...json(["-4", "route", "show", "table", "all"]),
    ...json(["-6", "route", "show", "table", "all"]),
  ]
    .filter((r) => !defaultLabRoute(r))
    .map((r) => JSON.stringify(r));
  const mounts = fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const f = l.split(" ");
      const sep = f.indexOf("-");
      return `${f[4]} ${f[sep + 1]} ${f[sep + 2]}`;
    })
    .filter((m) => {
      const mp = m.split(" ")[0];
      if (/^\/run\/netns\/pnc-/.test(mp)) return false;
      // `ip netns add` of the default lab makes /run/netns a mount point while that lab is up
      if (mp === "/run/netns" && foreignNs.length > 0) return false;
      return true;
    });
  // Processes of the lab: any mentioning our state dir, and any in a network namespace other than the root
  // one that is not a named namespace of someone else.
  const rootNet = nsInode("/proc/self/ns/net");
  const foreignNet = new Set(foreignNs.map((n) => `net:[${fs.statSync(`/run/netns/${n}`).ino}]`));
  const processes: string[] = [];
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let cmd = "";
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
    } catch {
      continue;
    }
    const net = nsInode(`/proc/${pid}/ns/net`);
    const inLabNet = net !== "" && net !== rootNet && !foreignNet.has(net);
    if (cmd.includes(DIR) || inLabNet) processes.push(`${pid} ${cmd}`);
  }
  return {
    netns: ns.filter((n) => !FOREIGN.test(n)).sort(),
    links: links.sort(),
    addresses: addresses.sort(),
    routes: routes.sort(),
    mounts: mounts.sort(),
    processes: processes.sort(),
  };
}

function ssh(host: LabHost, command: string, jump?: LabHost): { out: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync("ssh", [...sshArgs(host, { jump }), command], { encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0) throw new Error(`ssh ${host.name} failed (${r.status}): ${r.stderr}`);
  return { out: r.stdout.trim(), ms: Date.now() - t0 };
}

/** IPv6 of a lab of ENV: addresses, routes, the WAN's routes to the hosts' prefixes, none in the root namespace. */
function checkIpv6(lab: ReturnType<typeof readLab>, byName: Map<string, LabHost>): void {
  expect(lab.net6).toBe("2001:db8:20::/48");
  expect(lab.wanCidr6).toBe("2001:db8:20::/64");
  expect(lab.wanAddress6).toBe("2001:db8:20::254");
  const expected: Record<string, [string, string | null]> = {
    h1: ["2001:db8:20::11", "2001:db8:20:100::/56"],
    h2: ["2001:db8:20::12", "2001:db8:20:200::/56"],
    h3: ["2001:db8:20::13", "2001:db8:20:300::/56"],
    hj: ["2001:db8:20:2::2", null],
  };
  for (const h of lab.hosts) {
    expect([h.address6, h.routedPrefix6], h.name).toEqual(expected[h.name]);
    // hj's eth0 is its jump link; every other host's eth0 its WAN uplink
    const addrs = JSON.parse(
      labExec(h, ["ip", "-6", "-j", "addr", "show", "dev", "eth0", "scope", "global"]).stdout,
    ) as {
      addr_info: { local?: string; prefixlen?: number }[];
    }[];
    // (iproute2 6.1 prints each address's lifetimes as an addr_info entry of its own, without `local`.)
    const locals = addrs.flatMap((l) => l.addr_info.filter((a) => a.local !== undefined));
    expect(locals.map((a) => `${a.local}/${a.prefixlen}`)).toEqual([`${h.address6}/64`]);
    // usable at once (nodad), and forwarding off until a NatRule turns it on
    expect(labExec(h, ["ip", "-6", "addr", "show", "tentative"]).stdout.trim()).toBe("");
    expect(labExec(h, ["cat", "/proc/sys/net/ipv6/conf/all/forwarding"]).stdout.trim()).toBe("0");
    expect(labExec(h, ["cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"]).stdout.trim()).toBe("0");
    if (h.via) {
      expect(h.wanAddress6).toBeNull();
      const h1 = byName.get(h.via);
      if (!h1) throw new Error("no " + h.via);
      expect(labExec(h1, ["ping", "-6", "-c", "1", "-W", "2", h.address6]).code).toBe(0);
      continue;
    }
    expect(h.wanAddress6).toBe(lab.wanAddress6);
    const def = labExec(h, ["ip", "-6", "route", "show", "default"]).stdout;
    expect(def).toContain(`default via ${lab.wanAddress6} dev eth0`);
    expect(labExec(h, ["ping", "-6", "-c", "1", "-W", "2", lab.wanAddress6]).code).toBe(0);
    // the WAN routes the host's prefix to it, and reaches the host over IPv6
    const wanRoute = spawnSync("ip", ["-n", lab.wanNetns, "-6", "route", "show", String(h.routedPrefix6)], {
      encoding: "utf8",
    }).stdout;
    expect(wanRoute).toContain(`via ${h.address6} dev br0`);
  }
  // the root namespace: no IPv6 on the lab's link, only the unreachable route for the lab's /48
  const rootRoutes = json(["-6", "route", "show", "table", "all"]).filter((r) =>
    str(r, "dst").startsWith("2001:db8:20"),
  );
  expect(rootRoutes.map((r) => `${str(r, "type")} ${str(r, "dst")} ${str(r, "protocol")}`)).toEqual([
    "unreachable 2001:db8:20::/48 211",
  ]);
  expect(
    json(["-6", "addr", "show", "dev", "pnct-root"]).flatMap((l) => {
      const info = (l as Record<string, unknown>).addr_info;
      return Array.isArray(info) ? info : [];
    }),
  ).toEqual([]);
}

afterAll(() => {
  labScript(["down"], ENV);
});

describe("lab lifecycle", () => {
  for (const round of [1, 2, 3]) {
    it(`round ${round}: up 3 --nm h2 --jump gives distinct reachable hosts, down leaves nothing`, () => {
      const before = snapshot();
      const t0 = Date.now();
      const up = labScript(["up", "3", "--nm", "h2", "--jump"], ENV);
      const upMs = Date.now() - t0;
      expect(up.code, up.stderr).toBe(0);
      const lab = readLab(DIR);
      expect(lab.hosts.map((h) => h.name)).toEqual(["h1", "h2", "h3", "hj"]);
      const byName = new Map(lab.hosts.map((h) => [h.name, h]));
      const h1 = byName.get("h1");
      if (!h1) throw new Error("no h1");

      const times: number[] = [];
      for (const h of lab.hosts) {
        const before = countHandshakes(h);
        const r = ssh(h, "hostname", h.via ? byName.get(h.via) : undefined);
        expect(r.out).toBe(h.name);
        times.push(r.ms);
        expect(countHandshakes(h)).toBe(before + 1);
      }

      // each host has its own key, and presents exactly the key lab.json records
      const keys = lab.hosts.map((h) => h.hostKey);
      expect(new Set(keys).size).toBe(keys.length);
      expect(new Set(lab.hosts.map((h) => h.hostKeyFingerprint)).size).toBe(keys.length);
      for (const h of lab.hosts.filter((x) => !x.via)) {
        const kh = path.join(DIR, `known_hosts_${h.name}`);
        fs.writeFileSync(kh, `${h.address} ${h.hostKey}\n`);
        const r = spawnSync("ssh", [...sshArgs(h, { knownHostsFile: kh }), "true"], { encoding: "utf8" });
        expect(r.status, r.stderr).toBe(0);
      }

      // exec: exit code passed through, runs inside the host's namespaces
      expect(labExec(h1, ["sh", "-c", "exit 7"]).code).toBe(7);
      expect(labExec(h1, ["hostname"]).stdout.trim()).toBe("h1");
      expect(labExec(h1, ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.trim()).toBe("0");
      const h2 = byName.get("h2");
      if (!h2) throw new Error("no h2");
      expect(h2.nm).toBe(true);
      const nm = labExec(h2, ["nmcli", "-t", "-f", "DEVICE,STATE", "device", "status"]);
      expect(nm.code, nm.stderr).toBe(0);
      expect(nm.stdout).toMatch(/^eth0:connected/m);
      expect(labExec(h2, ["ip", "-4", "-br", "addr", "show", "eth0"]).stdout).toContain("198.18.20.12/24");
      checkIpv6(lab, byName);

      const t1 = Date.now();
      const down = labScript(["down"], ENV);
      const downMs = Date.now() - t1;
      expect(down.code, down.stderr).toBe(0);
      console.log(
        `round ${round}: up ${upMs} ms, down ${downMs} ms, ssh connect+hostname ms: ${times.join(", ")}`,
      );
      expect(fs.existsSync(DIR)).toBe(false);
      expect(snapshot()).toEqual(before);
    });
  }

  it("up refuses a lab range that overlaps the machine's network, before creating anything", () => {
    const OVERLAP_DIR = `${DIR}-overlap`;
    const before = snapshot();
    const ranges = ["127.0.0.0/24"];
    // and the /24 of the machine's own uplink address, whatever it is here (192.0.2.0/24 on the lab machine)
    for (const l of json(["-4", "addr", "show"])) {
      if (str(l, "ifname") === "lo" || FOREIGN.test(str(l, "ifname"))) continue;
      const info = (l as Record<string, unknown>).addr_info;
      for (const a of Array.isArray(info) ? info : []) {
        const m = /^(\d+\.\d+\.\d+)\.\d+$/.exec(str(a, "local"));
        if (m && !str(a, "local").startsWith("198.18.")) ranges.push(`${m[1]}.0/24`);
      }
    }
    // IPv6: a /48 around each of the machine's own global IPv6 addresses; the lab accepts only /48s of the
    // documentation prefix, so a machine without such an address is checked with a route added here
    const ranges6: string[] = [];
    for (const l of json(["-6", "addr", "show", "scope", "global"])) {
      if (FOREIGN.test(str(l, "ifname"))) continue;
      const info = (l as Record<string, unknown>).addr_info;
      for (const a of Array.isArray(info) ? info : []) {
        const m = /^2001:db8:([0-9a-f]{1,4})(:|$)/.exec(str(a, "local"));
        if (m) ranges6.push(`2001:db8:${m[1]}::/48`);
      }
    }
    for (const [key, range] of [
      ...ranges.flatMap((r) => [
        ["PNC_LAB_WAN", r],
        ["PNC_LAB_JUMP", r],
      ]),
      ...ranges6.map((r) => ["PNC_LAB_NET6", r]),
    ]) {
      const r = labScript(["up", "3"], { ...ENV, PNC_LAB_DIR: OVERLAP_DIR, [key]: range });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("refusing to start");
      expect(r.stderr).toContain(`${key}=${range} overlaps`);
      expect(fs.existsSync(OVERLAP_DIR)).toBe(false);
    }
    expect(snapshot()).toEqual(before);
  });
  it("up refuses an IPv6 lab range that overlaps a route of the machine, before creating anything", () => {
    const OVERLAP_DIR = `${DIR}-overlap6`;
    // A route of the machine inside 2001:db8:21::/48: a blackhole of our own (proto 213), removed at once.
    const route = ["-6", "route", "add", "unreachable", "2001:db8:21:5::/64", "proto", "213"];
    const before = snapshot();
    run("ip", route);
    try {
      const r = labScript(["up", "3"], {
        ...ENV,
        PNC_LAB_DIR: OVERLAP_DIR,
        PNC_LAB_NET6: "2001:db8:21::/48",
      });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("refusing to start");
      expect(r.stderr).toContain(
        "PNC_LAB_NET6=2001:db8:21::/48 overlaps route unreachable 2001:db8:21:5::/64",
      );
      expect(fs.existsSync(OVERLAP_DIR)).toBe(false);
      const bad = labScript(["up", "3"], { ...ENV, PNC_LAB_DIR: OVERLAP_DIR, PNC_LAB_NET6: "fd00::/48" });
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain("must be a /48 of the documentation prefix");
      expect(fs.existsSync(OVERLAP_DIR)).toBe(false);
    } finally {
      run("ip", ["-6", "route", "del", "unreachable", "2001:db8:21:5::/64", "proto", "213"]);
    }
    expect(snapshot()).toEqual(before);
  });
});
