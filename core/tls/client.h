/* The client side of TLS: contexts that verify servers, the per-connection
 * set-up (SNI, host name or IP address checks, a session to resume), and
 * the sorting of a failed handshake into reasons a person can act on.
 *
 * The HTTP client (core/client/) is the user; the OpenSSL calls stay here,
 * beside the engine (tls.h) that the server uses too. */
#ifndef LOOM_TLS_CLIENT_H
#define LOOM_TLS_CLIENT_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "tls/tls.h"

/* What a client context trusts and presents. Strings may be NULL. */
typedef struct {
    const char *ca_file;   /* PEM bundle trusted instead of the system store */
    const char *ca_path;   /* directory of hashed CA certificates (c_rehash) */
    const char *cert_file; /* client certificate chain (PEM) */
    const char *key_file;  /* its private key (PEM); NULL = in cert_file */
    int insecure;          /* 1 = no verification at all */
} loom__tls_client_conf;

/* Why a client handshake failed (loom__tls_client_diagnose). */
enum {
    LOOM__TLSC_OTHER = 1, /* a TLS failure of no class below */
    LOOM__TLSC_EXPIRED,   /* the certificate expired, or is not valid yet */
    LOOM__TLSC_HOSTNAME,  /* the certificate is for other names */
    LOOM__TLSC_UNTRUSTED, /* self-signed, or issued by a CA not trusted here */
    LOOM__TLSC_CHAIN,     /* the server left out an intermediate certificate */
    LOOM__TLSC_VERSION,   /* no protocol version in common (TLS 1.2 is the minimum) */
    LOOM__TLSC_NOT_TLS,   /* the peer does not speak TLS (e.g. plain HTTP) */
};

/* Makes a client context: TLS 1.2 at least, ALPN "http/1.1", peer
 * verification against the system store (SSL_CTX_set_default_verify_paths)
 * or conf's CA file/directory, conf's client certificate, and a client
 * session cache whose sessions the owner keeps (see
 * loom__tls_client_take_session). Returns the context (the caller frees it
 * with SSL_CTX_free), or NULL with a one-line reason naming the file in
 * err. */
SSL_CTX *loom__tls_client_ctx_new(const loom__tls_client_conf *conf, char *err, size_t errlen);

/* Where a connection's new sessions go: the owner's slot (e.g. a pool entry
 * per host), which holds one reference. */
typedef struct {
    SSL_SESSION *session;
} loom__tls_session_slot;

/* Sets up an opened client connection (loom__tls_open with server 0) for
 * `host` (a name or an IP address, without brackets): SNI for names, the
 * host name or IP check of the certificate, the session in `slot` to
 * resume, and `slot` as where the server's new session tickets go (slot
 * must outlive the connection, or be detached with
 * loom__tls_client_detach). Returns 0, or -1 with t->reason set. */
int loom__tls_client_prepare(loom__tls *t, const char *host, loom__tls_session_slot *slot);

/* Stops storing new sessions of `t` into its slot (the slot goes away). */
void loom__tls_client_detach(loom__tls *t);

/* Frees the session held by a slot. */
void loom__tls_session_slot_clear(loom__tls_session_slot *slot);

/* After loom__tls_handshake failed: the class of the failure and one line
 * saying why, naming what the certificate says where it matters (its
 * names, its dates, its issuer). Returns a LOOM__TLSC_* value. */
int loom__tls_client_diagnose(const loom__tls *t, char *msg, size_t len);

/* The protocol version once connected ("TLSv1.3"), or NULL. */
const char *loom__tls_version(const loom__tls *t);

#endif
