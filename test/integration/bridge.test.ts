// Bridged containers (`hostBridge`) through the real dynamic-provider host on lab hosts, for both drivers:
// the host end vb-<name> on a bridge the test makes (and removes), reachable from an address on that bridge,
// found by read, repaired after drift, refused when the bridge is missing, and deleted leaving the bridge.
// The bridges' ranges (10.233.240.0/24 on h1, 10.233.241.0/24 on h3) live only inside those lab hosts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connection, h1, h3, reachable, inContainer } from "./fixture";
import { MiniEngine, StateEntry } from "../harness/engine";
import { closeAll } from "../harness/providerHost";
import { LabHost, labExec, labExecOk } from "../lab/labHosts";

let engine: MiniEngine;
beforeAll(async () => {
  engine = await MiniEngine.start();
});
afterAll(async () => {
  await closeAll();
});

/** Makes bridge `name` on `host`, up, with `address` (a host address on the bridge's network). */
function makeBridge(host: LabHost, name: string, address: string): void {
  labExec(host, ["ip", "link", "del", name]);
  labExecOk(host, ["ip", "link", "add", name, "type", "bridge"]);
  labExecOk(host, ["ip", "link", "set", name, "up"]);
  labExecOk(host, ["ip", "addr", "add", address, "dev", name]);
}

/** The master (bridge) of link `name` on `host`, or undefined when the link is missing or has none. */
function masterOf(host: LabHost, name: string): string | undefined {
  const r = labExec(host, ["ip", "-j", "link", "show", "dev", name]);
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as { master?: string }[])[0]?.master;
}

const linkExists = (host: LabHost, name: string) =>
  labExec(host, ["ip", "link", "show", "dev", name]).code === 0;

