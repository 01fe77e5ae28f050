# §7.4.2: 4000-4999 (private) are accepted
expect: close 4999
---
upgrade
frame op=close code 4999
