// How the examples authenticate: an ssh-agent socket when `agentSocketPath` is set, else the private key from
// the stack's secret config (`pulumi config set --secret privateKey < ~/.ssh/id_ed25519`).
import * as pulumi from "@pulumi/pulumi";

export interface SshAuth {
  readonly agentSocketPath?: string;
  readonly privateKey?: pulumi.Input<string>;
}

/** Reads the SSH credentials from stack config; the key only ever as a secret. */
export function sshAuthFromConfig(config: pulumi.Config): SshAuth {
  const agentSocketPath = config.get("agentSocketPath");
  if (agentSocketPath) return { agentSocketPath };
  return { privateKey: config.requireSecret("privateKey") };
}
