# §5.5.3: an unsolicited pong is not answered
expect: text "after"
---
upgrade
frame op=pong "x"
frame "after"
