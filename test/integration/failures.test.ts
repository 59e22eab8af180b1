// Failure paths through the real provider host: a create cut off mid-way is recorded (init error) and
// finished by the next update, a create that fails part-way rolls back, a changed host key is refused
// after create, and the nixos driver finds the older /etc/containers layout by itself.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { h1, h2, h3, connection, cutOffCreate, holdLock, until } from "./fixture";
import { MiniEngine, ResourceType } from "../harness/engine";
import { ProviderHostError, closeAll, revealMap } from "../harness/providerHost";
import { labExec, labExecOk, restartSshd } from "../lab/labHosts";

let engine: MiniEngine;
beforeAll(async () => {
  engine = await MiniEngine.start();
});
afterAll(async () => {
  await closeAll();
});

describe("a create cut off by a lost connection", () => {
  it("is recorded with its id and state (init error), and the next update finishes it", async () => {
    // Another operation holds the host lock, so our create waits inside its script; then sshd drops it.
    const holder = holdLock(h1, 6);
    try {
      await until(
        "the lock is held",
        () => labExec(h1, ["flock", "-n", "/run/pulumi-nixos-containers/lock", "true"]).code !== 0,
      );
      const inputs = {
        connection: connection(h1),
        name: "cut",
        driver: "netns",
        hostAddress: "10.233.40.1",
        localAddress: "10.233.40.2",
      };
      const creating = engine.create("Container", "cut", inputs).then(
        () => undefined,
        (e: unknown) => e,
      );
      await new Promise((r) => setTimeout(r, 1000));
      restartSshd(h1, { dropSessions: true });
      const err = await creating;
      expect(err).toBeInstanceOf(ProviderHostError);
      const init = (err as ProviderHostError).initFailure;
      expect(init?.id).toBe(`${h1.address}:22/cut`);
      expect(init?.reasons.join(" ")).toMatch(/next `pulumi up` will finish or repair it/);
      const recorded = revealMap(init?.properties ?? {});
      expect(recorded).toMatchObject({
        name: "cut",
        running: false,
        hostKeyFingerprint: h1.hostKeyFingerprint,
      });

      // The engine forces an update of a resource with init errors on the next `up`.
      await until("the holder exits", () => holder.exitCode !== null);
      const checked = await engine.check("Container", "cut", inputs, recorded);
      const { outs } = await engine.host.update(
        engine.urn("Container", "cut"),
        init?.id ?? "",
        recorded,
        checked,
      );
      expect(revealMap(outs)).toMatchObject({
        running: true,
        hostAddress: "10.233.40.1",
        localAddress: "10.233.40.2",
      });
      expect(
        labExec(h1, ["ip", "netns", "exec", "cut", "ping", "-c", "1", "-W", "2", "10.233.40.1"]).code,
      ).toBe(0);
      await engine.host.delete(engine.urn("Container", "cut"), init?.id ?? "", revealMap(outs));
      expect(labExecOk(h1, ["ip", "netns", "list"])).not.toMatch(/^cut\b/m);
    } finally {
      holder.kill("SIGKILL"); // by PID; the flock inside the host ends by its own timeout
    }
  });
});

