"""WebSocket servers that are not loom, for the loom client's tests, run as
a child process: python3-websockets (an echo with a subprotocol and
permessage-deflate, a server that closes with a code, a server that sends a
broken frame, one that never answers pings) and Node's ws echo.

    python3 peers.py python PORT;  Node: node -e NODE_ECHO PORT
Paths of the python server:
  /echo            echoes each message with its type
  /close/CODE      closes with CODE and reason "bye CODE" after the first message
  /bad             sends a frame with RSV2 set after the first message
  /silent          never reads after the handshake (a heartbeat test)
  /big             sends a 3 MB binary message after the first message
"""
import asyncio
import sys

NODE_ECHO = r"""
const WebSocket = require('ws');
const wss = new WebSocket.Server({port: +process.argv[1], host: '127.0.0.1', perMessageDeflate: true,
  handleProtocols: (ps) => ps.has('node.v1') ? 'node.v1' : false});
wss.on('connection', (ws, req) => {
  ws.on('message', (d, bin) => {
    if (!bin && d.toString() === 'close-me') { ws.close(4321, 'node says bye'); return; }
    ws.send(d, {binary: bin});
  });
});
wss.on('listening', () => console.log('ready'));
"""


async def handler(ws, path):
    import websockets
    if path == "/echo":
        async for m in ws:
            await ws.send(m)
    elif path.startswith("/close/"):
        code = int(path.split("/")[2])
        await ws.recv()
        await ws.close(code, "bye %d" % code)
    elif path == "/bad":
        await ws.recv()
        # A frame with RSV2 set, straight onto the transport.
        ws.transport.write(b"\xa1\x02hi")
        await asyncio.sleep(2)
    elif path == "/silent":
        ws.transport.pause_reading()
        await asyncio.sleep(10)
    elif path == "/big":
        await ws.recv()
        await ws.send(bytes(range(256)) * (3 * 4096))
        async for m in ws:
            await ws.send(m)


async def main(port):
    import websockets
    async with websockets.serve(handler, "127.0.0.1", port, subprotocols=["py.v1", "py.v2"],
                                compression="deflate", max_size=None, ping_interval=None):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[2])))
