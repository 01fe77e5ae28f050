# RFC 7692 §5: an offer with an unknown parameter is declined (no extension); RSV1 is then an error
server: deflate
expect: close 1002
---
upgrade | +Sec-WebSocket-Extensions: permessage-deflate; foo=1
frame rsv1 "x"
