// `NetworkdUnmanaged`: a systemd-networkd `.network` file that keeps networkd's hands off container veths.
import * as pulumi from "@pulumi/pulumi";
import { ConnectionInput, TimeoutsArgs } from "./connectionArgs";
import { HostResource } from "./shim";

export interface NetworkdUnmanagedArgs {
  /** How to reach the host over SSH (the shape of @pulumi/command's remote.ConnectionArgs). */
  readonly connection: ConnectionInput;
  /** How long each operation may take on the host (seconds). @default see TimeoutsArgs */
  readonly timeouts?: pulumi.Input<TimeoutsArgs>;
  /** Names the `.network` file; a-z, 0-9, "-", at most 41 characters. @default the resource name */
  readonly name?: pulumi.Input<string>;
  /**
   * Interface names or shell globs networkd must leave alone, one per entry (they become the file's
   * `[Match] Name=` list, systemd.network(5)); each starts with a literal character, so no entry can match the
   * host's own interfaces by accident. @default ["ve-*", "vb-*"] (the host ends of container veths, bridged or not)
   */
  readonly interfaces?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * Accepted like on every host resource. The file lives in /etc/systemd/network, which survives a reboot by
   * itself, so it changes nothing here. @default false
   */
  readonly persist?: pulumi.Input<boolean>;
}

export class NetworkdUnmanaged extends HostResource {
  /** `/etc/systemd/network/10-pulumi-nixos-containers-<name>.network`; known at preview. */
  declare readonly path: pulumi.Output<string>;
  /** The file's exact text; known at preview. */
  declare readonly content: pulumi.Output<string>;
  /** Whether systemd-networkd was running (it owned `org.freedesktop.network1`) at the last create, update or refresh. */
  declare readonly networkdRunning: pulumi.Output<boolean>;
  /** Whether the last create or update reloaded networkd (`networkctl reload`). */
  declare readonly reloaded: pulumi.Output<boolean>;
  /** Present links matching `interfaces` that networkd reports as unmanaged (`networkctl list`, SETUP column). */
  declare readonly unmanagedLinks: pulumi.Output<string[]>;
  /** Whether the file was there as rendered, with no matching link managed, at the last create, update or refresh. */
  declare readonly present: pulumi.Output<boolean>;

  constructor(name: string, args: NetworkdUnmanagedArgs, opts?: pulumi.CustomResourceOptions) {
    const outputs = ["path", "content", "networkdRunning", "reloaded", "unmanagedLinks", "present"];
    super("NetworkdUnmanaged", name, { ...args, name: args.name ?? name }, outputs, opts);
  }
}
