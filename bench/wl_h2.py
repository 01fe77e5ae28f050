"""HTTP/2 workloads of bench/run (--only h2, or one of h2-tls, h2c,
h2-page100).

loom, nginx and h2o, one worker each, HTTP/2 on, all three with the same
ECDSA P-256 certificate, each with a TLS listener (h2 by ALPN) and a
plaintext one speaking h2c with prior knowledge, on ports 8120-8129. The
load is h2load (nghttp2-client) on the client CPU, one thread:

  h2-tls      -c 64 -m 16, GET / ("Hello, World!", 13 bytes: loom's hello
              plugin, nginx `return 200`, h2o a file, as the HTTP/1.1 anchors)
  h2c         the same over h2c with prior knowledge
  h2-page100  a page's 100 assets (20 of 1 KiB, 40 of 4 KiB, 30 of 16 KiB,
              10 of 64 KiB: static files from loom's static plugin, nginx's
              root and h2o's file.dir), -c 8 -m 100 over TLS: eight browsers
              loading the page over and over, all 100 requests in flight

Each workload is measured in interleaved rounds (bench/run's method: the
order rotated every round, each measurement after an unmeasured second of
the same load). CPU per request is the server's schedstat time over the
h2load run (64 TLS handshakes included, the same for every server) divided
by the requests h2load completed; p99 comes from h2load's per-request log.
Targets: loom's CPU per request <= 0.9 x the better of nginx and h2o, and
its requests/s >= both, per workload (median of the per-round ratios).
"""
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

WORKLOADS = ["h2", "h2-tls", "h2c", "h2-page100"]
PORTS = {"loom": (8120, 8121), "nginx": (8122, 8123), "h2o": (8124, 8125)}
SIZES = [1024] * 20 + [4096] * 40 + [16384] * 30 + [65536] * 10
SERVERS = ("loom", "nginx", "h2o")


def make_site(d):
    """www/ with index.html and a/0.bin ... a/99.bin; returns the asset paths."""
    www = os.path.join(d, "www")
    os.makedirs(os.path.join(www, "a"))
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("Hello, World!")
    paths = []
    for i, n in enumerate(SIZES):
        with open(os.path.join(www, "a", "%d.bin" % i), "wb") as f:
            f.write(os.urandom(n))
        paths.append("/a/%d.bin" % i)
    return www, paths


def cert(d):
    c, k = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", k, "-out", c, "-days",
                    "30", "-subj", "/CN=localhost"], check=True, capture_output=True)
    return c, k


def start_loom(b, d, www, c, k):
    plugins = os.path.join(d, "loom-plugins")
    os.mkdir(plugins)
    for p in ("hello", "static"):
        shutil.copy(os.path.join(b.BUILD, "plugins", p + ".so"), plugins)
    tls, h2c = PORTS["loom"]
    cfg = os.path.join(d, "loom.json")
    with open(cfg, "w") as f:
        f.write('{"listen": [{"host": "127.0.0.1", "port": %d, "tls": true},'
                ' {"host": "127.0.0.1", "port": %d, "h2c": true}],'
                ' "tls": {"cert": "%s", "key": "%s"},'
                ' "plugins": {"static": {"mounts": [{"prefix": "/a", "root": "%s/a"}]}}}'
                % (tls, h2c, c, k, www))
    return subprocess.Popen(b.on_server_cpu([b.LOOM, "serve", "--single", "--config", cfg,
                                               "--plugins-dir", plugins, "--log-level", "warn"]),
                            stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(d, "loom.log"), "w"),
                            preexec_fn=b.raise_nofile)


