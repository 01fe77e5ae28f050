# §5.5.1: a close payload of one byte
expect: close 1002
---
upgrade
frame op=close "\x03"
