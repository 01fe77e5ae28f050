# §4.2.2: no subprotocol in common: none in the answer
server: protocols
expect: text "p"
---
upgrade | +Sec-WebSocket-Protocol: mqtt
frame "p"
