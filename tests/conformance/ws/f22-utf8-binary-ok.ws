# binary messages are not checked
expect: binary "\xff\xfe"
---
upgrade
frame op=binary "\xff\xfe"
