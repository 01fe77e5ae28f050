/* The frame reader is a byte-driven state machine: a header is gathered
 * (2 to 14 bytes, possibly across reads), then the payload streams through.
 * A message that fits in one frame and has arrived whole (the usual case)
 * is unmasked into a per-thread scratch buffer and handed up from there,
 * so an idle connection holds no buffer; only a message that spans frames
 * or reads is gathered in the connection's own buffer, which is freed when
 * the message is done. */
#include "ws/endpoint.h"
#include "ws/utf8.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HIGH_WATER (256u << 10) /* queued bytes past which we stop reading */
#define MIN_DEFLATE 64          /* shorter messages go uncompressed (RFC 7692 §6.1 lets us) */
#define FAST_MAX (64u << 10)    /* whole one-frame messages up to this use the scratch buffer */
#define SCRATCH_KEEP (256u << 10)

static _Thread_local loom__buf scratch; /* unmasked one-frame messages */
static _Thread_local loom__buf zbuf;    /* a message inflated, or compressed for sending */

static void trim(loom__buf *b)
{
    if (b->cap > SCRATCH_KEEP) loom__buf_free(b);
}

void loom__ws_init(loom__ws *ws, const loom__ws_io *io, const loom__ws_up *up, int client)
{
    memset(ws, 0, sizeof *ws);
    ws->io = io;
    ws->up = up;
    ws->client = (uint8_t)(client != 0);
    ws->max_msg = 4u << 20;
    ws->send_limit = 4u << 20;
    ws->close_wait = 5000;
    ws->hneed = 2;
    ws->st = LOOM__WS_OPEN;
    if (io) ws->last_rx = io->now(ws);
}

/* ---- writing ---- */

/* A masking key for a client frame: from the crypto library's generator,
 * taken 256 bytes at a time (RFC 6455 §5.3 wants keys an attacker cannot
 * predict). */
static void mask_key(uint8_t key[4])
{
    static _Thread_local uint8_t pool[256];
    static _Thread_local size_t pos = sizeof pool;
    if (pos + 4 > sizeof pool) {
        if (RAND_bytes(pool, sizeof pool) != 1) {
            /* Not expected; a key is still better than none. */
            for (size_t i = 0; i < sizeof pool; i++) pool[i] = (uint8_t)(rand() >> 7);
        }
        pos = 0;
    }
    memcpy(key, pool + pos, 4);
    pos += 4;
}

/* Appends one whole frame to the transport's send buffer. */
static int put_frame(loom__ws *ws, int op, int rsv1, const void *p, size_t n)
{
    loom__buf *b = ws->io->outbuf(ws);
    if (loom__buf_reserve(b, LOOM__WS_HEAD_MAX + n)) return LOOM__WS_ENOMEM;
    uint8_t key[4];
    uint8_t *dst = (uint8_t *)b->data + b->len;
    if (ws->client) mask_key(key);
    size_t hl = loom__ws_frame_head(dst, 1, rsv1, op, n, ws->client ? key : NULL);
    if (n) {
        if (ws->client)
            loom__ws_mask(dst + hl, p, n, key, 0);
        else
            memcpy(dst + hl, p, n);
    }
    b->len += hl + n;
    return LOOM__WS_OK;
}

static size_t head_len(size_t n)
{
    return n < 126 ? 2 : n <= 0xffff ? 4 : 10;
}

/* After queueing: reading stops while the peer does not take what we send. */
static void after_send(loom__ws *ws)
{
    ws->io->flush(ws);
    if (ws->io_gone) return;
    if (!ws->paused && ws->io->queued(ws) > HIGH_WATER) {
        ws->paused = 1;
        ws->io->pause(ws, 1);
    }
}

/* Whether `extra` more bytes would pass the queue's limit (a message alone
 * always goes, or one larger than the limit could never be sent). */
static int over_limit(loom__ws *ws, size_t extra)
{
    size_t q = ws->io->queued(ws);
    if (q == 0 || q + extra <= ws->send_limit) return 0;
    ws->want_drain = 1;
    return 1;
}

