// The lab's IPv6 (test/lab/README.md, "IPv6"): every host and the WAN talk over 2001:db8::/64, the WAN routes
// each host's container prefix back to it (routed mode), and the fixture's IPv6 helpers see what they claim.
// A hand-made namespace on h1 stands in for a container; h1's IPv6 forwarding is on only while it runs.
import { spawnSync } from "child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  canonical6,
  dadSettled6,
  fromContainer6,
  h1,
  killStarted,
  lab,
  reachable6,
  until,
  wanEchoPeer6,
} from "../integration/fixture";
import { labExec, labExecOk } from "./labHosts";

const NS = "ip6lab";
const PORT = 7641;

/** `ip ARGV` inside the WAN namespace. */
function inWan(argv: string[]): { code: number; stdout: string } {
  const r = spawnSync("ip", ["netns", "exec", lab.wanNetns, ...argv], { encoding: "utf8" });
  return { code: r.status ?? -1, stdout: r.stdout };
}

function removeNs(): void {
  labExec(h1, ["ip", "netns", "del", NS]);
  labExec(h1, ["ip", "link", "del", `ve-${NS}`]);
  labExec(h1, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=0"]);
}

/** A "container" on h1: namespace NS, veth ve-NS / eth0, the addresses given, default route via the host end. */
function makeNs(hostAddress6: string, localAddress6: string): void {
  removeNs();
  labExecOk(h1, ["ip", "netns", "add", NS]);
  labExecOk(h1, ["ip", "link", "add", `ve-${NS}`, "type", "veth", "peer", "name", "eth0", "netns", NS]);
  labExecOk(h1, ["ip", "link", "set", `ve-${NS}`, "up"]);
  labExecOk(h1, ["ip", "-6", "addr", "add", hostAddress6, "dev", `ve-${NS}`]);
  labExecOk(h1, ["ip", "-6", "route", "add", localAddress6, "dev", `ve-${NS}`]);
  const inNs = (argv: string[]) => labExecOk(h1, ["ip", "netns", "exec", NS, ...argv]);
  inNs(["ip", "link", "set", "lo", "up"]);
  inNs(["ip", "link", "set", "eth0", "up"]);
  inNs(["ip", "-6", "addr", "add", localAddress6, "dev", "eth0"]);
  inNs(["ip", "-6", "route", "add", hostAddress6, "dev", "eth0"]);
  inNs(["ip", "-6", "route", "add", "default", "via", hostAddress6]);
  labExecOk(h1, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
}

beforeAll(async () => {
  await wanEchoPeer6(PORT, 120);
});

afterAll(() => {
  removeNs();
  killStarted();
});

describe("lab IPv6", () => {
  it("every host and the WAN reach each other over IPv6, from the addresses lab.json records", () => {
    for (const h of lab.hosts.filter((x) => x.wanAddress6 !== null)) {
      expect(reachable6(h, undefined, lab.wanAddress6), h.name).toBe(true);
      expect(inWan(["ping", "-6", "-c", "1", "-W", "2", h.address6]).code, h.name).toBe(0);
      expect(labExecOk(h, ["ip", "-6", "route", "get", lab.wanAddress6])).toContain(`src ${h.address6}`);
      expect(labExecOk(h, ["cat", "/proc/sys/net/ipv6/conf/all/forwarding"]).trim(), h.name).toBe("0");
    }
  });

  it("the WAN echo listener answers a host with the host's own IPv6 address", () => {
    const r = labExec(h1, ["socat", "-T", "3", "-", `TCP6:[${lab.wanAddress6}]:${PORT},connect-timeout=2`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\[[0-9a-f:]+\]$/); // as socat gives it: in brackets, uncompressed
    expect(canonical6(r.stdout.trim())).toBe(h1.address6);
  });

  it("routed mode: a container addressed from h1's prefix reaches the WAN, which sees the container's address", async () => {
    expect(h1.routedPrefix6).toBe("2001:db8:0:100::/56");
    makeNs("2001:db8:0:101::1", "2001:db8:0:101::2");
    // the host end and eth0 go through DAD (no nodad), as a container's would
    await until("DAD is over on h1 and in the namespace", () => dadSettled6(h1) && dadSettled6(h1, NS));
    expect(reachable6(h1, undefined, "2001:db8:0:101::2")).toBe(true);
    expect(reachable6(h1, NS, lab.wanAddress6)).toBe(true);
    expect(fromContainer6(h1, NS, PORT)).toEqual({ ok: true, seenAs: "2001:db8:0:101::2" });
  });

  it("fails without NAT66 for a container address outside the lab's prefixes: the WAN has no route back", async () => {
    makeNs("fd42:6:1::1", "fd42:6:1::2");
    await until("DAD is over", () => dadSettled6(h1) && dadSettled6(h1, NS));
    expect(reachable6(h1, undefined, "fd42:6:1::2")).toBe(true);
    expect(fromContainer6(h1, NS, PORT).ok).toBe(false);
    expect(inWan(["ip", "-6", "route", "get", "fd42:6:1::2"]).code).not.toBe(0);
  });

  it("dadSettled6 sees a tentative address", () => {
    removeNs();
    labExecOk(h1, ["ip", "netns", "add", NS]);
    labExecOk(h1, ["ip", "link", "add", `ve-${NS}`, "type", "veth", "peer", "name", "eth0", "netns", NS]);
    labExecOk(h1, ["ip", "link", "set", `ve-${NS}`, "up"]);
    labExecOk(h1, ["ip", "netns", "exec", NS, "ip", "link", "set", "eth0", "up"]);
    labExecOk(h1, ["ip", "-6", "addr", "add", "fd42:6:2::1/128", "dev", `ve-${NS}`]);
    expect(dadSettled6(h1)).toBe(false);
    removeNs();
    expect(dadSettled6(h1)).toBe(true);
    expect(labExecOk(h1, ["cat", "/proc/sys/net/ipv6/conf/all/forwarding"]).trim()).toBe("0");
  });
});
