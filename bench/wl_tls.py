"""TLS workloads of bench/run (--only tls, or one of tls-keepalive,
tls-handshake, tls-resumed, tls-static1m, tls-idle10k).

loom and nginx serve HTTPS with the same certificate (ECDSA P-256, made
here), the same curve (X25519) and the same cipher (TLS 1.3,
TLS_AES_128_GCM_SHA256), one worker each, pinned like the other servers;
h2o and Node join the keep-alive workload. The kernel here has no TLS ULP
(kTLS), so every server encrypts in user space.

- tls-keepalive: wrk over HTTPS keep-alive connections (64), interleaved
  rounds like plaintext, and loom with nginx loaded at once.
- tls-handshake / tls-resumed: openssl s_time processes (new sessions, or
  resuming one ticket) on the client CPU; handshakes per second and the
  server's CPU per handshake.
- tls-static1m: a 1 MiB file over HTTPS keep-alive (16 connections); the
  server's CPU per MiB.
- tls-idle10k: 10,000 TLS keep-alive connections, each after one request;
  the server's RSS per connection.
"""
import asyncio
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

WORKLOADS = ["tls", "tls-keepalive", "tls-handshake", "tls-resumed", "tls-static1m", "tls-idle10k"]
PORTS = {"nginx": 8111, "loom": 8112, "h2o": 8113, "node": 8114}
SUITE = "TLS_AES_128_GCM_SHA256"


def _want(want, name):
    return want("tls") or want(name)


def make_cert(d, root):
    sys.path.insert(0, os.path.join(root, "tests", "lib"))
    import tlscerts
    ca = tlscerts.CA("loom bench CA")
    ca.write_ca(d, "ca")
    return ca.issue("localhost", names=["localhost"], ips=["127.0.0.1"], days=30).write(d, "srv")