int loom__ws_send(loom__ws *ws, int type, const void *p, size_t n)
{
    if (ws->st != LOOM__WS_OPEN || ws->io_gone) return LOOM__WS_ESTATE;
    if (n && !p) return LOOM__WS_EINVAL;
    int op, rsv1 = 0;
    switch (type) {
    case LOOM__WS_TEXT: {
        uint8_t u = LOOM__UTF8_OK;
        if (loom__utf8_check(&u, p, n) || u != LOOM__UTF8_OK) return LOOM__WS_EINVAL;
        op = LOOM__WS_OP_TEXT;
        break;
    }
    case LOOM__WS_BINARY:
        op = LOOM__WS_OP_BINARY;
        break;
    case LOOM__WS_OP_PING:
    case LOOM__WS_OP_PONG:
        if (n > LOOM__WS_CONTROL_MAX) return LOOM__WS_EINVAL;
        op = type;
        break;
    default:
        return LOOM__WS_EINVAL;
    }
    if (op < 8 && ws->pmd.on && n >= MIN_DEFLATE) {
        zbuf.len = 0;
        if (loom__ws_z_compress(&ws->z, &ws->pmd, ws->client, p, n, &zbuf)) return LOOM__WS_ENOMEM;
        p = zbuf.data;
        n = zbuf.len;
        rsv1 = 1;
    }
    if (op < 8 && over_limit(ws, head_len(n) + n)) {
        trim(&zbuf);
        return LOOM__WS_ELIMIT;
    }
    int rc = put_frame(ws, op, rsv1, p, n);
    if (rsv1) trim(&zbuf);
    if (rc) return rc;
    after_send(ws);
    return LOOM__WS_OK;
}

void loom__ws_prepared_init(loom__ws_prepared *pm, int type, const void *data, size_t len)
{
    memset(pm, 0, sizeof *pm);
    pm->type = type;
    pm->data = data;
    pm->len = len;
}

void loom__ws_prepared_free(loom__ws_prepared *pm)
{
    loom__buf_free(&pm->plain);
    for (int i = 0; i < 16; i++) loom__buf_free(&pm->z[i]);
}

/* Builds a server frame (unmasked) of `n` payload bytes into b. */
static int build(loom__buf *b, int op, int rsv1, const void *p, size_t n)
{
    if (loom__buf_reserve(b, LOOM__WS_HEAD_MAX + n)) return -1;
    size_t hl = loom__ws_frame_head((uint8_t *)b->data, 1, rsv1, op, n, NULL);
    if (n) memcpy(b->data + hl, p, n);
    b->len = hl + n;
    return 0;
}

int loom__ws_send_prepared(loom__ws *ws, loom__ws_prepared *pm)
{
    if (ws->st != LOOM__WS_OPEN || ws->io_gone) return LOOM__WS_ESTATE;
    int op = pm->type == LOOM__WS_TEXT ? LOOM__WS_OP_TEXT : LOOM__WS_OP_BINARY;
    loom__buf *f = &pm->plain;
    if (ws->client || (ws->pmd.on && pm->len >= MIN_DEFLATE && !ws->pmd.server_no_takeover)) {
        /* A client masks each frame, and a compressor that keeps its
         * context makes bytes of its own: no shared frame. */
        return loom__ws_send(ws, pm->type, pm->data, pm->len);
    }
    if (ws->pmd.on && pm->len >= MIN_DEFLATE) {
        int bits = ws->pmd.server_bits >= 9 && ws->pmd.server_bits <= 15 ? ws->pmd.server_bits : 15;
        f = &pm->z[bits];
        if (!f->len && !pm->zfail[bits]) {
            loom__ws_pmd p = {1, 1, 1, (uint8_t)bits, 15};
            zbuf.len = 0;
            if (loom__ws_z_compress(NULL, &p, 0, pm->data, pm->len, &zbuf) ||
                build(f, op, 1, zbuf.data, zbuf.len))
                pm->zfail[bits] = 1;
            trim(&zbuf);
        }
        if (pm->zfail[bits]) return LOOM__WS_ENOMEM;
    } else if (!f->len && build(f, op, 0, pm->data, pm->len)) {
        return LOOM__WS_ENOMEM;
    }
    if (over_limit(ws, f->len)) return LOOM__WS_ELIMIT;
    if (loom__buf_append(ws->io->outbuf(ws), f->data, f->len)) return LOOM__WS_ENOMEM;
    after_send(ws);
    return LOOM__WS_OK;
}

