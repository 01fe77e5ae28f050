#!/usr/bin/env python3
"""Opens N keep-alive connections to a loom server and holds them.

1. Opens N connections (non-blocking, in batches) and sends one GET / on each;
   every one must get its 200.
2. Holds them all idle for HOLD seconds, reading the server's RSS from
   /proc/<pid>/status before, once they are open, and at the end.
3. Sends a second GET / on every connection: each must still get its 200 on
   the same connection.

Prints the figures as "key: value" lines; exits non-zero on any failure.
usage: hold.py PORT SERVER_PID [N] [HOLD]"""
import selectors
import socket
import sys
import time

REQ = b"GET / HTTP/1.1\r\nHost: soak\r\n\r\n"


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def round_trip(socks, timeout=60):
    """Sends REQ on every socket and waits for one complete 200 on each."""
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in socks:
        s.sendall(REQ)
        bufs[s] = b""
        sel.register(s, selectors.EVENT_READ)
    ok = 0
    deadline = time.time() + timeout
    while bufs and time.time() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                b = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                b = b""
            if not b:
                sel.unregister(s)
                del bufs[s]
                continue
            bufs[s] += b
            head, sep, body = bufs[s].partition(b"\r\n\r\n")
            if not sep:
                continue
            cl = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    cl = int(v)
            if len(body) >= cl:
                if head.startswith(b"HTTP/1.1 200 "):
                    ok += 1
                sel.unregister(s)
                del bufs[s]
    sel.close()
    return ok


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    hold = float(sys.argv[4]) if len(sys.argv) > 4 else 15
    rss0 = rss_kb(pid)
    socks = []
    t0 = time.time()
    for i in range(n):
        for attempt in range(50):
            s = socket.socket()
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                s.connect(("127.0.0.1", port))
                break
            except OSError:
                s.close()
                time.sleep(0.05)
        else:
            print("error: connect %d failed" % i)
            return 1
        s.setblocking(False)
        socks.append(s)
    print("connections: %d opened in %.1f s" % (len(socks), time.time() - t0))
    ok1 = round_trip(socks)
    print("first request: %d of %d got 200" % (ok1, n))
    time.sleep(1)
    rss1 = rss_kb(pid)
    print("rss_idle_server_kb: %d" % rss0)
    print("rss_with_%d_idle_kb: %d" % (n, rss1))
    print("rss_per_idle_connection_bytes: %.0f" % ((rss1 - rss0) * 1024.0 / n))
    time.sleep(hold)
    alive = 0
    for s in socks:
        try:
            if s.recv(1) == b"":
                continue
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    print("held: %d of %d still open after %.0f s" % (alive, n, hold))
    ok2 = round_trip(socks)
    rss2 = rss_kb(pid)
    print("second request: %d of %d got 200 on the same connection" % (ok2, n))
    print("rss_after_second_request_kb: %d" % rss2)
    for s in socks:
        s.close()
    return 0 if ok1 == n and ok2 == n and alive == n else 1


if __name__ == "__main__":
    sys.exit(main())
