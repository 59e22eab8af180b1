#!/usr/bin/env bash
# `npm run try`: brings the local lab up (h2 with NetworkManager, hj behind h1, h3 with the stand-in
# nixos-container) and deploys the lab example through the real provider host, printing the network plan;
# the lab stays up afterwards (`bash test/lab/lab down` removes it).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash test/lab/lab up 3 --nm h2 --jump --nixos h3
PNC_LAB_KEEP=1 PNC_PRINT_PLAN=1 npx vitest run --project lab test/integration/fleet.test.ts
