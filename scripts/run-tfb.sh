#!/usr/bin/env bash
# `make run-tfb`: the TFB plugin on a throwaway PostgreSQL, for trying it out.
# Starts a cluster with the TFB data (scripts/pgcluster.sh), serves the pg and
# tfb plugins on http://127.0.0.1:${PORT:-8080}/ in the foreground, and stops
# and deletes the cluster when the server stops (Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PORT=${PORT:-8080}
env=$(scripts/pgcluster.sh start)
eval "$env"
trap 'scripts/pgcluster.sh stop "$LOOM_PG_DIR"' EXIT
dir=$(mktemp -d "${TMPDIR:-/tmp}/loom-tfb.XXXXXX")
trap 'scripts/pgcluster.sh stop "$LOOM_PG_DIR"; rm -rf "$dir"' EXIT
mkdir "$dir/plugins"
cp "$BUILD/plugins/pg.so" "$BUILD/plugins/tfb.so" "$dir/plugins/"
printf '{"plugins": {"pg": {"conninfo": "%s"}}}\n' "${LOOM_PG_CONNINFO//\'/}" >"$dir/loom.json"
echo "PostgreSQL on 127.0.0.1:$LOOM_PG_PORT (psql: scripts/pgcluster.sh psql $LOOM_PG_DIR)" >&2
echo "try: curl http://127.0.0.1:$PORT/fortunes   (also /json /plaintext /db /queries?queries=20 /updates?queries=20)" >&2
"$BUILD/bin/loom" serve --host 127.0.0.1 --port "$PORT" --plugins-dir "$dir/plugins" \
  --config "$dir/loom.json" "$@"
