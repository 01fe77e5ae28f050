"""systemd without systemd: the test plays the service manager. Readiness
(Type=notify): READY=1 comes on NOTIFY_SOCKET once, when every worker
serves, never for a server that fails to start, and STOPPING=1 at a stop.
Socket activation (LISTEN_FDS/LISTEN_PID, set by a launcher that execs loom
as systemd does): loom serves on the sockets it was given, matched to its
listeners by address; a socket that matches none is refused in one line;
the sockets outlive loom, so a connection made while it is down is answered
by the next start; a crashed worker is back on the same socket. And the
shipped unit passes `systemd-analyze verify`."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import loomtest
import opslib

OPS = os.path.join(loomtest.LOOM_BUILD, "test-plugins-ops")
ENV = {"ASAN_OPTIONS": "handle_segv=0:detect_leaks=1"}
# Moves the given descriptors to 3, 4, ... and execs the rest of argv with
# LISTEN_FDS and LISTEN_PID (its own pid: exec keeps it), as systemd does.
LAUNCHER = r"""
import fcntl, os, sys
fds = [int(x) for x in sys.argv[1].split(",")] if sys.argv[1] else []
high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in fds]
for fd in fds:
    os.close(fd)
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i)
    os.close(fd)
os.environ["LISTEN_FDS"] = str(len(fds))
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


