"""The session-demo example app: login, a per-user counter, logout, and its
page, on the SQLite store with two workers."""
import json
import shutil
import tempfile
import unittest

import loomtest
import weblib

KEY = "demo-key-0123456789abcdef0123456789"


class DemoTest(unittest.TestCase):
    def test_login_count_logout(self):
        tmp = tempfile.mkdtemp(prefix="loom-demo-")
        pdir = weblib.plugin_dir("session-sqlite", "session-demo")
        srv = loomtest.Server(plugins_dir=pdir, args=["--workers", "2"], config={"plugins": {
            "sessions": {"keys": [KEY]},
            "session-sqlite": {"db": tmp + "/s.db"}}})
        try:
            weblib.wait_route(srv.port, "/demo")
            cookie = {}

            def call(method, path, body=b""):
                h = {"Cookie": "loom_session=" + cookie["v"]} if cookie.get("v") else {}
                if body:
                    h["Content-Type"] = "application/x-www-form-urlencoded"
                st, hs, b = weblib.req(srv.port, path, method=method, headers=h, body=body)
                if "set-cookie" in hs:
                    cookie["v"] = hs["set-cookie"].split(";")[0].split("=", 1)[1]
                return st, json.loads(b) if st == 200 else b

            st, _, page = weblib.req(srv.port, "/demo")
            self.assertEqual(st, 200)
            self.assertIn(b"/demo/api/", page)
            self.assertEqual(call("GET", "/demo/api/me"), (200, {"user": None, "count": 0}))
            self.assertEqual(call("POST", "/demo/api/count")[0], 401)
            self.assertEqual(call("POST", "/demo/api/login", b"user=ann")[1], {"user": "ann", "count": 0})
            first = cookie["v"]
            for i in range(1, 4):
                self.assertEqual(call("POST", "/demo/api/count"), (200, {"user": "ann", "count": i}))
            self.assertEqual(call("GET", "/demo/api/me")[1], {"user": "ann", "count": 3})
            self.assertEqual(call("POST", "/demo/api/logout")[1], {"user": None, "count": 0})
            self.assertEqual(call("GET", "/demo/api/me")[1], {"user": None, "count": 0})
            cookie["v"] = first  # the logged-out session is gone for good
            self.assertEqual(call("GET", "/demo/api/me")[1], {"user": None, "count": 0})
            cookie["v"] = None
            self.assertEqual(call("POST", "/demo/api/login", b"user=bob")[1], {"user": "bob", "count": 0})
            self.assertEqual(call("POST", "/demo/api/count")[1], {"user": "bob", "count": 1})
            self.assertEqual(call("POST", "/demo/api/login", b"user=<script>")[0], 400)
        finally:
            rc = srv.stop()
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(pdir, ignore_errors=True)
        self.assertEqual(rc, 0, srv.log()[-3000:])


if __name__ == "__main__":
    loomtest.main()
