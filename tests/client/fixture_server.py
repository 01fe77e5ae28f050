"""Test fixture for the client: an aiohttp server plus a raw asyncio server for
responses aiohttp would not produce (truncated, broken chunking, dropped).

Run: python3 fixture_server.py  -> prints "READY <http_port> <raw_port>" and
serves on 127.0.0.1 until stdin closes (or SIGTERM), at most 300 s.
"""
import asyncio
import gzip
import json
import signal
import sys
import zlib

from aiohttp import web


async def text(request):
    return web.Response(text="Hello from aiohttp")


async def chunked(request):
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    resp.content_type = "text/plain"
    await resp.prepare(request)
    for i in range(5):
        await resp.write(b"chunk%d;" % i)
        await asyncio.sleep(0.01)
    await resp.write_eof()
    return resp


PAYLOAD = b"".join(b"line %d of the compressed body\n" % i for i in range(2000))


async def gz(request):
    return web.Response(body=gzip.compress(PAYLOAD), headers={"Content-Encoding": "gzip",
                                                               "Content-Type": "text/plain"})


async def deflate(request):
    return web.Response(body=zlib.compress(PAYLOAD), headers={"Content-Encoding": "deflate",
                                                              "Content-Type": "text/plain"})


async def rawdeflate(request):
    c = zlib.compressobj(wbits=-15)
    body = c.compress(PAYLOAD) + c.flush()
    return web.Response(body=body, headers={"Content-Encoding": "deflate"})


async def bomb(request):
    # 32 MiB of zeros, about 32 KiB compressed
    c = zlib.compressobj(wbits=31)
    body = c.compress(b"\0" * (32 << 20)) + c.flush()
    return web.Response(body=body, headers={"Content-Encoding": "gzip"})


async def redirect(request):
    n = int(request.match_info["n"])
    if n <= 0:
        return web.Response(text="redirects done")
    raise web.HTTPFound("/redirect/%d" % (n - 1))


async def redirect303(request):
    raise web.HTTPSeeOther("/echo")


async def cross(request):
    port = PORTS["http"]
    raise web.HTTPFound("http://localhost:%d/headers" % port)


async def same(request):
    raise web.HTTPFound("/headers")


async def headers(request):
    return web.json_response({k: v for k, v in request.headers.items()})


async def slow_headers(request):
    await asyncio.sleep(float(request.query.get("d", "3")))
    return web.Response(text="late")


async def slow_body(request):
    resp = web.StreamResponse()
    resp.content_length = 10
    await resp.prepare(request)
    await resp.write(b"01234")
    await asyncio.sleep(float(request.query.get("d", "3")))
    await resp.write(b"56789")
    return resp


async def status(request):
    code = int(request.match_info["code"])
    return web.Response(status=code, text="status %d" % code)


async def echo(request):
    body = await request.read()
    out = {"method": request.method, "query": dict(request.query),
           "content_type": request.content_type, "body": body.decode("utf-8", "replace")}
    if request.content_type == "application/json" and body:
        out["json"] = json.loads(body)
    if request.content_type == "application/x-www-form-urlencoded":
        out["form"] = dict(await request.post())
    return web.json_response(out)


async def peer(request):
    await asyncio.sleep(float(request.query.get("d", "0")))
    return web.Response(text=str(request.transport.get_extra_info("peername")[1]))


async def big(request):
    return web.Response(body=b"x" * int(request.query.get("n", "1000")))


PORTS = {}

RAW = {
    b"/truncated": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this much",
    b"/badchunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
    b"/cutchunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nabc",
    b"/drop": b"",
    b"/halfhead": b"HTTP/1.1 200 OK\r\nContent-Le",
    b"/garbage": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    b"/hugeheader": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 9000 + b"\r\nContent-Length: 0\r\n\r\n",
    b"/manyheaders": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    + b"Content-Length: 0\r\n\r\n",
    b"/badgzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 20\r\n\r\n"
    + b"this is not gzip!!!!",
    b"/cutgzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 30\r\n\r\n"
    + gzip.compress(PAYLOAD)[:30],
    b"/eofbody": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close",
    b"/interim": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
}


async def raw_client(reader, writer):
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        path = head.split(b" ", 2)[1].split(b"?")[0]
        data = RAW.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        if data:
            writer.write(data)
            await writer.drain()
        if path == b"/hang":
            await asyncio.sleep(30)
    except Exception:
        pass
    finally:
        writer.close()


async def main():
    app = web.Application()
    app.router.add_get("/text", text)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/gzip", gz)
    app.router.add_get("/deflate", deflate)
    app.router.add_get("/rawdeflate", rawdeflate)
    app.router.add_get("/bomb", bomb)
    app.router.add_get("/redirect/{n}", redirect)
    app.router.add_post("/redirect303", redirect303)
    app.router.add_get("/cross", cross)
    app.router.add_get("/same", same)
    app.router.add_get("/headers", headers)
    app.router.add_get("/slow-headers", slow_headers)
    app.router.add_get("/slow-body", slow_body)
    app.router.add_get("/status/{code}", status)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/big", big)
    app.router.add_get("/peer", peer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    PORTS["http"] = port
    raw = await asyncio.start_server(raw_client, "127.0.0.1", 0)
    raw_port = raw.sockets[0].getsockname()[1]
    print("READY %d %d" % (port, raw_port), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(1) else None)
    try:
        await asyncio.wait_for(stop.wait(), 300)
    except asyncio.TimeoutError:
        pass
    raw.close()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
