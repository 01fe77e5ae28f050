# RFC 3629: an encoded surrogate (U+D800)
expect: close 1007
---
upgrade
frame "\xed\xa0\x80"
