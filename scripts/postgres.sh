#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: Debian's postgresql (installed when missing)
# in a temporary directory, on a free port of 127.0.0.1, trusting local connections.
# Source it, then: pg_start (exports STAGEFIT_TEST_DATABASE_URL and PG_DIR), pg_stop.
# initdb refuses root, so as root the cluster runs as the postgres user. The tests run it
# without fsync; PG_OPTIONS adds server options (benchmarks: "-c fsync=on -c
# full_page_writes=on").

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  if [ -z "$(pg_bin)" ]; then
    echo "installing PostgreSQL (Debian package) for the suite's second run"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  PG_BIN=$(pg_bin)
  PG_DIR=$(mktemp -d /tmp/stagefit-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
  as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  local port
  for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 20000))
    if as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -s -o \
      "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=500 -c fsync=off -c full_page_writes=off ${PG_OPTIONS:-}" \
      start; then
      export PG_PORT=$port
      export STAGEFIT_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
      export PG_DIR PG_BIN
      return 0
    fi
  done
  echo "cannot start PostgreSQL; its log:" >&2
  cat "$PG_DIR/log" >&2
  return 1
}

pg_stop() {
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -s stop || true
    rm -rf "$PG_DIR"
  fi
}
