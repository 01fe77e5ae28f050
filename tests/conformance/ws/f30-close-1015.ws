# §7.4.1: 1015 must not be sent
expect: close 1002
---
upgrade
frame op=close code 1015
