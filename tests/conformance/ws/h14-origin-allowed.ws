# an allowed Origin upgrades
server: origins
expect: text "hi"
---
upgrade | +Origin: http://also.example:8080
frame "hi"
