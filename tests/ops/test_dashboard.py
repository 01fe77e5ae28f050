"""The dashboard in headless Chromium, over the DevTools protocol
(python3-websockets): the page loads from the admin listener (the token in
its URL fragment) without a console error or an exception, its request
counter rises while a load runs, its charts are drawn, a plugin reload
shows the new generation on every worker, and a screenshot is saved under
the build directory (test-artifacts/dashboard.png)."""
import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import aiohttp

import loomtest

CHROMIUM = "/usr/bin/chromium"
OPS = os.path.join(loomtest.LOOM_BUILD, "test-plugins-ops")
RELOAD = os.path.join(loomtest.LOOM_BUILD, "test-plugins-reload")
TOKEN = "dashboard-token-0123456789abcdef"


class Page:
    """One page target of Chromium: commands, and the events that came."""

    def __init__(self, ws):
        self.ws, self.next_id, self.pending, self.events = ws, 0, {}, []
        self.reader = asyncio.ensure_future(self.read())

    async def read(self):
        async for raw in self.ws:
            m = json.loads(raw)
            if "id" in m and m["id"] in self.pending:
                self.pending.pop(m["id"]).set_result(m)
            elif "method" in m:
                self.events.append(m)

    async def call(self, method, **params):
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        m = await asyncio.wait_for(fut, 30)
        if "error" in m:
            raise AssertionError("%s: %s" % (method, m["error"]))
        return m["result"]

    async def eval(self, expr):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise AssertionError("%s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    async def until(self, expr, test, timeout=15):
        deadline, v = time.time() + timeout, None
        while time.time() < deadline:
            try:
                v = await self.eval(expr)
            except AssertionError as e:  # the page is not there yet (still about:blank)
                v = e
            if not isinstance(v, AssertionError) and test(v):
                return v
            await asyncio.sleep(0.1)
        raise AssertionError("%s stayed %r" % (expr, v))

    def problems(self):
        """Console errors and uncaught exceptions seen so far."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                out.append(p["exceptionDetails"])
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(p)
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(p["entry"])
        return out


class Dashboard(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(CHROMIUM):
            self.skipTest("chromium is not installed (scripts/deps.sh)")
        self.tmp = tempfile.mkdtemp(prefix="loom-dash-")
        self.plugins = os.path.join(self.tmp, "plugins")
        os.mkdir(self.plugins)
        shutil.copy(os.path.join(OPS, "opstest.so"), self.plugins)
        shutil.copy(os.path.join(RELOAD, "v1", "version.so"), self.plugins)
        self.aport = loomtest.free_port()
        self.srv = loomtest.Server(plugins_dir=self.plugins, args=["--workers", "2"], config={
            "admin": {"listen": "127.0.0.1:%d" % self.aport, "token": TOKEN}})
        self.srv.wait_log("(admin)")
        self.chrome = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--user-data-dir=" + os.path.join(self.tmp, "profile"),
             "--remote-debugging-port=0", "--window-size=1280,1400", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.ws_url = None
        deadline = time.time() + 30
        while time.time() < deadline and not self.ws_url:
            line = self.chrome.stderr.readline().decode("utf-8", "replace")
            if not line and self.chrome.poll() is not None:
                break
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            self.ws_url = m.group(1) if m else None
        self.assertTrue(self.ws_url, "chromium did not open its DevTools endpoint")

    def tearDown(self):
        loomtest.terminate(self.chrome)
        self.chrome.stderr.close()
        rc = self.srv.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(rc, 0, self.srv.log())

    def test_dashboard(self):
        asyncio.run(self.drive())

    async def load(self, stop):
        """Keeps 4 clients busy on the public port until the event `stop`;
        returns how many answers."""
        n = 0
        async with aiohttp.ClientSession() as s:
            async def one():
                nonlocal n
                while not stop.is_set():
                    async with s.get(self.srv.url("/o/ok")) as r:
                        await r.read()
                        n += r.status == 200
            await asyncio.gather(*[one() for _ in range(4)])
        return n

    async def drive(self):
        import websockets
        async with websockets.connect(self.ws_url, max_size=None) as browser:
            b = Page(browser)
            target = await b.call("Target.createTarget", url="about:blank")
            page_ws = self.ws_url.split("/devtools/")[0] + "/devtools/page/" + target["targetId"]
            async with websockets.connect(page_ws, max_size=None) as ws:
                p = Page(ws)
                for domain in ("Runtime", "Log", "Page"):
                    await p.call(domain + ".enable")
                await p.call("Page.navigate", url="http://127.0.0.1:%d/#token=%s" % (self.aport, TOKEN))
                await p.until("document.getElementById('state').textContent",
                              lambda v: v and v.startswith("live"))
                await p.until("document.querySelectorAll('#workers tbody tr').length",
                              lambda v: v == 2)
                total = "parseInt(document.getElementById('total-requests').textContent.replace(/,/g, ''))"
                before = await p.eval(total)
                # The counter rises while the load runs, second after second.
                # The page asks again 1 s after each answer, later on a busy
                # machine: the load runs 3.5 s, and on until the page showed
                # two rises (at most 10 s).
                seen = [before]
                stop = asyncio.Event()
                loader = asyncio.ensure_future(self.load(stop))
                t0 = time.time()
                while time.time() - t0 < 3.5 or (len(seen) < 3 and time.time() - t0 < 10):
                    await asyncio.sleep(0.5)
                    v = await p.eval(total)
                    if v != seen[-1]:
                        seen.append(v)
                stop.set()
                served = await loader
                print("load %.1f s, %d answers; the page showed %s" % (time.time() - t0, served, seen))
                self.assertGreater(served, 100)
                self.assertGreaterEqual(len(seen), 3, seen)
                self.assertEqual(seen, sorted(seen))
                # After the load, the page catches up with every request.
                await p.until(total, lambda v: v >= before + served)
                rps = await p.eval("document.getElementById('rps').textContent")
                self.assertNotEqual(rps, "–")
                # The charts are drawn (pixels on the request rate canvas).
                painted = await p.eval(
                    "(() => { const c = document.getElementById('c-rps');"
                    " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                    " let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; })()")
                self.assertGreater(painted, 500)
                # A reload shows the new generation on both workers.
                gens = ("Array.from(document.querySelectorAll('#plugins tbody tr'))"
                        ".filter(r => r.dataset.plugin === 'version')"
                        ".map(r => r.dataset.worker + ':' + r.dataset.generation + ':' +"
                        " r.children[2].textContent).sort().join(' ')")
                self.assertEqual(await p.eval(gens), "0:2:1.0.1 1:2:1.0.1")
                subprocess.run([loomtest.LOOM_BIN, "install-plugin",
                                os.path.join(RELOAD, "v2", "version.so"), self.plugins],
                               check=True, capture_output=True, timeout=20)
                self.assertEqual(await p.until(gens, lambda v: v == "0:3:1.0.2 1:3:1.0.2"),
                                 "0:3:1.0.2 1:3:1.0.2")
                shot = await p.call("Page.captureScreenshot", format="png")
                png = base64.b64decode(shot["data"])
                out = os.path.join(loomtest.LOOM_BUILD, "test-artifacts")
                os.makedirs(out, exist_ok=True)
                with open(os.path.join(out, "dashboard.png"), "wb") as f:
                    f.write(png)
                self.assertTrue(png.startswith(b"\x89PNG"))
                self.assertGreater(len(png), 20000)
                self.assertEqual(p.problems(), [])
                p.reader.cancel()
            await b.call("Target.closeTarget", targetId=target["targetId"])
            b.reader.cancel()


if __name__ == "__main__":
    loomtest.main()
