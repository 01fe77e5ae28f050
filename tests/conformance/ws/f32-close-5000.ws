# §7.4.2: codes above 4999
expect: close 1002
---
upgrade
frame op=close code 5000
