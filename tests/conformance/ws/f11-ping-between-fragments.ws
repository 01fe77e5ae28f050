# §5.4: control frames between fragments; §5.5.2 pong with the ping's payload
expect: pong "between", text "abc"
---
upgrade
frame fin=0 "a"
frame op=ping "between"
frame op=cont fin=0 "b"
frame op=cont "c"
