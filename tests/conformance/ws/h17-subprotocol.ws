# §4.2.2: the first of the server's subprotocols that the client offered
server: protocols
header: sec-websocket-protocol: superchat
expect: text "p"
---
upgrade | +Sec-WebSocket-Protocol: chat, superchat
frame "p"
