// Provider methods of `Container`: pure check and diff, then one batched script per host operation through
// the driver (`netns` or `nixos`), with the host key recorded at create and enforced afterwards.
import { display } from "../core/display";
import {
  Failure,
  bothOrNeither,
  isUnknown,
  validateContainerName,
  validateFlakeRef,
  validateInterfaceAddress,
} from "../core/validate";
import { ContainerDriver, ContainerSpec, ObservedContainer } from "../host/driver";
import {
  batchMark,
  netnsBatchCreateScript,
  netnsBatchDeleteScript,
  netnsDriver,
  parseBatch,
} from "../host/netnsDriver";
import { nixosDriver } from "../host/nixosDriver";
import { parseResults } from "../host/script";
import { explainScriptFailure } from "./scriptFailure";
import { runBatched } from "./scriptBatch";
import { SshError, SshHost, tail } from "../ssh";
import { Batcher } from "./batcher";
import {
  CheckResult,
  DiffResult,
  DiffRules,
  Handler,
  PartialCreateError,
  Props,
  ReadResult,
  connectionFailures,
  diffWith,
  hasUnknown,
  hostOf,
  machineOf,
  updateWith,
  scrubbed,
  toCheckFailures,
  withoutKeys,
} from "./common";

const DRIVERS: Record<ContainerSpec["driver"], ContainerDriver> = { netns: netnsDriver, nixos: nixosDriver };

const PICK_OTHER = "Pick other addresses (or another name), or remove what holds them.";

/** Inputs that change the host's container in place. */
const IN_PLACE = ["hostAddress", "localAddress", "config", "configFile", "flake", "autoStart"] as const;

function validate(news: Props): Failure[] {
  const failures: Failure[] = [...connectionFailures(news.connection)];
  failures.push(...validateContainerName(news.name, "name"));
  if (
    news.driver !== undefined &&
    !isUnknown(news.driver) &&
    news.driver !== "nixos" &&
    news.driver !== "netns"
  ) {
    failures.push({
      property: "driver",
      message: `driver ${display(news.driver)} is not supported: use "nixos" (the host's nixos-container command) or "netns" (a plain Linux network namespace, any host)`,
    });
  }
  failures.push(...validateInterfaceAddress(news.hostAddress, "hostAddress", { optional: true }));
  failures.push(...validateInterfaceAddress(news.localAddress, "localAddress", { optional: true }));
  failures.push(...bothOrNeither(news, "hostAddress", "localAddress"));
  if (
    typeof news.hostAddress === "string" &&
    !isUnknown(news.hostAddress) &&
    news.hostAddress === news.localAddress
  ) {
    failures.push({
      property: "localAddress",
      message: `localAddress ${display(news.localAddress)} equals hostAddress: the two ends of the veth need different addresses`,
    });
  }
  for (const key of ["config", "configFile"]) {
    if (news[key] !== undefined && !isUnknown(news[key]) && typeof news[key] !== "string") {
      failures.push({ property: key, message: `${key} must be a string, got ${display(news[key])}` });
    }
  }
  if (typeof news.config === "string" && news.config.includes("\0")) {
    failures.push({
      property: "config",
      message: "config contains a NUL byte, which no command argument can carry",
    });
  }
  if (typeof news.configFile === "string" && !/^\/[A-Za-z0-9._+\-/]*$/.test(news.configFile)) {
    failures.push({
      property: "configFile",
      message: `configFile ${display(news.configFile)} is invalid: use an absolute path on the host made of letters, digits and . _ + - /`,
    });
  }
  failures.push(...validateFlakeRef(news.flake, "flake", { optional: true }));
  const given = ["config", "configFile", "flake"].filter((k) => news[k] !== undefined && news[k] !== "");
  if (given.length > 1) {
    failures.push({
      property: given[1],
      message: `${given.join(" and ")} are set: use at most one of config, configFile and flake`,
    });
  }
  if (news.driver === "netns" && given.length > 0) {
    failures.push({
      property: given[0],
      message: `${given[0]} is set but driver is "netns": NixOS configuration needs driver "nixos"`,
    });
  }
  if (news.adopt !== undefined && !isUnknown(news.adopt) && typeof news.adopt !== "boolean") {
    failures.push({ property: "adopt", message: `adopt must be true or false, got ${display(news.adopt)}` });
  }
  if (news.autoStart !== undefined && !isUnknown(news.autoStart) && typeof news.autoStart !== "boolean") {
    failures.push({
      property: "autoStart",
      message: `autoStart must be true or false, got ${display(news.autoStart)}`,
    });
  }
  return failures;
}

