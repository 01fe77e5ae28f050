# §1.3: the accept value of the RFC's example key, and a frame right behind the request
header: sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
expect: text "right behind"
---
upgrade
frame "right behind"
