// The address allocator: nixos-container layout, stability across membership changes, and limits.
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  Allocation,
  AllocationError,
  allocate,
  checkPoolSpec,
  findCollisions,
  PoolSpec,
  poolCapacity,
  poolCapacity6,
  defaultCidr6,
  specHasUnknowns,
} from "../../provider/core/allocator";
import { UNKNOWN } from "../../provider/core/validate";
import { parseCidr, tryParseIPv4 } from "../../provider/core/ipv4";
import { formatIPv6, parseCidr6, tryParseIPv6 } from "../../provider/core/ipv6";

function spec(members: readonly string[], overrides: Partial<PoolSpec> = {}): PoolSpec {
  return { cidr: "10.233.0.0/16", blockPrefixLength: 24, members, static: {}, exclude: [], ...overrides };
}

function names(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `c${i}`);
}

function addresses(result: Record<string, Allocation>): string[] {
  return Object.values(result).flatMap((a) => [a.hostAddress, a.localAddress]);
}

function errorOf(f: () => unknown): AllocationError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(AllocationError);
    return e as AllocationError;
  }
  throw new Error("expected an AllocationError");
}

const memberName = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
const memberList = fc.uniqueArray(memberName, { maxLength: 40 });
const blockPrefix = fc.integer({ min: 24, max: 31 });

describe("nixos-container layout", () => {
  it("gives the first member 10.233.1.1 and 10.233.1.2, like nixos-container", () => {
    expect(allocate(spec(["web", "db"]), {})).toEqual({
      web: { hostAddress: "10.233.1.1", localAddress: "10.233.1.2" },
      db: { hostAddress: "10.233.2.1", localAddress: "10.233.2.2" },
    });
  });

  it("has room for 254 containers in 10.233.0.0/16, as nixos-container does", () => {
    expect(poolCapacity("10.233.0.0/16", 24)).toBe(254);
    const result = allocate(spec(names(254)), {});
    expect(result.c253).toEqual({ hostAddress: "10.233.254.1", localAddress: "10.233.254.2" });
  });

  it("uses base+1/base+2 for /25../30 blocks and base/base+1 for /31", () => {
    expect(allocate(spec(["a"], { blockPrefixLength: 30 }), {}).a).toEqual({
      hostAddress: "10.233.0.5",
      localAddress: "10.233.0.6",
    });
    expect(allocate(spec(["a"], { blockPrefixLength: 31 }), {}).a).toEqual({
      hostAddress: "10.233.0.2",
      localAddress: "10.233.0.3",
    });
  });

  it("computes capacity as all blocks but the first and last", () => {
    expect(poolCapacity("10.233.0.0/16", 31)).toBe(32766);
    expect(poolCapacity("10.233.0.0/24", 26)).toBe(2);
    expect(poolCapacity("10.233.0.0/24", 24)).toBe(0);
  });
});

