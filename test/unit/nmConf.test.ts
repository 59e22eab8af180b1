// The NmUnmanaged drop-in: inputs, path, exact content, and the real NetworkManager reading it (with
// --print-config against a scratch config directory: no daemon is touched) next to other unmanaged lists.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HOSTILE } from "../fixtures/hostile";
import { NmSpec, nmDropInPath, parseNmInputs, renderNmConf } from "../../provider/core/nmUnmanagedSpec";
import { UNKNOWN } from "../../provider/core/validate";

function parsed(raw: Record<string, unknown>): NmSpec {
  const { spec, failures } = parseNmInputs(raw);
  expect(failures).toEqual([]);
  if (spec === undefined) {
    throw new Error("expected a spec");
  }
  return spec;
}

describe("parseNmInputs", () => {
  it("defaults devices to interface-name:ve-*", () => {
    expect(parsed({ name: "nm" })).toEqual({ name: "nm", devices: ["interface-name:ve-*"] });
  });

  it("keeps the given specs in order without duplicates", () => {
    expect(
      parsed({ name: "nm", devices: ["interface-name:ve-*", "type:veth", "interface-name:ve-*"] }).devices,
    ).toEqual(["interface-name:ve-*", "type:veth"]);
  });

  it("accepts the unknown sentinel without a spec or failures", () => {
    expect(parseNmInputs({ name: UNKNOWN })).toEqual({ failures: [] });
    expect(parseNmInputs({ name: "nm", devices: ["interface-name:ve-*", UNKNOWN] })).toEqual({
      failures: [],
    });
    expect(parseNmInputs({ name: "nm", devices: UNKNOWN })).toEqual({ failures: [] });
  });

  it("rejects a missing name and a name too long, saying why", () => {
    expect(parseNmInputs({}).failures).toEqual([{ property: "name", message: "name is required" }]);
    const [failure] = parseNmInputs({ name: "n".repeat(42) }).failures;
    expect(failure.message).toContain("use 1-41 characters");
    expect(failure.message).toContain("(it has 42): it becomes part of the drop-in's file name");
  });

  it("rejects an empty device list", () => {
    expect(parseNmInputs({ name: "nm", devices: [] }).failures[0].message).toMatch(
      /^devices is empty: list at least one/,
    );
  });

  it("rejects every bad spec under its own index", () => {
    const { spec, failures } = parseNmInputs({
      name: "nm",
      devices: ["interface-name:ve-*", "interface-name:ve-*;type:wifi", "bogus:x", 7],
    });
    expect(spec).toBeUndefined();
    expect(failures.map((f) => f.property)).toEqual(["devices[1]", "devices[2]", "devices[3]"]);
  });

  // "*", "?" and "~root" are not hostile after "interface-name:": they are NetworkManager globs.
  const hostile = HOSTILE.filter((s) => !["plain", "*", "?", "~root"].includes(s));
  it.each(hostile)("rejects the hostile string %j as name and as a device, naming the property", (bad) => {
    const { spec, failures } = parseNmInputs({ name: bad, devices: [`interface-name:${bad}`, bad] });
    expect(spec).toBeUndefined();
    expect(failures.map((f) => f.property)).toEqual(expect.arrayContaining(["name", "devices[0]"]));
    // A bare word that is a valid interface name ("a=b" is not, "~" is not) may pass as devices[1].
    for (const f of failures) {
      expect(f.message.startsWith(f.property)).toBe(true);
    }
  });
});

describe("renderNmConf", () => {
  it("puts the drop-in in /etc/NetworkManager/conf.d under our name", () => {
    expect(nmDropInPath("nm")).toBe("/etc/NetworkManager/conf.d/pulumi-nixos-containers-nm.conf");
  });

  it("appends the default spec to unmanaged-devices", () => {
    expect(renderNmConf(parsed({ name: "nm" }))).toBe(
      "# Managed by pulumi-nixos-containers (resource nm): NetworkManager leaves these devices alone.\n" +
        "[keyfile]\n" +
        "unmanaged-devices+=interface-name:ve-*\n",
    );
  });

  it("joins several specs with ';'", () => {
    expect(
      renderNmConf(
        parsed({
          name: "nm",
          devices: ["interface-name:ve-*", "interface-name:vb-*", "mac:00:11:22:33:44:55"],
        }),
      ),
    ).toContain("unmanaged-devices+=interface-name:ve-*;interface-name:vb-*;mac:00:11:22:33:44:55\n");
  });
});

const hasNm = spawnSync("sh", ["-c", "command -v NetworkManager"]).status === 0;
const dir = mkdtempSync(join(tmpdir(), "pnc-nm-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** NetworkManager's merged view of a main file plus our drop-ins, from scratch directories only. */
function printConfig(main: string, dropIns: Record<string, string>): string {
  const root = mkdtempSync(join(dir, "cfg-"));
  const confD = join(root, "conf.d");
  mkdirSync(confD);
  mkdirSync(join(root, "system"));
  writeFileSync(join(root, "NetworkManager.conf"), main);
  for (const [name, content] of Object.entries(dropIns)) {
    writeFileSync(join(confD, name), content);
  }
  return execFileSync(
    "NetworkManager",
    [
      "--print-config",
      `--config=${join(root, "NetworkManager.conf")}`,
      `--config-dir=${confD}`,
      `--system-config-dir=${join(root, "system")}`,
      `--intern-config=${join(root, "intern.conf")}`,
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  );
}

describe.skipIf(!hasNm)("renderNmConf read by the real NetworkManager --print-config", () => {
  it("keeps the host's own unmanaged devices and those of other resources", () => {
    const a = parsed({ name: "a" });
    const b = parsed({ name: "b", devices: ["interface-name:ve-*", "interface-name:vb-*"] });
    const merged = printConfig("[main]\n[keyfile]\nunmanaged-devices=interface-name:wlan1\n", {
      [nmDropInPath(a.name).split("/").pop() ?? ""]: renderNmConf(a),
      [nmDropInPath(b.name).split("/").pop() ?? ""]: renderNmConf(b),
    });
    expect(merged).toContain(
      "unmanaged-devices=interface-name:wlan1,interface-name:ve-*,interface-name:vb-*\n",
    );
  });

  it("works when nothing else sets unmanaged-devices", () => {
    expect(printConfig("[main]\n", { "x.conf": renderNmConf(parsed({ name: "x" })) })).toContain(
      "unmanaged-devices=interface-name:ve-*\n",
    );
  });
});
