/* TLS over buffers: one OpenSSL connection that never touches a socket.
 *
 * The server's connections (io_uring or epoll) and the client's (libuv
 * streams) do their own I/O; this engine only turns ciphertext that arrived
 * into plaintext and plaintext to send into ciphertext. Its BIO reads from a
 * view of the bytes just received (no copy on our side) and appends what
 * OpenSSL writes to a buffer the owner sends in order. Everything that needs
 * OpenSSL in the core (contexts, SNI, ticket keys, verification, error
 * strings) lives in this folder, for the server and the client alike.
 *
 * Ordering rule for owners: every ciphertext byte the engine appends to
 * `out` must reach the peer in the order it was appended, and before any
 * byte appended later. OpenSSL may append at any call (handshake flights,
 * session tickets, alerts, a KeyUpdate answer), not only in write.
 *
 * All calls run on one thread (the connection's loop). */
#ifndef LOOM_TLS_TLS_H
#define LOOM_TLS_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/buf.h"

/* Results of loom__tls_handshake and loom__tls_read. */
#define LOOM__TLS_WANT 0    /* needs more input: feed the next bytes that arrive */
#define LOOM__TLS_DONE 1    /* handshake: complete */
#define LOOM__TLS_EOF (-1)  /* the peer sent close_notify */
#define LOOM__TLS_FAIL (-2) /* a protocol or verification error: close the connection */

/* The largest plaintext in one TLS record (RFC 8446 §5.1). */
#define LOOM__TLS_RECORD 16384u

typedef struct loom__tls {
    SSL *ssl;        /* owned; NULL before open and after close */
    loom__buf *out;  /* ciphertext to send goes here; set by the owner (not owned) */
    const char *in;  /* received ciphertext OpenSSL has not read yet (not owned) */
    size_t in_len;   /* ... and how much */
    uint8_t done;    /* the handshake completed */
    uint8_t eof;     /* close_notify received */
    uint8_t failed;  /* a fatal error happened: no more calls but close */
    char reason[96]; /* why it failed, one line (empty otherwise) */
} loom__tls;

/* Loads OpenSSL's error strings and algorithms once per process. Safe to
 * call often. Returns 0, or -1 when OpenSSL cannot initialise. */
int loom__tls_global_init(void);

/* Drains OpenSSL's error queue of this thread into one line in `buf` (the
 * first error's reason, the library and function where OpenSSL has them),
 * or `fallback` when the queue is empty. Returns buf. */
const char *loom__tls_errstr(char *buf, size_t len, const char *fallback);

/* Starts a connection on `ctx` (which OpenSSL reference-counts: the caller
 * may free its own reference afterwards) as server (`server` != 0) or
 * client. Ciphertext goes to `out`, which must outlive the connection or be
 * replaced with the field before the next call. Returns 0, or -1 with
 * t->reason set. */
int loom__tls_open(loom__tls *t, SSL_CTX *ctx, int server, loom__buf *out);

/* Frees the SSL object. Sends nothing (see loom__tls_shutdown). Safe on a
 * connection that was never opened (zeroed). */
void loom__tls_close(loom__tls *t);

/* Hands over `n` received ciphertext bytes at `p`. They are read in place
 * (not copied) by the next loom__tls_handshake / loom__tls_read calls, so
 * `p` must stay valid until those calls have returned LOOM__TLS_WANT (then
 * every byte was taken: OpenSSL keeps a partial record in its own buffer). */
void loom__tls_feed(loom__tls *t, const void *p, size_t n);

/* Drives the handshake with what was fed. Returns LOOM__TLS_DONE once it
 * completed (application data fed together with the last flight is then
 * waiting for loom__tls_read), LOOM__TLS_WANT when it needs the peer's next
 * bytes, or LOOM__TLS_FAIL (t->reason says why, e.g. "no shared cipher",
 * "wrong version number", "certificate verify failed"). Handshake messages
 * to send are appended to t->out. */
int loom__tls_handshake(loom__tls *t);

/* Decrypts into `dst` (up to `cap` bytes). Returns how many bytes (> 0),
 * LOOM__TLS_WANT when everything fed has been read, LOOM__TLS_EOF after the
 * peer's close_notify, or LOOM__TLS_FAIL. Call it until it returns
 * something other than a byte count. May append to t->out (e.g. a
 * KeyUpdate answer). */
ssize_t loom__tls_read(loom__tls *t, void *dst, size_t cap);

/* Encrypts `n` bytes into t->out, in records of at most `record` plaintext
 * bytes (0 or more than LOOM__TLS_RECORD: full records). Returns 0, or -1
 * (t->reason set; the connection must be closed). */
int loom__tls_write(loom__tls *t, const void *p, size_t n, size_t record);

/* Appends a close_notify alert to t->out (once). Returns 0 or -1. */
int loom__tls_shutdown(loom__tls *t);

/* The negotiated ALPN protocol (not NUL-terminated) or NULL with *len 0. */
const char *loom__tls_alpn(const loom__tls *t, size_t *len);

/* Whether the handshake resumed a session (ticket or PSK). */
int loom__tls_resumed(const loom__tls *t);

#endif
