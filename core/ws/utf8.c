/* A small state machine over the lead byte and its continuation bytes
 * (RFC 3629 §4), with eight ASCII bytes at a time between characters:
 * most text on a WebSocket is ASCII, and the fast path then costs about a
 * load and a mask per eight bytes. */
#include "ws/utf8.h"

#include <string.h>

/* States: how many continuation bytes are still due, and for the first of
 * them the narrower range that some lead bytes allow. */
enum {
    S_OK = LOOM__UTF8_OK,
    S_1,   /* one more 80..BF */
    S_2,   /* two more 80..BF */
    S_3,   /* three more 80..BF */
    S_E0,  /* after E0: A0..BF (no overlong 3-byte forms), then one more */
    S_ED,  /* after ED: 80..9F (no surrogates D800..DFFF), then one more */
    S_F0,  /* after F0: 90..BF (no overlong 4-byte forms), then two more */
    S_F4,  /* after F4: 80..8F (nothing above U+10FFFF), then two more */
    S_BAD, /* not UTF-8 */
};

static uint8_t lead(unsigned char b)
{
    if (b < 0x80) return S_OK;
    if (b < 0xc2) return S_BAD; /* a stray continuation byte, or C0/C1 (overlong) */
    if (b < 0xe0) return S_1;
    if (b == 0xe0) return S_E0;
    if (b == 0xed) return S_ED;
    if (b < 0xf0) return S_2;
    if (b == 0xf0) return S_F0;
    if (b < 0xf4) return S_3;
    if (b == 0xf4) return S_F4;
    return S_BAD; /* F5..FF */
}

int loom__utf8_check(uint8_t *state, const void *data, size_t n)
{
    const unsigned char *p = data, *end = p + n;
    uint8_t s = *state;
    if (s == S_BAD) return -1;
    while (p < end) {
        if (s == S_OK) {
            /* Eight ASCII bytes at a time. */
            while (end - p >= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                if (w & 0x8080808080808080ull) break;
                p += 8;
            }
            while (p < end && *p < 0x80) p++;
            if (p == end) break;
            s = lead(*p++);
            if (s == S_BAD) break;
            continue;
        }
        unsigned char b = *p++;
        switch (s) {
        case S_1:
        case S_2:
        case S_3:
            s = (b & 0xc0) == 0x80 ? (uint8_t)(s - 1) : S_BAD;
            break;
        case S_E0:
            s = b >= 0xa0 && b <= 0xbf ? S_1 : S_BAD;
            break;
        case S_ED:
            s = b >= 0x80 && b <= 0x9f ? S_1 : S_BAD;
            break;
        case S_F0:
            s = b >= 0x90 && b <= 0xbf ? S_2 : S_BAD;
            break;
        case S_F4:
            s = b >= 0x80 && b <= 0x8f ? S_2 : S_BAD;
            break;
        default:
            s = S_BAD;
            break;
        }
        if (s == S_BAD) break;
    }
    *state = s;
    return s == S_BAD ? -1 : 0;
}
