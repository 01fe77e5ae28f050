#!/usr/bin/python3
"""bench/compress_levels.py: CPU time against ratio for gzip, brotli and zstd
levels on a 100 KiB JSON document (the same document bench/wl_compress.py
serves), through Debian's zlib, libbrotli and libzstd (the libraries the
compress plugin uses). Also the time of each coding per body size, for the
inline/thread-pool threshold. Prints markdown tables (docs/decisions.md)."""
import sys
import time
import zlib

sys.path.insert(0, __import__("os").path.dirname(__file__))
from wl_compress import make_json  # noqa: E402

import brotli  # python3-brotli
import zstandard  # python3-zstandard


def best_time(fn, data, reps):
    best = float("inf")
    out = b""
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            out = fn(data)
        best = min(best, (time.perf_counter() - t) / reps)
    return best, out


def gz(level):
    def f(d):
        c = zlib.compressobj(level, zlib.DEFLATED, 31)
        return c.compress(d) + c.flush()
    return f


def br(q):
    return lambda d: brotli.compress(d, quality=q, lgwin=22)


def zs(level):
    c = zstandard.ZstdCompressor(level=level)
    return lambda d: c.compress(d)


def main():
    doc = make_json(100 * 1024)
    print("| coding | level | us per 100 KiB | bytes | ratio |")
    print("|---|---|---|---|---|")
    rows = [("gzip", l, gz(l)) for l in (1, 3, 5, 6, 9)]
    rows += [("br", q, br(q)) for q in (0, 1, 3, 4, 5, 6, 9, 11)]
    rows += [("zstd", l, zs(l)) for l in (1, 3, 6, 9, 19)]
    for name, lvl, fn in rows:
        reps = 3 if (name == "br" and lvl >= 9) or (name == "zstd" and lvl >= 19) else 30
        t, out = best_time(fn, doc, reps)
        print("| %s | %d | %.0f | %d | %.1f |" % (name, lvl, t * 1e6, len(out), len(doc) / len(out)))
    print()
    print("| body | gzip-6 us | br-4 us | zstd-3 us |")
    print("|---|---|---|---|")
    for kib in (1, 4, 16, 64, 128, 256, 1024):
        d = make_json(kib * 1024)
        ts = [best_time(f, d, max(3, 300 // kib))[0] for f in (gz(6), br(4), zs(3))]
        print("| %d KiB | %.0f | %.0f | %.0f |" % (kib, *(x * 1e6 for x in ts)))


if __name__ == "__main__":
    main()
