/* fuzz_set_cookie: the client's cookie jar (core/client/cookies.c) fed
 * Set-Cookie values from a fixed set of request URLs. Invariants: (1) no
 * crash or leak whatever the value; (2) what the jar sends back is always
 * "name=value" pairs joined by "; ", without CR, LF or NUL; (3) nothing is
 * ever sent to a host that did not set it or is not under its Domain (a
 * cookie never reaches "unrelated.test"). The first byte picks the URL
 * (and its top bit the unsafe flag); newlines separate Set-Cookie values. */
#include <loom/client.h>

#include "fuzz_common.h"

#include <string.h>

static const char *const urls[] = {
    "http://www.example.com/a/b",  "https://www.example.com/", "http://example.co.uk/x",
    "https://shop.example.co.uk/", "http://127.0.0.1:8080/p",  "https://[::1]/",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192) return 0;
    loom_cookie_jar *jar = loom_cookie_jar_new((data[0] & 0x80) ? LOOM_COOKIE_JAR_UNSAFE : 0);
    char *value = malloc(size);
    memcpy(value, data + 1, size - 1);
    value[size - 1] = 0;
    /* several cookies: split at newlines */
    const char *url = urls[data[0] % (sizeof urls / sizeof urls[0])];
    for (char *p = value; p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        loom_cookie_jar_set(jar, url, p);
        p = nl ? nl + 1 : NULL;
    }
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        char *h = loom_cookie_jar_header(jar, urls[i]);
        if (h) {
            FUZZ_CHECK(!strpbrk(h, "\r\n"));
            FUZZ_CHECK(strchr(h, '=') != NULL);
        }
        free(h);
    }
    char *h = loom_cookie_jar_header(jar, "https://unrelated.test/");
    FUZZ_CHECK(h == NULL);
    free(h);
    loom_cookie_jar_free(jar);
    free(value);
    return 0;
}
