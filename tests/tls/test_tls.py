"""TLS in the server, against real peers: curl, the Python aiohttp client,
Python's ssl module and `openssl s_client`. Certificates are made here
(tests/lib/tlscerts.py); no private key is committed.

One server with 2 workers carries most cases: a plaintext listener that
redirects to https, a TLS listener with a default certificate, two SNI
certificates and a stapled OCSP response, a listener that requires client
certificates, one where they are optional, and a plain one. Other servers
check start-up errors, reload and deadlines."""
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import aiohttp

import loomtest
import tlscerts

PLUGINS = os.path.join(loomtest.LOOM_BUILD, "test-plugins-tls")


def plugins_dir(d):
    p = os.path.join(d, "plugins")
    os.makedirs(p, exist_ok=True)
    shutil.copy(os.path.join(PLUGINS, "tlsinfo.so"), p)
    shutil.copy(os.path.join(loomtest.PLUGINS_DIR, "hello.so"), p)
    return p


def client_ctx(ca_file=None, cert=None, key=None, version=None, alpn=("http/1.1",)):
    ctx = ssl.create_default_context(cafile=ca_file)
    if not ca_file:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def https_get(port, path, ctx, server_name="localhost", session=None, timeout=5.0):
    """One request on a new TLS connection: (status, body, ssl object info)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s = ctx.wrap_socket(raw, server_hostname=server_name, session=session)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (path, server_name)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        (status, headers, body), = loomtest.parse_responses(data)
        info = {"reused": s.session_reused, "session": s.session, "version": s.version(),
                "cert": s.getpeercert(binary_form=True), "alpn": s.selected_alpn_protocol()}
        return status, headers, body, info
    finally:
        s.close()


def s_client(port, *args, stdin=b"", timeout=15):
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args),
                       input=stdin, capture_output=True, timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def cert_serial(der):
    from cryptography import x509
    return x509.load_der_x509_certificate(der).serial_number


class TLSServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.dir = tempfile.mkdtemp(prefix="loom-tls-")
        cls.ca = tlscerts.CA("loom test CA")
        cls.other_ca = tlscerts.CA("some other CA")
        cls.ca_file = cls.ca.write_ca(d, "ca")
        cls.leaf = cls.ca.issue("localhost", names=["localhost"], ips=["127.0.0.1"],
                                ocsp_url="http://127.0.0.1:9/ocsp")
        cls.cert, cls.key = cls.leaf.write(d, "srv")
        with open(os.path.join(d, "ocsp.der"), "wb") as f:
            f.write(cls.ca.ocsp_response(cls.leaf))
        a = cls.ca.issue("a.example", names=["a.example"]).write(d, "a")
        b = cls.ca.issue("wild.b.example", names=["*.b.example"]).write(d, "b")
        cls.client = cls.ca.issue("loom test client", client=True)
        cls.client_files = cls.client.write(d, "client")
        cls.stranger_files = cls.other_ca.issue("stranger", client=True).write(d, "stranger")
        ports = [loomtest.free_port() for _ in range(5)]
        cls.plain_redirect, cls.tls, cls.mtls, cls.mtls_opt, cls.plain = ports
        cls.access_log = os.path.join(d, "access.log")
        config = {
            "listen": [
                {"host": "127.0.0.1", "port": cls.plain_redirect, "redirect_to_https": True},
                {"host": "127.0.0.1", "port": cls.tls, "tls": True},
                {"host": "127.0.0.1", "port": cls.mtls, "tls": True, "client_ca": cls.ca_file,
                 "verify_client": "require"},
                {"host": "127.0.0.1", "port": cls.mtls_opt, "tls": True,
                 "client_ca": cls.ca_file, "verify_client": "optional"},
                {"host": "127.0.0.1", "port": cls.plain},
            ],
            "tls": {"cert": cls.cert, "key": cls.key, "ocsp_file": os.path.join(d, "ocsp.der"),
                    "certs": [{"names": ["a.example"], "cert": a[0], "key": a[1]},
                              {"names": ["*.b.example"], "cert": b[0], "key": b[1]}]},
            "workers": 2,
            "log_level": "debug",
            "access_log": cls.access_log,
            "access_log_format": "combined_tls",
        }
        cls.srv = loomtest.Server(config=config, port=cls.plain, plugins_dir=plugins_dir(d))
        cls.srv.wait_log("listening on https://127.0.0.1:%d/" % cls.tls)
        cls.ctx = client_ctx(cls.ca_file)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.srv.__exit__()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_curl_and_aiohttp(self):
        p = subprocess.run(["curl", "-sS", "--cacert", self.ca_file,
                            "https://localhost:%d/" % self.tls], capture_output=True, timeout=20)
        self.assertEqual(p.stdout, b"Hello, World!", p.stderr)

        async def fetch():
            async with aiohttp.ClientSession() as s:
                async with s.get("https://localhost:%d/tls" % self.tls, ssl=self.ctx) as r:
                    return r.status, await r.json()
        status, info = asyncio.run(fetch())
        self.assertEqual(status, 200)
        self.assertEqual(info["scheme"], "https")
        self.assertEqual(info["protocol"], "TLSv1.3")
        self.assertEqual(info["cipher"], "TLS_AES_128_GCM_SHA256")
        self.assertEqual(info["sni"], "localhost")
        self.assertEqual(info["alpn"], "http/1.1")
        self.assertEqual(info["verify"], "NONE")
        self.assertIsNone(info["subject"])
        # the plaintext listener: scheme http, no TLS facts
        status, _, body = loomtest.exchange(
            self.plain, b"GET /tls HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")[0]
        plain = json.loads(body)
        self.assertEqual(plain["scheme"], "http")
        self.assertIsNone(plain["protocol"])
        self.assertIsNone(plain["verify"])
        # the access log shows protocol and cipher (and "-" "-" for plaintext)
        want = [r'"GET /tls HTTP/1.1" 200 .* "TLSv1.3" "TLS_AES_128_GCM_SHA256"',
                r'"GET /tls HTTP/1.1" 200 .* "-" "-"\n']
        deadline = time.time() + 3
        while time.time() < deadline:
            with open(self.access_log) as f:
                log = f.read()
            if all(re.search(w, log) for w in want):
                break
            time.sleep(0.1)
        for w in want:
            self.assertRegex(log, w)

    def test_old_versions_refused(self):
        for flag in ("-tls1", "-tls1_1"):
            with self.subTest(flag=flag):
                rc, out = s_client(self.tls, flag, "-cipher", "DEFAULT@SECLEVEL=0")
                self.assertNotEqual(rc, 0, out)
                # the server's refusal, not the client's own
                self.assertIn("alert protocol version", out)
        for flag, want in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            with self.subTest(flag=flag):
                rc, out = s_client(self.tls, flag, "-servername", "localhost", "-ign_eof",
                                   stdin=b"GET / HTTP/1.1\r\nHost: localhost\r\n"
                                         b"Connection: close\r\n\r\n")
                self.assertIn("New, %s, Cipher is" % want, out)
                self.assertIn("Hello, World!", out)

    def test_tls12_cipher_is_ecdhe_aead(self):
        rc, out = s_client(self.tls, "-tls1_2", "-cipher", "AES128-SHA:AES256-SHA")
        self.assertNotEqual(rc, 0, "a non-forward-secret CBC suite was accepted:\n" + out)
        rc, out = s_client(self.tls, "-tls1_2", stdin=b"Q\n")
        self.assertRegex(out, r"Cipher\s+: ECDHE-(ECDSA|RSA)-(AES128-GCM-SHA256|AES256-GCM-SHA384|"
                              r"CHACHA20-POLY1305)")

    def test_sni_picks_the_certificate(self):
        cases = [("a.example", "a.example"), ("x.b.example", "wild.b.example"),
                 ("b.example", "localhost"), ("y.x.b.example", "localhost"),
                 ("unknown.test", "localhost")]
        for name, cn in cases:
            with self.subTest(name=name):
                rc, out = s_client(self.tls, "-servername", name, stdin=b"Q\n")
                self.assertRegex(out, r"subject=CN ?= ?%s\n" % re.escape(cn))
        # no SNI at all: the default
        rc, out = s_client(self.tls, "-noservername", stdin=b"Q\n")
        self.assertRegex(out, r"subject=CN ?= ?localhost\n")

    def test_alpn(self):
        rc, out = s_client(self.tls, "-alpn", "http/1.1", stdin=b"Q\n")
        self.assertIn("ALPN protocol: http/1.1", out)
        rc, out = s_client(self.tls, "-alpn", "spdy/1,foo", stdin=b"Q\n")
        self.assertIn("No ALPN negotiated", out)

    def test_resumption_across_workers(self):
        """A ticket issued by one worker resumes on the other: the keys are the
        master's, shared by every worker."""
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version=version):
                ctx = client_ctx(self.ca_file, version=version)
                status, _, body, info = https_get(self.tls, "/tls", ctx)
                first = json.loads(body)
                self.assertEqual(first["resumed"], "0")
                sess = info["session"]
                pids_resumed = set()
                for _ in range(24):
                    status, _, body, info = https_get(self.tls, "/tls", ctx, session=sess)
                    self.assertEqual(status, 200)
                    self.assertTrue(info["reused"], "not resumed")
                    got = json.loads(body)
                    self.assertEqual(got["resumed"], "1")
                    pids_resumed.add(got["pid"])
                    if len(pids_resumed - {first["pid"]}):
                        break
                self.assertTrue(pids_resumed - {first["pid"]},
                                "no resumption on the other worker: %s" % pids_resumed)
        # and as openssl s_client says it
        sess = os.path.join(self.dir, "sess.pem")
        req = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        s_client(self.tls, "-sess_out", sess, "-ign_eof", stdin=req)
        for _ in range(3):
            rc, out = s_client(self.tls, "-sess_in", sess, "-ign_eof", stdin=req)
            self.assertIn("Reused, TLSv1.3", out)

    def test_ocsp_stapled(self):
        rc, out = s_client(self.tls, "-status", "-servername", "localhost", stdin=b"Q\n")
        self.assertIn("OCSP Response Status: successful", out)
        self.assertIn("Cert Status: good", out)
        # the SNI certificate has no responder: nothing stapled
        rc, out = s_client(self.tls, "-status", "-servername", "a.example", stdin=b"Q\n")
        self.assertIn("OCSP response: no response sent", out)

    def test_mtls_require(self):
        ctx = client_ctx(self.ca_file, *self.client_files)
        status, _, body, _ = https_get(self.mtls, "/tls", ctx)
        info = json.loads(body)
        self.assertEqual(status, 200)
        self.assertEqual(info["verify"], "SUCCESS")
        self.assertEqual(info["subject"], "CN=loom test client")
        self.assertEqual(info["fingerprint"], self.client.fingerprint())
        for files in (None, self.stranger_files):
            with self.subTest(client=files and "other CA"):
                ctx = client_ctx(self.ca_file, *(files or ()))
                with self.assertRaises((ssl.SSLError, ConnectionError, ValueError)):
                    https_get(self.mtls, "/tls", ctx)
        rc, out = s_client(self.mtls, "-ign_eof", stdin=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn("alert certificate required", out)
        self.assertNotIn("Hello, World!", out)

    def test_mtls_optional(self):
        status, _, body, _ = https_get(self.mtls_opt, "/tls", client_ctx(self.ca_file))
        self.assertEqual((status, json.loads(body)["verify"]), (200, "NONE"))
        ctx = client_ctx(self.ca_file, *self.client_files)
        status, _, body, _ = https_get(self.mtls_opt, "/tls", ctx)
        info = json.loads(body)
        self.assertEqual((status, info["verify"], info["subject"]),
                         (200, "SUCCESS", "CN=loom test client"))
        with self.assertRaises((ssl.SSLError, ConnectionError, ValueError)):
            https_get(self.mtls_opt, "/tls", client_ctx(self.ca_file, *self.stranger_files))

    def test_session_of_one_listener_does_not_resume_on_another(self):
        ctx = client_ctx(self.ca_file, *self.client_files)
        _, _, _, info = https_get(self.tls, "/tls", ctx)
        status, _, body, info2 = https_get(self.mtls, "/tls", ctx, session=info["session"])
        self.assertEqual(status, 200)
        self.assertFalse(info2["reused"])
        self.assertEqual(json.loads(body)["verify"], "SUCCESS")

    def test_redirect_to_https(self):
        (status, headers, body), = loomtest.exchange(
            self.plain_redirect, b"GET /a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\n"
                                 b"Connection: close\r\n\r\n")
        self.assertEqual(status, 308)
        self.assertEqual(headers["location"], "https://example.com:%d/a/b?c=d" % self.tls)
        (status, headers, _), = loomtest.exchange(
            self.plain_redirect, b"GET / HTTP/1.0\r\n\r\n")
        self.assertEqual(status, 400)

    def test_plaintext_to_tls_port(self):
        responses = loomtest.exchange(self.tls, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(responses[0][0], 400)
        self.assertIn(b"plain HTTP request was sent to HTTPS port", responses[0][2])
        s = loomtest.connect(self.tls)
        s.sendall(b"\x00\x01garbage")
        self.assertEqual(loomtest.recv_all(s, 3), b"")
        s.close()

    def test_bad_handshakes_cost_nothing(self):
        """Truncated ClientHellos, garbage after a good header, clients that
        vanish mid-handshake: the server closes them and serves on."""
        hello = bytes.fromhex("16030100f0010000ec0303") + os.urandom(32)
        cases = [hello[:5], hello[:40], b"\x16\x03\x01\xff\xff" + os.urandom(300),
                 b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", os.urandom(2000)]
        socks = []
        for raw in cases:
            s = loomtest.connect(self.tls)
            s.sendall(raw)
            socks.append(s)
        for s in socks[:2]:  # these vanish without reading
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        for s in socks[2:]:
            loomtest.recv_all(s, 2)
            s.close()
        status, _, body, _ = https_get(self.tls, "/", self.ctx)
        self.assertEqual((status, body), (200, b"Hello, World!"))
        self.assertNotIn("AddressSanitizer", self.srv.log())


class TLSStartup(unittest.TestCase):
    """Every problem with the certificates stops start-up with one line that
    names the file and the reason; near expiry and loose key files warn."""

    @classmethod
    def setUpClass(cls):
        cls.dir = d = tempfile.mkdtemp(prefix="loom-tls-start-")
        ca = tlscerts.CA("loom test CA")
        now = tlscerts.now()
        cls.good = ca.issue("localhost", names=["localhost"]).write(d, "good")
        cls.other = ca.issue("other", names=["other"]).write(d, "other")
        cls.expired = ca.issue("localhost", start=now - 40 * tlscerts.DAY,
                               end=now - tlscerts.DAY).write(d, "expired")
        cls.notyet = ca.issue("localhost", start=now + 5 * tlscerts.DAY,
                              end=now + 40 * tlscerts.DAY).write(d, "notyet")
        cls.soon = ca.issue("localhost", days=10).write(d, "soon")
        cls.loose = ca.issue("localhost").write(d, "loose", key_mode=0o644)
        cls.garbage = os.path.join(d, "garbage.pem")
        with open(cls.garbage, "w") as f:
            f.write("this is not a certificate\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def start(self, tls, extra=None):
        port = loomtest.free_port()
        cfg = {"listen": [{"host": "127.0.0.1", "port": port, "tls": True}], "tls": tls}
        cfg.update(extra or {})
        path = os.path.join(self.dir, "loom.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        p = subprocess.Popen([loomtest.LOOM_BIN, "serve", "--config", path, "--single"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return p, port

    def refused(self, tls, extra=None):
        p, _ = self.start(tls, extra)
        out = p.communicate(timeout=20)[0].decode()
        self.assertNotEqual(p.returncode, 0, out)
        lines = out.strip().splitlines()
        self.assertEqual(len(lines), 1, out)
        self.assertNotIn("listening", out)
        return lines[0]

    def test_refusals(self):
        g, o = self.good, self.other
        cases = [
            ({"cert": "/nonexistent/x.pem", "key": g[1]}, r"/nonexistent/x\.pem: No such file"),
            ({"cert": g[0], "key": o[1]}, r"key .*other\.key does not match the certificate in .*good\.pem"),
            ({"cert": self.expired[0], "key": self.expired[1]}, r"expired\.pem expired on"),
            ({"cert": self.notyet[0], "key": self.notyet[1]}, r"notyet\.pem is not valid before"),
            ({"cert": self.garbage, "key": g[1]}, r"garbage\.pem: .*(no start line|PEM)"),
            ({"cert": g[0], "key": self.garbage}, r"key .*garbage\.pem"),
            ({"cert": g[0]}, r"'cert' and 'key' go together"),
            ({"cert": g[0], "key": g[1], "protocols": ["TLSv1.1"]}, r"tls\.protocols"),
            ({"cert": g[0], "key": g[1], "ciphers": "NOPE"}, r"tls\.ciphers"),
            ({"cert": g[0], "key": g[1], "chiphers": "x"}, r"unknown key 'chiphers'"),
            ({"cert": g[0], "key": g[1],
              "certs": [{"names": ["a"], "cert": self.expired[0], "key": self.expired[1]}]},
             r"expired\.pem expired"),
            ({"cert": g[0], "key": g[1], "certs": [{"names": ["*a.example"], "cert": g[0],
                                                     "key": g[1]}]}, r"\*a\.example"),
        ]
        for tls, want in cases:
            with self.subTest(want=want):
                self.assertRegex(self.refused(tls), want)
        line = self.refused({"cert": g[0], "key": g[1]},
                            {"listen": [{"host": "127.0.0.1", "port": 1, "tls": True,
                                         "client_ca": self.garbage,
                                         "verify_client": "require"}]})
        self.assertRegex(line, r"client_ca .*garbage\.pem")

    def test_warnings(self):
        for files, want in ((self.soon, r"soon\.pem expires on .* \(within 14 days\)"),
                            (self.loose, r"loose\.key is readable by other users \(mode 0644\)")):
            with self.subTest(want=want):
                p, port = self.start({"cert": files[0], "key": files[1]})
                try:
                    deadline = time.time() + 10
                    while time.time() < deadline:
                        try:
                            socket.create_connection(("127.0.0.1", port), 0.5).close()
                            break
                        except OSError:
                            time.sleep(0.05)
                finally:
                    p.send_signal(signal.SIGTERM)
                    out = p.communicate(timeout=20)[0].decode()
                self.assertRegex(out, r"\[warn\].*" + want)
                self.assertEqual(p.returncode, 0, out)


class DevCert(unittest.TestCase):
    def test_dev_cert_to_curl(self):
        """The README's first HTTPS steps: loom dev-cert, loom serve with it,
        curl https://localhost with --cacert."""
        d = tempfile.mkdtemp(prefix="loom-devcert-")
        try:
            out = subprocess.run([loomtest.LOOM_BIN, "dev-cert", d], capture_output=True,
                                 timeout=20)
            self.assertEqual(out.returncode, 0, out.stderr)
            cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
            self.assertIn(b"curl --cacert " + cert.encode(), out.stdout)
            again = subprocess.run([loomtest.LOOM_BIN, "dev-cert", d], capture_output=True,
                                   timeout=20)
            self.assertEqual(again.returncode, 1)
            self.assertEqual(again.stderr.decode().count("\n"), 1, again.stderr)
            self.assertIn(b"--force", again.stderr)
            port = loomtest.free_port()
            with loomtest.Server(listen=["127.0.0.1:%d:tls" % port],
                                 args=["--tls-cert", cert, "--tls-key", key]) as srv:
                for host in ("localhost", "127.0.0.1"):
                    p = subprocess.run(["curl", "-sS", "--cacert", cert,
                                        "https://%s:%d/" % (host, port)],
                                       capture_output=True, timeout=20)
                    self.assertEqual(p.stdout, b"Hello, World!", p.stderr)
                self.assertEqual(srv.stop(), 0)
        finally:
            shutil.rmtree(d, ignore_errors=True)


class TLSReloadAndDeadlines(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="loom-tls-reload-")
        self.ca = tlscerts.CA("loom test CA")
        self.ca_file = self.ca.write_ca(self.dir, "ca")
        self.cert, self.key = self.ca.issue("localhost", names=["localhost"]).write(self.dir, "srv")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def server(self, **extra):
        port, plain = loomtest.free_port(), loomtest.free_port()
        cfg = {"listen": [{"host": "127.0.0.1", "port": plain},
                          {"host": "127.0.0.1", "port": port, "tls": True}],
               "tls": {"cert": self.cert, "key": self.key}, "workers": 2, "log_level": "debug"}
        cfg.update(extra)
        srv = loomtest.Server(config=cfg, port=plain, plugins_dir=plugins_dir(self.dir))
        srv.wait_log("listening on https")
        return srv, port

    def serial_now(self, port):
        return cert_serial(https_get(port, "/", client_ctx(self.ca_file))[3]["cert"])

    def test_reload_under_load_loses_nothing(self):
        srv, port = self.server()
        with srv:
            ctx = client_ctx(self.ca_file)
            stats = {"ok": 0, "failed": [], "serials": set()}
            stop = time.time() + 4.0

            async def worker(i):
                while time.time() < stop:
                    try:
                        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                             server_hostname="localhost")
                        der = w.get_extra_info("ssl_object").getpeercert(binary_form=True)
                        stats["serials"].add(cert_serial(der))
                        for _ in range(5 if i % 2 else 1):  # keep-alive and new connections
                            w.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
                            n = int(re.search(rb"Content-Length: (\d+)", head).group(1))
                            await r.readexactly(n)
                            stats["ok"] += 1
                        w.close()
                    except Exception as e:  # noqa: BLE001 - every failure counts
                        stats["failed"].append(repr(e))

            def load():
                async def main():
                    await asyncio.gather(*[worker(i) for i in range(64)])
                asyncio.run(main())

            old = self.serial_now(port)
            t = threading.Thread(target=load)
            t.start()
            time.sleep(1.0)
            new = self.ca.issue("localhost", names=["localhost"])
            new.write(self.dir, "srv")  # a rename over each file, as certbot or install do
            deadline = time.time() + 5
            while time.time() < deadline and srv.log().count("TLS certificates reloaded") < 2:
                time.sleep(0.05)
            t.join(30)
            log = srv.log()
            self.assertEqual(log.count("TLS certificates reloaded (a certificate file changed)"),
                             2, log)
            self.assertEqual(stats["failed"], [])
            self.assertGreater(stats["ok"], 200)
            self.assertEqual(stats["serials"], {old, new.cert.serial_number})
            for _ in range(4):
                self.assertEqual(self.serial_now(port), new.cert.serial_number)
            # a broken new key is refused; the certificate that works keeps serving
            with open(self.key + ".tmp", "w") as f:
                f.write("garbage")
            os.rename(self.key + ".tmp", self.key)
            deadline = time.time() + 5
            while time.time() < deadline and srv.log().count("TLS reload") < 2:
                time.sleep(0.05)
            log = srv.log()
            self.assertRegex(log, r"TLS reload \(a certificate file changed\) failed: tls: key "
                                  r".*srv\.key: .*; the previous certificates keep serving")
            self.assertEqual(self.serial_now(port), new.cert.serial_number)
            # SIGHUP reloads too
            newer = self.ca.issue("localhost", names=["localhost"])
            newer.write(self.dir, "srv")
            time.sleep(0.6)
            srv.signal(signal.SIGHUP)
            deadline = time.time() + 5
            while time.time() < deadline and srv.log().count("TLS certificates reloaded (SIGHUP)") < 2:
                time.sleep(0.05)
            self.assertEqual(self.serial_now(port), newer.cert.serial_number)
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_deadlines(self):
        srv, port = self.server(handshake_timeout=1, header_timeout=1.5)
        with srv:
            t0 = time.time()
            silent = loomtest.connect(port)
            partial = loomtest.connect(port)
            partial.sendall(bytes.fromhex("160301"))
            plain_silent = loomtest.connect(srv.port)
            # a TLS client that completes the handshake and sends nothing:
            # its header_timeout starts when the handshake is done (which
            # can take a while under ASan on a busy machine)
            raw = socket.create_connection(("127.0.0.1", port), timeout=5)
            idle_tls = client_ctx(self.ca_file).wrap_socket(raw, server_hostname="localhost")
            t_tls = time.time()
            for s, start, lo, hi in ((silent, t0, 0.9, 2.2), (partial, t0, 0.9, 2.2),
                                     (plain_silent, t0, 1.4, 2.7), (idle_tls, t_tls, 1.4, 2.7)):
                s.settimeout(5)
                try:
                    data = s.recv(100)
                except (ConnectionResetError, ssl.SSLError):
                    data = b""
                took = time.time() - start
                self.assertEqual(data, b"")
                self.assertGreater(took, lo)
                self.assertLess(took, hi)
                s.close()
            self.assertRegex(srv.log(), r"handshake_timeout")
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    loomtest.main()
