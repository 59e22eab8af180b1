// The host half without a host: every script every resource definition builds, for representative specs, parses
// under `sh -n` and passes `shellcheck -s sh` (where installed; CI installs it), and every parser of what the
// scripts print turns fixtures into the typed outcome and observations the runtime works from.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { observeContainer } from "../../provider/host/containerScripts";
import { observeNat } from "../../provider/host/natRuleScripts";
import { observeNm } from "../../provider/host/nmUnmanagedScripts";
import { observeNetworkd } from "../../provider/host/networkdUnmanagedScripts";
import { EXIT, parseDevices, parseOutcome, parseResults } from "../../provider/host/protocol";
import { observeVeth } from "../../provider/host/vethPairScripts";
import { parseContainerInputs } from "../../provider/core/containerSpec";
import { containerDefinition } from "../../provider/runtime/containerDefinition";
import { HOST_RESOURCE_DEFINITIONS, check } from "../../provider/runtime";
import { HostResourceDefinition } from "../../provider/runtime/lifecycle";
import {
  persistApplyScript,
  persistReadScript,
  persistRemoveScript,
} from "../../provider/host/persistScripts";
import { buildBatchScript, scriptOf } from "../../provider/runtime/scriptBatch";
import {
  netnsCreateScript,
  netnsDeleteScript,
  netnsReadsScript,
} from "../../provider/host/containerNetnsScripts";
import { HostResourceType } from "../../provider/core/types";

const CONNECTION = { host: "10.0.0.1", privateKey: "KEY" };

/** Representative raw inputs per resource type: each driver, backend and option that changes a script. */
const SPECS: Record<HostResourceType, Record<string, unknown>[]> = {
  Container: [
    {
      connection: CONNECTION,
      name: "web",
      driver: "netns",
      hostAddress: "10.233.1.1",
      localAddress: "10.233.1.2",
    },
    { connection: CONNECTION, name: "auto", driver: "netns" },
    {
      connection: CONNECTION,
      name: "nx",
      driver: "nixos",
      config: "{ services.nginx.enable = true; }",
      autoStart: true,
    },
    { connection: CONNECTION, name: "fl", driver: "nixos", flake: "github:me/repo#web", adopt: true },
    {
      connection: CONNECTION,
      name: "brn",
      driver: "netns",
      hostBridge: "br0",
      hostAddress: "192.168.50.1",
      localAddress: "192.168.50.5/24",
    },
    { connection: CONNECTION, name: "brx", driver: "nixos", hostBridge: "br0" },
    {
      connection: CONNECTION,
      name: "six",
      driver: "netns",
      hostAddress: "10.233.9.1",
      localAddress: "10.233.9.2",
      hostAddress6: "fd00:233:9::1",
      localAddress6: "fd00:233:9::2",
      persist: true,
    },
    {
      connection: CONNECTION,
      name: "nx6",
      driver: "nixos",
      hostAddress: "10.233.8.1",
      localAddress: "10.233.8.2",
      hostAddress6: "FD00:233:8:0::1",
      localAddress6: "fd00:233:8::2",
    },
  ],
  VethPair: [
    {
      connection: CONNECTION,
      container: "web",
      hostInterface: "vx6-web",
      containerInterface: "eth3",
      hostAddress: "10.250.6.1",
      localAddress: "10.250.6.2",
      hostAddress6: "fd00:250:6::1",
      localAddress6: "fd00:250:6::2",
    },
    {
      connection: CONNECTION,
      container: "web",
      hostInterface: "vx-web",
      containerInterface: "eth1",
      hostAddress: "10.1.0.1",
      localAddress: "10.1.0.2",
    },
    {
      connection: CONNECTION,
      container: "web",
      hostInterface: "vb-web",
      containerInterface: "eth2",
      hostBridge: "br0",
      localAddress: "192.168.50.5/24",
    },
  ],
  NatRule: [
    {
      connection: CONNECTION,
      name: "nat",
      externalInterface: "eth0",
      forwardPorts: [{ sourcePort: "8000:8010", destination: "10.233.1.2:9000-9010" }],
    },
    {
      connection: CONNECTION,
      name: "ipt",
      externalInterface: "eth0",
      backend: "iptables",
      externalIP: "198.18.0.9",
    },
    {
      connection: CONNECTION,
      name: "fwd",
      externalInterface: "eth0",
      backend: "iptables",
      allowForward: true,
      loopbackIPs: ["192.0.2.10", "127.0.0.1"],
      forwardPorts: [{ sourcePort: 8080, destination: "10.233.1.2:80" }],
      persist: true,
    },
    {
      connection: CONNECTION,
      name: "six",
      externalInterface: "eth0",
      ipv6: "nat66",
      internalIPv6s: ["fd00:1::/48"],
      allowForward: true,
      forwardPorts: [{ sourcePort: 8080, destination: "[fd00:1::2]:80" }],
    },
    {
      connection: CONNECTION,
      name: "six-ipt",
      externalInterface: "eth0",
      backend: "iptables",
      ipv6: "nat66",
      externalIPv6: "2001:db8::5",
      allowForward: true,
      persist: true,
    },
    {
      connection: CONNECTION,
      name: "routed",
      externalInterface: "eth0",
      ipv6: "routed",
      internalIPv6s: ["2001:db8:1::/48"],
      allowForward: true,
    },
  ],
  NmUnmanaged: [
    { connection: CONNECTION, name: "nm", devices: ["interface-name:ve-*", "mac:00:11:22:33:44:55"] },
  ],
  NetworkdUnmanaged: [
    { connection: CONNECTION, name: "nd" },
    { connection: CONNECTION, name: "nd2", interfaces: ["ve-web", "vz-[ab]*"], persist: true },
  ],
};

