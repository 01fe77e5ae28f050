# §5.5: a fragmented control frame
expect: close 1002
---
upgrade
frame op=ping fin=0 "p"
