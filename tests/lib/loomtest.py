"""Helpers for tests that drive the real `loom` binary over loopback.

Every helper is bounded in time: sockets have timeouts, waits have deadlines,
and a started server is killed when the test ends.
"""
import json
import os
import shutil
import signal
import signal as _signal  # Server.signal shadows the module name in the class body
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

LOOM_BIN = os.environ.get("LOOM_BIN", "build/bin/loom")
LOOM_BUILD = os.environ.get("LOOM_BUILD", "build")
LOOM_SRC = os.environ.get("LOOM_SRC", ".")
PLUGINS_DIR = os.path.join(LOOM_BUILD, "plugins")


_CLAIMS = os.path.join(tempfile.gettempdir(), "loomtest-ports")
_CLAIM_TTL = 900  # seconds: longer than any suite; older claims are from runs that ended
_given = set()


def _claim(port):
    """Claim `port` for this test run across the processes ctest runs at once.

    loom listens with SO_REUSEPORT, so two servers started by two suites on
    the same port would both bind and split each other's connections instead
    of failing. A claim is a file created with O_EXCL; a stale one is taken over.
    """
    os.makedirs(_CLAIMS, exist_ok=True)
    path = os.path.join(_CLAIMS, str(port))
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        return True
    except FileExistsError:
        try:
            if time.time() - os.stat(path).st_mtime < _CLAIM_TTL:
                return False
            os.utime(path)
            return True
        except OSError:
            return False


def free_port():
    """A loopback port nobody listens on, never the same one twice.

    The kernel may hand back the port it just gave when the probe socket is
    closed, so ports given out are remembered here and claimed on disk.
    """
    for _ in range(200):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _given and _claim(port):
            _given.add(port)
            return port
    raise AssertionError("no free loopback port after 200 tries")


