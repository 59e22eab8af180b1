// The provider runtime's pure methods, as the engine calls them: `check` (defaults, computed previews,
// unknowns, failure messages, secrets) and `diff` (README's diff rules, delete-before-replace, drift).
import { describe, expect, it } from "vitest";
import { check, diff } from "../../provider/runtime";
import { PROVIDER_KEY, Props } from "../../provider/runtime/common";
import { UNKNOWN } from "../../provider/core/validate";
import { ResourceType } from "../../provider/core/types";

type Type = ResourceType;

const CONNECTION = { host: "10.0.0.1", port: 22, user: "root", privateKey: "KEY-A" };
const OTHER_HOST = { ...CONNECTION, host: "10.0.0.2" };
const PROVIDER = "serialized-provider-v1";

/** check with no previous inputs that must pass; returns the checked inputs. */
function checked(type: Type, news: Props, olds: Props = {}): Props {
  const result = check(type, olds, news);
  expect(result.failures).toEqual([]);
  return result.inputs;
}

function failuresOf(type: Type, news: Props): { property: string; reason: string }[] {
  return check(type, {}, news).failures;
}

/** Raw program inputs per type, as the resource classes send them. */
const RAW: Record<Type, Props> = {
  AddressPool: { members: ["web", "db"] },
  HostIdentity: { connection: CONNECTION },
  Container: {
    connection: CONNECTION,
    name: "web",
    hostAddress: "10.233.1.1",
    localAddress: "10.233.1.2",
    config: "{ services.nginx.enable = true; }",
  },
  VethPair: {
    connection: CONNECTION,
    container: "web",
    hostInterface: "vb-web",
    containerInterface: "eth1",
    hostAddress: "10.250.0.1",
    localAddress: "10.250.0.2",
  },
  NatRule: {
    connection: CONNECTION,
    name: "nat",
    externalInterface: "eth0",
    forwardPorts: [{ sourcePort: 8080, destination: "10.233.1.2:80" }],
  },
  NmUnmanaged: { connection: CONNECTION, name: "nm" },
  NetworkdUnmanaged: { connection: CONNECTION, name: "nd" },
};

/** What create/read add to the checked inputs: state of a healthy resource. */
/** A host resource's bookkeeping: the host key and the owner token its host objects are marked with. */
const KEPT = { hostKeyFingerprint: "SHA256:fp", owner: "0123456789abcdef" };

const HEALTHY_OUTPUTS: Record<Type, Props> = {
  AddressPool: {},
  HostIdentity: {
    hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIETAIv8KW1Of+/W5lUsSPGWwg7svBuqQvKu03XGb7hgH",
    hostKeyFingerprint: "SHA256:fp",
  },
  Container: { running: true, allocatedOnHost: false, ...KEPT },
  VethPair: { present: true, ...KEPT },
  NatRule: { live: "applied", forwarding: true, ...KEPT },
  NmUnmanaged: { present: true, networkManagerRunning: true, ...KEPT },
  NetworkdUnmanaged: { present: true, networkdRunning: true, reloaded: true, unmanagedLinks: [], ...KEPT },
};

/** Old outputs in state: checked raw inputs, the outputs of a healthy resource, and the provider. */
function stateOf(type: Type, raw: Props = RAW[type], extra: Props = {}): Props {
  return { ...checked(type, raw), ...HEALTHY_OUTPUTS[type], [PROVIDER_KEY]: PROVIDER, ...extra };
}

/** New inputs as the engine passes them to diff: the program's inputs after check. */
function newsOf(type: Type, raw: Props, olds: Props, provider = PROVIDER): Props {
  return { ...check(type, olds, raw).inputs, [PROVIDER_KEY]: provider };
}

function reasons(type: Type, news: Props): string {
  return failuresOf(type, news)
    .map((f) => f.reason)
    .join("\n");
}

