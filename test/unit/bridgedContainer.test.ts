// Bridged containers (`hostBridge`, NixOS's `nixos-container --bridge`): what check validates and shows at
// preview, what diff replaces, what the host scripts of both drivers do, and how their reports are read.
import { describe, expect, it } from "vitest";
import { check, diff } from "../../provider/runtime";
import { PROVIDER_KEY, Props } from "../../provider/runtime/common";
import { UNKNOWN } from "../../provider/core/validate";
import { parseContainerInputs } from "../../provider/core/containerSpec";
import { containerDefinition } from "../../provider/runtime/containerDefinition";
import { observeContainer } from "../../provider/host/containerScripts";
import { scriptOf } from "../../provider/runtime/scriptBatch";

const CONNECTION = { host: "10.0.0.1", port: 22, user: "root", privateKey: "KEY-A" };
const BRIDGED = {
  connection: CONNECTION,
  name: "web",
  driver: "netns",
  hostBridge: "br0",
  localAddress: "192.168.50.5/24",
};
const OWNER = { token: "0123456789abcdef", legacy: false, resource: "Container web" };

function reasons(news: Props): string[] {
  return check("Container", {}, news).failures.map((f) => f.reason);
}

function scripts(raw: Props, previous: Props = {}) {
  const { spec } = parseContainerInputs(check("Container", {}, raw).inputs);
  if (!spec) throw new Error("did not parse");
  const text = (job: ReturnType<typeof containerDefinition.scripts.read>) => scriptOf(job, "0123abcd");
  return {
    spec,
    create: text(containerDefinition.scripts.create(spec, OWNER)),
    update: text(containerDefinition.scripts.update(spec, { ...raw, ...previous }, OWNER)),
    read: text(containerDefinition.scripts.read(spec, OWNER)),
    delete: text(containerDefinition.scripts.delete(spec, OWNER)),
  };
}

describe("check: a bridged Container", () => {
  it("shows the host end vb-<name> at preview, and allocates nothing", () => {
    const { inputs, failures } = check("Container", {}, BRIDGED);
    expect(failures).toEqual([]);
    expect(inputs).toMatchObject({ hostInterface: "vb-web", containerInterface: "eth0", hostBridge: "br0" });
    expect(inputs.hostAddress).toBeUndefined();
  });

  it("leaves hostInterface unknown while the bridge is unknown", () => {
    const { inputs, failures } = check("Container", {}, { ...BRIDGED, hostBridge: UNKNOWN });
    expect(failures).toEqual([]);
    expect(inputs.hostInterface).toBeUndefined();
  });

  it("accepts no address at all (DHCP from the LAN), an address without prefix, and a gateway", () => {
    expect(reasons({ ...BRIDGED, localAddress: undefined })).toEqual([]);
    expect(reasons({ ...BRIDGED, localAddress: "192.168.50.5" })).toEqual([]);
    expect(reasons({ ...BRIDGED, hostAddress: "192.168.50.1" })).toEqual([]);
    expect(reasons({ ...BRIDGED, driver: "nixos", hostAddress: "192.168.50.1" })).toEqual([]);
  });

  it("rejects a bad bridge name, naming the property and value", () => {
    const [reason] = reasons({ ...BRIDGED, hostBridge: "br 0;rm" });
    expect(reason).toContain("hostBridge");
    expect(reason).toContain('"br 0;rm"');
  });

  it("rejects a bad prefix with the VethPair message", () => {
    expect(reasons({ ...BRIDGED, localAddress: "192.168.50.5/33" })).toEqual([
      'localAddress "192.168.50.5/33" is invalid: use an IPv4 address, optionally with a prefix length 0-32 (e.g. "192.168.50.5/24")',
    ]);
  });

  it("rejects a gateway without an address of the container's own", () => {
    const [reason] = reasons({ ...BRIDGED, localAddress: undefined, hostAddress: "192.168.50.1" });
    expect(reason).toContain("localAddress is missing while hostAddress is set with hostBridge");
    expect(reason).toContain("default gateway");
  });

  it("rejects a gateway equal to the container's address", () => {
    expect(reasons({ ...BRIDGED, hostAddress: "192.168.50.5" })).toEqual([
      `localAddress "192.168.50.5/24" is the gateway hostAddress: give the container an address of its own on the bridge's network`,
    ]);
  });

  it("rejects a prefix on a routed container's localAddress (only a bridged one takes it)", () => {
    const all = reasons({ ...BRIDGED, hostBridge: undefined, hostAddress: "10.233.1.1" });
    expect(all.join("\n")).toContain("localAddress");
  });
});

