// Preview fidelity: a Host's description changes (a container added, one removed, the external interface and
// the NAT backend changed, a port forwarded to the new container). A preview — a fresh provider host doing only
// Check and Diff — shows the new allocations, the new ruleset and the replace decisions without a single SSH
// connection (the provider's SSH counters file never appears), and the following update (another fresh provider
// host, as `pulumi up` starts its own) applies exactly what the preview showed.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Host, HostArgs, NatBackend } from "../../provider";
import { ForwardingEngine, Step } from "../harness/forwardingEngine";
import { runUnderMocks } from "../harness/mockRun";
import { MiniEngine } from "../harness/engine";
import { closeAll } from "../harness/providerHost";
import { labExec, labExecOk, labHost, readLab } from "../lab/labHosts";

const lab = readLab();
const h1 = labHost("h1", lab);
const key = fs.readFileSync(h1.privateKeyPath, "utf8");
const HOST = "fp-h1";
const statsDir = fs.mkdtempSync(path.join(os.tmpdir(), "pnc-preview-stats-"));
const STATS = path.join(statsDir, "ssh");

function description(containers: string[], externalInterface: string, backend: NatBackend): HostArgs {
  return {
    connection: { host: h1.address, port: h1.port, user: h1.user, privateKey: key },
    externalInterface,
    driver: "netns",
    pool: { cidr: "10.233.112.0/20" }, // blocks 10.233.112-127: ours alone in the shared lab
    networkManager: true,
    containers: containers.map((name) => ({ name })),
    nat: {
      backend,
      forwardPorts: containers.includes("fp-c") ? [{ sourcePort: 8088, container: "fp-c", port: 80 }] : [],
    },
  };
}

const before = description(["fp-a", "fp-b"], "eth0", "nftables");
const grown = description(["fp-a", "fp-b", "fp-c"], "eth1", "iptables");
const shrunk = description(["fp-a", "fp-c"], "eth1", "iptables");

let engine: ForwardingEngine;
/** The provider host of the first `up` and of cleanup, alive for the whole file. */
let base: MiniEngine;
const hosts: MiniEngine[] = [];

async function providerHost(env: Record<string, string> = {}): Promise<MiniEngine> {
  const m = await MiniEngine.start({ env });
  hosts.push(m);
  return m;
}

async function run(args: HostArgs, mode: "preview" | "up"): Promise<Step[]> {
  await runUnderMocks(() => new Host(HOST, args), {
    newResource: engine.newResource(mode),
    wait: (h) => h.plan,
  });
  await engine.finish(mode);
  return engine.steps;
}

function step(steps: Step[], name: string): Step {
  const s = steps.find((x) => x.name === `${HOST}-${name}`);
  if (!s) throw new Error(`no step for ${name}: ${steps.map((x) => x.name).join(", ")}`);
  return s;
}

function statsFiles(): string[] {
  return fs.readdirSync(statsDir);
}

beforeAll(async () => {
  base = await providerHost();
  engine = new ForwardingEngine(base.host);
  await run(before, "up");
});

afterAll(async () => {
  engine.useHost(base.host);
  await engine.destroyAll().catch(() => undefined);
  await closeAll();
  fs.rmSync(statsDir, { recursive: true, force: true });
});

type Allocations = Record<string, { hostAddress: string; localAddress: string }>;

function stored(type: string, name: string) {
  return engine.state.get(engine.urn(`pulumi-nodejs:dynamic/nixos:${type}`, `${HOST}-${name}`));
}

/** A preview in a fresh provider host that counts SSH use; returns the steps after checking it made no connection. */
async function previewWithoutSsh(args: HostArgs): Promise<Step[]> {
  const previewHost = await providerHost({ PNC_SSH_STATS_FILE: STATS });
  engine.useHost(previewHost.host);
  const steps = await run(args, "preview");
  await previewHost.close();
  engine.useHost(base.host);
  expect(statsFiles()).toEqual([]);
  return steps;
}

/** An update in a fresh provider host (as `pulumi up` starts its own); it must do what the preview said. */
async function upAsPreviewed(args: HostArgs, preview: Step[]): Promise<void> {
  const upHost = await providerHost({ PNC_SSH_STATS_FILE: STATS });
  engine.useHost(upHost.host);
  const applied = await run(args, "up");
  expect(applied.map((s) => [s.name, s.op]).sort()).toEqual(preview.map((s) => [s.name, s.op]).sort());
  // This one does connect: the counters file appears (so its absence after a preview means something).
  expect(statsFiles()).toEqual([`ssh.${upHost.host.pid}`]);
  fs.rmSync(path.join(statsDir, `ssh.${upHost.host.pid}`));
}

