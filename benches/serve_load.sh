#!/usr/bin/env bash
# Words alone, then hybrid (the vectors from benches/fake_embedder.py), on one library that
# `stagefit import --embedder-url http://127.0.0.1:18555/v1 --embedder-model fake` filled:
# each server without its response cache, three load cases at c=16 for 10 s, its RSS.
# Usage: STAGEFIT_DATABASE_URL=... STAGEFIT_INDEX_DIR=... benches/serve_load.sh
# (after `cargo build --release --bin stagefit` and `cargo bench --bench load --no-run`;
# needs curl, jq, bc and numpy for the fake service).
set -euo pipefail
cd "$(dirname "$0")/.."
export STAGEFIT_RATE_PER_KEY=100000000 STAGEFIT_RATE_PER_CLIENT=100000000
export STAGEFIT_BURST_PER_CLIENT=100000000 STAGEFIT_LOG=warn
load=$(ls -t target/release/deps/load-* | grep -v '\.d$' | head -1)
port=${PORT:-18600}
run() { # label, extra serve arguments
  local label=$1 t0 pid
  shift
  t0=$(date +%s.%N)
  target/release/stagefit serve --addr "127.0.0.1:$port" --response-cache-mb 0 "$@" &
  pid=$!
  # Ready, and with meaning every vector loaded.
  until ready=$(curl -sf "http://127.0.0.1:$port/readyz") &&
    { [ "$label" = words ] || jq -e '.embeddings.complete' <<<"$ready" >/dev/null; }; do
    sleep 0.5
  done
  echo "== $label: ready after $(echo "$(date +%s.%N) - $t0" | bc) s; $ready"
  for case in search-text-mix search-distinct recommend-text-mix; do
    "$load" --bench --url "http://127.0.0.1:$port/graphql" --connections 16 --seconds 10 --only "$case"
  done
  echo "RSS $(ps -o rss= -p "$pid") kB"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}
run words
python3 benches/fake_embedder.py 18555 &
fake=$!
trap 'kill $fake' EXIT
sleep 2
run hybrid --embedder-url http://127.0.0.1:18555/v1 --embedder-model fake
