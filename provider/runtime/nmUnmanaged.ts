// Provider methods of `NmUnmanaged`: a NetworkManager drop-in (named after the resource) that leaves
// container veths alone. Content and path are computed in `check`; apply validates, reloads and confirms.
import { NmSpec, nmDropInPath, parseNmInputs, renderNmConf } from "../core/nmConf";
import { UNKNOWN } from "../core/validate";
import { interfaceGlobs, nmApplyScript, nmDeleteScript, nmReadScript, parseNm } from "../host/nmScripts";
import { explainScriptFailure } from "./scriptFailure";
import { runBatched } from "./scriptBatch";
import {
  CheckResult,
  DiffRules,
  Handler,
  PartialCreateError,
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

function check(_olds: Props, news: Props): CheckResult {
  const inputs: Props = { ...news, devices: news.devices ?? ["interface-name:ve-*"] };
  const { spec, failures } = parseNmInputs(inputs);
  inputs.path = spec ? nmDropInPath(spec.id) : UNKNOWN;
  inputs.content = spec ? renderNmConf(spec) : UNKNOWN;
  return { inputs, failures: toCheckFailures([...connectionFailures(news.connection), ...failures]) };
}

function specOf(props: Props): NmSpec {
  const { spec, failures } = parseNmInputs(props);
  if (!spec) throw new Error(`NmUnmanaged inputs are invalid: ${failures.map((f) => f.message).join("; ")}`);
  return spec;
}

async function apply(props: Props, recordedFingerprint: unknown, id?: string): Promise<Props> {
  const spec = specOf(props);
  const { host } = hostOf({ ...props, hostKeyFingerprint: recordedFingerprint });
  const fingerprint = await host.fingerprint();
  const globs = interfaceGlobs(spec.devices);
  let stdout: string;
  try {
    stdout = (
      await runBatched(
        host,
        nmApplyScript(nmDropInPath(spec.id), renderNmConf(spec), globs, id !== undefined),
        `write ${nmDropInPath(spec.id)}`,
      )
    ).stdout;
  } catch (err) {
    throw explainScriptFailure(
      err,
      `NmUnmanaged "${spec.id}"`,
      host.target,
      "applied",
      "The previous file was kept.",
    );
  }
  const seen = parseNm(stdout);
  const managed = Object.entries(seen.devices).filter(([, state]) => state !== "unmanaged");
  const outs = {
    ...props,
    networkManagerRunning: seen.running,
    reloaded: seen.running,
    unmanagedDevices: Object.keys(seen.devices).sort(),
    present: managed.length === 0,
    hostKeyFingerprint: fingerprint,
  };
  if (seen.running && managed.length > 0) {
    const message =
      `NmUnmanaged "${spec.id}" on ${host.target}: the drop-in is written and NetworkManager reloaded, but these devices are still managed: ` +
      `${managed.map(([d, s]) => `${d} (${s})`).join(", ")}. Another NetworkManager setting may override ours: check \`NetworkManager --print-config\`.`;
    // On create the file is on the host: record the resource (init error) rather than orphan it.
    if (id) throw new PartialCreateError(message, id, outs, [message]);
    throw new Error(message);
  }
  return outs;
}

const RULES: DiffRules = {
  replace: ["name"],
  update: ["devices", "content"],
  deleteBeforeReplace: (o, n) => machineOf(o.connection) === machineOf(n.connection),
  // A refresh found the file gone or changed, or the devices still managed.
  healthy: (olds) => olds.present !== false,
};

export const nmUnmanagedHandler: Handler = {
  inputsOf: (props) =>
    withoutKeys(props, [
      "present",
      "networkManagerRunning",
      "reloaded",
      "unmanagedDevices",
      "hostKeyFingerprint",
    ]),
  check,
  diff: (_id, olds, news) => diffWith(RULES, olds, news),
  create: (inputs) =>
    scrubbed(inputs, async () => {
      const id = `${machineOf(inputs.connection)}/nm/${String(inputs.name)}`;
      return { id, outs: await apply(inputs, undefined, id) };
    }),
  update: (_id, olds, news) =>
    scrubbed(news, () => updateWith(RULES, olds, news, () => apply(news, olds.hostKeyFingerprint))),
  read: (id, props) =>
    scrubbed(props, async () => {
      const spec = specOf(props);
      const { host } = hostOf(props);
      const seen = parseNm(
        (
          await runBatched(
            host,
            nmReadScript(nmDropInPath(spec.id), interfaceGlobs(spec.devices)),
            `read ${nmDropInPath(spec.id)}`,
          )
        ).stdout,
      );
      if (!seen.exists) return {};
      return {
        id,
        props: {
          ...props,
          present: seen.content === props.content,
          networkManagerRunning: seen.running,
          unmanagedDevices: Object.entries(seen.devices)
            .filter(([, s]) => s === "unmanaged")
            .map(([d]) => d)
            .sort(),
        },
      };
    }),
  delete: (_id, props) =>
    scrubbed(props, async () => {
      const spec = specOf(props);
      const { host } = hostOf(props);
      await runBatched(host, nmDeleteScript(nmDropInPath(spec.id)), `delete ${nmDropInPath(spec.id)}`);
    }),
};
