# RFC 7692: the offer is accepted with no context takeover both ways
server: deflate
header: sec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover
expect: text "plain"
---
upgrade | +Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits
frame "plain"
