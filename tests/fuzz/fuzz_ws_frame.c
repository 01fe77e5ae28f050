/* The WebSocket endpoint (core/ws/endpoint.c) as a server or a client reads
 * the input as frames from its peer, in reads whose sizes the input picks,
 * and echoes every message (compressed when permessage-deflate is on), with
 * heartbeat ticks between reads.
 *
 * Input: byte 0 = flags (bit 0: we are the client; bit 1: permessage-deflate
 * negotiated; bit 2: the peer keeps its compression context; bits 3-4: how
 * reads are split; bit 5: the owner closes after the first message), byte 1
 * = max_msg (256 << (b & 15)), then the bytes from the peer.
 *
 * Invariants: messages are within max_msg and text is UTF-8; `closed` comes
 * at most once and nothing comes after it; every byte we send is read by a
 * second endpoint playing the peer without a protocol error (our frames are
 * well-formed, masked by a client only, compressed correctly). */
#include "fuzz_common.h"
#include "ws/endpoint.h"
#include "ws/utf8.h"

#include <string.h>

typedef struct {
    loom__ws e;
    loom__buf out; /* what we send */
    uint64_t now;
    int closed, errors, msgs;
    int close_after_first;
    int peer; /* this one checks our output */
} side;

static loom__buf *o_outbuf(loom__ws *e)
{
    return &((side *)e)->out;
}
static void o_flush(loom__ws *e)
{
    (void)e;
}
static size_t o_queued(loom__ws *e)
{
    return ((side *)e)->out.len;
}
static void o_pause(loom__ws *e, int on)
{
    (void)e;
    (void)on;
}
static void o_end(loom__ws *e)
{
    (void)e;
}
static void o_abort(loom__ws *e)
{
    loom__ws_transport_gone(e);
}
static uint64_t o_now(loom__ws *e)
{
    return ((side *)e)->now;
}
static const loom__ws_io io = {o_outbuf, o_flush, o_queued, o_pause, o_end, o_abort, o_now};

static void u_message(loom__ws *e, int type, const char *p, size_t n)
{
    side *s = (side *)e;
    FUZZ_CHECK(!s->closed);
    FUZZ_CHECK(n <= e->max_msg);
    FUZZ_CHECK(type == LOOM__WS_TEXT || type == LOOM__WS_BINARY);
    if (type == LOOM__WS_TEXT) {
        uint8_t u = LOOM__UTF8_OK;
        FUZZ_CHECK(loom__utf8_check(&u, p, n) == 0 && u == LOOM__UTF8_OK);
    }
    s->msgs++;
    if (s->peer) return;
    int rc = loom__ws_send(e, type, p, n);
    FUZZ_CHECK(rc == LOOM__WS_OK || rc == LOOM__WS_ELIMIT || rc == LOOM__WS_ESTATE);
    if (s->close_after_first) loom__ws_close(e, 1000, "bye", 3);
}
static void u_error(loom__ws *e, int code, const char *msg)
{
    side *s = (side *)e;
    (void)msg;
    FUZZ_CHECK(!s->closed);
    FUZZ_CHECK(code >= 1000 && code < 5000);
    s->errors++;
}
static void u_closed(loom__ws *e, int code, const char *reason, size_t n)
{
    side *s = (side *)e;
    (void)reason;
    (void)n;
    FUZZ_CHECK(!s->closed);
    FUZZ_CHECK(code >= 1000 && code < 5000);
    s->closed = 1;
}
static void u_none(loom__ws *e)
{
    (void)e;
}
static const loom__ws_up up = {u_message, u_error, u_closed, u_none, u_none, u_none, NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    uint8_t flags = data[0];
    static side s, peer;
    memset(&s, 0, sizeof s);
    memset(&peer, 0, sizeof peer);
    int client = flags & 1;
    loom__ws_init(&s.e, &io, &up, client);
    loom__ws_init(&peer.e, &io, &up, !client);
    peer.peer = 1;
    s.close_after_first = (flags >> 5) & 1;
    s.e.max_msg = (uint64_t)256 << (data[1] & 15);
    s.e.send_limit = 1u << 20;
    s.e.heartbeat = 1000;
    peer.e.max_msg = 64u << 20;
    if (flags & 2) {
        loom__ws_pmd p = {1, 1, (flags & 4) ? 0 : 1, 15, 15};
        /* The side that keeps context is the peer (flag 4) or nobody. */
        if (flags & 4) {
            if (client)
                p.server_no_takeover = 0;
            else
                p.client_no_takeover = 0;
        }
        s.e.pmd = p;
        peer.e.pmd = p;
    }
    fuzz_rng rng = {(uint32_t)size * 2654435761u};
    const char *in = (const char *)data + 2;
    size_t left = size - 2;
    while (left > 0 && !s.e.io_gone) {
        size_t n = fuzz_split(&rng, (uint8_t)(flags >> 3), left);
        loom__ws_feed(&s.e, in, n);
        in += n;
        left -= n;
        s.now += 300;
        loom__ws_tick(&s.e);
    }
    /* Everything we sent must read cleanly on the other side. */
    loom__buf sent = s.out;
    memset(&s.out, 0, sizeof s.out);
    if (sent.len) loom__ws_feed(&peer.e, sent.data, sent.len);
    FUZZ_CHECK(peer.errors == 0);
    loom__buf_free(&sent);
    loom__buf_free(&peer.out);
    loom__ws_release(&s.e);
    loom__ws_release(&peer.e);
    return 0;
}
