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
    case LOOM_CLIENT_E_CERT_EXPIRED:
        return "certificate expired or not yet valid";
    case LOOM_CLIENT_E_CERT_HOSTNAME:
        return "certificate host name mismatch";
    case LOOM_CLIENT_E_CERT_UNTRUSTED:
        return "certificate not trusted";
    case LOOM_CLIENT_E_CERT_CHAIN:
        return "incomplete certificate chain";
    case LOOM_CLIENT_E_TLS_VERSION:
        return "TLS version refused";
    case LOOM_CLIENT_E_TLS_TIMEOUT:
        return "TLS handshake timeout";
    case LOOM_CLIENT_E_TLS_RESET:
        return "TLS handshake reset";
    case LOOM_CLIENT_E_TLS:
        return "TLS error";
    case LOOM_CLIENT_E_TLS_CONFIG:
        return "TLS settings unusable";
    case LOOM_CLIENT_E_PROXY_CONNECT:
        return "proxy unreachable";
    case LOOM_CLIENT_E_PROXY_AUTH:
        return "proxy authentication required";
    case LOOM_CLIENT_E_PROXY_TUNNEL:
        return "proxy tunnel refused";
    case LOOM_CLIENT_E_DECODED_TOO_LARGE:
        return "decoded body too large";
    case LOOM_CLIENT_E_DOWNGRADE:
        return "https to http redirect refused";
    default:
        return "unknown error";
    }
}

int loom_client_is_timeout(int code)
{
    return code == LOOM_CLIENT_E_CONNECT_TIMEOUT || code == LOOM_CLIENT_E_READ_TIMEOUT ||
           code == LOOM_CLIENT_E_TOTAL_TIMEOUT || code == LOOM_CLIENT_E_TLS_TIMEOUT;
}

int loom_client_is_tls_error(int code)
{
    return code <= LOOM_CLIENT_E_CERT_EXPIRED && code >= LOOM_CLIENT_E_TLS_CONFIG;
}

int loom_client_is_proxy_error(int code)
{
    return code <= LOOM_CLIENT_E_PROXY_CONNECT && code >= LOOM_CLIENT_E_PROXY_TUNNEL;
}

int loom_client_is_connection_error(int code)
{
    return code == LOOM_CLIENT_E_DNS || code == LOOM_CLIENT_E_CONNECTION_REFUSED ||
           code == LOOM_CLIENT_E_CONNECT || code == LOOM_CLIENT_E_CONNECT_TIMEOUT ||
           code == LOOM_CLIENT_E_READ_TIMEOUT || code == LOOM_CLIENT_E_SERVER_DISCONNECTED ||
           (loom_client_is_tls_error(code) && code != LOOM_CLIENT_E_TLS_CONFIG) ||
           loom_client_is_proxy_error(code);
}

int loom_client_is_payload_error(int code)
{
    return code == LOOM_CLIENT_E_PAYLOAD || code == LOOM_CLIENT_E_BAD_RESPONSE ||
           code == LOOM_CLIENT_E_TOO_LARGE || code == LOOM_CLIENT_E_DECODED_TOO_LARGE;
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
