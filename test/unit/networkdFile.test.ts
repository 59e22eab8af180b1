// The NetworkdUnmanaged `.network` file: inputs, path, exact content and the NixOS declaration offered where /etc
// cannot be written. (systemd 252 has no offline parser for .network files; the lab runs the real networkd.)
import { describe, expect, it } from "vitest";
import { HOSTILE } from "../fixtures/hostile";
import {
  NetworkdSpec,
  networkdFilePath,
  nixosNetworkdDeclaration,
  parseNetworkdInputs,
  renderNetworkdFile,
} from "../../provider/core/networkdUnmanagedSpec";
import { UNKNOWN } from "../../provider/core/validate";

function parsed(raw: Record<string, unknown>): NetworkdSpec {
  const { spec, failures } = parseNetworkdInputs(raw);
  expect(failures).toEqual([]);
  if (spec === undefined) throw new Error("expected a spec");
  return spec;
}

function reasonFor(glob: unknown): string {
  const { spec, failures } = parseNetworkdInputs({ name: "nd", interfaces: [glob] });
  expect(spec).toBeUndefined();
  expect(failures.map((f) => f.property)).toEqual(["interfaces[0]"]);
  return failures[0].message;
}

describe("parseNetworkdInputs", () => {
  it("defaults interfaces to ve-* and vb-*", () => {
    expect(parsed({ name: "nd" })).toEqual({ name: "nd", interfaces: ["ve-*", "vb-*"] });
  });

  it("keeps the given globs in order without duplicates", () => {
    expect(parsed({ name: "nd", interfaces: ["vb-*", "ve-web", "vb-*", "vz-[ab]?"] }).interfaces).toEqual([
      "vb-*",
      "ve-web",
      "vz-[ab]?",
    ]);
  });

  it("accepts the unknown sentinel without a spec or failures", () => {
    expect(parseNetworkdInputs({ name: UNKNOWN })).toEqual({ failures: [] });
    expect(parseNetworkdInputs({ name: "nd", interfaces: ["ve-*", UNKNOWN] })).toEqual({ failures: [] });
    expect(parseNetworkdInputs({ name: "nd", interfaces: UNKNOWN })).toEqual({ failures: [] });
  });

  it("rejects a missing name and a name too long, saying why", () => {
    expect(parseNetworkdInputs({}).failures).toEqual([{ property: "name", message: "name is required" }]);
    const [failure] = parseNetworkdInputs({ name: "n".repeat(42) }).failures;
    expect(failure.message).toContain("use 1-41 characters");
    expect(failure.message).toContain("(it has 42): it becomes part of the .network file's name");
  });

  it("rejects an empty list and a list that is no list", () => {
    expect(parseNetworkdInputs({ name: "nd", interfaces: [] }).failures[0].message).toMatch(
      /^interfaces is empty: list at least one interface name or glob/,
    );
    expect(parseNetworkdInputs({ name: "nd", interfaces: "ve-*" }).failures).toEqual([
      { property: "interfaces", message: 'interfaces must be a list, got "ve-*"' },
    ]);
  });

  it("rejects a glob that matches everything, or the host's uplink, saying why", () => {
    expect(reasonFor("*")).toBe(
      'interfaces[0] "*" starts with a wildcard, so it can match the host\'s own interfaces (eth0, the uplink), ' +
        "which networkd would then stop configuring; use one interface name or shell glob per entry (1-64 " +
        'characters: letters, digits, ".", "_", "@", "-" and the glob characters "*", "?", "[...]"), starting ' +
        'with a letter, digit or "_", e.g. "ve-*"',
    );
    expect(reasonFor("?e-*")).toContain("starts with a wildcard");
    expect(reasonFor("[v]e-*")).toContain("starts with a wildcard");
  });

  it('rejects a leading "!" (networkd negates the whole list with it)', () => {
    expect(reasonFor("!eth0")).toContain('starts with "!", which in networkd negates the whole Name= list');
  });

  it("rejects a name no interface can have, an unclosed bracket and a non-string", () => {
    expect(reasonFor("ve-averyverylongname")).toContain("longer than a Linux interface name can be");
    expect(reasonFor("ve-[ab")).toContain('has a "[" without a closing "]"');
    expect(reasonFor(7)).toBe("interfaces[0] must be a string, got number 7");
  });

  it("rejects every bad glob under its own index", () => {
    const { failures } = parseNetworkdInputs({ name: "nd", interfaces: ["ve-*", "ve-* vb-*", "*", "ok"] });
    expect(failures.map((f) => f.property)).toEqual(["interfaces[1]", "interfaces[2]"]);
  });

  // Globs and plain words are what this input is for; "-rf" and friends start with no letter.
  const hostile = HOSTILE.filter((s) => s !== "plain");
  it.each(hostile)(
    "rejects the hostile string %j as name and as an interface, naming the property",
    (bad) => {
      const { spec, failures } = parseNetworkdInputs({ name: bad, interfaces: [bad] });
      expect(spec).toBeUndefined();
      expect(failures.map((f) => f.property)).toEqual(["name", "interfaces[0]"]);
      for (const f of failures) expect(f.message.startsWith(f.property)).toBe(true);
    },
  );
});

describe("renderNetworkdFile", () => {
  it("puts the file in /etc/systemd/network, sorting before networkd's stock 80-container-ve.network", () => {
    const path = networkdFilePath("nd");
    expect(path).toBe("/etc/systemd/network/10-pulumi-nixos-containers-nd.network");
    const name = path.split("/").pop() ?? "";
    expect([name, "80-container-ve.network", "80-container-vb.network"].sort()[0]).toBe(name);
  });

  it("matches the default globs and says Unmanaged=yes, nothing else", () => {
    expect(renderNetworkdFile(parsed({ name: "nd" }))).toBe(
      "# Managed by pulumi-nixos-containers (resource nd): systemd-networkd leaves these links alone.\n" +
        "[Match]\n" +
        "Name=ve-* vb-*\n" +
        "\n" +
        "[Link]\n" +
        "Unmanaged=yes\n",
    );
  });

  it("joins several globs with spaces into one Name= list", () => {
    expect(renderNetworkdFile(parsed({ name: "nd", interfaces: ["ve-web", "vz-*"] }))).toContain(
      "\nName=ve-web vz-*\n",
    );
  });

  it("offers the NixOS declaration with the same match and Unmanaged", () => {
    expect(nixosNetworkdDeclaration(parsed({ name: "nd" }))).toBe(
      'systemd.network.networks."10-pulumi-nixos-containers-nd" = ' +
        '{ matchConfig.Name = "ve-* vb-*"; linkConfig.Unmanaged = true; };',
    );
  });
});
