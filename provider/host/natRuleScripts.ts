// Host scripts for NatRule: apply our own nftables table or iptables chains atomically, turn IPv4 forwarding on
// (and back off when our last NatRule on the host goes), record what was applied so `read` can spot a flush.
import {
  FORWARD_JUMP_CHAINS,
  deleteIptables,
  forwardChainName,
  iptablesChainNames,
  iptablesJumpArgv,
  iptablesJumps,
  renderForward,
  renderForward6,
  renderIptables,
  renderIptables6,
} from "../core/natRuleIptables";
import { NatSpec, forwardDestinations, isLoopback } from "../core/natRuleSpec";
import { nftTableName, renderNftAll } from "../core/natRuleNftables";
import { quoteArgv } from "../ssh/quote";
import { EXIT, MARK } from "./protocol";
import * as shell from "./shell";

/** Host-side records of our NatRules (one file each), and the forwarding setting found before the first. */
const STATE_DIR = "/var/lib/pulumi-nixos-containers/nat";

/** A regular expression (for `grep -E`) matching lines of iptables-save that name one of `chains`. */
function chainLines(chains: readonly string[]): string {
  const pattern = chains.map((c) => c.replace(/[.+-]/g, "\\$&")).join("|");
  return quoteArgv([`(^:|-j |^-A )(${pattern})( |$)`]);
}

/**
 * Prints our live rules in a stable form: the table listing, or our chains and jumps from iptables-save;
 * then our forward chain and its jump (allowForward), and the route_localnet of the devices our loopback
 * forwards leave by (see LOCALNET).
 */
function snapshotFunction(spec: NatSpec): string {
  const nat =
    spec.backend === "nftables"
      ? 'nft list table ip "$TABLE_NAME" 2>/dev/null || true'
      : `iptables-save -t nat 2>/dev/null | grep -E -- ${chainLines(Object.values(iptablesChainNames(spec.name)))} | sed 's/ \\[[0-9]*:[0-9]*\\]$//' || true`;
  const forward = `if command -v iptables-save >/dev/null 2>&1; then iptables-save -t filter 2>/dev/null | grep -E -- ${chainLines([forwardChainName(spec.name)])} | sed 's/ \\[[0-9]*:[0-9]*\\]$//' || true; fi`;
  return `snapshot() {
  ${nat}
  ${forward}
${snapshot6(spec)}  localnet_snapshot
}
`;
}

/** The IPv6 lines of `snapshot` (empty for an IPv4-only rule): our ip6 table or ip6tables chains, and forward chain. */
function snapshot6(spec: NatSpec): string {
  const v6 = spec.ipv6;
  if (v6 === undefined) return "";
  const strip = "sed 's/ \\[[0-9]*:[0-9]*\\]$//'";
  const lines: string[] = [];
  if (v6.mode === "nat66") {
    lines.push(
      spec.backend === "nftables"
        ? 'nft list table ip6 "$TABLE_NAME" 2>/dev/null || true'
        : `if command -v ip6tables-save >/dev/null 2>&1; then ip6tables-save -t nat 2>/dev/null | grep -E -- ${chainLines(Object.values(iptablesChainNames(spec.name)))} | ${strip} || true; fi`,
    );
  }
  lines.push(
    `if command -v ip6tables-save >/dev/null 2>&1; then ip6tables-save -t filter 2>/dev/null | grep -E -- ${chainLines([forwardChainName(spec.name)])} | ${strip} || true; fi`,
  );
  return lines.map((l) => `  ${l}\n`).join("");
}

/**
 * The variables of a NatRule script: RULE_NAME, TABLE_NAME, STATE_DIR, and those its apply steps read
 * (RULESET, EXTERNAL_INTERFACE, ALLOW_FORWARD, FORWARD_CHAIN, FORWARD_RULES, LOCALNET_DESTINATIONS).
 */
function vars(spec: NatSpec, rules = ""): string {
  const loopback = spec.loopbackIPs.some(isLoopback);
  return shell.assignments({
    RULE_NAME: spec.name,
    TABLE_NAME: nftTableName(spec.name),
    RULESET: rules,
    EXTERNAL_INTERFACE: spec.externalInterface,
    STATE_DIR,
    ALLOW_FORWARD: spec.allowForward,
    FORWARD_CHAIN: forwardChainName(spec.name),
    FORWARD_RULES: renderForward(spec) ?? "",
    LOCALNET_DESTINATIONS: loopback ? forwardDestinations(spec).join(" ") : "",
    FORWARD_ACCEPT_HINT: forwardAcceptHint(spec),
    // How a rule accepting our traffic names it in `nft list` output: "ve-* as "ve-, eth1 as "eth1", ranges as written.
    INTERNAL_MATCHES: [
      ...spec.internalInterfaces.map((m) => `"${m.name}${m.wildcard ? "" : '"'}`),
      ...spec.internalIPs,
      ...(spec.ipv6?.internalIPv6s ?? []),
    ].join(" "),
    ...vars6(spec),
  });
}

/** The variables only an IPv6 rule has (none for an IPv4-only one, whose scripts stay as they were). */
function vars6(spec: NatSpec): Record<string, string> {
  if (spec.ipv6 === undefined) return {};
  return {
    FORWARD_RULES6: renderForward6(spec) ?? "",
    RULESET6: spec.backend === "iptables" ? (renderIptables6(spec)?.restore ?? "") : "",
  };
}

