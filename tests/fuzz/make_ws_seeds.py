"""Writes corpus/fuzz_ws_frame/seed-*: the frames of every case of the
WebSocket conformance corpus (tests/conformance/ws), as a server reads them
(flags 0, or 2 for the deflate cases), whole and in small reads, plus a few
for the client side (unmasked frames)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import run_ws_cases as c  # noqa: E402

out = os.path.join(HERE, "corpus", "fuzz_ws_frame")
os.makedirs(out, exist_ok=True)
n = 0
for name in sorted(os.listdir(c.CASES)):
    meta = c.load(os.path.join(c.CASES, name))
    body = [l for l in meta["body"] if l.split(" ", 1)[0] in ("frame", "deflate", "raw")]
    if not body:
        continue
    meta = dict(meta, body=body)
    frames = c.build(meta, 0)
    if len(frames) > 16384:
        continue
    flags = 2 if meta["server"] == "deflate" else 0
    maxb = 2 if meta["server"] == "small" else 12
    for split in (0, 1):
        with open(os.path.join(out, "seed-%s-%d" % (name[:-3], split)), "wb") as f:
            f.write(bytes([flags | (split << 3), maxb]) + frames)
        n += 1
# The client side: a server's (unmasked) frames.
for name, frames in [("client-text", c.frame(["nomask"], b"hello")),
                     ("client-masked", c.frame([], b"masked from a server")),
                     ("client-close", c.frame(["nomask", "op=close"], b"\x03\xe8bye")),
                     ("client-ping", c.frame(["nomask", "op=ping"], b"p") + c.frame(["nomask"], b"x")),
                     ("client-deflate", c.frame(["nomask"], b"zz" * 50, compressed=True))]:
    flags = 1 | (2 if "deflate" in name else 0)
    with open(os.path.join(out, "seed-" + name), "wb") as f:
        f.write(bytes([flags, 12]) + frames)
    n += 1
print("%d seeds in %s" % (n, out))
