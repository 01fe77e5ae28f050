"""Sessions: one store conformance suite run against every store plugin, plus
the cookie rules (signature, key ring, tampering, timeouts, size limits) and
what only the SQLite store promises (restart, several workers, sweeping).

Concurrency (issue 23, item 2), on every store: 400 clicks on one session's
counter (session-demo), 16 at a time from aiohttp clients, end at exactly
400; two requests that change the same key really conflict, and the handler
sees it (loom_session_save: LOOM_ECONFLICT; the save at the end: 409 and a
log line naming the key), while changes to different keys merge."""
import asyncio
import hashlib
import hmac
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

import aiohttp

import loomtest
import weblib

K1 = "k1-0123456789abcdef0123456789abcdef"
K2 = "k2-0123456789abcdef0123456789abcdef"
K3 = "k3-0123456789abcdef0123456789abcdef"


def sess_config(store, keys=(K1,), tmp=None, **opts):
    s = {"keys": list(keys), "store": store}
    s.update(opts)
    cfg = {"plugins": {"sessions": s}}
    if store == "sqlite":
        cfg["plugins"]["session-sqlite"] = {"db": os.path.join(tmp, "s.db"), "sweep_interval": 1}
    if store == "redis":
        cfg["plugins"]["session-redis"] = {"port": RedisStoreTest.redis.port, "prefix": "t:"}
    return cfg


class Client:
    def __init__(self, port):
        self.port, self.cookie = port, None

    def call(self, method, target, cookie=None, keep=True):
        c = cookie if cookie is not None else self.cookie
        st, h, body = weblib.req(self.port, target, method=method,
                                 headers={"Cookie": "loom_session=" + c} if c else {})
        sc = h.get("set-cookie")
        if sc and keep:
            v = sc.split(";", 1)[0].split("=", 1)[1]
            self.cookie = v or None
        return st, h, json.loads(body) if st == 200 else body


def forge(sid, key=K1, life=1800):
    """A valid cookie for session ID sid (the test knows the key)."""
    now = int(time.time())
    mac = hmac.new(key.encode(), ("%s|%d|%d" % (sid, now, now + life)).encode(),
                   hashlib.sha256).hexdigest()
    return "%s.%d.%d.%s" % (sid, now, now + life, mac)


def redis_cmd(port, *args):
    """One command to Redis (RESP); returns the raw reply."""
    s = loomtest.connect(port)
    try:
        s.sendall(("*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a.encode()), a)
                                                   for a in args)).encode())
        return s.recv(65536)
    finally:
        s.close()


def setq(k, v):
    return "/s?k=%s&v=%s" % (k, urllib.parse.quote(json.dumps(v)))


async def count_clicks(port, cookie, n, at_once):
    """n POST /demo/api/count on one cookie, at_once in flight (aiohttp, one
    connection each); returns the statuses and the last count answered."""
    conn = aiohttp.TCPConnector(limit=at_once, force_close=False)
    timeout = aiohttp.ClientTimeout(total=120)
    statuses, counts = [], []
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as http:
        sem = asyncio.Semaphore(at_once)

        async def one():
            async with sem:
                async with http.post("http://127.0.0.1:%d/demo/api/count" % port,
                                     headers={"Cookie": "loom_session=" + cookie}) as r:
                    body = await r.read()
                    statuses.append(r.status)
                    if r.status == 200:
                        counts.append(json.loads(body)["count"])

        await asyncio.gather(*(one() for _ in range(n)))
    return statuses, counts


