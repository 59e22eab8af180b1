// The nftables renderer: golden texts, and the real `nft` loading them inside a throwaway network
// namespace (never the machine's own), twice, to prove the replace idiom works on an existing table.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NatSpec, parseNatInputs } from "../../provider/core/natRuleSpec";
import { nftTableName, renderNft, renderRuleset } from "../../provider/core/natRuleNftables";

function spec(raw: Record<string, unknown>): NatSpec {
  const { spec: parsed, failures } = parseNatInputs({ name: "x", externalInterface: "eth0", ...raw });
  expect(failures).toEqual([]);
  if (parsed === undefined) {
    throw new Error("expected a spec");
  }
  return parsed;
}

const MASQUERADE = spec({
  internalIPs: ["10.233.0.0/16"],
  forwardPorts: [{ sourcePort: 8080, destination: "10.233.1.2:80" }],
});

const MASQUERADE_TEXT = `# Managed by pulumi-nixos-containers (NatRule x): this file replaces table ip pnc-nat-x and nothing else.
table ip pnc-nat-x {}
delete table ip pnc-nat-x
table ip pnc-nat-x {
\tchain pre {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tiifname "eth0" tcp dport 8080 dnat to 10.233.1.2:80
\t}
\tchain post {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tiifname "ve-*" oifname "eth0" masquerade
\t\tip saddr 10.233.0.0/16 oifname "eth0" masquerade
\t}
\tchain out {
\t\ttype nat hook output priority -100; policy accept;
\t}
}
`;

const SNAT = spec({
  internalInterfaces: ["ve-+", "vb-*", "br0", "br1"],
  internalIPs: ["10.233.0.0/16", "192.168.50.7"],
  externalIP: "203.0.113.5",
  forwardPorts: [
    { sourcePort: "8000:8010", destination: "10.233.1.2:8000-8010", proto: "udp" },
    { sourcePort: "9000-9001", destination: "10.233.1.3:7000-7001" },
    { sourcePort: 2222, destination: "10.233.1.4" },
  ],
});

const SNAT_TEXT = `# Managed by pulumi-nixos-containers (NatRule x): this file replaces table ip pnc-nat-x and nothing else.
table ip pnc-nat-x {}
delete table ip pnc-nat-x
table ip pnc-nat-x {
\tchain pre {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tiifname "eth0" udp dport 8000-8010 dnat to 10.233.1.2:8000-8010
\t\tiifname "eth0" tcp dport 9000 dnat to 10.233.1.3:7000
\t\tiifname "eth0" tcp dport 9001 dnat to 10.233.1.3:7001
\t\tiifname "eth0" tcp dport 2222 dnat to 10.233.1.4
\t}
\tchain post {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tiifname "ve-*" oifname "eth0" snat to 203.0.113.5
\t\tiifname "vb-*" oifname "eth0" snat to 203.0.113.5
\t\tiifname { "br0", "br1" } oifname "eth0" snat to 203.0.113.5
\t\tip saddr 10.233.0.0/16 oifname "eth0" snat to 203.0.113.5
\t\tip saddr 192.168.50.7 oifname "eth0" snat to 203.0.113.5
\t}
\tchain out {
\t\ttype nat hook output priority -100; policy accept;
\t\tip daddr 203.0.113.5 udp dport 8000-8010 dnat to 10.233.1.2:8000-8010
\t\tip daddr 203.0.113.5 tcp dport 9000 dnat to 10.233.1.3:7000
\t\tip daddr 203.0.113.5 tcp dport 9001 dnat to 10.233.1.3:7001
\t\tip daddr 203.0.113.5 tcp dport 2222 dnat to 10.233.1.4
\t}
}
`;

describe("renderNft", () => {
  it("names our table after the resource", () => {
    expect(nftTableName("web")).toBe("pnc-nat-web");
  });

  it('renders masquerade with the default ve-+ as nft\'s "ve-*"', () => {
    expect(renderNft(MASQUERADE)).toBe(MASQUERADE_TEXT);
    expect(renderNft(MASQUERADE)).not.toContain("ve-+");
  });

  it("renders SNAT, wildcards in rules of their own, exact names in one set, ranges and output DNAT", () => {
    expect(renderNft(SNAT)).toBe(SNAT_TEXT);
  });

  it("renders a single exact interface without a set and nothing for no interfaces", () => {
    expect(renderNft(spec({ internalInterfaces: ["br0"] }))).toContain(
      '\t\tiifname "br0" oifname "eth0" masquerade\n',
    );
    expect(renderNft(spec({ internalInterfaces: [] }))).not.toContain("iifname");
  });

  it("is what preview shows for the nftables backend", () => {
    expect(renderRuleset(SNAT)).toBe(SNAT_TEXT);
  });

  it("is deterministic", () => {
    expect(renderNft(spec({ internalInterfaces: ["ve-+", "br0"] }))).toBe(
      renderNft(spec({ internalInterfaces: ["ve-+", "br0"] })),
    );
  });
});

