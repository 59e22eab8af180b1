// Pulumi entry of the fleet example: `defaults` and `hosts` from stack config; the plan is the stack output.
import * as pulumi from "@pulumi/pulumi";
import { sshAuthFromConfig } from "../shared/sshAuth";
import { FleetDescription, fleetProgram } from "./program";

const config = new pulumi.Config();
const { plan } = fleetProgram(
  {
    defaults: config.getObject<FleetDescription["defaults"]>("defaults") ?? {},
    hosts: config.requireObject<FleetDescription["hosts"]>("hosts"),
  },
  sshAuthFromConfig(config),
);

/** Host → container → interfaces and addresses, plus each host's NAT ruleset. */
export const networkPlan = plan;
