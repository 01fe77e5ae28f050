/* A client WebSocket's transport (core/client/ws.c): DNS through the
 * client's cache, TCP, the opening handshake (RFC 6455 §4.1), then the
 * bytes of an endpoint (ws/endpoint.h). Used by loom_client_ws_connect
 * (<loom/client.h>) and by plugins (loom_ws_connect). */
#ifndef LOOM_CLIENT_WS_H
#define LOOM_CLIENT_WS_H

#include <loom/client.h>

#include <stdint.h>

#include "ws/endpoint.h"

typedef struct {
    const char *url;                   /* ws://host[:port]/path (wss:// once the client has TLS) */
    const loom_client_header *headers; /* extra request headers (copied) */
    size_t nheaders;
    const char *protocols; /* Sec-WebSocket-Protocol offer, comma-separated, or NULL */
    const char *origin;    /* Origin header, or NULL for none */
    loom__ws_pmd_cfg pmd;  /* permessage-deflate to offer */
    uint64_t timeout_ms;   /* DNS + connect + handshake (0 = 30 s) */
    /* The handshake succeeded: `e` is open (its pmd set); the chosen
     * subprotocol or NULL. Then the bytes that followed the 101 are read. */
    void (*opened)(loom__ws *e, const char *protocol);
    /* The connection could not be opened: a LOOM_CLIENT_E_* code and a
     * message naming the URL. up->gone follows. */
    void (*failed)(loom__ws *e, int code, const char *msg);
} loom__wsc_opts;

/* Starts connecting `e` (initialised here, as a client endpoint that
 * reports to `up`; set its limits after this returns). Nothing is called
 * back before this returns. Returns 0, or -1 with the reason in err (a bad
 * URL or option, out of memory: nothing started). */
int loom__wsc_start(loom_client *client, loom__ws *e, const loom__ws_up *up,
                    const loom__wsc_opts *o, char *err, size_t errlen);
/* Closes the transport now without telling anyone but up->gone (a plugin
 * that unloads, a client that closes). */
void loom__wsc_cancel(loom__ws *e);
/* Cancels every WebSocket of a closing client: each fails with
 * LOOM_CLIENT_E_CANCELLED (or closes with 1006 when it was open). */
void loom__wsc_close_all(loom_client *client);

#endif
