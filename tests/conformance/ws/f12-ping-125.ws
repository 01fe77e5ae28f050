# §5.5.2: a pong carries the ping's 125 bytes
expect: pong repeat 125 "z"
---
upgrade
frame op=ping repeat 125 "z"
