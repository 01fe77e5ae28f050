"""Raw-bytes HTTP/1.1 conformance corpus, run against the real `loom` binary.

Every file in cases/ is one case:

    # free text (what the case is, where it comes from)
    expect: 400            statuses of the responses to the case's bytes, in order
                           ("none" when no response at all is allowed)
    close: yes             yes: the server must close after them (and an error
                           response must say "Connection: close");
                           no: the connection must stay open
    after: none            optional: a request (GET / with Host) is pipelined
                           right behind the case's bytes; "none" means it must get
                           no response, a status means it must get that status
    server: default        optional: "default" (production limits) or "small"
                           (tiny limits, see SMALL below)
    head: 0                optional: indexes of responses that answer a HEAD
                           (they carry no body whatever their Content-Length)
    header: name: value    optional, repeatable: a header of the first response
    absent: name           optional, repeatable: a header the first response lacks
    body: text             optional: the body of the first response (escapes allowed)
    interim: optional      optional: 100 Continue responses may or may not come; they
                           are left out of the comparison
    ---
    the raw request bytes

Request bytes: the newlines of the file are ignored (split lines as you like);
bytes come from the text plus escapes \\r \\n \\t \\0 \\\\ \\xHH, and
{{repeat N "text"}} repeats the (escaped) text N times.

Each case runs on its own connection, twice: once sent in one piece, and (when
short) once sent a few bytes at a time, so requests that span reads are
proved too. The result must be the same.
"""
import concurrent.futures
import os
import re
import socket
import sys
import time

import loomtest

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "cases")
AFTER = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
SMALL = [
    "--set", "max_line_size=64",
    "--set", "max_field_size=64",
    "--set", "max_headers=4",
    "--set", "client_max_size=16",
]
COMMON = ["--set", "linger_timeout=1"]
SPLIT_MAX = 700  # cases up to this many bytes also run split into small pieces


