// Pulumi entry of the single-host example: stack config → singleHost(); the network plan is the stack output.
import * as pulumi from "@pulumi/pulumi";
import { sshAuthFromConfig } from "../shared/sshAuth";
import { singleHost } from "./program";

const config = new pulumi.Config();
const backend = config.get("backend");
const driver = config.get("driver");

const { plan } = singleHost({
  host: config.require("host"),
  port: config.getNumber("port"),
  user: config.get("user"),
  hostKey: config.get("hostKey") || undefined,
  externalInterface: config.require("externalInterface"),
  backend: backend === "iptables" ? "iptables" : "nftables",
  driver: driver === "netns" ? "netns" : "nixos",
  cidr: config.get("cidr"),
  ...sshAuthFromConfig(config),
});

export const networkPlan = plan;
