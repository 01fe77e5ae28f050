/* Session ticket keys shared by every worker of a server, so that a client
 * resumes its session on whichever worker the kernel hands it to.
 *
 * The process that forks the workers (the master, or the only process with
 * --single) makes a small shared mapping before the first fork and writes a
 * fresh random key into it every rotation period, keeping the previous key
 * for decryption only. Workers read it (under a sequence lock) in OpenSSL's
 * ticket callback. The keys never touch the disk or the network. A ticket
 * encrypted with the previous key is accepted and renewed. */
#ifndef LOOM_TLS_TICKETS_H
#define LOOM_TLS_TICKETS_H

#include <openssl/ssl.h>
#include <stdint.h>

/* Creates the shared keys with a first random key, rotated every
 * `rotation_ms`. Call once, before forking. Returns 0, or -1 with the
 * reason in `err`. */
int loom__tickets_open(uint64_t rotation_ms, char *err, size_t errlen);
/* In the process that called loom__tickets_open: rotates when a period has
 * passed (call it a few times a second). Elsewhere: does nothing. */
void loom__tickets_tick(void);
/* Whether loom__tickets_open succeeded in this process or an ancestor. */
int loom__tickets_ready(void);
/* For SSL_CTX_set_tlsext_ticket_key_evp_cb (OpenSSL's contract). */
int loom__tickets_cb(SSL *s, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc);

#endif
