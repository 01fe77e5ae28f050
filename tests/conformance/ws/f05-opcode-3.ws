# §5.2: reserved non-control opcode
expect: close 1002
---
upgrade
frame op=3 "x"
