// The nixos driver against the lab's NixOS stand-ins (nixos-container, container@.service, machinectl, Nix):
// slow builds and boots, start timeouts and Restart=on-failure, containers that are busy when we act, hosts
// where <nixpkgs/nixos> does not resolve. Each test tunes the stand-in with its knobs for its own containers.
import { ChildProcess, spawn } from "node:child_process";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connection, h3, lab, nixosInputs, profileGenerations, until } from "./fixture";
import { MiniEngine, StateEntry } from "../harness/engine";
import { ProviderHostError, closeAll, revealMap } from "../harness/providerHost";
import { labExec, labExecOk } from "../lab/labHosts";

let engine: MiniEngine;
beforeAll(async () => {
  engine = await MiniEngine.start();
});
afterAll(async () => {
  await closeAll();
});

const KNOBS = "/etc/nixos-container-stand-in";
const started: ChildProcess[] = [];
afterEach(() => {
  for (const child of started.splice(0)) child.kill("SIGKILL"); // by PID
  labExec(h3, ["rm", "-rf", `${KNOBS}/pnc-t1`, `${KNOBS}/pnc-t2`, `${KNOBS}/pnc-t3`, `${KNOBS}/pnc-t4`]);
});

/** Sets a stand-in knob for one container (`boot-seconds`, `build-seconds`, ...). */
function knob(container: string, name: string, value: string): void {
  labExecOk(h3, [
    "sh",
    "-c",
    `mkdir -p ${KNOBS}/${container} && printf %s '${value}' > ${KNOBS}/${container}/${name}`,
  ]);
}

/** Runs ARGV on h3 in the background (a process of this test, killed by PID after it). */
function inBackground(argv: readonly string[]): ChildProcess {
  const child = spawn("bash", [lab.script, "exec", h3.name, "--", ...argv], {
    stdio: "ignore",
    env: { ...process.env, PNC_LAB_DIR: lab.dir },
  });
  started.push(child);
  return child;
}

const unitState = (name: string) =>
  labExecOk(h3, ["systemctl", "show", "-p", "ActiveState", "--value", `container@${name}`]).trim();
const hasLeader = (name: string) => labExec(h3, ["machinectl", "show", name, "-p", "Leader"]).code === 0;
const hasLink = (name: string) => labExec(h3, ["ip", "link", "show", "dev", `ve-${name}`]).code === 0;

/** Nothing of container `name` is left on h3: no conf, no unit running or failed, no leader, no veth. */
function gone(name: string) {
  return {
    conf: labExec(h3, ["test", "-e", `/etc/nixos-containers/${name}.conf`]).code === 0,
    unit: unitState(name),
    leader: hasLeader(name),
    link: hasLink(name),
  };
}
const NOTHING = { conf: false, unit: "inactive", leader: false, link: false };

