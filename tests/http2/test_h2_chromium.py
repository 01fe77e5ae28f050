"""Headless Chromium loads a page and its 50 assets (30 images, 10 scripts,
10 style sheets, one of the images 2 MiB) from the static plugin over
HTTP/2 (TLS, ALPN h2), with the page reporting what the browser saw: every
asset loaded, each over "h2" (Resource Timing's nextHopProtocol). The
access log shows the same 51 requests as HTTP/2.0. Then the page calls the
other shipped plugins over the same connection: hello, echo, notes (on the
thread pool), a compressed text file, and an event stream (ticker)."""
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import unittest
import zlib

import h2lib
import loomtest

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>h2 page</title>
<script>
window.__js = 0; window.__img = 0; window.__css = 0; window.__bad = [];
function done() {
  var rs = performance.getEntriesByType("resource");
  var h2 = rs.filter(function (r) { return r.nextHopProtocol === "h2"; }).length;
  var nav = performance.getEntriesByType("navigation")[0].nextHopProtocol;
  document.getElementById("out").textContent = "RESULT " + JSON.stringify({
    js: window.__js, img: window.__img, css: window.__css, bad: window.__bad,
    resources: rs.length, h2: h2, nav: nav}) + " END";
}
async function api() {
  var out = {};
  try {
    var r = await fetch("/"); out.hello = [r.status, await r.text()];
    r = await fetch("/data", {method: "POST", headers: {"Content-Type": "application/json"},
                              body: JSON.stringify({k: "v"})});
    out.echo = [r.status, await r.text()];
    r = await fetch("/notes", {method: "POST", headers: {"Content-Type": "application/json"},
                               body: JSON.stringify({title: "from chromium", body: "h2"})});
    var note = await r.json(); out.created = r.status;
    r = await fetch("/notes/" + note.id); out.note = [r.status, (await r.json()).title];
    r = await fetch("/p/text.txt"); var t = await r.text();
    var e = performance.getEntriesByName(r.url)[0];
    out.text = [r.status, t.length, e.encodedBodySize < e.decodedBodySize, e.nextHopProtocol];
    out.ticks = await new Promise(function (resolve) {
      var es = new EventSource("/ticker/events"), n = 0;
      es.addEventListener("tick", function () { if (++n == 2) { es.close(); resolve(n); } });
      es.onerror = function () { es.close(); resolve(-n); };
    });
  } catch (err) { out.error = String(err); }
  document.getElementById("api").textContent = "API " + JSON.stringify(out) + " ENDAPI";
}
window.addEventListener("load", function () { done(); api(); });
</script>
%(css)s
%(js)s
</head><body><pre id="out">waiting</pre><pre id="api">waiting</pre>
%(img)s
</body></html>
"""


def png(w, h, rgb, extra=0):
    """A w x h PNG of one colour; `extra` bytes of incompressible noise in a
    private ancillary chunk make it large."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"".join(b"\x00" + bytes(rgb) * w for _ in range(h))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    if extra:
        out += chunk(b"ruBB", os.urandom(extra))
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class Chromium(unittest.TestCase):
    def test_page_and_50_assets_over_h2(self):
        chromium = shutil.which("chromium")
        self.assertIsNotNone(chromium, "chromium is not installed (scripts/deps.sh installs it)")
        tmp = tempfile.mkdtemp(prefix="loomh2-chromium-")
        www = os.path.join(tmp, "www")
        os.makedirs(os.path.join(www, "a"))
        imgs, js, css = [], [], []
        for i in range(30):
            with open(os.path.join(www, "a", "i%d.png" % i), "wb") as f:
                f.write(png(8, 8, (i * 8, 100, 200), extra=2 << 20 if i == 0 else 0))
            imgs.append('<img src="/p/a/i%d.png" onload="window.__img++" '
                        'onerror="window.__bad.push(this.src)">' % i)
        for i in range(10):
            with open(os.path.join(www, "a", "s%d.js" % i), "w") as f:
                f.write("window.__js++; /* %s */\n" % ("x" * 3000))
            js.append('<script src="/p/a/s%d.js" onerror="window.__bad.push(this.src)"></script>'
                      % i)
            with open(os.path.join(www, "a", "c%d.css" % i), "w") as f:
                f.write(".c%d { color: #%06x; }\n" % (i, i * 1000))
            css.append('<link rel="stylesheet" href="/p/a/c%d.css" onload="window.__css++" '
                       'onerror="window.__bad.push(this.href)">' % i)
        text = "".join("line %d of a text the browser gets compressed\n" % i for i in range(2000))
        with open(os.path.join(www, "text.txt"), "w") as f:
            f.write(text)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write(PAGE % {"css": "\n".join(css), "js": "\n".join(js), "img": "\n".join(imgs)})
        pdir = tempfile.mkdtemp(prefix="loomh2-chromium-plugins-")
        for p in ("static", "hello", "echo", "notes", "compress", "ticker"):
            shutil.copy(os.path.join(loomtest.PLUGINS_DIR, p + ".so"), pdir)
        srv = h2lib.H2Server(plugins_dir=pdir, args=["--single"], config={
            "plugins": {"static": {"mounts": [{"prefix": "/p", "root": www,
                                               "index": "index.html"}]},
                        "notes": {"db": os.path.join(tmp, "notes.db")},
                        "ticker": {"interval_ms": 100, "max_events": 3}}})
        profile = os.path.join(tmp, "profile")
        try:
            srv.wait_log("listening on")
            p = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                "--disable-quic", "--no-first-run", "--disable-background-networking",
                                "--disable-component-update", "--disable-sync",
                                "--disable-dev-shm-usage", "--ignore-certificate-errors",
                                "--user-data-dir=" + profile, "--virtual-time-budget=15000",
                                "--dump-dom", srv.h2url("/p/index.html")],
                               capture_output=True, timeout=120)
            dom = p.stdout.decode("utf-8", "replace")
            m = re.search(r'<pre id="out">RESULT (.*?) END</pre>', dom)
            self.assertTrue(m, "page did not finish:\n%s\n%s" % (dom[-2000:],
                                                                 p.stderr.decode()[-3000:]))
            res = json.loads(m.group(1).replace("&quot;", '"'))
            self.assertEqual(res["bad"], [])
            self.assertEqual((res["img"], res["js"], res["css"]), (30, 10, 10), res)
            self.assertEqual(res["nav"], "h2")
            self.assertEqual(res["resources"], 50)
            self.assertEqual(res["h2"], 50)
            # The access log is written every 250 ms: the last requests' lines
            # may come after Chromium is done.
            deadline = time.time() + 5
            while True:
                lines = [ln for ln in srv.access(5)
                         if '"GET /p/index.html ' in ln or '"GET /p/a/' in ln]
                ok = [ln for ln in lines if " HTTP/2.0\" 200 " in ln]
                if len(ok) >= 51 or time.time() >= deadline:
                    break
                time.sleep(0.1)
            self.assertEqual(len(ok), 51, lines[:3])
            m = re.search(r'<pre id="api">API (.*?) ENDAPI</pre>', dom)
            self.assertTrue(m, dom[-2000:])
            api = json.loads(m.group(1).replace("&quot;", '"'))
            self.assertEqual(api.get("hello"), [200, "Hello, World!"], api)
            self.assertEqual(api["echo"], [200, 'Received data: {"k":"v"}'])
            self.assertEqual((api["created"], api["note"]), (201, [200, "from chromium"]))
            self.assertEqual(api["text"], [200, len(text), True, "h2"])
            self.assertEqual(api["ticks"], 2)
        finally:
            rc = srv.stop()
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(pdir, ignore_errors=True)
        self.assertEqual(rc, 0, srv.log()[-3000:])


if __name__ == "__main__":
    loomtest.main()