const isRoot = process.getuid?.() === 0;
const hasTools = ["nft", "unshare"].every(
  (tool) => spawnSync("sh", ["-c", 'command -v "$1"', "sh", tool]).status === 0,
);
const dir = mkdtempSync(join(tmpdir(), "pnc-nft-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `script` in a fresh network namespace that dies with it; `texts` are written to files $1, $2, … */
function inNetns(script: string, ...texts: string[]): string {
  const files = texts.map((text, i) => {
    const file = join(dir, `rules${i}.nft`);
    writeFileSync(file, text);
    return file;
  });
  return execFileSync("unshare", ["--net", "--fork", "sh", "-ec", script, "sh", ...files], {
    encoding: "utf8",
  });
}

describe.skipIf(!isRoot || !hasTools)("renderNft with the real nft in a throwaway network namespace", () => {
  it.each([
    ["masquerade", MASQUERADE],
    ["SNAT with ranges", SNAT],
  ])("%s passes nft -c", (_, s) => {
    expect(() => inNetns('nft -c -f "$1"', renderNft(s))).not.toThrow();
  });

  it("loads twice in a row (table missing, then present) and lists the same rules", () => {
    const script =
      'nft -f "$1"; nft list table ip pnc-nat-x; nft -f "$1"; echo ===; nft list table ip pnc-nat-x';
    const [first, second] = inNetns(script, renderNft(SNAT)).split("===\n");
    expect(second).toBe(first);
    expect(first).toContain('iifname "ve-*" oifname "eth0" snat to 203.0.113.5');
    expect(first).toContain('iifname { "br0", "br1" } oifname "eth0" snat to 203.0.113.5');
    expect(first).toContain('iifname "eth0" udp dport 8000-8010 dnat to 10.233.1.2:8000-8010');
    expect(first.match(/snat to/g)).toHaveLength(5);
  });

  it("replaces the previous rules instead of adding to them, and leaves other tables alone", () => {
    const other =
      "table ip somebody-else {\n\tchain c {\n\t\ttype nat hook postrouting priority srcnat;\n\t\tmasquerade\n\t}\n}\n";
    const next = renderNft(spec({ internalInterfaces: ["br9"] }));
    const listed = inNetns(
      'nft -f "$1"; nft -f "$2"; nft -f "$3"; nft list ruleset',
      other,
      renderNft(SNAT),
      next,
    );
    expect(listed).toContain("table ip somebody-else");
    expect(listed).toContain('iifname "br9" oifname "eth0" masquerade');
    expect(listed).not.toContain("203.0.113.5");
    expect(listed.match(/table ip pnc-nat-x/g)).toHaveLength(1);
  });

  it("passes nft -c with only wildcard interfaces, a /0 range, SNAT and the full port range", () => {
    const all = spec({
      internalInterfaces: ["ve-+", "vz-*"],
      internalIPs: ["0.0.0.0/0"],
      externalIP: "198.51.100.1",
      forwardPorts: [{ sourcePort: "1-65535", destination: "10.233.1.2" }],
    });
    expect(() => inNetns('nft -c -f "$1"', renderNft(all))).not.toThrow();
  });
});

const REFLECTED = spec({
  internalIPs: ["10.233.0.0/16"],
  forwardPorts: [{ sourcePort: 8080, destination: "10.233.1.2:80" }],
  loopbackIPs: ["192.0.2.10", "127.0.0.1"],
});

describe("renderNft with loopbackIPs (NAT reflection, hairpin)", () => {
  it("DNATs the loopback IPs in prerouting (not 127/8) and output, and masquerades our DNATs from inside", () => {
    const text = renderNft(REFLECTED);
    expect(text).toContain('\t\tiifname "eth0" tcp dport 8080 dnat to 10.233.1.2:80\n');
    expect(text).toContain("\t\tip daddr 192.0.2.10 tcp dport 8080 dnat to 10.233.1.2:80\n");
    expect(text).toContain("\t\tip daddr { 192.0.2.10, 127.0.0.1 } tcp dport 8080 dnat to 10.233.1.2:80\n");
    expect(text).toContain('\t\tiifname "ve-*" ip daddr 10.233.1.2 ct status dnat masquerade\n');
    expect(text).toContain("\t\tip saddr 10.233.0.0/16 ip daddr 10.233.1.2 ct status dnat masquerade\n");
    expect(text).toContain("\t\tip saddr 127.0.0.0/8 ip daddr 10.233.1.2 ct status dnat masquerade\n");
    // Prerouting never DNATs 127.0.0.1: loopback traffic never comes in from outside.
    expect(text.split("chain post")[0]).not.toMatch(/ip daddr \{?[^\n]*127\.0\.0\.1[^\n]*\n[^\n]*chain out/);
  });

  it("adds nothing without loopbackIPs (the NixOS default)", () => {
    expect(renderNft(MASQUERADE)).toBe(MASQUERADE_TEXT);
    expect(renderNft(MASQUERADE)).not.toContain("ct status dnat");
  });

  it("shows allowForward's filter chain and jump after the table in the preview ruleset", () => {
    const shown = renderRuleset(spec({ ...{ internalIPs: ["10.233.0.0/16"] }, allowForward: true }));
    expect(shown.startsWith(renderNft(spec({ internalIPs: ["10.233.0.0/16"] })))).toBe(true);
    expect(shown).toContain("*filter\n:pnc-nat-x-fwd - [0:0]\n");
    expect(shown).toContain("-A pnc-nat-x-fwd -i ve-+ -o eth0 -j ACCEPT\n");
    expect(shown).toContain("iptables -w -t filter -I DOCKER-USER|FORWARD -j pnc-nat-x-fwd\n");
  });
});

describe.skipIf(!isRoot || !hasTools)("renderNft with loopbackIPs in the real nft", () => {
  it("passes nft -c and lists the reflection and hairpin rules", () => {
    const listed = inNetns('nft -f "$1"; nft list table ip pnc-nat-x', renderNft(REFLECTED));
    expect(listed).toContain("ip daddr { 127.0.0.1, 192.0.2.10 } tcp dport 8080 dnat to 10.233.1.2:80");
    expect(listed).toContain('iifname "ve-*" ip daddr 10.233.1.2 ct status dnat masquerade');
  });
});
