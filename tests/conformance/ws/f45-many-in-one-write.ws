# many frames in one write, answered in order
expect: text "1", text "2", pong "3", binary "4"
---
upgrade
frame "1"
frame "2"
frame op=ping "3"
frame op=binary "4"
