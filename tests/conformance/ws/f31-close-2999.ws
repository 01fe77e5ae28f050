# §7.4.2: 1016-2999 are not assigned
expect: close 1002
---
upgrade
frame op=close code 2999
