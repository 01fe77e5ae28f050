# a request without Origin (not a browser) upgrades under allowed_origins
server: origins
expect: text "hi"
---
upgrade
frame "hi"
