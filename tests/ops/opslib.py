"""Helpers for the operations tests: a strict reader of the Prometheus text
exposition format (0.0.4), and HTTP calls to the admin listener."""
import json
import math
import re
import socket

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class FormatError(AssertionError):
    pass


def _labels(s, lineno):
    """Parses `a="x",b="y"` (the text inside braces); returns a dict. Only
    the escapes \\\\, \\" and \\n are allowed in values."""
    out, i = {}, 0
    while i < len(s):
        m = re.match(r"([^=]*)=\"", s[i:])
        if not m:
            raise FormatError("line %d: bad label list %r" % (lineno, s))
        name = m.group(1)
        if not LABEL.match(name) or name.startswith("__"):
            raise FormatError("line %d: bad label name %r" % (lineno, name))
        if name in out:
            raise FormatError("line %d: label %r twice" % (lineno, name))
        i += m.end()
        val = []
        while True:
            if i >= len(s):
                raise FormatError("line %d: unterminated label value" % lineno)
            c = s[i]
            if c == "\\":
                e = s[i + 1:i + 2]
                if e not in ("\\", '"', "n"):
                    raise FormatError("line %d: bad escape \\%s in a label value" % (lineno, e))
                val.append({"\\": "\\", '"': '"', "n": "\n"}[e])
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise FormatError("line %d: newline in a label value" % lineno)
            else:
                val.append(c)
                i += 1
        out[name] = "".join(val)
        if i < len(s):
            if s[i] != ",":
                raise FormatError("line %d: expected ',' in labels %r" % (lineno, s))
            i += 1
    return out


def _value(v, lineno):
    if v in ("+Inf", "-Inf", "NaN"):
        return float(v.replace("Inf", "inf").replace("NaN", "nan"))
    try:
        return float(v)
    except ValueError:
        raise FormatError("line %d: bad value %r" % (lineno, v))


def _family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) == "histogram":
            return name[:-len(suffix)]
    return name


def parse(text):
    """Reads an exposition and checks the rules; returns (samples, types)
    where samples maps (name, ((label, value), ...)) to the value."""
    if text and not text.endswith("\n"):
        raise FormatError("the exposition does not end with a newline")
    types, helps, samples = {}, {}, {}
    seen_samples_of, closed = set(), set()
    current = None
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.match(name):
                    raise FormatError("line %d: bad metric name %r" % (lineno, name))
                rest = parts[3] if len(parts) > 3 else ""
                if parts[1] == "TYPE":
                    if name in types:
                        raise FormatError("line %d: a second TYPE for %s" % (lineno, name))
                    if name in seen_samples_of:
                        raise FormatError("line %d: TYPE for %s after its samples" % (lineno, name))
                    if rest not in TYPES:
                        raise FormatError("line %d: unknown type %r" % (lineno, rest))
                    types[name] = rest
                else:
                    if name in helps:
                        raise FormatError("line %d: a second HELP for %s" % (lineno, name))
                    if re.search(r"\\[^\\n]", rest.replace("\\\\", "")):
                        raise FormatError("line %d: bad escape in HELP" % lineno)
                    helps[name] = rest
            continue
        m = re.match(r"([^{ ]+)(\{(.*)\})? (\S+)( (-?\d+))?\Z", line)
        if not m:
            raise FormatError("line %d: not a sample: %r" % (lineno, line))
        name = m.group(1)
        if not NAME.match(name):
            raise FormatError("line %d: bad metric name %r" % (lineno, name))
        labels = _labels(m.group(3), lineno) if m.group(3) else {}
        value = _value(m.group(4), lineno)
        fam = _family_of(name, types)
        if fam not in types:
            raise FormatError("line %d: sample of %s before (or without) its TYPE" % (lineno, fam))
        # A family's samples are together: once another family starts, it is closed.
        if fam != current:
            if fam in closed:
                raise FormatError("line %d: samples of %s are not together" % (lineno, fam))
            if current:
                closed.add(current)
            current = fam
        seen_samples_of.add(fam)
        key = (name, tuple(sorted(labels.items())))
        if key in samples:
            raise FormatError("line %d: the same series twice: %r" % (lineno, key))
        if types[fam] == "counter":
            if not name.endswith("_total"):
                raise FormatError("line %d: counter %s does not end in _total" % (lineno, name))
            if value < 0 or math.isnan(value):
                raise FormatError("line %d: counter %s is %r" % (lineno, name, value))
        samples[key] = value
    _check_histograms(samples, types)
    return samples, types


def _check_histograms(samples, types):
    for fam, t in types.items():
        if t != "histogram":
            continue
        groups = {}
        for (name, labels), v in samples.items():
            if name == fam + "_bucket":
                d = dict(labels)
                if "le" not in d:
                    raise FormatError("%s without le" % name)
                le = d.pop("le")
                groups.setdefault(tuple(sorted(d.items())), []).append((le, v))
        for lab, buckets in groups.items():
            bounds = [(float("inf") if le == "+Inf" else float(le), v) for le, v in buckets]
            bounds.sort()
            if bounds[-1][0] != float("inf"):
                raise FormatError("%s%r has no le=\"+Inf\" bucket" % (fam, lab))
            vals = [v for _, v in bounds]
            if vals != sorted(vals):
                raise FormatError("%s%r: buckets are not cumulative: %r" % (fam, lab, bounds))
            cnt = samples.get((fam + "_count", lab))
            if cnt is None or (fam + "_sum", lab) not in samples:
                raise FormatError("%s%r: _count or _sum missing" % (fam, lab))
            if cnt != vals[-1]:
                raise FormatError("%s%r: _count %r != +Inf bucket %r" % (fam, lab, cnt, vals[-1]))


def get(samples, name, **labels):
    """The value of one series (0 when absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def total(samples, name, **match):
    """The sum over the series of `name` whose labels include `match`."""
    t = 0
    for (n, labels), v in samples.items():
        d = dict(labels)
        if n == name and all(d.get(k) == w for k, w in match.items()):
            t += v
    return t


def http_get(port, path, headers=None, timeout=10):
    """One GET over a new connection; returns (status, headers, body)."""
    h = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n\r\n" % (path, h)).encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    finally:
        s.close()
    if not data:
        raise ConnectionError("closed without an answer")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), hdrs, body


def status_json(port, token=None):
    st, _, body = http_get(port, "/api/status",
                           {"Authorization": "Bearer " + token} if token else None)
    assert st == 200, (st, body)
    return json.loads(body)
