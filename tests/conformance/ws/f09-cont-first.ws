# §5.4: a continuation frame with no message started
expect: close 1002
---
upgrade
frame op=cont "x"
