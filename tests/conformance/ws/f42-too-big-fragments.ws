# max_msg_size: fragments that add up past it
server: small
expect: close 1009
---
upgrade
frame op=binary fin=0 repeat 600 "a"
frame op=cont repeat 600 "b"
