"""`loom check-config FILE`: every problem of a config on its own line,
nothing started; `loom serve` still stops at the first problem with the
same one line as before."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import unittest

import loomtest


def loom(*args):
    p = subprocess.run([loomtest.LOOM_BIN] + list(args), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


class CheckConfig(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="loom-check-")
        self.plugins = os.path.join(self.tmp, "plugins")
        os.mkdir(self.plugins)
        shutil.copy(os.path.join(loomtest.PLUGINS_DIR, "hello.so"), self.plugins)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, cfg, name="loom.json"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))
        return path

    def test_every_problem_one_line_each(self):
        with open(os.path.join(self.plugins, "broken.so"), "w") as f:
            f.write("not a plugin")
        port = loomtest.free_port()
        path = self.write({
            "hots": "127.0.0.1",
            "workers": "two",
            "listen": [{"host": "127.0.0.1"}, "nonsense", {"host": "127.0.0.1", "port": port,
                                                            "tls": True}],
            "log_level": "loud",
            "admin": {"listen": "0.0.0.0:%d" % loomtest.free_port()},
            "access_log": os.path.join(self.tmp, "no", "such", "dir", "access.log"),
            "plugins_dir": self.plugins,
            "plugins": {"helo": {"greeting": "hi"}},
        })
        rc, out, err = loom("check-config", path)
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        lines = err.strip().split("\n")
        want = [
            "%s: unknown key 'hots'" % path,
            "%s: key 'workers': must be a whole number" % path,
            "%s: key 'listen[0]': 'port' is missing" % path,
            "%s: key 'listen[1]': 'nonsense' is not HOST:PORT or HOST:PORT:tls (IPv6: [::1]:8443)"
            % path,
            "%s: key 'log_level': must be one of error, warn, info, debug (got 'loud')" % path,
            "%s: listener 127.0.0.1:%d has \"tls\": true but there is no \"tls\" section "
            "(certificate and key)" % (path, port),
        ]
        for w in want:
            self.assertIn(w, lines)
        self.assertTrue(any(ln.startswith("%s: key 'admin': 0.0.0.0:" % path) and "not a loopback address"
                            in ln for ln in lines), lines)
        self.assertTrue(any("key 'access_log': cannot create" in ln for ln in lines), lines)
        self.assertTrue(any("plugin %s/broken.so:" % self.plugins in ln for ln in lines), lines)
        self.assertIn("%s: key 'plugins.helo': no plugin named 'helo' in %s" % (path, self.plugins),
                      lines)
        self.assertEqual(len(lines), len(want) + 4, lines)
        # Nothing was started: the listener's port is still free. (With
        # SO_REUSEADDR a connection of someone else's in TIME_WAIT on the
        # port does not count; a listener still would.)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.close()
        # `loom serve` stops at the first, in one line, as it always did.
        rc, out, err = loom("serve", "--config", path)
        self.assertEqual(rc, 2)
        self.assertEqual(err, "loom serve: config %s: unknown key 'hots'\n" % path)

    def test_a_good_config(self):
        path = self.write({"listen": ["127.0.0.1:%d" % loomtest.free_port(),
                                      "[::1]:%d" % loomtest.free_port()],
                           "admin": True, "plugins_dir": self.plugins,
                           "access_log": os.path.join(self.tmp, "access.log"),
                           "access_log_format": "json"})
        rc, out, err = loom("check-config", path)
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(out, "%s: ok (2 listeners and the admin listener, 1 plugin)\n" % path)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "access.log")))

    def test_syntax_and_admin_clashes(self):
        path = self.write('{"workers": 2,\n "port": }')
        rc, out, err = loom("check-config", path)
        self.assertEqual(rc, 1)
        self.assertEqual(len(err.strip().split("\n")), 1, err)
        self.assertRegex(err, r"^%s:2:\d+: " % path)
        path = self.write({"admin": {"listen": "127.0.0.1:9999", "token": "short"}})
        rc, out, err = loom("check-config", path)
        self.assertEqual((rc, err), (1, "%s: key 'admin.token': at least 16 characters (got 5)\n"
                                     % path))
        port = loomtest.free_port()
        path = self.write({"listen": ["127.0.0.1:%d" % port],
                           "admin": {"listen": "127.0.0.1:%d" % port}})
        rc, out, err = loom("check-config", path)
        self.assertEqual((rc, err), (1, "%s: the admin listener 127.0.0.1:%d is listed twice\n"
                                     % (path, port)))
        rc, out, err = loom("check-config", os.path.join(self.tmp, "missing.json"))
        self.assertEqual((rc, err.count("\n")), (1, 1))
        self.assertIn("No such file or directory", err)


if __name__ == "__main__":
    loomtest.main()
