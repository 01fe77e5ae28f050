"""The Debian package, as `make package` makes it (CPack's DEB generator on
this build tree): its contents, lintian without errors, an install with
dpkg into a scratch root (its database empty, so the machine's libraries
count as there: --force-depends), the packaged default config checked and
served by the installed binary with the installed plugins, a plugin made
with `loom new-plugin` and built against the installed SDK (CMake and
pkg-config), the man page, and the removal (purge takes the conffile)."""
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import loomtest
import opslib

CMAKE = os.environ.get("LOOM_CMAKE", "cmake")
CPACK = os.path.join(os.path.dirname(CMAKE), "cpack") if os.path.dirname(CMAKE) else "cpack"
CC = os.environ.get("LOOM_CC", "cc")

EXPECTED = [
    "./usr/bin/loom",
    "./usr/include/loom/loom.h",
    "./usr/include/loom/client.h",
    "./usr/lib/cmake/Loom/LoomConfig.cmake",
    "./usr/lib/cmake/Loom/LoomConfigVersion.cmake",
    "./usr/lib/cmake/Loom/LoomPlugin.cmake",
    "./usr/lib/pkgconfig/loom-sdk.pc",
    "./usr/lib/pkgconfig/loom.pc",
    "./usr/lib/libloom.a",
    "./usr/lib/loom/plugins/hello.so",
    "./usr/lib/loom/plugins/logging.so",
    "./usr/lib/loom/plugins/static.so",
    "./usr/lib/loom/plugins/session-sqlite.so",
    "./lib/systemd/system/loom.service",
    "./lib/systemd/system/loom.socket",
    "./etc/loom/loom.json",
    "./usr/share/man/man1/loom.1.gz",
    "./usr/share/doc/loom/copyright",
    "./usr/share/doc/loom/changelog.Debian.gz",
]


