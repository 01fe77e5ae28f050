"""HTTP/2 against real peers: the real `loom` binary (a master and one
worker) with every shipped plugin, a plugin built from the frozen 1.0
header, and the h2test plugin, driven by curl (--http2 over TLS,
--http2-prior-knowledge over h2c), nghttp, h2load and a raw HTTP/2 client
(python3-h2's HPACK). Runs on both I/O backends (http2.peers.epoll)."""
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import h2lib
import loomtest
from h2lib import END_STREAM, GOAWAY, HEADERS, NO_ERROR, Raw

KEY = "h2-session-key-0123456789abcdef0123456789"
PLUGINS = ["hello", "echo", "logging", "notes", "static", "cors", "session-memory", "session-demo",
           "compress", "ticker", "proxy"]


def plugin_dir():
    d = tempfile.mkdtemp(prefix="loomh2-plugins-")
    for p in PLUGINS:
        shutil.copy(os.path.join(loomtest.PLUGINS_DIR, p + ".so"), d)
    shutil.copy(os.path.join(loomtest.LOOM_BUILD, "abi-plugins", "old10.so"), d)
    shutil.copy(os.path.join(loomtest.LOOM_BUILD, "example-plugins", "notfound.so"), d)
    shutil.copy(os.path.join(h2lib.H2TEST_PLUGINS, "h2test.so"), d)
    return d


