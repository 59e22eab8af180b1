// Host and Fleet: naming rules and early validation (pure), and the resources they wire under Pulumi mocks
// (each dynamic resource answered by its provider's real `check`, so addresses and rulesets are the real ones).
import { describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import {
  Container,
  Fleet,
  Host,
  NatRule,
  NetworkdUnmanaged,
  NmUnmanaged,
  VethPair,
  fleetConnection,
  natNameFor,
  validateHostName,
} from "../../provider";
import { validateFleet } from "../../provider/resources/fleet";
import { validateHostContainers } from "../../provider/resources/host";
import {
  DYNAMIC_PREFIX,
  MOCK_HOST_KEY,
  RecordedResource,
  checkOnly,
  runUnderMocks,
} from "../harness/mockRun";

const connection = { host: "192.0.2.1", privateKey: "not-a-real-key" };

function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}

function ofType(resources: RecordedResource[], type: string): RecordedResource[] {
  return resources.filter((r) => r.type === DYNAMIC_PREFIX + type);
}

describe("host naming", () => {
  it("keeps a host name of up to 15 characters as the NAT name", () => {
    expect(natNameFor("web-1")).toBe("web-1");
    expect(natNameFor("a23456789012345")).toBe("a23456789012345");
  });

  it("derives a short, valid, stable and distinct NAT name from a long host name", () => {
    const a = natNameFor("production-frankfurt-web-01");
    const b = natNameFor("production-frankfurt-web-02");
    for (const n of [a, b]) expect(n).toMatch(/^[a-z][a-z0-9-]{0,14}$/);
    expect(a).toBe(natNameFor("production-frankfurt-web-01"));
    expect(a).not.toBe(b);
  });

  it("rejects host names that cannot name resources, tables and drop-ins, saying what is allowed", () => {
    for (const bad of ["Web", "1web", "web_1", "", "a".repeat(42), "web;reboot"]) {
      expect(() => validateHostName(bad)).toThrow(
        /use 1-41 characters a-z, 0-9 and "-", starting with a letter/,
      );
    }
    expect(() => validateHostName("a".repeat(41))).not.toThrow();
  });

  it("rejects invalid and repeated container names and veth interfaces, listing every offender", () => {
    expect(() =>
      validateHostContainers("h", [
        { name: "web" },
        { name: "web" },
        { name: "Bad_Name" },
        { name: "db", veths: [{ hostInterface: "ve-db", containerInterface: "eth1" }] },
      ]),
    ).toThrow(
      /Host "h": container name "web" is used twice.*"Bad_Name" is invalid.*veth host interface "ve-db" is used twice/,
    );
  });
});

describe("fleet description", () => {
  it("merges each host's connection over the defaults and leaves unset fields out", () => {
    expect(
      fleetConnection(
        { name: "a", address: "192.0.2.5", port: 2222, hostKey: "ssh-ed25519 AAAA" },
        { user: "deploy", port: 22, privateKey: "k", agentSocketPath: undefined },
      ),
    ).toEqual({
      host: "192.0.2.5",
      port: 2222,
      user: "deploy",
      privateKey: "k",
      hostKey: "ssh-ed25519 AAAA",
    });
  });

  it("rejects repeated and invalid host names and hosts without an external interface, listing all", () => {
    expect(() =>
      validateFleet({
        hosts: [
          { name: "a", address: "x", externalInterface: "eth0" },
          { name: "a", address: "y", externalInterface: "eth0" },
          { name: "B", address: "z", externalInterface: "eth0" },
          { name: "c", address: "w" },
        ],
      }),
    ).toThrow(/host name "a" is used twice.*"B" is invalid.*host "c" has no externalInterface/);
  });
});

