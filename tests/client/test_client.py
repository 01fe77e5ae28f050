"""The HTTP client against servers no one here wrote, and against loom serve.

Starts: the aiohttp fixture (fixture_server.py, plus its raw asyncio server),
nginx (Debian's, own config in a temp dir, loopback, daemon off) and
`loom serve`. Then drives the C API test driver (argv[1]), `loom fetch` and the
examples, checking every error kind's message names the URL. Everything on
127.0.0.1, bounded in time, stopped at the end.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from loomtest import LOOM_BIN, LOOM_BUILD, Server, free_port, terminate

HERE = os.path.dirname(os.path.abspath(__file__))
API_BIN = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(LOOM_BUILD, "tests/client/client_api")
BIN_DIR = os.path.join(LOOM_BUILD, "bin")
ENV = dict(os.environ)
ENV.setdefault("ASAN_OPTIONS", "detect_leaks=1")
ENV.setdefault("LSAN_OPTIONS", "exitcode=23")
ENV.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")


def run(argv, timeout=60):
    """Runs a program; a sanitizer report (leak, overflow, UB) fails the test."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=ENV)
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        if marker in r.stderr:
            raise AssertionError("%s: %s\n%s" % (" ".join(argv[:3]), marker, r.stderr[-4000:]))
    return r


