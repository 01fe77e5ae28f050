# §8.1: text that is not UTF-8
expect: close 1007
---
upgrade
frame "\xff"
