"""Hot reload against the real binary: a middleware swapped under load with no
lost or mixed response, a request pending across the swap finishing on the
old code, broken new versions leaving the old one serving, state handed
over, deleted plugins unloaded, and 50 reloads leaking no file descriptor
and no memory. Then the ways a file arrives: rebuilt in place by a slow
writer (as `cmake --build` does), in a directory that never stops changing,
and refused files that must not be retried until they change."""
import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import loomtest

R = os.path.join(loomtest.LOOM_BUILD, "test-plugins-reload")
SANITIZED = os.environ.get("LOOM_SANITIZE", "OFF") in ("ON", "1", "TRUE")


def install(version_dir, plugins):
    subprocess.run([loomtest.LOOM_BIN, "install-plugin", os.path.join(R, version_dir, "version.so"),
                    plugins], check=True, capture_output=True, timeout=20)


def put(version_dir, plugins):
    """Installs a build the way install-plugin does (a temporary name, then a
    rename), for files install-plugin refuses (another ABI)."""
    tmp = os.path.join(plugins, ".version.so.tmp")
    shutil.copyfile(os.path.join(R, version_dir, "version.so"), tmp)
    os.rename(tmp, os.path.join(plugins, "version.so"))


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return r.status, r.headers.get("X-Version"), r.read().decode()


