// Builds the batched shell scripts sent to a host in one round trip. User values enter a script only as
// variable assignments quoted by the one quoting function; the script bodies below are fixed text.
import { randomBytes } from "node:crypto";
import { quoteArg } from "../ssh/quote";

/** `NAME='value'` lines for a script's inputs. Names are ours (fixed identifiers), values are quoted. */
export function assignments(vars: Readonly<Record<string, string | number | boolean | undefined>>): string {
  return Object.entries(vars)
    .map(([key, value]) => {
      if (!/^[A-Z_][A-Z0-9_]*$/.test(key)) throw new Error(`internal: bad script variable name ${key}`);
      const text =
        value === undefined ? "" : typeof value === "boolean" ? (value ? "1" : "0") : String(value);
      return `${key}=${quoteArg(text)}`;
    })
    .join("\n");
}

/** Strict mode, a PATH that finds tools on NixOS and Debian alike, and the preflight for missing tools. */
export const PRELUDE = String.raw`set -eu
PATH=/run/wrappers/bin:/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "PNC-MISSING $tool" >&2; exit 69; }
  done
}
`;

/**
 * Locks: our own lock serialises every change this package makes on a host (across stacks and processes);
 * the nixos-container lock is the one `nixos-container create` takes, so hand-run creates wait for us too.
 */
export const LOCKS = String.raw`mkdir -p /run/lock
exec 8>>/run/lock/pulumi-nixos-containers
flock -w 120 8 || { echo "PNC-LOCK timed out after 120 s waiting for /run/lock/pulumi-nixos-containers" >&2; exit 75; }
exec 9>>/run/lock/nixos-container
flock -w 120 9 || { echo "PNC-LOCK timed out after 120 s waiting for /run/lock/nixos-container" >&2; exit 75; }
`;

/**
 * Lists every IPv4 address in use on the host, one "ADDRESS<TAB>HOLDER" per line: nixos-container confs
 * (both layouts), addresses of the host, addresses inside every named network namespace, and host routes to
 * single addresses (how a running container's address shows on the host). With OWN_NAME/OWN_IF set, holders
 * that are that container itself are left out (for updates and repairs).
 */
export const USED_ADDRESSES = String.raw`used_addresses() {
  set --
  for conf in /etc/nixos-containers/*.conf /etc/containers/*.conf; do
    [ -f "$conf" ] && set -- "$@" "$conf"
  done
  # One awk for every conf (podman's files in /etc/containers have no such lines and yield nothing).
  [ $# -eq 0 ] || awk -v own="$OWN_NAME" '
    FNR == 1 { name = FILENAME; sub(/.*\//, "", name); sub(/\.conf$/, "", name) }
    /^(HOST|LOCAL)_ADDRESS=/ && name != own {
      v = $0; sub(/^[A-Z_]*=/, "", v); sub(/\/.*/, "", v)
      if (v ~ /^[0-9.]+$/) printf "%s\tnixos container \"%s\" (%s)\n", v, name, FILENAME
    }' "$@"
  ip -o -4 addr show | awk -v own="$OWN_IF" '{ split($4, a, "/"); sub(/@.*/, "", $2); if ($2 != own) printf "%s\thost interface %s\n", a[1], $2 }'
  if [ -d /run/netns ]; then
    cd /run/netns
    for ns in *; do
      [ -e "$ns" ] || continue
      [ "$ns" = "$OWN_NAME" ] && continue
      # Namespaces we made hold exactly the addresses their ve- link and host route show above: no need to
      # enter each one (that scan grew with every container on the host).
      [ -e "/run/pulumi-nixos-containers/netns/$ns" ] && continue
      ip -n "$ns" -o -4 addr show 2>/dev/null |
        awk -v ns="$ns" '{ split($4, a, "/"); sub(/@.*/, "", $2); printf "%s\tinterface %s in network namespace \"%s\"\n", a[1], $2, ns }'
    done
    cd /
  fi
  ip -4 route show scope link 2>/dev/null |
    awk -v own="$OWN_IF" '$1 !~ /\// && $1 != "default" && $2 == "dev" && $3 != own { printf "%s\thost route to it via %s\n", $1, $3 }'
}
# clash_check ADDRESS...: prints "PNC-CLASH ..." for each address in $USED (set USED=$(used_addresses) once
# under the lock; a batch adds what it makes); returns 1 if any is held.
clash_check() {
  awk -F '\t' -v want=" $* " 'index(want, " " $1 " ") && !seen[$0]++ { printf "PNC-CLASH address %s is already held by %s\n", $1, $2; found = 1 } END { exit found }' >&2 <<PNC_USED
$USED
PNC_USED
}
# allocate_block: the lowest N in 1..254 with 10.233.N.1 and 10.233.N.2 both free (nixos-container's layout).
allocate_block() {
  used=$(printf '%s\n' "$USED" | cut -f1)
  n=1
  while [ $n -le 254 ]; do
    if ! printf '%s\n' "$used" | grep -qx "10\.233\.$n\.[12]"; then
      echo "$n"
      return 0
    fi
    n=$((n + 1))
  done
  echo "PNC-CLASH no free 10.233.N.0/24 block is left on the host (out of IP addresses)" >&2
  return 1
}
`;

