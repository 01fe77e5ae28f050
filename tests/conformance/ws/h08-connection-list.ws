# §4.2.1: the upgrade token inside a Connection list is enough
header: upgrade: websocket
header: connection: Upgrade
header: sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
expect: text "ok"
---
upgrade | +Connection: keep-alive, Upgrade | +Upgrade: WebSocket
frame "ok"
