"""loom's WebSocket client (<loom/client.h> through ws_client_api, the
`loom ws` command, and loom_ws_connect from a plugin) against servers that
are not loom: python3-websockets and Node's ws."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import loomtest
import peers
import wslib

HERE = os.path.dirname(os.path.abspath(__file__))
API = os.path.join(loomtest.LOOM_BUILD, "bin", "ws_client_api")


def start(argv, env=None):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    line = p.stdout.readline()
    if "ready" not in line:
        p.kill()
        raise AssertionError("peer did not start: %s %s" % (line, p.stdout.read()))
    return p


def api(url, *args, timeout=20):
    p = subprocess.run([API, url] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout.splitlines(), p.stderr


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pyport = loomtest.free_port()
        cls.py = start([sys.executable, os.path.join(HERE, "peers.py"), "python", str(cls.pyport)])
        cls.py_url = "ws://127.0.0.1:%d" % cls.pyport
        cls.node = None
        if wslib.HAVE_NODE_WS:
            cls.nodeport = loomtest.free_port()
            cls.node = start([wslib.NODE, "-e", peers.NODE_ECHO, str(cls.nodeport)],
                             env=dict(os.environ, NODE_PATH=wslib.NODE_PATH))

    @classmethod
    def tearDownClass(cls):
        for p in (cls.py, cls.node):
            if p:
                p.kill()
                p.wait(5)

    def test_python_echo_all_types(self):
        rc, out, err = api(self.py_url + "/echo", "--proto", "py.v2", "--text", "héllo",
                           "--binary", 300, "--text", "", "--binary", 100000, "--ping", "p",
                           "--wait", 4)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out[0], "open py.v2 deflate=0")
        self.assertEqual(out[1:5], ["text héllo", "binary 300 0001020304050607", "text ",
                                    "binary 100000 0001020304050607"])
        self.assertEqual(out[-1], "close 1000 done")

    def test_python_deflate(self):
        rc, out, err = api(self.py_url + "/echo", "--deflate", "--text", "squeeze " * 200,
                           "--text", "again " * 100, "--binary", 70000)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out[0], "open - deflate=1")
        self.assertEqual(out[1], "text " + ("squeeze " * 200)[:200])
        self.assertEqual(out[3], "binary 70000 0001020304050607")

    def test_python_server_closes_with_a_code(self):
        rc, out, err = api(self.py_url + "/close/4444", "--text", "x", "--no-close")
        self.assertEqual(out[-1], "close 4444 bye 4444")

    def test_python_server_breaks_the_protocol(self):
        rc, out, err = api(self.py_url + "/bad", "--text", "x", "--no-close")
        self.assertIn("error 1002 RSV2 or RSV3 set", out)
        self.assertEqual(out[-1], "close 1002 RSV2 or RSV3 set")

    def test_max_msg_size_and_big(self):
        rc, out, err = api(self.py_url + "/big", "--text", "x", "--max", 1000000, "--no-close")
        self.assertTrue(any(l.startswith("error 1009") for l in out), out)
        rc, out, err = api(self.py_url + "/big", "--text", "x", "--wait", 1)
        self.assertIn("binary 3145728 0001020304050607", out)

    def test_heartbeat_gives_up_on_a_silent_server(self):
        t0 = time.time()
        rc, out, err = api(self.py_url + "/silent", "--heartbeat", 0.4, "--no-close")
        self.assertTrue(any(l.startswith("error 1006 no answer to a heartbeat ping") for l in out),
                        out)
        self.assertLess(time.time() - t0, 5)

    def test_connect_failures(self):
        port = loomtest.free_port()
        rc, out, err = api("ws://127.0.0.1:%d/" % port, "--text", "x")
        self.assertTrue(out[0].startswith("error -3 connection refused: ws://127.0.0.1:%d/" % port),
                        out)
        self.assertEqual(out[-1], "close 1006 ")
        rc, out, err = api("wss://127.0.0.1:%d/" % port)
        self.assertTrue(out[0].startswith("error -3 connection refused: wss://127.0.0.1:%d/"
                                          % port), out)
        rc, out, err = api("http://127.0.0.1:%d/" % port)
        self.assertTrue(out[0].startswith("refused ") and "not a ws:// or wss:// URL" in out[0], out)
        # An HTTP server that does not upgrade.
        with loomtest.Server(args=["--single"]) as srv:
            rc, out, err = api("ws://127.0.0.1:%d/" % srv.port, "--text", "x")
            self.assertIn("error -11 ", out[0])
            self.assertIn("answered 200, not 101", out[0])

    @unittest.skipUnless(wslib.HAVE_NODE_WS, "node or node-ws missing")
    def test_node_server(self):
        url = "ws://127.0.0.1:%d/" % self.nodeport
        rc, out, err = api(url, "--proto", "node.v1", "--deflate", "--text", "to node " * 50,
                           "--binary", 5000, "--ping", "np", "--wait", 2)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out[0], "open node.v1 deflate=1")
        self.assertEqual(out[1], "text " + ("to node " * 50)[:200])
        self.assertEqual(out[2], "binary 5000 0001020304050607")
        self.assertEqual(out[-1], "close 1000 done")
        rc, out, err = api(url, "--text", "close-me", "--no-close")
        self.assertEqual(out[-1], "close 4321 node says bye")

    def test_loom_ws_command(self):
        lines = "one\nzwei\ndrei\n"
        p = subprocess.run([loomtest.LOOM_BIN, "ws", "-p", "py.v1", self.py_url + "/echo"],
                           input=lines, capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, lines)
        self.assertIn("connected, protocol py.v1", p.stderr)
        self.assertIn("closed 1000", p.stderr)
        p = subprocess.run([loomtest.LOOM_BIN, "ws", "ws://127.0.0.1:1/"], input="",
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 1)
        self.assertIn("connection refused", p.stderr)
        p = subprocess.run([loomtest.LOOM_BIN, "ws"], capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 2)

    @unittest.skipUnless(shutil.which("tinyproxy"), "tinyproxy missing")
    def test_wss_and_proxy(self):
        """wss:// verified with the client's CA setting, against loom's TLS
        listener; ws:// and wss:// through tinyproxy (a CONNECT tunnel)."""
        import tlscerts
        tmp = tempfile.mkdtemp(prefix="loom-wss-client-")
        ca, cert, key = tlscerts.make(tmp)
        tport, pport, xport = loomtest.free_port(), loomtest.free_port(), loomtest.free_port()
        cfg = {"tls": {"cert": cert, "key": key},
               "listen": ["127.0.0.1:%d:tls" % tport, "127.0.0.1:%d" % pport],
               "plugins_dir": wslib.plugin_dir()}
        conf = os.path.join(tmp, "tinyproxy.conf")
        with open(conf, "w") as f:
            f.write("Port %d\nListen 127.0.0.1\nTimeout 30\nMaxClients 16\nLogLevel Info\n"
                    "LogFile \"%s/tp.log\"\nPidFile \"%s/tp.pid\"\nConnectPort %d\n"
                    "ConnectPort %d\nDisableViaHeader Yes\n" % (xport, tmp, tmp, tport, pport))
        proxy = subprocess.Popen(["tinyproxy", "-d", "-c", conf], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            with wslib.TlsServer(cfg, tport) as srv:
                for _ in range(100):
                    try:
                        loomtest.connect(xport, 0.5).close()
                        break
                    except OSError:
                        time.sleep(0.05)

                def ws(*args, inp="over TLS\nzwei\n"):
                    return subprocess.run([loomtest.LOOM_BIN, "ws"] + list(args), input=inp,
                                          capture_output=True, text=True, timeout=30)
                wss = "wss://127.0.0.1:%d/ws/echo" % tport
                p = ws("--cacert", ca, wss)
                self.assertEqual((p.returncode, p.stdout), (0, "over TLS\nzwei\n"), p.stderr)
                p = ws(wss)  # the test CA is not in the system's store
                self.assertEqual(p.returncode, 1)
                self.assertIn("certificate", p.stderr)
                p = ws("-k", wss)
                self.assertEqual(p.returncode, 0, p.stderr)
                proxy_url = "http://127.0.0.1:%d" % xport
                p = ws("--proxy", proxy_url, "--cacert", ca, wss)
                self.assertEqual((p.returncode, p.stdout), (0, "over TLS\nzwei\n"), p.stderr)
                p = ws("--proxy", proxy_url, "ws://127.0.0.1:%d/ws/t" % pport, inp="via proxy\n")
                self.assertEqual((p.returncode, p.stdout), (0, "v1:via proxy\n"), p.stderr)
                # A port the proxy does not tunnel to: its refusal is named.
                p = ws("--proxy", proxy_url, "ws://127.0.0.1:%d/" % loomtest.free_port(), inp="")
                self.assertEqual(p.returncode, 1)
                self.assertIn("proxy %s refused the tunnel" % proxy_url, p.stderr)
                self.assertEqual(srv.stop(), 0, srv.log()[-3000:])
        finally:
            proxy.kill()
            proxy.wait(5)

    def test_plugin_client_through_the_abi(self):
        """loom_ws_connect from a plugin, to python3-websockets and to loom itself."""
        with loomtest.Server(args=["--single"], plugins_dir=wslib.plugin_dir()) as srv:
            srv.wait_log("listening")

            def get(q):
                s = loomtest.connect(srv.port, 10)
                s.sendall(("GET /ws/connect?%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                           % q).encode())
                r = loomtest.parse_responses(loomtest.recv_all(s, 10))
                s.close()
                return r[0][2].decode()
            self.assertEqual(get("url=%s/echo&send=hi%%20python&deflate=1" % self.py_url),
                             "text hi python")
            self.assertEqual(get("url=ws://127.0.0.1:%d/ws/echo&send=to%%20myself" % srv.port),
                             "text to myself")
            self.assertTrue(get("url=ws://127.0.0.1:1/").startswith("error -3 connection refused"))
            wslib.wait_event(srv.port, lambda e: e["event"] == "client-close" and e["code"] == 1000)
            self.assertEqual(srv.stop(), 0, srv.log()[-3000:])


if __name__ == "__main__":
    loomtest.main()
