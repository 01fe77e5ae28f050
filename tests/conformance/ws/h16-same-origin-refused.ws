# allowed_origins "same": an Origin whose host is not the Host header: 403
server: same
status: 403
---
upgrade | +Origin: http://127.0.0.2:1
