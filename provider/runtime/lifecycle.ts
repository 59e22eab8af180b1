// One lifecycle for every host resource: a resource declares what it is in a `HostResourceDefinition` (how
// inputs parse into its typed spec, what preview shows, its diff rules, its id, its host scripts, how a
// script's report becomes an observation and the observation outputs, and its failure policy), and
// `hostResourceHandler` turns that declaration into the provider methods. Every create, update and read ends
// in the same place: the host's report → observation → outputs, so an output always means one thing.
import {
  DEFAULT_TIMEOUTS,
  TimedOperation,
  Timeouts,
  parseTimeouts,
  validateTimeouts,
} from "../core/timeouts";
import { Failure, UNKNOWN, validateBoolean } from "../core/validate";
import { PersistPlan } from "../core/persistence";
import { HostResourceType } from "../core/types";
import { randomBytes } from "node:crypto";
import { ScriptOutcome } from "../host/protocol";
import { Ownership, claimScript } from "../host/shell";
import { persistApplyScript, persistReadScript, persistRemoveScript } from "../host/persistScripts";
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
  nothingToDo,
  scrubbed,
  toCheckFailures,
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

/**
 * Bookkeeping every host resource keeps: `owner`, the per-create nonce its host objects are marked with
 * (absent in state from before markers), and `createPending`, set when a create was cut off after it was
 * sent (the next update asks the host whether it got past its checks).
 */
export const OWNER_BOOKKEEPING = ["owner", "createPending"] as const;

/**
 * What every host resource observes of `persist`: `persisted` is current, missing or stale (see
 * host/persistScripts.ts), present while persist is on or a unit of ours is left on the host.
 */
export const PERSIST_OBSERVED = "persisted";

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

  /** The host object whose marker stands for the resource: `{ kind: "container", name: "web" }`. */
  marker(spec: Spec): { readonly kind: string; readonly name: string };
  readonly scripts: {
    /**
     * Checks (under the host lock) that nothing of that name or address exists, marks the object as the
     * owner's, then makes it; reports.
     */
    create(spec: Spec, owner: Ownership): HostJob;
    /** Brings what exists to the spec, if it is the owner's; `previous` are the stored outputs. Reports. */
    update(spec: Spec, previous: Props, owner: Ownership): HostJob;
    /** Reports, with the marker (`owner`, `marker_*` results); changes nothing. */
    read(spec: Spec, owner: Ownership): HostJob;
    /** Removes it if it is the owner's (else reports `leftBehind` and changes nothing); succeeds when gone. */
    delete(spec: Spec, owner: Ownership): HostJob;
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
    cleanup?(spec: Spec, owner: Ownership): HostJob;
  };

  /** The program's inputs as diff and update should see them (e.g. with addresses the host picked kept). */
  withKept?(olds: Props, news: Props): Props;
  /** The checked inputs a resource with these stored outputs was made from (default: less observed and bookkeeping). */
  inputsOf?(props: Props): Props;
  /** Whether a create may take over what already exists on the host (Container's `adopt`). */
  adopts?(spec: Spec): boolean;
  /** The default `timeouts` of this spec. @default five minutes for each operation */
  defaultTimeouts?(spec: Spec): Timeouts;
  /**
   * `persist: true`: the unit and script that restore it after a reboot (see core/persistence.ts), rendered
   * from the spec; undefined when the resource has nothing live to restore (what it writes persists by itself,
   * or it persists another way, as a nixos container's autoStart does).
   */
  persistence?(spec: Spec): PersistPlan | undefined;
}

/** The `persistence` input preview shows: the unit and the script, with their paths. */
function shownPlan(plan: PersistPlan): Props {
  return {
    unit: plan.unit,
    unitPath: plan.unitPath,
    unitText: plan.unitText,
    scriptPath: plan.scriptPath,
    scriptText: plan.scriptText,
  };
}

