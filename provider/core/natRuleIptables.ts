// Renders a NatSpec for the iptables backend: `iptables-restore --noflush` input that (re)defines only
// our chains in table nat, the jumps from the built-in chains into them, and the commands that remove both.

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

/** The iptables tool of a family: IPv4 rules go to `iptables`, NAT66 and the IPv6 forward path to `ip6tables`. */
export type IptablesTool = "iptables" | "ip6tables";

/** A jump from a built-in nat chain into one of ours, added once (`-C … || -I …`) by the runtime. */
export interface IptablesJump {
  readonly chain: "PREROUTING" | "POSTROUTING" | "OUTPUT";
  readonly jump: string;
}

/** What the iptables backend applies. */
export interface IptablesRender {
  /** Input for `iptables-restore --noflush`: table nat, our chains only. */
  readonly restore: string;
  readonly jumps: IptablesJump[];
  /** Our chain names, in the order pre, post, out. */
  readonly chains: string[];
}

/** Our three chains in table nat; each fits iptables' 28-character limit (see NAT_NAME_MAX_LENGTH). */
export function iptablesChainNames(id: string): { pre: string; post: string; out: string } {
  const base = `${NAT_NAME_PREFIX}${id}`;
  return { pre: `${base}-pre`, post: `${base}-post`, out: `${base}-out` };
}

/** The jumps for `id`, in the order they are added. */
export function iptablesJumps(id: string): IptablesJump[] {
  const c = iptablesChainNames(id);
  return [
    { chain: "PREROUTING", jump: c.pre },
    { chain: "POSTROUTING", jump: c.post },
    { chain: "OUTPUT", jump: c.out },
  ];
}

/**
 * The argv for one jump operation: `-C` to check, `-I` to insert at the top, `-D` to delete one copy.
 * `-w` waits for the xtables lock instead of failing when a firewall reload holds it.
 */
export function iptablesJumpArgv(
  jump: IptablesJump,
  op: "-C" | "-I" | "-D",
  tool: IptablesTool = "iptables",
): string[] {
  return [tool, "-w", "-t", "nat", op, jump.chain, "-j", jump.jump];
}

/** An interface for `-i`: a wildcard is iptables' `ve-+`. */
function iptInterface(match: InterfaceMatch): string {
  return `${match.name}${match.wildcard ? "+" : ""}`;
}

function iptDnat(rule: DnatRule): string {
  const port = rule.port === undefined ? "" : `:${formatSpan(rule.port, "-")}`;
  // ip6tables takes an IPv6 address with a port in brackets ("[fd00::2]:80").
  const address = port !== "" && isIPv6(rule.address) ? `[${rule.address}]` : rule.address;
  return `-p ${rule.proto} --dport ${formatSpan(rule.dport, ":")} -j DNAT --to-destination ${address}${port}`;
}

/**
 * The firewall mark bit that carries "came in on an internal interface" from PREROUTING to POSTROUTING. NixOS
 * sets the whole mark to 1; we set and match one bit only, so marks other tools put on the same packets
 * (policy routing, kube-proxy, Tailscale) are left as they were.
 */
const NAT_MARK = "0x10000000/0x10000000";

/** The restore text, the jumps and the chain names for `spec`, like NixOS's iptables nat. */
export function renderIptables(spec: NatSpec): IptablesRender {
  const c = iptablesChainNames(spec.name);
  const chains = [c.pre, c.post, c.out];
  const ext = spec.externalInterface;
  const action = spec.externalIP === undefined ? "-j MASQUERADE" : `-j SNAT --to-source ${spec.externalIP}`;
  const dnat = dnatRules(spec);
  const reflected = spec.loopbackIPs.filter((a) => !isLoopback(a));
  const own = [
    ...new Set([...(spec.externalIP === undefined ? [] : [spec.externalIP]), ...spec.loopbackIPs]),
  ];
  const rules = [
    // POSTROUTING cannot match the input interface, so it is remembered as a mark in prerouting.
    ...spec.internalInterfaces.map((m) => `-A ${c.pre} -i ${iptInterface(m)} -j MARK --set-mark ${NAT_MARK}`),
    ...dnat.map((r) => `-A ${c.pre} -i ${ext} ${iptDnat(r)}`),
    // loopbackIPs: containers (and LAN hosts routed through us) reach the forwards on these addresses too.
    ...reflected.flatMap((address) => dnat.map((r) => `-A ${c.pre} -d ${address} ${iptDnat(r)}`)),
    ...(spec.internalInterfaces.length > 0
      ? [`-A ${c.post} -m mark --mark ${NAT_MARK} -o ${ext} ${action}`]
      : []),
    ...spec.internalIPs.map((range) => `-A ${c.post} -s ${range} -o ${ext} ${action}`),
    ...hairpinRules(spec, c.post),
    // The host's own connections to its external address never pass PREROUTING; DNAT them on OUTPUT.
    ...own.flatMap((address) => dnat.map((r) => `-A ${c.out} -d ${address} ${iptDnat(r)}`)),
  ];
  const lines = [
    `# Managed by pulumi-nixos-containers (NatRule ${spec.name}): defines and flushes only the chains below.`,
    "*nat",
    ...chains.map((name) => `:${name} - [0:0]`),
    ...chains.map((name) => `-F ${name}`),
    ...rules,
    "COMMIT",
  ];
  return { restore: `${lines.join("\n")}\n`, jumps: iptablesJumps(spec.name), chains };
}