/** Parses the `PNC-RESULT key=value` lines a script prints on stdout. */
export function parseResults(stdout: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const m = /^PNC-RESULT ([A-Za-z_]+)=(.*)$/.exec(line);
    if (m) result[m[1]] = m[2];
  }
  return result;
}

/** The `PNC-CLASH …` lines a script printed on stderr. */
export function clashesIn(stderr: string): string[] {
  return stderr
    .split("\n")
    .filter((l) => l.startsWith("PNC-CLASH "))
    .map((l) => l.slice("PNC-CLASH ".length));
}

/** A missing tool named by a `PNC-MISSING tool` line, if any. */
export function missingToolIn(stderr: string): string | undefined {
  const m = /^PNC-MISSING (\S+)$/m.exec(stderr);
  return m?.[1];
}

/** One item's share of a batch's output (`PNC-ITEM <i> out|err|rc …` lines), as if it had run alone. */
export interface BatchItemResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

/** A fresh marker for one batch: an item's own output cannot forge the lines that separate items. */
export function batchMark(): string {
  return randomBytes(8).toString("hex");
}

export function parseBatch(stdout: string, count: number, mark: string): BatchItemResult[] {
  const marker = new RegExp(`^PNC-ITEM-${mark}-(OUT|ERR|END) (\\d+)(?: (-?\\d+))?$`);
  const out: string[][] = Array.from({ length: count }, () => []);
  const err: string[][] = Array.from({ length: count }, () => []);
  const codes: (number | undefined)[] = Array.from({ length: count }, () => undefined);
  let current: string[] | undefined;
  for (const line of stdout.split("\n")) {
    const m = marker.exec(line);
    if (!m) {
      current?.push(line);
      continue;
    }
    const i = Number(m[2]);
    if (i >= count) {
      current = undefined;
    } else if (m[1] === "OUT") {
      current = out[i];
    } else if (m[1] === "ERR") {
      current = err[i];
    } else {
      codes[i] = Number(m[3]);
      current = undefined;
    }
  }
  const text = (lines: string[]): string => (lines.length > 0 ? `${lines.join("\n")}\n` : "");
  return out.map((lines, i) => ({
    stdout: text(lines),
    stderr: text(err[i]),
    // An item that never reported (the script died before it) did not run.
    code: codes[i] ?? -1,
  }));
}

/**
 * Shell function `report_item I RC`: prints item I's captured stdout and stderr ($TMPD/out, $TMPD/err) between
 * markers carrying $PNC_MARK (see batchMark), with shell builtins only (no process per item), in the form
 * parseBatch reads.
 */
export const REPORT_ITEM = String.raw`report_item() {
  echo "PNC-ITEM-$PNC_MARK-OUT $1"
  while IFS= read -r line || [ -n "$line" ]; do printf '%s
' "$line"; done < "$TMPD/out"
  echo "PNC-ITEM-$PNC_MARK-ERR $1"
  while IFS= read -r line || [ -n "$line" ]; do printf '%s
' "$line"; done < "$TMPD/err"
  echo "PNC-ITEM-$PNC_MARK-END $1 $2"
}
`;
