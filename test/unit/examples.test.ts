// Every example program, run through its Pulumi entry (index.ts) with each of its stack configs (Pulumi.yaml
// defaults + Pulumi.<stack>.yaml), under Pulumi mocks whose dynamic resources are answered by the package's real
// `check`: the expected resources and inputs come out, no two containers share an address on a host, and the
// NAT rule of each host uses that host's external interface. Also: the project files declare what stacks set.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, describe, expect, it, vi } from "vitest";
import type { HostPlan } from "../../provider";
import { DYNAMIC_PREFIX, RecordedResource, runUnderMocks } from "../harness/mockRun";
import { asRuntimeConfig, readProject, stackConfig } from "../harness/stackConfig";

const ROOT = path.resolve(__dirname, "../..");
const EXAMPLES = path.join(ROOT, "examples");
const TEST_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\ntest key, never used\n-----END OPENSSH PRIVATE KEY-----\n";

interface ContainerDesc {
  name: string;
  driver?: string;
}
interface HostDesc {
  name: string;
  address: string;
  externalInterface?: string;
  networkManager?: boolean;
  containers?: ContainerDesc[];
  nat?: { backend?: string };
}

type Plan = Record<string, HostPlan>;

/** Runs an example's entry with the given config, the way `pulumi up` would run it for that stack. */
async function runEntry(
  entry: string,
  projectName: string,
  values: Record<string, unknown>,
  secretKeys: string[] = [],
) {
  vi.resetModules();
  const config = asRuntimeConfig(projectName, values);
  pulumi.runtime.setAllConfig(
    config,
    secretKeys.map((k) => `${projectName}:${k}`),
  );
  const run = await runUnderMocks(
    async () => (await import(entry)) as { networkPlan: pulumi.Output<unknown> },
    {
      project: projectName,
      stack: "test",
      wait: (m) => m.networkPlan,
    },
  );
  const plan = await new Promise<unknown>((resolve) => run.result.networkPlan.apply(resolve));
  return { resources: run.resources, plan };
}

function ofType(resources: RecordedResource[], type: string): RecordedResource[] {
  return resources.filter((r) => r.type === DYNAMIC_PREFIX + type);
}

function connectionOf(r: RecordedResource): Record<string, unknown> {
  return r.inputs.connection as Record<string, unknown>;
}

/** Checks that hold for every host of every example. */
function expectSoundHosts(
  resources: RecordedResource[],
  hosts: HostDesc[],
  defaults: Partial<HostDesc>,
  plan: Plan,
) {
  const containers = ofType(resources, "Container");
  const nats = ofType(resources, "NatRule");
  const nms = ofType(resources, "NmUnmanaged");
  expect(ofType(resources, "AddressPool")).toHaveLength(hosts.length);
  expect(resources.filter((r) => r.type === "nixos-containers:index:Host")).toHaveLength(hosts.length);
  expect(containers).toHaveLength(hosts.reduce((n, h) => n + (h.containers ?? []).length, 0));
  expect(nats).toHaveLength(hosts.length);
  expect(nms).toHaveLength(
    hosts.filter((h) => (h.networkManager ?? defaults.networkManager ?? true) !== false).length,
  );
  expect(Object.keys(plan).sort()).toEqual(hosts.map((h) => h.name).sort());

  for (const h of hosts) {
    const mine = containers.filter((c) => connectionOf(c).host === h.address);
    expect(mine.map((c) => c.name).sort()).toEqual(
      (h.containers ?? []).map((c) => `${h.name}-${c.name}`).sort(),
    );
    expect(mine.map((c) => c.inputs.name).sort()).toEqual((h.containers ?? []).map((c) => c.name).sort());
    const addresses = mine.flatMap((c) => [c.inputs.hostAddress, c.inputs.localAddress]);
    expect(addresses.every((a) => typeof a === "string" && a.startsWith("10.233."))).toBe(true);
    expect(new Set(addresses).size).toBe(addresses.length);
    const nat = nats.find((n) => connectionOf(n).host === h.address);
    expect(nat?.name).toBe(`${h.name}-nat`);
    expect(nat?.inputs.externalInterface).toBe(h.externalInterface ?? defaults.externalInterface);
    expect(plan[h.name].externalInterface).toBe(h.externalInterface ?? defaults.externalInterface);
    expect(plan[h.name].nat?.ruleset).toBe(nat?.state.ruleset);
    for (const c of mine) {
      expect(plan[h.name].containers[c.inputs.name as string]).toEqual({
        hostInterface: `ve-${String(c.inputs.name)}`,
        containerInterface: "eth0",
        hostAddress: c.inputs.hostAddress,
        localAddress: c.inputs.localAddress,
        ...(c.inputs.hostAddress6 === undefined
          ? {}
          : { hostAddress6: c.inputs.hostAddress6, localAddress6: c.inputs.localAddress6 }),
      });
    }
  }
}

