// Host key fingerprints in OpenSSH's format (`SHA256:` + unpadded base64), so what we record in state is what
// `ssh-keygen -lf` prints and users can compare them by eye.
import { createHash } from "node:crypto";
import { HostKeySpec } from "./connection";

export function fingerprintOf(blob: Buffer): string {
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/** Whether a presented key blob satisfies a `hostKey` spec (a full key or a fingerprint). */
export function matchesHostKey(spec: HostKeySpec, blob: Buffer): boolean {
  return spec.kind === "key" ? spec.blob.equals(blob) : spec.fingerprint === fingerprintOf(blob);
}

export function describeHostKeySpec(spec: HostKeySpec): string {
  return spec.kind === "key" ? fingerprintOf(spec.blob) : spec.fingerprint;
}

/** The key type a blob starts with (its length-prefixed name: `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`). */
export function keyTypeOf(blob: Buffer): string {
  return blob.subarray(4, 4 + blob.readUInt32BE(0)).toString("latin1");
}

/**
 * The host key algorithms to offer for a pinned key: only that key's, so a host that also has an ed25519 key
 * (which clients prefer) presents the one pinned. An RSA key signs with SHA-2 (RFC 8332) or, on old servers,
 * SHA-1. A pinned fingerprint names no type: every algorithm is offered.
 */
export function hostKeyAlgorithmsFor(spec: HostKeySpec | undefined): string[] | undefined {
  if (spec?.kind !== "key") return undefined;
  const type = keyTypeOf(spec.blob);
  return type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type];
}
