// Container: a container with its own network namespace, linked to the host by `ve-<name>` ↔ `eth0`, made by
// the host's `nixos-container` (driver "nixos") or as a plain network namespace (driver "netns").
import { ContainerSpec, containerInterfaces, parseContainerInputs } from "../core/containerSpec";
import { DEFAULT_TIMEOUTS, NIXOS_BUILD_TIMEOUTS } from "../core/timeouts";
import { ContainerItem, ObservedContainer, observeContainer } from "../host/containerScripts";
import { Ownership } from "../host/shell";
import {
  netnsCreateScript,
  netnsDeleteScript,
  netnsReadsScript,
  netnsRestoreScript,
  netnsUpdateScript,
} from "../host/containerNetnsScripts";
import {
  nixosCreateScript,
  nixosDeleteScript,
  nixosReadScript,
  nixosUpdateScript,
} from "../host/containerNixosScripts";
import { Failure, isUnknown } from "../core/validate";
import { renderPersistPlan } from "../core/persistence";
import { Props, hasUnknown, machineOf, withoutKeys } from "./common";
import { HOST_KEY_BOOKKEEPING, HostResourceDefinition, OWNER_BOOKKEEPING } from "./lifecycle";
import { HostJob, ScriptGroup, groupJob } from "./scriptBatch";

/** netns creates (and deletes) the engine runs together on one host share one script: one lock, one scan. */
const NETNS_CREATES: ScriptGroup<ContainerItem> = { name: "create containers", build: netnsCreateScript };
const NETNS_DELETES: ScriptGroup<ContainerItem> = { name: "delete containers", build: netnsDeleteScript };
/** netns reads of one host (a refresh) are answered from one read of the host's links and addresses. */
const NETNS_READS: ScriptGroup<ContainerItem> = { name: "read containers", build: netnsReadsScript };

function grouped(group: ScriptGroup<ContainerItem>, spec: ContainerSpec, owner: Ownership): HostJob {
  return groupJob(group, { spec, owner }, spec.name);
}

/** A script of its own; a nixos create or update builds a system, so it runs on its own command too. */
function alone(verb: string, spec: ContainerSpec, script: string): HostJob {
  const builds = spec.driver === "nixos" && (verb === "create" || verb === "update");
  return { display: `${verb} container ${spec.name}`, script, alone: builds };
}

/** The addresses to keep: what the host picked at create, while the program sets none. */
function previousAddresses(previous: Props): { hostAddress?: string; localAddress?: string } {
  const text = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  return { hostAddress: text(previous.hostAddress), localAddress: text(previous.localAddress) };
}

/**
 * Whether the system must be built again: config, configFile or flake differ from the last create's or
 * update's, or that create was cut off (its build may not have run).
 */
function configChanged(spec: ContainerSpec, previous: Props): boolean {
  // A create cut off during its build: the host knows (the marker says built=0) and the update builds then.
  if (previous.createPending === true) return false;
  const last = (key: "config" | "configFile" | "flake") =>
    typeof previous[key] === "string" && previous[key] !== "" ? previous[key] : undefined;
  return (
    spec.config !== last("config") || spec.configFile !== last("configFile") || spec.flake !== last("flake")
  );
}

/**
 * What `persist` needs: a netns container's boot unit recreates its addresses, so they must be known (given,
 * e.g. from an AddressPool, or the bridge's); a nixos container persists by autoStart, which must not be off.
 */
function persistFailures(news: Props, driver: unknown): Failure[] {
  if (news.persist !== true) return [];
  if (driver === "nixos" && news.autoStart === false) {
    return [
      {
        property: "autoStart",
        message:
          "autoStart is false but persist is true: a nixos container is restored at boot by starting it (autoStart); drop one of the two",
      },
    ];
  }
  const missing =
    news.hostAddress === undefined && news.localAddress === undefined && news.hostBridge === undefined;
  if (driver === "netns" && missing) {
    return [
      {
        property: "persist",
        message:
          "persist is true but the container has no hostAddress and localAddress: its boot unit recreates them, so give both (e.g. from an AddressPool), or set hostBridge",
      },
    ];
  }
  return [];
}

