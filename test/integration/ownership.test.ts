// Never touch what we did not make, through the real provider host on lab hosts: a hand-made container of our
// name survives a cut-off create, the next `up` and a delete; a cut-off create that got past its checks comes
// back with the addresses the host picked; another stack's failed NatRule of the same name leaves the first
// one's rules, record and forwarding alone; a VethPair update onto a taken address changes nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connection, cutOffCreate, h1, h2, h3, holdLock, until } from "./fixture";
import { MiniEngine } from "../harness/engine";
import { closeAll, revealMap } from "../harness/providerHost";
import { LabHost, labExec, labExecOk, restartSshd } from "../lab/labHosts";

let engine: MiniEngine;
beforeAll(async () => {
  engine = await MiniEngine.start();
});
afterAll(async () => {
  await closeAll();
});

/** The next `up` of a cut-off create (the engine forces an update), then `pulumi destroy` of it. */
async function upThenDestroy(
  type: "Container",
  name: string,
  inputs: Record<string, unknown>,
  init: { id: string; properties: Record<string, unknown> },
) {
  const urn = engine.urn(type, name);
  const checked = await engine.check(type, name, inputs, init.properties);
  const up = await engine.host.update(urn, init.id, init.properties, checked).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  await engine.host.delete(urn, init.id, init.properties);
  return up;
}

describe("a hand-made container of the same name", () => {
  const cases: [string, LabHost, string, () => void, () => void, () => string][] = [
    [
      "netns",
      h1,
      "hm1",
      () => {
        for (const argv of [
          ["ip", "netns", "add", "hm1"],
          ["ip", "link", "add", "ve-hm1", "type", "veth", "peer", "name", "eth0", "netns", "hm1"],
          ["ip", "addr", "add", "10.233.47.1/32", "dev", "ve-hm1"],
          ["mkdir", "-p", "/var/lib/hm1-root"],
          ["sh", "-c", "echo mine > /var/lib/hm1-root/keep"],
        ])
          labExecOk(h1, argv);
      },
      () => {
        labExec(h1, ["ip", "link", "del", "ve-hm1"]);
        labExec(h1, ["ip", "netns", "del", "hm1"]);
        labExec(h1, ["rm", "-rf", "/var/lib/hm1-root"]);
      },
      () =>
        [
          labExecOk(h1, ["ip", "netns", "list"]).match(/^hm1\b/m)?.[0] ?? "",
          labExecOk(h1, ["ip", "-o", "-4", "addr", "show", "dev", "ve-hm1"]).includes("10.233.47.1")
            ? "addr"
            : "",
          labExecOk(h1, ["cat", "/var/lib/hm1-root/keep"]),
        ].join(" "),
    ],
    [
      "nixos",
      h3,
      "hm2",
      () => {
        labExecOk(h3, [
          "nixos-container",
          "create",
          "hm2",
          "--host-address",
          "10.233.47.1",
          "--local-address",
          "10.233.47.2",
        ]);
        labExecOk(h3, ["sh", "-c", "echo mine > /var/lib/nixos-containers/hm2/keep"]);
      },
      () => {
        labExec(h3, ["nixos-container", "destroy", "hm2"]);
      },
      () =>
        [
          labExecOk(h3, ["cat", "/etc/nixos-containers/hm2.conf"]).includes("HOST_ADDRESS=10.233.47.1")
            ? "conf"
            : "",
          labExecOk(h3, ["cat", "/var/lib/nixos-containers/hm2/keep"]),
        ].join(" "),
    ],
  ];

  it.each(cases)(
    "%s: survives a cut-off create of ours, the next up and the delete, its root untouched",
    async (driver, host, name, make, remove, looks) => {
      make();
      try {
        const before = looks();
        const inputs = {
          connection: connection(host),
          name,
          driver,
          hostAddress: "10.233.48.1",
          localAddress: "10.233.48.2",
        };
        const init = await cutOffCreate(engine, host, "Container", name, inputs);
        expect(init.properties).toMatchObject({
          createPending: true,
          owner: expect.stringMatching(/^[0-9a-f]{16}$/),
        });
        const up = await upThenDestroy("Container", name, inputs, init);
        // The next up found no marker of this create: it created afresh, and the name check refused.
        expect(up?.message).toMatch(/(already exists|of that name exists).*Nothing was changed on the host/s);
        expect(engine.host.logs().join("\n")).toMatch(
          new RegExp(`container "${name}" was dropped from the stack, but .* was left there: .*no marker`),
        );
        expect(looks()).toBe(before);
        expect(before).toContain("mine");
      } finally {
        remove();
      }
    },
  );
});

