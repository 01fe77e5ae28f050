"""Helpers for the issue 6 tests: plugin dirs with chosen plugins, raw requests."""
import os
import shutil
import tempfile
import time

import loomtest

WEB_PLUGINS = os.path.join(loomtest.LOOM_BUILD, "test-plugins-web")


def plugin_dir(*names):
    """A fresh plugins directory holding copies of the named plugins."""
    d = tempfile.mkdtemp(prefix="loom-web-plugins-")
    for n in names:
        src = os.path.join(loomtest.PLUGINS_DIR, n + ".so")
        if not os.path.exists(src):
            src = os.path.join(WEB_PLUGINS, n + ".so")
        shutil.copy(src, os.path.join(d, n + ".so"))
    return d


def req(port, target, headers=None, method="GET", body=b"", version="HTTP/1.1"):
    h = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
    if body:
        h += "Content-Length: %d\r\n" % len(body)
    raw = ("%s %s %s\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n" % (method, target, version, h))
    s = loomtest.connect(port)
    try:
        s.sendall(raw.encode("latin-1") + body)
        data = loomtest.recv_all(s, 10)
    finally:
        s.close()
    if method == "HEAD":
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        hs = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        return int(lines[0].split()[1]), hs, rest
    rs = loomtest.parse_responses(data)
    assert len(rs) == 1, (target, data[:300])
    return rs[0]


def wait_route(port, target, status=200, timeout=10.0):
    """The port accepts before plugins load: waits until target answers status."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if req(port, target)[0] == status:
            return
        time.sleep(0.05)
    raise AssertionError("%s never answered %s" % (target, status))


Redis = loomtest.Redis