describe("Host under mocks", () => {
  it("wires pool, containers, NAT and drop-in with host-prefixed names and addresses from the pool", async () => {
    const run = await runUnderMocks(
      () =>
        new Host("edge", {
          connection,
          externalInterface: "wan0",
          driver: "netns",
          containers: [
            {
              name: "web",
              veths: [
                {
                  hostInterface: "vx-web",
                  containerInterface: "eth1",
                  hostAddress: "192.168.9.1",
                  localAddress: "192.168.9.2",
                },
              ],
            },
            { name: "db", addresses: { hostAddress: "10.233.77.1", localAddress: "10.233.77.2" } },
          ],
          nat: { backend: "iptables", forwardPorts: [{ sourcePort: 8080, container: "web", port: 80 }] },
        }),
      { wait: (h) => h.plan },
    );
    const types = run.resources.map((r) => r.type.replace(DYNAMIC_PREFIX, "")).sort();
    expect(types).toEqual(
      [
        "AddressPool",
        "HostIdentity",
        "Container",
        "Container",
        "NatRule",
        "NmUnmanaged",
        "VethPair",
        "nixos-containers:index:Host",
      ].sort(),
    );
    // One known key for the host: every resource on it is pinned to what its HostIdentity recorded.
    for (const r of run.resources.filter((x) => /Container|NatRule|NmUnmanaged|VethPair/.test(x.type))) {
      expect((r.inputs.connection as Record<string, unknown>).hostKey, r.name).toBe(MOCK_HOST_KEY);
    }
    expect(ofType(run.resources, "Container").map((r) => [r.name, r.inputs.name])).toEqual(
      expect.arrayContaining([
        ["edge-web", "web"],
        ["edge-db", "db"],
      ]),
    );
    const plan = await valueOf(run.result.plan);
    expect(plan.containers.db).toEqual({
      hostInterface: "ve-db",
      containerInterface: "eth0",
      hostAddress: "10.233.77.1",
      localAddress: "10.233.77.2",
    });
    expect(plan.containers.web.hostAddress).toBe("10.233.1.1");
    const nat = ofType(run.resources, "NatRule")[0];
    expect(nat.inputs).toMatchObject({
      name: "edge",
      externalInterface: "wan0",
      backend: "iptables",
      forwardPorts: [{ sourcePort: 8080, destination: "10.233.1.2:80" }],
    });
    expect(plan.nat?.ruleset).toBe(nat.state.ruleset);
    expect(plan.nat?.ruleset).toContain("10.233.1.2:80");
    expect(ofType(run.resources, "VethPair")[0].inputs).toMatchObject({
      container: "web",
      hostInterface: "vx-web",
    });
    expect(plan.networkManagerDropIn).toBe("/etc/NetworkManager/conf.d/pulumi-nixos-containers-edge.conf");
  });

  it("leaves NAT and the drop-in out when disabled, and the plan says so", async () => {
    const run = await runUnderMocks(
      () =>
        new Host("quiet", {
          connection,
          externalInterface: "eth0",
          containers: [{ name: "web" }],
          nat: { enabled: false },
          networkManager: false,
        }),
      { wait: (h) => h.plan },
    );
    expect(ofType(run.resources, "NatRule")).toHaveLength(0);
    expect(ofType(run.resources, "NmUnmanaged")).toHaveLength(0);
    const plan = await valueOf(run.result.plan);
    expect(plan.nat).toBeUndefined();
    expect(plan.networkManagerDropIn).toBeUndefined();
  });

  it("rejects a forwarded port naming a container the host does not have", () => {
    expect(
      () =>
        new Host("bad", {
          connection,
          externalInterface: "eth0",
          containers: [{ name: "web" }],
          nat: { forwardPorts: [{ sourcePort: 80, container: "wbe" }] },
        }),
    ).toThrow(/names container "wbe", which is not one of this host.s containers \(web\)/);
  });
});

