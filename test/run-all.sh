#!/usr/bin/env bash
# The project's whole test run (what `npm test` and CI run): build, static checks, unit tests, then the lab
# tests against real sshd hosts in network namespaces (needs root: the lab installs its Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

# Each vitest run also writes a JSON report, so the last line can sum up every test that ran.
REPORTS=$(mktemp -d)
trap 'rm -rf "$REPORTS"' EXIT
vt() {
  local name=$1
  shift
  npx vitest run "$@" --reporter=default --reporter=json --outputFile="$REPORTS/$name.json"
}
summary() {
  node -e '
    const fs = require("fs");
    let passed = 0, failed = 0;
    for (const f of fs.readdirSync(process.argv[1]).filter((f) => f.endsWith(".json"))) {
      const r = JSON.parse(fs.readFileSync(process.argv[1] + "/" + f, "utf8"));
      passed += r.numPassedTests; failed += r.numFailedTests;
    }
    const stand = Number(process.argv[2] || 0);
    console.log(`tests: ${passed + stand} passed, ${failed} failed`);
  ' "$REPORTS" "${1:-0}"
}

step "build"
npx tsc -p tsconfig.json
step "typecheck (tsc --noEmit)"
npx tsc --noEmit -p tsconfig.check.json
step "lint (eslint with @pulumi/eslint-plugin)"
npx eslint .
step "format (prettier --check)"
npx prettier --check .
step "unit tests"
vt unit --project unit

if [[ $(id -u) -ne 0 ]]; then
  echo "lab tests skipped: they need root (network namespaces, mounts); run 'sudo npm test'" >&2
  exit 1
fi
step "nixos-container stand-in self-test"
# (Not `tee /dev/stderr`: when stderr is a log file, opening it again truncates the log.)
status=0
bash test/lab/nixos-container.test.sh > "$REPORTS/standin.txt" 2>&1 || status=$?
cat "$REPORTS/standin.txt"
[[ $status -eq 0 ]] || exit "$status"
standin=$(sed -n 's/^\([0-9]*\) passed, 0 failed$/\1/p' "$REPORTS/standin.txt" | tail -1)
step "lab lifecycle (up/down three times leaves nothing behind)"
vt lifecycle --project lab-lifecycle
lab_was_up=0
bash test/lab/lab status >/dev/null 2>&1 && lab_was_up=1
step "lab tests (SSH layer and resources through the real provider host)"
vt lab --project lab

if [[ $lab_was_up -eq 0 ]]; then
  step "nothing left behind: no process in another network namespace, no lab namespace, mount or helper"
  self_ns=$(readlink /proc/self/ns/net)
  init_ns=$(readlink /proc/1/ns/net 2>/dev/null || echo "$self_ns")
  left=$(
    for p in /proc/[0-9]*; do
      ns=$(readlink "$p/ns/net" 2>/dev/null) || continue
      [[ $ns == "$self_ns" || $ns == "$init_ns" ]] || echo "process ${p#/proc/} in $ns: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-120)"
    done
    ip netns list | sed 's/^/network namespace /'
    grep -E ' /tmp/pnc-|pnc-lab' /proc/self/mountinfo | sed 's/^/mount /' || true
    ps -eo pid=,args= | grep -E 'SOCAT_PEERADDR|cmd/dynamic-provider|test/lab/relay\.js' | grep -v grep | sed 's/^/process /' || true
  )
  if [[ -n $left ]]; then
    printf 'left behind by the tests:\n%s\n' "$left" >&2
    exit 1
  fi
  echo "nothing left behind"
fi
summary "${standin:-0}"
