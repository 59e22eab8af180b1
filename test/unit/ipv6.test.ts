// Strict IPv6/CIDR parsing, RFC 5952 formatting and range math used by the allocator and validators.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MAX_IPV6,
  cidr6Contains,
  cidr6ContainsCidr6,
  cidr6Problem,
  cidr6sOverlap,
  formatCidr6,
  formatIPv6,
  ipv6Problem,
  makeCidr6,
  parseCidr6,
  parseIPv6,
  prefixMask6,
  specialIPv6Range,
  tryParseAddressOrCidr6,
  tryParseCidr6,
  tryParseIPv6,
} from "../../provider/core/ipv6";
import { validateAddressOrCidr6, validateCidr6, validateIPv6 } from "../../provider/core/validate";

const u128 = fc.bigInt({ min: 0n, max: MAX_IPV6 });
/** Values tryParseIPv6 accepts: not IPv4-mapped, not IPv4-compatible. */
const acceptable = u128.filter((v) => v >> 32n !== 0xffffn && (v >> 32n !== 0n || v >> 16n === 0n));

function groupsOf(value: bigint): number[] {
  return Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
}

function maxZeroRun(groups: readonly number[]): number {
  let best = 0;
  let run = 0;
  for (const g of groups) {
    run = g === 0 ? run + 1 : 0;
    best = Math.max(best, run);
  }
  return best;
}