describe("Host persist, forward path and bridged containers under mocks", () => {
  it("passes persist to every resource, shows the units at preview, and NAT options to the NatRule", async () => {
    const run = await runUnderMocks(
      () =>
        new Host("ph", {
          connection,
          externalInterface: "eth0",
          driver: "netns",
          containers: [
            {
              name: "web",
              veths: [
                {
                  hostInterface: "vx-web",
                  containerInterface: "eth1",
                  hostAddress: "10.250.0.1",
                  localAddress: "10.250.0.2",
                },
              ],
            },
          ],
          nat: {
            allowForward: true,
            loopbackIPs: ["127.0.0.1"],
            forwardPorts: [{ sourcePort: 8080, container: "web", port: 80 }],
          },
          persist: true,
        }),
      { wait: (h) => h.plan },
    );
    for (const type of ["Container", "VethPair", "NatRule", "NmUnmanaged"]) {
      for (const r of ofType(run.resources, type)) expect(r.inputs.persist).toBe(true);
    }
    const [container] = ofType(run.resources, "Container");
    expect((container.state.persistence as Record<string, string>).unit).toBe("pnc-container-web.service");
    const [veth] = ofType(run.resources, "VethPair");
    expect((veth.state.persistence as Record<string, string>).unitText).toContain(
      "After=local-fs.target pnc-container-web.service",
    );
    const [nat] = ofType(run.resources, "NatRule");
    expect(nat.state).toMatchObject({ allowForward: true, loopbackIPs: ["127.0.0.1"] });
    expect(nat.state.ruleset).toContain("ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.233.1.2:80");
    expect(nat.state.ruleset).toContain("-A pnc-nat-ph-fwd -i ve-+ -o eth0 -j ACCEPT");
    // NmUnmanaged persists by its file: no unit.
    expect(ofType(run.resources, "NmUnmanaged")[0].state.persistence).toBeUndefined();
  });

  it("puts a bridged container on its bridge with its own addresses, outside the pool, and NetworkManager leaves vb-* alone", async () => {
    const run = await runUnderMocks(
      () =>
        new Host("bh", {
          connection,
          externalInterface: "eth0",
          driver: "netns",
          containers: [
            { name: "web" },
            {
              name: "lan",
              hostBridge: "br0",
              addresses: { localAddress: "192.168.50.5/24", hostAddress: "192.168.50.1" },
            },
          ],
        }),
      { wait: (h) => h.plan },
    );
    const [pool] = ofType(run.resources, "AddressPool");
    expect(pool.inputs.members).toEqual(["web"]);
    const lan = ofType(run.resources, "Container").find((c) => c.inputs.name === "lan");
    expect(lan?.state).toMatchObject({
      hostBridge: "br0",
      hostInterface: "vb-lan",
      localAddress: "192.168.50.5/24",
      hostAddress: "192.168.50.1",
    });
    expect(ofType(run.resources, "NmUnmanaged")[0].state.devices).toEqual([
      "interface-name:ve-*",
      "interface-name:vb-*",
    ]);
  });

  it("gives each routed container the pool's IPv6 pair when the pool has IPv6, and none otherwise", async () => {
    const build = (ipv6: boolean) =>
      runUnderMocks(
        () =>
          new Host("v6h", {
            connection,
            externalInterface: "eth0",
            driver: "netns",
            containers: [{ name: "web" }],
            pool: ipv6 ? { cidr6: "fd00:233:77::/48" } : {},
          }),
        { wait: (h) => h.plan },
      );
    const withSix = await build(true);
    const [web] = ofType(withSix.resources, "Container");
    expect(web.inputs).toMatchObject({ hostAddress6: "fd00:233:77:1::1", localAddress6: "fd00:233:77:1::2" });
    expect((await valueOf(withSix.result.plan)).containers.web).toMatchObject({
      hostAddress6: "fd00:233:77:1::1",
      localAddress6: "fd00:233:77:1::2",
    });
    const [plain] = ofType((await build(false)).resources, "Container");
    expect(plain.inputs.hostAddress6).toBeUndefined();
    expect(plain.state.persistence).toBeUndefined();
  });

  it("rejects a forwarded port naming a bridged container (its address is not the pool's)", () => {
    expect(
      () =>
        new Host("bh2", {
          connection,
          externalInterface: "eth0",
          containers: [{ name: "lan", hostBridge: "br0" }],
          nat: { forwardPorts: [{ sourcePort: 80, container: "lan" }] },
        }),
    ).toThrow(/names container "lan", which is bridged .* give "destination" instead/);
  });
});

