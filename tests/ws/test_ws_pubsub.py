"""Channels: loom_ws_publish reaches the subscribers in every worker of a
server (the worker bus), and, through Redis pub/sub, those of another server
that shares the Redis server, exactly once each; a Redis outage costs only
the other servers' copies, and they come back with Redis."""
import asyncio
import json
import os
import subprocess
import shutil
import unittest

import loomtest
import websockets
import wslib


async def connect_spread(url, n_workers, at_least=3, limit=200):
    """Opens connections until every worker has at least `at_least`;
    returns {pid: [ws, ...]}."""
    by = {}
    for _ in range(limit):
        ws = await websockets.connect(url)
        await ws.send("pid")
        pid = (await ws.recv()).split()[1]
        by.setdefault(pid, []).append(ws)
        if len(by) == n_workers and all(len(v) >= at_least for v in by.values()):
            return by
    raise AssertionError("connections did not reach %d workers: %s" % (n_workers, list(by)))


async def subscribe(conns, channel):
    for ws in conns:
        await ws.send("sub:" + channel)
        assert await ws.recv() == "subscribed %s 0" % channel


async def expect_one(ws, want, timeout=5):
    got = await asyncio.wait_for(ws.recv(), timeout)
    assert got == want, (got, want)


async def expect_none(conns, wait=0.3):
    async def nothing(ws):
        try:
            got = await asyncio.wait_for(ws.recv(), wait)
            raise AssertionError("unexpected message %r" % got)
        except asyncio.TimeoutError:
            pass
    await asyncio.gather(*(nothing(ws) for ws in conns))


class PubsubTest(unittest.TestCase):
    def test_config_errors_name_the_key(self):
        cases = [({"ws_pubsub": {"redis": "127.0.0.1:notaport"}}, "ws_pubsub.redis"),
                 ({"ws_pubsub": {"redis": {"hots": "x"}}}, "ws_pubsub.redis.hots"),
                 ({"ws_pubsub": {"kafka": "x"}}, "ws_pubsub.kafka"),
                 ({"ws_pubsub": "redis"}, "ws_pubsub"),
                 ({"ws_drain_timeout": -1}, "ws_drain_timeout")]
        for cfg, key in cases:
            path = os.path.join(loomtest.tempfile.mkdtemp(prefix="loom-wscfg-"), "c.json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            p = subprocess.run([loomtest.LOOM_BIN, "serve", "--single", "--port", "0", "--config",
                                path], capture_output=True, text=True, timeout=20)
            self.assertNotEqual(p.returncode, 0, cfg)
            lines = [l for l in p.stderr.splitlines() if key in l]
            self.assertEqual(len(lines), 1, p.stderr)


    def test_workers_share_channels(self):
        with loomtest.Server(args=["--workers", "2"], plugins_dir=wslib.plugin_dir()) as srv:
            srv.wait_log("listening")
            url = "ws://127.0.0.1:%d/ws/t" % srv.port

            async def go():
                by = await connect_spread(url, 2)
                conns = [ws for v in by.values() for ws in v]
                await subscribe(conns[1:], "room:1")
                await conns[0].send("pub:room:1 hello all")
                await asyncio.gather(*(expect_one(ws, "hello all") for ws in conns[1:]))
                await expect_none(conns)  # once each; not the publisher (not subscribed)
                # Large (past one datagram: a memfd) and binary.
                big = "x" * 200000
                await conns[0].send("pub:room:1 " + big)
                await asyncio.gather(*(expect_one(ws, big) for ws in conns[1:]))
                await conns[-1].send("pubbin:room:1 bytes")
                await asyncio.gather(*(expect_one(ws, b"bytes") for ws in conns[1:]))
                # Unsubscribed connections hear nothing; other channels are apart.
                await conns[1].send("unsub:room:1")
                self.assertEqual(await conns[1].recv(), "unsubscribed room:1 0")
                await subscribe([conns[0]], "room:2")
                await conns[2].send("pub:room:1 second")
                await asyncio.gather(*(expect_one(ws, "second") for ws in conns[2:]))
                await expect_none(conns[:2])
                for ws in conns:
                    await ws.close()
            asyncio.run(asyncio.wait_for(go(), 60))
            self.assertEqual(srv.stop(), 0, srv.log()[-3000:])

    @unittest.skipUnless(shutil.which("redis-server"), "redis-server missing")
    def test_redis_across_servers(self):
        redis = wslib.Redis()
        try:
            cfg = {"ws_pubsub": {"redis": {"host": "127.0.0.1", "port": redis.port,
                                           "prefix": "t%d:" % os.getpid()}}}
            a = loomtest.Server(args=["--workers", "2"], config=cfg, plugins_dir=wslib.plugin_dir())
            b = loomtest.Server(args=["--workers", "2"], config=cfg, plugins_dir=wslib.plugin_dir())
            with a, b:
                a.wait_log("listening")
                b.wait_log("listening")

                async def go():
                    ca = [ws for v in (await connect_spread("ws://127.0.0.1:%d/ws/t" % a.port, 2,
                                                            2)).values() for ws in v]
                    cb = [ws for v in (await connect_spread("ws://127.0.0.1:%d/ws/t" % b.port, 2,
                                                            2)).values() for ws in v]
                    await subscribe(ca + cb, "news")
                    # Each worker subscribes on Redis itself (4 workers: 4 lines).
                    for srv in (a, b):
                        for _ in range(50):
                            if srv.log().count("subscribed on redis") >= 2:
                                break
                            await asyncio.sleep(0.1)
                    await asyncio.sleep(0.3)
                    await ca[0].send("pub:news from a")
                    await asyncio.gather(*(expect_one(ws, "from a") for ws in ca + cb))
                    await cb[0].send("pub:news from b")
                    await asyncio.gather(*(expect_one(ws, "from b") for ws in ca + cb))
                    await expect_none(ca + cb)  # exactly once: no echo from Redis
                    # Redis goes away: this server still hears its own news.
                    redis.stop(hold_port=True)  # keeps the port ours until it restarts
                    await asyncio.sleep(0.5)
                    await ca[0].send("pub:news redis down")
                    await asyncio.gather(*(expect_one(ws, "redis down") for ws in ca))
                    await expect_none(cb, 0.5)
                    # And Redis comes back: reconnected within a few seconds.
                    nonlocal_redis[0] = wslib.Redis(redis.port)
                    for _ in range(100):
                        await ca[0].send("pub:news probe")
                        await asyncio.gather(*(expect_one(ws, "probe") for ws in ca))
                        try:
                            await asyncio.wait_for(cb[0].recv(), 0.2)
                            break
                        except asyncio.TimeoutError:
                            pass
                    else:
                        raise AssertionError("no delivery through Redis after its restart")
                    for ws in ca + cb:
                        await ws.close()
                nonlocal_redis = [None]
                try:
                    asyncio.run(asyncio.wait_for(go(), 90))
                finally:
                    if nonlocal_redis[0]:
                        nonlocal_redis[0].stop()
                self.assertIn("ws_pubsub: redis", a.log())  # the outage was said
                self.assertEqual(a.stop(), 0, a.log()[-3000:])
                self.assertEqual(b.stop(), 0, b.log()[-3000:])
        finally:
            redis.stop()


if __name__ == "__main__":
    loomtest.main()
