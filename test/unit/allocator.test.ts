// The address allocator: nixos-container layout, stability across membership changes, and limits.
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
  specHasUnknowns,
} from "../../provider/core/allocator";
import { UNKNOWN } from "../../provider/core/validate";
import { parseCidr, tryParseIPv4 } from "../../provider/core/ipv4";

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
