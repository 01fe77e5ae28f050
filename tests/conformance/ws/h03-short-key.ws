# §4.2.1: a key that is not the base64 of 16 bytes: 400
status: 400
---
upgrade | +Sec-WebSocket-Key: c2hvcnQ=
