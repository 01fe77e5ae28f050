"""The proxy plugin against a real upstream (a Python aiohttp app): requests
forwarded with hop-by-hop headers removed and X-Forwarded-For added, bodies
both ways, gzip passed through, pooled upstream connections, 502 when the
upstream is down, 504 when it is slow, and the upstream request cancelled
when the client leaves (loom_fetch tied to its request). HTTPS upstreams:
verified with the route's ca_file, refused without it, "insecure" allowed.
The 1.6 fetch options from a plugin (jarfetch.so): a cookie jar, a proxy,
a CA file."""
import gzip
import json
import os
import subprocess
import sys
import time
import unittest
import shutil
import tempfile
import urllib.parse
import urllib.request

import loomtest
import tlscerts

HERE = os.path.dirname(os.path.abspath(__file__))


class Proxy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certdir = tempfile.mkdtemp(prefix="loom-proxy-tls-")
        cls.ca, cert, key = tlscerts.make(cls.certdir)
        cls.up_port = loomtest.free_port()
        cls.tls_port = loomtest.free_port()
        cls.up = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "upstream.py"),
                                   str(cls.up_port), str(cls.tls_port), cert, key])
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                loomtest.connect(cls.up_port, 0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        down = loomtest.free_port()
        cls.srv = loomtest.Server(
            plugins_dir=os.path.join(loomtest.LOOM_BUILD, "plugins"), args=["--workers", "1"],
            config={"plugin_order": ["proxy"],
                    "plugins": {"notes": {"enabled": False}, "logging": {"enabled": False},
                                "proxy": {"routes": [
                                    {"prefix": "/api", "upstream": "http://127.0.0.1:%d" % cls.up_port,
                                     "timeout": 1},
                                    {"prefix": "/down", "upstream": "http://127.0.0.1:%d" % down},
                                    {"prefix": "/secure", "ca_file": cls.ca,
                                     "upstream": "https://localhost:%d" % cls.tls_port},
                                    {"prefix": "/noca",
                                     "upstream": "https://127.0.0.1:%d" % cls.tls_port},
                                    {"prefix": "/insecure", "insecure": True,
                                     "upstream": "https://127.0.0.1:%d" % cls.tls_port}]}}})

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        cls.up.terminate()
        cls.up.wait(10)
        shutil.rmtree(cls.certdir, ignore_errors=True)
        assert rc == 0, cls.srv.log()

    def req(self, path, method="GET", body=None, headers=None):
        r = urllib.request.Request(self.srv.url(path), data=body, method=method,
                                   headers=headers or {})
        try:
            with urllib.request.urlopen(r, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def test_forwarding_and_hop_by_hop(self):
        # a raw socket, so the Connection header is ours (urllib forces "close")
        s = loomtest.connect(self.srv.port)
        s.sendall(b"POST /api/echo?x=1&y=%20 HTTP/1.1\r\nHost: a\r\nX-Custom: a\r\n"
                  b"Keep-Alive: timeout=5\r\nTE: trailers\r\nConnection: keep-alive, X-Drop\r\n"
                  b"X-Drop: 1\r\nX-Forwarded-For: 10.0.0.1\r\nContent-Type: text/plain\r\n"
                  b"Content-Length: 7\r\n\r\npayload"
                  b"GET /api/gzip HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        (st, h, body), _ = loomtest.parse_responses(loomtest.recv_all(s))
        s.close()
        h = {k.title(): v for k, v in h.items()}
        self.assertEqual(st, 200)
        got = json.loads(body)
        self.assertEqual(got["method"], "POST")
        self.assertEqual(got["path"], "/api/echo?x=1&y=%20")
        self.assertEqual(got["body"], "payload")
        hdrs = {k.lower(): v for k, v in got["headers"].items()}
        self.assertEqual(hdrs["x-custom"], "a")
        self.assertEqual(hdrs["x-forwarded-for"], "10.0.0.1, 127.0.0.1")
        for hop in ("keep-alive", "te", "x-drop"):
            self.assertNotIn(hop, hdrs)
        self.assertEqual(h.get("X-Up"), "yes")
        self.assertNotIn("Keep-Alive", h)  # hop-by-hop on the way back too

    def test_gzip_passes_through_and_pool_reuses(self):
        st, h, body = self.req("/api/gzip", headers={"Accept-Encoding": "gzip"})
        self.assertEqual((st, h.get("Content-Encoding")), (200, "gzip"))
        self.assertEqual(gzip.decompress(body), b"compressed hello")
        for _ in range(20):
            self.assertEqual(self.req("/api/echo")[0], 200)
        with urllib.request.urlopen("http://127.0.0.1:%d/state" % self.up_port, timeout=5) as r:
            peers = json.loads(r.read())["peers"]
        self.assertLess(peers, 5, "upstream connections are not pooled")

    def test_502_when_down_504_when_slow(self):
        st, _, body = self.req("/down/x")
        self.assertEqual(st, 502)
        t0 = time.time()
        st, _, body = self.req("/api/slow")
        self.assertEqual(st, 504)
        self.assertLess(time.time() - t0, 2.5)
        log = self.srv.log()
        self.assertIn("plugin proxy:", log)
        self.assertIn("127.0.0.1", log)

    def test_https_upstreams(self):
        st, _, body = self.req("/secure/echo?via=tls")
        self.assertEqual(st, 200, body)
        got = json.loads(body)
        self.assertEqual(got["path"], "/secure/echo?via=tls")
        # without the CA the upstream is not trusted: 502, and the log says why
        st, _, _ = self.req("/noca/echo")
        self.assertEqual(st, 502)
        log = self.srv.log()
        self.assertIn("certificate not trusted: https://127.0.0.1:%d/noca/echo" % self.tls_port, log)
        st, _, body = self.req("/insecure/echo")
        self.assertEqual(st, 200, body)
        self.assertIn("is not verified", log)

    def test_client_leaving_cancels_upstream(self):
        s = loomtest.connect(self.srv.port)
        s.sendall(b"GET /api/hang HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.3)
        s.close()
        deadline = time.time() + 5
        n = 0
        while time.time() < deadline:
            with urllib.request.urlopen("http://127.0.0.1:%d/state" % self.up_port, timeout=5) as r:
                n = json.loads(r.read())["hang_cancelled"]
            if n:
                break
            time.sleep(0.1)
        self.assertEqual(n, 1)


class PluginFetchOptions(unittest.TestCase):
    """jarfetch.so: the 1.6 loom_fetch_opts members and cookie jars."""

    def test_jar_proxy_ca(self):
        d = tempfile.mkdtemp(prefix="loom-jarfetch-")
        ca, cert, key = tlscerts.make(d)
        up_port, tls_port = loomtest.free_port(), loomtest.free_port()
        up = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "upstream.py"), str(up_port),
                               str(tls_port), cert, key])
        try:
            deadline = time.time() + 15
            while time.time() < deadline:
                try:
                    loomtest.connect(tls_port, 0.5).close()
                    break
                except OSError:
                    time.sleep(0.05)
            plugdir = os.path.join(d, "plugins")
            os.mkdir(plugdir)
            shutil.copy(os.path.join(loomtest.LOOM_BUILD, "test-plugins-proxy", "jarfetch.so"),
                        plugdir)
            q = urllib.parse.quote
            with loomtest.Server(plugins_dir=plugdir, args=["--single"]) as srv:
                def get(path):
                    with urllib.request.urlopen(srv.url(path), timeout=10) as r:
                        return r.read().decode()
                base = "http://127.0.0.1:%d" % up_port
                out = get("/jar?set=%s&then=%s" % (q(base + "/api/setcookie?v=rye"),
                                                    q(base + "/api/echo")))
                body, cookies = out.rsplit("\n", 1)
                self.assertEqual(json.loads(body)["headers"].get("Cookie"), "flavour=rye")
                self.assertEqual(cookies, "flavour=rye (11)")
                # the jar is the plugin's: the next fetch still has it
                out = get("/jar?set=%s&then=%s" % (q(base + "/api/echo"), q(base + "/api/echo")))
                self.assertEqual(json.loads(out.rsplit("\n", 1)[0])["headers"].get("Cookie"),
                                 "flavour=rye")
                # a proxy that is not there: its own error code
                dead = "http://127.0.0.1:%d" % loomtest.free_port()
                out = get("/via?proxy=%s&url=%s" % (q(dead), q(base + "/api/echo")))
                self.assertTrue(out.startswith("-26 0 proxy unreachable: "), out)
                # https with and without the CA
                tls = "https://localhost:%d/api/echo" % tls_port
                out = get("/via?ca=%s&url=%s" % (q(ca), q(tls)))
                self.assertTrue(out.startswith("0 200 "), out)
                out = get("/via?url=%s" % q(tls))
                self.assertTrue(out.startswith("-19 0 certificate not trusted: " + tls), out)
                self.assertEqual(srv.stop(), 0)
        finally:
            up.terminate()
            up.wait(10)
            shutil.rmtree(d, ignore_errors=True)


class PluginFetchUnload(unittest.TestCase):
    @staticmethod
    def hang_started(up_port):
        with urllib.request.urlopen("http://127.0.0.1:%d/state" % up_port, timeout=5) as r:
            return json.loads(r.read()).get("hang_started", 0)

    def test_background_fetch_cancelled_when_plugin_unloads(self):
        import shutil
        import tempfile
        up_port = loomtest.free_port()
        up = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "upstream.py"), str(up_port)])
        d = tempfile.mkdtemp(prefix="loom-bgfetch-")
        try:
            deadline = time.time() + 15
            while time.time() < deadline:
                try:
                    loomtest.connect(up_port, 0.5).close()
                    break
                except OSError:
                    time.sleep(0.05)
            shutil.copy(os.path.join(loomtest.LOOM_BUILD, "test-plugins-proxy", "bgfetch.so"), d)
            with loomtest.Server(plugins_dir=d, args=["--single"]) as srv:
                url = "http://127.0.0.1:%d/api/hang" % up_port
                with urllib.request.urlopen(srv.url("/bg?url=" + urllib.request.quote(url)),
                                            timeout=5) as r:
                    self.assertEqual(r.read(), b"started")
                time.sleep(0.3)
                os.unlink(os.path.join(d, "bgfetch.so"))
                n = 0
                deadline = time.time() + 5
                while time.time() < deadline and not n:
                    with urllib.request.urlopen("http://127.0.0.1:%d/state" % up_port, timeout=5) as r:
                        n = json.loads(r.read())["hang_cancelled"]
                    time.sleep(0.1)
                self.assertEqual(n, 1, "the upstream request outlived its plugin")
                self.assertIn("plugin bgfetch 1.0.0 (generation 1) unloaded", srv.log())
                # A fetch tied to a request whose plugin has no abort callback:
                # the client leaves, the host cancels the fetch, and nothing
                # will answer: the host says so (once per instance).
                shutil.copy(os.path.join(loomtest.LOOM_BUILD, "test-plugins-proxy", "bgfetch.so"),
                            d)
                srv.wait_log("bgfetch.so (generation 2")
                n0 = self.hang_started(up_port)
                s = loomtest.connect(srv.port)
                s.sendall(b"GET /tied?url=" + urllib.request.quote(url).encode()
                          + b" HTTP/1.1\r\nHost: a\r\n\r\n")
                deadline = time.time() + 5
                while time.time() < deadline and self.hang_started(up_port) == n0:
                    time.sleep(0.05)
                self.assertGreater(self.hang_started(up_port), n0)
                s.close()
                log = srv.wait_log("set no loom_req_on_abort")
                line = [ln for ln in log.splitlines() if "set no loom_req_on_abort" in ln][0]
                self.assertIn("plugin bgfetch: the client of GET /tied left", line)
                self.assertIn("stays pinned, with plugin generation 2", line)
                # ... until the plugin answers it (which just releases it).
                # (A sanitizer build's clean exit below checks nothing leaked.)
                with urllib.request.urlopen(srv.url("/release"), timeout=5) as r:
                    self.assertEqual(r.read(), b"released 0")  # LOOM_DONE (1: none was pinned)
                self.assertEqual(srv.stop(), 0, srv.log())
        finally:
            up.terminate()
            up.wait(10)
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    loomtest.main()
