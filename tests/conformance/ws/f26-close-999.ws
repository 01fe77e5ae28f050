# §7.4: close code below 1000
expect: close 1002
---
upgrade
frame op=close code 999
