"""The plugin host, end to end: the real binary loads the test plugins
(apitest, mwtest) and real clients drive every part of the request and
response API, the router, middleware and async answers."""
import asyncio
import http.client
import json
import os
import socket
import subprocess
import time
import unittest

import aiohttp

import loomtest

TEST_PLUGINS = os.path.join(loomtest.LOOM_BUILD, "test-plugins")


def get(port, path, method="GET", body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    hdrs = r.getheaders()
    c.close()
    return r.status, r, data, hdrs


class PluginApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # one worker: the abort counter lives in the worker process
        cls.srv = loomtest.Server(plugins_dir=TEST_PLUGINS, args=["--workers", "1"],
                                  config={"plugins": {"apitest": {"greeting": "hi from config"}}})
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        log = cls.srv.log()
        assert rc == 0, "server exit %s\n%s" % (rc, log)

    def test_loaded_log_lines(self):
        log = self.srv.wait_log("plugin mwtest 1.0.0 loaded")
        self.assertIn("plugin apitest 1.2.3 loaded", log)
        self.assertIn("plugin mwtest 1.0.0 loaded", log)

    def test_query_decoded_repeated(self):
        st, _, body, _ = get(self.port, "/q?a=hello%20world&b=2&a=x+y")
        self.assertEqual((st, body), (200, b"a=hello world a2=x y"))

    def test_headers_case_insensitive_repeated(self):
        s = loomtest.connect(self.port)
        s.sendall(b"GET /h HTTP/1.1\r\nHost: a\r\nx-a: one\r\nX-A: two\r\nConnection: close\r\n\r\n")
        (st, h, body), = loomtest.parse_responses(loomtest.recv_all(s))
        self.assertEqual(body, b"x-a=one x-a2=two")

    def test_cookies(self):
        st, _, body, _ = get(self.port, "/cookie", headers={"Cookie": 'a=1; sid="s3cr3t"; other=o'})
        self.assertEqual(body, b"sid=s3cr3t other=o")

    def test_router_static_wins_and_regex(self):
        self.assertEqual(get(self.port, "/users/me")[2], b"me (null)")
        self.assertEqual(get(self.port, "/users/123")[2], b"user 123")
        # \d+ does not match letters; {id} does, but only with /posts after it
        self.assertEqual(get(self.port, "/users/abc")[0], 404)
        self.assertEqual(get(self.port, "/users/abc/posts")[2], b"posts abc")
        self.assertEqual(get(self.port, "/files/a/b/c.txt")[2], b"path=a/b/c.txt")
        self.assertEqual(get(self.port, "/users/caf%C3%A9/posts")[2], "posts café".encode())

    def test_404_and_405_with_allow(self):
        st, r, body, _ = get(self.port, "/nope")
        self.assertEqual(st, 404)
        st, r, body, _ = get(self.port, "/json")
        self.assertEqual(st, 405)
        self.assertEqual(r.getheader("Allow"), "POST, PUT")
        st, r, _, _ = get(self.port, "/q", method="DELETE")
        self.assertEqual((st, r.getheader("Allow")), (405, "GET, HEAD"))

    def test_head_on_get_route(self):
        st, r, body, _ = get(self.port, "/q?a=1", method="HEAD")
        self.assertEqual(st, 200)
        self.assertEqual(body, b"")
        self.assertEqual(r.getheader("Content-Length"), str(len("a=1 a2=(null)")))

    def test_any_method(self):
        for m in ("GET", "POST", "PATCH", "OPTIONS", "DELETE"):
            self.assertEqual(get(self.port, "/any", method=m)[2], ("any " + m).encode())

    def test_url_for(self):
        self.assertEqual(get(self.port, "/url")[2], b"/users/42 rc=0 bad=-1")

    def test_path_decoding_and_dot_segments(self):
        st, _, body, _ = get(self.port, "/info/a/./b/../c%20d?x=1")
        self.assertEqual(st, 200)
        self.assertIn(b"path=/info/a/c d ", body)
        self.assertIn(b"raw=/info/a/./b/../c%20d ", body)
        self.assertIn(b"remote=127.0.0.1", body)
        self.assertEqual(get(self.port, "/../etc/passwd")[0], 400)
        self.assertEqual(get(self.port, "/info/%00")[0], 400)

    def test_urlencoded_form(self):
        st, _, body, _ = get(self.port, "/form", "POST", "name=J%C3%BCrgen+X&tag=a&tag=b",
                             {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(body.decode(), "name=Jürgen X tag=a tag2=b file=- type=- len=0 body=")

    def test_multipart_form_with_aiohttp(self):
        async def run():
            form = aiohttp.FormData()
            form.add_field("name", "alice")
            form.add_field("tag", "t1")
            form.add_field("upload", b"file-bytes\r\nline2", filename="a.txt",
                           content_type="text/plain")
            async with aiohttp.ClientSession() as s:
                async with s.post("http://127.0.0.1:%d/form" % self.port, data=form) as r:
                    return r.status, await r.text()
        st, text = asyncio.run(run())
        self.assertEqual(st, 200)
        self.assertEqual(text, "name=alice tag=t1 tag2=(null) file=a.txt type=text/plain len=17 "
                               "body=file-bytes\r\nline2")

    def test_json_body_and_400(self):
        st, r, body, _ = get(self.port, "/json", "POST", json.dumps({"name": "n", "n": 21, "x": []}))
        self.assertEqual(st, 201)
        self.assertEqual(r.getheader("Content-Type"), "application/json")
        self.assertEqual(json.loads(body), {"name": "n", "n2": 42, "keys": 3})
        st, r, body, _ = get(self.port, "/json", "POST", "{nope",
                             {"Accept": "application/json"})
        self.assertEqual(st, 400)
        err = json.loads(body)["error"]
        self.assertEqual(err["status"], 400)
        self.assertIn("invalid JSON body", err["message"])
        st, _, body, _ = get(self.port, "/json", "POST", "")
        self.assertEqual(st, 400)
        self.assertIn(b"empty", body)

    def test_set_cookie_and_header_injection_refused(self):
        st, r, body, hdrs = get(self.port, "/setcookie")
        self.assertEqual(body, b"rc=0 bad=-1 inject=-1")
        cookies = [v for k, v in hdrs if k.lower() == "set-cookie"]
        self.assertEqual(cookies, ["sid=abc123; Path=/app; Domain=example.test; Max-Age=3600; "
                                   "Secure; HttpOnly; SameSite=Lax"])
        self.assertIsNone(r.getheader("Injected"))

    def test_streaming_chunked(self):
        s = loomtest.connect(self.port)
        s.sendall(b"GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        raw = loomtest.recv_all(s)
        self.assertIn(b"Transfer-Encoding: chunked", raw)
        (st, h, body), = loomtest.parse_responses(raw)
        self.assertEqual(body, b"one,two,three")
        # HTTP/1.0 gets the body delimited by close instead
        s = loomtest.connect(self.port)
        s.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
        raw = loomtest.recv_all(s)
        self.assertNotIn(b"chunked", raw)
        self.assertTrue(raw.endswith(b"\r\n\r\none,two,three"), raw)

    def test_deferred_timer_and_thread_pool(self):
        t0 = time.time()
        st, _, body, _ = get(self.port, "/timer")
        self.assertEqual((st, body), (200, b"from timer"))
        self.assertGreaterEqual(time.time() - t0, 0.04)
        self.assertEqual(get(self.port, "/work")[2], b"sum=500500 cancelled=0")

    def test_io_watcher_after_an_error(self):
        # libuv stops a poll that saw POLLERR; asking for the same events
        # again must watch again (and so report the error a second time).
        st, _, body, _ = get(self.port, "/io-error")
        self.assertEqual((st, body), (200, b"errors=2 update=0"))

    def test_fini_waits_for_running_jobs(self):
        # A thread-pool job (400 ms) still runs when the server is told to
        # stop; fini frees the state the job writes to, so it must wait.
        srv = loomtest.Server(plugins_dir=TEST_PLUGINS, args=["--single"])
        try:
            srv.wait_log("plugin apitest 1.2.3 loaded")
            self.assertEqual(get(srv.port, "/slow-work")[2], b"queued")
        finally:
            rc = srv.stop()
        log = srv.log()
        self.assertEqual(rc, 0, log[-2000:])
        self.assertIn("apitest fini: 0 jobs in flight", log)
        self.assertNotIn("jobs in flight", log.replace("apitest fini: 0 jobs in flight", ""))

    def test_many_concurrent_deferred(self):
        async def run():
            async with aiohttp.ClientSession() as s:
                async def one(i):
                    async with s.get("http://127.0.0.1:%d/%s" % (self.port, ("timer", "work")[i % 2])) as r:
                        return r.status
                return await asyncio.gather(*[one(i) for i in range(200)])
        self.assertEqual(asyncio.run(run()), [200] * 200)

    def test_handler_failure_is_500_and_logged(self):
        st, _, body, _ = get(self.port, "/fail")
        self.assertEqual(st, 500)
        st, _, body, _ = get(self.port, "/noanswer")
        self.assertEqual(st, 500)
        time.sleep(0.1)
        log = self.srv.log()
        self.assertIn("plugin apitest: handler: GET /fail from 127.0.0.1: failed (-1)", log)
        self.assertIn("returned LOOM_DONE without answering", log)
        self.assertEqual(get(self.port, "/q?a=still-alive")[2], b"a=still-alive a2=(null)")

    def test_error_json_when_accepted(self):
        st, r, body, _ = get(self.port, "/teapot", headers={"Accept": "application/json"})
        self.assertEqual(st, 418)
        self.assertEqual(json.loads(body), {"error": {"status": 418, "message": "short and stout"}})
        st, r, body, _ = get(self.port, "/teapot")
        self.assertEqual(body, b"418: short and stout")

    def test_abort_callback_and_late_answer_is_noop(self):
        before = int(get(self.port, "/aborted")[2])
        for _ in range(3):
            hung = int(get(self.port, "/hung")[2])
            s = loomtest.connect(self.port)
            s.sendall(b"GET /hang HTTP/1.1\r\nHost: a\r\n\r\n")
            # the client leaves once its request is in the handler
            deadline = time.time() + 10
            while int(get(self.port, "/hung")[2]) == hung:
                self.assertLess(time.time(), deadline, "GET /hang never reached its handler")
                time.sleep(0.02)
            s.close()
        deadline = time.time() + 5
        while time.time() < deadline and int(get(self.port, "/aborted")[2]) < before + 3:
            time.sleep(0.05)
        self.assertEqual(int(get(self.port, "/aborted")[2]), before + 3)

    def test_plugin_config(self):
        self.assertEqual(get(self.port, "/config")[2], b"hi from config")

    def test_middleware_onion_early_answer_rewrite(self):
        st, r, body, hdrs = get(self.port, "/secret")
        self.assertEqual(st, 401)
        # response phase ran in reverse for the middleware whose request phase ran
        self.assertEqual([v for k, v in hdrs if k == "X-Order"], ["auth", "outer"])
        st, r, body, hdrs = get(self.port, "/old-q?a=rewritten")
        self.assertEqual((st, body), (200, b"a=rewritten a2=(null)"))
        self.assertEqual([v for k, v in hdrs if k == "X-Order"], ["auth", "outer"])
        st, r, body, _ = get(self.port, "/nothing")
        self.assertEqual((st, body), (404, b"nothing here (mw)"))

    def test_async_middleware(self):
        st, _, body, _ = get(self.port, "/slowmw/q?a=late")
        self.assertEqual((st, body), (200, b"a=late a2=(null)"))

    def test_failing_middleware_is_500(self):
        st, _, body, hdrs = get(self.port, "/mwfail")
        self.assertEqual(st, 500)
        self.assertIn("plugin mwtest: middleware auth", self.srv.log())

    def test_curl_keepalive_through_plugins(self):
        out = subprocess.run(["curl", "-s", "-w", "%{http_code} %{num_connects}\n",
                              "-o", "/dev/null", self.srv.url("/q?a=1"),
                              "-o", "/dev/null", self.srv.url("/users/7"),
                              "-o", "/dev/null", self.srv.url("/any")],
                             capture_output=True, text=True, timeout=20).stdout.split("\n")
        self.assertEqual(out[:3], ["200 1", "200 0", "200 0"])


class BadPluginConfigs(unittest.TestCase):
    def test_unknown_plugin_dir(self):
        p = subprocess.run([loomtest.LOOM_BIN, "serve", "--port", str(loomtest.free_port()),
                            "--plugins-dir", "/nonexistent/dir"], capture_output=True, text=True,
                           timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("plugins directory '/nonexistent/dir'", p.stderr)

    def test_middleware_cycle_refused_with_names(self):
        d = os.path.join(loomtest.LOOM_BUILD, "test-plugins-bad", "cycle")
        p = subprocess.run([loomtest.LOOM_BIN, "serve", "--single", "--port",
                            str(loomtest.free_port()), "--plugins-dir", d],
                           capture_output=True, text=True, timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("middleware order has a cycle among: mw-a (cycle) mw-b (cycle)", p.stderr)
        # with "skip", the server starts without it
        with loomtest.Server(plugins_dir=d, config={"on_plugin_error": "skip"},
                             args=["--single"]) as srv:
            srv.wait_log("plugin cycle: skipped")
            self.assertEqual(srv.stop(), 0)

    def test_disabled_plugin_and_order(self):
        with loomtest.Server(plugins_dir=TEST_PLUGINS,
                             config={"plugins": {"mwtest": {"enabled": False}},
                                     "plugin_order": ["mwtest", "apitest"]}) as srv:
            self.assertEqual(get(srv.port, "/secret")[0], 404)  # no auth middleware
            srv.wait_log("plugin mwtest: disabled in the config")
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    loomtest.main()
