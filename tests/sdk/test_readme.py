"""README.md's samples, built and run as a reader would.

Every fenced block in README.md must name its language (c, sh, json, or
console for a terminal transcript, which is only read), so that no sample
slips past this test:
  - every ```c block is compiled, against the installed SDK header, into a
    plugin (-shared, -Wl,-z,defs) with the warnings CI uses (-Wall -Wextra
    -Wshadow -Wstrict-prototypes -Werror), by cc and by clang when there is
    one, and `loom check-plugin` must accept it. A block that is not a whole
    plugin must be marked `<!-- readme-test: fragment -->` on the line above
    it: it is compiled after `#include <loom/loom.h>`, with a plugin
    descriptor whose init refers to each of its functions;
  - ```sh blocks marked `<!-- readme-test: run -->` are run, in README
    order, in a scratch directory: /opt/loom is a scratch prefix the build
    is installed to, /tmp/greet a scratch directory, build/bin/loom the
    binary under test, build/plugins a scratch plugins directory, port 8080
    a server started here; a ```c block marked
    `<!-- readme-test: save PATH -->` is written to PATH (substituted the
    same way) at its place in that order. The plugin built this way is then
    served and asked for GET /greet/ann;
  - every ```json block is JSON, and every object under "plugins" names a
    shipped plugin or the core's "sessions".
The marks are HTML comments, which a Markdown viewer does not show.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import loomtest

CMAKE = os.environ.get("LOOM_CMAKE", "cmake")
CC = os.environ.get("LOOM_CC", "cc")
WARNINGS = ["-Wall", "-Wextra", "-Wshadow", "-Wstrict-prototypes", "-Werror"]
SANITIZED = os.environ.get("LOOM_SANITIZE", "OFF") in ("ON", "1", "TRUE")
MARK = re.compile(r"^<!-- readme-test: (.*?) -->$")
FENCE = re.compile(r"^```(.*)$")


def readme_blocks():
    """[(line number, language, mark or None, text)] of README.md's fenced blocks."""
    with open(os.path.join(loomtest.LOOM_SRC, "README.md")) as f:
        lines = f.read().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        mark = MARK.match(lines[i - 1]) if i else None
        start = i
        i += 1
        body = []
        while i < len(lines) and lines[i] != "```":
            body.append(lines[i])
            i += 1
        out.append((start + 1, m.group(1).strip(), mark.group(1) if mark else None,
                    "\n".join(body) + "\n"))
        i += 1
    return out


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


def harness(fragment):
    """A fragment made into a plugin: the header before it, and an init that
    refers to each function it defines (so none is unused)."""
    names = re.findall(r"^static\s+[^;=]*?\b(\w+)\s*\([^;]*?\)\s*\{", fragment, re.M | re.S)
    uses = "".join("    (void)%s;\n" % n for n in names)
    return ("#include <loom/loom.h>\n\n" + fragment +
            "\nstatic int32_t readme_fragment_init(loom_plugin *self, const char *config, "
            "size_t len)\n{\n    (void)self;\n    (void)config;\n    (void)len;\n" + uses +
            "    return 0;\n}\n\nLOOM_PLUGIN(\"readme-fragment\", \"0\", readme_fragment_init, "
            "NULL)\n"), names