/** What a NixOS user adds so that `networking.firewall.filterForward` lets the NatRule's traffic pass. */
function forwardAcceptHint(spec: NatSpec): string {
  const names = spec.internalInterfaces.map((m) => `"${m.name}${m.wildcard ? "*" : ""}"`);
  const rules = [
    ...(names.length === 0
      ? []
      : [`iifname { ${names.join(", ")} } oifname "${spec.externalInterface}" accept`]),
    ...spec.internalIPs.map((range) => `ip saddr ${range} oifname "${spec.externalInterface}" accept`),
    ...(spec.ipv6?.internalIPv6s ?? []).map(
      (range) => `ip6 saddr ${range} oifname "${spec.externalInterface}" accept`,
    ),
  ];
  return `networking.firewall.extraForwardRules = ''${rules.join("; ")}'';`;
}

function ownedVars(spec: NatSpec, owner: shell.Ownership, rules = ""): string {
  return shell.script(vars(spec, rules), shell.ownerVariables(owner, "nat", spec.name));
}

const FORWARDING_ON = String.raw`mkdir -p "$STATE_DIR"
if ! ls "$STATE_DIR"/*.rule >/dev/null 2>&1; then
  printf '%s %s\n' "$(cat /proc/sys/net/ipv4/conf/all/forwarding)" "$(cat /proc/sys/net/ipv4/conf/default/forwarding)" > "$STATE_DIR/forwarding-before"
fi
: > "$STATE_DIR/$RULE_NAME.rule"
echo 1 > /proc/sys/net/ipv4/conf/all/forwarding
echo 1 > /proc/sys/net/ipv4/conf/default/forwarding
`;

/** Only when no NatRule of ours remains on the host is forwarding set back to what it was before the first. */
const FORWARDING_RESTORE = String.raw`rm -f "$STATE_DIR/$RULE_NAME.rule" "$STATE_DIR/$RULE_NAME.applied"
if ! ls "$STATE_DIR"/*.rule >/dev/null 2>&1 && [ -f "$STATE_DIR/forwarding-before" ]; then
  read -r all def < "$STATE_DIR/forwarding-before"
  echo "$all" > /proc/sys/net/ipv4/conf/all/forwarding
  echo "$def" > /proc/sys/net/ipv4/conf/default/forwarding
  rm -f "$STATE_DIR/forwarding-before"
  echo "PNC-RESULT forwardingRestored=$all"
fi
`;

/**
 * iptables-nft creates the nat table's base chains on first use. Record which were absent before our first
 * apply, so delete can remove them again when nothing else uses them: the host ends as it was.
 */
const RECORD_ABSENT_BASE_CHAINS = String.raw`mkdir -p "$STATE_DIR"
if [ ! -f "$STATE_DIR/$RULE_NAME.created" ]; then
  : > "$STATE_DIR/$RULE_NAME.created.tmp"
  if iptables -V 2>/dev/null | grep -q nf_tables && command -v nft >/dev/null 2>&1; then
    nft list table ip nat >/dev/null 2>&1 || echo "table nat" >> "$STATE_DIR/$RULE_NAME.created.tmp"
    for c in PREROUTING POSTROUTING OUTPUT; do
      nft list chain ip nat "$c" >/dev/null 2>&1 || echo "chain $c" >> "$STATE_DIR/$RULE_NAME.created.tmp"
    done
  fi
  mv -f "$STATE_DIR/$RULE_NAME.created.tmp" "$STATE_DIR/$RULE_NAME.created"
fi
`;

const REMOVE_BASE_CHAINS_WE_CREATED = String.raw`if [ -f "$STATE_DIR/$RULE_NAME.created" ]; then
  while read -r kind what; do
    if [ "$kind" = chain ] && [ "$(iptables -w -t nat -S "$what" 2>/dev/null | grep -vc '^-P ')" = 0 ]; then
      nft delete chain ip nat "$what" 2>/dev/null || true
    fi
  done < "$STATE_DIR/$RULE_NAME.created"
  if grep -qx "table nat" "$STATE_DIR/$RULE_NAME.created" && ! nft list table ip nat 2>/dev/null | grep -qE '^[[:space:]]+(chain|set|map) '; then
    nft delete table ip nat 2>/dev/null || true
  fi
  rm -f "$STATE_DIR/$RULE_NAME.created"
fi
`;

/** Reads EXTERNAL_INTERFACE. Refuses when the host has no such interface, listing the ones it has. */
const EXTERNAL_EXISTS = String.raw`if ! ip link show dev "$EXTERNAL_INTERFACE" >/dev/null 2>&1; then
  echo "${MARK.clash} external interface $EXTERNAL_INTERFACE does not exist on the host (it has: $(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); printf "%s ", $2 }'))" >&2
  exit ${EXIT.refused}
fi
`;

/**
 * allowForward. Reads ALLOW_FORWARD, FORWARD_CHAIN, FORWARD_RULES. Defines:
 * - `forward_jumped`: whether our forward chain is jumped to from DOCKER-USER or FORWARD;
 * - `apply_forward`: with allowForward, (re)defines our chain in iptables' table filter and jumps to it from
 *   the top of DOCKER-USER when it exists (Docker re-inserts its own jumps above anything in FORWARD), else of
 *   FORWARD; where iptables-nft has no table filter nothing drops there and nothing is made. Without
 *   allowForward it removes what an earlier apply made;
 * - `remove_forward`: removes our jumps (each copy) and chain, and nothing else.
 */