describe("a create cut off by a lost connection, for every host resource", () => {
  const cases: [
    ResourceType,
    typeof h1,
    string,
    Record<string, unknown>,
    Record<string, unknown>,
    Record<string, unknown>,
  ][] = [
    // type, host, name, inputs, what the recorded state says (unhealthy), what the finishing update observes
    [
      "VethPair",
      h1,
      "cutv",
      {
        connection: connection(h1),
        container: "cutvc",
        hostInterface: "vx-cutv",
        containerInterface: "eth1",
        hostAddress: "10.234.46.1",
        localAddress: "10.234.46.2",
      },
      { present: false },
      { present: true },
    ],
    [
      "NatRule",
      h1,
      "cutn",
      { connection: connection(h1), name: "cutn", externalInterface: "eth0" },
      { live: "missing" },
      { live: "applied", forwarding: true },
    ],
    [
      "NmUnmanaged",
      h2,
      "cutm",
      { connection: connection(h2), name: "cutm" },
      { present: false },
      { present: true, networkManagerRunning: true },
    ],
  ];

  it.each(cases)(
    "%s: recorded with its id and state (init error), finished by the next update, then deleted",
    async (type, host, name, inputs, recordedAs, finishedAs) => {
      const container =
        type === "VethPair"
          ? await engine.create("Container", "cutvc", {
              connection: connection(h1),
              name: "cutvc",
              driver: "netns",
              hostAddress: "10.233.46.1",
              localAddress: "10.233.46.2",
            })
          : undefined;
      try {
        const init = await cutOffCreate(engine, host, type, name, inputs);
        expect(init.id).toContain(host.address);
        expect(init.reasons.join(" ")).toMatch(/next `pulumi up` will finish or repair it/);
        expect(init.properties).toMatchObject({ ...recordedAs, hostKeyFingerprint: host.hostKeyFingerprint });

        const checked = await engine.check(type, name, inputs, init.properties);
        const plan = await engine.host.diff(engine.urn(type, name), init.id, init.properties, checked);
        expect(plan.changes).toBe(true);
        const { outs } = await engine.host.update(engine.urn(type, name), init.id, init.properties, checked);
        expect(revealMap(outs)).toMatchObject(finishedAs);
        await engine.host.delete(engine.urn(type, name), init.id, revealMap(outs));
      } finally {
        if (container) await engine.destroy(container);
      }
      if (type === "NatRule")
        expect(labExec(h1, ["nft", "list", "table", "ip", "pnc-nat-cutn"]).code).not.toBe(0);
      if (type === "VethPair") expect(labExec(h1, ["ip", "link", "show", "vx-cutv"]).code).not.toBe(0);
      if (type === "NmUnmanaged")
        expect(
          labExec(h2, ["test", "-e", "/etc/NetworkManager/conf.d/pulumi-nixos-containers-cutm.conf"]).code,
        ).not.toBe(0);
    },
  );
});

describe("a create that fails part-way", () => {
  it("rolls back what it made and says nothing was changed", async () => {
    const app = await engine.create("Container", "rb", {
      connection: connection(h1),
      name: "rb",
      driver: "netns",
      hostAddress: "10.233.41.1",
      localAddress: "10.233.41.2",
    });
    try {
      const before = labExecOk(h1, ["ip", "-o", "link", "show"]);
      // The veth is made first; the missing bridge is found after it: the script must delete the veth again.
      await expect(
        engine.create("VethPair", "rbv", {
          connection: connection(h1),
          container: "rb",
          hostInterface: "vx-rb",
          containerInterface: "eth1",
          hostBridge: "nobridge0",
        }),
      ).rejects.toThrow(/bridge nobridge0 does not exist on the host.*Nothing was changed/s);
      expect(labExecOk(h1, ["ip", "-o", "link", "show"])).toBe(before);
      expect(labExecOk(h1, ["ip", "netns", "exec", "rb", "ip", "-o", "link", "show"])).not.toContain("eth1");
    } finally {
      await engine.destroy(app);
    }
  });
});

describe("host key recorded at create", () => {
  it("is enforced afterwards: a host presenting another key is refused, naming both fingerprints", async () => {
    const c = await engine.create("Container", "hk", {
      connection: connection(h1),
      name: "hk",
      driver: "netns",
      hostAddress: "10.233.42.1",
      localAddress: "10.233.42.2",
    });
    try {
      expect(c.outs.hostKeyFingerprint).toBe(h1.hostKeyFingerprint);
      // As if h1 had been replaced by a machine with h2's key: state says one key, the host shows another.
      const tampered = { ...c.outs, hostKeyFingerprint: h2.hostKeyFingerprint };
      await expect(engine.host.read(c.urn, c.id, tampered, c.inputs)).rejects.toThrow(
        new RegExp(
          `host key mismatch for ${h1.address.replace(/\./g, "\\.")}:22: expected ${h2.hostKeyFingerprint.replace(/[+/]/g, "\\$&")}, but the host presented ${h1.hostKeyFingerprint.replace(/[+/]/g, "\\$&")}`,
        ),
      );
    } finally {
      await engine.destroy(c);
    }
  });
});

