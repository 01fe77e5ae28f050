"""The server core (issue 2) driven by real clients: curl, the Python aiohttp
client, raw sockets and wrk, against the real binary on a loopback port.

One server serves every test here; tests that stop servers live in
test_server_lifecycle.py, slow clients in test_server_slow.py, wrk in
test_server_load.py."""
import asyncio
import email.utils
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import unittest

import aiohttp

import loomtest
from loomtest import connect, parse_responses, recv_all

G = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def recv_responses(s, n, timeout=5.0, head_idx=()):
    """Reads from a keep-alive socket until n complete responses arrived."""
    data = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            resp = parse_head_aware(data, head_idx)
            if len(resp) >= n:
                return resp, data
        except ValueError:
            pass
        s.settimeout(max(0.05, deadline - time.time()))
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        if not b:
            break
        data += b
    return parse_head_aware(data, head_idx), data


def parse_head_aware(data, head_idx=()):
    """parse_responses, except that responses at head_idx carry no body."""
    if not head_idx:
        return parse_responses(data)
    out = []
    i = 0
    while i < len(data):
        j = data.find(b"\r\n\r\n", i)
        if j < 0:
            raise ValueError("incomplete")
        if len(out) in head_idx:
            out.extend(parse_responses(data[i:j + 4]))
            out[-1] = (out[-1][0], out[-1][1], b"")
            i = j + 4
            continue
        rest = parse_responses(data[i:])
        out.extend(rest)
        break
    return out


