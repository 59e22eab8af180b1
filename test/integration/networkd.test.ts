// NetworkdUnmanaged through the real provider host against a real systemd-networkd (lab host h3, `--networkd`):
// without our file networkd's stock 80-container-ve.network takes a container's ve- link; with it the link is
// unmanaged and keeps what the container set up; a file sorting before ours is named when a link stays managed;
// delete removes exactly our file and reloads; a host without networkd gets the file and is told so.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connection, h1, h3, until } from "./fixture";
import { MiniEngine, StateEntry } from "../harness/engine";
import { closeAll, revealMap } from "../harness/providerHost";
import { LabHost, labExec, labExecOk } from "../lab/labHosts";

/** The lab masks networkd's stock files on h3 (so other tests' veths stay alone); these tests lift the mask. */
const STOCK_MASK = "/etc/systemd/network/80-container-ve.network";
const STOCK_FILE = "/usr/lib/systemd/network/80-container-ve.network";
const OURS = "/etc/systemd/network/10-pulumi-nixos-containers-lab.network";

let engine: MiniEngine;
let container: StateEntry | undefined;
/** What the stock file's IPMasquerade= changes on h3 (forwarding on, a table of networkd's), put back after. */
let forwardingBefore = "";
let forwarding6Before = "";
let natTable6Before = false;
let natTableBefore = false;

/** A link's SETUP column in `networkctl list` (IDX LINK TYPE OPERATIONAL SETUP). */
function setupState(host: LabHost, link: string): string | undefined {
  const out = labExecOk(host, ["networkctl", "list", "--no-legend", "--no-pager"]);
  return out
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .find((fields) => fields[1] === link)?.[4];
}

/** The `.network` file networkd applies to a link (`networkctl status`), if it manages it. */
function networkFile(host: LabHost, link: string): string | undefined {
  return /Network File: (\S+)/.exec(labExecOk(host, ["networkctl", "status", "--no-pager", link]))?.[1];
}

function hostAddresses(link: string): string {
  return labExecOk(h3, ["ip", "-o", "-4", "addr", "show", "dev", link]);
}

function managed(host: LabHost, link: string): boolean {
  return ["configuring", "configured"].includes(setupState(host, link) ?? "");
}

/** Puts the lab's mask of the stock file back and lets networkd drop what it did with it. */
function maskStock(): void {
  labExecOk(h3, ["ln", "-sfn", "/dev/null", STOCK_MASK]);
  labExecOk(h3, ["networkctl", "reload"]);
}

beforeAll(async () => {
  engine = await MiniEngine.start();
  forwardingBefore = labExecOk(h3, ["cat", "/proc/sys/net/ipv4/conf/all/forwarding"]).trim();
  // IPMasquerade=both turns IPv6 forwarding on too (and may add networkd's ip6 table).
  forwarding6Before = labExecOk(h3, ["cat", "/proc/sys/net/ipv6/conf/all/forwarding"]).trim();
  natTable6Before = labExec(h3, ["nft", "list", "table", "ip6", "io.systemd.nat"]).code === 0;
  natTableBefore = labExec(h3, ["nft", "list", "table", "ip", "io.systemd.nat"]).code === 0;
});

afterAll(async () => {
  maskStock();
  if (container) await engine.destroy(container);
  labExecOk(h3, ["sysctl", "-q", "-w", `net.ipv4.conf.all.forwarding=${forwardingBefore}`]);
  if (!natTableBefore) labExec(h3, ["nft", "delete", "table", "ip", "io.systemd.nat"]);
  labExecOk(h3, ["sysctl", "-q", "-w", `net.ipv6.conf.all.forwarding=${forwarding6Before}`]);
  if (!natTable6Before) labExec(h3, ["nft", "delete", "table", "ip6", "io.systemd.nat"]);
  await closeAll();
});

