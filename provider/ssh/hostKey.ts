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
