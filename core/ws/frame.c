#include "ws/frame.h"

#include <string.h>

size_t loom__ws_frame_head(uint8_t *out, int fin, int rsv1, int opcode, uint64_t len,
                           const uint8_t mask[4])
{
    size_t n = 2;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
    uint8_t m = mask ? 0x80 : 0;
    if (len < 126) {
        out[1] = (uint8_t)(m | len);
    } else if (len <= 0xffff) {
        out[1] = (uint8_t)(m | 126);
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = (uint8_t)(m | 127);
        for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

void loom__ws_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], uint64_t pos)
{
    size_t i = 0;
    /* Byte by byte until the key lines up with pos 0 mod 4 ... */
    while (i < n && ((pos + i) & 3)) {
        dst[i] = src[i] ^ key[(pos + i) & 3];
        i++;
    }
    /* ... then eight bytes at a time with the key repeated twice. */
    uint32_t k32;
    memcpy(&k32, key, 4);
    uint64_t k = (uint64_t)k32 | ((uint64_t)k32 << 32);
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= k;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++) dst[i] = src[i] ^ key[(pos + i) & 3];
}

int loom__ws_close_code_ok(unsigned code)
{
    if (code >= 1000 && code <= 1003) return 1;
    if (code >= 1007 && code <= 1014) return 1;
    return code >= 3000 && code <= 4999;
}