/** Parses checked inputs (known values) into the typed spec the drivers take. */
export function containerSpec(props: Props): ContainerSpec {
  const str = (k: string): string | undefined =>
    typeof props[k] === "string" && props[k] !== "" ? (props[k] as string) : undefined;
  const name = props.name as string;
  return {
    name,
    driver: props.driver as ContainerSpec["driver"],
    hostAddress: str("hostAddress"),
    localAddress: str("localAddress"),
    config: str("config"),
    configFile: str("configFile"),
    flake: str("flake"),
    autoStart: props.autoStart === true,
    hostInterface: `ve-${name}`,
    containerInterface: "eth0",
  };
}

function check(_olds: Props, news: Props): CheckResult {
  const failures = validate(news);
  const inputs: Props = { ...news, driver: news.driver ?? "nixos", autoStart: news.autoStart ?? false };
  // What preview must show: the interface names follow from the name.
  if (typeof news.name === "string" && failures.every((f) => f.property !== "name")) {
    inputs.hostInterface = `ve-${news.name}`;
    inputs.containerInterface = "eth0";
  }
  return { inputs, failures: toCheckFailures(failures) };
}

/** Addresses allocated on the host at create stay while the program sets none. */
function withKeptAddresses(olds: Props, news: Props): Props {
  return olds.allocatedOnHost === true && news.hostAddress === undefined && news.localAddress === undefined
    ? { ...news, hostAddress: olds.hostAddress, localAddress: olds.localAddress }
    : news;
}

const RULES: DiffRules = {
  replace: ["name", "driver"],
  update: IN_PLACE,
  // Same machine and a shared name or address (or addresses the host will pick): the old one goes first.
  deleteBeforeReplace: (o, n) => {
    if (machineOf(o.connection) !== machineOf(n.connection)) return false;
    if (n.hostAddress === undefined || o.name === n.name) return true;
    const old = new Set([o.hostAddress, o.localAddress]);
    return old.has(n.hostAddress) || old.has(n.localAddress) || hasUnknown([n.hostAddress, n.localAddress]);
  },
  // A refresh found the container not running, or an address missing.
  healthy: (olds) => olds.running !== false,
};

function diff(_id: string, olds: Props, news: Props): DiffResult {
  return diffWith(RULES, olds, withKeptAddresses(olds, news));
}

function containerId(props: Props): string {
  return `${machineOf(props.connection)}/${String(props.name)}`;
}

/**
 * netns creates for one host that the engine runs concurrently go out as one script (one lock, one scan of
 * the host's addresses, one round trip); each container still succeeds or fails on its own.
 */
function netnsBatcher(
  verb: string,
  script: (specs: readonly ContainerSpec[], mark: string) => string,
): Batcher<SshHost, ContainerSpec, string> {
  return new Batcher<SshHost, ContainerSpec, string>(async (host, specs) => {
    const names = specs.map((s) => s.name).join(", ");
    const display = `${verb} container${specs.length > 1 ? "s" : ""} ${names}`;
    const mark = batchMark();
    const whole = await host.runScript(script(specs, mark), { display, check: false });
    return parseBatch(whole.stdout, specs.length, mark).map((item) => {
      if (item.code === 0) return item.stdout;
      // An item that never ran failed with the whole script (a lock timeout, a missing tool).
      const failed =
        item.code === -1 ? { stdout: whole.stdout, stderr: whole.stderr, code: whole.code } : item;
      return new SshError("command-failed", "the command failed", {
        target: host.target,
        command: display,
        exitCode: failed.code,
        stderrTail: tail(failed.stderr),
        stdout: failed.stdout,
        stderr: failed.stderr,
      });
    });
  });
}

const netnsCreates = netnsBatcher("create", netnsBatchCreateScript);
const netnsDeletes = netnsBatcher("delete", netnsBatchDeleteScript);

/**
 * `adopt: true`: a container of this name already on the host (made by hand, by nixos-container, or lost from
 * state) is taken over and brought to the spec instead of being a clash. Its addresses are kept unless the
 * program sets others. Returns undefined when there is nothing to adopt (a normal create follows).
 */
async function adopt(host: SshHost, spec: ContainerSpec): Promise<string | undefined> {
  const driver = DRIVERS[spec.driver];
  const seen = driver.parseRead(
    (await runBatched(host, driver.readScript(spec), `read container ${spec.name}`)).stdout,
  );
  if (!seen.exists) return undefined;
  const hostAddress = spec.hostAddress ?? seen.hostAddress;
  const localAddress = spec.localAddress ?? seen.localAddress;
  if (!hostAddress || !localAddress) {
    throw new Error(
      `container "${spec.name}" on ${host.target} cannot be adopted: it has no addresses to keep; set hostAddress and localAddress`,
    );
  }
  const script = driver.convergeScript({ ...spec, hostAddress, localAddress }, { hostAddress, localAddress });
  return (await runBatched(host, script, `adopt container ${spec.name}`)).stdout;
}

