// AddressPool, Container and VethPair through the real dynamic-provider host against lab hosts: lifecycles,
// reachability, isolation, drift and repair, parallel creates, cross-pool clashes, hostile input, secrets.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { h1, h3, key, connection, nixosInputs, profileGenerations, reachable } from "./fixture";
import { CheckFailedError, MiniEngine, StateEntry } from "../harness/engine";
import { closeAll } from "../harness/providerHost";
import { HOSTILE } from "../fixtures/hostile";
import { LabHost, labExec, labExecOk } from "../lab/labHosts";

let engine: MiniEngine;
beforeAll(async () => {
  engine = await MiniEngine.start();
});
afterAll(async () => {
  await closeAll();
});

/** What the host has for a container: namespace, host link, addresses, routes, conf. */
function onHost(host: LabHost, name: string) {
  const netns = labExecOk(host, ["ip", "netns", "list"]);
  const links = labExecOk(host, ["ip", "-o", "link", "show"]);
  const addrs = labExecOk(host, ["ip", "-o", "-4", "addr", "show"]);
  const routes = labExecOk(host, ["ip", "-4", "route", "show"]);
  const conf = labExec(host, ["cat", `/etc/nixos-containers/${name}.conf`]);
  return {
    netns: netns.split("\n").some((l) => l.split(" ")[0] === name),
    link: links.includes(` ve-${name}@`) || links.includes(` ve-${name}:`),
    addrs,
    routes,
    conf: conf.code === 0 ? conf.stdout : undefined,
  };
}

describe("AddressPool", () => {
  it("allocates at check (known at preview), keeps addresses when members change, and stores them", async () => {
    const inputs = await engine.check("AddressPool", "pool", { members: ["web", "db"] });
    expect(inputs.allocations).toEqual({
      web: { hostAddress: "10.233.1.1", localAddress: "10.233.1.2" },
      db: { hostAddress: "10.233.2.1", localAddress: "10.233.2.2" },
    });
    const pool = await engine.create("AddressPool", "pool", { members: ["web", "db"] });
    expect(pool.outs.allocations).toEqual(inputs.allocations);
    expect(await engine.up(pool, { members: ["db", "cache"] })).toBe("updated");
    expect(pool.outs.allocations).toEqual({
      db: { hostAddress: "10.233.2.1", localAddress: "10.233.2.2" },
      // web's block stays free for one update: its container still exists until the engine deletes it.
      cache: { hostAddress: "10.233.3.1", localAddress: "10.233.3.2" },
    });
    expect(await engine.up(pool, { members: ["db", "cache"] })).toBe("same");
    expect(await engine.refresh(pool)).toBe(true);
    await engine.destroy(pool);
  });

  it("rejects a full pool with a message naming pool, capacity and members", async () => {
    const members = Array.from({ length: 3 }, (_, i) => `c${i}`);
    await expect(
      engine.check("AddressPool", "tiny", { cidr: "10.233.0.0/30", blockPrefixLength: 31, members }),
    ).rejects.toThrow(/10\.233\.0\.0\/30 is full.*c2/s);
  });
});