class Fixture:
    """fixture_server.py: aiohttp on one port, raw asyncio on another."""

    def __init__(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "fixture_server.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        deadline = time.time() + 20
        line = ""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY") or not line:
                break
        if not line.startswith("READY"):
            self.proc.kill()
            raise AssertionError("fixture server did not start")
        _, http, raw = line.split()
        self.http, self.raw = int(http), int(raw)

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
            self.proc.wait(5)


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    default_type text/plain;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        gzip on;
        gzip_min_length 0;
        gzip_types text/plain application/json;
        location = /moved {{ return 301 /index.html; }}
        location = /gone {{ return 404; }}
        location = /broken {{ return 500; }}
    }}
}}
"""


class Nginx:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="loom-nginx-")
        self.port = free_port()
        os.mkdir(os.path.join(self.tmp, "www"))
        with open(os.path.join(self.tmp, "www", "index.html"), "w") as f:
            f.write("<h1>nginx says hello</h1>\n")
        with open(os.path.join(self.tmp, "www", "big.txt"), "w") as f:
            f.write("".join("nginx line %d\n" % i for i in range(20000)))
        conf = os.path.join(self.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=self.tmp, port=self.port))
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.tmp],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import socket
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise AssertionError("nginx did not start")

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        terminate(self.proc)
        shutil.rmtree(self.tmp, ignore_errors=True)


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fx = Fixture()
        cls.nginx = Nginx()
        cls.loom = Server()

    @classmethod
    def tearDownClass(cls):
        cls.fx.stop()
        cls.nginx.stop()
        cls.loom.stop()
        cls.loom.__exit__()

    def fx_url(self, path):
        return "http://127.0.0.1:%d%s" % (self.fx.http, path)

    def raw_url(self, path):
        return "http://127.0.0.1:%d%s" % (self.fx.raw, path)

    def fetch(self, *args, timeout=60):
        return run([LOOM_BIN, "fetch"] + list(args), timeout=timeout)

    # ---- the C API ----

    def test_c_api(self):
        r = run([API_BIN, str(self.fx.http), str(self.fx.raw), str(self.loom.port)], timeout=120)
        sys.stdout.write(r.stdout)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("0 failed", r.stdout)

    # ---- loom fetch ----

    def test_fetch_help(self):
        r = self.fetch("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: loom fetch", r.stdout)
        for opt in ("-X METHOD", "-H ", "--json", "--timeout", "-c N", "-i"):
            self.assertIn(opt, r.stdout)

    def test_fetch_loom_serve(self):
        r = self.fetch(self.loom.url("/"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("HTTP/1.1 200 OK\n"), r.stdout)
        self.assertIn("Hello, World!", r.stdout)
        self.assertNotIn("Content-Length", r.stdout)
        r = self.fetch("-i", self.loom.url("/"))
        self.assertIn("Content-Length: 13\n", r.stdout)
        self.assertTrue(r.stdout.endswith("\n\nHello, World!"), r.stdout)

    def test_fetch_bad_url(self):
        for bad in ("htp://x", "http://127.0.0.1:0/", "ftp://127.0.0.1/"):
            r = self.fetch(bad)
            self.assertEqual(r.returncode, 1)
            lines = r.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertIn("invalid URL", lines[0])
            self.assertIn(bad, lines[0])

    def test_fetch_error_kinds(self):
        cases = [
            (["http://127.0.0.1:1/"], "connection refused"),
            (["http://" + "b" * 70 + ".invalid/"], "DNS failure"),
            ([self.raw_url("/drop")], "server disconnected"),
            ([self.raw_url("/truncated")], "payload error"),
            ([self.raw_url("/badchunk")], "payload error"),
            ([self.raw_url("/garbage")], "bad response"),
            (["--timeout", "0.3", self.fx_url("/slow-headers?d=2")], "total timeout"),
            (["--read-timeout", "0.3", self.fx_url("/slow-body?d=2")], "read timeout"),
            ([self.fx_url("/redirect/11")], "too many redirects"),
            (["-f", self.fx_url("/status/404")], "status error"),
            (["--max-body", "100000", self.fx_url("/bomb")], "decoded body too large"),
        ]
        for args, kind in cases:
            with self.subTest(kind=kind, args=args):
                r = self.fetch(*args)
                # each new class has its own exit status (loom fetch --help)
                want = 23 if kind == "decoded body too large" else 1
                self.assertEqual(r.returncode, want, r.stdout + r.stderr)
                self.assertIn(kind + ": " + args[-1], r.stderr)

    def test_fetch_methods_json_headers(self):
        r = self.fetch("--json", '{"a": 1}', self.fx_url("/echo"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('"method": "POST"', r.stdout)
        self.assertIn('"json": {"a": 1}', r.stdout)
        r = self.fetch("-X", "DELETE", self.fx_url("/echo"))
        self.assertIn('"method": "DELETE"', r.stdout)
        r = self.fetch("-H", "X-Test: yes", self.fx_url("/headers"))
        self.assertIn('"X-Test": "yes"', r.stdout)
        r = self.fetch(self.fx_url("/gzip"))
        self.assertIn("line 1999 of the compressed body", r.stdout)
        r = self.fetch(self.fx_url("/chunked"))
        self.assertIn("chunk0;chunk1;chunk2;chunk3;chunk4;", r.stdout)
        r = self.fetch(self.fx_url("/status/500"))
        self.assertEqual(r.returncode, 0)  # a status is not a failure without -f
        self.assertTrue(r.stdout.startswith("HTTP/1.1 500 Internal Server Error"))

    def test_fetch_many(self):
        urls = [self.loom.url("/"), self.nginx.url("/"), self.fx_url("/text")]
        r = self.fetch("-n", "600", "-c", "32", *urls, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("requests: 600  succeeded: 600  failed: 0", r.stdout)
        self.assertIn("requests/s:", r.stdout)
        self.assertIn("p50", r.stdout)
        self.assertIn("p99", r.stdout)
        self.assertNotIn("[", r.stderr)  # no progress bar when stderr is not a terminal
        r = self.fetch("-c", "4", self.nginx.url("/"), "http://127.0.0.1:1/", self.raw_url("/drop"),
                       "bad://url")
        self.assertEqual(r.returncode, 1)
        self.assertIn("succeeded: 1  failed: 3", r.stdout)
        self.assertIn("connection refused=1", r.stdout)
        self.assertIn("server disconnected=1", r.stdout)
        self.assertIn("invalid URL=1", r.stdout)

    def test_fetch_progress_on_terminal(self):
        import pty
        master, slave = pty.openpty()
        p = subprocess.Popen([LOOM_BIN, "fetch", "-n", "3000", "-c", "8", self.loom.url("/")],
                             stdout=subprocess.PIPE, stderr=slave, env=ENV)
        os.close(slave)
        out, _ = p.communicate(timeout=60)
        data = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        os.close(master)
        self.assertEqual(p.returncode, 0, data)
        self.assertIn(b"] 3000/3000", data)
        self.assertIn(b"[########", data)
        self.assertIn(b"succeeded: 3000", out)

    # ---- nginx ----

    def test_nginx(self):
        r = self.fetch("-i", self.nginx.url("/"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Server: nginx", r.stdout)
        self.assertIn("<h1>nginx says hello</h1>", r.stdout)
        # gzip'd and chunked by nginx
        r = self.fetch("-i", self.nginx.url("/big.txt"))
        self.assertIn("Content-Encoding: gzip", r.stdout)
        self.assertIn("Transfer-Encoding: chunked", r.stdout)
        self.assertIn("nginx line 19999\n", r.stdout)
        # redirect followed
        r = self.fetch(self.nginx.url("/moved"))
        self.assertIn("<h1>nginx says hello</h1>", r.stdout)
        r = self.fetch("-f", self.nginx.url("/gone"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("status error: " + self.nginx.url("/gone") + " (404 Not Found)", r.stderr)
        r = self.fetch("-X", "HEAD", "-i", self.nginx.url("/"))
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("HTTP/1.1 200 OK\n"), r.stdout)
        self.assertTrue(r.stdout.endswith("\n\n"), r.stdout)
        self.assertNotIn("nginx says hello", r.stdout)
        # keep-alive: many requests over few connections
        r = self.fetch("-n", "2000", "-c", "8", self.nginx.url("/"), timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("succeeded: 2000", r.stdout)

    # ---- the examples ----

    def example(self, name, *args, timeout=60):
        return run([os.path.join(BIN_DIR, "client_" + name)] + list(args), timeout=timeout)

    def test_examples(self):
        r = self.example("fetch", self.loom.url("/"))
        self.assertEqual((r.returncode, r.stdout), (0, "Hello, World!\n"), r.stderr)
        r = self.example("post_data", self.fx_url("/echo"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('"json": {"key1": "value1", "key2": "value2"}', r.stdout)
        r = self.example("fetch_all", self.loom.url("/"), self.nginx.url("/"), self.fx_url("/text"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "Hello, World!\n<h1>nginx says hello</h1>\n\nHello from aiohttp\n")
        r = self.example("fetch_with_timeout", self.fx_url("/slow-headers?d=3"), "0.5")
        self.assertEqual(r.stdout, "The request timed out.\n")
        r = self.example("fetch_with_timeout", self.fx_url("/text"))
        self.assertEqual((r.returncode, r.stdout), (0, "Hello from aiohttp\n"))
        r = self.example("error_handling", self.fx_url("/status/404"))
        self.assertEqual(r.stdout, "HTTP error occurred: 404 - Not Found\n")
        r = self.example("error_handling", self.nginx.url("/gone"))
        self.assertEqual(r.stdout, "HTTP error occurred: 404 - Not Found\n")
        r = self.example("error_handling", "http://127.0.0.1:1/")
        self.assertEqual(r.stdout, "Network connection error.\n")
        r = self.example("error_handling", self.raw_url("/truncated"))
        self.assertTrue(r.stdout.startswith("An unexpected error occurred: payload error: "), r.stdout)
        r = self.example("error_handling", self.loom.url("/"))
        self.assertEqual((r.returncode, r.stdout), (0, "Hello, World!\n"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
