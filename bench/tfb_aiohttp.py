#!/usr/bin/python3
"""The TFB test types on aiohttp + asyncpg: the comparison app of bench/wl_tfb.py.

Written after TFB's own aiohttp entry (frameworks/Python/aiohttp, its "raw"
asyncpg variant): uvloop, an asyncpg pool, prepared statements, ujson, a
jinja2 template for /fortunes; one request takes one pooled connection and
awaits its queries one after another; /updates reads its rows and writes
them back with executemany. The routes and the clamping of ?queries= are
loom's (plugins/tfb), so both servers answer the same URLs.

usage: tfb_aiohttp.py PORT DSN [POOL_SIZE]
"""
import asyncio
import random
import sys

import asyncpg
import jinja2
import ujson
import uvloop
from aiohttp import web

READ_ROW = "SELECT id, randomnumber FROM world WHERE id = $1"
WRITE_ROW = "UPDATE world SET randomnumber = $1 WHERE id = $2"
EXTRA = {"id": 0, "message": "Additional fortune added at request time."}
TEMPLATE = jinja2.Template(
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
    "<tr><th>id</th><th>message</th></tr>"
    "{% for f in fortunes %}<tr><td>{{ f.id }}</td><td>{{ f.message|e }}</td></tr>{% endfor %}"
    "</table></body></html>")


def json_response(data):
    return web.Response(text=ujson.dumps(data), content_type="application/json")


def query_count(request):
    q = request.query.get("queries", "")
    if not q.isdigit():
        return 1
    return min(max(int(q), 1), 500)


async def json_view(request):
    return json_response({"message": "Hello, World!"})


async def plaintext(request):
    return web.Response(body=b"Hello, World!", content_type="text/plain")


async def db(request):
    async with request.app["pg"].acquire() as conn:
        row = await conn.fetchrow(READ_ROW, random.randint(1, 10000))
    return json_response({"id": row[0], "randomNumber": row[1]})


async def queries(request):
    ids = [random.randint(1, 10000) for _ in range(query_count(request))]
    out = []
    async with request.app["pg"].acquire() as conn:
        stmt = await conn.prepare(READ_ROW)
        for id_ in ids:
            out.append({"id": id_, "randomNumber": (await stmt.fetchrow(id_))[1]})
    return json_response(out)


async def fortunes(request):
    async with request.app["pg"].acquire() as conn:
        rows = [dict(r) for r in await conn.fetch("SELECT id, message FROM fortune")]
    rows.append(EXTRA)
    rows.sort(key=lambda r: r["message"])
    return web.Response(text=TEMPLATE.render(fortunes=rows), content_type="text/html",
                        charset="utf-8")


async def updates(request):
    n = query_count(request)
    pairs = [(random.randint(1, 10000), random.randint(1, 10000)) for _ in range(n)]
    async with request.app["pg"].acquire() as conn:
        stmt = await conn.prepare(READ_ROW)
        for id_, _ in pairs:
            await stmt.fetchrow(id_)
        # Ordered by id, like loom's, so concurrent updates cannot deadlock.
        await conn.executemany(WRITE_ROW, [(num, id_) for id_, num in sorted(pairs)])
    return json_response([{"id": id_, "randomNumber": num} for id_, num in pairs])


async def pool_ctx(app):
    app["pg"] = await asyncpg.create_pool(dsn=app["dsn"], min_size=app["size"] // 2 or 1,
                                          max_size=app["size"])
    yield
    await app["pg"].close()


def main():
    port, dsn = int(sys.argv[1]), sys.argv[2]
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    uvloop.install()
    app = web.Application()
    app["dsn"], app["size"] = dsn, size
    app.cleanup_ctx.append(pool_ctx)
    for path, fn in (("/json", json_view), ("/plaintext", plaintext), ("/db", db),
                     ("/queries", queries), ("/fortunes", fortunes), ("/updates", updates)):
        app.router.add_get(path, fn)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
