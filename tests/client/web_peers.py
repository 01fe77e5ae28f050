"""Peers for the client on the real web (test_client_web.py), all on 127.0.0.1:

- certificates made here (python3-cryptography) in DIR: a root CA, an
  intermediate CA, and leaves: good (localhost, 127.0.0.1, ::1), expired, not
  yet valid, for other names, self-signed, from an unknown CA, and one whose
  server leaves out the intermediate;
- a Python `ssl` server for each bad certificate, one that speaks TLS 1.1
  only, one that never answers the handshake, one that resets it;
- aiohttp apps over http and https: cookies, br/zstd bodies and bombs,
  redirects (https -> http, across origins) and a header echo.

Run: python3 web_peers.py DIR  -> writes the PEM files to DIR, prints one line
"READY {json of ports}" and serves until stdin closes (at most 300 s).
No private key is committed: every key is made at run time.
"""
import asyncio
import datetime
import json
import signal
import socket
import ssl
import struct
import sys
import zlib

import brotli
import zstandard
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

DIR = sys.argv[1]
NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def key():
    return ec.generate_private_key(ec.SECP256R1())


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def cert(cn, k, issuer_name, issuer_key, ca=False, names=(), ips=(), start=None, end=None,
         aia=False):
    import ipaddress
    b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer_name)
         .public_key(k.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(start or NOW - DAY).not_valid_after(end or NOW + 30 * DAY)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                          content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False,
                                          encipher_only=False, decipher_only=False), critical=True)
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if aia:
        # as public CAs do: where the issuer certificate can be fetched
        b = b.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier("http://ca.invalid/intermediate.crt"))]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def pem(c):
    return c.public_bytes(serialization.Encoding.PEM)


