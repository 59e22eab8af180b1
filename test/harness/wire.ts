// Engine wire conventions for the provider-host harness: typed property values, unknowns, secrets, and the
// conversions to and from protobuf Structs (the one place where untyped JSON is parsed into typed values).
import * as structproto from "google-protobuf/google/protobuf/struct_pb";

/** A property value as it travels in a protobuf Struct (after JSON parsing; never `undefined`). */
export type Value = null | boolean | number | string | Value[] | { [key: string]: Value };
/** A resource's property bag (inputs, outputs, state). */
export type PropertyMap = { [key: string]: Value };

/** Key under which the engine and the host carry the serialized dynamic provider. */
export const PROVIDER_KEY = "__provider";
/** What the engine sends for a value not known yet (preview: an input that is another resource's output). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
/** @pulumi/pulumi runtime/rpc `specialSigKey`: marks an object as a special value. */
export const SIG_KEY = "4dabf18193072939515e22adb298388d";
/** @pulumi/pulumi runtime/rpc `specialSecretSig`: the signature of a secret. */
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** A secret on the wire: `{ [SIG_KEY]: SECRET_SIG, value }`. */
export interface SecretValue {
  [SIG_KEY]: typeof SECRET_SIG;
  value: Value;
  [key: string]: Value;
}

/** Wrap a value as a secret, the way the engine marshals it when the receiver accepts secrets. */
export function secret(value: Value): SecretValue {
  return { [SIG_KEY]: SECRET_SIG, value };
}

export function isObject(v: Value | undefined): v is { [key: string]: Value } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function isSecret(v: Value | undefined): v is SecretValue {
  return isObject(v) && v[SIG_KEY] === SECRET_SIG;
}

/** True when `v` is or contains a secret anywhere. */
export function containsSecrets(v: Value): boolean {
  if (isSecret(v)) return true;
  if (Array.isArray(v)) return v.some(containsSecrets);
  if (isObject(v)) return Object.values(v).some(containsSecrets);
  return false;
}

/** Deeply replace secrets by their plaintext (what the engine does for a provider with acceptSecrets=false). */
export function revealSecrets(v: Value): Value {
  if (isSecret(v)) return revealSecrets(v.value);
  if (Array.isArray(v)) return v.map(revealSecrets);
  if (isObject(v)) return revealMap(v);
  return v;
}

export function revealMap(m: PropertyMap): PropertyMap {
  const out: PropertyMap = {};
  for (const [k, v] of Object.entries(m)) out[k] = revealSecrets(v);
  return out;
}

/**
 * The engine's `annotateSecrets(outs, ins)` (pkg/resource/plugin/provider_plugin.go) applied to results of a
 * provider that does not accept secrets: for each key present in both, recurse when both are objects,
 * otherwise mark the output secret when the input of the SAME key contained a secret. Secrets that the
 * provider copies into other keys or into strings are NOT marked: that is the leak tests should look for.
 */
export function annotateSecrets(outs: PropertyMap, ins: PropertyMap): PropertyMap {
  const result: PropertyMap = { ...outs };
  for (const [key, inValue] of Object.entries(ins)) {
    if (!(key in result)) continue;
    const outValue = result[key];
    if (isObject(outValue) && !isSecret(outValue) && isObject(inValue) && !isSecret(inValue)) {
      result[key] = annotateSecrets(outValue, inValue);
    } else if (!isSecret(outValue) && containsSecrets(inValue)) {
      result[key] = secret(outValue);
    }
  }
  return result;
}

/**
 * Turn caller-supplied JS into a wire value the way the engine would marshal a PropertyMap: `undefined`
 * properties are omitted (the engine never sends them); functions, symbols, bigints, NaN/Infinity are errors.
 */
export function toValue(v: unknown, path = "$"): Value | undefined {
  if (v === undefined) return undefined;
  if (v === null || typeof v === "boolean" || typeof v === "string") return v;
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new TypeError(`${path}: non-finite number ${v} cannot travel in a Struct`);
    return v;
  }
  if (Array.isArray(v)) {
    // An undefined array element becomes null, as JSON does.
    return v.map((e, i) => toValue(e, `${path}[${i}]`) ?? null);
  }
  if (typeof v === "object") {
    return toMap(v as Record<string, unknown>, path);
  }
  throw new TypeError(`${path}: a ${typeof v} cannot travel in a Struct`);
}

export function toMap(obj: Record<string, unknown>, path = "$"): PropertyMap {
  const out: PropertyMap = {};
  for (const [k, v] of Object.entries(obj)) {
    const value = toValue(v, `${path}.${k}`);
    if (value !== undefined) out[k] = value;
  }
  return out;
}

export function toStruct(m: PropertyMap): structproto.Struct {
  return structproto.Struct.fromJavaScript(m);
}

/** Parse a Struct coming back from the host into typed values (the gRPC/JSON boundary). */
export function fromStruct(s: structproto.Struct | undefined): PropertyMap {
  if (s === undefined) return {};
  const raw: unknown = s.toJavaScript();
  const parsed = toValue(raw);
  if (!isObject(parsed ?? null)) throw new TypeError("Struct did not decode to an object");
  return parsed as PropertyMap;
}