describe("Container (netns driver)", () => {
  let web: StateEntry | undefined;
  /** Inputs of the container "web" on h1, with block N's addresses (10.233.N.1 ↔ 10.233.N.2). */
  const webOn = (block: number) => ({
    connection: connection(h1),
    name: "web",
    driver: "netns",
    hostAddress: `10.233.${block}.1`,
    localAddress: `10.233.${block}.2`,
  });

  it("creates a container with its veth, addresses and routes, reachable both ways", async () => {
    web = await engine.create("Container", "web", webOn(1));
    expect(web.outs).toMatchObject({
      hostInterface: "ve-web",
      containerInterface: "eth0",
      hostAddress: "10.233.1.1",
      localAddress: "10.233.1.2",
      running: true,
      hostKeyFingerprint: h1.hostKeyFingerprint,
    });
    const seen = onHost(h1, "web");
    expect(seen.netns && seen.link).toBe(true);
    expect(seen.addrs).toMatch(/ve-web\s+inet 10\.233\.1\.1\/32/);
    expect(seen.routes).toMatch(/10\.233\.1\.2 dev ve-web/);
    expect(labExecOk(h1, ["ip", "netns", "exec", "web", "ip", "-4", "route", "show"])).toMatch(
      /default via 10\.233\.1\.1 dev eth0/,
    );
    expect(reachable(h1, undefined, "10.233.1.2")).toBe(true);
    expect(reachable(h1, "web", "10.233.1.1")).toBe(true);
  });

  it("keeps a firewall rule set inside the container off the host", () => {
    labExecOk(h1, ["ip", "netns", "exec", "web", "nft", "add", "table", "inet", "insidecontainer"]);
    expect(labExecOk(h1, ["ip", "netns", "exec", "web", "nft", "list", "tables"])).toContain(
      "insidecontainer",
    );
    expect(labExecOk(h1, ["nft", "list", "tables"])).not.toContain("insidecontainer");
  });

  it("reports no change when nothing changed, and an in-place update when only the provider code changed", async () => {
    if (!web) throw new Error("create failed");
    const news = webOn(1);
    const same = await engine.plan(web, news);
    expect(same.diff).toMatchObject({ changes: false, replaces: [] });
    const stale = { ...web, outs: { ...web.outs, __provider: "exports.handler = {} // older code" } };
    const codeOnly = await engine.host.diff(stale.urn, stale.id, stale.outs, same.inputs);
    expect(codeOnly).toMatchObject({ changes: true, replaces: [] });
  });

  it("plans exact replaces: a new name replaces (delete first), new addresses update in place", async () => {
    if (!web) throw new Error("create failed");
    const base = webOn(1);
    expect((await engine.plan(web, { ...base, name: "web2" })).diff).toMatchObject({
      replaces: ["name"],
      deleteBeforeReplace: true,
    });
    expect((await engine.plan(web, { ...base, driver: "nixos" })).diff).toMatchObject({
      replaces: ["driver"],
      deleteBeforeReplace: true,
    });
    expect((await engine.plan(web, { ...base, connection: connection(h3) })).diff).toMatchObject({
      replaces: ["connection"],
      deleteBeforeReplace: false,
    });
    expect(
      (await engine.plan(web, { ...base, connection: { ...connection(h1), user: "root" } })).diff.replaces,
    ).toEqual([]);
    expect(
      (await engine.plan(web, { ...base, hostAddress: "10.233.9.1", localAddress: "10.233.9.2" })).diff,
    ).toMatchObject({
      changes: true,
      replaces: [],
    });
  });

  it("updates addresses in place", async () => {
    if (!web) throw new Error("create failed");
    const news = webOn(9);
    expect(await engine.up(web, news)).toBe("updated");
    expect(web.outs).toMatchObject({ hostAddress: "10.233.9.1", localAddress: "10.233.9.2", running: true });
    expect(onHost(h1, "web").addrs).toMatch(/ve-web\s+inet 10\.233\.9\.1\/32/);
    expect(onHost(h1, "web").addrs).not.toMatch(/10\.233\.1\.1/);
    expect(reachable(h1, undefined, "10.233.9.2")).toBe(true);
  });

  it("finds an address removed by hand (refresh), and the next up restores it", async () => {
    if (!web) throw new Error("create failed");
    labExecOk(h1, ["ip", "netns", "exec", "web", "ip", "addr", "flush", "dev", "eth0"]);
    expect(await engine.refresh(web)).toBe(true);
    expect(web.outs.running).toBe(false);
    const news = webOn(9);
    expect(await engine.up(web, news)).toBe("updated");
    expect(web.outs.running).toBe(true);
    expect(reachable(h1, undefined, "10.233.9.2")).toBe(true);
  });

  it("finds a namespace removed by hand (refresh drops it), and the next up creates it again", async () => {
    if (!web) throw new Error("create failed");
    labExecOk(h1, ["ip", "netns", "del", "web"]);
    expect(await engine.refresh(web)).toBe(false);
    web = await engine.create("Container", "web", webOn(9));
    expect(web.outs.running).toBe(true);
    expect(reachable(h1, "web", "10.233.9.1")).toBe(true);
  });

  it("deletes everything it made, and deleting again succeeds", async () => {
    if (!web) throw new Error("create failed");
    await engine.destroy(web);
    const seen = onHost(h1, "web");
    expect(seen.netns || seen.link).toBe(false);
    expect(seen.addrs).not.toMatch(/10\.233\./);
    expect(seen.routes).not.toMatch(/10\.233\./);
    await engine.destroy(web);
  });

  it("allocates on the host when no addresses are given, and keeps them in state", async () => {
    const auto = await engine.create("Container", "auto", {
      connection: connection(h1),
      name: "auto",
      driver: "netns",
    });
    try {
      expect(auto.outs).toMatchObject({
        hostAddress: "10.233.1.1",
        localAddress: "10.233.1.2",
        allocatedOnHost: true,
      });
      expect(await engine.up(auto, { connection: connection(h1), name: "auto", driver: "netns" })).toBe(
        "same",
      );
    } finally {
      await engine.destroy(auto);
    }
  });
});

