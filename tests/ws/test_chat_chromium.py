"""The chat plugin in headless Chromium: two browser contexts (two profiles'
worth of cookies and connections) whose WebSockets landed in two different
workers talk to each other through the worker bus. Chromium is driven over
the DevTools protocol with python3-websockets."""
import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import loomtest
import websockets

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Cdp:
    """A DevTools connection to the browser; targets are driven through
    sessions (flatten mode)."""

    def __init__(self, ws):
        self.ws, self.next = ws, 0
        self.pending = {}

    async def call(self, method, session=None, **params):
        self.next += 1
        msg = {"id": self.next, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        await self.ws.send(json.dumps(msg))
        while True:
            r = json.loads(await self.ws.recv())
            if r.get("id") == self.next:
                if "error" in r:
                    raise AssertionError("%s: %s" % (method, r["error"]))
                return r["result"]

    async def page(self, url):
        ctx = (await self.call("Target.createBrowserContext"))["browserContextId"]
        tid = (await self.call("Target.createTarget", url=url, browserContextId=ctx))["targetId"]
        sid = (await self.call("Target.attachToTarget", targetId=tid, flatten=True))["sessionId"]
        return ctx, sid

    async def js(self, sid, expr):
        r = await self.call("Runtime.evaluate", session=sid, expression=expr, returnByValue=True)
        return r["result"].get("value")

    async def wait(self, sid, expr, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = await self.js(sid, expr)
            if v:
                return v
            await asyncio.sleep(0.05)
        raise AssertionError("timed out waiting for %s: log %s" % (
            expr, await self.js(sid, "document.getElementById('log').innerText")))


@unittest.skipUnless(CHROMIUM, "chromium is not installed (scripts/deps.sh installs it)")
class ChatTest(unittest.TestCase):
    def test_two_contexts_two_workers(self):
        d = tempfile.mkdtemp(prefix="loom-chat-")
        shutil.copy(os.path.join(loomtest.PLUGINS_DIR, "chat.so"), d)
        profile = tempfile.mkdtemp(prefix="loom-chromium-")
        with loomtest.Server(args=["--workers", "2"], plugins_dir=d) as srv:
            srv.wait_log("listening")
            browser = subprocess.Popen(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--user-data-dir=" + profile, "--remote-debugging-port=0",
                 "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                endpoint = None
                deadline = time.time() + 30
                while time.time() < deadline and endpoint is None:
                    line = browser.stderr.readline()
                    m = re.search(r"DevTools listening on (ws://\S+)", line)
                    if m:
                        endpoint = m.group(1)
                    elif not line and browser.poll() is not None:
                        break
                self.assertIsNotNone(endpoint, "chromium did not start")
                asyncio.run(asyncio.wait_for(self.chat(endpoint, srv.port), 90))
            finally:
                browser.kill()
                browser.wait(10)
                browser.stderr.close()
                shutil.rmtree(profile, ignore_errors=True)
            self.assertEqual(srv.stop(), 0, srv.log()[-3000:])

    async def chat(self, endpoint, port):
        base = "http://127.0.0.1:%d/chat?room=test" % port
        async with websockets.connect(endpoint, max_size=None) as ws:
            cdp = Cdp(ws)
            _, alice = await cdp.page(base + "&name=alice")
            wa = await cdp.wait(alice, "document.body.dataset.worker")
            # Bob's page again in a fresh context until its socket is in the
            # other worker (the kernel spreads connections over both).
            for _ in range(30):
                ctx, bob = await cdp.page(base + "&name=bob")
                wb = await cdp.wait(bob, "document.body.dataset.worker")
                if wb != wa:
                    break
                await cdp.call("Target.disposeBrowserContext", browserContextId=ctx)
            self.assertNotEqual(wa, wb, "both pages kept landing in one worker")
            await cdp.wait(alice, "document.getElementById('log').innerText.includes('bob joined (worker %s)')" % wb)
            await cdp.js(alice, "send('hello from alice')")
            await cdp.wait(bob, "document.getElementById('log').innerText.includes('alice: hello from alice')")
            await cdp.js(bob, "send('hi alice, \u00e7a va? <b>not bold</b>')")
            await cdp.wait(alice, "document.getElementById('log').innerText.includes('bob: hi alice, \u00e7a va? <b>not bold</b>')")
            # The page's text is text, not markup.
            self.assertEqual(await cdp.js(alice, "document.querySelectorAll('#log b').length"), 0)
            # The page's origin is http://127.0.0.1:PORT: a socket to the same
            # server named otherwise (localhost) is cross-origin, and allowed_origins
            # "same" refuses it with 403; the page's own origin opens.
            async def opens(host):
                r = await cdp.call("Runtime.evaluate", session=alice, awaitPromise=True,
                                   returnByValue=True, expression="""new Promise((ok) => {
                    const w = new WebSocket('ws://%s:%d/chat/ws?room=test&name=probe');
                    w.onopen = () => ok('open'); w.onerror = () => ok('refused'); })""" % (host, port))
                return r["result"]["value"]
            self.assertEqual(await opens("localhost"), "refused")
            self.assertEqual(await opens("127.0.0.1"), "open")
            await cdp.wait(bob, "document.getElementById('log').innerText.includes('probe joined')")


if __name__ == "__main__":
    loomtest.main()