describe("diff: hostBridge", () => {
  const stateOf = (raw: Props): Props => ({
    ...check("Container", {}, raw).inputs,
    running: true,
    allocatedOnHost: false,
    owner: "0123456789abcdef",
    [PROVIDER_KEY]: "p",
  });
  const newsOf = (raw: Props, olds: Props): Props => ({
    ...check("Container", olds, raw).inputs,
    [PROVIDER_KEY]: "p",
  });

  it("replaces on a new bridge, deleting first (same name on the host)", () => {
    const olds = stateOf(BRIDGED);
    expect(diff("Container", "id", olds, newsOf({ ...BRIDGED, hostBridge: "br1" }, olds))).toEqual({
      changes: true,
      replaces: ["hostBridge"],
      deleteBeforeReplace: true,
    });
  });

  it("replaces when a routed container becomes bridged (ve- → vb-)", () => {
    const routed = {
      ...BRIDGED,
      hostBridge: undefined,
      hostAddress: "10.233.1.1",
      localAddress: "10.233.1.2",
    };
    const olds = stateOf(routed);
    const result = diff("Container", "id", olds, newsOf(BRIDGED, olds));
    expect(result.replaces).toEqual(["hostBridge"]);
    expect(result.deleteBeforeReplace).toBe(true);
  });

  it("updates in place for a new address, and reports nothing when nothing changed", () => {
    const olds = stateOf(BRIDGED);
    expect(
      diff("Container", "id", olds, newsOf({ ...BRIDGED, localAddress: "192.168.50.6/24" }, olds)),
    ).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    expect(diff("Container", "id", olds, newsOf(BRIDGED, olds)).changes).toBe(false);
  });
});

describe("host scripts: a bridged netns container", () => {
  it("checks the bridge before making anything, enslaves vb-<name> and addresses eth0 as given", () => {
    const { create } = scripts(BRIDGED);
    expect(create).toContain("HOST_BRIDGE=br0");
    expect(create).toContain("HOST_INTERFACE=vb-web");
    expect(create).toContain(`ip link set "$HOST_INTERFACE" master "$HOST_BRIDGE" up`);
    expect(create).toContain("does not exist on the host: make it first");
    // The bridge is checked (taken=1) before anything is claimed or made.
    const check = create.indexOf("is not a bridge on the host");
    expect(check).toBeGreaterThan(0);
    expect(check).toBeLessThan(create.indexOf("MADE_MARKER=1"));
    expect(check).toBeLessThan(create.lastIndexOf("    ensure_container"));
  });

  it("records the container's address (no host route shows it) and removes the record on delete", () => {
    const { create, delete: remove, update } = scripts(BRIDGED);
    expect(create).toContain("ADDRESS_RECORD=/run/pulumi-nixos-containers/addresses/container-web");
    expect(create).toContain("(bridged to %s)\\n");
    // Queued for the batch's one rm, once the namespace and the veth are confirmed gone.
    expect(remove).toContain('REMOVED_FILES="$REMOVED_FILES$NL$OWNER_MARKER$NL$ADDRESS_RECORD"');
    // An update leaves its own record out of the scan.
    expect(update).toContain("OWN_RECORD=container-web");
  });

  it("never allocates for a bridged container, and checks only its own address, not the gateway", () => {
    const { create } = scripts({ ...BRIDGED, hostAddress: "192.168.50.1" });
    expect(create).toContain('if [ -z "$HOST_ADDRESS" ] && [ -z "$HOST_BRIDGE" ]; then');
    // Bridged: only the container's own addresses (both families) are claimed, never the gateways.
    expect(create).toMatch(
      /if \[ -n "\$HOST_BRIDGE" \]; then\n\s+for address in "\$LOCAL_ADDRESS" "\$LOCAL_ADDRESS6"; do/,
    );
  });

  it("removes an address the spec no longer sets, and never one it never set (DHCP)", () => {
    expect(
      scripts({ ...BRIDGED, localAddress: undefined }, { localAddress: "192.168.50.5/24" }).update,
    ).toContain("DROP_ADDRESS=1");
    expect(scripts({ ...BRIDGED, localAddress: undefined }).update).toContain("DROP_ADDRESS=0");
  });
});