describe("project files", () => {
  for (const dir of [ROOT, path.join(EXAMPLES, "single-host"), path.join(EXAMPLES, "fleet")]) {
    it(`declares typed defaults that match their types, and a main that exists (${path.relative(ROOT, dir) || "root"})`, () => {
      const project = readProject(dir);
      expect(project.runtime).toMatchObject({ name: "nodejs" });
      expect(fs.existsSync(path.join(dir, project.main ?? "index.ts"))).toBe(true);
      for (const [key, decl] of Object.entries(project.config ?? {})) {
        expect(decl.description, key).toBeTruthy();
        if (decl.default === undefined || decl.type === undefined) continue;
        const ok = {
          string: typeof decl.default === "string",
          integer: Number.isInteger(decl.default),
          boolean: typeof decl.default === "boolean",
          array: Array.isArray(decl.default),
        }[decl.type];
        expect(ok, `${key} default ${JSON.stringify(decl.default)} is not a ${decl.type}`).toBe(true);
      }
    });
  }
});

describe("fleet example", () => {
  const dir = path.join(EXAMPLES, "fleet");
  for (const stack of ["dev", "prod"]) {
    it(`yields one Host per configured host with the expected resources and inputs (stack ${stack})`, async () => {
      const cfg = stackConfig(dir, stack);
      expect(cfg.undeclared).toEqual([]);
      expect(cfg.missing).toEqual([]);
      const usesAgent = cfg.values.agentSocketPath !== "";
      const values = usesAgent ? cfg.values : { ...cfg.values, privateKey: TEST_KEY };
      const { resources, plan } = await runEntry(
        path.join(dir, "index.ts"),
        cfg.project.name,
        values,
        usesAgent ? [] : ["privateKey"],
      );
      const hosts = cfg.values.hosts as HostDesc[];
      const defaults = cfg.values.defaults as Partial<HostDesc> & { user: string; port: number };
      expectSoundHosts(resources, hosts, defaults, plan as Plan);
      expect(resources.filter((r) => r.type === "nixos-containers:index:Fleet")).toHaveLength(1);

      for (const r of [...ofType(resources, "Container"), ...ofType(resources, "NatRule")]) {
        const c = connectionOf(r);
        expect(c).toMatchObject({ user: defaults.user, port: defaults.port });
        if (usesAgent) {
          expect(c.agentSocketPath).toBe(cfg.values.agentSocketPath);
          expect(c.privateKey).toBeUndefined();
        } else {
          expect(c.privateKey).toBe(TEST_KEY);
          // The key left the config as a secret and reaches the engine as one.
          expect(r.secretKeys).toContain("connection");
        }
      }
      if (stack === "prod") {
        // prod: every address avoids the excluded 10.233.0.0/20; the bastion is used; host keys are pinned.
        for (const c of ofType(resources, "Container")) {
          expect(Number(String(c.inputs.hostAddress).split(".")[2])).toBeGreaterThanOrEqual(16);
          expect(connectionOf(c).proxy).toMatchObject({ host: "bastion.example.net" });
          expect(connectionOf(c).hostKey).toMatch(/^ssh-ed25519 /);
        }
        const db = ofType(resources, "NatRule").find((n) => n.name === "prod-db-nat");
        expect(db?.inputs).toMatchObject({ backend: "iptables", externalIP: "10.0.2.10", name: "prod-db" });
        const web1 = (plan as Plan)["prod-web-1"];
        expect(web1.nat?.ruleset).toContain(`${web1.containers.web.localAddress}:443`);
      }
      if (stack === "dev") {
        // dev has IPv6: every container gets the pool's pair, and the NAT has its ip6 table.
        for (const c of ofType(resources, "Container")) {
          expect(String(c.inputs.localAddress6)).toMatch(
            /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::2$/,
          );
        }
        for (const n of ofType(resources, "NatRule")) expect(n.state.ruleset).toContain("table ip6 pnc-nat-");
        expect((plan as Plan)["dev-a"].containers.web).toHaveProperty("localAddress6");
      }
      if (process.env.PNC_PRINT_PLAN === "1") {
        process.stdout.write(`networkPlan (fleet, stack ${stack}):\n${JSON.stringify(plan, null, 2)}\n`);
      }
    });
  }
});

