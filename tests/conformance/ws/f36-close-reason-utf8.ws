# §5.5.1: a close reason that is not UTF-8
expect: close 1007
---
upgrade
frame op=close code 1000 "\xff"