class Server:
    """A `loom serve` process on a free loopback port.

    args: extra CLI arguments; config: a dict written as the JSON config file.
    The server's stderr (its log) goes to a file readable through .log().
    """

    def __init__(self, args=(), config=None, plugins_dir=None, env=None, port=None, cmd="serve",
                 listen=None):
        """listen: ["127.0.0.1:PORT", "127.0.0.1:PORT:tls", ...] in place of
        --host/--port (self.port is then the first one's port); a config
        with its own "listen" list needs port= to say which port to wait on."""
        self.tmp = tempfile.mkdtemp(prefix="loomtest-")
        self.logpath = os.path.join(self.tmp, "server.log")
        if listen:
            self.port = port or int(listen[0].rsplit("]", 1)[-1].split(":")[1])
            argv = [LOOM_BIN, cmd]
            for spec in listen:
                argv += ["--listen", spec]
        elif config is not None and "listen" in config:
            self.port = port
            argv = [LOOM_BIN, cmd]
        else:
            self.port = port or free_port()
            argv = [LOOM_BIN, cmd, "--host", "127.0.0.1", "--port", str(self.port)]
        if plugins_dir is not None:
            argv += ["--plugins-dir", plugins_dir]
        if config is not None:
            cpath = os.path.join(self.tmp, "loom.json")
            with open(cpath, "w") as f:
                json.dump(config, f)
            argv += ["--config", cpath]
        # LOOM_TEST_IO=epoll (or uring) runs a suite on that I/O backend;
        # a test's own --set io=... comes later and wins.
        if os.environ.get("LOOM_TEST_IO") and cmd == "serve":
            argv += ["--set", "io=" + os.environ["LOOM_TEST_IO"]]
        argv += list(args)
        self.argv = argv
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        if env:
            e.update(env)
        self.logf = open(self.logpath, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT, env=e)
        self.wait_ready()

    def wait_ready(self, timeout=15.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("server exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("server did not start listening:\n" + self.log())

    def log(self):
        if not self.logf.closed:
            self.logf.flush()
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, text, timeout=10.0, count=1):
        """Waits until `text` appears in the log, `count` times or more (the
        port accepts connections before the workers have loaded their
        plugins); returns the log."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            log = self.log()
            if log.count(text) >= count:
                return log
            time.sleep(0.02)
        raise AssertionError("%r not %d times in the log within %ss:\n%s"
                             % (text, count, timeout, self.log()))

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=_signal.SIGTERM, timeout=30.0):
        """Stops the server and returns its exit status (ASan leaks make it non-zero)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("server did not stop within %ss:\n%s" % (timeout, self.log()))
        self.logf.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if not self.logf.closed:
            self.logf.close()


def terminate(proc, timeout=10.0):
    """Ends a peer process started by a test: SIGTERM, then SIGKILL if it is
    still there after `timeout` seconds. Does nothing if it already exited."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_plugin_held(admin_port, plugin, what, timeout=10.0):
    """Waits until a request holds `plugin` (its `inflight` count in the admin
    listener's /plugins listing is above 0): a request sent from a thread or
    a socket has reached its handler and pins the plugin's generation.
    `what` names the request in the failure message."""
    deadline, listing = time.time() + timeout, None
    while time.time() < deadline:
        with urllib.request.urlopen("http://127.0.0.1:%d/plugins" % admin_port, timeout=10) as r:
            listing = json.loads(r.read())
        if any(p["name"] == plugin and p["inflight"] > 0 for p in listing["plugins"]):
            return
        time.sleep(0.02)
    raise AssertionError("%s never held plugin %s within %ss: %s" % (what, plugin, timeout, listing))


def connect(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_all(s, timeout=5.0):
    """Reads until the peer closes (or timeout); returns the bytes."""
    s.settimeout(timeout)
    chunks = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def parse_responses(data):
    """Splits raw bytes into a list of (status, headers dict lowercased, body).

    Understands Content-Length and chunked bodies, and 1xx interim responses.
    Raises ValueError on malformed bytes.
    """
    out = []
    i = 0
    while i < len(data):
        j = data.find(b"\r\n\r\n", i)
        if j < 0:
            raise ValueError("incomplete head: %r" % data[i:i + 200])
        head = data[i:j].decode("latin-1").split("\r\n")
        parts = head[0].split(" ", 2)
        if not parts[0].startswith("HTTP/1."):
            raise ValueError("bad status line %r" % head[0])
        status = int(parts[1])
        headers = {}
        for line in head[1:]:
            k, v = line.split(":", 1)
            k = k.strip().lower()
            headers[k] = headers[k] + ", " + v.strip() if k in headers else v.strip()
        i = j + 4
        body = b""
        if status < 200 or status in (204, 304):
            pass
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                k = data.find(b"\r\n", i)
                size = int(data[i:k].split(b";")[0], 16)
                i = k + 2
                if size == 0:
                    k = data.find(b"\r\n", i)
                    while k != i:
                        i = k + 2
                        k = data.find(b"\r\n", i)
                    i += 2
                    break
                body += data[i:i + size]
                i += size + 2
        elif "content-length" in headers:
            n = int(headers["content-length"])
            body = data[i:i + n]
            if len(body) != n:
                raise ValueError("truncated body")
            i += n
        else:
            body = data[i:]
            i = len(data)
        out.append((status, headers, body))
    return out


def exchange(port, raw, timeout=5.0):
    """Sends raw bytes on a new connection, reads until close; returns (responses, closed)."""
    s = connect(port, timeout)
    try:
        s.sendall(raw)
        data = recv_all(s, timeout)
    finally:
        s.close()
    return parse_responses(data)


def main():
    unittest.main(verbosity=2)


class Redis:
    """redis-server on a loopback port (free, or given: a restart), no persistence,
    in a temporary directory. Started by the tests that use Redis as a peer."""

    _held = {}  # port -> a socket bound to it (not listening) while Redis is down

    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="loom-redis-")
        self._logf = open(os.path.join(self.dir, "log"), "ab")
        held = Redis._held.pop(self.port, None)
        if held:
            held.close()
        deadline = time.time() + 10
        while True:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self.dir, "--daemonize", "no"],
                stdout=self._logf, stderr=subprocess.STDOUT)
            while time.time() < deadline and self.proc.poll() is None:
                try:
                    connect(self.port, 0.5).close()
                    if self.proc.poll() is None:  # ours answered, not another listener
                        return
                except OSError:
                    time.sleep(0.05)
            # A restart on a given port can find it taken (a client's
            # outgoing connection got it as its local port): try again
            # while the connection may end (its TIME_WAIT, if its side
            # closed first, lasts a minute: stop(hold_port=True) avoids it).
            if self.proc.poll() is None or time.time() >= deadline:
                break
            time.sleep(0.2)
        with open(os.path.join(self.dir, "log"), "rb") as f:
            log = f.read().decode("utf-8", "replace")[-2000:]
        self.stop()
        raise AssertionError("redis-server did not start on port %d:\n%s" % (self.port, log))

    def stop(self, hold_port=False):
        """hold_port: Redis is down for a while and restarts on its port
        (Redis(port)); until then a socket is bound to the port, not
        listening, so connections to it are refused as before and no
        outgoing connection can be given the port as its local one."""
        terminate(self.proc)
        self._logf.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        if hold_port:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # over Redis's TIME_WAITs
            try:
                s.bind(("127.0.0.1", self.port))
                Redis._held[self.port] = s
            except OSError:
                s.close()  # already taken: the restart retries