describe("IPv6 addresses", () => {
  it.each([
    ["::", 0n],
    ["::1", 1n],
    ["1::", 1n << 112n],
    ["fd12:3456:789a:1::2", 0xfd123456789a00010000000000000002n],
    ["FD12:3456:789A:1::2", 0xfd123456789a00010000000000000002n],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", 0x20010db8000000000000000000000001n],
    ["2001:db8:0:0:0:0:0:1", 0x20010db8000000000000000000000001n],
    ["2001:db8::0:1", 0x20010db8000000000000000000000001n],
    ["1:2:3:4:5:6:7::", 0x00010002000300040005000600070000n],
    ["::2:3:4:5:6:7:8", 0x00000002000300040005000600070008n],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", MAX_IPV6],
    ["64:ff9b::192.0.2.1", 0x0064ff9b0000000000000000c0000201n],
    ["1:2:3:4:5:6:1.2.3.4", 0x00010002000300040005000601020304n],
    ["::ffff", 0xffffn],
  ])("parses %j", (text, value) => {
    expect(tryParseIPv6(text)).toBe(value);
    expect(ipv6Problem(text)).toBeUndefined();
  });

  it.each([
    ["", /groups of 1-4 hex digits/],
    [" ::1", /remove the spaces/],
    ["::1 ", /remove the spaces/],
    ["::1\n", /remove the spaces/],
    ["[::1]", /remove the brackets/],
    ["fe80::1%eth0", /zone ids/],
    ["fe80::1%1", /zone ids/],
    ["fd00::1/64", /prefix length is not allowed/],
    ["::ffff:10.1.2.3", /IPv4-mapped .*"10\.1\.2\.3"/],
    ["::ffff:a01:203", /IPv4-mapped/],
    ["::10.1.2.3", /IPv4-compatible/],
    ["::0.0.0.1", /IPv4-compatible/],
    ["::a01:203", /IPv4-compatible/],
    ["12345::", /more than 4 hex digits/],
    ["00000::1", /more than 4 hex digits/],
    ["1::2::3", /only once/],
    [":::", /three colons/],
    ["1:::2", /three colons/],
    [":1::2", /single ":" cannot start/],
    ["1::2:", /single ":" cannot start/],
    [":1:2:3:4:5:6:7:8", /single ":" cannot start/],
    ["1:2:3:4:5:6:7", /7 groups.*exactly 8/],
    ["1:2:3:4:5:6:7:8:9", /9 groups/],
    ["1:2:3:4::5:6:7:8", /at most 7/],
    ["1:2:3:4:5:6:7:1.2.3.4", /9 groups/],
    ["64:ff9b::1.2.3", /dotted IPv4 part "1\.2\.3"/],
    ["64:ff9b::01.2.3.4", /dotted IPv4 part/],
    ["64:ff9b::256.2.3.4", /dotted IPv4 part/],
    ["1.2.3.4::", /only as the last 32 bits/],
    ["1:1.2.3.4::5", /only as the last 32 bits/],
    ["g::1", /groups of 1-4 hex digits/],
    ["fd00::-1", /groups of 1-4 hex digits/],
    ["0x1::", /groups of 1-4 hex digits/],
    ["fd00::٢", /groups of 1-4 hex digits/],
    ["10.1.2.3", /exactly 8/],
    ["1:2:3:4:5:6:7:8".repeat(3), /groups of 1-4 hex digits/],
  ])("rejects %j with a reason", (text, reason) => {
    expect(tryParseIPv6(text)).toBeUndefined();
    expect(ipv6Problem(text)).toMatch(reason);
  });

  it.each([
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // a single zero group is never "::"
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // the longest run wins
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // the first of two equal runs wins
    ["0:0:0:0:0:0:0:0", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["fd12:3456:789a:0001:0000:0000:0000:0002", "fd12:3456:789a:1::2"],
    ["64:ff9b::192.0.2.1", "64:ff9b::c000:201"],
  ])("formats %j canonically as %j (RFC 5952)", (text, canonical) => {
    expect(formatIPv6(parseIPv6(text))).toBe(canonical);
  });

  it("round-trips every acceptable value through format and parse", () => {
    fc.assert(
      fc.property(acceptable, (v) => {
        expect(tryParseIPv6(formatIPv6(v))).toBe(v);
      }),
    );
  });

  it("round-trips values with many zero groups (where compression matters)", () => {
    const sparse = fc
      .array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
        minLength: 8,
        maxLength: 8,
      })
      .map((gs) => gs.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n))
      .filter((v) => v >> 32n !== 0xffffn && (v >> 32n !== 0n || v >> 16n === 0n));
    fc.assert(
      fc.property(sparse, (v) => {
        const text = formatIPv6(v);
        expect(tryParseIPv6(text)).toBe(v);
        // RFC 5952: lowercase, no leading zeros, "::" at most once and only for 2+ zero groups.
        expect(text).toMatch(/^[0-9a-f:]+$/);
        expect(text.split("::").length).toBeLessThanOrEqual(2);
        for (const g of text.split(":")) expect(g === "" || !g.startsWith("0") || g === "0").toBe(true);
        // The elided run is the longest zero run, and only when it is 2+ groups long.
        const longest = maxZeroRun(groupsOf(v));
        const written = text === "::" ? 0 : text.split(/::|:/).filter((g) => g !== "").length;
        if (text.includes("::")) {
          expect(longest).toBeGreaterThanOrEqual(2);
          expect(8 - written).toBe(longest);
        } else {
          expect(longest).toBeLessThan(2);
        }
      }),
    );
  });

  it("parses what it formats case-insensitively and with leading zeros restored", () => {
    fc.assert(
      fc.property(acceptable, (v) => {
        const full = groupsOf(v)
          .map((g) => g.toString(16).padStart(4, "0").toUpperCase())
          .join(":");
        expect(tryParseIPv6(full)).toBe(v);
      }),
    );
  });

  it("never accepts text with a zone, brackets or spaces around any valid address", () => {
    fc.assert(
      fc.property(acceptable, fc.constantFrom("%eth0", "%1", " ", "\t"), (v, junk) => {
        const text = formatIPv6(v);
        expect(tryParseIPv6(text + junk)).toBeUndefined();
        expect(tryParseIPv6(`[${text}]`)).toBeUndefined();
      }),
    );
  });

  it("refuses values outside 128 bits when formatting", () => {
    expect(() => formatIPv6(-1n)).toThrow(RangeError);
    expect(() => formatIPv6(MAX_IPV6 + 1n)).toThrow(RangeError);
  });

  it("rejects a bad address with the property and value in the error", () => {
    expect(() => parseIPv6("fe80::1%eth0", "hostAddress6")).toThrow(
      /hostAddress6 "fe80::1%eth0" is not a valid IPv6 address: zone ids/,
    );
  });

  it("names the ranges an interface cannot carry", () => {
    expect(specialIPv6Range(parseIPv6("::"))).toMatch(/unspecified/);
    expect(specialIPv6Range(parseIPv6("::1"))).toMatch(/loopback/);
    expect(specialIPv6Range(parseIPv6("fe80::1"))).toMatch(/link-local/);
    expect(specialIPv6Range(parseIPv6("ff02::1"))).toMatch(/multicast/);
    expect(specialIPv6Range(parseIPv6("fd12:3456:789a:1::2"))).toBeUndefined();
    expect(specialIPv6Range(parseIPv6("2001:db8::1"))).toBeUndefined();
  });
});