describe("check: Container", () => {
  it("applies driver nixos, autoStart false and the interface names ve-<name> and eth0", () => {
    const inputs = checked("Container", { connection: CONNECTION, name: "web" });
    expect(inputs).toMatchObject({
      driver: "nixos",
      autoStart: false,
      hostInterface: "ve-web",
      containerInterface: "eth0",
    });
  });

  it("keeps a driver and autoStart that were given", () => {
    const inputs = checked("Container", {
      connection: CONNECTION,
      name: "db",
      driver: "netns",
      autoStart: true,
    });
    expect(inputs).toMatchObject({ driver: "netns", autoStart: true, hostInterface: "ve-db" });
  });

  it("accepts an unknown connection.host and an unknown hostAddress with a known localAddress", () => {
    checked("Container", {
      connection: { ...CONNECTION, host: UNKNOWN },
      name: "web",
      hostAddress: UNKNOWN,
      localAddress: "10.233.1.2",
    });
  });

  it("accepts an unknown connection, name and driver", () => {
    const inputs = checked("Container", { connection: UNKNOWN, name: UNKNOWN, driver: UNKNOWN });
    expect(inputs.driver).toBe(UNKNOWN);
  });

  // Regression: two unknown addresses are equal sentinels, not equal addresses.
  it("accepts hostAddress and localAddress that are both unknown (outputs of another resource)", () => {
    checked("Container", {
      connection: CONNECTION,
      name: "web",
      hostAddress: UNKNOWN,
      localAddress: UNKNOWN,
    });
  });

  it("rejects a bad name, naming the property, the value and what is allowed", () => {
    const failures = failuresOf("Container", { connection: CONNECTION, name: "web_frontend" });
    expect(failures).toEqual([
      {
        property: "name",
        reason: expect.stringContaining(
          'name "web_frontend" is not a valid container name: use 1-11 characters',
        ),
      },
    ]);
    expect(
      check("Container", {}, { connection: CONNECTION, name: "web_frontend" }).inputs.hostInterface,
    ).toBe(undefined);
  });

  it("rejects an unsupported driver with the choices", () => {
    expect(failuresOf("Container", { connection: CONNECTION, name: "web", driver: "docker" })).toEqual([
      {
        property: "driver",
        reason: expect.stringMatching(/^driver "docker" is not supported: use "nixos".*"netns"/),
      },
    ]);
  });

  it("rejects a hostAddress without localAddress, and equal addresses", () => {
    expect(
      failuresOf("Container", { connection: CONNECTION, name: "web", hostAddress: "10.233.1.1" }).map(
        (f) => f.property,
      ),
    ).toEqual(["localAddress"]);
    expect(
      failuresOf("Container", {
        connection: CONNECTION,
        name: "web",
        hostAddress: "10.233.1.1",
        localAddress: "10.233.1.1",
      }),
    ).toEqual([
      { property: "localAddress", reason: expect.stringContaining('"10.233.1.1" equals hostAddress') },
    ]);
  });

  it("rejects an invalid address, showing it", () => {
    const failures = failuresOf("Container", {
      connection: CONNECTION,
      name: "web",
      hostAddress: "10.233.1.300",
      localAddress: "10.233.1.2",
    });
    expect(failures).toEqual([
      { property: "hostAddress", reason: expect.stringContaining('"10.233.1.300"') },
    ]);
  });

  it("rejects config with driver netns, and config together with flake", () => {
    expect(
      failuresOf("Container", { connection: CONNECTION, name: "web", driver: "netns", config: "{ }" }),
    ).toEqual([{ property: "config", reason: expect.stringContaining('driver is "netns"') }]);
    expect(
      failuresOf("Container", {
        connection: CONNECTION,
        name: "web",
        config: "{ }",
        flake: "github:o/r#web",
      }).map((f) => f.property),
    ).toContain("flake");
  });

  it("rejects a non-boolean autoStart", () => {
    expect(failuresOf("Container", { connection: CONNECTION, name: "web", autoStart: "yes" })).toEqual([
      { property: "autoStart", reason: 'autoStart must be true or false, got "yes"' },
    ]);
  });
});

describe("check: VethPair", () => {
  it("passes the inputs through unchanged (it has no defaults)", () => {
    expect(checked("VethPair", RAW.VethPair)).toEqual(RAW.VethPair);
  });

  it("accepts unknown addresses and an unknown connection.host", () => {
    checked("VethPair", {
      ...RAW.VethPair,
      connection: { ...CONNECTION, host: UNKNOWN },
      hostAddress: UNKNOWN,
      localAddress: UNKNOWN,
    });
  });

  it("rejects the container's own main veth and eth0 inside, saying what to pick", () => {
    const failures = failuresOf("VethPair", {
      ...RAW.VethPair,
      hostInterface: "ve-web",
      containerInterface: "eth0",
    });
    expect(failures).toEqual([
      {
        property: "hostInterface",
        reason: expect.stringContaining('"ve-web" is the container\'s own main veth'),
      },
      {
        property: "containerInterface",
        reason: expect.stringContaining('"eth0" is taken inside every container'),
      },
    ]);
  });

  it("rejects hostAddress together with hostBridge", () => {
    expect(failuresOf("VethPair", { ...RAW.VethPair, hostBridge: "br0" }).map((f) => f.property)).toEqual([
      "hostAddress",
    ]);
  });

  // Regression: with a bridge, the prefix length of localAddress is validated too.
  it("rejects a bridged localAddress with an invalid prefix length", () => {
    const { hostAddress: _h, ...bridged } = RAW.VethPair;
    expect(
      failuresOf("VethPair", { ...bridged, hostBridge: "br0", localAddress: "10.1.2.5/99" }),
    ).not.toEqual([]);
  });
});

