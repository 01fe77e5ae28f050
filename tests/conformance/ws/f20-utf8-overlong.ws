# RFC 3629: an overlong form
expect: close 1007
---
upgrade
frame "\xe0\x80\xaf"
