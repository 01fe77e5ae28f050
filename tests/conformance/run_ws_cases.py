"""Raw-frame WebSocket conformance corpus (RFC 6455 and 7692), run against
the real `loom` binary with the shipped ws-echo plugin.

Every file in ws/ is one case:

    # the rule and where it comes from (RFC 6455 §N)
    server: default        optional: a ws-echo profile (PROFILES below)
    status: 101            optional: the handshake's expected status (101)
    header: name: value    optional, repeatable: a header of the handshake's answer
    expect: close 1002     the frames the server sends after the handshake, in order,
                           comma-separated: text "..." | binary "..." | pong "..." |
                           close N | close none (a close frame without a code);
                           a case that ends with a close also wants TCP closed
                           after it; "nothing" = no frame (and the connection open)
    ---
    upgrade [| +Name: value | -Name]...   the handshake (default headers changed)
    http "raw request"                    or a raw request instead
    frame [op=text|binary|cont|close|ping|pong|N] [fin=0] [rsv1] [rsv2] [rsv3]
                [nomask] [len16] [len64] [len=N] [top] PAYLOAD
    deflate [op=...] [split=N] PAYLOAD    a compressed message (RSV1, raw deflate),
                                          in N fragments
    raw PAYLOAD                           bytes as they are

PAYLOAD is "escaped text" (\\r \\n \\t \\0 \\\\ \\xHH), repeat N "text", code N
["reason"] (a close payload), or nothing. Every frame is masked unless it
says nomask. The bytes of the frames go right behind the handshake (in the
same write), so bytes pipelined behind an upgrade request are proved too.

Each case runs twice: the bytes in one write, and (when short) a few bytes
at a time.
"""
import concurrent.futures
import os
import re
import socket
import struct
import sys
import time
import zlib

import loomtest
import run_cases

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "ws")
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 §1.3's example
PROFILES = {
    "default": {},
    "small": {"max_msg_size": 1024},
    "deflate": {"deflate": True, "max_msg_size": 100000},
    "origins": {"allowed_origins": "https://good.example, http://also.example:8080"},
    "same": {"allowed_origins": "same"},
    "protocols": {"protocols": "superchat, chat"},
}
OPS = {"cont": 0, "text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}
SPLIT_MAX = 600


def unescape(text):
    return run_cases.unescape(text, "utf-8")


STR = r'"((?:[^"\\]|\\.)*)"'


def payload(text):
    text = text.strip()
    if not text:
        return b""
    m = re.fullmatch(r"repeat (\d+) " + STR, text)
    if m:
        return unescape(m.group(2)) * int(m.group(1))
    m = re.fullmatch(r"code (\d+)(?: " + STR + ")?", text)
    if m:
        return struct.pack("!H", int(m.group(1))) + unescape(m.group(2) or "")
    m = re.fullmatch(STR, text)
    if m:
        return unescape(m.group(1))
    raise ValueError("bad payload: %r" % text)


def frame(words, data, compressed=False):
    op, fin, rsv, mask, lenform, declared = 1, 1, 0, True, None, None
    top = False
    split = 1
    for w in words:
        if w.startswith("op="):
            v = w[3:]
            op = OPS[v] if v in OPS else int(v)
        elif w == "fin=0":
            fin = 0
        elif w in ("rsv1", "rsv2", "rsv3"):
            rsv |= {"rsv1": 4, "rsv2": 2, "rsv3": 1}[w]
        elif w == "nomask":
            mask = False
        elif w in ("len16", "len64"):
            lenform = w
        elif w.startswith("len="):
            declared = int(w[4:])
        elif w == "top":
            top = True
        elif w.startswith("split="):
            split = int(w[6:])
        else:
            raise ValueError("bad frame word %r" % w)
    if compressed:
        rsv |= 4
        c = zlib.compressobj(wbits=-15)
        data = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(b"\x00\x00\xff\xff")
        data = data[:-4]
        if split > 1:
            k = (len(data) + split - 1) // split
            parts = [data[i:i + k] for i in range(0, len(data), k)]
            out = b""
            for i, p in enumerate(parts):
                w = ["op=%d" % (op if i == 0 else 0)] + ([] if i == len(parts) - 1 else ["fin=0"])
                out += frame(w + (["rsv1"] if i == 0 else []), p)
            return out
    n = len(data) if declared is None else declared
    head = bytes([(fin << 7) | (rsv << 4) | op])
    mbit = 0x80 if mask else 0
    if lenform == "len64" or (lenform is None and n > 0xFFFF):
        v = n | (1 << 63) if top else n
        head += bytes([mbit | 127]) + struct.pack("!Q", v)
    elif lenform == "len16" or (lenform is None and n > 125):
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | n])
    if mask:
        key = b"\x37\xfa\x21\x3d"
        head += key
        data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return head + data


