// Provider methods of `NatRule`: what networking.nat does on NixOS, live and in a table (or chains) of our
// own. `check` renders the exact ruleset (preview shows it); create/update apply it atomically in one round
// trip; read notices a flush (e.g. a firewall reload); delete restores forwarding when our last rule goes.
import { NatSpec, parseNatInputs } from "../core/natModel";
import { renderRuleset } from "../core/nftRenderer";
import { UNKNOWN } from "../core/validate";
import { natApplyScript, natDeleteScript, natReadScript, parseNatRead } from "../host/natScripts";
import { parseResults } from "../host/script";
import { NothingChangedError, explainScriptFailure } from "./scriptFailure";
import { runBatched } from "./scriptBatch";
import {
  CheckResult,
  DiffRules,
  Handler,
  Props,
  connectionFailures,
  diffWith,
  hostOf,
  machineOf,
  updateWith,
  scrubbed,
  toCheckFailures,
  withoutKeys,
} from "./common";

const IN_PLACE = [
  "internalInterfaces",
  "internalIPs",
  "externalInterface",
  "externalIP",
  "forwardPorts",
  "ruleset",
];

function check(_olds: Props, news: Props): CheckResult {
  const inputs: Props = {
    ...news,
    backend: news.backend ?? "nftables",
    internalInterfaces: news.internalInterfaces ?? ["ve-+"],
    internalIPs: news.internalIPs ?? [],
    forwardPorts: news.forwardPorts ?? [],
  };
  const { spec, failures } = parseNatInputs(inputs);
  const all = [...connectionFailures(news.connection), ...failures];
  inputs.ruleset = spec ? renderRuleset(spec) : UNKNOWN;
  return { inputs, failures: toCheckFailures(all) };
}

function specOf(props: Props): NatSpec {
  const { spec, failures } = parseNatInputs(props);
  if (!spec) throw new Error(`NatRule inputs are invalid: ${failures.map((f) => f.message).join("; ")}`);
  return spec;
}

async function apply(props: Props, recordedFingerprint: unknown, action: string): Promise<Props> {
  const spec = specOf(props);
  const { host } = hostOf({ ...props, hostKeyFingerprint: recordedFingerprint });
  const fingerprint = await host.fingerprint();
  let stdout: string;
  try {
    stdout = (
      await runBatched(
        host,
        natApplyScript(spec, action === "created"),
        `apply NatRule ${spec.id} (${spec.backend})`,
      )
    ).stdout;
  } catch (err) {
    throw explainScriptFailure(err, `NatRule "${spec.id}"`, host.target, action);
  }
  const r = parseResults(stdout);
  return { ...props, live: "applied", forwarding: r.forwarding === "1", hostKeyFingerprint: fingerprint };
}

const RULES: DiffRules = {
  replace: ["name", "backend"],
  update: IN_PLACE,
  // Same name on the same host: same table or chains, so the old one must go first.
  deleteBeforeReplace: (o, n) => machineOf(o.connection) === machineOf(n.connection),
  // A refresh found our rules flushed or changed, or forwarding turned off.
  healthy: (olds) => olds.live === "applied" && olds.forwarding !== false,
};

export const natRuleHandler: Handler = {
  inputsOf: (props) => withoutKeys(props, ["live", "forwarding", "hostKeyFingerprint"]),
  check,
  diff: (_id, olds, news) => diffWith(RULES, olds, news),
  create: (inputs) =>
    scrubbed(inputs, async () => {
      try {
        return {
          id: `${machineOf(inputs.connection)}/nat/${String(inputs.name)}`,
          outs: await apply(inputs, undefined, "created"),
        };
      } catch (err) {
        // A failed create may have left our chains (iptables: restore went through, a jump did not): remove
        // them, so nothing half-made stays on the host. A clash changed nothing and needs no cleanup.
        if (!(err instanceof NothingChangedError)) {
          const spec = specOf(inputs);
          const removed = await runBatched(
            hostOf(inputs).host,
            natDeleteScript(spec),
            `clean up NatRule ${spec.id}`,
          ).then(
            () => true,
            () => false,
          );
          if (err instanceof Error && removed)
            err.message += "\n  What this create had made was removed again.";
        }
        throw err;
      }
    }),
  update: (_id, olds, news) =>
    scrubbed(news, () =>
      updateWith(RULES, olds, news, () => apply(news, olds.hostKeyFingerprint, "updated")),
    ),
  read: (id, props) =>
    scrubbed(props, async () => {
      const spec = specOf(props);
      const { host } = hostOf(props);
      const seen = parseNatRead(
        (await runBatched(host, natReadScript(spec), `read NatRule ${spec.id}`)).stdout,
      );
      if (seen.live === "missing" && !seen.recorded) return {};
      return { id, props: { ...props, live: seen.live, forwarding: seen.forwarding } };
    }),
  delete: (_id, props) =>
    scrubbed(props, async () => {
      const spec = specOf(props);
      const { host } = hostOf(props);
      await runBatched(host, natDeleteScript(spec), `delete NatRule ${spec.id}`);
    }),
};