describe("IPv6 CIDRs", () => {
  it("parses a strict network address", () => {
    const cidr = tryParseCidr6("fd12:3456:789a::/48");
    expect(cidr).toEqual({
      base: 0xfd123456789a00000000000000000000n,
      prefixLength: 48,
      last: 0xfd123456789affffffffffffffffffffn,
    });
    expect(tryParseCidr6("::/0")).toEqual({ base: 0n, prefixLength: 0, last: MAX_IPV6 });
    expect(tryParseCidr6("fd00::1/128")?.last).toBe(0xfd000000000000000000000000000001n);
  });

  it("rejects host bits unless asked to clear them, naming the network to use", () => {
    expect(tryParseCidr6("fd12:3456:789a:1::/48")).toBeUndefined();
    expect(cidr6Problem("fd12:3456:789a:1::/48")).toBe(
      'host bits are set: the network address of /48 is fd12:3456:789a::, use "fd12:3456:789a::/48"',
    );
    expect(cidr6Problem("fd12:3456:789a:1::/48", false)).toBeUndefined();
    expect(formatCidr6(tryParseCidr6("fd12:3456:789a:1::5/64", false)!)).toBe("fd12:3456:789a:1::/64");
  });

  it.each([
    ["fd00::", /add a prefix length/],
    ["fd00::/", /whole number from 0 to 128/],
    ["fd00::/129", /whole number from 0 to 128/],
    ["fd00::/064", /without leading zeros/],
    ["fd00::/64 ", /whole number/],
    ["fd00::/-1", /whole number/],
    ["fd00::/6/4", /whole number/],
    ["[fd00::]/64", /remove the brackets/],
    ["fd00::%eth0/64", /zone ids/],
    ["::ffff:0:0/96", /IPv4-mapped/],
    ["10.0.0.0/8", /exactly 8/],
  ])("rejects %j", (text, reason) => {
    expect(tryParseCidr6(text)).toBeUndefined();
    expect(tryParseCidr6(text, false)).toBeUndefined();
    expect(cidr6Problem(text)).toMatch(reason);
  });

  it("throws naming the property from parseCidr6", () => {
    expect(() => parseCidr6("fd00::1/64", "cidr6")).toThrow(
      /cidr6 "fd00::1\/64" is not a valid IPv6 CIDR: host bits are set/,
    );
  });

  it("computes masks, containment and overlap", () => {
    expect(prefixMask6(0)).toBe(0n);
    expect(prefixMask6(128)).toBe(MAX_IPV6);
    expect(prefixMask6(64)).toBe(0xffffffffffffffff0000000000000000n);
    const pool = parseCidr6("fd12:3456:789a::/48");
    const block = parseCidr6("fd12:3456:789a:1::/64");
    expect(cidr6ContainsCidr6(pool, block)).toBe(true);
    expect(cidr6ContainsCidr6(block, pool)).toBe(false);
    expect(cidr6sOverlap(pool, block)).toBe(true);
    expect(cidr6sOverlap(block, parseCidr6("fd12:3456:789a:2::/64"))).toBe(false);
    expect(cidr6Contains(block, parseIPv6("fd12:3456:789a:1::2"))).toBe(true);
    expect(cidr6Contains(block, parseIPv6("fd12:3456:789a:2::2"))).toBe(false);
    expect(tryParseAddressOrCidr6("fd00::7")).toEqual(makeCidr6(0xfd000000000000000000000000000007n, 128));
    expect(tryParseAddressOrCidr6("fd00::/8")?.prefixLength).toBe(8);
    expect(tryParseAddressOrCidr6("fd00::7/8")).toBeUndefined();
  });

  it("round-trips every prefix through mask, format and parse", () => {
    fc.assert(
      fc.property(acceptable, fc.integer({ min: 0, max: 128 }), (v, n) => {
        const base = v & prefixMask6(n);
        fc.pre(base >> 32n !== 0xffffn && (base >> 32n !== 0n || base >> 16n === 0n));
        const cidr = makeCidr6(base, n);
        expect(tryParseCidr6(formatCidr6(cidr))).toEqual(cidr);
        expect(cidr6Contains(cidr, v)).toBe(true);
      }),
    );
  });
});

describe("IPv6 validators", () => {
  it("words messages like the IPv4 ones", () => {
    expect(validateIPv6("fe80::1%eth0", "hostAddress6")).toEqual([
      {
        property: "hostAddress6",
        message:
          'hostAddress6 "fe80::1%eth0" is not a valid IPv6 address: zone ids such as "%eth0" are not allowed: give the address alone (the interface is set by its own input)',
      },
    ]);
    expect(validateCidr6("fd00::1/64", "cidr6")[0].message).toBe(
      'cidr6 "fd00::1/64" is not a valid IPv6 CIDR: host bits are set: the network address of /64 is fd00::, use "fd00::/64"',
    );
    expect(validateAddressOrCidr6("::ffff:1.2.3.4", "exclude[0]")[0].message).toMatch(
      /^exclude\[0\] "::ffff:1\.2\.3\.4" is not a valid IPv6 address: IPv4-mapped/,
    );
  });

  it("accepts valid, unknown and (when optional) missing values", () => {
    expect(validateIPv6("fd12:3456:789a:1::2", "localAddress6")).toEqual([]);
    expect(validateIPv6(undefined, "localAddress6", { optional: true })).toEqual([]);
    expect(validateIPv6(undefined, "localAddress6")).toHaveLength(1);
    expect(validateIPv6(5, "localAddress6")).toHaveLength(1);
    expect(validateCidr6("fd00::1/64", "cidr6", { requireNetwork: false })).toEqual([]);
    expect(validateAddressOrCidr6("fd00::/64", "exclude[0]")).toEqual([]);
    expect(validateAddressOrCidr6("fd00::1", "exclude[0]")).toEqual([]);
  });
});