describe("single-host example", () => {
  it("yields one host with web and db, NAT out of the configured interface, web:80 on port 8080 (stack dev)", async () => {
    const dir = path.join(EXAMPLES, "single-host");
    const cfg = stackConfig(dir, "dev");
    expect(cfg.undeclared).toEqual([]);
    expect(cfg.missing).toEqual([]);
    const { resources, plan } = await runEntry(
      path.join(dir, "index.ts"),
      cfg.project.name,
      { ...cfg.values, privateKey: TEST_KEY },
      ["privateKey"],
    );
    const host: HostDesc = {
      name: "server",
      address: cfg.values.host as string,
      externalInterface: cfg.values.externalInterface as string,
      containers: [{ name: "web" }, { name: "db" }],
    };
    // The single-host example's stack output is one HostPlan.
    expectSoundHosts(resources, [host], {}, { server: plan as HostPlan });
    const web = (plan as HostPlan).containers.web;
    expect(ofType(resources, "NatRule")[0].inputs.forwardPorts).toEqual([
      { sourcePort: 8080, destination: `${web.localAddress}:80` },
    ]);
    expect(ofType(resources, "Container").every((c) => c.inputs.driver === "nixos")).toBe(true);
  });
});

describe("lab example", () => {
  const labDir = fs.mkdtempSync(path.join(os.tmpdir(), "pnc-fake-lab-"));
  afterAll(() => fs.rmSync(labDir, { recursive: true, force: true }));
  const keyPath = path.join(labDir, "id_ed25519");
  fs.writeFileSync(keyPath, TEST_KEY);
  const host = (name: string, i: number, extra: Record<string, unknown> = {}) => ({
    name,
    address: `198.18.0.${10 + i}`,
    port: 22,
    user: "root",
    privateKeyPath: keyPath,
    hostKey: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPivg5Rm3/blb+VgRILOtXnpd9uE6JCZwMnGTLIYcc4${i}`,
    nixos: false,
    via: null,
    wanAddress: "198.18.0.254",
    ...extra,
  });
  fs.writeFileSync(
    path.join(labDir, "lab.json"),
    JSON.stringify({
      hosts: [
        host("h1", 1),
        host("h2", 2),
        host("h3", 3, { nixos: true }),
        host("hj", 4, { address: "198.18.2.2", via: "h1", wanAddress: null }),
      ],
    }),
  );

  it("deploys to every lab host with a WAN, nixos driver where the host has nixos-container (stack lab)", async () => {
    const cfg = stackConfig(ROOT, "lab");
    expect(cfg.undeclared).toEqual([]);
    expect(cfg.missing).toEqual([]);
    const { resources, plan } = await runEntry(path.join(EXAMPLES, "lab", "index.ts"), cfg.project.name, {
      ...cfg.values,
      labDir,
    });
    const prefix = cfg.values.prefix as string;
    const names = ["web", "db"];
    const hosts: HostDesc[] = ["h1", "h2", "h3"].map((h, i) => ({
      name: `${prefix}${h}`,
      address: `198.18.0.${11 + i}`,
      externalInterface: "eth0",
      containers: names.map((n) => ({ name: `${prefix}${n}` })),
    }));
    expectSoundHosts(resources, hosts, {}, plan as Plan);
    for (const c of ofType(resources, "Container")) {
      expect(c.inputs.driver).toBe(connectionOf(c).host === "198.18.0.13" ? "nixos" : "netns");
      // The lab's key is read as a secret, and the host key from lab.json is pinned.
      expect(c.secretKeys).toContain("connection");
      expect(connectionOf(c).hostKey).toMatch(/^ssh-ed25519 /);
      expect(String(c.inputs.hostAddress)).toMatch(/^10\.233\.(1[6-8][0-9]|19[01])\./);
    }
  });

  it("reaches a jump-only host through its jump host when asked for it", async () => {
    const cfg = stackConfig(ROOT, "lab");
    const { resources } = await runEntry(path.join(EXAMPLES, "lab", "index.ts"), cfg.project.name, {
      ...cfg.values,
      labDir,
      hosts: ["hj"],
      containersPerHost: 1,
    });
    const containers = ofType(resources, "Container");
    expect(containers).toHaveLength(1);
    expect(connectionOf(containers[0])).toMatchObject({ host: "198.18.2.2", proxy: { host: "198.18.0.11" } });
  });

  it("fails with the command that brings the lab up when lab.json is missing", async () => {
    const { labProgram } = await import("../../examples/lab/program");
    expect(() => labProgram({ labDir: path.join(labDir, "nowhere") })).toThrow(/the lab is not up .*lab up/);
  });
});
