// One program for every environment: the fleet (hosts, their containers, shared SSH and NAT settings) comes from
// the stack's config, so `dev` and `prod` differ only in Pulumi.<stack>.yaml. `fleetProgram` takes that
// description as a plain object (tests run it under mocks); index.ts reads it from stack config.
import * as pulumi from "@pulumi/pulumi";
import { Fleet, FleetDefaults, FleetHostArgs, HostPlan } from "pulumi-nixos-containers";
import { SshAuth } from "../shared/sshAuth";

/** The stack's description of its fleet (config keys `defaults` and `hosts`). */
export interface FleetDescription {
  readonly defaults?: FleetDefaults;
  readonly hosts: readonly FleetHostArgs[];
}

export function fleetProgram(
  description: FleetDescription,
  auth: SshAuth,
): { fleet: Fleet; plan: pulumi.Output<Record<string, HostPlan>> } {
  const fleet = new Fleet("fleet", {
    // Credentials are set once, for every host (a host may still override them).
    defaults: { ...description.defaults, ...auth },
    hosts: description.hosts,
  });
  return { fleet, plan: fleet.plan };
}
