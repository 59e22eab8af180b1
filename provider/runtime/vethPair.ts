// Provider methods of `VethPair`: an extra veth between the host and a running container, like NixOS
// `extraVeths`, on both drivers (the container's namespace is found by name or by its leader process).
import { display } from "../core/display";
import {
  Failure,
  isUnknown,
  validateContainerName,
  validateInterfaceAddress,
  validateInterfaceName,
} from "../core/validate";
import { explainScriptFailure } from "./scriptFailure";
import { runBatched } from "./scriptBatch";
import {
  VethSpec,
  parseVethRead,
  vethConvergeScript,
  vethCreateScript,
  vethDeleteScript,
  vethReadScript,
} from "../host/vethPairScripts";
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

function validate(news: Props): Failure[] {
  const failures: Failure[] = [...connectionFailures(news.connection)];
  failures.push(...validateContainerName(news.container, "container"));
  failures.push(...validateInterfaceName(news.hostInterface, "hostInterface"));
  failures.push(...validateInterfaceName(news.containerInterface, "containerInterface"));
  if (typeof news.container === "string" && news.hostInterface === `ve-${news.container}`) {
    failures.push({
      property: "hostInterface",
      message: `hostInterface ${display(news.hostInterface)} is the container's own main veth: pick another name`,
    });
  }
  if (news.containerInterface === "eth0" || news.containerInterface === "lo") {
    failures.push({
      property: "containerInterface",
      message: `containerInterface ${display(news.containerInterface)} is taken inside every container: pick another name, e.g. "eth1"`,
    });
  }
  failures.push(...validateInterfaceAddress(news.hostAddress, "hostAddress", { optional: true }));
  if (news.hostBridge !== undefined) {
    failures.push(...validateInterfaceName(news.hostBridge, "hostBridge"));
    if (news.hostAddress !== undefined) {
      failures.push({
        property: "hostAddress",
        message:
          "hostAddress and hostBridge are both set: a bridged veth has no host address (the bridge has it); set one or the other",
      });
    }
    if (news.localAddress !== undefined && !isUnknown(news.localAddress)) {
      const [address, prefix, ...rest] = String(news.localAddress).split("/");
      failures.push(...validateInterfaceAddress(address, "localAddress"));
      if (
        typeof news.localAddress !== "string" ||
        rest.length > 0 ||
        (prefix !== undefined && !/^(?:[0-9]|[12][0-9]|3[0-2])$/.test(prefix))
      ) {
        failures.push({
          property: "localAddress",
          message: `localAddress ${display(news.localAddress)} is invalid: use an IPv4 address, optionally with a prefix length 0-32 (e.g. "192.168.50.5/24")`,
        });
      }
    }
  } else {
    failures.push(...validateInterfaceAddress(news.localAddress, "localAddress", { optional: true }));
    if ((news.hostAddress === undefined) !== (news.localAddress === undefined)) {
      failures.push({
        property: news.hostAddress === undefined ? "hostAddress" : "localAddress",
        message: "set hostAddress and localAddress together, or hostBridge (with an optional localAddress)",
      });
    }
  }
  return failures;
}

function spec(props: Props): VethSpec {
  const str = (k: string): string | undefined =>
    typeof props[k] === "string" && props[k] !== "" ? (props[k] as string) : undefined;
  return {
    container: props.container as string,
    hostInterface: props.hostInterface as string,
    containerInterface: props.containerInterface as string,
    hostAddress: str("hostAddress"),
    localAddress: str("localAddress"),
    hostBridge: str("hostBridge"),
  };
}

function check(_olds: Props, news: Props): CheckResult {
  return { inputs: { ...news }, failures: toCheckFailures(validate(news)) };
}

const IN_PLACE = ["hostAddress", "localAddress", "hostBridge"];

async function apply(props: Props, fresh: boolean, fingerprint?: unknown): Promise<Props> {
  const s = spec(props);
  const { host } = hostOf({ ...props, hostKeyFingerprint: fingerprint });
  const seen = await host.fingerprint();
  try {
    await runBatched(
      host,
      fresh ? vethCreateScript(s) : vethConvergeScript(s),
      `${fresh ? "create" : "update"} veth ${s.hostInterface}`,
    );
  } catch (err) {
    throw explainScriptFailure(
      err,
      `veth ${s.hostInterface} ↔ ${s.container}:${s.containerInterface}`,
      host.target,
      fresh ? "created" : "updated",
    );
  }
  return { ...props, present: true, hostKeyFingerprint: seen };
}

const RULES: DiffRules = {
  replace: ["container", "hostInterface", "containerInterface"],
  update: IN_PLACE,
  deleteBeforeReplace: (o, n) => machineOf(o.connection) === machineOf(n.connection),
  // A refresh found an end missing or an address changed.
  healthy: (olds) => olds.present !== false,
};

export const vethPairHandler: Handler = {
  inputsOf: (props) => withoutKeys(props, ["present", "hostKeyFingerprint"]),
  check,
  diff: (_id, olds, news) => diffWith(RULES, olds, news),
  create: (inputs) =>
    scrubbed(inputs, async () => ({
      id: `${machineOf(inputs.connection)}/${String(inputs.container)}/${String(inputs.hostInterface)}`,
      outs: await apply(inputs, true),
    })),
  update: (_id, olds, news) =>
    scrubbed(news, () => updateWith(RULES, olds, news, () => apply(news, false, olds.hostKeyFingerprint))),
  read: (id, props) =>
    scrubbed(props, async () => {
      const s = spec(props);
      const { host } = hostOf(props);
      const seen = parseVethRead(
        (await runBatched(host, vethReadScript(s), `read veth ${s.hostInterface}`)).stdout,
      );
      if (!seen.exists) return {};
      const wantLocal = s.localAddress;
      const localMatches =
        wantLocal === undefined
          ? seen.localAddress === undefined
          : (seen.localAddress ?? "").split("/")[0] === wantLocal.split("/")[0];
      return {
        id,
        props: {
          ...props,
          ...(s.hostBridge
            ? { hostBridge: seen.hostBridge ?? "" }
            : { hostAddress: seen.hostAddress ?? props.hostAddress }),
          present:
            localMatches &&
            (s.hostBridge ? seen.hostBridge === s.hostBridge : seen.hostAddress === s.hostAddress),
        },
      };
    }),
  delete: (_id, props) =>
    scrubbed(props, async () => {
      const s = spec(props);
      const { host } = hostOf(props);
      await runBatched(host, vethDeleteScript(s), `delete veth ${s.hostInterface}`);
    }),
};
