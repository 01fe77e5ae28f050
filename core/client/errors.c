/* The client's error codes: names, classes and messages. */
#include "client/client_int.h"

#include <stdio.h>
#include <stdlib.h>

const char *loom_client_strerror(int code)
{
    switch (code) {
    case LOOM_CLIENT_OK:
        return "ok";
    case LOOM_CLIENT_E_INVALID_URL:
        return "invalid URL";
    case LOOM_CLIENT_E_DNS:
        return "DNS failure";
    case LOOM_CLIENT_E_CONNECTION_REFUSED:
        return "connection refused";
    case LOOM_CLIENT_E_CONNECT:
        return "cannot connect";
    case LOOM_CLIENT_E_CONNECT_TIMEOUT:
        return "connect timeout";
    case LOOM_CLIENT_E_READ_TIMEOUT:
        return "read timeout";
    case LOOM_CLIENT_E_TOTAL_TIMEOUT:
        return "total timeout";
    case LOOM_CLIENT_E_SERVER_DISCONNECTED:
        return "server disconnected";
    case LOOM_CLIENT_E_PAYLOAD:
        return "payload error";
    case LOOM_CLIENT_E_TOO_MANY_REDIRECTS:
        return "too many redirects";
    case LOOM_CLIENT_E_STATUS:
        return "status error";
    case LOOM_CLIENT_E_CANCELLED:
        return "cancelled";
    case LOOM_CLIENT_E_BAD_RESPONSE:
        return "bad response";
    case LOOM_CLIENT_E_TOO_LARGE:
        return "response too large";
    case LOOM_CLIENT_E_NOMEM:
        return "out of memory";
    case LOOM_CLIENT_E_INVALID_ARGUMENT:
        return "invalid argument";
    default:
        return "unknown error";
    }
}

int loom_client_is_timeout(int code)
{
    return code == LOOM_CLIENT_E_CONNECT_TIMEOUT || code == LOOM_CLIENT_E_READ_TIMEOUT ||
           code == LOOM_CLIENT_E_TOTAL_TIMEOUT;
}

int loom_client_is_connection_error(int code)
{
    return code == LOOM_CLIENT_E_DNS || code == LOOM_CLIENT_E_CONNECTION_REFUSED ||
           code == LOOM_CLIENT_E_CONNECT || code == LOOM_CLIENT_E_CONNECT_TIMEOUT ||
           code == LOOM_CLIENT_E_READ_TIMEOUT || code == LOOM_CLIENT_E_SERVER_DISCONNECTED;
}

int loom_client_is_payload_error(int code)
{
    return code == LOOM_CLIENT_E_PAYLOAD || code == LOOM_CLIENT_E_BAD_RESPONSE ||
           code == LOOM_CLIENT_E_TOO_LARGE;
}

char *loom__errmsg(int code, const char *url, const char *detail)
{
    loom__buf b = {0};
    if (detail && *detail)
        loom__buf_printf(&b, "%s: %s (%s)", loom_client_strerror(code), url, detail);
    else
        loom__buf_printf(&b, "%s: %s", loom_client_strerror(code), url);
    if (loom__buf_append(&b, "", 1)) {
        loom__buf_free(&b);
        return NULL;
    }
    return b.data;
}
