"""bench/wl_compress.py: the compress and sse workloads of bench/run.

make_json(n) is the document both the benchmark and
bench/compress_levels.py compress: an array of records as an API returns
them, deterministic (seeded), about n bytes."""
import json
import random


def make_json(n):
    rnd = random.Random(20)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
             "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo"]
    items, size, i = [], 2, 0
    while True:
        rec = {"id": i, "name": "%s %s" % (rnd.choice(words), rnd.choice(words)),
               "email": "user%d@example.com" % rnd.randrange(100000),
               "active": rnd.random() < 0.7, "score": round(rnd.random() * 1000, 2),
               "tags": rnd.sample(words, 3), "created": "2024-%02d-%02dT%02d:%02d:00Z" % (
                   rnd.randrange(1, 13), rnd.randrange(1, 29), rnd.randrange(24), rnd.randrange(60))}
        t = json.dumps(rec, separators=(",", ":"))
        if size + len(t) + 1 > n:
            break
        items.append(t)
        size += len(t) + 1
        i += 1
    body = "[" + ",".join(items) + "]"
    return (body + " " * (n - len(body))).encode()


# ---- the workloads (called by bench/run with itself as B) -------------------

import os  # noqa: E402
import selectors  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402

LEVEL = 5  # gzip level: loom's default, given to nginx and h2o too
PORTS = {"loom": 8100, "nginx": 8101, "h2o": 8102, "sse": 8103}


def wire_bytes(url, coding):
    """Header and body bytes of one response, as curl reads them."""
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", "Accept-Encoding: " + coding,
                          "-w", "%{size_header} %{size_download} %{content_type}", url],
                         capture_output=True, text=True, timeout=30).stdout.split()
    return int(out[0]) + int(out[1]), int(out[1])


def lua(tmp, coding):
    path = os.path.join(tmp, "ae-%s.lua" % coding)
    with open(path, "w") as f:
        f.write('wrk.headers["Accept-Encoding"] = "%s"\n' % coding)
    return path


