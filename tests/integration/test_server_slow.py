"""Slow clients (issue 9 item 3; reliability.md §2), with short timeouts:

- slowloris: a header byte at a time, closed with 408 at the header deadline;
- slowloris across keep-alive requests: the header deadline restarts with each
  request's first byte;
- slow POST: a body byte just under the read timeout, closed with 408 at the
  whole-request deadline;
- a stalled body: 408 at the read timeout;
- an idle keep-alive: closed at the keep-alive timeout;
- a client that pipelines and never reads: closed at the write timeout;

while a fresh client still gets its 200 at once (see PROBE_MEDIAN). The
server checks deadlines every 250 ms, so a close is expected within
[deadline, deadline + 0.25 s]; SLACK adds room for ASan and a second
suite on the CPU, and stays short of the request deadline (3 s) that would
close a stalled body if the read timeout did not."""
import concurrent.futures
import os
import socket
import statistics
import threading
import time
import unittest

import loomtest
from loomtest import connect, parse_responses

HEADER_TIMEOUT = 2.0
REQUEST_TIMEOUT = 3.0
READ_TIMEOUT = 1.0
KEEPALIVE_TIMEOUT = 2.0
WRITE_TIMEOUT = 1.0
SLACK = 1.75
# Fresh clients probed while slow clients run: the median probe under
# PROBE_MEDIAN and none over PROBE_MAX (one probe may meet a busy CPU; a loop
# blocked by the slow clients delays them all). A worker answers a pipelining
# client's whole 64 KB read (2,300 requests) in one loop turn, which the
# sanitizer build (-O0, ASan) makes about ten times slower (the client that
# never reads meets backpressure after 0.25 s in release, 2.5 s there on a
# busy 2-core machine): a probe landing on that worker waits a few such turns
# (0.4-1.5 s measured there).
SANITIZED = os.environ.get("LOOM_SANITIZE", "OFF") in ("ON", "1", "TRUE")
PROBE_MEDIAN, PROBE_MAX = (1.5, 4.0) if SANITIZED else (0.75, 2.0)
G = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def trickle(s, data, interval, stop):
    """Sends data one byte per interval until done, stopped or refused."""
    for i in range(len(data)):
        if stop.is_set():
            return
        try:
            s.sendall(data[i:i + 1])
        except OSError:
            return
        if stop.wait(interval):
            return


def read_until_close(s, timeout, t0=None):
    """Returns (bytes, seconds from t0 (default: now) until the server closed,
    or None)."""
    t0 = time.time() if t0 is None else t0
    data = b""
    s.settimeout(timeout)
    try:
        while True:
            b = s.recv(65536)
            if not b:
                return data, time.time() - t0
            data += b
    except ConnectionResetError:
        return data, time.time() - t0
    except socket.timeout:
        return data, None


