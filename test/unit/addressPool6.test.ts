// AddressPool with IPv6 as the engine sees it: check's defaults and refusals, state carried across updates,
// the default ULA derived by the class from project, stack and pool name, and Host/Fleet plans with IPv6.
import { describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { AddressPool, Fleet, Host } from "../../provider";
import { defaultCidr6 } from "../../provider/core/allocator";
import { UNKNOWN } from "../../provider/core/validate";
import { check, diff } from "../../provider/runtime";
import { Props } from "../../provider/runtime/common";
import { DYNAMIC_PREFIX, MOCK_HOST_KEY, RecordedResource, runUnderMocks } from "../harness/mockRun";

const ULA = "fd12:3456:789a::/48";

function checked(news: Props, olds: Props = {}): Props {
  const result = check("AddressPool", olds, news);
  expect(result.failures).toEqual([]);
  return result.inputs;
}

function failuresOf(news: Props, olds: Props = {}): { property: string; reason: string }[] {
  return check("AddressPool", olds, news).failures;
}

/**
 * Like the harness's checkOnly, but answered by this tree's runtime source rather than bin/ (which is
 * built from whatever the tree held at the last build).
 */
async function sourceCheck(type: string, name: string, inputs: Record<string, unknown>) {
  if (!type.startsWith(DYNAMIC_PREFIX)) return { id: "", state: inputs };
  if (type === `${DYNAMIC_PREFIX}HostIdentity`)
    return { id: `${name}-id`, state: { ...inputs, hostKey: MOCK_HOST_KEY } };
  const result = check(type.slice(DYNAMIC_PREFIX.length), {}, inputs);
  if (result.failures.length > 0) {
    throw new Error(
      `${type} ${name}: ${result.failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`,
    );
  }
  return { id: `${name}-id`, state: result.inputs };
}

function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}

function ofType(resources: RecordedResource[], type: string): RecordedResource[] {
  return resources.filter((r) => r.type === DYNAMIC_PREFIX + type);
}

describe("check: AddressPool without IPv6", () => {
  it("keeps exactly the IPv4 inputs and outputs, also when the class sent no IPv6 input", () => {
    const inputs = checked({ members: ["web"] });
    expect(Object.keys(inputs).sort()).toEqual(
      ["allocations", "blockPrefixLength", "capacity", "cidr", "exclude", "members", "static"].sort(),
    );
    expect(inputs.allocations).toEqual({ web: { hostAddress: "10.233.1.1", localAddress: "10.233.1.2" } });
  });

  it("drops the derived default cidr6 when ipv6 is false", () => {
    const inputs = checked({ members: ["web"], ipv6: false, defaultCidr6: ULA });
    expect(inputs.defaultCidr6).toBeUndefined();
    expect(inputs.cidr6).toBeUndefined();
    expect(inputs.capacity6).toBeUndefined();
    expect(Object.keys((inputs.allocations as Record<string, object>).web)).toEqual([
      "hostAddress",
      "localAddress",
    ]);
  });
});

