#!/usr/bin/env bash
# stagefit beside Meilisearch on one library, in one run, with one client (wrk).
#
# Imports the reference library into both (stagefit's whole `import` command; Meilisearch's
# indexing task with two indexing threads), serves both (stagefit with its response cache
# off, so every request is computed), runs wrk against each case at 1 and 16 connections,
# and prints one table of requests/s, p99 and the ratio stagefit / Meilisearch, then the
# import rates and the servers' RSS.
#
# Usage: benches/peer.sh STAGEFIT_BINARY MEILISEARCH_BINARY LIBRARY.jsonl [SECONDS]
#   LIBRARY.jsonl: what `../shared/bench/reference_library.py N` writes (DESIGN.md).
#   SECONDS: per wrk run, 10 by default. WORK=dir keeps the databases there (default: a
#   temporary directory removed at the end); REUSE=1 skips both imports when WORK holds them.
# Needs wrk, curl, jq and bc.
set -euo pipefail
stagefit=$(realpath "$1"); meili=$(realpath "$2"); library=$(realpath "$3"); secs=${4:-10}
here=$(cd "$(dirname "$0")" && pwd)
bodies=$here/peer
lua=$here/wrk/post.lua
work=${WORK:-$(mktemp -d)}
[ -n "${WORK:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work"
sport=${STAGEFIT_PORT:-18111}; mport=${MEILI_PORT:-18112}
pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'stop_all; [ -n "${WORK:-}" ] || rm -rf "$work"' EXIT

export STAGEFIT_DATABASE_URL="sqlite://$work/stagefit.db?mode=rwc"
export STAGEFIT_INDEX_DIR="$work/stagefit-index"
# wrk would otherwise meet the per-client rate limit, which is not what is measured.
export STAGEFIT_RATE_PER_KEY=100000000 STAGEFIT_RATE_PER_CLIENT=100000000
export STAGEFIT_BURST_PER_CLIENT=100000000
# Both servers log at their defaults (stagefit: info for serve), as users run them.
unset STAGEFIT_LOG
docs=$(wc -l < "$library")

now() { date +%s.%N; }

# --- import ---------------------------------------------------------------------------
if [ "${REUSE:-}" != 1 ]; then
  rm -rf "$work/stagefit.db"* "$work/stagefit-index" "$work/meili"
  t0=$(now)
  "$stagefit" import "$library" > "$work/stagefit-import.log"
  stagefit_import=$(echo "$docs / ($(now) - $t0)" | bc -l)

  "$meili" --db-path "$work/meili" --http-addr 127.0.0.1:$mport --no-analytics \
    --env development --max-indexing-threads 2 --http-payload-size-limit 4GB > "$work/meili.log" 2>&1 &
  mpid=$!; pids+=("$mpid")
  for _ in $(seq 1 200); do curl -sf "localhost:$mport/health" > /dev/null && break; sleep 0.2; done
  mcall() { curl -sf -X "$1" "localhost:$mport$2" -H 'content-type: application/json' ${3:+-d "$3"}; }
  wait_task() {
    while :; do
      s=$(mcall GET "/tasks/$1" | jq -r .status)
      case $s in succeeded) return 0 ;; failed|canceled) mcall GET "/tasks/$1" >&2; return 1 ;; esac
      sleep 0.2
    done
  }
  wait_task "$(mcall POST /indexes '{"uid":"assets","primaryKey":"id"}' | jq .taskUid)"
  wait_task "$(mcall PATCH /indexes/assets/settings '{
      "filterableAttributes": ["status","stages","roles","industries","language","content_type"],
      "sortableAttributes": ["published_at"],
      "searchableAttributes": ["title","summary","body"]}' | jq .taskUid)"
  t0=$(now)
  task=$(curl -sf -X POST "localhost:$mport/indexes/assets/documents" \
    -H 'content-type: application/x-ndjson' -T "$library" | jq .taskUid)
  wait_task "$task"
  meili_import=$(echo "$docs / ($(now) - $t0)" | bc -l)
  kill "$mpid"; wait "$mpid" 2>/dev/null || true
  printf '%s\n%s\n' "$stagefit_import" "$meili_import" > "$work/import-rates"
