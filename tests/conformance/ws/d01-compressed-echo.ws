# RFC 7692 §6: a compressed message is inflated (and echoed, compressed)
server: deflate
expect: text repeat 40 "deflate me "
---
upgrade | +Sec-WebSocket-Extensions: permessage-deflate
deflate repeat 40 "deflate me "
