# §8.1 after inflating
server: deflate
expect: close 1007
---
upgrade | +Sec-WebSocket-Extensions: permessage-deflate
deflate "\xc3\x28"