describe("a create cut off after its checks", () => {
  it("comes back with the addresses the host picked (read from our marker), and is finished by the next up", async () => {
    // A start that takes a while, so the connection can end while the create is past its checks.
    labExecOk(h3, ["cp", "/usr/local/bin/nixos-container", "/usr/local/bin/nixos-container.real"]);
    labExecOk(h3, [
      "sh",
      "-c",
      'printf \'#!/bin/sh\\n[ "$1" = start ] && sleep 3\\nexec /usr/local/bin/nixos-container.real "$@"\\n\' > /usr/local/bin/nixos-container.slow && chmod +x /usr/local/bin/nixos-container.slow && mount --bind /usr/local/bin/nixos-container.slow /usr/local/bin/nixos-container',
    ]);
    const inputs = { connection: connection(h3), name: "ca", driver: "nixos" };
    let id = "";
    let outs: Record<string, unknown> = {};
    try {
      const creating = engine.create("Container", "ca", inputs).then(
        () => undefined,
        (e: unknown) => e,
      );
      await until(
        "the conf is written",
        () => labExec(h3, ["test", "-f", "/etc/nixos-containers/ca.conf"]).code === 0,
      );
      restartSshd(h3, { dropSessions: true });
      const err = (await creating) as { initFailure?: { id: string; properties: Record<string, unknown> } };
      const init = err.initFailure;
      if (!init) throw new Error(`no init error: ${String(err)}`);
      const recorded = revealMap(init.properties as never);
      expect(recorded.hostAddress).toBeUndefined();
      const conf = labExecOk(h3, ["cat", "/etc/nixos-containers/ca.conf"]);
      const picked = /^HOST_ADDRESS=(\S+)$/m.exec(conf)?.[1];
      expect(picked).toMatch(/^10\.233\.\d+\.1$/);
      // The create got past its checks: our marker is there, with the addresses the host picked.
      const marker = labExecOk(h3, ["cat", "/var/lib/pulumi-nixos-containers/owners/container-ca"]);
      expect(marker.split("\n")[0]).toBe(recorded.owner);
      expect(marker).toContain(`hostAddress=${picked}`);
      id = init.id;
      const checked = await engine.check("Container", "ca", inputs, recorded);
      outs = revealMap((await engine.host.update(engine.urn("Container", "ca"), id, recorded, checked)).outs);
      expect(outs).toMatchObject({ hostAddress: picked, running: true, allocatedOnHost: true });
      expect(outs.createPending).toBeUndefined();
    } finally {
      labExec(h3, ["umount", "/usr/local/bin/nixos-container"]);
      labExec(h3, ["rm", "-f", "/usr/local/bin/nixos-container.slow", "/usr/local/bin/nixos-container.real"]);
      if (id) await engine.host.delete(engine.urn("Container", "ca"), id, outs);
      labExec(h3, ["nixos-container", "destroy", "ca"]);
    }
    expect(labExec(h3, ["test", "-e", "/etc/nixos-containers/ca.conf"]).code).not.toBe(0);
  });
});

describe("another stack's NatRule of the same name", () => {
  it("fails (missing nft, lock timeout) without touching the first stack's rules, record or forwarding", async () => {
    const other = await MiniEngine.start();
    const inputs = { connection: connection(h1), name: "shared", externalInterface: "eth0" };
    const first = await engine.create("NatRule", "shared", inputs);
    const intact = () => ({
      table: labExec(h1, ["nft", "list", "table", "ip", "pnc-nat-shared"]).stdout,
      record: labExec(h1, ["test", "-f", "/var/lib/pulumi-nixos-containers/nat/shared.rule"]).code,
      marker: labExec(h1, ["head", "-1", "/var/lib/pulumi-nixos-containers/owners/nat-shared"]).stdout.trim(),
      forwarding: labExecOk(h1, ["cat", "/proc/sys/net/ipv4/conf/all/forwarding"]).trim(),
    });
    try {
      const before = intact();
      expect(before).toMatchObject({ record: 0, marker: first.outs.owner, forwarding: "1" });
      expect(before.table).toContain("masquerade");

      const nft = labExecOk(h1, ["sh", "-c", "command -v nft"]).trim();
      labExecOk(h1, ["mount", "--bind", "/dev/null", nft]);
      try {
        await expect(other.create("NatRule", "shared", inputs)).rejects.toThrow(/lacks the "nft" command/);
      } finally {
        labExecOk(h1, ["umount", nft]);
      }
      expect(intact()).toEqual(before);

      const holder = holdLock(h1, 5);
      try {
        await until(
          "the lock is held",
          () => labExec(h1, ["flock", "-n", "/run/pulumi-nixos-containers/lock", "true"]).code !== 0,
        );
        await expect(
          other.create("NatRule", "shared", { ...inputs, timeouts: { create: 4 } }),
        ).rejects.toThrow(/timed out after 3 s/);
      } finally {
        holder.kill("SIGKILL");
      }
      await until(
        "the lock is free",
        () => labExec(h1, ["flock", "-n", "/run/pulumi-nixos-containers/lock", "true"]).code === 0,
      );
      expect(intact()).toEqual(before);
      // And once the lock is free, the name check refuses it: the first stack's NatRule holds the name.
      await expect(other.create("NatRule", "shared", inputs)).rejects.toThrow(
        /already on the host.*Nothing was changed/s,
      );
      expect(intact()).toEqual(before);
    } finally {
      await engine.destroy(first);
      await other.close();
    }
    expect(labExec(h1, ["nft", "list", "table", "ip", "pnc-nat-shared"]).code).not.toBe(0);
  });
});