/**
 * NAT66 for the iptables backend (ipv6: "nat66"): `ip6tables-restore --noflush` input for our chains of the
 * same names in ip6tables' table nat (the mark bit as for IPv4), and their jumps (added with ip6tables).
 * Undefined without NAT66.
 */
export function renderIptables6(spec: NatSpec): IptablesRender | undefined {
  const v6 = spec.ipv6;
  if (v6?.mode !== "nat66") return undefined;
  const c = iptablesChainNames(spec.name);
  const chains = [c.pre, c.post, c.out];
  const ext = spec.externalInterface;
  const action = v6.externalIPv6 === undefined ? "-j MASQUERADE" : `-j SNAT --to-source ${v6.externalIPv6}`;
  const dnat = dnatRules(v6);
  const rules = [
    ...spec.internalInterfaces.map((m) => `-A ${c.pre} -i ${iptInterface(m)} -j MARK --set-mark ${NAT_MARK}`),
    ...dnat.map((r) => `-A ${c.pre} -i ${ext} ${iptDnat(r)}`),
    ...(spec.internalInterfaces.length > 0
      ? [`-A ${c.post} -m mark --mark ${NAT_MARK} -o ${ext} ${action}`]
      : []),
    ...v6.internalIPv6s.map((range) => `-A ${c.post} -s ${range} -o ${ext} ${action}`),
    ...(v6.externalIPv6 === undefined
      ? []
      : dnat.map((r) => `-A ${c.out} -d ${v6.externalIPv6} ${iptDnat(r)}`)),
  ];
  const lines = [
    `# Managed by pulumi-nixos-containers (NatRule ${spec.name}): for ip6tables-restore; defines and flushes only the chains below.`,
    "*nat",
    ...chains.map((name) => `:${name} - [0:0]`),
    ...chains.map((name) => `-F ${name}`),
    ...rules,
    "COMMIT",
  ];
  return { restore: `${lines.join("\n")}\n`, jumps: iptablesJumps(spec.name), chains };
}

/** Hairpin masquerading for forwards reached over a loopback IP (see the nftables renderer's hairpinRules). */
function hairpinRules(spec: NatSpec, post: string): string[] {
  if (spec.loopbackIPs.length === 0) return [];
  const sources = [
    ...(spec.internalInterfaces.length > 0 ? [`-m mark --mark ${NAT_MARK}`] : []),
    ...spec.internalIPs.map((range) => `-s ${range}`),
    ...(spec.loopbackIPs.some(isLoopback) ? ["-s 127.0.0.0/8"] : []),
  ];
  return forwardDestinations(spec).flatMap((dest) =>
    sources.map((from) => `-A ${post} ${from} -d ${dest} -m conntrack --ctstate DNAT -j MASQUERADE`),
  );
}

/** The chain of ours in table filter that `allowForward` jumps to (fits the 28-character limit like "-post"). */
export function forwardChainName(id: string): string {
  return `${NAT_NAME_PREFIX}${id}-fwd`;
}

/**
 * `allowForward`: the `iptables-restore --noflush` input (table filter, our chain only) that accepts our
 * traffic on the forward path: from the internal side out of the external interface, the replies, and
 * both directions of our port forwards (connections DNATed to their destinations). Undefined without
 * `allowForward`.
 */
export function renderForward(spec: NatSpec): string | undefined {
  if (!spec.allowForward) return undefined;
  return forwardText(spec, spec.internalIPs, forwardDestinations(spec), "");
}

/**
 * `allowForward` for IPv6 (either mode): the same chain in ip6tables' table filter, for the internal
 * interfaces and internalIPv6s, and the IPv6 port forwards of NAT66. In routed mode it accepts what the
 * containers open and the replies, not new connections from outside (the host's firewall decides those).
 * Undefined without allowForward or IPv6.
 */
