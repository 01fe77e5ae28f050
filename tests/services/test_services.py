"""Services between plugins and request watchers (ABI 1.4) against the real
binary: lookup by name and minimum version, a provider replaced while a
request holds its table (the old table stays valid until that request is
done), a provider removed, registrations the host refuses, and the order
of a request's watcher events."""
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import loomtest

S = os.path.join(loomtest.LOOM_BUILD, "test-plugins-services")


def get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Services(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="loom-services-")
        self.plugins = os.path.join(self.dir, "plugins")
        os.mkdir(self.plugins)
        self.install(os.path.join(S, "v1", "svcprov.so"))
        self.install(os.path.join(S, "svcuse.so"))
        self.aport = loomtest.free_port()  # the admin listener: which plugins requests hold
        self.srv = loomtest.Server(args=["--workers", "1"], plugins_dir=self.plugins,
                                   config={"admin": {"listen": "127.0.0.1:%d" % self.aport}})
        self.srv.wait_log("plugin svcuse 1.0.0 loaded")

    def tearDown(self):
        self.assertEqual(self.srv.stop(), 0, self.srv.log()[-2000:])
        self.srv.__exit__()
        shutil.rmtree(self.dir, ignore_errors=True)

    def install(self, src):
        subprocess.run([loomtest.LOOM_BIN, "install-plugin", src, self.plugins], check=True,
                       capture_output=True, timeout=20)

    def wait_body(self, path, want, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = get(self.srv.port, path)
            if r[1] == want:
                return
            time.sleep(0.02)
        self.fail("%s never answered %r:\n%s" % (path, want, self.srv.log()[-2000:]))

    def test_lookup_by_name_and_minimum_version(self):
        self.assertEqual(get(self.srv.port, "/use"), (200, "hello from v1 (v1)"))
        self.assertEqual(get(self.srv.port, "/use2"), (503, "no greeter v2"))
        self.assertEqual(get(self.srv.port, "/late"), (200, "-3"))  # LOOM_ESTATE outside init

    def test_provider_replaced_while_a_request_holds_its_table(self):
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", get(self.srv.port, "/slow")))
        t.start()
        loomtest.wait_plugin_held(self.aport, "svcprov", "GET /slow")  # it has looked the greeter up
        self.install(os.path.join(S, "v2", "svcprov.so"))
        self.wait_body("/use", "hello from v2 (v2)")
        self.assertEqual(get(self.srv.port, "/use2"), (200, "count 1"))
        t.join(10)
        # Both calls went to the table the request found: the old provider,
        # still loaded until the request was done.
        self.assertEqual(out["r"], (200, "hello from v1 / hello from v1"))
        self.srv.wait_log("plugin svcprov 1.0.1 (generation")

    def test_provider_removed(self):
        os.unlink(os.path.join(self.plugins, "svcprov.so"))
        self.wait_body("/use", "no greeter")
        self.install(os.path.join(S, "v1", "svcprov.so"))
        self.wait_body("/use", "hello from v1 (v1)")

    def test_second_provider_of_a_name_is_refused(self):
        self.install(os.path.join(S, "bad", "svcbad5.so"))
        self.srv.wait_log("service 'greeter' is offered by plugin")
        self.assertEqual(get(self.srv.port, "/use"), (200, "hello from v1 (v1)"))

    def test_watcher_events(self):
        self.assertEqual(get(self.srv.port, "/watch?id=a"), (200, "watched"))
        log = self.srv.wait_log("watch a done")
        self.assertNotIn("watch a aborted", log)
        # The client leaves while its request waits (1.5 s, time enough to
        # see it in its handler on a busy machine)
        s = loomtest.connect(self.srv.port)
        s.sendall(b"GET /watch?id=b&ms=1500 HTTP/1.1\r\nHost: a\r\n\r\n")
        loomtest.wait_plugin_held(self.aport, "svcuse", "GET /watch?id=b")
        s.close()
        log = self.srv.wait_log("watch b done")
        self.assertIn("watch b: a watcher added after the abort got -4", log)  # LOOM_EGONE
        self.assertLess(log.index("watch b aborted"), log.index("watch b done"))
        self.assertEqual(log.count("watch b aborted"), 1)  # not told to the late watcher
        deadline = time.time() + 5
        while self.srv.log().count("watch b done") < 2 and time.time() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.srv.log().count("watch b done"), 2)  # both see the release


class RefusedRegistrations(unittest.TestCase):
    def test_each_refusal_names_its_reason(self):
        d = tempfile.mkdtemp(prefix="loom-services-bad-")
        try:
            for f in ("v1/svcprov.so", "svcuse.so", "bad/svcbad1.so", "bad/svcbad2.so",
                      "bad/svcbad3.so", "bad/svcbad4.so", "bad/svcbad5.so"):
                shutil.copy(os.path.join(S, f), d)
            cfg = {"on_plugin_error": "skip", "plugin_order": ["svcprov"]}
            with loomtest.Server(args=["--workers", "1"], plugins_dir=d, config=cfg) as srv:
                log = srv.wait_log("plugin svcuse 1.0.0 loaded")
                for why in ("service ?: bad service name", "service greeter: service version must",
                            "service twice: service registered twice",
                            "service tiny: service table missing or its size is below 4"):
                    self.assertIn(why, log)
                srv.wait_log("plugin svcbad5: service 'greeter' is offered by plugin svcprov too")
                self.assertEqual(get(srv.port, "/use"), (200, "hello from v1 (v1)"))
                self.assertEqual(srv.stop(), 0)
            # Without "skip", a refused registration stops the start.
            shutil.copy(os.path.join(S, "bad", "svcbad1.so"), d)
            r = subprocess.run([loomtest.LOOM_BIN, "serve", "--single", "--port",
                                str(loomtest.free_port()), "--plugins-dir", d],
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("bad service name", r.stdout + r.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    loomtest.main()
