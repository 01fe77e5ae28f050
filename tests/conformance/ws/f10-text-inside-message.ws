# §5.4: a new data frame inside a fragmented message
expect: close 1002
---
upgrade
frame fin=0 "a"
frame "b"
