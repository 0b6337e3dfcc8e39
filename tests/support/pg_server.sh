#!/bin/sh
# A throwaway PostgreSQL server for the tests.
#   pg_server.sh start DIR   initdb in a new directory under /tmp (its path
#                            kept in DIR/data_dir), start the server on a free
#                            port on every address (and a unix socket in its
#                            directory), write its URL to DIR/url; exits 77
#                            when PostgreSQL is not installed
#   pg_server.sh stop DIR    stop it and delete its directory
# Run as root, the server runs as the `postgres` user (initdb refuses root);
# its directory is under /tmp so that user can reach it.
set -eu
cmd=$1
dir=$2
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
  echo "pg_server.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 77
fi
as_server() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
stop() {
  [ -f "$dir/data_dir" ] || return 0
  data=$(cat "$dir/data_dir")
  if [ -f "$data/pgdata/postmaster.pid" ]; then
    as_server "$bin/pg_ctl" -D "$data/pgdata" -m fast -w stop >/dev/null 2>&1 ||
      as_server "$bin/pg_ctl" -D "$data/pgdata" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$data" "$dir/data_dir" "$dir/url"
}
case $cmd in
  start)
    mkdir -p "$dir"
    stop
    data=$(mktemp -d /tmp/keel-pg.XXXXXX)
    echo "$data" >"$dir/data_dir"
    [ "$(id -u)" = 0 ] && chown postgres "$data"
    chmod 700 "$data"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_server "$bin/initdb" -D "$data/pgdata" -A trust -U keel --no-sync -E UTF8 \
      --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # Durability off: tests kill workers and restart the server cleanly,
    # they never crash the machine. Every address, so that network
    # namespaces reach it over their veth links (10.0.0.0/8).
    cat >>"$data/pgdata/postgresql.conf" <<CONF
port = $port
listen_addresses = '*'
unix_socket_directories = '$data'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
CONF
    printf "host all all 127.0.0.1/32 trust\nhost all all 10.0.0.0/8 trust\n" >>"$data/pgdata/pg_hba.conf"
    as_server "$bin/pg_ctl" -D "$data/pgdata" -l "$data/server.log" -w -t 60 start >/dev/null ||
      { cat "$data/server.log" >&2; exit 1; }
    echo "postgresql://keel@127.0.0.1:$port/postgres" >"$dir/url"
    cat "$dir/url"
    ;;
  stop)
    stop
    ;;
  *)
    echo "usage: pg_server.sh start|stop DIR" >&2
    exit 2
    ;;
esac
