#!/usr/bin/env bash
# Two replicas over PostgreSQL against one server on SQLite, in one run, on the library of
# a SQLite database (the 100k reference library in BENCHMARKS.md):
#   1. one server on the SQLite database: wrk, 2 threads, 16 connections;
#   2. the database copied (copy-data) into a throwaway PostgreSQL cluster (fsync on), two
#      replicas on it, each with its own index: two wrk at once, 8 connections each;
#   3. write-to-visible: an asset written through one replica, searched on the other until
#      it shows, N times.
# Usage: benches/wrk/replicas.sh BINARY SQLITE_URL [SECONDS] [SAMPLES]
set -euo pipefail
bin=$(realpath "$1"); sqlite=$2; secs=${3:-20}; samples=${4:-200}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/stagefit-replicas.XXXXXX)
body="$here/recommend-explicit.json"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pg_stop; rm -rf "$work"; }
source "$here/../../scripts/postgres.sh"
trap cleanup EXIT
export STAGEFIT_RATE_PER_KEY=10000000 STAGEFIT_RATE_PER_CLIENT=10000000 STAGEFIT_BURST_PER_CLIENT=10000000

wait_ready() { for _ in $(seq 1 1200); do curl -sf "localhost:$1/readyz" > /dev/null && return 0; sleep 0.5; done; return 1; }
report() { awk -v name="$1" '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {printf "%-28s %10s req/s  p50 %-9s p99 %s\n", name, r, p50, p99}'; }

# 1. One server on SQLite.
STAGEFIT_DATABASE_URL=$sqlite STAGEFIT_INDEX_DIR=$work/sqlite-index \
  "$bin" serve --addr 127.0.0.1:18101 --response-cache-mb 0 > "$work/sqlite.log" 2>&1 &
pids+=($!)
wait_ready 18101
BODY_FILE=$body wrk -t 2 -c 16 -d 3s -s "$here/post.lua" http://127.0.0.1:18101/graphql > /dev/null
BODY_FILE=$body wrk -t 2 -c 16 -d "${secs}s" --latency -s "$here/post.lua" http://127.0.0.1:18101/graphql | report "one server, SQLite"
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true

# 2. Two replicas on PostgreSQL.
PG_OPTIONS="-c fsync=on -c full_page_writes=on -c shared_buffers=256MB" pg_start
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres bench
pg=postgres://postgres@127.0.0.1:$PG_PORT/bench
"$bin" copy-data --from "$sqlite" --to "$pg" | tail -1
for r in a b; do
  port=$([ $r = a ] && echo 18102 || echo 18103)
  STAGEFIT_DATABASE_URL=$pg STAGEFIT_INDEX_DIR=$work/index-$r \
    "$bin" serve --addr 127.0.0.1:$port --response-cache-mb 0 > "$work/replica-$r.log" 2>&1 &
  pids+=($!)
done
wait_ready 18102; wait_ready 18103
# Both indexes built; let their merges settle before measuring.
sleep 20
for port in 18102 18103; do
  BODY_FILE=$body wrk -t 1 -c 8 -d 3s -s "$here/post.lua" http://127.0.0.1:$port/graphql > /dev/null
done
BODY_FILE=$body wrk -t 1 -c 8 -d "${secs}s" --latency -s "$here/post.lua" http://127.0.0.1:18102/graphql > "$work/a.txt" &
load_a=$!
BODY_FILE=$body wrk -t 1 -c 8 -d "${secs}s" --latency -s "$here/post.lua" http://127.0.0.1:18103/graphql > "$work/b.txt"
wait "$load_a"
report "replica A, PostgreSQL" < "$work/a.txt"
report "replica B, PostgreSQL" < "$work/b.txt"

# 3. Write to visible, A to B.
python3 - "$samples" <<'PY'
import json, sys, time, urllib.request
def post(port, query, variables=None):
    data = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data, {"content-type": "application/json"})
    return json.load(urllib.request.urlopen(req))
delays = []
for i in range(int(sys.argv[1])):
    word = f"visibilityprobe{i}x"
    start = time.monotonic()
    post(18102, "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }",
         {"a": [{"id": f"visible-{i}", "title": f"About {word}", "contentType": "ebook"}]})
    while True:
        hits = post(18103, "query($q: String!) { search(query: $q) { totalCount } }", {"q": word})
        if hits["data"]["search"]["totalCount"] > 0:
            break
        time.sleep(0.002)
    delays.append((time.monotonic() - start) * 1000)
delays.sort()
q = lambda p: delays[min(len(delays) - 1, int(p * len(delays)))]
print(f"write on A to visible on B, {len(delays)} samples: p50 {q(0.5):.0f} ms, p90 {q(0.9):.0f} ms, p99 {q(0.99):.0f} ms, max {delays[-1]:.0f} ms")
PY
