# §4.2.1: no Sec-WebSocket-Key: 400
status: 400
---
upgrade | -Sec-WebSocket-Key