describe("static and exclude", () => {
  it("gives static members exactly their addresses, also outside the pool", () => {
    const result = allocate(
      spec(["web", "db"], { static: { db: { hostAddress: "192.168.7.1", localAddress: "192.168.7.2" } } }),
      {},
    );
    expect(result.db).toEqual({ hostAddress: "192.168.7.1", localAddress: "192.168.7.2" });
    expect(result.web.hostAddress).toBe("10.233.1.1");
  });

  it("reserves every block a static address touches", () => {
    const result = allocate(
      spec(["a", "b"], { static: { a: { hostAddress: "10.233.1.200", localAddress: "10.233.2.7" } } }),
      {},
    );
    expect(result.b.hostAddress).toBe("10.233.3.1");
  });

  it("skips every block an excluded address or CIDR touches", () => {
    const result = allocate(
      spec(["a", "b", "c"], { exclude: ["10.233.1.9", "10.233.2.0/23", "10.0.0.0/15"] }),
      {},
    );
    expect(result.a.hostAddress).toBe("10.233.4.1");
    expect(result.b.hostAddress).toBe("10.233.5.1");
    expect(result.c.hostAddress).toBe("10.233.6.1");
  });

  it("moves a kept member whose block became excluded", () => {
    const before = allocate(spec(["a", "b"]), {});
    const after = allocate(spec(["a", "b"], { exclude: ["10.233.1.0/24"] }), before);
    expect(after.b).toEqual(before.b);
    expect(after.a.hostAddress).toBe("10.233.3.1");
  });

  it("rejects a static key that is not a member, naming the key", () => {
    const error = errorOf(() =>
      allocate(spec(["web"], { static: { wbe: { hostAddress: "10.1.1.1", localAddress: "10.1.1.2" } } }), {}),
    );
    expect(error.failures).toEqual([{ property: "static.wbe", message: expect.stringContaining('"wbe"') }]);
  });

  it("rejects invalid static addresses and duplicates, listing every offender", () => {
    const failures = checkPoolSpec(
      spec(["a", "b"], {
        static: {
          a: { hostAddress: "10.1.1", localAddress: "10.1.1.2" },
          b: { hostAddress: "10.1.1.2", localAddress: "010.1.1.3" },
        },
      }),
    );
    expect(failures.map((f) => f.property)).toEqual([
      "static.a.hostAddress",
      "static.b.hostAddress",
      "static.b.localAddress",
    ]);
    expect(failures[1].message).toMatch(/already used by static\.a\.localAddress/);
  });

  it("rejects bad exclude entries, listing every offender", () => {
    const failures = checkPoolSpec(spec(["a"], { exclude: ["10.233.1.5/24", "nope", "10.233.9.9"] }));
    expect(failures.map((f) => f.property)).toEqual(["exclude[0]", "exclude[1]"]);
    expect(failures[0].message).toMatch(/use "10\.233\.1\.0\/24"/);
  });
});

describe("spec validation", () => {
  it("rejects duplicate and invalid member names, listing every offender", () => {
    const failures = checkPoolSpec(spec(["web", "Web", "web", "a_b", "averyverylongname"]));
    expect(failures.map((f) => f.property)).toEqual(["members[1]", "members[2]", "members[3]", "members[4]"]);
    expect(failures[1].message).toMatch(/listed twice \(also members\[0\]\)/);
    expect(failures[3].message).toMatch(/ve-<name>/);
  });

  it("rejects a misaligned pool, a block size out of range and blocks larger than the pool", () => {
    expect(checkPoolSpec(spec([], { cidr: "10.233.1.0/16" }))[0].message).toMatch(/use "10\.233\.0\.0\/16"/);
    expect(checkPoolSpec(spec([], { blockPrefixLength: 23 }))[0].property).toBe("blockPrefixLength");
    expect(checkPoolSpec(spec([], { blockPrefixLength: 24.5 }))[0].property).toBe("blockPrefixLength");
    expect(checkPoolSpec(spec([], { cidr: "10.233.0.0/26", blockPrefixLength: 25 }))[0].message).toMatch(
      /larger than the pool/,
    );
    expect(() => poolCapacity("10.233.0.0/16", 32)).toThrow(/blockPrefixLength number 32 is not allowed/);
  });

  it("rejects a full pool with cidr, block size, capacity, demand, the members left out and the fix", () => {
    const error = errorOf(() => allocate(spec(["a", "b", "c", "d"], { cidr: "10.233.0.0/22" }), {}));
    expect(error.failures[0].property).toBe("members");
    const message = error.message;
    expect(message).toContain("10.233.0.0/22");
    expect(message).toContain("blockPrefixLength 24");
    expect(message).toContain("2 blocks to hand out");
    expect(message).toContain("4 members need a block");
    expect(message).toContain("2 could not be placed: c, d");
    expect(message).toMatch(/larger cidr \(e\.g\. a \/21\)/);
    expect(message).toMatch(/larger blockPrefixLength/);
  });

  it("rejects a full pool and counts reserved blocks", () => {
    const error = errorOf(() =>
      allocate(spec(["a", "b"], { cidr: "10.233.0.0/22", exclude: ["10.233.1.1"] }), {}),
    );
    expect(error.message).toContain("1 of them reserved");
    expect(error.message).toContain("could not be placed: b");
  });
});

