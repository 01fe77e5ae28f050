"""Logs that cost little and lose nothing: plugin log lines and the access log
are gathered per worker and written in batches (a worker's write(2) calls
stay far below its lines), a rename and SIGUSR1 under load move the logs to
new files with no line lost or torn, a worker killed by SIGSEGV writes what
it had gathered, the JSON access log is one valid object per line (timings,
route pattern, plugin), and SIGHUP reads log_level again from the config."""
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import time
import unittest

import aiohttp

import loomtest

OPS = os.path.join(loomtest.LOOM_BUILD, "test-plugins-ops")
ENV = {"ASAN_OPTIONS": "handle_segv=0:detect_leaks=1"}


def plugins_dir(tmp):
    d = os.path.join(tmp, "plugins")
    os.mkdir(d)
    shutil.copy(os.path.join(OPS, "opstest.so"), d)
    return d


def syscw(pid):
    """write(2)-like system calls the process has made (/proc/PID/io)."""
    with open("/proc/%d/io" % pid) as f:
        return int(re.search(r"^syscw: (\d+)", f.read(), re.M).group(1))


async def load(port, paths, conns, stop, counts):
    """conns keep-alive clients GETting paths in turn until stop() says so;
    counts[path] += 1 for each 200."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as s:
        async def one(i):
            k = i
            while not stop():
                p = paths[k % len(paths)]
                k += 1
                async with s.get("http://127.0.0.1:%d%s" % (port, p)) as r:
                    await r.read()
                    if r.status == 200:
                        counts[p] = counts.get(p, 0) + 1
        await asyncio.gather(*[one(i) for i in range(conns)])


def lines_of(*paths):
    out = []
    for p in paths:
        if os.path.exists(p):
            with open(p, "rb") as f:
                data = f.read()
            if data:
                assert data.endswith(b"\n"), "%s ends in a partial line: %r" % (p, data[-80:])
                out += data.decode("utf-8").split("\n")[:-1]
    return out


class Logs(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="loom-logs-")
        self.plugins = plugins_dir(self.tmp)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_plugin_lines_are_batched(self):
        """1,000 plugin lines from 200 requests cost a handful of writes; each
        line is there, whole, within the flush period."""
        with loomtest.Server(plugins_dir=self.plugins, args=["--single"]) as srv:
            srv.wait_log("listening on")
            before = syscw(srv.proc.pid)
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            for _ in range(200):
                s.sendall(b"GET /o/log?n=5 HTTP/1.1\r\nHost: t\r\n\r\n")
                got = b""
                while not got.endswith(b"logged"):
                    got += s.recv(4096)
            s.close()
            srv.wait_log("opstest line 5 of 5", timeout=2)
            deadline = time.time() + 2
            while time.time() < deadline and srv.log().count("opstest line") < 1000:
                time.sleep(0.02)
            writes = syscw(srv.proc.pid) - before
            log = srv.log()
            self.assertEqual(srv.stop(), 0, log)
        self.assertEqual(log.count("opstest line"), 1000)
        self.assertEqual(len(re.findall(r"(?m)^\S+ \S+ \[info\] \[main \d+\] plugin opstest: "
                                        r"opstest line [1-5] of 5 \(pid \d+\)$", log)), 1000)
        # One write per line would be 1,000 (responses go out with send(2),
        # which this count leaves out).
        self.assertLess(writes, 50, "%d write calls for 1000 log lines" % writes)

    def test_rotation_under_load_loses_nothing(self):
        alog = os.path.join(self.tmp, "access.log")
        elog = os.path.join(self.tmp, "error.log")
        with loomtest.Server(plugins_dir=self.plugins,
                             config={"access_log": alog, "access_log_format": "json",
                                     "error_log": elog},
                             args=["--workers", "2"]) as srv:
            deadline = time.time() + 10
            while time.time() < deadline and "\n".join(lines_of(elog)).count("loaded from") < 2:
                time.sleep(0.02)
            counts = {}
            t0 = time.time()
            rotated = []

            def done():
                """1.8 s, and on (up to 15 s) until more than 200 answers
                on a busy machine: the rotation is in the middle of a load."""
                took = time.time() - t0
                return took > 1.8 and (sum(counts.values()) > 200 or took > 15)

            async def run():
                async def rotate():
                    await asyncio.sleep(0.8)
                    os.rename(alog, alog + ".1")
                    os.rename(elog, elog + ".1")
                    srv.signal(signal.SIGUSR1)
                    rotated.append(time.time())
                await asyncio.gather(
                    load(srv.port, ["/o/ok", "/o/log?n=1"], 8, done, counts),
                    rotate())
            asyncio.run(run())
            self.assertEqual(srv.stop(), 0, srv.log())
        served = sum(counts.values())
        self.assertGreater(served, 200)
        old, new = lines_of(alog + ".1"), lines_of(alog)
        # Every request has its line, whole, in one file or the other.
        self.assertEqual(len(old) + len(new), served, (len(old), len(new), counts))
        self.assertGreater(len(old), 0)
        self.assertGreater(len(new), 0)
        by_path = {}
        for ln in old + new:
            o = json.loads(ln)  # a torn line would not parse
            self.assertEqual(o["status"], 200)
            self.assertEqual(o["plugin"], "opstest")
            self.assertIn(o["route"], ("/o/ok", "/o/log"))
            self.assertRegex(o["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")
            self.assertIsInstance(o["handler_ms"], float)
            self.assertIsInstance(o["request_ms"], int)
            self.assertEqual((o["method"], o["protocol"]), ("GET", "HTTP/1.1"))
            self.assertIn(o["worker"], (0, 1))
            by_path[o["target"]] = by_path.get(o["target"], 0) + 1
        self.assertEqual(by_path, counts)
        # The plugin's lines too: each request to /o/log logged one.
        e_old, e_new = lines_of(elog + ".1"), lines_of(elog)
        plugin_lines = [ln for ln in e_old + e_new if "opstest line 1 of 1" in ln]
        self.assertEqual(len(plugin_lines), counts["/o/log?n=1"])
        for ln in e_old + e_new:
            self.assertRegex(ln, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[\w+\] \[(w\d|main) \d+\] ")
        self.assertEqual("\n".join(e_new).count("SIGUSR1: log files reopened"), 2)
        self.assertIn("SIGUSR1: telling 2 workers to reopen their log files", "\n".join(e_new))

    def test_crash_writes_what_was_gathered(self):
        alog = os.path.join(self.tmp, "access.log")
        with loomtest.Server(plugins_dir=self.plugins, config={"access_log": alog},
                             args=["--workers", "1"], env=ENV) as srv:
            srv.wait_log("listening on")
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            # 20 requests, one after the other, then the crash, well within
            # the 250 ms flush period: only the crash handler can write them.
            ok = 0
            for _ in range(20):
                s.sendall(b"GET /o/log?n=2 HTTP/1.1\r\nHost: t\r\n\r\n")
                got = b""
                while not got.endswith(b"logged"):
                    got += s.recv(4096)
                ok += got.startswith(b"HTTP/1.1 200")
            s.sendall(b"GET /o/crash HTTP/1.1\r\nHost: t\r\n\r\n")
            try:
                self.assertEqual(s.recv(4096), b"")
            except ConnectionResetError:
                pass
            s.close()
            self.assertEqual(ok, 20)
            srv.wait_log("killed by signal 11")
            log = srv.log()
            self.assertEqual(srv.stop(), 0, log)
        self.assertEqual(log.count("opstest line"), 40, log)
        self.assertIn("opstest: about to crash", log)
        # The crash line comes before the master's report of the death.
        self.assertLess(log.index("about to crash"), log.index("killed by signal 11"))
        lines = lines_of(alog)
        self.assertEqual(len([ln for ln in lines if '"GET /o/log?n=2 HTTP/1.1" 200' in ln]), 20, lines)

    def test_json_lines_escape_what_clients_send(self):
        alog = os.path.join(self.tmp, "access.log")
        with loomtest.Server(plugins_dir=self.plugins,
                             config={"access_log": alog, "access_log_format": "json"},
                             args=["--single"]) as srv:
            srv.wait_log("listening on")
            raw = (b"GET /o/ok?q=%22x%22 HTTP/1.1\r\nHost: t\r\nUser-Agent: a\"b\\c\xff\xc3\xa9\r\n"
                   b"Referer: http://r/\"\r\nConnection: close\r\n\r\n")
            st = loomtest.exchange(srv.port, raw)[0][0]
            self.assertEqual(st, 200)
            loomtest.exchange(srv.port, b"GET /o/nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            loomtest.exchange(srv.port, b"GET /bad path HTTP/1.1\r\nHost: t\r\n\r\n")
            self.assertEqual(srv.stop(), 0, srv.log())
        lines = lines_of(alog)
        self.assertEqual(len(lines), 3, lines)
        a, b, c = [json.loads(ln) for ln in lines]
        self.assertEqual(a["user_agent"], 'a"b\\c\u00ff\u00e9')
        self.assertEqual(a["referer"], 'http://r/"')
        self.assertEqual(a["target"], '/o/ok?q=%22x%22')
        self.assertEqual((a["route"], a["plugin"], a["status"]), ("/o/ok", "opstest", 200))
        self.assertEqual((b["route"], b["plugin"], b["status"]), ("(unmatched)", None, 404))
        self.assertEqual((c["status"], c["error"]), (400, True))

    def test_sighup_reads_log_level_again(self):
        cfg = os.path.join(self.tmp, "loom.json")

        def write(level):
            with open(cfg, "w") as f:
                json.dump({"log_level": level}, f)

        def hup_and_wait(text):
            srv.signal(signal.SIGHUP)
            srv.wait_log(text)

        def logged(n):
            """One request that logs one info line; then n lines in all. The
            line is written by the next sweep (250 ms), or late on a busy
            machine: wait for it, then a little more for a line too many.
            A line wrongly written at level warn cannot hide: the SIGHUP that
            follows writes the gathered lines before its own, and the next
            logged() counts them."""
            loomtest.exchange(srv.port, b"GET /o/log?n=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            srv.wait_log("opstest line", 5, count=n)
            time.sleep(0.3)
            self.assertEqual(srv.log().count("opstest line"), n, srv.log())
        write("info")
        with loomtest.Server(plugins_dir=self.plugins, args=["--single", "--config", cfg]) as srv:
            srv.wait_log("listening on")
            logged(1)
            write("warn")
            hup_and_wait("SIGHUP: log_level warn (was info)")
            logged(1)  # an info line is not written now
            write("info")
            hup_and_wait("SIGHUP: log_level info (was warn)")
            logged(2)
            write("nonsense")
            hup_and_wait("SIGHUP: log_level not read again: config")
            logged(3)
            self.assertEqual(srv.stop(), 0, srv.log())
        # A --log-level flag keeps winning, as it does at start.
        write("info")
        with loomtest.Server(plugins_dir=self.plugins,
                             args=["--single", "--config", cfg, "--log-level", "info"]) as srv:
            srv.wait_log("listening on")
            write("error")
            srv.signal(signal.SIGHUP)
            srv.wait_log("SIGHUP: rescanning plugins")
            logged(1)
            self.assertNotIn("log_level error", srv.log())
            self.assertEqual(srv.stop(), 0, srv.log())


if __name__ == "__main__":
    loomtest.main()
