"""bench/wl_ws.py: the WebSocket workloads of bench/run (--only ws).

ws-echo64: 64 connections each send a 32-byte text message and send the
    next when its echo is back (bench_ws_load, loom's own client, on the
    client CPU), against loom's ws-echo plugin, aiohttp's WebSocketResponse
    echo and Node's ws echo, one worker each, pinned to the server CPU, in
    rounds (the order rotated each round). Round trips per second and server
    CPU per round trip (schedstat, as bench/run measures requests); the
    targets: loom's CPU per message <= 0.2x Node ws's and <= 0.1x aiohttp's.
ws-idle10k: 10,000 open, idle WebSocket connections in one worker: the
    server's RSS growth per connection, beside the same server's HTTP
    keep-alive figure measured the same way.
ws-fanout10k: 10,000 subscribers of one channel spread over 2 workers; one
    message published by one more connection; the time until the last
    subscriber has it (5 rounds)."""
import json
import os
import statistics
import subprocess
import time

WORKLOADS = ["ws"]  # its --only name in bench/run
PORTS = {"loom": 8120, "aiohttp": 8121, "node": 8122, "idle": 8123, "fanout": 8124}
NODE_PATH = "/usr/share/nodejs"

AIOHTTP_ECHO = """
from aiohttp import web, WSMsgType
async def echo(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws
app = web.Application()
app.router.add_get('/ws/echo', echo)
web.run_app(app, host='127.0.0.1', port=%d, access_log=None, print=None)
"""

NODE_ECHO = """
const WebSocket = require('ws');
const wss = new WebSocket.Server({host: '127.0.0.1', port: %d, perMessageDeflate: false});
wss.on('connection', (ws) => ws.on('message', (d, bin) => ws.send(d, {binary: bin})));
"""


def load_bin(B):
    return os.path.join(B.BUILD, "bin", "bench_ws_load")