int loom__ws_close(loom__ws *ws, int code, const char *reason, size_t n)
{
    if (ws->st != LOOM__WS_OPEN || ws->io_gone) return LOOM__WS_ESTATE;
    if (code && !loom__ws_close_code_ok((unsigned)code)) return LOOM__WS_EINVAL;
    if (n > LOOM__WS_CONTROL_MAX - 2 || (n && (!code || !reason))) return LOOM__WS_EINVAL;
    uint8_t u = LOOM__UTF8_OK;
    if (n && (loom__utf8_check(&u, reason, n) || u != LOOM__UTF8_OK)) return LOOM__WS_EINVAL;
    uint8_t pl[LOOM__WS_CONTROL_MAX];
    size_t len = 0;
    if (code) {
        pl[0] = (uint8_t)(code >> 8);
        pl[1] = (uint8_t)code;
        if (n) memcpy(pl + 2, reason, n);
        len = 2 + n;
    }
    int rc = put_frame(ws, LOOM__WS_OP_CLOSE, 0, pl, len);
    if (rc) return rc;
    ws->st = LOOM__WS_CLOSING;
    uint64_t now = ws->io->now(ws);
    ws->close_at = (now ? now : 1) + ws->close_wait;
    ws->io->flush(ws);
    return LOOM__WS_OK;
}

/* ---- the end of a connection ---- */

/* Reports the end once. */
static void report(loom__ws *ws, int code, const char *reason, size_t n)
{
    ws->st = LOOM__WS_CLOSED;
    ws->up->closed(ws, code, reason ? reason : "", n);
}

/* The peer broke the protocol: our close frame with `code`, then TCP closes
 * (RFC 6455 §7.1.7). */
static void fail(loom__ws *ws, int code, const char *msg)
{
    if (ws->st == LOOM__WS_CLOSED || ws->io_gone) return;
    size_t n = strlen(msg);
    if (n > LOOM__WS_CONTROL_MAX - 2) n = LOOM__WS_CONTROL_MAX - 2;
    if (ws->st == LOOM__WS_OPEN) {
        uint8_t pl[LOOM__WS_CONTROL_MAX];
        pl[0] = (uint8_t)(code >> 8);
        pl[1] = (uint8_t)code;
        memcpy(pl + 2, msg, n);
        put_frame(ws, LOOM__WS_OP_CLOSE, 0, pl, 2 + n);
    }
    ws->st = LOOM__WS_CLOSED;
    ws->close_at = 0;
    ws->up->error(ws, code, msg);
    report(ws, code, msg, strlen(msg));
    if (!ws->io_gone) ws->io->end(ws);
}

/* Gives up on a peer that does not answer: no close frame, TCP closes now. */
static void abort_conn(loom__ws *ws, const char *msg, int as_error)
{
    if (ws->io_gone) return;
    ws->close_at = 0;
    if (ws->st != LOOM__WS_CLOSED) {
        if (as_error) ws->up->error(ws, 1006, msg);
        report(ws, 1006, msg, strlen(msg));
    }
    if (!ws->io_gone) ws->io->abort(ws);
}

void loom__ws_transport_gone(loom__ws *ws)
{
    if (ws->io_gone) return;
    ws->io_gone = 1;
    ws->close_at = 0;
    if (ws->st != LOOM__WS_CLOSED) report(ws, 1006, "connection lost", 15);
}

/* Both close frames have passed: the server closes TCP now; a client waits
 * for the server to (RFC 6455 §7.1.1), at most close_wait. */
static void close_done(loom__ws *ws, int code, const char *reason, size_t n)
{
    report(ws, code, reason, n);
    if (ws->io_gone) return;
    if (ws->client) {
        uint64_t now = ws->io->now(ws);
        ws->close_at = (now ? now : 1) + ws->close_wait;
    } else {
        ws->close_at = 0;
        ws->io->end(ws);
    }
}

/* ---- reading ---- */

static void release_now(loom__ws *ws)
{
    loom__buf_free(&ws->msg);
    free(ws->ctl);
    ws->ctl = NULL;
    loom__ws_z_free(ws->z);
    ws->z = NULL;
}

int loom__ws_release(loom__ws *ws)
{
    if (ws->busy) {
        ws->freeing = 1;
        return 0;
    }
    release_now(ws);
    return 1;
}

static int alive(const loom__ws *ws)
{
    return ws->st != LOOM__WS_CLOSED && !ws->io_gone;
}

static void deliver(loom__ws *ws, const char *p, size_t n)
{
    int type = ws->mop == LOOM__WS_OP_TEXT ? LOOM__WS_TEXT : LOOM__WS_BINARY;
    /* Also while our close frame waits for the peer's: what the peer sent
     * before it saw ours is not lost (RFC 6455 §1.4 lets it send until then). */
    if (ws->st != LOOM__WS_CLOSED) ws->up->message(ws, type, p, n);
}

