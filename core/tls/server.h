/* The server's TLS contexts, built from the config's "tls" section and its
 * TLS listeners.
 *
 *   "tls": {
 *     "cert": "fullchain.pem", "key": "key.pem",    the default certificate
 *     "certs": [{"names": ["a.example", "*.b.example"], "cert": ..., "key": ...,
 *                "ocsp_file": ...}],                 chosen by SNI
 *     "ocsp_file": "resp.der",        a DER OCSP response to staple (default cert)
 *     "protocols": ["TLSv1.2", "TLSv1.3"],
 *     "ciphers": "...",               TLS 1.2 (default: ECDHE with AES-GCM or ChaCha20)
 *     "ciphersuites": "...",          TLS 1.3 (Mozilla's order: AES-128-GCM first)
 *     "curves": "X25519:P-256:P-384",
 *     "prefer_server_ciphers": true,
 *     "session_tickets": true, "ticket_key_rotation": 3600,
 *     "watch": true                   reload when a certificate or key file changes
 *   }
 *
 * Per listener: "client_ca" and "verify_client" (mTLS), "http2" (ALPN h2).
 *
 * A server's contexts never change once built. A reload builds a new set
 * and the worker swaps its pointer; connections keep a reference to the set
 * they started on, so their callbacks (SNI, ALPN) never see it freed. */
#ifndef LOOM_TLS_SERVER_H
#define LOOM_TLS_SERVER_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "util/config.h"

typedef struct loom__tls_server loom__tls_server;

/* Builds the contexts for cfg's TLS listeners, checking every file: each
 * key matches its certificate, each chain loads, no certificate has expired
 * or is not valid yet. Returns NULL with one line naming the file and the
 * reason in `err`. Logs a warning for a certificate that expires within 14
 * days, a key file that others may read, and an OCSP file that cannot be
 * stapled. The result holds one reference. */
loom__tls_server *loom__tls_server_new(const loom__config *cfg, char *err, size_t errlen);
void loom__tls_server_ref(loom__tls_server *s);
/* Drops a reference; the last one frees the contexts. NULL is allowed. */
void loom__tls_server_unref(loom__tls_server *s);

/* The context a connection on listener `listener` (an index in cfg->listen)
 * starts on. */
SSL_CTX *loom__tls_server_ctx(loom__tls_server *s, int listener);
/* Per-connection settings of that listener on a new SSL. Returns 0 or -1. */
int loom__tls_server_setup(loom__tls_server *s, SSL *ssl, int listener);

/* The files the contexts were built from (certificates, keys, OCSP
 * responses, client CAs), for watching: *n paths, owned by `s`. */
const char *const *loom__tls_server_files(const loom__tls_server *s, size_t *n);
/* Whether the "watch" setting is on. */
int loom__tls_server_watch(const loom__tls_server *s);
/* The ticket key rotation period in ms (0: tickets off). */
uint64_t loom__tls_server_ticket_rotation(const loom__config *cfg);

#endif