fi
read -r stagefit_import meili_import < <(paste -s "$work/import-rates")

# --- serve ----------------------------------------------------------------------------
"$stagefit" serve --addr 127.0.0.1:$sport --response-cache-mb 0 > "$work/stagefit.log" 2>&1 &
spid=$!; pids+=("$spid")
"$meili" --db-path "$work/meili" --http-addr 127.0.0.1:$mport --no-analytics \
  --env development --max-indexing-threads 2 --http-payload-size-limit 4GB > "$work/meili.log" 2>&1 &
mpid=$!; pids+=("$mpid")
for _ in $(seq 1 400); do
  curl -sf "localhost:$sport/healthz" > /dev/null && curl -sf "localhost:$mport/health" > /dev/null && break
  sleep 0.25
done

# Every body must answer ten items before anything is timed.
check() { # url body jq-path-to-items
  n=$(curl -sf "$1" -H 'content-type: application/json' -d "@$2" | jq "$3 | length")
  [ "$n" = 10 ] || { echo "$(basename "$2") answered $n items, not 10" >&2; exit 1; }
}
S=http://127.0.0.1:$sport/graphql; M=http://127.0.0.1:$mport/indexes/assets/search
for b in search-a search-b search-c; do check "$S" "$bodies/stagefit-$b.json" .data.search.items; done
for b in recommend-a recommend-b; do check "$S" "$bodies/stagefit-$b.json" .data.recommendations.items; done
for b in a b c; do check "$M" "$bodies/meili-$b.json" .hits; done

run() { # url body connections -> "rps p99_ms"
  BODY_FILE=$2 wrk -t 1 -c "$3" -d 2s -s "$lua" "$1" > /dev/null
  out=$(BODY_FILE=$2 wrk -t 1 -c "$3" -d "${secs}s" --latency -s "$lua" "$1")
  rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<< "$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<< "$out")
  [ -z "$non2xx" ] || { echo "$(basename "$2"): $non2xx non-2xx answers" >&2; exit 1; }
  echo "$rps $p99"
}

echo "# stagefit vs Meilisearch, $docs documents, $(date -u +%FT%TZ), $(nproc) cores"
echo "| case | Meilisearch c=1 | stagefit c=1 | ratio | p99 Meili / stagefit | Meilisearch c=16 | stagefit c=16 | ratio |"
echo "|---|---|---|---|---|---|---|---|"
declare -A peer1 peer16
for q in a b c; do
  read -r r1 p1 < <(run "$M" "$bodies/meili-$q.json" 1)
  read -r r16 _ < <(run "$M" "$bodies/meili-$q.json" 16)
  peer1[$q]="$r1 $p1"; peer16[$q]=$r16
done
row() { # label stagefit-body peer-query
  read -r pr1 pp1 <<< "${peer1[$3]}"; pr16=${peer16[$3]}
  read -r r1 p1 < <(run "$S" "$bodies/stagefit-$2.json" 1)
  read -r r16 _ < <(run "$S" "$bodies/stagefit-$2.json" 16)
  printf '| %s | %.0f, p99 %.2f ms | %.0f, p99 %.2f ms | **%.2fx** | %.2f / %.2f ms | %.0f | %.0f | **%.2fx** |\n' \
    "$1" "$pr1" "$pp1" "$r1" "$p1" "$(echo "$r1 / $pr1" | bc -l)" "$pp1" "$p1" \
    "$pr16" "$r16" "$(echo "$r16 / $pr16" | bc -l)"
}
row "A: filter, newest first / search" search-a a
row "A / recommendations (graded, reasons)" recommend-a a
row "B: filter + \"signature security\" / search" search-b b
row "B / recommendations with that text" recommend-b b
row "C: \"signature\", no filter / search" search-c c
rss() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
printf '\nimport: stagefit %.0f documents/s, Meilisearch %.0f/s (ratio %.2fx)\n' \
  "$stagefit_import" "$meili_import" "$(echo "$stagefit_import / $meili_import" | bc -l)"
printf 'RSS after the runs: stagefit %s MB, Meilisearch %s MB (ratio %.2fx)\n' \
  "$(rss $spid)" "$(rss $mpid)" "$(echo "$(rss $spid) / $(rss $mpid)" | bc -l)"
