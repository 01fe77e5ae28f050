"""Helpers for the HTTP/2 tests: a test certificate, a loom server with a TLS
listener (ALPN h2), an h2c listener and a plain HTTP/1.1 one, and a raw
HTTP/2 client that writes frames byte by byte (HPACK from python3-h2's hpack)
so that the defence cases can send what no well-behaved client library
would.
"""
import json
import os
import socket
import ssl
import struct
import subprocess
import tempfile
import time

import hpack

import loomtest

H2TEST_PLUGINS = os.path.join(loomtest.LOOM_BUILD, "test-plugins-h2")

# Frame types and flags (RFC 9113 §6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED = 0x1, 0x1, 0x4, 0x8
# Error codes.
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, \
    ENHANCE_YOUR_CALM = range(12)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def make_cert(d):
    """A self-signed certificate for localhost and 127.0.0.1 in d: (cert, key)."""
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class H2Server(loomtest.Server):
    """`loom serve` with four listeners: .tls_port (TLS, h2 by ALPN),
    .h2c_port (plaintext, h2c with prior knowledge), .h1tls_port (TLS with
    "http2": false) and .port (plain HTTP/1.1, which loomtest's helpers and
    wait_ready use)."""

    def __init__(self, plugins_dir=None, config=None, args=(), env=None):
        self.tmp = tempfile.mkdtemp(prefix="loomh2-")
        self.cert, self.key = make_cert(self.tmp)
        self.port, self.tls_port, self.h2c_port, self.h1tls_port = (loomtest.free_port()
                                                                    for _ in range(4))
        cfg = dict(config or {})
        cfg["listen"] = [{"host": "127.0.0.1", "port": self.port},
                         {"host": "127.0.0.1", "port": self.tls_port, "tls": True},
                         {"host": "127.0.0.1", "port": self.h2c_port, "h2c": True},
                         {"host": "127.0.0.1", "port": self.h1tls_port, "tls": True,
                          "http2": False}]
        cfg["tls"] = {"cert": self.cert, "key": self.key}
        cfg.setdefault("access_log", os.path.join(self.tmp, "access.log"))
        self.access_log = cfg["access_log"]
        cpath = os.path.join(self.tmp, "loom.json")
        with open(cpath, "w") as f:
            json.dump(cfg, f)
        argv = [loomtest.LOOM_BIN, "serve", "--config", cpath]
        if plugins_dir is not None:
            argv += ["--plugins-dir", plugins_dir]
        if os.environ.get("LOOM_TEST_IO"):
            argv += ["--set", "io=" + os.environ["LOOM_TEST_IO"]]
        argv += list(args)
        self.argv = argv
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        if env:
            e.update(env)
        self.logpath = os.path.join(self.tmp, "server.log")
        self.logf = open(self.logpath, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT, env=e)
        self.wait_ready()

    def access(self, timeout=3.0):
        """The access log's lines (it is flushed a few times a second)."""
        deadline = time.time() + timeout
        lines = []
        while time.time() < deadline:
            try:
                with open(self.access_log) as f:
                    lines = f.read().splitlines()
            except OSError:
                lines = []
            if lines:
                break
            time.sleep(0.05)
        return lines

    def h2url(self, path="/", tls=True):
        if tls:
            return "https://127.0.0.1:%d%s" % (self.tls_port, path)
        return "http://127.0.0.1:%d%s" % (self.h2c_port, path)


def curl(*args, timeout=30):
    """Runs curl; returns (exit status, stdout bytes, stderr text)."""
    p = subprocess.run(["curl", "-sS", "--max-time", "20"] + list(args), capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid & 0x7fffffff) + payload


def settings(**kv):
    ids = {"header_table_size": 1, "enable_push": 2, "max_concurrent_streams": 3,
           "initial_window_size": 4, "max_frame_size": 5, "max_header_list_size": 6}
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", ids[k], v) for k, v in kv.items()))


