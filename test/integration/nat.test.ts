// NatRule and NmUnmanaged through the real provider host on lab hosts: containers reach the lab's WAN only
// with NAT, the WAN sees the host's address (or externalIP), forwarded ports answer from the WAN, both
// backends, drift after a flush, foreign rules untouched, the firewall exactly restored, NetworkManager.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connection,
  fromContainer,
  fromWan,
  h1,
  h2,
  killStarted,
  serveInContainer,
  wanEchoPeer,
} from "./fixture";
import { CheckFailedError, MiniEngine, StateEntry } from "../harness/engine";
import { closeAll } from "../harness/providerHost";
import { LabHost, labExec, labExecOk } from "../lab/labHosts";

let engine: MiniEngine;
const containers: StateEntry[] = [];

beforeAll(async () => {
  engine = await MiniEngine.start();
  containers.push(
    await engine.create("Container", "natc", {
      connection: connection(h1),
      name: "natc",
      driver: "netns",
      hostAddress: "10.233.20.1",
      localAddress: "10.233.20.2",
    }),
  );
});

afterAll(async () => {
  killStarted();
  for (const c of containers) await engine.destroy(c);
  await closeAll();
});

/** Firewall state of a host, without counters: what must be identical before create and after delete. */
function firewallDump(host: LabHost): string {
  const nft = labExecOk(host, ["nft", "list", "ruleset"]);
  const ipt = labExecOk(host, ["iptables-save"])
    .replace(/^#.*$/gm, "")
    .replace(/\[\d+:\d+\]/g, "");
  const fwd = labExecOk(host, ["cat", "/proc/sys/net/ipv4/conf/all/forwarding"]);
  return `${nft}\n---\n${ipt}\n---\nforwarding=${fwd}`;
}

function removeForeign(): void {
  labExec(h1, ["nft", "delete", "table", "inet", "foreign"]);
  labExec(h1, ["iptables", "-t", "nat", "-F", "FOREIGN"]);
  labExec(h1, ["iptables", "-t", "nat", "-X", "FOREIGN"]);
}

const base = { externalInterface: "eth0", internalIPs: ["10.233.0.0/16"] };

describe.each(["nftables", "iptables"] as const)("NatRule (%s)", (backend) => {
  const port = backend === "nftables" ? 9101 : 9102;
  let nat: StateEntry | undefined;
  let before = "";

  it("leaves a container without NAT unable to reach the WAN", async () => {
    await wanEchoPeer(port);
    expect(fromContainer(h1, "natc", port).ok).toBe(false);
  });

  it("shows the exact ruleset at check, then masquerades: the WAN sees the host's address; foreign rules survive", async () => {
    // Foreign rules of another tool, which we must never touch (a failed earlier run may have left them).
    removeForeign();
    labExecOk(h1, ["nft", "add", "table", "inet", "foreign"]);
    labExecOk(h1, ["nft", "add", "chain", "inet", "foreign", "c", "{ type filter hook input priority 0; }"]);
    labExecOk(h1, ["nft", "add", "rule", "inet", "foreign", "c", "tcp", "dport", "4444", "accept"]);
    labExecOk(h1, ["iptables", "-t", "nat", "-N", "FOREIGN"]);
    labExecOk(h1, ["iptables", "-t", "nat", "-A", "FOREIGN", "-p", "tcp", "--dport", "5555", "-j", "RETURN"]);
    before = firewallDump(h1);

    const args = { connection: connection(h1), name: `n${backend.slice(0, 3)}`, backend, ...base };
    const checked = await engine.check("NatRule", "nat", args);
    expect(checked.ruleset).toContain(
      backend === "nftables"
        ? 'iifname "ve-*" oifname "eth0" masquerade'
        : "-A pnc-nat-nipt-post -m mark --mark 0x10000000/0x10000000 -o eth0 -j MASQUERADE",
    );
    nat = await engine.create("NatRule", "nat", args);
    expect(nat.outs).toMatchObject({ live: "applied", forwarding: true, ruleset: checked.ruleset });
    expect(fromContainer(h1, "natc", port)).toEqual({ ok: true, seenAs: h1.address });
    const after = firewallDump(h1);
    expect(after).toContain("table inet foreign");
    expect(after).toContain("-A FOREIGN -p tcp -m tcp --dport 5555 -j RETURN");
  });

  it("SNATs to externalIP when set (update in place)", async () => {
    if (!nat) throw new Error("create failed");
    labExecOk(h1, ["ip", "addr", "add", "198.18.0.111/32", "dev", "eth0"]);
    try {
      const args = {
        connection: connection(h1),
        name: `n${backend.slice(0, 3)}`,
        backend,
        ...base,
        externalIP: "198.18.0.111",
      };
      expect((await engine.plan(nat, args)).diff).toMatchObject({ changes: true, replaces: [] });
      expect(await engine.up(nat, args)).toBe("updated");
      expect(fromContainer(h1, "natc", port)).toEqual({ ok: true, seenAs: "198.18.0.111" });
      expect(
        await engine.up(nat, {
          connection: connection(h1),
          name: `n${backend.slice(0, 3)}`,
          backend,
          ...base,
        }),
      ).toBe("updated");
    } finally {
      labExecOk(h1, ["ip", "addr", "del", "198.18.0.111/32", "dev", "eth0"]);
    }
  });

  it("forwards a host port to a container, reachable from the WAN", async () => {
    if (!nat) throw new Error("create failed");
    const args = {
      connection: connection(h1),
      name: `n${backend.slice(0, 3)}`,
      backend,
      ...base,
      forwardPorts: [{ sourcePort: 8080, destination: "10.233.20.2:80" }],
    };
    expect(await engine.up(nat, args)).toBe("updated");
    await serveInContainer(h1, "natc", 80, "hello-from-natc");
    expect(fromWan(h1.address, 8080)).toBe("hello-from-natc");
  });

  it("finds its rules flushed by hand (refresh), and the next up restores them", async () => {
    if (!nat) throw new Error("create failed");
    if (backend === "nftables") labExecOk(h1, ["nft", "flush", "table", "ip", "pnc-nat-nnft"]);
    else labExecOk(h1, ["iptables", "-t", "nat", "-F", "pnc-nat-nipt-post"]);
    expect(fromContainer(h1, "natc", port).ok).toBe(false);
    expect(await engine.refresh(nat)).toBe(true);
    expect(nat.outs.live).toBe("altered");
    const args = {
      connection: connection(h1),
      name: `n${backend.slice(0, 3)}`,
      backend,
      ...base,
      forwardPorts: [{ sourcePort: 8080, destination: "10.233.20.2:80" }],
    };
    expect((await engine.plan(nat, args)).diff.changes).toBe(true);
    expect(await engine.up(nat, args)).toBe("updated");
    expect(nat.outs.live).toBe("applied");
    expect(fromContainer(h1, "natc", port).ok).toBe(true);
  });

  it("deletes exactly what it added: the firewall and forwarding are as before create", async () => {
    if (!nat) throw new Error("create failed");
    await engine.destroy(nat);
    expect(firewallDump(h1)).toBe(before);
    expect(labExecOk(h1, ["cat", "/proc/sys/net/ipv4/conf/all/forwarding"]).trim()).toBe("0");
    expect(fromContainer(h1, "natc", port).ok).toBe(false);
    await engine.destroy(nat);
    removeForeign();
  });
});

describe("NatRule on a host with two of ours", () => {
  it("keeps forwarding on until the last of our NatRules is deleted", async () => {
    const a = await engine.create("NatRule", "a", { connection: connection(h1), name: "fwd-a", ...base });
    const b = await engine.create("NatRule", "b", {
      connection: connection(h1),
      name: "fwd-b",
      backend: "iptables",
      ...base,
    });
    await engine.destroy(a);
    expect(labExecOk(h1, ["cat", "/proc/sys/net/ipv4/conf/all/forwarding"]).trim()).toBe("1");
    await engine.destroy(b);
    expect(labExecOk(h1, ["cat", "/proc/sys/net/ipv4/conf/all/forwarding"]).trim()).toBe("0");
  });

  it("refuses a second NatRule of the same name on a host (another stack), leaving the first one's rules alone", async () => {
    const first = await engine.create("NatRule", "one", {
      connection: connection(h1),
      name: "twin",
      ...base,
    });
    try {
      const before = firewallDump(h1);
      await expect(
        engine.create("NatRule", "two", {
          connection: connection(h1),
          name: "twin",
          ...base,
          backend: "nftables",
          externalIP: "198.18.0.99",
        }),
      ).rejects.toThrow(/a NatRule named twin is already on the host.*Nothing was changed/s);
      expect(firewallDump(h1)).toBe(before);
    } finally {
      await engine.destroy(first);
    }
  });

  it("fails clearly, changing nothing, when the external interface does not exist", async () => {
    const before = firewallDump(h1);
    await expect(
      engine.create("NatRule", "bad", { connection: connection(h1), name: "bad", externalInterface: "wan9" }),
    ).rejects.toThrow(/external interface wan9 does not exist on the host.*Nothing was changed/s);
    expect(firewallDump(h1)).toBe(before);
  });
});

describe("hostile NatRule and NmUnmanaged inputs", () => {
  it("rejects hostile interface names, ports, destinations and device specs at check", async () => {
    const bad: Record<string, unknown>[] = [
      { externalInterface: "eth0; reboot" },
      { externalInterface: "$(reboot)" },
      { externalInterface: "eth0", internalInterfaces: ['ve-"*'] },
      { externalInterface: "eth0", internalIPs: ["10.0.0.0/8 accept"] },
      { externalInterface: "eth0", externalIP: "1.2.3.4\nflush ruleset" },
      {
        externalInterface: "eth0",
        forwardPorts: [{ sourcePort: "80; flush ruleset", destination: "10.233.1.2:80" }],
      },
      { externalInterface: "eth0", forwardPorts: [{ sourcePort: 70000, destination: "10.233.1.2:80" }] },
      { externalInterface: "eth0", forwardPorts: [{ sourcePort: 80, destination: "10.233.1.2:80 }" }] },
      {
        externalInterface: "eth0",
        forwardPorts: [{ sourcePort: 80, destination: "10.233.1.2", proto: "icmp" }],
      },
      { externalInterface: "eth0", backend: "pf" },
    ];
    for (const extra of bad) {
      await expect(
        engine.check("NatRule", "x", { connection: connection(h1), name: "x", ...extra }),
      ).rejects.toBeInstanceOf(CheckFailedError);
    }
    for (const devices of [
      ["interface-name:ve-*;mac:00:11:22:33:44:55"],
      ["interface-name:ve-*\n[main]"],
      ["$(reboot)"],
      ["interface-name:'x'"],
      [],
    ]) {
      await expect(
        engine.check("NmUnmanaged", "nm", { connection: connection(h2), name: "nm", devices }),
      ).rejects.toThrow(/devices/);
    }
  });
});

describe("NmUnmanaged", () => {
  it("computes the drop-in at check, keeps ve-* unmanaged after a reload, and eth0 keeps its address", async () => {
    const c = await engine.create("Container", "nmc", {
      connection: connection(h2),
      name: "nmc",
      driver: "netns",
      hostAddress: "10.233.30.1",
      localAddress: "10.233.30.2",
    });
    containers.push(c);
    const checked = await engine.check("NmUnmanaged", "nm", { connection: connection(h2), name: "lab" });
    expect(checked.path).toBe("/etc/NetworkManager/conf.d/pulumi-nixos-containers-lab.conf");
    expect(checked.content).toContain("unmanaged-devices+=interface-name:ve-*");
    const nm = await engine.create("NmUnmanaged", "nm", { connection: connection(h2), name: "lab" });
    expect(nm.outs).toMatchObject({
      networkManagerRunning: true,
      reloaded: true,
      unmanagedDevices: ["ve-nmc"],
    });
    expect(labExecOk(h2, ["cat", checked.path as string])).toBe(checked.content);
    labExecOk(h2, ["nmcli", "general", "reload"]);
    expect(labExecOk(h2, ["nmcli", "-t", "-f", "DEVICE,STATE", "device", "status"])).toMatch(
      /^ve-nmc:unmanaged$/m,
    );
    expect(labExecOk(h2, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"])).toContain(h2.address);

    // Drift: the file removed by hand → refresh drops it → the next up writes it again.
    labExecOk(h2, ["rm", checked.path as string]);
    expect(await engine.refresh(nm)).toBe(false);
    const again = await engine.create("NmUnmanaged", "nm", { connection: connection(h2), name: "lab" });
    await engine.destroy(again);
    expect(labExec(h2, ["test", "-e", checked.path as string]).code).not.toBe(0);
  });

  it("refuses to take over a drop-in of the same name that is already there", async () => {
    const first = await engine.create("NmUnmanaged", "nmA", { connection: connection(h1), name: "twin" });
    try {
      await expect(
        engine.create("NmUnmanaged", "nmB", {
          connection: connection(h1),
          name: "twin",
          devices: ["interface-name:vx-*"],
        }),
      ).rejects.toThrow(/pulumi-nixos-containers-twin\.conf already exists/);
      expect(
        labExecOk(h1, ["cat", "/etc/NetworkManager/conf.d/pulumi-nixos-containers-twin.conf"]),
      ).toContain("interface-name:ve-*");
    } finally {
      await engine.destroy(first);
    }
  });

  it("writes the file and reports NetworkManager not running on a host without it", async () => {
    const nm = await engine.create("NmUnmanaged", "nm1", { connection: connection(h1), name: "lab1" });
    expect(nm.outs).toMatchObject({ networkManagerRunning: false, reloaded: false });
    expect(labExecOk(h1, ["cat", "/etc/NetworkManager/conf.d/pulumi-nixos-containers-lab1.conf"])).toContain(
      "interface-name:ve-*",
    );
    await engine.destroy(nm);
    expect(
      labExec(h1, ["test", "-e", "/etc/NetworkManager/conf.d/pulumi-nixos-containers-lab1.conf"]).code,
    ).not.toBe(0);
  });
});
