// `NmUnmanaged`: a NetworkManager drop-in that keeps NetworkManager's hands off container veths.
import * as pulumi from "@pulumi/pulumi";
import { ConnectionInput, TimeoutsArgs } from "./connectionArgs";
import { HostResource } from "./shim";

export interface NmUnmanagedArgs {
  /** How to reach the host over SSH (the shape of @pulumi/command's remote.ConnectionArgs). */
  readonly connection: ConnectionInput;
  /** How long each operation may take on the host (seconds). @default see TimeoutsArgs */
  readonly timeouts?: pulumi.Input<TimeoutsArgs>;
  /**
   * Accepted like on every host resource; the drop-in is a file in /etc that NetworkManager reads when it
   * starts, so it survives a reboot with or without it. @default false
   */
  readonly persist?: pulumi.Input<boolean>;
  /** Names the drop-in file; a-z, 0-9, "-". @default the resource name */
  readonly name?: pulumi.Input<string>;
  /** NetworkManager device specs (NetworkManager.conf(5)). @default ["interface-name:ve-*"] */
  readonly devices?: pulumi.Input<pulumi.Input<string>[]>;
}

export class NmUnmanaged extends HostResource {
  /** `/etc/NetworkManager/conf.d/pulumi-nixos-containers-<name>.conf`; known at preview. */
  declare readonly path: pulumi.Output<string>;
  /** The drop-in's exact text; known at preview. */
  declare readonly content: pulumi.Output<string>;
  /** Whether NetworkManager was running (and so was reloaded) at the last create, update or refresh. */
  declare readonly networkManagerRunning: pulumi.Output<boolean>;
  declare readonly reloaded: pulumi.Output<boolean>;
  /** Present devices matching `interface-name:` specs that NetworkManager reports as unmanaged. */
  declare readonly unmanagedDevices: pulumi.Output<string[]>;
  /** Whether the drop-in was there as rendered, with no matching device managed, at the last create, update or refresh. */
  declare readonly present: pulumi.Output<boolean>;

  constructor(name: string, args: NmUnmanagedArgs, opts?: pulumi.CustomResourceOptions) {
    const outputs = ["path", "content", "networkManagerRunning", "reloaded", "unmanagedDevices", "present"];
    super("NmUnmanaged", name, { ...args, name: args.name ?? name }, outputs, opts);
  }
}
