# RFC 3629: above U+10FFFF
expect: close 1007
---
upgrade
frame "\xf4\x90\x80\x80"