class StoreConformance:
    """Mixed into one TestCase per store."""
    store = None
    args = ["--single"]

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="loom-sess-")
        cls.pdir = weblib.plugin_dir("session-" + cls.store, "sesstest", "session-demo")
        cls.srv = cls.start()

    @classmethod
    def start(cls, **opts):
        srv = loomtest.Server(plugins_dir=cls.pdir, args=cls.args,
                              config=sess_config(cls.store, tmp=cls.tmp, **dict({"max_size": 1024}, **opts)))
        weblib.wait_route(srv.port, "/s")
        return srv

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        shutil.rmtree(cls.pdir, ignore_errors=True)
        assert rc == 0, "exit %s:\n%s" % (rc, cls.srv.log()[-3000:])

    def test_new_session_not_saved_until_changed(self):
        c = Client(self.srv.port)
        st, h, b = c.call("GET", "/s")
        self.assertEqual(b, {"new": True, "data": {}})
        self.assertNotIn("set-cookie", h)
        st, h, b = c.call("GET", "/s/none")
        self.assertNotIn("set-cookie", h)

    def test_cookie_attributes_and_signature(self):
        c = Client(self.srv.port)
        st, h, b = c.call("POST", setq("a", 1))
        self.assertEqual(b["data"], {"a": 1})
        sc = h["set-cookie"]
        self.assertIn("HttpOnly", sc)
        self.assertIn("SameSite=Lax", sc)
        self.assertIn("Path=/", sc)
        self.assertNotIn("Secure", sc)
        self.assertEqual(h["cache-control"], "no-store")
        sid, issued, expires, mac = c.cookie.split(".")
        self.assertEqual(len(sid), 32)  # 128 bits
        want = hmac.new(K1.encode(), ("%s|%s|%s" % (sid, issued, expires)).encode(),
                        hashlib.sha256).hexdigest()
        self.assertEqual(mac, want)
        self.assertLessEqual(int(expires) - int(issued), 1800)

    def test_read_back_and_unchanged_not_saved(self):
        c = Client(self.srv.port)
        c.call("POST", setq("user", "ann"))
        c.call("POST", setq("n", {"x": [1, 2]}))
        st, h, b = c.call("GET", "/s")
        self.assertEqual(b, {"new": False, "data": {"user": "ann", "n": {"x": [1, 2]}}})
        self.assertNotIn("set-cookie", h)
        st, h, b = c.call("POST", "/s?k=user")  # remove
        self.assertEqual(b["data"], {"n": {"x": [1, 2]}})

    def test_tampered_unknown_garbage_give_fresh_session(self):
        c = Client(self.srv.port)
        c.call("POST", setq("a", 1))
        good = c.cookie
        sid, issued, expires, mac = good.split(".")
        flip = lambda s: ("0" if s[0] != "0" else "1") + s[1:]
        unknown = "f" * 32
        forged_unknown = "%s.%s.%s.%s" % (unknown, issued, expires, hmac.new(
            K1.encode(), ("%s|%s|%s" % (unknown, issued, expires)).encode(),
            hashlib.sha256).hexdigest())
        longer = "%s.%s.%d.%s" % (sid, issued, int(expires) + 99999, mac)
        for bad in ("%s.%s.%s.%s" % (flip(sid), issued, expires, mac),
                    "%s.%s.%s.%s" % (sid, issued, expires, flip(mac)),
                    longer, forged_unknown, "garbage", "a.b.c.d", "x" * 4000, "",
                    good + "0", good.upper(), good.replace(".", "..", 1)):
            with self.subTest(bad=bad[:60]):
                st, h, b = c.call("GET", "/s", cookie=bad or "x", keep=False)
                self.assertEqual(st, 200)
                self.assertEqual(b, {"new": True, "data": {}})
        self.assertEqual(c.call("GET", "/s")[2]["data"], {"a": 1})

    def test_regenerate_moves_data_and_kills_old_id(self):
        c = Client(self.srv.port)
        c.call("POST", setq("user", "bob"))
        old = c.cookie
        st, h, b = c.call("POST", "/s/regenerate")
        self.assertIn("set-cookie", h)
        self.assertNotEqual(old.split(".")[0], c.cookie.split(".")[0])
        self.assertEqual(c.call("GET", "/s")[2], {"new": False, "data": {"user": "bob"}})
        self.assertEqual(c.call("GET", "/s", cookie=old, keep=False)[2], {"new": True, "data": {}})

    def test_invalidate(self):
        c = Client(self.srv.port)
        c.call("POST", setq("user", "eve"))
        old = c.cookie
        st, h, b = c.call("POST", "/s/invalidate")
        self.assertIn("Max-Age=0", h["set-cookie"])
        self.assertEqual(b["data"], {})
        self.assertIsNone(c.cookie)
        self.assertEqual(c.call("GET", "/s", cookie=old, keep=False)[2], {"new": True, "data": {}})

    def test_answer_while_load_in_flight(self):
        c = Client(self.srv.port)
        c.call("POST", setq("a", 1))
        for _ in range(20):
            st, _, body = weblib.req(self.srv.port, "/s/early",
                                     headers={"Cookie": "loom_session=" + c.cookie})
            self.assertEqual((st, body), (202, b"answered early"))
        self.assertEqual(c.call("GET", "/s")[2]["data"], {"a": 1})

    def test_size_limit(self):
        c = Client(self.srv.port)
        st, _, _ = c.call("POST", setq("big", "x" * 2000))
        self.assertEqual(st, 413)
        st, _, b = c.call("POST", setq("a", "x" * 600))
        self.assertEqual(st, 200)
        st, _, _ = c.call("POST", setq("b", "y" * 600))  # the total is over max_size
        self.assertEqual(st, 413)
        st, _, b = c.call("GET", "/s")
        self.assertEqual(b["data"], {"a": "x" * 600})

    def test_concurrent_counter_is_exact(self):
        """Item 2: 400 clicks, 16 at a time, on one session: 400, none lost."""
        c = Client(self.srv.port)
        st, h, b = c.call("POST", "/demo/api/login?user=ann")
        self.assertEqual((st, b), (200, {"user": "ann", "count": 0}))
        t0 = time.time()
        statuses, counts = asyncio.run(count_clicks(self.srv.port, c.cookie, 400, 16))
        took = time.time() - t0
        self.assertEqual(statuses.count(200), 400, "statuses: %s" % sorted(set(statuses)))
        st, h, b = c.call("GET", "/demo/api/me")
        self.assertEqual(b, {"user": "ann", "count": 400}, "after %.1f s" % took)
        # every click saw a count of its own: none was written twice
        self.assertEqual(sorted(counts), list(range(1, 401)))
        # and 64 at a time (where the old code ended at 78 of 400)
        statuses, counts2 = asyncio.run(count_clicks(self.srv.port, c.cookie, 400, 64))
        self.assertEqual(statuses.count(200), 400, "statuses: %s" % sorted(set(statuses)))
        self.assertEqual(c.call("GET", "/demo/api/me")[2], {"user": "ann", "count": 800})
        self.assertEqual(sorted(counts2), list(range(401, 801)))

    def hold(self, c, k, v, commit):
        """Starts POST /s/hold in a thread; returns (go file, thread, result list)."""
        go = os.path.join(self.tmp, "go-%d" % time.monotonic_ns())
        out = []
        q = "/s/hold?k=%s&v=%s&until=%s%s" % (k, urllib.parse.quote(json.dumps(v)),
                                              urllib.parse.quote(go), "&commit=1" if commit else "")
        th = threading.Thread(target=lambda: out.append(weblib.req(
            self.srv.port, q, method="POST", headers={"Cookie": "loom_session=" + c.cookie})))
        th.start()
        return go, th, out

    def release(self, go, th, out):
        with open(go, "w"):
            pass
        th.join(30)
        self.assertFalse(th.is_alive())
        st, h, body = out[0]
        return st, h, json.loads(body) if body.startswith(b"{") else body

    def wait_loaded(self, go):
        """Until the held request has its session (it creates go + ".loaded")."""
        deadline = time.time() + 10
        while not os.path.exists(go + ".loaded"):
            self.assertLess(time.time(), deadline, "the held request never loaded its session")
            time.sleep(0.01)

    def test_real_conflict_reaches_the_handler(self):
        c = Client(self.srv.port)
        c.call("POST", setq("x", 0))
        go, th, out = self.hold(c, "x", 1, commit=True)
        self.wait_loaded(go)
        self.assertEqual(c.call("POST", setq("x", 2))[0], 200)  # changes x meanwhile
        st, h, b = self.release(go, th, out)
        self.assertEqual(st, 409, b)
        self.assertEqual(b["status"], -9)  # LOOM_ECONFLICT
        self.assertEqual(b["data"], {"x": 2})  # the session as stored, its change dropped
        self.assertEqual(c.call("GET", "/s")[2]["data"], {"x": 2})

    def test_changes_to_other_keys_merge(self):
        c = Client(self.srv.port)
        c.call("POST", setq("x", 0))
        go, th, out = self.hold(c, "a", 1, commit=True)
        go2, th2, out2 = self.hold(c, "b", 2, commit=False)
        self.wait_loaded(go)
        self.wait_loaded(go2)
        self.assertEqual(c.call("POST", setq("x", 3))[0], 200)
        st, h, b = self.release(go, th, out)
        self.assertEqual((st, b["status"]), (200, 0), b)
        self.assertEqual(b["data"], {"x": 3, "a": 1})
        st, h, b = self.release(go2, th2, out2)
        self.assertEqual(st, 200, b)
        self.assertEqual(c.call("GET", "/s")[2]["data"], {"x": 3, "a": 1, "b": 2})

    def test_conflict_at_the_end_answers_409_and_logs_the_key(self):
        c = Client(self.srv.port)
        c.call("POST", setq("cart", [1]))
        go, th, out = self.hold(c, "cart", [1, 2], commit=False)
        self.wait_loaded(go)
        self.assertEqual(c.call("POST", setq("cart", [1, 3]))[0], 200)
        st, h, b = self.release(go, th, out)
        self.assertEqual(st, 409, b)
        self.assertNotIn("set-cookie", h)
        self.assertEqual(c.call("GET", "/s")[2]["data"], {"cart": [1, 3]})
        log = self.srv.wait_log('key "cart" of session %s' % c.cookie[:8])
        self.assertIn("POST /s/hold", log)
        self.assertIn("answered 409", log)

    def test_idle_and_absolute_timeouts(self):
        # Cookie times are whole seconds (a session of idle_timeout 1 made at
        # 12.9 s ends at 13 s), so the timeouts are 3 s: a read right after
        # the write cannot straddle the end, and 4.2 s without a request is
        # past it from any start within a second.
        srv = self.start(idle_timeout=3, absolute_timeout=100)
        srv2 = self.start(idle_timeout=100, absolute_timeout=3)
        try:
            a, b = Client(srv.port), Client(srv2.port)
            a.call("POST", setq("v", 1))
            b.call("POST", setq("v", 2))
            self.assertEqual(a.call("GET", "/s")[2]["data"], {"v": 1})
            self.assertEqual(b.call("GET", "/s")[2]["data"], {"v": 2})
            time.sleep(4.2)
            self.assertEqual(a.call("GET", "/s", keep=False)[2], {"new": True, "data": {}})
            self.assertEqual(b.call("GET", "/s", keep=False)[2], {"new": True, "data": {}})
        finally:
            self.assertEqual(srv.stop(), 0, srv.log()[-2000:])
            self.assertEqual(srv2.stop(), 0, srv2.log()[-2000:])


