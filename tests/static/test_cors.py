"""The cors middleware: raw-HTTP checks of every rule, the config refusal of
"*" with credentials, and a real headless Chromium loading a page from one
loom origin that calls another (allowed, disallowed, with credentials, and a
preflighted PUT with a custom header); the test reads what the page saw."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import loomtest
import weblib

PAGE = r"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>cors</title></head>
<body><pre id="out">pending</pre>
<script>
async function run() {
  const B = decodeURIComponent(location.hash.slice(1));
  const out = {};
  async function t(name, f) {
    try { out[name] = await f(); } catch (e) { out[name] = "blocked: " + e.name; }
  }
  await t("allowed", async () => {
    const r = await fetch(B + "/api/data");
    return {status: r.status, body: await r.json(), total: r.headers.get("X-Total"),
            hidden: r.headers.get("X-Hidden")};
  });
  await t("disallowed", async () => {
    const r = await fetch(B + "/private/data");
    return {status: r.status, body: await r.text()};
  });
  await t("no_rule", async () => {
    const r = await fetch(B + "/plain");
    return {status: r.status};
  });
  await t("credentials", async () => {
    await fetch(B + "/api/login", {credentials: "include"});
    const r = await fetch(B + "/api/data", {credentials: "include"});
    return {status: r.status, body: await r.json()};
  });
  await t("without_credentials", async () => {
    const r = await fetch(B + "/api/data");
    return {status: r.status, body: await r.json()};
  });
  await t("put", async () => {
    const r = await fetch(B + "/api/item", {method: "PUT", headers: {"X-Token": "t0k"}, body: "x"});
    return {status: r.status, body: await r.json()};
  });
  await t("put_bad_header", async () => {
    const r = await fetch(B + "/api/item", {method: "PUT", headers: {"X-Other": "no"}, body: "x"});
    return {status: r.status};
  });
  document.getElementById("out").textContent = "RESULT" + JSON.stringify(out) + "END";
}
run();
</script></body></html>
"""


def cors_config(page_origin):
    return {"plugins": {"cors": {"routes": [
        {"path": "/api/*", "origins": [page_origin], "allow_credentials": True,
         "allow_headers": ["X-Token"], "expose_headers": ["X-Total"],
         "allow_methods": ["GET", "PUT"], "max_age": 60},
        {"path": "/private/*", "origins": ["http://127.0.0.1:1"]},
    ]}}}


class CorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="loom-cors-")
        cls.api_port = loomtest.free_port()
        cls.page_port = loomtest.free_port()
        cls.page_origin = "http://127.0.0.1:%d" % cls.page_port
        cls.api_dir = weblib.plugin_dir("cors", "corsapi")
        cls.api = loomtest.Server(plugins_dir=cls.api_dir, port=cls.api_port,
                                  config=cors_config(cls.page_origin), args=["--single"])
        weblib.wait_route(cls.api_port, "/plain")
        root = os.path.join(cls.tmp, "www")
        os.makedirs(root)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write(PAGE)
        cls.page_dir = weblib.plugin_dir("static")
        cls.page = loomtest.Server(plugins_dir=cls.page_dir, port=cls.page_port, args=["--single"],
                                   config={"plugins": {"static": {"mounts": [
                                       {"prefix": "/", "root": root, "index": "index.html"}]}}})
        weblib.wait_route(cls.page_port, "/index.html")

    @classmethod
    def tearDownClass(cls):
        rcs = [cls.api.stop(), cls.page.stop()]
        for d in (cls.tmp, cls.api_dir, cls.page_dir):
            shutil.rmtree(d, ignore_errors=True)
        assert rcs == [0, 0], (rcs, cls.api.log()[-3000:])

    def r(self, *a, **kw):
        return weblib.req(self.api_port, *a, **kw)

    # ---- the rules over raw HTTP ----

    def test_simple_request(self):
        o = self.page_origin
        st, h, body = self.r("/api/data", headers={"Origin": o})
        self.assertEqual(st, 200)
        self.assertEqual(h["access-control-allow-origin"], o)
        self.assertEqual(h["access-control-allow-credentials"], "true")
        self.assertEqual(h["access-control-expose-headers"], "X-Total")
        self.assertEqual(h["vary"], "Origin")
        # no Origin: no CORS headers, Vary still sent
        st, h, _ = self.r("/api/data")
        self.assertNotIn("access-control-allow-origin", h)
        self.assertEqual(h["vary"], "Origin")
        # a disallowed origin: the answer, without any CORS header
        st, h, _ = self.r("/api/data", headers={"Origin": "http://evil.example"})
        self.assertEqual(st, 200)
        self.assertFalse([k for k in h if k.startswith("access-control-")], h)
        self.assertEqual(h["vary"], "Origin")
        st, h, _ = self.r("/private/data", headers={"Origin": o})
        self.assertFalse([k for k in h if k.startswith("access-control-")], h)

    def test_preflight_answered_by_middleware(self):
        o = self.page_origin
        st, h, body = self.r("/api/item", method="OPTIONS", headers={
            "Origin": o, "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "x-token"})
        self.assertEqual(st, 204, body)
        self.assertEqual(h["access-control-allow-origin"], o)
        self.assertEqual(h["access-control-allow-methods"], "PUT")
        self.assertEqual(h["access-control-allow-headers"], "x-token")
        self.assertEqual(h["access-control-max-age"], "60")
        self.assertEqual(h["access-control-allow-credentials"], "true")
        self.assertEqual(h["vary"], "Origin")
        for hdrs in ({"Origin": "http://evil.example", "Access-Control-Request-Method": "PUT"},
                     {"Origin": o, "Access-Control-Request-Method": "DELETE"},
                     {"Origin": o, "Access-Control-Request-Method": "PUT",
                      "Access-Control-Request-Headers": "X-Token, X-Other"}):
            st, h, body = self.r("/api/item", method="OPTIONS", headers=hdrs)
            self.assertEqual(st, 403, hdrs)
            self.assertFalse([k for k in h if k.startswith("access-control-")], h)
            self.assertNotIn(b"handler was reached", body)
        # a plain OPTIONS (no preflight) reaches the handler
        st, _, body = self.r("/api/item", method="OPTIONS")
        self.assertEqual((st, body), (500, b"the OPTIONS handler was reached"))

    def test_star_with_credentials_refused(self):
        d = tempfile.mkdtemp(prefix="loom-cors-cfg-")
        try:
            cfg = os.path.join(d, "c.json")
            with open(cfg, "w") as f:
                json.dump({"plugins": {"cors": {"routes": [
                    {"path": "/x", "origins": ["http://a"]},
                    {"path": "/api/*", "origins": "*", "allow_credentials": True}]}}}, f)
            p = subprocess.run([loomtest.LOOM_BIN, "serve", "--host", "127.0.0.1", "--port",
                                str(loomtest.free_port()), "--plugins-dir", self.api_dir,
                                "--config", cfg, "--single"], capture_output=True, timeout=30)
            out = (p.stdout + p.stderr).decode()
            self.assertNotEqual(p.returncode, 0, out)
            self.assertIn('cors: routes[1].origins "*" with allow_credentials true is refused', out)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    # ---- a real browser ----

    def test_chromium(self):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not chromium:
            self.skipTest("chromium is not installed (scripts/deps.sh installs it)")
        profile = tempfile.mkdtemp(prefix="loom-chromium-")
        api = "http://127.0.0.1:%d" % self.api_port
        url = "%s/index.html#%s" % (self.page_origin, api)
        try:
            p = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                "--disable-quic", "--no-first-run", "--disable-background-networking",
                                "--disable-component-update", "--disable-sync",
                                "--disable-dev-shm-usage", "--user-data-dir=" + profile,
                                "--virtual-time-budget=15000", "--dump-dom", url],
                               capture_output=True, timeout=90)
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        dom = p.stdout.decode("utf-8", "replace")
        self.assertIn("RESULT", dom, "page did not finish:\n%s\n%s" % (dom[-2000:], p.stderr[-3000:]))
        res = json.loads(dom.split("RESULT", 1)[1].split("END", 1)[0].replace("&quot;", '"'))
        print("page saw:", json.dumps(res, sort_keys=True))
        # allowed: the body and the exposed header, not the unexposed one
        self.assertEqual(res["allowed"]["status"], 200)
        self.assertEqual(res["allowed"]["body"]["ok"], True)
        self.assertEqual(res["allowed"]["total"], "42")
        self.assertIsNone(res["allowed"]["hidden"])
        # disallowed origin and a path without a rule: the browser blocks the read
        self.assertTrue(str(res["disallowed"]).startswith("blocked"), res)
        self.assertTrue(str(res["no_rule"]).startswith("blocked"), res)
        # credentials: the cookie set cross-origin comes back only with credentials
        self.assertEqual(res["credentials"]["body"]["cookie"], "s3cret", res)
        self.assertEqual(res["without_credentials"]["body"]["cookie"], "", res)
        # a preflighted PUT with a custom header; a header not allowed is blocked
        self.assertEqual(res["put"], {"status": 200, "body": {"put": True, "token": "t0k"}}, res)
        self.assertTrue(str(res["put_bad_header"]).startswith("blocked"), res)


if __name__ == "__main__":
    loomtest.main()