describe("Container (nixos driver, the lab's stand-in nixos-container)", () => {
  it("names boot.enableContainers when the host has no nixos-container, and never reports a delete done while a conf stays", async () => {
    const inputs = {
      connection: connection(h1),
      name: "nonix",
      driver: "nixos",
      hostAddress: "10.233.57.1",
      localAddress: "10.233.57.2",
    };
    await expect(engine.create("Container", "nonix", inputs)).rejects.toThrow(
      /lacks the "nixos-container" command.*boot\.enableContainers = true;/s,
    );
    expect(onHost(h1, "nonix")).toMatchObject({ netns: false, link: false, conf: undefined });

    const c = await engine.create("Container", "gone", {
      ...inputs,
      connection: connection(h3),
      name: "gone",
    });
    const tool = labExecOk(h3, ["sh", "-c", "command -v nixos-container"]).trim();
    labExecOk(h3, ["mount", "--bind", "/dev/null", tool]);
    try {
      await expect(engine.destroy(c)).rejects.toThrow(
        /cannot be deleted.*lacks the "nixos-container" command.*boot\.enableContainers/s,
      );
      expect(onHost(h3, "gone").conf).toContain("HOST_ADDRESS=10.233.57.1");
    } finally {
      labExecOk(h3, ["umount", tool]);
    }
    await engine.destroy(c);
    expect(onHost(h3, "gone").conf).toBeUndefined();
  });

  it("finds a live address changed by hand (refresh: not running) and the next up restarts it as configured", async () => {
    const inputs = nixosInputs(h3, "drift", 59);
    const c = await engine.create("Container", "drift", inputs);
    try {
      labExecOk(h3, ["ip", "addr", "flush", "dev", "ve-drift"]);
      labExecOk(h3, ["ip", "addr", "add", "10.233.59.9/32", "dev", "ve-drift"]);
      expect(await engine.refresh(c)).toBe(true);
      expect(c.outs.running).toBe(false);
      expect(await engine.up(c, inputs)).toBe("updated");
      expect(c.outs.running).toBe(true);
      expect(labExecOk(h3, ["ip", "-o", "-4", "addr", "show", "dev", "ve-drift"])).toContain(
        "10.233.59.1/32",
      );
    } finally {
      await engine.destroy(c);
    }
  });

  it("refuses what nixos-container would get silently wrong: a missing configFile, an empty conf on the host", async () => {
    const base = nixosInputs(h3, "chk", 60);
    await expect(
      engine.create("Container", "chk", { ...base, configFile: "/nonexistent/dir/web.nix" }),
    ).rejects.toThrow(
      /configFile \/nonexistent\/dir\/web\.nix does not exist on the host.*Nothing was changed/s,
    );
    labExecOk(h3, ["sh", "-c", ": > /etc/nixos-containers/stray.conf"]);
    try {
      await expect(engine.create("Container", "chk", base)).rejects.toThrow(
        /\/etc\/nixos-containers\/stray\.conf is empty.*Nothing was changed/s,
      );
    } finally {
      labExecOk(h3, ["rm", "-f", "/etc/nixos-containers/stray.conf"]);
    }
    expect(onHost(h3, "chk").conf).toBeUndefined();
  });

  it("restarts nothing for an autoStart-only change, and builds again only when the config changes", async () => {
    const base = nixosInputs(h3, "quiet", 61, { config: "{ services.nginx.enable = true; }" });
    const c = await engine.create("Container", "quiet", base);
    // The container's leader PID changes with every start; the profile gains a generation with every build.
    const leader = () => labExecOk(h3, ["machinectl", "show", "quiet", "-p", "Leader", "--value"]).trim();
    const built = () => profileGenerations(h3, "quiet");
    const wantsLink = "/etc/systemd/system.control/machines.target.wants/container@quiet.service";
    try {
      const [pid, before] = [leader(), built()];
      expect(before).toBe(1);
      expect(await engine.up(c, { ...base, autoStart: true })).toBe("updated");
      expect(labExecOk(h3, ["cat", "/etc/nixos-containers/quiet.conf"])).toContain("AUTO_START=1");
      // autoStart is real: machines.target wants the unit at boot (nothing reads an imperative AUTO_START).
      expect(labExecOk(h3, ["readlink", wantsLink]).trim()).toBe("/etc/systemd/system/container@.service");
      expect(c.outs.autoStart).toBe(true);
      expect(leader()).toBe(pid);
      expect(built()).toBe(before);
      // Drift: the link removed by hand shows at refresh, and the next up puts it back.
      labExecOk(h3, ["rm", wantsLink]);
      expect(await engine.refresh(c)).toBe(true);
      expect(c.outs.autoStart).toBe(false);
      expect(await engine.up(c, { ...base, autoStart: true })).toBe("updated");
      expect(labExec(h3, ["test", "-L", wantsLink]).code).toBe(0);
      expect(
        await engine.up(c, { ...base, autoStart: true, config: "{ services.postgresql.enable = true; }" }),
      ).toBe("updated");
      expect(labExecOk(h3, ["cat", "/var/lib/nixos-containers/quiet/etc/nixos/configuration.nix"])).toContain(
        "services.postgresql.enable",
      );
      expect(built()).toBe(2);
      expect(c.outs.running).toBe(true);
    } finally {
      await engine.destroy(c);
    }
    expect(labExec(h3, ["test", "-e", wantsLink]).code).not.toBe(0);
  });

  it("refuses to adopt or change a declarative container (its conf is a link NixOS manages), leaving the link", async () => {
    labExecOk(h3, [
      "sh",
      "-c",
      // Like NixOS: the conf links into the store, mounted read-only.
      "mkdir -p /run/pnc-test-store && mount -t tmpfs pnc-test-store /run/pnc-test-store && printf 'PRIVATE_NETWORK=1\\nHOST_ADDRESS=10.233.62.1\\nLOCAL_ADDRESS=10.233.62.2\\n' > /run/pnc-test-store/dcl.conf && mount -o remount,ro /run/pnc-test-store && ln -s /run/pnc-test-store/dcl.conf /etc/nixos-containers/dcl.conf",
    ]);
    try {
      await expect(
        engine.create("Container", "dcl", {
          connection: connection(h3),
          name: "dcl",
          driver: "nixos",
          adopt: true,
        }),
      ).rejects.toThrow(
        /container dcl is declarative.*containers\.dcl in the host's NixOS configuration.*Nothing was changed/s,
      );
      expect(labExecOk(h3, ["readlink", "/etc/nixos-containers/dcl.conf"]).trim()).toBe(
        "/run/pnc-test-store/dcl.conf",
      );
    } finally {
      labExec(h3, [
        "sh",
        "-c",
        "rm -f /etc/nixos-containers/dcl.conf; umount /run/pnc-test-store; rmdir /run/pnc-test-store",
      ]);
    }
  });

  it("switches a container made from a flake to a config (nixos-container itself cannot: no etc/nixos)", async () => {
    const base = nixosInputs(h3, "fl2c", 58);
    const c = await engine.create("Container", "fl2c", { ...base, flake: "github:acme/infra#web" });
    try {
      expect(await engine.up(c, { ...base, config: "{ services.nginx.enable = true; }" })).toBe("updated");
      expect(labExecOk(h3, ["cat", "/var/lib/nixos-containers/fl2c/etc/nixos/configuration.nix"])).toContain(
        "services.nginx.enable = true;",
      );
      expect(c.outs.running).toBe(true);
    } finally {
      await engine.destroy(c);
    }
  });

  it("creates through nixos-container with our addresses, reads status and conf, and destroys", async () => {
    const db = await engine.create(
      "Container",
      "db",
      nixosInputs(h3, "db", 5, { config: "{ services.postgresql.enable = true; }" }),
    );
    expect(db.outs).toMatchObject({
      running: true,
      confPath: "/etc/nixos-containers/db.conf",
      hostInterface: "ve-db",
    });
    const conf = onHost(h3, "db").conf ?? "";
    expect(conf).toContain("HOST_ADDRESS=10.233.5.1\nLOCAL_ADDRESS=10.233.5.2\n");
    expect(reachable(h3, undefined, "10.233.5.2")).toBe(true);
    expect(labExecOk(h3, ["nixos-container", "status", "db"]).trim()).toBe("up");

    // Drift: stopped by hand → refresh reports it → up starts it again.
    labExecOk(h3, ["nixos-container", "stop", "db"]);
    expect(await engine.refresh(db)).toBe(true);
    expect(db.outs.running).toBe(false);
    const news = nixosInputs(h3, "db", 5, { config: "{ services.postgresql.enable = true; }" });
    expect(await engine.up(db, news)).toBe("updated");
    expect(labExecOk(h3, ["nixos-container", "status", "db"]).trim()).toBe("up");

    // New addresses in place: the conf is rewritten and the container restarted with them.
    const moved = { ...news, hostAddress: "10.233.6.1", localAddress: "10.233.6.2" };
    expect((await engine.plan(db, moved)).diff).toMatchObject({ changes: true, replaces: [] });
    expect(await engine.up(db, moved)).toBe("updated");
    expect(onHost(h3, "db").conf).toContain("HOST_ADDRESS=10.233.6.1\nLOCAL_ADDRESS=10.233.6.2\n");
    expect(reachable(h3, undefined, "10.233.6.2")).toBe(true);
    expect(reachable(h3, undefined, "10.233.5.2")).toBe(false);
    // A new configuration goes through `nixos-container update`.
    expect(await engine.up(db, { ...moved, config: "{ services.redis.servers.main.enable = true; }" })).toBe(
      "updated",
    );
    expect(labExecOk(h3, ["cat", "/var/lib/nixos-containers/db/etc/nixos/configuration.nix"])).toContain(
      "redis",
    );

    await engine.destroy(db);
    expect(onHost(h3, "db")).toMatchObject({ netns: false, link: false, conf: undefined });
    expect(labExec(h3, ["nixos-container", "status", "db"]).code).not.toBe(0);
    await engine.destroy(db);
  });

  it("fails clearly when a hand-made container holds the address, changing nothing", async () => {
    labExecOk(h3, [
      "nixos-container",
      "create",
      "manual",
      "--host-address",
      "10.233.7.1",
      "--local-address",
      "10.233.7.2",
    ]);
    try {
      const before = onHost(h3, "clash");
      await expect(
        engine.create("Container", "clash", {
          connection: connection(h3),
          name: "clash",
          driver: "netns",
          hostAddress: "10.233.7.1",
          localAddress: "10.233.7.2",
        }),
      ).rejects.toThrow(/10\.233\.7\.1 is already held by nixos container "manual".*Nothing was changed/s);
      expect(onHost(h3, "clash")).toEqual(before);
    } finally {
      labExecOk(h3, ["nixos-container", "destroy", "manual"]);
    }
  });
});