class MemoryStoreTest(StoreConformance, unittest.TestCase):
    store = "memory"


class SqliteStoreTest(StoreConformance, unittest.TestCase):
    store = "sqlite"
    args = ["--workers", "2"]

    def test_shared_by_workers_and_survives_restart_with_key_rotation(self):
        c = Client(self.srv.port)
        c.call("POST", setq("user", "zoe"))
        # fresh connections land on both workers
        for _ in range(20):
            self.assertEqual(c.call("GET", "/s")[2]["data"], {"user": "zoe"})
        # a restart with a rotated ring: the old key still verifies
        srv = self.start(keys=[K2, K1])
        try:
            c.port = srv.port
            self.assertEqual(c.call("GET", "/s")[2]["data"], {"user": "zoe"})
            st, h, _ = c.call("POST", setq("n", 1))  # re-signed with the newest key
            sid, i, e, mac = c.cookie.split(".")
            self.assertEqual(mac, hmac.new(K2.encode(), ("%s|%s|%s" % (sid, i, e)).encode(),
                                           hashlib.sha256).hexdigest())
        finally:
            self.assertEqual(srv.stop(), 0)
        srv = self.start(keys=[K3])
        try:
            c.port = srv.port
            self.assertEqual(c.call("GET", "/s", keep=False)[2], {"new": True, "data": {}})
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_table_made_before_versions_is_upgraded(self):
        tmp = tempfile.mkdtemp(prefix="loom-sess-old-")
        try:
            path = os.path.join(tmp, "s.db")
            db = sqlite3.connect(path)
            db.execute("CREATE TABLE sessions(id TEXT PRIMARY KEY, data TEXT NOT NULL,"
                       " expires INTEGER NOT NULL)")
            sid = "cd" * 16
            db.execute("INSERT INTO sessions VALUES(?, ?, ?)", (sid, '{"a":1}', int(time.time()) + 600))
            db.commit()
            db.close()
            cfg = sess_config("sqlite", tmp=tmp)
            srv = loomtest.Server(plugins_dir=self.pdir, args=["--workers", "2"], config=cfg)
            try:
                weblib.wait_route(srv.port, "/s")
                c = Client(srv.port)
                c.cookie = forge(sid)
                self.assertEqual(c.call("GET", "/s")[2], {"new": False, "data": {"a": 1}})
                self.assertEqual(c.call("POST", setq("b", 2))[2]["data"], {"a": 1, "b": 2})
                self.assertEqual(c.call("GET", "/s")[2]["data"], {"a": 1, "b": 2})
            finally:
                self.assertEqual(srv.stop(), 0, srv.log()[-2000:])
            db = sqlite3.connect(path)
            self.assertEqual(db.execute("SELECT version FROM sessions WHERE id = ?", (sid,)).fetchone(), (2,))
            db.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_expired_rows_swept(self):
        srv = self.start(idle_timeout=1)
        try:
            for _ in range(3):
                Client(srv.port).call("POST", setq("v", 1))
            db = sqlite3.connect(os.path.join(self.tmp, "s.db"), timeout=5)
            n0 = db.execute("SELECT count(*) FROM sessions WHERE expires <= strftime('%s','now') + 1").fetchone()[0]
            self.assertGreaterEqual(n0, 3)
            deadline = time.time() + 8
            while time.time() < deadline:
                n = db.execute("SELECT count(*) FROM sessions WHERE expires < strftime('%s','now')").fetchone()[0]
                if n == 0:
                    break
                time.sleep(0.2)
            db.close()
            self.assertEqual(n, 0)
        finally:
            self.assertEqual(srv.stop(), 0)


