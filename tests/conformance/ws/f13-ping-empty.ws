# §5.5.2: an empty ping
expect: pong ""
---
upgrade
frame op=ping
