"""The HTTP/2 defences, each against a raw client that sends what a hostile
one would, byte by byte: the stream limit, Rapid Reset (CVE-2023-44487),
CONTINUATION floods (CVE-2024-27316) in frames and in bytes, an HPACK bomb,
PING and SETTINGS floods from a client that does not read, empty DATA
floods, window overflow, malformed requests (each a stream error), and the
idle and per-stream deadlines. After each attack the server still serves."""
import json
import os
import shutil
import struct
import tempfile
import time
import unittest

import h2lib
import loomtest
from h2lib import (CONTINUATION, DATA, END_HEADERS, END_STREAM, ENHANCE_YOUR_CALM,
                   FLOW_CONTROL_ERROR, HEADERS, NO_ERROR, PING, PROTOCOL_ERROR, REFUSED_STREAM,
                   RST_STREAM, SETTINGS, WINDOW_UPDATE, CANCEL, Raw, frame)


def plugin_dir():
    d = tempfile.mkdtemp(prefix="loomh2-def-")
    shutil.copy(os.path.join(loomtest.PLUGINS_DIR, "hello.so"), d)
    shutil.copy(os.path.join(h2lib.H2TEST_PLUGINS, "h2test.so"), d)
    return d


def rst(sid, code=CANCEL):
    return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


