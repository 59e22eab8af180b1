// NatRule with IPv6 through the real provider host on lab host h1: NAT66 (the WAN sees the host's address), an IPv6
// port forward answering from the WAN, routed mode (the WAN sees the container's own address, routed to h1 by the
// lab), IPv4 through the same rule unchanged, drift of the ip6 table, and a delete that leaves the firewall,
// forwarding and accept_ra exactly as they were; both backends.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connection,
  dadSettled6,
  fromContainer,
  fromContainer6,
  fromWan,
  h1,
  killStarted,
  serveInContainer,
  until,
  wanEchoPeer,
  wanEchoPeer6,
} from "./fixture";
import { MiniEngine, StateEntry } from "../harness/engine";
import { closeAll } from "../harness/providerHost";
import { labExecOk } from "../lab/labHosts";

let engine: MiniEngine;
const containers: StateEntry[] = [];
const ULA = { hostAddress6: "fd00:42:60::1", localAddress6: "fd00:42:60::2" };
// Inside h1's routed prefix (the lab's WAN routes it to h1).
const ROUTED = { hostAddress6: "2001:db8:0:160::1", localAddress6: "2001:db8:0:160::2" };

beforeAll(async () => {
  engine = await MiniEngine.start();
  containers.push(
    await engine.create("Container", "n6a", {
      connection: connection(h1),
      name: "n6a",
      driver: "netns",
      hostAddress: "10.233.60.1",
      localAddress: "10.233.60.2",
      ...ULA,
    }),
    await engine.create("Container", "n6r", {
      connection: connection(h1),
      name: "n6r",
      driver: "netns",
      hostAddress: "10.233.61.1",
      localAddress: "10.233.61.2",
      ...ROUTED,
    }),
  );
  await until("DAD is done in the containers", () => dadSettled6(h1, "n6a") && dadSettled6(h1, "n6r"));
});

afterAll(async () => {
  killStarted();
  for (const c of containers) await engine.destroy(c);
  await closeAll();
});