describe("check: NatRule", () => {
  it('applies backend nftables and internalInterfaces ve-+, and renders ve-+ as nftables\' "ve-*"', () => {
    const inputs = checked("NatRule", { connection: CONNECTION, name: "nat", externalInterface: "eth0" });
    expect(inputs).toMatchObject({
      backend: "nftables",
      internalInterfaces: ["ve-+"],
      internalIPs: [],
      forwardPorts: [],
    });
    expect(inputs.ruleset).toEqual(expect.stringContaining('iifname "ve-*"'));
    expect(inputs.ruleset).toEqual(expect.stringContaining("table ip pnc-nat-nat"));
    expect(inputs.ruleset).not.toContain("ve-+");
  });

  it("renders the iptables spelling ve-+ for backend iptables, also from ve-*", () => {
    const inputs = checked("NatRule", {
      connection: CONNECTION,
      name: "nat",
      externalInterface: "eth0",
      backend: "iptables",
      internalInterfaces: ["ve-*"],
    });
    expect(inputs.ruleset).toEqual(expect.stringContaining("-i ve-+"));
    expect(inputs.ruleset).not.toContain('"ve-*"');
  });

  it("renders the port forwards in the ruleset", () => {
    expect(checked("NatRule", RAW.NatRule).ruleset).toEqual(
      expect.stringContaining("tcp dport 8080 dnat to 10.233.1.2:80"),
    );
  });

  it("shows the ruleset as unknown when a forward's destination is unknown, without failures", () => {
    const inputs = checked("NatRule", {
      ...RAW.NatRule,
      connection: { ...CONNECTION, host: UNKNOWN },
      forwardPorts: [{ sourcePort: 8080, destination: UNKNOWN }],
    });
    expect(inputs.ruleset).toBe(UNKNOWN);
  });

  it("rejects an unknown backend and an overlong name, naming each", () => {
    const failures = failuresOf("NatRule", {
      ...RAW.NatRule,
      name: "a-very-long-nat-rule-name",
      backend: "pf",
    });
    expect(failures.map((f) => f.property).sort()).toEqual(["backend", "name"]);
    expect(failures.find((f) => f.property === "backend")?.reason).toEqual(
      expect.stringMatching(/backend "pf".*nftables.*iptables/),
    );
  });

  it("rejects a bad forward destination, showing it and the accepted forms", () => {
    const failures = failuresOf("NatRule", {
      ...RAW.NatRule,
      forwardPorts: [{ sourcePort: 8080, destination: "web:80" }],
    });
    expect(failures).toEqual([
      {
        property: "forwardPorts[0].destination",
        reason: expect.stringContaining('"web:80" is not a valid destination: use "ADDRESS"'),
      },
    ]);
  });

  it("rejects an internal wildcard that matches the external interface", () => {
    const failures = failuresOf("NatRule", { ...RAW.NatRule, externalInterface: "ve-out" });
    expect(failures).toEqual([
      {
        property: "internalInterfaces[0]",
        reason: expect.stringContaining('"ve-+" matches externalInterface'),
      },
    ]);
  });
});

describe("check: timeouts (every host resource)", () => {
  it("accepts whole seconds for create, update and delete, and unknown values", () => {
    for (const type of ["Container", "VethPair", "NatRule", "NmUnmanaged", "NetworkdUnmanaged"] as const) {
      expect(failuresOf(type, { ...RAW[type], timeouts: { create: 1800, update: 60, delete: 5 } })).toEqual(
        [],
      );
      expect(failuresOf(type, { ...RAW[type], timeouts: { create: UNKNOWN } })).toEqual([]);
    }
  });

  it("rejects other keys, values outside 1-86400 and a non-object, naming each", () => {
    const text = failuresOf("NatRule", { ...RAW.NatRule, timeouts: { create: 0, creat: 5, delete: 1.5 } })
      .map((f) => `${f.property}: ${f.reason}`)
      .join("\n");
    expect(text).toContain(
      "timeouts.create: timeouts.create 0 is invalid: use a whole number of seconds from 1 to 86400",
    );
    expect(text).toContain("timeouts.creat: timeouts.creat is not a timeout: use create, update or delete");
    expect(text).toContain("timeouts.delete: timeouts.delete 1.5 is invalid");
    expect(reasons("Container", { ...RAW.Container, timeouts: "30m" })).toContain(
      'timeouts must be an object such as { create: 1800 }, got "30m"',
    );
  });
});

