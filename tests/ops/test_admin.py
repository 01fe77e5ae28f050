"""The admin listener of a real two-worker server, scraped with the Python
aiohttp client: the Prometheus exposition is valid (a strict reader of the
0.0.4 rules, and prometheus_client's parser), its figures are the sum over
both workers and move as requests are made (requests by route, method,
plugin and status class; the latency histogram; in flight; connections;
bytes; thread-pool jobs; client fetches; session store operations; plugin
reloads, failures and generations; worker restarts by signal, counters that
survive the restart); the bearer token is required (and compared whole);
nothing of it answers on the public listener; `loom status` and `loom
plugins` read it, and say plainly when it is not reachable."""
import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import aiohttp

import loomtest
import opslib

OPS = os.path.join(loomtest.LOOM_BUILD, "test-plugins-ops")
RELOAD = os.path.join(loomtest.LOOM_BUILD, "test-plugins-reload")
TOKEN = "s3cret-admin-token-0123456789"
KEY = "k1-0123456789abcdef0123456789abcdef"
# A SIGSEGV kills the worker as it would without ASan (and reaches loom's
# own crash handler, which writes the buffered log lines).
ENV = {"ASAN_OPTIONS": "handle_segv=0:detect_leaks=1"}
AUTH = {"Authorization": "Bearer " + TOKEN}


def loom(*args, env=None):
    e = dict(os.environ)
    e.pop("LOOM_ADMIN_TOKEN", None)
    e.update(env or {})
    p = subprocess.run([loomtest.LOOM_BIN] + list(args), capture_output=True, text=True,
                       timeout=30, env=e)
    return p.returncode, p.stdout, p.stderr


