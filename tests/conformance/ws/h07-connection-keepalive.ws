# §4.2.1: Connection without the upgrade token: 400
status: 400
---
upgrade | +Connection: keep-alive
