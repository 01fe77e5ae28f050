# §4.2.1: a key with characters outside base64: 400
status: 400
---
upgrade | +Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==
