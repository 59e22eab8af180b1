// Runs a Pulumi program under `pulumi.runtime.setMocks` and records every resource it registers, with inputs as
// the engine would receive them. By default a dynamic resource of this package gets the outputs its provider's
// `check` computes (allocations, rulesets, interface names: what preview shows); pass `newResource` to do
// something else (the lab deploy test forwards to the real provider host).
import { createRequire } from "node:module";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";

/** The type token prefix of this package's dynamic resources. */
export const DYNAMIC_PREFIX = "pulumi-nodejs:dynamic/nixos:";

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  /** Inputs with secrets revealed (plain values), `__provider` included for dynamic resources. */
  readonly inputs: Record<string, unknown>;
  /** What the mock returned as the resource's state. */
  readonly state: Record<string, unknown>;
  readonly id: string;
  /** Input keys whose value was a secret. */
  readonly secretKeys: readonly string[];
}

export type NewResource = (
  type: string,
  name: string,
  inputs: Record<string, unknown>,
) => Promise<{ id: string; state: Record<string, unknown> }>;

const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

function isSecretValue(v: unknown): v is { value: unknown } {
  return v !== null && typeof v === "object" && (v as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

/** Replaces Pulumi's secret wrappers (as mocks receive them) by their values, deeply. */
export function revealSecrets(value: unknown): unknown {
  if (isSecretValue(value)) return revealSecrets(value.value);
  if (Array.isArray(value)) return value.map(revealSecrets);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revealSecrets(v)]));
  }
  return value;
}

function containsSecret(value: unknown): boolean {
  if (isSecretValue(value)) return true;
  if (Array.isArray(value)) return value.some(containsSecret);
  if (value !== null && typeof value === "object") return Object.values(value).some(containsSecret);
  return false;
}

interface RuntimeModule {
  check(
    type: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): { inputs: Record<string, unknown>; failures: { property: string; reason: string }[] };
}

/** This package's compiled runtime (bin/runtime; `npm run build` first). */
export function compiledRuntime(): RuntimeModule {
  const req = createRequire(path.resolve(__dirname, "../../package.json"));
  return req("./bin/runtime") as RuntimeModule;
}

/** The key a HostIdentity records under the default mock, unless its connection pins one. */
export const MOCK_HOST_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIETAIv8KW1Of+/W5lUsSPGWwg7svBuqQvKu03XGb7hgH";

/**
 * The default mock: dynamic resources get what their provider's `check` computes (a HostIdentity, the key its
 * host would present: MOCK_HOST_KEY); others echo their inputs.
 */
export const checkOnly: NewResource = async (type, name, inputs) => {
  if (!type.startsWith(DYNAMIC_PREFIX)) return { id: "", state: inputs };
  if (type === `${DYNAMIC_PREFIX}HostIdentity`) {
    const pinned = (inputs.connection as Record<string, unknown> | undefined)?.hostKey;
    return { id: `${name}-id`, state: { ...inputs, hostKey: pinned ?? MOCK_HOST_KEY } };
  }
  const result = compiledRuntime().check(type.slice(DYNAMIC_PREFIX.length), {}, inputs);
  if (result.failures.length > 0) {
    throw new Error(
      `${type} ${name}: check failed: ${result.failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`,
    );
  }
  return { id: `${name}-id`, state: result.inputs };
};

export interface MockRun<T> {
  readonly result: T;
  readonly resources: RecordedResource[];
}

/**
 * Sets the mocks, runs `program`, and waits until every resource it registers has been answered (and the
 * outputs it returns, when `wait` picks them, have resolved).
 */
export async function runUnderMocks<T>(
  program: () => T | Promise<T>,
  opts: {
    newResource?: NewResource;
    wait?: (result: T) => pulumi.Output<unknown>;
    project?: string;
    stack?: string;
  } = {},
): Promise<MockRun<T>> {
  const resources: RecordedResource[] = [];
  const pending: Promise<unknown>[] = [];
  const newResource = opts.newResource ?? checkOnly;
  await pulumi.runtime.setMocks(
    {
      newResource: (args: pulumi.runtime.MockResourceArgs) => {
        const inputs = revealSecrets(args.inputs) as Record<string, unknown>;
        const secretKeys = Object.entries(args.inputs as Record<string, unknown>)
          .filter(([, v]) => containsSecret(v))
          .map(([k]) => k);
        const work = newResource(args.type, args.name, inputs).then((r) => {
          resources.push({ type: args.type, name: args.name, inputs, state: r.state, id: r.id, secretKeys });
          return r;
        });
        pending.push(work.catch(() => undefined));
        return work;
      },
      call: (args: pulumi.runtime.MockCallArgs) => args.inputs,
    },
    opts.project ?? "project",
    opts.stack ?? "stack",
  );
  const result = await program();
  if (opts.wait) await new Promise((resolve) => opts.wait?.(result).apply(resolve));
  // Registration is asynchronous: wait until no new resource has arrived for a few turns of the event loop.
  let seen = -1;
  while (seen !== pending.length) {
    seen = pending.length;
    await Promise.all(pending);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  }
  return { result, resources };
}
