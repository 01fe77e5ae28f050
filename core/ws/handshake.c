#include "ws/handshake.h"
#include "http/request.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static int b64char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int loom__ws_key_valid(const char *k, size_t n)
{
    /* 16 bytes encode to 22 characters and "==", and the 22nd carries
     * only 2 bits of data: its low 4 bits must be zero (A, Q, g or w). */
    if (n != 24 || k[22] != '=' || k[23] != '=') return 0;
    for (size_t i = 0; i < 22; i++)
        if (!b64char(k[i])) return 0;
    return strchr("AQgw", k[21]) != NULL;
}

int loom__ws_accept_value(const char *key, size_t len, char out[29])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, key, len) == 1 &&
             EVP_DigestUpdate(ctx, guid, sizeof guid - 1) == 1 &&
             EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 20;
    EVP_MD_CTX_free(ctx);
    if (!ok) return -1;
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 characters and a NUL */
    return 0;
}

int loom__ws_new_key(char out[25])
{
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) return -1;
    EVP_EncodeBlock((unsigned char *)out, raw, 16);
    return 0;
}

/* Calls back each element of a comma-separated list, trimmed; stops when it
 * returns non-zero and returns that. */
static int each(const char *v, size_t n, int (*fn)(const char *e, size_t el, void *arg), void *arg)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t b = i;
        while (i < n && v[i] != ',') i++;
        size_t e = i;
        while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e > b) {
            int rc = fn(v + b, e - b, arg);
            if (rc) return rc;
        }
    }
    return 0;
}

static int ci_match(const char *e, size_t el, void *arg)
{
    const char *tok = arg;
    return el == strlen(tok) && loom__strncaseeq(e, tok, el);
}

int loom__ws_list_has(const char *v, size_t len, const char *tok)
{
    return v && each(v, len, ci_match, (void *)tok);
}

typedef struct {
    const char *want;
    size_t wl;
} exact;

static int exact_match(const char *e, size_t el, void *arg)
{
    exact *x = arg;
    return el == x->wl && memcmp(e, x->want, el) == 0;
}

typedef struct {
    const char *offered;
    size_t olen;
    char *out;
    size_t outlen, got;
} pick;

static int try_ours(const char *e, size_t el, void *arg)
{
    pick *p = arg;
    exact x = {e, el};
    if (el >= p->outlen || !each(p->offered, p->olen, exact_match, &x)) return 0;
    memcpy(p->out, e, el);
    p->out[el] = '\0';
    p->got = el;
    return 1;
}

size_t loom__ws_pick_protocol(const char *offered, size_t olen, const char *ours, char *out,
                              size_t outlen)
{
    if (!offered || !ours || outlen == 0) return 0;
    pick p = {offered, olen, out, outlen, 0};
    each(ours, strlen(ours), try_ours, &p);
    return p.got;
}