def handshake(mods, port):
    hs = [("Host", "127.0.0.1:%d" % port), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
          ("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", "13")]
    for m in mods:
        m = m.strip()
        if m.startswith("-"):
            hs = [h for h in hs if h[0].lower() != m[1:].strip().lower()]
        elif m.startswith("+"):
            k, v = m[1:].split(":", 1)
            hs = [h for h in hs if h[0].lower() != k.strip().lower()] + [(k.strip(), v.strip())]
    return ("GET /ws/echo HTTP/1.1\r\n" + "".join("%s: %s\r\n" % h for h in hs) +
            "\r\n").encode("latin-1")


def load(path):
    meta = {"server": "default", "status": 101, "header": [], "expect": ""}
    head, body = open(path, encoding="utf-8").read().split("\n---\n", 1)
    for line in head.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        k, v = line.split(":", 1)
        v = v.strip()
        if k == "header":
            meta["header"].append(v)
        elif k == "status":
            meta["status"] = int(v)
        else:
            meta[k] = v
    meta["body"] = [l for l in body.splitlines() if l.strip() and not l.startswith("#")]
    return meta


def build(meta, port):
    out = b""
    for line in meta["body"]:
        kind, _, rest = line.partition(" ")
        if kind == "upgrade":
            out += handshake([m for m in rest.split("|") if m.strip()], port)
        elif kind == "http":
            out += payload(rest)
        elif kind == "raw":
            out += payload(rest)
        elif kind in ("frame", "deflate"):
            words, data = [], rest
            m = re.search(r'(repeat \d+ |code \d+|")', rest)
            if m:
                words, data = rest[:m.start()].split(), rest[m.start():]
            else:
                words, data = rest.split(), ""
            out += frame(words, payload(data), compressed=kind == "deflate")
        else:
            raise ValueError("bad line %r" % line)
    return out


def expected(spec):
    out = []
    for item in filter(None, (s.strip() for s in re.split(r",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", spec))):
        if item == "nothing":
            continue
        kind, _, rest = item.partition(" ")
        if kind == "close":
            out.append(("close", None if rest == "none" else int(rest)))
        else:
            out.append((kind, payload(rest)))
    return out


def read_exact(s, n, buf):
    while len(buf) < n:
        b = s.recv(65536)
        if not b:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += b
    return buf


def read_frames(s, buf, want, deadline):
    """Reads server frames; returns them as (kind, payload or code) and
    whether TCP closed right after the last."""
    got = []
    while len(got) < want and time.time() < deadline:
        buf = read_exact(s, 2, buf)
        b0, b1 = buf[0], buf[1]
        if b1 & 0x80:
            raise AssertionError("the server masked a frame")
        n, at = b1 & 0x7F, 2
        if n == 126:
            buf = read_exact(s, 4, buf)
            n, at = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            buf = read_exact(s, 10, buf)
            n, at = struct.unpack("!Q", buf[2:10])[0], 10
        buf = read_exact(s, at + n, buf)
        data, buf = bytes(buf[at:at + n]), buf[at + n:]
        op = b0 & 0x0F
        if b0 & 0x40:
            data = zlib.decompressobj(wbits=-15).decompress(data + b"\x00\x00\xff\xff")
        if op == 8:
            got.append(("close", struct.unpack("!H", data[:2])[0] if data else None))
        else:
            got.append(({1: "text", 2: "binary", 9: "ping", 10: "pong"}.get(op, str(op)), data))
    return got, buf