class Admin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="loom-ops-")
        cls.plugins = os.path.join(cls.tmp, "plugins")
        os.mkdir(cls.plugins)
        for so in (os.path.join(OPS, "opstest.so"),
                   os.path.join(loomtest.PLUGINS_DIR, "session-sqlite.so"),
                   os.path.join(RELOAD, "v1", "version.so")):
            shutil.copy(so, cls.plugins)
        cls.aport = loomtest.free_port()
        port = loomtest.free_port()
        cls.cfg = {
            "admin": {"listen": "127.0.0.1:%d" % cls.aport, "token": TOKEN},
            "plugins": {
                "opstest": {"upstream": "http://127.0.0.1:%d/o/ok" % port,
                            "closed": "http://127.0.0.1:%d/" % loomtest.free_port()},
                "sessions": {"keys": [KEY], "store": "sqlite"},
                "session-sqlite": {"db": os.path.join(cls.tmp, "s.db")},
            },
        }
        cls.srv = loomtest.Server(plugins_dir=cls.plugins, config=cls.cfg, port=port,
                                  args=["--workers", "2"], env=ENV)
        cls.port = cls.srv.port
        cls.cfgpath = os.path.join(cls.srv.tmp, "loom.json")
        cls.wait_workers_up(2)

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, cls.srv.log()

    @classmethod
    def wait_workers_up(cls, n, timeout=15):
        deadline = time.time() + timeout
        st = None
        while time.time() < deadline:
            try:
                st = opslib.status_json(cls.aport, TOKEN)
                if st["workers_up"] == n and all(w["plugins"] for w in st["workers"]):
                    return st
            except (OSError, AssertionError):
                pass
            time.sleep(0.05)
        raise AssertionError("workers not up: %r\n%s" % (st, cls.srv.log()))

    def scrape(self):
        """GET /metrics with aiohttp; checks the format; returns the samples."""
        async def go():
            async with aiohttp.ClientSession() as s:
                async with s.get("http://127.0.0.1:%d/metrics" % self.aport, headers=AUTH) as r:
                    self.assertEqual(r.status, 200)
                    self.assertEqual(r.headers["Content-Type"],
                                     "text/plain; version=0.0.4; charset=utf-8")
                    return await r.text()
        text = asyncio.run(go())
        samples, types = opslib.parse(text)
        # The reference parser reads it too, every family with its type.
        from prometheus_client.parser import text_string_to_metric_families
        fams = {f.name: f.type for f in text_string_to_metric_families(text)}
        for name, t in types.items():
            base = name[:-6] if t == "counter" and name.endswith("_total") else name
            self.assertEqual(fams.get(base), t, name)
        return samples

    def requests(self, paths, conc=8):
        """GETs every path with aiohttp (conc at a time); returns the statuses."""
        async def go():
            sem = asyncio.Semaphore(conc)
            async with aiohttp.ClientSession() as s:
                async def one(p):
                    async with sem:
                        async with s.get("http://127.0.0.1:%d%s" % (self.port, p)) as r:
                            await r.read()
                            return r.status
                return await asyncio.gather(*[one(p) for p in paths])
        return asyncio.run(go())

    def test_a_format_and_families(self):
        m = self.scrape()
        self.assertEqual(opslib.get(m, "loom_workers"), 2)
        self.assertEqual(opslib.get(m, "loom_workers_up"), 2)
        self.assertEqual(opslib.get(m, "loom_build_info", version=loom("version")[1].split()[1]), 1)
        for w in ("0", "1"):
            self.assertEqual(opslib.get(m, "loom_plugin_generation", worker=w, plugin="version"), 3)
            self.assertEqual(opslib.get(m, "loom_plugin_info", worker=w, plugin="opstest",
                                        version="1.0.0", sha256=self.sha("opstest.so")), 1)
        # Each worker loaded three plugins into service.
        self.assertEqual(opslib.get(m, "loom_plugin_generations_loaded_total"), 6)

    def sha(self, name):
        import hashlib
        with open(os.path.join(self.plugins, name), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def test_b_requests_move_the_figures(self):
        before = self.scrape()
        paths = (["/o/ok"] * 40 + ["/o/fail"] * 3 + ["/o/slow"] * 2 + ["/o/nope"] * 2 +
                 ["/o/esc/a%22%5C"])
        statuses = self.requests(paths)
        self.assertEqual(statuses.count(200), 43)
        self.assertEqual(statuses.count(500), 3)
        self.assertEqual(statuses.count(404), 2)
        after = self.scrape()

        def d(name, **lab):
            return opslib.get(after, name, **lab) - opslib.get(before, name, **lab)
        R = "loom_http_requests_total"
        self.assertEqual(d(R, route="/o/ok", method="GET", plugin="opstest", status="2xx"), 40)
        self.assertEqual(d(R, route="/o/fail", method="GET", plugin="opstest", status="5xx"), 3)
        self.assertEqual(d(R, route="(unmatched)", method="GET", plugin="", status="4xx"), 2)
        # The pattern with a quote and a backslash, escaped in the text and
        # read back exactly.
        self.assertEqual(d(R, route='/o/esc/{v:[a"\\\\]+}', method="GET", plugin="opstest",
                           status="2xx"), 1)
        # Both workers answered (summed): each has its own series.
        H = "loom_http_request_duration_seconds"
        lab = dict(route="/o/slow", method="GET", plugin="opstest")
        self.assertEqual(d(H + "_count", **lab), 2)
        self.assertEqual(d(H + "_bucket", le="0.025", **lab), 0)  # 30 ms timers
        self.assertEqual(d(H + "_bucket", le="+Inf", **lab), 2)
        self.assertGreaterEqual(d(H + "_sum", **lab), 2 * 0.025)
        self.assertEqual(d(H + "_count", route="/o/ok", method="GET", plugin="opstest"), 40)
        self.assertGreater(d("loom_received_bytes_total"), 48 * 30)
        self.assertGreater(d("loom_sent_bytes_total"), 48 * 60)
        self.assertGreaterEqual(d("loom_connections_total", protocol="http/1.1"), 1)
        self.assertEqual(opslib.get(after, "loom_http_requests_in_flight"), 0)
        # /metrics itself is not a request of the public side.
        self.assertEqual(opslib.total(after, R) - opslib.total(before, R), 48)

    def test_c_in_flight_and_thread_pool(self):
        # Each job sleeps 2 s on the pool (4 threads a worker): the six are
        # surely all in flight together while the scrapes below look, however
        # slowly the six requests arrive.
        async def go():
            async with aiohttp.ClientSession() as s:
                async def one():
                    async with s.get("http://127.0.0.1:%d/o/work?ms=2000" % self.port) as r:
                        return r.status
                tasks = [asyncio.ensure_future(one()) for _ in range(6)]
                deadline = time.time() + 10
                seen = []
                while True:
                    async with s.get("http://127.0.0.1:%d/metrics" % self.aport,
                                     headers=AUTH) as r:
                        mid = opslib.parse(await r.text())[0]
                    seen.append(opslib.get(mid, "loom_http_requests_in_flight"))
                    if seen[-1] >= 6 or time.time() > deadline:
                        break
                    await asyncio.sleep(0.02)
                return mid, seen, await asyncio.gather(*tasks)
        mid, seen, statuses = asyncio.run(go())
        self.assertEqual(statuses, [200] * 6)
        self.assertEqual(seen[-1], 6, "in flight seen while six 2 s jobs ran: %r" % seen)
        jobs = (opslib.get(mid, "loom_threadpool_jobs", state="queued") +
                opslib.get(mid, "loom_threadpool_jobs", state="running"))
        self.assertEqual(jobs, 6)
        end = self.scrape()
        self.assertEqual(opslib.get(end, "loom_http_requests_in_flight"), 0)
        self.assertEqual(opslib.total(end, "loom_threadpool_jobs"), 0)

    def test_d_fetches_and_sessions(self):
        before = self.scrape()
        self.assertEqual(self.requests(["/o/fetch", "/o/fetchbad"], conc=1), [200, 502])

        async def sess():
            # Twice with the cookie the first answer set: a save, then a load.
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as s:
                out = []
                for _ in range(2):
                    async with s.get("http://127.0.0.1:%d/o/sess" % self.port) as r:
                        await r.read()
                        out.append(r.status)
                return out
        self.assertEqual(asyncio.run(sess()), [200, 200])
        after = self.scrape()

        def d(name, **lab):
            return opslib.get(after, name, **lab) - opslib.get(before, name, **lab)
        self.assertEqual(d("loom_client_fetches_total", outcome="ok"), 1)
        self.assertEqual(d("loom_client_fetches_total", outcome="connection_refused"), 1)
        S = "loom_session_store_operations_total"
        self.assertEqual(d(S, op="load", result="ok"), 1)
        self.assertGreaterEqual(d(S, op="save", result="ok") + d(S, op="touch", result="ok"), 1)
        self.assertEqual(opslib.total(after, S, result="error"), 0)

    def test_e_reloads(self):
        before = self.scrape()
        subprocess.run([loomtest.LOOM_BIN, "install-plugin", os.path.join(RELOAD, "v2", "version.so"),
                        self.plugins], check=True, capture_output=True, timeout=20)
        self.wait_for(lambda m: all(opslib.get(m, "loom_plugin_generation", worker=w,
                                               plugin="version") > 3 for w in ("0", "1")))
        m = self.scrape()
        self.assertEqual(opslib.get(m, "loom_plugin_reloads_total") -
                         opslib.get(before, "loom_plugin_reloads_total"), 2)
        for w in ("0", "1"):
            self.assertGreater(opslib.get(m, "loom_plugin_reload_last_duration_seconds", worker=w), 0)
        subprocess.run([loomtest.LOOM_BIN, "install-plugin", os.path.join(RELOAD, "fail", "version.so"),
                        self.plugins], check=True, capture_output=True, timeout=20)
        self.wait_for(lambda x: opslib.get(x, "loom_plugin_reload_failures_total") -
                      opslib.get(before, "loom_plugin_reload_failures_total") == 2)
        # The refused version left the served generation alone.
        m2 = self.scrape()
        for w in ("0", "1"):
            self.assertEqual(opslib.get(m2, "loom_plugin_generation", worker=w, plugin="version"),
                             opslib.get(m, "loom_plugin_generation", worker=w, plugin="version"))
        # The dashboard's JSON says the same, with the refusal.
        st = opslib.status_json(self.aport, TOKEN)
        for w in st["workers"]:
            v = [p for p in w["plugins"] if p["name"] == "version"][0]
            self.assertIn("init failed", v["last_error"])
        # A worker started later must find a good file (test_f crashes one).
        subprocess.run([loomtest.LOOM_BIN, "install-plugin", os.path.join(RELOAD, "v2", "version.so"),
                        self.plugins], check=True, capture_output=True, timeout=20)

    def wait_for(self, cond, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                m = self.scrape()
            except aiohttp.ClientError:
                # A connection the kernel had queued for a worker that just died.
                m = None
            if m and cond(m):
                return m
            time.sleep(0.05)
        self.fail("metrics did not get there:\n" + self.srv.log())

    def test_f_crash_is_counted_and_sums_hold(self):
        before = self.scrape()
        R = "loom_http_requests_total"
        with self.assertRaises(OSError):  # the worker dies before it answers
            opslib.http_get(self.port, "/o/crash", timeout=5)
        m = self.wait_for(lambda x: opslib.get(x, "loom_worker_restarts_total", signal="SIGSEGV") == 1
                          and opslib.get(x, "loom_workers_up") == 2, timeout=15)
        # The dead worker's counters stay in the sums (the slot outlives it).
        self.assertGreaterEqual(opslib.total(m, R), opslib.total(before, R))
        # The line it logged right before the crash was in its buffer, and
        # was written by the crash handler.
        log = self.srv.wait_log("opstest: about to crash", timeout=5)
        self.assertRegex(log, r"worker \d \(pid \d+\) killed by signal 11")
        st = opslib.status_json(self.aport, TOKEN)
        self.assertEqual(st["restarts"], {"SIGSEGV": 1})
        self.assertEqual(sum(w["restarts"] for w in st["workers"]), 1)
        self.assertEqual(st["workers_up"], 2)

    def test_g_token(self):
        for path in ("/metrics", "/api/status", "/plugins"):
            st, h, _ = opslib.http_get(self.aport, path)
            self.assertEqual(st, 401, path)
            self.assertEqual(h["www-authenticate"], 'Bearer realm="loom admin"')
            for bad in (TOKEN[:-1], TOKEN + "x", TOKEN.upper(), ""):
                st, _, _ = opslib.http_get(self.aport, path, {"Authorization": "Bearer " + bad})
                self.assertEqual(st, 401, (path, bad))
            self.assertEqual(opslib.http_get(self.aport, path, AUTH)[0], 200, path)
        # The page holds no data: it is served without the token.
        st, h, body = opslib.http_get(self.aport, "/")
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/html"))
        self.assertIn(b"api/status", body)
        self.assertEqual(opslib.http_get(self.aport, "/nothing", AUTH)[0], 404)

    def test_h_not_on_the_public_listener(self):
        for path in ("/metrics", "/api/status", "/plugins", "/_loom/plugins"):
            st, _, body = opslib.http_get(self.port, path, AUTH)
            self.assertEqual(st, 404, (path, body))

    def test_i_cli(self):
        a = "127.0.0.1:%d" % self.aport
        rc, out, err = loom("status", "--admin", a)
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn("wants a token", err)
        rc, out, err = loom("status", "--admin", a, "--token", TOKEN)
        self.assertEqual(rc, 0, err)
        self.assertIn("workers: 2 of 2 up", out)
        self.assertRegex(out, r"(?m)^  w0 +\d+  serving ")
        self.assertRegex(out, r"(?m)^  w1 +\d+  serving ")
        self.assertRegex(out, r"(?m)^  opstest +1\.0\.0 ")
        # The address and the token from the server's own config file.
        rc, out2, err = loom("status", "--config", self.cfgpath, "--json")
        self.assertEqual(rc, 0, err)
        st = json.loads(out2)
        self.assertEqual(st["workers_configured"], 2)
        self.assertEqual(len(st["workers"]), 2)
        rc, out, err = loom("plugins", "--admin", a, "--json", env={"LOOM_ADMIN_TOKEN": TOKEN})
        self.assertEqual(rc, 0, err)
        listings = [json.loads(ln) for ln in out.splitlines()]
        self.assertEqual([x["worker"] for x in listings], [0, 1])
        for x in listings:
            self.assertIn("opstest", [p["name"] for p in x["plugins"]])
        rc, out, err = loom("plugins", "--admin", a, "--token", TOKEN)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^worker 1 \(pid \d+\): 3 plugins, \d+ reloads?$")
        self.assertRegex(out, r"(?m)^opstest +1\.0\.0 +1 ")
        # Not reachable: one plain line, exit 1.
        dead = "127.0.0.1:%d" % loomtest.free_port()
        for cmd in ("status", "plugins"):
            rc, out, err = loom(cmd, "--admin", dead)
            self.assertEqual(rc, 1)
            self.assertEqual(err.count("\n"), 1, err)
            self.assertIn("the admin endpoint %s" % dead, err)
            self.assertIn("is not reachable: Connection refused", err)
        rc, out, err = loom("status", "--admin", "nonsense")
        self.assertEqual(rc, 2)
        self.assertIn("--admin 'nonsense' is not HOST:PORT", err)


if __name__ == "__main__":
    loomtest.main()