describe("check: NmUnmanaged", () => {
  it("applies devices interface-name:ve-* and computes the drop-in path and content", () => {
    const inputs = checked("NmUnmanaged", RAW.NmUnmanaged);
    expect(inputs.devices).toEqual(["interface-name:ve-*"]);
    expect(inputs.path).toBe("/etc/NetworkManager/conf.d/pulumi-nixos-containers-nm.conf");
    expect(inputs.content).toEqual(
      expect.stringContaining("[keyfile]\nunmanaged-devices+=interface-name:ve-*\n"),
    );
  });

  it("shows path and content as unknown when devices are unknown", () => {
    const inputs = checked("NmUnmanaged", { ...RAW.NmUnmanaged, devices: [UNKNOWN] });
    expect(inputs.content).toBe(UNKNOWN);
    expect(inputs.path).toBe(UNKNOWN);
  });

  it("rejects an empty devices list, saying what to do", () => {
    expect(failuresOf("NmUnmanaged", { ...RAW.NmUnmanaged, devices: [] })).toEqual([
      { property: "devices", reason: expect.stringContaining("leave devices unset for that default") },
    ]);
  });
});

describe("check: NetworkdUnmanaged", () => {
  it("applies interfaces ve-* and vb-*, and computes the file's path and content", () => {
    const inputs = checked("NetworkdUnmanaged", RAW.NetworkdUnmanaged);
    expect(inputs.interfaces).toEqual(["ve-*", "vb-*"]);
    expect(inputs.persistence).toBeUndefined();
    expect(inputs.path).toBe("/etc/systemd/network/10-pulumi-nixos-containers-nd.network");
    expect(inputs.content).toEqual(
      expect.stringContaining("[Match]\nName=ve-* vb-*\n\n[Link]\nUnmanaged=yes\n"),
    );
  });

  it("shows path and content as unknown when interfaces are unknown", () => {
    const inputs = checked("NetworkdUnmanaged", { ...RAW.NetworkdUnmanaged, interfaces: [UNKNOWN] });
    expect(inputs.content).toBe(UNKNOWN);
    expect(inputs.path).toBe(UNKNOWN);
  });

  it("rejects an empty interfaces list and a persist that is no boolean, naming each", () => {
    expect(
      failuresOf("NetworkdUnmanaged", { ...RAW.NetworkdUnmanaged, interfaces: [], persist: "yes" }),
    ).toEqual([
      { property: "persist", reason: 'persist must be true or false, got "yes"' },
      {
        property: "interfaces",
        reason: expect.stringContaining('leave interfaces unset for the default ["ve-*", "vb-*"]'),
      },
    ]);
  });
});

describe("check: AddressPool", () => {
  it("applies cidr 10.233.0.0/16 and /24 blocks, and allocates in the nixos-container layout", () => {
    const inputs = checked("AddressPool", { members: ["web", "db"] });
    expect(inputs).toMatchObject({ cidr: "10.233.0.0/16", blockPrefixLength: 24, static: {}, exclude: [] });
    expect(inputs.capacity).toBe(254);
    expect(inputs.allocations).toEqual({
      web: { hostAddress: "10.233.1.1", localAddress: "10.233.1.2" },
      db: { hostAddress: "10.233.2.1", localAddress: "10.233.2.2" },
    });
  });

  it("computes the capacity of a denser layout", () => {
    const inputs = checked("AddressPool", { cidr: "10.10.0.0/24", blockPrefixLength: 30, members: ["a"] });
    expect(inputs.capacity).toBe(62);
    expect(inputs.allocations).toEqual({ a: { hostAddress: "10.10.0.5", localAddress: "10.10.0.6" } });
  });

  it("shows allocations as unknown when a member is unknown, without failures", () => {
    expect(checked("AddressPool", { members: ["web", UNKNOWN] }).allocations).toBe(UNKNOWN);
  });

  // Regression: known pool inputs are validated even while another input is unknown.
  it("rejects an invalid known cidr even when a member is still unknown", () => {
    expect(failuresOf("AddressPool", { cidr: "10.233.0.0/99", members: [UNKNOWN] })).not.toEqual([]);
  });

  it("rejects an invalid cidr, a bad member and a full pool, naming each", () => {
    expect(failuresOf("AddressPool", { cidr: "10.233.0.0/99", members: ["a"] })).toEqual([
      { property: "cidr", reason: expect.stringContaining('"10.233.0.0/99"') },
    ]);
    expect(failuresOf("AddressPool", { members: ["web_1"] })).toEqual([
      { property: "members[0]", reason: expect.stringContaining('"web_1" is not a valid container name') },
    ]);
    const full = failuresOf("AddressPool", { cidr: "10.9.0.0/23", members: ["a", "b"] });
    expect(full).toEqual([{ property: "members", reason: expect.stringContaining("is full") }]);
  });

  it("rejects members that are not a list", () => {
    expect(failuresOf("AddressPool", { members: "web" })).toEqual([
      { property: "members", reason: 'members must be a list of container names, got "web"' },
    ]);
  });
});