async function create(inputs: Props): Promise<{ id: string; outs: Props }> {
  const spec = containerSpec(inputs);
  const { host } = hostOf(inputs);
  const fingerprint = await host.fingerprint();
  const id = containerId(inputs);
  let stdout: string;
  try {
    const adopted = inputs.adopt === true ? await adopt(host, spec) : undefined;
    stdout =
      adopted ??
      (spec.driver === "netns"
        ? await netnsCreates.submit(host, spec)
        : (await runBatched(host, nixosDriver.createScript(spec), `create container ${spec.name}`)).stdout);
  } catch (err) {
    if (err instanceof SshError && (err.kind === "disconnected" || err.kind === "timeout")) {
      // The script may have run: record the resource so the next `up` converges it instead of orphaning it.
      throw new PartialCreateError(
        err.message,
        id,
        { ...inputs, hostKeyFingerprint: fingerprint, running: false },
        [
          "the connection ended while the container was being created; the next `pulumi up` will finish or repair it",
        ],
      );
    }
    throw explainScriptFailure(err, `container "${spec.name}"`, host.target, "created", PICK_OTHER);
  }
  return { id, outs: outputs(inputs, spec, parseResults(stdout), fingerprint) };
}

function outputs(
  inputs: Props,
  spec: ContainerSpec,
  result: Record<string, string>,
  fingerprint: string,
): Props {
  return {
    ...inputs,
    hostInterface: spec.hostInterface,
    containerInterface: spec.containerInterface,
    hostAddress: result.hostAddress || spec.hostAddress,
    localAddress: result.localAddress || spec.localAddress,
    allocatedOnHost: inputs.allocatedOnHost === true || spec.hostAddress === undefined,
    confPath: result.conf || undefined,
    running: true,
    hostKeyFingerprint: fingerprint,
  };
}

function update(_id: string, olds: Props, news: Props): Promise<{ outs: Props }> {
  return updateWith(RULES, olds, withKeptAddresses(olds, news), () => converge(olds, news));
}

/** Brings an existing container to `news` on the host. */
async function converge(olds: Props, news: Props): Promise<Props> {
  const spec = containerSpec(news);
  const { host } = hostOf({ ...news, hostKeyFingerprint: olds.hostKeyFingerprint });
  const fingerprint = await host.fingerprint();
  // Addresses allocated on the host at create are kept unless the program now sets them.
  const previous = {
    hostAddress: String(olds.hostAddress ?? ""),
    localAddress: String(olds.localAddress ?? ""),
  };
  let stdout: string;
  try {
    stdout = (
      await runBatched(
        host,
        DRIVERS[spec.driver].convergeScript(spec, previous),
        `update container ${spec.name}`,
      )
    ).stdout;
  } catch (err) {
    throw explainScriptFailure(err, `container "${spec.name}"`, host.target, "updated", PICK_OTHER);
  }
  return outputs({ ...news, allocatedOnHost: olds.allocatedOnHost }, spec, parseResults(stdout), fingerprint);
}

async function read(id: string, props: Props): Promise<ReadResult> {
  const spec = containerSpec(props);
  const { host } = hostOf(props);
  const { stdout } = await runBatched(
    host,
    DRIVERS[spec.driver].readScript(spec),
    `read container ${spec.name}`,
  );
  const seen: ObservedContainer = DRIVERS[spec.driver].parseRead(stdout);
  if (!seen.exists) return {};
  return {
    id,
    props: {
      ...props,
      // A changed address shows as its new value; a missing one keeps the recorded value, with running false.
      hostAddress: seen.hostAddress ?? props.hostAddress,
      localAddress: seen.localAddress ?? props.localAddress,
      running: seen.running,
      ...(seen.confPath ? { confPath: seen.confPath } : {}),
      ...(seen.autoStart !== undefined ? { autoStart: seen.autoStart } : {}),
    },
  };
}

async function remove(_id: string, props: Props): Promise<void> {
  const spec = containerSpec(props);
  const { host } = hostOf(props);
  try {
    if (spec.driver === "netns") await netnsDeletes.submit(host, spec);
    else await runBatched(host, nixosDriver.deleteScript(spec), `delete container ${spec.name}`);
  } catch (err) {
    throw explainScriptFailure(err, `container "${spec.name}"`, host.target, "deleted");
  }
}

/** Outputs observed on the host or kept for bookkeeping; addresses the host picked were no input either. */
function inputsOf(props: Props): Props {
  const observed = ["running", "hostKeyFingerprint", "allocatedOnHost", "confPath"];
  return withoutKeys(
    props,
    props.allocatedOnHost === true ? [...observed, "hostAddress", "localAddress"] : observed,
  );
}

export const containerHandler: Handler = {
  check,
  diff,
  inputsOf,
  create: (inputs) => scrubbed(inputs, () => create(inputs)),
  read: (id, props) => scrubbed(props, () => read(id, props)),
  update: (id, olds, news) => scrubbed(news, () => update(id, olds, news)),
  delete: (id, props) => scrubbed(props, () => remove(id, props)),
};
