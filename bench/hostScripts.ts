// The bench's one door into the provider's internals: the host scripts of one resource operation, exactly as
// the provider builds them (baseline and floor run them without our engine), and AddressPool's allocations.
// This is the only module of bench/ that imports provider/runtime or provider/host; everything else calls it.
import { HOST_RESOURCE_DEFINITIONS, check } from "../provider/runtime";
import { HostResourceDefinition } from "../provider/runtime/lifecycle";
import { batchMark } from "../provider/host/protocol";
import { HostJob, buildBatchScript, scriptOf } from "../provider/runtime/scriptBatch";

/** The resource types the bench declares. */
export type BenchResourceType = "AddressPool" | "Container" | "NatRule" | "NmUnmanaged";

/** The resource operations that run scripts on the host (refresh is "read"). */
export type HostOperation = "create" | "read" | "delete";

/** One resource as the bench declares it: its type and its raw (unchecked) inputs. */
export interface ScriptItem {
  readonly type: BenchResourceType;
  readonly inputs: Readonly<Record<string, unknown>>;
}

/** A container's two veth addresses, as AddressPool allocates them. */
export interface PoolAllocation {
  readonly hostAddress: string;
  readonly localAddress: string;
}

/** Path of the provider runtime module the provider shims load (PULUMI_NIXOS_CONTAINERS_RUNTIME). */
export const RUNTIME_MODULE = require.resolve("../provider/runtime");

/** The job of one operation, built by the resource's own definition from its checked inputs. */
function jobOf<Spec>(
  definition: HostResourceDefinition<Spec, unknown>,
  inputs: Record<string, unknown>,
  op: HostOperation,
) {
  const { spec, failures } = definition.parse(inputs);
  if (spec === undefined) {
    throw new Error(`${definition.type} inputs are invalid: ${failures.map((f) => f.message).join("; ")}`);
  }
  const scripts = definition.scripts;
  // One owner for every resource of the benchmark: its own deletes remove what its creates made.
  const owner = { token: "benchmark", legacy: false, resource: `${definition.type} benchmark` };
  return op === "create"
    ? scripts.create(spec, owner)
    : op === "read"
      ? scripts.read(spec, owner)
      : scripts.delete(spec, owner);
}

/** The host job of one operation, built by the resource's own definition from its checked inputs. */
function jobFor(item: ScriptItem, op: HostOperation): HostJob | undefined {
  if (item.type === "AddressPool") return undefined; // state only: no host work
  const checked = check(item.type, {}, item.inputs);
  if (checked.failures.length) {
    throw new Error(`${item.type} check failed: ${JSON.stringify(checked.failures)}`);
  }
  return item.type === "Container"
    ? jobOf(HOST_RESOURCE_DEFINITIONS.Container, checked.inputs, op)
    : item.type === "NatRule"
      ? jobOf(HOST_RESOURCE_DEFINITIONS.NatRule, checked.inputs, op)
      : jobOf(HOST_RESOURCE_DEFINITIONS.NmUnmanaged, checked.inputs, op);
}

/**
 * Host scripts of one operation, exactly as the provider builds them from the resource's definition (pure;
 * pools have none). Operations that share one script on a host (netns creates and deletes) are a batch of
 * one, as when nothing else shares the round trip.
 */
export function scriptsFor(item: ScriptItem, op: HostOperation): string | undefined {
  const job = jobFor(item, op);
  // A fresh mark per script, as the provider does: a batch names its scratch directory after it.
  return job && scriptOf(job, batchMark());
}

/**
 * The one script the provider sends for `items` when they all reach one host at the same time: items of one
 * group (netns creates, deletes) share the group's script (one lock, one scan); other jobs are wrapped into
 * one batch script, each in a shell of its own (as provider/runtime/scriptBatch does).
 */
export function batchScriptFor(items: readonly ScriptItem[], op: HostOperation): string {
  const jobs = items.map((i) => jobFor(i, op)).filter((j): j is HostJob => j !== undefined);
  if (jobs.length === 0) throw new Error("batchScriptFor: no host work in these items");
  const mark = batchMark();
  const first = jobs[0];
  if ("group" in first) {
    const group = first.group;
    const members = jobs.map((j) => {
      if (!("group" in j) || j.group !== group) throw new Error(`batchScriptFor: ${op} jobs of mixed kinds`);
      return j.item;
    });
    return group.build(members, mark);
  }
  return buildBatchScript(
    jobs.map((j) => scriptOf(j, mark)),
    mark,
  );
}

/** Allocations as the pool's `check` computes them (pure): member name → the container's addresses. */
export function poolAllocations(pool: {
  readonly members: readonly string[];
  readonly blockPrefixLength: number;
}): Readonly<Record<string, PoolAllocation>> {
  const result = check("AddressPool", {}, { ...pool });
  if (result.failures.length) throw new Error(`pool check failed: ${JSON.stringify(result.failures)}`);
  const allocations = result.inputs.allocations;
  if (typeof allocations !== "object" || allocations === null) {
    throw new Error(`pool check returned no allocations: ${JSON.stringify(allocations)}`);
  }
  return allocations as Record<string, PoolAllocation>;
}

/** The runtime's `check` of one resource's raw inputs, as the provider host calls it; throws on failures. */
export function checkInputs(type: BenchResourceType, inputs: Readonly<Record<string, unknown>>): void {
  const checked = check(type, {}, { ...inputs });
  if (checked.failures.length) throw new Error(`${type} check failed: ${JSON.stringify(checked.failures)}`);
}