describe("check: secrets stay out of failures", () => {
  const leaky = { ...CONNECTION, password: "hunter2-secret", privateKey: "hunter2-secret-key", port: 70000 };
  const types: Type[] = ["Container", "VethPair", "NatRule", "NmUnmanaged", "NetworkdUnmanaged"];
  it.each(types)("rejects a bad connection.port on %s without showing the password", (type) => {
    const failures = failuresOf(type, { ...RAW[type], connection: leaky });
    expect(failures.map((f) => f.property)).toEqual(["connection"]);
    expect(failures[0].reason).toContain("connection.port 70000 is invalid");
    expect(reasons(type, { ...RAW[type], connection: leaky })).not.toContain("hunter2");
  });

  it("rejects a bad jump host without showing its password", () => {
    const text = reasons("Container", {
      ...RAW.Container,
      connection: { ...CONNECTION, proxy: { host: "-bad", password: "hunter2-secret" } },
    });
    expect(text).toContain("connection.proxy.host");
    expect(text).not.toContain("hunter2");
  });
});

interface Row {
  readonly type: Type;
  readonly change: string;
  readonly raw: Props;
  readonly replaces: string[];
  readonly deleteBeforeReplace?: boolean;
  /** In-place or replace: some change; `false` only for "nothing changed". */
  readonly changes?: boolean;
}

function row(
  type: Type,
  change: string,
  patch: Props,
  replaces: string[] = [],
  deleteBeforeReplace = false,
  changes = true,
): Row {
  return { type, change, raw: { ...RAW[type], ...patch }, replaces, deleteBeforeReplace, changes };
}

const CREDENTIALS_ONLY = { connection: { ...CONNECTION, user: "deploy", privateKey: "KEY-B" } };

