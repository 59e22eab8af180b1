// One lifecycle for every host resource: a resource declares what it is in a `HostResourceDefinition` (how
// inputs parse into its typed spec, what preview shows, its diff rules, its id, its host scripts, how a
// script's report becomes an observation and the observation outputs, and its failure policy), and
// `hostResourceHandler` turns that declaration into the provider methods. Every create, update and read ends
// in the same place: the host's report → observation → outputs, so an output always means one thing.
import { Failure } from "../core/validate";
import { HostResourceType } from "../core/types";
import { ScriptOutcome } from "../host/protocol";
import { SshError, SshHost } from "../ssh";
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
  scrubbed,
  toCheckFailures,
  updateWith,
  withoutKeys,
} from "./common";
import { FailedOperation, HostScriptError, hostScriptError } from "./hostScriptError";
import { HostJob, runJob } from "./scriptBatch";

/** The report of a script that succeeded. */
export type Report = Extract<ScriptOutcome, { kind: "done" }>;

/** The provider method a script report comes from. */
export type Operation = "create" | "update" | "read";

/** Bookkeeping every host resource keeps: the host key seen (enforced on every later connection). */
export const HOST_KEY_BOOKKEEPING = "hostKeyFingerprint";

export interface HostResourceDefinition<Spec, Observation> {
  readonly type: HostResourceType;

  /**
   * Raw program inputs → the inputs `check` stores (defaults applied, what preview must show computed) and
   * the failures of everything but `connection` (checked for every resource alike). Pure, no SSH.
   */
  check(news: Props): { inputs: Props; failures: Failure[] };
  /** Checked inputs → the typed spec (parsed by core/), or failures. Called once per provider method. */
  parse(inputs: Props): { spec?: Spec; failures: Failure[] };
  readonly rules: DiffRules;
  /**
   * Output keys that are no inputs: `observed` come from the host's report; `bookkeeping` is internal state
   * (recorded host key, host-chosen addresses, conf path), kept apart and never shown as an input.
   */
  readonly observed: readonly string[];
  readonly bookkeeping: readonly string[];
  /** The id: unique per machine (`host:port`, with the jump host). */
  id(spec: Spec, machine: string): string;
  /** How messages name it: `container "web"`. */
  subject(spec: Spec): string;
  /** Advice appended to a refusal of create or update. */
  readonly refusalFix?: string;

  readonly scripts: {
    /** Checks (under the host lock) that nothing of that name or address exists, then makes it; reports. */
    create(spec: Spec): HostJob;
    /** Brings what exists to the spec; `previous` are the stored outputs. Reports. */
    update(spec: Spec, previous: Props): HostJob;
    /** Reports; changes nothing. */
    read(spec: Spec): HostJob;
    /** Removes it; succeeds when already gone. */
    delete(spec: Spec): HostJob;
  };
  /** The report every create, update and read script ends with → what is on the host. */
  observe(spec: Spec, report: Report): Observation;
  /** Whether a read found it on the host at all (when not, refresh drops it from state). */
  exists(observation: Observation): boolean;
  /**
   * Spec + observation → the observed outputs and bookkeeping (laid over the inputs). `previous` holds the
   * stored outputs on update and read, and is undefined on create.
   */
  outputs(spec: Spec, observation: Observation, previous: Props | undefined, operation: Operation): Props;
  /** A problem the observation shows after create or update (it then fails, recording what was made). */
  verify?(spec: Spec, observation: Observation, target: string): string | undefined;

  /** What a failed create records and may remove. */
  readonly failure: {
    /**
     * Outputs recorded (with the inputs, through Pulumi's init-error path) when a create lost its connection
     * or timed out after it was sent: they mark it unhealthy, so the next `up` runs update, which finishes it.
     */
    readonly cutOff: Props;
    /**
     * How to remove what a create made when its script failed after its checks without rolling back. Never
     * run after a refusal, a missing tool or a lock timeout (nothing was made then).
     */
    cleanup?(spec: Spec): HostJob;
  };

  /** The program's inputs as diff and update should see them (e.g. with addresses the host picked kept). */
  withKept?(olds: Props, news: Props): Props;
  /** The checked inputs a resource with these stored outputs was made from (default: less observed and bookkeeping). */
  inputsOf?(props: Props): Props;
  /** Whether a create may take over what already exists on the host (Container's `adopt`). */
  adopts?(spec: Spec): boolean;
}

/** The script builders of a resource whose every operation is one script of its own. */
export interface ScriptBuilders<Spec> {
  create(spec: Spec): string;
  update(spec: Spec, previous: Props): string;
  read(spec: Spec): string;
  delete(spec: Spec): string;
}

/** Jobs from script builders: each runs alone, or merged with the other independent scripts sent at once. */
export function independentScripts<Spec>(
  display: (verb: string, spec: Spec) => string,
  builders: ScriptBuilders<Spec>,
): HostResourceDefinition<Spec, unknown>["scripts"] {
  const job = (verb: string, spec: Spec, script: string): HostJob => ({
    display: display(verb, spec),
    script,
  });
  return {
    create: (spec) => job("create", spec, builders.create(spec)),
    update: (spec, previous) => job("update", spec, builders.update(spec, previous)),
    read: (spec) => job("read", spec, builders.read(spec)),
    delete: (spec) => job("delete", spec, builders.delete(spec)),
  };
}

function parsed<Spec>(definition: HostResourceDefinition<Spec, unknown>, inputs: Props): Spec {
  const { spec, failures } = definition.parse(inputs);
  if (!spec) {
    throw new Error(`${definition.type} inputs are invalid: ${failures.map((f) => f.message).join("; ")}`);
  }
  return spec;
}