function inputs(name: string, block: number, extra: Record<string, unknown> = {}) {
  return nixosInputs(h3, name, block, { config: "{ services.nginx.enable = true; }", ...extra });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("nixos driver: containers that are busy or slow", () => {
  it("rolls back a start that times out without leaving a booting container behind (Restart=on-failure)", async () => {
    knob("pnc-t1", "boot-seconds", "3");
    knob("pnc-t1", "timeout-start-sec", "1");
    const failed = await engine.create("Container", "t1", inputs("pnc-t1", 71)).catch((e: unknown) => e);
    expect(String(failed)).toMatch(/What this run had made was removed again.*a timeout was exceeded/s);
    // The unit would restart by itself and boot again with the old conf: after our rollback nothing may.
    expect(gone("pnc-t1")).toEqual(NOTHING);
    await sleep(3500);
    expect(gone("pnc-t1")).toEqual(NOTHING);
    expect(labExec(h3, ["ip", "-o", "-4", "addr", "show"]).stdout).not.toContain("10.233.71.1");
  });

  it.each([
    ["booting", "boot-seconds", ["systemctl", "restart", "container@pnc-t2"], "activating"],
    ["reloading", "reload-seconds", ["nixos-container", "update", "pnc-t2"], "reloading"],
    ["stopping", "stop-seconds", ["systemctl", "stop", "container@pnc-t2"], "deactivating"],
  ] as const)(
    "deletes a container that is %s: stops it and waits, leaving nothing running",
    async (_what, knobName, argv, busy) => {
      const c = await engine.create("Container", "t2", inputs("pnc-t2", 72));
      try {
        knob("pnc-t2", knobName, "3");
        inBackground(argv);
        await until(`the unit is ${busy}`, () => unitState("pnc-t2") === busy);
      } finally {
        await engine.destroy(c);
      }
      expect(gone("pnc-t2")).toEqual(NOTHING);
      await sleep(3500); // past the boot, reload or stop under way
      expect(gone("pnc-t2")).toEqual(NOTHING);
    },
  );

  it("reads a container that is reloading as busy and running, not as stopped", async () => {
    const c = await engine.create("Container", "t3", inputs("pnc-t3", 73));
    try {
      knob("pnc-t3", "reload-seconds", "3");
      inBackground(["nixos-container", "update", "pnc-t3"]);
      await until("the unit is reloading", () => unitState("pnc-t3") === "reloading");
      expect(await engine.refresh(c)).toBe(true);
      expect(c.outs).toMatchObject({ running: true, unitState: "reloading" });
      await until("the reload ends", () => unitState("pnc-t3") === "active");
      expect(await engine.refresh(c)).toBe(true);
      expect(c.outs).toMatchObject({ running: true, unitState: "active" });
    } finally {
      await engine.destroy(c);
    }
  });

  it("refuses a config build when <nixpkgs/nixos> does not resolve on the host, changing nothing", async () => {
    const channel = "/var/lib/nix-stand-in/var/nix/profiles/per-user/root/channels/nixpkgs";
    labExecOk(h3, ["mv", channel, `${channel}.away`]);
    try {
      await expect(engine.create("Container", "t4", inputs("pnc-t4", 74))).rejects.toThrow(
        /<nixpkgs\/nixos> does not resolve on the host.*NIX_PATH.*or use flake.*Nothing was changed/s,
      );
      expect(gone("pnc-t4")).toEqual(NOTHING);
      // A flake needs no NIX_PATH.
      const { config: _unused, ...flakeInputs } = inputs("pnc-t4", 74, { flake: "github:acme/infra#t4" });
      const c = await engine.create("Container", "t4", flakeInputs);
      expect(c.outs.running).toBe(true);
      await engine.destroy(c);
    } finally {
      labExecOk(h3, ["mv", `${channel}.away`, channel]);
    }
  });
});

describe("nixos driver: long builds", () => {
  it("builds two containers at once while a NatRule on the same host goes ahead without waiting", async () => {
    for (const name of ["pnc-t1", "pnc-t2"]) knob(name, "build-seconds", "20");
    const done: string[] = [];
    const track = (what: string, p: Promise<StateEntry>) =>
      p.then((entry) => {
        done.push(what);
        return entry;
      });
    const all = await Promise.allSettled([
      track("t1", engine.create("Container", "t1", inputs("pnc-t1", 75))),
      track("t2", engine.create("Container", "t2", inputs("pnc-t2", 76))),
      (async () => {
        await sleep(2000); // both builds are under way
        return track(
          "nat",
          engine.create("NatRule", "nat", {
            connection: connection(h3),
            name: "lbnat",
            externalInterface: "eth0",
            internalIPs: ["10.233.0.0/16"],
          }),
        );
      })(),
    ]);
    for (const r of all) if (r.status === "fulfilled") await engine.destroy(r.value);
    const [t1, t2, nat] = all.map((r) => (r.status === "fulfilled" ? r.value.outs : String(r.reason)));
    expect(t1).toMatchObject({ running: true });
    expect(t2).toMatchObject({ running: true });
    expect(nat).toMatchObject({ live: "applied" });
    // The NatRule waited for neither build (they hold only their container's lock while they build).
    expect(done[0]).toBe("nat");
  });

  it("a build longer than timeouts.create is recorded, keeps running, and the next up with a larger timeout finishes it", async () => {
    knob("pnc-t3", "build-seconds", "12");
    // A 5 s limit: the SSH command ends after 5 s, in the middle of the build.
    const wanted = inputs("pnc-t3", 77, { timeouts: { create: 5 } });
    let err: unknown;
    try {
      await engine.create("Container", "t3", wanted);
    } catch (e) {
      err = e;
    }
    if (!(err instanceof ProviderHostError) || !err.initFailure)
      throw new Error(`no init error: ${String(err)}`);
    expect(err.message).toMatch(/did not finish within 5000 ms.*raise the resource.s `timeouts` input/s);
    const init = { ...err.initFailure, properties: revealMap(err.initFailure.properties) };
    expect(init.properties).toMatchObject({ createPending: true, running: false });
    // The build goes on on the host (its output goes to a log of ours, not to the closed channel).
    expect(labExecOk(h3, ["cat", "/var/lib/pulumi-nixos-containers/owners/container-pnc-t3"])).toContain(
      "built=0",
    );

    // The next `up`, with room for the build: waits for the one under way, then finishes without a second one.
    const urn = engine.urn("Container", "t3");
    const checked = await engine.check(
      "Container",
      "t3",
      { ...wanted, timeouts: { create: 60 } },
      init.properties,
    );
    const { outs } = await engine.host.update(urn, init.id, init.properties, checked);
    const entry: StateEntry = {
      type: "Container",
      name: "t3",
      urn,
      id: init.id,
      inputs: checked,
      outs: revealMap(outs),
    };
    try {
      expect(entry.outs).toMatchObject({ running: true, unitState: "active", hostAddress: "10.233.77.1" });
      expect(profileGenerations(h3, "pnc-t3")).toBe(1);
      expect(labExecOk(h3, ["cat", "/var/lib/pulumi-nixos-containers/owners/container-pnc-t3"])).toContain(
        "built=1",
      );
      // No GC root or scratch left in the SSH user's directory.
      expect(labExecOk(h3, ["ls", "-A", "/root"])).not.toContain(".tmp");
    } finally {
      await engine.destroy(entry);
    }
    expect(gone("pnc-t3")).toEqual(NOTHING);

    // With timeouts.create larger than the build from the start, the create just succeeds.
    const c = await engine.create("Container", "t3", { ...wanted, timeouts: { create: 60 } });
    expect(c.outs).toMatchObject({ running: true });
    await engine.destroy(c);
  });
});
