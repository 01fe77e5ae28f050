"""The shipped plugins and the seed article's server samples, loaded together
into the real binary: hello (GET /), echo (POST /data), the logging
middleware, the catch-all 404 route, and notes (CRUD on SQLite through the
thread pool, persisting across a restart)."""
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import aiohttp

import loomtest


class ShippedPlugins(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="loom-shipped-")
        cls.plugins = os.path.join(cls.dir, "plugins")
        os.mkdir(cls.plugins)
        for name in ("hello", "echo", "logging", "notes"):
            shutil.copy(os.path.join(loomtest.PLUGINS_DIR, name + ".so"), cls.plugins)
        shutil.copy(os.path.join(loomtest.LOOM_BUILD, "example-plugins", "notfound.so"), cls.plugins)
        cls.db = os.path.join(cls.dir, "notes.db")
        cls.config = {"plugins": {"notes": {"db": cls.db}}}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_seed_server_samples(self):
        with loomtest.Server(plugins_dir=self.plugins, config=self.config) as srv:
            async def run():
                async with aiohttp.ClientSession() as s:
                    async with s.get(srv.url("/")) as r:
                        hello = (r.status, await r.text())
                    async with s.post(srv.url("/data"), json={"key1": "value1", "key2": "value2"}) as r:
                        data = (r.status, await r.text())
                    async with s.get(srv.url("/no/such/page")) as r:
                        missing = (r.status, await r.text())
                    async with s.post(srv.url("/echo"), json={"a": [1, 2, {"b": None}]}) as r:
                        echo = (r.status, await r.json())
                    return hello, data, missing, echo
            hello, data, missing, echo = asyncio.run(run())
            self.assertEqual(hello, (200, "Hello, World!"))
            self.assertEqual(data, (200, 'Received data: {"key1":"value1","key2":"value2"}'))
            self.assertEqual(missing, (404, "Not Found"))
            self.assertEqual(echo, (200, {"a": [1, 2, {"b": None}]}))
            self.assertEqual(srv.stop(), 0)
            log = srv.log()
            # the logging middleware: method and path before, status after
            self.assertIn("plugin logging: Request: GET /no/such/page", log)
            self.assertIn("plugin logging: Response status: 404", log)
            self.assertIn("plugin logging: Request: POST /data", log)

    def test_notes_crud_on_thread_pool_survives_restart(self):
        with loomtest.Server(plugins_dir=self.plugins, config=self.config) as srv:
            async def run():
                async with aiohttp.ClientSession() as s:
                    async def create(i):
                        async with s.post(srv.url("/notes"), json={"title": "t%d" % i, "body": "b"}) as r:
                            return r.status, await r.json()
                    made = await asyncio.gather(*[create(i) for i in range(50)])
                    ids = sorted(n["id"] for st, n in made)
                    async with s.put(srv.url("/notes/%d" % ids[0]), json={"title": "new", "body": "x"}) as r:
                        upd = (r.status, await r.json())
                    async with s.delete(srv.url("/notes/%d" % ids[1])) as r:
                        dele = r.status
                    async with s.get(srv.url("/notes/%d" % ids[1])) as r:
                        gone = r.status
                    async with s.post(srv.url("/notes"), json={"title": 5}) as r:
                        bad = r.status
                    async with s.get(srv.url("/notes")) as r:
                        all_ = await r.json()
                    return made, ids, upd, dele, gone, bad, all_
            made, ids, upd, dele, gone, bad, all_ = asyncio.run(run())
            self.assertEqual({st for st, _ in made}, {201})
            self.assertEqual(len(set(ids)), 50)
            self.assertEqual(upd, (200, {"id": ids[0], "title": "new", "body": "x"}))
            self.assertEqual((dele, gone, bad), (204, 404, 422))
            self.assertEqual(len(all_), 49)
            self.assertEqual(srv.stop(), 0)
        with loomtest.Server(plugins_dir=self.plugins, config=self.config) as srv:
            out = subprocess.run(["curl", "-s", srv.url("/notes/%d" % ids[0])], capture_output=True,
                                 text=True, timeout=20).stdout
            self.assertEqual(json.loads(out)["title"], "new")
            self.assertEqual(srv.stop(), 0)

    # ---- config typos (issue 23, item 10) ----

    def start_refused(self, plugins_dir, config):
        """Starts loom with `config`; it must refuse to start. Returns its output."""
        cfg = os.path.join(self.dir, "typo.json")
        with open(cfg, "w") as f:
            json.dump(config, f)
        p = subprocess.run([loomtest.LOOM_BIN, "serve", "--host", "127.0.0.1", "--port",
                            str(loomtest.free_port()), "--plugins-dir", plugins_dir, "--config", cfg,
                            "--single"], capture_output=True, timeout=30)
        out = (p.stdout + p.stderr).decode()
        self.assertNotEqual(p.returncode, 0, out)
        return out

    def lines_with(self, out, *words):
        return [ln for ln in out.splitlines() if all(w in ln for w in words)]

    def test_config_typos_stop_startup(self):
        """A misspelt key in a plugin's config, and a config object for a
        plugin that is not loaded, each stop the server with one line that
        names the key (and the plugin); the core's "sessions" and a disabled
        plugin's object are not refused."""
        cors_dir = os.path.join(self.dir, "cors-only")
        os.makedirs(cors_dir, exist_ok=True)
        shutil.copy(os.path.join(loomtest.PLUGINS_DIR, "cors.so"), cors_dir)
        out = self.start_refused(cors_dir, {"plugins": {"cors": {"routes": [
            {"path": "/api/*", "orgins": ["https://app.example.com"]}]}}})
        self.assertEqual(len(self.lines_with(out, "plugin cors", '"orgins"', "routes[0]")), 1, out)
        out = self.start_refused(self.plugins, {"plugins": {
            "notes": {"db": self.db}, "sesions": {"keys": ["k" * 32]}}})
        bad = self.lines_with(out, "'sesions'")
        self.assertEqual(len(bad), 1, out)
        self.assertIn("did you mean 'sessions'", bad[0])
        self.assertNotIn("fix or remove the plugins above", out)
        out = self.start_refused(self.plugins, {"plugins": {"note": {"db": self.db}}})
        self.assertEqual(len(self.lines_with(out, "'note'", "did you mean 'notes'")), 1, out)
        with loomtest.Server(plugins_dir=self.plugins, args=["--single"], config={"plugins": {
                "notes": {"db": self.db}, "sessions": {"keys": ["k" * 32]},
                "gone": {"enabled": False}}}) as srv:
            srv.wait_log("listening on")
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_every_shipped_plugin_refuses_unknown_keys(self):
        names = sorted(f[:-3] for f in os.listdir(loomtest.PLUGINS_DIR) if f.endswith(".so"))
        self.assertGreaterEqual(len(names), 11, names)
        for name in names:
            d = os.path.join(self.dir, "only-" + name)
            os.makedirs(d, exist_ok=True)
            shutil.copy(os.path.join(loomtest.PLUGINS_DIR, name + ".so"), d)
            out = self.start_refused(d, {"plugins": {name: {"no_such_key": 1}}})
            self.assertEqual(len(self.lines_with(out, "plugin %s:" % name, '"no_such_key"')), 1,
                             out)


if __name__ == "__main__":
    loomtest.main()