def listening(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(128)
    return s


class Notify:
    """A unix datagram socket, as systemd's NOTIFY_SOCKET."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "notify")
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(self.path)

    def close(self):
        self.s.close()

    def messages(self, timeout):
        """Every datagram within timeout seconds (stops early at none)."""
        out = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.s.settimeout(max(0.01, deadline - time.time()))
            try:
                out.append(self.s.recv(4096).decode())
            except socket.timeout:
                break
        return out

    def wait_for(self, text, timeout=15):
        deadline = time.time() + timeout
        seen = []
        while time.time() < deadline:
            self.s.settimeout(max(0.01, deadline - time.time()))
            try:
                m = self.s.recv(4096).decode()
            except socket.timeout:
                break
            seen.append(m)
            if text in m:
                return m, seen
        raise AssertionError("no %r on NOTIFY_SOCKET; got %r" % (text, seen))


class Loom:
    """loom serve started as systemd would: sockets and NOTIFY_SOCKET."""

    def __init__(self, tmp, args, socks=(), notify=None):
        self.logpath = os.path.join(tmp, "loom-%d.log" % time.time_ns())
        self.logf = open(self.logpath, "wb")
        env = dict(os.environ, **ENV)
        env.pop("NOTIFY_SOCKET", None)
        if notify:
            env["NOTIFY_SOCKET"] = notify.path
        if os.environ.get("LOOM_TEST_IO"):
            args = list(args) + ["--set", "io=" + os.environ["LOOM_TEST_IO"]]
        fds = [s.fileno() for s in socks]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, ",".join(map(str, fds)), loomtest.LOOM_BIN, "serve"] +
            list(args), stdout=self.logf, stderr=subprocess.STDOUT, env=env, pass_fds=fds)

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.logf.close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if not self.logf.closed:
            self.logf.close()


def get(port, path="/o/ok"):
    return opslib.http_get(port, path, timeout=10)


class Systemd(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="loom-sd-")
        self.plugins = os.path.join(self.tmp, "plugins")
        os.mkdir(self.plugins)
        shutil.copy(os.path.join(OPS, "opstest.so"), self.plugins)
        self.running = []

    def tearDown(self):
        for p in self.running:
            p.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, *a, **kw):
        p = Loom(self.tmp, *a, **kw)
        self.running.append(p)
        return p

    def test_ready_once_every_worker_serves(self):
        n = Notify(self.tmp)
        self.addCleanup(n.close)
        port, aport = loomtest.free_port(), loomtest.free_port()
        p = self.start(["--listen", "127.0.0.1:%d" % port, "--admin", "127.0.0.1:%d" % aport,
                        "--plugins-dir", self.plugins, "--workers", "2"], notify=n)
        msg, _ = n.wait_for("READY=1")
        # At that moment both workers serve, with their plugins.
        st = opslib.status_json(aport)
        self.assertEqual(st["workers_up"], 2, st)
        self.assertTrue(all(w["plugins"] for w in st["workers"]))
        self.assertEqual(get(port)[0], 200)
        self.assertIn("STATUS=serving with 2 workers", msg)
        self.assertEqual([m for m in n.messages(0.5) if "READY=1" in m], [])
        p.proc.send_signal(signal.SIGTERM)
        n.wait_for("STOPPING=1")
        self.assertEqual(p.stop(), 0, p.log())

    def test_no_ready_when_the_start_fails(self):
        n = Notify(self.tmp)
        self.addCleanup(n.close)
        with open(os.path.join(self.plugins, "broken.so"), "w") as f:
            f.write("not a plugin")
        p = self.start(["--listen", "127.0.0.1:%d" % loomtest.free_port(), "--plugins-dir",
                        self.plugins, "--workers", "2"], notify=n)
        self.assertNotEqual(p.proc.wait(30), 0)
        self.assertFalse([m for m in n.messages(0.3) if "READY=1" in m])

    def test_socket_activation(self):
        port, aport = loomtest.free_port(), loomtest.free_port()
        main, admin = listening(port), listening(aport)
        try:
            n = Notify(self.tmp)
            self.addCleanup(n.close)
            args = ["--listen", "127.0.0.1:%d" % port, "--admin", "127.0.0.1:%d" % aport,
                    "--plugins-dir", self.plugins, "--workers", "2"]
            p = self.start(args, socks=(admin, main), notify=n)
            n.wait_for("READY=1")
            self.assertEqual(get(port)[0], 200)
            self.assertEqual(opslib.status_json(aport)["workers_up"], 2)
            # Both workers accept from the one socket: it is theirs, and no
            # other socket of loom's listens on the port.
            self.assertNotIn("cannot listen", p.log())
            # A worker that dies is back on the same socket.
            with self.assertRaises(OSError):
                get(port, "/o/crash")
            deadline = time.time() + 10
            while time.time() < deadline and opslib.status_json(aport)["workers_up"] != 2:
                time.sleep(0.05)
            self.assertEqual(opslib.status_json(aport)["workers_up"], 2, p.log())
            self.assertEqual([get(port)[0] for _ in range(20)], [200] * 20)
            self.assertEqual(p.stop(), 0, p.log())
            # loom is down; the socket is not (systemd holds it): a client
            # connects now and is answered by the next loom.
            c = socket.create_connection(("127.0.0.1", port), timeout=15)
            c.sendall(b"GET /o/ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            p2 = self.start(args, socks=(main, admin))
            data = b""
            while True:
                b = c.recv(4096)
                if not b:
                    break
                data += b
            c.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data)
            self.assertTrue(data.endswith(b"ok"), data)
            self.assertEqual(p2.stop(), 0, p2.log())
        finally:
            main.close()
            admin.close()

    def test_a_socket_that_matches_no_listener(self):
        other = listening(loomtest.free_port())  # claimed: no other suite's loom is given it
        try:
            oport = other.getsockname()[1]
            p = self.start(["--listen", "127.0.0.1:%d" % loomtest.free_port(), "--single"],
                           socks=(other,))
            self.assertEqual(p.proc.wait(30), 2)
            lines = p.log().strip().split("\n")
            self.assertEqual(lines, ["loom serve: socket activation: the socket systemd passed on "
                                     "127.0.0.1:%d (fd 3) matches no listener of the config" % oport],
                             p.log())
        finally:
            other.close()

    def test_unit_verifies(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("no systemd-analyze")
        units = os.path.join(self.tmp, "units")
        os.mkdir(units)
        for name in ("loom.service", "loom.socket"):
            with open(os.path.join(loomtest.LOOM_SRC, "packaging", name)) as f:
                text = f.read()
            # The binary is not installed here: point at the build's.
            with open(os.path.join(units, name), "w") as f:
                f.write(text.replace("/usr/bin/loom", os.path.abspath(loomtest.LOOM_BIN)))
        svc = os.path.join(units, "loom.service")
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", svc,
                            os.path.join(units, "loom.socket")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        with open(svc) as f:
            text = f.read()
        for want in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "DynamicUser=yes",
                     "ProtectSystem=strict", "NoNewPrivileges=yes",
                     "CapabilityBoundingSet=CAP_NET_BIND_SERVICE"):
            self.assertIn(want, text)
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", svc],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for loom.service: ([\d.]+)", r.stdout + r.stderr)
        if m:  # the offline assessment: what hardening the unit asks for
            self.assertLess(float(m.group(1)), 2.5, r.stdout)


if __name__ == "__main__":
    loomtest.main()
