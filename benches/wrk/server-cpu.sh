#!/usr/bin/env bash
# Server CPU per request and requests/s under wrk (2 threads, 16 connections), with the
# response cache off, on the database and index in STAGEFIT_DATABASE_URL and
# STAGEFIT_INDEX_DIR. CPU time is the server process's user + system time over the run,
# which a noisy machine moves less than throughput.
# Usage: benches/wrk/server-cpu.sh BINARY BODY.json [SECONDS]   (STAGEFIT_LOG is passed on;
# SCRIPT=impressions.lua runs another wrk script of this folder instead of post.lua)
set -euo pipefail
bin=$1; body=$(realpath "$2"); secs=${3:-8}; port=${PORT:-18099}
here=$(cd "$(dirname "$0")" && pwd)
"$bin" serve --addr 127.0.0.1:$port --response-cache-mb 0 > /dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 1 200); do curl -sf localhost:$port/healthz > /dev/null && break; sleep 0.5; done
BODY_FILE=$body wrk -t 2 -c 16 -d 2s -s "$here/${SCRIPT:-post.lua}" http://127.0.0.1:$port/graphql > /dev/null
ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
before=$(ticks)
out=$(BODY_FILE=$body wrk -t 2 -c 16 -d "${secs}s" -s "$here/${SCRIPT:-post.lua}" http://127.0.0.1:$port/graphql)
after=$(ticks)
requests=$(awk '/requests in/ {print $1}' <<< "$out")
rate=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
cpu=$(echo "($after - $before) * 1000000 / $(getconf CLK_TCK) / $requests" | bc -l)
printf '%s: %s req/s, server CPU %.1f us/request\n' "$(basename "$body")" "$rate" "$cpu"
