# §5.1: a client frame must be masked
expect: close 1002
---
upgrade
frame nomask "x"