/** README "What each change does (the diff rules)", row by row. */
const RULES: Row[] = [
  // Container
  row("Container", "name (same addresses, same host)", { name: "web2" }, ["name"], true),
  row(
    "Container",
    "name with new addresses (same host)",
    { name: "web2", hostAddress: "10.233.9.1", localAddress: "10.233.9.2" },
    ["name"],
    false,
  ),
  row("Container", "driver", { driver: "netns", config: undefined }, ["driver"], true),
  row("Container", "another host (connection.host)", { connection: OTHER_HOST }, ["connection"], false),
  row("Container", "another port", { connection: { ...CONNECTION, port: 2222 } }, ["connection"], false),
  row(
    "Container",
    "a jump host added",
    { connection: { ...CONNECTION, proxy: { host: "jump.example" } } },
    ["connection"],
    false,
  ),
  row("Container", "hostAddress/localAddress", { hostAddress: "10.233.9.1", localAddress: "10.233.9.2" }),
  row("Container", "config", { config: "{ }" }),
  row("Container", "configFile", { config: undefined, configFile: "/etc/web.nix" }),
  row("Container", "flake", { config: undefined, flake: "github:o/r#web" }),
  row("Container", "autoStart", { autoStart: true }),
  row("Container", "credentials in connection", CREDENTIALS_ONLY),
  row("Container", "nothing", {}, [], false, false),
  // VethPair
  row("VethPair", "container", { container: "db" }, ["container"], true),
  row("VethPair", "hostInterface", { hostInterface: "vb-web2" }, ["hostInterface"], true),
  row("VethPair", "containerInterface", { containerInterface: "eth2" }, ["containerInterface"], true),
  row("VethPair", "another host", { connection: OTHER_HOST }, ["connection"], false),
  row("VethPair", "addresses", { hostAddress: "10.250.0.5", localAddress: "10.250.0.6" }),
  row("VethPair", "hostBridge", { hostAddress: undefined, hostBridge: "br0" }),
  row("VethPair", "credentials in connection", CREDENTIALS_ONLY),
  row("VethPair", "nothing", {}, [], false, false),
  // NatRule
  row("NatRule", "name", { name: "nat2" }, ["name"], true),
  row("NatRule", "backend", { backend: "iptables" }, ["backend"], true),
  row("NatRule", "another host", { connection: OTHER_HOST }, ["connection"], false),
  row("NatRule", "internalInterfaces", { internalInterfaces: ["ve-+", "vb-+"] }),
  row("NatRule", "internalIPs", { internalIPs: ["10.250.0.0/24"] }),
  row("NatRule", "externalInterface", { externalInterface: "wan0" }),
  row("NatRule", "externalIP", { externalIP: "203.0.113.7" }),
  row("NatRule", "forwardPorts", { forwardPorts: [{ sourcePort: 8443, destination: "10.233.1.2:443" }] }),
  row("NatRule", "credentials in connection", CREDENTIALS_ONLY),
  row("NatRule", "nothing", {}, [], false, false),
  // NmUnmanaged
  row("NmUnmanaged", "name", { name: "nm2" }, ["name"], true),
  row("NmUnmanaged", "another host", { connection: OTHER_HOST }, ["connection"], false),
  row("NmUnmanaged", "devices", { devices: ["interface-name:ve-*", "interface-name:vb-*"] }),
  row("NmUnmanaged", "credentials in connection", CREDENTIALS_ONLY),
  row("NmUnmanaged", "nothing", {}, [], false, false),
  // NetworkdUnmanaged
  row("NetworkdUnmanaged", "name", { name: "nd2" }, ["name"], true),
  row("NetworkdUnmanaged", "another host", { connection: OTHER_HOST }, ["connection"], false),
  row("NetworkdUnmanaged", "interfaces", { interfaces: ["ve-*"] }),
  row("NetworkdUnmanaged", "persist (in place; the file needs no unit to survive a reboot)", {
    persist: true,
  }),
  row("NetworkdUnmanaged", "credentials in connection", CREDENTIALS_ONLY),
  row("NetworkdUnmanaged", "nothing", {}, [], false, false),
  // AddressPool: never replaced, never host work
  row("AddressPool", "members", { members: ["web", "db", "cache"] }),
  row("AddressPool", "cidr", { cidr: "10.234.0.0/16" }),
  row("AddressPool", "static", { static: { db: { hostAddress: "10.99.0.1", localAddress: "10.99.0.2" } } }),
  row("AddressPool", "exclude", { exclude: ["10.233.200.0/24"] }),
  row("AddressPool", "nothing", {}, [], false, false),
];

describe("diff: README's diff rules", () => {
  it.each(RULES)(
    "$type: $change → replaces $replaces",
    ({ type, raw, replaces, deleteBeforeReplace, changes }) => {
      const olds = stateOf(type);
      const result = diff(type, "id", olds, newsOf(type, raw, olds));
      expect(result).toEqual({ changes, replaces, deleteBeforeReplace });
    },
  );

  it.each(["Container", "VethPair", "NatRule", "NmUnmanaged", "NetworkdUnmanaged", "AddressPool"] as Type[])(
    "%s: a new provider version alone is a change in place (pulumi/pulumi#16826)",
    (type) => {
      const olds = stateOf(type);
      expect(diff(type, "id", olds, newsOf(type, RAW[type], olds, "serialized-provider-v2"))).toEqual({
        changes: true,
        replaces: [],
        deleteBeforeReplace: false,
      });
    },
  );

  it("treats an unknown name as a replacement", () => {
    const olds = stateOf("Container");
    expect(
      diff("Container", "id", olds, newsOf("Container", { ...RAW.Container, name: UNKNOWN }, olds)),
    ).toMatchObject({ changes: true, replaces: ["name"] });
  });

  it("treats an unknown connection.host as another host", () => {
    const olds = stateOf("NatRule");
    const raw = { ...RAW.NatRule, connection: { ...CONNECTION, host: UNKNOWN } };
    expect(diff("NatRule", "id", olds, newsOf("NatRule", raw, olds))).toEqual({
      changes: true,
      replaces: ["connection"],
      deleteBeforeReplace: false,
    });
  });

  it("treats an unknown backend as a replacement", () => {
    const olds = stateOf("NatRule");
    expect(
      diff("NatRule", "id", olds, newsOf("NatRule", { ...RAW.NatRule, backend: UNKNOWN }, olds)),
    ).toMatchObject({
      changes: true,
      replaces: ["backend"],
    });
  });

  it("treats an unknown credential as a change in place", () => {
    const olds = stateOf("VethPair");
    const raw = { ...RAW.VethPair, connection: { ...CONNECTION, privateKey: UNKNOWN } };
    expect(diff("VethPair", "id", olds, newsOf("VethPair", raw, olds))).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
  });

  it("treats an unknown member list as a change in place of the pool", () => {
    const olds = stateOf("AddressPool");
    expect(diff("AddressPool", "id", olds, newsOf("AddressPool", { members: UNKNOWN }, olds))).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
  });

  // Regression: a jump host that is not known yet may lead to another machine.
  it("treats an unknown jump host as another host", () => {
    const olds = stateOf("Container");
    const raw = { ...RAW.Container, connection: { ...CONNECTION, proxy: UNKNOWN } };
    expect(diff("Container", "id", olds, newsOf("Container", raw, olds)).replaces).toEqual(["connection"]);
  });

  // Regression: a shared localAddress alone also means the old container must go first.
  it("deletes first when a renamed container keeps only its localAddress on the same host", () => {
    const olds = stateOf("Container");
    const raw = { ...RAW.Container, name: "web2", hostAddress: "10.233.1.3" };
    expect(diff("Container", "id", olds, newsOf("Container", raw, olds))).toEqual({
      changes: true,
      replaces: ["name"],
      deleteBeforeReplace: true,
    });
  });
});

