#!/bin/sh
# Load and soak (issue 9 item 4), against the real binary and build/plugins:
#   1. 10,000 concurrent keep-alive connections held (hold.py), RSS per idle
#      connection, a request on each at the end;
#   2. three wrk runs in a row of at least a million requests each, with no
#      socket error and no non-2xx answer, and the server's RSS after each:
#      flat within 5 %.
# Not part of ctest (minutes, and it wants RLIMIT_NOFILE raised). See README.md.
#
# usage: bench/soak/run.sh   (env: BUILD=build CONNS=10000 HOLD=15 REQUESTS=1000000
#                             WRK_MAX_SECONDS=300 WRK_CONNS=64 WRK_THREADS=2)
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
CONNS=${CONNS:-10000}
HOLD=${HOLD:-15}
WRK_MAX_SECONDS=${WRK_MAX_SECONDS:-300}
WRK_CONNS=${WRK_CONNS:-64}
WRK_THREADS=${WRK_THREADS:-2}
REQUESTS=${REQUESTS:-1000000}
PORT=${PORT:-18931}
OUT=${OUT:-$BUILD/soak}
mkdir -p "$OUT"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "RLIMIT_NOFILE: $(ulimit -n)"
[ -x "$BUILD/bin/loom" ] || { echo "no $BUILD/bin/loom: build first (make build)"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed"; exit 1; }

# The logging plugin writes two lines per request: off, so the log stays small.
echo '{"plugins": {"logging": {"enabled": false}}}' > "$OUT/loom.json"
"$BUILD/bin/loom" serve --single --host 127.0.0.1 --port "$PORT" --config "$OUT/loom.json" \
    --plugins-dir "$BUILD/plugins" --set max_connections=$((CONNS + 1000)) \
    > "$OUT/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT INT TERM
for i in $(seq 100); do
    curl -fsS "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break
    sleep 0.1
done
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
fail=0

echo "== 1. $CONNS concurrent keep-alive connections, held $HOLD s"
python3 bench/soak/hold.py "$PORT" "$PID" "$CONNS" "$HOLD" || fail=1

echo "== 2. three wrk runs of >= $REQUESTS requests (GET /, hello plugin)"
echo "server rss before: $(rss) kB"
# A 3 s probe gives the rate; each run then stops after REQUESTS responses
# (stop_after.lua), with a duration bound of twice the expected time.
wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d3s "http://127.0.0.1:$PORT/" > "$OUT/wrk-probe.txt" 2>&1
probe=$(awk '/^Requests\/sec/ {printf "%d", $2}' "$OUT/wrk-probe.txt")
secs=$((2 * REQUESTS / (probe > 1000 ? probe : 1000) + 5))
[ $secs -le "$WRK_MAX_SECONDS" ] || secs=$WRK_MAX_SECONDS
echo "probe: $probe req/s; each run stops after $REQUESTS responses (bound ${secs}s)"
for run in 1 2 3; do
    WRK_LIMIT=$(((REQUESTS + WRK_THREADS - 1) / WRK_THREADS)) \
        wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${secs}s" -s bench/soak/stop_after.lua \
        "http://127.0.0.1:$PORT/" > "$OUT/wrk-$run.txt" 2>&1 || fail=1
    reqs=$(awk '/requests in/ {print $1}' "$OUT/wrk-$run.txt")
    lat=$(awk '/^    Latency/ {print "avg " $2 ", max " $4}' "$OUT/wrk-$run.txt")
    errs=$(grep -E "Socket errors|Non-2xx" "$OUT/wrk-$run.txt" || true)
    r=$(rss)
    eval "rss_$run=$r"
    echo "run $run: $reqs requests (latency $lat), server rss after: $r kB${errs:+, ERRORS: $errs}"
    [ -z "$errs" ] || fail=1
    [ "${reqs:-0}" -ge "$REQUESTS" ] || { echo "run $run: fewer than $REQUESTS requests (raise WRK_MAX_SECONDS)"; fail=1; }
done
# flat: (max - min) / min <= 5 %
python3 - "$rss_1" "$rss_2" "$rss_3" <<'PY' || fail=1
import sys
v = [int(x) for x in sys.argv[1:]]
d = (max(v) - min(v)) * 100.0 / min(v)
print("rss across the three runs: %s kB, spread %.2f %% (limit 5 %%)" % (v, d))
sys.exit(0 if d <= 5 else 1)
PY
echo "server log errors: $(grep -c '\[error\]' "$OUT/server.log" || true)"
kill -TERM $PID
wait $PID || true
trap - EXIT INT TERM
[ $fail -eq 0 ] && echo "soak: PASS" || echo "soak: FAIL"
exit $fail
