// Strict IPv4/CIDR parsing and range math used by the allocator and validators.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  cidrContains,
  cidrContainsCidr,
  cidrProblem,
  cidrsOverlap,
  formatCidr,
  formatIPv4,
  normaliseCidr,
  parseCidr,
  parseIPv4,
  prefixMask,
  tryParseAddressOrCidr,
  tryParseCidr,
  tryParseIPv4,
} from "../../provider/core/ipv4";

describe("IPv4 addresses", () => {
  it("parses dotted quads to uint32", () => {
    expect(tryParseIPv4("0.0.0.0")).toBe(0);
    expect(tryParseIPv4("10.233.1.2")).toBe(0x0ae90102);
    expect(tryParseIPv4("255.255.255.255")).toBe(0xffffffff);
  });

  it("round-trips every uint32 through format and parse", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => {
        expect(tryParseIPv4(formatIPv4(n))).toBe(n);
      }),
    );
  });

  it.each([
    "010.1.1.1",
    "10.01.1.1",
    "10.1.1.00",
    "0x0a.1.1.1",
    "10.1.1",
    "10.1",
    "167772161",
    "256.1.1.1",
    "10.1.1.1.",
    ".10.1.1.1",
    "10..1.1",
    " 10.1.1.1",
    "10.1.1.1\n",
    "10.1.1.1 ",
    "1e1.1.1.1",
    "+1.1.1.1",
    "-1.1.1.1",
    "١٠.1.1.1",
    "",
  ])("rejects %j", (text) => {
    expect(tryParseIPv4(text)).toBeUndefined();
  });

  it("rejects a bad address with the property and value in the error", () => {
    expect(() => parseIPv4("10.1.1", "hostAddress")).toThrow(/hostAddress "10\.1\.1" is not a valid IPv4/);
  });
});

describe("CIDR ranges", () => {
  it("parses a network-aligned CIDR", () => {
    const pool = parseCidr("10.233.0.0/16");
    expect(pool.base).toBe(tryParseIPv4("10.233.0.0"));
    expect(pool.size).toBe(65536);
    expect(formatIPv4(pool.last)).toBe("10.233.255.255");
    expect(formatCidr(pool)).toBe("10.233.0.0/16");
    expect(parseCidr("0.0.0.0/0").size).toBe(2 ** 32);
    expect(parseCidr("1.2.3.4/32").size).toBe(1);
  });

  it("rejects host bits and names the network address to use", () => {
    expect(cidrProblem("10.233.1.5/16")).toMatch(/use "10\.233\.0\.0\/16"/);
    expect(() => parseCidr("10.233.1.5/16", "cidr")).toThrow(/cidr "10\.233\.1\.5\/16"/);
    expect(tryParseCidr("10.233.1.5/16")).toBeUndefined();
  });

  it("normalises host bits when asked to", () => {
    expect(formatCidr(normaliseCidr("10.233.1.5/16"))).toBe("10.233.0.0/16");
  });

  it.each(["10.0.0.0", "10.0.0.0/33", "10.0.0.0/08", "10.0.0.0/", "10.0.0/8", "10.0.0.0/8/8", "10.0.0.0/ 8"])(
    "rejects %j",
    (text) => {
      expect(tryParseCidr(text)).toBeUndefined();
      expect(cidrProblem(text)).toBeDefined();
    },
  );

  it("treats a bare address as a /32", () => {
    expect(tryParseAddressOrCidr("10.233.1.2")?.prefixLength).toBe(32);
    expect(tryParseAddressOrCidr("10.233.1.0/24")?.size).toBe(256);
  });

  it("computes masks, containment and overlap", () => {
    expect(prefixMask(0)).toBe(0);
    expect(prefixMask(24)).toBe(0xffffff00);
    expect(prefixMask(32)).toBe(0xffffffff);
    const pool = parseCidr("10.233.0.0/16");
    expect(cidrContains(pool, tryParseIPv4("10.233.255.255") as number)).toBe(true);
    expect(cidrContains(pool, tryParseIPv4("10.234.0.0") as number)).toBe(false);
    expect(cidrContainsCidr(pool, parseCidr("10.233.7.0/24"))).toBe(true);
    expect(cidrContainsCidr(parseCidr("10.233.7.0/24"), pool)).toBe(false);
    expect(cidrsOverlap(pool, parseCidr("10.0.0.0/8"))).toBe(true);
    expect(cidrsOverlap(pool, parseCidr("10.234.0.0/16"))).toBe(false);
  });

  it("agrees with a brute-force overlap check", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 24, max: 32 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 24, max: 32 }),
        (a, pa, b, pb) => {
          const x = normaliseCidr(`10.0.0.${a}/${pa}`);
          const y = normaliseCidr(`10.0.0.${b}/${pb}`);
          let shared = false;
          for (let i = x.base; i <= x.last; i++) {
            shared ||= cidrContains(y, i);
          }
          expect(cidrsOverlap(x, y)).toBe(shared);
        },
      ),
    );
  });
});
