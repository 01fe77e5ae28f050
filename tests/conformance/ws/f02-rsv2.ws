# §5.2: RSV2 without an extension
expect: close 1002
---
upgrade
frame rsv2 "x"