class Slow(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = loomtest.Server([
            "--set", "header_timeout=%g" % HEADER_TIMEOUT,
            "--set", "request_timeout=%g" % REQUEST_TIMEOUT,
            "--set", "read_timeout=%g" % READ_TIMEOUT,
            "--set", "keepalive_timeout=%g" % KEEPALIVE_TIMEOUT,
            "--set", "write_timeout=%g" % WRITE_TIMEOUT,
            "--set", "linger_timeout=1",
        ])
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        if rc != 0:
            raise AssertionError("server exit status %s\n%s" % (rc, cls.srv.log()[-3000:]))

    def fresh_get(self):
        """A fresh client's GET: must be a 200; returns the seconds it took."""
        t0 = time.time()
        s = connect(self.port, timeout=PROBE_MAX + 1)
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            data, _ = read_until_close(s, PROBE_MAX + 1)
        finally:
            s.close()
        took = time.time() - t0
        resp = parse_responses(data)
        self.assertEqual([r[0] for r in resp], [200], "a fresh client after %.2fs" % took)
        return took

    def probe_while(self, until):
        """Checks fresh clients every 0.3 s until `until` (a time); returns
        the seconds each took."""
        took = []
        while time.time() < until:
            took.append(self.fresh_get())
            time.sleep(0.3)
        return took

    def assert_fast(self, took, at_least):
        self.assertGreaterEqual(len(took), at_least, "probes: %r" % took)
        self.assertLess(statistics.median(took), PROBE_MEDIAN, "fresh clients waited %r" % took)
        self.assertLess(max(took), PROBE_MAX, "fresh clients waited %r" % took)

    def assert_408_at(self, data, closed_after, deadline):
        self.assertIsNotNone(closed_after, "not closed")
        resp = parse_responses(data)
        self.assertEqual([r[0] for r in resp], [408], data[:300])
        self.assertEqual(resp[0][1].get("connection"), "close")
        self.assertGreaterEqual(closed_after, deadline - 0.3)
        self.assertLessEqual(closed_after, deadline + SLACK)

    def test_slowloris(self):
        # Several clients each send a request line, then one header byte every
        # 0.4 s (well under the read timeout): only the header deadline stops
        # them.
        n = 8
        stop = threading.Event()
        socks = [connect(self.port) for _ in range(n)]
        t0 = time.time()
        head = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Slow: " + b"a" * 100
        threads = [threading.Thread(target=trickle, args=(s, head, 0.4, stop)) for s in socks]
        for t in threads:
            t.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(n) as pool:
                futs = [pool.submit(read_until_close, s, HEADER_TIMEOUT + 3, t0) for s in socks]
                probes = self.probe_while(t0 + HEADER_TIMEOUT)
                results = [f.result() for f in futs]
        finally:
            stop.set()
            for t in threads:
                t.join()
            for s in socks:
                s.close()
        self.assert_fast(probes, 2)
        for data, closed in results:
            self.assert_408_at(data, closed, HEADER_TIMEOUT)

    def test_slowloris_keepalive(self):
        # A first request completes; after an idle pause the second request is
        # trickled. Its header deadline counts from its own first byte, not
        # from the connection's start.
        s = connect(self.port)
        stop = threading.Event()
        try:
            s.sendall(G)
            data = b""
            while b"Hello, World!" not in data:
                data += s.recv(65536)
            time.sleep(1.0)  # idle, under the keep-alive timeout
            t0 = time.time()
            th = threading.Thread(target=trickle, args=(s, G[:-2] + b"X-A: " + b"b" * 100, 0.4, stop))
            th.start()
            data, closed = read_until_close(s, HEADER_TIMEOUT + 3, t0)
            stop.set()
            th.join()
        finally:
            stop.set()
            s.close()
        self.assert_408_at(data, closed, HEADER_TIMEOUT)
        self.assertIsNotNone(closed)
        self.assertGreater(time.time() - t0, HEADER_TIMEOUT - 0.3)

    def test_slowloris_keepalive_back_to_back(self):
        # Each request is trickled but complete within the header deadline:
        # the timer restarts with every request, so all of them are served.
        s = connect(self.port)
        try:
            for i in range(3):
                for j in range(0, len(G), 6):
                    s.sendall(G[j:j + 6])
                    time.sleep(0.2)  # about 1 s per request, under the 2 s deadline
                data = b""
                s.settimeout(3)
                while b"Hello, World!" not in data:
                    b = s.recv(65536)
                    self.assertTrue(b, "closed during request %d" % i)
                    data += b
                self.assertTrue(data.startswith(b"HTTP/1.1 200 "))
        finally:
            s.close()

    def test_slow_post(self):
        # Headers at once, then one body byte every 0.5 s: well under the read
        # timeout (1 s) even when a byte is late, so only the whole-request
        # deadline (3 s) closes it.
        s = connect(self.port)
        stop = threading.Event()
        t0 = time.time()
        s.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
        th = threading.Thread(target=trickle, args=(s, b"x" * 100, READ_TIMEOUT / 2, stop))
        th.start()
        try:
            futs = concurrent.futures.ThreadPoolExecutor(1).submit(read_until_close, s,
                                                                   REQUEST_TIMEOUT + 3, t0)
            self.assert_fast(self.probe_while(t0 + REQUEST_TIMEOUT - 0.5), 2)
            data, closed = futs.result()
        finally:
            stop.set()
            th.join()
            s.close()
        self.assert_408_at(data, closed, REQUEST_TIMEOUT)

    def test_stalled_body(self):
        # A body that stops: 408 at the read timeout.
        s = connect(self.port)
        try:
            t0 = time.time()
            s.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
            data, closed = read_until_close(s, READ_TIMEOUT + 3, t0)
        finally:
            s.close()
        self.assert_408_at(data, closed, READ_TIMEOUT)

    def test_stalled_head(self):
        # A head that stops: 408 at the read timeout too (it comes first).
        s = connect(self.port)
        try:
            t0 = time.time()
            s.sendall(b"GET / HTTP/1.1\r\nHo")
            data, closed = read_until_close(s, READ_TIMEOUT + 3, t0)
        finally:
            s.close()
        self.assert_408_at(data, closed, READ_TIMEOUT)

    def test_client_that_never_reads(self):
        # Pipelines requests without reading a byte: once the socket buffers
        # are full the server's write makes no progress, it stops reading
        # (backpressure), and closes at the write timeout. Until then it
        # answers all it read, which takes a sanitizer build seconds on a
        # busy machine: the timeout counts from the client's last progress.
        s = connect(self.port, timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        t0 = time.time()
        progress, ended = [t0], []

        def send():
            try:
                while time.time() - t0 < 10:
                    s.sendall(G * 1000)
                    progress.append(time.time())
            except socket.timeout:
                pass  # 10 s without progress: not closed
            except OSError:
                ended.append(time.time())

        th = threading.Thread(target=send)
        th.start()
        try:
            self.assert_fast(self.probe_while(t0 + 1.5), 1)
            th.join(25)
        finally:
            s.close()
        self.assertTrue(ended, "the server never closed a client that does not read")
        stalled = ended[0] - progress[-1]
        self.assertLess(stalled, WRITE_TIMEOUT + SLACK,
                        "closed %.2fs after the client's last progress (%.2fs after its start)"
                        % (stalled, ended[0] - t0))

    def test_idle_keepalive_closed(self):
        # An idle keep-alive is closed quietly at the keep-alive timeout.
        s = connect(self.port)
        try:
            s.sendall(G)
            data = b""
            while b"Hello, World!" not in data:
                data += s.recv(65536)
            data, closed = read_until_close(s, KEEPALIVE_TIMEOUT + 3)
        finally:
            s.close()
        self.assertEqual(data, b"")
        self.assertIsNotNone(closed)
        self.assertGreaterEqual(closed, KEEPALIVE_TIMEOUT - 0.3)
        self.assertLessEqual(closed, KEEPALIVE_TIMEOUT + SLACK)

    def test_idle_connection_without_request(self):
        # A connection that never sends a byte is closed quietly too (no 408
        # for a request that never started).
        s = connect(self.port)
        try:
            data, closed = read_until_close(s, KEEPALIVE_TIMEOUT + 3)
        finally:
            s.close()
        self.assertEqual(data, b"")
        self.assertIsNotNone(closed)
        self.assertLessEqual(closed, KEEPALIVE_TIMEOUT + SLACK)


if __name__ == "__main__":
    loomtest.main()