describe("NetworkdUnmanaged with a real systemd-networkd", () => {
  it("runs against a lab whose h3 has networkd (lab up ... --networkd h3)", () => {
    expect(h3.networkd, "the lab is up without --networkd h3: run `bash test/lab/lab down` first").toBe(true);
    expect(labExecOk(h3, ["networkctl", "list", "--no-legend", "--no-pager"])).toMatch(/\beth0\b/);
    expect(labExecOk(h3, ["cat", STOCK_FILE])).toMatch(/^Name=ve-\*$/m);
  });

  it("without the file, networkd's stock 80-container-ve.network takes a container's ve- link", async () => {
    container = await engine.create("Container", "ndc", {
      connection: connection(h3),
      name: "ndc",
      driver: "netns",
      hostAddress: "10.233.41.1",
      localAddress: "10.233.41.2",
    });
    expect(container.outs.running).toBe(true);
    expect(setupState(h3, "ve-ndc")).toBe("unmanaged"); // masked: no file matches it yet
    // As on a NixOS or Debian host with networkd: the stock file applies.
    labExecOk(h3, ["rm", "-f", STOCK_MASK]);
    labExecOk(h3, ["networkctl", "reload"]);
    await until("networkd takes ve-ndc", () => managed(h3, "ve-ndc"));
    expect(networkFile(h3, "ve-ndc")).toBe(STOCK_FILE);
    // nixpkgs #69414: networkd replaces the container's host address (and so its route) with one of its own.
    await until(
      "networkd drops the container's host address",
      () => !hostAddresses("ve-ndc").includes("10.233.41.1/32"),
    );
    expect(hostAddresses("ve-ndc")).toMatch(/inet \d+\.\d+\.\d+\.\d+\/28 /);
    // A refresh sees the drift: the next up would repair it (and networkd would take it again).
    expect(await engine.refresh(container)).toBe(true);
    expect((await engine.plan(container, container.inputs)).diff.changes).toBe(true);
  });

  it("with the file, the link shows unmanaged after the reload, and the container is repaired and stays so", async () => {
    const inputs = { connection: connection(h3), name: "lab" };
    const checked = await engine.check("NetworkdUnmanaged", "nd", inputs);
    expect(checked.path).toBe(OURS);
    expect(checked.content).toContain("[Match]\nName=ve-* vb-*\n\n[Link]\nUnmanaged=yes\n");
    const nd = await engine.create("NetworkdUnmanaged", "nd", inputs);
    try {
      expect(nd.outs).toMatchObject({
        present: true,
        networkdRunning: true,
        reloaded: true,
        unmanagedLinks: ["ve-ndc"],
      });
      expect(labExecOk(h3, ["cat", OURS])).toBe(checked.content);
      // networkd itself says so, with the stock file still active: ours sorts first.
      expect(setupState(h3, "ve-ndc")).toBe("unmanaged");
      expect(labExecOk(h3, ["readlink", "-e", STOCK_FILE])).not.toBe("");

      // What networkd did to the link meanwhile is repaired by the container's next up, and stays repaired.
      if (!container) throw new Error("the container of the test before is missing");
      expect(await engine.up(container, container.inputs)).toBe("updated");
      expect(container.outs.running).toBe(true);
      labExecOk(h3, ["networkctl", "reload"]);
      await new Promise((r) => setTimeout(r, 1000));
      expect(setupState(h3, "ve-ndc")).toBe("unmanaged");
      expect(hostAddresses("ve-ndc")).toContain("10.233.41.1/32");
      expect(await engine.refresh(container)).toBe(true);
      expect(container.outs.running).toBe(true);

      // A refresh reads the same.
      expect(await engine.refresh(nd)).toBe(true);
      expect(nd.outs).toMatchObject({ present: true, networkdRunning: true, unmanagedLinks: ["ve-ndc"] });
    } finally {
      // Delete removes exactly our file (and marker), leaves a foreign one, and reloads: networkd takes it again.
      const foreign = "/etc/systemd/network/50-someone-else.network";
      labExecOk(h3, ["sh", "-c", `printf '[Match]\\nName=nothing-here\\n' > ${foreign}`]);
      await engine.destroy(nd);
      expect(labExec(h3, ["test", "-e", OURS]).code).not.toBe(0);
      expect(
        labExec(h3, ["test", "-e", "/var/lib/pulumi-nixos-containers/owners/networkd-lab"]).code,
      ).not.toBe(0);
      expect(labExecOk(h3, ["cat", foreign])).toBe("[Match]\nName=nothing-here\n");
      labExecOk(h3, ["rm", "-f", foreign]);
      await until("networkd takes ve-ndc again after the delete's reload", () => managed(h3, "ve-ndc"));
      // Deleting what is already gone succeeds.
      await engine.destroy(nd);
    }
  });

  it("fails naming the link and the file that still manages it, recorded as made; the next up finishes it", async () => {
    // A file that sorts before ours takes ve-ndc (with the stock file still unmasked from above).
    const before = "/etc/systemd/network/05-grab-ve.network";
    labExecOk(h3, [
      "sh",
      "-c",
      `printf '[Match]\\nName=ve-*\\n\\n[Network]\\nLinkLocalAddressing=no\\n' > ${before}`,
    ]);
    labExecOk(h3, ["networkctl", "reload"]);
    const inputs = { connection: connection(h3), name: "lab" };
    const urn = engine.urn("NetworkdUnmanaged", "ndv");
    let state: { id: string; properties: Record<string, unknown> } | undefined;
    try {
      await until("05-grab-ve takes ve-ndc", () => networkFile(h3, "ve-ndc") === before);
      const err = await engine.create("NetworkdUnmanaged", "ndv", inputs).then(
        () => new Error("the create succeeded"),
        (e: unknown) => e as Error & { initFailure?: { id: string; properties: Record<string, unknown> } },
      );
      expect(err.message).toMatch(
        new RegExp(`these links are still managed: ve-ndc \\((configuring|configured), by ${before}\\)`),
      );
      if (!("initFailure" in err) || !err.initFailure) throw err;
      state = { id: err.initFailure.id, properties: revealMap(err.initFailure.properties as never) };
      expect(state.properties).toMatchObject({ present: false, networkdRunning: true, reloaded: true });
      expect(labExecOk(h3, ["cat", OURS])).toContain("Unmanaged=yes");

      labExecOk(h3, ["rm", "-f", before]);
      const checked = await engine.check("NetworkdUnmanaged", "ndv", inputs, state.properties);
      expect((await engine.host.diff(urn, state.id, state.properties, checked)).changes).toBe(true);
      const { outs } = await engine.host.update(urn, state.id, state.properties, checked);
      state = { id: state.id, properties: revealMap(outs) };
      expect(state.properties).toMatchObject({ present: true, reloaded: true, unmanagedLinks: ["ve-ndc"] });
    } finally {
      labExec(h3, ["rm", "-f", before]);
      if (state) await engine.host.delete(urn, state.id, state.properties);
      expect(labExec(h3, ["test", "-e", OURS]).code).not.toBe(0);
    }
  });
});

