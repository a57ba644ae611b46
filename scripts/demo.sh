#!/usr/bin/env bash
# Sets everything up and runs the whole stack with live demo data on http://localhost:3000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node bin/troupe.mjs up --demo "$@"