def start_nginx(b, d, www, c, k):
    tls, h2c = PORTS["nginx"]
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("worker_processes 1; daemon off; pid %s/nginx.pid; error_log %s/nginx.err;\n"
                "events { worker_connections 16384; }\n"
                "http { access_log off; keepalive_requests 100000000; sendfile on;\n"
                "  include /etc/nginx/mime.types;\n"
                "  server { listen 127.0.0.1:%d ssl http2 reuseport backlog=4096;\n"
                "           listen 127.0.0.1:%d http2 reuseport backlog=4096;\n"
                "    ssl_certificate %s; ssl_certificate_key %s;\n"
                "    location = / { default_type text/plain; return 200 \"Hello, World!\"; }\n"
                "    location /a/ { root %s; } } }\n" % (d, d, tls, h2c, c, k, www))
    return subprocess.Popen(b.on_server_cpu(["nginx", "-c", conf, "-p", d]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_h2o(b, d, www, c, k):
    tls, h2c = PORTS["h2o"]
    conf = os.path.join(d, "h2o.conf")
    user = "user: root\n" if os.geteuid() == 0 else ""
    with open(conf, "w") as f:
        f.write("num-threads: 1\n%serror-log: %s/h2o.err\n"
                "listen:\n  host: 127.0.0.1\n  port: %d\n  ssl:\n"
                "    certificate-file: %s\n    key-file: %s\n"
                "listen:\n  host: 127.0.0.1\n  port: %d\n"
                "hosts: {default: {paths: {/: {file.dir: %s}}}}\n" % (user, d, tls, c, k, h2c, www))
    return subprocess.Popen(b.on_server_cpu(["h2o", "-c", conf]), stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(d, "h2o.log"), "w"))


def h2load(b, urls, pid, seconds, conns, streams, logfile):
    """One measurement: rps, CPU µs per request, p99 ms, errors, requests."""
    args = ["h2load", "-t1", "-c%d" % conns, "-m%d" % streams, "-D", str(seconds),
            "--log-file", logfile] + list(urls)
    before = b.cpu_times(pid)
    p = subprocess.run(b.on_client_cpu(args), capture_output=True, text=True,
                       timeout=seconds + 60)
    (ns0, t0), (ns1, t1) = before, b.cpu_times(pid)
    out = p.stdout
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    if not m:
        raise SystemExit("bench/run: h2load on %s printed no result:\n%s%s" % (urls[0], out,
                                                                                p.stderr))
    done = max(int(m.group(3)), 1)
    errors = int(m.group(5)) + int(m.group(6)) + int(m.group(7))
    st = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    errors += int(st.group(3)) + int(st.group(4))
    rps = float(re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out).group(1))
    lat = []
    with open(logfile) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                lat.append(int(parts[2]))
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1000.0 if lat else 0.0
    os.unlink(logfile)
    return {"rps": rps, "cpu_us": round((ns1 - ns0) / 1000 / done, 3),
            "cpu_us_ticks": round((t1 - t0) * 1e6 / b.HZ / done, 2), "p99_ms": round(p99, 3),
            "errors": errors, "requests": done}


def rounds(b, workload, servers, a, add, conns, streams, logfile):
    """bench/run's interleaved(), with h2load: servers is [(name, urls, pid)]."""
    per = {name: [] for name, _, _ in servers}
    for r in range(a.rounds):
        k = r % len(servers)
        for pos, (name, urls, pid) in enumerate(servers[k:] + servers[:k]):
            if b.SETTLE:
                subprocess.run(b.on_client_cpu(["h2load", "-t1", "-c%d" % conns,
                                                  "-m%d" % streams, "-D", str(b.SETTLE)]
                                                 + list(urls)), capture_output=True,
                               timeout=b.SETTLE + 60)
            m = h2load(b, urls, pid, a.seconds, conns, streams, logfile)
            m.update({"round": r + 1, "position": pos + 1})
            per[name].append(m)
            b.log("%-12s round %d/%d  %-6s %s" % (workload, r + 1, a.rounds, name, m))
    b.add_medians(workload, servers, per, add)