describe("VethPair addresses", () => {
  it("an update onto a taken address is refused with nothing changed; a bridged veth's address counts as taken", async () => {
    const c = await engine.create("Container", "vo", {
      connection: connection(h1),
      name: "vo",
      driver: "netns",
      hostAddress: "10.233.49.1",
      localAddress: "10.233.49.2",
    });
    labExecOk(h1, ["ip", "link", "add", "br-vo", "type", "bridge"]);
    const made = [c];
    try {
      const args = {
        connection: connection(h1),
        container: "vo",
        hostInterface: "vx-vo",
        containerInterface: "eth1",
        hostAddress: "10.234.49.1",
        localAddress: "10.234.49.2",
      };
      const v = await engine.create("VethPair", "vo-v", args);
      made.push(v);
      const before = labExecOk(h1, ["ip", "-o", "-4", "addr", "show", "dev", "vx-vo"]);
      // 10.233.49.1 is the container's own host address, on ve-vo.
      await expect(engine.up(v, { ...args, hostAddress: "10.233.49.1" })).rejects.toThrow(
        /address 10\.233\.49\.1 is already held by host interface ve-vo.*Nothing was changed/s,
      );
      expect(labExecOk(h1, ["ip", "-o", "-4", "addr", "show", "dev", "vx-vo"])).toBe(before);

      const bridged = await engine.create("VethPair", "vo-b", {
        connection: connection(h1),
        container: "vo",
        hostInterface: "vb-vo",
        containerInterface: "eth2",
        hostBridge: "br-vo",
        localAddress: "192.168.77.5/24",
      });
      made.push(bridged);
      // Only inside the namespace (no host route): seen through the address record of the bridged veth.
      await expect(
        engine.create("Container", "vo2", {
          connection: connection(h1),
          name: "vo2",
          driver: "netns",
          hostAddress: "192.168.77.1",
          localAddress: "192.168.77.5",
        }),
      ).rejects.toThrow(
        /192\.168\.77\.5 is already held by veth vb-vo in container vo.*Nothing was changed/s,
      );
    } finally {
      for (const entry of made.reverse()) await engine.destroy(entry);
      labExec(h1, ["ip", "link", "del", "br-vo"]);
    }
  });
});

describe("a create that fails in nixos-container's build", () => {
  it("leaves no conf behind (the rollback is armed before create), so the next up creates it", async () => {
    const inputs = {
      connection: connection(h3),
      name: "flk",
      driver: "nixos",
      flake: "github:acme/infra#web",
      hostAddress: "10.233.53.1",
      localAddress: "10.233.53.2",
    };
    labExecOk(h3, [
      "sh",
      "-c",
      "mkdir -p /etc/nixos-container-stand-in && touch /etc/nixos-container-stand-in/fail-flake-builds",
    ]);
    try {
      await expect(engine.create("Container", "flk", inputs)).rejects.toThrow(
        /What this run had made was removed again.*failed to build container from flake/s,
      );
      expect(labExec(h3, ["test", "-e", "/etc/nixos-containers/flk.conf"]).code).not.toBe(0);
      expect(
        labExec(h3, ["test", "-e", "/var/lib/pulumi-nixos-containers/owners/container-flk"]).code,
      ).not.toBe(0);
    } finally {
      labExec(h3, ["rm", "-f", "/etc/nixos-container-stand-in/fail-flake-builds"]);
    }
    const c = await engine.create("Container", "flk", inputs);
    expect(c.outs).toMatchObject({ running: true, hostAddress: "10.233.53.1" });
    await engine.destroy(c);
  });
});

