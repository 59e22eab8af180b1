// Host scripts for NatRule: apply our own nftables table or iptables chains atomically, turn IPv4 forwarding on
// (and back off when our last NatRule on the host goes), record what was applied so `read` can spot a flush.
import {
  iptablesChainNames,
  iptablesJumpArgv,
  iptablesJumps,
  renderIptables,
  deleteIptables,
} from "../core/iptablesRenderer";
import { NatSpec } from "../core/natModel";
import { nftTableName, renderNft } from "../core/nftRenderer";
import { quoteArgv } from "../ssh/quote";
import { LOCKS, PRELUDE, assignments, parseResults } from "./script";

/** Host-side records of our NatRules (one file each), and the forwarding setting found before the first. */
const STATE_DIR = "/var/lib/pulumi-nixos-containers/nat";

/** Prints our live rules in a stable form: the table listing, or our chains and jumps from iptables-save. */
function snapshotFunction(spec: Pick<NatSpec, "id" | "backend">): string {
  if (spec.backend === "nftables") {
    return String.raw`snapshot() { nft list table ip "$TABLE" 2>/dev/null || true; }
`;
  }
  const chains = Object.values(iptablesChainNames(spec.id));
  const pattern = chains.map((c) => c.replace(/[.+-]/g, "\\$&")).join("|");
  return `snapshot() { iptables-save -t nat 2>/dev/null | grep -E -- ${quoteArgv([`(^:|-j |^-A )(${pattern})( |$)`])} | sed 's/ \\[[0-9]*:[0-9]*\\]$//' || true; }
`;
}

function vars(spec: NatSpec | Pick<NatSpec, "id" | "backend">, rules = "", ext = ""): string {
  return assignments({ ID: spec.id, TABLE: nftTableName(spec.id), RULES: rules, EXT: ext, STATE_DIR });
}

const FORWARDING_ON = String.raw`mkdir -p "$STATE_DIR"
if ! ls "$STATE_DIR"/*.rule >/dev/null 2>&1; then
  printf '%s %s\n' "$(cat /proc/sys/net/ipv4/conf/all/forwarding)" "$(cat /proc/sys/net/ipv4/conf/default/forwarding)" > "$STATE_DIR/forwarding-before"
fi
: > "$STATE_DIR/$ID.rule"
echo 1 > /proc/sys/net/ipv4/conf/all/forwarding
echo 1 > /proc/sys/net/ipv4/conf/default/forwarding
`;

/** Only when no NatRule of ours remains on the host is forwarding set back to what it was before the first. */
const FORWARDING_RESTORE = String.raw`rm -f "$STATE_DIR/$ID.rule" "$STATE_DIR/$ID.applied"
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
if [ ! -f "$STATE_DIR/$ID.created" ]; then
  : > "$STATE_DIR/$ID.created.tmp"
  if iptables -V 2>/dev/null | grep -q nf_tables && command -v nft >/dev/null 2>&1; then
    nft list table ip nat >/dev/null 2>&1 || echo "table nat" >> "$STATE_DIR/$ID.created.tmp"
    for c in PREROUTING POSTROUTING OUTPUT; do
      nft list chain ip nat "$c" >/dev/null 2>&1 || echo "chain $c" >> "$STATE_DIR/$ID.created.tmp"
    done
  fi
  mv -f "$STATE_DIR/$ID.created.tmp" "$STATE_DIR/$ID.created"
fi
`;

const REMOVE_BASE_CHAINS_WE_CREATED = String.raw`if [ -f "$STATE_DIR/$ID.created" ]; then
  while read -r kind what; do
    if [ "$kind" = chain ] && [ "$(iptables -w -t nat -S "$what" 2>/dev/null | grep -vc '^-P ')" = 0 ]; then
      nft delete chain ip nat "$what" 2>/dev/null || true
    fi
  done < "$STATE_DIR/$ID.created"
  if grep -qx "table nat" "$STATE_DIR/$ID.created" && ! nft list table ip nat 2>/dev/null | grep -qE '^[[:space:]]+(chain|set|map) '; then
    nft delete table ip nat 2>/dev/null || true
  fi
  rm -f "$STATE_DIR/$ID.created"
fi
`;

const EXTERNAL_EXISTS = String.raw`if ! ip link show dev "$EXT" >/dev/null 2>&1; then
  echo "PNC-CLASH external interface $EXT does not exist on the host (it has: $(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); printf "%s ", $2 }'))" >&2
  echo "PNC-NOTHING-CHANGED" >&2
  exit 3
fi
`;

/**
 * @param fresh a create: refuse when a NatRule of this name is already on the host (another stack, or a
 * resource that state lost), instead of replacing its rules.
 */
