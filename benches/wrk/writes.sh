#!/usr/bin/env bash
# Mixed account, contact and event writes from 8 connections against a fresh demo server on
# its default SQLite database: writes/s, latency and how many came back with errors.
# Usage: benches/wrk/writes.sh BINARY [SECONDS]
set -euo pipefail
bin=$1; secs=${2:-10}; port=${PORT:-18098}
here=$(cd "$(dirname "$0")" && pwd)
STAGEFIT_LOG=warn "$bin" serve --demo --addr 127.0.0.1:$port > /dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 1 200); do curl -sf localhost:$port/healthz > /dev/null && break; sleep 0.5; done
wrk -t 8 -c 8 -d "${secs}s" --latency -s "$here/writes.lua" http://127.0.0.1:$port/graphql
