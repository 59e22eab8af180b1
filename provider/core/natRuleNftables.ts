// Renders a NatSpec as the text for `nft -f` that atomically replaces our own table `ip pnc-nat-<id>`
// and nothing else, so the NixOS firewall, Docker and hand-written rules on the same host are untouched.

import { renderForwardRuleset, renderIptablesRuleset } from "./natRuleIptables";
import {
  DnatRule,
  InterfaceMatch,
  NAT_NAME_PREFIX,
  NatSpec,
  dnatRules,
  formatSpan,
  forwardDestinations,
  isIPv6,
  isLoopback,
} from "./natRuleSpec";

/** The nftables table that holds every rule of the NatRule `id` (family ip). */
export function nftTableName(id: string): string {
  return `${NAT_NAME_PREFIX}${id}`;
}

/** An interface as an nft string: a wildcard is `"ve-*"`, never iptables' `ve-+` (nixpkgs #72580). */
function nftInterface(match: InterfaceMatch): string {
  return `"${match.name}${match.wildcard ? "*" : ""}"`;
}

function nftDnat(rule: DnatRule): string {
  const port = rule.port === undefined ? "" : `:${formatSpan(rule.port, "-")}`;
  // An IPv6 address with a port goes in brackets ("dnat to [fd00::2]:80"); alone it needs none.
  const address = port !== "" && isIPv6(rule.address) ? `[${rule.address}]` : rule.address;
  return `${rule.proto} dport ${formatSpan(rule.dport, "-")} dnat to ${address}${port}`;
}

function chain(name: string, hook: string, rules: readonly string[]): string[] {
  return [
    `\tchain ${name} {`,
    `\t\ttype nat hook ${hook}; policy accept;`,
    ...rules.map((r) => `\t\t${r}`),
    "\t}",
  ];
}

/**
 * The masquerade/SNAT rules of the `post` chain. Each wildcard interface gets a rule of its own because
 * some nft versions reject wildcards inside anonymous sets; exact names share one set.
 */
function postRules(spec: NatSpec): string[] {
  return translateRules(spec, "ip", spec.internalIPs, spec.externalIP);
}

/** The masquerade/SNAT rules of one family (`ip saddr` or `ip6 saddr` for the ranges). */
function translateRules(
  spec: NatSpec,
  family: "ip" | "ip6",
  ranges: readonly string[],
  snatTo: string | undefined,
): string[] {
  const ext = `oifname "${spec.externalInterface}"`;
  const action = snatTo === undefined ? "masquerade" : `snat to ${snatTo}`;
  const wildcards = spec.internalInterfaces.filter((m) => m.wildcard);
  const exact = spec.internalInterfaces.filter((m) => !m.wildcard);
  const rules = wildcards.map((m) => `iifname ${nftInterface(m)} ${ext} ${action}`);
  if (exact.length === 1) {
    rules.push(`iifname ${nftInterface(exact[0])} ${ext} ${action}`);
  } else if (exact.length > 1) {
    rules.push(`iifname { ${exact.map(nftInterface).join(", ")} } ${ext} ${action}`);
  }
  rules.push(...ranges.map((range) => `${family} saddr ${range} ${ext} ${action}`));
  return rules;
}

/** `ip daddr ADDRESS` or `ip daddr { A, B }`. */
function daddr(addresses: readonly string[]): string {
  return addresses.length === 1 ? `ip daddr ${addresses[0]}` : `ip daddr { ${addresses.join(", ")} }`;
}

/**
 * Hairpin: a forward reached over a loopback IP from a container, an internal range or the host's loopback
 * is masqueraded, so the destination answers through the host (a container reaching its own forward would
 * otherwise answer itself directly). Only our own DNATs (`ct status dnat` to our destinations) are touched.
 */
function hairpinRules(spec: NatSpec, destinations: readonly string[]): string[] {
  if (spec.loopbackIPs.length === 0 || destinations.length === 0) return [];
  const to = `${daddr(destinations)} ct status dnat masquerade`;
  return [
    ...spec.internalInterfaces.map((m) => `iifname ${nftInterface(m)} ${to}`),
    ...spec.internalIPs.map((range) => `ip saddr ${range} ${to}`),
    ...(spec.loopbackIPs.some(isLoopback) ? [`ip saddr 127.0.0.0/8 ${to}`] : []),
  ];
}

