"""bench/run --only tfb: the TechEmpower test types, loom (plugins/tfb on the
pg service) beside aiohttp + asyncpg (bench/tfb_aiohttp.py), one worker
each, on the same throwaway PostgreSQL (scripts/pgcluster.sh, not pinned).

Each workload is measured in interleaved rounds like bench/run's own
(order rotated, each measurement after SETTLE seconds of the same load):
requests/s, the web server's CPU per request, and apart from it the
database's CPU per request (every process of the cluster). Then pgbench
runs the same queries per transaction (bench/tfb_pgbench.sh): the
requests/s the database alone allows on this machine.

Targets (issue 21), on db, queries=20, fortunes and updates=20: loom's
server CPU per request <= 0.2 x aiohttp's, and requests/s >= 2 x.
"""
import os
import re
import statistics
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLUSTER = os.path.join(ROOT, "scripts", "pgcluster.sh")
LOOM_PORT, AIOHTTP_PORT = 8101, 8102
POOL = 16  # connections per server (loom: per worker; aiohttp: its asyncpg pool)
CONNS = 64  # wrk connections, as in the rest of bench/run

WORKLOADS = ["tfb"]  # its --only name in bench/run
TYPES = [  # (name, path, has a target)
    ("tfb-json", "/json", False),
    ("tfb-plaintext", "/plaintext", False),
    ("tfb-db", "/db", True),
    ("tfb-queries20", "/queries?queries=20", True),
    ("tfb-fortunes", "/fortunes", True),
    ("tfb-updates20", "/updates?queries=20", True),
]


def run(B, a, secs, want, add, anchor_pids, env):
    """B is bench/run's helpers, a its arguments, add its row sink."""
    r = subprocess.run([CLUSTER, "start"], capture_output=True, text=True, timeout=300)
    if r.returncode:
        raise SystemExit("bench/run: tfb: the PostgreSQL cluster did not start:\n" + r.stderr)
    env = dict(re.findall(r"^(LOOM_PG_\w+)=(.*)$", r.stdout, re.M))
    pgdir, pgport = env["LOOM_PG_DIR"], int(env["LOOM_PG_PORT"])
    conninfo = env["LOOM_PG_CONNINFO"].strip("'")
    dsn = "postgresql://benchmarkdbuser:benchmarkdbpass@127.0.0.1:%d/hello_world" % pgport
    with open(os.path.join(pgdir, "data", "postmaster.pid")) as f:
        pg_pid = int(f.readline())
    loom = aio = None
    try:
        plug = os.path.join(B.BUILD, "plugins")
        loom = B.Loom(LOOM_PORT, [os.path.join(plug, "pg.so"), os.path.join(plug, "tfb.so")],
                      args=["--single"], config={"plugins": {"pg": {
                          "conninfo": conninfo, "pool_size": POOL, "min_connections": POOL}}})
        if B.port_open(AIOHTTP_PORT):
            raise SystemExit("bench/run: port %d is already in use" % AIOHTTP_PORT)
        aio = subprocess.Popen(B.on_server_cpu(["/usr/bin/python3", os.path.join(HERE, "tfb_aiohttp.py"),
                                                str(AIOHTTP_PORT), dsn, str(POOL)]))
        if not B.wait_port(AIOHTTP_PORT) or aio.poll() is not None:
            raise SystemExit("bench/run: the aiohttp + asyncpg TFB app did not start")
        B.check_pinned("aiohttp tfb", aio.pid)
        servers = [("loom", "http://127.0.0.1:%d" % LOOM_PORT, loom.proc.pid),
                   ("aiohttp", "http://127.0.0.1:%d" % AIOHTTP_PORT, aio.pid)]
        for name, base, _ in servers:  # both answer every type before anything is measured
            for _, path, _ in TYPES:
                check(name, base + path)
            B.warm(base + "/queries?queries=20")
        for wl, path, _ in TYPES:
            measure(B, a, add, wl, [(n, base + path, pid) for n, base, pid in servers], pg_pid)
        secs = max(a.seconds, 2)
        # As many database connections as each server's pool.
        out = subprocess.run([os.path.join(HERE, "tfb_pgbench.sh"), str(pgport), str(secs),
                              str(POOL)], capture_output=True, text=True, timeout=600)
        if out.returncode:
            B.log("bench/run: tfb: pgbench failed:\n" + out.stderr)
        for line in out.stdout.splitlines():
            w, tps, lat = line.split()
            add("tfb-" + w, "pgbench", {"tps": float(tps), "latency_ms": float(lat or 0)})
    finally:
        if aio and aio.poll() is None:
            aio.terminate()
            aio.wait(20)
        if loom:
            loom.stop()
        subprocess.run([CLUSTER, "stop", pgdir], timeout=120)