def write(fname, *parts):
    path = "%s/%s" % (DIR, fname)
    with open(path, "wb") as f:
        for p in parts:
            f.write(p if isinstance(p, bytes) else p.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
    return path


root_k, inter_k, other_k = key(), key(), key()
root = cert("loom test root CA", root_k, name("loom test root CA"), root_k, ca=True)
inter = cert("loom test intermediate CA", inter_k, root.subject, root_k, ca=True)
other = cert("some other CA", other_k, name("some other CA"), other_k, ca=True)
write("root.pem", pem(root))
LOCAL = dict(names=["localhost"], ips=["127.0.0.1", "::1"])


def leaf(fname, cn="localhost", chain=True, issuer=(inter, inter_k), **kw):
    k = key()
    opts = dict(LOCAL)
    opts.update(kw)
    c = cert(cn, k, issuer[0].subject, issuer[1], **opts)
    parts = [pem(c)] + ([pem(issuer[0])] if chain and issuer[0] is not root else [])
    return write(fname + ".pem", *parts), write(fname + ".key", k)


LEAVES = {
    "good": leaf("good", aia=True),
    "expired": leaf("expired", start=NOW - 60 * DAY, end=NOW - 30 * DAY),
    "notyet": leaf("notyet", start=NOW + 30 * DAY, end=NOW + 60 * DAY),
    "wronghost": leaf("wronghost", cn="wrong.example", names=["wrong.example", "other.example"],
                      ips=[]),
    # the server sends only its leaf: the issuer is unknown here
    "unknownca": leaf("unknownca", issuer=(other, other_k), chain=False),
    "nointermediate": leaf("nointermediate", chain=False, aia=True),
}
# self-signed: its own issuer
_k = key()
_c = cert("localhost", _k, name("localhost"), _k, **LOCAL)
LEAVES["selfsigned"] = (write("selfsigned.pem", pem(_c)), write("selfsigned.key", _k))
# a client certificate, issued by the root (for servers that ask for one)
_ck = key()
write("client.pem", pem(cert("loom test client", _ck, root.subject, root_k)))
write("client.key", _ck)


def server_ctx(which, tls11=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*LEAVES[which])
    if tls11:
        import warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


async def answer_http(reader, writer):
    try:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n")
        await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()


async def stall(reader, writer):
    # accepts, reads the ClientHello, never answers
    try:
        await asyncio.sleep(60)
    finally:
        writer.close()


async def reset(reader, writer):
    try:
        await asyncio.wait_for(reader.read(1), 10)
    except Exception:
        pass
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# ---- the aiohttp apps ----

BODY = b"".join(b"line %d of the compressed body\n" % i for i in range(2000))


async def h_cookies_set(request):
    r = web.Response(text="set\n")
    r.headers.add("Set-Cookie", "plain=p1; Path=/")
    r.headers.add("Set-Cookie", "scoped=s1; Path=/cookies/deep")
    r.headers.add("Set-Cookie", "sec=s2; Secure; Path=/")
    r.headers.add("Set-Cookie", "short=x; Max-Age=5; Path=/")
    r.headers.add("Set-Cookie", "gone=y; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/")
    r.headers.add("Set-Cookie", "http=h; HttpOnly; Path=/")
    return r


async def h_echo(request):
    return web.json_response({k: v for k, v in request.headers.items()
                              if k.lower() in ("cookie", "authorization", "proxy-authorization",
                                               "accept-encoding", "host")})


async def h_redirect(request):
    r = web.Response(status=302, headers={"Location": request.query["to"]})
    if "cookie" in request.query:
        r.headers.add("Set-Cookie", request.query["cookie"])
    return r


async def h_br(request):
    return web.Response(body=brotli.compress(BODY), headers={"Content-Encoding": "br"})


async def h_zstd(request):
    return web.Response(body=zstandard.ZstdCompressor().compress(BODY),
                        headers={"Content-Encoding": "zstd"})


BR_BOMB = brotli.compress(b"\0" * (64 << 20))
ZSTD_BOMB = zstandard.ZstdCompressor(level=19).compress(b"\0" * (64 << 20))


async def h_br_bomb(request):
    return web.Response(body=BR_BOMB, headers={"Content-Encoding": "br"})


async def h_zstd_bomb(request):
    return web.Response(body=ZSTD_BOMB, headers={"Content-Encoding": "zstd"})


async def h_bad_br(request):
    return web.Response(body=b"this is not brotli at all", headers={"Content-Encoding": "br"})


async def h_index(request):
    return web.Response(text="hello over %s\n" % request.scheme)


def app():
    a = web.Application()
    a.router.add_get("/", h_index)
    a.router.add_get("/cookies/set", h_cookies_set)
    a.router.add_get("/cookies/deep/echo", h_echo)
    a.router.add_get("/echo", h_echo)
    a.router.add_get("/redirect", h_redirect)
    a.router.add_get("/br", h_br)
    a.router.add_get("/zstd", h_zstd)
    a.router.add_get("/br-bomb", h_br_bomb)
    a.router.add_get("/zstd-bomb", h_zstd_bomb)
    a.router.add_get("/bad-br", h_bad_br)
    return a


def tls11_server():
    """A blocking ssl server in a thread (TLS 1.0-1.1 only): unlike asyncio's,
    a failed handshake sends its alert (protocol_version) before closing."""
    import threading
    ctx = server_ctx("good", tls11=True)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            c.settimeout(10)
            try:
                with ctx.wrap_socket(c, server_side=True) as t:
                    t.recv(4096)
                    t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            except (OSError, ssl.SSLError):
                pass
            finally:
                c.close()

    threading.Thread(target=serve, daemon=True).start()
    return ls.getsockname()[1]


async def main():
    ports = {}
    servers = []
    for which in ("expired", "notyet", "wronghost", "selfsigned", "unknownca", "nointermediate"):
        s = await asyncio.start_server(answer_http, "127.0.0.1", 0, ssl=server_ctx(which))
        servers.append(s)
        ports[which] = s.sockets[0].getsockname()[1]
    ports["tls11"] = tls11_server()
    for nm, fn in (("stall", stall), ("reset", reset)):
        s = await asyncio.start_server(fn, "127.0.0.1", 0)
        servers.append(s)
        ports[nm] = s.sockets[0].getsockname()[1]
    runner = web.AppRunner(app(), access_log=None)
    await runner.setup()
    http = web.TCPSite(runner, "127.0.0.1", 0)
    await http.start()
    ports["http"] = http._server.sockets[0].getsockname()[1]
    https = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx("good"))
    await https.start()
    ports["https"] = https._server.sockets[0].getsockname()[1]
    print("READY " + json.dumps(ports), flush=True)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: done.done() or done.set_result(None))
    loop.add_reader(sys.stdin, lambda: done.done() or done.set_result(None))
    try:
        await asyncio.wait_for(done, 300)
    except asyncio.TimeoutError:
        pass
    for s in servers:
        s.close()
    await runner.cleanup()


asyncio.run(main())
