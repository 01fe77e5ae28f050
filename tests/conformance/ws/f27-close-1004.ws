# §7.4.1: 1004 is reserved
expect: close 1002
---
upgrade
frame op=close code 1004
