/* fuzz_cookie_verify: the session cookie check (core/plugin/session.c).
 * Invariants: (1) no input is accepted as a cookie -- a valid signature
 * cannot be guessed; (2) a cookie the harness signs itself is accepted, and
 * any one-byte change to it is refused. The file is included to reach its
 * static functions, the way h2o's unit tests do. */
#include "../../core/plugin/session.c"

#include "fuzz_common.h"

#define NOW 1795500000

static sess_host *host(void)
{
    static sess_host sh;
    static unsigned char k1[] = "the-older-key-of-the-ring-0123456789";
    static unsigned char k2[] = "the-newest-key-of-the-ring-9876543210";
    if (!sh.nkeys) {
        sh.keys[0] = k1;
        sh.key_len[0] = sizeof k1 - 1;
        sh.keys[1] = k2;
        sh.key_len[1] = sizeof k2 - 1;
        sh.nkeys = 2;
        sh.absolute = 86400;
        sh.idle = 1800;
    }
    return &sh;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sess_host *sh = host();
    sess s;
    memset(&s, 0, sizeof s);
    FUZZ_CHECK(verify(sh, (const char *)data, size, &s, NOW) != 0);
    if (size < 20) return 0;
    /* A valid cookie: id from the input, signed with either key. */
    char id[ID_HEX + 1];
    hex(data + 3, ID_BYTES, id);
    int64_t issued = NOW - (int64_t)(data[0] % 100), expires = NOW + 1 + (int64_t)data[1];
    unsigned char m[32];
    mac(sh, data[2] & 1, id, issued, expires, m);
    char mh[MAC_HEX + 1];
    hex(m, 32, mh);
    char cookie[256];
    int n = snprintf(cookie, sizeof cookie, "%s.%lld.%lld.%s", id, (long long)issued,
                     (long long)expires, mh);
    FUZZ_CHECK(verify(sh, cookie, (size_t)n, &s, NOW) == 0);
    FUZZ_CHECK(memcmp(s.id, id, ID_HEX) == 0);
    size_t pos = data[19] % (size_t)n;
    char c = (char)data[size - 1];
    if (cookie[pos] != c) {
        cookie[pos] = c;
        FUZZ_CHECK(verify(sh, cookie, (size_t)n, &s, NOW) != 0);
    }
    return 0;
}
