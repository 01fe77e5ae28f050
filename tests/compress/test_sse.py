"""Server-Sent Events (ABI 1.5) against the real binary: the event framing,
Last-Event-ID, keep-alive comments on a stream that outlives every request
deadline, the client leaving, the byte limit (LOOM_ELIMIT), a compressed
stream flushed per event, the ticker plugin read by the aiohttp client, and
a graceful stop that ends open streams."""
import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
import unittest
import zlib

import loomtest


def copy_plugins(dst, names):
    os.mkdir(dst)
    for p in names:
        src = os.path.join(loomtest.PLUGINS_DIR, p + ".so")
        if not os.path.exists(src):
            src = os.path.join(loomtest.LOOM_BUILD, "test-plugins-compress", p + ".so")
        shutil.copy(src, dst)


def unchunk(buf):
    """Splits complete chunks off buf: returns (payloads, rest, ended)."""
    out, ended = [], False
    while True:
        k = buf.find(b"\r\n")
        if k < 0:
            break
        n = int(buf[:k].split(b";")[0], 16)
        if len(buf) < k + 2 + n + 2:
            break
        if n == 0:
            ended = True
            buf = buf[k + 4:]
            break
        out.append(buf[k + 2:k + 2 + n])
        buf = buf[k + 2 + n + 2:]
    return out, buf, ended


class Stream:
    """A raw event-stream request; .read() collects decoded text."""

    def __init__(self, port, path, headers=b"", timeout=10.0):
        self.s = loomtest.connect(port, timeout)
        self.s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        self.buf, self.head, self.text, self.ended = b"", None, b"", False
        self.dec = None
        self.steps = []  # self.text after each chunk: what could be decoded when

    def read(self, until=None, timeout=5.0):
        deadline = time.time() + timeout
        while not self.ended and time.time() < deadline:
            if until is not None and until(self.text):
                return True
            self.s.settimeout(max(0.05, deadline - time.time()))
            try:
                b = self.s.recv(65536)
            except OSError:
                break
            if not b:
                break
            self.buf += b
            if self.head is None:
                if b"\r\n\r\n" not in self.buf:
                    continue
                self.head, self.buf = self.buf.split(b"\r\n\r\n", 1)
                if b"Content-Encoding: gzip" in self.head:
                    self.dec = zlib.decompressobj(31)
            parts, self.buf, self.ended = unchunk(self.buf)
            for p in parts:
                self.text += self.dec.decompress(p) if self.dec else p
                self.steps.append(self.text)
        return until(self.text) if until else self.ended

    def close(self):
        self.s.close()


def events(text):
    """Parses event-stream text into dicts (comments dropped), per the HTML
    standard's rules for the fields used here."""
    out = []
    for block in text.decode().split("\n\n"):
        if not block or all(l.startswith(":") for l in block.split("\n")):
            continue
        ev = {"data": []}
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            k, _, v = line.partition(":")
            v = v[1:] if v.startswith(" ") else v
            if k == "data":
                ev["data"].append(v)
            else:
                ev[k] = v
        out.append(ev)
    return out


class SseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="loom-sse-")
        pdir = os.path.join(cls.tmp, "plugins")
        copy_plugins(pdir, ["compress", "ticker", "ztest"])
        # Request deadlines of 1 s: event streams must outlive them.
        cls.srv = loomtest.Server(args=["--single"], plugins_dir=pdir, config={
            "header_timeout": 1, "request_timeout": 1, "read_timeout": 1,
            "plugins": {"ticker": {"interval_ms": 200}}})
        cls.srv.wait_log("plugin ztest")

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, "server exit status %s:\n%s" % (rc, cls.srv.log())

    def stats(self):
        r = loomtest.exchange(self.srv.port, b"GET /z/stats HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n")
        return json.loads(r[0][2])

    def wait_stats(self, cond, timeout=5.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.stats()
            if cond(st):
                return st
            time.sleep(0.05)
        self.fail("stats never matched: %s" % self.stats())

    def test_framing(self):
        before = self.stats()
        s = Stream(self.srv.port, "/z/sse?n=3&interval=50", b"Last-Event-ID: t7\r\n")
        self.assertTrue(s.read(timeout=5))
        s.close()
        self.assertIn(b"HTTP/1.1 200 OK", s.head)
        self.assertIn(b"Content-Type: text/event-stream", s.head)
        self.assertIn(b"Cache-Control: no-cache", s.head)
        evs = events(s.text)
        self.assertEqual(evs[0], {"event": "multi", "id": "m1", "retry": "2500",
                                  "data": ["line one", "line two", "line three", "line four"]})
        self.assertEqual(evs[1], {"event": "empty", "data": [""]})
        self.assertEqual([e["data"] for e in evs[2:]], [["tick 0"], ["tick 1"], ["tick 2"]])
        self.assertEqual([e["id"] for e in evs[2:]], ["t0", "t1", "t2"])
        # no bare CR survives, and the refused fields were refused
        self.assertNotIn(b"\r", s.text)
        self.assertNotIn(b"bad", s.text)
        st = self.wait_stats(lambda x: x["closed"] > before["closed"])
        self.assertEqual(st["einval"] - before["einval"], 2)
        self.assertEqual(st["last_id"], "t7")

    def test_outlives_request_deadlines_with_keepalive(self):
        # 3 s of silence but keep-alive comments every 250 ms, on a server
        # whose request deadlines are 1 s.
        t0 = time.time()
        s = Stream(self.srv.port, "/z/sse?n=1&interval=3000&keepalive=250")
        self.assertTrue(s.read(timeout=8))
        s.close()
        self.assertGreater(time.time() - t0, 2.9)
        self.assertGreaterEqual(s.text.count(b": keep-alive\n\n"), 6)
        self.assertEqual([e["data"] for e in events(s.text)[2:]], [["tick 0"]])

    def test_client_leaves(self):
        before = self.stats()
        s = Stream(self.srv.port, "/z/sse?n=1000&interval=50")
        self.assertTrue(s.read(until=lambda t: b"tick 1" in t))
        s.close()
        st = self.wait_stats(lambda x: x["gone"] > before["gone"])
        self.assertEqual(st["open"], before["open"])

    def test_byte_limit(self):
        # A client that does not read: sends fail with LOOM_ELIMIT once 64 KiB
        # wait for it, and what waits stays within the limit.
        before = self.stats()
        s = Stream(self.srv.port, "/z/flood?max_queued=65536")
        s.s.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)
        st = self.wait_stats(lambda x: x["elimit"] > before["elimit"], timeout=15)
        self.assertLessEqual(st["max_queued_seen"], 65536)
        s.close()
        self.wait_stats(lambda x: x["gone"] > before["gone"])

    def test_compressed_stream_flushed_per_event(self):
        s = Stream(self.srv.port, "/z/sse?n=3&interval=400", b"Accept-Encoding: gzip\r\n")
        self.assertTrue(s.read(until=lambda t: b"tick 0" in t, timeout=5))
        self.assertIn(b"Content-Encoding: gzip", s.head)
        # tick 0 could be decoded from the chunks before the one that brought
        # tick 1 (a slow reader may get both at once: the chunks tell)
        first = next(t for t in s.steps if b"tick 0" in t)
        self.assertNotIn(b"tick 1", first)
        self.assertTrue(s.read(timeout=5))
        s.close()
        self.assertEqual([e["data"] for e in events(s.text)[2:]], [["tick 0"], ["tick 1"], ["tick 2"]])

    def test_ticker_with_aiohttp(self):
        async def main():
            import aiohttp
            async with aiohttp.ClientSession() as sess:
                async with sess.get(self.srv.url("/ticker/")) as r:
                    page = await r.text()
                    self.assertIn("new EventSource('/ticker/events')", page)
                async with sess.get(self.srv.url("/ticker/events"),
                                    headers={"Last-Event-ID": "41"}) as r:
                    self.assertEqual(r.headers["Content-Type"], "text/event-stream")
                    self.assertEqual(r.headers.get("Content-Encoding"), "gzip")
                    got, cur = [], {}
                    t0 = time.time()
                    while len(got) < 4 and time.time() - t0 < 10:
                        line = (await asyncio.wait_for(r.content.readline(), 5)).decode()
                        if line == "\n":
                            got.append(cur)
                            cur = {}
                        elif not line.startswith(":"):
                            k, _, v = line.rstrip("\n").partition(": ")
                            cur[k] = v
                    ticks = [json.loads(e["data"]) for e in got]
                    self.assertTrue(all(e["event"] == "tick" for e in got))
                    self.assertEqual([t["resumed"] for t in ticks], ["41"] * 4)
                    ids = [int(e["id"]) for e in got]
                    self.assertEqual(ids, sorted(ids))
                    # The first event is sent on open, in whatever millisecond the
                    # shared timer happens to be in; the three timer ticks after it
                    # are 200 ms apart, each with its own id and time.
                    self.assertEqual(len(set(ids[1:])), 3)
                    self.assertEqual(len(set(t["time"] for t in ticks[1:])), 3)
                    self.assertGreaterEqual(ticks[-1]["requests"], 2)
        asyncio.run(main())


class SseStopTest(unittest.TestCase):
    def test_graceful_stop_ends_streams(self):
        tmp = tempfile.mkdtemp(prefix="loom-sse-stop-")
        try:
            pdir = os.path.join(tmp, "plugins")
            copy_plugins(pdir, ["ztest"])
            with loomtest.Server(args=["--single"], plugins_dir=pdir,
                                 config={"shutdown_timeout": 30}) as srv:
                srv.wait_log("plugin ztest")
                streams = [Stream(srv.port, "/z/sse?n=100000&interval=100") for _ in range(3)]
                for s in streams:
                    self.assertTrue(s.read(until=lambda t: b"tick 0" in t))
                t0 = time.time()
                srv.signal(signal.SIGTERM)
                for s in streams:
                    self.assertTrue(s.read(timeout=5), "the stream did not end")
                    s.close()
                rc = srv.proc.wait(10)
                self.assertLess(time.time() - t0, 8)  # not the 30 s shutdown_timeout
                self.assertEqual(rc, 0)
                self.assertIn("ended 3 event streams", srv.log())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    loomtest.main()
