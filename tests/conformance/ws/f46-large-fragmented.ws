# a message of 200,000 bytes in 3 fragments
expect: binary repeat 200000 "q"
---
upgrade
frame op=binary fin=0 repeat 70000 "q"
frame op=cont fin=0 repeat 70000 "q"
frame op=cont repeat 60000 "q"