describe("preview with unknown inputs", () => {
  it("accepts unknown cidr, members, static addresses and exclusions in check", () => {
    const s = spec(["web", UNKNOWN], {
      cidr: UNKNOWN,
      static: { web: { hostAddress: UNKNOWN, localAddress: "10.1.1.2" } },
      exclude: [UNKNOWN],
    });
    expect(checkPoolSpec(s)).toEqual([]);
    expect(specHasUnknowns(s)).toBe(true);
    expect(specHasUnknowns(spec(["web"]))).toBe(false);
  });

  it("refuses to allocate for unknown members instead of inventing an address", () => {
    expect(() => allocate(spec(["web", UNKNOWN]), {})).toThrow(/not known yet/);
    expect(() => poolCapacity(UNKNOWN, 24)).toThrow(/not known yet/);
    expect(() => poolCapacity("10.233.0.0/16", UNKNOWN as unknown as number)).toThrow(/not known yet/);
  });
});

describe("stability", () => {
  it("keeps addresses when a member is removed", () => {
    const before = allocate(spec(["a", "b", "c"]), {});
    const after = allocate(spec(["a", "c"]), before);
    expect(after).toEqual({ a: before.a, c: before.c });
  });

  it("fills the lowest free block when a member is added", () => {
    const before = allocate(spec(["a", "b", "c"]), {});
    const after = allocate(spec(["a", "c", "d"]), allocate(spec(["a", "c"]), before));
    expect(after.d).toEqual(before.b);
  });

  it("keeps addresses after the block size shrinks when they still fit the layout", () => {
    const before = allocate(spec(["a", "b"]), {});
    expect(allocate(spec(["a", "b", "c"], { blockPrefixLength: 25 }), before)).toMatchObject(before);
  });

  it("breaks a clash in previous state by name, the same way every time", () => {
    const same = { hostAddress: "10.233.5.1", localAddress: "10.233.5.2" };
    const result = allocate(spec(["zed", "amy"]), { zed: same, amy: same });
    expect(result.amy).toEqual(same);
    expect(result.zed.hostAddress).toBe("10.233.1.1");
  });

  it("reallocates previous entries that do not fit the layout or the pool", () => {
    const result = allocate(spec(["a", "b", "c", "d"]), {
      a: { hostAddress: "10.233.7.2", localAddress: "10.233.7.1" },
      b: { hostAddress: "10.234.7.1", localAddress: "10.234.7.2" },
      c: { hostAddress: "10.233.0.1", localAddress: "10.233.0.2" },
      d: { hostAddress: "garbage", localAddress: "10.233.9.2" },
    });
    expect(Object.values(result).map((a) => a.hostAddress)).toEqual([
      "10.233.1.1",
      "10.233.2.1",
      "10.233.3.1",
      "10.233.4.1",
    ]);
  });

  it("lets a static member take over a block from a kept member, which moves to the lowest free block", () => {
    const before = allocate(spec(["a", "b", "c"]), {});
    const after = allocate(spec(["a", "b", "c"], { static: { b: before.a } }), before);
    expect(after.b).toEqual(before.a);
    expect(after.a).toEqual(before.b);
    expect(after.c).toEqual(before.c);
  });
});

describe("properties", () => {
  it("never gives two members the same block, and stays inside the pool", () => {
    fc.assert(
      fc.property(memberList, blockPrefix, (members, prefix) => {
        const result = allocate(spec(members, { blockPrefixLength: prefix }), {});
        const all = addresses(result);
        expect(new Set(all).size).toBe(all.length);
        const pool = parseCidr("10.233.0.0/16");
        for (const address of all) {
          const n = tryParseIPv4(address) as number;
          expect(n > pool.base && n < pool.last).toBe(true);
        }
        expect(Object.keys(result)).toEqual(members);
      }),
    );
  });

  it("gives the same answer for the same input", () => {
    fc.assert(
      fc.property(memberList, memberList, blockPrefix, (old, members, prefix) => {
        const s = spec(members, { blockPrefixLength: prefix });
        const previous = allocate(spec(old, { blockPrefixLength: prefix }), {});
        expect(allocate(s, previous)).toEqual(allocate(s, previous));
      }),
    );
  });

  it("moves no other member when one is added or removed", () => {
    fc.assert(
      fc.property(memberList, memberName, blockPrefix, fc.nat(), (members, extra, prefix, pick) => {
        const before = allocate(spec(members, { blockPrefixLength: prefix }), {});
        const grown = [...members.filter((m) => m !== extra), extra];
        const added = allocate(spec(grown, { blockPrefixLength: prefix }), before);
        for (const m of members) {
          expect(added[m]).toEqual(before[m]);
        }
        if (members.length > 0) {
          const gone = members[pick % members.length];
          const removed = allocate(
            spec(
              members.filter((m) => m !== gone),
              { blockPrefixLength: prefix },
            ),
            before,
          );
          for (const m of members.filter((x) => x !== gone)) {
            expect(removed[m]).toEqual(before[m]);
          }
        }
      }),
    );
  });

  it("keeps static members exact and everyone else inside the pool, apart from the statics", () => {
    fc.assert(
      fc.property(memberList, fc.integer({ min: 1, max: 254 }), fc.nat(), (members, block, pick) => {
        fc.pre(members.length > 0);
        const fixedName = members[pick % members.length];
        const fixed = { hostAddress: `10.233.${block}.9`, localAddress: `10.233.${block}.10` };
        const result = allocate(spec(members, { static: { [fixedName]: fixed } }), {});
        expect(result[fixedName]).toEqual(fixed);
        for (const [name, a] of Object.entries(result)) {
          if (name !== fixedName) {
            expect(a.hostAddress.startsWith(`10.233.${block}.`)).toBe(false);
          }
        }
      }),
    );
  });
});

