/* The opening handshake's pieces (RFC 6455 §4): the key and its accept
 * value, and the comma-separated header lists it reads. */
#ifndef LOOM_WS_HANDSHAKE_H
#define LOOM_WS_HANDSHAKE_H

#include <stddef.h>

/* Whether `key` is a Sec-WebSocket-Key: the base64 of 16 bytes (§4.1). */
int loom__ws_key_valid(const char *key, size_t len);
/* The Sec-WebSocket-Accept value for `key` (§4.2.2): base64 of the SHA-1 of
 * the key and the protocol's GUID, 28 characters and a NUL in `out`.
 * Returns 0 or -1 (a crypto library failure). */
int loom__ws_accept_value(const char *key, size_t len, char out[29]);
/* A fresh random key (24 characters and a NUL), for a client. Returns 0 or -1. */
int loom__ws_new_key(char out[25]);
/* Whether the comma-separated list `v` holds `tok` (case-insensitive, as
 * Connection and Upgrade values are compared). */
int loom__ws_list_has(const char *v, size_t len, const char *tok);
/* Picks a subprotocol: the first of `ours` (comma-separated, in our order of
 * preference) that the client offered in `offered` (its
 * Sec-WebSocket-Protocol values joined with commas; compared exactly, as
 * RFC 6455 §4.1 makes them case-sensitive). Copies it, NUL-terminated, into
 * `out` and returns its length, or returns 0 when there is none in common. */
size_t loom__ws_pick_protocol(const char *offered, size_t olen, const char *ours, char *out,
                              size_t outlen);

#endif
