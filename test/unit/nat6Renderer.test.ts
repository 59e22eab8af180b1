// NatRule IPv6: golden texts of the ip6 table, the ip6tables chains and the IPv6 forward chain, the real nft and
// ip6tables-restore loading them in throwaway network namespaces (never the machine's own), and the IPv6
// forwarding functions of the host scripts run against a namespace's own sysctls (accept_ra, RA routes).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NatSpec, parseNatInputs } from "../../provider/core/natRuleSpec";
import { renderNft, renderNft6, renderNftAll, renderRuleset } from "../../provider/core/natRuleNftables";
import {
  iptablesJumpArgv,
  renderForward,
  renderForward6,
  renderIptables,
  renderIptables6,
} from "../../provider/core/natRuleIptables";
import { FORWARDING6 } from "../../provider/host/natRuleScripts";
import { quoteArgv } from "../../provider/ssh/quote";

function spec(raw: Record<string, unknown>): NatSpec {
  const { spec: parsed, failures } = parseNatInputs({ name: "x", externalInterface: "eth0", ...raw });
  expect(failures).toEqual([]);
  if (parsed === undefined) throw new Error("expected a spec");
  return parsed;
}

const DUAL = spec({
  ipv6: "nat66",
  internalIPv6s: ["fd00:1234::/48"],
  forwardPorts: [
    { sourcePort: 8080, destination: "10.233.1.2:80" },
    { sourcePort: 8080, destination: "[fd00:1234:0:1::2]:80" },
    { sourcePort: "9000-9001", destination: "[FD00:1234:0:1:0:0:0:3]:7000-7001", proto: "udp" },
    { sourcePort: 2222, destination: "[fd00:1234:0:1::4]" },
  ],
});

const DUAL_IP6_TEXT = `# Managed by pulumi-nixos-containers (NatRule x): this part replaces table ip6 pnc-nat-x and nothing else.
table ip6 pnc-nat-x {}
delete table ip6 pnc-nat-x
table ip6 pnc-nat-x {
\tchain pre {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tiifname "eth0" tcp dport 8080 dnat to [fd00:1234:0:1::2]:80
\t\tiifname "eth0" udp dport 9000 dnat to [fd00:1234:0:1::3]:7000
\t\tiifname "eth0" udp dport 9001 dnat to [fd00:1234:0:1::3]:7001
\t\tiifname "eth0" tcp dport 2222 dnat to fd00:1234:0:1::4
\t}
\tchain post {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tiifname "ve-*" oifname "eth0" masquerade
\t\tip6 saddr fd00:1234::/48 oifname "eth0" masquerade
\t}
\tchain out {
\t\ttype nat hook output priority -100; policy accept;
\t}
}
`;

const SNAT66 = spec({
  ipv6: "nat66",
  backend: "iptables",
  internalInterfaces: ["ve-+", "br0"],
  internalIPv6s: ["fd00:1234::/48", "fd00:9::7"],
  externalIPv6: "2001:DB8::5",
  forwardPorts: [{ sourcePort: "8000:8010", destination: "[fd00:1234:0:1::2]:8000-8010" }],
  allowForward: true,
});

const SNAT66_RESTORE = `# Managed by pulumi-nixos-containers (NatRule x): for ip6tables-restore; defines and flushes only the chains below.
*nat
:pnc-nat-x-pre - [0:0]
:pnc-nat-x-post - [0:0]
:pnc-nat-x-out - [0:0]
-F pnc-nat-x-pre
-F pnc-nat-x-post
-F pnc-nat-x-out
-A pnc-nat-x-pre -i ve-+ -j MARK --set-mark 0x10000000/0x10000000
-A pnc-nat-x-pre -i br0 -j MARK --set-mark 0x10000000/0x10000000
-A pnc-nat-x-pre -i eth0 -p tcp --dport 8000:8010 -j DNAT --to-destination [fd00:1234:0:1::2]:8000-8010
-A pnc-nat-x-post -m mark --mark 0x10000000/0x10000000 -o eth0 -j SNAT --to-source 2001:db8::5
-A pnc-nat-x-post -s fd00:1234::/48 -o eth0 -j SNAT --to-source 2001:db8::5
-A pnc-nat-x-post -s fd00:9::7 -o eth0 -j SNAT --to-source 2001:db8::5
-A pnc-nat-x-out -d 2001:db8::5 -p tcp --dport 8000:8010 -j DNAT --to-destination [fd00:1234:0:1::2]:8000-8010
COMMIT
`;