/* A whole message has arrived (its payload in ws->msg). */
static void message_done(loom__ws *ws)
{
    const char *p = ws->msg.data;
    size_t n = ws->msg.len;
    if (ws->mz) {
        int rc = loom__ws_z_inflate(&ws->z, &ws->pmd, ws->client, p, n, &zbuf, ws->max_msg);
        if (rc == -2) {
            char m[96];
            snprintf(m, sizeof m, "message larger than %llu bytes once inflated",
                     (unsigned long long)ws->max_msg);
            trim(&zbuf);
            fail(ws, 1009, m);
            return;
        }
        if (rc) {
            trim(&zbuf);
            fail(ws, rc == -3 ? 1011 : 1007,
                 rc == -3 ? "out of memory" : "invalid compressed data");
            return;
        }
        p = zbuf.data;
        n = zbuf.len;
        uint8_t u = LOOM__UTF8_OK;
        if (ws->mop == LOOM__WS_OP_TEXT && (loom__utf8_check(&u, p, n) || u != LOOM__UTF8_OK)) {
            trim(&zbuf);
            fail(ws, 1007, "text message is not UTF-8");
            return;
        }
    } else if (ws->mop == LOOM__WS_OP_TEXT && ws->utf8 != LOOM__UTF8_OK) {
        fail(ws, 1007, "text message is not UTF-8");
        return;
    }
    deliver(ws, p ? p : "", n);
    if (ws->mz) trim(&zbuf);
    ws->mop = 0;
    /* An idle connection keeps no buffer. */
    loom__buf_free(&ws->msg);
}

static void control_done(loom__ws *ws)
{
    uint8_t c[LOOM__WS_CONTROL_MAX];
    size_t n = ws->ctl_len;
    if (n) memcpy(c, ws->ctl, n);
    free(ws->ctl);
    ws->ctl = NULL;
    switch (ws->fop) {
    case LOOM__WS_OP_PING:
        if (ws->st == LOOM__WS_OPEN && put_frame(ws, LOOM__WS_OP_PONG, 0, c, n) == 0)
            ws->io->flush(ws);
        return;
    case LOOM__WS_OP_PONG:
        return;
    default:
        break;
    }
    /* A close frame. */
    int code = 1005;
    const char *reason = "";
    size_t rl = 0;
    if (n == 1) {
        fail(ws, 1002, "close frame with a 1-byte payload");
        return;
    }
    if (n >= 2) {
        code = (c[0] << 8) | c[1];
        if (!loom__ws_close_code_ok((unsigned)code)) {
            char m[48];
            snprintf(m, sizeof m, "invalid close code %d", code);
            fail(ws, 1002, m);
            return;
        }
        reason = (const char *)c + 2;
        rl = n - 2;
        uint8_t u = LOOM__UTF8_OK;
        if (loom__utf8_check(&u, reason, rl) || u != LOOM__UTF8_OK) {
            fail(ws, 1007, "close reason is not UTF-8");
            return;
        }
    }
    ws->got_close = 1;
    ws->peer_code = (uint16_t)code;
    if (ws->st == LOOM__WS_OPEN) {
        /* Echo the code (RFC 6455 §5.5.1). */
        put_frame(ws, LOOM__WS_OP_CLOSE, 0, c, n >= 2 ? 2 : 0);
        ws->io->flush(ws);
        if (!alive(ws)) return;
    }
    close_done(ws, code, reason, rl);
}