@unittest.skipUnless(shutil.which("redis-server"), "redis-server is not installed")
class RedisStoreTest(StoreConformance, unittest.TestCase):
    store = "redis"
    args = ["--workers", "2"]
    redis = None

    @classmethod
    def setUpClass(cls):
        cls.redis = weblib.Redis()
        try:
            super().setUpClass()
        except Exception:
            cls.redis.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.redis.stop()

    def test_shared_by_workers_and_ttl_in_redis(self):
        c = Client(self.srv.port)
        c.call("POST", setq("user", "rita"))
        for _ in range(20):
            self.assertEqual(c.call("GET", "/s")[2]["data"], {"user": "rita"})
        s = loomtest.connect(self.redis.port)
        sid = c.cookie.split(".")[0]
        s.sendall(("TTL t:%s\r\n" % sid).encode())
        ttl = int(s.recv(100).strip()[1:])
        s.close()
        self.assertTrue(1700 <= ttl <= 1800, ttl)

    def test_session_written_before_versions_still_reads(self):
        """A plain string (the format before versions) is version 1."""
        sid = "ab" * 16
        self.assertEqual(redis_cmd(self.redis.port, "SET", "t:" + sid, '{"a":1}', "EX", "600"),
                         b"+OK\r\n")
        c = Client(self.srv.port)
        c.cookie = forge(sid)
        self.assertEqual(c.call("GET", "/s")[2], {"new": False, "data": {"a": 1}})
        self.assertEqual(c.call("POST", setq("b", 2))[2]["data"], {"a": 1, "b": 2})
        self.assertEqual(redis_cmd(self.redis.port, "TYPE", "t:" + sid), b"+hash\r\n")
        self.assertIn(b"\r\n2\r\n", redis_cmd(self.redis.port, "HGET", "t:" + sid, "v"))
        self.assertEqual(c.call("GET", "/s")[2]["data"], {"a": 1, "b": 2})

    def test_redis_down_gives_503_never_a_fresh_session(self):
        """Item 3: a store that cannot answer is not a logout."""
        c = Client(self.srv.port)
        c.call("POST", "/demo/api/login?user=ann")
        self.assertEqual(c.call("GET", "/demo/api/me")[2], {"user": "ann", "count": 0})
        port = self.redis.port
        self.redis.stop(hold_port=True)  # refused, and kept for the restart below
        try:
            for _ in range(3):  # fresh connections: both workers
                for path in ("/s", "/demo/api/me"):
                    st, h, b = c.call("GET", path, keep=False)
                    self.assertEqual(st, 503, (path, b))
                    self.assertNotIn("set-cookie", h)
                st, h, b = c.call("POST", "/demo/api/count", keep=False)
                self.assertEqual(st, 503, b)  # not "401: log in first"
            # a new visitor's session can be made, but not saved: 503, no cookie
            st, h, b = Client(self.srv.port).call("POST", setq("w", 1))
            self.assertEqual(st, 503, b)
            self.assertNotIn("set-cookie", h)
            # a handler that ignores the load's status does not pass for a success
            st, h, b = c.call("GET", "/s/ignore", keep=False)
            self.assertEqual(st, 503, b)
            log = self.srv.wait_log('store "redis" could not load a session')
            self.assertIn('store "redis" could not save a session', log)
            self.assertRegex(log, r"session-redis: .*(cannot connect|lost|no reply)")
        finally:
            RedisStoreTest.redis = weblib.Redis(port)  # empty: the old session is gone
        # an absent session (the new Redis never saw it) gives a fresh one again
        deadline = time.time() + 10
        while True:
            st, h, b = c.call("GET", "/s", keep=False)
            if st == 200 or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual((st, b), (200, {"new": True, "data": {}}))
        self.assertEqual(c.call("GET", "/demo/api/me", keep=False)[2], {"user": None, "count": 0})
        c2 = Client(self.srv.port)
        self.assertEqual(c2.call("POST", setq("w", 2))[0], 200)
        self.assertEqual(c2.call("GET", "/s")[2]["data"], {"w": 2})