const ROUTED = spec({ ipv6: "routed", internalIPv6s: ["2001:db8:1::/48"], allowForward: true });

describe("NAT66 and routed mode, rendered", () => {
  it("renders the ip6 table after the unchanged IPv4 one, in canonical addresses, IPv4 and IPv6 forwards of one port apart", () => {
    expect(renderNft6(DUAL)).toBe(DUAL_IP6_TEXT);
    expect(renderNftAll(DUAL)).toBe(renderNft(DUAL) + DUAL_IP6_TEXT);
    expect(renderNft(DUAL)).toContain('\t\tiifname "eth0" tcp dport 8080 dnat to 10.233.1.2:80\n');
    expect(renderNft(DUAL)).not.toContain("fd00");
    expect(renderRuleset(DUAL)).toBe(renderNft(DUAL) + DUAL_IP6_TEXT);
  });

  it("renders ip6tables chains of the same names with SNAT to externalIPv6 and output DNAT, and their jumps", () => {
    const r = renderIptables6(SNAT66);
    expect(r?.restore).toBe(SNAT66_RESTORE);
    expect(r?.chains).toEqual(["pnc-nat-x-pre", "pnc-nat-x-post", "pnc-nat-x-out"]);
    const shown = renderRuleset(SNAT66);
    expect(shown.startsWith(renderIptables(SNAT66).restore)).toBe(true);
    expect(shown).toContain(
      `${SNAT66_RESTORE}# ip6tables jumps, each inserted once if "-C" does not find it:\n`,
    );
    expect(shown).toContain("ip6tables -w -t nat -I POSTROUTING -j pnc-nat-x-post\n");
    expect(shown).toContain("ip6tables -w -t filter -I DOCKER-USER|FORWARD -j pnc-nat-x-fwd\n");
  });

  it("renders the IPv6 forward chain: out, replies, and the replies of the IPv6 forwards only", () => {
    expect(renderForward6(SNAT66)).toBe(
      [
        "# Managed by pulumi-nixos-containers (NatRule x): for ip6tables-restore; defines and flushes only the chain below.",
        "*filter",
        ":pnc-nat-x-fwd - [0:0]",
        "-F pnc-nat-x-fwd",
        "-A pnc-nat-x-fwd -i ve-+ -o eth0 -j ACCEPT",
        "-A pnc-nat-x-fwd -i br0 -o eth0 -j ACCEPT",
        "-A pnc-nat-x-fwd -s fd00:1234::/48 -o eth0 -j ACCEPT",
        "-A pnc-nat-x-fwd -s fd00:9::7 -o eth0 -j ACCEPT",
        "-A pnc-nat-x-fwd -i eth0 -o ve-+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A pnc-nat-x-fwd -i eth0 -o br0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A pnc-nat-x-fwd -i eth0 -d fd00:1234::/48 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A pnc-nat-x-fwd -i eth0 -d fd00:9::7 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A pnc-nat-x-fwd -m conntrack --ctstate DNAT --ctreplsrc fd00:1234:0:1::2 -j ACCEPT",
        "COMMIT",
        "",
      ].join("\n"),
    );
    // The IPv4 forward chain keeps IPv4 only.
    expect(renderForward(SNAT66)).not.toContain("fd00");
  });

  it("routed mode has no ip6 table or chains, only forwarding and (allowForward) the IPv6 forward chain", () => {
    expect(renderNft6(ROUTED)).toBe("");
    expect(renderIptables6({ ...ROUTED, backend: "iptables" })).toBeUndefined();
    expect(renderRuleset(ROUTED)).not.toContain("ip6 pnc-nat");
    expect(renderForward6(ROUTED)).toContain("-A pnc-nat-x-fwd -s 2001:db8:1::/48 -o eth0 -j ACCEPT\n");
    expect(renderForward6(ROUTED)).toContain(
      "-A pnc-nat-x-fwd -i eth0 -d 2001:db8:1::/48 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n",
    );
    expect(renderForward6(ROUTED)).not.toContain("DNAT");
  });

  it("renders nothing of IPv6 for an IPv4-only rule", () => {
    const v4 = spec({ internalIPs: ["10.233.0.0/16"], allowForward: true });
    expect(v4.ipv6).toBeUndefined();
    expect(renderNft6(v4)).toBe("");
    expect(renderForward6(v4)).toBeUndefined();
    expect(renderRuleset(v4)).not.toMatch(/ip6/);
  });
});

