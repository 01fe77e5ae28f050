"""What `make run` serves (issue 23, items 11, 12 and 19): the command line
of the Makefile's run target (scripts/run-dev.sh) with the real build, and
the README's SQLite sessions config as written.

- the session demo works at once: a signing key made at start (another one
  each run, none in the repository), SQLite sessions under the run
  directory, a line that says so, and no "not configured" warning;
- run-time data (notes.db, sessions.db) goes under the run directory (by
  default build/run), never in the current directory, and starts empty at
  each run: the README's first POST /notes answers id 1 every time;
- the README's sessions example starts as written (keys filled in)."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import loomtest
import weblib

SCRIPT = os.path.join(loomtest.LOOM_SRC, "scripts", "run-dev.sh")


def wait_serving(proc, port, path, logpath, timeout=20.0):
    """Until `path` answers 200 (the port opens before plugins load)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            with open(logpath) as f:
                raise AssertionError("exited with %s:\n%s" % (proc.returncode, f.read()))
        try:
            if weblib.req(port, path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("%s never answered 200" % path)


class RunDev:
    """scripts/run-dev.sh BUILD HOST PORT, as `make run` calls it, from `cwd`."""

    def __init__(self, run_dir, cwd):
        self.port = loomtest.free_port()
        self.logpath = os.path.join(run_dir + "-log")
        self.logf = open(self.logpath, "wb")
        env = dict(os.environ, LOOM_RUN_DIR=run_dir)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        self.proc = subprocess.Popen(
            ["bash", SCRIPT, os.path.abspath(loomtest.LOOM_BUILD), "127.0.0.1", str(self.port)],
            cwd=cwd, env=env, stdout=self.logf, stderr=subprocess.STDOUT)
        wait_serving(self.proc, self.port, "/demo", self.logpath)

    def log(self):
        self.logf.flush()
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self.logf.close()
        return rc


def demo_flow(test, port):
    cookie = {}

    def call(method, path):
        h = {"Cookie": "loom_session=" + cookie["v"]} if cookie.get("v") else {}
        st, hs, b = weblib.req(port, path, method=method, headers=h)
        if "set-cookie" in hs:
            cookie["v"] = hs["set-cookie"].split(";")[0].split("=", 1)[1]
        return st, json.loads(b) if st == 200 else b

    test.assertEqual(call("GET", "/demo/api/me"), (200, {"user": None, "count": 0}))
    test.assertEqual(call("POST", "/demo/api/login?user=ann"), (200, {"user": "ann", "count": 0}))
    test.assertEqual(call("POST", "/demo/api/count"), (200, {"user": "ann", "count": 1}))
    test.assertEqual(call("POST", "/demo/api/count"), (200, {"user": "ann", "count": 2}))
    test.assertEqual(call("GET", "/demo/api/me"), (200, {"user": "ann", "count": 2}))


class MakeRunTest(unittest.TestCase):
    def test_make_run_runs_this_script(self):
        with open(os.path.join(loomtest.LOOM_SRC, "Makefile")) as f:
            mk = f.read()
        self.assertRegex(mk, r"\nrun:[^\n]*\n\tscripts/run-dev\.sh \$\(BUILD\) 127\.0\.0\.1 \$\(PORT\)\n")

    def test_demo_works_and_data_stays_under_the_run_dir(self):
        tmp = tempfile.mkdtemp(prefix="loom-makerun-")
        cwd = os.path.join(tmp, "cwd")
        run = os.path.join(tmp, "run")
        os.mkdir(cwd)
        try:
            keys = []
            for attempt in range(2):
                srv = RunDev(run, cwd)
                try:
                    self.assertEqual(weblib.req(srv.port, "/demo")[0], 200)
                    demo_flow(self, srv.port)
                    st, _, b = weblib.req(srv.port, "/notes", method="POST",
                                          body=b'{"title": "hi", "body": "there"}',
                                          headers={"Content-Type": "application/json"})
                    self.assertEqual(st, 201, b)
                    self.assertEqual(json.loads(b)["id"], 1)  # a fresh database each run
                    log = srv.log()
                finally:
                    rc = srv.stop()
                self.assertEqual(rc, 0, log[-3000:])
                self.assertIn("make run: run-time data in %s" % run, log)
                self.assertIn("development key made for this run only", log)
                self.assertNotIn("not configured", log)
                self.assertNotIn("[error]", log)
                with open(os.path.join(run, "loom.json")) as f:
                    keys.append(json.load(f)["plugins"]["sessions"]["keys"][0])
                self.assertEqual(oct(os.stat(os.path.join(run, "loom.json")).st_mode & 0o777), "0o600")
                self.assertTrue(os.path.exists(os.path.join(run, "notes.db")))
                self.assertTrue(os.path.exists(os.path.join(run, "sessions.db")))
                self.assertEqual(os.listdir(cwd), [])  # nothing in the current directory
            self.assertRegex(keys[0], "^[0-9a-f]{64}$")
            self.assertNotEqual(keys[0], keys[1])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def readme_block(after):
    """The first ```json block of the README after the text `after`."""
    with open(os.path.join(loomtest.LOOM_SRC, "README.md")) as f:
        text = f.read()
    i = text.index(after)
    m = re.search(r"```json\n(.*?)```", text[i:], re.S)
    return m.group(1)


class ReadmeSessionsConfigTest(unittest.TestCase):
    def test_sqlite_example_starts_as_written(self):
        """Item 12: only the placeholders of the keys are filled in."""
        block = readme_block("**Sessions with SQLite (the default).**")
        n = [0]

        def key(m):
            n[0] += 1
            return "%d-generated-for-this-test-0123456789abcdef" % n[0]

        cfg = json.loads(re.sub(r"<[^>]*>", key, block))
        self.assertGreaterEqual(n[0], 1)
        tmp = tempfile.mkdtemp(prefix="loom-readme-sess-")
        pdir = weblib.plugin_dir("session-sqlite", "sesstest")
        cpath = os.path.join(tmp, "loom.json")
        with open(cpath, "w") as f:
            json.dump(cfg, f)
        port = loomtest.free_port()
        logf = open(os.path.join(tmp, "log"), "wb")
        # started the way the README says, from a directory of the user's
        p = subprocess.Popen([os.path.abspath(loomtest.LOOM_BIN), "serve", "--host", "127.0.0.1",
                              "--port", str(port), "--plugins-dir", pdir, "--config", cpath],
                             cwd=tmp, stdout=logf, stderr=subprocess.STDOUT)
        try:
            wait_serving(p, port, "/s", os.path.join(tmp, "log"))
            st, h, b = weblib.req(port, "/s?k=user&v=%22ann%22", method="POST")
            self.assertEqual(st, 200, b)
            self.assertIn("Secure", h["set-cookie"])
            db = cfg["plugins"]["session-sqlite"]["db"]
            self.assertTrue(os.path.exists(os.path.join(tmp, db)), os.listdir(tmp))
        finally:
            p.send_signal(signal.SIGTERM)
            rc = p.wait(30)
            logf.close()
            with open(os.path.join(tmp, "log")) as f:
                log = f.read()
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(pdir, ignore_errors=True)
        self.assertEqual(rc, 0, log)


if __name__ == "__main__":
    loomtest.main()
