# §4.2.1: no Upgrade: websocket: 400
status: 400
---
upgrade | -Upgrade