def echo_once(B, url, pid, seconds):
    """One measurement: round trips/s and server CPU µs per round trip."""
    p = subprocess.Popen(B.on_client_cpu([load_bin(B), "echo", url, "64", str(seconds), "32"]),
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if line.strip() != "connected":
        p.kill()
        raise SystemExit("bench/ws: the echo load did not connect to %s: %r" % (url, line))
    before = B.cpu_times(pid)
    out = p.stdout.read()
    after = B.cpu_times(pid)
    p.wait(30)
    r = json.loads(out.strip().splitlines()[-1])
    n = max(r["messages"], 1)
    return {"msgs_per_s": round(r["messages"] / r["seconds"], 1),
            "cpu_us_per_msg": round((after[0] - before[0]) / 1000 / n, 3),
            "errors": r["errors"], "messages": r["messages"]}


def start(B, argv, port, env=None):
    p = subprocess.Popen(B.on_server_cpu(argv), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env)
    if not B.wait_port(port) or p.poll() is not None:
        raise SystemExit("bench/ws: %s did not start" % argv[0])
    time.sleep(0.3)
    B.check_pinned(os.path.basename(argv[0]), p.pid)
    return p


def echo_workload(B, add, rounds, seconds):
    plug = os.path.join(B.BUILD, "plugins")
    loom = B.Loom(PORTS["loom"], [os.path.join(plug, "ws-echo.so")], args=["--single"])
    aio = start(B, ["/usr/bin/python3", "-c", AIOHTTP_ECHO % PORTS["aiohttp"]], PORTS["aiohttp"])
    node = start(B, ["node", "-e", NODE_ECHO % PORTS["node"]], PORTS["node"],
                 env=dict(os.environ, NODE_PATH=NODE_PATH))
    servers = [("loom", loom.proc.pid), ("node", node.pid), ("aiohttp", aio.pid)]
    per = {n: [] for n, _ in servers}
    try:
        for r in range(rounds):
            k = r % len(servers)
            for pos, (name, pid) in enumerate(servers[k:] + servers[:k]):
                url = "ws://127.0.0.1:%d/ws/echo" % PORTS[name]
                if B.SETTLE:
                    echo_once(B, url, pid, B.SETTLE)
                m = echo_once(B, url, pid, seconds)
                m.update({"round": r + 1, "position": pos + 1})
                per[name].append(m)
                B.log("ws-echo64    round %d/%d  %-8s %s" % (r + 1, rounds, name, m))
    finally:
        loom.stop()
        for p in (aio, node):
            p.terminate()
            p.wait(10)
    for name, _ in servers:
        ms = per[name]
        add("ws-echo64", name, {
            "msgs_per_s": round(statistics.median(m["msgs_per_s"] for m in ms), 1),
            "cpu_us_per_msg": round(statistics.median(m["cpu_us_per_msg"] for m in ms), 3),
            "errors": sum(m["errors"] for m in ms), "rounds": ms})


def idle_workload(B, add, n=10000):
    """Each figure on a fresh server: memory freed by one test would be
    reused by the next and hide its cost."""
    B.raise_nofile()
    bp = os.path.join(B.BUILD, "bench-plugins", "benchws.so")
    hello = os.path.join(B.BUILD, "plugins", "hello.so")  # GET / for the HTTP figure
    cfg = {"max_connections": n + 100}
    loom = B.Loom(PORTS["idle"], [bp, hello], args=["--single"], config=cfg)
    try:
        http = B.idle_rss_per_conn(PORTS["idle"], loom.proc.pid, n)
    finally:
        loom.stop()
    loom = B.Loom(PORTS["idle"], [bp, hello], args=["--single"], config=cfg)
    try:
        pid = loom.proc.pid
        time.sleep(0.5)
        before = B.rss_kb(pid)
        p = subprocess.Popen(B.on_client_cpu([load_bin(B), "idle",
                                              "ws://127.0.0.1:%d/ws/sub" % PORTS["idle"], str(n)]),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        if not line.startswith("ready"):
            p.kill()
            raise SystemExit("bench/ws: %d idle WebSockets did not open: %r" % (n, line))
        time.sleep(1.0)
        after = B.rss_kb(pid)
        p.stdin.close()
        p.wait(60)
        add("ws-idle10k", "loom", {"ws_bytes_per_conn": round((after - before) * 1024 / n),
                                   "http_bytes_per_conn": http, "connections": n})
    finally:
        loom.stop()


def fanout_workload(B, add, n=10000, rounds=5):
    B.raise_nofile()
    bp = os.path.join(B.BUILD, "bench-plugins", "benchws.so")
    loom = B.Loom(PORTS["fanout"], [bp], args=["--workers", "2"],
                  config={"max_connections": n + 100})
    try:
        pid = loom.proc.pid
        p = subprocess.Popen(B.on_client_cpu([load_bin(B), "fanout",
                                              "ws://127.0.0.1:%d/ws/sub" % PORTS["fanout"], str(n),
                                              str(rounds)]), stdout=subprocess.PIPE, text=True)
        before = B.cpu_times(pid)
        out, _ = p.communicate(timeout=300)
        after = B.cpu_times(pid)
        r = json.loads(out.strip().splitlines()[-1])
        add("ws-fanout10k", "loom", {
            "subscribers": n, "workers": 2, "ms_median": round(statistics.median(r["ms"]), 2),
            "ms": r["ms"], "errors": r["errors"],
            "server_cpu_ms_total": round((after[0] - before[0]) / 1e6, 1)})
    finally:
        loom.stop()


def run(B, a, secs, want, add, anchor_pids, env):
    """bench/run's hook: --only ws."""
    busy = [p for p in PORTS.values() if B.port_open(p)]
    if busy:
        raise SystemExit("bench/run: port(s) %s already in use" % ", ".join(map(str, busy)))
    echo_workload(B, add, a.rounds, a.seconds)
    idle_workload(B, add)
    fanout_workload(B, add)


def lines(rows):
    """Report lines for these workloads, with their ratios and targets."""
    by = {(r["workload"], r["server"]): r for r in rows}
    out = []
    lo = by.get(("ws-echo64", "loom"))
    for name in ("loom", "node", "aiohttp"):
        r = by.get(("ws-echo64", name))
        if not r:
            continue
        ratio = ""
        if lo and name != "loom" and r["cpu_us_per_msg"]:
            ratio = "; loom's CPU per message is %.3fx" % (lo["cpu_us_per_msg"] / r["cpu_us_per_msg"])
        out.append("| ws-echo64 | %s | %.0f round trips/s, %.2f CPU µs per message%s |||||| " % (
            name, r["msgs_per_s"], r["cpu_us_per_msg"], ratio))
    r = by.get(("ws-idle10k", "loom"))
    if r:
        out.append("| ws-idle10k | loom | RSS per idle WebSocket: %d bytes (HTTP keep-alive, same "
                   "server: %d bytes) |||||| " % (r["ws_bytes_per_conn"], r["http_bytes_per_conn"]))
    r = by.get(("ws-fanout10k", "loom"))
    if r:
        out.append("| ws-fanout10k | loom | one message to %d subscribers in 2 workers: last "
                   "delivery after %.1f ms (median of %d; %s), server CPU %.0f ms in all |||||| " % (
                       r["subscribers"], r["ms_median"], len(r["ms"]),
                       ", ".join("%.1f" % x for x in r["ms"]), r["server_cpu_ms_total"]))
    return out


def targets(B, by, target, t):
    """Issue 19's: server CPU per echoed message <= 0.2x Node ws's and <= 0.1x
    aiohttp's, per round (both measured in the same round)."""
    lo = by.get(("ws-echo64", "loom"))
    for other, bound in (("node", 0.2), ("aiohttp", 0.1)):
        r = by.get(("ws-echo64", other))
        if not lo or not r:
            continue
        per_round = {m["round"]: m["cpu_us_per_msg"] for m in r["rounds"]}
        rs = [m["cpu_us_per_msg"] / per_round[m["round"]] for m in lo["rounds"]
              if per_round.get(m["round"])]
        target("WebSocket echo CPU/message <= %.1f x %s" % (bound, other), rs,
               lambda x, b=bound: x <= b, "loom/%s" % other,
               "%.2f vs %.2f µs" % (lo["cpu_us_per_msg"], r["cpu_us_per_msg"]))
