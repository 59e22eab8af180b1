// The provider runtime: the one module every resource's provider shim `require()`s at call time, so all types
// in a provider process share the SSH pool, and the code in state stays a few lines long.
import { ResourceType } from "../core/types";
import { addressPoolHandler } from "./addressPoolDefinition";
import { Handler, PartialCreateError, Props, ReadResult } from "./common";
import { containerDefinition } from "./containerDefinition";
import { hostIdentityHandler } from "./hostIdentityDefinition";
import { hostResourceHandler } from "./lifecycle";
import { natRuleDefinition } from "./natRuleDefinition";
import { networkdUnmanagedDefinition } from "./networkdUnmanagedDefinition";
import { nmUnmanagedDefinition } from "./nmUnmanagedDefinition";
import { vethPairDefinition } from "./vethPairDefinition";

export { ResourceType } from "../core/types";

/** Every host resource's definition (the benchmark builds its host scripts from these too). */
export const HOST_RESOURCE_DEFINITIONS = {
  Container: containerDefinition,
  VethPair: vethPairDefinition,
  NatRule: natRuleDefinition,
  NmUnmanaged: nmUnmanagedDefinition,
  NetworkdUnmanaged: networkdUnmanagedDefinition,
} as const;

const handlers: Record<ResourceType, Handler> = {
  AddressPool: addressPoolHandler,
  HostIdentity: hostIdentityHandler,
  Container: hostResourceHandler(containerDefinition),
  VethPair: hostResourceHandler(vethPairDefinition),
  NatRule: hostResourceHandler(natRuleDefinition),
  NmUnmanaged: hostResourceHandler(nmUnmanagedDefinition),
  NetworkdUnmanaged: hostResourceHandler(networkdUnmanagedDefinition),
};

function handler(type: string): Handler {
  const h = handlers[type as ResourceType];
  if (!h)
    throw new Error(
      `pulumi-nixos-containers: unknown resource type "${type}" (is the installed package older than the program?)`,
    );
  return h;
}

/** The engine cannot carry `undefined` in a Struct: drop such keys, deeply. */
function clean(props: Props): Props {
  const out: Props = {};
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined) continue;
    out[k] = v !== null && typeof v === "object" && !Array.isArray(v) ? clean(v as Props) : v;
  }
  return out;
}

export function check(type: string, olds: Props, news: Props) {
  const result = handler(type).check(olds ?? {}, news ?? {});
  return { inputs: clean(result.inputs), failures: result.failures };
}

export function diff(type: string, id: string, olds: Props, news: Props) {
  return handler(type).diff(id, olds ?? {}, news ?? {});
}

export async function create(type: string, inputs: Props) {
  try {
    const { id, outs } = await handler(type).create(inputs);
    return { id, outs: clean(outs) };
  } catch (err) {
    // The engine records these properties (init error); a Struct cannot carry `undefined`.
    if (err instanceof PartialCreateError)
      throw new PartialCreateError(err.message, err.id, clean(err.properties), err.reasons);
    throw err;
  }
}

export async function read(type: string, id: string, props: Props): Promise<ReadResult> {
  const h = handler(type);
  const result = await h.read(id, props);
  if (result.id === undefined) return {};
  return { id: result.id, props: clean(result.props ?? {}), inputs: clean(h.inputsOf(props)) };
}

export async function update(type: string, id: string, olds: Props, news: Props) {
  const { outs } = await handler(type).update(id, olds, news);
  return { outs: clean(outs) };
}

async function deleteResource(type: string, id: string, props: Props): Promise<void> {
  await handler(type).delete(id, props);
}

// `remove` is what the shims of release 0.1.0 call; their text is stored in state and runs every later delete.
export { deleteResource as delete, deleteResource as remove };
