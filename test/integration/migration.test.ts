// State from the release before ownership markers (commit 4a8ec8d, the last landed one without them): the
// resources that release made are recognised, given a marker on their next update without being touched
// otherwise, and deleted as ours afterwards; a delete of such state before any update still removes them.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connection, h1, h2 } from "./fixture";
import { MiniEngine, REPO_ROOT, ResourceType, StateEntry } from "../harness/engine";
import { closeAll } from "../harness/providerHost";
import { LabHost, labExec, labExecOk } from "../lab/labHosts";

const PREVIOUS_RELEASE = "4a8ec8d";
const old = fs.mkdtempSync(path.join(os.tmpdir(), "pnc-previous-release-"));
let before: MiniEngine;
let now: MiniEngine;

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  // The previous release's provider, built from its own sources (this repository's history).
  const archive = spawnSync("git", ["archive", PREVIOUS_RELEASE, "provider", "tsconfig.json"], {
    cwd: REPO_ROOT,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (archive.status !== 0)
    throw new Error(`git archive ${PREVIOUS_RELEASE} failed (a shallow clone?): ${archive.stderr}`);
  spawnSync("tar", ["-x", "-C", old], { input: archive.stdout });
  fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(old, "node_modules"));
  run(
    process.execPath,
    [path.join(REPO_ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"],
    old,
  );
  before = await MiniEngine.start({
    env: { PULUMI_NIXOS_CONTAINERS_RUNTIME: path.join(old, "bin/runtime/index.js") },
  });
  now = await MiniEngine.start();
}, 120_000);

afterAll(async () => {
  await closeAll();
  fs.rmSync(old, { recursive: true, force: true });
});

/** What a host has of everything these resources make, to prove the marking touches none of it. */
function hostObjects(host: LabHost): string {
  return [
    labExecOk(host, ["ip", "-o", "link", "show"]).replace(/ state \S+/g, ""),
    labExecOk(host, ["ip", "-o", "-4", "addr", "show"]),
    labExecOk(host, ["ip", "-4", "route", "show"]),
    labExec(host, ["nft", "list", "table", "ip", "pnc-nat-mig"]).stdout,
    labExec(host, ["cat", "/etc/NetworkManager/conf.d/pulumi-nixos-containers-mig.conf"]).stdout,
    labExecOk(host, ["cat", "/proc/sys/net/ipv4/conf/all/forwarding"]),
  ].join("\n");
}

const MARKERS = "/var/lib/pulumi-nixos-containers/owners";

describe("state from the release before markers", () => {
  it("is marked on its next update without touching its objects, then deleted as ours", async () => {
    const inputs: [ResourceType, string, Record<string, unknown>][] = [
      [
        "Container",
        "mig",
        {
          connection: connection(h1),
          name: "mig",
          driver: "netns",
          hostAddress: "10.233.51.1",
          localAddress: "10.233.51.2",
        },
      ],
      [
        "VethPair",
        "mig-v",
        {
          connection: connection(h1),
          container: "mig",
          hostInterface: "vx-mig",
          containerInterface: "eth1",
          hostAddress: "10.234.51.1",
          localAddress: "10.234.51.2",
        },
      ],
      ["NatRule", "mig-nat", { connection: connection(h1), name: "mig", externalInterface: "eth0" }],
      ["NmUnmanaged", "mig-nm", { connection: connection(h2), name: "mig" }],
    ];
    const made: StateEntry[] = [];
    try {
      for (const [type, name, news] of inputs) made.push(await before.create(type, name, news));
      for (const entry of made) expect(entry.outs.owner).toBeUndefined();
      const h1Before = hostObjects(h1);
      const h2Before = hostObjects(h2);

      for (const [i, entry] of made.entries()) {
        // The new provider code alone changed: the engine runs an update, which only marks.
        const result = await now.up(entry, inputs[i][2]);
        expect(result).toBe("updated");
        expect(entry.outs.owner).toMatch(/^[0-9a-f]{16}$/);
      }
      expect(hostObjects(h1)).toBe(h1Before);
      expect(hostObjects(h2)).toBe(h2Before);
      const kinds = ["container-mig", "veth-vx-mig", "nat-mig"];
      for (const [i, kind] of kinds.entries()) {
        expect(labExecOk(h1, ["head", "-1", `${MARKERS}/${kind}`]).trim()).toBe(made[i].outs.owner);
      }
      expect(labExecOk(h2, ["head", "-1", `${MARKERS}/nm-mig`]).trim()).toBe(made[3].outs.owner);
      // Marked once: the next up has nothing to do.
      expect(await now.up(made[0], inputs[0][2])).toBe("same");
    } finally {
      for (const entry of made.reverse()) await now.destroy(entry);
    }
    expect(labExec(h1, ["ip", "link", "show", "ve-mig"]).code).not.toBe(0);
    expect(labExec(h1, ["nft", "list", "table", "ip", "pnc-nat-mig"]).code).not.toBe(0);
    expect(
      labExec(h2, ["test", "-e", "/etc/NetworkManager/conf.d/pulumi-nixos-containers-mig.conf"]).code,
    ).not.toBe(0);
    for (const kind of ["container-mig", "veth-vx-mig", "nat-mig"])
      expect(labExec(h1, ["test", "-e", `${MARKERS}/${kind}`]).code).not.toBe(0);
  });

  it("is deleted as ours when destroyed before any update", async () => {
    const c = await before.create("Container", "mig2", {
      connection: connection(h1),
      name: "mig2",
      driver: "netns",
      hostAddress: "10.233.52.1",
      localAddress: "10.233.52.2",
    });
    await now.destroy(c);
    expect(labExecOk(h1, ["ip", "netns", "list"])).not.toMatch(/^mig2\b/m);
    expect(now.host.logs().join("\n")).not.toMatch(/mig2.*left there/);
  });
});
