// What every resource's provider methods share: the handler contract, the gRPC/JSON boundary (raw props in,
// typed values out), diffing helpers, the partial-failure error Pulumi records, and secret scrubbing.
import { isDeepStrictEqual } from "node:util";
import { Failure, UNKNOWN, isUnknown } from "../core/validate";
import { ConnectionSpec, SshHost, parseConnection, sharedPool, validateConnection } from "../ssh";

export type Props = Record<string, unknown>;

/** The serialized provider the engine stores next to every resource's inputs and outputs. */
export const PROVIDER_KEY = "__provider";

export interface CheckResult {
  readonly inputs: Props;
  readonly failures: { property: string; reason: string }[];
}

export interface DiffResult {
  readonly changes: boolean;
  readonly replaces: string[];
  readonly deleteBeforeReplace: boolean;
}

export interface ReadResult {
  readonly id?: string;
  readonly props?: Props;
  /** The inputs the engine keeps for later diffs (dynamic providers since @pulumi/pulumi 3.216). */
  readonly inputs?: Props;
}

/** One resource type's provider methods, on raw engine values. */
export interface Handler {
  check(olds: Props, news: Props): CheckResult;
  diff(id: string, olds: Props, news: Props): DiffResult;
  create(inputs: Props): Promise<{ id: string; outs: Props }>;
  read(id: string, props: Props): Promise<ReadResult>;
  update(id: string, olds: Props, news: Props): Promise<{ outs: Props }>;
  delete(id: string, props: Props): Promise<void>;
  /**
   * The checked inputs a resource with these stored outputs was made from: what `read` hands back so the
   * engine's inputs after `pulumi refresh` are the ones `check` produced, and the next diff shows only real
   * changes (pulumi/pulumi#13839). Computed from the outputs as stored, before any host observation.
   */
  inputsOf(props: Props): Props;
}

/** Stored outputs less the keys that are observations or bookkeeping, never inputs. */
export function withoutKeys(props: Props, keys: readonly string[]): Props {
  return Object.fromEntries(Object.entries(props).filter(([key]) => !keys.includes(key)));
}

/** Turns validator failures into `check` failures. */
export function toCheckFailures(failures: readonly Failure[]): CheckResult["failures"] {
  return failures.map((f) => ({ property: f.property, reason: f.message }));
}

/** Validates the `connection` input (unknown during preview is fine) as check failures. */
export function connectionFailures(value: unknown): Failure[] {
  if (isUnknown(value)) return [];
  // A connection whose fields are outputs of other resources arrives with unknown fields in preview.
  const known =
    value !== null && typeof value === "object" && !Array.isArray(value)
      ? Object.fromEntries(
          Object.entries(value).map(([k, v]) => [k, isUnknown(v) && k === "host" ? "unknown.invalid" : v]),
        )
      : value;
  return validateConnection(stripUnknown(known)).map((message) => ({ property: "connection", message }));
}

function stripUnknown(value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  return Object.fromEntries(
    Object.entries(value as Props)
      .filter(([, v]) => !isUnknown(v))
      .map(([k, v]) => [k, stripUnknown(v)]),
  );
}

/** Whether any value in a (nested) input is not yet known: then no host work can be planned precisely. */
export function hasUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(hasUnknown);
  if (value !== null && typeof value === "object") return Object.values(value).some(hasUnknown);
  return false;
}

/** The shared SSH connection for a resource's stored props, enforcing the host key recorded at create. */
export function hostOf(props: Props): { host: SshHost; spec: ConnectionSpec } {
  const spec = parseConnection(props.connection);
  const recorded = typeof props.hostKeyFingerprint === "string" ? props.hostKeyFingerprint : undefined;
  return { host: sharedPool().host(spec, recorded), spec };
}

/** `host:port` of a stored connection: two resources there share one machine. */
export function machineOf(connection: unknown): string {
  if (connection === null || typeof connection !== "object") return String(connection);
  const c = connection as Props;
  if (isUnknown(c.host) || isUnknown(c.port)) return UNKNOWN;
  // A jump host not known yet may lead to another machine behind the same address.
  if (isUnknown(c.proxy)) return UNKNOWN;
  const proxy = c.proxy && typeof c.proxy === "object" ? `via ${machineOf(c.proxy)}` : "";
  return `${String(c.host)}:${String(c.port ?? 22)}${proxy}`;
}