def run_case(name, meta, port, chunk):
    data = build(meta, port)
    s = loomtest.connect(port, timeout=5)
    try:
        if chunk:
            for i in range(0, len(data), chunk):
                s.sendall(data[i:i + chunk])
                time.sleep(0.001)
        else:
            s.sendall(data)
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            b = s.recv(65536)
            if not b:
                raise AssertionError("closed before the handshake's answer")
            buf += b
        i = buf.index(b"\r\n\r\n") + 4
        head, buf = bytes(buf[:i]).decode("latin-1"), buf[i:]
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for l in lines[1:]:
            if ":" in l:
                k, v = l.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        assert status == meta["status"], "status %d, want %d:\n%s" % (status, meta["status"], head)
        for h in meta["header"]:
            k, v = h.split(":", 1)
            assert hdrs.get(k.strip().lower()) == v.strip(), "header %s: got %r\n%s" % (
                k, hdrs.get(k.strip().lower()), head)
        if status != 101:
            return
        if meta["status"] == 101 and "sec-websocket-accept" in hdrs and meta["body"][0].startswith(
                "upgrade") and "Sec-WebSocket-Key" not in meta["body"][0]:
            assert hdrs["sec-websocket-accept"] == ACCEPT, head
        want = expected(meta["expect"])
        got, buf = read_frames(s, buf, len(want), time.time() + 5)
        assert got == want, "frames %r, want %r" % (got, want)
        if want and want[-1][0] == "close":
            s.settimeout(3)
            rest = bytes(buf)
            try:
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    rest += b
            except ConnectionResetError:
                pass
            assert rest == b"", "bytes after the close frame: %r" % rest[:100]
        else:
            # Nothing else: the server sends no more frames within 0.3 s.
            s.settimeout(0.3)
            try:
                extra = s.recv(100)
                assert not extra, "unexpected bytes %r" % extra
                raise AssertionError("the server closed the connection")
            except socket.timeout:
                pass
    finally:
        s.close()


def main():
    only = sys.argv[1:]
    names = sorted(f for f in os.listdir(CASES) if f.endswith(".ws"))
    if only:
        names = [n for n in names if any(o in n for o in only)]
    cases = {n: load(os.path.join(CASES, n)) for n in names}
    servers, failed = {}, []
    try:
        for profile in sorted({c["server"] for c in cases.values()}):
            cfg = {"plugins": {"ws-echo": PROFILES[profile]}}
            tmp = os.path.join(loomtest.LOOM_BUILD, "ws-conformance-plugins")
            os.makedirs(tmp, exist_ok=True)
            src = os.path.join(loomtest.PLUGINS_DIR, "ws-echo.so")
            dst = os.path.join(tmp, "ws-echo.so")
            if not os.path.exists(dst) or os.path.getmtime(dst) < os.path.getmtime(src):
                with open(src, "rb") as f, open(dst + ".tmp", "wb") as g:
                    g.write(f.read())
                os.rename(dst + ".tmp", dst)
            servers[profile] = loomtest.Server(args=["--single", "--set", "linger_timeout=1"],
                                               config=cfg, plugins_dir=tmp)
            servers[profile].wait_log("listening")
        def one(n, chunk):
            meta = cases[n]
            try:
                run_case(n, meta, servers[meta["server"]].port, chunk)
            except Exception as e:  # noqa: BLE001 - every failure is reported
                return "%s (%s): %s: %s" % (n, "split" if chunk else "whole", type(e).__name__, e)
            return None

        jobs = []
        for n in names:
            size = len(build(cases[n], servers[cases[n]["server"]].port))
            jobs += [(n, c) for c in ([0, 3] if size <= SPLIT_MAX else [0])]
        # Cases that expect silence wait 0.3 s for it: run them side by side.
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            failed += [r for r in pool.map(lambda j: one(*j), jobs) if r]
        for p, srv in servers.items():
            rc = srv.stop()
            if rc != 0:
                failed.append("server %s exited %s:\n%s" % (p, rc, srv.log()[-3000:]))
    finally:
        for srv in servers.values():
            srv.__exit__()
    print("%d WebSocket cases, %d failed" % (len(names), len(failed)))
    for f in failed:
        print("FAIL", f)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
