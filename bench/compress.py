"""bench/compress.py: the compress and sse workloads of bench/run.

make_json(n) is the document both the benchmark and
bench/compress_levels.py compress: an array of records as an API returns
them, deterministic (seeded), about n bytes."""
import json
import random


def make_json(n):
    rnd = random.Random(20)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
             "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo"]
    items, size, i = [], 2, 0
    while True:
        rec = {"id": i, "name": "%s %s" % (rnd.choice(words), rnd.choice(words)),
               "email": "user%d@example.com" % rnd.randrange(100000),
               "active": rnd.random() < 0.7, "score": round(rnd.random() * 1000, 2),
               "tags": rnd.sample(words, 3), "created": "2024-%02d-%02dT%02d:%02d:00Z" % (
                   rnd.randrange(1, 13), rnd.randrange(1, 29), rnd.randrange(24), rnd.randrange(60))}
        t = json.dumps(rec, separators=(",", ":"))
        if size + len(t) + 1 > n:
            break
        items.append(t)
        size += len(t) + 1
        i += 1
    body = "[" + ",".join(items) + "]"
    return (body + " " * (n - len(body))).encode()
