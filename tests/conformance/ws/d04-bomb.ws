# max_msg_size (100,000 here) also bounds the inflated size: a bomb closes with 1009
server: deflate
expect: close 1009
---
upgrade | +Sec-WebSocket-Extensions: permessage-deflate
deflate op=binary repeat 5000000 "\0"
