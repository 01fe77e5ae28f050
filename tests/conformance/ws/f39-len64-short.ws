# §5.2: a 64-bit length for a payload under 65536 bytes
expect: close 1002
---
upgrade
frame len64 "x"