class Readme(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="loom-readme-")
        cls.prefix = os.path.join(cls.tmp, "opt-loom")
        rc, out = run([CMAKE, "--install", loomtest.LOOM_BUILD, "--prefix", cls.prefix])
        assert rc == 0, out
        cls.blocks = readme_blocks()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_every_block_is_covered(self):
        self.assertGreater(len(self.blocks), 5)
        for line, lang, mark, text in self.blocks:
            where = "README.md:%d" % line
            self.assertIn(lang, ("c", "sh", "json", "console"),
                          where + ": a block must name its language")
            if lang == "c":
                self.assertTrue(mark in (None, "fragment") or mark.startswith("save "), where)
                if mark != "fragment":
                    self.assertIn("LOOM_PLUGIN(", text,
                                  where + ": a C sample is a whole plugin or marked fragment")
            elif mark is not None:
                self.assertEqual((lang, mark), ("sh", "run"), where + ": unknown mark")
        langs = [b[1] for b in self.blocks]
        self.assertIn("c", langs)
        self.assertIn("run", [b[2] for b in self.blocks])

    def compilers(self):
        cs = [CC]
        clang = shutil.which("clang")
        if clang and os.path.realpath(clang) != os.path.realpath(shutil.which(CC) or CC):
            cs.append(clang)
        return cs

    def test_c_samples_compile_with_ci_warnings(self):
        inc = os.path.join(self.prefix, "include")
        n = 0
        for line, lang, mark, text in self.blocks:
            if lang != "c":
                continue
            src = text
            if mark == "fragment":
                src, names = harness(text)
                self.assertTrue(names, "README.md:%d: no function found in the fragment" % line)
            path = os.path.join(self.tmp, "sample%d.c" % line)
            with open(path, "w") as f:
                f.write(src)
            for cc in self.compilers():
                so = os.path.join(self.tmp, "sample%d-%s.so" % (line, os.path.basename(cc)))
                rc, out = run([cc, "-std=c11", "-O2", "-fPIC", "-shared", "-fvisibility=hidden",
                               "-Wl,-z,defs", "-I", inc] + WARNINGS + ["-o", so, path])
                self.assertEqual(rc, 0, "README.md:%d with %s:\n%s" % (line, cc, out))
                rc, out = run([loomtest.LOOM_BIN, "check-plugin", so])
                self.assertEqual(rc, 0, "README.md:%d: %s" % (line, out))
                n += 1
        self.assertGreaterEqual(n, 2)

    def test_json_samples_parse_and_name_real_plugins(self):
        shipped = {f[:-3] for f in os.listdir(loomtest.PLUGINS_DIR) if f.endswith(".so")}
        for line, lang, mark, text in self.blocks:
            if lang != "json":
                continue
            try:
                doc = json.loads(text)
            except ValueError as e:
                self.fail("README.md:%d: %s" % (line, e))
            for name in doc.get("plugins", {}):
                self.assertTrue(name == "sessions" or name in shipped,
                                "README.md:%d: no plugin named %r" % (line, name))

    def test_shell_samples_run_as_written(self):
        work = os.path.join(self.tmp, "work")  # "the top of this tree", without writing into it
        os.mkdir(work)
        os.symlink(os.path.join(os.path.abspath(loomtest.LOOM_SRC), "examples"),
                   os.path.join(work, "examples"))
        plugins = os.path.join(self.tmp, "plugins")
        os.mkdir(plugins)
        greet = os.path.join(self.tmp, "greet")
        cc = CC + (" -fsanitize=address,undefined" if SANITIZED else "")
        with loomtest.Server(args=["--single"]) as hello:
            hello.wait_log("listening on")
            subst = [("/opt/loom", self.prefix), ("/tmp/greet", greet),
                     ("build/bin/loom", os.path.abspath(loomtest.LOOM_BIN)),
                     ("build/plugins", plugins), ("127.0.0.1:8080", "127.0.0.1:%d" % hello.port)]

            def fix(text):
                for a, b in subst:
                    text = text.replace(a, b)
                text = re.sub(r"(?m)^cmake ", CMAKE + " ", text)
                return re.sub(r"(?m)^cc ", cc + " ", text)

            outputs = []
            for line, lang, mark, text in self.blocks:
                if mark == "run":
                    rc, out = run(["bash", "-e", "-o", "pipefail", "-c", fix(text)], cwd=work)
                    self.assertEqual(rc, 0, "README.md:%d:\n%s\n%s" % (line, fix(text), out))
                    outputs.append(out)
                elif mark and mark.startswith("save "):
                    with open(fix(mark[5:].strip()), "w") as f:
                        f.write(text)
            self.assertEqual(hello.stop(), 0)
        out = "\n".join(outputs)
        self.assertRegex(out, r"(?m)^name +greet$")  # check-plugin
        self.assertIn("Hello, World!", out)  # ./fetch
        with loomtest.Server(plugins_dir=plugins, args=["--single"]) as srv:
            raw = b"GET /greet/ann HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            status, headers, body = loomtest.exchange(srv.port, raw)[0]
            self.assertEqual((status, body), (200, b"Hello, ann!"), srv.log())
            self.assertEqual(srv.stop(), 0, srv.log())


if __name__ == "__main__":
    loomtest.main()
