/* fuzz_tls: the TLS side of a connection. The harness of fuzz_conn (bytes
 * over loopback TCP into a worker on this thread, split and ended as the
 * input says) with the worker's listener speaking TLS: the input is what a
 * client sends where a ClientHello belongs, and on. It drives conn.c's first
 * look at the bytes (TLS record or plaintext HTTP), the handshake through
 * core/tls (engine, SNI and ALPN callbacks, ticket keys) and its failures.
 *
 * The certificate is made at start (no key is committed). The seeds
 * (make_seeds.py) are real ClientHellos of OpenSSL and Python, with SNI,
 * ALPN and session tickets, cut short and whole, and plaintext HTTP.
 *
 * Invariants: those of fuzz_conn (no sanitizer report; the server closes
 * once the client is done). */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tls/server.h"
#include "tls/tickets.h"

#define FUZZ_CONN_TLS 1
#include "fuzz_conn.c"

/* A self-signed P-256 certificate for "localhost", written into a fresh
 * temporary directory; its paths into cfg's "tls" section. */
void fuzz_tls_setup(loom__config *c, loom__worker *w)
{
    static char dir[] = "/tmp/loom-fuzz-tls-XXXXXX";
    char cert[64], key[64], err[256];
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    FUZZ_CHECK(pk && x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 30 * 86400);
    X509_set_pubkey(x, pk);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    FUZZ_CHECK(X509_sign(x, pk, EVP_sha256()) > 0);
    FILE *f = fopen(cert, "w");
    FUZZ_CHECK(f && PEM_write_X509(f, x) == 1);
    fclose(f);
    umask(077);
    f = fopen(key, "w");
    FUZZ_CHECK(f && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pk);
    c->tls = json_pack("{s:s, s:s, s:b}", "cert", cert, "key", key, "watch", 0);
    FUZZ_CHECK(c->tls != NULL);
    FUZZ_CHECK(loom__config_add_listen(c, "127.0.0.1:0:tls", err, sizeof err) == 0);
    FUZZ_CHECK(loom__tickets_open(3600000, err, sizeof err) == 0);
    w->tls = loom__tls_server_new(c, err, sizeof err);
    if (!w->tls) fprintf(stderr, "fuzz_tls: %s\n", err);
    FUZZ_CHECK(w->tls != NULL);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}
