#!/usr/bin/env python3
"""Writes the hand-made seed corpora of the fuzz targets (tests/fuzz/corpus/).

Seeds for the request parser and the connection come from the conformance
corpus (tests/conformance/cases, every case) plus a few requests written
here; the others are written here. Files found by fuzzing (crashes fixed,
coverage worth keeping) are added next to these and kept; rerunning this
script only rewrites the seed-*.
"""
import gzip
import hashlib
import os
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "conformance"))
sys.path.insert(0, os.path.join(SRC, "tests", "lib"))
import run_cases  # noqa: E402


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def conformance():
    out = []
    for fn in sorted(os.listdir(run_cases.CASES)):
        if fn.endswith(".http"):
            case = run_cases.Case(os.path.join(run_cases.CASES, fn))
            if len(case.raw) <= 16000:  # -max_len of the runs
                out.append((fn[:-5], case.raw))
    return out


REQS = {
    "get": b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "pipeline": b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /s HTTP/1.1\r\nHost: a\r\n\r\n"
                b"HEAD /b HTTP/1.1\r\nHost: a\r\n\r\nGET /c HTTP/1.1\r\nHost: a\r\n\r\n",
    "post-cl": b"POST /x?y=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    "post-chunked": b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5;ext=1\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n"
                    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "expect": b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "http10": b"GET /b HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "absolute": b"GET http://h:8/p/q?x HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
    "upgrade": b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nxx",
    "options-star": b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "big-big": b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n" * 8,
}


