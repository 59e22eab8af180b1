// NetworkdUnmanaged: a systemd-networkd `.network` file (named after the resource) that leaves container veths
// alone. Path and content are computed in `check`; create and update write, reload and confirm the links.
import {
  DEFAULT_NETWORKD_INTERFACES,
  NetworkdSpec,
  networkdFilePath,
  parseNetworkdInputs,
  renderNetworkdFile,
} from "../core/networkdUnmanagedSpec";
import { UNKNOWN } from "../core/validate";
import {
  ObservedNetworkd,
  networkdCreateScript,
  networkdDeleteScript,
  networkdReadScript,
  networkdUpdateScript,
  observeNetworkd,
} from "../host/networkdUnmanagedScripts";
import { Props, machineOf } from "./common";
import { HOST_KEY_BOOKKEEPING, HostResourceDefinition, independentScripts } from "./lifecycle";

/** States of a link networkd has not taken: ours (unmanaged), not decided yet (pending), or gone (linger). */
const NOT_MANAGED = new Set(["unmanaged", "pending", "linger"]);

/** Matching links networkd still manages (none, when it does not run). */
function stillManaged(seen: ObservedNetworkd): [string, ObservedNetworkd["links"][string]][] {
  return seen.running ? Object.entries(seen.links).filter(([, link]) => !NOT_MANAGED.has(link.setup)) : [];
}

export const networkdUnmanagedDefinition: HostResourceDefinition<NetworkdSpec, ObservedNetworkd> = {
  type: "NetworkdUnmanaged",

  check(news) {
    const inputs: Props = { ...news, interfaces: news.interfaces ?? DEFAULT_NETWORKD_INTERFACES };
    const { spec, failures } = parseNetworkdInputs(inputs);
    inputs.path = spec ? networkdFilePath(spec.name) : UNKNOWN;
    inputs.content = spec ? renderNetworkdFile(spec) : UNKNOWN;
    return { inputs, failures };
  },
  parse: parseNetworkdInputs,

  rules: {
    replace: ["name"],
    update: ["interfaces", "content"],
    deleteBeforeReplace: (o, n) => machineOf(o.connection) === machineOf(n.connection),
    // A refresh found the file gone or changed, or matching links still managed.
    healthy: (olds) => olds.present !== false,
  },
  observed: ["present", "networkdRunning", "reloaded", "unmanagedLinks"],
  bookkeeping: [HOST_KEY_BOOKKEEPING],

  id: (spec, machine) => `${machine}/networkd/${spec.name}`,
  subject: (spec) => `NetworkdUnmanaged "${spec.name}"`,

  marker: (spec) => ({ kind: "networkd", name: spec.name }),
  scripts: independentScripts((verb, spec) => `${verb} ${networkdFilePath(spec.name)}`, {
    create: networkdCreateScript,
    update: networkdUpdateScript,
    read: networkdReadScript,
    delete: networkdDeleteScript,
  }),
  observe: (_spec, report) => observeNetworkd(report.results, report.stdout),
  exists: (seen) => seen.exists,
  // present: the file is ours as rendered, and no matching link is still managed.
  outputs: (spec, seen, previous, operation) => ({
    present:
      seen.content === renderNetworkdFile(spec) &&
      stillManaged(seen).length === 0 &&
      (!seen.running || seen.linkStatesKnown),
    networkdRunning: seen.running,
    // Reloaded by the last create or update (a read reloads nothing).
    reloaded: operation === "read" ? previous?.reloaded === true : seen.reloaded === true,
    unmanagedLinks: Object.entries(seen.links)
      .filter(([, link]) => link.setup === "unmanaged")
      .map(([name]) => name)
      .sort(),
  }),
  verify(spec, seen, target) {
    const subject = `NetworkdUnmanaged "${spec.name}" on ${target}`;
    if (seen.running && seen.reloaded === false) {
      return (
        `${subject}: ${networkdFilePath(spec.name)} is written, but \`networkctl reload\` failed: ` +
        `${seen.reloadError ?? "no reason given"}. Reload systemd-networkd by hand (\`networkctl reload\`) and run \`pulumi up\` again.`
      );
    }
    if (seen.running && !seen.linkStatesKnown) {
      return (
        `${subject}: the file is written and systemd-networkd reloaded, but which links it manages cannot be confirmed: ` +
        "/run/systemd/netif/state is missing, so `networkctl list` shows every link as unmanaged. networkd writes it " +
        "into its runtime directory /run/systemd/netif (systemd-networkd.service's RuntimeDirectory): check that it exists."
      );
    }
    const managed = stillManaged(seen);
    if (managed.length === 0) return undefined;
    const links = managed
      .map(([name, link]) => `${name} (${link.setup}${link.networkFile ? `, by ${link.networkFile}` : ""})`)
      .join(", ");
    return (
      `${subject}: the file is written and systemd-networkd reloaded, but these links are still managed: ${links}. ` +
      "A .network file whose name sorts before ours may match them: " +
      "check `networkctl status LINK` and the files in /etc/systemd/network, /run/systemd/network and /usr/lib/systemd/network."
    );
  },

  failure: { cutOff: { present: false } },
  // No `persistence`: the file lives in /etc/systemd/network, which a reboot keeps, and networkd reads it at
  // start; `persist` (validated for every host resource) has nothing to add.
};
