// Host scripts for NatRule: apply our own nftables table or iptables chains atomically, turn IPv4 forwarding on
// (and back off when our last NatRule on the host goes), record what was applied so `read` can spot a flush.
import {
  iptablesChainNames,
  iptablesJumpArgv,
  iptablesJumps,
  renderIptables,
  deleteIptables,
} from "../core/natRuleIptables";
import { NatSpec } from "../core/natRuleSpec";
import { nftTableName, renderNft } from "../core/natRuleNftables";
import { quoteArgv } from "../ssh/quote";
import { EXIT, MARK } from "./protocol";
import * as shell from "./shell";

/** Host-side records of our NatRules (one file each), and the forwarding setting found before the first. */
const STATE_DIR = "/var/lib/pulumi-nixos-containers/nat";

/** Prints our live rules in a stable form: the table listing, or our chains and jumps from iptables-save. */
function snapshotFunction(spec: Pick<NatSpec, "name" | "backend">): string {
  if (spec.backend === "nftables") {
    return String.raw`snapshot() { nft list table ip "$TABLE_NAME" 2>/dev/null || true; }
`;
  }
  const chains = Object.values(iptablesChainNames(spec.name));
  const pattern = chains.map((c) => c.replace(/[.+-]/g, "\\$&")).join("|");
  return `snapshot() { iptables-save -t nat 2>/dev/null | grep -E -- ${quoteArgv([`(^:|-j |^-A )(${pattern})( |$)`])} | sed 's/ \\[[0-9]*:[0-9]*\\]$//' || true; }
`;
}

function vars(spec: Pick<NatSpec, "name">, owner: shell.Ownership, rules = "", ext = ""): string {
  return shell.script(
    shell.assignments({
      RULE_NAME: spec.name,
      TABLE_NAME: nftTableName(spec.name),
      RULESET: rules,
      EXTERNAL_INTERFACE: ext,
      STATE_DIR,
    }),
    shell.ownerVariables(owner, "nat", spec.name),
  );
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
 * Reads RULE_NAME, STATE_DIR (and what `snapshot` reads). Prints the observation every NatRule script ends
 * with: live=applied|altered|missing (our rules now, against the snapshot recorded at apply), recorded=1|0
 * (the host-side record of this NatRule) and forwarding=1|0 (net.ipv4.conf.all.forwarding).
 */
const REPORT = String.raw`now=$(snapshot)
if [ -z "$now" ]; then ${shell.result("live", "missing")}
elif [ -f "$STATE_DIR/$RULE_NAME.applied" ] && [ "$now" = "$(cat "$STATE_DIR/$RULE_NAME.applied")" ]; then ${shell.result("live", "applied")}
else ${shell.result("live", "altered")}; fi
if [ -f "$STATE_DIR/$RULE_NAME.rule" ]; then ${shell.result("recorded", "1")}; else ${shell.result("recorded", "0")}; fi
${shell.result("forwarding", "$(cat /proc/sys/net/ipv4/conf/all/forwarding)")}`;

/**
 * Reads RULE_NAME, STATE_DIR (and what `snapshot` reads). Refuses when a NatRule of this name is already on
 * the host: recorded, or with rules in our table or chains of that name. (A marker whose object is gone is
 * stale, and the create's own marker replaces it.)
 */
const NAME_FREE = String.raw`if [ -f "$STATE_DIR/$RULE_NAME.rule" ] || [ -n "$(snapshot)" ]; then
  echo "${MARK.clash} a NatRule named $RULE_NAME is already on the host (recorded in $STATE_DIR/$RULE_NAME.rule): give this one another name, or delete the other" >&2
  exit ${EXIT.refused}
fi
`;

/**
 * Applies the rules (one `nft -f` transaction, or our chains and jumps), forwarding on, and records them. A
 * create marks them ours once its checks pass; an update goes on only with rules that are ours.
 */
function applyScript(spec: NatSpec, owner: shell.Ownership, create: boolean): string {
  const ownership = create ? [NAME_FREE, EXTERNAL_EXISTS, "claim"] : ["require_ours", EXTERNAL_EXISTS];
  const finish = [FORWARDING_ON, 'snapshot > "$STATE_DIR/$RULE_NAME.applied"', REPORT, "report_owner"];
  if (spec.backend === "nftables") {
    return shell.changingScript(
      ["ip", "flock", "nft"],
      vars(spec, owner, renderNft(spec), spec.externalInterface),
      snapshotFunction(spec),
      ...ownership,
      // Checked first, then loaded: `nft -f` applies the whole file in one transaction.
      `printf '%s\\n' "$RULESET" | nft -c -f - >&2`,
      `printf '%s\\n' "$RULESET" | nft -f -`,
      ...finish,
    );
  }
  const rendered = renderIptables(spec);
  return shell.changingScript(
    ["ip", "flock", "iptables", "iptables-restore", "iptables-save"],
    vars(spec, owner, rendered.restore, spec.externalInterface),
    snapshotFunction(spec),
    ...ownership,
    RECORD_ABSENT_BASE_CHAINS,
    `printf '%s\\n' "$RULESET" | iptables-restore -w --test --noflush >&2`,
    `printf '%s\\n' "$RULESET" | iptables-restore -w --noflush`,
    ...rendered.jumps.map(
      (jump) =>
        `${quoteArgv(iptablesJumpArgv(jump, "-C"))} 2>/dev/null || ${quoteArgv(iptablesJumpArgv(jump, "-I"))}`,
    ),
    ...finish,
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
export function natReadScript(spec: Pick<NatSpec, "name" | "backend">, owner: shell.Ownership): string {
  return shell.reportingScript(vars(spec, owner), snapshotFunction(spec), REPORT, "report_owner");
}

/** What a NatRule script reports. */
export interface ObservedNat {
  readonly live: "applied" | "altered" | "missing";
  readonly recorded: boolean;
  readonly forwarding: boolean;
}

export function observeNat(results: Readonly<Record<string, string>>): ObservedNat {
  const live = results.live === "applied" || results.live === "altered" ? results.live : "missing";
  return { live, recorded: results.recorded === "1", forwarding: results.forwarding === "1" };
}

/**
 * Removes our rules, record and marker if they are ours (else reports what it left and why), and sets
 * forwarding back when this was our last NatRule on the host. Succeeds when already gone.
 */
export function natDeleteScript(spec: Pick<NatSpec, "name" | "backend">, owner: shell.Ownership): string {
  const lines = [
    snapshotFunction(spec),
    "if ! ours; then",
    `  if [ -f "$STATE_DIR/$RULE_NAME.rule" ] || [ -n "$(snapshot)" ]; then ${shell.result("leftBehind", "the rules and record of NatRule $RULE_NAME: $(not_ours)")}; fi`,
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
  lines.push(FORWARDING_RESTORE, 'rm -f "$OWNER_MARKER"');
  return shell.changingScript(["flock"], vars(spec, owner), ...lines);
}