const FORWARD = String.raw`forward_jumped() {
  for c in ${FORWARD_JUMP_CHAINS.join(" ")}; do iptables -w -t filter -C "$c" -j "$FORWARD_CHAIN" 2>/dev/null && return 0; done
  return 1
}
remove_forward() {
  command -v iptables >/dev/null 2>&1 || return 0
  for c in ${FORWARD_JUMP_CHAINS.join(" ")}; do
    while iptables -w -t filter -C "$c" -j "$FORWARD_CHAIN" 2>/dev/null; do iptables -w -t filter -D "$c" -j "$FORWARD_CHAIN"; done
  done
  iptables -w -t filter -F "$FORWARD_CHAIN" 2>/dev/null || true
  iptables -w -t filter -X "$FORWARD_CHAIN" 2>/dev/null || true
}
apply_forward() {
  if [ "$ALLOW_FORWARD" != 1 ] || ! command -v iptables >/dev/null 2>&1; then remove_forward; return 0; fi
  if iptables -V 2>/dev/null | grep -q nf_tables && command -v nft >/dev/null 2>&1 && ! nft list chain ip filter FORWARD >/dev/null 2>&1; then
    remove_forward
    return 0
  fi
  printf '%s\n' "$FORWARD_RULES" | iptables-restore -w --test --noflush >&2
  printf '%s\n' "$FORWARD_RULES" | iptables-restore -w --noflush
  jump_chain=FORWARD
  iptables -w -t filter -S DOCKER-USER >/dev/null 2>&1 && jump_chain=DOCKER-USER
  for c in ${FORWARD_JUMP_CHAINS.join(" ")}; do
    [ "$c" = "$jump_chain" ] && continue
    while iptables -w -t filter -C "$c" -j "$FORWARD_CHAIN" 2>/dev/null; do iptables -w -t filter -D "$c" -j "$FORWARD_CHAIN"; done
  done
  iptables -w -t filter -C "$jump_chain" -j "$FORWARD_CHAIN" 2>/dev/null || iptables -w -t filter -I "$jump_chain" -j "$FORWARD_CHAIN"
}
`;

/**
 * Reads ALLOW_FORWARD, FORWARD_CHAIN, EXTERNAL_INTERFACE and FORWARD_ACCEPT_HINT. Defines `forward_blockers
 * [planned]`: prints, one per line, each forward hook that drops by default (policy drop) and would drop the
 * NatRule's traffic: nftables base chains of family ip or inet (NixOS's `filterForward` is `table inet nixos-fw
 * chain forward`) whose table has no rule accepting our interfaces or ranges, and the legacy iptables FORWARD
 * policy. iptables-nft's own FORWARD (table ip filter) counts as open when our jump is there, or, with
 * `planned`, when allowForward is about to put it there. And `refuse_blocked`: with allowForward, refuses when
 * a hook that no rule of ours can open would drop the traffic, naming the NixOS option that accepts it.
 */
const FORWARD_BLOCKERS = String.raw`forward_blockers() {
  planned=
  [ $# -eq 0 ] || planned=$1
  if command -v nft >/dev/null 2>&1; then
    nft list chains 2>/dev/null | awk '
      $1 == "table" { family = $2; table = $3 }
      $1 == "chain" { chain = $2 }
      /hook forward/ && /policy drop/ && (family == "ip" || family == "inet") { print family, table, chain }'
  fi | while read -r family table chain; do
    if [ "$family $table $chain" = "ip filter FORWARD" ] && [ "$ALLOW_FORWARD" = 1 ] && { [ -n "$planned" ] || forward_jumped; }; then continue; fi
    if [ "$family $table" != "ip filter" ] && nft list table "$family" "$table" 2>/dev/null | accepts_ours; then continue; fi
    echo "table $family $table chain $chain (policy drop)"
  done
  if command -v iptables >/dev/null 2>&1 && ! iptables -V 2>/dev/null | grep -q nf_tables &&
    iptables -w -t filter -S FORWARD 2>/dev/null | grep -qx -- '-P FORWARD DROP' &&
    ! { [ "$ALLOW_FORWARD" = 1 ] && { [ -n "$planned" ] || forward_jumped; }; }; then
    echo "iptables chain FORWARD (policy DROP)"
  fi
}
accepts_ours() {
  awk -v ours="$INTERNAL_MATCHES" '
    BEGIN { n = split(ours, m, " ") }
    / accept/ && /(iifname|saddr)/ { for (i = 1; i <= n; i++) if (index($0, m[i])) { found = 1 } }
    END { exit !found }'
}
refuse_blocked() {
  [ "$ALLOW_FORWARD" = 1 ] || return 0
  blockers=$(forward_blockers planned | tr '\n' ';' | sed 's/;$//; s/;/; /g')
  [ -z "$blockers" ] && return 0
  echo "${MARK.clash} the forwarded traffic of NatRule $RULE_NAME would still be dropped by $blockers: nftables runs the forward hook of every table and a drop in any of them is final, so no rule of ours can let it pass. On NixOS (networking.firewall.filterForward) add $FORWARD_ACCEPT_HINT to the host's configuration (port forwards already pass: NixOS accepts ct status dnat); elsewhere accept this traffic in that chain" >&2
  exit ${EXIT.refused}
}
`;

