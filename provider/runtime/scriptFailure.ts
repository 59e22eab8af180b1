// One translation of a failed host script into the error users read: a clash (who holds what, nothing
// changed), a missing tool (which package to install), or the command failure with what was rolled back.
import { clashesIn, missingToolIn } from "../host/script";
import { SshError } from "../ssh";

/** Debian package (and NixOS hint) for each tool a script may need. */
const TOOL_HINTS: Record<string, string> = {
  ip: "install iproute2 (Debian: apt-get install iproute2; NixOS has it)",
  flock: "install util-linux (Debian: apt-get install util-linux; NixOS has it)",
  nft: 'install nftables (Debian: apt-get install nftables; NixOS: networking.nftables.enable), or use backend "iptables"',
  iptables: 'install iptables (Debian: apt-get install iptables), or use backend "nftables"',
  "iptables-restore": 'install iptables (Debian: apt-get install iptables), or use backend "nftables"',
  "iptables-save": 'install iptables (Debian: apt-get install iptables), or use backend "nftables"',
  "nixos-container":
    'nixos-container is not installed there: the "nixos" driver needs a NixOS host; use driver "netns" on other Linux hosts',
};

/** A script that refused before touching anything (a clash): the host is as it was. */
export class NothingChangedError extends Error {
  override readonly name = "NothingChangedError";
}

/**
 * @param subject what failed, as users name it: `container "web"`, `NatRule "nat"`.
 * @param action "created", "updated", "deleted".
 * @param fix advice appended to a clash message.
 */
export function explainScriptFailure(
  err: unknown,
  subject: string,
  target: string,
  action: string,
  fix = "",
): Error {
  if (!(err instanceof SshError) || err.kind !== "command-failed") {
    return err instanceof Error ? err : new Error(String(err));
  }
  const stderr = err.details.stderr ?? "";
  const clashes = clashesIn(stderr);
  if (clashes.length > 0) {
    return new NothingChangedError(
      `${subject} cannot be ${action} on ${target}: ${clashes.join("; ")}. Nothing was changed on the host.${fix ? ` ${fix}` : ""}`,
    );
  }
  const missing = missingToolIn(stderr);
  if (missing) {
    const how = TOOL_HINTS[missing] ?? `install the package that provides "${missing}"`;
    return new Error(
      `${subject} cannot be ${action} on ${target}: the host lacks the "${missing}" command: ${how}`,
    );
  }
  const rolled = stderr.includes("PNC-ROLLEDBACK") ? " What this run had made was removed again." : "";
  err.message = `${subject} could not be ${action}.${rolled}\n  ${err.message}`;
  return err;
}
