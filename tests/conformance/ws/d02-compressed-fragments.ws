# RFC 7692 §6.1: RSV1 on the first fragment of a compressed message only
server: deflate
expect: text repeat 100 "ab"
---
upgrade | +Sec-WebSocket-Extensions: permessage-deflate
deflate split=3 repeat 100 "ab"
