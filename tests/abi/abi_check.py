#!/usr/bin/env python3
"""libabigail review aid for the plugin ABI.

usage: abi_check.py SRC_DIR HEADER [--regenerate]

Builds anchor.c (one exported function taking every ABI struct) against
HEADER with -g, describes it with `abidw`, and compares that with the
committed SRC_DIR/loom-1.0.abi (made from the frozen tests/abi/loom-1.0.h)
using `abidiff`. abidiff's exit status cannot tell an append (compatible)
from a reorder (breaking) -- both are "4" -- so the report is read instead:
"offset changed", "deletion", "removed" or a non-zero "N Removed" fail the
test. The full report is printed either way, for review.

--regenerate writes SRC_DIR/loom-1.0.abi from HEADER (only ever from
tests/abi/loom-1.0.h: the 1.0 baseline never changes).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ABIDW = ["abidw", "--no-corpus-path", "--no-comp-dir-path", "--no-show-locs", "--no-elf-needed"]
BAD = [r"offset changed", r"deletion", r"removed", r"\b[1-9][0-9]* Removed"]


def describe(src_dir, header, out_abi, tmp):
    so = os.path.join(tmp, "anchor.so")
    cc = os.environ.get("ABI_CC", "cc")
    # No sanitizer or build-type flags: the description must not depend on them.
    subprocess.run([cc, "-std=c11", "-g", "-O0", "-fPIC", "-shared", "-fvisibility=hidden",
                    '-DLOOM_ABI_HEADER="%s"' % os.path.abspath(header), "-o", so, "anchor.c"],
                   cwd=src_dir, check=True, timeout=120)
    subprocess.run(ABIDW + ["--out-file", out_abi, so], check=True, timeout=120)


def main():
    src_dir, header = sys.argv[1], sys.argv[2]
    regen = "--regenerate" in sys.argv[3:]
    if not shutil.which("abidw") or not shutil.which("abidiff"):
        print("abidw/abidiff not found: install abigail-tools")
        return 1
    baseline = os.path.join(src_dir, "loom-1.0.abi")
    tmp = tempfile.mkdtemp(prefix="loom-abi-")
    try:
        new_abi = os.path.join(tmp, "current.abi")
        describe(src_dir, header, new_abi, tmp)
        if regen:
            shutil.copyfile(new_abi, baseline)
            print("wrote " + baseline)
            return 0
        r = subprocess.run(["abidiff", baseline, new_abi], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        report = r.stdout.decode("utf-8", "replace")
        print("abidiff loom-1.0.abi current.abi: exit status %d" % r.returncode)
        print(report)
        if r.returncode & 1 or r.returncode & 2:
            print("ABI check: abidiff itself failed (usage or tool error)")
            return 1
        hits = [ln.strip() for ln in report.splitlines() if any(re.search(b, ln) for b in BAD)]
        if hits:
            print("ABI check: incompatible change against ABI 1.0:")
            for h in hits:
                print("  " + h)
            return 1
        print("ABI check: no offset change, deletion or removal against ABI 1.0")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