describe("NetworkdUnmanaged on a host without networkd", () => {
  it("writes the file and reports networkd not running; delete removes it", async () => {
    const path = "/etc/systemd/network/10-pulumi-nixos-containers-lab1.network";
    const nd = await engine.create("NetworkdUnmanaged", "nd1", { connection: connection(h1), name: "lab1" });
    expect(nd.outs).toMatchObject({
      present: true,
      networkdRunning: false,
      reloaded: false,
      unmanagedLinks: [],
    });
    expect(labExecOk(h1, ["cat", path])).toBe(nd.outs.content);
    await engine.destroy(nd);
    expect(labExec(h1, ["test", "-e", path]).code).not.toBe(0);
  });

  it("refuses to take over a file of the same name that is already there, and leaves it", async () => {
    const path = "/etc/systemd/network/10-pulumi-nixos-containers-twin.network";
    labExecOk(h1, ["sh", "-c", `mkdir -p /etc/systemd/network && printf '[Match]\\nName=mine\\n' > ${path}`]);
    try {
      await expect(
        engine.create("NetworkdUnmanaged", "ndt", { connection: connection(h1), name: "twin" }),
      ).rejects.toThrow(
        /10-pulumi-nixos-containers-twin\.network already exists .*Nothing was changed on the host/,
      );
      expect(labExecOk(h1, ["cat", path])).toBe("[Match]\nName=mine\n");
    } finally {
      labExec(h1, ["rm", "-f", path]);
    }
  });

  it("refuses, naming the NixOS declaration, where /etc/systemd/network cannot be written", async () => {
    // A read-only /etc/systemd/network in h1's own mount namespace, as on NixOS with a read-only /etc overlay.
    labExecOk(h1, [
      "sh",
      "-c",
      "mkdir -p /etc/systemd/network && mount -t tmpfs -o ro pnc-ro /etc/systemd/network",
    ]);
    try {
      await expect(
        engine.create("NetworkdUnmanaged", "ndr", { connection: connection(h1), name: "ro" }),
      ).rejects.toThrow(
        'cannot be written (on NixOS /etc can be read-only, e.g. system.etc.overlay.mutable = false): declare the file in the host\'s configuration instead: systemd.network.networks."10-pulumi-nixos-containers-ro" = { matchConfig.Name = "ve-* vb-*"; linkConfig.Unmanaged = true; }; (with systemd.network.enable = true). Nothing was changed on the host.',
      );
      expect(
        labExec(h1, ["test", "-e", "/var/lib/pulumi-nixos-containers/owners/networkd-ro"]).code,
      ).not.toBe(0);
    } finally {
      labExec(h1, ["umount", "/etc/systemd/network"]);
    }
  });
});