class Raw:
    """A raw HTTP/2 client connection: frames go out exactly as built, and
    every frame the server sends is parsed and kept (self.frames), with
    header blocks decoded."""

    def __init__(self, port, tls=False, rcvbuf=None, timeout=10.0, preface=True, **settings_kv):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            s = ctx.wrap_socket(s, server_hostname="localhost")
            assert s.selected_alpn_protocol() == "h2", s.selected_alpn_protocol()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_allowed_table_size = 1 << 16
        self.buf = b""
        self.frames = []  # (type, flags, sid, payload or decoded headers)
        self.closed = False
        self.next_id = 1
        self.authority = "127.0.0.1:%d" % port
        self.scheme = "https" if tls else "http"
        if preface:
            self.send(PREFACE + settings(**settings_kv))

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def block(self, path, method="GET", headers=(), pseudo=None):
        """An HPACK-encoded request header block."""
        hs = pseudo if pseudo is not None else [(":method", method), (":scheme", self.scheme),
                                                (":authority", self.authority), (":path", path)]
        return self.enc.encode(list(hs) + list(headers))

    def request(self, path, method="GET", headers=(), body=None, end=True, sid=None):
        """Sends one request; returns its stream id."""
        if sid is None:
            sid = self.next_id
            self.next_id += 2
        flags = END_HEADERS | (END_STREAM if end and body is None else 0)
        out = frame(HEADERS, flags, sid, self.block(path, method, headers))
        if body is not None:
            out += frame(DATA, END_STREAM if end else 0, sid, body)
        self.send(out)
        return sid

    def _parse(self):
        while len(self.buf) >= 9:
            n = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + n:
                return
            t, fl = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7fffffff
            p = self.buf[9:9 + n]
            self.buf = self.buf[9 + n:]
            if t in (HEADERS, CONTINUATION):
                if t == HEADERS and fl & PADDED:
                    p = p[1:len(p) - p[0]]
                p = self.dec.decode(p, raw=False)
            self.frames.append((t, fl, sid, p))

    def read(self, until, timeout=10.0):
        """Reads frames until until(self) is true, the peer closes, or timeout;
        returns whether the condition held."""
        deadline = time.time() + timeout
        while not until(self):
            if self.closed or time.time() > deadline:
                return until(self)
            self.sock.settimeout(max(0.05, min(1.0, deadline - time.time())))
            try:
                b = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            except (ConnectionResetError, ssl.SSLError, OSError):
                self.closed = True
                continue
            if not b:
                self.closed = True
                continue
            self.buf += b
            self._parse()
        return True

    def of(self, ftype, sid=None):
        return [f for f in self.frames if f[0] == ftype and (sid is None or f[2] == sid)]

    def goaway(self):
        """(last stream id, error code) of the first GOAWAY, or None."""
        g = self.of(GOAWAY)
        if not g:
            return None
        p = g[0][3]
        return int.from_bytes(p[:4], "big") & 0x7fffffff, int.from_bytes(p[4:8], "big")

    def rst(self, sid):
        r = self.of(RST_STREAM, sid)
        return int.from_bytes(r[0][3][:4], "big") if r else None

    def ended(self, sid):
        return any(f[2] == sid and f[0] in (HEADERS, DATA) and f[1] & END_STREAM
                   for f in self.frames) or self.rst(sid) is not None

    def response(self, sid, timeout=10.0):
        """(status, headers dict, body) once the stream ended; status is None
        when it was reset (then headers is {"rst": code})."""
        self.read(lambda c: c.ended(sid), timeout)
        if self.rst(sid) is not None and not any(
                f[0] == HEADERS and f[2] == sid for f in self.frames):
            return None, {"rst": self.rst(sid)}, b""
        hs, body = {}, b""
        for t, fl, s, p in self.frames:
            if s != sid:
                continue
            if t == HEADERS:
                for k, v in p:
                    hs[k] = hs[k] + ", " + v if k in hs and k != ":status" else v
            elif t == DATA:
                body += p
        st = hs.get(":status")
        return (int(st) if st else None), hs, body

    def wait_closed(self, timeout=10.0):
        return self.read(lambda c: c.closed, timeout)
