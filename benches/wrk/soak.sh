#!/usr/bin/env bash
# A soak: one server under steady read load (wrk, one connection: about half of what 16
# connections get) with writes mixed in (an asset upsert and an event every 100 ms), for
# MINUTES minutes. Each minute prints throughput, p50 and p99 of the reads and the
# server's resident memory, so the first minute can be held against the last.
# Usage: benches/wrk/soak.sh BINARY [MINUTES]   (STAGEFIT_DATABASE_URL / STAGEFIT_INDEX_DIR
# name the library; the 100k reference library in BENCHMARKS.md)
set -euo pipefail
bin=$1; minutes=${2:-10}; port=${PORT:-18099}
here=$(cd "$(dirname "$0")" && pwd)
"$bin" serve --addr 127.0.0.1:$port --response-cache-mb 0 > /dev/null 2>&1 &
pid=$!
trap 'kill $pid $writer 2>/dev/null' EXIT
for _ in $(seq 1 200); do curl -sf localhost:$port/healthz > /dev/null && break; sleep 0.5; done
url=http://127.0.0.1:$port/graphql
curl -sf $url -H 'content-type: application/json' \
  -d '{"query":"mutation { upsertAccount(account: { id: \"soak\", name: \"Soak\" }) { id } }"}' > /dev/null
( i=0
  while true; do
    i=$((i + 1))
    curl -s $url -H 'content-type: application/json' \
      -d "{\"query\":\"mutation { upsertAssets(assets: [{ id: \\\"soak-$((i % 500))\\\", title: \\\"Soak $i\\\", contentType: \\\"ebook\\\" }]) { created } }\"}" > /dev/null
    curl -s $url -H 'content-type: application/json' \
      -d "{\"query\":\"mutation { recordEngagement(event: { accountId: \\\"soak\\\", assetId: \\\"soak-$((i % 500))\\\", kind: VIEW }) { recorded } }\"}" > /dev/null
    sleep 0.1
  done ) &
writer=$!
printf 'minute  req/s     p50       p99       RSS MiB\n'
for m in $(seq 1 "$minutes"); do
  out=$(BODY_FILE="$here/recommend-explicit.json" wrk -t 1 -c 1 -d 60s --latency -s "$here/post.lua" $url)
  rate=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
  p50=$(awk '$1 == "50%" {print $2}' <<< "$out")
  p99=$(awk '$1 == "99%" {print $2}' <<< "$out")
  errors=$(awk '/Non-2xx/ {print $5}' <<< "$out")
  rss=$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' /proc/$pid/status)
  printf '%-7s %-9s %-9s %-9s %s %s\n' "$m" "$rate" "$p50" "$p99" "$rss" "${errors:+errors $errors}"
done