class Defences(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.plugins = plugin_dir()
        cls.aport = loomtest.free_port()
        cls.srv = h2lib.H2Server(plugins_dir=cls.plugins, args=["--single"], config={
            "admin": {"listen": "127.0.0.1:%d" % cls.aport}})
        cls.srv.wait_log("listening on")

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        log = cls.srv.log()
        shutil.rmtree(cls.plugins, ignore_errors=True)
        assert rc == 0, log[-4000:]
        assert "runtime error" not in log and "Sanitizer" not in log, log[-4000:]

    def stats(self):
        c = Raw(self.srv.h2c_port)
        try:
            return json.loads(c.response(c.request("/h2/stats"))[2])
        finally:
            c.close()

    def assert_serves(self):
        """A fresh connection still gets answers."""
        c = Raw(self.srv.tls_port, tls=True)
        try:
            self.assertEqual(c.response(c.request("/"))[:1], (200,))
        finally:
            c.close()

    def calmed(self, c, timeout=10):
        self.assertTrue(c.read(lambda x: x.goaway() is not None, timeout), c.frames[-5:])
        self.assertEqual(c.goaway()[1], ENHANCE_YOUR_CALM, c.goaway())
        self.assertTrue(c.wait_closed(timeout))

    def test_max_concurrent_streams(self):
        before = self.stats()
        c = Raw(self.srv.h2c_port)
        try:
            c.read(lambda x: bool(x.of(SETTINGS)), 5)
            p = c.of(SETTINGS)[0][3]
            iv = {struct.unpack(">H", p[i:i + 2])[0]: struct.unpack(">I", p[i + 2:i + 6])[0]
                  for i in range(0, len(p), 6)}
            self.assertEqual(iv[3], 100)  # SETTINGS_MAX_CONCURRENT_STREAMS
            c.send(frame(SETTINGS, 1, 0))  # ACK: the limit applies
            sids = [c.request("/h2/slow?ms=400") for _ in range(101)]
            # nghttp2 treats the 101st stream as a connection error (RFC 9113
            # §5.4.1 allows it): GOAWAY after the 100th.
            self.assertTrue(c.read(lambda x: x.goaway() is not None, 5))
            self.assertEqual(c.goaway(), (sids[99], PROTOCOL_ERROR))
        finally:
            c.close()
        self.assertEqual(self.stats()["slow_started"] - before["slow_started"], 100)
        self.wait_idle()
        self.assert_serves()

    def wait_idle(self):
        """Waits until the slow handlers of aborted streams have finished."""
        deadline = time.time() + 10
        while time.time() < deadline and self.stats()["running"]:
            time.sleep(0.1)
        self.assertEqual(self.stats()["running"], 0)

    def metrics(self):
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.aport, timeout=5) as r:
            text = r.read().decode()
        out = {}
        for ln in text.splitlines():
            if ln and not ln.startswith("#"):
                k, v = ln.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def test_metrics_count_h2(self):
        """The admin listener's metrics see HTTP/2 connections and the
        requests refused on a stream."""
        before = self.metrics()
        c = Raw(self.srv.h2c_port)
        try:
            self.assertEqual(c.response(c.request("/"))[0], 200)
            self.assertEqual(c.response(c.request("/", headers=[("x-f", "v" * 9000)]))[0], 431)
            m = self.metrics()
        finally:
            c.close()
        self.assertGreaterEqual(m['loom_connections_open{protocol="h2"}'], 1)
        self.assertGreater(m['loom_connections_total{protocol="h2"}'],
                           before.get('loom_connections_total{protocol="h2"}', 0))
        self.assertEqual(m['loom_http_rejected_total{status="4xx"}'],
                         before.get('loom_http_rejected_total{status="4xx"}', 0) + 1)

    def test_upload_beyond_the_windows(self):
        """A body larger than the initial windows: nghttp2 opens them as
        loom takes the DATA frames."""
        body = os.urandom(700 * 1024)
        path = os.path.join(self.srv.tmp, "upload.bin")
        with open(path, "wb") as f:
            f.write(body)
        rc, out, err = h2lib.curl("--http2-prior-knowledge", "--data-binary", "@" + path,
                                  "-H", "Content-Type: application/octet-stream",
                                  self.srv.h2url("/h2/echo", tls=False))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, body)

    def test_streamed_head_is_not_an_abort(self):
        """A streamed response to HEAD ends with its HEADERS frame while the
        handler still writes: the handler is not told its client left."""
        before = self.stats()
        c = Raw(self.srv.h2c_port)
        try:
            sid = c.request("/h2/stream?n=3&size=5&ms=30", "HEAD")
            st, hs, body = c.response(sid)
            self.assertEqual((st, body), (200, b""))
            self.assertTrue(c.of(HEADERS, sid)[0][1] & END_STREAM)
            time.sleep(0.3)  # the handler's three writes and its end
            self.assertEqual(c.response(c.request("/"))[0], 200)
        finally:
            c.close()
        after = self.stats()
        self.assertEqual(after["stream_started"] - before["stream_started"], 1)
        self.assertEqual(after["stream_aborted"], before["stream_aborted"])

    def test_rapid_reset_with_fast_handlers(self):
        before = len([ln for ln in self.srv.access() if '"GET /?rr HTTP/2.0"' in ln])
        c = Raw(self.srv.h2c_port)
        try:
            burst = b""
            for i in range(1000):
                sid = 1 + 2 * i
                burst += frame(HEADERS, END_HEADERS | END_STREAM, sid, c.block("/?rr")) + rst(sid)
            c.send(burst)
            self.calmed(c)
            last = c.goaway()[0]
            self.assertLess(last, 2 * 400)
        finally:
            c.close()
        time.sleep(0.4)
        handled = len([ln for ln in self.srv.access() if '"GET /?rr HTTP/2.0"' in ln]) - before
        self.assertLess(handled, 400)  # not 1000: the resets ended the work, not the handlers
        self.assert_serves()

    def test_rapid_reset_with_slow_handlers(self):
        """Handlers that keep running after their stream is reset (they
        ignore the abort): the client may not hold more of them than its
        stream limit."""
        before = self.stats()
        c = Raw(self.srv.h2c_port)
        try:
            burst = b""
            for i in range(150):
                sid = 1 + 2 * i
                burst += frame(HEADERS, END_HEADERS | END_STREAM, sid,
                               c.block("/h2/slow?ms=1500")) + rst(sid)
            c.send(burst)
            self.calmed(c)
        finally:
            c.close()
        mid = self.stats()
        self.assertEqual(mid["slow_started"] - before["slow_started"], 100)
        self.assertLessEqual(mid["running"], 100)
        self.wait_idle()
        self.assert_serves()

    def test_continuation_flood_frames(self):
        c = Raw(self.srv.h2c_port)
        try:
            blk = c.block("/", headers=[("x-n%d" % i, "v") for i in range(40)])
            pieces = [blk[i:i + 4] for i in range(0, len(blk), 4)]
            out = frame(HEADERS, 0, 1, pieces[0])
            for p in pieces[1:]:
                out += frame(CONTINUATION, 0, 1, p)
            self.assertGreater(len(pieces), 20)
            c.send(out)
            self.calmed(c)
        finally:
            c.close()
        self.assert_serves()

    def test_continuation_flood_bytes(self):
        """Few frames, but each as large as a frame may be: bounded in bytes
        before nghttp2's frame count bites."""
        c = Raw(self.srv.h2c_port)
        try:
            hs = [("x-b%d" % i, "%06d" % i + "z" * 8000) for i in range(12)]
            blk = hpack_literal(c.block("/"), hs)
            pieces = [blk[i:i + 16384] for i in range(0, len(blk), 16384)]
            self.assertLessEqual(len(pieces), 8)  # within nghttp2's 8 CONTINUATION frames
            out = frame(HEADERS, 0, 1, pieces[0])
            for p in pieces[1:]:  # none ends the block
                out += frame(CONTINUATION, 0, 1, p)
            c.send(out)
            self.calmed(c)
        finally:
            c.close()
        self.assert_serves()

    def test_hpack_bomb(self):
        """A small header block that names one large table entry many times
        decodes to far more than the list limit: 431, and the connection
        lives on."""
        c = Raw(self.srv.h2c_port)
        try:
            big = ("x-big", "b" * 4000)
            self.assertEqual(c.response(c.request("/", headers=[big]))[0], 200)
            blk = c.block("/")
            self.assertLess(len(c.enc.encode([big] * 30)), 100)  # each a table index
            sid = c.next_id
            c.next_id += 2
            c.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, blk + c.enc.encode([big] * 30)))
            self.assertEqual(c.response(sid)[0], 431)
            self.assertEqual(c.response(c.request("/"))[0], 200)
        finally:
            c.close()

    def control_flood(self, one):
        """Sends `one` frame over and over without reading (a tiny receive
        buffer), until the server gives up on us: it must end the connection
        with ENHANCE_YOUR_CALM rather than queue answers without bound."""
        c = Raw(self.srv.h2c_port, rcvbuf=4096)
        try:
            chunk = one * 4096
            c.sock.settimeout(0.5)
            sent, t0 = 0, time.time()
            while time.time() - t0 < 20 and sent < (64 << 20):
                try:
                    c.sock.sendall(chunk)
                    sent += len(chunk)
                except OSError:
                    break  # the server closed, or stopped reading
            self.calmed(c, 20)
        finally:
            c.close()
        self.assert_serves()

    def test_ping_flood(self):
        self.control_flood(frame(PING, 0, 0, b"12345678"))

    def test_settings_flood(self):
        self.control_flood(frame(SETTINGS, 0, 0))

    def test_empty_data_flood(self):
        c = Raw(self.srv.h2c_port)
        try:
            sid = c.request("/h2/echo", "POST", end=False)
            c.send(frame(DATA, 0, sid) * 1000)
            self.calmed(c)
        finally:
            c.close()
        self.assert_serves()

    def test_window_update_overflow(self):
        c = Raw(self.srv.h2c_port)
        try:
            sid = c.request("/h2/slow?ms=300")
            c.send(frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", 0x7fffffff)))
            self.assertTrue(c.read(lambda x: x.rst(sid) is not None, 5))
            self.assertEqual(c.rst(sid), FLOW_CONTROL_ERROR)
            self.assertEqual(c.response(c.request("/"))[0], 200)  # only the stream
            c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7fffffff)))
            self.assertTrue(c.read(lambda x: x.goaway() is not None, 5))
            self.assertEqual(c.goaway()[1], FLOW_CONTROL_ERROR)
        finally:
            c.close()
        self.wait_idle()

    def test_malformed_requests_are_stream_errors(self):
        before = self.stats()
        c = Raw(self.srv.h2c_port)
        auth = c.authority

        def pseudo(**drop):
            hs = [(":method", "GET"), (":scheme", "http"), (":authority", auth),
                  (":path", "/h2/slow?ms=1")]
            return [h for h in hs if h[0][1:] not in drop]

        try:
            cases = {
                "uppercase name": dict(headers=[("X-Upper", "1")]),
                "connection header": dict(headers=[("connection", "keep-alive")]),
                "te: gzip": dict(headers=[("te", "gzip")]),
                "transfer-encoding": dict(headers=[("transfer-encoding", "chunked")]),
                "keep-alive": dict(headers=[("keep-alive", "5")]),
                "missing :path": dict(pseudo=pseudo(path=1)),
                "missing :method": dict(pseudo=pseudo(method=1)),
                "missing :scheme": dict(pseudo=pseudo(scheme=1)),
                "pseudo after regular": dict(pseudo=[], headers=[("x-a", "1")] + pseudo()),
            }
            for what, kw in cases.items():
                sid = c.next_id
                c.next_id += 2
                c.send(frame(HEADERS, END_HEADERS | END_STREAM, sid,
                             c.block("/h2/slow?ms=1", headers=kw.get("headers", ()),
                                     pseudo=kw.get("pseudo"))))
                st, hs, body = c.response(sid, 5)
                self.assertEqual((st, hs), (None, {"rst": PROTOCOL_ERROR}), what)
            # Content-Length that the DATA frames contradict, short and long.
            for declared, sent in ((10, 5), (5, 10)):
                sid = c.request("/h2/echo", "POST", headers=[("content-length", str(declared))],
                                end=False)
                c.send(frame(DATA, END_STREAM, sid, b"x" * sent))
                self.assertEqual(c.response(sid, 5), (None, {"rst": PROTOCOL_ERROR}, b""),
                                 (declared, sent))
            self.assertIsNone(c.goaway())
            self.assertEqual(c.response(c.request("/"))[0], 200)
        finally:
            c.close()
        self.assertEqual(self.stats()["slow_started"], before["slow_started"])  # no handler ran