describe("many containers", () => {
  it("creates 20 containers in parallel on one host with distinct addresses, then deletes them all", async () => {
    const names = Array.from({ length: 20 }, (_, i) => `p${i}`);
    const pool = await engine.create("AddressPool", "par", {
      members: names,
      cidr: "10.233.0.0/16",
      blockPrefixLength: 30,
    });
    const allocations = pool.outs.allocations as Record<
      string,
      { hostAddress: string; localAddress: string }
    >;
    const entries = await Promise.all(
      names.map((n) =>
        engine.create("Container", n, {
          connection: connection(h1),
          name: n,
          driver: "netns",
          ...allocations[n],
        }),
      ),
    );
    const locals = entries.map((e) => e.outs.localAddress);
    expect(new Set(locals).size).toBe(20);
    const netns = labExecOk(h1, ["ip", "netns", "list"]);
    for (const n of names) expect(netns).toMatch(new RegExp(`^${n}( |$)`, "m"));
    expect(reachable(h1, "p19", allocations.p19.hostAddress)).toBe(true);

    // A second pool (another stack) hands out an address already taken on this host: refused, nothing changed.
    const other = await engine.create("AddressPool", "other", {
      members: ["intruder"],
      blockPrefixLength: 30,
    });
    const taken = (other.outs.allocations as Record<string, { hostAddress: string; localAddress: string }>)
      .intruder;
    expect(taken).toEqual(allocations.p0);
    const before = onHost(h1, "intruder");
    await expect(
      engine.create("Container", "intruder", {
        connection: connection(h1),
        name: "intruder",
        driver: "netns",
        ...taken,
      }),
    ).rejects.toThrow(
      new RegExp(
        `address ${taken.hostAddress.replace(/\./g, "\\.")} is already held by host interface ve-p0`,
      ),
    );
    expect(onHost(h1, "intruder")).toEqual(before);

    await Promise.all(entries.map((e) => engine.destroy(e)));
    expect(labExecOk(h1, ["ip", "netns", "list"])).not.toMatch(/^p\d+/m);
    expect(labExecOk(h1, ["ip", "-o", "-4", "addr", "show"])).not.toMatch(/10\.233\./);
  });
});

