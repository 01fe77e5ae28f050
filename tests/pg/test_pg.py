"""The pg service and the TFB plugin against a real PostgreSQL (issue 21).

One loom server (one worker) and one throwaway cluster (scripts/pgcluster.sh)
for the whole file; the steps run in order (their names are numbered):

  00-01  loom starts while the database is down: requests that need it get
         503 at once; the cluster comes up on that port and the pool
         reconnects by itself (back-off);
  10-15  the six TFB test types, checked the way TFB's verifier does
         (headers, shapes, ranges, clamping, fortunes byte for byte, updates
         persisted, the number of queries counted by pg_stat_statements);
  20-22  query errors (500, SQLSTATE in the log only), typed values, batches
         as implicit transactions, explicit transactions;
  30-33  a backend killed mid-query, the pool exhausted, the client leaving,
         a request answered before its query came back;
  40-42  hot reload of a consumer and of the provider with queries in
         flight, and the provider removed;
  90     graceful stop with a query in flight, no connection left behind.
"""
import concurrent.futures
import html.parser
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request
from email.utils import parsedate_to_datetime

import loomtest

SRC = loomtest.LOOM_SRC
CLUSTER = os.path.join(SRC, "scripts", "pgcluster.sh")
P = os.path.join(loomtest.LOOM_BUILD, "test-plugins-pg")
SLOW = os.environ.get("LOOM_SANITIZE", "OFF") in ("ON", "1", "TRUE")
POOL = 4
QUEUE_MS = 1000
MAX_QUEUE = 8

WORLD_SQL = "SELECT id, randomnumber FROM world WHERE id = $1"
UPDATE_SQL = "UPDATE world SET randomnumber = $1 WHERE id = $2"

# TFB's expected fortunes table, as its verifier normalises a page: tags
# and text only, entities in one spelling, a newline after certain tags.
FORTUNES = [
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (8, "A list is only as strong as its weakest link. \u2014 Donald Knuth"),
    (0, "Additional fortune added at request time."),
    (3, "After enough decimal places, nobody gives a damn."),
    (7, "Any program that runs right is obsolete."),
    (10, "Computers make very fast, very accurate mistakes."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom Christaensen"),
    (9, "Feature: A bug with seniority."),
    (1, "fortune: No such file or directory"),
    (12, "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af\u306e\u30d9\u30f3\u30c1\u30de\u30fc\u30af"),
]


def tfb_canonical():
    esc = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}
    rows = "".join("<tr><td>%d</td><td>%s</td></tr>\n" % (i, "".join(esc.get(c, c) for c in m))
                   for i, m in FORTUNES)
    return ("<!doctype html><html>\n<head><title>Fortunes</title></head>\n<body><table>\n"
            "<tr><th>id</th><th>message</th></tr>\n" + rows + "</table></body></html>")


class Normaliser(html.parser.HTMLParser):
    """Reduces a page to the form TFB's fortune check compares: tags and
    text, whitespace-only text dropped, character references in one
    spelling, newlines after <html>, <table>, </head> and </tr>."""
    REFS = {"34": "&quot;", "39": "&apos;", "43": "+", "62": "&gt;", "60": "&lt;", "47": "/",
            "40": "(", "41": ")", "x22": "&quot;", "x27": "&apos;", "x2b": "+", "x3e": "&gt;",
            "x3c": "&lt;", "x2f": "/", "x28": "(", "x29": ")"}

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.out = []

    def handle_decl(self, decl):
        self.out.append("<!%s>" % decl.lower())

    def handle_starttag(self, tag, attrs):
        self.out.append("<%s>" % tag)
        if tag in ("html", "table"):
            self.out.append("\n")

    def handle_endtag(self, tag):
        self.out.append("</%s>" % tag)
        if tag in ("tr", "head"):
            self.out.append("\n")

    def handle_data(self, data):
        if data.strip():
            self.out.append(data.replace("'", "&apos;").replace('"', "&quot;")
                            .replace(">", "&gt;"))

    def handle_charref(self, name):
        self.out.append(self.REFS.get(name.lower().lstrip("0") or "0", "&#%s;" % name))

    def handle_entityref(self, name):
        self.out.append("\u2014" if name == "mdash" else "&%s;" % name)


