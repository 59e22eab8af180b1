// NatRule: what networking.nat does on NixOS, live and in a table (or chains) of our own. `check` renders the
// exact ruleset (preview shows it); create and update apply it atomically in one round trip; read notices a
// flush (e.g. a firewall reload); delete restores forwarding when our last rule on the host goes.
import { NatSpec, parseNatInputs } from "../core/natRuleSpec";
import { renderRuleset } from "../core/natRuleNftables";
import { UNKNOWN } from "../core/validate";
import { renderPersistPlan } from "../core/persistence";
import {
  ObservedNat,
  natCreateScript,
  natDeleteScript,
  natReadScript,
  natRestoreScript,
  natUpdateScript,
  observeNat,
} from "../host/natRuleScripts";
import { Props, machineOf } from "./common";
import { HOST_KEY_BOOKKEEPING, HostResourceDefinition, independentScripts } from "./lifecycle";

export const natRuleDefinition: HostResourceDefinition<NatSpec, ObservedNat> = {
  type: "NatRule",

  check(news) {
    const inputs: Props = {
      ...news,
      backend: news.backend ?? "nftables",
      internalInterfaces: news.internalInterfaces ?? ["ve-+"],
      internalIPs: news.internalIPs ?? [],
      forwardPorts: news.forwardPorts ?? [],
      allowForward: news.allowForward ?? false,
      loopbackIPs: news.loopbackIPs ?? [],
    };
    const { spec, failures } = parseNatInputs(inputs);
    inputs.ruleset = spec ? renderRuleset(spec) : UNKNOWN;
    return { inputs, failures };
  },
  parse: parseNatInputs,

  rules: {
    replace: ["name", "backend"],
    update: [
      "internalInterfaces",
      "internalIPs",
      "externalInterface",
      "externalIP",
      "forwardPorts",
      "allowForward",
      "loopbackIPs",
      "ipv6",
      "internalIPv6s",
      "externalIPv6",
      "ruleset",
    ],
    // Same name on the same host: same table or chains, so the old one must go first.
    deleteBeforeReplace: (o, n) => machineOf(o.connection) === machineOf(n.connection),
    // A refresh found our rules flushed or changed, forwarding (IPv4, or IPv6 for a rule with it) turned off, or (allowForward) a forward hook
    // that drops our traffic, e.g. Docker started after us (the update puts our jump back, or names the fix).
    healthy: (olds) =>
      olds.live === "applied" &&
      olds.forwarding !== false &&
      olds.forwarding6 !== false &&
      !(
        olds.allowForward === true &&
        Array.isArray(olds.forwardBlockedBy) &&
        olds.forwardBlockedBy.length > 0
      ),
  },
  observed: ["live", "forwarding", "forwarding6", "forwardBlockedBy"],
  bookkeeping: [HOST_KEY_BOOKKEEPING],

  id: (spec, machine) => `${machine}/nat/${spec.name}`,
  subject: (spec) => `NatRule "${spec.name}"`,

  marker: (spec) => ({ kind: "nat", name: spec.name }),
  scripts: independentScripts((verb, spec) => `${verb} NatRule ${spec.name} (${spec.backend})`, {
    create: natCreateScript,
    update: natUpdateScript,
    read: natReadScript,
    delete: natDeleteScript,
  }),
  observe: (_spec, report) => observeNat(report.results),
  // Gone: no rules of ours and no record of this NatRule on the host.
  exists: (seen) => seen.live !== "missing" || seen.recorded,
  outputs: (_spec, seen) => ({
    live: seen.live,
    forwarding: seen.forwarding,
    // Only rules with IPv6 report it, so an IPv4-only rule's outputs stay as they were.
    ...(seen.forwarding6 === undefined ? {} : { forwarding6: seen.forwarding6 }),
    forwardBlockedBy: seen.forwardBlockedBy,
  }),
  persistence: (spec) =>
    renderPersistPlan("nat", spec.name, `NatRule ${spec.name}`, "firewall", natRestoreScript(spec)),

  failure: {
    cutOff: { live: "missing" },
    // iptables: the restore went through and a jump did not. The delete removes them only under our marker.
    cleanup: (spec, owner) => ({
      display: `clean up NatRule ${spec.name}`,
      script: natDeleteScript(spec, owner),
    }),
  },
};