const isRoot = process.getuid?.() === 0;
const has = (tool: string): boolean => spawnSync("sh", ["-c", 'command -v "$1"', "sh", tool]).status === 0;
const dir = mkdtempSync(join(tmpdir(), "pnc-nat6-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `script` in a fresh network namespace that dies with it; `texts` are written to files $1, $2, … */
function inNetns(script: string, ...texts: string[]): string {
  const files = texts.map((text, i) => {
    const file = join(dir, `rules${i}`);
    writeFileSync(file, text);
    return file;
  });
  return execFileSync("unshare", ["--net", "--fork", "sh", "-ec", script, "sh", ...files], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

describe.skipIf(!isRoot || !has("nft") || !has("unshare"))("the ip6 table in the real nft", () => {
  it("passes nft -c, loads both families in one file twice (missing, then present) and lists the same", () => {
    const listed = inNetns(
      'nft -c -f "$1"; nft -f "$1"; nft list table ip6 pnc-nat-x; nft -f "$1"; echo ===; nft list table ip6 pnc-nat-x; echo ===; nft list tables',
      renderNftAll(DUAL),
    );
    const [first, second, tables] = listed.split("===\n");
    expect(second).toBe(first);
    expect(first).toContain('iifname "eth0" tcp dport 8080 dnat to [fd00:1234:0:1::2]:80');
    expect(first).toContain('iifname "eth0" udp dport 9000 dnat to [fd00:1234:0:1::3]:7000');
    expect(first).toContain('iifname "eth0" tcp dport 2222 dnat to fd00:1234:0:1::4');
    // nft lists our canonical forms verbatim: drift detection compares listings.
    expect(first).toContain('ip6 saddr fd00:1234::/48 oifname "eth0" masquerade');
    expect(tables.trim().split("\n")).toEqual(["table ip pnc-nat-x", "table ip6 pnc-nat-x"]);
  });

  it("passes nft -c with SNAT to externalIPv6 and output DNAT", () => {
    const s = spec({
      ipv6: "nat66",
      internalIPv6s: ["fd00::/8"],
      externalIPv6: "2001:db8::5",
      forwardPorts: [{ sourcePort: "8000-8010", destination: "[fd00::2]:8000-8010", proto: "udp" }],
    });
    const listed = inNetns('nft -f "$1"; nft list table ip6 pnc-nat-x', renderNftAll(s));
    expect(listed).toContain('ip6 saddr fd00::/8 oifname "eth0" snat to 2001:db8::5');
    expect(listed).toContain("ip6 daddr 2001:db8::5 udp dport 8000-8010 dnat to [fd00::2]:8000-8010");
  });
});

const variants = [
  { name: "ip6tables (nf_tables)", restore: "ip6tables-restore", save: "ip6tables-save", tool: "ip6tables" },
  {
    name: "ip6tables-legacy",
    restore: "ip6tables-legacy-restore",
    save: "ip6tables-legacy-save",
    tool: "ip6tables-legacy",
  },
];

describe.each(variants)("the IPv6 chains in the real $name", (v) => {
  const ready = isRoot && has("unshare") && has(v.restore) && has(v.save) && has(v.tool);

  it.skipIf(!ready)(
    "loads nat and filter twice without duplicates, jumps once, as iptables-save lists them",
    () => {
      const r = renderIptables6(SNAT66);
      if (r === undefined) throw new Error("no NAT66");
      const jumps = r.jumps
        .map((j) => {
          const argv = (op: "-C" | "-I") => [v.tool, ...iptablesJumpArgv(j, op, "ip6tables").slice(1)];
          return `${quoteArgv(argv("-C"))} 2>/dev/null || ${quoteArgv(argv("-I"))}`;
        })
        .join("\n");
      const saved = inNetns(
        [
          `${v.restore} --test --noflush < "$1"`,
          `${v.restore} --noflush < "$1"`,
          `${v.restore} --noflush < "$1"`,
          `${v.restore} --noflush < "$2"`,
          jumps,
          jumps,
          v.save,
        ].join("\n"),
        r.restore,
        renderForward6(SNAT66) ?? "",
      );
      const ours = saved.split("\n").filter((l) => l.startsWith("-A ") && l.includes("pnc-nat-x"));
      expect(ours).toContain(
        "-A pnc-nat-x-pre -i eth0 -p tcp -m tcp --dport 8000:8010 -j DNAT --to-destination [fd00:1234:0:1::2]:8000-8010",
      );
      expect(ours).toContain("-A pnc-nat-x-post -s fd00:1234::/48 -o eth0 -j SNAT --to-source 2001:db8::5");
      expect(ours).toContain("-A pnc-nat-x-post -s fd00:9::7/128 -o eth0 -j SNAT --to-source 2001:db8::5");
      expect(ours).toContain(
        "-A pnc-nat-x-fwd -m conntrack --ctstate DNAT --ctreplsrc fd00:1234:0:1::2 -j ACCEPT",
      );
      expect(ours.filter((l) => l === "-A POSTROUTING -j pnc-nat-x-post")).toHaveLength(1);
      expect(ours.filter((l) => l.startsWith("-A pnc-nat-x-post "))).toHaveLength(3);
    },
  );
});

/**
 * Runs the IPv6 forwarding functions with STATE_DIR in a temporary directory, inside a network namespace whose
 * sysctls are its own: `eth0` (external) and `eth1` are veth ends with a default route as the kernel learns it
 * from a router advertisement would look to iproute2 (`proto ra`).
 */
function forwarding6(steps: string, setup = ""): string {
  const state = mkdtempSync(join(dir, "state-"));
  const script = [
    "ip link add eth0 type veth peer name peer0",
    "ip link add eth1 type veth peer name peer1",
    "for l in eth0 peer0 eth1 peer1; do ip link set $l up; done",
    setup,
    `STATE_DIR=${quoteArgv([state])} RULE_NAME=x EXTERNAL_INTERFACE=eth0`,
    FORWARDING6.replace(/PNC-RESULT/g, "RESULT"),
    steps,
  ].join("\n");
  return execFileSync("unshare", ["--net", "--fork", "sh", "-ec", script], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** A router advertisement (lifetime 1800 s) sent from PEER to its veth end, which learns a default route from it. */
const RA_SENDER = `import socket, struct, sys
dev = sys.argv[1]
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
s.sendto(struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0), ("ff02::1", 0, 0, socket.if_nametoindex(dev)))
`;
function advertise(peer: string): string {
  const file = join(dir, "ra.py");
  writeFileSync(file, RA_SENDER);
  // The sender needs its link-local address, usable once duplicate address detection is done (~1 s).
  return `sleep 2.5; python3 ${quoteArgv([file, peer])}; sleep 0.3; ip -6 route show default | grep -q 'proto ra.*expires'`;
}

const snapshot6 =
  'for d in all default eth0 eth1; do echo "$d $(cat /proc/sys/net/ipv6/conf/$d/forwarding) $(cat /proc/sys/net/ipv6/conf/$d/accept_ra)"; done';

describe.skipIf(!isRoot || !has("unshare") || !has("python3"))(
  "IPv6 forwarding on and back, in a throwaway namespace",
  () => {
    it("the kernel deletes a default route learned from an RA when forwarding goes on and accept_ra is 1 (why accept_ra=2 comes first)", () => {
      const out = forwarding6(
        "ip -6 route show default; echo ===; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding; ip -6 route show default",
        advertise("peer0"),
      );
      const [before, after] = out.split("===\n");
      expect(before).toMatch(/^default via fe80::\S+ dev eth0 proto ra .*expires/);
      expect(after).toBe("");
    });

    it("sets accept_ra=2 on the external interface before forwarding (its RA default route survives), and puts back every value", () => {
      const out = forwarding6(
        [
          snapshot6,
          "echo ===",
          "ipv6_preflight",
          "forwarding6_on",
          snapshot6,
          "ip -6 route show default",
          "echo ===",
          "forwarding6_release",
          snapshot6,
        ].join("\n"),
        // eth1 forwards already (a router port), eth0 learns from RAs (accept_ra=1, the kernel default).
        `echo 1 > /proc/sys/net/ipv6/conf/eth1/forwarding\n${advertise("peer0")}`,
      );
      const [before, on, after] = out.split("===\n");
      expect(before).toBe("all 0 1\ndefault 0 1\neth0 0 1\neth1 1 1\n");
      expect(on).toContain("all 1 1\ndefault 1 1\neth0 1 2\neth1 1 1\n");
      expect(on).toMatch(/default via fe80::\S+ dev eth0 proto ra .*expires/);
      expect(after).toBe("RESULT forwarding6Restored=0\n" + before);
    });

    it("keeps forwarding on while another IPv6 rule of ours remains", () => {
      const out = forwarding6(
        [
          "forwarding6_on",
          "RULE_NAME=y",
          "forwarding6_on",
          "forwarding6_release",
          snapshot6,
          "echo ===",
          "RULE_NAME=x",
          "forwarding6_release",
          snapshot6,
        ].join("\n"),
      );
      const [both, last] = out.split("===\n");
      expect(both).toBe("all 1 1\ndefault 1 1\neth0 1 2\neth1 1 1\n");
      expect(last).toBe("RESULT forwarding6Restored=0\nall 0 1\ndefault 0 1\neth0 0 1\neth1 0 1\n");
    });

    it("leaves accept_ra alone where forwarding was already on (RAs were ignored before us)", () => {
      const out = forwarding6(
        `forwarding6_on\n${snapshot6}\necho ===\nforwarding6_release\n${snapshot6}`,
        "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding",
      );
      const [on, after] = out.split("===\n");
      expect(on).toBe("all 1 1\ndefault 1 1\neth0 1 1\neth1 1 1\n");
      expect(after).toBe("RESULT forwarding6Restored=1\nall 1 1\ndefault 1 1\neth0 1 1\neth1 1 1\n");
    });

    it("fails the preflight naming another interface that would lose its router, before changing anything", () => {
      const script = `if ( ipv6_preflight ) 2>&1; then echo passed; fi; ${snapshot6}; ip -6 route show default`;
      const out = forwarding6(script, advertise("peer1"));
      expect(out).toContain("PNC-CLASH NatRule x would turn IPv6 forwarding on, and then the kernel ignores");
      expect(out).toContain("router advertisements on eth1 (accept_ra=1");
      expect(out).toContain("Set net.ipv6.conf.<interface>.accept_ra=2 there first");
      expect(out).toMatch(/default via fe80::\S+ dev eth1 proto ra/);
      expect(out).not.toContain("passed");
      expect(out).toContain("all 0 1\n");
      // accept_ra=2 there already: nothing is lost, the preflight passes.
      const fine = forwarding6(
        script,
        `${advertise("peer1")}\necho 2 > /proc/sys/net/ipv6/conf/eth1/accept_ra`,
      );
      expect(fine).toContain("passed");
    });

    it("fails the preflight where IPv6 is disabled on the external interface", () => {
      const out = forwarding6(
        "if ( ipv6_preflight ) 2>&1; then echo passed; fi",
        "echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6",
      );
      expect(out).toContain("IPv6 is disabled on its external interface eth0");
      expect(out).not.toContain("passed");
    });
  },
);