const OPERATIONS = ["create", "update", "read", "delete"] as const;
const OWNER = { token: "0123456789abcdef", legacy: false, resource: "Container web" };

function scriptsOf<Spec>(definition: HostResourceDefinition<Spec, unknown>, raw: Record<string, unknown>) {
  const inputs = check(definition.type, {}, raw);
  expect(inputs.failures).toEqual([]);
  const { spec } = definition.parse(inputs.inputs);
  if (!spec) throw new Error(`${definition.type} did not parse`);
  const previous = { ...inputs.inputs, hostAddress: "10.233.9.1", localAddress: "10.233.9.2" };
  return OPERATIONS.map((op) => {
    const job =
      op === "update"
        ? definition.scripts.update(spec, previous, OWNER)
        : definition.scripts[op](spec, OWNER);
    return {
      name: `${definition.type} ${String(raw.name ?? raw.hostInterface)} ${op}`,
      text: scriptOf(job, "0123abcd"),
    };
  });
}

const ALL = [
  ...Object.entries(SPECS).flatMap(([type, list]) =>
    list.flatMap((raw) =>
      scriptsOf(
        HOST_RESOURCE_DEFINITIONS[type as HostResourceType] as HostResourceDefinition<unknown, unknown>,
        raw,
      ),
    ),
  ),
  ...(["create", "delete", "read"] as const).map((op) => ({
    name: `netns ${op}s of three containers in one script`,
    text: { create: netnsCreateScript, delete: netnsDeleteScript, read: netnsReadsScript }[op](
      ["a", "b", "c"].map((name, i) => {
        const parsed = HOST_RESOURCE_DEFINITIONS.Container.parse(
          check(
            "Container",
            {},
            {
              ...SPECS.Container[0],
              name,
              hostAddress: `10.233.${i + 1}.1`,
              localAddress: `10.233.${i + 1}.2`,
            },
          ).inputs,
        );
        if (!parsed.spec) throw new Error("no spec");
        return { spec: parsed.spec, owner: OWNER };
      }),
      "0123abcd",
    ),
  })),
  { name: "batch of independent scripts", text: buildBatchScript(["echo a", "exit 3"], "0123abcd") },
  ...persistenceScripts(),
];

