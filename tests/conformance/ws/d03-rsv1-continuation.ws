# RFC 7692 §6.1: RSV1 on a continuation frame
server: deflate
expect: close 1002
---
upgrade | +Sec-WebSocket-Extensions: permessage-deflate
frame fin=0 "a"
frame op=cont rsv1 "b"