export const containerDefinition: HostResourceDefinition<ContainerSpec, ObservedContainer> = {
  type: "Container",

  check(news) {
    const { failures } = parseContainerInputs(news);
    const driver = news.driver ?? "nixos";
    // A persisted nixos container starts at boot the NixOS way: its autoStart (see persistence below).
    const persisted = news.persist === true;
    const inputs: Props = { ...news, driver, autoStart: news.autoStart ?? (persisted && driver === "nixos") };
    failures.push(...persistFailures(news, driver));
    // What preview must show: the interface names follow from the name (and the bridge: `vb-<name>`).
    const bridge = news.hostBridge;
    if (
      typeof news.name === "string" &&
      failures.every((f) => f.property !== "name") &&
      (bridge === undefined || (typeof bridge === "string" && !isUnknown(bridge)))
    ) {
      Object.assign(inputs, containerInterfaces(news.name, bridge));
    }
    return { inputs, failures };
  },
  parse: parseContainerInputs,
  persistence: (spec) =>
    spec.driver === "netns"
      ? renderPersistPlan("container", spec.name, `Container ${spec.name}`, "links", netnsRestoreScript(spec))
      : undefined,

  rules: {
    // Another bridge (or none) is another host end (`ve-` ↔ `vb-`) under the same name: delete first.
    replace: ["name", "driver", "hostBridge"],
    update: [
      "hostAddress",
      "localAddress",
      "hostAddress6",
      "localAddress6",
      "config",
      "configFile",
      "flake",
      "autoStart",
    ],
    // Same machine and a shared name or address (or addresses the host will pick): the old one goes first.
    deleteBeforeReplace: (o, n) => {
      if (machineOf(o.connection) !== machineOf(n.connection)) return false;
      if (n.hostAddress === undefined || o.name === n.name) return true;
      const old = new Set([o.hostAddress, o.localAddress]);
      return old.has(n.hostAddress) || old.has(n.localAddress) || hasUnknown([n.hostAddress, n.localAddress]);
    },
    // A refresh found the container not running, or an address missing.
    healthy: (olds) => olds.running !== false,
  },
  observed: ["running", "unitState"],
  bookkeeping: [HOST_KEY_BOOKKEEPING, "allocatedOnHost", "confPath"],
  // Addresses the host picked were no input either.
  inputsOf: (props) =>
    withoutKeys(props, [
      "running",
      "unitState",
      HOST_KEY_BOOKKEEPING,
      "allocatedOnHost",
      "confPath",
      ...OWNER_BOOKKEEPING,
      ...(props.allocatedOnHost === true ? ["hostAddress", "localAddress"] : []),
    ]),
  // Addresses allocated on the host at create stay while the program sets none.
  withKept: (olds, news) =>
    olds.allocatedOnHost === true && news.hostAddress === undefined && news.localAddress === undefined
      ? { ...news, hostAddress: olds.hostAddress, localAddress: olds.localAddress }
      : news,
  adopts: (spec) => spec.adopt,
  // A NixOS create or update evaluates and builds a system (minutes), then waits for the container to start.
  defaultTimeouts: (spec) => (spec.driver === "nixos" ? NIXOS_BUILD_TIMEOUTS : DEFAULT_TIMEOUTS),

  id: (spec, machine) => `${machine}/${spec.name}`,
  subject: (spec) => `container "${spec.name}"`,
  refusalFix: "Pick other addresses (or another name), or remove what holds them.",

  marker: (spec) => ({ kind: "container", name: spec.name }),
  scripts: {
    create: (spec, owner) =>
      spec.driver === "netns"
        ? grouped(NETNS_CREATES, spec, owner)
        : alone("create", spec, nixosCreateScript(spec, owner)),
    update: (spec, previous, owner) =>
      alone(
        "update",
        spec,
        spec.driver === "netns"
          ? netnsUpdateScript(spec, previousAddresses(previous), owner)
          : nixosUpdateScript(spec, previousAddresses(previous), owner, configChanged(spec, previous)),
      ),
    read: (spec, owner) =>
      spec.driver === "netns"
        ? grouped(NETNS_READS, spec, owner)
        : alone("read", spec, nixosReadScript(spec, owner)),
    delete: (spec, owner) =>
      spec.driver === "netns"
        ? grouped(NETNS_DELETES, spec, owner)
        : alone("delete", spec, nixosDeleteScript(spec, owner)),
  },
  observe: (spec, report) => observeContainer(spec.driver, report.results, spec),
  exists: (seen) => seen.exists,
  outputs: (spec, seen, previous) => ({
    ...containerInterfaces(spec.name, spec.hostBridge),
    // A changed address shows as its new value; a missing one keeps the recorded value, with running false.
    // Last, what our marker keeps: a host end whose address was flushed (NetworkManager taking a veth it
    // should leave alone) must not leave state with one address of the two, which no later delete could parse.
    hostAddress: seen.hostAddress ?? previous?.hostAddress ?? spec.hostAddress ?? seen.recordedHostAddress,
    localAddress:
      seen.localAddress ?? previous?.localAddress ?? spec.localAddress ?? seen.recordedLocalAddress,
    // IPv6 only where the container has it (never picked by the host): as found, else as wanted.
    ...((seen.hostAddress6 ?? spec.hostAddress6)
      ? { hostAddress6: seen.hostAddress6 ?? spec.hostAddress6 }
      : {}),
    ...((seen.localAddress6 ?? spec.localAddress6)
      ? { localAddress6: seen.localAddress6 ?? spec.localAddress6 }
      : {}),
    running: seen.running,
    // nixos driver: the unit's state (a start, reload or stop under way shows as such, not as stopped).
    ...(seen.unitState === undefined ? {} : { unitState: seen.unitState }),
    autoStart: seen.autoStart ?? spec.autoStart,
    // A bridged container is addressed from the LAN's plan (or DHCP), never by the host.
    allocatedOnHost:
      previous?.allocatedOnHost === true || (spec.hostAddress === undefined && spec.hostBridge === undefined),
    confPath: seen.confPath ?? previous?.confPath,
  }),

  failure: { cutOff: { running: false } },
};
