"""The ticker page in headless Chromium, driven over the DevTools protocol
(python3-websockets): the EventSource updates the page at least three times
within five seconds, reconnects after the server ends its stream and
resumes with Last-Event-ID; and Chromium gets br over plain HTTP (a
compressed response, a precompressed static file, the event stream)."""
import asyncio
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import loomtest

try:
    import brotli
except ImportError:
    brotli = None

CHROMIUM = "/usr/bin/chromium"


class Cdp:
    """A minimal DevTools client: one page, commands in its session."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)
        self.session = None

    async def call(self, method, params=None, session=True, timeout=15):
        i = next(self.ids)
        msg = {"id": i, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        await self.ws.send(json.dumps(msg))
        deadline = time.time() + timeout
        while time.time() < deadline:
            raw = await asyncio.wait_for(self.ws.recv(), max(0.1, deadline - time.time()))
            m = json.loads(raw)
            if m.get("id") == i:
                if "error" in m:
                    raise AssertionError("%s: %s" % (method, m["error"]))
                return m["result"]
        raise AssertionError("no answer to " + method)

    async def eval(self, expr):
        r = await self.call("Runtime.evaluate", {"expression": expr, "awaitPromise": True,
                                                 "returnByValue": True})
        if "exceptionDetails" in r:
            raise AssertionError("%s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")


class ChromiumTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(CHROMIUM):
            raise unittest.SkipTest("chromium is not installed (scripts/deps.sh)")
        cls.tmp = tempfile.mkdtemp(prefix="loom-chromium-")
        pdir = os.path.join(cls.tmp, "plugins")
        os.mkdir(pdir)
        for p in ("compress", "static", "ticker"):
            shutil.copy(os.path.join(loomtest.PLUGINS_DIR, p + ".so"), pdir)
        shutil.copy(os.path.join(loomtest.LOOM_BUILD, "test-plugins-compress", "ztest.so"), pdir)
        root = os.path.join(cls.tmp, "pub")
        os.mkdir(root)
        cls.page = "static text served precompressed to the browser.\n" * 60
        with open(os.path.join(root, "page.txt"), "w") as f:
            f.write(cls.page)
        if brotli:
            with open(os.path.join(root, "page.txt.br"), "wb") as f:
                f.write(brotli.compress(cls.page.encode()))
        # Each stream ends after 5 ticks: the page must reconnect and resume.
        cls.srv = loomtest.Server(args=["--single"], plugins_dir=pdir, config={
            "plugins": {"ticker": {"interval_ms": 300, "max_events": 5, "retry_ms": 300},
                        "static": {"mounts": [{"prefix": "/s", "root": root}]}}})
        cls.srv.wait_log("plugin ztest")
        cls.profile = os.path.join(cls.tmp, "profile")
        cls.chrome = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--user-data-dir=" + cls.profile, "--remote-debugging-port=0",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        cls.ws_url = None
        deadline = time.time() + 30
        while time.time() < deadline:
            line = cls.chrome.stderr.readline().decode("utf-8", "replace")
            if not line and cls.chrome.poll() is not None:
                break
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                cls.ws_url = m.group(1)
                break
        if not cls.ws_url:
            cls.tearDownClass()
            raise AssertionError("chromium did not start its DevTools endpoint")

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "chrome", None):
            loomtest.terminate(cls.chrome)
        rc = cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, "server exit status %s:\n%s" % (rc, cls.srv.log())

    def run_page(self, url, body):
        async def main():
            import websockets
            async with websockets.connect(self.ws_url, max_size=None) as ws:
                cdp = Cdp(ws)
                target = await cdp.call("Target.createTarget", {"url": "about:blank"})
                att = await cdp.call("Target.attachToTarget",
                                     {"targetId": target["targetId"], "flatten": True})
                cdp.session = att["sessionId"]
                await cdp.call("Page.navigate", {"url": url})
                try:
                    return await body(cdp)
                finally:
                    await cdp.call("Target.closeTarget", {"targetId": target["targetId"]},
                                   session=False)
        return asyncio.run(main())

    def test_ticker_updates_and_resumes(self):
        async def body(cdp):
            text = "(function(){const e=document.getElementById('%s');return e?e.textContent:null})()"
            seen, changes, last = [], 0, None
            t0 = time.time()
            while time.time() - t0 < 5:
                v = await cdp.eval(text % "time")
                if v and v != "connecting..." and v != last:
                    if last is not None:
                        changes += 1
                    seen.append(v)
                    last = v
                await asyncio.sleep(0.1)
            self.assertGreaterEqual(changes, 3, seen)
            # after 5 ticks the server ends the stream; EventSource reconnects
            # with Last-Event-ID and the ticker says where it resumed
            deadline = time.time() + 10
            while time.time() < deadline:
                opens = await cdp.eval(text % "opens")
                resumed = await cdp.eval(text % "resumed")
                if opens and int(opens) >= 2 and resumed and resumed.isdigit():
                    break
                await asyncio.sleep(0.1)
            self.assertGreaterEqual(int(opens), 2)
            self.assertTrue(resumed.isdigit(), resumed)
            # it resumed right after the last event it had: events go on past
            # it. The first event of the new stream carries the current tick's
            # id, which is the resumed one when the reconnect (retry_ms) came
            # before the next tick (interval_ms, due at the same time).
            both = ("(function(){const g=(i)=>document.getElementById(i).textContent;"
                    "return g('id')+' '+g('resumed')})()")
            deadline = time.time() + 2
            while True:
                ev, resumed = (await cdp.eval(both)).split()
                if (ev.isdigit() and resumed.isdigit() and int(ev) > int(resumed)) or \
                        time.time() >= deadline:
                    break
                await asyncio.sleep(0.05)
            self.assertTrue(ev.isdigit() and resumed.isdigit(), (ev, resumed))
            self.assertGreater(int(ev), int(resumed))
            reqs = await cdp.eval(text % "requests")
            self.assertTrue(reqs.isdigit() and int(reqs) >= 2, reqs)
        self.run_page(self.srv.url("/ticker/"), body)

    def test_br_over_http(self):
        if not brotli:
            self.skipTest("python3-brotli is not installed")

        async def body(cdp):
            await asyncio.sleep(0.5)
            js = ("fetch(%r).then(async r => JSON.stringify([r.headers.get('content-encoding'),"
                  " await r.text()]))")
            ce, text = json.loads(await cdp.eval(js % "/z/body?size=20000&ct=text/plain"))
            self.assertEqual((ce, len(text)), ("br", 20000))
            ce, text = json.loads(await cdp.eval(js % "/s/page.txt"))
            self.assertEqual((ce, text), ("br", self.page))
            # the event stream too, decoded by the browser as it comes
            first = await cdp.eval(
                "fetch('/ticker/events').then(async r => { const rd = r.body.getReader();"
                " const c = await rd.read(); rd.cancel();"
                " return JSON.stringify([r.headers.get('content-encoding'),"
                " new TextDecoder().decode(c.value)]); })")
            ce, chunk = json.loads(first)
            self.assertEqual(ce, "br")
            self.assertIn("event: tick", chunk)
        self.run_page(self.srv.url("/ticker/"), body)


if __name__ == "__main__":
    loomtest.main()