describe("VethPair", () => {
  it("adds an extra veth to a running container, updates it in place, finds it gone, and removes it", async () => {
    const app = await engine.create("Container", "app", {
      connection: connection(h1),
      name: "app",
      driver: "netns",
      hostAddress: "10.233.3.1",
      localAddress: "10.233.3.2",
    });
    try {
      const args = {
        connection: connection(h1),
        container: "app",
        hostInterface: "vx-app",
        containerInterface: "eth1",
        hostAddress: "10.234.0.1",
        localAddress: "10.234.0.2",
      };
      const veth = await engine.create("VethPair", "extra", args);
      expect(veth.outs.present).toBe(true);
      expect(reachable(h1, undefined, "10.234.0.2")).toBe(true);
      expect(reachable(h1, "app", "10.234.0.1")).toBe(true);

      expect((await engine.plan(veth, { ...args, containerInterface: "eth2" })).diff).toMatchObject({
        replaces: ["containerInterface"],
        deleteBeforeReplace: true,
      });
      expect(await engine.up(veth, { ...args, hostAddress: "10.234.0.5", localAddress: "10.234.0.6" })).toBe(
        "updated",
      );
      expect(reachable(h1, undefined, "10.234.0.6")).toBe(true);

      labExecOk(h1, ["ip", "link", "del", "vx-app"]);
      expect(await engine.refresh(veth)).toBe(false);
      await engine.destroy(veth);
      expect(labExecOk(h1, ["ip", "-o", "link", "show"])).not.toContain("vx-app");
    } finally {
      await engine.destroy(app);
    }
  });
});

