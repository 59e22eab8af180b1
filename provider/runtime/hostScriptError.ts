// The error users read when a host script did not succeed, built from its typed outcome: a refusal (who holds
// what; nothing changed), a missing tool (which package to install), a lock held too long, or a failure with
// what was rolled back. The outcome stays on the error, so a failure policy can decide from it.
import { ScriptOutcome } from "../host/protocol";
import { SshError, tail } from "../ssh";

/** Debian package (and NixOS hint) for each tool a script may need. */
const TOOL_HINTS: Record<string, string> = {
  ip: "install iproute2 (Debian: apt-get install iproute2; NixOS has it)",
  flock: "install util-linux (Debian: apt-get install util-linux; NixOS has it)",
  nft: 'install nftables (Debian: apt-get install nftables; NixOS: networking.nftables.enable), or use backend "iptables"',
  iptables: 'install iptables (Debian: apt-get install iptables), or use backend "nftables"',
  "iptables-restore": 'install iptables (Debian: apt-get install iptables), or use backend "nftables"',
  "iptables-save": 'install iptables (Debian: apt-get install iptables), or use backend "nftables"',
  "nixos-container":
    'on NixOS 25.11 and later nixos-container is installed only with `boot.enableContainers = true;` in the host\'s configuration (nixpkgs #427001): set it and run nixos-rebuild switch; on a host that is not NixOS use driver "netns"',
};

/** A host script that refused, lacked a tool, waited too long for the lock, or failed. */
export class HostScriptError extends Error {
  override readonly name = "HostScriptError";
  constructor(
    message: string,
    readonly outcome: Exclude<ScriptOutcome, { kind: "done" }>,
  ) {
    super(message);
  }

  /** Whether the host is as it was before the script (it stopped before changing anything, or rolled back). */
  get nothingChanged(): boolean {
    return this.outcome.kind !== "failed" || this.outcome.rolledBack;
  }
}

/** What a failed operation was, as users name it. */
export interface FailedOperation {
  /** `container "web"`, `NatRule "nat"`. */
  readonly subject: string;
  /** `user@host:port`. */
  readonly target: string;
  /** "created", "updated", "read", "deleted". */
  readonly action: string;
  /** The script as `ssh` shows it: `create container web`. */
  readonly display: string;
  /** Advice appended to a refusal. */
  readonly fix?: string;
}

export function hostScriptError(
  outcome: Exclude<ScriptOutcome, { kind: "done" }>,
  operation: FailedOperation,
): HostScriptError {
  const { subject, target, action } = operation;
  switch (outcome.kind) {
    case "refused":
      return new HostScriptError(
        `${subject} cannot be ${action} on ${target}: ${outcome.reasons.join("; ")}. Nothing was changed on the host.${operation.fix ? ` ${operation.fix}` : ""}`,
        outcome,
      );
    case "missing-tool": {
      const how = TOOL_HINTS[outcome.tool] ?? `install the package that provides "${outcome.tool}"`;
      return new HostScriptError(
        `${subject} cannot be ${action} on ${target}: the host lacks the "${outcome.tool}" command: ${how}`,
        outcome,
      );
    }
    case "lock-timeout":
      return new HostScriptError(
        `${subject} could not be ${action} on ${target}: ${outcome.message} (another operation holds the host's lock). Nothing was changed on the host.`,
        outcome,
      );
    case "failed": {
      const rolled = outcome.rolledBack ? " What this run had made was removed again." : "";
      const ssh = new SshError("command-failed", "the command failed", {
        target,
        command: operation.display,
        exitCode: outcome.exitCode,
        // Our own protocol lines (PNC-…) are for the runtime, not for the reader.
        stderrTail: tail(
          outcome.stderr
            .split("\n")
            .filter((line) => !line.startsWith("PNC-"))
            .join("\n"),
        ),
      });
      return new HostScriptError(`${subject} could not be ${action}.${rolled}\n  ${ssh.message}`, outcome);
    }
  }
}