/** Deep equality that treats an unknown value as different from everything (it may change). */
export function same(a: unknown, b: unknown): boolean {
  if (hasUnknown(a) || hasUnknown(b)) return false;
  return isDeepStrictEqual(a ?? null, b ?? null);
}

export interface DiffRules {
  /** Inputs whose change needs a new object on the host. */
  readonly replace: readonly string[];
  /** Inputs changed in place by `update`. */
  readonly update: readonly string[];
  /** When replacing, must the old object go first (same name or address on the same host)? */
  readonly deleteBeforeReplace: (olds: Props, news: Props) => boolean;
  /**
   * Whether the host matched the resource at its last create, update or refresh. When not, diff reports a
   * change so the next `up` repairs it, and update does the host work even if no input changed.
   * @default always healthy (nothing on a host to drift)
   */
  readonly healthy?: (olds: Props) => boolean;
}

/**
 * The diff every resource uses. `connection` is special: another machine (host, port or jump host) means a
 * replacement; other connection fields (credentials) are stored in place. A change of provider code alone
 * is reported as a change (so the new code reaches state, pulumi/pulumi#16826) and `update` makes it cheap.
 */
export function diffWith(rules: DiffRules, olds: Props, news: Props): DiffResult {
  const replaces: string[] = [];
  let changes = false;
  if ("connection" in news || "connection" in olds) {
    if (!same(machineOf(olds.connection), machineOf(news.connection))) replaces.push("connection");
    else if (!same(olds.connection, news.connection)) changes = true;
  }
  for (const key of rules.replace) if (!same(olds[key], news[key])) replaces.push(key);
  for (const key of rules.update) if (!same(olds[key], news[key])) changes = true;
  if (olds[PROVIDER_KEY] !== news[PROVIDER_KEY]) changes = true;
  if (rules.healthy && !rules.healthy(olds)) changes = true;
  const deleteBeforeReplace = replaces.length > 0 && rules.deleteBeforeReplace(olds, news);
  return { changes: changes || replaces.length > 0, replaces, deleteBeforeReplace };
}

/**
 * Whether an update has no host work: only provider code or credentials changed, and the host matched the
 * resource at its last create, update or refresh. The outputs are then carried over.
 */
export function nothingToDo(rules: DiffRules, olds: Props, news: Props): boolean {
  const unchanged =
    [...rules.replace, ...rules.update].every((key) => same(olds[key], news[key])) &&
    same(machineOf(olds.connection), machineOf(news.connection));
  return unchanged && (rules.healthy?.(olds) ?? true);
}

/**
 * A create that did something on the host before failing. The dynamic provider host turns `id`, `properties`
 * and `reasons` into the engine's init-error path: the resource is recorded, and the next `up` updates it.
 */
export class PartialCreateError extends Error {
  constructor(
    message: string,
    readonly id: string,
    readonly properties: Props,
    readonly reasons: string[],
  ) {
    super(message);
    this.name = "PartialCreateError";
  }
}

/** Secret values of a connection, for scrubbing error text. */
function secretsOf(connection: unknown): string[] {
  if (connection === null || typeof connection !== "object") return [];
  const c = connection as Props;
  const own = ["password", "privateKey", "privateKeyPassword", "sudoPassword"]
    .map((k) => c[k])
    .filter((v): v is string => typeof v === "string" && v.length >= 4);
  return [...own, ...secretsOf(c.proxy)];
}

/**
 * Runs a provider method and makes sure no credential of `props.connection` can leave in an error message.
 * Our own errors never include them; this also covers messages of libraries we call.
 */
export async function scrubbed<T>(props: Props, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const secrets = secretsOf(props.connection);
    if (err instanceof Error) {
      for (const secret of secrets) {
        for (const piece of [secret, ...secret.split("\n").filter((l) => l.length >= 16)]) {
          err.message = err.message.split(piece).join("[secret]");
          if (err.stack) err.stack = err.stack.split(piece).join("[secret]");
        }
      }
    }
    throw err;
  }
}