def start_servers(b, d, cert, key, www):
    procs = {}
    ng = os.path.join(d, "nginx")
    os.makedirs(ng)
    with open(os.path.join(ng, "nginx.conf"), "w") as f:
        f.write("""worker_processes 1; daemon off; pid %(d)s/nginx.pid; error_log %(d)s/error.log;
events { worker_connections 20000; }
http {
  access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  ssl_certificate %(cert)s; ssl_certificate_key %(key)s;
  ssl_protocols TLSv1.2 TLSv1.3; ssl_ecdh_curve X25519;
  ssl_conf_command Ciphersuites %(suite)s;
  ssl_session_tickets on; ssl_session_timeout 1h;
  server { listen 127.0.0.1:%(port)d ssl reuseport backlog=4096;
    location / { default_type text/plain; return 200 "Hello, World!"; }
    location /static/ { alias %(www)s/; } }
}
""" % {"d": ng, "cert": cert, "key": key, "suite": SUITE, "port": PORTS["nginx"], "www": www})
    procs["nginx"] = subprocess.Popen(b.on_server_cpu(["nginx", "-c", os.path.join(ng, "nginx.conf"),
                                                       "-p", ng]),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      preexec_fn=b.raise_nofile)
    so = [os.path.join(b.BUILD, "plugins", p) for p in ("hello.so", "static.so")]
    loom = b.Loom(PORTS["loom"], so, args=["--single"], config={
        "listen": [{"host": "127.0.0.1", "port": PORTS["loom"], "tls": True}],
        "tls": {"cert": cert, "key": key, "curves": "X25519", "ciphersuites": SUITE},
        "plugins": {"static": {"mounts": [{"prefix": "/static", "root": www}]}},
        "keepalive_timeout": 300}, listen=True)
    procs["loom"] = loom
    h2 = os.path.join(d, "h2o.conf")
    with open(h2, "w") as f:
        f.write("listen:\n  host: 127.0.0.1\n  port: %d\n  ssl:\n    certificate-file: %s\n"
                "    key-file: %s\n    cipher-preference: server\nnum-threads: 1\nuser: root\n"
                "error-log: %s/h2o.err\nhosts: {default: {paths: {/: {file.dir: %s}}}}\n"
                % (PORTS["h2o"], cert, key, d, www))
    if shutil.which("h2o"):
        procs["h2o"] = subprocess.Popen(b.on_server_cpu(["h2o", "-c", h2]),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    js = os.path.join(d, "node.js")
    with open(js, "w") as f:
        f.write("const fs = require('fs');\n"
                "require('https').createServer({key: fs.readFileSync('%s'), cert: "
                "fs.readFileSync('%s')}, (q, s) => {\n"
                "  s.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': 13}); "
                "s.end('Hello, World!');\n}).listen(%d, '127.0.0.1');\n" % (key, cert, PORTS["node"]))
    if shutil.which("node"):
        procs["node"] = subprocess.Popen(b.on_server_cpu(["node", js]), stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
    for name, port in PORTS.items():
        if name in procs and not b.wait_port(port):
            b.log("bench/run: %s (TLS) did not start on %d" % (name, port))
            p = procs.pop(name)
            (p.stop() if name == "loom" else p.terminate())
    for name, p in procs.items():
        if name != "loom":
            b.pin_server(name + " tls", p.pid)
    return procs


def pid_of(name, p):
    return p.proc.pid if name == "loom" else p.pid


def s_time(b, port, pid, seconds, mode, procs=6):
    """openssl s_time processes at once on the client CPU: handshakes per
    second (summed) and the server's CPU µs per handshake."""
    argv = ["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, mode, "-time", str(seconds),
            "-www", "/"]
    before = b.cpu_times(pid)
    ps = [subprocess.Popen(b.on_client_cpu(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True) for _ in range(procs)]
    n = 0
    for p in ps:
        out = p.communicate(timeout=seconds + 60)[0]
        m = re.findall(r"(\d+) connections in (\d+) real seconds", out)
        if m:
            n += int(m[-1][0])
    ns1, _ = b.cpu_times(pid)
    n = max(n, 1)
    return {"rps": round(n / seconds, 1), "cpu_us": round((ns1 - before[0]) / 1000 / n, 2),
            "p99_ms": 0.0, "errors": 0, "requests": n}


def idle_tls(b, port, pid, n):
    """n TLS keep-alive connections, one request each, held open; the
    server's RSS growth per connection."""
    b.raise_nofile()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    before = b.rss_kb(pid)
    conns = []

    async def one(sem):
        async with sem:
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
            w.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            head = await r.readuntil(b"\r\n\r\n")
            await r.readexactly(int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1)))
            conns.append(w)

    async def main():
        sem = asyncio.Semaphore(200)
        await asyncio.gather(*[one(sem) for _ in range(n)])
        await asyncio.sleep(1.0)
        after = b.rss_kb(pid)
        for w in conns:
            w.transport.abort()
        return after

    after = asyncio.run(main())
    return round((after - before) * 1024 / n)


def run(b, a, secs, want, add, anchor_pids, env):
    d = tempfile.mkdtemp(prefix="loom-bench-tls-")
    os.chmod(d, 0o755)  # nginx's worker (nobody) reads the files
    www = os.path.join(d, "www")
    os.makedirs(www)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("Hello, World!")
    with open(os.path.join(www, "1m.bin"), "wb") as f:
        f.write(os.urandom(1 << 20))
    cert, key = make_cert(d, b.ROOT)
    busy = [p for p in PORTS.values() if b.port_open(p)]
    if busy:
        raise SystemExit("bench/run: port(s) %s already in use" % busy)
    procs = start_servers(b, d, cert, key, www)
    try:
        url = {n: "https://127.0.0.1:%d/" % PORTS[n] for n in procs}
        for u in url.values():
            b.warm(u)
        servers = [(n, url[n], pid_of(n, procs[n])) for n in ("loom", "nginx", "h2o", "node")
                   if n in procs]
        if _want(want, "tls-keepalive"):
            b.interleaved("tls-keepalive", servers, a.rounds, a.seconds, add)
            b.together("tls-keepalive-together", servers[:2], a.rounds, a.seconds, add)
        pair = [s for s in servers if s[0] in ("loom", "nginx")]
        for wl, mode in (("tls-handshake", "-new"), ("tls-resumed", "-reuse")):
            if not _want(want, wl):
                continue
            for r in range(max(1, min(a.rounds, 3))):
                for name, _, pid in (pair if r % 2 == 0 else pair[::-1]):
                    m = s_time(b, PORTS[name], pid, secs, mode)
                    m["round"] = r + 1
                    b.log("%-14s round %d %-6s %s" % (wl, r + 1, name, m))
                    add(wl + "-r%d" % (r + 1), name, m)
        if _want(want, "tls-static1m"):
            for name, _, pid in pair:
                u = "https://127.0.0.1:%d/static/1m.bin" % PORTS[name]
                b.warm(u)
                m = b.wrk(u, pid, secs, conns=16)
                m["us_per_mib"] = m["cpu_us"]
                add("tls-static1m", name, m)
        if _want(want, "tls-idle10k"):
            n = 2000 if a.quick else 10000
            for name, _, pid in pair:
                add("tls-idle10k", name, {"bytes_per_conn": idle_tls(b, PORTS[name], pid, n),
                                          "connections": n})
    finally:
        for name, p in procs.items():
            if name == "loom":
                p.stop()
            else:
                p.terminate()
                p.wait(10)
        shutil.rmtree(d, ignore_errors=True)


def targets(b, by, target, t):
    """Issue 16's targets: keep-alive CPU <= 0.9x nginx; full and resumed
    handshakes/s >= nginx; static CPU per byte <= nginx; idle memory <= nginx."""
    import statistics
    lk, nk = by.get(("tls-keepalive", "loom")), by.get(("tls-keepalive", "nginx"))
    if lk and nk:
        db = {m["round"]: m["cpu_us"] for m in nk["rounds"]}
        rs = [m["cpu_us"] / db[m["round"]] for m in lk["rounds"] if db.get(m["round"])]
        target("HTTPS keep-alive CPU/req <= 0.9 x nginx", rs, lambda x: x <= 0.9, "loom/nginx",
               "%.2f vs %.2f µs" % (lk["cpu_us"], nk["cpu_us"]))
    lt, nt = by.get(("tls-keepalive-together", "loom")), by.get(("tls-keepalive-together", "nginx"))
    if lt and nt:
        db = {m["round"]: m["cpu_us"] for m in nt["rounds"]}
        rs = [m["cpu_us"] / db[m["round"]] for m in lt["rounds"] if db.get(m["round"])]
        target("HTTPS keep-alive CPU/req <= 0.9 x nginx, both loaded at once", rs,
               lambda x: x <= 0.9, "loom/nginx", "%.2f vs %.2f µs" % (lt["cpu_us"], nt["cpu_us"]))
    for wl, what in (("tls-handshake", "full"), ("tls-resumed", "resumed")):
        rs, cs = [], []
        r = 1
        while (wl + "-r%d" % r, "loom") in by:
            lo, ng = by[(wl + "-r%d" % r, "loom")], by.get((wl + "-r%d" % r, "nginx"))
            if ng:
                rs.append(lo["rps"] / ng["rps"])
                cs.append(lo["cpu_us"] / ng["cpu_us"])
            r += 1
        if rs:
            target("%s handshakes/s >= nginx" % what, rs, lambda x: x >= 1, "loom/nginx",
                   "server CPU per handshake loom/nginx %s" % " ".join("%.2f" % c for c in cs))
    ls, ns = by.get(("tls-static1m", "loom")), by.get(("tls-static1m", "nginx"))
    if ls and ns:
        target("1 MiB over TLS: CPU per byte <= nginx", [ls["cpu_us"] / ns["cpu_us"]],
               lambda x: x <= 1, "loom/nginx", "%.0f vs %.0f µs per MiB" % (ls["cpu_us"],
                                                                             ns["cpu_us"]))
    li, ni = by.get(("tls-idle10k", "loom")), by.get(("tls-idle10k", "nginx"))
    if li and ni:
        t.append(("idle TLS connection memory <= nginx", li["bytes_per_conn"] <= ni["bytes_per_conn"],
                  "%d vs %d B" % (li["bytes_per_conn"], ni["bytes_per_conn"]), None, None, None))
    _ = statistics