def hpack_literal(prefix, headers):
    """prefix, then each header as a literal without indexing and without
    Huffman (so the encoded size is the plain size)."""
    out = bytearray(prefix)

    def intb(v, nbits, first):
        m = (1 << nbits) - 1
        if v < m:
            return bytes([first | v])
        b = bytearray([first | m])
        v -= m
        while v >= 128:
            b.append(v % 128 + 128)
            v //= 128
        b.append(v)
        return bytes(b)

    for k, v in headers:
        out += b"\x00" + intb(len(k), 7, 0) + k.encode() + intb(len(v), 7, 0) + v.encode()
    return bytes(out)


class Deadlines(unittest.TestCase):
    """A server with one-second deadlines: idle connections, a stream whose
    body stops, a header block that never ends, a client that does not open
    its window."""

    @classmethod
    def setUpClass(cls):
        cls.plugins = plugin_dir()
        cls.srv = h2lib.H2Server(plugins_dir=cls.plugins, args=["--single"], config={
            "keepalive_timeout": 1, "header_timeout": 1, "read_timeout": 1,
            "request_timeout": 5, "write_timeout": 1})
        cls.srv.wait_log("listening on")

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        log = cls.srv.log()
        shutil.rmtree(cls.plugins, ignore_errors=True)
        assert rc == 0, log[-4000:]

    def test_idle_connections_end(self):
        a = Raw(self.srv.h2c_port)
        b = Raw(self.srv.tls_port, tls=True, preface=False)  # h2 by ALPN, then silence
        try:
            t0 = time.time()
            self.assertEqual(a.response(a.request("/"))[0], 200)
            self.assertTrue(a.read(lambda x: x.goaway() is not None, 4))
            self.assertEqual(a.goaway(), (1, NO_ERROR))
            self.assertTrue(a.wait_closed(3))
            self.assertGreater(time.time() - t0, 0.9)
            self.assertTrue(b.wait_closed(4))
        finally:
            a.close()
            b.close()

    def test_stalled_body_gets_408(self):
        c = Raw(self.srv.h2c_port)
        try:
            sid = c.request("/h2/echo", "POST", end=False)
            c.send(frame(DATA, 0, sid, b"part"))
            other = c.request("/")
            self.assertEqual(c.response(other)[0], 200)
            st, hs, body = c.response(sid, 5)
            self.assertEqual(st, 408)
            c.read(lambda x: x.rst(sid) is not None, 3)
            self.assertEqual(c.rst(sid), NO_ERROR)
        finally:
            c.close()

    def test_unfinished_header_block(self):
        c = Raw(self.srv.h2c_port)
        try:
            c.send(frame(HEADERS, 0, 1, c.block("/")[:3]))
            self.calmed(c)
        finally:
            c.close()

    def test_window_never_opened(self):
        c = Raw(self.srv.h2c_port, initial_window_size=0)
        try:
            sid = c.request("/h2/big?size=100000")
            self.assertTrue(c.read(lambda x: x.rst(sid) is not None, 5))
            self.assertEqual(c.rst(sid), CANCEL)
            self.assertEqual(c.of(HEADERS, sid)[0][3][0], (":status", "200"))
            self.assertFalse(c.of(DATA, sid))
        finally:
            c.close()

    calmed = Defences.calmed


if __name__ == "__main__":
    loomtest.main()
