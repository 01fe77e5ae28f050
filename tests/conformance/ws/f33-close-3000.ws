# §7.4.2: 3000-3999 (registered) are accepted
expect: close 3000
---
upgrade
frame op=close code 3000
