# RFC 7692 §8: data that does not inflate
server: deflate
expect: close 1007
---
upgrade | +Sec-WebSocket-Extensions: permessage-deflate
frame rsv1 "\xff\xff\xff\xff"
