# §5.2: RSV1 without a negotiated extension
expect: close 1002
---
upgrade
frame rsv1 "x"
