// Container and VethPair IPv6 through the real provider host: a netns container on h1 and a nixos container on
// h3 (the stand-ins follow nixos-containers.nix: the conf's HOST_ADDRESS6/LOCAL_ADDRESS6, postStart and
// container-init) get both families, answer ping6 both ways, clash on a held IPv6 address, show IPv6 drift in a
// refresh and are repaired by up; an IPv6 change is an update in place, and dropping IPv6 removes it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connection, dadSettled6, h1, h3, nixosInputs, reachable6, until } from "./fixture";
import { MiniEngine, StateEntry } from "../harness/engine";
import { closeAll } from "../harness/providerHost";
import { labExec, labExecOk } from "../lab/labHosts";
import { inContainer } from "./fixture";

let engine: MiniEngine;
const made: StateEntry[] = [];

const six = {
  driver: "netns",
  hostAddress: "10.233.60.1",
  localAddress: "10.233.60.2",
  hostAddress6: "fd00:233:60::1",
  localAddress6: "fd00:233:60::2",
};

beforeAll(async () => {
  engine = await MiniEngine.start();
});

afterAll(async () => {
  for (const r of made.reverse()) await engine.destroy(r);
  await closeAll();
});

describe("a netns container with IPv6", () => {
  let web: StateEntry;

  it("gets both families: /128 ends, routes both ways, ping6 from the host and from inside", async () => {
    web = await engine.create("Container", "six", { connection: connection(h1), name: "six", ...six });
    made.push(web);
    expect(web.outs).toMatchObject({
      running: true,
      hostAddress6: "fd00:233:60::1",
      localAddress6: "fd00:233:60::2",
    });
    expect(reachable6(h1, undefined, "fd00:233:60::2")).toBe(true);
    expect(reachable6(h1, "six", "fd00:233:60::1")).toBe(true);
    const inside = labExecOk(h1, inContainer("six", ["ip", "-6", "route", "show", "default"]));
    expect(inside).toContain("default via fd00:233:60::1 dev eth0");
    expect(labExecOk(h1, ["ip", "-6", "route", "show", "fd00:233:60::2"])).toContain("dev ve-six");
  });

  it("refuses another container on an IPv6 address already held, naming the holder", async () => {
    const clash = engine.create("Container", "six2", {
      connection: connection(h1),
      name: "six2",
      driver: "netns",
      hostAddress: "10.233.61.1",
      localAddress: "10.233.61.2",
      hostAddress6: "fd00:233:61::1",
      localAddress6: "fd00:233:60::2",
    });
    await expect(clash).rejects.toThrow(/address fd00:233:60::2 is already held by/);
    expect(labExec(h1, ["ip", "link", "show", "dev", "ve-six2"]).code).not.toBe(0);
  });

  it("finds an IPv6 address removed by hand (refresh) and the next up puts it back", async () => {
    labExecOk(h1, inContainer("six", ["ip", "-6", "addr", "del", "fd00:233:60::2/128", "dev", "eth0"]));
    expect(await engine.refresh(web)).toBe(true);
    expect(web.outs.running).toBe(false);
    const args = { connection: connection(h1), name: "six", ...six };
    expect((await engine.plan(web, args)).diff.changes).toBe(true);
    expect(await engine.up(web, args)).toBe("updated");
    expect(web.outs.running).toBe(true);
    expect(reachable6(h1, undefined, "fd00:233:60::2")).toBe(true);
  });

  it("moves to another IPv6 pair in place, and drops IPv6 when the program does", async () => {
    const moved = {
      connection: connection(h1),
      name: "six",
      ...six,
      hostAddress6: "fd00:233:62::1",
      localAddress6: "fd00:233:62::2",
    };
    const plan = await engine.plan(web, moved);
    expect(plan.diff).toMatchObject({ changes: true, replaces: [] });
    expect(await engine.up(web, moved)).toBe("updated");
    expect(reachable6(h1, undefined, "fd00:233:62::2")).toBe(true);
    expect(reachable6(h1, undefined, "fd00:233:60::2")).toBe(false);
    const { hostAddress6: _h, localAddress6: _l, ...v4only } = moved;
    expect(await engine.up(web, v4only)).toBe("updated");
    expect(web.outs.hostAddress6).toBeUndefined();
    expect(labExecOk(h1, ["ip", "-6", "addr", "show", "dev", "ve-six", "scope", "global"]).trim()).toBe("");
    expect(web.outs.running).toBe(true);
    expect(await engine.up(web, { connection: connection(h1), name: "six", ...six })).toBe("updated");
  });

  it("links a VethPair with an IPv6 pair to it", async () => {
    const veth = await engine.create("VethPair", "vx6", {
      connection: connection(h1),
      container: "six",
      hostInterface: "vx6-six",
      containerInterface: "eth1",
      hostAddress6: "fd00:250:60::1",
      localAddress6: "fd00:250:60::2",
    });
    made.push(veth);
    expect(veth.outs).toMatchObject({ present: true, hostAddress6: "fd00:250:60::1" });
    expect(reachable6(h1, undefined, "fd00:250:60::2")).toBe(true);
  });
});

describe("a nixos container with IPv6 (stand-ins of nixos-container and container@)", () => {
  it("writes HOST_ADDRESS6/LOCAL_ADDRESS6 in its conf, which the unit applies at start", async () => {
    const nx = await engine.create(
      "Container",
      "nx6",
      nixosInputs(h3, "nx6", 63, { hostAddress6: "fd00:233:63::1", localAddress6: "fd00:233:63::2" }),
    );
    made.push(nx);
    const conf = labExecOk(h3, ["cat", "/etc/nixos-containers/nx6.conf"]);
    expect(conf).toContain("HOST_ADDRESS6=fd00:233:63::1\n");
    expect(conf).toContain("LOCAL_ADDRESS6=fd00:233:63::2\n");
    expect(nx.outs).toMatchObject({
      running: true,
      hostAddress6: "fd00:233:63::1",
      localAddress6: "fd00:233:63::2",
    });
    // As on NixOS the unit adds them without nodad: wait for duplicate address detection.
    await until("DAD settled on h3", () => dadSettled6(h3) && dadSettled6(h3, "nx6"));
    expect(reachable6(h3, undefined, "fd00:233:63::2")).toBe(true);
  });
});