describe("diff: drift found by refresh", () => {
  const unchanged = (type: Type, extra: Props) => {
    const olds = stateOf(type, RAW[type], extra);
    return diff(type, "id", olds, newsOf(type, RAW[type], olds));
  };
  const repair = { changes: true, replaces: [], deleteBeforeReplace: false };

  it("repairs a Container that is not running", () => {
    expect(unchanged("Container", { running: false })).toEqual(repair);
  });

  it("repairs a NatRule whose rules were altered or flushed", () => {
    expect(unchanged("NatRule", { live: "altered" })).toEqual(repair);
    expect(unchanged("NatRule", { live: "missing" })).toEqual(repair);
  });

  it("repairs a NatRule whose host has forwarding off", () => {
    expect(unchanged("NatRule", { forwarding: false })).toEqual(repair);
  });

  it("repairs an NmUnmanaged drop-in or a VethPair that is no longer as applied", () => {
    expect(unchanged("NmUnmanaged", { present: false })).toEqual(repair);
    expect(unchanged("NetworkdUnmanaged", { present: false })).toEqual(repair);
    expect(unchanged("VethPair", { present: false })).toEqual(repair);
  });

  it("updates state from before ownership markers once, so its host objects get marked", () => {
    for (const type of ["Container", "VethPair", "NatRule", "NmUnmanaged", "NetworkdUnmanaged"] as const) {
      const { owner: _none, ...legacy } = stateOf(type);
      expect(diff(type, "id", legacy, newsOf(type, RAW[type], legacy))).toEqual(repair);
    }
  });

  it("keeps addresses the host allocated while the program sets none", () => {
    const raw = { connection: CONNECTION, name: "web", driver: "netns" };
    const olds = {
      ...stateOf("Container", raw),
      hostAddress: "10.233.5.1",
      localAddress: "10.233.5.2",
      allocatedOnHost: true,
    };
    expect(diff("Container", "id", olds, newsOf("Container", raw, olds))).toEqual({
      changes: false,
      replaces: [],
      deleteBeforeReplace: false,
    });
  });

  it("replaces a host-allocated container whose name changes, deleting the old one first", () => {
    const raw = { connection: CONNECTION, name: "web", driver: "netns" };
    const olds = {
      ...stateOf("Container", raw),
      hostAddress: "10.233.5.1",
      localAddress: "10.233.5.2",
      allocatedOnHost: true,
    };
    expect(diff("Container", "id", olds, newsOf("Container", { ...raw, name: "web2" }, olds))).toEqual({
      changes: true,
      replaces: ["name"],
      deleteBeforeReplace: true,
    });
  });
});