/* The header is complete: checks it. Returns 0, or -1 after failing. */
static int header_done(loom__ws *ws)
{
    const uint8_t *h = ws->hdr;
    int fin = h[0] & 0x80, rsv1 = h[0] & 0x40, op = h[0] & 0x0f;
    int masked = h[1] & 0x80, len7 = h[1] & 0x7f;
    if (h[0] & 0x30) {
        fail(ws, 1002, "RSV2 or RSV3 set");
        return -1;
    }
    if ((op > 2 && op < 8) || op > 10) {
        fail(ws, 1002, "reserved opcode");
        return -1;
    }
    if (op >= 8 && !fin) {
        fail(ws, 1002, "fragmented control frame");
        return -1;
    }
    if (op >= 8 && len7 > LOOM__WS_CONTROL_MAX) {
        fail(ws, 1002, "control frame longer than 125 bytes");
        return -1;
    }
    if (op >= 8 && rsv1) {
        fail(ws, 1002, "RSV1 set on a control frame");
        return -1;
    }
    if ((masked == 0) != (ws->client != 0)) {
        fail(ws, 1002,
             ws->client ? "masked frame from the server" : "unmasked frame from the client");
        return -1;
    }
    uint64_t len = (uint64_t)len7;
    size_t at = 2;
    if (len7 == 126) {
        len = ((uint64_t)h[2] << 8) | h[3];
        at = 4;
        if (len < 126) {
            fail(ws, 1002, "frame length not in its shortest form");
            return -1;
        }
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++) len = (len << 8) | h[2 + i];
        at = 10;
        if (len >> 63) {
            fail(ws, 1002, "frame length with its top bit set");
            return -1;
        }
        if (len <= 0xffff) {
            fail(ws, 1002, "frame length not in its shortest form");
            return -1;
        }
    }
    if (masked) memcpy(ws->key, h + at, 4);
    ws->fop = (uint8_t)op;
    ws->ffin = fin != 0;
    ws->frsv1 = rsv1 != 0;
    ws->fmasked = masked != 0;
    ws->flen = len;
    ws->fpos = 0;
    if (op >= 8) {
        ws->ctl_len = 0;
        if (len && !ws->ctl && !(ws->ctl = malloc(LOOM__WS_CONTROL_MAX))) {
            fail(ws, 1011, "out of memory");
            return -1;
        }
        return 0;
    }
    if (op == LOOM__WS_OP_CONT) {
        if (!ws->mop) {
            fail(ws, 1002, "continuation frame without a message");
            return -1;
        }
        if (rsv1) {
            fail(ws, 1002, "RSV1 set on a continuation frame");
            return -1;
        }
    } else {
        if (ws->mop) {
            fail(ws, 1002, "new message before the last one ended");
            return -1;
        }
        if (rsv1 && !ws->pmd.on) {
            fail(ws, 1002, "RSV1 set without a negotiated extension");
            return -1;
        }
        ws->mop = (uint8_t)op;
        ws->mz = rsv1 != 0;
        ws->utf8 = LOOM__UTF8_OK;
    }
    /* Compressed bytes may be a little more than what they inflate to
     * (stored blocks: 5 bytes per 16 KiB). */
    uint64_t cap = ws->mz ? ws->max_msg + ws->max_msg / 256 + 1024 : ws->max_msg;
    if (ws->msg.len + len > cap) {
        char m[96];
        snprintf(m, sizeof m, "message larger than %llu bytes", (unsigned long long)ws->max_msg);
        fail(ws, 1009, m);
        return -1;
    }
    return 0;
}

/* `n` payload bytes of the current frame (masked as sent). */
static int payload(loom__ws *ws, const uint8_t *p, size_t n)
{
    if (ws->fop >= 8) {
        uint8_t *d = ws->ctl + ws->ctl_len;
        if (ws->fmasked)
            loom__ws_mask(d, p, n, ws->key, ws->fpos);
        else
            memcpy(d, p, n);
        ws->ctl_len = (uint8_t)(ws->ctl_len + n);
        return 0;
    }
    if (loom__buf_reserve(&ws->msg, n)) {
        fail(ws, 1011, "out of memory");
        return -1;
    }
    uint8_t *d = (uint8_t *)ws->msg.data + ws->msg.len;
    if (ws->fmasked)
        loom__ws_mask(d, p, n, ws->key, ws->fpos);
    else
        memcpy(d, p, n);
    ws->msg.len += n;
    if (ws->mop == LOOM__WS_OP_TEXT && !ws->mz && loom__utf8_check(&ws->utf8, d, n)) {
        fail(ws, 1007, "text message is not UTF-8");
        return -1;
    }
    return 0;
}

static void frame_done(loom__ws *ws)
{
    ws->hlen = 0;
    ws->hneed = 2;
    ws->ping_at = 0; /* the peer is alive */
    if (ws->fop >= 8) {
        control_done(ws);
    } else if (ws->ffin) {
        message_done(ws);
    }
}

/* A whole one-frame message is in [p, p + n): no copy for a client (its
 * frames are not masked), one unmasking copy for a server. */
static void fast_message(loom__ws *ws, const uint8_t *p, size_t n)
{
    const char *m = (const char *)p;
    if (ws->fmasked && n) {
        scratch.len = 0;
        if (loom__buf_reserve(&scratch, n)) {
            fail(ws, 1011, "out of memory");
            return;
        }
        loom__ws_mask((uint8_t *)scratch.data, p, n, ws->key, 0);
        m = scratch.data;
    }
    ws->hlen = 0;
    ws->hneed = 2;
    ws->ping_at = 0;
    ws->mop = 0;
    if (ws->fop == LOOM__WS_OP_TEXT) {
        uint8_t u = LOOM__UTF8_OK;
        if (loom__utf8_check(&u, m, n) || u != LOOM__UTF8_OK) {
            fail(ws, 1007, "text message is not UTF-8");
            return;
        }
    }
    if (ws->st != LOOM__WS_CLOSED)
        ws->up->message(ws, ws->fop == LOOM__WS_OP_TEXT ? LOOM__WS_TEXT : LOOM__WS_BINARY,
                        m ? m : "", n);
}

