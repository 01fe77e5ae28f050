# max_msg_size (1024 here): a larger frame is refused at its header
server: small
expect: close 1009
---
upgrade
frame op=binary len=2000