def compress_workloads(B, secs, add):
    """gzip100k: a 100 KiB JSON file compressed per request (gzip level 5)
    by loom (static + compress), nginx (gzip on) and h2o (compress);
    br-static100k: the same file precompressed, loom serving file.br
    against nginx's gzip_static serving file.gz."""
    tmp = tempfile.mkdtemp(prefix="loom-bench-compress-")
    os.chmod(tmp, 0o755)  # nginx's workers run as nobody
    dyn, pre = os.path.join(tmp, "dyn"), os.path.join(tmp, "pre")
    os.mkdir(dyn)
    os.mkdir(pre)
    doc = make_json(100 * 1024)
    for d in (dyn, pre):
        with open(os.path.join(d, "data.json"), "wb") as f:
            f.write(doc)
    import brotli
    with open(os.path.join(pre, "data.json.br"), "wb") as f:
        f.write(brotli.compress(doc, quality=11))
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(os.path.join(pre, "data.json.gz"), "wb") as f:
        f.write(c.compress(doc) + c.flush())
    plugins = [os.path.join(B.BUILD, "plugins", p + ".so") for p in ("static", "compress")]
    loom = B.Loom(PORTS["loom"], plugins, args=["--single"], config={"plugins": {
        "static": {"mounts": [{"prefix": "/dyn", "root": dyn, "precompressed": False},
                              {"prefix": "/pre", "root": pre}]},
        "compress": {"levels": {"gzip": LEVEL}}}})
    with open(os.path.join(tmp, "nginx.conf"), "w") as f:
        f.write("worker_processes 1; daemon off; pid %s/nginx.pid; error_log %s/error.log;\n"
                "events { worker_connections 16384; }\n"
                "http { access_log off; sendfile on; keepalive_requests 100000000;\n"
                "  types { application/json json; }\n"
                "  gzip on; gzip_comp_level %d; gzip_types application/json; gzip_vary on;\n"
                "  gzip_min_length 1024;\n"
                "  server { listen 127.0.0.1:%d reuseport backlog=4096;\n"
                "    location /dyn/ { alias %s/; }\n"
                "    location /pre/ { gzip_static on; alias %s/; } } }\n"
                % (tmp, tmp, LEVEL, PORTS["nginx"], dyn, pre))
    with open(os.path.join(tmp, "h2o.conf"), "w") as f:
        f.write("listen: {host: 127.0.0.1, port: %d}\nnum-threads: 1\nuser: root\n"
                "error-log: %s/h2o_error.log\ncompress: {gzip: %d}\n"
                "hosts: {default: {paths: {/dyn: {file.dir: %s}}}}\n"
                % (PORTS["h2o"], tmp, LEVEL, dyn))
    procs = []
    try:
        for name, argv in (("nginx", ["nginx", "-c", os.path.join(tmp, "nginx.conf"), "-p", tmp]),
                           ("h2o", ["h2o", "-c", os.path.join(tmp, "h2o.conf")])):
            if B.port_open(PORTS[name]):
                raise SystemExit("bench/run: port %d is already in use" % PORTS[name])
            p = subprocess.Popen(B.on_server_cpu(argv), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            procs.append((name, p))
            if not B.wait_port(PORTS[name]) or p.poll() is not None:
                raise SystemExit("bench/run: %s did not start for the compress workload" % name)
            B.check_pinned("%s :%d" % (name, PORTS[name]), p.pid)
        servers = [("loom", loom.proc.pid)] + [(n, p.pid) for n, p in procs]
        gz = lua(tmp, "gzip")
        for name, pid in servers:
            url = "http://127.0.0.1:%d/dyn/data.json" % PORTS[name]
            total, body = wire_bytes(url, "gzip")
            B.warm(url, 1, script=gz)
            m = B.wrk(url, pid, secs, script=gz)
            m.update({"bytes_on_wire": total, "body_bytes": body})
            add("gzip100k", name, m)
        br = lua(tmp, "br")
        for name, pid, coding in (("loom", loom.proc.pid, "br"), ("nginx", procs[0][1].pid, "gzip")):
            url = "http://127.0.0.1:%d/pre/data.json" % PORTS[name]
            total, body = wire_bytes(url, coding)
            script = br if coding == "br" else gz
            B.warm(url, 1, script=script)
            m = B.wrk(url, pid, secs, script=script)
            m.update({"bytes_on_wire": total, "body_bytes": body, "coding": coding})
            add("static100k-precompressed", name, m)
    finally:
        loom.stop()
        for _, p in procs:
            p.terminate()
            p.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def sse_fanout(B, add, streams=10000):
    """One event to `streams` open event streams in one worker: the time
    from the POST that sends it to the last stream's receipt, read by one
    client process over epoll."""
    B.raise_nofile()
    so = os.path.join(B.BUILD, "bench-plugins", "benchsse.so")
    loom = B.Loom(PORTS["sse"], [so], args=["--single"],
                  config={"max_connections": streams + 100})
    socks = []
    sel = selectors.DefaultSelector()
    try:
        req = b"GET /sse HTTP/1.1\r\nHost: b\r\n\r\n"
        for i in range(streams):
            s = socket.create_connection(("127.0.0.1", PORTS["sse"]), timeout=10)
            s.sendall(req)
            socks.append(s)
        for s in socks:  # every head is in: the stream is open
            got = b""
            while b"\r\n\r\n" not in got:
                got += s.recv(4096)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        rss = B.rss_kb(loom.proc.pid)
        before = B.cpu_times(loom.proc.pid)
        t0 = time.perf_counter()
        fire = socket.create_connection(("127.0.0.1", PORTS["sse"]), timeout=30)
        fire.sendall(b"POST /fire HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n")
        left, deadline = set(socks), time.time() + 60
        while left and time.time() < deadline:
            for key, _ in sel.select(1):
                try:
                    if b"fan-out" in key.fileobj.recv(4096):
                        left.discard(key.fileobj)
                        sel.unregister(key.fileobj)
                except BlockingIOError:
                    pass
        t_last = time.perf_counter() - t0
        answer = fire.recv(4096)
        fire.close()
        ns = B.cpu_times(loom.proc.pid)[0] - before[0]
        add("sse-fanout", "loom", {
            "streams": streams, "delivered": streams - len(left),
            "ms_to_last": round(t_last * 1000, 1), "server_cpu_ms": round(ns / 1e6, 1),
            "rss_kb_per_stream": round(rss / streams, 2),
            "fire_answer": answer.split(b"\r\n\r\n", 1)[-1].decode("latin-1")})
    finally:
        for s in socks:
            s.close()
        loom.stop()


WORKLOADS = ["compress", "sse"]  # its --only names in bench/run


def run(B, a, secs, want, add, anchor_pids, env):
    """bench/run's hook: --only compress and/or --only sse."""
    if want("compress"):
        compress_workloads(B, secs, add)
    if want("sse"):
        sse_fanout(B, add)


def lines(rows):
    """Report lines for these workloads, with their ratios to nginx."""
    by = {(r["workload"], r["server"]): r for r in rows}
    out = []
    for wl in ("gzip100k", "static100k-precompressed"):
        ng = by.get((wl, "nginx"))
        for r in rows:
            if r["workload"] != wl:
                continue
            ratio = ""
            if ng and r["server"] != "nginx":
                ratio = "; vs nginx: CPU %.2fx, bytes on the wire %.2fx" % (
                    r["cpu_us"] / ng["cpu_us"], r["bytes_on_wire"] / ng["bytes_on_wire"])
            out.append("| %s | %s | %.0f req/s, %.1f CPU µs/req, %d bytes on the wire%s%s "
                       "|||||| " % (wl, r["server"], r["rps"], r["cpu_us"], r["bytes_on_wire"],
                                    " (%s)" % r["coding"] if "coding" in r else "", ratio))
    r = by.get(("sse-fanout", "loom"))
    if r:
        out.append("| sse-fanout | loom | one event to %d streams: last delivery after %.1f ms "
                   "(%d delivered), server CPU %.1f ms, RSS %.1f KiB per stream |||||| " % (
                       r["streams"], r["ms_to_last"], r["delivered"], r["server_cpu_ms"],
                       r["rss_kb_per_stream"]))
    return out
