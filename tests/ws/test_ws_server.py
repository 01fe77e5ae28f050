"""The loom server's WebSockets against real clients: python3-websockets,
Node's ws (Debian's node-ws) and raw frames. One server (--single) with the
wstest and ws-echo plugins serves every test; the plugin's event log
(/ws/events) shows what its callbacks saw. Run on both I/O backends."""
import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import loomtest
import websockets
import wslib
from wslib import Reader, frame

CFG = {"plugins": {"ws-echo": {"deflate": True},
                   "sessions": {"keys": ["k1-0123456789abcdef0123456789abcdef"],
                                "store": "memory"}}}


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class WsServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = wslib.plugin_dir()
        shutil.copy(os.path.join(loomtest.PLUGINS_DIR, "session-memory.so"), d)
        cls.srv = loomtest.Server(args=["--single", "--set", "linger_timeout=1"], config=CFG,
                                  plugins_dir=d)
        cls.srv.wait_log("listening")
        cls.port = cls.srv.port
        cls.url = "ws://127.0.0.1:%d" % cls.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        log = cls.srv.log()
        cls.srv.__exit__()
        assert rc == 0, "server exited %s:\n%s" % (rc, log[-4000:])
        for bad in ("ERROR", "AddressSanitizer", "runtime error"):
            assert bad not in log, log[-4000:]

    # ---- python3-websockets as the client ----

    def test_echo_types_sizes_fragments(self):
        async def go():
            async with websockets.connect(self.url + "/ws/echo", max_size=None) as ws:
                await ws.send("héllo")
                self.assertEqual(await ws.recv(), "héllo")
                await ws.send(b"\x00\xffbin")
                self.assertEqual(await ws.recv(), b"\x00\xffbin")
                await ws.send(["frag-", "ment", "ed"])
                self.assertEqual(await ws.recv(), "frag-mented")
                big = os.urandom(3 << 20)
                await ws.send(big)
                self.assertEqual(await ws.recv(), big)
                await ws.send("")
                self.assertEqual(await ws.recv(), "")
                await (await ws.ping(b"abc"))
            self.assertEqual(ws.close_code, 1000)
        run(go())

    def test_deflate_with_python(self):
        async def go():
            async with websockets.connect(self.url + "/ws/echo", compression="deflate") as ws:
                ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
                self.assertIn("permessage-deflate", ext)
                for i in range(5):  # several messages: the shared streams reset between them
                    msg = ("compressible %d " % i) * 500
                    await ws.send(msg)
                    self.assertEqual(await ws.recv(), msg)
                await ws.send(os.urandom(50000))  # incompressible
                self.assertEqual(len(await ws.recv()), 50000)
        run(go())

    def test_subprotocol_user_data_timer_work(self):
        async def go():
            url = self.url + "/ws/t?proto=v2.chat,v1.chat&hello=1"
            async with websockets.connect(url, subprotocols=["v1.chat", "v2.chat"]) as ws:
                self.assertEqual(ws.subprotocol, "v2.chat")
                self.assertEqual(await ws.recv(), "open v1 v2.chat")
                await ws.send("user")
                self.assertEqual(await ws.recv(), "user 1")
                await ws.send("user")
                self.assertEqual(await ws.recv(), "user 2")
                await ws.send("later:50:from a timer")
                await ws.send("work:krow")
                got = {await ws.recv(), await ws.recv()}
                self.assertEqual(got, {"from a timer", "work"})
        run(go())

    def test_close_codes_reach_the_plugin(self):
        async def go():
            async with websockets.connect(self.url + "/ws/t") as ws:
                await ws.close(4001, "python leaves")
        run(go())
        wslib.wait_event(self.port, lambda e: e["event"] == "close" and e["code"] == 4001 and
                         e["reason"] == "python leaves")

        async def go2():
            async with websockets.connect(self.url + "/ws/t") as ws:
                await ws.send("close:3003:server says bye")
                with self.assertRaises(websockets.ConnectionClosed):
                    await ws.recv()
                self.assertEqual(ws.close_code, 3003)
                self.assertEqual(ws.close_reason, "server says bye")
            # A code the server may not send is refused, the connection stays.
            async with websockets.connect(self.url + "/ws/t") as ws:
                await ws.send("close:1005:")
                self.assertEqual(await ws.recv(), "close refused -1")
        run(go2())
        wslib.wait_event(self.port, lambda e: e["event"] == "close" and e["code"] == 3003)

    def test_session_middleware_on_the_upgrade(self):
        """The upgrade is a request like any other: the session middleware
        loads its session (the handler answers later, from the store's
        callback) and the 101 carries the session cookie."""
        async def go(cookie=None):
            hdrs = {"Cookie": "loom_session=" + cookie} if cookie else {}
            async with websockets.connect(self.url + "/ws/t?session=1", extra_headers=hdrs) as ws:
                msg = await ws.recv()
                set_cookie = ws.response_headers.get("Set-Cookie", "")
            return msg, set_cookie
        msg, sc = run(go())
        self.assertEqual(msg, "session visits=1")
        self.assertIn("loom_session=", sc)
        cookie = sc.split(";", 1)[0].split("=", 1)[1]
        msg, _ = run(go(cookie))
        self.assertEqual(msg, "session visits=2")

    def test_handshake_refusals(self):
        def status(extra, path="/ws/t"):
            s = loomtest.connect(self.port)
            s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       % path + extra + "\r\n").encode())
            s.settimeout(3)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(4096)
            head, body = buf.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            h = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
            n = int(h.get("content-length", 0))
            while len(body) < n:
                body += s.recv(4096)
            s.close()
            return int(lines[0].split()[1]), h, body
        key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        st, h, _ = status(key + "Sec-WebSocket-Version: 8\r\n")
        self.assertEqual((st, h.get("sec-websocket-version")), (426, "13"))
        self.assertEqual(status("Sec-WebSocket-Version: 13\r\n")[0], 400)
        st, h, body = status(key + "Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n",
                             "/ws/t?origins=https://good.example")
        self.assertEqual(st, 403)
        self.assertIn(b"origin", body)
        self.assertEqual(status(key + "Sec-WebSocket-Version: 13\r\nOrigin: https://good.example\r\n",
                                "/ws/t?origins=https://good.example")[0], 101)

    def test_heartbeat_keeps_live_and_closes_dead(self):
        # python3-websockets answers pings: it stays past several heartbeats.
        async def live():
            async with websockets.connect(self.url + "/ws/t?heartbeat=300", ping_interval=None) as ws:
                await asyncio.sleep(1.6)
                await ws.send("still here")
                self.assertEqual(await ws.recv(), "v1:still here")
        run(live())
        # A peer that reads nothing and answers nothing is closed.
        s, rest = wslib.handshake(self.port, "/ws/t?heartbeat=300")
        t0 = time.time()
        r = Reader(s, rest)
        op, _ = r.frame()
        self.assertEqual(op, 9, "a ping")
        self.assertTrue(r.closed(5), "closed after no pong")
        self.assertLess(time.time() - t0, 3.0)
        wslib.wait_event(self.port, lambda e: e["event"] == "error" and e["code"] == 1006 and
                         "heartbeat" in e["message"])
        s.close()

    def test_close_handshake_timeout(self):
        # The server closes and the peer never answers: TCP closes after close_timeout.
        s, rest = wslib.handshake(self.port, "/ws/t?close_timeout=500")
        # From before the request: the server's wait starts after it, and
        # this process may see its close frame late.
        t0 = time.time()
        s.sendall(frame(1, b"close:1000:going"))
        r = Reader(s, rest)
        op, data = r.frame()
        self.assertEqual((op, data[:2]), (8, b"\x03\xe8"))
        self.assertTrue(r.closed(5))
        self.assertGreater(time.time() - t0, 0.4)
        wslib.wait_event(self.port, lambda e: e["event"] == "close" and e["code"] == 1006 and
                         "close frame" in e["reason"])
        s.close()

    def test_backpressure_limit_and_paused_reading(self):
        # LOOM_ELIMIT: 200 sends of 100 KB in one callback against a 1 MB queue
        # (the kernel's buffers take a few MB, the queue the rest, then sends fail).
        s, rest = wslib.handshake(self.port, "/ws/t?limit=1000000")
        s.sendall(frame(1, b"flood:200:100000"))
        time.sleep(0.5)
        r = Reader(s, rest)
        got, answer = 0, None
        while answer is None:
            op, data = r.frame()
            if op == 2:
                self.assertEqual(len(data), 100000)
                got += 1
            elif op == 1:
                answer = data.decode()
        ok, lim = [int(x.split("=")[1]) for x in answer.split()[1:]]
        self.assertEqual((ok + lim, got), (200, ok))
        self.assertGreater(lim, 0)
        # The queue drained once the peer read, and the plugin heard it.
        wslib.wait_event(self.port, lambda e: e["event"] == "drain")
        s.close()
        # Reading stops while the peer does not read the echoes: a client that
        # only writes gets stuck after a bounded amount.
        s, rest = wslib.handshake(self.port, "/ws/echo")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(2)
        chunk = frame(2, b"x" * 65536)
        sent = 0
        try:
            while sent < (200 << 20):
                s.sendall(chunk)
                sent += len(chunk)
        except socket.timeout:
            pass
        self.assertLess(sent, 64 << 20, "the server kept reading %d bytes" % sent)
        s.close()

    def test_protocol_error_reaches_the_plugin(self):
        s, rest = wslib.handshake(self.port, "/ws/t")
        s.sendall(frame(1, b"\xc0\xaf"))
        r = Reader(s, rest)
        op, data = r.frame()
        self.assertEqual((op, data[:2]), (8, b"\x03\xef"))  # 1007
        self.assertTrue(r.closed(3))
        wslib.wait_event(self.port, lambda e: e["event"] == "error" and e["code"] == 1007)
        s.close()

    def test_keepalive_request_then_upgrade(self):
        # An ordinary request first on the same connection, then the upgrade.
        s = loomtest.connect(self.port)
        s.sendall(b"GET /ws/events HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        self.assertTrue(buf.startswith(b"HTTP/1.1 200"))
        head, _ = buf.split(b"\r\n\r\n", 1)
        n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0]
                .split(b":")[1])
        body = buf.split(b"\r\n\r\n", 1)[1]
        while len(body) < n:
            body += s.recv(65536)
        s.sendall(b"GET /ws/t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                  + frame(1, b"pipelined"))
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        self.assertTrue(buf.startswith(b"HTTP/1.1 101"))
        r = Reader(s, buf.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(r.frame(), (1, b"v1:pipelined"))
        s.close()

    def test_many_clients_at_once(self):
        async def one(i):
            async with websockets.connect(self.url + "/ws/echo") as ws:
                for k in range(20):
                    await ws.send("c%d m%d" % (i, k))
                    self.assertEqual(await ws.recv(), "c%d m%d" % (i, k))

        async def go():
            await asyncio.gather(*(one(i) for i in range(50)))
        run(go(), 60)

    # ---- Node's ws as the client ----

    @unittest.skipUnless(wslib.HAVE_NODE_WS, "node or node-ws missing")
    def test_node_ws_client(self):
        script = r"""
const WebSocket = require('ws');
const url = process.argv[1];
const ws = new WebSocket(url, {perMessageDeflate: true});
const out = [];
ws.on('open', () => {
  out.push('ext=' + ws.extensions + ' proto=' + ws.protocol);
  ws.send('node text');
  ws.send(Buffer.from([0, 1, 2, 255]));
  ws.send('z'.repeat(100000));
  ws.ping('nodeping');
});
ws.on('pong', (d) => out.push('pong ' + d.toString()));
let n = 0;
ws.on('message', (d, bin) => {
  out.push((bin ? 'binary ' + d.toString('hex') : 'text ' + d.toString().slice(0, 20)) + ' ' + d.length);
  if (++n === 3) ws.close(4000, 'node done');
});
ws.on('close', (code, reason) => { out.push('close ' + code + ' ' + reason); console.log(JSON.stringify(out)); });
ws.on('error', (e) => { console.log(JSON.stringify(['error ' + e.message])); process.exit(1); });
"""
        p = wslib.node(script, self.url + "/ws/echo")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual(out[0], "ext=permessage-deflate proto=")
        self.assertIn("text node text 9", out)
        self.assertIn("binary 000102ff 4", out)
        self.assertIn("text zzzzzzzzzzzzzzzzzzzz 100000", out)
        self.assertIn("pong nodeping", out)
        self.assertEqual(out[-1], "close 4000 ")  # the code is echoed, not the reason

    def test_wss_on_a_tls_listener(self):
        """wss://: the same WebSocket over a TLS listener (python3-websockets
        and Node's ws as clients), with permessage-deflate and a big message."""
        tmp = tempfile.mkdtemp(prefix="loom-wss-")
        cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True,
                       capture_output=True)
        port = loomtest.free_port()
        cfg = {"tls": {"cert": cert, "key": key}, "listen": ["127.0.0.1:%d:tls" % port],
               "plugins_dir": wslib.plugin_dir(), "plugins": {"ws-echo": {"deflate": True}}}
        with wslib.TlsServer(cfg, port) as srv:
            ctx = ssl.create_default_context(cafile=cert)

            async def go():
                url = "wss://127.0.0.1:%d/ws/echo" % port
                async with websockets.connect(url, ssl=ctx, compression="deflate",
                                              max_size=None) as ws:
                    await ws.send("over TLS")
                    self.assertEqual(await ws.recv(), "over TLS")
                    big = os.urandom(1 << 20)
                    await ws.send(big)
                    self.assertEqual(await ws.recv(), big)
            run(go())
            if wslib.HAVE_NODE_WS:
                p = wslib.node(r"""
const WebSocket = require('ws'), fs = require('fs');
const ws = new WebSocket(process.argv[1], {ca: fs.readFileSync(process.argv[2])});
ws.on('open', () => ws.send('node over TLS'));
ws.on('message', (d) => { console.log(d.toString()); ws.close(1000); });
ws.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
""", "wss://127.0.0.1:%d/ws/echo" % port, cert)
                self.assertEqual(p.stdout.strip(), "node over TLS", p.stderr)
            self.assertEqual(srv.stop(), 0, srv.log()[-3000:])

    # ---- graceful stop (last: it stops the server) ----

    def test_zz_graceful_stop_sends_1001(self):
        async def go():
            conns = [await websockets.connect(self.url + "/ws/t") for _ in range(5)]
            for ws in conns:
                await ws.send("ready?")
                self.assertEqual(await ws.recv(), "v1:ready?")
            self.srv.signal(signal.SIGTERM)
            for ws in conns:
                with self.assertRaises(websockets.ConnectionClosed):
                    await ws.recv()
                self.assertEqual(ws.close_code, 1001)
                self.assertEqual(ws.close_reason, "server stopping")
        run(go())
        self.assertEqual(self.srv.proc.wait(15), 0)


if __name__ == "__main__":
    loomtest.main()