describe("Host's networkd switch under mocks", () => {
  it("adds no NetworkdUnmanaged unless asked, and the plan has no networkd file", async () => {
    const run = await runUnderMocks(
      () => new Host("plainhost", { connection, externalInterface: "eth0", containers: [{ name: "web" }] }),
      { wait: (h) => h.plan },
    );
    expect(ofType(run.resources, "NetworkdUnmanaged")).toHaveLength(0);
    expect((await valueOf(run.result.plan)).networkdFile).toBeUndefined();
  });

  it("with networkd: true writes a file named after the host, pinned to its key, shown in the plan", async () => {
    const run = await runUnderMocks(
      () =>
        new Host("nd-host", {
          connection,
          externalInterface: "eth0",
          driver: "netns",
          containers: [{ name: "web" }],
          networkd: true,
        }),
      { wait: (h) => h.plan },
    );
    const [networkd] = ofType(run.resources, "NetworkdUnmanaged");
    expect(networkd.name).toBe("nd-host-networkd");
    expect(networkd.inputs).toMatchObject({ name: "nd-host" });
    expect(networkd.state).toMatchObject({ interfaces: ["ve-*", "vb-*"] });
    expect((networkd.inputs.connection as Record<string, unknown>).hostKey).toBe(MOCK_HOST_KEY);
    expect(networkd.secretKeys).toContain("connection");
    expect(networkd.state.content).toContain("[Match]\nName=ve-* vb-*\n\n[Link]\nUnmanaged=yes\n");
    const plan = await valueOf(run.result.plan);
    expect(plan.networkdFile).toBe("/etc/systemd/network/10-pulumi-nixos-containers-nd-host.network");
    // The NetworkManager drop-in stays (its own switch).
    expect(ofType(run.resources, "NmUnmanaged")).toHaveLength(1);
  });

  it("is passed on by Fleet from its defaults, and a host can turn it off", async () => {
    const run = await runUnderMocks(
      () =>
        new Fleet("f", {
          defaults: { externalInterface: "eth0", driver: "netns", networkd: true },
          hosts: [
            { name: "a", address: "192.0.2.1" },
            { name: "b", address: "192.0.2.2", networkd: false },
          ],
        }),
      { wait: (f) => f.plan },
    );
    expect(ofType(run.resources, "NetworkdUnmanaged").map((r) => r.inputs.name)).toEqual(["a"]);
    const plan = await valueOf(run.result.plan);
    expect(plan.a.networkdFile).toBe("/etc/systemd/network/10-pulumi-nixos-containers-a.network");
    expect(plan.b.networkdFile).toBeUndefined();
  });

  it("registers a NetworkdUnmanaged made by hand with its connection as a secret", async () => {
    const run = await runUnderMocks(() => new NetworkdUnmanaged("d", { connection, interfaces: ["ve-*"] }), {
      wait: (d) => d.content,
    });
    const [made] = ofType(run.resources, "NetworkdUnmanaged");
    expect(made.secretKeys).toContain("connection");
    expect(made.inputs).toMatchObject({ name: "d", interfaces: ["ve-*"] });
  });
});

describe("Fleet under mocks", () => {
  it("builds one Host per host with the defaults set once, and a plan keyed by host name", async () => {
    const run = await runUnderMocks(
      () =>
        new Fleet("f", {
          defaults: {
            user: "deploy",
            externalInterface: "eth0",
            driver: "netns",
            nat: { backend: "iptables" },
          },
          hosts: [
            { name: "a", address: "192.0.2.1", containers: [{ name: "web" }, { name: "db" }] },
            {
              name: "b",
              address: "192.0.2.2",
              externalInterface: "eno1",
              nat: { backend: "nftables" },
              containers: [{ name: "web" }],
            },
          ],
        }),
      { wait: (f) => f.plan },
    );
    const plan = await valueOf(run.result.plan);
    expect(Object.keys(plan)).toEqual(["a", "b"]);
    expect(Object.keys(plan.a.containers)).toEqual(["web", "db"]);
    expect(plan.b.externalInterface).toBe("eno1");
    const nats = ofType(run.resources, "NatRule");
    expect(
      nats
        .map((n) => [n.inputs.name, n.inputs.backend, (n.inputs.connection as { user: string }).user])
        .sort(),
    ).toEqual([
      ["a", "iptables", "deploy"],
      ["b", "nftables", "deploy"],
    ]);
    expect(
      ofType(run.resources, "Container")
        .map((c) => c.name)
        .sort(),
    ).toEqual(["a-db", "a-web", "b-web"]);
  });
});

