# §5.5: a control frame longer than 125 bytes
expect: close 1002
---
upgrade
frame op=ping repeat 126 "p"
