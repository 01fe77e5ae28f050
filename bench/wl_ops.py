"""bench/wl_ops.py: what operating loom costs, for bench/run (--only metrics,
accesslog, pluginlog).

  metrics     two looms with the same plugins, one with the admin listener
              (metrics collected on every request), one without, loaded at
              once in rounds (the routes1000 method): the target is metrics
              costing at most 3% of CPU per plaintext request.
  accesslog   loom with its access log (Combined, to a file; buffered per
              worker and written every 250 ms or 64 KiB) against nginx with
              `access_log FILE combined buffer=64k`, loaded at once in
              rounds: the target is loom's CPU per request <= 0.9x nginx's.
  pluginlog   loom with the logging plugin (two plugin log lines per
              request, stderr to a file) against loom without it, loaded at
              once: what plugin log lines cost now that they are gathered
              (the issue measured +40% when each line was its own write).

Each server runs one worker (--single for loom; worker_processes 1), pinned
to the server CPU like the rest of bench/run. B is bench/run's helpers."""
import os
import shutil
import statistics
import subprocess
import tempfile
import urllib.request

WORKLOADS = ("metrics", "accesslog", "pluginlog")
PORTS = {"metrics-on": 8120, "admin": 8121, "metrics-off": 8122, "alog-loom": 8123,
         "alog-nginx": 8124, "plog-on": 8125, "plog-off": 8126}


def _nginx(B, port, logdir):
    """An nginx like the anchor's, with an access log buffered by 64 KiB."""
    d = tempfile.mkdtemp(prefix="loom-bench-nginx-alog-")
    os.chmod(d, 0o755)
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write("worker_processes 1; daemon off; pid %s/nginx.pid; error_log %s/error.log;\n"
                "events { worker_connections 16384; }\n"
                "http { access_log %s/access.log combined buffer=64k;\n"
                "  keepalive_requests 100000000;\n"
                "  server { listen 127.0.0.1:%d reuseport backlog=4096;\n"
                "    location / { default_type text/plain; return 200 \"Hello, World!\"; } } }\n"
                % (d, d, logdir, port))
    if B.port_open(port):
        raise SystemExit("bench/run: port %d is already in use by another process" % port)
    p = subprocess.Popen(B.on_server_cpu(["nginx", "-c", os.path.join(d, "nginx.conf"), "-p", d]),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not B.wait_port(port):
        p.kill()
        raise SystemExit("bench/run: nginx with an access log did not start")
    B.check_pinned("nginx :%d" % port, p.pid)
    return p, d


def _lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except OSError:
        return 0


def run(B, a, secs, want, add, anchor_pids, env):
    rounds, seconds = a.rounds, a.seconds
    plug = os.path.join(B.BUILD, "plugins")
    bplug = os.path.join(B.BUILD, "bench-plugins")
    base = [os.path.join(plug, "hello.so"), os.path.join(bplug, "benchjson.so"),
            os.path.join(bplug, "benchmw.so")]
    url = "http://127.0.0.1:%d/"
    if want("metrics"):
        on = B.Loom(PORTS["metrics-on"], base, args=["--single"],
                    config={"admin": {"listen": "127.0.0.1:%d" % PORTS["admin"]}})
        off = B.Loom(PORTS["metrics-off"], base, args=["--single"])
        try:
            for p in ("metrics-on", "metrics-off"):
                B.warm(url % PORTS[p])
            B.together("metrics", [("loom-metrics-off", url % PORTS["metrics-off"], off.proc.pid),
                                   ("loom-metrics-on", url % PORTS["metrics-on"], on.proc.pid)],
                       rounds, seconds, add)
            # The figures were collected: the scrape counts what wrk sent.
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % PORTS["admin"],
                                          timeout=10).read().decode()
            n = sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
                    if ln.startswith("loom_http_requests_total{"))
            B.log("metrics: the scrape counts %d requests" % n)
            add("metrics-scrape", "loom", {"requests_counted": int(n), "bytes": len(text)})
        finally:
            on.stop()
            off.stop()
    if want("accesslog"):
        logdir = tempfile.mkdtemp(prefix="loom-bench-alog-")
        os.chmod(logdir, 0o777)  # nginx's workers run as nobody
        lp = os.path.join(logdir, "loom-access.log")
        lm = B.Loom(PORTS["alog-loom"], [os.path.join(plug, "hello.so")],
                    args=["--single", "--access-log", lp])
        ng, ngdir = _nginx(B, PORTS["alog-nginx"], logdir)
        try:
            B.warm(url % PORTS["alog-loom"])
            B.warm(url % PORTS["alog-nginx"])
            B.together("accesslog", [("loom", url % PORTS["alog-loom"], lm.proc.pid),
                                     ("nginx", url % PORTS["alog-nginx"], ng.pid)],
                       rounds, seconds, add)
        finally:
            lm.stop()
            ng.terminate()
            ng.wait(10)
            B.log("accesslog: %d lines from loom, %d from nginx" % (
                _lines(lp), _lines(os.path.join(logdir, "access.log"))))
            shutil.rmtree(ngdir, ignore_errors=True)
            shutil.rmtree(logdir, ignore_errors=True)
    if want("pluginlog"):
        with_log = B.Loom(PORTS["plog-on"], [os.path.join(plug, "hello.so"),
                                             os.path.join(plug, "logging.so")], args=["--single"])
        without = B.Loom(PORTS["plog-off"], [os.path.join(plug, "hello.so")], args=["--single"])
        try:
            B.warm(url % PORTS["plog-on"])
            B.warm(url % PORTS["plog-off"])
            B.together("pluginlog", [("loom", url % PORTS["plog-off"], without.proc.pid),
                                     ("loom-logging", url % PORTS["plog-on"], with_log.proc.pid)],
                       rounds, seconds, add)
        finally:
            with_log.stop()
            without.stop()


def targets(B, by, target, t):
    """Issue 22's targets: metrics cost <= 3% of CPU per plaintext request;
    with the access log on, loom's CPU per request <= 0.9x nginx's. The
    logging plugin's ratio is shown, without a target."""
    for wl, num, den, name, ok in (
            ("metrics", "loom-metrics-on", "loom-metrics-off", "metrics add <= 3% CPU/req",
             lambda x: x <= 1.03),
            ("accesslog", "loom", "nginx", "access log on: CPU/req <= 0.9 x nginx",
             lambda x: x <= 0.9)):
        rs = B.paired(by, wl, num, den, "cpu_us")
        if rs:
            target(name, rs, ok, "%s/%s" % (num, den), "%.2f vs %.2f µs" % (
                by[(wl, num)]["cpu_us"], by[(wl, den)]["cpu_us"]))


def lines(rows):
    """The logging plugin's cost: the median per-round ratio of CPU per request."""
    by = {(r["workload"], r["server"]): r for r in rows}
    a, b = by.get(("pluginlog", "loom-logging")), by.get(("pluginlog", "loom"))
    if not (a and b and "rounds" in a and "rounds" in b):
        return []
    db = {m["round"]: m["cpu_us"] for m in b["rounds"]}
    rs = [m["cpu_us"] / db[m["round"]] for m in a["rounds"] if db.get(m["round"])]
    if not rs:
        return []
    return ["| operations | measured |", "|---|---|",
            "| logging plugin (2 plugin log lines per request) | CPU/req loom-logging/loom %.3f "
            "(median of %d round(s)); %.2f vs %.2f µs |" % (statistics.median(rs), len(rs),
                                                            a["cpu_us"], b["cpu_us"])]
