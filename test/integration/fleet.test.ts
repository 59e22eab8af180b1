// Deploys the lab example (examples/lab, the root Pulumi.yaml's program) for real: the program runs under Pulumi
// mocks whose newResource forwards every dynamic resource to the real dynamic-provider host (check, then create;
// the mocks are called once a resource's inputs resolve, so creation follows the dependency order). Then the lab
// hosts are checked (containers answer pings, NAT lets them reach the WAN, the drop-in is there), everything is
// deleted in reverse order, and nothing of ours is left on any host.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HostPlan } from "../../provider";
import { labProgram } from "../../examples/lab/program";
import { ForwardingEngine } from "../harness/forwardingEngine";
import { runUnderMocks } from "../harness/mockRun";
import { MiniEngine } from "../harness/engine";
import { closeAll } from "../harness/providerHost";
import { fromContainer, killStarted, wanEchoPeer } from "./fixture";
import { LabHost, labExec, labExecOk, readLab } from "../lab/labHosts";

const lab = readLab();
const PREFIX = "fl-";
const CIDR = "10.233.128.0/19"; // blocks 10.233.128-159: ours alone in the shared lab
const IN_CIDR = /\b10\.233\.(12[89]|1[3-5][0-9])\.\d+/;
const HOSTS = lab.hosts.filter((h) => h.wanAddress !== null);
const WAN_PORT = 9231;

let mini: MiniEngine;
let engine: ForwardingEngine;
let plan: Record<string, HostPlan> = {};

function valueOf<T>(o: { apply<U>(f: (t: T) => U): unknown }): Promise<T> {
  return new Promise((resolve) => o.apply((v: T) => resolve(v)));
}

/** Everything of ours on a host: namespaces, links, addresses, NAT table/chains, drop-in. */
function leftovers(host: LabHost): string[] {
  const found: string[] = [];
  for (const l of labExecOk(host, ["ip", "netns", "list"]).split("\n"))
    if (l.startsWith(PREFIX)) found.push(`netns ${l}`);
  for (const l of labExecOk(host, ["ip", "-o", "link", "show"]).split("\n"))
    if (l.includes(`ve-${PREFIX}`)) found.push(`link ${l}`);
  for (const l of labExecOk(host, ["ip", "-o", "-4", "addr", "show"]).split("\n"))
    if (IN_CIDR.test(l)) found.push(`addr ${l}`);
  if (labExecOk(host, ["nft", "list", "tables"]).includes(`pnc-nat-${PREFIX}`)) found.push("nft table");
  if (labExecOk(host, ["iptables-save", "-t", "nat"]).includes(`pnc-nat-${PREFIX}`))
    found.push("iptables chains");
  const dropIn = `/etc/NetworkManager/conf.d/pulumi-nixos-containers-${PREFIX}${host.name}.conf`;
  if (labExec(host, ["test", "-e", dropIn]).code === 0) found.push(dropIn);
  return found;
}

beforeAll(async () => {
  for (const h of HOSTS) expect(leftovers(h), `leftovers of an earlier run on ${h.name}`).toEqual([]);
  mini = await MiniEngine.start();
  engine = new ForwardingEngine(mini.host);
});

afterAll(async () => {
  killStarted();
  await engine?.destroyAll().catch(() => undefined);
  await closeAll();
});

describe("the lab example, deployed through mocks forwarding to the provider host", () => {
  it("creates every host's pool, drop-in, containers and NAT in dependency order", async () => {
    const run = await runUnderMocks(
      () => labProgram({ labDir: lab.dir, prefix: PREFIX, cidr: CIDR, containersPerHost: 2 }),
      { newResource: engine.newResource("up"), wait: (r) => r.plan },
    );
    await engine.finish("up");
    plan = await valueOf(run.result.plan);
    if (process.env.PNC_PRINT_PLAN === "1")
      console.log(`network plan (stack output):\n${JSON.stringify(plan, null, 2)}`);
    const created = [...engine.state.values()];
    expect(created.map((e) => e.type.split(":").pop()).sort()).toEqual(
      HOSTS.flatMap(() => [
        "AddressPool",
        "HostIdentity",
        "NmUnmanaged",
        "Container",
        "Container",
        "NatRule",
      ]).sort(),
    );
    // Dependency order: on each host the pool, its identity and the drop-in came before its containers.
    for (const h of HOSTS) {
      const names = created.map((e) => e.name);
      const first = Math.min(
        ...names.flatMap((n, i) => (n.startsWith(`${PREFIX}${h.name}-${PREFIX}`) ? [i] : [])),
      );
      expect(names.indexOf(`${PREFIX}${h.name}-pool`)).toBeLessThan(first);
      expect(names.indexOf(`${PREFIX}${h.name}-nm`)).toBeLessThan(first);
      expect(names.indexOf(`${PREFIX}${h.name}-identity`)).toBeLessThan(
        names.indexOf(`${PREFIX}${h.name}-nm`),
      );
    }
    // Every resource of a host is pinned to the key its identity recorded (the lab's real host key).
    for (const e of created.filter((x) => /Container|NatRule|NmUnmanaged/.test(x.type))) {
      const host = HOSTS.find((h) => (e.inputs.connection as { host: string }).host === h.address);
      expect((e.inputs.connection as { hostKey?: string }).hostKey, e.name).toBe(host?.hostKey);
    }
    expect(Object.keys(plan).sort()).toEqual(HOSTS.map((h) => `${PREFIX}${h.name}`).sort());
  });

  it("gives each container its planned addresses on the host, reachable with ping", () => {
    for (const h of HOSTS) {
      const hostPlan = plan[`${PREFIX}${h.name}`];
      const addrs = labExecOk(h, ["ip", "-o", "-4", "addr", "show"]);
      for (const [name, c] of Object.entries(hostPlan.containers)) {
        expect(addrs, `${h.name} ${name}`).toContain(`${c.hostAddress}/`);
        expect(labExec(h, ["ping", "-c", "1", "-W", "2", c.localAddress]).code, `${h.name} → ${name}`).toBe(
          0,
        );
      }
    }
  });

  it("NATs containers to the WAN: the WAN sees the host's own address", async () => {
    await wanEchoPeer(WAN_PORT);
    for (const h of HOSTS) {
      const name = `${PREFIX}web`;
      const r = fromContainer(h, name, WAN_PORT);
      expect({ host: h.name, seenAs: r.seenAs }).toEqual({ host: h.name, seenAs: h.address });
    }
  });

  it("wrote the NetworkManager drop-in the plan names, and NetworkManager leaves the veths alone", () => {
    for (const h of HOSTS) {
      const path = plan[`${PREFIX}${h.name}`].networkManagerDropIn as string;
      expect(labExecOk(h, ["cat", path])).toContain("interface-name:ve-*");
      if (h.nm) {
        expect(labExecOk(h, ["nmcli", "-t", "-f", "DEVICE,STATE", "device", "status"])).toMatch(
          new RegExp(`^ve-${PREFIX}web:unmanaged$`, "m"),
        );
      }
    }
  });

  it("deletes everything in reverse order and leaves nothing behind", async () => {
    await engine.destroyAll();
    expect(engine.state.size).toBe(0);
    for (const h of HOSTS) expect(leftovers(h), h.name).toEqual([]);
  });
});
