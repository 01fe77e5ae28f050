#!/usr/bin/env bash
# A throwaway PostgreSQL cluster with the TechEmpower (TFB) schema and data,
# on a loopback port, for tests, benchmarks and local use.
#
#   scripts/pgcluster.sh start [--port N] [--dir DIR] [--no-fsync]
#       creates a cluster (initdb) in a new temporary directory (or DIR, which
#       must not exist), starts it on 127.0.0.1:N (default: a free port),
#       loads the TFB tables and prints shell assignments:
#         LOOM_PG_DIR=...  LOOM_PG_PORT=...  LOOM_PG_CONNINFO='...'
#       (eval "$(scripts/pgcluster.sh start)"). The same lines are kept in
#       DIR/cluster.env.
#   scripts/pgcluster.sh stop DIR      stops the cluster and deletes DIR
#   scripts/pgcluster.sh restart DIR   stops and starts it again (same port)
#   scripts/pgcluster.sh psql DIR ...  psql as the cluster's superuser
#
# The server runs as an unprivileged user: the caller, or the `postgres`
# system user (then `nobody`) when the caller is root (initdb refuses root).
# It listens on 127.0.0.1 only; its socket directory is DIR/sock (mode 0700).
# Clients on TCP authenticate with SCRAM: database hello_world, user
# benchmarkdbuser, password benchmarkdbpass (TFB's own, public, values).
# pg_stat_statements is loaded, as TFB's verifier counts queries with it.
set -euo pipefail

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
die() { echo "pgcluster.sh: $*" >&2; exit 1; }
[ -x "$PGBIN/initdb" ] || die "PostgreSQL server binaries not found (install the postgresql package; scripts/deps.sh does)"

# Runs a command as the cluster's owner.
OWNER=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
  if getent passwd postgres >/dev/null; then OWNER=postgres; else OWNER=nobody; fi
fi
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$OWNER" -- "$@"
  else
    "$@"
  fi
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

admin_psql() {
  local dir=$1; shift
  # shellcheck disable=SC1091
  . "$dir/cluster.env"
  as_owner "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$LOOM_PG_PORT" -U loomadmin "$@"
}

start_server() {
  local dir=$1
  as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null ||
    die "the server did not start; its log: $dir/server.log"
}

cmd_start() {
  local port="" dir="" fsync=on
  while [ $# -gt 0 ]; do
    case $1 in
      --port) port=$2; shift 2 ;;
      --dir) dir=$2; shift 2 ;;
      --no-fsync) fsync=off; shift ;;
      *) die "start: unknown option '$1'" ;;
    esac
  done
  [ -n "$port" ] || port=$(free_port)
  case $port in ''|*[!0-9]*) die "start: --port '$port' is not a number" ;; esac
  if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/loom-pg.XXXXXX")
  else
    [ -e "$dir" ] && die "start: $dir already exists"
    mkdir -p "$dir"
  fi
  chmod 0755 "$dir"
  mkdir -m 0700 "$dir/sock"
  [ "$(id -u)" -eq 0 ] && chown "$OWNER" "$dir" "$dir/sock"
  cat >"$dir/cluster.env" <<EOF
LOOM_PG_DIR=$dir
LOOM_PG_PORT=$port
LOOM_PG_CONNINFO='host=127.0.0.1 port=$port dbname=hello_world user=benchmarkdbuser password=benchmarkdbpass'
EOF
  as_owner "$PGBIN/initdb" -D "$dir/data" -U loomadmin -A trust -E UTF8 --locale=C --no-sync \
    >"$dir/initdb.log" 2>&1 || die "initdb failed; its log: $dir/initdb.log"
  cat >>"$dir/data/postgresql.conf" <<EOF
# pgcluster.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/sock'
max_connections = 200
shared_buffers = 128MB
synchronous_commit = off
fsync = $fsync
full_page_writes = $fsync
password_encryption = 'scram-sha-256'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
log_min_messages = warning
log_line_prefix = '%m [%p] %a '
EOF
  cat >"$dir/data/pg_hba.conf" <<EOF
local all all trust
host all all 127.0.0.1/32 scram-sha-256
EOF
  start_server "$dir"
  admin_psql "$dir" -d postgres <<'EOF'
CREATE ROLE benchmarkdbuser LOGIN PASSWORD 'benchmarkdbpass';
CREATE DATABASE hello_world OWNER benchmarkdbuser ENCODING 'UTF8' TEMPLATE template0;
EOF
  admin_psql "$dir" -d hello_world <<'EOF'
CREATE EXTENSION pg_stat_statements;
SET ROLE benchmarkdbuser;
CREATE TABLE world (
  id integer NOT NULL,
  randomnumber integer NOT NULL DEFAULT 0,
  PRIMARY KEY (id)
);
INSERT INTO world (id, randomnumber)
  SELECT x, least(floor(random() * 10000 + 1), 10000) FROM generate_series(1, 10000) AS x;
CREATE TABLE fortune (
  id integer NOT NULL,
  message varchar(2048) NOT NULL,
  PRIMARY KEY (id)
);
INSERT INTO fortune (id, message) VALUES
  (1, 'fortune: No such file or directory'),
  (2, 'A computer scientist is someone who fixes things that aren''t broken.'),
  (3, 'After enough decimal places, nobody gives a damn.'),
  (4, 'A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1'),
  (5, 'A computer program does what you tell it to do, not what you want it to do.'),
  (6, 'Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen'),
  (7, 'Any program that runs right is obsolete.'),
  (8, 'A list is only as strong as its weakest link. — Donald Knuth'),
  (9, 'Feature: A bug with seniority.'),
  (10, 'Computers make very fast, very accurate mistakes.'),
  (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
  (12, 'フレームワークのベンチマーク');
RESET ROLE;
ANALYZE world;
ANALYZE fortune;
EOF
  cat "$dir/cluster.env"
}

need_dir() {
  [ -n "${1:-}" ] || die "$2: which cluster? (the directory that start printed)"
  [ -f "$1/cluster.env" ] || die "$2: $1 is not a cluster made by pgcluster.sh"
}

cmd_stop() {
  need_dir "${1:-}" stop
  local dir=$1
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case ${1:-} in
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop "${2:-}" ;;
  restart)
    need_dir "${2:-}" restart
    as_owner "$PGBIN/pg_ctl" -D "$2/data" -m fast -w -t 30 stop >/dev/null
    start_server "$2" ;;
  psql) need_dir "${2:-}" psql; d=$2; shift 2; admin_psql "$d" -d hello_world "$@" ;;
  *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
