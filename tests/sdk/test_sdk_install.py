"""A plugin built out of tree with only the installed SDK.

`cmake --install` (what `make install PREFIX=...` runs) to a temporary
prefix; then, with nothing but that prefix:
  - `loom new-plugin greet DIR`, a CMake build there (find_package(Loom)),
    the .so copied into a plugins directory, `loom serve`: GET /greet answers;
  - the same source built with pkg-config (loom-sdk.pc) and the template's
    plain Makefile: loads and serves too;
  - `loom new-plugin` refuses bad names and non-empty directories, and
    `loom check-plugin` prints the new plugin's descriptor.
The out-of-tree builds use no sanitizer flags, also in the sanitizer build:
an uninstrumented plugin loads into an ASan host.
"""
import os
import shutil
import subprocess
import tempfile
import unittest

import loomtest

CMAKE = os.environ.get("LOOM_CMAKE", "cmake")
CC = os.environ.get("LOOM_CC", "cc")
MAKE = os.environ.get("LOOM_MAKE", "make")
if os.path.basename(MAKE) not in ("make", "gmake"):
    MAKE = "make"  # the tree may be built with ninja; the template's Makefile needs make


def run(argv, env=None, cwd=None, timeout=240):
    e = dict(os.environ)
    for k in ("CFLAGS", "LDFLAGS", "CMAKE_PREFIX_PATH", "PKG_CONFIG_PATH", "MAKEFLAGS"):
        e.pop(k, None)
    e["CC"] = CC
    if env:
        e.update(env)
    p = subprocess.run(argv, env=e, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def get(port, path):
    raw = ("GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % path).encode()
    return loomtest.exchange(port, raw)[0]


class Sdk(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="loom-sdk-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        rc, out = run([CMAKE, "--install", loomtest.LOOM_BUILD, "--prefix", cls.prefix])
        assert rc == 0, out
        cls.loom = os.path.join(cls.prefix, "bin", "loom")
        # The plugin project every test starts from, written by the installed binary.
        cls.greet = os.path.join(cls.tmp, "greet")
        rc, out = run([cls.loom, "new-plugin", "greet", cls.greet])
        assert rc == 0, out

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def serve_greet(self, so):
        d = tempfile.mkdtemp(prefix="plugins-", dir=self.tmp)
        shutil.copy(so, d)
        loomtest_bin = loomtest.LOOM_BIN
        loomtest.LOOM_BIN = self.loom  # the installed binary
        try:
            with loomtest.Server(plugins_dir=d, args=["--workers", "1"]) as s:
                status, headers, body = get(s.port, "/greet")
                self.assertEqual(status, 200, s.log())
                self.assertEqual(body, b"Hello from greet!\n")
                self.assertTrue(headers["content-type"].startswith("text/plain"))
                self.assertEqual(get(s.port, "/")[0], 404)
                self.assertEqual(s.stop(), 0, s.log())
            self.assertIn("plugin greet 0.1.0 loaded", s.log())
        finally:
            loomtest.LOOM_BIN = loomtest_bin

    def test_installed_files(self):
        for f in ("bin/loom", "include/loom/loom.h", "lib/cmake/Loom/LoomConfig.cmake",
                  "lib/cmake/Loom/LoomConfigVersion.cmake", "lib/cmake/Loom/LoomPlugin.cmake",
                  "lib/pkgconfig/loom-sdk.pc", "lib/pkgconfig/loom.pc", "lib/libloom.a",
                  "lib/libloom_llhttp.a"):
            self.assertTrue(os.path.isfile(os.path.join(self.prefix, f)), f)
        if os.path.exists(os.path.join(loomtest.LOOM_SRC, "sdk/include/loom/client.h")):
            self.assertTrue(os.path.isfile(os.path.join(self.prefix, "include/loom/client.h")))
        with open(os.path.join(loomtest.LOOM_SRC, "sdk/include/loom/loom.h"), "rb") as a, \
                open(os.path.join(self.prefix, "include/loom/loom.h"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        env = {"PKG_CONFIG_PATH": os.path.join(self.prefix, "lib/pkgconfig")}
        rc, cflags = run(["pkg-config", "--cflags", "loom-sdk"], env=env)
        self.assertEqual(rc, 0, cflags)
        inc = os.path.realpath(os.path.join(self.prefix, "include"))
        words = cflags.split()
        self.assertIn("-fvisibility=hidden", words)
        self.assertIn("-fPIC", words)
        self.assertTrue(any(w.startswith("-I") and os.path.realpath(w[2:]) == inc for w in words),
                        cflags)
        rc, libs = run(["pkg-config", "--libs", "loom-sdk"], env=env)
        self.assertEqual((rc, libs.strip()), (0, ""))

    def test_client_program_links_installed_libloom(self):
        """A standalone client program (the seed's fetch example) built with
        only the installed <loom/client.h>, libloom and loom.pc."""
        env = {"PKG_CONFIG_PATH": os.path.join(self.prefix, "lib/pkgconfig")}
        rc, flags = run(["pkg-config", "--cflags", "--libs", "--static", "loom"], env=env)
        self.assertEqual(rc, 0, flags)
        exe = os.path.join(self.tmp, "fetch")
        san = ["-fsanitize=address,undefined"] if os.environ.get("LOOM_SANITIZE") == "ON" else []
        rc, out = run([CC, "-o", exe,
                       os.path.join(loomtest.LOOM_SRC, "examples/client/fetch.c")] + san +
                      flags.split(), env=env)
        self.assertEqual(rc, 0, out)
        with loomtest.Server(args=["--single"]) as s:
            rc, out = run([exe, s.url("/")])
            self.assertEqual(rc, 0, out)
            self.assertIn("Hello, World!", out)
            self.assertEqual(s.stop(), 0)

    def test_new_plugin_files_and_refusals(self):
        self.assertEqual(sorted(os.listdir(self.greet)),
                         ["CMakeLists.txt", "Makefile", "README.md", "greet.c"])
        with open(os.path.join(self.greet, "CMakeLists.txt")) as f:
            cm = f.read()
        self.assertIn("find_package(Loom REQUIRED)", cm)
        self.assertIn("loom_add_plugin(greet SOURCES greet.c)", cm)
        with open(os.path.join(self.greet, "greet.c")) as f:
            self.assertIn('"/greet"', f.read())
        for bad in ("Greet", "a.b", "a/b", "", "x" * 65):
            rc, out = run([self.loom, "new-plugin", bad, os.path.join(self.tmp, "bad")])
            self.assertNotEqual(rc, 0, bad)
            self.assertEqual(len(out.strip().splitlines()), 1, out)
            self.assertIn("bad plugin name", out)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "bad")))
        rc, out = run([self.loom, "new-plugin", "greet", self.greet])
        self.assertNotEqual(rc, 0)
        self.assertEqual(out.strip(), "loom new-plugin: %s exists and is not empty" % self.greet)
        # An empty directory is fine; DIR defaults to ./NAME.
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        self.assertEqual(run([self.loom, "new-plugin", "p-2_x", empty])[0], 0)
        self.assertTrue(os.path.isfile(os.path.join(empty, "p-2_x.c")))
        self.assertEqual(run([self.loom, "new-plugin", "dflt"], cwd=self.tmp)[0], 0)
        self.assertTrue(os.path.isfile(os.path.join(self.tmp, "dflt", "dflt.c")))

    def test_cmake_build_serves(self):
        src = os.path.join(self.tmp, "greet-cmake")
        shutil.copytree(self.greet, src)
        build = os.path.join(src, "build")
        rc, out = run([CMAKE, "-S", src, "-B", build, "-DCMAKE_PREFIX_PATH=" + self.prefix,
                       "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                       "-DCMAKE_C_FLAGS=-Wall -Wextra -Wshadow -Wstrict-prototypes -Werror"])
        self.assertEqual(rc, 0, out)
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            cache = f.read()
        self.assertIn("Loom_DIR:PATH=%s/lib/cmake/Loom" % self.prefix, cache)
        rc, out = run([CMAKE, "--build", build])
        self.assertEqual(rc, 0, out)
        so = os.path.join(build, "greet.so")
        rc, out = run([self.loom, "check-plugin", so])
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^name +greet$")
        self.assertRegex(out, r"(?m)^version +0\.1\.0$")
        # Only the entry symbol is exported.
        rc, out = run(["nm", "-D", "--defined-only", so])
        syms = [ln.split()[-1] for ln in out.splitlines() if ln.split()[1:2] == ["T"]]
        self.assertEqual(syms, ["loom_plugin_entry"], out)
        self.serve_greet(so)

    def test_pkg_config_make_build_serves(self):
        src = os.path.join(self.tmp, "greet-make")
        os.mkdir(src)
        for f in ("greet.c", "Makefile"):
            shutil.copy(os.path.join(self.greet, f), src)
        rc, out = run([MAKE, "CFLAGS=-O2 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror"],
                      cwd=src, env={"PKG_CONFIG_PATH": os.path.join(self.prefix, "lib/pkgconfig")})
        self.assertEqual(rc, 0, out)
        self.assertIn("-fvisibility=hidden", out)
        self.assertIn(os.path.join(self.prefix, "lib/pkgconfig/../../include"), out)
        so = os.path.join(src, "greet.so")
        self.assertEqual(run([self.loom, "check-plugin", so])[0], 0)
        self.serve_greet(so)


if __name__ == "__main__":
    loomtest.main()