/** The unit scripts of a persisted NatRule, and the restore script its unit runs. */
function persistenceScripts(): { name: string; text: string }[] {
  const d = HOST_RESOURCE_DEFINITIONS.NatRule;
  const { spec } = d.parse(check("NatRule", {}, SPECS.NatRule[2]).inputs);
  const plan = spec && d.persistence?.(spec);
  if (!plan) throw new Error("no persistence plan");
  return [
    { name: "persist apply", text: persistApplyScript(plan, OWNER) },
    { name: "persist read", text: persistReadScript("nat", "fwd", plan, OWNER) },
    { name: "persist remove", text: persistRemoveScript("nat", "fwd", OWNER) },
    { name: "NatRule restore at boot", text: plan.scriptText },
    { name: "NatRule restore at boot, NAT66 on iptables", text: ipv6Plan().scriptText },
  ];
}

function ipv6Plan() {
  const d = HOST_RESOURCE_DEFINITIONS.NatRule;
  const { spec } = d.parse(check("NatRule", {}, SPECS.NatRule[4]).inputs);
  const plan = spec && d.persistence?.(spec);
  if (!plan) throw new Error("no persistence plan");
  return plan;
}

const shellcheck = spawnSync("shellcheck", ["--version"]).status === 0;

describe("every host script", () => {
  it("covers every resource type and operation", () => {
    expect(ALL.length).toBe(
      Object.values(SPECS).flat().length * OPERATIONS.length + 4 + persistenceScripts().length,
    );
  });

  it.each(ALL)("parses under sh -n: $name", ({ text }) => {
    const r = spawnSync("sh", ["-n"], { input: text, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  // SC2034 (assigned but unused): a resource's variable block is shared by all of its scripts, and not every
  // script reads every variable. SC2317 (unreachable): functions run from traps look unreachable to it.
  it.runIf(shellcheck).each(ALL)("passes shellcheck -s sh: $name", ({ text }) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pnc-shellcheck-"));
    try {
      const file = path.join(dir, "script.sh");
      fs.writeFileSync(file, text);
      const r = spawnSync("shellcheck", ["-s", "sh", "-f", "gcc", "-e", "SC2034,SC2317", file], {
        encoding: "utf8",
      });
      expect(r.stdout).toBe("");
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("quotes every user value as one assignment: a hostile config stays data", () => {
    const hostile = "'; touch /tmp/pwned; echo '$(id)`id`\\";
    const [create] = scriptsOf(HOST_RESOURCE_DEFINITIONS.Container, {
      ...SPECS.Container[2],
      config: hostile,
    });
    const assignment = create.text.split("\n").find((line) => line.startsWith("CONFIG="));
    const r = spawnSync("sh", ["-c", `${assignment ?? "exit 9"}\nprintf %s "$CONFIG"`], { encoding: "utf8" });
    expect(r.stdout).toBe(hostile);
  });
});

describe("parseOutcome", () => {
  it("reads a success's results", () => {
    const outcome = parseOutcome({
      stdout: "noise\nPNC-RESULT live=applied\nPNC-RESULT forwarding=1\n",
      stderr: "",
      code: 0,
    });
    expect(outcome).toMatchObject({ kind: "done", results: { live: "applied", forwarding: "1" } });
  });

  it("reads a refusal's reasons, one per clash line", () => {
    const stderr =
      "PNC-CLASH address 10.233.1.1 is already held by host interface ve-x\nPNC-CLASH name web: taken\n";
    expect(parseOutcome({ stdout: "", stderr, code: EXIT.refused })).toEqual({
      kind: "refused",
      reasons: ["address 10.233.1.1 is already held by host interface ve-x", "name web: taken"],
    });
  });

  it("reads a missing tool and a lock timeout", () => {
    expect(parseOutcome({ stdout: "", stderr: "PNC-MISSING nft\n", code: EXIT.missingTool })).toEqual({
      kind: "missing-tool",
      tool: "nft",
    });
    expect(
      parseOutcome({ stdout: "", stderr: "PNC-LOCK timed out after 120 s\n", code: EXIT.lockTimeout }),
    ).toEqual({
      kind: "lock-timeout",
      message: "timed out after 120 s",
    });
  });

  it("treats any other exit as a failure, noting a rollback", () => {
    expect(parseOutcome({ stdout: "x", stderr: "boom\nPNC-ROLLEDBACK\n", code: 2 })).toMatchObject({
      kind: "failed",
      rolledBack: true,
      exitCode: 2,
    });
    expect(parseOutcome({ stdout: "", stderr: "boom\n", code: 1 })).toMatchObject({
      kind: "failed",
      rolledBack: false,
    });
    // A refusal code without a reason is no refusal: something else exited 3.
    expect(parseOutcome({ stdout: "", stderr: "", code: EXIT.refused })).toMatchObject({ kind: "failed" });
  });

  it("keeps the last value of a repeated result and ignores malformed lines", () => {
    expect(parseResults("PNC-RESULT a=1\nPNC-RESULT a=2\nPNC-RESULTb=3\nPNC-RESULT c=x=y\n")).toEqual({
      a: "2",
      c: "x=y",
    });
    expect(parseDevices("PNC-DEVICE ve-web:unmanaged\nPNC-DEVICE ve-db:connected (externally)\n")).toEqual({
      "ve-web": "unmanaged",
      "ve-db": "connected (externally)",
    });
  });
});

describe("observations", () => {
  it("netns: running only with the namespace, the host link and both live addresses", () => {
    const up = {
      namespace: "1",
      hostLink: "1",
      liveHostAddress: "10.233.1.1",
      liveLocalAddress: "10.233.1.2",
    };
    expect(observeContainer("netns", up)).toEqual({
      exists: true,
      running: true,
      hostAddress: "10.233.1.1",
      localAddress: "10.233.1.2",
    });
    expect(observeContainer("netns", { ...up, liveLocalAddress: "" })).toMatchObject({
      exists: true,
      running: false,
      localAddress: undefined,
    });
    expect(observeContainer("netns", { namespace: "0", hostLink: "0", liveLocalAddress: "" })).toMatchObject({
      exists: false,
      running: false,
    });
  });

  it("nixos: addresses from the conf (prefix stripped), running when active with its veth", () => {
    const live = {
      conf: "/etc/nixos-containers/web.conf",
      confHostAddress: "10.233.1.1",
      confLocalAddress: "10.233.1.2",
      hostLink: "1",
      liveHostAddress: "10.233.1.1",
      liveLocalAddress: "10.233.1.2",
    };
    const seen = observeContainer("nixos", {
      conf: "/etc/nixos-containers/web.conf",
      confHostAddress: "10.233.1.1/24",
      confLocalAddress: "10.233.1.2",
      autoStartLink: "1",
      unitState: "active",
      hostLink: "1",
      liveHostAddress: "10.233.1.1",
      liveLocalAddress: "10.233.1.2",
    });
    expect(seen).toEqual({
      exists: true,
      running: true,
      hostAddress: "10.233.1.1",
      localAddress: "10.233.1.2",
      confPath: "/etc/nixos-containers/web.conf",
      autoStart: true,
      unitState: "active",
    });
    // Busy is not stopped: a reload keeps it serving; a start under way is not running yet, and says so.
    expect(observeContainer("nixos", { ...live, unitState: "reloading" }).running).toBe(true);
    expect(observeContainer("nixos", { ...live, unitState: "activating" })).toMatchObject({
      running: false,
      unitState: "activating",
    });
    expect(observeContainer("nixos", { conf: "" })).toEqual({ exists: false, running: false });
    // An address that drifted from the conf (changed by hand) is not running as configured.
    const drifted = {
      conf: "/etc/nixos-containers/web.conf",
      confHostAddress: "10.233.1.1",
      confLocalAddress: "10.233.1.2",
      unitState: "active",
      hostLink: "1",
      liveHostAddress: "10.9.9.9",
      liveLocalAddress: "10.233.1.2",
    };
    expect(observeContainer("nixos", drifted).running).toBe(false);
    expect(
      observeContainer("nixos", { conf: "/etc/containers/web.conf", unitState: "inactive", hostLink: "1" })
        .running,
    ).toBe(false);
  });

  it("NatRule, NmUnmanaged and VethPair reports", () => {
    expect(observeNat({ live: "altered", recorded: "1", forwarding: "0" })).toEqual({
      live: "altered",
      recorded: true,
      forwarding: false,
      forwardBlockedBy: [],
    });
    expect(
      observeNat({
        live: "applied",
        forwardBlockedBy:
          "table inet nixos-fw chain forward (policy drop); iptables chain FORWARD (policy DROP)",
      }).forwardBlockedBy,
    ).toEqual(["table inet nixos-fw chain forward (policy drop)", "iptables chain FORWARD (policy DROP)"]);
    expect(observeNat({ live: "garbage" }).live).toBe("missing");
    const content = "[keyfile]\nunmanaged-devices+=interface-name:ve-*\n";
    expect(
      observeNm(
        { exists: "1", content: Buffer.from(content).toString("base64"), running: "1" },
        "PNC-DEVICE ve-a:unmanaged\n",
      ),
    ).toEqual({ exists: true, content, running: true, devices: { "ve-a": "unmanaged" } });
    expect(
      observeVeth({ host: "1", hostAddress: "", master: "br0", localAddress: "192.168.50.5/24" }),
    ).toEqual({
      exists: true,
      hostAddress: undefined,
      localAddress: "192.168.50.5/24",
      hostBridge: "br0",
    });
  });
});

describe("NetworkdUnmanaged reports", () => {
  const content = "[Match]\nName=ve-* vb-*\n\n[Link]\nUnmanaged=yes\n";
  it("reads the file, whether networkd runs and was reloaded, and each link's setup state and network file", () => {
    expect(
      observeNetworkd(
        { exists: "1", content: Buffer.from(content).toString("base64"), running: "1", reloaded: "1" },
        "PNC-DEVICE ve-a:unmanaged \nPNC-DEVICE ve-b:configured /usr/lib/systemd/network/80-container-ve.network\n",
      ),
    ).toEqual({
      exists: true,
      content,
      running: true,
      reloaded: true,
      reloadError: undefined,
      linkStatesKnown: true,
      links: {
        "ve-a": { setup: "unmanaged" },
        "ve-b": { setup: "configured", networkFile: "/usr/lib/systemd/network/80-container-ve.network" },
      },
    });
  });

  it("reads a read's report (no reload) and a failed reload", () => {
    expect(observeNetworkd({ exists: "0", running: "0" }, "")).toEqual({
      exists: false,
      content: undefined,
      running: false,
      reloaded: undefined,
      reloadError: undefined,
      linkStatesKnown: true,
      links: {},
    });
    expect(observeNetworkd({ exists: "1", running: "1", linkStates: "unknown" }, "").linkStatesKnown).toBe(
      false,
    );
    expect(
      observeNetworkd({ exists: "1", running: "1", reloaded: "0", reloadError: "Access denied" }, ""),
    ).toMatchObject({ reloaded: false, reloadError: "Access denied" });
  });
});

describe("a container whose host end lost its address", () => {
  it("keeps both addresses in its outputs from our marker, so its state stays deletable", () => {
    const seen = observeContainer("netns", {
      namespace: "1",
      hostLink: "1",
      liveLocalAddress: "10.233.1.2",
      marker_hostAddress: "10.233.1.1",
      marker_localAddress: "10.233.1.2",
    });
    expect(seen).toMatchObject({ running: false, recordedHostAddress: "10.233.1.1" });
    const inputs = { connection: { host: "192.0.2.1" }, name: "web", driver: "netns" };
    const { spec } = parseContainerInputs(inputs);
    const outs = containerDefinition.outputs(spec!, seen, undefined, "create");
    expect(outs).toMatchObject({ hostAddress: "10.233.1.1", localAddress: "10.233.1.2", running: false });
    // The state (inputs and outputs) parses again: its delete can run.
    expect(parseContainerInputs({ ...inputs, ...outs }).failures).toEqual([]);
  });
});