def h2_seeds():
    """fuzz_h2: frames after the client preface (which the target adds)."""
    import struct

    import hpack

    def fr(t, fl, sid, p=b""):
        return struct.pack(">I", len(p))[1:] + bytes([t, fl]) + struct.pack(">I", sid) + p

    def st(**kv):
        ids = {"table": 1, "push": 2, "streams": 3, "window": 4, "frame": 5, "list": 6}
        return fr(4, 0, 0, b"".join(struct.pack(">HI", ids[k], v) for k, v in kv.items()))

    enc = hpack.Encoder()

    def hd(path, method="GET", extra=()):
        return enc.encode([(":method", method), (":scheme", "http"), (":authority", "a"),
                           (":path", path)] + list(extra))

    S = {}
    S["get"] = st() + fr(1, 5, 1, hd("/"))
    S["many"] = st() + b"".join(fr(1, 5, 1 + 2 * i, hd(p)) for i, p in
                                enumerate(["/", "/a", "/s", "/b", "/f", "/h", "/a", "/x?q=1"]))
    S["post"] = st() + fr(1, 4, 1, hd("/e", "POST", [("content-length", "11")])) + \
        fr(0, 0, 1, b"hello ") + fr(0, 1, 1, b"world")
    S["trailers"] = st() + fr(1, 4, 1, hd("/e", "POST")) + fr(0, 0, 1, b"body") + \
        fr(1, 5, 1, enc.encode([("x-trailer", "1")]))
    S["reset-pending"] = st() + fr(1, 5, 1, hd("/a")) + fr(1, 5, 3, hd("/s")) + \
        fr(3, 0, 1, struct.pack(">I", 8)) + fr(1, 5, 5, hd("/"))
    S["control"] = st(window=100, frame=16384) + fr(6, 0, 0, b"12345678") + \
        fr(8, 0, 0, struct.pack(">I", 1000)) + fr(2, 0, 3, struct.pack(">IB", 0, 20)) + \
        fr(1, 5, 1, hd("/b")) + fr(8, 0, 1, struct.pack(">I", 70000)) + fr(4, 1, 0)
    S["continuation"] = st() + fr(1, 1, 1, hd("/h", extra=[("x-a", "b" * 50)])[:10]) + \
        fr(9, 4, 1, hd("/h", extra=[("x-a", "b" * 50)])[10:])
    blk = hd("/", extra=[("x-p", "1")])
    S["padded"] = st() + fr(1, 5 | 8, 1, bytes([3]) + blk + b"\0\0\0") + \
        fr(1, 4, 3, hd("/e", "POST")) + fr(0, 1 | 8, 3, bytes([2]) + b"abc\0\0")
    S["malformed"] = st() + fr(1, 5, 1, enc.encode([(":method", "GET"), (":path", "/")])) + \
        fr(1, 5, 3, hd("/", extra=[("Connection", "x")])) + \
        fr(1, 4, 5, hd("/e", "POST", [("content-length", "3")])) + fr(0, 1, 5, b"toolong")
    S["goaway"] = st() + fr(1, 5, 1, hd("/a")) + fr(7, 0, 0, struct.pack(">II", 1, 0))
    S["small-window"] = st(window=10) + fr(1, 5, 1, hd("/f")) + fr(1, 5, 3, hd("/s")) + \
        fr(8, 0, 1, struct.pack(">I", 5000))
    S["empty-data"] = st() + fr(1, 4, 1, hd("/e", "POST")) + fr(0, 0, 1) * 120
    S["rapid-reset"] = st() + b"".join(fr(1, 5, 1 + 2 * i, hd("/a")) +
                                       fr(3, 0, 1 + 2 * i, struct.pack(">I", 8))
                                       for i in range(30))
    for i, (name, raw) in enumerate(S.items()):
        write("fuzz_h2", name, bytes([0, i, 7]) + raw)
        write("fuzz_h2", name + "-split", bytes([3, i, 7]) + raw)
        write("fuzz_h2", name + "-reset", bytes([4 | 2, i, 9]) + raw)
    write("fuzz_h2", "own-preface", bytes([16, 0, 1]) + b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
          + S["get"])
    write("fuzz_h2", "bad-preface", bytes([16 | 1, 0, 1]) + b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")


def main():
    h2_seeds()
    # request parser and connection: 3 prefix bytes (split mode, seed) + bytes
    for name, raw in conformance():
        write("fuzz_req_parser", name, b"\x00\x00\x01" + raw)
        write("fuzz_conn", name, b"\x00\x00\x01" + raw)
    for i, (name, raw) in enumerate(REQS.items()):
        for mode in (0, 1, 3):
            write("fuzz_req_parser", "%s-%d" % (name, mode), bytes([mode, i, 7]) + raw)
        write("fuzz_conn", name, bytes([2, i, 7]) + raw)
        write("fuzz_conn", name + "-reset", bytes([4 | 3, i, 7]) + raw)
        write("fuzz_conn", name + "-reset-mid", bytes([8 | 2, i, 9]) + raw)

    # router: routes, an empty line, then paths / url_for calls
    M = {"GET": b"\x00", "HEAD": b"\x01", "POST": b"\x02", "ANY": b"\x07", "GETn": b"\x08"}
    write("fuzz_route", "basic",
          M["GETn"] + b"/\n" + M["GET"] + b"/users/{id}\n" + M["GETn"] + b"/users/{id:\\d+}/posts\n"
          + M["POST"] + b"/users\n" + M["ANY"] + b"/{tail:.*}\n" + M["GET"] + b"/a/b/c\n"
          + M["HEAD"] + b"/h\n\n"
          + b"\x00/users/42\n\x02/users/42\n\x00/users/42/posts\n\x00/users/x/posts\n"
          + b"\x05/nothing/here\n\x01/a/b/c\n\x00/a/b\n=\x00\n=\x01 id=7\n=\x02 id=12 x=y\n")
    write("fuzz_route", "regex",
          M["GET"] + b"/{name:[a-z]+}\n" + M["GET"] + b"/{v:\\w+\\.\\d{1,3}}\n" + M["GETn"]
          + b"/f/{p:(a|b)*}\n" + M["GET"] + b"/{x}/{y}/{z}\n" + M["GET"] + b"/s/{a:\\S+}/end\n\n"
          + b"\x00/abc\n\x00/ab.12\n\x00/f/abab\n\x00/1/2/3\n\x00/s/x/end\n\x00//\n"
          + b"=\x02 p=ab\n=\x02 p=c/d\n")
    write("fuzz_route", "bad",
          M["GET"] + b"/{\n" + M["GET"] + b"/{}\n" + M["GET"] + b"/a{b}\n" + M["GET"]
          + b"/{x:[}\n" + M["GET"] + b"x\n" + M["GET"] + b"/{a b}\n" + M["GET"] + b"/{t:.*}/x\n\n"
          + b"\x00/\n")

    # client responses: flags, 2 seed bytes, then the server's bytes
    body = b"hello world " * 20
    gz = gzip.compress(body)
    dfl = zlib.compress(body)
    RESP = {
        "cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                   b"6;a=b\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
        "close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
        "http10": b"HTTP/1.0 200 OK\r\n\r\nbody",
        "gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
                % len(gz) + gz,
        "deflate": b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nTransfer-Encoding: chunked"
                   b"\r\n\r\n%x\r\n" % len(dfl) + dfl + b"\r\n0\r\n\r\n",
        "continue": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        "redirect": b"HTTP/1.1 302 Found\r\nLocation: /other?q=1\r\nContent-Length: 0\r\n\r\n",
        "redirect-abs": b"HTTP/1.1 301 Moved\r\nLocation: http://[::1]:99/x/../y\r\n"
                        b"Content-Length: 0\r\n\r\n",
        "304": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        "204": b"HTTP/1.1 204 No Content\r\n\r\n",
        "large": b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n" + b"x" * 300,
        "bad-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        "truncated": b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort",
        "bad-gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 6\r\n\r\nabcdef",
        "keepalive": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"
                     b"Content-Length: 2\r\n\r\nok",
    }
    for i, (name, raw) in enumerate(RESP.items()):
        for fl in (0, 2, 4 | 1, 16 | 3, 32 | 64, 128 | 8):
            write("fuzz_client_resp", "%s-%d" % (name, fl), bytes([fl, i, 3]) + raw)

    # JSON bodies
    J = [b'{"a": 1, "b": [true, false, null], "c": {"d": "e\\u00e9\\ud83d\\ude00"}}',
         b'[1, 2.5, -3e10, "x", [], {}]', b'"just a string"', b'123456789012345678901234567890',
         b'{"a": 1, "a": 2}', b'{"deep": [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}',
         b'{"nul": "a\\u0000b"}', b'[1,', b'', b'\xef\xbb\xbf{}', b'{"x": 1e999}']
    for i, j in enumerate(J):
        write("fuzz_json_body", "%02d" % i, j)

    # forms: Content-Type, Cookie, query, field name lines, then the body
    mp = (b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue a\r\n"
          b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\n"
          b"Content-Type: text/plain\r\n\r\nfile body\r\n--XyZ--\r\n")
    F = {
        "multipart-a": b"multipart/form-data; boundary=XyZ\nsid=1; a=\"q\"\nx=1&a=2\na\n" + mp,
        "multipart-f": b"multipart/form-data; boundary=\"XyZ\"\n\na=%20b+c\nf\n" + mp,
        "urlencoded": b"application/x-www-form-urlencoded\na=b\na=1&a=2\na\na=x%41y&b=&a=+z&&=",
        "bad-pct": b"application/x-www-form-urlencoded\n\n%\na\na=%4&a=%zz%",
    }
    for name, raw in F.items():
        write("fuzz_multipart", name, raw)


def client_hellos():
    """ClientHellos as OpenSSL's s_client and Python's ssl send them (SNI,
    ALPN, TLS 1.2 and 1.3, a resumption ticket), captured by a plain socket
    that answers nothing."""
    import socket
    import ssl
    import subprocess
    import threading
    out = {}

    def capture(name, connect):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        got = []

        def accept():
            c, _ = srv.accept()
            c.settimeout(2)
            data = b""
            try:
                while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            got.append(data)
            c.close()

        t = threading.Thread(target=accept)
        t.start()
        try:
            connect(port)
        except Exception:  # noqa: BLE001 - the server never answers
            pass
        t.join(5)
        srv.close()
        if got and got[0]:
            out[name] = got[0]

    def py(version=None, alpn=None, sni="localhost"):
        def go(port):
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            if version:
                ctx.maximum_version = version
            if alpn:
                ctx.set_alpn_protocols(alpn)
            raw = socket.create_connection(("127.0.0.1", port), timeout=2)
            ctx.wrap_socket(raw, server_hostname=sni)
        return go

    def openssl(*args):
        def go(port):
            subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args),
                           input=b"", capture_output=True, timeout=5)
        return go

    capture("py-tls13-h2", py(alpn=["h2", "http/1.1"]))
    capture("py-tls12", py(version=ssl.TLSVersion.TLSv1_2, alpn=["http/1.1"], sni="a.example"))
    capture("py-nosni", py(sni=None))
    capture("openssl-tls13", openssl("-tls1_3", "-servername", "x.b.example", "-alpn", "h2"))
    capture("openssl-tls12", openssl("-tls1_2", "-servername", "localhost"))
    capture("openssl-status", openssl("-status", "-servername", "localhost"))
    return out


def tls():
    """fuzz_tls: prefix bytes as fuzz_conn's, then what the client sends."""
    for i, (name, hello) in enumerate(sorted(client_hellos().items())):
        write("fuzz_tls", name, bytes([0, i, 7]) + hello)
        write("fuzz_tls", name + "-bytes", bytes([1, i, 7]) + hello)
        write("fuzz_tls", name + "-cut", bytes([2, i, 7]) + hello[:len(hello) // 2])
        write("fuzz_tls", name + "-reset-mid", bytes([8 | 3, i, 9]) + hello)
        write("fuzz_tls", name + "-then-http", bytes([3, i, 7]) + hello +
              b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    write("fuzz_tls", "plain-http", b"\x00\x00\x01GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    write("fuzz_tls", "not-tls", b"\x00\x00\x01\x00\x01\x02garbage")
    write("fuzz_tls", "huge-record", b"\x02\x00\x01\x16\x03\x01\xff\xff" + bytes(3000))
    write("fuzz_tls", "alert", b"\x00\x00\x01\x15\x03\x03\x00\x02\x02\x28")


if __name__ == "__main__":
    if sys.argv[1:] == ["tls"]:
        tls()
    else:
        main()
        tls()