/** A create, update or read whose connection ended or timed out after the script was sent. */
function cutOff(err: unknown): err is SshError {
  return err instanceof SshError && (err.kind === "disconnected" || err.kind === "timeout");
}

/** Runs one job and returns its report, or throws the error its outcome explains. */
async function report(
  host: SshHost,
  job: HostJob,
  operation: Omit<FailedOperation, "display" | "target">,
): Promise<Report> {
  const outcome = await runJob(host, job);
  if (outcome.kind === "done") return outcome;
  throw hostScriptError(outcome, { ...operation, display: job.display, target: host.target });
}

export function hostResourceHandler<Spec, Observation>(
  definition: HostResourceDefinition<Spec, Observation>,
): Handler {
  const d = definition;
  const observedOutputs = (
    operation: Operation,
    spec: Spec,
    r: Report,
    base: Props,
    previous: Props | undefined,
    fingerprint: string,
  ) => {
    const observation = d.observe(spec, r);
    const outs = {
      ...base,
      ...d.outputs(spec, observation, previous, operation),
      [HOST_KEY_BOOKKEEPING]: fingerprint,
    };
    return { observation, outs };
  };

  function check(_olds: Props, news: Props): CheckResult {
    const { inputs, failures } = d.check(news);
    return { inputs, failures: toCheckFailures([...connectionFailures(news.connection), ...failures]) };
  }

  async function create(inputs: Props): Promise<{ id: string; outs: Props }> {
    const spec = parsed(d, inputs);
    const { host } = hostOf(inputs);
    const fingerprint = await host.fingerprint();
    const id = d.id(spec, machineOf(inputs.connection));
    const operation = { subject: d.subject(spec), action: "created", fix: d.refusalFix };
    let done: Report;
    try {
      const existing = d.adopts?.(spec) ? await report(host, d.scripts.read(spec), operation) : undefined;
      const adopted = existing && d.exists(d.observe(spec, existing));
      done = adopted
        ? await report(
            host,
            d.scripts.update(spec, {
              ...inputs,
              ...d.outputs(spec, d.observe(spec, existing), undefined, "read"),
            }),
            operation,
          )
        : await report(host, d.scripts.create(spec), operation);
    } catch (err) {
      if (cutOff(err)) {
        // The script may have run: record the resource so the next `up` finishes it instead of orphaning it.
        throw new PartialCreateError(
          err.message,
          id,
          { ...inputs, ...d.failure.cutOff, [HOST_KEY_BOOKKEEPING]: fingerprint },
          [
            `the connection ended while ${d.subject(spec)} was being created; the next \`pulumi up\` will finish or repair it`,
          ],
        );
      }
      if (err instanceof HostScriptError && !err.nothingChanged && d.failure.cleanup) {
        const cleaned = await runJob(host, d.failure.cleanup(spec)).then(
          (o) => o.kind === "done",
          () => false,
        );
        if (cleaned) err.message += "\n  What this create had made was removed again.";
      }
      throw err;
    }
    const { observation, outs } = observedOutputs("create", spec, done, inputs, undefined, fingerprint);
    const problem = d.verify?.(spec, observation, host.target);
    // What was made is on the host: record it (init error) rather than orphan it.
    if (problem) throw new PartialCreateError(problem, id, outs, [problem]);
    return { id, outs };
  }

  async function update(olds: Props, news: Props): Promise<Props> {
    const spec = parsed(d, news);
    const { host } = hostOf({ ...news, [HOST_KEY_BOOKKEEPING]: olds[HOST_KEY_BOOKKEEPING] });
    const fingerprint = await host.fingerprint();
    const operation = { subject: d.subject(spec), action: "updated", fix: d.refusalFix };
    const done = await report(host, d.scripts.update(spec, olds), operation);
    const { observation, outs } = observedOutputs("update", spec, done, news, olds, fingerprint);
    const problem = d.verify?.(spec, observation, host.target);
    if (problem) throw new Error(problem);
    return outs;
  }

  async function read(id: string, props: Props) {
    const spec = parsed(d, props);
    const { host } = hostOf(props);
    const fingerprint = await host.fingerprint();
    const done = await report(host, d.scripts.read(spec), { subject: d.subject(spec), action: "read" });
    const { observation, outs } = observedOutputs("read", spec, done, props, props, fingerprint);
    return d.exists(observation) ? { id, props: outs } : {};
  }

  async function remove(props: Props): Promise<void> {
    const spec = parsed(d, props);
    const { host } = hostOf(props);
    await report(host, d.scripts.delete(spec), { subject: d.subject(spec), action: "deleted" });
  }

  const kept = (olds: Props, news: Props): Props => (d.withKept ? d.withKept(olds, news) : news);
  return {
    check,
    diff: (_id, olds, news) => diffWith(d.rules, olds, kept(olds, news)),
    create: (inputs) => scrubbed(inputs, () => create(inputs)),
    update: (_id, olds, news) =>
      scrubbed(news, () => updateWith(d.rules, olds, kept(olds, news), () => update(olds, kept(olds, news)))),
    read: (id, props) => scrubbed(props, () => read(id, props)),
    delete: (_id, props) => scrubbed(props, () => remove(props)),
    inputsOf: (props) =>
      d.inputsOf ? d.inputsOf(props) : withoutKeys(props, [...d.observed, ...d.bookkeeping]),
  };
}