describe("check: AddressPool with IPv6", () => {
  it("uses the derived cidr6 and /64 blocks with ipv6: true, and shows them in the inputs", () => {
    const inputs = checked({ members: ["web", "db"], ipv6: true, defaultCidr6: ULA });
    expect(inputs).toMatchObject({
      ipv6: true,
      cidr6: ULA,
      blockPrefixLength6: 64,
      capacity6: 65534,
      capacity: 254,
    });
    expect(inputs.defaultCidr6).toBeUndefined();
    expect(inputs.allocations).toEqual({
      web: {
        hostAddress: "10.233.1.1",
        localAddress: "10.233.1.2",
        hostAddress6: "fd12:3456:789a:1::1",
        localAddress6: "fd12:3456:789a:1::2",
      },
      db: {
        hostAddress: "10.233.2.1",
        localAddress: "10.233.2.2",
        hostAddress6: "fd12:3456:789a:2::1",
        localAddress6: "fd12:3456:789a:2::2",
      },
    });
  });

  it("turns IPv6 on when cidr6 is given, which wins over the derived one", () => {
    const inputs = checked({
      members: ["a"],
      cidr6: "fd00:1::/64",
      blockPrefixLength6: 120,
      defaultCidr6: ULA,
    });
    expect(inputs).toMatchObject({ ipv6: true, cidr6: "fd00:1::/64", blockPrefixLength6: 120 });
    expect((inputs.allocations as Record<string, Props>).a.hostAddress6).toBe("fd00:1::101");
  });

  it("keeps IPv4 allocations from state when IPv6 is turned on, and keeps IPv6 ones on the next update", () => {
    const first = checked({ members: ["a", "b", "c"] });
    const holes = checked({ members: ["a", "c"] }, first);
    const on = checked({ members: ["a", "c", "d"], ipv6: true, defaultCidr6: ULA }, holes);
    const allocations = on.allocations as Record<string, Props>;
    expect(allocations.a).toMatchObject((holes.allocations as Record<string, Props>).a);
    expect(allocations.c).toMatchObject((holes.allocations as Record<string, Props>).c);
    // d takes the freed IPv4 block 2, and the IPv6 block of the same index.
    expect(allocations.d).toMatchObject({ hostAddress: "10.233.2.1", hostAddress6: "fd12:3456:789a:2::1" });
    const later = checked({ members: ["d", "e", "a", "c"], ipv6: true, defaultCidr6: ULA }, on);
    for (const m of ["a", "c", "d"])
      expect((later.allocations as Record<string, Props>)[m]).toEqual(allocations[m]);
  });

  it("keeps a removed member's IPv6 block out of reach for one update", () => {
    const before = checked({ members: ["a", "b"], ipv6: true, defaultCidr6: ULA });
    const after = checked(
      { members: ["b", "n"], ipv6: true, defaultCidr6: ULA, exclude: ["10.233.1.0/24"] },
      before,
    );
    const n = (after.allocations as Record<string, Props>).n;
    expect(n.hostAddress6).not.toBe((before.allocations as Record<string, Props>).a.hostAddress6);
    expect(n.hostAddress6).toBe("fd12:3456:789a:3::1");
  });

  it("takes static IPv6 pairs and IPv6 exclusions", () => {
    const inputs = checked({
      members: ["a", "b"],
      cidr6: ULA,
      static: { a: { hostAddress6: "2001:db8::1", localAddress6: "2001:db8::2" } },
      exclude: ["fd12:3456:789a:1::/64", "fd12:3456:789a:2::/64"],
    });
    const allocations = inputs.allocations as Record<string, Props>;
    expect(allocations.a).toEqual({
      hostAddress: "10.233.1.1",
      localAddress: "10.233.1.2",
      hostAddress6: "2001:db8::1",
      localAddress6: "2001:db8::2",
    });
    expect(allocations.b.hostAddress6).toBe("fd12:3456:789a:3::1");
  });

  it("reports an update, never a replace, when IPv6 is turned on", () => {
    const olds = checked({ members: ["a"] });
    const news = checked({ members: ["a"], ipv6: true, defaultCidr6: ULA }, olds);
    expect(diff("AddressPool", "pool-1", olds, news)).toMatchObject({ changes: true, replaces: [] });
    expect(diff("AddressPool", "pool-1", olds, checked({ members: ["a"] }, olds))).toMatchObject({
      changes: false,
    });
  });

  it("shows allocations as unknown while ipv6 or cidr6 is unknown, validating what is known", () => {
    expect(checked({ members: ["a"], ipv6: UNKNOWN, defaultCidr6: ULA }).allocations).toBe(UNKNOWN);
    expect(checked({ members: ["a"], cidr6: UNKNOWN }).allocations).toBe(UNKNOWN);
    expect(failuresOf({ members: [UNKNOWN], cidr6: "fd00::1/64" })).toEqual([
      { property: "cidr6", reason: expect.stringContaining('use "fd00::/64"') },
    ]);
  });
});

describe("check: AddressPool IPv6 refusals", () => {
  it.each([
    [{ ipv6: false, cidr6: ULA }, "cidr6", /is given but ipv6 is false: set ipv6 to true, or remove cidr6/],
    [{ ipv6: true }, "cidr6", /cidr6 is missing: ipv6 is true/],
    [{ blockPrefixLength6: 64 }, "blockPrefixLength6", /is given but the pool has no IPv6/],
    [{ ipv6: "yes" }, "ipv6", /ipv6 must be true or false, got "yes"/],
    [{ cidr6: 48 }, "cidr6", /cidr6 must be a string such as "fd12:3456:789a::\/48", got number 48/],
    [{ cidr6: ULA, blockPrefixLength6: "64" }, "blockPrefixLength6", /must be a number from 64 to 127/],
    [{ cidr6: "fd00::/48", blockPrefixLength6: 128 }, "blockPrefixLength6", /number 128 is not allowed/],
    [{ cidr6: "fe80::/10" }, "cidr6", /overlaps link-local/],
    [{ cidr6: "fd00::%eth0/48" }, "cidr6", /zone ids/],
    [{ exclude: ["fd00::1"] }, "exclude[0]", /is an IPv6 address or CIDR but the pool has no IPv6/],
  ])("rejects %j naming %s", (extra, property, reason) => {
    const failures = failuresOf({ members: ["a"], ...extra });
    expect(failures).toHaveLength(1);
    expect(failures[0].property).toBe(property);
    expect(failures[0].reason).toMatch(reason);
  });

  it("rejects a half-given static pair instead of silently allocating that member", () => {
    expect(failuresOf({ members: ["a"], static: { a: { hostAddress: "10.1.1.1" } } })).toEqual([
      { property: "static.a.localAddress", reason: expect.stringContaining("is not a valid IPv4 address") },
    ]);
    expect(failuresOf({ members: ["a"], cidr6: ULA, static: { a: { localAddress6: "fd00::2" } } })).toEqual([
      {
        property: "static.a.hostAddress6",
        reason: expect.stringContaining("give both hostAddress6 and localAddress6"),
      },
    ]);
  });

  it("rejects a full IPv6 pool naming cidr6 and the fix", () => {
    const failures = failuresOf({ members: ["a", "b", "c"], cidr6: "fd00::/125", blockPrefixLength6: 127 });
    expect(failures).toEqual([
      {
        property: "members",
        reason: expect.stringMatching(/IPv6 address pool fd00::\/125 is full.*larger cidr6/),
      },
    ]);
  });
});

