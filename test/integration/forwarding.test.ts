// NatRule on hosts whose forward path drops (Docker's FORWARD policy, NixOS's filterForward) and with
// loopbackIPs (NAT reflection, hairpin and loopback forwards), through the real provider host on lab host h1:
// real iptables and nftables, real traffic from the containers to the lab's WAN and back.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ask,
  connection,
  fromContainer,
  fromWan,
  h1,
  killStarted,
  serveInContainer,
  wanEchoPeer,
} from "./fixture";
import { MiniEngine, StateEntry } from "../harness/engine";
import { closeAll } from "../harness/providerHost";
import { labExec, labExecOk } from "../lab/labHosts";

let engine: MiniEngine;
const containers: StateEntry[] = [];
const base = { externalInterface: "eth0", internalIPs: ["10.233.0.0/16"] };

/** Both tables of iptables (without counters) and nft's ruleset: what a delete must leave as it found. */
function firewallDump(): string {
  const ipt = labExecOk(h1, ["iptables-save"])
    .replace(/^#.*$/gm, "")
    .replace(/\[\d+:\d+\]/g, "");
  const nft = labExecOk(h1, ["nft", "list", "ruleset"]).replace(/packets \d+ bytes \d+/g, "");
  return `${nft}\n---\n${ipt}`;
}

function routeLocalnet(device: string): string {
  return labExecOk(h1, ["cat", `/proc/sys/net/ipv4/conf/${device}/route_localnet`]).trim();
}

beforeAll(async () => {
  engine = await MiniEngine.start();
  for (const [name, block] of [
    ["fwa", 30],
    ["fwb", 31],
  ] as const) {
    containers.push(
      await engine.create("Container", name, {
        connection: connection(h1),
        name,
        driver: "netns",
        hostAddress: `10.233.${block}.1`,
        localAddress: `10.233.${block}.2`,
      }),
    );
  }
});

afterAll(async () => {
  killStarted();
  for (const c of containers) await engine.destroy(c);
  await closeAll();
});

describe("NatRule allowForward where Docker's FORWARD policy drops", () => {
  const docker = [
    ["iptables", "-w", "-P", "FORWARD", "DROP"],
    ["iptables", "-w", "-N", "DOCKER-USER"],
    ["iptables", "-w", "-A", "DOCKER-USER", "-j", "RETURN"],
    ["iptables", "-w", "-I", "FORWARD", "-j", "DOCKER-USER"],
  ];
  const undoDocker = (): void => {
    labExec(h1, ["iptables", "-w", "-P", "FORWARD", "ACCEPT"]);
    labExec(h1, ["iptables", "-w", "-D", "FORWARD", "-j", "DOCKER-USER"]);
    labExec(h1, ["iptables", "-w", "-F", "DOCKER-USER"]);
    labExec(h1, ["iptables", "-w", "-X", "DOCKER-USER"]);
    labExec(h1, ["nft", "delete", "table", "ip", "filter"]);
  };

  it("blocks the container without the option, opens the way with it, and deletes exactly its jump and chain", async () => {
    undoDocker();
    for (const argv of docker) labExecOk(h1, argv);
    try {
      await wanEchoPeer(9201);
      const before = firewallDump();
      const args = { connection: connection(h1), name: "dock", ...base };
      const nat = await engine.create("NatRule", "dock", args);
      expect(nat.outs.forwardBlockedBy).toEqual(["table ip filter chain FORWARD (policy drop)"]);
      expect(fromContainer(h1, "fwa", 9201).ok).toBe(false);

      const opened = {
        ...args,
        allowForward: true,
        forwardPorts: [{ sourcePort: 8081, destination: "10.233.30.2:80" }],
      };
      const checked = await engine.check("NatRule", "dock", opened);
      expect(checked.ruleset).toContain("-A pnc-nat-dock-fwd -i ve-+ -o eth0 -j ACCEPT");
      expect(await engine.up(nat, opened)).toBe("updated");
      expect(nat.outs.forwardBlockedBy).toEqual([]);
      expect(fromContainer(h1, "fwa", 9201)).toEqual({ ok: true, seenAs: h1.address });
      // Docker's advice: our jump goes first in DOCKER-USER, and FORWARD is left as Docker made it.
      expect(labExecOk(h1, ["iptables", "-w", "-S", "DOCKER-USER"]).split("\n")[1]).toBe(
        "-A DOCKER-USER -j pnc-nat-dock-fwd",
      );
      expect(labExecOk(h1, ["iptables", "-w", "-S", "FORWARD"])).not.toContain("pnc-nat");
      // A port forward passes the dropping FORWARD too.
      await serveInContainer(h1, "fwa", 80, "hello-through-docker");
      expect(fromWan(h1.address, 8081)).toBe("hello-through-docker");

      // Docker restarted and flushed DOCKER-USER: refresh sees the way closed, the next up puts the jump back.
      labExecOk(h1, ["iptables", "-w", "-F", "DOCKER-USER"]);
      labExecOk(h1, ["iptables", "-w", "-A", "DOCKER-USER", "-j", "RETURN"]);
      expect(await engine.refresh(nat)).toBe(true);
      expect(nat.outs.forwardBlockedBy).toEqual(["table ip filter chain FORWARD (policy drop)"]);
      expect((await engine.plan(nat, opened)).diff.changes).toBe(true);
      expect(await engine.up(nat, opened)).toBe("updated");
      expect(fromContainer(h1, "fwa", 9201).ok).toBe(true);

      await engine.destroy(nat);
      expect(firewallDump()).toBe(before);
      expect(fromContainer(h1, "fwa", 9201).ok).toBe(false);
    } finally {
      undoDocker();
    }
  });
});

describe("NatRule allowForward where NixOS's filterForward drops", () => {
  // The shape of nixpkgs' firewall-nftables.nix with filterForward = true (its forward chain and forward-allow).
  const nixosFw = (extraForwardRules: string): string =>
    [
      "table inet nixos-fw {",
      "  chain forward-allow {",
      '    ct status dnat accept comment "allow port forward"',
      `    ${extraForwardRules}`,
      "  }",
      "  chain forward {",
      "    type filter hook forward priority filter; policy drop;",
      "    ct state vmap { invalid : drop, established : accept, related : accept, new : jump forward-allow, untracked : jump forward-allow }",
      "  }",
      "}",
    ].join("\n");
  const load = (text: string): void => {
    labExec(h1, ["nft", "delete", "table", "inet", "nixos-fw"]);
    labExecOk(h1, ["sh", "-c", 'printf "%s\\n" "$0" | nft -f -', text]);
  };

  it("refuses naming the NixOS option and makes nothing; with that option set it works", async () => {
    load(nixosFw(""));
    try {
      await wanEchoPeer(9202);
      const args = { connection: connection(h1), name: "nixfw", allowForward: true, ...base };
      const refused = await engine.create("NatRule", "nixfw", args).then(
        () => undefined,
        (e: unknown) => String(e),
      );
      expect(refused).toContain("table inet nixos-fw chain forward (policy drop)");
      expect(refused).toContain(
        `networking.firewall.extraForwardRules = ''iifname { "ve-*" } oifname "eth0" accept; ip saddr 10.233.0.0/16 oifname "eth0" accept'';`,
      );
      expect(labExec(h1, ["nft", "list", "table", "ip", "pnc-nat-nixfw"]).code).not.toBe(0);
      expect(fromContainer(h1, "fwa", 9202).ok).toBe(false);

      // What that option adds to forward-allow: now the create goes ahead and the container reaches the WAN.
      load(nixosFw('iifname { "ve-*" } oifname "eth0" accept'));
      const nat = await engine.create("NatRule", "nixfw", args);
      expect(nat.outs.forwardBlockedBy).toEqual([]);
      expect(fromContainer(h1, "fwa", 9202)).toEqual({ ok: true, seenAs: h1.address });
      await engine.destroy(nat);
    } finally {
      labExec(h1, ["nft", "delete", "table", "inet", "nixos-fw"]);
    }
  });
});

describe.each(["nftables", "iptables"] as const)("NatRule loopbackIPs (%s)", (backend) => {
  it("answers a forward from the host, from another container, from the destination itself and on 127.0.0.1", async () => {
    const port = backend === "nftables" ? 8091 : 8092;
    const inside = backend === "nftables" ? 81 : 82;
    await serveInContainer(h1, "fwa", inside, `hello-${backend}`);
    const args = {
      connection: connection(h1),
      name: `lb${backend.slice(0, 3)}`,
      backend,
      ...base,
      forwardPorts: [{ sourcePort: port, destination: `10.233.30.2:${inside}` }],
    };
    const nat = await engine.create("NatRule", "lb", args);
    // NixOS's default: the forward answers on the external interface only.
    expect(ask(h1, "fwb", h1.address, port)).toBe("");
    expect(ask(h1, undefined, "127.0.0.1", port)).toBe("");

    const reflected = { ...args, loopbackIPs: [h1.address, "127.0.0.1"] };
    expect(await engine.up(nat, reflected)).toBe("updated");
    expect(ask(h1, undefined, h1.address, port)).toBe(`hello-${backend}`);
    expect(ask(h1, "fwb", h1.address, port)).toBe(`hello-${backend}`);
    expect(ask(h1, "fwa", h1.address, port)).toBe(`hello-${backend}`);
    expect(ask(h1, undefined, "127.0.0.1", port)).toBe(`hello-${backend}`);
    // route_localnet only on the device the destination is reached by.
    expect(routeLocalnet("ve-fwa")).toBe("1");
    expect(routeLocalnet("ve-fwb")).toBe("0");
    expect(routeLocalnet("eth0")).toBe("0");
    expect(routeLocalnet("all")).toBe("0");
    expect(nat.outs.live).toBe("applied");

    // Someone turns it off again: refresh sees the drift, up sets it back.
    labExecOk(h1, ["sh", "-c", "echo 0 > /proc/sys/net/ipv4/conf/ve-fwa/route_localnet"]);
    expect(await engine.refresh(nat)).toBe(true);
    expect(nat.outs.live).toBe("altered");
    expect(await engine.up(nat, reflected)).toBe("updated");
    expect(routeLocalnet("ve-fwa")).toBe("1");

    await engine.destroy(nat);
    expect(routeLocalnet("ve-fwa")).toBe("0");
    expect(ask(h1, undefined, "127.0.0.1", port)).toBe("");
  });
});
