#!/usr/bin/env bash
# What the database alone allows: pgbench running the queries of one TFB
# request per transaction, the way loom's tfb plugin sends them (prepared
# statements; queries=20 and updates=20 as pipelines, one round trip per
# batch), against a cluster made by scripts/pgcluster.sh. A pgbench
# "transaction" is one request's worth of queries, so its tps is the
# ceiling for an HTTP server's requests/s on the same database.
#
#   bench/tfb_pgbench.sh PORT [SECONDS] [CLIENTS] [WORKLOAD...]
#       CLIENTS: database connections (default 16, the pool bench/tfb.py
#       gives each server); pgbench runs 2 threads (PGBENCH_THREADS).
#       WORKLOAD: db queries20 fortunes updates20 (default: all four)
#
# Prints one line per workload: "<workload> <tps> <average latency ms>".
set -euo pipefail

port=${1:?usage: tfb_pgbench.sh PORT [SECONDS] [CLIENTS] [WORKLOAD...]}
secs=${2:-5}
clients=${3:-16}
threads=${PGBENCH_THREADS:-2}
[ "$threads" -le "$clients" ] || threads=$clients
shift $(( $# < 3 ? $# : 3 ))
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(db queries20 fortunes updates20)
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
dir=$(mktemp -d "${TMPDIR:-/tmp}/loom-pgbench.XXXXXX")
trap 'rm -rf "$dir"' EXIT

select_q='SELECT id, randomnumber FROM world WHERE id = :id'
{
  echo '\set id random(1, 10000)'
  echo "$select_q;"
} >"$dir/db.sql"
{
  for i in $(seq 20); do echo "\\set id$i random(1, 10000)"; done
  echo '\startpipeline'
  for i in $(seq 20); do echo "${select_q/:id/:id$i};"; done
  echo '\endpipeline'
} >"$dir/queries20.sql"
echo 'SELECT id, message FROM fortune;' >"$dir/fortunes.sql"
{
  # Ids rise within a transaction (each from its own 500-row slice), as
  # loom writes them in id order: concurrent clients cannot deadlock.
  for i in $(seq 20); do
    echo "\\set id$i random($(( (i - 1) * 500 + 1 )), $(( i * 500 )))"
    echo "\\set n$i random(1, 10000)"
  done
  echo '\startpipeline'
  for i in $(seq 20); do echo "${select_q/:id/:id$i};"; done
  echo '\endpipeline'
  echo '\startpipeline'
  for i in $(seq 20); do echo "UPDATE world SET randomnumber = :n$i WHERE id = :id$i;"; done
  echo '\endpipeline'
} >"$dir/updates20.sql"

for w in "${workloads[@]}"; do
  [ -f "$dir/$w.sql" ] || { echo "tfb_pgbench.sh: unknown workload '$w'" >&2; exit 2; }
  out=$(PGPASSWORD=benchmarkdbpass "$PGBIN/pgbench" -n -M prepared -c "$clients" -j "$threads" -T "$secs" \
    -h 127.0.0.1 -p "$port" -U benchmarkdbuser -f "$dir/$w.sql" hello_world 2>&1) ||
    { echo "$out" >&2; exit 1; }
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' <<<"$out")
  echo "$w $tps $lat"
done