describe("deletedWith", () => {
  it("is handed on by Fleet and Host to every resource they make", async () => {
    const seen: [string, pulumi.Resource | undefined][] = [];
    let machine: pulumi.Resource | undefined;
    await runUnderMocks(
      () => {
        machine = new pulumi.ComponentResource("test:index:Machine", "vm", {});
        return new Fleet(
          "f",
          {
            defaults: { externalInterface: "eth0", driver: "netns" },
            hosts: [{ name: "a", address: "192.0.2.1", containers: [{ name: "web" }] }],
          },
          {
            deletedWith: machine,
            // Legacy transformations run in the SDK for a component's whole subtree: they see each child's options.
            transformations: [
              (args) => {
                seen.push([args.type, args.opts.deletedWith]);
                return undefined;
              },
            ],
          },
        );
      },
      { wait: (f) => f.plan },
    );
    const dynamic = seen.filter(([type]) => type.startsWith(DYNAMIC_PREFIX));
    expect(dynamic.map(([type]) => type.replace(DYNAMIC_PREFIX, "")).sort()).toEqual(
      ["AddressPool", "HostIdentity", "Container", "NatRule", "NmUnmanaged"].sort(),
    );
    for (const [type, deletedWith] of dynamic) expect(deletedWith, type).toBe(machine);
  });
});

describe("credentials in inputs", () => {
  it("registers every host resource's connection as a secret, even when it is given as plain strings", async () => {
    const plain = { host: "192.0.2.1", user: "root", password: "hunter2-plain", privateKey: "plain-key" };
    const run = await runUnderMocks(
      () => [
        new Container("c", { connection: plain, driver: "netns" }),
        new NatRule("n", { connection: plain, externalInterface: "eth0", internalIPs: ["10.233.0.0/16"] }),
        new NmUnmanaged("m", { connection: plain }),
        new VethPair("v", {
          connection: plain,
          container: "c",
          hostInterface: "vx-c",
          containerInterface: "eth1",
          hostAddress: "192.168.9.1",
          localAddress: "192.168.9.2",
        }),
        new Host("h", {
          connection: plain,
          externalInterface: "eth0",
          driver: "netns",
          containers: [{ name: "web" }],
        }),
      ],
      { wait: (made) => (made[4] as Host).plan },
    );
    const hostResources = run.resources.filter(
      (r) => r.type.startsWith(DYNAMIC_PREFIX) && !r.type.endsWith("AddressPool"),
    );
    expect(hostResources.length).toBeGreaterThanOrEqual(7);
    for (const r of hostResources) {
      expect(r.secretKeys, `${r.type} ${r.name}`).toContain("connection");
      expect(r.inputs.connection).toMatchObject({ password: "hunter2-plain" });
    }
  });
});

describe("pinnedConnection", () => {
  it("pins the host and every jump host of a chain to the keys its HostIdentity recorded", async () => {
    const [k1, k2] = [
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKv/4xD2y8t5q/xOn3es4Vi/I2vdKIS/IWHcGoOt7wuK",
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII5vaO4B1hCyAzuzlhW/6bq+wchRgQE+GSMYMOy7p2/m",
    ];
    const run = await runUnderMocks(
      () =>
        new Host("edge", {
          connection: { host: "192.0.2.1", proxy: { host: "192.0.2.2", proxy: { host: "192.0.2.3" } } },
          externalInterface: "eth0",
          driver: "netns",
          containers: [{ name: "web" }],
        }),
      {
        wait: (h) => h.plan,
        newResource: async (type, name, inputs) =>
          type.endsWith("HostIdentity")
            ? { id: `${name}-id`, state: { ...inputs, hostKey: MOCK_HOST_KEY, proxyHostKeys: [k1, k2] } }
            : checkOnly(type, name, inputs),
      },
    );
    const container = run.resources.find((r) => r.type.endsWith(":Container"));
    expect(container?.inputs.connection).toMatchObject({
      host: "192.0.2.1",
      hostKey: MOCK_HOST_KEY,
      proxy: { host: "192.0.2.2", hostKey: k1, proxy: { host: "192.0.2.3", hostKey: k2 } },
    });
  });
});
