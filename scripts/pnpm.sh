#!/usr/bin/env bash
# Runs the pinned pnpm: the installed one when it is the right version, else through npx.
PNPM_VERSION=12.4.2
if [ "$(pnpm --version 2>/dev/null || true)" = "$PNPM_VERSION" ]; then exec pnpm "$@"; fi
exec npx -y "pnpm@$PNPM_VERSION" "$@"
