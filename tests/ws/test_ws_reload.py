"""Hot reload with open WebSockets (the rule in sdk/include/loom/loom.h and
docs/decisions.md): connections stay with the version that accepted them,
which stays loaded; new upgrades get the new version; ws_drain_timeout after
the replacement the old ones get 1001, and the old version is unloaded.
Reloading another plugin closes nothing. All of it under load: every
connection exchanges a message every 20 ms throughout."""
import asyncio
import os
import re
import shutil
import time
import unittest

import loomtest
import websockets
import wslib

DRAIN = 3.0


def log_time(line):
    """The wall-clock time a log line was written, from its own prefix
    ("2026-01-02 03:04:05.678 [info] ...", local time)."""
    m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{3}) ", line)
    assert m, line
    return time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000


class Load:
    """Clients that each send a message and check its echo, without pause."""

    def __init__(self, url, n):
        self.url, self.n = url, n
        self.closed = []  # (time, code, reason, version)
        self.errors = []
        self.count = 0

    async def client(self, i):
        ws = await websockets.connect(self.url)
        version = None
        k = 0
        try:
            while True:
                msg = "c%d-%d" % (i, k)
                await ws.send(msg)
                got = await ws.recv()
                m = re.fullmatch(r"v(\d):(.*)", got)
                if not m or m.group(2) != msg:
                    self.errors.append("client %d: %r for %r" % (i, got, msg))
                    return
                if version is None:
                    version = m.group(1)
                elif version != m.group(1):
                    self.errors.append("client %d moved from v%s to v%s" % (i, version, m.group(1)))
                self.count += 1
                k += 1
                await asyncio.sleep(0.02)
        except websockets.ConnectionClosed:
            self.closed.append((time.time(), ws.close_code, ws.close_reason, version))


async def version_of_new(url):
    async with websockets.connect(url) as ws:
        await ws.send("which")
        return (await ws.recv()).split(":")[0]


class ReloadTest(unittest.TestCase):
    def test_reload_under_load(self):
        d = wslib.plugin_dir(1)
        cfg = {"ws_drain_timeout": DRAIN}
        with loomtest.Server(args=["--single"], config=cfg, plugins_dir=d) as srv:
            srv.wait_log("listening")
            url = "ws://127.0.0.1:%d/ws/t" % srv.port
            load = Load(url, 20)

            async def go():
                tasks = [asyncio.ensure_future(load.client(i)) for i in range(load.n)]
                await asyncio.sleep(1.0)
                self.assertEqual(await version_of_new(url), "v1")
                # Another plugin is replaced: the WebSockets of wstest stay.
                echo = os.path.join(d, "ws-echo.so")
                tmp = os.path.join(d, ".echo.tmp")
                shutil.copy(echo, tmp)
                with open(tmp, "ab") as f:
                    f.write(b"\0")  # another hash, the same code
                os.rename(tmp, echo)
                for _ in range(100):
                    if "ws-echo 1.0.0 loaded" in srv.log().split("listening")[-1]:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(DRAIN + 1.0)
                self.assertEqual(load.closed, [], "closed by another plugin's reload")
                # The old ws-echo went at once: nothing held its snapshot.
                self.assertRegex(srv.log(), r"plugin ws-echo 1\.0\.0 \(generation \d+\) unloaded")
                # wstest itself is replaced.
                before = load.count
                wslib.install(os.path.join(wslib.WS_PLUGINS, "v2", "wstest.so"), d, "wstest.so")
                # When loom replaced it, from the line's own time: this loop,
                # busy with the clients, may see the line late.
                t_reload = None
                for _ in range(200):
                    m = re.search(r"^.*plugin wstest 1\.0\.0 loaded from .* \(generation \d+.*$",
                                  srv.log(), re.M)
                    if m:
                        t_reload = log_time(m.group(0))
                        break
                    await asyncio.sleep(0.02)
                self.assertIsNotNone(t_reload, srv.log())
                self.assertEqual(await version_of_new(url), "v2")
                await asyncio.sleep(DRAIN + 2.0)
                for t in tasks:
                    if not t.done():
                        t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                return t_reload, before

            t_reload, before = asyncio.run(asyncio.wait_for(go(), 60))
            self.assertEqual(load.errors, [])
            # At least 10 round trips a client after the reload (~DRAIN s of
            # them at up to 50/s a client when the machine is idle).
            self.assertGreater(load.count, before + 20 * 10, "the load went on during the reload")
            self.assertEqual(len(load.closed), 20, load.closed)
            for t, code, reason, version in load.closed:
                self.assertEqual((code, reason, version), (1001, "going away: plugin replaced", "1"))
                # Not before their time (the sweep runs every 250 ms).
                self.assertGreater(t - t_reload, DRAIN - 0.3)
                self.assertLess(t - t_reload, DRAIN + 1.5)
            # The old version goes once its last connection did.
            gone = re.compile(r"plugin wstest 1\.0\.0 \(generation \d+\) unloaded")
            for _ in range(100):
                if gone.search(srv.log()):
                    break
                time.sleep(0.05)
            self.assertRegex(srv.log(), gone)
            self.assertEqual(srv.stop(), 0, srv.log()[-3000:])


if __name__ == "__main__":
    loomtest.main()