describe("scale", () => {
  it("allocates 10,000 members with /31 blocks, all distinct", () => {
    const result = allocate(spec(names(10_000), { blockPrefixLength: 31 }), {});
    expect(Object.keys(result)).toHaveLength(10_000);
    expect(new Set(addresses(result)).size).toBe(20_000);
  });

  it("allocates 16,000 members with /31 blocks and keeps them when one is removed", () => {
    const members = names(16_000);
    const before = allocate(spec(members, { blockPrefixLength: 31 }), {});
    expect(new Set(addresses(before)).size).toBe(32_000);
    const after = allocate(spec([...members.slice(1), "new"], { blockPrefixLength: 31 }), before);
    expect(Object.keys(after)).toHaveLength(16_000);
    expect(after.new).toEqual(before.c0);
    expect(after.c15999).toEqual(before.c15999);
  });
});

describe("collisions between pools", () => {
  it("finds addresses held in both maps", () => {
    const left = allocate(spec(["a", "b"]), {});
    const right = allocate(spec(["x", "y"], { cidr: "10.233.0.0/17" }), {});
    expect(findCollisions(left, right)).toEqual([
      { address: "10.233.1.1", left: "a", right: "x" },
      { address: "10.233.1.2", left: "a", right: "x" },
      { address: "10.233.2.1", left: "b", right: "y" },
      { address: "10.233.2.2", left: "b", right: "y" },
    ]);
    expect(findCollisions(left, allocate(spec(["x"], { cidr: "10.234.0.0/16" }), {}))).toEqual([]);
  });
});

const ULA = "fd12:3456:789a::/48";

function spec6(members: readonly string[], overrides: Partial<PoolSpec> = {}): PoolSpec {
  return spec(members, { cidr6: ULA, ...overrides });
}

function addresses6(result: Record<string, Allocation>): string[] {
  return Object.values(result).flatMap((a) => [a.hostAddress6 as string, a.localAddress6 as string]);
}

/** The block index of a member's IPv6 host address in a /64 layout of ULA. */
function block6(a: Allocation): bigint {
  return ((tryParseIPv6(a.hostAddress6 as string) as bigint) >> 64n) & 0xffffn;
}

const blockPrefix6 = fc.integer({ min: 64, max: 127 });

