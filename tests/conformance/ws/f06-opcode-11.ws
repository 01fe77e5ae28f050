# §5.2: reserved control opcode
expect: close 1002
---
upgrade
frame op=11
