"""Compressed responses (the compress plugin), precompressed static files,
multipart byte ranges and request-body decoding, against the real binary,
with curl --compressed, the aiohttp client and raw HTTP/1.1 (http.client).

One server for the whole suite: compress, static and the ztest plugin."""
import asyncio
import gzip
import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import zlib

import loomtest

try:
    import brotli
except ImportError:  # python3-brotli (scripts/deps.sh)
    brotli = None
import zstandard

REC = b'{"id":12345,"name":"loom test record","ok":true},'


def expected_body(n):
    return (REC * (n // len(REC) + 1))[:n]


def decode(coding, data):
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "br":
        return brotli.decompress(data)
    if coding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


class CompressTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="loom-compress-")
        pdir = os.path.join(cls.tmp, "plugins")
        os.mkdir(pdir)
        for p in ("compress", "static"):
            shutil.copy(os.path.join(loomtest.PLUGINS_DIR, p + ".so"), pdir)
        shutil.copy(os.path.join(loomtest.LOOM_BUILD, "test-plugins-compress", "ztest.so"), pdir)
        root = os.path.join(cls.tmp, "pub")
        os.mkdir(root)
        cls.page = b"precompressed static text, line after line.\n" * 80
        with open(os.path.join(root, "page.txt"), "wb") as f:
            f.write(cls.page)
        cls.variants = {"br": brotli.compress(cls.page) if brotli else None,
                        "gzip": gzip.compress(cls.page),
                        "zstd": zstandard.ZstdCompressor().compress(cls.page)}
        for coding, ext in (("br", ".br"), ("gzip", ".gz"), ("zstd", ".zst")):
            if cls.variants[coding]:
                with open(os.path.join(root, "page.txt" + ext), "wb") as f:
                    f.write(cls.variants[coding])
        cls.data = bytes(range(256)) * 160  # 40 KiB
        with open(os.path.join(root, "data.bin"), "wb") as f:
            f.write(cls.data)
        cls.big = expected_body(300 * 1024)  # a file body over pool_min
        with open(os.path.join(root, "big.json"), "wb") as f:
            f.write(cls.big)
        cls.srv = loomtest.Server(
            args=["--single"], plugins_dir=pdir,
            config={"client_max_size": 65536,
                    "plugins": {"static": {"mounts": [{"prefix": "/s", "root": root}]}}})
        cls.srv.wait_log("plugin ztest")

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, "server exit status %s:\n%s" % (rc, cls.srv.log())

    def get(self, path, headers=None, method="GET", body=None, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    # ---- negotiation ----

    def test_codings(self):
        for coding in ("gzip", "br", "zstd"):
            if coding == "br" and not brotli:
                continue
            st, h, b = self.get("/z/body?size=5000", {"Accept-Encoding": coding})
            self.assertEqual(st, 200)
            self.assertEqual(h.get("content-encoding"), coding)
            self.assertEqual(h.get("vary"), "Accept-Encoding")
            self.assertLess(len(b), 5000)
            self.assertEqual(int(h["content-length"]), len(b))
            self.assertEqual(decode(coding, b), expected_body(5000))

    def test_q_values(self):
        cases = [
            ("gzip;q=0.5, br;q=0.4", "gzip"),
            ("br, gzip, zstd", "br"),  # equal q: the server's preference
            ("gzip, zstd", "zstd"),
            ("*", "br"),
            ("*;q=0.1, gzip", "gzip"),
            ("gzip;q=0, *", "br"),
            ("br;q=0, zstd;q=0, *;q=0.3", "gzip"),
            ("GZIP", "gzip"),
            ("identity", None),
            ("gzip;q=0", None),
        ]
        for ae, want in cases:
            with self.subTest(accept_encoding=ae):
                st, h, b = self.get("/z/body?size=3000", {"Accept-Encoding": ae})
                self.assertEqual(st, 200)
                self.assertEqual(h.get("content-encoding"), want)
                self.assertEqual(decode(want, b), expected_body(3000))
                self.assertEqual(h.get("vary"), "Accept-Encoding")
        # No Accept-Encoding at all: identity, but the response varies.
        st, h, b = self.get("/z/body?size=3000")
        self.assertNotIn("content-encoding", h)
        self.assertEqual(h.get("vary"), "Accept-Encoding")

    def test_identity_refused(self):
        # identity;q=0: coded even under min_length, and 406 when nothing fits.
        st, h, b = self.get("/z/body?size=100", {"Accept-Encoding": "gzip, identity;q=0"})
        self.assertEqual((st, h.get("content-encoding")), (200, "gzip"))
        self.assertEqual(gzip.decompress(b), expected_body(100))
        for ae in ("identity;q=0", "*;q=0", "deflate, identity;q=0"):
            with self.subTest(accept_encoding=ae):
                st, h, b = self.get("/z/body?size=3000", {"Accept-Encoding": ae})
                self.assertEqual(st, 406)
                self.assertNotIn("content-encoding", h)
        # *;q=0 with identity listed keeps identity acceptable.
        st, h, b = self.get("/z/body?size=3000", {"Accept-Encoding": "*;q=0, identity"})
        self.assertEqual((st, h.get("content-encoding")), (200, None))

    # ---- every skip case ----

    def test_skip_head(self):
        st, h, b = self.get("/z/body?size=5000", {"Accept-Encoding": "gzip"}, method="HEAD")
        self.assertEqual(st, 200)
        self.assertNotIn("content-encoding", h)
        self.assertEqual(b, b"")

    def test_skip_204_304(self):
        for status in (204, 304):
            st, h, b = self.get("/z/body?size=5000&status=%d" % status, {"Accept-Encoding": "gzip"})
            self.assertEqual(st, status)
            self.assertNotIn("content-encoding", h)

    def test_skip_206(self):
        st, h, b = self.get("/z/body?size=5000&status=206", {"Accept-Encoding": "gzip"})
        self.assertEqual(st, 206)
        self.assertNotIn("content-encoding", h)
        self.assertEqual(b, expected_body(5000))

    def test_skip_range_request(self):
        st, h, b = self.get("/z/body?size=5000", {"Accept-Encoding": "gzip", "Range": "bytes=0-9"})
        self.assertNotIn("content-encoding", h)
        self.assertEqual(b, expected_body(5000))

    def test_skip_already_encoded(self):
        st, h, b = self.get("/z/body?size=5000&ce=x-custom", {"Accept-Encoding": "gzip"})
        self.assertEqual(h.get("content-encoding"), "x-custom")
        self.assertEqual(b, expected_body(5000))

    def test_skip_no_transform(self):
        st, h, b = self.get("/z/body?size=5000&cc=public,%20no-transform",
                            {"Accept-Encoding": "gzip"})
        self.assertNotIn("content-encoding", h)
        self.assertEqual(b, expected_body(5000))

    def test_skip_type_not_listed(self):
        st, h, b = self.get("/z/body?size=5000&ct=image/png", {"Accept-Encoding": "gzip"})
        self.assertNotIn("content-encoding", h)
        self.assertNotIn("vary", h)
        # text/*, a +json suffix type and SVG are listed
        for ct in ("text/csv", "application/problem%2Bjson", "image/svg%2Bxml"):
            st, h, b = self.get("/z/body?size=5000&ct=" + ct, {"Accept-Encoding": "gzip"})
            self.assertEqual(h.get("content-encoding"), "gzip", ct)

    def test_skip_under_min_length(self):
        st, h, b = self.get("/z/body?size=1023", {"Accept-Encoding": "gzip"})
        self.assertNotIn("content-encoding", h)
        self.assertEqual(h.get("vary"), "Accept-Encoding")
        st, h, b = self.get("/z/body?size=1024", {"Accept-Encoding": "gzip"})
        self.assertEqual(h.get("content-encoding"), "gzip")

    def test_etag_weakened_vary_merged(self):
        st, h, b = self.get('/z/body?size=5000&etag=%22abc%22&vary=Origin', {"Accept-Encoding": "gzip"})
        self.assertEqual(h.get("etag"), 'W/"abc"')
        self.assertEqual(h.get("vary"), "Origin, Accept-Encoding")
        st, h, b = self.get('/z/body?size=5000&etag=W/%22abc%22', {"Accept-Encoding": "gzip"})
        self.assertEqual(h.get("etag"), 'W/"abc"')
        st, h, b = self.get('/z/body?size=5000&etag=%22abc%22', {"Accept-Encoding": "identity"})
        self.assertEqual(h.get("etag"), '"abc"')

    # ---- sizes, the thread pool, streams ----

    def test_large_bodies_on_the_pool(self):
        # Over pool_min (64 KiB): compressed on the thread pool, many at once,
        # on keep-alive connections; a file body (sendfile) too.
        async def main():
            import aiohttp
            async with aiohttp.ClientSession(auto_decompress=False) as s:
                async def one(i):
                    coding = ("gzip", "zstd", "br" if brotli else "gzip")[i % 3]
                    path = "/z/body?size=%d" % (200000 + i) if i % 2 else "/s/big.json"
                    async with s.get(self.srv.url(path),
                                     headers={"Accept-Encoding": coding}) as r:
                        raw = await r.read()
                        self.assertEqual(r.headers.get("Content-Encoding"), coding)
                        want = expected_body(200000 + i) if i % 2 else self.big
                        self.assertEqual(decode(coding, raw), want)
                await asyncio.gather(*(one(i) for i in range(24)))
        asyncio.run(main())

    def test_streamed_chunks_arrive_compressed_one_by_one(self):
        for coding in ("gzip", "br", "zstd"):
            if coding == "br" and not brotli:
                continue
            with self.subTest(coding=coding):
                s = loomtest.connect(self.srv.port)
                s.sendall(b"GET /z/stream?chunks=4&delay=300 HTTP/1.1\r\nHost: x\r\n"
                          b"Accept-Encoding: " + coding.encode() + b"\r\n\r\n")
                if coding == "gzip":
                    d = zlib.decompressobj(31)
                elif coding == "br":
                    d = brotli.Decompressor()
                else:
                    d = zstandard.ZstdDecompressor().decompressobj()
                buf, text, first = b"", b"", None
                head_done = False
                t0 = time.time()
                while time.time() - t0 < 8:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                    if not head_done:
                        if b"\r\n\r\n" not in buf:
                            continue
                        head, buf = buf.split(b"\r\n\r\n", 1)
                        self.assertIn(b"Content-Encoding: " + coding.encode(), head)
                        self.assertIn(b"Transfer-Encoding: chunked", head)
                        head_done = True
                    # unchunk what is complete
                    while True:
                        k = buf.find(b"\r\n")
                        if k < 0:
                            break
                        n = int(buf[:k], 16)
                        if len(buf) < k + 2 + n + 2:
                            break
                        data = buf[k + 2:k + 2 + n]
                        buf = buf[k + 2 + n + 2:]
                        if n == 0:
                            break
                        text += d.decompress(data) if coding != "br" else d.process(data)
                        if first is None and b"chunk 0:" in text:
                            first = text
                    if buf == b"" and text.count(b"\n") == 4 and chunk.endswith(b"0\r\n\r\n"):
                        break
                s.close()
                self.assertEqual(text.count(b"chunk "), 4, text)
                # the first chunk could be decoded from the HTTP chunks before
                # the next one was written (300 ms later): it was flushed on its
                # own, not kept until more came (a slow reader may get several
                # HTTP chunks at once: their boundaries tell)
                self.assertIsNotNone(first)
                self.assertNotIn(b"chunk 1:", first)

    # ---- peers ----

    def test_curl_compressed(self):
        out = subprocess.run(["curl", "-s", "-i", "--compressed", self.srv.url("/z/body?size=8000")],
                             capture_output=True, timeout=20).stdout
        head, body = out.split(b"\r\n\r\n", 1)
        self.assertRegex(head, rb"(?i)content-encoding: (br|zstd|gzip)")
        self.assertEqual(body, expected_body(8000))
        out = subprocess.run(["curl", "-s", "--compressed", self.srv.url("/s/big.json")],
                             capture_output=True, timeout=20).stdout
        self.assertEqual(out, self.big)

    def test_aiohttp_client(self):
        async def main():
            import aiohttp
            async with aiohttp.ClientSession() as s:
                # aiohttp's default Accept-Encoding ("gzip, deflate" in 3.8)
                async with s.get(self.srv.url("/z/body?size=20000")) as r:
                    self.assertEqual(r.headers.get("Content-Encoding"), "gzip")
                    self.assertEqual(await r.read(), expected_body(20000))
                async with s.get(self.srv.url("/z/stream?chunks=3&delay=50")) as r:
                    self.assertEqual(r.headers.get("Content-Encoding"), "gzip")
                    self.assertEqual((await r.read()).count(b"chunk "), 3)
                if brotli:  # aiohttp decodes br with python3-brotli
                    async with s.get(self.srv.url("/z/body?size=20000"),
                                     headers={"Accept-Encoding": "br"}) as r:
                        self.assertEqual(r.headers.get("Content-Encoding"), "br")
                        self.assertEqual(await r.read(), expected_body(20000))
        asyncio.run(main())

    # ---- precompressed static files ----

    def test_precompressed_variants(self):
        tags = set()
        for coding in ("br", "gzip", "zstd"):
            if not self.variants[coding]:
                continue
            st, h, b = self.get("/s/page.txt", {"Accept-Encoding": coding})
            self.assertEqual(st, 200)
            self.assertEqual(h.get("content-encoding"), coding)
            self.assertEqual(h.get("vary"), "Accept-Encoding")
            self.assertEqual(h.get("content-type"), "text/plain; charset=utf-8")
            self.assertEqual(b, self.variants[coding])  # the file beside, byte for byte
            self.assertTrue(h["etag"].endswith('-%s"' % coding), h["etag"])
            tags.add(h["etag"])
            # its own ETag validates it
            st, h2, b = self.get("/s/page.txt", {"Accept-Encoding": coding,
                                                 "If-None-Match": h["etag"]})
            self.assertEqual(st, 304)
        st, h, b = self.get("/s/page.txt", {"Accept-Encoding": "identity"})
        self.assertNotIn("content-encoding", h)
        self.assertEqual(b, self.page)
        tags.add(h["etag"])
        self.assertEqual(len(tags), 4 if self.variants["br"] else 3)
        # preference by q
        st, h, b = self.get("/s/page.txt", {"Accept-Encoding": "br;q=0.2, zstd;q=0.9, gzip"})
        self.assertEqual(h.get("content-encoding"), "gzip")

    def test_range_on_precompressed(self):
        coding = "br" if self.variants["br"] else "gzip"
        v = self.variants[coding]
        st, h, b = self.get("/s/page.txt", {"Accept-Encoding": coding, "Range": "bytes=0-9"})
        self.assertEqual(st, 206)
        self.assertEqual(h.get("content-encoding"), coding)
        self.assertEqual(h.get("content-range"), "bytes 0-9/%d" % len(v))
        self.assertEqual(b, v[:10])
        st, h, b = self.get("/s/page.txt", {"Accept-Encoding": coding, "Range": "bytes=-5"})
        self.assertEqual(b, v[-5:])
        # unsatisfiable on the variant's size: 416, with an uncoded error text
        st, h, b = self.get("/s/page.txt", {"Accept-Encoding": coding,
                                            "Range": "bytes=%d-" % (len(v) + 5)})
        self.assertEqual(st, 416)
        self.assertNotIn("content-encoding", h)

    def test_multipart_byteranges(self):
        st, h, b = self.get("/s/data.bin",
                            {"Range": "bytes=0-9,5-19,100-199,200-299,-10"})
        self.assertEqual(st, 206)
        ct = h["content-type"]
        self.assertTrue(ct.startswith("multipart/byteranges; boundary="), ct)
        boundary = ct.split("boundary=", 1)[1].encode()
        self.assertTrue(b.endswith(b"\r\n--" + boundary + b"--\r\n"))
        parts = [p for p in b.split(b"--" + boundary) if p not in (b"", b"--\r\n")]
        got = []
        for p in parts:
            p = p[2:] if p.startswith(b"\r\n") else p
            head, data = p.split(b"\r\n\r\n", 1)
            if data.endswith(b"\r\n"):
                data = data[:-2]
            heads = dict(line.split(b": ", 1) for line in head.split(b"\r\n"))
            self.assertEqual(heads[b"Content-Type"], b"application/octet-stream")
            got.append((heads[b"Content-Range"].decode(), data))
        n = len(self.data)
        # 0-9 and 5-19 overlap, 100-199 and 200-299 are adjacent: coalesced
        self.assertEqual([g[0] for g in got], ["bytes 0-19/%d" % n, "bytes 100-299/%d" % n,
                                               "bytes %d-%d/%d" % (n - 10, n - 1, n)])
        self.assertEqual(got[0][1], self.data[0:20])
        self.assertEqual(got[1][1], self.data[100:300])
        self.assertEqual(got[2][1], self.data[-10:])
        self.assertEqual(int(h["content-length"]), len(b))
        # two ranges that coalesce into one: a plain 206
        st, h, b = self.get("/s/data.bin", {"Range": "bytes=0-9,10-19"})
        self.assertEqual((st, h.get("content-range"), b), (206, "bytes 0-19/%d" % n, self.data[:20]))
        # 16 ranges are served, 17 refused
        r16 = ",".join("%d-%d" % (i * 100, i * 100 + 9) for i in range(16))
        st, h, b = self.get("/s/data.bin", {"Range": "bytes=" + r16})
        self.assertEqual(st, 206)
        self.assertEqual(b.count(b"Content-Range: bytes "), 16)
        r17 = ",".join("%d-%d" % (i * 100, i * 100 + 9) for i in range(17))
        st, h, b = self.get("/s/data.bin", {"Range": "bytes=" + r17})
        self.assertEqual(st, 416)

    # ---- request bodies ----

    def test_request_body_decoded(self):
        payload = expected_body(30000)
        coded = {"gzip": gzip.compress(payload),
                 "zstd": zstandard.ZstdCompressor().compress(payload)}
        if brotli:
            coded["br"] = brotli.compress(payload)
        for coding, body in coded.items():
            with self.subTest(coding=coding):
                st, h, b = self.get("/z/decoded", {"Content-Encoding": coding}, "POST", body)
                self.assertEqual(st, 200)
                self.assertEqual(h["x-seen-content-encoding"], "-")
                self.assertEqual(b, payload)
                # a route without the flag sees the bytes as they came
                st, h, b = self.get("/z/raw", {"Content-Encoding": coding}, "POST", body)
                self.assertEqual(h["x-seen-content-encoding"], coding)
                self.assertEqual(b, body)
        st, h, b = self.get("/z/decoded", {"Content-Encoding": "compress"}, "POST", b"xx")
        self.assertEqual(st, 415)
        st, h, b = self.get("/z/decoded", {"Content-Encoding": "gzip, br"}, "POST", b"xx")
        self.assertEqual(st, 415)
        st, h, b = self.get("/z/decoded", {"Content-Encoding": "gzip"}, "POST",
                            coded["gzip"][:-20])
        self.assertEqual(st, 400)
        st, h, b = self.get("/z/decoded", {"Content-Encoding": "identity"}, "POST", b"plain")
        self.assertEqual((st, b), (200, b"plain"))

    def test_request_body_bomb(self):
        # 64 MiB of zeros in a few KiB: 413 at client_max_size (64 KiB) of
        # decoded bytes, and the same connection serves the next request.
        bombs = {"gzip": gzip.compress(b"\0" * (64 << 20), 9),
                 "zstd": zstandard.ZstdCompressor(level=19).compress(b"\0" * (64 << 20))}
        if brotli:
            bombs["br"] = brotli.compress(b"\0" * (64 << 20), quality=5)
        for coding, bomb in bombs.items():
            with self.subTest(coding=coding):
                self.assertLess(len(bomb), 65536)
                c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
                st, h, b = self.get("/z/decoded", {"Content-Encoding": coding}, "POST", bomb, conn=c)
                self.assertEqual(st, 413)
                self.assertNotEqual(h.get("connection"), "close")
                st, h, b = self.get("/z/body?size=10", conn=c)
                self.assertEqual((st, b), (200, expected_body(10)))
                c.close()
        # just under the limit is fine
        ok = gzip.compress(b"a" * 65536)
        st, h, b = self.get("/z/decoded", {"Content-Encoding": "gzip"}, "POST", ok)
        self.assertEqual((st, len(b)), (200, 65536))


if __name__ == "__main__":
    loomtest.main()