def unescape(text, encoding="latin-1"):
    """A case's quoted text as bytes: \\r \\n \\t \\0 \\\\ \\" and \\xHH escapes;
    other characters in `encoding` (latin-1: one byte each, as HTTP's
    octets; run_ws_cases.py reads UTF-8 text)."""
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out += ch.encode(encoding)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "x":
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
            continue
        out += {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"'}[nxt]
        i += 2
    return bytes(out)


REPEAT = re.compile(r'\{\{repeat (\d+) "((?:[^"\\]|\\.)*)"\}\}')


def decode_bytes(text):
    out = bytearray()
    pos = 0
    for m in REPEAT.finditer(text):
        out += unescape(text[pos:m.start()])
        out += unescape(m.group(2)) * int(m.group(1))
        pos = m.end()
    out += unescape(text[pos:])
    return bytes(out)


class Case:
    def __init__(self, path):
        self.name = os.path.basename(path)
        with open(path, encoding="latin-1") as f:
            text = f.read()
        head, sep, raw = text.partition("\n---\n")
        if not sep:
            raise ValueError("%s: no '---' line" % self.name)
        self.expect = None
        self.close = None
        self.after = None
        self.server = "default"
        self.head = set()
        self.headers = []
        self.absent = []
        self.body = None
        self.interim_optional = False
        for line in head.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            key, _, val = line.partition(":")
            key, val = key.strip(), val.strip()
            if key == "expect":
                self.expect = [] if val == "none" else [int(x) for x in val.split()]
            elif key == "close":
                self.close = {"yes": True, "no": False}[val]
            elif key == "after":
                self.after = None if val == "none" else int(val)
                self.has_after = True
            elif key == "server":
                self.server = val
            elif key == "head":
                self.head = {int(x) for x in val.split()}
            elif key == "header":
                n, _, v = val.partition(":")
                self.headers.append((n.strip().lower(), v.strip()))
            elif key == "absent":
                self.absent.append(val.lower())
            elif key == "interim":
                self.interim_optional = val == "optional"
            elif key == "body":
                self.body = unescape(val)
            else:
                raise ValueError("%s: unknown key %r" % (self.name, key))
        if self.expect is None or self.close is None:
            raise ValueError("%s: 'expect' and 'close' are required" % self.name)
        if not hasattr(self, "has_after"):
            self.has_after = False
        self.raw = decode_bytes("".join(raw.split("\n")))
        if self.has_after:
            self.raw += AFTER
        self.want = list(self.expect) + ([self.after] if self.after is not None else [])


def parse(data, head):
    """Parses as many complete responses as `data` holds: [(status, headers, body)], rest."""
    out = []
    i = 0
    while True:
        j = data.find(b"\r\n\r\n", i)
        if j < 0:
            return out, data[i:]
        lines = data[i:j].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError("bad status line %r" % lines[0])
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.setdefault(k.strip().lower(), v.strip())
        k = j + 4
        n = 0
        final = len([s for s in out if s[0] >= 200])
        if status >= 200 and status not in (204, 304) and final not in head:
            if headers.get("transfer-encoding", "").lower() == "chunked":
                raise ValueError("chunked response not expected here")
            n = int(headers.get("content-length", "0"))
        if len(data) < k + n:
            return out, data[i:]
        out.append((status, headers, data[k:k + n]))
        i = k + n


def run_case(case, port, split):
    s = loomtest.connect(port, timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = b""
    eof = False
    try:
        try:
            if split:
                step = 3
                for i in range(0, len(case.raw), step):
                    s.sendall(case.raw[i:i + step])
                    time.sleep(0.002)
            else:
                s.sendall(case.raw)
        except OSError:
            pass  # the server may stop reading after an error; what it sent counts
        deadline = time.time() + 6
        quiet_after = None
        while time.time() < deadline:
            s.settimeout(0.3 if quiet_after else 1.0)
            try:
                b = s.recv(65536)
            except socket.timeout:
                if quiet_after:
                    break
                b = None
            except ConnectionResetError:
                eof = "reset"
                break
            if b == b"":
                eof = True
                break
            if b:
                data += b
            try:
                resp, rest = parse(data, case.head)
            except ValueError as e:
                return "unparsable response (%s): %r" % (e, data[:300])
            n = len([r for r in resp if r[0] >= (200 if case.interim_optional else 100)])
            if not case.close and n >= len(case.want) and not rest:
                quiet_after = True
    finally:
        s.close()
    try:
        resp, rest = parse(data, case.head)
    except ValueError as e:
        return "unparsable response (%s): %r" % (e, data[:300])
    if case.interim_optional:
        resp = [r for r in resp if r[0] != 100]
    got = [r[0] for r in resp]
    if got != case.want:
        return "statuses %s, want %s (eof=%s) %r" % (got, case.want, eof, data[:400])
    if rest:
        return "trailing bytes after the responses: %r" % rest[:200]
    if case.close and eof is not True:
        return "connection not closed cleanly (eof=%s)" % eof
    if not case.close and eof:
        return "connection closed, should stay open"
    for st, h, _ in resp:
        if st >= 200 and ("date" not in h or "server" not in h):
            return "response %d lacks Date or Server" % st
    if resp:
        last = resp[-1][1]
        conn = last.get("connection", "").lower()
        if case.close and resp[-1][0] >= 400 and conn != "close":
            return "error response without Connection: close"
        if not case.close and conn == "close":
            return "Connection: close on a connection that stays open"
        first = resp[0]
        for n, v in case.headers:
            if first[1].get(n) != v:
                return "header %s is %r, want %r" % (n, first[1].get(n), v)
        for n in case.absent:
            if n in first[1]:
                return "header %s present" % n
        if case.body is not None and first[2] != case.body:
            return "body %r, want %r" % (first[2], case.body)
    return None


def main():
    only = sys.argv[1:]
    files = sorted(f for f in os.listdir(CASES) if f.endswith(".http"))
    if only:
        files = [f for f in files if any(o in f for o in only)]
    cases = [Case(os.path.join(CASES, f)) for f in files]
    servers = {
        "default": loomtest.Server(COMMON),
        "small": loomtest.Server(COMMON + SMALL),
    }
    failures = []
    t0 = time.time()
    try:
        jobs = []
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for c in cases:
                port = servers[c.server].port
                jobs.append((c, "whole", pool.submit(run_case, c, port, False)))
                if len(c.raw) <= SPLIT_MAX:
                    jobs.append((c, "split", pool.submit(run_case, c, port, True)))
            for c, mode, fut in jobs:
                err = fut.result()
                print("%-4s %-5s %s%s" % ("ok" if not err else "FAIL", mode, c.name,
                                         "" if not err else ": " + err))
                if err:
                    failures.append((c.name, mode, err))
    finally:
        for name, srv in servers.items():
            alive = srv.proc.poll() is None
            rc = srv.stop()
            if not alive or rc != 0:
                failures.append(("server " + name, "exit", "status %s\n%s" % (rc, srv.log()[-3000:])))
    print("%d cases, %d runs, %d failures, %.1fs" % (len(cases), len(jobs), len(failures),
                                                   time.time() - t0))
    for f in failures:
        print("FAILED %s (%s): %s" % f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
