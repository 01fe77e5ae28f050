#!/bin/sh
# Client benchmark: 20,000 GETs with 64 in flight over keep-alive against
# nginx on loopback, in the same run:
#   loom fetch -c 64, the Python aiohttp client, curl --parallel, and wrk (the
#   ceiling: a C load generator that does nothing with the responses).
# Prints requests per second and the ratios (targets: loom >= 8x aiohttp,
# loom >= 0.5x wrk).
#
# usage: bench/client/run.sh [LOOM_BIN]     (default build/bin/loom)
#   env: N (20000), C (64), WRK_SECONDS (5), ROUNDS (3: best of 3, interleaved)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
LOOM=${1:-${LOOM_BIN:-$root/build/bin/loom}}
N=${N:-20000}
C=${C:-64}
WRK_SECONDS=${WRK_SECONDS:-5}
ROUNDS=${ROUNDS:-3}
PY=/usr/bin/python3

[ -x "$LOOM" ] || { echo "no loom binary at $LOOM (build first, or pass its path)" >&2; exit 2; }
for t in nginx wrk curl; do
  command -v $t >/dev/null || { echo "$t is not installed" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/loom-bench-client.XXXXXX)
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port/"
mkdir -p "$tmp/www"
printf 'Hello, World!' > "$tmp/www/index.html"
cat > "$tmp/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:$port backlog=4096;
        root $tmp/www;
    }
}
CONF
nginx -c "$tmp/nginx.conf" -p "$tmp" >/dev/null 2>&1 &
nginx_pid=$!
cleanup() {
  kill "$nginx_pid" 2>/dev/null || true
  wait "$nginx_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
i=0
until curl -s -o /dev/null "$url"; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "nginx did not start" >&2; exit 1; }
  sleep 0.05
done

now() { $PY -c 'import time; print(time.time())'; }
rate() { $PY -c "import sys; print('%.0f' % ($1 / ($3 - $2)))"; }

echo "client benchmark: $N GETs, $C in flight, keep-alive, nginx on $url (1 worker)"
echo

run_loom() {
  out=$("$LOOM" fetch -n "$N" -c "$C" "$url")
  printf '%s\n' "$out" | grep -q "failed: 0" || { echo "loom fetch had failures:" >&2; echo "$out" >&2; exit 1; }
  r=$(printf '%s\n' "$out" | sed -n 's/.*requests\/s: \([0-9.]*\).*/\1/p')
  $PY -c "print('%.0f' % $r)"
}

# the Python aiohttp client, the same pattern: one session, C workers
run_aiohttp() {
  $PY - "$url" "$N" "$C" <<'PYEOF'
import asyncio, sys, time
import aiohttp
url, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
async def main():
    left = [n]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as s:
        async def worker():
            while left[0] > 0:
                left[0] -= 1
                async with s.get(url) as r:
                    await r.read()
                    assert r.status == 200
        t = time.time()
        await asyncio.gather(*[worker() for _ in range(c)])
        return n / (time.time() - t)
print("%.0f" % asyncio.run(main()))
PYEOF
}

cfg="$tmp/curl.cfg"
$PY -c "
with open('$cfg', 'w') as f:
    for _ in range($N): f.write('url = \"$url\"\noutput = \"/dev/null\"\n')"
run_curl() {
  t0=$(now)
  curl -s --no-progress-meter --parallel --parallel-max "$C" -K "$cfg" 2>/dev/null
  t1=$(now)
  rate "$N" "$t0" "$t1"
}

# wrk: time-based, one thread, C connections
run_wrk() {
  r=$(wrk -t1 -c"$C" -d"${WRK_SECONDS}s" "$url" | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p')
  $PY -c "print('%.0f' % $r)"
}

# Rounds interleave the four clients, so that they see the same machine load;
# each figure is the best of its rounds.
best() { if [ "$2" -gt "$1" ]; then echo "$2"; else echo "$1"; fi; }
loom_rps=0; aio_rps=0; curl_rps=0; wrk_rps=0
r=1
while [ $r -le "$ROUNDS" ]; do
  l=$(run_loom); a=$(run_aiohttp); c=$(run_curl); w=$(run_wrk)
  echo "round $r: loom $l  aiohttp $a  curl $c  wrk $w"
  loom_rps=$(best "$loom_rps" "$l"); aio_rps=$(best "$aio_rps" "$a")
  curl_rps=$(best "$curl_rps" "$c"); wrk_rps=$(best "$wrk_rps" "$w")
  r=$((r + 1))
done
echo

printf '%-28s %12s\n' "client" "requests/s"
printf '%-28s %12s\n' "loom fetch -c $C" "$loom_rps"
printf '%-28s %12s\n' "aiohttp ClientSession ($C)" "$aio_rps"
printf '%-28s %12s\n' "curl --parallel-max $C" "$curl_rps"
printf '%-28s %12s\n' "wrk -t1 -c$C (${WRK_SECONDS}s)" "$wrk_rps"
echo
$PY - "$loom_rps" "$aio_rps" "$curl_rps" "$wrk_rps" <<'PYEOF'
import sys
loom, aio, curl, wrk = map(float, sys.argv[1:])
a, w = loom / aio, loom / wrk
print("loom / aiohttp: %6.2fx   (target >= 8x:   %s)" % (a, "met" if a >= 8 else "NOT met"))
print("loom / curl:    %6.2fx" % (loom / curl))
print("loom / wrk:     %6.2fx   (target >= 0.5x: %s)" % (w, "met" if w >= 0.5 else "NOT met"))
PYEOF
