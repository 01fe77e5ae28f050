# §4.2.1: Upgrade names another protocol: 400
status: 400
---
upgrade | +Upgrade: h2c
