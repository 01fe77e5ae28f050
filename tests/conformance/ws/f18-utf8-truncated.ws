# §8.1: a text message that ends inside a character
expect: close 1007
---
upgrade
frame fin=0 "a"
frame op=cont "\xe2\x82"
