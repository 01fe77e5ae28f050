/* The WebSocket frame format (RFC 6455 §5.2): headers, masking, close
 * codes. Shared by the server and the client (ws/endpoint.h reads frames
 * with it). */
#ifndef LOOM_WS_FRAME_H
#define LOOM_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum {
    LOOM__WS_OP_CONT = 0x0,
    LOOM__WS_OP_TEXT = 0x1,
    LOOM__WS_OP_BINARY = 0x2,
    LOOM__WS_OP_CLOSE = 0x8,
    LOOM__WS_OP_PING = 0x9,
    LOOM__WS_OP_PONG = 0xa,
};

#define LOOM__WS_HEAD_MAX 14     /* 2 + 8 (64-bit length) + 4 (mask) */
#define LOOM__WS_CONTROL_MAX 125 /* payload of a control frame */

/* Writes a frame header to `out` (LOOM__WS_HEAD_MAX bytes of room): FIN
 * when `fin`, RSV1 when `rsv1` (a compressed message), the opcode, the
 * length in its shortest form and, when `mask` is not NULL, the mask bit
 * and key. Returns the header's length. */
size_t loom__ws_frame_head(uint8_t *out, int fin, int rsv1, int opcode, uint64_t len,
                           const uint8_t mask[4]);
/* XORs n bytes of `src` with `key` into `dst` (which may be src), as bytes
 * `pos`, pos+1, ... of a frame's payload (the key repeats every 4 bytes). */
void loom__ws_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], uint64_t pos);
/* Whether a peer may send `code` in a close frame (RFC 6455 §7.4, with the
 * IANA registry's 1012-1014): 1000-1003, 1007-1014, 3000-4999. */
int loom__ws_close_code_ok(unsigned code);

#endif
