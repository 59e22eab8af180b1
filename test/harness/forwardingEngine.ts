// A stand-in for the Pulumi engine under mocks: each dynamic resource the program registers is forwarded to a
// real dynamic-provider host (check, diff, then create / update / replace as the engine decides), with state
// kept between runs, so a test can run `preview` and `up` of a program without the Pulumi CLI. Resources of
// an earlier run that the program no longer registers are deleted (reverse creation order) after the run.
import { DYNAMIC_PREFIX, NewResource, revealSecrets } from "./mockRun";

type Props = Record<string, unknown>;

/** The provider-host calls used (the test harness's ProviderHost has this shape). */
export interface ProviderRpc {
  check(
    urn: string,
    olds: Props,
    news: Props,
  ): Promise<{ inputs: Props; failures: { property: string; reason: string }[] }>;
  diff(
    urn: string,
    id: string,
    olds: Props,
    news: Props,
    oldInputs?: Props,
  ): Promise<{ changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }>;
  create(urn: string, inputs: Props): Promise<{ id: string; outs: Props }>;
  update(urn: string, id: string, olds: Props, news: Props, oldInputs?: Props): Promise<{ outs: Props }>;
  delete(urn: string, id: string, olds: Props, oldInputs?: Props): Promise<void>;
}

export interface StateEntry {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  id: string;
  inputs: Props;
  outs: Props;
}

/** What the engine decided (preview) or did (up) for one resource. */
export interface Step {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly op: "create" | "update" | "replace" | "same" | "delete";
  /** Checked inputs: what preview shows. */
  readonly inputs?: Props;
  readonly diff?: { changes: boolean; replaces: string[]; deleteBeforeReplace: boolean };
}

const reveal = (m: Props): Props => revealSecrets(m) as Props;

export class ForwardingEngine {
  /** urn → entry, in creation order. */
  readonly state = new Map<string, StateEntry>();
  steps: Step[] = [];
  private registered = new Set<string>();

  constructor(
    private host: ProviderRpc,
    private readonly stack = "stack",
    private readonly project = "project",
  ) {}

  /** Use another provider host from now on (preview and update run in separate provider processes). */
  useHost(host: ProviderRpc): void {
    this.host = host;
  }

  urn(type: string, name: string): string {
    return `urn:pulumi:${this.stack}::${this.project}::${type}::${name}`;
  }

  /** The mock's newResource for one run; call `finish` after the program's resources are all in. */
  newResource(mode: "preview" | "up"): NewResource {
    this.steps = [];
    this.registered = new Set();
    return async (type, name, inputs) => {
      if (!type.startsWith(DYNAMIC_PREFIX)) return { id: "", state: inputs };
      const urn = this.urn(type, name);
      this.registered.add(urn);
      const old = this.state.get(urn);
      const checked = await this.check(urn, old?.inputs ?? {}, inputs);
      if (!old) {
        this.steps.push({ urn, type, name, op: "create", inputs: checked });
        if (mode === "preview") return { id: "", state: checked };
        const { id, outs } = await this.host.create(urn, checked);
        this.state.set(urn, { urn, type, name, id, inputs: checked, outs: reveal(outs) });
        return { id, state: reveal(outs) };
      }
      const diff = await this.host.diff(urn, old.id, old.outs, checked, old.inputs);
      const op = diff.replaces.length > 0 ? "replace" : diff.changes ? "update" : "same";
      this.steps.push({ urn, type, name, op, inputs: checked, diff });
      // Preview shows the checked inputs as the outputs dependents see.
      if (mode === "preview") return { id: old.id, state: op === "same" ? old.outs : checked };
      if (op === "replace") {
        // The engine checks again with no olds once it has decided to replace.
        const fresh = await this.check(urn, {}, inputs);
        if (diff.deleteBeforeReplace) await this.host.delete(urn, old.id, old.outs, old.inputs);
        const { id, outs } = await this.host.create(urn, fresh);
        if (!diff.deleteBeforeReplace) await this.host.delete(urn, old.id, old.outs, old.inputs);
        Object.assign(old, { id, inputs: fresh, outs: reveal(outs) });
      } else if (op === "update") {
        const { outs } = await this.host.update(urn, old.id, old.outs, checked, old.inputs);
        Object.assign(old, { inputs: checked, outs: reveal(outs) });
      }
      return { id: old.id, state: old.outs };
    };
  }

  /** After a run: resources the program no longer registers are deleted (up) or listed as deletes (preview). */
  async finish(mode: "preview" | "up"): Promise<void> {
    const gone = [...this.state.values()].filter((e) => !this.registered.has(e.urn)).reverse();
    for (const e of gone) {
      this.steps.push({ urn: e.urn, type: e.type, name: e.name, op: "delete" });
      if (mode === "up") {
        await this.host.delete(e.urn, e.id, e.outs, e.inputs);
        this.state.delete(e.urn);
      }
    }
  }

  /** `pulumi destroy`: everything, in reverse creation order. */
  async destroyAll(): Promise<void> {
    for (const e of [...this.state.values()].reverse()) {
      await this.host.delete(e.urn, e.id, e.outs, e.inputs);
      this.state.delete(e.urn);
    }
  }

  private async check(urn: string, olds: Props, news: Props): Promise<Props> {
    const result = await this.host.check(urn, olds, news);
    if (result.failures.length > 0) {
      throw new Error(
        `${urn}: check failed: ${result.failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`,
      );
    }
    return reveal(result.inputs);
  }
}