/**
 * allowForward for IPv6: FORWARD's functions for ip6tables (`forward6_jumped`, `remove_forward6`,
 * `apply_forward6`), reading FORWARD_RULES6; Docker with `"ip6tables": true` sets ip6tables' FORWARD policy to
 * DROP and makes DOCKER-USER there as well.
 */
const FORWARD6 = FORWARD.replace(/\biptables/g, "ip6tables")
  .replace(/\b(forward_jumped|remove_forward|apply_forward)\b/g, (name) =>
    name.replace("forward", "forward6"),
  )
  .replace('"$FORWARD_RULES"', '"${FORWARD_RULES6:-}"')
  .replace("nft list chain ip filter FORWARD", "nft list chain ip6 filter FORWARD");

/**
 * `forward_blockers` for a rule with IPv6: also forward hooks of family ip6, ip6tables-nft's FORWARD (open when
 * our ip6tables jump is there or planned), and the legacy ip6tables FORWARD policy.
 */
const FORWARD_BLOCKERS6 = FORWARD_BLOCKERS.replace(
  '(family == "ip" || family == "inet")',
  '(family == "ip" || family == "ip6" || family == "inet")',
)
  .replace(
    '    if [ "$family $table" != "ip filter" ]',
    '    if [ "$family $table $chain" = "ip6 filter FORWARD" ] && [ "$ALLOW_FORWARD" = 1 ] && { [ -n "$planned" ] || forward6_jumped; }; then continue; fi\n' +
      '    if [ "$family $table" != "ip filter" ] && [ "$family $table" != "ip6 filter" ]',
  )
  .replace(
    '    echo "iptables chain FORWARD (policy DROP)"\n  fi\n',
    '    echo "iptables chain FORWARD (policy DROP)"\n  fi\n' +
      "  if command -v ip6tables >/dev/null 2>&1 && ! ip6tables -V 2>/dev/null | grep -q nf_tables &&\n" +
      "    ip6tables -w -t filter -S FORWARD 2>/dev/null | grep -qx -- '-P FORWARD DROP' &&\n" +
      '    ! { [ "$ALLOW_FORWARD" = 1 ] && { [ -n "$planned" ] || forward6_jumped; }; }; then\n' +
      '    echo "ip6tables chain FORWARD (policy DROP)"\n  fi\n',
  );

function forwardBlockers(spec: NatSpec): string {
  return spec.ipv6 === undefined ? FORWARD_BLOCKERS : FORWARD_BLOCKERS6;
}

/**
 * IPv6 forwarding (an IPv6 rule). Reads STATE_DIR, RULE_NAME, EXTERNAL_INTERFACE. Defines:
 * - `ipv6_preflight`: refuses, before anything changes, a host without IPv6 (or with it disabled on the external
 *   interface), and one where turning forwarding on would cut another interface off its router: writing
 *   net.ipv6.conf.all.forwarding=1 makes the kernel ignore router advertisements on every interface whose
 *   accept_ra is 1 (ip-sysctl.rst: "1 - Accept Router Advertisements if forwarding is disabled") and deletes
 *   at once the default routes it learned from them on interfaces whose accept_ra is not 2
 *   (rt6_purge_dflt_routers), and SLAAC addresses then expire;
 * - `forwarding6_on`: records every interface's forwarding before the first IPv6 rule of ours (in
 *   STATE_DIR/forwarding6-before), sets accept_ra=2 ("Overrule forwarding behaviour") on the external
 *   interface when it is 1 there and forwarding was off (recorded in STATE_DIR/accept_ra/DEVICE), then turns
 *   forwarding on; the order matters, the purge runs on the write;
 * - `forwarding6_release`: drops this rule's record and, when no IPv6 rule of ours remains, puts back every
 *   interface's forwarding (all first: it overwrites every interface) and then accept_ra.
 */
