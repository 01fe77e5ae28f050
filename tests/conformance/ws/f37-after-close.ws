# §5.5.1: nothing is read after the close frame
expect: close 1000
---
upgrade
frame op=close code 1000
frame "ignored"
