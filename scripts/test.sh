#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up (system packages, dependencies,
# UI build), typecheck, then every test against real nats-server, SQLite and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p test-artifacts
echo "test: typecheck"
node_modules/.bin/tsc -p tsconfig.json --noEmit
if [ -f ui/package.json ] && grep -q '"check"' ui/package.json; then
  echo "test: ui check"
  bash scripts/pnpm.sh --filter @troupe/ui check
fi
echo "test: vitest"
status=0
node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json=test-artifacts/vitest.json "$@" || status=$?
# One plain closing line that any CI reads.
node -e '
  const r = require("./test-artifacts/vitest.json");
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' || true
exit "$status"