export function natApplyScript(spec: NatSpec, fresh = false): string {
  const lines = [PRELUDE];
  const nameFree = fresh
    ? String.raw`if [ -f "$STATE_DIR/$ID.rule" ]; then
  echo "PNC-CLASH a NatRule named $ID is already on the host (recorded in $STATE_DIR/$ID.rule): give this one another name, or delete the other" >&2
  echo "PNC-NOTHING-CHANGED" >&2
  exit 3
fi
`
    : "";
  if (spec.backend === "nftables") {
    lines.push(
      "need ip flock nft",
      vars(spec, renderNft(spec), spec.externalInterface),
      LOCKS,
      nameFree,
      EXTERNAL_EXISTS,
    );
    lines.push(snapshotFunction(spec));
    // Checked first, then loaded: `nft -f` applies the whole file in one transaction.
    lines.push(`printf '%s\\n' "$RULES" | nft -c -f - >&2`, `printf '%s\\n' "$RULES" | nft -f -`);
  } else {
    const rendered = renderIptables(spec);
    lines.push(
      "need ip flock iptables iptables-restore iptables-save",
      vars(spec, rendered.restore, spec.externalInterface),
      LOCKS,
      nameFree,
      EXTERNAL_EXISTS,
    );
    lines.push(snapshotFunction(spec), RECORD_ABSENT_BASE_CHAINS);
    lines.push(
      `printf '%s\\n' "$RULES" | iptables-restore -w --test --noflush >&2`,
      `printf '%s\\n' "$RULES" | iptables-restore -w --noflush`,
    );
    for (const jump of rendered.jumps) {
      lines.push(
        `${quoteArgv(iptablesJumpArgv(jump, "-C"))} 2>/dev/null || ${quoteArgv(iptablesJumpArgv(jump, "-I"))}`,
      );
    }
  }
  lines.push(
    FORWARDING_ON,
    'snapshot > "$STATE_DIR/$ID.applied"',
    'echo "PNC-RESULT forwarding=$(cat /proc/sys/net/ipv4/conf/all/forwarding)"',
  );
  return lines.join("\n");
}

export function natReadScript(spec: Pick<NatSpec, "id" | "backend">): string {
  return [
    PRELUDE,
    vars(spec),
    snapshotFunction(spec),
    "now=$(snapshot)",
    'if [ -z "$now" ]; then echo "PNC-RESULT live=missing"',
    'elif [ -f "$STATE_DIR/$ID.applied" ] && [ "$now" = "$(cat "$STATE_DIR/$ID.applied")" ]; then echo "PNC-RESULT live=applied"',
    'else echo "PNC-RESULT live=altered"; fi',
    'if [ -f "$STATE_DIR/$ID.rule" ]; then echo "PNC-RESULT recorded=1"; else echo "PNC-RESULT recorded=0"; fi',
    'echo "PNC-RESULT forwarding=$(cat /proc/sys/net/ipv4/conf/all/forwarding)"',
  ].join("\n");
}

export interface ObservedNat {
  readonly live: "applied" | "altered" | "missing";
  readonly recorded: boolean;
  readonly forwarding: boolean;
}

export function parseNatRead(stdout: string): ObservedNat {
  const r = parseResults(stdout);
  const live = r.live === "applied" || r.live === "altered" ? r.live : "missing";
  return { live, recorded: r.recorded === "1", forwarding: r.forwarding === "1" };
}

export function natDeleteScript(spec: Pick<NatSpec, "id" | "backend">): string {
  const lines = [PRELUDE, "need flock", vars(spec), LOCKS];
  if (spec.backend === "nftables") {
    lines.push(
      'if command -v nft >/dev/null 2>&1 && nft list table ip "$TABLE" >/dev/null 2>&1; then nft delete table ip "$TABLE"; fi',
    );
  } else {
    lines.push("if command -v iptables >/dev/null 2>&1; then");
    // A jump inserted twice (by hand or an old bug) needs deleting twice: loop while it is found.
    for (const jump of iptablesJumps(spec.id)) {
      lines.push(
        `  while ${quoteArgv(iptablesJumpArgv(jump, "-C"))} 2>/dev/null; do ${quoteArgv(iptablesJumpArgv(jump, "-D"))}; done`,
      );
    }
    for (const argv of deleteIptables(spec).filter((a) => !a.includes("-D"))) {
      lines.push(`  ${quoteArgv(argv)} 2>/dev/null || true`);
    }
    lines.push(REMOVE_BASE_CHAINS_WE_CREATED, "fi");
  }
  lines.push(FORWARDING_RESTORE);
  return lines.join("\n");
}
