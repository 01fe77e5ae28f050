"""ABI compatibility with real plugin files, in the real `loom` binary.

A plugin compiled from the frozen 1.0 header loads and serves in this host.
Files the host must refuse -- a plugin for a newer minor, one for another
major, random bytes named x.so, a shared library without a descriptor -- are
refused with one log line naming the file and the reason: with
on_plugin_error "fail" the server exits non-zero, with "skip" it serves the
good plugin. `loom check-plugin` prints the same reasons (exit 1) or the
descriptor (exit 0).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import loomtest

PLUGINS = os.path.join(loomtest.LOOM_BUILD, "abi-plugins")


def host_abi():
    out = subprocess.run([loomtest.LOOM_BIN, "check-plugin", os.path.join(PLUGINS, "old10.so")],
                         stdout=subprocess.PIPE, timeout=30).stdout.decode()
    m = re.search(r"this host: (\d+)\.(\d+)", out)
    return int(m.group(1)), int(m.group(2))


def get(port, path, headers=""):
    raw = ("GET %s HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n\r\n" % (path, headers)).encode()
    return loomtest.exchange(port, raw)[0]


class Bad:
    """name -> (file name, function making it in dir, regex for the reason)."""

    @staticmethod
    def kinds():
        major, minor = host_abi()
        return {
            "newminor": ("newminor.so", lambda d: shutil.copy(os.path.join(PLUGINS, "newminor.so"), d),
                         r"built for plugin ABI %d\.%d, newer than this host's %d\.%d"
                         % (major, minor + 1, major, minor)),
            "othermajor": ("othermajor.so",
                           lambda d: shutil.copy(os.path.join(PLUGINS, "othermajor.so"), d),
                           r"built for plugin ABI %d\.%d; this host speaks %d\.%d"
                           % (major + 1, minor, major, minor)),
            "random": ("x.so", lambda d: open(os.path.join(d, "x.so"), "wb").write(os.urandom(4096)),
                       r"not a loadable shared object"),
            "nodesc": ("nodesc.so", lambda d: shutil.copy(os.path.join(PLUGINS, "nodesc.so"), d),
                       r"not a loom plugin \(no loom_plugin_entry symbol\)"),
        }


class AbiPlugins(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="loom-abi-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def plugins_dir(self, name, bad=None):
        d = os.path.join(self.tmp, name)
        os.mkdir(d)
        shutil.copy(os.path.join(PLUGINS, "old10.so"), d)
        if bad:
            bad(d)
        return d

    def assert_old10_serves(self, port):
        status, headers, body = get(port, "/old10/ann?q=x%20y", "X-Old: yes\r\n")
        self.assertEqual(status, 200, body)
        self.assertEqual(headers.get("x-plugin-abi"), "1.0")
        self.assertEqual(json.loads(body), {"abi": "1.0", "name": "ann", "q": "x y", "h": "yes",
                                            "method": "GET"})

    def test_frozen_1_0_plugin_serves(self):
        d = self.plugins_dir("good")
        with loomtest.Server(plugins_dir=d, args=["--workers", "1"]) as s:
            self.assert_old10_serves(s.port)
            self.assertEqual(s.stop(), 0, s.log())
        self.assertIn("plugin old10 1.0.0 loaded", s.log())

    def test_frozen_1_1_plugin_serves(self):
        """A plugin built from the frozen 1.1 header, using the last entries
        of the 1.1 table (descriptor watchers), serves in this host."""
        d = self.plugins_dir("good11")
        shutil.copy(os.path.join(PLUGINS, "old11.so"), d)
        with loomtest.Server(plugins_dir=d, args=["--workers", "1"]) as s:
            status, headers, body = get(s.port, "/old11")
            self.assertEqual(status, 200, body)
            self.assertEqual(headers.get("x-plugin-abi"), "1.1")
            self.assertEqual(json.loads(body), {"abi": "1.1", "events": 1, "byte": "x"})
            self.assert_old10_serves(s.port)
            self.assertEqual(s.stop(), 0, s.log())
        self.assertIn("plugin old11 1.1.0 loaded", s.log())

    def test_refused_with_fail(self):
        for kind, (fname, make, reason) in Bad.kinds().items():
            with self.subTest(kind=kind):
                d = self.plugins_dir("fail-" + kind, make)
                port = loomtest.free_port()
                p = subprocess.run([loomtest.LOOM_BIN, "serve", "--host", "127.0.0.1", "--port",
                                    str(port), "--plugins-dir", d, "--workers", "1"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
                log = p.stdout.decode("utf-8", "replace")
                self.assertNotEqual(p.returncode, 0, log)
                lines = [ln for ln in log.splitlines() if fname in ln and re.search(reason, ln)]
                self.assertEqual(len(lines), 1, "want one line naming %s and /%s/:\n%s"
                                 % (fname, reason, log))
                self.assertIn("not starting", log)

    def test_refused_with_skip(self):
        for kind, (fname, make, reason) in Bad.kinds().items():
            with self.subTest(kind=kind):
                d = self.plugins_dir("skip-" + kind, make)
                with loomtest.Server(plugins_dir=d, config={"on_plugin_error": "skip"},
                                     args=["--workers", "1"]) as s:
                    self.assert_old10_serves(s.port)
                    status, _, _ = get(s.port, "/" + kind)
                    self.assertEqual(status, 404)
                    self.assertEqual(s.stop(), 0, s.log())
                lines = [ln for ln in s.log().splitlines() if fname in ln and re.search(reason, ln)]
                self.assertEqual(len(lines), 1, s.log())

    def test_check_plugin(self):
        major, minor = host_abi()
        p = subprocess.run([loomtest.LOOM_BIN, "check-plugin", os.path.join(PLUGINS, "old10.so")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, out)
        self.assertRegex(out, r"(?m)^name +old10$")
        self.assertRegex(out, r"(?m)^version +1\.0\.0$")
        self.assertRegex(out, r"(?m)^abi +1\.0 \(this host: %d\.%d\)$" % (major, minor))
        self.assertRegex(out, r"(?m)^flags +0x1 \(reloadable\)$")
        self.assertRegex(out, r"(?m)^size +56$")
        for kind, (fname, make, reason) in Bad.kinds().items():
            with self.subTest(kind=kind):
                d = os.path.join(self.tmp, "check-" + kind)
                os.mkdir(d)
                make(d)
                p = subprocess.run([loomtest.LOOM_BIN, "check-plugin", os.path.join(d, fname)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
                out = p.stdout.decode()
                self.assertEqual(p.returncode, 1, out)
                self.assertEqual(len(out.splitlines()), 1, out)
                self.assertRegex(out, re.escape(fname) + ": " + reason)


if __name__ == "__main__":
    loomtest.main()
