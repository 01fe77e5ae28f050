# §5.5.1: a close without a code is answered without one
expect: close none
---
upgrade
frame op=close