describe("nixos driver layouts and extra veths", () => {
  it("finds the older /etc/containers layout per host, and adds a VethPair to a nixos container", async () => {
    labExecOk(h3, ["touch", "/etc/nixos-container-legacy"]);
    try {
      const c = await engine.create("Container", "old", {
        connection: connection(h3),
        name: "old",
        driver: "nixos",
        hostAddress: "10.233.43.1",
        localAddress: "10.233.43.2",
      });
      try {
        expect(c.outs.confPath).toBe("/etc/containers/old.conf");
        expect(labExecOk(h3, ["cat", "/etc/containers/old.conf"])).toContain("LOCAL_ADDRESS=10.233.43.2");
        expect(await engine.refresh(c)).toBe(true);
        expect(c.outs.running).toBe(true);
        const v = await engine.create("VethPair", "oldv", {
          connection: connection(h3),
          container: "old",
          hostInterface: "vx-old",
          containerInterface: "eth1",
          hostAddress: "10.234.43.1",
          localAddress: "10.234.43.2",
        });
        expect(labExec(h3, ["ping", "-c", "1", "-W", "2", "10.234.43.2"]).code).toBe(0);
        await engine.destroy(v);
      } finally {
        await engine.destroy(c);
      }
      expect(labExec(h3, ["test", "-e", "/etc/containers/old.conf"]).code).not.toBe(0);
    } finally {
      labExecOk(h3, ["rm", "-f", "/etc/nixos-container-legacy"]);
    }
  });
});

describe("adopting a container that is already on the host", () => {
  it("refuses it without adopt, takes it over with adopt (keeping its addresses), and deletes it", async () => {
    // A container made by hand, the way the netns driver (or a script) would have made it.
    const made = [
      ["ip", "netns", "add", "handmade"],
      ["ip", "link", "add", "ve-handmade", "type", "veth", "peer", "name", "eth0", "netns", "handmade"],
      ["ip", "addr", "add", "10.233.44.1/32", "dev", "ve-handmade"],
      ["ip", "link", "set", "ve-handmade", "up"],
      ["ip", "-n", "handmade", "addr", "add", "10.233.44.2/32", "dev", "eth0"],
    ];
    for (const argv of made) labExecOk(h1, argv);
    try {
      const inputs = { connection: connection(h1), name: "handmade", driver: "netns" };
      await expect(engine.create("Container", "handmade", inputs)).rejects.toThrow(
        /network namespace \/run\/netns\/handmade already exists.*Nothing was changed/s,
      );
      const c = await engine.create("Container", "handmade", { ...inputs, adopt: true });
      expect(c.outs).toMatchObject({
        hostAddress: "10.233.44.1",
        localAddress: "10.233.44.2",
        running: true,
      });
      // Brought to the spec: routes both ways and the container's default route now exist.
      expect(
        labExec(h1, ["ip", "netns", "exec", "handmade", "ping", "-c", "1", "-W", "2", "10.233.44.1"]).code,
      ).toBe(0);
      expect(await engine.up(c, { ...inputs, adopt: true })).toBe("same");
      await engine.destroy(c);
      expect(labExecOk(h1, ["ip", "netns", "list"])).not.toMatch(/^handmade\b/m);
    } finally {
      labExec(h1, ["ip", "link", "del", "ve-handmade"]);
      labExec(h1, ["ip", "netns", "del", "handmade"]);
    }
  });

  it("adopts a container nixos-container made by hand, starting it with its own addresses", async () => {
    labExecOk(h3, [
      "nixos-container",
      "create",
      "legacy",
      "--host-address",
      "10.233.45.1",
      "--local-address",
      "10.233.45.2",
    ]);
    try {
      const c = await engine.create("Container", "legacy", {
        connection: connection(h3),
        name: "legacy",
        driver: "nixos",
        adopt: true,
      });
      expect(c.outs).toMatchObject({
        hostAddress: "10.233.45.1",
        localAddress: "10.233.45.2",
        running: true,
        confPath: "/etc/nixos-containers/legacy.conf",
      });
      expect(labExecOk(h3, ["nixos-container", "status", "legacy"]).trim()).toBe("up");
      await engine.destroy(c);
      expect(labExec(h3, ["nixos-container", "status", "legacy"]).code).not.toBe(0);
    } finally {
      labExec(h3, ["nixos-container", "destroy", "legacy"]);
    }
  });
});

describe("host hygiene", () => {
  it("keeps its locks root-only: another local user can neither open nor flock them to stall us", async () => {
    const c = await engine.create("Container", "hyg", {
      connection: connection(h1),
      name: "hyg",
      driver: "netns",
    });
    try {
      expect(labExecOk(h1, ["stat", "-c", "%a %U", "/run/pulumi-nixos-containers"]).trim()).toBe("700 root");
      const asUser = labExec(h1, [
        "su",
        "labuser",
        "-s",
        "/bin/sh",
        "-c",
        "flock -n /run/pulumi-nixos-containers/lock true",
      ]);
      expect(asUser.code).not.toBe(0);
      expect(asUser.stderr).toMatch(/Permission denied/);
    } finally {
      await engine.destroy(c);
    }
  });
});