describe("persist (every host resource)", () => {
  const nat = { ...RAW.NatRule, persist: true };
  const netns = { ...RAW.Container, driver: "netns", config: undefined, persist: true };

  it("shows the unit and the script it runs at check, and nothing without persist", () => {
    const shown = checked("NatRule", nat).persistence as Props;
    expect(shown.unitPath).toBe("/etc/systemd/system.control/pnc-nat-nat.service");
    expect(shown.scriptPath).toBe("/var/lib/pulumi-nixos-containers/persist/nat-nat.sh");
    expect(shown.unitText).toContain("ReloadPropagatedFrom=nftables.service firewall.service");
    expect(shown.unitText).toContain("PartOf=nftables.service firewall.service");
    expect(shown.scriptText).toContain("dnat to 10.233.1.2:80");
    expect(checked("NatRule", RAW.NatRule).persistence).toBeUndefined();
    const container = checked("Container", netns).persistence as Props;
    expect(container.unitText).toContain("Before=network-pre.target");
    expect(container.scriptText).toContain("ensure_container");
    // Unknown inputs at preview: the plan is unknown too, never a guess.
    expect(checked("Container", { ...netns, hostAddress: UNKNOWN }).persistence).toBe(UNKNOWN);
  });

  it("refuses a non-boolean, a netns container without addresses, and a nixos container with autoStart off", () => {
    expect(reasons("NatRule", { ...RAW.NatRule, persist: "yes" })).toContain(
      'persist must be true or false, got "yes"',
    );
    expect(
      reasons("Container", { connection: CONNECTION, name: "web", driver: "netns", persist: true }),
    ).toContain("persist is true but the container has no hostAddress and localAddress");
    expect(reasons("Container", { ...RAW.Container, persist: true, autoStart: false })).toContain(
      "autoStart is false but persist is true",
    );
  });

  it("persists a nixos container by autoStart and NmUnmanaged by its file: no unit of ours", () => {
    const inputs = checked("Container", { ...RAW.Container, persist: true });
    expect(inputs).toMatchObject({ autoStart: true });
    expect(inputs.persistence).toBeUndefined();
    expect(checked("NmUnmanaged", { ...RAW.NmUnmanaged, persist: true }).persistence).toBeUndefined();
  });

  it("repairs a unit found missing or stale, removes one left while persist is off, and is quiet when current", () => {
    const repair = { changes: true, replaces: [], deleteBeforeReplace: false };
    const persisted = (persistedState: string | undefined, raw: Props) => {
      const olds = stateOf("NatRule", raw, persistedState === undefined ? {} : { persisted: persistedState });
      return diff("NatRule", "id", olds, newsOf("NatRule", raw, olds));
    };
    expect(persisted("current", nat)).toEqual({ ...repair, changes: false });
    expect(persisted("missing", nat)).toEqual(repair);
    expect(persisted("stale", nat)).toEqual(repair);
    expect(persisted("stale", RAW.NatRule)).toEqual(repair);
    expect(persisted(undefined, RAW.NatRule)).toEqual({ ...repair, changes: false });
    // Turning it on or off is an update in place.
    const olds = stateOf("NatRule", RAW.NatRule);
    expect(diff("NatRule", "id", olds, newsOf("NatRule", nat, olds))).toEqual(repair);
  });
});

describe("AddressPool check across updates", () => {
  /** One `pulumi up`: check against the previous checked inputs (what the engine passes as olds). */
  function update(previous: Props, members: string[]): Props {
    return checked("AddressPool", { members }, previous);
  }
  const allocations = (inputs: Props) => inputs.allocations as Record<string, { hostAddress: string }>;

  it("keeps everyone else's addresses when a member is removed", () => {
    const first = checked("AddressPool", { members: ["a", "b", "c", "d"] });
    const second = update(first, ["a", "c", "d"]);
    expect(allocations(second)).toEqual({
      a: allocations(first).a,
      c: allocations(first).c,
      d: allocations(first).d,
    });
  });

  it("keeps addresses when members are reordered or one is added in front", () => {
    const first = checked("AddressPool", { members: ["a", "b"] });
    const second = update(first, ["new", "b", "a"]);
    expect(allocations(second).a).toEqual(allocations(first).a);
    expect(allocations(second).b).toEqual(allocations(first).b);
    expect(allocations(second).new.hostAddress).toBe("10.233.3.1");
  });

  it("does not give a removed member's block to a member added in the same update, then frees it", () => {
    const first = checked("AddressPool", { members: ["a", "b", "c"] });
    expect(allocations(first).b.hostAddress).toBe("10.233.2.1");

    // b goes and n1 comes in one update: the engine creates n1 before it deletes b.
    const second = update(first, ["a", "c", "n1"]);
    expect(allocations(second).n1.hostAddress).toBe("10.233.4.1");
    expect(allocations(second).a).toEqual(allocations(first).a);
    expect(allocations(second).c).toEqual(allocations(first).c);

    // One update later b is gone from the olds: its block is free and goes to the next new member.
    const third = update(second, ["a", "c", "n1", "n2"]);
    expect(allocations(third).n2.hostAddress).toBe("10.233.2.1");
    expect(allocations(third).n1).toEqual(allocations(second).n1);
  });

  it("does not keep the quarantine in the checked inputs (exclude stays what the program set)", () => {
    const first = checked("AddressPool", { members: ["a", "b"] });
    expect(update(first, ["a"]).exclude).toEqual([]);
  });
});