export const FORWARDING6 = String.raw`ipv6_preflight() {
  if [ ! -f /proc/sys/net/ipv6/conf/all/forwarding ]; then
    echo "${MARK.clash} NatRule $RULE_NAME has IPv6, but the host's kernel has no IPv6 (no /proc/sys/net/ipv6: booted with ipv6.disable=1?): remove ipv6 from the NatRule, or enable IPv6 on the host" >&2
    exit ${EXIT.refused}
  fi
  if [ "$(cat "/proc/sys/net/ipv6/conf/$EXTERNAL_INTERFACE/disable_ipv6" 2>/dev/null || echo 1)" = 1 ]; then
    echo "${MARK.clash} NatRule $RULE_NAME has IPv6, but IPv6 is disabled on its external interface $EXTERNAL_INTERFACE (net.ipv6.conf.$EXTERNAL_INTERFACE.disable_ipv6=1): enable it there, or remove ipv6 from the NatRule" >&2
    exit ${EXIT.refused}
  fi
  [ "$(cat /proc/sys/net/ipv6/conf/all/forwarding)" = 0 ] || return 0
  at_risk=
  for ra in /proc/sys/net/ipv6/conf/*/accept_ra; do
    conf=$(dirname "$ra")
    dev=$(basename "$conf")
    case "$dev" in all | default | lo | "$EXTERNAL_INTERFACE") continue ;; esac
    if [ "$(cat "$ra")" != 1 ] || [ "$(cat "$conf/forwarding")" != 0 ]; then continue; fi
    if ip -6 route show default dev "$dev" proto ra 2>/dev/null | grep -q . || ip -6 addr show dev "$dev" scope global dynamic 2>/dev/null | grep -q inet6; then
      at_risk="$at_risk $dev"
    fi
  done
  [ -z "$at_risk" ] && return 0
  echo "${MARK.clash} NatRule $RULE_NAME would turn IPv6 forwarding on, and then the kernel ignores router advertisements on$at_risk (accept_ra=1 accepts them only while forwarding is off) and deletes the default route learned from them at once; their SLAAC addresses would expire. Set net.ipv6.conf.<interface>.accept_ra=2 there first (accept them while forwarding), or give those interfaces static addresses and routes; the external interface $EXTERNAL_INTERFACE is handled by this NatRule itself" >&2
  exit ${EXIT.refused}
}
forwarding6_on() {
  mkdir -p "$STATE_DIR/accept_ra"
  if ! ls "$STATE_DIR"/*.rule6 >/dev/null 2>&1; then
    for f in /proc/sys/net/ipv6/conf/*/forwarding; do printf '%s %s\n' "$(basename "$(dirname "$f")")" "$(cat "$f")"; done > "$STATE_DIR/forwarding6-before"
  fi
  : > "$STATE_DIR/$RULE_NAME.rule6"
  ext_conf="/proc/sys/net/ipv6/conf/$EXTERNAL_INTERFACE"
  if [ -f "$ext_conf/accept_ra" ] && [ "$(cat "$ext_conf/accept_ra")" = 1 ]; then
    if [ -f "$STATE_DIR/accept_ra/$EXTERNAL_INTERFACE" ] || [ "$(cat "$ext_conf/forwarding")" = 0 ]; then
      [ -f "$STATE_DIR/accept_ra/$EXTERNAL_INTERFACE" ] || echo 1 > "$STATE_DIR/accept_ra/$EXTERNAL_INTERFACE"
      echo 2 > "$ext_conf/accept_ra"
    fi
  fi
  echo 1 > /proc/sys/net/ipv6/conf/all/forwarding
  echo 1 > /proc/sys/net/ipv6/conf/default/forwarding
}
forwarding6_release() {
  rm -f "$STATE_DIR/$RULE_NAME.rule6"
  if ls "$STATE_DIR"/*.rule6 >/dev/null 2>&1 || [ ! -f "$STATE_DIR/forwarding6-before" ]; then return 0; fi
  all=$(awk '$1 == "all" { print $2 }' "$STATE_DIR/forwarding6-before")
  if [ -n "$all" ]; then echo "$all" > /proc/sys/net/ipv6/conf/all/forwarding; fi
  while read -r dev value; do
    f="/proc/sys/net/ipv6/conf/$dev/forwarding"
    if [ "$dev" != all ] && [ -f "$f" ] && [ "$(cat "$f")" != "$value" ]; then echo "$value" > "$f"; fi
  done < "$STATE_DIR/forwarding6-before"
  rm -f "$STATE_DIR/forwarding6-before"
  for record in "$STATE_DIR"/accept_ra/*; do
    [ -f "$record" ] || continue
    dev=$(basename "$record")
    if [ -f "/proc/sys/net/ipv6/conf/$dev/accept_ra" ]; then cat "$record" > "/proc/sys/net/ipv6/conf/$dev/accept_ra"; fi
    rm -f "$record"
  done
  echo "PNC-RESULT forwarding6Restored=$all"
}
`;

/** RECORD_ABSENT_BASE_CHAINS for ip6tables-nft's table ip6 nat (recorded in STATE_DIR/RULE_NAME.created6). */
const RECORD_ABSENT_BASE_CHAINS6 = RECORD_ABSENT_BASE_CHAINS.replace(/\biptables -V/g, "ip6tables -V")
  .replace(/\.created\b/g, ".created6")
  .replace(/nft list (table|chain) ip nat/g, "nft list $1 ip6 nat");

/**
 * Removes what NAT66 of ours made (an update that turned it off, and every delete), and nothing else: our table
 * ip6 TABLE_NAME, or our ip6tables chains, their jumps and the base chains ip6tables-nft made for them. Reads
 * TABLE_NAME, STATE_DIR, RULE_NAME; defines `remove_nat6`. Only lists when nothing of ours is there.
 */
