// The iptables renderer: golden restore texts, jumps and delete commands, and the real iptables-restore
// (nf_tables and, when installed, legacy) loading them in a throwaway network namespace, never the machine's.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  deleteIptables,
  iptablesChainNames,
  iptablesJumpArgv,
  renderForward,
  renderIptables,
} from "../../provider/core/natRuleIptables";
import { NAT_NAME_MAX_LENGTH, NatSpec, parseNatInputs } from "../../provider/core/natRuleSpec";
import { renderRuleset } from "../../provider/core/natRuleNftables";
import { quoteArgv } from "../../provider/ssh/quote";

function spec(raw: Record<string, unknown>): NatSpec {
  const { spec: parsed, failures } = parseNatInputs({
    name: "x",
    backend: "iptables",
    externalInterface: "eth0",
    ...raw,
  });
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

const MASQUERADE_RESTORE = `# Managed by pulumi-nixos-containers (NatRule x): defines and flushes only the chains below.
*nat
:pnc-nat-x-pre - [0:0]
:pnc-nat-x-post - [0:0]
:pnc-nat-x-out - [0:0]
-F pnc-nat-x-pre
-F pnc-nat-x-post
-F pnc-nat-x-out
-A pnc-nat-x-pre -i ve-+ -j MARK --set-mark 0x10000000/0x10000000
-A pnc-nat-x-pre -i eth0 -p tcp --dport 8080 -j DNAT --to-destination 10.233.1.2:80
-A pnc-nat-x-post -m mark --mark 0x10000000/0x10000000 -o eth0 -j MASQUERADE
-A pnc-nat-x-post -s 10.233.0.0/16 -o eth0 -j MASQUERADE
COMMIT
`;

const SNAT = spec({
  internalInterfaces: ["ve-*", "br0"],
  externalIP: "203.0.113.5",
  forwardPorts: [
    { sourcePort: "8000-8010", destination: "10.233.1.2:8000-8010", proto: "udp" },
    { sourcePort: "9000:9001", destination: "10.233.1.3:7000-7001" },
  ],
});

const SNAT_RESTORE = `# Managed by pulumi-nixos-containers (NatRule x): defines and flushes only the chains below.
*nat
:pnc-nat-x-pre - [0:0]
:pnc-nat-x-post - [0:0]
:pnc-nat-x-out - [0:0]
-F pnc-nat-x-pre
-F pnc-nat-x-post
-F pnc-nat-x-out
-A pnc-nat-x-pre -i ve-+ -j MARK --set-mark 0x10000000/0x10000000
-A pnc-nat-x-pre -i br0 -j MARK --set-mark 0x10000000/0x10000000
-A pnc-nat-x-pre -i eth0 -p udp --dport 8000:8010 -j DNAT --to-destination 10.233.1.2:8000-8010
-A pnc-nat-x-pre -i eth0 -p tcp --dport 9000 -j DNAT --to-destination 10.233.1.3:7000
-A pnc-nat-x-pre -i eth0 -p tcp --dport 9001 -j DNAT --to-destination 10.233.1.3:7001
-A pnc-nat-x-post -m mark --mark 0x10000000/0x10000000 -o eth0 -j SNAT --to-source 203.0.113.5
-A pnc-nat-x-out -d 203.0.113.5 -p udp --dport 8000:8010 -j DNAT --to-destination 10.233.1.2:8000-8010
-A pnc-nat-x-out -d 203.0.113.5 -p tcp --dport 9000 -j DNAT --to-destination 10.233.1.3:7000
-A pnc-nat-x-out -d 203.0.113.5 -p tcp --dport 9001 -j DNAT --to-destination 10.233.1.3:7001
COMMIT
`;

describe("renderIptables", () => {
  it("renders masquerade like NixOS, with the default wildcard as ve-+", () => {
    const r = renderIptables(MASQUERADE);
    expect(r.restore).toBe(MASQUERADE_RESTORE);
    expect(r.chains).toEqual(["pnc-nat-x-pre", "pnc-nat-x-post", "pnc-nat-x-out"]);
    expect(r.jumps).toEqual([
      { chain: "PREROUTING", jump: "pnc-nat-x-pre" },
      { chain: "POSTROUTING", jump: "pnc-nat-x-post" },
      { chain: "OUTPUT", jump: "pnc-nat-x-out" },
    ]);
  });

  it("renders SNAT, ve-* as ve-+, port ranges with ':' in --dport and '-' in --to-destination, output DNAT", () => {
    expect(renderIptables(SNAT).restore).toBe(SNAT_RESTORE);
  });

  it("leaves out the mark rule when there are no internal interfaces", () => {
    const restore = renderIptables(spec({ internalInterfaces: [], internalIPs: ["10.0.0.0/8"] })).restore;
    expect(restore).not.toContain("mark");
    expect(restore).toContain("-A pnc-nat-x-post -s 10.0.0.0/8 -o eth0 -j MASQUERADE\n");
  });

  it("keeps every chain name within iptables' 28 characters for the longest id", () => {
    const names = Object.values(iptablesChainNames("a".repeat(NAT_NAME_MAX_LENGTH)));
    expect(Math.max(...names.map((n) => n.length))).toBe(28);
  });

  it("shows the restore text and the jump commands in preview", () => {
    expect(renderRuleset(MASQUERADE)).toBe(
      MASQUERADE_RESTORE +
        '# jumps, each inserted once if "-C" does not find it:\n' +
        "iptables -w -t nat -I PREROUTING -j pnc-nat-x-pre\n" +
        "iptables -w -t nat -I POSTROUTING -j pnc-nat-x-post\n" +
        "iptables -w -t nat -I OUTPUT -j pnc-nat-x-out\n",
    );
  });

  it("builds jump check/insert argv", () => {
    expect(iptablesJumpArgv({ chain: "OUTPUT", jump: "pnc-nat-x-out" }, "-C")).toEqual([
      "iptables",
      "-w",
      "-t",
      "nat",
      "-C",
      "OUTPUT",
      "-j",
      "pnc-nat-x-out",
    ]);
  });
});

describe("deleteIptables", () => {
  it("removes the jumps, then flushes and deletes our chains, from the id alone", () => {
    expect(deleteIptables({ name: "x" }).map((argv) => argv.join(" "))).toEqual([
      "iptables -w -t nat -D PREROUTING -j pnc-nat-x-pre",
      "iptables -w -t nat -D POSTROUTING -j pnc-nat-x-post",
      "iptables -w -t nat -D OUTPUT -j pnc-nat-x-out",
      "iptables -w -t nat -F pnc-nat-x-pre",
      "iptables -w -t nat -F pnc-nat-x-post",
      "iptables -w -t nat -F pnc-nat-x-out",
      "iptables -w -t nat -X pnc-nat-x-pre",
      "iptables -w -t nat -X pnc-nat-x-post",
      "iptables -w -t nat -X pnc-nat-x-out",
    ]);
  });
});

const isRoot = process.getuid?.() === 0;
const has = (tool: string): boolean => spawnSync("sh", ["-c", 'command -v "$1"', "sh", tool]).status === 0;
const dir = mkdtempSync(join(tmpdir(), "pnc-ipt-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `script` with the restore text as file $1 in a fresh network namespace that dies with it. */
function inNetns(script: string, restore: string): string {
  const file = join(dir, "rules.restore");
  writeFileSync(file, restore);
  return execFileSync("unshare", ["--net", "--fork", "sh", "-ec", script, "sh", file], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Our rules as iptables-save prints them, without the chain header and counters. */
function ourRules(saved: string): string[] {
  return saved.split("\n").filter((line) => line.startsWith("-A ") && line.includes("pnc-nat-x"));
}

const variants = [
  { name: "iptables (nf_tables)", restore: "iptables-restore", save: "iptables-save", iptables: "iptables" },
  {
    name: "iptables-legacy",
    restore: "iptables-legacy-restore",
    save: "iptables-legacy-save",
    iptables: "iptables-legacy",
  },
];

describe.each(variants)("renderIptables with the real $name in a throwaway network namespace", (v) => {
  const ready = isRoot && has("unshare") && has(v.restore) && has(v.save) && has(v.iptables);
  const tool = (argv: readonly string[]): string[] => [v.iptables, ...argv.slice(1)];

  it.skipIf(!ready)("loads twice without duplicating rules, then the jumps are added once", () => {
    const { restore, jumps } = renderIptables(SNAT);
    const addJumps = jumps
      .map(
        (j) =>
          `${quoteArgv(tool(iptablesJumpArgv(j, "-C")))} || ${quoteArgv(tool(iptablesJumpArgv(j, "-I")))}`,
      )
      .join("\n");
    const script = [
      `${v.restore} --noflush < "$1"`,
      `${v.restore} --noflush < "$1"`,
      addJumps,
      addJumps,
      `${v.save} -t nat`,
    ].join("\n");
    const saved = inNetns(script, restore);
    expect(ourRules(saved)).toEqual([
      "-A PREROUTING -j pnc-nat-x-pre",
      "-A OUTPUT -j pnc-nat-x-out",
      "-A POSTROUTING -j pnc-nat-x-post",
      "-A pnc-nat-x-out -d 203.0.113.5/32 -p udp -m udp --dport 8000:8010 -j DNAT --to-destination 10.233.1.2:8000-8010",
      "-A pnc-nat-x-out -d 203.0.113.5/32 -p tcp -m tcp --dport 9000 -j DNAT --to-destination 10.233.1.3:7000",
      "-A pnc-nat-x-out -d 203.0.113.5/32 -p tcp -m tcp --dport 9001 -j DNAT --to-destination 10.233.1.3:7001",
      "-A pnc-nat-x-post -o eth0 -m mark --mark 0x10000000/0x10000000 -j SNAT --to-source 203.0.113.5",
      "-A pnc-nat-x-pre -i ve-+ -j MARK --set-xmark 0x10000000/0x10000000",
      "-A pnc-nat-x-pre -i br0 -j MARK --set-xmark 0x10000000/0x10000000",
      "-A pnc-nat-x-pre -i eth0 -p udp -m udp --dport 8000:8010 -j DNAT --to-destination 10.233.1.2:8000-8010",
      "-A pnc-nat-x-pre -i eth0 -p tcp -m tcp --dport 9000 -j DNAT --to-destination 10.233.1.3:7000",
      "-A pnc-nat-x-pre -i eth0 -p tcp -m tcp --dport 9001 -j DNAT --to-destination 10.233.1.3:7001",
    ]);
  });

  it.skipIf(!ready)("replaces the rules of a changed spec and leaves other chains alone", () => {
    const other = `${v.iptables} -w -t nat -N someone-else && ${v.iptables} -w -t nat -A someone-else -j RETURN`;
    const first = join(dir, "first.restore");
    writeFileSync(first, renderIptables(MASQUERADE).restore);
    const script = [
      other,
      `${v.restore} --noflush < ${quoteArgv([first])}`,
      `${v.restore} --noflush < "$1"`,
      `${v.save} -t nat`,
    ].join("\n");
    const saved = inNetns(script, renderIptables(SNAT).restore);
    expect(saved).toContain("-A someone-else -j RETURN");
    expect(saved).not.toContain("MASQUERADE");
    expect(saved).not.toContain("10.233.0.0/16");
  });

  it.skipIf(!ready)("deleteIptables removes everything it added and nothing else", () => {
    const { restore, jumps } = renderIptables(MASQUERADE);
    const script = [
      `${v.iptables} -w -t nat -N someone-else`,
      `${v.restore} --noflush < "$1"`,
      ...jumps.map((j) => quoteArgv(tool(iptablesJumpArgv(j, "-I")))),
      ...deleteIptables(MASQUERADE).map((argv) => quoteArgv(tool(argv))),
      `${v.save} -t nat`,
    ].join("\n");
    const saved = inNetns(script, restore);
    expect(saved).not.toContain("pnc-nat-x");
    expect(saved).toContain(":someone-else - [0:0]");
  });
});

describe("renderIptables with loopbackIPs and allowForward", () => {
  const reflected = spec({
    internalIPs: ["10.233.0.0/16"],
    forwardPorts: [{ sourcePort: 8080, destination: "10.233.1.2:80" }],
    loopbackIPs: ["192.0.2.10", "127.0.0.1"],
    allowForward: true,
  });

  it("DNATs the loopback IPs (prerouting without 127/8, output with) and masquerades our DNATs from inside", () => {
    const { restore } = renderIptables(reflected);
    expect(restore).toContain(
      "-A pnc-nat-x-pre -d 192.0.2.10 -p tcp --dport 8080 -j DNAT --to-destination 10.233.1.2:80\n",
    );
    expect(restore).not.toContain("-A pnc-nat-x-pre -d 127.0.0.1");
    expect(restore).toContain(
      "-A pnc-nat-x-out -d 127.0.0.1 -p tcp --dport 8080 -j DNAT --to-destination 10.233.1.2:80\n",
    );
    expect(restore).toContain(
      "-A pnc-nat-x-post -m mark --mark 0x10000000/0x10000000 -d 10.233.1.2 -m conntrack --ctstate DNAT -j MASQUERADE\n",
    );
    expect(restore).toContain(
      "-A pnc-nat-x-post -s 127.0.0.0/8 -d 10.233.1.2 -m conntrack --ctstate DNAT -j MASQUERADE\n",
    );
  });

  it("renders the forward chain: out, replies, and both directions of the port forwards", () => {
    expect(renderForward(reflected)).toBe(
      [
        "# Managed by pulumi-nixos-containers (NatRule x): defines and flushes only the chain below.",
        "*filter",
        ":pnc-nat-x-fwd - [0:0]",
        "-F pnc-nat-x-fwd",
        "-A pnc-nat-x-fwd -i ve-+ -o eth0 -j ACCEPT",
        "-A pnc-nat-x-fwd -s 10.233.0.0/16 -o eth0 -j ACCEPT",
        "-A pnc-nat-x-fwd -i eth0 -o ve-+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A pnc-nat-x-fwd -i eth0 -d 10.233.0.0/16 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A pnc-nat-x-fwd -m conntrack --ctstate DNAT --ctreplsrc 10.233.1.2 -j ACCEPT",
        "COMMIT",
        "",
      ].join("\n"),
    );
    expect(renderForward(spec({}))).toBeUndefined();
  });

  it.each(variants)("loads into the real $name (nat and filter)", (v) => {
    const ready = isRoot && has("unshare") && has(v.restore) && has(v.save);
    if (!ready) return;
    const file = join(dir, "forward.restore");
    writeFileSync(file, renderForward(reflected) ?? "");
    const saved = inNetns(
      `${v.restore} --noflush < "$1"; ${v.restore} --noflush < ${quoteArgv([file])}; ${v.save}`,
      renderIptables(reflected).restore,
    );
    expect(saved).toContain("-A pnc-nat-x-fwd -m conntrack --ctstate DNAT --ctreplsrc 10.233.1.2 -j ACCEPT");
    expect(saved).toContain(
      "-A pnc-nat-x-post -s 127.0.0.0/8 -d 10.233.1.2/32 -m conntrack --ctstate DNAT -j MASQUERADE",
    );
  });
});