static void leave(loom__ws *ws)
{
    if (--ws->busy > 0 || !ws->freeing) return;
    const loom__ws_up *up = ws->up;
    release_now(ws);
    up->release(ws); /* the owner frees ws here */
}

void loom__ws_feed(loom__ws *ws, const char *data, size_t len)
{
    if (!alive(ws) || len == 0) return;
    ws->busy++;
    ws->last_rx = ws->io->now(ws);
    const uint8_t *p = (const uint8_t *)data, *end = p + len;
    while (p < end && alive(ws) && !ws->freeing) {
        if (ws->hlen < ws->hneed) {
            size_t k = (size_t)(end - p);
            if (k > (size_t)(ws->hneed - ws->hlen)) k = ws->hneed - ws->hlen;
            memcpy(ws->hdr + ws->hlen, p, k);
            ws->hlen = (uint8_t)(ws->hlen + k);
            p += k;
            if (ws->hlen < ws->hneed) break;
            if (ws->hneed == 2) {
                int l7 = ws->hdr[1] & 0x7f;
                uint8_t need = (uint8_t)(2 +
                                         (l7 == 126   ? 2
                                          : l7 == 127 ? 8
                                                      : 0) +
                                         (ws->hdr[1] & 0x80 ? 4 : 0));
                if (need > 2) {
                    ws->hneed = need;
                    continue;
                }
            }
            if (header_done(ws)) break;
            /* The usual message: one frame, all of it here. */
            if (ws->fop != LOOM__WS_OP_CONT && ws->fop < 8 && ws->ffin && !ws->mz &&
                ws->msg.len == 0 && ws->flen <= FAST_MAX && (uint64_t)(end - p) >= ws->flen) {
                size_t n = (size_t)ws->flen;
                fast_message(ws, p, n);
                p += n;
                continue;
            }
            if (ws->flen == 0) frame_done(ws);
            continue;
        }
        size_t k = (size_t)(end - p);
        if ((uint64_t)k > ws->flen - ws->fpos) k = (size_t)(ws->flen - ws->fpos);
        if (payload(ws, p, k)) break;
        p += k;
        ws->fpos += k;
        if (ws->fpos == ws->flen) frame_done(ws);
    }
    trim(&scratch);
    leave(ws);
}

void loom__ws_tick(loom__ws *ws)
{
    if (ws->io_gone) return;
    ws->busy++;
    uint64_t now = ws->io->now(ws);
    if (ws->st == LOOM__WS_OPEN && ws->heartbeat) {
        uint64_t wait = ws->heartbeat / 2 ? ws->heartbeat / 2 : 1;
        if (ws->ping_at && now - ws->ping_at >= wait) {
            char m[96];
            snprintf(m, sizeof m, "no answer to a heartbeat ping within %llu ms",
                     (unsigned long long)wait);
            abort_conn(ws, m, 1);
        } else if (!ws->ping_at && now - ws->last_rx >= ws->heartbeat) {
            if (put_frame(ws, LOOM__WS_OP_PING, 0, NULL, 0) == 0) {
                ws->ping_at = now ? now : 1;
                ws->io->flush(ws);
            }
        }
    }
    if (ws->close_at && now >= ws->close_at && !ws->io_gone) {
        if (ws->st == LOOM__WS_CLOSING) {
            abort_conn(ws, "no close frame from the peer in time", 0);
        } else {
            ws->close_at = 0; /* a client waited for the server's FIN long enough */
            ws->io->abort(ws);
        }
    }
    leave(ws);
}

void loom__ws_drained(loom__ws *ws)
{
    if (ws->io_gone) return;
    if (ws->paused) {
        ws->paused = 0;
        ws->io->pause(ws, 0);
    }
    if (ws->want_drain && ws->st == LOOM__WS_OPEN) {
        ws->want_drain = 0;
        if (ws->up->drained) ws->up->drained(ws);
    }
}

void loom__ws_thread_free(void)
{
    loom__buf_free(&scratch);
    loom__buf_free(&zbuf);
    loom__ws_z_thread_free();
}
