// Provider methods of `NatRule`: what networking.nat does on NixOS, live and in a table (or chains) of our
// own. `check` renders the exact ruleset (preview shows it); create/update apply it atomically in one round
// trip; read notices a flush (e.g. a firewall reload); delete restores forwarding when our last rule goes.
import { NatSpec, parseNatInputs } from "../core/natModel";
import { renderRuleset } from "../core/nftRenderer";
import { UNKNOWN } from "../core/validate";
import { natApplyScript, natDeleteScript, natReadScript, parseNatRead } from "../host/natScripts";
import { clashesIn, missingToolIn, parseResults } from "../host/script";
import { SshError } from "../ssh";
import {
  CheckResult,
  Handler,
  Props,
  connectionFailures,
  diffWith,
  hostOf,
  machineOf,
  onlyStateChanged,
  scrubbed,
  toCheckFailures,
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

function failure(err: unknown, spec: NatSpec, target: string, action: string): Error {
  if (err instanceof SshError && err.kind === "command-failed") {
    const stderr = err.details.stderr ?? "";
    const clashes = clashesIn(stderr);
    if (clashes.length > 0) {
      return new Error(
        `NatRule "${spec.id}" cannot be ${action} on ${target}: ${clashes.join("; ")}. Nothing was changed on the host.`,
      );
    }
    const missing = missingToolIn(stderr);
    if (missing) {
      const pkg =
        missing === "nft"
          ? "nftables"
          : missing.startsWith("iptables")
            ? "iptables"
            : missing === "flock"
              ? "util-linux"
              : "iproute2";
      return new Error(
        `NatRule "${spec.id}" cannot be ${action} on ${target}: the host lacks "${missing}" (backend ${spec.backend}): install ${pkg} ` +
          `(Debian: apt-get install ${pkg}; NixOS: it comes with networking.nftables.enable / the iptables firewall), or choose the other backend`,
      );
    }
    err.message = `NatRule "${spec.id}" could not be ${action}; the rule set is applied in one transaction, so the old rules (if any) are still in place.\n  ${err.message}`;
  }
  return err instanceof Error ? err : new Error(String(err));
}

async function apply(props: Props, recordedFingerprint: unknown, action: string): Promise<Props> {
  const spec = specOf(props);
  const { host } = hostOf({ ...props, hostKeyFingerprint: recordedFingerprint });
  const fingerprint = await host.fingerprint();
  let stdout: string;
  try {
    stdout = (
      await host.runScript(natApplyScript(spec), { display: `apply NatRule ${spec.id} (${spec.backend})` })
    ).stdout;
  } catch (err) {
    throw failure(err, spec, host.target, action);
  }
  const r = parseResults(stdout);
  return { ...props, live: "applied", forwarding: r.forwarding === "1", hostKeyFingerprint: fingerprint };
}

export const natRuleHandler: Handler = {
  check,
  diff: (_id, olds, news) => {
    const result = diffWith(
      {
        replace: ["name", "backend"],
        update: IN_PLACE,
        // Same name on the same host: same table or chains, so the old one must go first.
        deleteBeforeReplace: (o, n) => machineOf(o.connection) === machineOf(n.connection),
      },
      olds,
      news,
    );
    const drifted = olds.live !== "applied" || olds.forwarding === false;
    return drifted && !result.changes ? { ...result, changes: true } : result;
  },
  create: (inputs) =>
    scrubbed(inputs, async () => ({
      id: `${machineOf(inputs.connection)}/nat/${String(inputs.name)}`,
      outs: await apply(inputs, undefined, "created"),
    })),
  update: (_id, olds, news) =>
    scrubbed(news, async () => {
      if (
        onlyStateChanged(["name", "backend", ...IN_PLACE], olds, news) &&
        olds.live === "applied" &&
        olds.forwarding === true
      ) {
        return { outs: { ...olds, ...news, hostKeyFingerprint: olds.hostKeyFingerprint } };
      }
      return { outs: await apply(news, olds.hostKeyFingerprint, "updated") };
    }),
  read: (id, props) =>
    scrubbed(props, async () => {
      const spec = specOf(props);
      const { host } = hostOf(props);
      const seen = parseNatRead(
        (await host.runScript(natReadScript(spec), { display: `read NatRule ${spec.id}` })).stdout,
      );
      if (seen.live === "missing" && !seen.recorded) return {};
      return { id, props: { ...props, live: seen.live, forwarding: seen.forwarding } };
    }),
  delete: (_id, props) =>
    scrubbed(props, async () => {
      const spec = specOf(props);
      const { host } = hostOf(props);
      await host.runScript(natDeleteScript(spec), { display: `delete NatRule ${spec.id}` });
    }),
};