describe("IPv6 layout", () => {
  it("gives block N host ::1 and container ::2, in step with the IPv4 block", () => {
    expect(allocate(spec6(["web", "db"]), {})).toEqual({
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

  it("uses base+1/base+2 for denser blocks and base/base+1 for /127 (RFC 6164)", () => {
    expect(allocate(spec6(["a"], { blockPrefixLength6: 126 }), {}).a).toMatchObject({
      hostAddress6: "fd12:3456:789a::5",
      localAddress6: "fd12:3456:789a::6",
    });
    expect(allocate(spec6(["a"], { blockPrefixLength6: 127 }), {}).a).toMatchObject({
      hostAddress6: "fd12:3456:789a::2",
      localAddress6: "fd12:3456:789a::3",
    });
  });

  it("computes capacity as all blocks but the first and last, capped at Number.MAX_SAFE_INTEGER", () => {
    expect(poolCapacity6(ULA)).toBe(65534);
    expect(poolCapacity6("fd00::/120", 126)).toBe(62);
    expect(poolCapacity6("fd00::/64", 64)).toBe(0);
    expect(poolCapacity6(ULA, 127)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("adds no IPv6 keys without cidr6", () => {
    const result = allocate(spec(["web"]), {});
    expect(Object.keys(result.web)).toEqual(["hostAddress", "localAddress"]);
  });

  it("derives a deterministic RFC 4193 /48 from project, stack and pool name", () => {
    const a = defaultCidr6("proj", "dev", "h1-pool");
    expect(a).toMatch(/^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/48$/);
    expect(defaultCidr6("proj", "dev", "h1-pool")).toBe(a);
    expect(defaultCidr6("proj", "prod", "h1-pool")).not.toBe(a);
    expect(defaultCidr6("proj", "dev", "h2-pool")).not.toBe(a);
    // The Global ID is the first 40 bits of SHA-256("proj/dev/h1-pool").
    expect(defaultCidr6("p", "s", "n")).toBe(expectedUla("p/s/n"));
    expect(parseCidr6(a).prefixLength).toBe(48);
  });
});

function expectedUla(text: string): string {
  // Independent of the implementation's bigint path: hex digits of the digest placed by hand.
  const hex = createHash("sha256").update(text).digest("hex");
  const groups = [`fd${hex.slice(0, 2)}`, hex.slice(2, 6), hex.slice(6, 10)].map((g) =>
    g.replace(/^0+(?=.)/, ""),
  );
  return `${groups.join(":")}::/48`;
}

describe("IPv6 static and exclude", () => {
  it("gives static IPv6 pairs exactly (canonical), allocating the other family from the pool", () => {
    const result = allocate(
      spec6(["web", "db"], {
        static: {
          db: { hostAddress6: "2001:DB8::0001", localAddress6: "2001:db8::2" },
          web: { hostAddress: "192.168.7.1", localAddress: "192.168.7.2" },
        },
      }),
      {},
    );
    expect(result.db).toEqual({
      hostAddress: "10.233.1.1",
      localAddress: "10.233.1.2",
      hostAddress6: "2001:db8::1",
      localAddress6: "2001:db8::2",
    });
    expect(result.web).toEqual({
      hostAddress: "192.168.7.1",
      localAddress: "192.168.7.2",
      hostAddress6: "fd12:3456:789a:1::1",
      localAddress6: "fd12:3456:789a:1::2",
    });
  });

  it("skips every IPv6 block an excluded address or CIDR touches, and static IPv6 addresses inside the pool", () => {
    const result = allocate(
      spec6(["a", "b", "c"], {
        static: { c: { hostAddress6: "fd12:3456:789a:4::99", localAddress6: "fd12:3456:789a:4::98" } },
        exclude: ["fd12:3456:789a:1::7", "fd12:3456:789a:2::/63", "10.233.9.0/24"],
      }),
      {},
    );
    expect(result.a.hostAddress6).toBe("fd12:3456:789a:5::1");
    expect(result.b.hostAddress6).toBe("fd12:3456:789a:6::1");
    // IPv4 is untouched by IPv6 exclusions.
    expect(result.a.hostAddress).toBe("10.233.1.1");
  });

  it("rejects IPv6 entries when the pool has no IPv6, naming each and the fix", () => {
    const failures = checkPoolSpec(
      spec(["a"], {
        static: {
          a: {
            hostAddress: "10.1.1.1",
            localAddress: "10.1.1.2",
            hostAddress6: "fd00::1",
            localAddress6: "fd00::2",
          },
        },
        exclude: ["fd00::/64"],
      }),
    );
    expect(failures.map((f) => f.property)).toEqual([
      "static.a.hostAddress6",
      "static.a.localAddress6",
      "exclude[0]",
    ]);
    expect(failures[2].message).toBe(
      'exclude[0] "fd00::/64" is an IPv6 address or CIDR but the pool has no IPv6: set ipv6 to true or give cidr6, or remove it',
    );
  });

  it("rejects bad, half-given and duplicate static IPv6 addresses and bad IPv6 exclusions, listing every offender", () => {
    const failures = checkPoolSpec(
      spec6(["a", "b", "c"], {
        static: {
          a: { hostAddress6: "fe80::1%eth0", localAddress6: "fd00::2" },
          b: { hostAddress6: "fd00::0:2", localAddress6: "::ffff:10.0.0.1" },
          c: { hostAddress6: "fd00::9" } as never,
        },
        exclude: ["fd12:3456:789a:1::5/64", "fd00::g"],
      }),
    );
    expect(failures.map((f) => f.property)).toEqual([
      "static.a.hostAddress6",
      "static.b.hostAddress6",
      "static.b.localAddress6",
      "static.c.localAddress6",
      "exclude[0]",
      "exclude[1]",
    ]);
    expect(failures[0].message).toMatch(
      /^static\.a\.hostAddress6 "fe80::1%eth0" is not a valid IPv6 address: zone ids/,
    );
    expect(failures[1].message).toMatch(/already used by static\.a\.localAddress6/);
    expect(failures[2].message).toMatch(/IPv4-mapped/);
    expect(failures[3].message).toMatch(/give both hostAddress6 and localAddress6/);
    expect(failures[4].message).toMatch(/use "fd12:3456:789a:1::\/64"/);
    expect(failures[5].message).toMatch(/^exclude\[1\] "fd00::g" is not a valid IPv6 address/);
  });

  it("rejects a bad cidr6, a block size out of range and pools overlapping special ranges", () => {
    expect(checkPoolSpec(spec6([], { cidr6: "fd12:3456:789a:1::/48" }))[0]).toEqual({
      property: "cidr6",
      message:
        'cidr6 "fd12:3456:789a:1::/48" is not a valid IPv6 CIDR: host bits are set: the network address of /48 is fd12:3456:789a::, use "fd12:3456:789a::/48"',
    });
    expect(checkPoolSpec(spec6([], { blockPrefixLength6: 63 }))[0].message).toMatch(
      /^blockPrefixLength6 number 63 is not allowed: use a whole number from 64/,
    );
    expect(checkPoolSpec(spec6([], { blockPrefixLength6: 128 }))[0].property).toBe("blockPrefixLength6");
    expect(checkPoolSpec(spec6([], { cidr6: "fd00::/72", blockPrefixLength6: 64 }))[0].message).toMatch(
      /larger than the pool/,
    );
    expect(checkPoolSpec(spec6([], { cidr6: "fe80::/64", blockPrefixLength6: 120 }))[0].message).toMatch(
      /overlaps link-local/,
    );
    expect(checkPoolSpec(spec6([], { cidr6: "ff00::/8" }))[0].message).toMatch(/overlaps multicast/);
  });

  it("rejects a full IPv6 pool with cidr6, block size, capacity and the fix", () => {
    const error = errorOf(() =>
      allocate(spec6(["a", "b", "c"], { cidr6: "fd00::/125", blockPrefixLength6: 127 }), {}),
    );
    expect(error.failures[0].property).toBe("members");
    expect(error.message).toContain("IPv6 address pool fd00::/125 is full");
    expect(error.message).toContain("it has 2 blocks to hand out");
    expect(error.message).toContain("0 of them reserved");
    expect(error.message).toContain("could not be placed: c");
    expect(error.message).toMatch(/larger cidr6 \(e\.g\. a \/124\)/);
  });

  it("treats unknown IPv6 inputs as unknown", () => {
    expect(specHasUnknowns(spec6(["a"], { cidr6: UNKNOWN }))).toBe(true);
    expect(
      specHasUnknowns(spec6(["a"], { static: { a: { hostAddress6: UNKNOWN, localAddress6: "fd00::2" } } })),
    ).toBe(true);
    expect(checkPoolSpec(spec6(["a"], { cidr6: UNKNOWN, exclude: ["fd00::1"] }))).toEqual([]);
    expect(() => allocate(spec6(["a"], { cidr6: UNKNOWN }), {})).toThrow(/not known yet/);
  });
});

describe("IPv6 stability", () => {
  it("keeps every IPv4 allocation exactly when IPv6 is turned on, with holes in the pool", () => {
    const before = allocate(spec(["a", "b", "c", "d"]), {});
    const holes = allocate(spec(["a", "d", "e"]), allocate(spec(["a", "d"]), before));
    const after = allocate(spec6(["a", "d", "e", "f"]), holes);
    for (const m of ["a", "d", "e"]) {
      expect({ hostAddress: after[m].hostAddress, localAddress: after[m].localAddress }).toEqual(holes[m]);
    }
    // Turning IPv6 on aligns each new IPv6 block with the member's IPv4 block where it can.
    for (const m of ["a", "d", "e", "f"]) {
      expect(Number(block6(after[m]))).toBe(Number(after[m].hostAddress.split(".")[2]));
    }
  });

  it("keeps IPv6 addresses when a member is removed; a new member takes its IPv4 index, else the lowest free", () => {
    const before = allocate(spec6(["a", "b", "c"]), {});
    const after = allocate(spec6(["a", "c"]), before);
    expect(after).toEqual({ a: before.a, c: before.c });
    const refilled = allocate(spec6(["a", "c", "d"]), after);
    expect(refilled.d).toEqual(before.b);
    const elsewhere = allocate(spec6(["a", "c", "d"], { exclude: ["10.233.2.0/24"] }), after);
    expect(elsewhere.d.hostAddress).toBe("10.233.4.1");
    expect(elsewhere.d.hostAddress6).toBe("fd12:3456:789a:4::1");
    const lowest = allocate(spec6(["a", "c", "d"], { exclude: ["fd12:3456:789a:2::/64"] }), after);
    expect(lowest.d.hostAddress).toBe("10.233.2.1");
    expect(lowest.d.hostAddress6).toBe("fd12:3456:789a:4::1");
    const lowestFree = allocate(spec6(["a", "c", "d", "e"], { exclude: ["fd12:3456:789a:2::/64"] }), after);
    // e keeps step with its IPv4 block 4, so d, whose block 2 is excluded, takes the lowest block still free.
    expect(lowestFree.e.hostAddress).toBe("10.233.4.1");
    expect(lowestFree.e.hostAddress6).toBe("fd12:3456:789a:4::1");
    expect(lowestFree.d.hostAddress6).toBe("fd12:3456:789a:5::1");
  });

  it("keeps the IPv6 pair even when the IPv4 block moves", () => {
    const before = allocate(spec6(["a", "b"]), {});
    const after = allocate(spec6(["a", "b"], { exclude: ["10.233.1.0/24"] }), before);
    expect(after.a.hostAddress).toBe("10.233.3.1");
    expect(after.a.hostAddress6).toBe(before.a.hostAddress6);
  });

  it("reallocates previous IPv6 pairs that do not fit, and breaks clashes by name", () => {
    const same = { hostAddress6: "fd12:3456:789a:9::1", localAddress6: "fd12:3456:789a:9::2" };
    const result = allocate(spec6(["zed", "amy", "bad", "edge"]), {
      zed: { hostAddress: "10.233.1.1", localAddress: "10.233.1.2", ...same },
      amy: { hostAddress: "10.233.2.1", localAddress: "10.233.2.2", ...same },
      bad: {
        hostAddress: "10.233.3.1",
        localAddress: "10.233.3.2",
        hostAddress6: "fd12:3456:789a:3::2",
        localAddress6: "fd12:3456:789a:3::1",
      },
      edge: {
        hostAddress: "10.233.4.1",
        localAddress: "10.233.4.2",
        hostAddress6: "fd12:3456:789a::1",
        localAddress6: "fd12:3456:789a::2",
      },
    });
    expect(result.amy.hostAddress6).toBe(same.hostAddress6);
    expect(result.zed.hostAddress6).toBe("fd12:3456:789a:1::1");
    expect(result.bad.hostAddress6).toBe("fd12:3456:789a:3::1");
    expect(result.edge.hostAddress6).toBe("fd12:3456:789a:4::1");
  });

  it("moves IPv6 addresses when cidr6 changes (a renamed stack or pool derives another prefix)", () => {
    const before = allocate(spec6(["a"]), {});
    const after = allocate(spec6(["a"], { cidr6: "fd99::/48" }), before);
    expect(after.a.hostAddress).toBe(before.a.hostAddress);
    expect(after.a.hostAddress6).toBe("fd99:0:0:1::1");
  });

  it("finds IPv6 collisions between pools, whatever the spelling", () => {
    const left = allocate(spec6(["a"]), {});
    const right = {
      x: {
        hostAddress: "10.9.0.1",
        localAddress: "10.9.0.2",
        hostAddress6: "FD12:3456:789A:1:0::2",
        localAddress6: "fd00::2",
      },
    };
    expect(findCollisions(left, right)).toEqual([{ address: "fd12:3456:789a:1::2", left: "a", right: "x" }]);
  });
});

describe("IPv6 properties", () => {
  it("never gives two members the same IPv6 block, and stays inside cidr6 away from its first and last block", () => {
    fc.assert(
      fc.property(memberList, blockPrefix6, (members, prefix) => {
        const result = allocate(spec6(members, { blockPrefixLength6: prefix }), {});
        const all = addresses6(result);
        expect(new Set(all).size).toBe(all.length);
        const pool = parseCidr6(ULA);
        const size = 1n << BigInt(128 - prefix);
        const blocks = new Set<bigint>();
        for (const a of Object.values(result)) {
          const host = tryParseIPv6(a.hostAddress6 as string) as bigint;
          const local = tryParseIPv6(a.localAddress6 as string) as bigint;
          expect(formatIPv6(host)).toBe(a.hostAddress6);
          const index = (host - pool.base) / size;
          expect(index >= 1n && index <= (pool.last - pool.base + 1n) / size - 2n).toBe(true);
          expect((local - pool.base) / size).toBe(index);
          blocks.add(index);
        }
        expect(blocks.size).toBe(members.length);
      }),
    );
  });

  it("gives the same answer for the same input", () => {
    fc.assert(
      fc.property(memberList, memberList, blockPrefix6, (old, members, prefix) => {
        const s = spec6(members, { blockPrefixLength6: prefix });
        const previous = allocate(spec6(old, { blockPrefixLength6: prefix }), {});
        expect(allocate(s, previous)).toEqual(allocate(s, previous));
      }),
    );
  });

  it("moves no other member (either family) when one is added or removed", () => {
    fc.assert(
      fc.property(memberList, memberName, blockPrefix6, fc.nat(), (members, extra, prefix, pick) => {
        const s = (m: string[]) => spec6(m, { blockPrefixLength6: prefix });
        const before = allocate(s(members), {});
        const added = allocate(s([...members.filter((m) => m !== extra), extra]), before);
        for (const m of members) expect(added[m]).toEqual(before[m]);
        if (members.length > 0) {
          const gone = members[pick % members.length];
          const rest = members.filter((m) => m !== gone);
          const removed = allocate(s(rest), before);
          for (const m of rest) expect(removed[m]).toEqual(before[m]);
        }
      }),
    );
  });

  it("keeps IPv4 allocations identical when IPv6 is turned on, from any previous state", () => {
    fc.assert(
      fc.property(memberList, memberList, blockPrefix, blockPrefix6, (old, members, prefix, prefix6) => {
        const previous = allocate(spec(old, { blockPrefixLength: prefix }), {});
        const four = allocate(spec(members, { blockPrefixLength: prefix }), previous);
        const both = allocate(
          spec6(members, { blockPrefixLength: prefix, blockPrefixLength6: prefix6 }),
          previous,
        );
        expect(Object.keys(both)).toEqual(Object.keys(four));
        for (const m of members) {
          expect({ hostAddress: both[m].hostAddress, localAddress: both[m].localAddress }).toEqual(four[m]);
        }
      }),
    );
  });

  it("never hands out an excluded or static IPv6 block", () => {
    fc.assert(
      fc.property(
        memberList,
        fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { maxLength: 20 }),
        (members, excluded) => {
          const exclude = excluded.map((n) => `fd12:3456:789a:${n.toString(16)}::7`);
          const result = allocate(spec6(members, { exclude }), {});
          for (const a of Object.values(result)) expect(excluded).not.toContain(Number(block6(a)));
        },
      ),
    );
  });
});

describe("IPv6 scale", () => {
  it("allocates 16,000 members with /127 blocks in both families, all distinct, and keeps them on removal", () => {
    const members = names(16_000);
    const s = (m: string[]) => spec6(m, { blockPrefixLength: 31, blockPrefixLength6: 127 });
    const before = allocate(s(members), {});
    expect(new Set(addresses6(before)).size).toBe(32_000);
    const after = allocate(s([...members.slice(1), "new"]), before);
    expect(after.new).toEqual(before.c0);
    expect(after.c15999).toEqual(before.c15999);
  });
});