describe("hostile input", () => {
  it("rejects every injection payload in every string input at check, and no canary file appears", async () => {
    const canary = "/tmp/pnc-canary";
    labExec(h1, ["rm", "-f", canary]);
    const payloads = HOSTILE.filter((p) => !/^[a-z][a-z0-9-]{0,10}$/.test(p)).concat([
      "web; touch /tmp/pnc-canary",
      "$(touch /tmp/pnc-canary)",
      "`touch /tmp/pnc-canary`",
      "x\ntouch /tmp/pnc-canary",
    ]);
    const base = {
      connection: connection(h1),
      name: "ok",
      driver: "netns",
      hostAddress: "10.233.1.1",
      localAddress: "10.233.1.2",
    };
    const fields: [string, (p: string) => Record<string, unknown>][] = [
      ["name", (p) => ({ ...base, name: p })],
      ["driver", (p) => ({ ...base, driver: p })],
      ["hostAddress", (p) => ({ ...base, hostAddress: p })],
      ["localAddress", (p) => ({ ...base, localAddress: p })],
      ["connection", (p) => ({ ...base, connection: { ...connection(h1), host: p } })],
      ["connection", (p) => ({ ...base, connection: { ...connection(h1), user: p } })],
      ["flake", (p) => ({ ...base, driver: "nixos", flake: p })],
      ["configFile", (p) => ({ ...base, driver: "nixos", configFile: p })],
    ];
    // A flake reference may legitimately hold "~", "?", "#" or "=": for it only payloads a shell would act on.
    const shellish = /[\s$`'"\\;|&<>*(){}[\]!\u0000-\u001f]|^-/;
    for (const [property, make] of fields) {
      for (const payload of payloads.filter((p) => property !== "flake" || shellish.test(p))) {
        const err = await engine.check("Container", "ok", make(payload)).then(
          () => undefined,
          (e: unknown) => e,
        );
        if (!(err instanceof CheckFailedError))
          throw new Error(`${property}=${JSON.stringify(payload)} passed check`);
        expect(err.failures.map((f) => f.property)).toContain(property);
      }
    }
    const vethBase = {
      connection: connection(h1),
      container: "ok",
      hostInterface: "vx-ok",
      containerInterface: "eth1",
      hostAddress: "10.234.0.1",
      localAddress: "10.234.0.2",
    };
    for (const property of [
      "container",
      "hostInterface",
      "containerInterface",
      "hostAddress",
      "localAddress",
    ]) {
      for (const payload of payloads.filter((p) => !/^[A-Za-z0-9_.-]{1,15}$/.test(p))) {
        const err = await engine.check("VethPair", "v", { ...vethBase, [property]: payload }).then(
          () => undefined,
          (e: unknown) => e,
        );
        if (!(err instanceof CheckFailedError))
          throw new Error(`VethPair ${property}=${JSON.stringify(payload)} passed check`);
      }
    }
    expect(labExec(h1, ["test", "-e", canary]).code).not.toBe(0);
  });
});

describe("secrets", () => {
  it("keeps the private key out of every output but connection, out of errors and out of the provider's logs", async () => {
    const c = await engine.create("Container", "sec", {
      connection: connection(h1),
      name: "sec",
      driver: "netns",
      hostAddress: "10.233.4.1",
      localAddress: "10.233.4.2",
    });
    const keyBody = key.split("\n")[1];
    const { connection: _conn, ...rest } = c.outs;
    expect(JSON.stringify(rest)).not.toContain(keyBody);
    // A failing create (clash) must not echo the key either.
    const err = await engine
      .create("Container", "sec2", {
        connection: connection(h1),
        name: "sec2",
        driver: "netns",
        hostAddress: "10.233.4.1",
        localAddress: "10.233.4.2",
      })
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    expect(err?.message).toMatch(/already held/);
    expect(err?.message).not.toContain(keyBody);
    await engine.destroy(c);
    expect(engine.host.logs().join("\n")).not.toContain(keyBody);
  });
});