def wait_version(port, want, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if get(port, "/v")[2] == want:
                return True
        except Exception:
            pass
        time.sleep(0.02)
    return False


async def load(port, seconds, conns, results):
    """conns keep-alive connections sending GET /v in a loop; appends
    (sent, status, x_version, body, connection) or ("error", repr) to results."""
    stop = time.time() + seconds

    async def one(cid):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.time() < stop:
                sent = time.time()
                writer.write(b"GET /v HTTP/1.1\r\nHost: a\r\n\r\n")
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                lines = head.decode().split("\r\n")
                status = int(lines[0].split()[1])
                hdrs = {}
                for l in lines[1:]:
                    if l:
                        k, v = l.split(":", 1)
                        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
                body = await reader.readexactly(int(hdrs["content-length"][0]))
                results.append((sent, status, hdrs.get("x-version", []), body.decode(), cid))
        except Exception as e:  # noqa
            results.append(("error", repr(e)))
        finally:
            writer.close()

    await asyncio.gather(*[one(i) for i in range(conns)])


class HotReload(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="loom-reload-")
        self.plugins = os.path.join(self.dir, "plugins")
        os.mkdir(self.plugins)
        install("v1", self.plugins)
        # one process: the leak checks read its /proc entries
        self.aport = loomtest.free_port()  # the admin listener: `loom plugins` asks it
        self.srv = loomtest.Server(plugins_dir=self.plugins,
                                   config={"admin": {"listen": "127.0.0.1:%d" % self.aport}},
                                   args=["--single"])
        self.port = self.srv.port
        # the port accepts before the plugins are loaded and the directory
        # watched; the announcement comes after both
        self.srv.wait_log("listening on")

    def tearDown(self):
        rc = self.srv.stop()
        log = self.srv.log()
        self.srv.__exit__()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.assertEqual(rc, 0, log)

    def test_a_swap_under_load_loses_nothing(self):
        results = []
        t = threading.Thread(target=lambda: asyncio.run(load(self.port, 4.0, 64, results)))
        t.start()
        time.sleep(1.5)
        t_swap = time.time()
        install("v2", self.plugins)
        self.assertTrue(wait_version(self.port, "v2"))
        t_seen = time.time()
        t.join(30)
        errors = [r for r in results if r[0] == "error"]
        self.assertEqual(errors, [])
        self.assertGreater(len(results), 1000)
        for sent, status, xv, body, cid in results:
            self.assertEqual(status, 200)
            self.assertEqual(len(xv), 1, xv)  # exactly one X-Version header
            self.assertIn(xv[0], ("1", "2"))
            self.assertEqual(body, "v" + xv[0])  # never old handler with new middleware
        v1 = [r for r in results if r[2] == ["1"]]
        v2 = [r for r in results if r[2] == ["2"]]
        self.assertTrue(v1 and v2)
        # after the new version answered once, only it answers: no request sent
        # after that got v1, and no connection went back from 2 to 1
        self.assertTrue(all(r[0] <= t_seen for r in v1), "v1 for a request sent after the swap")
        last = {}
        for sent, status, xv, body, cid in results:
            self.assertFalse(last.get(cid) == "2" and xv[0] == "1", "connection %d went back" % cid)
            last[cid] = xv[0]
        print("load: %d responses, %d v1, %d v2, swap seen %.0f ms after rename"
              % (len(results), len(v1), len(v2), (t_seen - t_swap) * 1000))

    def test_b_pending_request_finishes_on_old_code(self):
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", get(self.port, "/slow")))
        t.start()
        loomtest.wait_plugin_held(self.aport, "version", "GET /slow")
        install("v2", self.plugins)
        self.assertTrue(wait_version(self.port, "v2"))
        t.join(10)
        self.assertEqual(out["r"], (200, "1", "slow v1"))
        self.assertEqual(get(self.port, "/slow"), (200, "2", "slow v2"))
        self.srv.wait_log("plugin version 1.0.1 (generation 1) unloaded")

    def test_c_broken_versions_keep_old_serving(self):
        cases = [("fail", "init failed (-5"),
                 ("otherabi", "built for plugin ABI 2.0; this host speaks 1.")]
        for d, reason in cases:
            put(d, self.plugins)
            deadline = time.time() + 5
            while time.time() < deadline and reason not in self.srv.log():
                time.sleep(0.05)
            self.assertIn(reason, self.srv.log())
            self.assertIn("the loaded version keeps serving", self.srv.log())
            self.assertEqual(get(self.port, "/v"), (200, "1", "v1"))
        # install-plugin refuses junk (test_i), so it is renamed in by hand
        junk = os.path.join(self.plugins, ".version.so.tmp")
        with open(junk, "wb") as f:
            f.write(os.urandom(4096))
        os.rename(junk, os.path.join(self.plugins, "version.so"))
        deadline = time.time() + 5
        while time.time() < deadline and "not a loadable shared object" not in self.srv.log():
            time.sleep(0.05)
        self.assertIn("not a loadable shared object", self.srv.log())
        self.assertEqual(get(self.port, "/v"), (200, "1", "v1"))
        listing = json.loads(subprocess.run([loomtest.LOOM_BIN, "plugins", "--port", str(self.aport),
                                             "--json"], capture_output=True, text=True,
                                            timeout=20).stdout)
        p = listing["plugins"][0]
        self.assertEqual((p["name"], p["version"], p["generation"]), ("version", "1.0.1", 1))
        self.assertIn("not a loadable shared object", p["last_error"])
        self.assertEqual(len(p["sha256"]), 64)
        # the table shows the refusal under the plugin's row
        table = subprocess.run([loomtest.LOOM_BIN, "plugins", "--port", str(self.aport)],
                               capture_output=True, text=True, timeout=20).stdout.splitlines()
        self.assertRegex(table[2], r"^version +1\.0\.1 +1 +%s +0 " % p["sha256"][:12])
        self.assertRegex(table[3], r"^  last reload refused: not a loadable shared object")

    def test_d_state_handoff_sighup_and_delete(self):
        self.assertEqual([get(self.port, "/count")[2] for _ in range(3)], ["1", "2", "3"])
        # a copy written in place is only picked up by SIGHUP (no close-write on rename),
        # here we use install-plugin and then force a rescan too: both are idempotent
        install("v2", self.plugins)
        self.srv.signal(1)  # SIGHUP
        self.assertTrue(wait_version(self.port, "v2"))
        self.assertEqual(get(self.port, "/count")[2], "4")
        os.unlink(os.path.join(self.plugins, "version.so"))
        deadline = time.time() + 5
        status = None
        while time.time() < deadline:
            try:
                status = get(self.port, "/v")[0]
            except urllib.error.HTTPError as e:
                status = e.code
                break
            time.sleep(0.05)
        self.assertEqual(status, 404)
        self.assertIn("file removed", self.srv.log())

    def test_e_fifty_reloads_leak_nothing(self):
        pid = self.srv.proc.pid

        def fds():
            return len(os.listdir("/proc/%d/fd" % pid))

        def rss_kb():
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])

        for i in range(4):  # warm up allocator caches
            install("v2" if i % 2 == 0 else "v1", self.plugins)
            self.assertTrue(wait_version(self.port, "v2" if i % 2 == 0 else "v1"))
        time.sleep(0.3)  # let the last polling connection close
        fd0, rss0 = fds(), rss_kb()
        for i in range(50):
            want = "v2" if i % 2 == 0 else "v1"
            install(want, self.plugins)
            self.assertTrue(wait_version(self.port, want), "reload %d" % i)
        deadline = time.time() + 3
        while time.time() < deadline and fds() != fd0:
            time.sleep(0.05)
        fd1, rss1 = fds(), rss_kb()
        print("50 reloads: fds %d -> %d, RSS %d -> %d kB" % (fd0, fd1, rss0, rss1))
        self.assertEqual(fd1, fd0)
        if not SANITIZED:  # ASan's quarantine holds freed memory on purpose
            self.assertLess(rss1 - rss0, 2048)
        maps = open("/proc/%d/maps" % pid).read()
        self.assertLessEqual(maps.count("version."), 2 * 4, "old copies still mapped")

    # ---- how files arrive (issue 23, items 6-8) ----

    def reload_errors(self):
        """Log lines where the reloader gave up on a file or unloaded one."""
        return [ln for ln in self.srv.log().splitlines()
                if "error" in ln.split(":", 1)[0].lower() or "file removed" in ln
                or "file too short" in ln or "keeps serving" in ln or "not loaded" in ln]

    def test_f_slow_writer_in_place_is_not_ready_not_broken(self):
        """A plugin rebuilt in place under load, the way GNU ld writes it
        (unlink, create, sections out of order with pauses, the ELF header
        last), then the way `cp` would if it were slow (front to back, one
        open and close per piece): no error, no unload, no failed request,
        and the new version serves. A truncated file left alone is reported
        once, after it settled."""
        with open(os.path.join(R, "v2", "version.so"), "rb") as f:
            v2 = f.read()
        with open(os.path.join(R, "v1", "version.so"), "rb") as f:
            v1 = f.read()
        dst = os.path.join(self.plugins, "version.so")
        results = []
        t = threading.Thread(target=lambda: asyncio.run(load(self.port, 5.5, 8, results)))
        t.start()
        time.sleep(0.3)
        # like ld: unlink, create, write from offset 64 on in pieces, header last
        os.unlink(dst)
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755)
        step = (len(v2) - 64) // 5 + 1
        for off in range(64, len(v2), step):
            os.pwrite(fd, v2[off:off + step], off)
            time.sleep(0.2)
        os.pwrite(fd, v2[:64], 0)
        time.sleep(0.2)
        os.close(fd)
        self.assertTrue(wait_version(self.port, "v2"), self.srv.log())
        # like a slow cp: front to back, each piece its own open and close
        step = len(v1) // 6 + 1
        for k, off in enumerate(range(0, len(v1), step)):
            with open(dst, "r+b" if k else "wb") as f:
                f.seek(off)
                f.write(v1[off:off + step])
            time.sleep(0.2)
        self.assertTrue(wait_version(self.port, "v1"), self.srv.log())
        t.join(30)
        self.assertEqual(self.reload_errors(), [])
        self.assertEqual([r for r in results if r[0] == "error"], [])
        self.assertGreater(len(results), 100)
        self.assertEqual({r[1] for r in results}, {200})
        self.assertEqual({r[3] for r in results}, {"v1", "v2"})
        # one load each: a file being written is not even tried
        self.assertEqual(self.srv.log().count("1.0.2 loaded from"), 1, self.srv.log())
        self.assertEqual(self.srv.log().count("1.0.1 loaded from"), 2, self.srv.log())
        self.assertIn("(generation 3,", self.srv.log())
        # a truncated file that nobody finishes is broken after all, and said once
        with open(dst, "wb") as f:
            f.write(v2[:len(v2) // 2])
        deadline = time.time() + 10
        while time.time() < deadline and "truncated" not in self.srv.log():
            time.sleep(0.05)
        time.sleep(0.5)
        bad = [ln for ln in self.reload_errors() if "truncated" in ln]
        self.assertEqual(len(bad), 1, self.srv.log())
        self.assertIn("the loaded version keeps serving", bad[0])
        self.assertEqual(get(self.port, "/v")[2], "v1")

    def test_g_reload_while_the_directory_keeps_changing(self):
        """A rename into the directory every 50 ms: a new version still
        serves within the debounce cap (250 ms), not only once the renames
        stop."""
        hello = os.path.join(loomtest.PLUGINS_DIR, "hello.so")
        stop = threading.Event()
        renames = []

        def storm():
            while not stop.is_set():
                tmp = os.path.join(self.plugins, ".hello.so.tmp")
                shutil.copyfile(hello, tmp)
                os.rename(tmp, os.path.join(self.plugins, "hello.so"))
                renames.append(time.time())
                time.sleep(0.05)

        t = threading.Thread(target=storm)
        t.start()
        try:
            time.sleep(0.8)
            install("v2", self.plugins)
            # From the rename (the file's ctime), not from the start of
            # install-plugin: before renaming, it loads the plugin to check
            # it and copies and syncs it, which alone can take most of a
            # second under ASan on a busy machine.
            t_rename = os.stat(os.path.join(self.plugins, "version.so")).st_ctime
            self.assertTrue(wait_version(self.port, "v2", timeout=3), self.srv.log())
            delay = time.time() - t_rename
            storm_alive = t.is_alive()
        finally:
            stop.set()
            t.join(10)
        print("%d renames; v2 served %.0f ms after its rename" % (len(renames), delay * 1000))
        self.assertTrue(storm_alive)
        # The cap is 250 ms; the rest is slack for the load and the answer
        # (measured from the rename: 80-280 ms in release and ASan with a
        # busy second core).
        self.assertLess(delay, 1.0)
        self.assertEqual(self.reload_errors(), [])

    def test_h_refused_file_is_not_retried_until_it_changes(self):
        """A broken version is tried once: its init runs once and its error
        is logged once, however often other files change; a changed file is
        tried again; SIGHUP tries refused files again."""
        def count(text):
            return self.srv.log().count(text)

        install("fail", self.plugins)
        self.srv.wait_log("refusing to start (test)")
        hello = os.path.join(loomtest.PLUGINS_DIR, "hello.so")
        echo = os.path.join(loomtest.PLUGINS_DIR, "echo.so")
        for k, src in enumerate((hello, echo, hello)):
            tmp = os.path.join(self.plugins, ".x.tmp")
            shutil.copyfile(src, tmp)
            os.rename(tmp, os.path.join(self.plugins, "other.so"))
            self.srv.wait_log("loaded from %s/other.so" % self.plugins)
            deadline = time.time() + 5
            while time.time() < deadline and count("loaded from %s/other.so" % self.plugins) < k + 1:
                time.sleep(0.02)
            time.sleep(0.3)
        self.assertEqual(count("refusing to start (test)"), 1, self.srv.log())
        self.assertEqual(count("init failed"), 1, self.srv.log())
        self.assertEqual(get(self.port, "/v")[2], "v1")
        # the same bytes again: still the same verdict, not tried
        install("fail", self.plugins)
        os.unlink(os.path.join(self.plugins, "other.so"))
        self.srv.wait_log("file removed")
        time.sleep(0.3)
        self.assertEqual(count("refusing to start (test)"), 1)
        # a change of the file itself is tried
        put("otherabi", self.plugins)
        self.srv.wait_log("built for plugin ABI 2.0")
        # SIGHUP tries refused files again
        self.srv.signal(1)
        deadline = time.time() + 5
        while time.time() < deadline and count("built for plugin ABI 2.0") < 2:
            time.sleep(0.05)
        self.assertEqual(count("built for plugin ABI 2.0"), 2)
        install("v2", self.plugins)
        self.assertTrue(wait_version(self.port, "v2"))

    def test_i_install_plugin_uses_the_plugins_own_name(self):
        """`loom install-plugin version-inc.so DIR` installs DIR/version.so
        (the descriptor's name), replacing the loaded one, and says so; a
        file that is not a plugin is refused and DIR is left alone."""
        inc = os.path.join(self.dir, "version-inc.so")
        shutil.copyfile(os.path.join(R, "v2", "version.so"), inc)
        p = subprocess.run([loomtest.LOOM_BIN, "install-plugin", inc, self.plugins],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        dst = os.path.join(self.plugins, "version.so")
        with open(os.path.join(loomtest.LOOM_SRC, "sdk/include/loom/loom.h")) as f:
            h = f.read()
        abi = "%s.%s" % (re.search(r"#define LOOM_ABI_MAJOR (\d+)", h).group(1),
                         re.search(r"#define LOOM_ABI_MINOR (\d+)", h).group(1))
        self.assertEqual(p.stdout, "installed %s as %s (plugin version 1.0.2, ABI %s; replaced "
                         "the previous file)\n" % (inc, dst, abi))
        self.assertEqual(os.listdir(self.plugins), ["version.so"])
        self.assertTrue(wait_version(self.port, "v2"))
        junk = os.path.join(self.dir, "junk.so")
        with open(junk, "wb") as f:
            f.write(b"\x7fELF" + os.urandom(60))
        p = subprocess.run([loomtest.LOOM_BIN, "install-plugin", junk, self.plugins],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        self.assertIn(junk + ": not a loadable shared object", p.stderr)
        self.assertIn("not installed", p.stderr)
        self.assertEqual(os.listdir(self.plugins), ["version.so"])
        time.sleep(0.3)
        self.assertNotIn("already loaded", self.srv.log())
        self.assertEqual(self.reload_errors(), [])
        self.assertEqual(get(self.port, "/v")[2], "v2")

    def test_j_refused_after_init_stops_what_init_started(self):
        """clash.so starts a 5 ms timer and a 300 ms thread-pool job in init.
        Refused (its init fails; or it succeeds and the snapshot cannot be
        built), the job's done runs (cancelled), then fini (only after a
        successful init), and nothing fires into the unmapped code."""
        dst = os.path.join(self.plugins, "clash.so")
        for d, why, fini in (("clashfail", "init failed (-5", False),
                             ("clash", "reload refused: plugin version: middleware name "
                              "'version-tag' is taken by plugin clash", True)):
            done0 = self.srv.log().count("clash: job done (cancelled=1)")
            tmp = os.path.join(self.plugins, ".clash.so.tmp")
            shutil.copyfile(os.path.join(R, d, "clash.so"), tmp)
            os.rename(tmp, dst)
            self.srv.wait_log(why)
            deadline = time.time() + 10
            while (time.time() < deadline
                   and self.srv.log().count("clash: job done (cancelled=1)") == done0):
                time.sleep(0.05)
            if fini:
                self.srv.wait_log("clash: fini (job cancelled, ")
            time.sleep(0.2)  # 40 ticks of a timer left running
            self.assertEqual(get(self.port, "/v"), (200, "1", "v1"))
            self.assertGreater(self.srv.log().count("clash: job done (cancelled=1)"), done0)
            self.assertEqual("clash: fini" in self.srv.log(), fini, self.srv.log())
            os.unlink(dst)


if __name__ == "__main__":
    loomtest.main()
