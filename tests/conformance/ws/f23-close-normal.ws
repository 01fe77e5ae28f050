# §5.5.1: a close is answered with the same code, then TCP closes
expect: close 1000
---
upgrade
frame op=close code 1000 "bye"
