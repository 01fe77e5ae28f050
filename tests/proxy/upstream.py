"""An upstream for the proxy tests (Python aiohttp, on the port given)."""
import asyncio
import gzip
import json
import sys

from aiohttp import web

state = {"hang_cancelled": 0, "hang_started": 0, "peers": set()}


async def echo(request):
    state["peers"].add(request.transport.get_extra_info("peername")[1])
    body = await request.read()
    return web.json_response({"method": request.method, "path": request.path_qs,
                              "headers": dict(request.headers), "body": body.decode()},
                             headers={"Keep-Alive": "timeout=5", "X-Up": "yes"})


async def slow(request):
    await asyncio.sleep(3)
    return web.Response(text="late")


async def hang(request):
    # Waits for the proxy to give up: either the handler is cancelled or its
    # connection closes (aiohttp versions differ in which one they do).
    state["hang_started"] += 1
    try:
        for _ in range(600):
            t = request.transport
            if t is None or t.is_closing():
                state["hang_cancelled"] += 1
                break
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        state["hang_cancelled"] += 1
        raise
    return web.Response(text="never")


async def gz(request):
    return web.Response(body=gzip.compress(b"compressed hello"),
                        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})


async def setcookie(request):
    r = web.Response(text="cookie set")
    r.headers.add("Set-Cookie", "flavour=%s; Path=/" % request.query.get("v", "oat"))
    return r


async def status(request):
    return web.json_response({"hang_cancelled": state["hang_cancelled"],
                              "hang_started": state["hang_started"],
                              "peers": len(state["peers"])})


app = web.Application()
app.router.add_route("*", "/api/echo", echo)
app.router.add_get("/api/slow", slow)
app.router.add_get("/api/hang", hang)
app.router.add_get("/api/gzip", gz)
app.router.add_get("/api/setcookie", setcookie)
app.router.add_get("/state", status)
app.router.add_route("*", "/{tail:.*}", echo)  # what the https routes forward


async def main():
    # argv: PORT [TLS_PORT CERT KEY]: the same app over TLS too
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(sys.argv[1])).start()
    if len(sys.argv) > 4:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        await web.TCPSite(runner, "127.0.0.1", int(sys.argv[2]), ssl_context=ctx).start()
    await asyncio.sleep(600)


# aiohttp 3.8 (Debian 12) cancels a handler whose client disconnected.
asyncio.run(main())
