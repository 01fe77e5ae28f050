"""bench/run --only client-https: the HTTPS client against nginx with TLS.

Two loads, every client in the same run against the same nginx (one worker,
TLS 1.3, a P-256 certificate made here by python3-cryptography):

- keep-alive: N GETs with 64 in flight over kept-alive TLS connections:
  `loom fetch -c 64`, the Python aiohttp client (one ClientSession, 64
  workers), `curl --parallel --parallel-max 64`;
- new-connection: M GETs, 64 in flight, each on a new TLS connection
  ("Connection: close": a handshake per GET; each client resumes sessions
  the way it does by default: loom and curl do, aiohttp does not).

Each client runs as a child process; its CPU time (user + system, from
getrusage of the children) divided by the GETs is the client's CPU per
request. Rounds interleave the clients; each figure is the best round.
Targets (issue 17): loom >= 8x aiohttp's requests/s, and >= curl's.

Also runnable alone: python3 bench/wl_client_https.py [--quick] [LOOM_BIN]
"""
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3"

AIOHTTP = r"""
import asyncio, ssl, sys, time
import aiohttp
url, n, c, ca, close = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
async def main():
    ctx = ssl.create_default_context(cafile=ca)
    left = [n]
    hdrs = {"Connection": "close"} if close else {}
    conn = aiohttp.TCPConnector(limit=c, ssl=ctx, force_close=close)
    async with aiohttp.ClientSession(connector=conn) as s:
        async def worker():
            while left[0] > 0:
                left[0] -= 1
                async with s.get(url, headers=hdrs) as r:
                    await r.read()
                    assert r.status == 200
        t = time.time()
        await asyncio.gather(*[worker() for _ in range(c)])
        print("%.3f" % (time.time() - t))
asyncio.run(main())
"""

NGINX = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    default_type text/plain;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port} ssl backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:bench:10m;
        root {tmp}/www;
    }}
}}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def timed(argv, n):
    """Runs argv; returns (requests/s, client CPU µs per request). The run's
    own elapsed time is used when it prints one (aiohttp: its loop only,
    not the interpreter's start), else the wall time around it."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    wall = time.time() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (argv[0], out.returncode,
                                                    (out.stdout + out.stderr)[-2000:]))
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    secs = wall
    for line in out.stdout.splitlines():
        if line.startswith("time: "):  # loom fetch's summary
            secs = float(line.split()[1])
        elif line.replace(".", "", 1).isdigit():  # the aiohttp script
            secs = float(line)
    if "requests:" in out.stdout and "failed: 0" not in out.stdout:
        raise RuntimeError("loom fetch had failures: " + out.stdout[-2000:])
    return n / secs, cpu / n * 1e6


WORKLOADS = ["client-https"]  # its --only name in bench/run


def run(b, a, secs, want, add, anchor_pids, env):
    """bench/run's hook: one row per client and load."""
    for m in measure(quick=a.quick, on_client_cpu=b.on_client_cpu, log=b.log):
        add("client-https", "%s-%s" % (m.pop("name"), m["load"]), m)


def measure(quick=False, loom=None, on_client_cpu=lambda a: a, log=print):
    """Runs both loads; returns rows: dicts with name, load, rps, cpu_us_per_req."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
    import tlscerts
    loom = loom or os.environ.get("LOOM_BIN") or os.path.join(ROOT, "build", "bin", "loom")
    for tool in ("nginx", "curl"):
        if not shutil.which(tool):
            raise RuntimeError(tool + " is not installed")
    n_ka, n_new, rounds = (2000, 300, 1) if quick else (20000, 3000, 3)
    conc = 64
    tmp = tempfile.mkdtemp(prefix="loom-bench-https-")
    nginx = None
    try:
        ca, cert, key = tlscerts.make(tmp)
        os.makedirs(os.path.join(tmp, "www"))
        with open(os.path.join(tmp, "www", "index.html"), "w") as f:
            f.write("Hello, World!")
        port = free_port()
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX.format(tmp=tmp, port=port, cert=cert, key=key))
        nginx = subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        url = "https://localhost:%d/" % port
        for _ in range(200):
            if subprocess.run(["curl", "-s", "-o", "/dev/null", "--cacert", ca, url]).returncode == 0:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("nginx (TLS) did not start")
        cfgs = {}
        for close in (0, 1):
            cfgs[close] = os.path.join(tmp, "curl%d.cfg" % close)
            with open(cfgs[close], "w") as f:
                for _ in range(n_new if close else n_ka):
                    f.write('url = "%s"\noutput = "/dev/null"\n' % url)
                    if close:
                        f.write('header = "Connection: close"\n')

        def clients(close):
            n = n_new if close else n_ka
            extra = ["-H", "Connection: close"] if close else []
            return [
                ("loom", n, on_client_cpu([loom, "fetch", "-q", "-n", str(n), "-c", str(conc),
                                           "--cacert", ca] + extra + [url])),
                ("aiohttp", n, on_client_cpu([PY, "-c", AIOHTTP, url, str(n), str(conc), ca,
                                              str(close)])),
                ("curl", n, on_client_cpu(["curl", "-s", "--parallel", "--parallel-max", str(conc),
                                           "--cacert", ca, "-K", cfgs[close]])),
            ]

        best = {}
        for r in range(rounds):
            for close in (0, 1):
                load = "new-connection" if close else "keep-alive"
                for name, n, argv in clients(close):
                    rps, cpu = timed(argv, n)
                    log("client-https round %d %-14s %-8s %8.0f req/s  %6.1f µs CPU/req" % (
                        r + 1, load, name, rps, cpu))
                    k = (load, name)
                    if k not in best or rps > best[k][0]:
                        best[k] = (rps, cpu)
        rows = [{"name": name, "load": load, "req_per_s": round(v[0]), "cpu_us_per_req": round(v[1], 1)}
                for (load, name), v in best.items()]
        lines = ["", "HTTPS client, nginx TLS 1 worker, %d in flight (%s)" % (
            conc, "smoke run: --quick" if quick else "best of %d rounds" % rounds),
            "%-16s %-8s %10s %14s" % ("load", "client", "req/s", "client CPU/req")]
        for row in rows:
            lines.append("%-16s %-8s %10d %11.1f µs" % (row["load"], row["name"], row["req_per_s"],
                                                       row["cpu_us_per_req"]))
        for load in ("keep-alive", "new-connection"):
            lo, ai, cu = (best[(load, c)][0] for c in ("loom", "aiohttp", "curl"))
            lines.append("%-16s loom/aiohttp %5.2fx (target >= 8x: %s)   loom/curl %5.2fx "
                         "(target >= 1x: %s)" % (load, lo / ai, "met" if lo / ai >= 8 else "NOT met",
                                                 lo / cu, "met" if lo / cu >= 1 else "NOT met"))
            for row in rows:
                if row["load"] == load and row["name"] == "loom":
                    row["vs_aiohttp"] = round(lo / ai, 2)
                    row["vs_curl"] = round(lo / cu, 2)
        log("\n".join(lines))
        return rows
    finally:
        if nginx:
            nginx.terminate()
            nginx.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--quick"]
    measure(quick="--quick" in sys.argv, loom=args[0] if args else None)
