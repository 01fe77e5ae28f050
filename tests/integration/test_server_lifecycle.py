"""Start-up and stop of the real binary: configuration errors before binding,
graceful stop with a request in flight, idle keep-alives closed on stop,
new connections refused, the shutdown deadline, and a second SIGINT."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

import loomtest
from loomtest import connect, parse_responses, recv_all

G = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


def read_one(s, timeout=5):
    data = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            r = parse_responses(data)
            if r:
                return r, data
        except ValueError:
            pass
        s.settimeout(max(0.05, deadline - time.time()))
        b = s.recv(65536)
        if not b:
            break
        data += b
    return parse_responses(data), data


def wait_closed(s, timeout=5):
    """True when the peer closes (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        while True:
            b = s.recv(65536)
            if not b:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def _tcp_rows():
    """(local, remote, tx_queue, rx_queue) of every IPv4 TCP socket, the
    addresses as /proc/net/tcp writes them."""
    rows = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            tx, rx = p[4].split(":")
            rows.append((p[1], p[2], int(tx, 16), int(rx, 16)))
    return rows


def wait_read_by_server(srv, s, timeout=10):
    """Waits until the server has taken every byte sent on `s`: the client's
    end has nothing unacknowledged and the server's end nothing unread
    (/proc/net/tcp), so a worker accepted the connection and parsed what
    came. A stop signal sent after this finds a request in progress, not a
    connection that looks idle because its bytes are still in a queue."""
    ip = "%08X" % struct.unpack("=I", socket.inet_aton("127.0.0.1"))[0]
    client = "%s:%04X" % (ip, s.getsockname()[1])
    server = "%s:%04X" % (ip, srv.port)
    deadline, rows = time.time() + timeout, []
    while time.time() < deadline:
        rows = [r for r in _tcp_rows() if {r[0], r[1]} == {client, server}]
        sent = [r for r in rows if r[0] == client]
        got = [r for r in rows if r[0] == server]
        if sent and got and sent[0][2] == 0 and got[0][3] == 0:
            return
        time.sleep(0.01)
    raise AssertionError("the server did not read the request within %ss (%r):\n%s"
                         % (timeout, rows, srv.log()))


def wait_workers_draining(srv, timeout=10):
    """Waits until every worker has begun the graceful stop (its line in the
    log) after the master was signalled."""
    log = srv.wait_log("starting ", timeout)
    n = int(re.search(r"starting (\d+) workers?", log).group(1))
    srv.wait_log("stopping: no new connections", timeout, count=n)


def io_uring_usable():
    """Whether this process may create a ring the way loom does (single
    issuer, deferred task work: Linux 6.1+, io_uring not disabled by sysctl or
    seccomp): io_uring_setup(2) is syscall 425 on x86_64 and arm64 alike."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params
    flags = (1 << 12) | (1 << 13)  # IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN
    params[8:12] = flags.to_bytes(4, "little")
    fd = libc.syscall(425, 4, params)
    if fd < 0:
        return False
    os.close(fd)
    return True


class Lifecycle(unittest.TestCase):
    def test_graceful_stop_with_request_in_flight(self):
        srv = loomtest.Server(["--set", "shutdown_timeout=10", "--set", "linger_timeout=1"])
        try:
            # A: a chunked POST whose body is half sent.
            a = connect(srv.port)
            a.sendall(CHUNKED_HEAD + b"5\r\nhel")
            # B: an idle keep-alive connection after one request.
            b = connect(srv.port)
            b.sendall(G)
            r, _ = read_one(b)
            self.assertEqual(r[0][0], 200)
            wait_read_by_server(srv, a)
            srv.signal(signal.SIGTERM)
            # The idle keep-alive is closed at once.
            self.assertTrue(wait_closed(b, 3), "idle keep-alive not closed on stop")
            b.close()
            # New connections are refused (the listener is closed).
            deadline = time.time() + 3
            refused = False
            while time.time() < deadline and not refused:
                try:
                    c = socket.create_connection(("127.0.0.1", srv.port), timeout=1)
                    c.settimeout(1)
                    try:
                        refused = c.recv(1) == b""  # accepted by no one: closed at once
                    except (ConnectionResetError, socket.timeout):
                        refused = True
                    c.close()
                except ConnectionRefusedError:
                    refused = True
                if not refused:
                    time.sleep(0.05)
            self.assertTrue(refused, "new connections still served after SIGTERM")
            self.assertIsNone(srv.proc.poll(), "the server must wait for the request in flight")
            # A finishes its body: it gets its answer with Connection: close.
            a.sendall(b"lo\r\n0\r\n\r\n")
            data = recv_all(a, 5)
            a.close()
            resp = parse_responses(data)
            self.assertEqual([x[0] for x in resp], [405], data)
            self.assertEqual(resp[0][1].get("connection"), "close")
            srv.proc.wait(10)
            self.assertEqual(srv.proc.returncode, 0, srv.log())
        finally:
            srv.__exit__()

    def test_graceful_stop_get_in_flight_pipelined(self):
        # Requests already received when the stop comes are all answered; the
        # last one carries Connection: close.
        srv = loomtest.Server(["--set", "linger_timeout=1"])
        try:
            a = connect(srv.port)
            a.sendall(CHUNKED_HEAD)
            wait_read_by_server(srv, a)
            srv.signal(signal.SIGTERM)
            wait_workers_draining(srv)
            a.sendall(b"3\r\nabc\r\n0\r\n\r\n" + G)
            data = recv_all(a, 5)
            a.close()
            resp = parse_responses(data)
            self.assertEqual([x[0] for x in resp], [405], data)
            self.assertEqual(resp[-1][1].get("connection"), "close")
            # It exits by itself once drained (a second signal during the exit
            # would hit the default action after the loop's handlers close).
            srv.proc.wait(10)
            self.assertEqual(srv.proc.returncode, 0, srv.log())
        finally:
            srv.__exit__()

    def test_shutdown_timeout_forces_close(self):
        srv = loomtest.Server(["--set", "shutdown_timeout=1"])
        try:
            a = connect(srv.port)
            a.sendall(CHUNKED_HEAD + b"5\r\nhel")
            wait_read_by_server(srv, a)
            t0 = time.time()
            srv.signal(signal.SIGTERM)
            self.assertTrue(wait_closed(a, 5))
            closed = time.time() - t0
            srv.proc.wait(10)
            took = time.time() - t0
            # Closed at the 1 s shutdown_timeout (not at the 60 s read
            # timeout); the exit then includes LeakSanitizer's check of the
            # master and every worker in the sanitizer build.
            self.assertGreater(closed, 0.7)
            self.assertLess(closed, 3.5)
            self.assertLess(took, 8)
            a.close()
            self.assertIn("shutdown_timeout (1 s) passed: closing 1 connection", srv.log())
            srv.stop()
        finally:
            srv.__exit__()

    def test_second_sigint_stops_at_once(self):
        srv = loomtest.Server(["--set", "shutdown_timeout=60"])
        try:
            a = connect(srv.port)
            a.sendall(CHUNKED_HEAD + b"5\r\nhel")
            wait_read_by_server(srv, a)
            srv.signal(signal.SIGINT)
            # Every worker took the first SIGINT (a second one arriving
            # before it was handled could merge with it); then a moment in
            # which a server that exits on the first would do so.
            wait_workers_draining(srv)
            time.sleep(0.3)
            self.assertIsNone(srv.proc.poll(), "first SIGINT must drain, not exit")
            t0 = time.time()
            srv.signal(signal.SIGINT)
            srv.proc.wait(10)
            # At once, not at the 60 s shutdown_timeout; the exit includes
            # LeakSanitizer's check in the sanitizer build.
            self.assertLess(time.time() - t0, 6)
            self.assertTrue(wait_closed(a, 2))
            a.close()
            self.assertIn("second SIGINT: stopping now, closing 1 connection", srv.log())
            self.assertNotIn("shutdown_timeout", srv.log())  # no timeout happened
            # ASan's leak check still runs: the exit status is the "stopped
            # at once" status, not a sanitizer's.
            self.assertIn(srv.proc.returncode, (0, 1), srv.log())
            srv.stop()
        finally:
            srv.__exit__()

    def test_idle_server_stops_at_once(self):
        srv = loomtest.Server([])
        try:
            t0 = time.time()
            self.assertEqual(srv.stop(signal.SIGTERM, timeout=10), 0, srv.log())
            self.assertLess(time.time() - t0, 5)  # LeakSanitizer's exit check included
        finally:
            srv.__exit__()
        srv = loomtest.Server([])
        try:
            self.assertEqual(srv.stop(signal.SIGINT, timeout=5), 0, srv.log())
        finally:
            srv.__exit__()


class BadConfig(unittest.TestCase):
    """A bad config file or flag: one line naming the key, non-zero exit,
    nothing bound (the port is held by the test, so a bind attempt would
    report it instead)."""

    def run_bad(self, args, config=None):
        # A port claimed for this run (free_port): one the kernel picks
        # itself may be one another suite was given and is about to listen on.
        for _ in range(20):
            holder = socket.socket()
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                holder.bind(("127.0.0.1", loomtest.free_port()))
                break
            except OSError:  # taken since free_port probed it
                holder.close()
        holder.listen(1)
        port = holder.getsockname()[1]
        tmp = tempfile.mkdtemp(prefix="loomcfg-")
        argv = [loomtest.LOOM_BIN, "serve"]
        text = config if isinstance(config, str) else json.dumps(config)
        if config is None or '"listen"' not in text or "HOSTPORT" in text:
            argv += ["--host", "127.0.0.1", "--port", str(port)]
        if config is not None:
            path = os.path.join(tmp, "loom.json")
            with open(path, "w") as f:
                f.write(text.replace("PORT", str(port)).replace("HOST", ""))
            argv += ["--config", path]
        try:
            p = subprocess.run(argv + list(args), capture_output=True, timeout=10)
        finally:
            holder.close()
        err = p.stderr.decode()
        self.assertNotEqual(p.returncode, 0, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertNotIn("cannot listen", err)
        return err

    def test_bad_config_files(self):
        cases = [
            ({"max_headers": "x"}, "max_headers"),
            ({"header_timeout": -1}, "header_timeout"),
            ({"no_such_key": 1}, "no_such_key"),
            ({"client_max_size": 1.5}, "client_max_size"),
            ({"port": 70000}, "port"),
            ({"io": "fast"}, "io"),
            ("{not json", "loom.json"),
            ({"listen": "127.0.0.1:PORT"}, "'listen'"),
            ({"listen": [{"host": "127.0.0.1"}]}, "'port' is missing"),
            ('{"listen": [{"host": "127.0.0.1", "port": PORT, "tsl": true}]}', "'tsl'"),
            ({"listen": ["127.0.0.1:PORT:tls"]}, "no \"tls\" section"),
            ({"listen": ["127.0.0.1:HOSTPORT"]}, "'listen' and 'host'/'port' are both set"),
            ('{"listen": [{"host": "127.0.0.1", "port": PORT, "redirect_to_https": true}]}',
             "needs a TLS listener"),
        ]
        for cfg, key in cases:
            with self.subTest(key=key):
                err = self.run_bad([], cfg)
                self.assertIn(key, err)

    def test_bad_flags(self):
        cases = [
            (["--set", "max_line_size=abc"], "max_line_size"),
            (["--set", "nosuch=1"], "nosuch"),
            (["--set", "keepalive_timeout=-3"], "keepalive_timeout"),
            (["--workers", "many"], "workers"),
            (["--bogus-flag"], "--bogus-flag"),
            (["--set", "io=kqueue"], "io"),
            (["--config", "/nonexistent/loom.json"], "/nonexistent/loom.json"),
            (["--access-log", "/nonexistent/dir/a.log"], "/nonexistent/dir/a.log"),
            (["--listen", "localhost"], "localhost"),
            (["--listen", "127.0.0.1:99999"], "127.0.0.1:99999"),
            (["--listen", "127.0.0.1:1:ssl"], "HOST:PORT:tls"),
        ]
        for args, key in cases:
            with self.subTest(args=args):
                err = self.run_bad(args)
                self.assertIn(key, err)

    def test_bad_plugin_never_announces_listening(self):
        """A server that refuses a plugin at start-up exits without having
        said that it listens."""
        d = tempfile.mkdtemp(prefix="loom-badplugin-")
        with open(os.path.join(d, "x.so"), "wb") as f:
            f.write(b"not an ELF file at all")
        for mode in (["--single"], ["--workers", "2"]):
            with self.subTest(mode=mode):
                p = subprocess.run([loomtest.LOOM_BIN, "serve", "--port", "0",
                                    "--plugins-dir", d] + mode,
                                   capture_output=True, timeout=20)
                out = (p.stdout + p.stderr).decode()
                self.assertNotEqual(p.returncode, 0, out)
                self.assertIn("x.so", out)
                self.assertNotIn("listening on", out)

    def test_io_backends(self):
        """Each I/O backend serves keep-alive and pipelined requests and says
        in the debug log which one it is; io=uring refuses to start, in one
        line, where the kernel has no io_uring."""
        have_uring = io_uring_usable()
        for io in ("epoll", "uring"):
            with self.subTest(io=io):
                if io == "uring" and not have_uring:
                    argv = [loomtest.LOOM_BIN, "serve", "--single", "--host", "127.0.0.1",
                            "--port", str(loomtest.free_port()), "--set", "io=uring"]
                    p = subprocess.run(argv, capture_output=True, timeout=10)
                    err = p.stderr.decode()
                    self.assertNotEqual(p.returncode, 0, err)
                    self.assertIn('io "uring": io_uring', err)
                    continue
                srv = loomtest.Server(["--set", "io=" + io, "--log-level", "debug", "--single"])
                try:
                    s = connect(srv.port)
                    for _ in range(3):
                        s.sendall(G)
                        r, _ = read_one(s)
                        self.assertEqual([x[0] for x in r], [200])
                    s.sendall(G * 20)
                    got = b""
                    deadline = time.time() + 5
                    while len(parse_responses(got)) < 20 and time.time() < deadline:
                        s.settimeout(max(0.05, deadline - time.time()))
                        got += s.recv(65536)
                    self.assertEqual([x[0] for x in parse_responses(got)], [200] * 20)
                    s.close()
                    self.assertEqual(srv.stop(), 0, srv.log())
                    want = "connections on " + ("io_uring" if io == "uring" else "epoll")
                    self.assertIn(want, srv.log())
                finally:
                    srv.__exit__()

    def test_receive_buffers_run_out(self):
        """More connections with a request waiting than io_uring has receive
        buffers (2 here, io_recv_buffers): the server is stopped (SIGSTOP)
        while 600 clients send, so all of them are ready at once when it
        continues. Every request is answered; on io_uring the debug log
        shows that the buffers did run out (the path where the recv is
        queued again)."""
        srv = loomtest.Server(["--single", "--log-level", "debug", "--set", "io_recv_buffers=2"])
        socks = []
        try:
            for _ in range(600):
                s = connect(srv.port)
                s.sendall(G)
                socks.append(s)
            for s in socks:  # every connection accepted, its recv queued
                self.assertEqual([x[0] for x in read_one(s)[0]], [200])
            srv.signal(signal.SIGSTOP)
            try:
                for s in socks:
                    s.sendall(G)
                time.sleep(0.3)
            finally:
                srv.signal(signal.SIGCONT)
            answered = sum(1 for s in socks if [x[0] for x in read_one(s)[0]] == [200])
            self.assertEqual(answered, 600)
            if "connections on io_uring" in srv.log():
                self.assertIn("receive buffers ran out", srv.log())
            for s in socks:
                s.close()
            socks = []
            self.assertEqual(srv.stop(), 0, srv.log()[-3000:])
        finally:
            for s in socks:
                s.close()
            srv.__exit__()

    def test_flag_overrides_config(self):
        srv = loomtest.Server(["--set", "max_headers=3"], config={"max_headers": 100})
        try:
            s = connect(srv.port)
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")
            data = recv_all(s, 5)
            s.close()
            self.assertEqual([r[0] for r in parse_responses(data)], [431])
            self.assertEqual(srv.stop(), 0, srv.log())
        finally:
            srv.__exit__()


if __name__ == "__main__":
    loomtest.main()
