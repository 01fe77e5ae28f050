"""The client on the real web, against real peers on 127.0.0.1:

- `loom serve` with a TLS listener: `loom fetch https://localhost:PORT/`
  verifies and prints the body; the https example runs against it;
- nginx with TLS (certificates made by web_peers.py): `loom fetch` verifies
  and prints, TLS sessions are resumed on the next connection, keep-alive
  over TLS, the https example;
- Python `ssl` servers presenting each bad certificate (expired, not yet
  valid, other names, self-signed, unknown CA, missing intermediate), one
  that speaks TLS 1.1 only, one that stalls the handshake, one that resets
  it: each fails with its own message and exit status;
- tinyproxy (Debian's, started here on a loopback port with its config in a
  temp dir, not daemonised): absolute-form http, CONNECT for https, Basic
  auth, 407, a refused tunnel, an unreachable proxy, trust_env and no_proxy;
- aiohttp apps: cookies (a Secure cookie over plain http must not come
  back; the Netscape file), br and zstd bodies and bombs, redirects
  (https -> http refused, credentials dropped across origins).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from loomtest import LOOM_BIN, LOOM_BUILD, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
TLS_API = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(LOOM_BUILD, "tests/client/client_tls_api")
BIN_DIR = os.path.join(LOOM_BUILD, "bin")
ENV = dict(os.environ)
for k in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
    ENV.pop(k, None)
ENV.setdefault("ASAN_OPTIONS", "detect_leaks=1")
ENV.setdefault("LSAN_OPTIONS", "exitcode=23")
ENV.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")


def run(argv, timeout=60, env=None):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env or ENV)
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        if marker in r.stderr:
            raise AssertionError("%s: %s\n%s" % (" ".join(argv[:3]), marker, r.stderr[-4000:]))
    return r


def wait_port(port, proc, what):
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    raise AssertionError("%s did not start" % what)


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    default_type text/plain;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {certs}/good.pem;
        ssl_certificate_key {certs}/good.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:loomtest:1m;
        ssl_session_tickets on;
        root {tmp}/www;
    }}
}}
"""

TINYPROXY_CONF = """
Port {port}
Listen 127.0.0.1
Timeout 30
MaxClients 32
LogLevel Info
LogFile "{tmp}/tinyproxy.log"
PidFile "{tmp}/tinyproxy.pid"
BasicAuth loomuser s3cret
ConnectPort {connect_port}
ConnectPort {connect_port2}
DisableViaHeader Yes
"""


