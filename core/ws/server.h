/* A WebSocket on a server connection: the protocol table (server/proto.h)
 * that a 101 installs, feeding the connection's bytes to an endpoint
 * (ws/endpoint.h) and giving the endpoint the connection to write to. */
#ifndef LOOM_WS_SERVER_H
#define LOOM_WS_SERVER_H

#include "server/server.h"
#include "ws/endpoint.h"

/* Takes connection `c` over for `ws` (initialised, its settings made).
 * Bytes that already arrived wait until loom__ws_server_opened, so that the
 * owner can see the connection open before any message. */
void loom__ws_server_start(loom__conn *c, loom__ws *ws);
/* The owner has seen the connection open: the waiting bytes are read now. */
void loom__ws_server_opened(loom__ws *ws);

#endif
