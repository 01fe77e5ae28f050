"""Helpers for the WebSocket tests: a plugins directory with wstest (and
ws-echo), raw frames over a plain socket, the plugin's event log, Node."""
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request

import loomtest

WS_PLUGINS = os.path.join(loomtest.LOOM_BUILD, "test-plugins-ws")
NODE = shutil.which("node") or shutil.which("nodejs")
NODE_PATH = "/usr/share/nodejs"
HAVE_NODE_WS = NODE is not None and os.path.isdir(os.path.join(NODE_PATH, "ws"))


def plugin_dir(version=1, echo=True):
    """A fresh directory with wstest (built as `version`) and ws-echo."""
    d = os.path.join(loomtest.tempfile.mkdtemp(prefix="loom-ws-plugins-"))
    shutil.copy(os.path.join(WS_PLUGINS, "v%d" % version, "wstest.so"), d)
    if echo:
        shutil.copy(os.path.join(loomtest.PLUGINS_DIR, "ws-echo.so"), d)
    return d


def install(src, dst_dir, name):
    """Installs a plugin the documented way: a temp name, then rename."""
    tmp = os.path.join(dst_dir, "." + name + ".tmp")
    shutil.copy(src, tmp)
    os.rename(tmp, os.path.join(dst_dir, name))


def events(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/ws/events" % port, timeout=5) as r:
        return [json.loads(l) for l in r.read().decode().splitlines() if l.strip()]


def wait_event(port, pred, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        evs = [e for e in events(port) if pred(e)]
        if evs:
            return evs
        time.sleep(0.05)
    raise AssertionError("no such event within %ss: %s" % (timeout, events(port)))


def handshake(port, path="/ws/t", extra="", timeout=5.0):
    """A raw connection after a successful 101; returns (socket, leftover bytes)."""
    s = loomtest.connect(port, timeout)
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n%s\r\n" % (path, port, extra)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(4096)
        if not b:
            raise AssertionError("closed during the handshake: %r" % buf)
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return s, rest


def frame(op, payload=b"", fin=True, mask=True):
    head = bytes([(0x80 if fin else 0) | op])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


class Reader:
    """Reads server frames from a raw socket."""

    def __init__(self, sock, rest=b""):
        self.s, self.buf = sock, bytearray(rest)

    def _need(self, n):
        while len(self.buf) < n:
            b = self.s.recv(65536)
            if not b:
                raise EOFError("closed")
            self.buf += b

    def frame(self):
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, at = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, at = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(at + n)
        data = bytes(self.buf[at:at + n])
        del self.buf[:at + n]
        return b0 & 0x0F, data

    def closed(self, timeout=5.0):
        """Whether the server closes TCP within timeout (bytes before that are read)."""
        self.s.settimeout(timeout)
        try:
            while True:
                b = self.s.recv(65536)
                if not b:
                    return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True


def node(script, *args, timeout=30, env=None):
    e = dict(os.environ, NODE_PATH=NODE_PATH)
    if env:
        e.update(env)
    return subprocess.run([NODE, "-e", script] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout, env=e)


Redis = loomtest.Redis
class TlsServer(loomtest.Server):
    """loom serve with its listeners in the config (loomtest.Server passes
    --host/--port, which "listen" replaces)."""

    def __init__(self, config, port):
        self.port = port
        self.tmp = loomtest.tempfile.mkdtemp(prefix="loomtest-")
        self.logpath = os.path.join(self.tmp, "server.log")
        cpath = os.path.join(self.tmp, "loom.json")
        with open(cpath, "w") as f:
            json.dump(config, f)
        argv = [loomtest.LOOM_BIN, "serve", "--single", "--config", cpath]
        if os.environ.get("LOOM_TEST_IO"):
            argv += ["--set", "io=" + os.environ["LOOM_TEST_IO"]]
        self.logf = open(self.logpath, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT)
        self.wait_ready()
        self.wait_log("listening")
