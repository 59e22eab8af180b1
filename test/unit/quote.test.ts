// The quoting function against hostile strings: each argument must reach a real POSIX shell byte for byte.
import { execFileSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { quoteArg, quoteArgv } from "../../provider/ssh/quote";
import { HOSTILE } from "../fixtures/hostile";

/** Any ASCII byte but NUL, or any well-formed Unicode (lone surrogates cannot cross UTF-8 at all). */
const hostileString = fc
  .oneof(fc.string({ unit: "binary-ascii" }), fc.string({ unit: "grapheme" }))
  .filter((s) => !s.includes("\0"));

/** Runs argv through a real `sh` and returns each argument as it arrived. */
function roundTrip(args: string[]): string[] {
  const line = quoteArgv(["printf", "%s\\0", ...args]);
  const out = execFileSync("sh", ["-c", line], { encoding: "utf8" });
  return out.split("\0").slice(0, -1);
}

describe("quoteArg", () => {
  it("leaves safe words alone", () => {
    expect(quoteArg("ve-web")).toBe("ve-web");
    expect(quoteArg("10.233.1.2/32")).toBe("10.233.1.2/32");
  });

  it("quotes the empty string so it stays an argument", () => {
    expect(quoteArg("")).toBe("''");
  });

  it("passes every hostile string through sh byte for byte", () => {
    for (const arg of HOSTILE) expect(roundTrip([arg])).toEqual([arg]);
    expect(roundTrip(HOSTILE)).toEqual(HOSTILE);
  });

  it("passes arbitrary strings through sh byte for byte (property)", () => {
    fc.assert(
      fc.property(fc.array(hostileString, { minLength: 1, maxLength: 5 }), (args) => {
        expect(roundTrip(args)).toEqual(args);
      }),
      { numRuns: 200 },
    );
  });

  it("rejects a NUL byte, naming the argument", () => {
    expect(() => quoteArg("a\0b")).toThrow(/NUL byte/);
    expect(() => quoteArgv(["echo", "x\0"])).toThrow(/NUL byte/);
  });

  it("rejects an empty argument vector", () => {
    expect(() => quoteArgv([])).toThrow(/empty command/);
  });
});
