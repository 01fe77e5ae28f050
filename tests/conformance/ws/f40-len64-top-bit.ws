# §5.2: the top bit of a 64-bit length
expect: close 1002
---
upgrade
frame len64 top repeat 70000 "x"
