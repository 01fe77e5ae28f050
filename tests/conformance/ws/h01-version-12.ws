# RFC 6455 §4.2.2: a version other than 13 gets 426 with the version we speak
status: 426
header: sec-websocket-version: 13
---
upgrade | +Sec-WebSocket-Version: 12
