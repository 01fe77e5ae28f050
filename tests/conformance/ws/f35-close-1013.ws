# IANA registry: 1012-1014 are accepted
expect: close 1013
---
upgrade
frame op=close code 1013
