"""The static plugin: files under a prefix, validators, ranges, sendfile for
large bodies, and every traversal case of reliability.md section 5 answering
400, 403 or 404 without a byte from outside the root."""
import os
import shutil
import socket
import tempfile
import threading
import time
import unittest

import loomtest
import weblib

SECRET = b"TOPSECRET-outside-the-root"


req = weblib.req  # raw HTTP/1.1 with Connection: close, parsed


class StaticTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="loom-static-")
        t = cls.tmp
        out = os.path.join(t, "outside")
        root = os.path.join(t, "root")
        os.makedirs(out)
        os.makedirs(os.path.join(root, "sub"))
        os.makedirs(os.path.join(root, "list", "inner"))
        os.makedirs(os.path.join(root, "swap"))
        for name in ("secret.txt", "secret.txt.gz", "f.txt", "passwd"):
            with open(os.path.join(out, name), "wb") as f:
                f.write(SECRET)
        with open(os.path.join(root, "index.html"), "wb") as f:
            f.write(b"<h1>home</h1>")
        with open(os.path.join(root, "hello.txt"), "wb") as f:
            f.write(b"hello, static world\n")
        with open(os.path.join(root, "sub", "a.css"), "wb") as f:
            f.write(b"body{}")
        with open(os.path.join(root, ".hidden"), "wb") as f:
            f.write(b"hidden")
        with open(os.path.join(root, "swap", "f.txt"), "wb") as f:
            f.write(b"inside")
        with open(os.path.join(root, "list", "<b>&'x\".txt"), "wb") as f:
            f.write(b"x")
        cls.big = os.urandom(3 * 1024 * 1024 + 12345)
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.write(cls.big)
        os.symlink(os.path.join(out, "secret.txt"), os.path.join(root, "link-file"))
        os.symlink(out, os.path.join(root, "link-dir"))
        os.symlink(os.path.join(out, "secret.txt.gz"), os.path.join(root, "hello.txt.gz"))
        os.symlink("../outside/secret.txt", os.path.join(root, "rel-link.txt"))
        cls.root, cls.out = root, out
        cls.srv = loomtest.Server(
            plugins_dir=loomtest.PLUGINS_DIR,
            config={"plugins": {"static": {"mounts": [
                {"prefix": "/static", "root": root, "index": "index.html"},
                {"prefix": "/browse", "root": root, "show_index": True},
            ]}}})
        cls.srv.wait_log("static")
        cls.port = cls.srv.port
        # the port accepts before plugins load: wait for a real answer
        deadline = time.time() + 10
        while time.time() < deadline:
            if req(cls.port, "/static/hello.txt")[0] == 200:
                break
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, "server exit status %s:\n%s" % (rc, cls.srv.log())

    def get(self, target, **kw):
        st, h, body = req(self.port, target, **kw)
        self.assertNotIn(SECRET, body, target)
        return st, h, body

    # ---- serving ----

    def test_file_and_validators(self):
        st, h, body = self.get("/static/hello.txt")
        self.assertEqual(st, 200)
        self.assertEqual(body, b"hello, static world\n")
        self.assertEqual(h["content-type"], "text/plain; charset=utf-8")
        self.assertEqual(h["accept-ranges"], "bytes")
        etag, lm = h["etag"], h["last-modified"]
        self.assertTrue(etag.startswith('"'))
        st, h2, body = self.get("/static/hello.txt", headers={"If-None-Match": etag})
        self.assertEqual((st, body), (304, b""))
        self.assertEqual(h2["etag"], etag)
        st, _, _ = self.get("/static/hello.txt", headers={"If-None-Match": '"x", W/' + etag})
        self.assertEqual(st, 304)
        st, _, _ = self.get("/static/hello.txt", headers={"If-None-Match": '"other"'})
        self.assertEqual(st, 200)
        st, _, _ = self.get("/static/hello.txt", headers={"If-Modified-Since": lm})
        self.assertEqual(st, 304)
        st, _, _ = self.get("/static/hello.txt",
                            headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
        self.assertEqual(st, 200)
        # If-None-Match wins over If-Modified-Since
        st, _, _ = self.get("/static/hello.txt",
                            headers={"If-None-Match": '"other"', "If-Modified-Since": lm})
        self.assertEqual(st, 200)

    def test_content_types_and_index(self):
        self.assertEqual(self.get("/static/sub/a.css")[1]["content-type"], "text/css; charset=utf-8")
        st, h, body = self.get("/static/")
        self.assertEqual((st, body), (200, b"<h1>home</h1>"))
        self.assertTrue(h["content-type"].startswith("text/html"))
        st, h, _ = self.get("/static/sub")
        self.assertEqual(st, 301)
        self.assertEqual(h["location"], "/static/sub/")
        # no index file and no listing asked for
        st, _, body = self.get("/static/sub/")
        self.assertEqual(st, 403)
        self.assertNotIn(b"a.css", body)
        self.assertEqual(self.get("/static/nope.txt")[0], 404)
        self.assertEqual(self.get("/static/.hidden")[0], 404)
        self.assertEqual(self.get("/static/hello.txt/")[0], 404)

    def test_listing_escaped(self):
        st, h, body = self.get("/browse/list/")
        self.assertEqual(st, 200)
        self.assertIn(b"&lt;b&gt;&amp;&#39;x&quot;.txt", body)
        self.assertNotIn(b"<b>", body)
        self.assertIn(b'href="inner/"', body)
        for _ in range(3):  # the root's listing, again and again: no shared offset
            st, _, body = self.get("/browse/")
            self.assertNotIn(b".hidden", body)
            self.assertIn(b'href="hello.txt"', body)

    def test_ranges(self):
        st, h, body = self.get("/static/hello.txt", headers={"Range": "bytes=0-4"})
        self.assertEqual((st, body), (206, b"hello"))
        self.assertEqual(h["content-range"], "bytes 0-4/20")
        st, h, body = self.get("/static/hello.txt", headers={"Range": "bytes=-6"})
        self.assertEqual((st, body), (206, b"world\n"))
        st, h, body = self.get("/static/hello.txt", headers={"Range": "bytes=7-"})
        self.assertEqual((st, body), (206, b"static world\n"))
        st, h, _ = self.get("/static/hello.txt", headers={"Range": "bytes=100-200"})
        self.assertEqual(st, 416)
        self.assertEqual(h["content-range"], "bytes */20")
        # not a byte range we understand: ignored
        st, _, body = self.get("/static/hello.txt", headers={"Range": "lines=1-2"})
        self.assertEqual((st, len(body)), (200, 20))
        # If-Range with another validator: the whole file
        st, _, body = self.get("/static/hello.txt", headers={"Range": "bytes=0-4", "If-Range": '"x"'})
        self.assertEqual((st, len(body)), (200, 20))
        # two ranges: a multipart/byteranges 206 with both (issue 20; it was
        # the whole file before); tests/compress covers coalescing
        st, h, body = self.get("/static/hello.txt", headers={"Range": "bytes=0-1,3-4"})
        self.assertEqual(st, 206)
        self.assertTrue(h["content-type"].startswith("multipart/byteranges; boundary="))
        self.assertEqual(body.count(b"Content-Range: bytes "), 2)
        self.assertIn(b"Content-Range: bytes 0-1/20\r\n\r\n", body)
        self.assertIn(b"Content-Range: bytes 3-4/20\r\n\r\n", body)

    def test_1000_overlapping_ranges_refused(self):
        rng = "bytes=" + ",".join("0-%d" % (1000 + i) for i in range(1000))
        st, _, body = self.get("/static/big.bin", headers={"Range": rng})
        self.assertEqual(st, 416)
        self.assertLess(len(body), 1000)

    # ---- large files: sendfile ----

    def test_big_file_sendfile(self):
        st, h, body = self.get("/static/big.bin")
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "application/octet-stream")
        self.assertEqual(body, self.big)
        a, b = 1000000, 2500000
        st, h, body = self.get("/static/big.bin", headers={"Range": "bytes=%d-%d" % (a, b)})
        self.assertEqual(st, 206)
        self.assertEqual(body, self.big[a:b + 1])
        st, h, body = self.get("/static/big.bin", method="HEAD")
        self.assertEqual((st, body, int(h["content-length"])), (200, b"", len(self.big)))
        st, h, body = self.get("/static/big.bin", version="HTTP/1.0")
        self.assertEqual(body, self.big)

    def test_big_file_pipelined_and_slow_reader(self):
        raw = (b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /static/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=5-9\r\n\r\n"
               b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s = loomtest.connect(self.port, 10)
        try:
            s.sendall(raw)
            time.sleep(0.5)  # let the server hit EAGAIN on a full socket
            data = loomtest.recv_all(s, 15)
        finally:
            s.close()
        rs = loomtest.parse_responses(data)
        self.assertEqual([r[0] for r in rs], [200, 200, 206, 200])
        self.assertEqual(rs[0][2], self.big)
        self.assertEqual(rs[1][2], b"hello, static world\n")
        self.assertEqual(rs[2][2], self.big[5:10])
        self.assertEqual(rs[3][2], self.big)

    def test_client_leaves_mid_file(self):
        for _ in range(5):
            s = loomtest.connect(self.port)
            s.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(1000)
            s.close()
        self.assertEqual(self.get("/static/hello.txt")[0], 200)

    # ---- traversal: reliability.md section 5 ----

    CASES = [
        "/static/../etc/passwd", "/static/a/../../x", "/static/%2e%2e/x", "/static/..%2fx",
        "/static/..%2f..%2foutside%2fsecret.txt", "/static/%2e%2e/outside/secret.txt",
        "/static/%252e%252e/", "/static/%252e%252e/outside/secret.txt",
        "/static/..\\..\\x", "/static/..\\outside\\secret.txt", "/static/a%5c..%5cx",
        "/static/%5c..%5coutside%5csecret.txt", "/static/x%00.html", "/static/%00",
        "/static/%c0%ae%c0%ae/", "/static/%c0%ae%c0%ae/outside/secret.txt",
        "//etc/passwd", "/static//etc/passwd", "/static///outside/secret.txt",
        "http://a/../x", "http://a/static/../../outside/secret.txt",
        "/static/../outside/secret.txt", "/static/./../outside/secret.txt",
        "/static/sub/../../outside/secret.txt", "/static/.%2e/outside/secret.txt",
        "/browse/../outside/secret.txt", "/static/%2fetc%2fpasswd",
        "/static/~/", "/static/...",
    ]
    # Resolved by the core inside the URL space (to "/static/" or "/"): they
    # may be answered by whatever serves that path, never with the secret.
    INSIDE = ["/static/.", "/static/..", "/browse/%2e%2e/", "/static/sub/..", "/browse/list/.."]

    def test_dot_segments_resolved_inside(self):
        for target in self.INSIDE:
            with self.subTest(target=target):
                self.get(target)

    def test_traversal_cases(self):
        for target in self.CASES:
            with self.subTest(target=target):
                st, _, body = self.get(target)
                self.assertIn(st, (400, 403, 404, 301), target)
                if st == 301:
                    self.fail("redirect for %s" % target)

    def test_symlinks_out_of_root(self):
        for target in ("/static/link-file", "/static/link-dir/secret.txt", "/static/link-dir/",
                       "/static/hello.txt.gz", "/static/rel-link.txt", "/browse/link-dir/",
                       "/browse/link-dir"):
            with self.subTest(target=target):
                st, _, _ = self.get(target)
                self.assertIn(st, (403, 404))
        self.assertEqual(self.get("/static/link-file")[0], 403)

    def test_directory_swapped_for_symlink(self):
        """A directory replaced by a symlink out of the root while requests
        run (TOCTOU): no answer ever carries the outside file."""
        swap = os.path.join(self.root, "swap")
        real = os.path.join(self.tmp, "swap-real")
        link = os.path.join(self.tmp, "swap-link")
        os.rename(swap, real)
        os.symlink(self.out, link)
        stop = time.time() + 1.5
        err = []

        def flipper():
            try:
                while time.time() < stop:
                    os.rename(link, swap)      # swap is now the symlink
                    os.rename(swap, link)
                    os.rename(real, swap)      # swap is the real directory
                    os.rename(swap, real)
            except OSError as e:
                err.append(e)

        th = threading.Thread(target=flipper)
        th.start()
        seen = set()
        try:
            while time.time() < stop:
                st, _, body = self.get("/static/swap/f.txt")
                seen.add(st)
                self.assertNotEqual(body, SECRET)
                if st == 200:
                    self.assertEqual(body, b"inside")
        finally:
            th.join()
            os.rename(real, swap)
        self.assertFalse(err)
        self.assertTrue(seen <= {200, 403, 404}, seen)
        os.rename(swap, real)
        os.symlink(self.out, swap)
        try:
            self.assertEqual(self.get("/static/swap/f.txt")[0], 403)
        finally:
            os.unlink(swap)
            os.rename(real, swap)
        self.assertEqual(self.get("/static/swap/f.txt")[2], b"inside")


class StaticConfigTest(unittest.TestCase):
    def test_bad_root_refused_with_reason(self):
        # A plugin that fails init stops the server (on_plugin_error "fail").
        import subprocess
        d = tempfile.mkdtemp(prefix="loom-static-cfg-")
        try:
            cfg = os.path.join(d, "c.json")
            with open(cfg, "w") as f:
                f.write('{"plugins": {"static": {"mounts": [{"prefix": "/s", "root": "/nonexistent/dir"}]}}}')
            p = subprocess.run([loomtest.LOOM_BIN, "serve", "--host", "127.0.0.1", "--port",
                                str(loomtest.free_port()), "--plugins-dir", loomtest.PLUGINS_DIR,
                                "--config", cfg, "--single"],
                               capture_output=True, timeout=30)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(b"mounts[0].root /nonexistent/dir", p.stdout + p.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    loomtest.main()