/**
 * The complete `nft -f` input. The first two lines create the table if it is missing and then delete it,
 * so the definition that follows replaces it in the same transaction whether it existed or not.
 */
export function renderNft(spec: NatSpec): string {
  const table = `table ip ${nftTableName(spec.name)}`;
  const dnat = dnatRules(spec);
  const reflected = spec.loopbackIPs.filter((a) => !isLoopback(a));
  const pre = [
    ...dnat.map((r) => `iifname "${spec.externalInterface}" ${nftDnat(r)}`),
    // loopbackIPs: containers (and LAN hosts routed through us) reach the forwards on these addresses too.
    ...(reflected.length === 0 ? [] : dnat.map((r) => `${daddr(reflected)} ${nftDnat(r)}`)),
  ];
  // The host's own connections to its external address never pass prerouting; DNAT them on output.
  const own = [
    ...new Set([...(spec.externalIP === undefined ? [] : [spec.externalIP]), ...spec.loopbackIPs]),
  ];
  const out = own.length === 0 ? [] : dnat.map((r) => `${daddr(own)} ${nftDnat(r)}`);
  const post = [...postRules(spec), ...hairpinRules(spec, forwardDestinations(spec))];
  const lines = [
    `# Managed by pulumi-nixos-containers (NatRule ${spec.name}): this file replaces ${table} and nothing else.`,
    `${table} {}`,
    `delete ${table}`,
    `${table} {`,
    ...chain("pre", "prerouting priority dstnat", pre),
    ...chain("post", "postrouting priority srcnat", post),
    ...chain("out", "output priority -100", out),
    "}",
  ];
  return `${lines.join("\n")}\n`;
}

/** The nftables table of the NatRule's NAT66 (family ip6; the same name as the IPv4 table). */
export function nftTable6(id: string): string {
  return `table ip6 ${nftTableName(id)}`;
}

/**
 * The `nft -f` text for NAT66 (ipv6: "nat66"): our table `ip6 pnc-nat-<id>`, replaced like the IPv4 one, with
 * masquerade (or SNAT to externalIPv6) and the IPv6 port forwards; the host's own connections to
 * externalIPv6 are DNATed on output as for IPv4. Empty without NAT66, so an IPv4-only rule renders as before.
 */
export function renderNft6(spec: NatSpec): string {
  const v6 = spec.ipv6;
  if (v6?.mode !== "nat66") return "";
  const table = nftTable6(spec.name);
  const dnat = dnatRules(v6);
  const pre = dnat.map((r) => `iifname "${spec.externalInterface}" ${nftDnat(r)}`);
  const out =
    v6.externalIPv6 === undefined ? [] : dnat.map((r) => `ip6 daddr ${v6.externalIPv6} ${nftDnat(r)}`);
  const lines = [
    `# Managed by pulumi-nixos-containers (NatRule ${spec.name}): this part replaces ${table} and nothing else.`,
    `${table} {}`,
    `delete ${table}`,
    `${table} {`,
    ...chain("pre", "prerouting priority dstnat", pre),
    ...chain(
      "post",
      "postrouting priority srcnat",
      translateRules(spec, "ip6", v6.internalIPv6s, v6.externalIPv6),
    ),
    ...chain("out", "output priority -100", out),
    "}",
  ];
  return `${lines.join("\n")}\n`;
}

/** What the nftables backend loads in its one `nft -f` transaction: the IPv4 table, then the IPv6 one. */
export function renderNftAll(spec: NatSpec): string {
  return renderNft(spec) + renderNft6(spec);
}

/**
 * The `ruleset` output preview shows: exactly what is applied for the spec's backend. It lives here
 * because nftables is the default backend; both renderers stay independent of each other otherwise.
 */
export function renderRuleset(spec: NatSpec): string {
  return spec.backend === "nftables"
    ? renderNftAll(spec) + renderForwardRuleset(spec)
    : renderIptablesRuleset(spec);
}
