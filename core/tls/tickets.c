/* Session ticket keys in a shared mapping (see tickets.h). */
#include "tls/tickets.h"
#include "util/log.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
} tkey;

typedef struct {
    atomic_uint seq; /* odd while the owner writes */
    tkey cur, prev;
    int has_prev;
} shared_keys;

static shared_keys *sh;
static pid_t owner;
static uint64_t period_ms, rotated_at;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int fresh(tkey *k)
{
    return RAND_bytes(k->name, sizeof k->name) == 1 && RAND_bytes(k->aes, sizeof k->aes) == 1 &&
           RAND_bytes(k->hmac, sizeof k->hmac) == 1;
}

/* The owner's write: readers retry while seq is odd or moved. */
static void rotate(void)
{
    tkey k;
    if (!fresh(&k)) {
        loom__warn("TLS tickets: no random bytes for a new key; keeping the current one");
        return;
    }
    atomic_fetch_add_explicit(&sh->seq, 1, memory_order_acq_rel);
    sh->prev = sh->cur;
    sh->has_prev = 1;
    sh->cur = k;
    atomic_fetch_add_explicit(&sh->seq, 1, memory_order_release);
    OPENSSL_cleanse(&k, sizeof k);
    rotated_at = now_ms();
    loom__debug("TLS tickets: key rotated");
}

int loom__tickets_open(uint64_t rotation_ms, char *err, size_t errlen)
{
    if (sh) return 0;
    void *m = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "TLS tickets: cannot map shared memory");
        return -1;
    }
    sh = m;
    /* Keys must not end up in a core dump. */
    madvise(m, sizeof *sh, MADV_DONTDUMP);
    if (!fresh(&sh->cur)) {
        snprintf(err, errlen, "TLS tickets: no random bytes for a key");
        munmap(m, sizeof *sh);
        sh = NULL;
        return -1;
    }
    owner = getpid();
    period_ms = rotation_ms;
    rotated_at = now_ms();
    return 0;
}

void loom__tickets_tick(void)
{
    if (!sh || getpid() != owner || period_ms == 0) return;
    if (now_ms() - rotated_at >= period_ms) rotate();
}

int loom__tickets_ready(void)
{
    return sh != NULL;
}

/* A consistent copy of both keys. */
static void snapshot(tkey *cur, tkey *prev, int *has_prev)
{
    for (;;) {
        unsigned s1 = atomic_load_explicit(&sh->seq, memory_order_acquire);
        if (s1 & 1u) continue;
        *cur = sh->cur;
        *prev = sh->prev;
        *has_prev = sh->has_prev;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&sh->seq, memory_order_relaxed) == s1) return;
    }
}

static int set_hmac(EVP_MAC_CTX *hctx, unsigned char *key)
{
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}

int loom__tickets_cb(SSL *s, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc)
{
    (void)s;
    if (!sh) return -1;
    tkey cur, prev;
    int has_prev, rc = 0;
    snapshot(&cur, &prev, &has_prev);
    if (enc) {
        if (RAND_bytes(iv, 16) != 1) goto out;
        memcpy(key_name, cur.name, 16);
        if (EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, cur.aes, iv) != 1 ||
            set_hmac(hctx, cur.hmac) != 1)
            rc = -1;
        else
            rc = 1;
        goto out;
    }
    const tkey *k = NULL;
    if (CRYPTO_memcmp(key_name, cur.name, 16) == 0) {
        k = &cur;
        rc = 1;
    } else if (has_prev && CRYPTO_memcmp(key_name, prev.name, 16) == 0) {
        k = &prev;
        rc = 2; /* valid, but renew it under the current key */
    }
    if (k && (EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1 ||
              set_hmac(hctx, (unsigned char *)k->hmac) != 1))
        rc = -1;
out:
    OPENSSL_cleanse(&cur, sizeof cur);
    OPENSSL_cleanse(&prev, sizeof prev);
    return rc;
}