describe("the AddressPool class", () => {
  it("derives the default cidr6 from project, stack and pool name, and sends nothing without ipv6", async () => {
    const run = await runUnderMocks(
      () => [
        new AddressPool("p6", { members: ["web"], ipv6: true }),
        new AddressPool("p4", { members: ["web"] }),
        new AddressPool("given", { members: ["web"], cidr6: ULA }),
      ],
      {
        newResource: sourceCheck,
        project: "shop",
        stack: "prod",
        wait: (ps) => pulumi.all(ps.map((p) => p.allocations)),
      },
    );
    const pool = (name: string) =>
      ofType(run.resources, "AddressPool").find((r) => r.name === name) as RecordedResource;
    const [p6, p4, given] = [pool("p6"), pool("p4"), pool("given")];
    const derived = defaultCidr6("shop", "prod", "p6");
    expect(p6.inputs.defaultCidr6).toBe(derived);
    expect(p6.state).toMatchObject({ ipv6: true, cidr6: derived, blockPrefixLength6: 64, capacity6: 65534 });
    expect(Object.keys(p4.inputs).sort()).toEqual(["__provider", "members"]);
    expect(p4.state.cidr6).toBeUndefined();
    expect(given.inputs.defaultCidr6).toBeUndefined();
    const [a6] = await valueOf(pulumi.all(run.result.map((p) => p.allocations)));
    const prefix = derived.replace("::/48", "");
    expect(a6.web).toMatchObject({ hostAddress6: `${prefix}:1::1`, localAddress6: `${prefix}:1::2` });
    expect(await valueOf(run.result[0].cidr6)).toBe(derived);
    expect(await valueOf(run.result[0].capacity6)).toBe(65534);
  });
});

describe("Host and Fleet with an IPv6 pool", () => {
  it("shows each routed container's IPv6 pair in the Host plan, and none without IPv6", async () => {
    const run = await runUnderMocks(
      () => [
        new Host("h6", {
          connection: { host: "192.0.2.1", privateKey: "k" },
          externalInterface: "eth0",
          driver: "netns",
          pool: { ipv6: true, blockPrefixLength6: 120 },
          containers: [{ name: "web" }, { name: "lan", hostBridge: "br0" }],
        }),
        new Host("h4", {
          connection: { host: "192.0.2.2", privateKey: "k" },
          externalInterface: "eth0",
          driver: "netns",
          containers: [{ name: "web" }],
        }),
      ],
      {
        newResource: sourceCheck,
        project: "shop",
        stack: "dev",
        wait: (hs) => pulumi.all(hs.map((h) => h.plan)),
      },
    );
    const [plan6, plan4] = await valueOf(pulumi.all(run.result.map((h) => h.plan)));
    const prefix = defaultCidr6("shop", "dev", "h6-pool").replace("::/48", "");
    expect(plan6.containers.web).toEqual({
      hostInterface: "ve-web",
      containerInterface: "eth0",
      hostAddress: "10.233.1.1",
      localAddress: "10.233.1.2",
      hostAddress6: `${prefix}::101`,
      localAddress6: `${prefix}::102`,
    });
    expect(plan6.containers.lan.hostAddress6).toBeUndefined();
    expect(Object.keys(plan4.containers.web)).toEqual([
      "hostInterface",
      "containerInterface",
      "hostAddress",
      "localAddress",
    ]);
    const pools = ofType(run.resources, "AddressPool");
    expect(pools.find((p) => p.name === "h6-pool")?.inputs).toMatchObject({
      ipv6: true,
      blockPrefixLength6: 120,
    });
  });

  it("passes pool.cidr6 from Fleet defaults to every host, a host's own winning", async () => {
    const run = await runUnderMocks(
      () =>
        new Fleet("f", {
          defaults: { externalInterface: "eth0", driver: "netns", pool: { cidr6: ULA } },
          hosts: [
            { name: "a", address: "192.0.2.1", containers: [{ name: "web" }] },
            { name: "b", address: "192.0.2.2", containers: [{ name: "web" }], pool: { cidr6: "fd99::/48" } },
          ],
        }),
      { newResource: sourceCheck, wait: (f) => f.plan },
    );
    const plan = await valueOf(run.result.plan);
    expect(plan.a.containers.web.localAddress6).toBe("fd12:3456:789a:1::2");
    expect(plan.b.containers.web.localAddress6).toBe("fd99:0:0:1::2");
  });
});
