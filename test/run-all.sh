#!/usr/bin/env bash
# The project's whole test run (what `npm test` and CI run): build, static checks, unit tests, then the lab
# tests against real sshd hosts in network namespaces (needs root: the lab installs its Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "build"
npx tsc -p tsconfig.json
step "typecheck (tsc --noEmit)"
npx tsc --noEmit -p tsconfig.check.json
step "lint (eslint with @pulumi/eslint-plugin)"
npx eslint .
step "format (prettier --check)"
npx prettier --check .
step "unit tests"
npx vitest run --project unit

if [[ $(id -u) -ne 0 ]]; then
  echo "lab tests skipped: they need root (network namespaces, mounts); run 'sudo npm test'" >&2
  exit 1
fi
step "nixos-container stand-in self-test"
bash test/lab/nixos-container.test.sh
step "lab lifecycle (up/down three times leaves nothing behind)"
npx vitest run --project lab-lifecycle
step "lab tests (SSH layer and resources through the real provider host)"
npx vitest run --project lab