describe("a 200 KiB NixOS config", () => {
  it("goes through, beside other operations sent at the same time, and its module file goes with the container", async () => {
    // 200 KiB of configuration text: more than one command argument (128 KiB) can hold.
    const padding = Array.from(
      { length: 3200 },
      (_, i) => `  # padding line ${String(i).padStart(5, "0")} ${"x".repeat(40)}`,
    );
    const config = `services.nginx.enable = true;\n${padding.join("\n")}\n`;
    expect(Buffer.byteLength(config)).toBeGreaterThan(200 * 1024);
    const inputs = {
      connection: connection(h3),
      name: "big",
      driver: "nixos",
      config,
      hostAddress: "10.233.54.1",
      localAddress: "10.233.54.2",
    };
    const other = {
      connection: connection(h3),
      name: "small",
      driver: "nixos",
      hostAddress: "10.233.55.1",
      localAddress: "10.233.55.2",
    };
    const [big, small] = await Promise.all([
      engine.create("Container", "big", inputs),
      engine.create("Container", "small", other),
    ]);
    try {
      expect(big.outs).toMatchObject({ running: true, hostAddress: "10.233.54.1" });
      expect(small.outs).toMatchObject({ running: true });
      const module = labExecOk(h3, ["cat", "/var/lib/pulumi-nixos-containers/configs/big.nix"]);
      expect(module).toContain("services.nginx.enable = true;");
      expect(module).toContain("padding line 03199");
      expect(labExecOk(h3, ["cat", "/var/lib/nixos-containers/big/etc/nixos/configuration.nix"])).toContain(
        "/var/lib/pulumi-nixos-containers/configs/big.nix",
      );
    } finally {
      await engine.destroy(big);
      await engine.destroy(small);
    }
    expect(labExec(h3, ["test", "-e", "/var/lib/pulumi-nixos-containers/configs/big.nix"]).code).not.toBe(0);
  });
});

describe("an NmUnmanaged whose devices stay managed after the reload", () => {
  it("is recorded as made (init error), and the next up finishes it once nothing overrides it", async () => {
    const c = await engine.create("Container", "nmh", {
      connection: connection(h2),
      name: "nmh",
      driver: "netns",
      hostAddress: "10.233.56.1",
      localAddress: "10.233.56.2",
    });
    // A later drop-in that sets the whole list (ours appends) wins over ours: ve-nmh stays managed.
    const reset = "/etc/NetworkManager/conf.d/zz-reset-unmanaged.conf";
    labExecOk(h2, [
      "sh",
      "-c",
      `printf '[keyfile]\\nunmanaged-devices=interface-name:nothing-here\\n' > ${reset}`,
    ]);
    const inputs = { connection: connection(h2), name: "nmh" };
    const urn = engine.urn("NmUnmanaged", "nmh");
    let state: { id: string; properties: Record<string, unknown> } | undefined;
    try {
      const err = await engine.create("NmUnmanaged", "nmh", inputs).then(
        () => new Error("the create succeeded"),
        (e: unknown) => e as Error & { initFailure?: { id: string; properties: Record<string, unknown> } },
      );
      expect(err.message).toMatch(/these devices are still managed: ve-nmh/);
      if (!("initFailure" in err) || !err.initFailure) throw err;
      state = { id: err.initFailure.id, properties: revealMap(err.initFailure.properties as never) };
      expect(state.properties).toMatchObject({
        present: false,
        owner: expect.stringMatching(/^[0-9a-f]{16}$/),
      });

      labExecOk(h2, ["rm", "-f", reset]);
      const checked = await engine.check("NmUnmanaged", "nmh", inputs, state.properties);
      expect((await engine.host.diff(urn, state.id, state.properties, checked)).changes).toBe(true);
      const { outs } = await engine.host.update(urn, state.id, state.properties, checked);
      state = { id: state.id, properties: revealMap(outs) };
      expect(state.properties).toMatchObject({ present: true, unmanagedDevices: ["ve-nmh"] });
    } finally {
      labExec(h2, ["rm", "-f", reset]);
      if (state) await engine.host.delete(urn, state.id, state.properties);
      await engine.destroy(c);
    }
  });
});
