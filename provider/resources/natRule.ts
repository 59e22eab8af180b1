// `NatRule`: the host masquerades (or SNATs) container traffic out of its external interface and forwards
// chosen ports to containers, in an nftables table or iptables chains of its own.
import * as pulumi from "@pulumi/pulumi";
import { ConnectionInput, TimeoutsArgs } from "./connectionArgs";
import { NatBackend } from "../core/types";
import { HostResource } from "./shim";

/** A host port (or range) forwarded to a container, as in NixOS `networking.nat.forwardPorts`. */
export interface ForwardPortArgs {
  /** Host port, or a range "8000:8010" / "8000-8010". */
  readonly sourcePort: pulumi.Input<number | string>;
  /**
   * "10.233.1.2", "10.233.1.2:80" or "10.233.1.2:8000-8010"; IPv6 in brackets, "[fd00::2]", "[fd00::2]:80" or
   * "[fd00::2]:8000-8010" (with `ipv6: "nat66"` only; the same sourcePort may forward IPv4 and IPv6).
   */
  readonly destination: pulumi.Input<string>;
  /** "tcp" or "udp". @default "tcp" */
  readonly proto?: pulumi.Input<"tcp" | "udp">;
}

export interface NatRuleArgs {
  /** How to reach the host over SSH (the shape of @pulumi/command's remote.ConnectionArgs). */
  readonly connection: ConnectionInput;
  /** How long each operation may take on the host (seconds). @default see TimeoutsArgs */
  readonly timeouts?: pulumi.Input<TimeoutsArgs>;
  /** Names our table (`pnc-nat-<name>`) or chains; 1-15 characters a-z, 0-9, "-". @default the resource name */
  readonly name?: pulumi.Input<string>;
  /** Interfaces whose traffic is translated; "ve-+" and "ve-*" both mean every ve-… interface. @default ["ve-+"] */
  readonly internalInterfaces?: pulumi.Input<pulumi.Input<string>[]>;
  /** Source addresses or CIDRs whose traffic is translated. @default none */
  readonly internalIPs?: pulumi.Input<pulumi.Input<string>[]>;
  /** The host's interface to the outside world, e.g. "eth0". */
  readonly externalInterface: pulumi.Input<string>;
  /** SNAT to this address instead of masquerading. @default masquerade (the interface's current address) */
  readonly externalIP?: pulumi.Input<string>;
  /** "nftables" (a table of our own) or "iptables" (chains of our own in table nat). @default "nftables" */
  readonly backend?: pulumi.Input<NatBackend>;
  /** Ports forwarded from the external interface to containers. @default none */
  readonly forwardPorts?: pulumi.Input<pulumi.Input<ForwardPortArgs>[]>;
  /**
   * Let the traffic pass a host whose forwarding drops by default: a chain of ours in iptables' table filter,
   * jumped to from the top of DOCKER-USER (when Docker made it) or FORWARD, accepts the internal side out of
   * the external interface, the replies, and the port forwards. Where another nftables table drops forwarded
   * traffic (NixOS `networking.firewall.filterForward`), no rule of ours can override it: create and update
   * then fail naming the NixOS option to set. @default false
   */
  readonly allowForward?: pulumi.Input<boolean>;
  /**
   * Addresses on which the port forwards also answer for the host itself and its containers (NixOS
   * `forwardPorts.*.loopbackIPs`, "NAT reflection"), e.g. the host's public address; connections from
   * containers or internal ranges are masqueraded (hairpin). An address in 127.0.0.0/8 makes the forwards
   * answer on the host's loopback too (route_localnet is set on the devices the destinations are reached by,
   * and put back on delete). @default none
   */
  readonly loopbackIPs?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * IPv6: "nat66" masquerades (or SNATs to externalIPv6) container traffic from the internal interfaces and
   * internalIPv6s, in a table `ip6 pnc-nat-<name>` (or ip6tables chains) of our own, and takes IPv6 port
   * forwards; "routed" only forwards (the containers' own addresses, routed to the host, reach the outside).
   * Both turn net.ipv6.conf.all.forwarding on (put back when our last NatRule with IPv6 goes); where the
   * external interface learns its own IPv6 from router advertisements (accept_ra=1) it gets accept_ra=2, put back
   * too. @default IPv4 only
   */
  readonly ipv6?: pulumi.Input<"nat66" | "routed">;
  /**
   * IPv6 source addresses or ranges of the containers (NixOS `networking.nat.internalIPv6s`): masqueraded in
   * "nat66" (unique local ranges, inside fc00::/7, only), accepted on the forward path (allowForward) in both
   * modes. @default none (the internal interfaces alone)
   */
  readonly internalIPv6s?: pulumi.Input<pulumi.Input<string>[]>;
  /** "nat66": SNAT to this IPv6 address instead of masquerading (NixOS `externalIPv6`). @default masquerade */
  readonly externalIPv6?: pulumi.Input<string>;
  /**
   * Also write a systemd unit of ours that restores the rules and forwarding at boot and after a firewall
   * start, restart or reload (nftables.service, firewall.service, firewalld, netfilter-persistent). @default false
   */
  readonly persist?: pulumi.Input<boolean>;
}

export class NatRule extends HostResource {
  /** The exact rules installed (nft text, or iptables-restore input plus jumps); known at preview. */
  declare readonly ruleset: pulumi.Output<string>;
  declare readonly backend: pulumi.Output<NatBackend>;
  /** "applied", or after a refresh "altered"/"missing" when someone flushed or changed our rules. */
  declare readonly live: pulumi.Output<"applied" | "altered" | "missing">;
  /** Whether IPv4 forwarding was on at the last create, update or refresh. */
  declare readonly forwarding: pulumi.Output<boolean>;
  /** With `ipv6`: whether IPv6 forwarding (net.ipv6.conf.all.forwarding) was on; undefined without IPv6. */
  declare readonly forwarding6: pulumi.Output<boolean | undefined>;
  /**
   * The forward hooks that drop this rule's traffic, e.g. "table ip filter chain FORWARD (policy drop)"
   * (Docker) or "table inet nixos-fw chain forward (policy drop)": empty when none does. With allowForward a
   * non-empty list after a refresh makes the next `up` repair it.
   */
  declare readonly forwardBlockedBy: pulumi.Output<string[]>;

  constructor(name: string, args: NatRuleArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      "NatRule",
      name,
      { ...args, name: args.name ?? name },
      ["ruleset", "live", "forwarding", "forwarding6", "forwardBlockedBy"],
      opts,
    );
  }
}