class Web(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="loom-web-")
        cls.certs = os.path.join(cls.tmp, "certs")
        os.mkdir(cls.certs)
        cls.procs = []
        cls.peers = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "web_peers.py"),
                                      cls.certs], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        cls.procs.append(cls.peers)
        deadline = time.time() + 30
        line = ""
        while time.time() < deadline:
            line = cls.peers.stdout.readline()
            if line.startswith("READY") or not line:
                break
        if not line.startswith("READY"):
            cls.tearDownClass()
            raise AssertionError("web_peers.py did not start")
        cls.p = json.loads(line[6:])
        cls.ca = os.path.join(cls.certs, "root.pem")
        # nginx with TLS
        cls.nginx_port = free_port()
        www = os.path.join(cls.tmp, "www")
        os.mkdir(www)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("<h1>nginx over TLS</h1>\n")
        conf = os.path.join(cls.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=cls.tmp, port=cls.nginx_port, certs=cls.certs))
        cls.nginx = subprocess.Popen(["nginx", "-c", conf, "-p", cls.tmp],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.procs.append(cls.nginx)
        wait_port(cls.nginx_port, cls.nginx, "nginx")
        # tinyproxy: tunnels only to nginx and the https app
        cls.proxy_port = free_port()
        conf = os.path.join(cls.tmp, "tinyproxy.conf")
        with open(conf, "w") as f:
            f.write(TINYPROXY_CONF.format(tmp=cls.tmp, port=cls.proxy_port,
                                          connect_port=cls.nginx_port,
                                          connect_port2=cls.p["https"]))
        cls.tinyproxy = subprocess.Popen(["tinyproxy", "-d", "-c", conf],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.procs.append(cls.tinyproxy)
        wait_port(cls.proxy_port, cls.tinyproxy, "tinyproxy")
        # loom serve with a TLS listener (the leaf and its intermediate)
        cls.loom_port = free_port()
        conf = os.path.join(cls.tmp, "loom.json")
        with open(conf, "w") as f:
            json.dump({"listen": ["127.0.0.1:%d:tls" % cls.loom_port],
                       "tls": {"cert": os.path.join(cls.certs, "good.pem"),
                               "key": os.path.join(cls.certs, "good.key")}}, f)
        os.chmod(os.path.join(cls.certs, "good.key"), 0o600)
        cls.loom_log = open(os.path.join(cls.tmp, "loom.log"), "wb")
        cls.loom = subprocess.Popen([LOOM_BIN, "serve", "--single", "--config", conf,
                                     "--plugins-dir", os.path.join(LOOM_BUILD, "plugins")],
                                    stdout=cls.loom_log, stderr=subprocess.STDOUT, env=ENV)
        cls.procs.append(cls.loom)
        wait_port(cls.loom_port, cls.loom, "loom serve (TLS)")

    @classmethod
    def tearDownClass(cls):
        for p in reversed(cls.procs):
            if p.poll() is None:
                if p is cls.peers:
                    p.stdin.close()
                else:
                    p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        if getattr(cls, "loom_log", None):
            cls.loom_log.close()
        cls.peers.stdout.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def fetch(self, *args, timeout=60, env=None):
        return run([LOOM_BIN, "fetch"] + list(args), timeout=timeout, env=env)

    def url(self, which, path="/", host="localhost"):
        scheme = "http" if which == "http" else "https"
        return "%s://%s:%d%s" % (scheme, host, self.p[which], path)

    def nginx_url(self, path="/index.html", host="localhost"):
        return "https://%s:%d%s" % (host, self.nginx_port, path)

    def one_error(self, r, kind, url):
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(kind + ": " + url, lines[0])
        return lines[0]

    # ---- HTTPS ----

    def test_loom_tls_server(self):
        u = "https://localhost:%d/" % self.loom_port
        r = self.fetch("--cacert", self.ca, u)
        self.assertEqual((r.returncode, r.stdout), (0, "HTTP/1.1 200 OK\n\nHello, World!"),
                         r.stderr)
        r = self.fetch("-n", "4", "-c", "1", "-H", "Connection: close", "--cacert", self.ca, u)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("tls: 4 responses, 3 on resumed sessions", r.stdout)
        r = self.fetch(u)  # not trusted without the test CA
        self.assertEqual(r.returncode, 12, r.stderr)

    def test_https_nginx_verifies_and_resumes(self):
        r = self.fetch("-v", "--cacert", self.ca, self.nginx_url())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "HTTP/1.1 200 OK\n\n<h1>nginx over TLS</h1>\n")
        self.assertIn("TLSv1.3, new session", r.stderr)
        # by IP address: the certificate's IP names are checked (v4 and v6)
        for host in ("127.0.0.1",):
            r = self.fetch("--cacert", self.ca, self.nginx_url(host=host))
            self.assertEqual(r.returncode, 0, r.stderr)
        # the CA as a hashed directory
        cadir = os.path.join(self.tmp, "cadir")
        os.makedirs(cadir, exist_ok=True)
        shutil.copy(self.ca, cadir)
        subprocess.run(["openssl", "rehash", cadir], check=True, capture_output=True)
        r = self.fetch("--cacert", cadir, self.nginx_url())
        self.assertEqual(r.returncode, 0, r.stderr)
        # the system store does not know the test CA
        r = self.fetch(self.nginx_url())
        self.assertEqual(r.returncode, 12, r.stderr)
        self.one_error(r, "certificate not trusted", self.nginx_url())
        # a new connection per request (Connection: close): the second one
        # resumes the session the first one was given
        r = self.fetch("-n", "3", "-c", "1", "-H", "Connection: close", "--cacert", self.ca,
                       self.nginx_url())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("tls: 3 responses, 2 on resumed sessions", r.stdout)
        # keep-alive over TLS: many requests, few connections
        r = self.fetch("-n", "500", "-c", "8", "--cacert", self.ca, self.nginx_url(), timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("succeeded: 500", r.stdout)
        # --insecure works and is warned about, every time
        for _ in range(2):
            r = self.fetch("--insecure", self.nginx_url())
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("warning: --insecure", r.stderr)
        # plain HTTP to a TLS port, and TLS to a plain HTTP port
        r = self.fetch(self.nginx_url().replace("https", "http"))
        self.assertEqual(r.returncode, 0)
        self.assertIn("400", r.stdout)
        r = self.fetch("--cacert", self.ca, self.url("http").replace("http:", "https:"))
        self.assertEqual(r.returncode, 17, r.stderr)
        self.assertIn("does not speak TLS", r.stderr)

    def test_c_api(self):
        r = run([TLS_API, self.ca, "https://localhost:%d/" % self.loom_port, self.url("stall"),
                 self.url("expired")])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("ok   cancel during the handshake", r.stdout)

    def test_https_example(self):
        u = "https://localhost:%d/" % self.loom_port
        r = run([os.path.join(BIN_DIR, "client_fetch_https"), u, self.ca])
        self.assertEqual((r.returncode, r.stdout), (0, "Hello, World!\n"), r.stderr)
        self.assertIn("TLSv1.3", r.stderr)
        r = run([os.path.join(BIN_DIR, "client_fetch_https"), self.nginx_url(), self.ca])
        self.assertEqual((r.returncode, r.stdout), (0, "<h1>nginx over TLS</h1>\n\n"), r.stderr)
        r = run([os.path.join(BIN_DIR, "client_fetch_https"), self.url("expired"), self.ca])
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("TLS problem: certificate expired"), r.stderr)

    def test_bad_certificates(self):
        cases = [
            ("expired", 10, "certificate expired or not yet valid", "expired on"),
            ("notyet", 10, "certificate expired or not yet valid", "is not valid before"),
            ("wronghost", 11, "certificate host name mismatch",
             "certificate is for wrong.example, other.example, not for localhost"),
            ("selfsigned", 12, "certificate not trusted", "self-signed certificate"),
            ("unknownca", 12, "certificate not trusted", "unknown issuer: CN = localhost is "
             "issued by CN = some other CA"),
            ("nointermediate", 13, "incomplete certificate chain",
             "did not send the intermediate certificate CN = loom test intermediate CA"),
            ("tls11", 14, "TLS version refused", "no protocol version in common"),
            ("reset", 16, "TLS handshake reset", "reset the connection during the TLS handshake"),
        ]
        for which, rc, kind, detail in cases:
            with self.subTest(which=which):
                u = self.url(which)
                r = self.fetch("--cacert", self.ca, u)
                self.assertEqual(r.returncode, rc, r.stderr)
                self.assertIn(detail, self.one_error(r, kind, u))
        # an IP address the certificate does not name
        u = self.url("wronghost", host="127.0.0.1")
        r = self.fetch("--cacert", self.ca, u)
        self.assertEqual(r.returncode, 11)
        self.assertIn("not for 127.0.0.1", self.one_error(r, "certificate host name mismatch", u))
        # a stalled handshake ends at the connect timeout, without hanging
        u = self.url("stall")
        t0 = time.time()
        r = self.fetch("--connect-timeout", "0.5", "--cacert", self.ca, u)
        self.assertEqual(r.returncode, 15, r.stderr)
        self.one_error(r, "TLS handshake timeout", u)
        self.assertLess(time.time() - t0, 5)
        # settings that cannot be used name the file
        r = self.fetch("--cacert", "/nonexistent/ca.pem", self.nginx_url())
        self.assertEqual(r.returncode, 18)
        self.assertIn("/nonexistent/ca.pem", self.one_error(r, "TLS settings unusable",
                                                            self.nginx_url()))
        r = self.fetch("--cacert", self.ca, "--cert", os.path.join(self.certs, "client.pem"),
                       "--key", os.path.join(self.certs, "good.key"), self.nginx_url())
        self.assertEqual(r.returncode, 18)
        self.assertIn("does not match", r.stderr)
        # a matching client certificate is accepted (nginx does not ask for it)
        r = self.fetch("--cacert", self.ca, "--cert", os.path.join(self.certs, "client.pem"),
                       "--key", os.path.join(self.certs, "client.key"), self.nginx_url())
        self.assertEqual(r.returncode, 0, r.stderr)
        # many at once: each failure is one line naming its URL; the exit
        # status is that of the first URL given, whichever fails first
        urls = [self.url(w) for w in ("expired", "wronghost", "selfsigned")]
        r = self.fetch("--cacert", self.ca, *urls)
        self.assertEqual(r.returncode, 10, r.stdout + r.stderr)
        for u in urls:
            self.assertIn(u, r.stderr)

    # ---- proxies ----

    def test_proxy(self):
        auth = "http://loomuser:s3cret@127.0.0.1:%d" % self.proxy_port
        bare = "http://127.0.0.1:%d" % self.proxy_port
        # http:// in absolute form through the proxy, with Basic auth
        r = self.fetch("--proxy", auth, self.url("http", "/echo"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('"Host": "localhost:%d"' % self.p["http"], r.stdout)
        self.assertNotIn("Proxy-Authorization", r.stdout)  # the proxy took it
        r = self.fetch("--proxy", bare, "--proxy-user", "loomuser:s3cret", self.url("http", "/"))
        self.assertEqual((r.returncode, r.stdout.splitlines()[-1]), (0, "hello over http"))
        # https:// through a CONNECT tunnel, verified end to end
        r = self.fetch("-v", "--proxy", auth, "--cacert", self.ca, self.nginx_url())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("nginx over TLS", r.stdout)
        # 407 without credentials, for http and for CONNECT
        for u in (self.url("http", "/"), self.nginx_url()):
            r = self.fetch("--proxy", bare, "--cacert", self.ca, u)
            self.assertEqual(r.returncode, 21, r.stderr)
            self.assertIn("wants credentials", self.one_error(r, "proxy authentication required", u))
        r = self.fetch("--proxy", bare, "--proxy-user", "loomuser:wrong", "--cacert", self.ca,
                       self.nginx_url())
        self.assertEqual(r.returncode, 21)
        self.assertIn("refused the credentials", r.stderr)
        # a tunnel to a port the proxy does not allow
        u = self.url("expired")
        r = self.fetch("--proxy", auth, "--cacert", self.ca, u)
        self.assertEqual(r.returncode, 22, r.stderr)
        self.assertIn("403", self.one_error(r, "proxy tunnel refused", u))
        # a proxy that is not there
        dead = "http://127.0.0.1:%d" % free_port()
        r = self.fetch("--proxy", dead, self.url("http", "/"))
        self.assertEqual(r.returncode, 20)
        self.assertIn("cannot connect to proxy " + dead, r.stderr)
        r = self.fetch("--proxy", "ftp://x", self.url("http", "/"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("invalid URL", r.stderr)
        # trust_env: https_proxy (with credentials), no_proxy bypasses it
        env = dict(ENV, https_proxy=auth, http_proxy=bare)
        r = self.fetch("--trust-env", "--cacert", self.ca, self.nginx_url(), env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.fetch("--trust-env", self.url("http", "/"), env=env)  # http_proxy: no creds
        self.assertEqual(r.returncode, 21, r.stderr)
        env["no_proxy"] = "example.com,localhost"
        r = self.fetch("--trust-env", self.url("http", "/"), env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        # without --trust-env the environment is ignored
        env = dict(ENV, http_proxy=dead)
        r = self.fetch(self.url("http", "/"), env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.tmp, "tinyproxy.log")) as f:
            log = f.read()
        self.assertIn("CONNECT localhost:%d" % self.nginx_port, log)

    # ---- cookies ----

    def test_cookies(self):
        jar = os.path.join(self.tmp, "cookies.txt")
        set_url = self.url("http", "/cookies/set")
        r = self.fetch("--cookie-jar", jar, set_url)
        t_set = time.time()  # after the jar got the cookies
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(jar) as f:
            text = f.read()
        self.assertTrue(text.startswith("# Netscape HTTP Cookie File"), text)
        self.assertIn("localhost\tFALSE\t/\tFALSE\t0\tplain\tp1\n", text)
        self.assertIn("#HttpOnly_localhost\tFALSE\t/\tFALSE\t0\thttp\th\n", text)
        self.assertNotIn("sec", text)  # a Secure cookie over plain http is not kept
        self.assertNotIn("gone", text)  # expired at once
        self.assertEqual(os.stat(jar).st_mode & 0o777, 0o600)

        def sent(url, *extra):
            r = self.fetch("--cookie-jar", jar, "--cacert", self.ca, *extra, url)
            self.assertEqual(r.returncode, 0, r.stderr)
            return json.loads(r.stdout.split("\n\n", 1)[1]).get("Cookie", "")

        # path matching: the deeper path's cookie first
        self.assertEqual(sent(self.url("http", "/cookies/deep/echo")),
                         "scoped=s1; plain=p1; short=x; http=h")
        self.assertEqual(sent(self.url("http", "/echo")), "plain=p1; short=x; http=h")
        # host-only: not sent to another host name of the same address
        self.assertEqual(sent(self.url("http", "/echo", host="127.0.0.1")), "")
        # Max-Age=5, kept in whole seconds (expires = the second it came
        # in + 5): at least 4 s for the two fetches above on a loaded
        # sanitizer build, and gone 5 s after the fetch that set it ended
        time.sleep(max(0.0, t_set + 5.2 - time.time()))
        self.assertEqual(sent(self.url("http", "/echo")), "plain=p1; http=h")
        # over https the Secure cookie is kept and sent back, never over http
        r = self.fetch("--cookie-jar", jar, "--cacert", self.ca, self.url("https", "/cookies/set"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sec=s2", sent(self.url("https", "/echo")))
        self.assertNotIn("sec=", sent(self.url("http", "/echo")))
        # the caller's Cookie header comes first
        self.assertTrue(sent(self.url("http", "/echo"), "-H", "Cookie: mine=1").startswith(
            "mine=1; "))
        # cookies set by a redirect are sent to where it leads
        r = self.fetch("--cookie-jar", jar, self.url(
            "http", "/redirect?to=/echo&cookie=fromredirect%3D1%3B%20Path%3D%2F"))
        self.assertIn("fromredirect=1", r.stdout)
        # IP hosts: refused unless --unsafe-cookies (aiohttp's unsafe=True)
        jar2 = os.path.join(self.tmp, "ip.txt")
        self.fetch("--cookie-jar", jar2, self.url("http", "/cookies/set", host="127.0.0.1"))
        with open(jar2) as f:
            self.assertNotIn("plain", f.read())
        self.fetch("--unsafe-cookies", "--cookie-jar", jar2,
                   self.url("http", "/cookies/set", host="127.0.0.1"))
        with open(jar2) as f:
            self.assertIn("127.0.0.1\tFALSE\t/\tFALSE\t0\tplain\tp1", f.read())
        # a cookie file curl wrote is read, and curl reads ours
        jar3 = os.path.join(self.tmp, "curl.txt")
        subprocess.run(["curl", "-s", "-c", jar3, set_url], check=True, capture_output=True)
        r = self.fetch("--cookie-jar", jar3, self.url("http", "/echo"))
        self.assertIn("plain=p1", json.loads(r.stdout.split("\n\n", 1)[1]).get("Cookie", ""))
        out = subprocess.run(["curl", "-s", "-b", jar, self.url("http", "/echo")],
                             capture_output=True, text=True, check=True).stdout
        self.assertIn("plain=p1", json.loads(out).get("Cookie", ""))
        # an unreadable jar file is one line and its own exit status
        r = self.fetch("--cookie-jar", self.tmp, self.url("http", "/"))
        self.assertEqual(r.returncode, 25)
        self.assertIn(self.tmp, r.stderr)

    # ---- decoding ----

    def test_decoding(self):
        want = "".join("line %d of the compressed body\n" % i for i in range(2000))
        r = self.fetch(self.url("http", "/echo"))
        self.assertIn('"Accept-Encoding": "gzip, deflate, br, zstd"', r.stdout)
        for enc in ("br", "zstd"):
            with self.subTest(enc=enc):
                r = self.fetch("-q", "-i", self.url("http", "/" + enc))
                self.assertIn("Content-Encoding: %s" % enc, r.stdout)
                r = self.fetch(self.url("http", "/" + enc))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout.split("\n\n", 1)[1], want)
                u = self.url("http", "/%s-bomb" % enc)
                r = self.fetch("--max-body", "1000000", u)
                self.assertEqual(r.returncode, 23, r.stderr)
                self.assertIn("decodes to more than 1000000 bytes",
                              self.one_error(r, "decoded body too large", u))
                self.assertLess(len(r.stdout), 1000)  # the cut body is not printed
        u = self.url("http", "/bad-br")
        r = self.fetch(u)
        self.assertIn("cannot decode the br body", self.one_error(r, "payload error", u))
        # streamed through many requests at once
        r = self.fetch("-n", "50", "-c", "5", self.url("http", "/br"), self.url("http", "/zstd"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    # ---- redirects ----

    def test_redirects(self):
        http_echo = self.url("http", "/echo", host="127.0.0.1")
        u = self.url("https", "/redirect?to=" + http_echo)
        r = self.fetch("--cacert", self.ca, u)
        self.assertEqual(r.returncode, 24, r.stderr)
        self.assertIn("https to http redirect refused", r.stderr)
        r = self.fetch("--allow-downgrade", "--cacert", self.ca, u)
        self.assertEqual(r.returncode, 0, r.stderr)
        creds = ["-H", "Authorization: Bearer t0ken", "-H", "Cookie: c=1",
                 "-H", "Proxy-Authorization: Basic eDp5"]
        # to another origin (another host name): the credentials stay behind
        r = self.fetch(*creds, self.url("http", "/redirect?to=" + self.url("http", "/echo"),
                                        host="127.0.0.1"))
        got = json.loads(r.stdout.split("\n\n", 1)[1])
        self.assertEqual(got["Host"], "localhost:%d" % self.p["http"])
        for h in ("Authorization", "Cookie", "Proxy-Authorization"):
            self.assertNotIn(h, got)
        # within the origin they go along
        r = self.fetch(*creds, self.url("http", "/redirect?to=/echo"))
        got = json.loads(r.stdout.split("\n\n", 1)[1])
        self.assertEqual(got.get("Authorization"), "Bearer t0ken")
        self.assertEqual(got.get("Cookie"), "c=1")
        # http -> https is an upgrade: followed, verified
        r = self.fetch("--cacert", self.ca, self.url("http", "/redirect?to=" + self.nginx_url()))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("nginx over TLS", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