describe("preview, then update: a container added, the external interface and the NAT backend changed", () => {
  let preview: Step[] = [];
  let oldAllocations: Allocations = {};

  it("decides every step with Check and Diff only, making no SSH connection", async () => {
    oldAllocations = stored("AddressPool", "pool")?.outs.allocations as Allocations;
    preview = await previewWithoutSsh(grown);
    expect(preview.map((s) => [s.name, s.op]).sort()).toEqual(
      [
        [`${HOST}-pool`, "update"],
        [`${HOST}-identity`, "same"],
        [`${HOST}-nm`, "same"],
        [`${HOST}-fp-a`, "same"],
        [`${HOST}-fp-b`, "same"],
        [`${HOST}-fp-c`, "create"],
        [`${HOST}-nat`, "replace"],
      ].sort(),
    );
  });

  it("shows the allocations: existing containers keep their blocks, fp-c gets a free one", () => {
    const next = step(preview, "pool").inputs?.allocations as Allocations;
    expect(next["fp-a"]).toEqual(oldAllocations["fp-a"]);
    expect(next["fp-b"]).toEqual(oldAllocations["fp-b"]);
    const taken = Object.values(oldAllocations).flatMap((a) => [a.hostAddress, a.localAddress]);
    expect(taken).not.toContain(next["fp-c"].hostAddress);
    expect(step(preview, "fp-c").inputs).toMatchObject(next["fp-c"]);
  });

  it("shows the new ruleset (interface, backend, the port forwarded to fp-c's address) and the replace", () => {
    const nat = step(preview, "nat");
    const next = step(preview, "pool").inputs?.allocations as Allocations;
    expect(nat.diff).toMatchObject({ changes: true, replaces: ["backend"], deleteBeforeReplace: true });
    expect(nat.inputs?.ruleset).toContain("-o eth1 -j MASQUERADE");
    expect(nat.inputs?.ruleset).toContain(`${next["fp-c"].localAddress}:80`);
  });

  it("the update applies exactly what the preview showed", async () => {
    await upAsPreviewed(grown, preview);
    const previewed = step(preview, "fp-c").inputs ?? {};
    expect(stored("Container", "fp-c")?.outs).toMatchObject({
      hostAddress: previewed.hostAddress,
      localAddress: previewed.localAddress,
    });
    expect(labExecOk(h1, ["ip", "-o", "-4", "addr", "show", "dev", "ve-fp-c"])).toContain(
      `${String(previewed.hostAddress)}/`,
    );
    const nat = stored("NatRule", "nat");
    expect(nat?.outs.ruleset).toBe(step(preview, "nat").inputs?.ruleset);
    expect(nat?.outs).toMatchObject({ backend: "iptables", live: "applied" });
    const live = labExecOk(h1, ["iptables-save", "-t", "nat"]);
    expect(live).toMatch(/-A pnc-nat-fp-h1-post -o eth1 .*-j MASQUERADE/);
    expect(live).toContain(`--to-destination ${String(previewed.localAddress)}:80`);
    expect(labExecOk(h1, ["nft", "list", "tables"])).not.toContain(`pnc-nat-${HOST}`);
  });
});

describe("preview, then update: a container removed", () => {
  let preview: Step[] = [];

  it("previews the delete and leaves every other resource alone, without SSH", async () => {
    preview = await previewWithoutSsh(shrunk);
    expect(preview.map((s) => [s.name, s.op]).sort()).toEqual(
      [
        [`${HOST}-pool`, "update"],
        [`${HOST}-identity`, "same"],
        [`${HOST}-nm`, "same"],
        [`${HOST}-fp-a`, "same"],
        [`${HOST}-fp-c`, "same"],
        [`${HOST}-nat`, "same"],
        [`${HOST}-fp-b`, "delete"],
      ].sort(),
    );
    const next = step(preview, "pool").inputs?.allocations as Allocations;
    expect(Object.keys(next).sort()).toEqual(["fp-a", "fp-c"]);
  });

  it("the update removes fp-b from the host and nothing else", async () => {
    await upAsPreviewed(shrunk, preview);
    expect(labExec(h1, ["ip", "link", "show", "ve-fp-b"]).code).not.toBe(0);
    expect(labExecOk(h1, ["ip", "netns", "list"])).not.toMatch(/^fp-b\b/m);
    expect(labExec(h1, ["ip", "link", "show", "ve-fp-a"]).code).toBe(0);
  });
});

describe("known issue", () => {
  // The engine creates new resources before it deletes removed ones, so a block freed in the same update is
  // still on the host when the new container is created there: its create fails with "address ... is already
  // held by host interface ve-<removed>". Expected to fail until the allocator stops handing out blocks freed in
  // the same update; the preview alone (no SSH) shows it.
  it("gives containers added in the same update as one is removed blocks the removed one did not hold", async () => {
    const old = stored("AddressPool", "pool")?.outs.allocations as Allocations;
    const preview = await previewWithoutSsh(description(["fp-c", "fp-d", "fp-e"], "eth1", "iptables"));
    const next = step(preview, "pool").inputs?.allocations as Allocations;
    expect(step(preview, "fp-a").op).toBe("delete");
    expect([next["fp-d"].hostAddress, next["fp-e"].hostAddress]).not.toContain(old["fp-a"].hostAddress);
  });
});

describe("cleanup", () => {
  it("destroys everything it made", async () => {
    await engine.destroyAll();
    expect(labExecOk(h1, ["ip", "netns", "list"])).not.toMatch(/^fp-/m);
    expect(labExecOk(h1, ["iptables-save", "-t", "nat"])).not.toContain(`pnc-nat-${HOST}`);
  });
});