describe("host scripts: a bridged nixos container", () => {
  const NIXOS = { ...BRIDGED, driver: "nixos" };

  it("passes --bridge and both addresses, empty ones too (nixos-container allocates otherwise)", () => {
    const { create } = scripts({ ...NIXOS, localAddress: undefined });
    expect(create).toContain(
      'set -- create "$CONTAINER_NAME" --host-address "$HOST_ADDRESS" --local-address "$LOCAL_ADDRESS"\n[ -n "$HOST_BRIDGE" ] && set -- "$@" --bridge "$HOST_BRIDGE"',
    );
    expect(create).toContain("HOST_ADDRESS=''");
    expect(create).toContain("LOCAL_ADDRESS=''");
  });

  it("refuses a missing bridge before claiming anything, and the delete removes vb-<name>", () => {
    const { create, delete: remove } = scripts(NIXOS);
    const check = create.indexOf("does not exist on the host: make it first");
    expect(check).toBeGreaterThan(0);
    expect(check).toBeLessThan(create.indexOf("built=0"));
    expect(remove).toContain("HOST_INTERFACE=vb-web");
    expect(remove).toContain('ip link del "$HOST_INTERFACE"');
  });

  it("update restarts when the conf's bridge differs or vb-<name> left the bridge", () => {
    const { update } = scripts(NIXOS);
    expect(update).toContain(`[ "$(sed -n 's/^HOST_BRIDGE=//p' "$conf")" != "$HOST_BRIDGE" ]`);
    expect(update).toContain('[ "$(host_master)" = "$HOST_BRIDGE" ] || restart=1');
  });
});

describe("observeContainer: bridged", () => {
  const up = {
    namespace: "1",
    hostLink: "1",
    hostUp: "1",
    hostMaster: "br0",
    liveHostAddress: "",
    liveLocalAddress: "192.168.50.5",
    liveLocalCidr: "192.168.50.5/24",
    liveGateway: "",
  };
  const want = { hostBridge: "br0", localAddress: "192.168.50.5/24" };

  it("netns: running with vb- up on the bridge and the address with its prefix", () => {
    expect(observeContainer("netns", up, want)).toEqual({
      exists: true,
      running: true,
      hostBridge: "br0",
      localAddress: "192.168.50.5/24",
      hostAddress: undefined,
    });
  });

  it("netns: not running when vb- left the bridge, is down, or the address changed", () => {
    expect(observeContainer("netns", { ...up, hostMaster: "" }, want).running).toBe(false);
    expect(observeContainer("netns", { ...up, hostUp: "0" }, want).running).toBe(false);
    expect(observeContainer("netns", { ...up, liveLocalCidr: "192.168.50.5/32" }, want)).toMatchObject({
      running: false,
      localAddress: "192.168.50.5/32",
    });
  });

  it("netns: no localAddress means whatever DHCP gave is the container's, never a change", () => {
    expect(observeContainer("netns", up, { hostBridge: "br0" })).toMatchObject({
      running: true,
      localAddress: undefined,
    });
  });

  it("netns: an address without prefix is a /32; a gateway must be the default route", () => {
    const bare = { ...up, liveLocalCidr: "192.168.50.5/32" };
    expect(
      observeContainer("netns", bare, { hostBridge: "br0", localAddress: "192.168.50.5" }),
    ).toMatchObject({
      running: true,
      localAddress: "192.168.50.5",
    });
    const gw = { ...want, hostAddress: "192.168.50.1" };
    expect(observeContainer("netns", up, gw)).toMatchObject({ running: false, hostAddress: undefined });
    expect(observeContainer("netns", { ...up, liveGateway: "192.168.50.1" }, gw)).toMatchObject({
      running: true,
      hostAddress: "192.168.50.1",
    });
  });

  it("nixos: running as the conf says (HOST_BRIDGE, LOCAL_ADDRESS with prefix)", () => {
    const nixos = {
      ...up,
      conf: "/etc/nixos-containers/web.conf",
      confHostAddress: "",
      confLocalAddress: "192.168.50.5/24",
      confHostBridge: "br0",
      unitState: "active",
      autoStartLink: "0",
    };
    expect(observeContainer("nixos", nixos)).toMatchObject({
      exists: true,
      running: true,
      hostBridge: "br0",
      localAddress: "192.168.50.5/24",
      hostAddress: undefined,
    });
    expect(observeContainer("nixos", { ...nixos, hostMaster: "br1" }).running).toBe(false);
    expect(observeContainer("nixos", { ...nixos, unitState: "failed" }).running).toBe(false);
  });
});