/** The script builders of a resource whose every operation is one script of its own. */
export interface ScriptBuilders<Spec> {
  create(spec: Spec, owner: Ownership): string;
  update(spec: Spec, previous: Props, owner: Ownership): string;
  read(spec: Spec, owner: Ownership): string;
  delete(spec: Spec, owner: Ownership): string;
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
    create: (spec, owner) => job("create", spec, builders.create(spec, owner)),
    update: (spec, previous, owner) => job("update", spec, builders.update(spec, previous, owner)),
    read: (spec, owner) => job("read", spec, builders.read(spec, owner)),
    delete: (spec, owner) => job("delete", spec, builders.delete(spec, owner)),
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

/** A fresh owner token: the nonce one create marks its host objects with. */
function newToken(): string {
  return randomBytes(8).toString("hex");
}

export function hostResourceHandler<Spec, Observation>(
  definition: HostResourceDefinition<Spec, Observation>,
): Handler {
  const d = definition;
  const ownershipOf = (spec: Spec, props: Props): Ownership => {
    const marker = d.marker(spec);
    const token = typeof props.owner === "string" ? props.owner : undefined;
    return { token: token ?? newToken(), legacy: token === undefined, resource: `${d.type} ${marker.name}` };
  };
  const observedOutputs = (
    operation: Operation,
    spec: Spec,
    r: Report,
    base: Props,
    previous: Props | undefined,
    fingerprint: string,
    owner: Ownership,
  ) => {
    const observation = d.observe(spec, r);
    const outs: Props = {
      ...base,
      ...d.outputs(spec, observation, previous, operation),
      [HOST_KEY_BOOKKEEPING]: fingerprint,
      owner: owner.token,
    };
    // Whatever the host reported, the create is no longer pending.
    delete outs.createPending;
    return { observation, outs };
  };

  function check(_olds: Props, news: Props): CheckResult {
    const { inputs, failures } = d.check(news);
    const all = [
      ...connectionFailures(news.connection),
      ...validateTimeouts(news.timeouts),
      ...validateBoolean(news.persist, "persist"),
      ...failures,
    ];
    if (news.persist === true && d.persistence && failures.length === 0) {
      const { spec } = d.parse(inputs);
      const plan = spec === undefined ? undefined : d.persistence(spec);
      if (spec === undefined) inputs.persistence = UNKNOWN;
      else if (plan) inputs.persistence = shownPlan(plan);
    }
    return { inputs, failures: toCheckFailures(all) };
  }

  /** The plan to write when the resource persists (persist on and something live to restore). */
  const planOf = (spec: Spec, props: Props): PersistPlan | undefined =>
    props.persist === true ? d.persistence?.(spec) : undefined;
  /** Unit scripts are never legacy: a unit without our marker is someone else's. */
  const unitOwner = (owner: Ownership): Ownership => ({ ...owner, legacy: false });

  /**
   * Writes the plan (or, persist off, removes a unit of ours left from before) after a create or update; the
   * `persisted` output it leads to (absent when there is nothing to persist and nothing was there).
   */
  async function persistAfter(
    host: SshHost,
    spec: Spec,
    props: Props,
    previous: Props | undefined,
    owner: Ownership,
  ): Promise<Props> {
    const plan = planOf(spec, props);
    const { kind, name } = d.marker(spec);
    const operation = { subject: d.subject(spec), action: "persisted" };
    if (plan) {
      const done = await report(
        host,
        {
          display: `persist ${d.subject(spec)} (${plan.unit})`,
          script: persistApplyScript(plan, unitOwner(owner)),
        },
        operation,
      );
      return { [PERSIST_OBSERVED]: done.results.persisted ?? "missing" };
    }
    if (previous?.[PERSIST_OBSERVED] === undefined) return {};
    await report(
      host,
      {
        display: `stop persisting ${d.subject(spec)}`,
        script: persistRemoveScript(kind, name, unitOwner(owner)),
      },
      operation,
    );
    return {};
  }

  /** The job with the time its operation may take (the `timeouts` input over the spec's defaults). */
  const timed = (job: HostJob, spec: Spec, props: Props, operation: TimedOperation): HostJob => ({
    ...job,
    timeoutSeconds: parseTimeouts(props.timeouts, d.defaultTimeouts?.(spec) ?? DEFAULT_TIMEOUTS)[operation],
  });

  /** The create script (or, with `adopts`, the update of what is there), run with `owner`; its report. */
  async function make(host: SshHost, spec: Spec, inputs: Props, owner: Ownership) {
    const operation = { subject: d.subject(spec), action: "created", fix: d.refusalFix };
    const existing = d.adopts?.(spec)
      ? await report(host, d.scripts.read(spec, owner), operation)
      : undefined;
    if (existing && d.exists(d.observe(spec, existing))) {
      const seen = d.outputs(spec, d.observe(spec, existing), undefined, "read");
      // Adopting takes over an object someone made by hand: it becomes ours.
      // `previous` is what is there, not what the program says (a config it has is then built).
      const job = d.scripts.update(spec, seen, { ...owner, legacy: true });
      return report(host, timed(job, spec, inputs, "create"), operation);
    }
    return report(host, timed(d.scripts.create(spec, owner), spec, inputs, "create"), operation);
  }

  async function create(inputs: Props): Promise<{ id: string; outs: Props }> {
    const spec = parsed(d, inputs);
    const { host } = hostOf(inputs);
    const fingerprint = await host.fingerprint();
    const id = d.id(spec, machineOf(inputs.connection));
    // A fresh token: what this create makes is marked with it.
    const owner: Ownership = { ...ownershipOf(spec, {}), legacy: false };
    let done: Report;
    try {
      done = await make(host, spec, inputs, owner);
    } catch (err) {
      if (cutOff(err)) {
        // The script may have run: record the resource with its token, so the next `up` asks the host
        // whether this create got past its checks (our marker is there) and finishes it, or starts afresh.
        const recorded = {
          ...inputs,
          ...d.failure.cutOff,
          [HOST_KEY_BOOKKEEPING]: fingerprint,
          owner: owner.token,
          createPending: true,
        };
        throw new PartialCreateError(err.message, id, recorded, [
          `the connection ended while ${d.subject(spec)} was being created; the next \`pulumi up\` will finish or repair it`,
        ]);
      }
      // Only what this run made, and only when its script failed after its checks without rolling back.
      if (err instanceof HostScriptError && !err.nothingChanged && d.failure.cleanup) {
        const cleaned = await runJob(host, d.failure.cleanup(spec, owner)).then(
          (o) => o.kind === "done",
          () => false,
        );
        if (cleaned) err.message += "\n  What this create had made was removed again.";
      }
      throw err;
    }
    const { observation, outs } = observedOutputs(
      "create",
      spec,
      done,
      inputs,
      undefined,
      fingerprint,
      owner,
    );
    const problem = d.verify?.(spec, observation, host.target);
    // What was made is on the host: record it (init error) rather than orphan it.
    if (problem) throw new PartialCreateError(problem, id, outs, [problem]);
    try {
      return { id, outs: { ...outs, ...(await persistAfter(host, spec, inputs, undefined, owner)) } };
    } catch (err) {
      // Made but not persisted: recorded as such, the next `up` writes the unit.
      const message = err instanceof Error ? err.message : String(err);
      throw new PartialCreateError(message, id, { ...outs, [PERSIST_OBSERVED]: "missing" }, [message]);
    }
  }

  /** A create cut off earlier: finish it when it got past its checks (our marker), else create afresh. */
  async function resume(
    host: SshHost,
    spec: Spec,
    olds: Props,
    news: Props,
    owner: Ownership,
  ): Promise<Report> {
    const operation = { subject: d.subject(spec), action: "created", fix: d.refusalFix };
    const seen = await report(host, d.scripts.read(spec, owner), operation);
    if (seen.results.owner !== owner.token) {
      return report(host, timed(d.scripts.create(spec, owner), spec, news, "create"), operation);
    }
    // Addresses the host picked before the connection ended are in our marker.
    const kept = Object.fromEntries(
      Object.entries(seen.results)
        .filter(([key]) => key.startsWith("marker_"))
        .map(([key, value]) => [key.slice("marker_".length), value]),
    );
    const job = d.scripts.update(spec, { ...olds, ...kept }, owner);
    return report(host, timed(job, spec, news, "create"), operation);
  }

  async function update(olds: Props, news: Props): Promise<Props> {
    const spec = parsed(d, news);
    const { host } = hostOf({ ...news, [HOST_KEY_BOOKKEEPING]: olds[HOST_KEY_BOOKKEEPING] });
    const fingerprint = await host.fingerprint();
    const owner = ownershipOf(spec, olds);
    const done =
      olds.createPending === true
        ? await resume(host, spec, olds, news, owner)
        : await report(host, timed(d.scripts.update(spec, olds, owner), spec, news, "update"), {
            subject: d.subject(spec),
            action: "updated",
            fix: d.refusalFix,
          });
    const previous = olds.createPending === true ? undefined : olds;
    const { observation, outs } = observedOutputs("update", spec, done, news, previous, fingerprint, owner);
    const problem = d.verify?.(spec, observation, host.target);
    if (problem) throw new Error(problem);
    delete outs[PERSIST_OBSERVED];
    return { ...outs, ...(await persistAfter(host, spec, news, olds, owner)) };
  }

  /** State from before markers, with nothing else to do: mark its object, touching nothing else. */
  async function claim(olds: Props, news: Props): Promise<Props> {
    const spec = parsed(d, news);
    const { host } = hostOf({ ...news, [HOST_KEY_BOOKKEEPING]: olds[HOST_KEY_BOOKKEEPING] });
    const owner = ownershipOf(spec, olds);
    const { kind, name } = d.marker(spec);
    await report(
      host,
      { display: `mark ${kind} ${name}`, script: claimScript(owner, kind, name) },
      { subject: d.subject(spec), action: "updated" },
    );
    return { ...olds, ...news, [HOST_KEY_BOOKKEEPING]: olds[HOST_KEY_BOOKKEEPING], owner: owner.token };
  }

  async function read(id: string, props: Props) {
    const spec = parsed(d, props);
    const { host } = hostOf(props);
    const fingerprint = await host.fingerprint();
    const owner = ownershipOf(spec, props);
    const plan = planOf(spec, props);
    const { kind, name } = d.marker(spec);
    const operation = { subject: d.subject(spec), action: "read" };
    // Both reads are sent at once: the host runs them in one round trip.
    const [done, unit] = await Promise.all([
      report(host, d.scripts.read(spec, owner), operation),
      plan || props[PERSIST_OBSERVED] !== undefined
        ? report(
            host,
            {
              display: `read the unit of ${d.subject(spec)}`,
              script: persistReadScript(kind, name, plan, unitOwner(owner)),
            },
            operation,
          )
        : undefined,
    ]);
    // What is there under our name but not marked ours is someone else's: ours is gone.
    if (!owner.legacy && props.createPending !== true && done.results.owner !== owner.token) return {};
    const { observation, outs } = observedOutputs("read", spec, done, props, props, fingerprint, owner);
    if (props.createPending === true) outs.createPending = true;
    delete outs[PERSIST_OBSERVED];
    // Without persist, only a unit of ours left on the host is worth an output (up removes it).
    const persisted = unit?.results.persisted;
    if (persisted !== undefined && (plan || persisted !== "missing")) outs[PERSIST_OBSERVED] = persisted;
    return d.exists(observation) ? { id, props: outs } : {};
  }

  async function remove(props: Props): Promise<void> {
    const spec = parsed(d, props);
    const { host } = hostOf(props);
    if (planOf(spec, props) || props[PERSIST_OBSERVED] !== undefined) {
      // The unit goes first: a reboot between the two must not bring back what the delete removes.
      const { kind, name } = d.marker(spec);
      await report(
        host,
        {
          display: `stop persisting ${d.subject(spec)}`,
          script: persistRemoveScript(kind, name, unitOwner(ownershipOf(spec, props))),
        },
        { subject: d.subject(spec), action: "deleted" },
      );
    }
    const job = timed(d.scripts.delete(spec, ownershipOf(spec, props)), spec, props, "delete");
    const done = await report(host, job, {
      subject: d.subject(spec),
      action: "deleted",
    });
    const left = done.results.leftBehind;
    if (left) {
      // Deleting drops the resource from state; the object stays, and the user is told why.
      process.stderr.write(
        `warning: ${d.subject(spec)} was dropped from the stack, but what stands under its name on ${host.target} was left there: ${left}\n`,
      );
    }
  }

  const kept = (olds: Props, news: Props): Props => (d.withKept ? d.withKept(olds, news) : news);
  // Every resource's rules, with `persist`: its plan is updated in place, and a unit found missing or stale
  // (or one left while persist is off) is repaired by the next update.
  const rules: DiffRules = {
    ...d.rules,
    update: [...d.rules.update, "persist", "persistence"],
    healthy: (olds) =>
      (d.rules.healthy?.(olds) ?? true) &&
      (olds.persistence === undefined
        ? olds[PERSIST_OBSERVED] === undefined
        : olds[PERSIST_OBSERVED] === "current"),
  };
  return {
    check,
    diff: (_id, olds, news) => {
      const result = diffWith(rules, olds, kept(olds, news));
      // State from before markers: the next update marks its objects (and touches nothing else).
      return typeof olds.owner === "string" || result.changes ? result : { ...result, changes: true };
    },
    create: (inputs) => scrubbed(inputs, () => create(inputs)),
    update: (_id, olds, news) =>
      scrubbed(news, async () => {
        const wanted = kept(olds, news);
        if (olds.createPending !== true && nothingToDo(rules, olds, wanted)) {
          if (typeof olds.owner === "string") {
            return { outs: { ...olds, ...wanted, [HOST_KEY_BOOKKEEPING]: olds[HOST_KEY_BOOKKEEPING] } };
          }
          return { outs: await claim(olds, wanted) };
        }
        return { outs: await update(olds, wanted) };
      }),
    read: (id, props) => scrubbed(props, () => read(id, props)),
    delete: (_id, props) => scrubbed(props, () => remove(props)),
    inputsOf: (props) =>
      d.inputsOf
        ? d.inputsOf(props)
        : withoutKeys(props, [...d.observed, ...d.bookkeeping, ...OWNER_BOOKKEEPING, PERSIST_OBSERVED]),
  };
}