def run(argv, timeout=240, env=None, cwd=None):
    e = dict(os.environ)
    for k in ("CFLAGS", "LDFLAGS", "CMAKE_PREFIX_PATH", "PKG_CONFIG_PATH", "MAKEFLAGS"):
        e.pop(k, None)
    e["CC"] = CC
    e.update(env or {})
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=e, cwd=cwd)
    return p.returncode, p.stdout + p.stderr


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="loom-pkg-")
        out = os.path.join(cls.tmp, "out")
        rc, text = run([CPACK, "-G", "DEB", "--config",
                        os.path.join(loomtest.LOOM_BUILD, "CPackConfig.cmake"), "-B", out])
        assert rc == 0, text
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        assert len(debs) == 1, (debs, text)
        cls.deb = os.path.join(out, debs[0])
        cls.root = os.path.join(cls.tmp, "root")
        for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates"):
            os.makedirs(os.path.join(cls.root, d))
        for f in ("status", "available"):
            open(os.path.join(cls.root, "var/lib/dpkg", f), "w").close()
        rc, text = run(["dpkg", "--root=" + cls.root, "--force-depends", "--force-not-root",
                        "--log=/dev/null", "-i", cls.deb])
        assert rc == 0, text
        cls.loom = os.path.join(cls.root, "usr/bin/loom")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_a_contents_and_control(self):
        rc, out = run(["dpkg-deb", "-c", self.deb])
        self.assertEqual(rc, 0, out)
        names = [ln.split()[-1] for ln in out.splitlines()]
        for f in EXPECTED:
            self.assertIn(f, names)
        self.assertFalse([n for n in names if "CMakeFiles" in n or "test-plugins" in n], names)
        # The shipped plugins, no more: one file per folder of plugins/.
        shipped = sorted(d + ".so" for d in os.listdir(os.path.join(loomtest.LOOM_SRC, "plugins"))
                         if os.path.isdir(os.path.join(loomtest.LOOM_SRC, "plugins", d)))
        got = sorted(n.rsplit("/", 1)[1] for n in names
                     if n.startswith("./usr/lib/loom/plugins/") and n.endswith(".so"))
        self.assertEqual(got, shipped)
        rc, info = run(["dpkg-deb", "-f", self.deb, "Package", "Version", "Depends", "Section"])
        self.assertIn("Package: loom", info)
        self.assertIn("libuv1", info)
        self.assertIn("libsystemd0", info)
        rc, conffiles = run(["sh", "-c", "dpkg-deb --info '%s' conffiles" % self.deb])
        self.assertEqual(conffiles.strip(), "/etc/loom/loom.json")

    def test_b_lintian_no_errors(self):
        if not shutil.which("lintian"):
            self.skipTest("no lintian")
        rc, out = run(["lintian", "--tag-display-limit", "0", self.deb], timeout=300)
        errors = [ln for ln in out.splitlines() if ln.startswith("E:")]
        self.assertEqual(errors, [], out)
        self.assertEqual(rc, 0, out)

    def test_c_installed_files(self):
        rc, out = run(["dpkg", "--root=" + self.root, "-L", "loom"])
        self.assertEqual(rc, 0, out)
        listed = out.split()
        for f in EXPECTED:
            self.assertIn(f[1:], listed)
            self.assertTrue(os.path.exists(os.path.join(self.root, f[2:])), f)
        rc, out = run([self.loom, "version"])
        self.assertEqual(rc, 0, out)
        # The man page is the help: it renders without a warning and holds
        # the options of serve.
        if shutil.which("man"):
            p = subprocess.run(["man", "--warnings", "-l",
                                os.path.join(self.root, "usr/share/man/man1/loom.1.gz")],
                               capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="0"))
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            page = re.sub(".\x08", "", p.stdout)  # overstrike (bold, underline) off
            self.assertIn("LOOM SERVE", page)
            self.assertIn("--admin HOST:PORT", page)
            self.assertIn("check-config FILE", page)

    def test_d_default_config_serves(self):
        """/etc/loom/loom.json as shipped, with its paths moved into the
        scratch root and its ports to free ones: check-config finds nothing
        to say, and the installed loom serves it with the installed plugins."""
        import json
        with open(os.path.join(self.root, "etc/loom/loom.json")) as f:
            cfg = json.load(f)
        self.assertEqual(cfg["plugins_dir"], "/usr/lib/loom/plugins")
        port, aport = loomtest.free_port(), loomtest.free_port()
        cfg["plugins_dir"] = os.path.join(self.root, "usr/lib/loom/plugins")
        cfg["access_log"] = os.path.join(self.tmp, "access.log")
        cfg["listen"] = ["127.0.0.1:%d" % port]
        cfg["admin"]["listen"] = "127.0.0.1:%d" % aport
        path = os.path.join(self.tmp, "loom.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        rc, out = run([self.loom, "check-config", path])
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r": ok \(1 listener and the admin listener, \d+ plugins?\)")
        logpath = os.path.join(self.tmp, "serve.log")
        with open(logpath, "wb") as log:
            srv = subprocess.Popen([self.loom, "serve", "--config", path, "--workers", "1"],
                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 15
            while time.time() < deadline and "listening on" not in open(logpath).read():
                self.assertIsNone(srv.poll(), open(logpath).read())
                time.sleep(0.05)
            st, _, body = opslib.http_get(port, "/")
            self.assertEqual((st, body), (200, b"Hello, World!"))
            rc, out = run([self.loom, "status", "--config", path])
            self.assertEqual(rc, 0, out)
            self.assertRegex(out, r"(?m)^  hello ")
        finally:
            srv.terminate()
            self.assertEqual(srv.wait(30), 0, open(logpath).read())

    def test_e_plugin_builds_against_installed_sdk(self):
        greet = os.path.join(self.tmp, "greet")
        rc, out = run([self.loom, "new-plugin", "greet", greet])
        self.assertEqual(rc, 0, out)
        prefix = os.path.join(self.root, "usr")
        build = os.path.join(greet, "build")
        rc, out = run([CMAKE, "-S", greet, "-B", build, "-DCMAKE_PREFIX_PATH=" + prefix,
                       "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror"])
        self.assertEqual(rc, 0, out)
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            self.assertIn("Loom_DIR:PATH=%s/lib/cmake/Loom" % prefix, f.read())
        rc, out = run([CMAKE, "--build", build])
        self.assertEqual(rc, 0, out)
        rc, out = run([self.loom, "check-plugin", os.path.join(build, "greet.so")])
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^name +greet$")
        # pkg-config finds the installed SDK where the package put it.
        rc, out = run(["pkg-config", "--cflags", "loom-sdk"],
                      env={"PKG_CONFIG_PATH": os.path.join(prefix, "lib/pkgconfig")})
        self.assertEqual(rc, 0, out)
        self.assertIn("-I%s/lib/pkgconfig/../../include" % prefix, out)

    def test_f_remove_and_purge(self):
        rc, out = run(["dpkg", "--root=" + self.root, "--force-depends", "--force-not-root",
                       "--log=/dev/null", "-r", "loom"])
        self.assertEqual(rc, 0, out)
        self.assertFalse(os.path.exists(self.loom))
        # The admin's config stays until purge.
        conf = os.path.join(self.root, "etc/loom/loom.json")
        self.assertTrue(os.path.exists(conf))
        rc, out = run(["dpkg", "--root=" + self.root, "--force-not-root", "--log=/dev/null",
                       "-P", "loom"])
        self.assertEqual(rc, 0, out)
        self.assertFalse(os.path.exists(conf))
        left = [os.path.join(d, f) for d, _, fs in os.walk(self.root) for f in fs
                if "var/lib/dpkg" not in d]
        self.assertEqual(left, [])


if __name__ == "__main__":
    loomtest.main()