export function renderForward6(spec: NatSpec): string | undefined {
  const v6 = spec.ipv6;
  if (!spec.allowForward || v6 === undefined) return undefined;
  const destinations = v6.mode === "nat66" ? forwardDestinations(v6) : [];
  return forwardText(spec, v6.internalIPv6s, destinations, "for ip6tables-restore; ");
}

function forwardText(
  spec: NatSpec,
  ranges: readonly string[],
  destinations: readonly string[],
  note: string,
): string {
  const f = forwardChainName(spec.name);
  const ext = spec.externalInterface;
  const replies = "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT";
  const lines = [
    `# Managed by pulumi-nixos-containers (NatRule ${spec.name}): ${note}defines and flushes only the chain below.`,
    "*filter",
    `:${f} - [0:0]`,
    `-F ${f}`,
    ...spec.internalInterfaces.map((m) => `-A ${f} -i ${iptInterface(m)} -o ${ext} -j ACCEPT`),
    ...ranges.map((range) => `-A ${f} -s ${range} -o ${ext} -j ACCEPT`),
    ...spec.internalInterfaces.map((m) => `-A ${f} -i ${ext} -o ${iptInterface(m)} ${replies}`),
    ...ranges.map((range) => `-A ${f} -i ${ext} -d ${range} ${replies}`),
    ...destinations.map((dest) => `-A ${f} -m conntrack --ctstate DNAT --ctreplsrc ${dest} -j ACCEPT`),
    "COMMIT",
  ];
  return `${lines.join("\n")}\n`;
}

/** The chains `allowForward` may jump from: Docker's DOCKER-USER when it exists (Docker's advice), else FORWARD. */
export const FORWARD_JUMP_CHAINS = ["DOCKER-USER", "FORWARD"] as const;

/** The argv of one operation on the jump from `chain` into our forward chain (table filter). */
export function forwardJumpArgv(
  id: string,
  chain: string,
  op: "-C" | "-I" | "-D",
  tool: IptablesTool = "iptables",
): string[] {
  return [tool, "-w", "-t", "filter", op, chain, "-j", forwardChainName(id)];
}

/**
 * The commands that remove everything `renderIptables` added, in order: the jumps, then our chains
 * (flush, then delete). Each may fail with "No chain/target/match by that name" when the object is
 * already gone, which the runtime treats as success; a jump inserted twice needs `-D` repeated until it
 * fails.
 */
export function deleteIptables(spec: Pick<NatSpec, "name">, tool: IptablesTool = "iptables"): string[][] {
  const chains = Object.values(iptablesChainNames(spec.name));
  return [
    ...iptablesJumps(spec.name).map((j) => iptablesJumpArgv(j, "-D", tool)),
    ...chains.map((name) => [tool, "-w", "-t", "nat", "-F", name]),
    ...chains.map((name) => [tool, "-w", "-t", "nat", "-X", name]),
  ];
}

/** What preview shows for the iptables backend: the restore input, then the jumps as commands. */
export function renderIptablesRuleset(spec: NatSpec): string {
  const { restore, jumps } = renderIptables(spec);
  const jumpLines = jumps.map((j) => iptablesJumpArgv(j, "-I").join(" "));
  const v6 = renderIptables6(spec);
  const nat6 =
    v6 === undefined
      ? ""
      : `${v6.restore}# ip6tables jumps, each inserted once if "-C" does not find it:\n${v6.jumps
          .map((j) => iptablesJumpArgv(j, "-I", "ip6tables").join(" "))
          .join("\n")}\n`;
  return `${restore}# jumps, each inserted once if "-C" does not find it:\n${jumpLines.join("\n")}\n${nat6}${renderForwardRuleset(spec)}`;
}

/** What preview shows for `allowForward` (either backend): the filter chain and where its jump goes. */
export function renderForwardRuleset(spec: NatSpec): string {
  const forward = renderForward(spec);
  if (forward === undefined) return "";
  const jump = forwardJumpArgv(spec.name, "DOCKER-USER|FORWARD", "-I").join(" ");
  const forward6 = renderForward6(spec);
  const jump6 = forwardJumpArgv(spec.name, "DOCKER-USER|FORWARD", "-I", "ip6tables").join(" ");
  const ipv6 =
    forward6 === undefined
      ? ""
      : "# allowForward for IPv6, where ip6tables' table filter exists (Docker with ip6tables: FORWARD policy DROP):\n" +
        `${forward6}# jump, inserted once at the top of ip6tables' DOCKER-USER when it exists, else of FORWARD:\n${jump6}\n`;
  return (
    "# allowForward, where iptables' table filter exists (Docker's FORWARD policy is DROP):\n" +
    `${forward}# jump, inserted once at the top of DOCKER-USER when it exists, else of FORWARD:\n${jump}\n${ipv6}`
  );
}