def run(b, a, secs, want, add, anchor_pids, env):
    """Adds the rows of the HTTP/2 workloads asked for (bench/run calls it
    with its helpers as b)."""
    for name in SERVERS:
        for port in PORTS[name]:
            if b.port_open(port):
                raise SystemExit("bench/run: port %d is already in use by another process" % port)
    d = tempfile.mkdtemp(prefix="loom-bench-h2-")
    os.chmod(d, 0o755)  # nginx's worker runs as another user and reads www/
    www, assets = make_site(d)
    c, k = cert(d)
    procs = {}
    try:
        procs["loom"] = start_loom(b, d, www, c, k)
        procs["nginx"] = start_nginx(b, d, www, c, k)
        procs["h2o"] = start_h2o(b, d, www, c, k)
        for name in SERVERS:
            for port in PORTS[name]:
                if not b.wait_port(port) or procs[name].poll() is not None:
                    raise SystemExit("bench/run: %s did not start on %d (see %s)" % (name, port, d))
        time.sleep(0.3)
        for name in SERVERS:
            b.check_pinned("%s h2" % name, procs[name].pid)
        # Every server must answer every URL over h2 before anything is measured.
        for name in SERVERS:
            tls, h2c = PORTS[name]
            for url in ("https://127.0.0.1:%d/" % tls, "http://127.0.0.1:%d/" % h2c,
                        "https://127.0.0.1:%d%s" % (tls, assets[-1])):
                p = subprocess.run(["h2load", "-n", "2", "-c", "1", url], capture_output=True,
                                   text=True, timeout=30)
                if "2 succeeded" not in p.stdout or "2 2xx" not in p.stdout:
                    raise SystemExit("bench/run: %s does not answer %s over h2:\n%s"
                                     % (name, url, p.stdout[-1500:]))
        logfile = os.path.join(d, "h2load.log")
        for wl, make in (("h2-tls", lambda t, h: ["https://127.0.0.1:%d/" % t]),
                         ("h2c", lambda t, h: ["http://127.0.0.1:%d/" % h])):
            if not (want("h2") or want(wl)):
                continue
            servers = [(n, make(*PORTS[n]), procs[n].pid) for n in SERVERS]
            for _, urls, _ in servers:  # the first seconds pay for page faults
                subprocess.run(b.on_client_cpu(["h2load", "-t1", "-c64", "-m16", "-D", "1"]
                                                 + urls), capture_output=True, timeout=60)
            rounds(b, wl, servers, a, add, 64, 16, logfile)
        if want("h2") or want("h2-page100"):
            servers = [(n, ["https://127.0.0.1:%d%s" % (PORTS[n][0], p) for p in assets],
                        procs[n].pid) for n in SERVERS]
            rounds(b, "h2-page100", servers, a, add, 8, 100, logfile)
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)


def targets(b, by, target, t):
    """Issue 18's targets for bench/run's report: per round, loom against
    the better of nginx and h2o."""
    for wl in ("h2-tls", "h2c", "h2-page100"):
        rows = {s: by.get((wl, s)) for s in SERVERS}
        if not all(rows.values()):
            continue
        rs = {s: {m["round"]: m for m in rows[s]["rounds"]} for s in SERVERS}
        cpu, rps = [], []
        for r, m in rs["loom"].items():
            ng, ho = rs["nginx"].get(r), rs["h2o"].get(r)
            if ng and ho:
                cpu.append(m["cpu_us"] / min(ng["cpu_us"], ho["cpu_us"]))
                rps.append(m["rps"] / max(ng["rps"], ho["rps"]))
        best_cpu = min(rows["nginx"]["cpu_us"], rows["h2o"]["cpu_us"])
        best_rps = max(rows["nginx"]["rps"], rows["h2o"]["rps"])
        target("%s CPU/req <= 0.9 x the better of nginx, h2o" % wl, cpu, lambda x: x <= 0.9,
               "loom/best", "%.2f vs %.2f µs (nginx %.2f, h2o %.2f)" % (
                   rows["loom"]["cpu_us"], best_cpu, rows["nginx"]["cpu_us"],
                   rows["h2o"]["cpu_us"]))
        target("%s req/s >= nginx and h2o" % wl, rps, lambda x: x >= 1, "loom/best",
               "%.0f vs %.0f (nginx %.0f, h2o %.0f)" % (rows["loom"]["rps"], best_rps,
                                                        rows["nginx"]["rps"], rows["h2o"]["rps"]))
