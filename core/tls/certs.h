/* Loading a certificate chain and its key into a context, with the checks a
 * person needs before a server starts: every failure names the file. */
#ifndef LOOM_TLS_CERTS_H
#define LOOM_TLS_CERTS_H

#include <openssl/ssl.h>
#include <stddef.h>

/* Loads the PEM chain `cert` (leaf first) and the PEM key `key` into `ctx`
 * and checks that they belong together and that the leaf is valid now.
 * Returns 0, or -1 with one line in `err` ("tls: cert FILE: REASON").
 * Logs a warning when the leaf expires within 14 days or when the key file
 * is readable by other users. */
int loom__tls_load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen);

/* Staples the DER OCSP response in `path` for the leaf certificate of
 * `ctx` (loaded before). Returns 1 when it will be stapled, 0 when it is
 * not usable (a warning says why: no OCSP responder in the certificate, not
 * for this certificate, not successful, out of date), -1 when the file
 * cannot be read (err says why). */
int loom__tls_load_ocsp(SSL_CTX *ctx, const char *path, char *err, size_t errlen);

/* Frees what loom__tls_load_ocsp attached to `ctx` (call before
 * SSL_CTX_free). */
void loom__tls_free_ocsp(SSL_CTX *ctx);

#endif