function removeNat6(spec: Pick<NatSpec, "name">): string {
  const chains = Object.values(iptablesChainNames(spec.name));
  const jumps = iptablesJumps(spec.name).map(
    (jump) =>
      `    while ${quoteArgv(iptablesJumpArgv(jump, "-C", "ip6tables"))} 2>/dev/null; do ${quoteArgv(iptablesJumpArgv(jump, "-D", "ip6tables"))}; done`,
  );
  const flush = deleteIptables(spec, "ip6tables")
    .filter((a) => !a.includes("-D"))
    .map((argv) => `    ${quoteArgv(argv)} 2>/dev/null || true`);
  const removeBase = REMOVE_BASE_CHAINS_WE_CREATED.replace(/\.created\b/g, ".created6")
    .replace(/iptables -w -t nat -S/g, "ip6tables -w -t nat -S")
    .replace(/ ip nat/g, " ip6 nat");
  return [
    "remove_nat6() {",
    '  if command -v nft >/dev/null 2>&1 && nft list table ip6 "$TABLE_NAME" >/dev/null 2>&1; then nft delete table ip6 "$TABLE_NAME"; fi',
    `  if command -v ip6tables-save >/dev/null 2>&1 && ip6tables-save -t nat 2>/dev/null | grep -qE -- ${chainLines(chains)}; then`,
    ...jumps,
    ...flush,
    "  fi",
    removeBase.trimEnd().replace(/^/gm, "  "),
    "}",
    "",
  ].join("\n");
}

/**
 * loopbackIPs with a 127.0.0.0/8 address. Reads STATE_DIR, RULE_NAME, LOCALNET_DESTINATIONS. A connection the
 * host makes to 127.0.0.1 and that we DNAT leaves by the device its destination is routed through, and the
 * kernel drops loopback sources there unless that device has route_localnet=1. Defines:
 * - `localnet_apply`: sets it on exactly those devices (recording each one's value before the first NatRule
 *   of ours set it, in STATE_DIR/localnet/DEVICE), and puts back the devices an earlier apply set that no
 *   NatRule of ours needs any more;
 * - `localnet_restore`: puts back every device of this NatRule no other one needs;
 * - `localnet_snapshot`: prints each destination's device and its route_localnet (part of `snapshot`).
 */
const LOCALNET = String.raw`localnet_device() {
  dev=$(ip -o route get "$1" 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p')
  [ "$dev" = lo ] && dev=
  echo "$dev"
}
localnet_snapshot() {
  for dest in $LOCALNET_DESTINATIONS; do
    dev=$(localnet_device "$dest")
    [ -n "$dev" ] || dev=none
    echo "localnet $dest $dev $(cat "/proc/sys/net/ipv4/conf/$dev/route_localnet" 2>/dev/null || echo -)"
  done
}
localnet_put_back() {
  for dev in "$@"; do
    cat "$STATE_DIR"/*.localnet 2>/dev/null | grep -qx -- "$dev" && continue
    if [ -f "$STATE_DIR/localnet/$dev" ]; then
      if [ -e "/proc/sys/net/ipv4/conf/$dev/route_localnet" ]; then cat "$STATE_DIR/localnet/$dev" > "/proc/sys/net/ipv4/conf/$dev/route_localnet"; fi
      rm -f "$STATE_DIR/localnet/$dev"
    fi
  done
}
localnet_apply() {
  record="$STATE_DIR/$RULE_NAME.localnet"
  before=$(cat "$record" 2>/dev/null || true)
  mkdir -p "$STATE_DIR/localnet"
  : > "$record.new"
  for dest in $LOCALNET_DESTINATIONS; do
    dev=$(localnet_device "$dest")
    [ -n "$dev" ] || continue
    [ -f "$STATE_DIR/localnet/$dev" ] || cat "/proc/sys/net/ipv4/conf/$dev/route_localnet" > "$STATE_DIR/localnet/$dev"
    echo 1 > "/proc/sys/net/ipv4/conf/$dev/route_localnet"
    grep -qx -- "$dev" "$record.new" || echo "$dev" >> "$record.new"
  done
  if [ -s "$record.new" ]; then mv -f "$record.new" "$record"; else rm -f "$record.new" "$record"; fi
  # shellcheck disable=SC2086 # one device name per word
  localnet_put_back $before
}
localnet_restore() {
  record="$STATE_DIR/$RULE_NAME.localnet"
  [ -f "$record" ] || return 0
  before=$(cat "$record")
  rm -f "$record"
  # shellcheck disable=SC2086 # one device name per word
  localnet_put_back $before
}
`;

/**
 * Reads RULE_NAME, STATE_DIR, `now` (our rules as `snapshot` prints them now) and what `forward_blockers`
 * reads. Prints the observation every NatRule script ends with:
 * live=applied|altered|missing (our rules now, against the snapshot recorded at apply), recorded=1|0 (the
 * host-side record of this NatRule), forwarding=1|0 (net.ipv4.conf.all.forwarding) and forwardBlockedBy (the
 * forward hooks that would drop our traffic, "; "-separated).
 */
const REPORT = String.raw`if ! printf '%s\n' "$now" | grep -qv -e '^localnet ' -e '^$'; then ${shell.result("live", "missing")}
elif [ -f "$STATE_DIR/$RULE_NAME.applied" ] && [ "$now" = "$(cat "$STATE_DIR/$RULE_NAME.applied")" ]; then ${shell.result("live", "applied")}
else ${shell.result("live", "altered")}; fi
if [ -f "$STATE_DIR/$RULE_NAME.rule" ]; then ${shell.result("recorded", "1")}; else ${shell.result("recorded", "0")}; fi
${shell.result("forwarding", "$(cat /proc/sys/net/ipv4/conf/all/forwarding)")}
${shell.result("forwardBlockedBy", "$(forward_blockers | tr '\\n' ';' | sed 's/;$//; s/;/; /g')")}`;

