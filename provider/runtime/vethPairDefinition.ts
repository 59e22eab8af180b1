// VethPair: an extra veth between the host and a running container (NixOS `extraVeths`), on both drivers (the
// container's network namespace is found by name or through its leader process).
import { VethPairSpec, parseVethPairInputs } from "../core/vethPairSpec";
import {
  ObservedVeth,
  observeVeth,
  vethCreateScript,
  vethDeleteScript,
  vethReadScript,
  vethRestoreScript,
  vethUpdateScript,
} from "../host/vethPairScripts";
import { containerUnit, renderPersistPlan } from "../core/persistence";
import { machineOf } from "./common";
import { HOST_KEY_BOOKKEEPING, HostResourceDefinition, independentScripts } from "./lifecycle";

/** Whether both ends are as the spec says (bridge or host address, and the container end's address). */
function asSpecified(spec: VethPairSpec, seen: ObservedVeth): boolean {
  const localMatches =
    spec.localAddress === undefined
      ? seen.localAddress === undefined
      : (seen.localAddress ?? "").split("/")[0] === spec.localAddress.split("/")[0];
  const local6Matches =
    spec.localAddress6 === undefined
      ? seen.localAddress6 === undefined
      : (seen.localAddress6 ?? "").split("/")[0] === spec.localAddress6.split("/")[0];
  return (
    localMatches &&
    local6Matches &&
    (spec.hostBridge
      ? seen.hostBridge === spec.hostBridge
      : seen.hostAddress === spec.hostAddress && seen.hostAddress6 === spec.hostAddress6)
  );
}

export const vethPairDefinition: HostResourceDefinition<VethPairSpec, ObservedVeth> = {
  type: "VethPair",

  check: (news) => ({ inputs: { ...news }, failures: parseVethPairInputs(news).failures }),
  parse: parseVethPairInputs,
  // After its container's unit (netns driver); see vethRestoreScript for nixos containers.
  persistence: (spec) =>
    renderPersistPlan(
      "veth",
      spec.hostInterface,
      `VethPair ${spec.hostInterface}`,
      "links",
      vethRestoreScript(spec),
      [containerUnit(spec.container)],
    ),

  rules: {
    replace: ["container", "hostInterface", "containerInterface"],
    update: ["hostAddress", "localAddress", "hostAddress6", "localAddress6", "hostBridge"],
    deleteBeforeReplace: (o, n) => machineOf(o.connection) === machineOf(n.connection),
    // A refresh found an end missing or an address changed.
    healthy: (olds) => olds.present !== false,
  },
  observed: ["present"],
  bookkeeping: [HOST_KEY_BOOKKEEPING],

  id: (spec, machine) => `${machine}/${spec.container}/${spec.hostInterface}`,
  subject: (spec) => `veth ${spec.hostInterface} ↔ ${spec.container}:${spec.containerInterface}`,

  marker: (spec) => ({ kind: "veth", name: spec.hostInterface }),
  scripts: independentScripts((verb, spec) => `${verb} veth ${spec.hostInterface}`, {
    create: vethCreateScript,
    update: vethUpdateScript,
    read: vethReadScript,
    delete: vethDeleteScript,
  }),
  observe: (_spec, report) => observeVeth(report.results),
  exists: (seen) => seen.exists,
  outputs: (spec, seen, previous) => ({
    ...(spec.hostBridge
      ? { hostBridge: seen.hostBridge ?? "" }
      : {
          hostAddress: seen.hostAddress ?? previous?.hostAddress ?? spec.hostAddress,
          ...(spec.hostAddress6 === undefined
            ? {}
            : { hostAddress6: seen.hostAddress6 ?? spec.hostAddress6 }),
        }),
    present: seen.exists && asSpecified(spec, seen),
  }),

  failure: { cutOff: { present: false } },
};
