// `persist: true` through the real provider host on lab host h1: the units pass `systemd-analyze verify`; a
// "reboot" (everything live in the host's network namespace torn down, its /etc and /var kept, /run emptied)
// followed by the units' start commands run as systemd would run them brings back every container, address,
// route, NAT rule and forwarding value exactly as before; a firewall that flushes the ruleset and then runs the
// reload path gets our rules back; refresh finds a unit missing and up repairs it; delete removes everything.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ask,
  connection,
  fromContainer,
  fromWan,
  h1,
  killStarted,
  reachable,
  serveInContainer,
  wanEchoPeer,
} from "./fixture";
import { MiniEngine, StateEntry } from "../harness/engine";
import { closeAll } from "../harness/providerHost";
import { labExec, labExecOk } from "../lab/labHosts";

const UNIT_DIR = "/etc/systemd/system.control";
let engine: MiniEngine;
const made: StateEntry[] = [];

/** Our units on h1 that multi-user.target wants (what systemd would start at boot), in boot order. */
function bootUnits(): { name: string; text: string }[] {
  const listed = labExec(h1, ["sh", "-c", `ls ${UNIT_DIR}/multi-user.target.wants/ 2>/dev/null`]).stdout;
  const units = listed
    .split("\n")
    .filter((n) => n.startsWith("pnc-"))
    .map((name) => ({ name, text: labExecOk(h1, ["cat", `${UNIT_DIR}/${name}`]) }));
  // As systemd orders them: units before network-pre.target (containers, then veths after their container's
  // unit) run before those after it (NAT).
  const rank = (u: { text: string }): number =>
    !/^Before=.*network-pre\.target/m.test(u.text) ? 2 : /^After=.*pnc-container-/m.test(u.text) ? 1 : 0;
  return units.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

/** Runs one `ExecStart=`/`ExecReload=` line of a unit as systemd would: no environment but its PATH. */
function runExec(unit: { name: string; text: string }, key: "ExecStart" | "ExecReload"): void {
  const line = new RegExp(`^${key}=(.*)$`, "m").exec(unit.text);
  if (!line) throw new Error(`${unit.name} has no ${key}=`);
  const r = labExec(h1, [
    "env",
    "-i",
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
    "sh",
    "-c",
    line[1],
  ]);
  if (r.code !== 0) throw new Error(`${unit.name} ${key} failed (${r.code}): ${r.stderr}`);
}

/** h1's own firewall (what other tests left there) before we made anything: what its firewall loads at boot. */
let hostFirewall = "";

/** What the host's own firewall service does at boot or on a reload: load its ruleset (which flushes ours). */
function hostFirewallLoads(): void {
  labExecOk(h1, ["nft", "flush", "ruleset"]);
  if (hostFirewall.trim() !== "") labExecOk(h1, ["sh", "-c", 'printf "%s\\n" "$0" | nft -f -', hostFirewall]);
}

/**
 * A reboot of h1's network: what lives in its network namespace and /run goes, /etc and /var stay; then the
 * host's own firewall loads its rules (as nftables.service would, before our units).
 */
function reboot(): void {
  labExecOk(h1, [
    "sh",
    "-c",
    [
      'for ns in /run/netns/*; do [ -e "$ns" ] && ip netns del "$(basename "$ns")"; done',
      "for l in $(ip -o link show | awk -F': ' '{ sub(/@.*/, \"\", $2); print $2 }' | grep -E '^(ve|vb)-'); do ip link del \"$l\"; done",
      "echo 0 > /proc/sys/net/ipv4/conf/all/forwarding",
      "echo 0 > /proc/sys/net/ipv4/conf/default/forwarding",
      "rm -rf /run/pulumi-nixos-containers",
    ].join("\n"),
  ]);
  hostFirewallLoads();
}

/** The live network of h1 and of its containers, without what differs between two boots (ifindex, counters). */
function network(): string {
  const cmd = [
    // -br pads a name to a width that depends on the peer's ifindex (new after a reboot): squeeze the padding.
    "ip -4 -br addr | sed 's/@[^ ]*//; s/  */ /g'",
    "ip route",
    'for ns in $(ls /run/netns | sort); do echo "== $ns"; ip -n "$ns" -4 -br addr | sed \'s/@[^ ]*//; s/  */ /g\'; ip -n "$ns" route; done',
    "iptables-save | grep -v '^#' | sed 's/\\[[0-9]*:[0-9]*\\]//'",
    "cat /proc/sys/net/ipv4/conf/all/forwarding /proc/sys/net/ipv4/conf/default/forwarding",
    'for d in /proc/sys/net/ipv4/conf/ve-*; do echo "$d $(cat $d/route_localnet)"; done',
  ].join("\n");
  // nft lists tables in the order they were made, which a reboot changes (the host's own come back first): compare
  // the tables, each as listed, in name order.
  const tables = labExecOk(h1, ["nft", "list", "ruleset"])
    .replace(/packets \d+ bytes \d+/g, "")
    .split(/^(?=table )/m)
    .sort()
    .join("");
  return `${labExecOk(h1, ["sh", "-c", cmd])}\n${tables}`;
}

const inputs = {
  pa: {
    type: "Container",
    name: "pa",
    driver: "netns",
    hostAddress: "10.233.40.1",
    localAddress: "10.233.40.2",
  },
  pb: {
    type: "Container",
    name: "pb",
    driver: "netns",
    hostAddress: "10.233.41.1",
    localAddress: "10.233.41.2",
  },
  pnft: {
    type: "NatRule",
    name: "pnft",
    externalInterface: "eth0",
    internalIPs: ["10.233.40.0/24"],
    forwardPorts: [{ sourcePort: 8094, destination: "10.233.40.2:84" }],
    loopbackIPs: ["127.0.0.1"],
  },
  pipt: {
    type: "NatRule",
    name: "pipt",
    backend: "iptables",
    externalInterface: "eth0",
    internalIPs: ["10.233.41.0/24"],
  },
  // On a bridge of the host's (made below, as the host's own network configuration would at boot).
  pc: {
    type: "Container",
    name: "pc",
    driver: "netns",
    hostBridge: "br-pers",
    localAddress: "10.233.242.5/24",
  },
  vxpa: {
    type: "VethPair",
    container: "pa",
    hostInterface: "vx-pa",
    containerInterface: "eth1",
    hostAddress: "10.250.40.1",
    localAddress: "10.250.40.2",
  },
} as const;

function argsOf(key: keyof typeof inputs): Record<string, unknown> {
  const { type: _type, ...rest } = inputs[key];
  return { connection: connection(h1), persist: true, ...rest };
}

beforeAll(async () => {
  labExec(h1, ["ip", "link", "del", "br-pers"]);
  labExecOk(h1, ["ip", "link", "add", "br-pers", "type", "bridge"]);
  labExecOk(h1, ["ip", "addr", "add", "10.233.242.1/24", "dev", "br-pers"]);
  labExecOk(h1, ["ip", "link", "set", "br-pers", "up"]);
  hostFirewall = labExecOk(h1, ["nft", "list", "ruleset"]);
  engine = await MiniEngine.start();
  for (const key of Object.keys(inputs) as (keyof typeof inputs)[]) {
    made.push(await engine.create(inputs[key].type, key, argsOf(key)));
  }
});

afterAll(async () => {
  killStarted();
  for (const r of made.reverse()) await engine.destroy(r);
  await closeAll();
  labExec(h1, ["ip", "link", "del", "br-pers"]);
});

describe("persist: true", () => {
  it("shows each unit and script at check, and writes exactly those (current)", async () => {
    for (const [i, key] of (Object.keys(inputs) as (keyof typeof inputs)[]).entries()) {
      const checked = await engine.check(inputs[key].type, key, argsOf(key));
      const shown = checked.persistence as Record<string, string>;
      const kind = { Container: "container", NatRule: "nat", VethPair: "veth" }[inputs[key].type];
      expect(shown.unitPath).toBe(`${UNIT_DIR}/pnc-${kind}-${key === "vxpa" ? "vx-pa" : key}.service`);
      expect(labExecOk(h1, ["cat", shown.unitPath])).toBe(shown.unitText);
      expect(labExecOk(h1, ["cat", shown.scriptPath])).toBe(shown.scriptText);
      expect(made[i].outs.persisted).toBe("current");
    }
  });

  it("writes units that pass systemd-analyze verify", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pnc-units-"));
    try {
      for (const unit of bootUnits()) fs.writeFileSync(path.join(dir, unit.name), unit.text);
      const files = fs.readdirSync(dir).map((f) => path.join(dir, f));
      expect(files).toHaveLength(6);
      const r = spawnSync("systemd-analyze", ["verify", ...files], { encoding: "utf8" });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("brings every container, address, route, rule and forwarding value back after a reboot", async () => {
    await wanEchoPeer(9203);
    const before = network();
    expect(fromContainer(h1, "pa", 9203)).toEqual({ ok: true, seenAs: h1.address });

    reboot();
    expect(reachable(h1, undefined, "10.233.40.2")).toBe(false);
    expect(network()).not.toBe(before);

    for (const unit of bootUnits()) runExec(unit, "ExecStart");
    expect(network()).toBe(before);
    expect(reachable(h1, undefined, "10.233.40.2")).toBe(true);
    expect(reachable(h1, undefined, "10.233.41.2")).toBe(true);
    expect(reachable(h1, undefined, "10.233.242.5")).toBe(true);
    expect(reachable(h1, undefined, "10.250.40.2")).toBe(true);
    expect(fromContainer(h1, "pa", 9203)).toEqual({ ok: true, seenAs: h1.address });
    expect(fromContainer(h1, "pb", 9203)).toEqual({ ok: true, seenAs: h1.address });
    await serveInContainer(h1, "pa", 84, "hello-after-boot");
    expect(fromWan(h1.address, 8094)).toBe("hello-after-boot");
    // The host's own 127.0.0.1 forward too: route_localnet came back with the veth.
    expect(ask(h1, undefined, "127.0.0.1", 8094)).toBe("hello-after-boot");
    // And Pulumi sees nothing to do.
    for (const r of made) {
      expect(await engine.refresh(r)).toBe(true);
      expect(r.outs.persisted).toBe("current");
    }
  });

  it("restores the NAT after the host's firewall reloads its ruleset, flushing ours (the reload path)", () => {
    const before = network();
    hostFirewallLoads();
    expect(network()).not.toBe(before);
    for (const unit of bootUnits().filter((u) => /^ReloadPropagatedFrom=.*nftables\.service/m.test(u.text))) {
      runExec(unit, "ExecReload");
    }
    expect(network()).toBe(before);
  });

  it("finds a unit removed by hand (refresh) and the next up writes it again", async () => {
    const nat = made[2];
    labExecOk(h1, ["rm", `${UNIT_DIR}/multi-user.target.wants/pnc-nat-pnft.service`]);
    expect(await engine.refresh(nat)).toBe(true);
    expect(nat.outs.persisted).toBe("stale");
    expect((await engine.plan(nat, argsOf("pnft"))).diff.changes).toBe(true);
    expect(await engine.up(nat, argsOf("pnft"))).toBe("updated");
    expect(nat.outs.persisted).toBe("current");
    expect(labExec(h1, ["test", "-L", `${UNIT_DIR}/multi-user.target.wants/pnc-nat-pnft.service`]).code).toBe(
      0,
    );
  });

  it("turning persist off removes the unit, its links and script, and leaves the live rules", async () => {
    const nat = made[3];
    const off = { ...argsOf("pipt"), persist: false };
    expect(await engine.up(nat, off)).toBe("updated");
    expect(nat.outs.persisted).toBeUndefined();
    expect(labExec(h1, ["sh", "-c", `ls ${UNIT_DIR} ${UNIT_DIR}/*.wants | grep pnc-nat-pipt`]).stdout).toBe(
      "",
    );
    expect(nat.outs.live).toBe("applied");
    expect(await engine.up(nat, argsOf("pipt"))).toBe("updated");
    expect(nat.outs.persisted).toBe("current");
  });

  it("delete removes every unit, link, script and marker of ours", async () => {
    for (const r of made.splice(0).reverse()) await engine.destroy(r);
    const left = labExec(h1, [
      "sh",
      "-c",
      `ls ${UNIT_DIR} ${UNIT_DIR}/*.wants /var/lib/pulumi-nixos-containers/persist /var/lib/pulumi-nixos-containers/owners 2>/dev/null | grep -E 'pnc-|\\.sh$|^unit-' || true`,
    ]);
    expect(left.stdout).toBe("");
  });
});
