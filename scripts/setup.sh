#!/usr/bin/env bash
# Installs everything Troupe needs on a Debian-like machine with Node 20+ and npm:
# system packages (nats-server, chromium, openssl for self-signed NATS TLS, redis-server for the peer benchmark) through apt-get when root, pnpm, and the
# workspace's npm dependencies. Downloads only from Debian's packages and the npm registry.
# Safe to run again: it only installs what is missing.
# `--worker`: a worker machine — only Chromium and the npm dependencies (no nats-server, redis-server or dashboard build).
set -euo pipefail
worker_only=false
for a in "$@"; do
  case "$a" in
    --worker) worker_only=true ;;
    *) echo "setup: unknown argument $a (only --worker)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."

PNPM_VERSION=12.4.2
say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

# --- Node ---------------------------------------------------------------
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
node_minor=$(node -p 'process.versions.node.split(".")[1]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ] || { [ "$node_major" -eq 20 ] && [ "$node_minor" -lt 19 ]; }; then
  echo "setup: Node.js 20.19 or newer is required (found $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

# --- system packages ----------------------------------------------------
find_chromium() {
  if [ -n "${TROUPE_CHROMIUM_PATH:-}" ] && [ -x "$TROUPE_CHROMIUM_PATH" ]; then echo "$TROUPE_CHROMIUM_PATH"; return; fi
  for c in /usr/bin/chromium /usr/bin/chromium-browser /usr/bin/google-chrome-stable /usr/bin/google-chrome /snap/bin/chromium; do
    if [ -x "$c" ]; then echo "$c"; return; fi
  done
}
missing=()
[ -n "$(find_chromium)" ] || missing+=(chromium)
if ! $worker_only; then
  command -v "${TROUPE_NATS_SERVER:-nats-server}" >/dev/null 2>&1 || missing+=(nats-server)
  # openssl makes the certificates of `troupe nats --tls-self-signed` (and the TLS tests'); Debian's ca-certificates usually brings it.
  command -v "${TROUPE_OPENSSL:-openssl}" >/dev/null 2>&1 || missing+=(openssl)
  # redis-server only serves the BullMQ side of `pnpm bench peer/all` (and its quick test).
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages: ${missing[*]}. Install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
if $worker_only; then say "$("$(find_chromium)" --version 2>/dev/null | head -1)"
else say "nats-server $(nats-server --version | awk '{print $2}'), $("$(find_chromium)" --version 2>/dev/null | head -1)"; fi

# --- pnpm ---------------------------------------------------------------
# Root installs it globally so `pnpm troupe ...` works afterwards; others get it through npx.
if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ] && [ "$(id -u)" -eq 0 ]; then
  say "installing pnpm $PNPM_VERSION"
  npm install -g --silent "pnpm@$PNPM_VERSION" >/dev/null
fi
PNPM=(bash scripts/pnpm.sh)

# better-sqlite3 is compiled here when no prebuilt binary can be fetched: build
# against the Node headers installed on the machine instead of downloading them.
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi

say "installing npm dependencies"
"${PNPM[@]}" install --frozen-lockfile --reporter=append-only 2>&1 | grep -v '^Progress' | tail -5

if ! $worker_only && [ -f ui/package.json ] && grep -q '"build"' ui/package.json; then
  say "building the dashboard"
  "${PNPM[@]}" --filter @troupe/ui build >/dev/null
fi
if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  say "done (pnpm $PNPM_VERSION is not on PATH: run the README's \`pnpm ...\` commands as \`bash scripts/pnpm.sh ...\`, or install it: npm install -g pnpm@$PNPM_VERSION)"
else say "done"; fi