class Peers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="loomh2-peers-")
        cls.www = os.path.join(cls.dir, "www")
        os.mkdir(cls.www)
        with open(os.path.join(cls.www, "small.txt"), "wb") as f:
            f.write(b"small file over h2\n")
        cls.big = os.urandom(3 * 1024 * 1024 + 123)
        with open(os.path.join(cls.www, "big.bin"), "wb") as f:
            f.write(cls.big)
        cls.text = ("".join("line %d of a text file served compressed\n" % i
                            for i in range(4000))).encode()
        with open(os.path.join(cls.www, "big.txt"), "wb") as f:
            f.write(cls.text)
        # An HTTP/1.1 upstream for the proxy plugin.
        class Up(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = ("upstream saw %s from %s" % (
                    self.path, self.headers.get("X-Forwarded-For"))).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        cls.up = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Up)
        threading.Thread(target=cls.up.serve_forever, daemon=True).start()
        cls.plugins = plugin_dir()
        cls.srv = h2lib.H2Server(plugins_dir=cls.plugins, args=["--workers", "1"], config={
            "client_max_size": 65536,
            "plugins": {
                "notes": {"db": os.path.join(cls.dir, "notes.db")},
                "static": {"mounts": [{"prefix": "/s", "root": cls.www}]},
                "cors": {"routes": [{"path": "/h2/*", "origins": ["https://app.test"],
                                     "allow_methods": ["GET", "POST"], "max_age": 60}]},
                "sessions": {"keys": [KEY], "store": "memory", "secure": True},
                "ticker": {"interval_ms": 100, "max_events": 3},
                "proxy": {"routes": [{"prefix": "/up", "upstream": "http://127.0.0.1:%d"
                                      % cls.up.server_address[1]}]},
            }})
        cls.srv.wait_log("listening on")

    @classmethod
    def tearDownClass(cls):
        cls.up.shutdown()
        rc = cls.srv.stop()
        log = cls.srv.log()
        shutil.rmtree(cls.dir, ignore_errors=True)
        shutil.rmtree(cls.plugins, ignore_errors=True)
        assert rc == 0, log[-4000:]
        assert "runtime error" not in log and "Sanitizer" not in log, log[-4000:]

    def curl(self, path, *args, tls=True):
        """curl over h2 (ALPN on TLS, prior knowledge on h2c): (status, body)."""
        mode = ["--http2", "-k"] if tls else ["--http2-prior-knowledge"]
        rc, out, err = h2lib.curl(*mode, "-o", "-", "-w", "\n%{http_version} %{http_code}",
                                  *args, self.srv.h2url(path, tls))
        self.assertEqual(rc, 0, err)
        body, _, tail = out.rpartition(b"\n")
        version, code = tail.decode().split()
        self.assertEqual(version, "2", (path, tail))
        return int(code), body

    # ---- every shipped plugin over h2, through curl ----

    def test_shipped_plugins_over_tls(self):
        self.assertEqual(self.curl("/"), (200, b"Hello, World!"))
        self.assertEqual(self.curl("/data", "-H", "Content-Type: application/json",
                                   "-d", '{"key1":"value1"}'),
                         (200, b'Received data: {"key1":"value1"}'))
        st, body = self.curl("/echo", "-H", "Content-Type: application/json", "-d",
                             '{"a":[1,2,{"b":null}]}')
        self.assertEqual((st, json.loads(body)), (200, {"a": [1, 2, {"b": None}]}))
        self.assertEqual(self.curl("/no/such/page"), (404, b"Not Found"))
        # notes: CRUD on SQLite through the thread pool
        st, body = self.curl("/notes", "-H", "Content-Type: application/json",
                             "-d", '{"title":"h2","body":"over http/2"}')
        self.assertEqual(st, 201, body)
        nid = json.loads(body)["id"]
        st, body = self.curl("/notes/%d" % nid)
        self.assertEqual((st, json.loads(body)["title"]), (200, "h2"))
        self.assertEqual(self.curl("/notes/%d" % nid, "-X", "DELETE")[0], 204)
        # static: a file, its validators, a range, a big file through flow control
        self.assertEqual(self.curl("/s/small.txt"), (200, b"small file over h2\n"))
        rc, out, err = h2lib.curl("--http2", "-k", "-sI", self.srv.h2url("/s/small.txt"))
        self.assertIn(b"HTTP/2 200", out)
        etag = re.search(rb"(?i)etag: (\S+)", out).group(1).decode()
        self.assertIn(b"content-length: 19", out.lower())
        self.assertEqual(self.curl("/s/small.txt", "-H", "If-None-Match: " + etag), (304, b""))
        self.assertEqual(self.curl("/s/small.txt", "-H", "Range: bytes=6-9"), (206, b"file"))
        st, body = self.curl("/s/big.bin")
        self.assertEqual((st, hashlib.sha256(body).hexdigest()),
                         (200, hashlib.sha256(self.big).hexdigest()))
        # cors: a preflight and an actual request
        rc, out, err = h2lib.curl("--http2", "-k", "-si", "-X", "OPTIONS", "-H", "Origin: https://app.test",
                                  "-H", "Access-Control-Request-Method: POST",
                                  self.srv.h2url("/h2/info"))
        self.assertRegex(out, rb"^HTTP/2 20[04]")
        self.assertIn(b"access-control-allow-origin: https://app.test", out.lower())
        rc, out, err = h2lib.curl("--http2", "-k", "-si", "-H", "Origin: https://app.test",
                                  self.srv.h2url("/h2/info"))
        self.assertIn(b"access-control-allow-origin: https://app.test", out.lower())
        # sessions: log in, count, the cookie carried by curl's jar over h2
        jar = os.path.join(self.dir, "jar")
        common = ["-c", jar, "-b", jar]
        st, body = self.curl("/demo/api/login", *common, "-d", "user=ann")
        self.assertEqual((st, json.loads(body)), (200, {"user": "ann", "count": 0}))
        for i in (1, 2):
            st, body = self.curl("/demo/api/count", *common, "-X", "POST")
            self.assertEqual(json.loads(body), {"user": "ann", "count": i})
        # proxy: an HTTP/2 request forwarded to an HTTP/1.1 upstream
        self.assertEqual(self.curl("/up/x?y=1"), (200, b"upstream saw /up/x?y=1 from 127.0.0.1"))
        # the frozen 1.0 plugin, unchanged
        st, body = self.curl("/old10/ann?q=x%20y", "-H", "X-Old: yes")
        self.assertEqual((st, json.loads(body)), (200, {"abi": "1.0", "name": "ann", "q": "x y",
                                                        "h": "yes", "method": "GET"}))
        log = self.srv.wait_log("plugin logging: Response status: 404")
        self.assertIn("plugin logging: Request: GET /no/such/page", log)

    def test_shipped_plugins_over_h2c(self):
        self.assertEqual(self.curl("/", tls=False), (200, b"Hello, World!"))
        self.assertEqual(self.curl("/data", "-H", "Content-Type: application/json",
                                   "-d", '{"k":1}', tls=False), (200, b'Received data: {"k":1}'))
        st, body = self.curl("/s/big.bin", tls=False)
        self.assertEqual(hashlib.sha256(body).digest(), hashlib.sha256(self.big).digest())
        st, body = self.curl("/old10/bob", "-H", "X-Old: h2c", tls=False)
        self.assertEqual(json.loads(body)["h"], "h2c")
        # The same port still speaks HTTP/1.1 to a client without prior knowledge.
        rc, out, err = h2lib.curl("-o", "-", "-w", " %{http_version}", self.srv.h2url("/", tls=False))
        self.assertEqual(out, b"Hello, World! 1.1")
        # A TLS listener with "http2": false offers only http/1.1; the plain
        # listener takes no h2c preface.
        rc, out, err = h2lib.curl("--http2", "-k", "-o", "-", "-w", " %{http_version}",
                                  "https://127.0.0.1:%d/" % self.srv.h1tls_port)
        self.assertEqual(out, b"Hello, World! 1.1")
        rc, out, err = h2lib.curl("--http2-prior-knowledge", "http://127.0.0.1:%d/" % self.srv.port)
        self.assertNotEqual(rc, 0)

    def test_h2c_preface_over_several_reads(self):
        """The h2c listener decides on the whole preface, not its first bytes:
        an HTTP/1.1 request that begins like it ("P", "PRI", in separate
        reads) is served as HTTP/1.1, and a preface sent in pieces is HTTP/2."""
        for pieces in ([b"P", b"OST /data HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
                                b"Connection: close\r\n\r\n{}"],
                       [b"PRI", b" /data HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"]):
            s = loomtest.connect(self.srv.h2c_port)
            for p in pieces:
                s.sendall(p)
                time.sleep(0.15)
            data = loomtest.recv_all(s)
            s.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 "), (pieces[0], data[:200]))
        s = loomtest.connect(self.srv.h2c_port)
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        for p in (preface[:2], preface[2:10], preface[10:] + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"):
            s.sendall(p)
            time.sleep(0.15)
        data = s.recv(4096)
        s.close()
        # the server's SETTINGS frame: type 4 on stream 0
        self.assertGreaterEqual(len(data), 9, data)
        self.assertEqual(data[3], 4, data[:20])

    def test_compress_and_events_over_h2(self):
        """The compress middleware's body filter (a buffered body filtered on
        the thread pool, and streamed chunks flushed one by one) and Server-
        Sent Events, over HTTP/2."""
        rc, out, err = h2lib.curl("--http2", "-k", "-sS", "-D", "-", "-o", os.devnull,
                                  "-H", "Accept-Encoding: gzip", self.srv.h2url("/s/big.txt"))
        self.assertIn(b"content-encoding: gzip", out.lower())
        st, body = self.curl("/s/big.txt", "--compressed")
        self.assertEqual((st, body), (200, self.text))
        st, body = self.curl("/h2/stream?n=5&size=3000&ms=20&type=text", "--compressed")
        self.assertEqual(body, (bytes(ord("a") + i % 26 for i in range(3000))) * 5)
        # An event stream: three ticks with rising ids, then the plugin ends it.
        st, body = self.curl("/ticker/events", "-N", "-H", "Accept: text/event-stream")
        self.assertEqual(st, 200)
        self.assertEqual(body.count(b"event: tick"), 3, body)
        ids = [int(x) for x in re.findall(rb"^id: (\d+)$", body, re.M)]
        self.assertEqual(ids, sorted(set(ids)), body)

    def test_version_host_and_access_log(self):
        st, body = self.curl("/h2/info?x=1")
        info = json.loads(body)
        self.assertEqual(info["version"], "HTTP/2.0")
        self.assertEqual(info["host"], "127.0.0.1:%d" % self.srv.tls_port)
        self.assertEqual((info["path"], info["query"]), ("/h2/info", "x=1"))
        deadline = time.time() + 5
        while time.time() < deadline:
            lines = [ln for ln in self.srv.access() if "/h2/info?x=1" in ln]
            if lines:
                break
            time.sleep(0.1)
        self.assertTrue(lines)
        self.assertIn('"GET /h2/info?x=1 HTTP/2.0" 200', lines[0])

    # ---- nghttp and h2load ----

    def test_nghttp_streaming_frames_and_small_windows(self):
        # A streamed response: one DATA frame per piece written.
        p = subprocess.run(["nghttp", "-v", self.srv.h2url("/h2/stream?n=4&size=100&ms=50",
                                                           tls=False)],
                           capture_output=True, text=True, timeout=30)
        frames = re.findall(r"recv DATA frame <length=(\d+), flags=0x0(\d)", p.stdout)
        self.assertEqual([int(n) for n, _ in frames if int(n)], [100, 100, 100, 100], p.stdout)
        self.assertEqual(frames[-1][1], "1")  # END_STREAM
        # A 3 MiB file through 64 KiB windows (connection and stream).
        out = os.path.join(self.dir, "nghttp.out")
        with open(out, "wb") as f:
            p = subprocess.run(["nghttp", "-W", "16", "-w", "16", self.srv.h2url("/s/big.bin")],
                               stdout=f, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(self.big).digest())

    def test_h2load_tls_and_h2c(self):
        for tls in (True, False):
            p = subprocess.run(["h2load", "-n", "4000", "-c", "4", "-m", "16",
                                self.srv.h2url("/", tls)], capture_output=True, text=True,
                               timeout=120)
            self.assertIn("4000 succeeded, 0 failed, 0 errored", p.stdout, p.stdout + p.stderr)
            self.assertIn("status codes: 4000 2xx", p.stdout)

    # ---- streams as requests, through a raw client ----

    def stats(self):
        return json.loads(self.curl("/h2/stats", tls=False)[1])

    def test_slow_stream_does_not_block_others(self):
        c = Raw(self.srv.h2c_port)
        try:
            # Blocked behind the slow one, the quick ones would take 4 s.
            slow = c.request("/h2/slow?ms=4000")
            quick = [c.request("/h2/info?i=%d" % i) for i in range(20)]
            t0 = time.time()
            for sid in quick:
                st, hs, body = c.response(sid)
                self.assertEqual(st, 200)
            self.assertLess(time.time() - t0, 3.0)
            self.assertFalse(c.ended(slow))
            self.assertEqual(c.response(slow)[:1], (200,))
        finally:
            c.close()

    def test_reset_fires_abort_and_cancels_timer_and_fetch(self):
        # An upstream that accepts and never answers: the fetch waits on it.
        ls = socket.socket()
        ls.bind(("127.0.0.1", loomtest.free_port()))  # claimed: no other suite's loom is given it
        ls.listen(4)
        seen = {}

        def upstream():
            ls.settimeout(10)
            try:
                s, _ = ls.accept()
            except OSError:
                return
            seen["accepted"] = time.time()
            s.settimeout(10)
            try:
                while s.recv(4096):
                    pass
                seen["closed"] = time.time()
            except OSError:
                seen["closed"] = time.time()
            s.close()

        t = threading.Thread(target=upstream, daemon=True)
        t.start()
        before = self.stats()
        c = Raw(self.srv.h2c_port)
        try:
            w = c.request("/h2/wait")
            f = c.request("/h2/fetch?url=http://127.0.0.1:%d/" % ls.getsockname()[1])
            deadline = time.time() + 5
            while "accepted" not in seen and time.time() < deadline:
                time.sleep(0.02)
            self.assertIn("accepted", seen)
            time.sleep(0.1)
            c.send(h2lib.frame(h2lib.RST_STREAM, 0, w, (h2lib.CANCEL).to_bytes(4, "big")) +
                   h2lib.frame(h2lib.RST_STREAM, 0, f, (h2lib.CANCEL).to_bytes(4, "big")))
            # The connection goes on serving.
            self.assertEqual(c.response(c.request("/h2/info"))[0], 200)
        finally:
            c.close()
        t.join(5)
        self.assertIn("closed", seen)  # the host cancelled the fetch: its socket closed
        after = self.stats()
        self.assertEqual(after["wait_aborted"] - before["wait_aborted"], 1)
        self.assertEqual(after["timers_cancelled"] - before["timers_cancelled"], 1)
        self.assertEqual(after["timers_fired"], before["timers_fired"])
        self.assertEqual(after["fetch_aborted"] - before["fetch_aborted"], 1)
        self.assertEqual(after["fetch_done"], before["fetch_done"])
        ls.close()

    def test_headers_in_and_out(self):
        c = Raw(self.srv.tls_port, tls=True)
        try:
            st, hs, body = c.response(c.request("/h2/headers"))
            self.assertEqual(st, 200)
            for bad in ("keep-alive", "upgrade", "proxy-connection", "te", "connection",
                        "transfer-encoding"):
                self.assertNotIn(bad, hs)
            self.assertEqual(hs["x-mixed-case"], "Value Kept")
            self.assertEqual(hs["set-cookie"], "a=1, b=2")
            self.assertIn("date", hs)
            # An HTTP/2 client may split Cookie; the handler sees one header.
            st, hs, body = c.response(c.request("/h2/info", headers=[("cookie", "a=1"),
                                                                      ("cookie", "b=2")]))
            info = json.loads(body)
            self.assertEqual((info["cookie"], info["a"], info["b"]), ("a=1; b=2", "1", "2"))
            # Host and :authority must agree.
            st, hs, body = c.response(c.request("/h2/info", headers=[("host", "other.test")]))
            self.assertEqual(st, 400)
        finally:
            c.close()

    def test_limits_per_stream(self):
        c = Raw(self.srv.h2c_port)
        try:
            slow = c.request("/h2/slow?ms=300")
            many = [("x-h%d" % i, "v") for i in range(130)]
            self.assertEqual(c.response(c.request("/h2/info", headers=many))[0], 431)
            self.assertEqual(c.response(c.request("/h2/info", headers=[("x-f", "v" * 9000)]))[0],
                             431)
            self.assertEqual(c.response(c.request("/" + "p" * 9000))[0], 414)
            # A body past client_max_size (64 KiB here): 413 as soon as it is
            # seen, declared or not, then the stream is reset (NO_ERROR).
            sid = c.request("/h2/echo", "POST", headers=[("content-length", "100000")], end=False)
            st, hs, body = c.response(sid)
            self.assertEqual(st, 413)
            c.read(lambda x: x.rst(sid) is not None, 5)
            self.assertEqual(c.rst(sid), NO_ERROR)
            sid = c.request("/h2/echo", "POST", end=False)
            for _ in range(5):
                c.send(h2lib.frame(h2lib.DATA, 0, sid, b"x" * 16000))
            self.assertEqual(c.response(sid)[0], 413)
            # A body that fits, in several DATA frames.
            sid = c.request("/h2/echo", "POST", end=False)
            c.send(h2lib.frame(h2lib.DATA, 0, sid, b"a" * 10000) +
                   h2lib.frame(h2lib.DATA, 0, sid, b"b" * 16000) +
                   h2lib.frame(h2lib.DATA, END_STREAM, sid, b"b" * 4000))
            st, hs, body = c.response(sid)
            self.assertEqual((st, hs["x-body-length"], hs["x-version"]), (200, "30000", "HTTP/2.0"))
            self.assertEqual(body, b"a" * 10000 + b"b" * 20000)
            # The slow stream was not disturbed by its neighbours' errors.
            self.assertEqual(c.response(slow)[0], 200)
        finally:
            c.close()
        # Refused requests are in the access log with what is known of them.
        deadline = time.time() + 5
        while time.time() < deadline:
            long_target = [ln for ln in self.srv.access() if '" 414 ' in ln]
            if long_target:
                break
            time.sleep(0.1)
        self.assertTrue(long_target)
        self.assertIn('"GET /' + "p" * 1023 + '... HTTP/2.0" 414', long_target[-1])

    # ---- graceful ends (last: they stop the server) ----

    def test_zz_goaway_on_worker_reload_and_stop(self):
        master = self.srv.proc.pid

        def worker():
            out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True,
                                 text=True).stdout.split()
            return int(out[0]) if out else None

        for target in ("worker", "master"):
            pid = worker() if target == "worker" else master
            self.assertIsNotNone(pid)
            c = Raw(self.srv.h2c_port)
            try:
                started = self.stats()["slow_started"]  # per worker: a respawned one starts at 0
                sid = c.request("/h2/slow?ms=700")
                c.read(lambda x: bool(x.of(h2lib.SETTINGS)), 5)
                # The worker has the stream before it is told to stop (the
                # GOAWAY names it); its answer normally comes after.
                deadline = time.time() + 5
                while self.stats()["slow_started"] == started:
                    self.assertLess(time.time(), deadline, "the slow stream did not start")
                    time.sleep(0.02)
                os.kill(pid, signal.SIGTERM)
                self.assertTrue(c.read(lambda x: x.goaway() is not None, 5), target)
                self.assertEqual(c.goaway(), (sid, NO_ERROR))
                st, hs, body = c.response(sid)
                self.assertEqual((st, body), (200, b"slow done"), target)
                self.assertTrue(c.wait_closed(5), target)
            finally:
                c.close()
            if target == "worker":
                # The master starts another worker, which serves h2.
                deadline = time.time() + 10
                while time.time() < deadline:
                    if worker() not in (None, pid):
                        break
                    time.sleep(0.05)
                self.srv.wait_log("respawn", 10)
                deadline = time.time() + 10
                ok = False
                while time.time() < deadline and not ok:
                    rc, out, err = h2lib.curl("--http2-prior-knowledge", self.srv.h2url("/", False))
                    ok = out == b"Hello, World!"
                    time.sleep(0.1)
                self.assertTrue(ok)
        self.assertEqual(self.srv.proc.wait(20), 0)


if __name__ == "__main__":
    loomtest.main()
