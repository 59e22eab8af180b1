// Pulumi entry of the lab example (the root Pulumi.yaml's `main`): stack config → labProgram().
import * as pulumi from "@pulumi/pulumi";
import { labProgram } from "./program";

const config = new pulumi.Config();
const backend = config.get("backend");

const { plan } = labProgram({
  labDir: config.get("labDir"),
  prefix: config.get("prefix"),
  cidr: config.get("cidr"),
  hosts: config.getObject<string[]>("hosts"),
  containersPerHost: config.getNumber("containersPerHost"),
  backend: backend === "iptables" ? "iptables" : "nftables",
  nixosDriver: config.getBoolean("nixosDriver"),
  // Another key than the lab's own, if you set one: pulumi config set --secret privateKey < key
  privateKey: config.getSecret("privateKey"),
});

export const networkPlan = plan;