class Core(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "loom-core-%d" % os.getpid())
        os.makedirs(cls.tmp, exist_ok=True)
        cls.alog = os.path.join(cls.tmp, "access.log")
        cls.srv = loomtest.Server(["--access-log", cls.alog, "--set", "linger_timeout=1",
                                   "--set", "client_max_size=1000"])
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc != 0:
            raise AssertionError("server exit status %s\n%s" % (rc, cls.srv.log()[-3000:]))

    # ---- curl ----

    def curl(self, *args, timeout=20):
        p = subprocess.run(["curl", "-sS", "--max-time", "10"] + list(args), capture_output=True,
                           timeout=timeout)
        return p

    def test_curl_get(self):
        p = self.curl("-i", self.srv.url("/"))
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertTrue(out.startswith("HTTP/1.1 200 OK\r\n"), out)
        self.assertIn("\r\nServer: loom/", out)
        self.assertIn("\r\nDate: ", out)
        self.assertTrue(out.endswith("\r\n\r\nHello, World!"), out)

    def test_curl_head(self):
        p = self.curl("-sI", self.srv.url("/"))
        out = p.stdout.decode()
        self.assertTrue(out.startswith("HTTP/1.1 200"), out)
        self.assertIn("Content-Length: 13\r\n", out)
        self.assertTrue(out.endswith("\r\n\r\n"))

    def test_curl_keepalive_reuse(self):
        # curl reuses one connection for several URLs on the same host.
        p = self.curl("-v", self.srv.url("/"), self.srv.url("/x"), self.srv.url("/"))
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(err.count("Connected to"), 1, err)
        self.assertEqual(err.count("Re-using existing connection") + err.count("Reusing existing"),
                         2, err)
        self.assertEqual(p.stdout, b"Hello, World!404: Not FoundHello, World!")

    def test_curl_chunked_upload(self):
        p = self.curl("-i", "-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary",
                      "x" * 500, self.srv.url("/"))
        out = p.stdout.decode()
        self.assertTrue(out.startswith("HTTP/1.1 405"), out)
        self.assertIn("Allow: GET, HEAD", out)
        self.assertNotIn("Connection: close", out)

    def test_curl_100_continue(self):
        p = self.curl("-v", "-H", "Expect: 100-continue", "--data-binary", "hello",
                      self.srv.url("/"))
        err = p.stderr.decode()
        self.assertIn("< HTTP/1.1 100 Continue", err)
        self.assertIn("< HTTP/1.1 405", err)

    def test_curl_limits(self):
        p = self.curl("-o", "/dev/null", "-w", "%{http_code}", self.srv.url("/" + "a" * 9000))
        self.assertEqual(p.stdout, b"414")
        p = self.curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Big: " + "b" * 9000,
                      self.srv.url("/"))
        self.assertEqual(p.stdout, b"431")
        p = self.curl("-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "x" * 1001,
                      self.srv.url("/"))
        self.assertEqual(p.stdout, b"413")
        hs = []
        for i in range(130):
            hs += ["-H", "X-%d: v" % i]
        p = self.curl("-o", "/dev/null", "-w", "%{http_code}", *hs, self.srv.url("/"))
        self.assertEqual(p.stdout, b"431")

    # ---- aiohttp ----

    def test_aiohttp_keepalive_reuse(self):
        async def run():
            created = []
            trace = aiohttp.TraceConfig()

            async def on_create(session, ctx, params):
                created.append(1)

            trace.on_connection_create_end.append(on_create)
            conn = aiohttp.TCPConnector(limit=1)
            async with aiohttp.ClientSession(connector=conn, trace_configs=[trace]) as s:
                statuses = []
                for i in range(50):
                    async with s.get(self.srv.url("/" if i % 2 == 0 else "/nope")) as r:
                        await r.read()
                        statuses.append(r.status)
                        self.assertIn("Date", r.headers)
                        self.assertTrue(r.headers.get("Server", "").startswith("loom/"))
                # A chunked upload on the same connection.
                async def gen():
                    for k in range(5):
                        yield b"chunk%d " % k

                async with s.post(self.srv.url("/"), data=gen()) as r:
                    await r.read()
                    statuses.append(r.status)
                async with s.get(self.srv.url("/")) as r:
                    self.assertEqual(await r.text(), "Hello, World!")
                    statuses.append(r.status)
            return created, statuses

        created, statuses = asyncio.run(run())
        self.assertEqual(statuses[:50], [200, 404] * 25)
        self.assertEqual(statuses[50:], [405, 200])
        self.assertEqual(len(created), 1, "one TCP connection for 52 requests")

    def test_aiohttp_concurrent(self):
        async def run():
            conn = aiohttp.TCPConnector(limit=20)
            async with aiohttp.ClientSession(connector=conn) as s:
                async def one(i):
                    async with s.get(self.srv.url("/")) as r:
                        return r.status, await r.text()
                return await asyncio.gather(*[one(i) for i in range(200)])

        res = asyncio.run(run())
        self.assertEqual(set(res), {(200, "Hello, World!")})

    def test_aiohttp_limits(self):
        async def run():
            async with aiohttp.ClientSession() as s:
                out = []
                async with s.post(self.srv.url("/"), data=b"x" * 1001) as r:
                    out.append((r.status, r.headers.get("Connection")))
                return out

        self.assertEqual(asyncio.run(run()), [(413, "close")])

    # ---- raw sockets ----

    def test_keepalive_raw_sequential(self):
        s = connect(self.port)
        try:
            for i in range(5):
                s.sendall(G)
                resp, _ = recv_responses(s, 1)
                self.assertEqual(len(resp), 1)
                self.assertEqual(resp[0][0], 200)
                self.assertNotIn("connection", resp[0][1])
            # HTTP/1.0 with keep-alive on the same connection
            s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            resp, _ = recv_responses(s, 1)
            self.assertEqual(resp[0][1].get("connection"), "keep-alive")
            s.sendall(G)
            resp, _ = recv_responses(s, 1)
            self.assertEqual(resp[0][0], 200)
        finally:
            s.close()

    def test_pipelining_raw(self):
        reqs = []
        want = []
        for i in range(20):
            if i % 3 == 0:
                reqs.append(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                want.append((200, b"Hello, World!"))
            elif i % 3 == 1:
                reqs.append(b"GET /n%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
                want.append((404, b"404: Not Found"))
            else:
                reqs.append(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
                want.append((405, b"405: Method Not Allowed"))
        s = connect(self.port)
        reads = []
        try:
            s.sendall(b"".join(reqs))
            # Read as they come (no sleep first): the server answers the
            # batch with one write, so the first read that returns has them
            # all, however soon or late it is made.
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    if len(parse_responses(b"".join(reads))) >= len(want):
                        break
                except ValueError:
                    pass  # a response not complete yet
                b = s.recv(1 << 20)
                if not b:
                    break
                reads.append(b)
        finally:
            s.close()
        resp = parse_responses(b"".join(reads))
        self.assertEqual([(r[0], r[2]) for r in resp], want)
        self.assertEqual(len(reads), 1, "all pipelined responses in one read")

    def test_pipelining_client_reads_late(self):
        # 100,000 pipelined requests (2.7 MB) from a client that reads nothing
        # for 1.5 s: the server applies backpressure (stops reading) and
        # answers every one, instead of refusing the queue as a too-large head.
        n = 100000
        s = connect(self.port, timeout=10)
        errors = []

        def send():
            try:
                s.sendall(G * n)
            except OSError as e:
                errors.append(e)

        t = threading.Thread(target=send)
        t.start()
        time.sleep(1.5)
        got = 0
        tail = b""  # 12 bytes: a 13-byte match is counted once, never twice
        statuses = set()
        s.settimeout(10)
        try:
            while got < n:
                b = s.recv(1 << 20)
                if not b:
                    break
                chunk = tail + b
                got += chunk.count(b"Hello, World!")
                for m in re.finditer(rb"HTTP/1\.1 (\d{3}) ", chunk):
                    statuses.add(int(m.group(1)))
                tail = chunk[-12:]
        finally:
            t.join(10)
            s.close()
        self.assertEqual(errors, [])
        self.assertEqual(statuses, {200})
        self.assertEqual(got, n)

    def test_100_continue_raw(self):
        s = connect(self.port)
        try:
            s.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            s.settimeout(3)
            got = s.recv(4096)
            self.assertEqual(got, b"HTTP/1.1 100 Continue\r\n\r\n")
            s.sendall(b"hello")
            resp, _ = recv_responses(s, 1)
            self.assertEqual(resp[0][0], 405)
            # and the connection goes on
            s.sendall(G)
            resp, _ = recv_responses(s, 1)
            self.assertEqual(resp[0][0], 200)
        finally:
            s.close()

    def test_100_continue_ignored_for_http10(self):
        # RFC 9110 §10.1.1: an HTTP/1.0 request's 100-continue is ignored.
        s = connect(self.port)
        try:
            s.sendall(b"POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            s.settimeout(0.7)
            with self.assertRaises(socket.timeout):
                s.recv(4096)
            s.sendall(b"hello")
            data = recv_all(s, 5)
        finally:
            s.close()
        self.assertEqual([r[0] for r in parse_responses(data)], [405])
        self.assertNotIn(b"100 Continue", data)

    def test_100_continue_over_limit_raw(self):
        s = connect(self.port)
        try:
            s.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            data = recv_all(s, 3)
        finally:
            s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413 "), data)
        self.assertNotIn(b"100 Continue", data)
        self.assertIn(b"\r\nConnection: close\r\n", data)

    def test_rejected_framing(self):
        big_url = b"/" + b"a" * 9000
        cases = [
            ("missing Host", b"GET / HTTP/1.1\r\n\r\n", 400),
            ("repeated Host", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
            ("request-target too long", b"GET " + big_url + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
            ("header too large", b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 9000 + b"\r\n\r\n", 431),
            ("too many headers", b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 200 + b"\r\n", 431),
            ("HTTP/1.0 with TE", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("CL and TE", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("unknown coding", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: br\r\n\r\n", 501),
            ("body too large", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n", 413),
            ("body too large, 100-continue", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n"
             b"Expect: 100-continue\r\n\r\n", 413),
            ("chunked too large", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"3e9\r\n", 413),
            ("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
            ("unknown method", b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n", 501),
            ("bare LF", b"GET / HTTP/1.1\nHost: a\n\n", 400),
            ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
            ("GET *", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ]
        for name, raw, status in cases:
            with self.subTest(name):
                s = connect(self.port)
                try:
                    s.sendall(raw + G)  # the pipelined GET must get nothing
                    data = recv_all(s, 5)
                finally:
                    s.close()
                resp = parse_responses(data)
                self.assertEqual([r[0] for r in resp], [status], data[:300])
                self.assertEqual(resp[0][1].get("connection"), "close")
                self.assertIn("date", resp[0][1])
                self.assertIn("server", resp[0][1])

    def test_date_and_server(self):
        s = connect(self.port)
        try:
            s.sendall(G)
            resp, _ = recv_responses(s, 1)
        finally:
            s.close()
        h = resp[0][1]
        self.assertTrue(h["server"].startswith("loom/"))
        self.assertRegex(h["date"], r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|"
                         r"Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$")
        when = email.utils.parsedate_to_datetime(h["date"]).timestamp()
        self.assertLess(abs(when - time.time()), 3)

    def test_connection_close_both_ways(self):
        # client -> server: the server answers with Connection: close and closes
        s = connect(self.port)
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + G)
            data = recv_all(s, 5)
        finally:
            s.close()
        resp = parse_responses(data)
        self.assertEqual([r[0] for r in resp], [200])
        self.assertEqual(resp[0][1].get("connection"), "close")
        # HTTP/1.0 without keep-alive: same
        s = connect(self.port)
        try:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = recv_all(s, 5)
        finally:
            s.close()
        resp = parse_responses(data)
        self.assertEqual([r[0] for r in resp], [200])
        self.assertEqual(resp[0][1].get("connection"), "close")
        # server -> client: after an error the server says close, and aiohttp
        # opens a new connection for the next request.
        async def run():
            created = []
            trace = aiohttp.TraceConfig()

            async def on_create(session, ctx, params):
                created.append(1)

            trace.on_connection_create_end.append(on_create)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1),
                                             trace_configs=[trace]) as sess:
                async with sess.post(self.srv.url("/"), data=b"x" * 1001) as r:
                    st1 = r.status
                    await r.read()
                async with sess.get(self.srv.url("/")) as r:
                    st2 = r.status
            return st1, st2, len(created)

        self.assertEqual(asyncio.run(run()), (413, 200, 2))

    def test_access_log(self):
        p = self.curl("-o", "/dev/null", "-A", "ua-test/1.0", "-e", "http://ref.example/",
                      self.srv.url("/alog?x=1"))
        self.assertEqual(p.returncode, 0)
        p = self.curl("-o", "/dev/null", self.srv.url("/"))
        pat = re.compile(
            r'^127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
            r'"GET /alog\?x=1 HTTP/1\.1" 404 14 "http://ref\.example/" "ua-test/1\.0"$')
        pat2 = re.compile(r'^127\.0\.0\.1 - - \[[^\]]+\] "GET / HTTP/1\.1" 200 13 "-" "curl/[^"]+"$')
        deadline = time.time() + 5
        lines = []
        while time.time() < deadline:
            with open(self.alog) as f:
                lines = f.read().splitlines()
            if any(pat.match(l) for l in lines) and any(pat2.match(l) for l in lines):
                break
            time.sleep(0.1)
        self.assertTrue(any(pat.match(l) for l in lines), "\n".join(lines[-10:]))
        self.assertTrue(any(pat2.match(l) for l in lines), "\n".join(lines[-10:]))
        # every line is in the Combined Log Format
        clf = re.compile(r'^\S+ - - \[[^\]]+\] "(?:[^"\\]|\\.)*" \d{3} (?:\d+|-) "(?:[^"\\]|\\.)*" '
                         r'"(?:[^"\\]|\\.)*"$')
        for l in lines:
            self.assertRegex(l, clf)

    def test_access_log_of_refused_requests_has_their_request_line(self):
        """413, 414 and 431 are answered before the request is handed on;
        the access log still says which request it was, as far as it was
        read (a target cut after 1024 bytes ends in "...")."""
        cases = [
            (b"POST /alog-413 HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n", 413),
            (b"GET /alog-431 HTTP/1.1\r\nHost: a\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431),
            (b"GET /alog-431b HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
            (b"GET /alog-414" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        ]
        for raw, status in cases:
            rs = loomtest.exchange(self.port, raw)
            self.assertEqual(rs[0][0], status)
        want = [r'"POST /alog-413 HTTP/1\.1" 413 - "-" "-"$',
                r'"GET /alog-431 HTTP/1\.1" 431 - "-" "-"$',
                r'"GET /alog-431b HTTP/1\.1" 431 - "-" "-"$',
                r'"GET /alog-414' + "a" * (1024 - len("/alog-414")) + r'\.\.\." 414 - "-" "-"$']
        deadline = time.time() + 5
        while True:
            with open(self.alog) as f:
                lines = f.read().splitlines()
            missing = [w for w in want if not any(re.search(w, l) for l in lines)]
            if not missing or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(missing, [], "\n".join(l[:200] for l in lines[-10:]))


if __name__ == "__main__":
    loomtest.main()
