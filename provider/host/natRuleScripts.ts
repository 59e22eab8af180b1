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
  renderIptables,
} from "../core/natRuleIptables";
import { NatSpec, forwardDestinations, isLoopback } from "../core/natRuleSpec";
import { nftTableName, renderNft } from "../core/natRuleNftables";
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
  localnet_snapshot
}
`;
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
    ].join(" "),
  });
}

/** What a NixOS user adds so that `networking.firewall.filterForward` lets the NatRule's traffic pass. */
function forwardAcceptHint(spec: NatSpec): string {
  const names = spec.internalInterfaces.map((m) => `"${m.name}${m.wildcard ? "*" : ""}"`);
  const rules = [
    ...(names.length === 0
      ? []
      : [`iifname { ${names.join(", ")} } oifname "${spec.externalInterface}" accept`]),
    ...spec.internalIPs.map((range) => `ip saddr ${range} oifname "${spec.externalInterface}" accept`),
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
 * Reads RULE_NAME, STATE_DIR (and what `snapshot` and `forward_blockers` read). Prints the observation every
 * NatRule script ends with: live=applied|altered|missing (our rules now, against the snapshot recorded at
 * apply), recorded=1|0 (the host-side record of this NatRule), forwarding=1|0 (net.ipv4.conf.all.forwarding)
 * and forwardBlockedBy (the forward hooks that would drop our traffic, "; "-separated).
 */
const REPORT = String.raw`now=$(snapshot)
if ! printf '%s\n' "$now" | grep -qv -e '^localnet ' -e '^$'; then ${shell.result("live", "missing")}
elif [ -f "$STATE_DIR/$RULE_NAME.applied" ] && [ "$now" = "$(cat "$STATE_DIR/$RULE_NAME.applied")" ]; then ${shell.result("live", "applied")}
else ${shell.result("live", "altered")}; fi
if [ -f "$STATE_DIR/$RULE_NAME.rule" ]; then ${shell.result("recorded", "1")}; else ${shell.result("recorded", "0")}; fi
${shell.result("forwarding", "$(cat /proc/sys/net/ipv4/conf/all/forwarding)")}
${shell.result("forwardBlockedBy", "$(forward_blockers | tr '\\n' ';' | sed 's/;$//; s/;/; /g')")}`;

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
  const definitions = [snapshotFunction(spec), FORWARD, LOCALNET];
  const finish = [FORWARDING_ON, "apply_forward", "localnet_apply"];
  if (spec.backend === "nftables") {
    return {
      tools: ["ip", "flock", "nft"],
      definitions,
      // Checked first, then loaded: `nft -f` applies the whole file in one transaction.
      steps: [
        `printf '%s\\n' "$RULESET" | nft -c -f - >&2`,
        `printf '%s\\n' "$RULESET" | nft -f -`,
        ...finish,
      ],
    };
  }
  const rendered = renderIptables(spec);
  return {
    tools: ["ip", "flock", "iptables", "iptables-restore", "iptables-save"],
    definitions,
    steps: [
      RECORD_ABSENT_BASE_CHAINS,
      `printf '%s\\n' "$RULESET" | iptables-restore -w --test --noflush >&2`,
      `printf '%s\\n' "$RULESET" | iptables-restore -w --noflush`,
      ...rendered.jumps.map(
        (jump) =>
          `${quoteArgv(iptablesJumpArgv(jump, "-C"))} 2>/dev/null || ${quoteArgv(iptablesJumpArgv(jump, "-I"))}`,
      ),
      ...finish,
    ],
  };
}

/** The rules text the spec's backend loads (RULESET). */
function rulesetOf(spec: NatSpec): string {
  return spec.backend === "nftables" ? renderNft(spec) : renderIptables(spec).restore;
}

/**
 * Applies the rules (one `nft -f` transaction, or our chains and jumps), forwarding on, and records them. A
 * create marks them ours once its checks pass; an update goes on only with rules that are ours.
 */
function applyScript(spec: NatSpec, owner: shell.Ownership, create: boolean): string {
  const { tools, definitions, steps } = applySteps(spec);
  const ownership = create
    ? [NAME_FREE, EXTERNAL_EXISTS, "refuse_blocked", "claim"]
    : ["require_ours", EXTERNAL_EXISTS, "refuse_blocked"];
  return shell.changingScript(
    tools,
    ownedVars(spec, owner, rulesetOf(spec)),
    ...definitions,
    FORWARD_BLOCKERS,
    ...ownership,
    ...steps,
    'snapshot > "$STATE_DIR/$RULE_NAME.applied"',
    REPORT,
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
    LOCALNET,
    FORWARD_BLOCKERS,
    REPORT,
    "report_owner",
  );
}

/** What a NatRule script reports. */
export interface ObservedNat {
  readonly live: "applied" | "altered" | "missing";
  readonly recorded: boolean;
  readonly forwarding: boolean;
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
  lines.push("remove_forward", "localnet_restore", FORWARDING_RESTORE, 'rm -f "$OWNER_MARKER"');
  return shell.changingScript(["flock"], ownedVars(spec, owner), ...lines);
}
