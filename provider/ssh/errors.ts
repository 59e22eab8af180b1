// Typed SSH errors: each says which host:port and user, what was run, and which of the distinct failure kinds
// happened, so callers (and users reading `pulumi up` output) can tell an unreachable host from a failed command.

export type SshErrorKind =
  "unreachable" | "authentication" | "host-key-mismatch" | "timeout" | "disconnected" | "command-failed";

export interface SshErrorDetails {
  /** `user@host:port` (never a password or key). */
  readonly target: string;
  /** The command as run (argv quoted), when the failure is about a command. */
  readonly command?: string;
  readonly exitCode?: number | null;
  readonly signal?: string | null;
  /** The last lines of the command's stderr. */
  readonly stderrTail?: string;
  readonly stdout?: string;
  readonly stderr?: string;
  /** What to do, when it is more specific than the kind's hint. */
  readonly hint?: string;
}

const HINTS: Record<SshErrorKind, string> = {
  unreachable: "check the host address and port, that sshd runs there, and any firewall in between",
  authentication: "check user, privateKey / privateKeyPassword, password or the ssh-agent at agentSocketPath",
  "host-key-mismatch":
    "if the host was reinstalled on purpose, set connection.hostKey to its new key (or replace the resource); otherwise treat this as a possible man-in-the-middle",
  timeout: "the host did not answer in time; check the network or raise perDialTimeout",
  disconnected:
    "the connection dropped while the command ran; it was not re-run, because it may have taken effect",
  "command-failed": "see the command's stderr above",
};

export class SshError extends Error {
  readonly kind: SshErrorKind;
  readonly details: SshErrorDetails;

  constructor(kind: SshErrorKind, message: string, details: SshErrorDetails) {
    const parts = [`ssh ${details.target}: ${message}`];
    if (details.command !== undefined) parts.push(`command: ${truncate(details.command, 300)}`);
    if (details.exitCode !== undefined && details.exitCode !== null)
      parts.push(`exit code: ${details.exitCode}`);
    if (details.signal) parts.push(`signal: ${details.signal}`);
    if (details.stderrTail) parts.push(`stderr: ${details.stderrTail}`);
    parts.push(`hint: ${details.hint ?? HINTS[kind]}`);
    super(parts.join("\n  "));
    this.name = "SshError";
    this.kind = kind;
    this.details = details;
  }
}

/** The last `lines` lines (at most 2,000 characters) of a command's stderr, for error messages. */
export function tail(text: string, lines = 8): string {
  const kept = text.trimEnd().split("\n").slice(-lines).join("\n");
  return kept.length > 2000 ? "…" + kept.slice(-2000) : kept;
}

function truncate(text: string, max: number): string {
  return text.length > max ? text.slice(0, max) + "…" : text;
}
