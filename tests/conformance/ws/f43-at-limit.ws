# max_msg_size: a message of exactly the limit is echoed
server: small
expect: binary repeat 1024 "a"
---
upgrade
frame op=binary repeat 1024 "a"
