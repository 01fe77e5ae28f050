"""wrk against GET / (issue 2, "done when"): no socket error, no non-2xx.

Its own file so that ctest keeps it apart from the timing-sensitive tests
(RESOURCE_LOCK in CMakeLists.txt)."""
import re
import shutil
import subprocess
import unittest

import loomtest


class Load(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = loomtest.Server(["--set", "linger_timeout=1"])

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        if rc != 0:
            raise AssertionError("server exit status %s\n%s" % (rc, cls.srv.log()[-3000:]))

    @unittest.skipUnless(shutil.which("wrk"), "wrk is not installed")
    def test_wrk(self):
        p = subprocess.run(["wrk", "-t1", "-c64", "-d5s", self.srv.url("/")], capture_output=True,
                           timeout=30)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, out + p.stderr.decode())
        self.assertNotIn("Socket errors", out)
        self.assertNotIn("Non-2xx", out)
        m = re.search(r"(\d+) requests in", out)
        self.assertTrue(m and int(m.group(1)) > 1000, out)
        print("\nwrk:", out.strip().splitlines()[-2], flush=True)


if __name__ == "__main__":
    loomtest.main()
