"""Sessions: one store conformance suite run against every store plugin, plus
the cookie rules (signature, key ring, tampering, timeouts, size limits) and
what only the SQLite store promises (restart, several workers, sweeping)."""
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import tempfile
import time
import unittest
import urllib.parse

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


def setq(k, v):
    return "/s?k=%s&v=%s" % (k, urllib.parse.quote(json.dumps(v)))


class StoreConformance:
    """Mixed into one TestCase per store."""
    store = None
    args = ["--single"]

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="loom-sess-")
        cls.pdir = weblib.plugin_dir("session-" + cls.store, "sesstest")
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

    def test_idle_and_absolute_timeouts(self):
        srv = self.start(idle_timeout=1, absolute_timeout=100)
        srv2 = self.start(idle_timeout=100, absolute_timeout=1)
        try:
            a, b = Client(srv.port), Client(srv2.port)
            a.call("POST", setq("v", 1))
            b.call("POST", setq("v", 2))
            self.assertEqual(a.call("GET", "/s")[2]["data"], {"v": 1})
            time.sleep(2.2)
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

    def test_redis_down_gives_fresh_sessions_then_recovers(self):
        port = self.redis.port
        c = Client(self.srv.port)
        c.call("POST", setq("v", 1))
        self.redis.stop()
        try:
            for _ in range(3):
                st, _, b = c.call("GET", "/s", keep=False)
                self.assertEqual((st, b), (200, {"new": True, "data": {}}))
        finally:
            r = weblib.Redis.__new__(weblib.Redis)
            RedisStoreTest.redis = r
            import subprocess
            r.port, r.dir = port, tempfile.mkdtemp(prefix="loom-redis-")
            r.proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", r.dir],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    loomtest.connect(port, 0.5).close()
                    break
                except OSError:
                    time.sleep(0.05)
        deadline = time.time() + 10
        while time.time() < deadline:
            c2 = Client(self.srv.port)
            c2.call("POST", setq("w", 2))
            if c2.cookie and c2.call("GET", "/s")[2]["data"] == {"w": 2}:
                break
            time.sleep(0.2)
        self.assertEqual(c2.call("GET", "/s")[2]["data"], {"w": 2})


class ConfigTest(unittest.TestCase):
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
