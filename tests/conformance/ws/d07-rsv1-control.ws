# RFC 7692 §6: RSV1 on a control frame
server: deflate
expect: close 1002
---
upgrade | +Sec-WebSocket-Extensions: permessage-deflate
frame op=ping rsv1 "x"