def run_serve(pdir, config, *args, timeout=30):
    """Runs `loom serve` to its end (a server that must refuse to start)."""
    d = tempfile.mkdtemp(prefix="loom-sess-cfg-")
    try:
        cfg = os.path.join(d, "c.json")
        with open(cfg, "w") as f:
            json.dump(config, f)
        p = subprocess.run([loomtest.LOOM_BIN, "serve", "--host", "127.0.0.1", "--port",
                            str(loomtest.free_port()), "--plugins-dir", pdir, "--config", cfg]
                           + list(args), capture_output=True, timeout=timeout)
        return p.returncode, (p.stdout + p.stderr).decode()
    finally:
        shutil.rmtree(d, ignore_errors=True)


class ConfigTest(unittest.TestCase):
    def test_memory_store_refuses_more_than_one_worker(self):
        """Item 4: one line naming the store and --single, and no server."""
        pdir = weblib.plugin_dir("session-memory", "sesstest")
        try:
            cfg = {"plugins": {"sessions": {"keys": [K1], "store": "memory"}}}
            t0 = time.time()
            rc, out = run_serve(pdir, cfg, "--workers", "2")
            self.assertNotEqual(rc, 0, out)
            self.assertLess(time.time() - t0, 20)
            lines = [ln for ln in out.splitlines() if "--single" in ln]
            self.assertEqual(len(lines), 1, out)
            self.assertIn('store "memory"', lines[0])
            self.assertNotIn("listening", out.split("--single")[1])  # nothing served after
            # one worker (or --single) is fine
            srv = loomtest.Server(plugins_dir=pdir, args=["--workers", "1"], config=cfg)
            try:
                weblib.wait_route(srv.port, "/s")
                c = Client(srv.port)
                self.assertEqual(c.call("POST", setq("a", 1))[2]["data"], {"a": 1})
                self.assertEqual(c.call("GET", "/s")[2]["data"], {"a": 1})
            finally:
                self.assertEqual(srv.stop(), 0, srv.log()[-2000:])
        finally:
            shutil.rmtree(pdir, ignore_errors=True)

    def test_unknown_sessions_key_refused(self):
        pdir = weblib.plugin_dir("session-memory")
        try:
            rc, out = run_serve(pdir, {"plugins": {"sessions": {"keys": [K1], "store": "memory",
                                                                "idle_timout": 5}}}, "--single")
            self.assertNotEqual(rc, 0, out)
            self.assertIn('unknown key "idle_timout"', out)
        finally:
            shutil.rmtree(pdir, ignore_errors=True)

    def test_start_up_says_when_sessions_are_missing(self):
        """Item 11: a plugin that uses sessions, and none configured: one line."""
        pdir = weblib.plugin_dir("session-sqlite", "session-demo")
        try:
            srv = loomtest.Server(plugins_dir=pdir, args=["--workers", "2"], config={})
            try:
                log = srv.wait_log("uses sessions, but they are not configured")
                self.assertEqual(log.count("uses sessions"), 1, log)
                self.assertIn("plugin session-demo uses sessions", log)
                self.assertEqual(weblib.req(srv.port, "/demo/api/me")[0], 503)
            finally:
                self.assertEqual(srv.stop(), 0)
            tmp = tempfile.mkdtemp(prefix="loom-sess-")
            srv = loomtest.Server(plugins_dir=pdir, args=["--single"], config={"plugins": {
                "sessions": {"keys": [K1], "store": "redis"},
                "session-sqlite": {"db": os.path.join(tmp, "s.db")}}})
            try:
                log = srv.wait_log('the store "redis" is configured, but no loaded plugin')
                self.assertIn("session-redis.so", log)
            finally:
                self.assertEqual(srv.stop(), 0)
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            shutil.rmtree(pdir, ignore_errors=True)

    def test_a_1_1_store_keeps_working_with_a_warning(self):
        """A store without the versioned operations: old semantics, one warning."""
        pdir = weblib.plugin_dir("oldstore", "sesstest", "session-demo")
        try:
            srv = loomtest.Server(plugins_dir=pdir, args=["--single"], config={"plugins": {
                "sessions": {"keys": [K1], "store": "old"}}})
            try:
                weblib.wait_route(srv.port, "/s")
                c = Client(srv.port)
                self.assertEqual(c.call("POST", setq("a", 1))[2]["data"], {"a": 1})
                c.call("POST", "/s/regenerate")
                self.assertEqual(c.call("GET", "/s")[2], {"new": False, "data": {"a": 1}})
                c.call("POST", "/demo/api/login?user=bo")
                for i in range(1, 4):
                    self.assertEqual(c.call("POST", "/demo/api/count")[2]["count"], i)
                log = srv.log()
                warn = [ln for ln in log.splitlines() if "no versioned operations" in ln]
                self.assertEqual(len(warn), 1, log)
                self.assertIn('store "old" (plugin oldstore)', warn[0])
            finally:
                self.assertEqual(srv.stop(), 0, srv.log()[-2000:])
        finally:
            shutil.rmtree(pdir, ignore_errors=True)

    def test_start_refused_after_a_store_queued_work(self):
        """session-sqlite queues its first sweep in init; a start refused
        after that (a typo'd plugin section) waits for the job, runs fini and
        exits with the config status: no crash, no respawn loop."""
        pdir = weblib.plugin_dir("session-sqlite")
        tmp = tempfile.mkdtemp(prefix="loom-sess-")
        try:
            cfg = sess_config("sqlite", tmp=tmp)
            cfg["plugins"]["session-sqlit"] = {}
            for args in (["--workers", "2"], ["--single"]):
                rc, out = run_serve(pdir, cfg, *args)
                self.assertEqual(rc, 1, out)
                self.assertIn("no plugin named 'session-sqlit'", out)
                self.assertNotIn("signal", out)
                self.assertNotIn("respawning", out)
                self.assertNotIn("AddressSanitizer", out)
                if args[0] == "--workers":
                    self.assertIn("failed to start; stopping", out)
        finally:
            shutil.rmtree(pdir, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)

    def test_short_key_refused_at_start(self):
        import subprocess
        d = tempfile.mkdtemp(prefix="loom-sess-cfg-")
        pdir = weblib.plugin_dir("session-memory")
        try:
            cfg = os.path.join(d, "c.json")
            with open(cfg, "w") as f:
                json.dump({"plugins": {"sessions": {"keys": ["short"], "store": "memory"}}}, f)
            p = subprocess.run([loomtest.LOOM_BIN, "serve", "--host", "127.0.0.1", "--port",
                                str(loomtest.free_port()), "--plugins-dir", pdir, "--config", cfg,
                                "--single"], capture_output=True, timeout=30)
            out = (p.stdout + p.stderr).decode()
            self.assertNotEqual(p.returncode, 0, out)
            self.assertIn("at least 32 bytes", out)
        finally:
            shutil.rmtree(d, ignore_errors=True)
            shutil.rmtree(pdir, ignore_errors=True)


if __name__ == "__main__":
    loomtest.main()
