#!/usr/bin/env bash
# What `make run` runs: the development server, with every shipped plugin and
# a working session demo (/demo).
#
# Usage: scripts/run-dev.sh [BUILD_DIR [HOST [PORT]]]   (build, 127.0.0.1, 8080)
#
# Run-time data lives under BUILD_DIR/run (LOOM_RUN_DIR overrides it), never
# in the current directory, and starts empty each time: the notes database,
# the sessions database, and the config with a session signing key made from
# /dev/urandom for this run only (a development key: never commit one, and
# give a real server keys of its own, see the README).
set -euo pipefail
build=${1:-build}
host=${2:-127.0.0.1}
port=${3:-8080}
run=${LOOM_RUN_DIR:-$build/run}

mkdir -p "$run"
run=$(cd "$run" && pwd)
# Only what this script makes is removed, whatever LOOM_RUN_DIR names.
rm -f "$run/loom.json" "$run"/sessions.db* "$run"/notes.db*
key=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
(
  umask 077
  cat > "$run/loom.json" <<JSON
{"plugins": {
  "sessions": {"keys": ["$key"], "store": "sqlite"},
  "session-sqlite": {"db": "$run/sessions.db"},
  "notes": {"db": "$run/notes.db"}
}}
JSON
)
echo "make run: run-time data in $run (emptied at each start): sessions in sessions.db," \
  "signed with a development key made for this run only; notes in notes.db" >&2
exec "$build/bin/loom" serve --host "$host" --port "$port" --plugins-dir "$build/plugins" \
  --config "$run/loom.json"