/** The IPv4 addresses (with prefix) on eth0 inside container `name`. */
function insideAddresses(host: LabHost, name: string): string[] {
  const out = labExecOk(host, inContainer(name, ["ip", "-j", "-4", "addr", "show", "dev", "eth0"]));
  const parsed = JSON.parse(out) as { addr_info: { local: string; prefixlen: number }[] }[];
  return parsed.flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen}`));
}

describe("bridged Container, netns driver (h1)", () => {
  const BRIDGE = "pncbr0";
  const entries: StateEntry[] = [];
  beforeAll(() => makeBridge(h1, BRIDGE, "10.233.240.1/24"));
  afterAll(async () => {
    for (const e of entries.splice(0)) await engine.destroy(e).catch(() => undefined);
    labExec(h1, ["ip", "link", "del", BRIDGE]);
  });

  const bridged = (name: string, extra: Record<string, unknown> = {}) => ({
    connection: connection(h1),
    name,
    driver: "netns",
    hostBridge: BRIDGE,
    ...extra,
  });

  let brw: StateEntry | undefined;
  it("creates vb-<name> on the bridge with the static address and gateway, pingable from the bridge", async () => {
    const inputs = bridged("brw", { localAddress: "10.233.240.5/24", hostAddress: "10.233.240.1" });
    expect((await engine.check("Container", "brw", inputs)).hostInterface).toBe("vb-brw");
    brw = await engine.create("Container", "brw", inputs);
    entries.push(brw);
    expect(brw.outs).toMatchObject({
      hostInterface: "vb-brw",
      containerInterface: "eth0",
      hostBridge: BRIDGE,
      localAddress: "10.233.240.5/24",
      hostAddress: "10.233.240.1",
      running: true,
      allocatedOnHost: false,
    });
    expect(masterOf(h1, "vb-brw")).toBe(BRIDGE);
    expect(linkExists(h1, "ve-brw")).toBe(false);
    // The host end carries no address: the bridge has it.
    expect(labExecOk(h1, ["ip", "-o", "-4", "addr", "show", "dev", "vb-brw"]).trim()).toBe("");
    expect(insideAddresses(h1, "brw")).toEqual(["10.233.240.5/24"]);
    expect(labExecOk(h1, inContainer("brw", ["ip", "-4", "route", "show", "default"]))).toMatch(
      /default via 10\.233\.240\.1 dev eth0/,
    );
    expect(reachable(h1, undefined, "10.233.240.5")).toBe(true);
    expect(reachable(h1, "brw", "10.233.240.1")).toBe(true);
  });

  it("read finds it running; a veth taken off the bridge shows as not running and up repairs it", async () => {
    if (!brw) throw new Error("create failed");
    expect(await engine.refresh(brw)).toBe(true);
    expect(brw.outs).toMatchObject({ running: true, localAddress: "10.233.240.5/24" });
    const inputs = bridged("brw", { localAddress: "10.233.240.5/24", hostAddress: "10.233.240.1" });
    expect((await engine.plan(brw, inputs)).diff).toMatchObject({ changes: false });
    labExecOk(h1, ["ip", "link", "set", "vb-brw", "nomaster"]);
    expect(await engine.refresh(brw)).toBe(true);
    expect(brw.outs.running).toBe(false);
    expect(await engine.up(brw, inputs)).toBe("updated");
    expect(brw.outs.running).toBe(true);
    expect(masterOf(h1, "vb-brw")).toBe(BRIDGE);
    expect(reachable(h1, undefined, "10.233.240.5")).toBe(true);
  });

  it("rejects the address of another bridged container, and the bridge's own, naming who holds it", async () => {
    await expect(
      engine.create("Container", "brc", bridged("brc", { localAddress: "10.233.240.5/24" })),
    ).rejects.toThrow(/address 10\.233\.240\.5 is already held by container "brw" \(bridged to pncbr0\)/);
    await expect(
      engine.create("Container", "brc", bridged("brc", { localAddress: "10.233.240.1/24" })),
    ).rejects.toThrow(/address 10\.233\.240\.1 is already held by host interface pncbr0/);
    expect(labExecOk(h1, ["ip", "netns", "list"])).not.toMatch(/^brc\b/m);
    expect(linkExists(h1, "vb-brc")).toBe(false);
  });

  it("runs a container without an address (DHCP from the LAN is the user's)", async () => {
    const brd = await engine.create("Container", "brd", bridged("brd"));
    entries.push(brd);
    expect(brd.outs).toMatchObject({ hostInterface: "vb-brd", running: true });
    expect(brd.outs.localAddress).toBeUndefined();
    expect(brd.outs.hostAddress).toBeUndefined();
    expect(masterOf(h1, "vb-brd")).toBe(BRIDGE);
    expect(insideAddresses(h1, "brd")).toEqual([]);
    // An address the user's DHCP client would have set stays, and is no change for the next up.
    labExecOk(h1, inContainer("brd", ["ip", "addr", "add", "10.233.240.77/24", "dev", "eth0"]));
    expect(await engine.refresh(brd)).toBe(true);
    expect(brd.outs.running).toBe(true);
    expect((await engine.plan(brd, bridged("brd"))).diff).toMatchObject({ changes: false });
  });

  it("refuses a missing bridge by name and leaves nothing behind", async () => {
    const failed = await engine
      .create("Container", "brm", bridged("brm", { hostBridge: "pncnone", localAddress: "10.233.240.9/24" }))
      .catch((e: unknown) => e);
    expect(String(failed)).toMatch(
      /bridge pncnone \(hostBridge of container brm\) does not exist on the host/,
    );
    expect(String(failed)).toMatch(/Nothing was changed on the host/);
    expect(labExecOk(h1, ["ip", "netns", "list"])).not.toMatch(/^brm\b/m);
    expect(linkExists(h1, "vb-brm")).toBe(false);
    expect(
      labExec(h1, ["test", "-e", "/var/lib/pulumi-nixos-containers/owners/container-brm"]).code,
    ).not.toBe(0);
    expect(labExec(h1, ["test", "-e", "/run/pulumi-nixos-containers/addresses/container-brm"]).code).not.toBe(
      0,
    );
  });

  it("deletes vb-<name>, the namespace and the address record, and leaves the bridge", async () => {
    for (const e of entries.splice(0)) await engine.destroy(e);
    for (const name of ["brw", "brd"]) {
      expect(linkExists(h1, `vb-${name}`)).toBe(false);
      expect(labExecOk(h1, ["ip", "netns", "list"])).not.toMatch(new RegExp(`^${name}\\b`, "m"));
    }
    expect(labExec(h1, ["test", "-e", "/run/pulumi-nixos-containers/addresses/container-brw"]).code).not.toBe(
      0,
    );
    expect(linkExists(h1, BRIDGE)).toBe(true);
    expect(labExecOk(h1, ["ip", "-o", "-4", "addr", "show", "dev", BRIDGE])).toContain("10.233.240.1/24");
  });
});

describe("bridged Container, nixos driver (h3 stand-ins)", () => {
  const BRIDGE = "pncbr3";
  const entries: StateEntry[] = [];
  beforeAll(() => makeBridge(h3, BRIDGE, "10.233.241.1/24"));
  afterAll(async () => {
    for (const e of entries.splice(0)) await engine.destroy(e).catch(() => undefined);
    labExec(h3, ["ip", "link", "del", BRIDGE]);
  });

  const bridged = (name: string, extra: Record<string, unknown> = {}) => ({
    connection: connection(h3),
    name,
    driver: "nixos",
    hostBridge: BRIDGE,
    ...extra,
  });
  const conf = (name: string) => labExecOk(h3, ["cat", `/etc/nixos-containers/${name}.conf`]);

  it("creates it with --bridge: HOST_BRIDGE in the conf, vb-<name> on the bridge, pingable from the bridge", async () => {
    const b1 = await engine.create("Container", "b1", bridged("pnc-b1", { localAddress: "10.233.241.5/24" }));
    entries.push(b1);
    expect(b1.outs).toMatchObject({
      hostInterface: "vb-pnc-b1",
      localAddress: "10.233.241.5/24",
      running: true,
      unitState: "active",
    });
    expect(b1.outs.hostAddress).toBeUndefined();
    expect(conf("pnc-b1")).toMatch(
      /^HOST_ADDRESS=\nLOCAL_ADDRESS=10\.233\.241\.5\/24\nHOST_BRIDGE=pncbr3\n/m,
    );
    expect(masterOf(h3, "vb-pnc-b1")).toBe(BRIDGE);
    expect(linkExists(h3, "ve-pnc-b1")).toBe(false);
    expect(insideAddresses(h3, "pnc-b1")).toEqual(["10.233.241.5/24"]);
    expect(reachable(h3, undefined, "10.233.241.5")).toBe(true);
    expect(await engine.refresh(b1)).toBe(true);
    expect(b1.outs).toMatchObject({ running: true, localAddress: "10.233.241.5/24" });
    expect(
      (await engine.plan(b1, bridged("pnc-b1", { localAddress: "10.233.241.5/24" }))).diff,
    ).toMatchObject({
      changes: false,
    });
  });

  it("runs one without an address: nixos-container allocates nothing, eth0 has none", async () => {
    const b2 = await engine.create("Container", "b2", bridged("pnc-b2"));
    entries.push(b2);
    expect(b2.outs).toMatchObject({ hostInterface: "vb-pnc-b2", running: true });
    expect(b2.outs.localAddress).toBeUndefined();
    expect(conf("pnc-b2")).toMatch(/^HOST_ADDRESS=\nLOCAL_ADDRESS=\nHOST_BRIDGE=pncbr3\n/m);
    expect(masterOf(h3, "vb-pnc-b2")).toBe(BRIDGE);
    expect(insideAddresses(h3, "pnc-b2")).toEqual([]);
  });

  it("refuses a missing bridge by name, with no conf left", async () => {
    const failed = await engine
      .create("Container", "b3", bridged("pnc-b3", { hostBridge: "pncnone" }))
      .catch((e: unknown) => e);
    expect(String(failed)).toMatch(
      /bridge pncnone \(hostBridge of container pnc-b3\) does not exist on the host/,
    );
    expect(labExec(h3, ["test", "-e", "/etc/nixos-containers/pnc-b3.conf"]).code).not.toBe(0);
    expect(linkExists(h3, "vb-pnc-b3")).toBe(false);
  });

  it("deletes vb-<name> and the conf, and leaves the bridge", async () => {
    for (const e of entries.splice(0)) await engine.destroy(e);
    for (const name of ["pnc-b1", "pnc-b2"]) {
      expect(linkExists(h3, `vb-${name}`)).toBe(false);
      expect(labExec(h3, ["test", "-e", `/etc/nixos-containers/${name}.conf`]).code).not.toBe(0);
    }
    expect(linkExists(h3, BRIDGE)).toBe(true);
  });
});
