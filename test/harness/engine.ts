// A small stand-in for the Pulumi engine's resource steps (check → diff → create/update/replace/delete, and
// read for refresh), driving the real dynamic-provider host with this package's serialized provider shims.
import * as path from "node:path";
import { RESOURCE_TYPES, ResourceType } from "../../provider/core/types";
import {
  PropertyMap,
  ProviderHost,
  revealMap,
  startProviderHost,
  urnFor,
  withProvider,
} from "./providerHost";

export const REPO_ROOT = path.resolve(__dirname, "../..");

export { ResourceType };

/** One resource as the engine keeps it in state. */
export interface StateEntry {
  readonly type: ResourceType;
  readonly name: string;
  readonly urn: string;
  id: string;
  /** Checked inputs (with __provider). */
  inputs: Record<string, unknown>;
  /** Outputs (with __provider). */
  outs: Record<string, unknown>;
}

export class CheckFailedError extends Error {
  constructor(
    readonly type: string,
    readonly failures: { property: string; reason: string }[],
  ) {
    super(`${type} check failed:\n${failures.map((f) => `  ${f.property}: ${f.reason}`).join("\n")}`);
  }
}

/** Serialized provider text per type, computed the way dynamic.Resource does from the compiled package. */
export async function serializedProviders(): Promise<Record<ResourceType, string>> {
  // The compiled shims (bin/), as a user's program would load them from the installed package.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const shim = require(path.join(REPO_ROOT, "bin/resources/shim.js")) as {
    makeProvider(type: ResourceType): object;
  };
  const { serializeProvider } = await import("./providerHost");
  const entries = await Promise.all(
    RESOURCE_TYPES.map(async (t) => [t, await serializeProvider(shim.makeProvider(t))] as const),
  );
  return Object.fromEntries(entries) as Record<ResourceType, string>;
}

export class MiniEngine {
  private constructor(
    readonly host: ProviderHost,
    readonly providers: Record<ResourceType, string>,
  ) {}

  static async start(opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<MiniEngine> {
    const [host, providers] = await Promise.all([
      startProviderHost({ cwd: opts.cwd ?? REPO_ROOT, env: opts.env }),
      serializedProviders(),
    ]);
    return new MiniEngine(host, providers);
  }

  urn(type: ResourceType, name: string): string {
    return urnFor(`pulumi-nodejs:dynamic/nixos:${type}`, name);
  }

  /** Check as the engine runs it; returns checked inputs, throws CheckFailedError on failures. */
  async check(
    type: ResourceType,
    name: string,
    news: Record<string, unknown>,
    olds: Record<string, unknown> = {},
  ): Promise<Record<string, unknown>> {
    const result = await this.host.check(
      this.urn(type, name),
      olds,
      withProvider(this.providers[type], news),
    );
    if (result.failures.length > 0) throw new CheckFailedError(type, result.failures);
    return revealMap(result.inputs);
  }

  /** `pulumi up` of a new resource: check, then create. */
  async create(type: ResourceType, name: string, news: Record<string, unknown>): Promise<StateEntry> {
    const inputs = await this.check(type, name, news);
    const { id, outs } = await this.host.create(this.urn(type, name), inputs);
    return { type, name, urn: this.urn(type, name), id, inputs, outs: revealMap(outs as PropertyMap) };
  }

  /** What `pulumi preview` decides for new inputs of an existing resource. */
  async plan(entry: StateEntry, news: Record<string, unknown>) {
    const inputs = await this.check(entry.type, entry.name, news, entry.inputs);
    const diff = await this.host.diff(entry.urn, entry.id, entry.outs, inputs, entry.inputs);
    return { inputs, diff };
  }

  /** `pulumi up` of an existing resource with new inputs: update in place, or replace as diff says. */
  async up(entry: StateEntry, news: Record<string, unknown>): Promise<"same" | "updated" | "replaced"> {
    const { inputs, diff } = await this.plan(entry, news);
    if (diff.replaces.length > 0) {
      // The engine runs check again with no olds when it has decided to replace.
      const fresh = await this.check(entry.type, entry.name, news);
      if (diff.deleteBeforeReplace) {
        await this.host.delete(entry.urn, entry.id, entry.outs, entry.inputs);
        const created = await this.host.create(entry.urn, fresh);
        Object.assign(entry, { id: created.id, inputs: fresh, outs: revealMap(created.outs as PropertyMap) });
      } else {
        const created = await this.host.create(entry.urn, fresh);
        await this.host.delete(entry.urn, entry.id, entry.outs, entry.inputs);
        Object.assign(entry, { id: created.id, inputs: fresh, outs: revealMap(created.outs as PropertyMap) });
      }
      return "replaced";
    }
    if (!diff.changes) return "same";
    const { outs } = await this.host.update(entry.urn, entry.id, entry.outs, inputs, entry.inputs);
    Object.assign(entry, { inputs, outs: revealMap(outs as PropertyMap) });
    return "updated";
  }

  /** `pulumi refresh` of one resource: returns false when the provider says it is gone. */
  async refresh(entry: StateEntry): Promise<boolean> {
    const result = await this.host.read(entry.urn, entry.id, entry.outs, entry.inputs);
    if (!result.id) return false;
    entry.outs = revealMap(result.props as PropertyMap);
    // The inputs the provider handed back (or the old ones, when it gave none), as the engine stores them.
    entry.inputs = revealMap(result.inputs);
    return true;
  }

  async destroy(entry: StateEntry): Promise<void> {
    await this.host.delete(entry.urn, entry.id, entry.outs, entry.inputs);
  }

  /** The provider process's SSH counters (handshakes, dials, commands per target). */
  async close(): Promise<void> {
    await this.host.close();
  }
}
