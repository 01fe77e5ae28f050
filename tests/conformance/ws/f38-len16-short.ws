# §5.2: a 16-bit length for a payload under 126 bytes
expect: close 1002
---
upgrade
frame len16 "x"
