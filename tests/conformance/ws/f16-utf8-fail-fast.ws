# §8.1: the first fragment already cannot be UTF-8; the rest never comes
expect: close 1007
---
upgrade
frame fin=0 "ok \xc0\x80"
