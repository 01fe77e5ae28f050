# cross-site upgrade with allowed_origins: 403
server: origins
status: 403
---
upgrade | +Origin: https://evil.example