/** The IPv6 part of the report: forwarding6=1|0 (net.ipv6.conf.all.forwarding; 0 without IPv6). */
const REPORT6 = shell.result(
  "forwarding6",
  "$(cat /proc/sys/net/ipv6/conf/all/forwarding 2>/dev/null || echo 0)",
);

/**
 * The report's lines; `now` is the snapshot an apply just recorded (in APPLIED: not taken again), else taken
 * here.
 */
function report(spec: NatSpec, applied = false): string[] {
  const now = applied ? "now=$APPLIED" : "now=$(snapshot)";
  return spec.ipv6 === undefined ? [now, REPORT] : [now, REPORT, REPORT6];
}

/**
 * Reads RULE_NAME, STATE_DIR (and what `snapshot` reads). Refuses when a NatRule of this name is already on
 * the host: recorded, or with rules in our table or chains of that name. (A marker whose object is gone is
 * stale, and the create's own marker replaces it.)
 */
const NAME_FREE = String.raw`if [ -f "$STATE_DIR/$RULE_NAME.rule" ] || snapshot | grep -qv -e '^localnet ' -e '^$'; then
  echo "${MARK.clash} a NatRule named $RULE_NAME is already on the host (recorded in $STATE_DIR/$RULE_NAME.rule): give this one another name, or delete the other" >&2
  exit ${EXIT.refused}
fi
`;

/** The tools, function definitions and steps that apply a NatRule (host scripts and the boot unit alike). */
function applySteps(spec: NatSpec): { tools: string[]; definitions: string[]; steps: string[] } {
  const v6 = spec.ipv6;
  const definitions = [snapshotFunction(spec), FORWARD, LOCALNET, ...(v6 ? [FORWARD6, FORWARDING6] : [])];
  const finish = [
    FORWARDING_ON,
    "apply_forward",
    "localnet_apply",
    ...(v6 ? ["forwarding6_on", "apply_forward6"] : []),
  ];
  if (spec.backend === "nftables") {
    return {
      tools: ["ip", "flock", "nft"],
      definitions,
      // Checked first, then loaded: `nft -f` applies the whole file (both families) in one transaction.
      steps: [
        `printf '%s\\n' "$RULESET" | nft -c -f - >&2`,
        `printf '%s\\n' "$RULESET" | nft -f -`,
        ...finish,
      ],
    };
  }
  const rendered = renderIptables(spec);
  const rendered6 = renderIptables6(spec);
  const nat6 =
    rendered6 === undefined
      ? []
      : [
          RECORD_ABSENT_BASE_CHAINS6,
          `printf '%s\\n' "$RULESET6" | ip6tables-restore -w --test --noflush >&2`,
          `printf '%s\\n' "$RULESET6" | ip6tables-restore -w --noflush`,
          ...rendered6.jumps.map(
            (jump) =>
              `${quoteArgv(iptablesJumpArgv(jump, "-C", "ip6tables"))} 2>/dev/null || ${quoteArgv(iptablesJumpArgv(jump, "-I", "ip6tables"))}`,
          ),
        ];
  return {
    tools: [
      "ip",
      "flock",
      "iptables",
      "iptables-restore",
      "iptables-save",
      ...(rendered6 === undefined ? [] : ["ip6tables", "ip6tables-restore", "ip6tables-save"]),
    ],
    definitions,
    steps: [
      RECORD_ABSENT_BASE_CHAINS,
      `printf '%s\\n' "$RULESET" | iptables-restore -w --test --noflush >&2`,
      `printf '%s\\n' "$RULESET" | iptables-restore -w --noflush`,
      ...rendered.jumps.map(
        (jump) =>
          `${quoteArgv(iptablesJumpArgv(jump, "-C"))} 2>/dev/null || ${quoteArgv(iptablesJumpArgv(jump, "-I"))}`,
      ),
      ...nat6,
      ...finish,
    ],
  };
}

/** The rules text the spec's backend loads (RULESET; the ip6tables half is RULESET6). */
function rulesetOf(spec: NatSpec): string {
  return spec.backend === "nftables" ? renderNftAll(spec) : renderIptables(spec).restore;
}

/**
 * What an update removes after applying, when the new spec no longer has it: NAT66 (ip6 table or chains), and
 * without IPv6 at all the IPv6 forward chain and this rule's IPv6 forwarding record (forwarding put back when
 * it was our last IPv6 rule).
 */
function ipv6Cleanup(spec: NatSpec): { definitions: string[]; steps: string[] } {
  const v6 = spec.ipv6;
  return {
    definitions: [removeNat6(spec), ...(v6 ? [] : [FORWARD6, FORWARDING6])],
    steps: [
      ...(v6?.mode === "nat66" ? [] : ["remove_nat6"]),
      ...(v6 ? [] : ["remove_forward6", "forwarding6_release"]),
    ],
  };
}

/**
 * Applies the rules (one `nft -f` transaction, or our chains and jumps), forwarding on, and records them. A
 * create marks them ours once its checks pass; an update goes on only with rules that are ours.
 */
