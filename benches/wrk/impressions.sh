#!/usr/bin/env bash
# recordImpressions of real lists: collects recommendation ids from BINARY's own answers
# (they are signed by the server that gives them out), then measures recordImpressions of
# three cards per list with server-cpu.sh, on the database and index in
# STAGEFIT_DATABASE_URL and STAGEFIT_INDEX_DIR (rate limits lifted by the caller).
# Usage: benches/wrk/impressions.sh BINARY [SECONDS]
set -euo pipefail
bin=$1; secs=${2:-6}; port=${PORT:-18099}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"; kill $pid 2>/dev/null' EXIT
"$bin" serve --addr 127.0.0.1:$port > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 200); do curl -sf localhost:$port/healthz > /dev/null && break; sleep 0.5; done
BODY_FILE="$here/recommend-ids.json" IDS_FILE="$work/ids" \
  wrk -t 2 -c 16 -d 4s -s "$here/list-ids.lua" http://127.0.0.1:$port/graphql > /dev/null
assets=$(curl -s localhost:$port/graphql -H 'content-type: application/json' \
  -d @"$here/recommend-ids.json" | grep -o '"id":"[^"]*"' | head -3 | cut -d'"' -f4 | paste -sd,)
kill $pid; wait $pid 2>/dev/null || true
cat "$work"/ids.* > "$work/all-ids"
echo "$(wc -l < "$work/all-ids") list ids, assets $assets" >&2
SCRIPT=impressions.lua IDS_FILE="$work/all-ids" ASSETS="$assets" \
  "$here/server-cpu.sh" "$bin" "$here/recommend-ids.json" "$secs"