/** Both families' firewalls (no counters) and every IPv4/IPv6 forwarding and accept_ra value of h1. */
function hostDump(): string {
  const strip = (text: string): string => text.replace(/^#.*$/gm, "").replace(/\[\d+:\d+\]/g, "");
  const nft = labExecOk(h1, ["nft", "list", "ruleset"]).replace(/packets \d+ bytes \d+/g, "");
  const ipt = strip(labExecOk(h1, ["iptables-save"]));
  const ip6t = strip(labExecOk(h1, ["ip6tables-save"]));
  const sysctls = labExecOk(h1, [
    "sh",
    "-c",
    'for f in /proc/sys/net/ipv4/conf/*/forwarding /proc/sys/net/ipv6/conf/*/forwarding /proc/sys/net/ipv6/conf/*/accept_ra; do echo "$f $(cat "$f")"; done',
  ]);
  return `${nft}\n---\n${ipt}\n---\n${ip6t}\n---\n${sysctls}`;
}

function sysctl(path: string): string {
  return labExecOk(h1, ["cat", `/proc/sys/net/${path}`]).trim();
}

describe.each(["nftables", "iptables"] as const)("NatRule NAT66 (%s)", (backend) => {
  const port = backend === "nftables" ? 9161 : 9162;
  // Each backend its own server port: the other backend's server (60 s) may still listen.
  const inside = backend === "nftables" ? 80 : 81;
  const name = `six${backend.slice(0, 3)}`;
  const args = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    connection: connection(h1),
    name,
    backend,
    externalInterface: "eth0",
    internalIPs: ["10.233.0.0/16"],
    ipv6: "nat66",
    internalIPv6s: ["fd00:42::/32"],
    ...extra,
  });
  let nat: StateEntry | undefined;
  let before = "";

  it("leaves the ULA container without IPv6 to the WAN before NAT66", async () => {
    await wanEchoPeer6(port);
    await wanEchoPeer(port);
    expect(fromContainer6(h1, "n6a", port).ok).toBe(false);
  });

  it("shows the ip6 rules at check, then the WAN sees h1's IPv6 address; IPv4 works as before; accept_ra=2 on eth0", async () => {
    before = hostDump();
    const acceptRaBefore = sysctl("ipv6/conf/eth0/accept_ra");
    const checked = await engine.check("NatRule", "nat6", args());
    expect(checked.ruleset).toContain(
      backend === "nftables"
        ? 'ip6 saddr fd00:42::/32 oifname "eth0" masquerade'
        : "-A pnc-nat-sixipt-post -s fd00:42::/32 -o eth0 -j MASQUERADE",
    );
    nat = await engine.create("NatRule", "nat6", args());
    expect(nat.outs).toMatchObject({
      live: "applied",
      forwarding: true,
      forwarding6: true,
      ruleset: checked.ruleset,
    });
    expect(fromContainer6(h1, "n6a", port)).toEqual({ ok: true, seenAs: h1.address6 });
    expect(fromContainer(h1, "n6a", port)).toEqual({ ok: true, seenAs: h1.address });
    expect(sysctl("ipv6/conf/all/forwarding")).toBe("1");
    expect(sysctl("ipv6/conf/eth0/accept_ra")).toBe(acceptRaBefore === "1" ? "2" : acceptRaBefore);
  });

  it("forwards an IPv6 port to the container, reachable from the WAN", async () => {
    if (!nat) throw new Error("create failed");
    const forwarded = args({
      forwardPorts: [{ sourcePort: 8086, destination: `[${ULA.localAddress6}]:${inside}` }],
    });
    expect((await engine.plan(nat, forwarded)).diff).toMatchObject({ changes: true, replaces: [] });
    expect(await engine.up(nat, forwarded)).toBe("updated");
    await serveInContainer(h1, "n6a", inside, `hello6-${backend}`, { ipv6: true });
    expect(fromWan(h1.address6, 8086)).toBe(`hello6-${backend}`);
  });

  it("finds its IPv6 rules flushed (refresh), and the next up restores them", async () => {
    if (!nat) throw new Error("create failed");
    if (backend === "nftables") labExecOk(h1, ["nft", "flush", "table", "ip6", "pnc-nat-sixnft"]);
    else labExecOk(h1, ["ip6tables", "-t", "nat", "-F", "pnc-nat-sixipt-post"]);
    expect(fromContainer6(h1, "n6a", port).ok).toBe(false);
    expect(await engine.refresh(nat)).toBe(true);
    expect(nat.outs.live).toBe("altered");
    const forwarded = args({
      forwardPorts: [{ sourcePort: 8086, destination: `[${ULA.localAddress6}]:${inside}` }],
    });
    expect((await engine.plan(nat, forwarded)).diff.changes).toBe(true);
    expect(await engine.up(nat, forwarded)).toBe("updated");
    expect(nat.outs.live).toBe("applied");
    expect(fromContainer6(h1, "n6a", port)).toEqual({ ok: true, seenAs: h1.address6 });
  });

  it("turning IPv6 off removes the ip6 rules and puts IPv6 forwarding back; delete restores everything exactly", async () => {
    if (!nat) throw new Error("create failed");
    const v4only = {
      connection: connection(h1),
      name,
      backend,
      externalInterface: "eth0",
      internalIPs: ["10.233.0.0/16"],
    };
    expect(await engine.up(nat, v4only)).toBe("updated");
    expect(nat.outs.forwarding6).toBeUndefined();
    expect(sysctl("ipv6/conf/all/forwarding")).toBe("0");
    expect(fromContainer6(h1, "n6a", port).ok).toBe(false);
    expect(fromContainer(h1, "n6a", port)).toEqual({ ok: true, seenAs: h1.address });
    expect(await engine.up(nat, args())).toBe("updated");
    expect(fromContainer6(h1, "n6a", port).ok).toBe(true);
    await engine.destroy(nat);
    expect(hostDump()).toBe(before);
    expect(fromContainer6(h1, "n6a", port).ok).toBe(false);
    await engine.destroy(nat);
  });
});

describe("NatRule routed IPv6", () => {
  it("forwards the routed container's own address (the WAN sees it), NAT66-free, and delete restores exactly", async () => {
    await wanEchoPeer6(9163);
    expect(fromContainer6(h1, "n6r", 9163).ok).toBe(false);
    const before = hostDump();
    const args = {
      connection: connection(h1),
      name: "routed6",
      externalInterface: "eth0",
      ipv6: "routed",
      internalIPv6s: ["2001:db8:0:100::/56"],
    };
    const nat = await engine.create("NatRule", "routed6", args);
    expect(nat.outs).toMatchObject({ live: "applied", forwarding6: true });
    expect(String(nat.outs.ruleset)).not.toContain("ip6");
    expect(fromContainer6(h1, "n6r", 9163)).toEqual({ ok: true, seenAs: ROUTED.localAddress6 });
    expect(labExecOk(h1, ["nft", "list", "tables"])).not.toContain("ip6 pnc-nat-routed6");
    await engine.destroy(nat);
    expect(hostDump()).toBe(before);
    expect(fromContainer6(h1, "n6r", 9163).ok).toBe(false);
  });

  it("rejects a port forward in routed mode at check, before any host work", async () => {
    await expect(
      engine.check("NatRule", "routedfwd", {
        connection: connection(h1),
        name: "routedfwd",
        externalInterface: "eth0",
        ipv6: "routed",
        forwardPorts: [{ sourcePort: 80, destination: `[${ROUTED.localAddress6}]:80` }],
      }),
    ).rejects.toThrow(/a port forward is a DNAT, and routed containers are reached at their own address/);
  });
});
