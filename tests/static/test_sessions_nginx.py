"""Beyond one machine: two loom instances behind nginx (round robin, started
here) share sessions through the Redis store. A session written through one
instance is read through the other, and through nginx every time."""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import loomtest
import weblib
from test_sessions import Client, setq, K1

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


@unittest.skipUnless(NGINX and shutil.which("redis-server"), "nginx or redis-server missing")
class TwoInstancesTest(unittest.TestCase):
    def test_session_crosses_instances(self):
        redis = weblib.Redis()
        tmp = tempfile.mkdtemp(prefix="loom-nginx-")
        pdir = weblib.plugin_dir("session-redis", "sesstest")
        cfg = {"plugins": {"sessions": {"keys": [K1], "store": "redis"},
                           "session-redis": {"port": redis.port, "prefix": "two:"}}}
        servers, ngx = [], None
        try:
            for _ in range(2):
                s = loomtest.Server(plugins_dir=pdir, config=cfg, args=["--workers", "1"])
                servers.append(s)
                weblib.wait_route(s.port, "/s")
            a, b = servers
            nport = loomtest.free_port()
            conf = os.path.join(tmp, "nginx.conf")
            os.makedirs(os.path.join(tmp, "temp"))
            with open(conf, "w") as f:
                f.write("""
daemon off;
master_process off;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 64; }
http {
    access_log %(d)s/access.log;
    client_body_temp_path %(d)s/temp/body;
    proxy_temp_path %(d)s/temp/proxy;
    fastcgi_temp_path %(d)s/temp/fastcgi;
    uwsgi_temp_path %(d)s/temp/uwsgi;
    scgi_temp_path %(d)s/temp/scgi;
    log_format up '$upstream_addr';
    upstream loom { server 127.0.0.1:%(a)d; server 127.0.0.1:%(b)d; }
    server {
        listen 127.0.0.1:%(n)d;
        access_log %(d)s/upstream.log up;
        location / {
            proxy_pass http://loom;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
""" % {"d": tmp, "a": a.port, "b": b.port, "n": nport})
            ngx = subprocess.Popen([NGINX, "-p", tmp, "-c", conf, "-e", os.path.join(tmp, "error.log")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    loomtest.connect(nport, 0.5).close()
                    break
                except OSError:
                    time.sleep(0.05)

            # written directly through A, read directly through B
            c = Client(a.port)
            c.call("POST", setq("user", "nina"))
            c.port = b.port
            self.assertEqual(c.call("GET", "/s")[2], {"new": False, "data": {"user": "nina"}})
            # written through B, read through A
            c.call("POST", setq("n", 1))
            c.port = a.port
            self.assertEqual(c.call("GET", "/s")[2]["data"], {"user": "nina", "n": 1})
            # through nginx, round robin: every answer sees the latest write
            c.port = nport
            for i in range(2, 8):
                c.call("POST", setq("n", i))
                self.assertEqual(c.call("GET", "/s")[2]["data"], {"user": "nina", "n": i})
            with open(os.path.join(tmp, "upstream.log")) as f:
                ups = set(line.strip() for line in f if line.strip())
            self.assertEqual(ups, {"127.0.0.1:%d" % a.port, "127.0.0.1:%d" % b.port})
        finally:
            if ngx:
                ngx.terminate()
                ngx.wait(10)
            rcs = [s.stop() for s in servers]
            redis.stop()
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(pdir, ignore_errors=True)
        self.assertEqual(rcs, [0, 0])


if __name__ == "__main__":
    loomtest.main()