def get(port, path, timeout=10, headers=None):
    """GET path; returns (status, headers with lowercased names, body, seconds)."""
    t0 = time.time()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body, time.time() - t0
    finally:
        c.close()


class PgService(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pool = concurrent.futures.ThreadPoolExecutor(max_workers=24)
        cls.dir = tempfile.mkdtemp(prefix="loom-pgtest-")
        cls.plugins = os.path.join(cls.dir, "plugins")
        os.mkdir(cls.plugins)
        for f in (os.path.join(loomtest.PLUGINS_DIR, "pg.so"),
                  os.path.join(loomtest.PLUGINS_DIR, "tfb.so"), os.path.join(P, "v1", "pgtest.so")):
            shutil.copy(f, cls.plugins)
        # Claimed on disk by free_port, so no other suite's free_port hands
        # it out before test_01 starts the cluster on it.
        cls.pg_port = loomtest.free_port()
        cls.aport = loomtest.free_port()
        cls.pgdir = None
        conninfo = ("host=127.0.0.1 port=%d dbname=hello_world user=benchmarkdbuser "
                    "password=benchmarkdbpass" % cls.pg_port)
        config = {"shutdown_timeout": 10000, "admin": {"listen": "127.0.0.1:%d" % cls.aport},
                  "plugins": {"pg": {
            "conninfo": conninfo, "pool_size": POOL, "min_connections": 1,
            "queue_timeout_ms": QUEUE_MS, "max_queue": MAX_QUEUE, "connect_timeout_ms": 3000,
            "backoff_min_ms": 50, "backoff_max_ms": 400}}}
        cls.srv = loomtest.Server(args=["--workers", "1"], config=config, plugins_dir=cls.plugins)
        cls.port = cls.srv.port
        cls.srv.wait_log("plugin tfb 1.0.0 loaded")

    @classmethod
    def tearDownClass(cls):
        cls.pool.shutdown(wait=False, cancel_futures=True)
        cls.srv.__exit__()
        if cls.pgdir:
            subprocess.run([CLUSTER, "stop", cls.pgdir], timeout=60)
        shutil.rmtree(cls.dir, ignore_errors=True)

    # ---- helpers ----

    def get(self, path, **kw):
        return get(self.port, path, **kw)

    def bg(self, path, timeout=30):
        return self.pool.submit(get, self.port, path, timeout)

    def sql(self, q):
        r = subprocess.run([CLUSTER, "psql", self.pgdir, "-At", "-F", "|", "-c", q],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [l.split("|") for l in r.stdout.splitlines() if l]

    def loom_backends(self):
        """(pid, application_name, state, query) of loom's connections."""
        return self.sql("SELECT pid, application_name, state, query FROM pg_stat_activity "
                        "WHERE application_name LIKE 'loom:%'")

    def wait_for(self, what, cond, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(0.05)
        self.fail("timed out waiting for " + what + "\n" + self.srv.log()[-3000:])

    def in_flight(self):
        """Requests handed to a handler and not answered (the admin metrics)."""
        url = "http://127.0.0.1:%d/metrics" % self.aport
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        return int(re.search(r"^loom_http_requests_in_flight (\d+)$", text, re.M).group(1))

    def active_sleeps(self):
        return [b for b in self.loom_backends() if b[2] == "active" and "pg_sleep" in b[3]]

    def check_headers(self, h, ctype_re):
        for k in ("server", "date", "content-type", "content-length"):
            self.assertIn(k, h)
        self.assertRegex(h["content-type"], ctype_re)
        d = parsedate_to_datetime(h["date"])
        self.assertTrue(h["date"].endswith(" GMT"), h["date"])
        self.assertLess(abs(d.timestamp() - time.time()), 3)

    def check_worlds(self, body, n):
        v = json.loads(body)
        self.assertIsInstance(v, list)
        self.assertEqual(len(v), n)
        for w in v:
            self.assertEqual(set(w), {"id", "randomNumber"})
            self.assertIsInstance(w["id"], int)
            self.assertIsInstance(w["randomNumber"], int)
            self.assertTrue(1 <= w["id"] <= 10000, w)
            self.assertTrue(1 <= w["randomNumber"] <= 10000, w)
        return v

    def install(self, src):
        subprocess.run([loomtest.LOOM_BIN, "install-plugin", src, self.plugins], check=True,
                       capture_output=True, timeout=20)

    # ---- 00: the database is down at start-up, then comes up ----

    def test_00_database_down_at_start(self):
        st, h, body, secs = self.get("/db")
        self.assertEqual(st, 503, body)
        self.assertLess(secs, 1.0)
        self.assertNotIn(b"127.0.0.1", body)
        st, _, _, secs = self.get("/queries?queries=5")
        self.assertEqual(st, 503)
        self.assertLess(secs, 1.0)
        self.assertEqual(self.get("/json")[0], 200)  # the server itself is fine
        self.srv.wait_log("cannot connect to 127.0.0.1:%d/hello_world" % self.pg_port)

    def test_01_reconnects_when_the_database_comes_up(self):
        r = subprocess.run([CLUSTER, "start", "--port", str(self.pg_port), "--no-fsync"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        type(self).pgdir = re.search(r"^LOOM_PG_DIR=(.*)$", r.stdout, re.M).group(1)
        self.sql("CREATE TABLE kv (k text PRIMARY KEY, v int); GRANT ALL ON kv TO benchmarkdbuser")
        # Nobody asks: the pool's own back-off finds the database.
        self.srv.wait_log("connected to 127.0.0.1:%d/hello_world after" % self.pg_port, timeout=10)
        self.assertEqual(self.get("/db")[0], 200)

    # ---- 10: TFB ----

    def test_10_json_and_plaintext(self):
        st, h, body, _ = self.get("/json")
        self.assertEqual(st, 200)
        self.check_headers(h, r"^application/json(; ?charset=(UTF|utf)-8)?$")
        self.assertEqual(json.loads(body), {"message": "Hello, World!"})
        self.assertEqual(int(h["content-length"]), len(body))
        st, h, body, _ = self.get("/plaintext")
        self.assertEqual(st, 200)
        self.check_headers(h, r"^text/plain(; ?charset=(UTF|utf)-8)?$")
        self.assertEqual(body, b"Hello, World!")

    def test_11_db(self):
        seen = set()
        for _ in range(20):
            st, h, body, _ = self.get("/db")
            self.assertEqual(st, 200, body)
            self.check_headers(h, r"^application/json(; ?charset=(UTF|utf)-8)?$")
            w = json.loads(body)
            self.assertIsInstance(w, dict)  # one object, not a list
            self.check_worlds(json.dumps([w]), 1)
            seen.add((w["id"], w["randomNumber"]))
        self.assertGreater(len(seen), 15)  # random rows
        ids = ",".join(str(i) for i, _ in seen)
        db = {int(i): int(n) for i, n in self.sql("SELECT id, randomnumber FROM world "
                                                    "WHERE id IN (%s)" % ids)}
        for i, n in seen:
            self.assertEqual(db[i], n)  # the row as stored

    def test_12_queries_clamped(self):
        for q, n in (("", 1), ("foo", 1), ("0", 1), ("-3", 1), ("1", 1), ("2", 2), ("20", 20),
                     ("500", 500), ("501", 500), ("99999999999999999999", 500), ("12x", 1)):
            st, h, body, _ = self.get("/queries?queries=" + q)
            self.assertEqual(st, 200, (q, body))
            self.check_headers(h, r"^application/json(; ?charset=(UTF|utf)-8)?$")
            self.check_worlds(body, n)
        st, _, body, _ = self.get("/queries")
        self.check_worlds(body, 1)

    def test_13_fortunes(self):
        st, h, body, _ = self.get("/fortunes")
        self.assertEqual(st, 200)
        self.check_headers(h, r"^text/html; ?charset=(UTF|utf)-8$")
        # Byte for byte (after whitespace between tags) ...
        esc = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
        want = ("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
                "<tr><th>id</th><th>message</th></tr>" +
                "".join("<tr><td>%d</td><td>%s</td></tr>" % (i, "".join(esc.get(c, c) for c in m))
                        for i, m in FORTUNES) + "</table></body></html>")
        self.assertEqual(re.sub(rb">\s+<", b"><", body).decode("utf-8"), want)
        # ... and as TFB's verifier reads it.
        n = Normaliser()
        n.feed(body.decode("utf-8"))
        n.close()
        self.assertEqual("".join(n.out), tfb_canonical())
        self.assertEqual(int(h["content-length"]), len(body))

    def test_14_updates_persisted(self):
        before = dict(self.sql("SELECT id, randomnumber FROM world"))
        st, h, body, _ = self.get("/updates?queries=500")
        self.assertEqual(st, 200, body)
        self.check_headers(h, r"^application/json(; ?charset=(UTF|utf)-8)?$")
        ws = self.check_worlds(body, 500)
        after = {int(i): int(n) for i, n in self.sql("SELECT id, randomnumber FROM world")}
        sent = {}
        for w in ws:
            sent.setdefault(w["id"], set()).add(w["randomNumber"])
        for i, nums in sent.items():
            self.assertIn(after[i], nums)  # what the response says is what is stored
        changed = sum(1 for i in range(1, 10001) if int(before[str(i)]) != after[i])
        self.assertGreaterEqual(changed, 0.9 * len(sent))
        for q, n in (("", 1), ("foo", 1), ("0", 1), ("501", 500), ("3", 3)):
            st, _, body, _ = self.get("/updates?queries=" + q)
            self.assertEqual(st, 200, body)
            self.check_worlds(body, n)

    def test_15_query_counts(self):
        """TFB counts the queries in pg_stat_statements: exactly N per request."""
        self.sql("SELECT pg_stat_statements_reset()")
        paths = ["/queries?queries=20"] * 12 + ["/updates?queries=20"] * 6 + ["/fortunes"] * 5
        # Concurrent, within what the pool and its queue take (POOL + MAX_QUEUE).
        with concurrent.futures.ThreadPoolExecutor(max_workers=POOL + MAX_QUEUE // 2) as ex:
            for st, _, body, _ in ex.map(lambda p: get(self.port, p), paths):
                self.assertEqual(st, 200, body)
        stats = {q: (int(c), int(r)) for q, c, r in self.sql(
            "SELECT query, sum(calls), sum(rows) FROM pg_stat_statements "
            "WHERE query ~* '(world|fortune)' GROUP BY query")}
        self.assertEqual(stats[WORLD_SQL], (12 * 20 + 6 * 20, 12 * 20 + 6 * 20))
        self.assertEqual(stats[UPDATE_SQL], (6 * 20, 6 * 20))
        self.assertEqual(stats["SELECT id, message FROM fortune"], (5, 5 * 12))

    # ---- 20: errors, types, transactions ----

    def test_20_query_error(self):
        st, h, body, _ = self.get("/pg/error")
        self.assertEqual(st, 500)
        self.assertEqual(h["x-pg-error"], "-5")
        for secret in (b"42P01", b"no_such_table", b"relation", b"SQLSTATE"):
            self.assertNotIn(secret, body)
        self.srv.wait_log('query failed: SQLSTATE 42P01: relation "no_such_table_here" does not exist')
        # A batch is one implicit transaction: the insert before the failure is undone.
        st, _, body, _ = self.get("/pg/multi?k=m1")
        self.assertEqual((st, body), (200, b"-5 1 22012"))
        self.assertEqual(self.sql("SELECT count(*) FROM kv WHERE k LIKE 'm1%'"), [["0"]])
        self.assertEqual(self.get("/db")[0], 200)  # the connection is fine

    def test_21_typed_values(self):
        st, _, body, _ = self.get("/pg/types")
        self.assertEqual(st, 200, body)
        v = json.loads(body)
        self.assertEqual(v["int"], -9007199254740993)
        self.assertEqual(v["float"], 0.5)
        self.assertEqual(v["bool"], 1)
        self.assertEqual(v["text"], "it's \"quoted\" \u00e9")
        self.assertEqual(v["bytes"], "\\x00ff41")
        self.assertEqual(v["null"], 1)
        self.assertEqual(v["text_as_int"], -1)  # LOOM_EINVAL
        self.assertEqual(v["missing"], -5)  # LOOM_ENOTFOUND
        self.assertEqual((v["ncols"], v["col0"], v["type0"], v["type3"]), (6, "i", 20, 25))
        self.assertEqual((v["nrows"], v["nqueries"]), (1, 1))
        self.assertEqual(self.get("/pg/rows?n=5000")[2], b"5000 12502500")
        st, _, body, _ = self.get("/pg/big?n=1000")
        self.assertEqual((st, body), (200, b"1000"))
        self.assertEqual(self.get("/pg/big?n=1001")[0], 413)  # max_batch
        self.assertRegex(self.get("/pg/service")[2].decode(), r"^pg v1 size \d+$")

    def test_22_transactions(self):
        self.assertEqual(self.get("/pg/tx?k=c1&end=commit")[2], b"commit")
        self.assertEqual(self.get("/pg/tx?k=r1&end=rollback")[2], b"rollback")
        self.assertEqual(self.get("/pg/tx?k=o1&end=open")[2], b"open")
        st, h, _, _ = self.get("/pg/tx?k=f1&end=fail")
        self.assertEqual((st, h["x-pg-error"]), (500, "-5"))
        rows = {k for (k,) in self.sql("SELECT k FROM kv WHERE k IN ('c1', 'r1', 'o1', 'f1')")}
        self.assertEqual(rows, {"c1"})
        # The open transaction was rolled back and its connection returned.
        self.wait_for("no connection idle in transaction", lambda: not [
            b for b in self.loom_backends() if b[2].startswith("idle in transaction")])
        futs = [self.bg("/queries?queries=3") for _ in range(POOL * 2)]
        self.assertEqual([f.result()[0] for f in futs], [200] * POOL * 2)

    # ---- 30: faults ----

    def test_30_backend_killed_mid_query(self):
        slow = self.bg("/pg/sleep?s=20")
        (pid, _, _, _), = self.wait_for("the sleep to run", self.active_sleeps)
        others = [self.bg("/db") for _ in range(6)]
        self.sql("SELECT pg_terminate_backend(%s)" % pid)
        st, h, body, secs = slow.result(timeout=10)
        self.assertEqual(st, 503, body)
        self.assertEqual(h["x-pg-error"], "-4")  # LOOM_PG_E_CONNECTION
        self.assertLess(secs, 10)
        self.assertEqual([f.result()[0] for f in others], [200] * 6)
        self.srv.wait_log("lost (")
        self.assertEqual(self.get("/queries?queries=2")[0], 200)

    def test_31_pool_exhausted(self):
        # The sleeps hold every connection well past the queued ones' deadline
        # even when the requests below are slow to arrive.
        base = self.in_flight()
        sleeps = [self.bg("/pg/sleep?s=5") for _ in range(POOL)]
        self.wait_for("every connection busy", lambda: len(self.active_sleeps()) == POOL)
        # Waiting batches fill the queue, then the next is refused at once.
        # The one worker's handler queues a batch before it returns, so once
        # all of them are in flight the queue is full.
        queued = [self.bg("/db") for _ in range(MAX_QUEUE)]
        self.wait_for("the queue to fill", lambda: self.in_flight() >= base + POOL + MAX_QUEUE, 5)
        st, _, _, secs = self.get("/db")
        self.assertEqual(st, 503)
        self.assertLess(secs, QUEUE_MS / 1000 * 0.7)  # not queued: that takes QUEUE_MS
        # The queued ones waited for the deadline, then 503.
        res = [f.result(timeout=10) for f in queued]
        self.assertEqual([r[0] for r in res], [503] * MAX_QUEUE)
        for r in res:
            self.assertGreaterEqual(r[3], QUEUE_MS / 1000 * 0.9)
        self.srv.wait_log("plugin pg: pool exhausted: ")
        self.assertEqual([f.result(timeout=10)[0] for f in sleeps], [200] * POOL)
        # A wait shorter than the deadline is served.
        sleeps = [self.bg("/pg/sleep?s=0.7") for _ in range(POOL)]
        self.wait_for("every connection busy", lambda: len(self.active_sleeps()) == POOL, 5)
        st, _, _, secs = self.get("/db")
        self.assertEqual(st, 200)
        self.assertLess(secs, QUEUE_MS / 1000)
        self.assertEqual([f.result(timeout=10)[0] for f in sleeps], [200] * POOL)

    def test_32_client_leaves(self):
        s = loomtest.connect(self.port)
        s.sendall(b"GET /pg/sleep?s=30 HTTP/1.1\r\nHost: a\r\n\r\n")
        (pid, _, _, _), = self.wait_for("the sleep to run", self.active_sleeps)
        s.close()
        # Cancelled on the server (not left to run 30 s), the connection kept.
        self.wait_for("the query to be cancelled", lambda: not self.active_sleeps(), 5)
        self.assertIn(pid, [b[0] for b in self.loom_backends()])
        self.assertEqual(self.get("/db")[0], 200)

    def test_33_answered_before_the_query_came_back(self):
        # pgtest's callback for this one aborts the process if it ever runs.
        st, _, body, secs = self.get("/pg/early?s=30")
        self.assertEqual((st, body), (200, b"early"))
        self.wait_for("the query to be cancelled", lambda: not self.active_sleeps(), 5)
        self.assertEqual(self.get("/db")[0], 200)

    def test_34_cancel_that_came_before_the_query(self):
        # PostgreSQL ignores a cancel that reaches a backend still waiting for
        # its next command. Here every backend is stopped while the query is
        # sent and the first cancel lands: the plugin must cancel again.
        pids = [int(b[0]) for b in self.loom_backends()]
        self.assertTrue(pids)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            st, _, body, _ = self.get("/pg/early?s=30")
            self.assertEqual((st, body), (200, b"early"))
            time.sleep(1.0)  # the first PQcancel runs (the postmaster signals the stopped one)
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        self.wait_for("the query to be cancelled", lambda: not self.active_sleeps(), 5)
        self.assertEqual(self.get("/db")[0], 200)

    # ---- 40: hot reload ----

    def test_40_reload_consumer_with_a_transaction_in_flight(self):
        tx = self.bg("/pg/tx?k=rc1&end=commit&s=1.2")
        self.wait_for("the transaction to run", self.active_sleeps)
        self.install(os.path.join(P, "v2", "pgtest.so"))
        self.wait_for("pgtest v2", lambda: self.get("/pg/service")[1].get("x-pgtest") == "v2")
        st, h, body, _ = tx.result(timeout=10)
        self.assertEqual((st, h["x-pgtest"], body), (200, "v1", b"commit"))
        self.assertEqual(self.sql("SELECT k FROM kv WHERE k = 'rc1'"), [["rc1"]])
        self.srv.wait_log("plugin pgtest 1.0.1 (generation")  # the old one unloaded
        self.assertFalse([b for b in self.loom_backends() if b[2].startswith("idle in transaction")])

    def test_41_reload_provider_with_queries_in_flight(self):
        old = {b[1] for b in self.loom_backends()}
        self.assertEqual(len(old), 1, old)
        slow = self.bg("/pg/sleep?s=1.2")
        self.wait_for("the sleep to run", self.active_sleeps)
        self.install(os.path.join(P, "pg2", "pg.so"))
        self.srv.wait_log("plugin pg 1.0.0+2 loaded")
        # New requests use the new pool (its own connections) ...
        self.assertEqual(self.get("/db")[0], 200)
        new = {b[1] for b in self.loom_backends()} - old
        self.assertEqual(len(new), 1, new)
        # ... the one in flight finishes on the old one, which then closes
        # every connection it had.
        st, _, body, _ = slow.result(timeout=10)
        self.assertEqual((st, body), (200, b"slept"))
        self.srv.wait_log("plugin pg 1.0.0 (generation")
        self.wait_for("the old pool's connections to close",
                      lambda: not [b for b in self.loom_backends() if b[1] in old], 5)
        self.assertIn("plugin pg: closed ", self.srv.log())

    def test_42_provider_removed(self):
        os.unlink(os.path.join(self.plugins, "pg.so"))
        self.wait_for("the pg service to go", lambda: self.get("/pg/service")[0] == 503)
        self.assertEqual(self.get("/db")[0], 503)
        self.wait_for("every connection closed", lambda: not self.loom_backends(), 5)
        self.install(os.path.join(loomtest.PLUGINS_DIR, "pg.so"))
        self.wait_for("the pg service back", lambda: self.get("/pg/service")[0] == 200)
        self.assertEqual(self.get("/db")[0], 200)

    # ---- 90: graceful stop ----

    def test_90_graceful_stop(self):
        slow = self.bg("/pg/sleep?s=1")
        self.wait_for("the sleep to run", self.active_sleeps)
        self.srv.signal(signal.SIGTERM)
        st, _, body, _ = slow.result(timeout=10)
        self.assertEqual((st, body), (200, b"slept"))
        self.assertEqual(self.srv.stop(timeout=30), 0, self.srv.log()[-3000:])
        self.wait_for("every connection closed", lambda: not self.loom_backends(), 5)
        log = self.srv.log()
        self.assertNotIn("ERROR: AddressSanitizer", log)
        self.assertNotIn("runtime error", log)


class Config(unittest.TestCase):
    """A pg config a user gets wrong: one line naming the key, no start."""

    def test_bad_keys_are_named(self):
        d = tempfile.mkdtemp(prefix="loom-pgconf-")
        try:
            shutil.copy(os.path.join(loomtest.PLUGINS_DIR, "pg.so"), d)
            for cfg, line in (
                    ({"pool_size": 0}, 'config key "pool_size": want an integer from 1 to 1000'),
                    ({"poolsize": 2}, 'config key "poolsize": unknown key'),
                    ({"conninfo": "host=x port"},
                     'config key "conninfo": missing "=" after "port" in connection info string'),
                    ({"conninfo": 5}, 'config key "conninfo": want a string'),
                    ({"min_connections": 9, "pool_size": 2},
                     'config key "min_connections": must not be above pool_size')):
                path = os.path.join(d, "loom.json")
                with open(path, "w") as f:
                    json.dump({"plugins": {"pg": cfg}}, f)
                r = subprocess.run([loomtest.LOOM_BIN, "serve", "--single", "--port",
                                    str(loomtest.free_port()), "--plugins-dir", d, "--config", path],
                                   capture_output=True, text=True, timeout=30)
                out = r.stdout + r.stderr
                self.assertNotEqual(r.returncode, 0, out)
                self.assertIn("plugin pg: " + line, out)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    loomtest.main()
