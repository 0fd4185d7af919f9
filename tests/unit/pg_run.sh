#!/bin/sh
# Runs a store test against a throwaway PostgreSQL: initdb into a temporary
# folder as the postgres OS user (initdb refuses root), the server on its
# own port on 127.0.0.1 with its unix socket in that folder, the test with
# FG_TEST_PG = a libpq connection string to it, then the server stopped and
# the folder removed, whether the test passed or not. Run it inside
# tests/e2e/netns.sh, which gives the server a loopback of its own.
#   pg_run.sh TEST [ARGS...]
set -eu
# Debian keeps initdb and pg_ctl beside each major version: the newest.
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "pg_run.sh: no PostgreSQL server under /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2
    exit 1
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/fg-pg.XXXXXX")
chown postgres "$dir"
stop() {
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT
trap 'exit 1' INT TERM
port=${FG_TEST_PG_PORT:-55432}
runuser -u postgres -- "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
# fsync off: the data is thrown away afterwards.
if ! runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -w -l "$dir/server.log" \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=50" \
    start >/dev/null; then
    cat "$dir/server.log" >&2
    exit 1
fi
export FG_TEST_PG="host=127.0.0.1 port=$port user=postgres"
export FG_TEST_PG_LOG="$dir/server.log"
"$@"
