// The `connection` input every resource takes: the shape of @pulumi/command's `remote.ConnectionArgs`, declared
// here so the package needs no copy of @pulumi/command (and its SDK) to install or type-check. A test keeps
// the two assignable both ways (test/unit/connectionArgs.test.ts).
import * as pulumi from "@pulumi/pulumi";

/** A jump host: the shape of @pulumi/command's `remote.ProxyConnectionArgs`. */
export interface ProxyConnectionArgs {
  /** Address or DNS name of the jump host. */
  readonly host: pulumi.Input<string>;
  /** @default 22 */
  readonly port?: pulumi.Input<number>;
  /** @default "root" */
  readonly user?: pulumi.Input<string>;
  /** @default none */
  readonly password?: pulumi.Input<string>;
  /** The private key's text (read it from a secret, e.g. `config.requireSecret("privateKey")`). @default none */
  readonly privateKey?: pulumi.Input<string>;
  /** @default none */
  readonly privateKeyPassword?: pulumi.Input<string>;
  /** The ssh-agent socket to authenticate with. @default the value of SSH_AUTH_SOCK */
  readonly agentSocketPath?: pulumi.Input<string>;
  /** The jump host's key (a public key line or a `SHA256:` fingerprint): any other key is refused. @default not checked */
  readonly hostKey?: pulumi.Input<string>;
  /** How many times to dial before giving up. @default 10 */
  readonly dialErrorLimit?: pulumi.Input<number>;
  /** Seconds each dial may take, handshake included. @default 15 */
  readonly perDialTimeout?: pulumi.Input<number>;
  /** The jump host this one is reached through: jump hosts chain, each verified. @default none */
  readonly proxy?: pulumi.Input<ProxyConnectionArgs>;
}

/** How to reach a host over SSH: the shape of @pulumi/command's `remote.ConnectionArgs`. */
export interface ConnectionArgs extends ProxyConnectionArgs {
  /** The host's key (a public key line or a `SHA256:` fingerprint): any other key is refused. @default the key seen at create is recorded and enforced */
  readonly hostKey?: pulumi.Input<string>;
  /**
   * Run every host script as root through `sudo`, for an SSH user that is not root: `sudo -n` (passwordless
   * rights, NOPASSWD) or, with `sudoPassword`, `sudo -S` given the password on stdin when it asks (never on a
   * command line). @default false: the SSH user must be root
   */
  readonly sudo?: pulumi.Input<boolean>;
  /** sudo's password for `user` (a secret). @default none: passwordless sudo */
  readonly sudoPassword?: pulumi.Input<string>;
}

/**
 * How long one operation of a host resource may take on the host, in seconds: the SSH command and the waits
 * for the host lock inside it. Pulumi's `customTimeouts` never reach dynamic providers; this does.
 */
export interface TimeoutsArgs {
  /** @default 300; 1800 for a nixos-driver Container (it builds a NixOS system) */
  readonly create?: number;
  /** @default 300; 1800 for a nixos-driver Container */
  readonly update?: number;
  /** @default 300 */
  readonly delete?: number;
}

/** The `connection` input. */
export type ConnectionInput = pulumi.Input<ConnectionArgs>;
