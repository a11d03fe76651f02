#!/usr/bin/env bash
# scripts/pgtmp.sh - a throwaway PostgreSQL cluster in a folder, reachable by unix socket only.
#   scripts/pgtmp.sh start DIR   -> initdb (first time) + pg_ctl start; prints `export PG...` lines
#   scripts/pgtmp.sh stop DIR    -> fast shutdown
#   scripts/pgtmp.sh env DIR     -> prints the export lines again
# Works as root (the server runs as the `postgres` system user) and as an ordinary user.
# Listens on no TCP address (listen_addresses=''), so clusters never collide on ports.
set -eu
cmd=${1:?usage: pgtmp.sh start|stop|env DIR}
dir=${2:?usage: pgtmp.sh start|stop|env DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/initdb" ] || { echo "pgtmp: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
port=5432
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
print_env() {
    echo "export PGHOST='$dir/sock' PGPORT=$port PGUSER=rlprice PGDATABASE=rlprice"
}
case "$cmd" in
start)
    if [ "$(id -u)" = 0 ]; then
        # postgres must be able to reach the folder
        p="$dir"; while [ "$p" != / ]; do chmod o+x "$p" 2>/dev/null || true; p=$(dirname "$p"); done
        chown postgres "$dir"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_owner "$bindir/initdb" -D "$dir/data" -U rlprice -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_owner mkdir -p "$dir/sock"
    if ! as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses='' -k '$dir/sock' -p $port -c fsync=on -c max_connections=50" start >/dev/null \
            || { cat "$dir/server.log" >&2; exit 1; }
    fi
    PGHOST="$dir/sock" PGPORT=$port "$bindir/psql" -U rlprice -d postgres -Atqc \
        "select 1 from pg_database where datname='rlprice'" | grep -q 1 \
        || PGHOST="$dir/sock" PGPORT=$port "$bindir/createdb" -U rlprice rlprice
    print_env
    ;;
stop)
    if [ -f "$dir/data/PG_VERSION" ]; then as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true; fi
    ;;
env) print_env ;;
*) echo "usage: pgtmp.sh start|stop|env DIR" >&2; exit 2 ;;
esac
