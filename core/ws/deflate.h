/* permessage-deflate (RFC 7692): negotiating its parameters, and
 * compressing and inflating whole messages with zlib.
 *
 * Memory is what decides the design: a zlib compressor with a 32 KiB
 * window costs about 256 KiB and an inflater about 44 KiB, too much to keep
 * per idle connection. A side that does not keep its context between
 * messages ("no_context_takeover") needs no stream of its own between
 * messages, so such messages go through one stream per thread, reset after
 * each message; only a side that keeps its context gets a stream of its own
 * on the connection, made when its first compressed message comes. Each
 * message is compressed or inflated in one go (the compressed bytes of a
 * message are gathered first), which is what lets the stream be shared. */
#ifndef LOOM_WS_DEFLATE_H
#define LOOM_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* What we are willing to do (from the server's or the client's options). */
typedef struct {
    uint8_t enabled;
    uint8_t takeover;    /* keep our compressor's context between messages (and
                            let the peer keep its own); 0 asks both sides not to */
    uint8_t window_bits; /* our compressor's window, 9..15 (0 = 15) */
} loom__ws_pmd_cfg;

/* What was agreed for one connection. */
typedef struct {
    uint8_t on;
    uint8_t server_no_takeover; /* the server resets its compressor after each message */
    uint8_t client_no_takeover; /* the client resets its compressor after each message */
    uint8_t server_bits;        /* the server's compressor window (9..15) */
    uint8_t client_bits;        /* the client's compressor window (9..15) */
} loom__ws_pmd;

/* Server: reads the client's offers (every Sec-WebSocket-Extensions value,
 * joined with commas) and accepts the first permessage-deflate offer it can
 * honour. Returns 1 with the agreed parameters in *out and the response's
 * extension text in `resp`, or 0 when none is accepted (no extension; not
 * an error: RFC 7692 §5 lets a server decline any offer). */
int loom__ws_pmd_accept(const char *offers, size_t len, const loom__ws_pmd_cfg *cfg,
                        loom__ws_pmd *out, char *resp, size_t resplen);
/* Client: the offer to send for `cfg`, NUL-terminated in `out`. */
void loom__ws_pmd_offer(const loom__ws_pmd_cfg *cfg, char *out, size_t len);
/* Client: checks the server's Sec-WebSocket-Extensions answer (NULL or
 * empty: no extension). Returns 0 with *out filled (out->on may be 0), or -1
 * with the reason in err when the answer is not one we may accept (RFC 7692
 * §5: the client must then fail the connection). */
int loom__ws_pmd_answer(const char *ans, size_t len, const loom__ws_pmd_cfg *cfg, loom__ws_pmd *out,
                        char *err, size_t errlen);

/* A connection's own zlib streams (only for sides that keep context). */
typedef struct loom__ws_z loom__ws_z;

/* Compresses one whole message for sending (the trailing 00 00 ff ff
 * removed, RFC 7692 §7.2.1) and appends it to `out`. `client` says which side
 * we are. Returns 0 or -1 (out of memory, zlib error). */
int loom__ws_z_compress(loom__ws_z **z, const loom__ws_pmd *p, int client, const void *in, size_t n,
                        loom__buf *out);
/* Inflates one whole received message (its compressed payload) into `out`
 * (emptied first), producing at most `max` bytes. Returns 0, -1 when the data
 * is not valid deflate (1007), -2 past `max` (1009), -3 out of memory. */
int loom__ws_z_inflate(loom__ws_z **z, const loom__ws_pmd *p, int client, const void *in, size_t n,
                       loom__buf *out, uint64_t max);
/* Frees a connection's streams (NULL is fine). */
void loom__ws_z_free(loom__ws_z *z);
/* Frees this thread's shared streams (at worker exit; optional). */
void loom__ws_z_thread_free(void);

#endif