function applyScript(spec: NatSpec, owner: shell.Ownership, create: boolean): string {
  const { tools, definitions, steps } = applySteps(spec);
  const preflight6 = spec.ipv6 ? ["ipv6_preflight"] : [];
  const ownership = create
    ? [NAME_FREE, EXTERNAL_EXISTS, ...preflight6, "refuse_blocked", "claim"]
    : ["require_ours", EXTERNAL_EXISTS, ...preflight6, "refuse_blocked"];
  const cleanup = create ? { definitions: [], steps: [] } : ipv6Cleanup(spec);
  return shell.changingScript(
    tools,
    ownedVars(spec, owner, rulesetOf(spec)),
    ...definitions,
    ...cleanup.definitions,
    forwardBlockers(spec),
    ...ownership,
    ...steps,
    ...cleanup.steps,
    // Recorded and reported from one snapshot.
    "APPLIED=$(snapshot)",
    `printf '%s\\n' "$APPLIED" > "$STATE_DIR/$RULE_NAME.applied"`,
    ...report(spec, true),
    "report_owner",
  );
}

/**
 * What the NatRule's boot unit runs (see persistence): the same steps as an update, under the same host lock,
 * without the ownership checks (the unit is ours, written by the last create or update) and without a report.
 */
export function natRestoreScript(spec: NatSpec): string {
  const { tools, definitions, steps } = applySteps(spec);
  return shell.script(
    shell.PRELUDE,
    shell.need(...tools),
    vars(spec, rulesetOf(spec)),
    shell.LOCKS,
    ...definitions,
    ...steps,
  );
}

/** A create: refuses when a NatRule of this name is already on the host (another stack, or one state lost). */
export function natCreateScript(spec: NatSpec, owner: shell.Ownership): string {
  return applyScript(spec, owner, true);
}

/** An update: replaces our rules with the spec's. */
export function natUpdateScript(spec: NatSpec, _previous: unknown, owner: shell.Ownership): string {
  return applyScript(spec, owner, false);
}

/** Reports whether our rules are as applied, the host-side record, and forwarding; changes nothing. */
export function natReadScript(spec: NatSpec, owner: shell.Ownership): string {
  return shell.reportingScript(
    ownedVars(spec, owner),
    snapshotFunction(spec),
    FORWARD,
    ...(spec.ipv6 ? [FORWARD6] : []),
    LOCALNET,
    forwardBlockers(spec),
    ...report(spec),
    "report_owner",
  );
}

/** What a NatRule script reports. */
export interface ObservedNat {
  readonly live: "applied" | "altered" | "missing";
  readonly recorded: boolean;
  readonly forwarding: boolean;
  /** net.ipv6.conf.all.forwarding, reported by rules with IPv6 only. */
  readonly forwarding6?: boolean;
  /** The forward hooks that would drop the NatRule's traffic (empty when none does). */
  readonly forwardBlockedBy: string[];
}

export function observeNat(results: Readonly<Record<string, string>>): ObservedNat {
  const live = results.live === "applied" || results.live === "altered" ? results.live : "missing";
  const blockers = results.forwardBlockedBy ? results.forwardBlockedBy.split("; ") : [];
  return {
    live,
    recorded: results.recorded === "1",
    forwarding: results.forwarding === "1",
    ...(results.forwarding6 === undefined ? {} : { forwarding6: results.forwarding6 === "1" }),
    forwardBlockedBy: blockers,
  };
}

/**
 * Removes our rules, forward chain, route_localnet settings, record and marker if they are ours (else reports
 * what it left and why), and sets forwarding back when this was our last NatRule on the host. Succeeds when
 * already gone.
 */
export function natDeleteScript(spec: NatSpec, owner: shell.Ownership): string {
  const lines = [
    snapshotFunction(spec),
    FORWARD,
    LOCALNET,
    "if ! ours; then",
    `  if [ -f "$STATE_DIR/$RULE_NAME.rule" ] || snapshot | grep -qv -e '^localnet ' -e '^$'; then ${shell.result("leftBehind", "the rules and record of NatRule $RULE_NAME: $(not_ours)")}; fi`,
    "  exit 0",
    "fi",
  ];
  if (spec.backend === "nftables") {
    lines.push(
      'if command -v nft >/dev/null 2>&1 && nft list table ip "$TABLE_NAME" >/dev/null 2>&1; then nft delete table ip "$TABLE_NAME"; fi',
    );
  } else {
    lines.push("if command -v iptables >/dev/null 2>&1; then");
    // A jump inserted twice (by hand or an old bug) needs deleting twice: loop while it is found.
    for (const jump of iptablesJumps(spec.name)) {
      lines.push(
        `  while ${quoteArgv(iptablesJumpArgv(jump, "-C"))} 2>/dev/null; do ${quoteArgv(iptablesJumpArgv(jump, "-D"))}; done`,
      );
    }
    for (const argv of deleteIptables(spec).filter((a) => !a.includes("-D"))) {
      lines.push(`  ${quoteArgv(argv)} 2>/dev/null || true`);
    }
    lines.push(REMOVE_BASE_CHAINS_WE_CREATED, "fi");
  }
  // IPv6 pieces go whatever the spec says (cheap listings when there are none): an update cut short may have left them.
  lines.push(
    "remove_forward",
    "remove_nat6",
    "remove_forward6",
    "forwarding6_release",
    "localnet_restore",
    FORWARDING_RESTORE,
    'rm -f "$OWNER_MARKER"',
  );
  return shell.changingScript(
    ["flock"],
    ownedVars(spec, owner),
    removeNat6(spec),
    FORWARD6,
    FORWARDING6,
    ...lines,
  );
}
