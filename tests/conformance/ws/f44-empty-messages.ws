# empty text and binary messages
expect: text "", binary ""
---
upgrade
frame
frame op=binary
