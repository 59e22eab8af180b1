// NmUnmanaged: a NetworkManager drop-in (named after the resource) that leaves container veths alone. Path and
// content are computed in `check`; create and update write, validate, reload and confirm the devices.
import { NmSpec, nmDropInPath, parseNmInputs, renderNmConf } from "../core/nmUnmanagedSpec";
import { UNKNOWN } from "../core/validate";
import {
  ObservedNm,
  nmCreateScript,
  nmDeleteScript,
  nmReadScript,
  nmUpdateScript,
  observeNm,
} from "../host/nmUnmanagedScripts";
import { Props, machineOf } from "./common";
import { HOST_KEY_BOOKKEEPING, HostResourceDefinition, independentScripts } from "./lifecycle";

/** Matching devices NetworkManager still manages (none, when it does not run). */
function stillManaged(seen: ObservedNm): [string, string][] {
  return seen.running ? Object.entries(seen.devices).filter(([, state]) => state !== "unmanaged") : [];
}

export const nmUnmanagedDefinition: HostResourceDefinition<NmSpec, ObservedNm> = {
  type: "NmUnmanaged",

  check(news) {
    const inputs: Props = { ...news, devices: news.devices ?? ["interface-name:ve-*"] };
    const { spec, failures } = parseNmInputs(inputs);
    inputs.path = spec ? nmDropInPath(spec.name) : UNKNOWN;
    inputs.content = spec ? renderNmConf(spec) : UNKNOWN;
    return { inputs, failures };
  },
  parse: parseNmInputs,

  rules: {
    replace: ["name"],
    update: ["devices", "content"],
    deleteBeforeReplace: (o, n) => machineOf(o.connection) === machineOf(n.connection),
    // A refresh found the file gone or changed, or the devices still managed.
    healthy: (olds) => olds.present !== false,
  },
  observed: ["present", "networkManagerRunning", "reloaded", "unmanagedDevices"],
  bookkeeping: [HOST_KEY_BOOKKEEPING],

  id: (spec, machine) => `${machine}/nm/${spec.name}`,
  subject: (spec) => `NmUnmanaged "${spec.name}"`,
  refusalFix: "The previous file was kept.",

  marker: (spec) => ({ kind: "nm", name: spec.name }),
  scripts: independentScripts((verb, spec) => `${verb} ${nmDropInPath(spec.name)}`, {
    create: nmCreateScript,
    update: nmUpdateScript,
    read: nmReadScript,
    delete: nmDeleteScript,
  }),
  observe: (_spec, report) => observeNm(report.results, report.stdout),
  exists: (seen) => seen.exists,
  // present: the file is ours as rendered and no matching device is still managed.
  outputs: (spec, seen, previous, operation) => ({
    present: seen.content === renderNmConf(spec) && stillManaged(seen).length === 0,
    networkManagerRunning: seen.running,
    // Reloaded by the last create or update (a read reloads nothing).
    reloaded: operation === "read" ? previous?.reloaded === true : seen.running,
    unmanagedDevices: Object.entries(seen.devices)
      .filter(([, state]) => state === "unmanaged")
      .map(([device]) => device)
      .sort(),
  }),
  verify(spec, seen, target) {
    const managed = stillManaged(seen);
    if (managed.length === 0) return undefined;
    return (
      `NmUnmanaged "${spec.name}" on ${target}: the drop-in is written and NetworkManager reloaded, but these devices are still managed: ` +
      `${managed.map(([device, state]) => `${device} (${state})`).join(", ")}. Another NetworkManager setting may override ours: check \`NetworkManager --print-config\`.`
    );
  },

  failure: { cutOff: { present: false } },
};
