# a 4-byte character split across three fragments is valid
expect: text "\xf0\x9f\x98\x80!"
---
upgrade
frame fin=0 "\xf0"
frame op=cont fin=0 "\x9f\x98"
frame op=cont "\x80!"