def check(name, url):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url],
                         capture_output=True, text=True, timeout=30).stdout
    if out != "200":
        raise SystemExit("bench/run: tfb: %s answered %s to %s" % (name, out, url))


def db_cpu_ns(B, pg_pid):
    """The database's CPU time: every live process of the cluster (schedstat),
    plus what the postmaster's children that exited had used (its cutime and
    cstime, in clock ticks): autovacuum workers and backends come and go
    during a run, and without the second part a worker that exited between
    the two readings took its time with it (one round of a run of
    2026-12-08 read -5,510 µs per request)."""
    ns = B.cpu_times(pg_pid)[0]
    try:
        with open("/proc/%d/stat" % pg_pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ns += (int(fields[13]) + int(fields[14])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        pass
    return ns


def measure(B, a, add, workload, servers, pg_pid):
    """Like bench/run's interleaved(), with the database's CPU per request
    measured around each wrk as well."""
    per = {name: [] for name, _, _ in servers}
    for r in range(a.rounds):
        k = r % len(servers)
        for pos, (name, url, pid) in enumerate(servers[k:] + servers[:k]):
            if B.SETTLE:
                B.warm(url, B.SETTLE)
            db0 = db_cpu_ns(B, pg_pid)
            m = B.wrk(url, pid, a.seconds, conns=CONNS)
            db1 = db_cpu_ns(B, pg_pid)
            m["db_cpu_us"] = round((db1 - db0) / 1000 / m["requests"], 3)
            m.update({"round": r + 1, "position": pos + 1})
            per[name].append(m)
            B.log("%-14s round %d/%d  %-8s %s" % (workload, r + 1, a.rounds, name, m))

    def add_db(wl, server, row):
        row["db_cpu_us"] = round(statistics.median(m["db_cpu_us"] for m in row["rounds"]), 3)
        add(wl, server, row)

    B.add_medians(workload, servers, per, add_db)


def targets(B, by, target, t):
    """bench/run's report() calls this with its row index and helpers."""
    paired = B.paired
    for wl, _, has in TYPES:
        lo, ai = by.get((wl, "loom")), by.get((wl, "aiohttp"))
        if not (has and lo and ai):
            continue
        target("%s CPU/req <= 0.2 x aiohttp" % wl, paired(by, wl, "loom", "aiohttp", "cpu_us"),
               lambda x: x <= 0.2, "loom/aiohttp",
               "%.1f vs %.1f µs (database %.1f vs %.1f µs)" % (
                   lo["cpu_us"], ai["cpu_us"], lo.get("db_cpu_us", 0), ai.get("db_cpu_us", 0)))
        pb = by.get((wl, "pgbench"))
        target("%s req/s >= 2 x aiohttp" % wl, paired(by, wl, "loom", "aiohttp", "rps"),
               lambda x: x >= 2, "loom/aiohttp", "%.0f vs %.0f%s" % (
                   lo["rps"], ai["rps"], "; pgbench %.0f tps" % pb["tps"] if pb else ""))


def lines(rows):
    """The TFB table for bench/run's report: web server and database CPU
    apart, and pgbench's ceiling."""
    by = {(r["workload"], r["server"]): r for r in rows}
    out = ["| TFB type | server | req/s | server CPU µs/req | database CPU µs/req | p99 ms | "
           "errors | pgbench tps (the database alone) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for wl, _, _ in TYPES:
        pb = by.get((wl, "pgbench"))
        for server in ("loom", "aiohttp"):
            r = by.get((wl, server))
            if r:
                out.append("| %s | %s | %.0f | %.2f | %.2f | %.2f | %d | %s |" % (
                    wl[4:], server, r["rps"], r["cpu_us"], r.get("db_cpu_us", 0), r["p99_ms"],
                    r["errors"], "%.0f" % pb["tps"] if pb else "-"))
    return out if len(out) > 2 else []
