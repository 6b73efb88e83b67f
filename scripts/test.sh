#!/usr/bin/env bash
# The whole test suite: installs what the tests drive besides cargo (the graphql-http audit,
# an npm package pinned in tests/audit/package-lock.json), then runs every Rust test.
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing Node.js and npm (Debian packages)"
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
(cd tests/audit && npm ci --no-audit --no-fund --loglevel=error)
cargo test --all-targets "$@"
