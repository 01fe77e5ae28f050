# §5.2: RSV3 without an extension
expect: close 1002
---
upgrade
frame rsv3 "x"
