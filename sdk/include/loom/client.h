/* loom's HTTP/1.1 client (http:// and https://), for programs that link
 * libloom.
 *
 * A client is bound to one libuv loop and owns a keep-alive connection pool
 * and a small DNS cache. Requests are started with loom_client_send() and
 * complete through a callback on that loop; loom_client_fetch_sync() is a
 * blocking wrapper that runs a private loop.
 *
 * Threading: a client and everything it returns belong to the thread running
 * its loop. No function here may be called from another thread.
 *
 * Errors are negative LOOM_CLIENT_E_* codes. Every failed request also
 * carries a message that names the URL, e.g.
 *   "connection refused: http://127.0.0.1:9/ (connect ECONNREFUSED 127.0.0.1:9)".
 * The codes follow aiohttp's exception hierarchy; the loom_client_is_*()
 * helpers classify them the same way (see each code's comment).
 *
 * Times are in seconds (double). Sizes are in bytes.
 *
 * Running on a loop you already have (a server worker, a plugin host): create
 * one client per loop with loom_client_new(loop, ...), keep the handle that
 * loom_client_send() returns, forget it when the callback runs, and call
 * loom_client_cancel() on it when the work it was for is abandoned (the
 * callback then never runs). Idle pooled connections and the client's
 * housekeeping timer do not keep the loop alive: uv_run(UV_RUN_DEFAULT)
 * returns once no request is pending.
 *
 * Callbacks (done and chunk) may start new requests and may close the client;
 * a done callback may cancel other requests.
 */
#ifndef LOOM_CLIENT_H
#define LOOM_CLIENT_H

#include <stddef.h>
#include <jansson.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ------------------------------------------------------------ */

enum {
    LOOM_CLIENT_OK = 0,
    /* InvalidURL: not an absolute http:// or https:// URL, bad port, bad
     * characters, user information in the URL; also an unusable redirect
     * Location, and a bad proxy URL. */
    LOOM_CLIENT_E_INVALID_URL = -1,
    /* ClientConnectorDNSError: the host name did not resolve. */
    LOOM_CLIENT_E_DNS = -2,
    /* ClientConnectorError: the server refused the connection. */
    LOOM_CLIENT_E_CONNECTION_REFUSED = -3,
    /* ClientConnectorError/ClientOSError: any other failure to connect
     * (unreachable network or host, reset while connecting...). */
    LOOM_CLIENT_E_CONNECT = -4,
    /* ConnectionTimeoutError: connecting took longer than the connect timeout. */
    LOOM_CLIENT_E_CONNECT_TIMEOUT = -5,
    /* SocketTimeoutError: no byte arrived for longer than the sock_read timeout. */
    LOOM_CLIENT_E_READ_TIMEOUT = -6,
    /* asyncio.TimeoutError: the whole request (redirects included) took longer
     * than the total timeout. */
    LOOM_CLIENT_E_TOTAL_TIMEOUT = -7,
    /* ServerDisconnectedError: the connection closed (or was reset) before the
     * response head was complete. */
    LOOM_CLIENT_E_SERVER_DISCONNECTED = -8,
    /* ClientPayloadError: the body was cut short (fewer bytes than
     * Content-Length, closed mid-chunk), broken chunked framing, or a
     * gzip/deflate/br/zstd stream that does not decode. */
    LOOM_CLIENT_E_PAYLOAD = -9,
    /* TooManyRedirects: more redirects than max_redirects (default 10). */
    LOOM_CLIENT_E_TOO_MANY_REDIRECTS = -10,
    /* ClientResponseError: status >= 400 with raise_for_status on. The
     * response (status, reason, headers, body) is still available. */
    LOOM_CLIENT_E_STATUS = -11,
    /* The request was cancelled by loom_client_close(), or a chunk callback
     * asked to stop. Never reported for loom_client_cancel() (see there). */
    LOOM_CLIENT_E_CANCELLED = -12,
    /* The response head is not valid HTTP/1.x, or a head line is longer than
     * 8190 bytes, or there are more than 128 header lines. */
    LOOM_CLIENT_E_BAD_RESPONSE = -13,
    /* The body as received is larger than max_body_size. */
    LOOM_CLIENT_E_TOO_LARGE = -14,
    /* Out of memory. */
    LOOM_CLIENT_E_NOMEM = -15,
    /* loom_client_fetch_sync() only: the method is not a token, or a header
     * name or value is malformed (CR, LF, or ':' in a name). */
    LOOM_CLIENT_E_INVALID_ARGUMENT = -16,

    /* HTTPS (ClientConnectorCertificateError / ClientSSLError in aiohttp).
     * Each message names the URL and says what the certificate says. */
    /* The server's certificate (or one of its CAs) expired, or is not valid
     * yet: the message gives the date. */
    LOOM_CLIENT_E_CERT_EXPIRED = -17,
    /* The certificate is for other host names or addresses: the message
     * lists the names it has. */
    LOOM_CLIENT_E_CERT_HOSTNAME = -18,
    /* Self-signed, or issued by a CA that is not trusted here (give the CA
     * with loom_client_tls.ca_file). */
    LOOM_CLIENT_E_CERT_UNTRUSTED = -19,
    /* Incomplete chain: the server did not send the intermediate CA
     * certificate between its certificate and a trusted root. Told apart
     * from an unknown issuer by the certificate naming where its issuer can
     * be fetched (Authority Information Access), as public CAs' do. */
    LOOM_CLIENT_E_CERT_CHAIN = -20,
    /* No protocol version in common: the server offers nothing of TLS 1.2
     * or 1.3 (the minimum is TLS 1.2). */
    LOOM_CLIENT_E_TLS_VERSION = -21,
    /* The TLS handshake did not complete within the connect timeout (which
     * covers DNS, TCP connect, proxy tunnel and handshake together). */
    LOOM_CLIENT_E_TLS_TIMEOUT = -22,
    /* The server closed or reset the connection during the TLS handshake. */
    LOOM_CLIENT_E_TLS_RESET = -23,
    /* Any other TLS failure: a server that does not speak TLS on the port,
     * a fatal alert, a certificate problem of no class above. */
    LOOM_CLIENT_E_TLS = -24,
    /* The TLS settings cannot be used: a CA file or directory, a client
     * certificate or key that cannot be read, or a key that does not match
     * the certificate (the message names the file). */
    LOOM_CLIENT_E_TLS_CONFIG = -25,

    /* Proxies (ClientProxyConnectionError / ClientHttpProxyError). */
    /* The proxy cannot be reached: its name does not resolve, it refuses
     * the connection, or connecting to it fails or times out. */
    LOOM_CLIENT_E_PROXY_CONNECT = -26,
    /* The proxy answered 407 Proxy Authentication Required: credentials
     * missing or wrong. For http:// URLs the 407 response is still there. */
    LOOM_CLIENT_E_PROXY_AUTH = -27,
    /* The proxy refused the CONNECT tunnel for an https:// URL with another
     * status (e.g. 403: a port it does not tunnel to; 502: it could not
     * reach the server), or closed the connection instead of answering. */
    LOOM_CLIENT_E_PROXY_TUNNEL = -28,

    /* A compressed body (gzip, deflate, br, zstd) decodes to more than
     * max_body_size: a decompression bomb, stopped at the limit. */
    LOOM_CLIENT_E_DECODED_TOO_LARGE = -29,
    /* A redirect from https:// to http:// was refused (allow_downgrade). */
    LOOM_CLIENT_E_DOWNGRADE = -30,
};

/* A short constant name for `code`, e.g. "connection refused" (never NULL). */
const char *loom_client_strerror(int code);
/* 1 for the timeout codes (connect, TLS handshake, read, total), else 0. */
int loom_client_is_timeout(int code);
/* 1 when aiohttp would raise a ClientConnectionError: DNS, refused, connect,
 * connect timeout, read timeout, server disconnected, every TLS code but
 * TLS_CONFIG, and the proxy codes. Else 0. (The total timeout is
 * asyncio.TimeoutError in aiohttp and is not one.) */
int loom_client_is_connection_error(int code);
/* 1 for errors about the response itself: payload, bad response, too
 * large, decoded too large. */
int loom_client_is_payload_error(int code);
/* 1 for the TLS codes (certificate, version, handshake, configuration). */
int loom_client_is_tls_error(int code);
/* 1 for the proxy codes. */
int loom_client_is_proxy_error(int code);

/* ---- cookie jar ------------------------------------------------------------ */

/* A cookie jar, as aiohttp's CookieJar: cookies from Set-Cookie headers are
 * kept per domain and path (RFC 6265: Domain and Path matching, host-only
 * cookies, Secure cookies only set over and sent to https, Max-Age and
 * Expires, HttpOnly kept, the __Secure- and __Host- prefixes) and sent back
 * on later requests that match, redirects included. A Domain attribute that
 * is a public suffix (co.uk, github.io: Debian's publicsuffix list through
 * libpsl) is refused unless it is the request's own host, which then gets a
 * host-only cookie. Cookies from hosts given as IP addresses are refused
 * unless the jar is made with LOOM_COOKIE_JAR_UNSAFE (aiohttp's
 * unsafe=True); then only host-only cookies for that exact address are
 * kept (no Domain other than the address itself, so never its neighbours).
 * Limits: 4096 bytes per cookie (name and value), 50 per domain, 3000 in
 * all (the oldest used go first).
 *
 * A client keeps cookies only when given a jar (loom_client_config's or a
 * request's cookie_jar): unlike aiohttp's ClientSession, no jar is made by
 * default, because a client shared by a server's many users must not pass
 * one user's cookies to another. A jar belongs to its loop's thread, is
 * not owned by the clients that use it, and must outlive their requests. */
typedef struct loom_cookie_jar loom_cookie_jar;

#define LOOM_COOKIE_JAR_UNSAFE 1 /* keep cookies from IP-address hosts */

/* A new empty jar (flags: LOOM_COOKIE_JAR_*), or NULL when out of memory. */
loom_cookie_jar *loom_cookie_jar_new(int flags);
/* Frees the jar and its cookies. NULL is allowed. */
void loom_cookie_jar_free(loom_cookie_jar *jar);
/* Stores a Set-Cookie header value as if received from `url`. Returns 1
 * when a cookie was stored (or an expired one removed), 0 when the rules
 * refused it, -1 when out of memory or `url` is invalid. */
int loom_cookie_jar_set(loom_cookie_jar *jar, const char *url, const char *set_cookie);
/* The Cookie header value the jar sends to `url` ("a=1; b=2"), as a string
 * the caller frees with free(); NULL when no cookie matches (or out of
 * memory). */
char *loom_cookie_jar_header(loom_cookie_jar *jar, const char *url);
/* Number of cookies held (expired ones are dropped first). */
size_t loom_cookie_jar_count(loom_cookie_jar *jar);
/* Reads cookies from a Netscape cookie file (the format curl's -b/-c use:
 * domain, subdomains TRUE/FALSE, path, secure TRUE/FALSE, expiry, name,
 * value, tab-separated; "#HttpOnly_" before the domain). Lines that are not
 * cookies are skipped; expired cookies are dropped. A missing file is an
 * empty jar. Returns the number of cookies read, or -1 with a one-line
 * reason naming the file in err. */
long loom_cookie_jar_load(loom_cookie_jar *jar, const char *path, char *err, size_t errlen);
/* Writes every cookie, session cookies included (expiry 0), to `path` in
 * the same format (through a temporary file renamed over it, mode 0600).
 * Returns 0, or -1 with a reason naming the file in err. */
int loom_cookie_jar_save(loom_cookie_jar *jar, const char *path, char *err, size_t errlen);

/* ---- configuration ------------------------------------------------------ */

/* HTTPS settings. All zero (the default): verify the server against the
 * system's trust store (Debian's ca-certificates) and its host name or IP
 * address, TLS 1.2 or 1.3, ALPN http/1.1, SNI for host names. The files are
 * read once per distinct set of settings, when the first request needs
 * them; a file that cannot be read fails those requests with
 * LOOM_CLIENT_E_TLS_CONFIG. Connections are pooled per (scheme, host, port,
 * TLS settings, proxy); TLS sessions are kept per pool entry and resumed
 * by the next connection to the same host. */
typedef struct {
    const char *ca_file;   /* PEM bundle of CAs trusted instead of the system store */
    const char *ca_path;   /* directory of hashed CA certificates, instead of the store */
    const char *cert_file; /* client certificate (PEM, chain allowed) */
    const char *key_file;  /* its private key (PEM); NULL = in cert_file */
    int insecure;          /* 1 = do not verify the server at all (aiohttp ssl=False) */
} loom_client_tls;

typedef struct {
    const char *name;
    const char *value;
} loom_client_header;

/* Client settings. Zero-initialise and set what you need: every 0 means the
 * default given in the comment. The strings are copied by loom_client_new. */
typedef struct {
    size_t limit;             /* pooled connections in total (100); SIZE_MAX = no limit */
    size_t limit_per_host;    /* per (host, port) (0 = no per-host limit) */
    double keepalive_timeout; /* idle pooled connection lifetime (15 s) */
    double dns_ttl;           /* DNS cache entry lifetime (10 s); < 0 = no caching */
    double total_timeout;     /* whole request (300 s); < 0 = none */
    double connect_timeout;   /* TCP connect, incl. waiting for a pool slot (30 s); < 0 = none */
    double read_timeout;      /* between two reads of the response (none); < 0 = none */
    const loom_client_header *headers; /* sent with every request (copied) */
    size_t nheaders;
    int raise_for_status;   /* 1 = status >= 400 fails with LOOM_CLIENT_E_STATUS (0 = off) */
    int max_redirects;      /* (10); < 0 = do not follow redirects */
    size_t max_body_size;   /* buffered body cap, also the decoded size cap (64 MiB) */
    int no_decompress;      /* 1 = hand compressed bodies over undecoded */
    const char *user_agent; /* ("loom/VERSION") */
    /* HTTPS (see loom_client_tls); strings copied. */
    loom_client_tls tls;
    /* Cookies kept and sent (see loom_cookie_jar); not owned; NULL = none. */
    loom_cookie_jar *cookie_jar;
    /* An HTTP proxy for every request: "http://[user:password@]host[:port]"
     * (port 80 by default; user and password percent-decoded). http:// URLs
     * go to it in absolute form, https:// URLs through a CONNECT tunnel,
     * with Basic Proxy-Authorization when credentials are given. A bad
     * value fails each request with LOOM_CLIENT_E_INVALID_URL. */
    const char *proxy;
    /* "user:password" for the proxy, instead of the URL's. */
    const char *proxy_auth;
    /* 1 = when `proxy` is NULL, take proxies from the environment, as
     * aiohttp's trust_env: http_proxy for http:// and https_proxy for
     * https:// URLs (upper-case names too), except for hosts in no_proxy (a
     * comma-separated list of host names, domain suffixes such as
     * ".example.com" or "example.com", IP addresses, optional ":port", or
     * "*" for all). Read once, when the first request needs them. */
    int trust_env;
    /* 1 = follow redirects from https:// to http:// (refused by default
     * with LOOM_CLIENT_E_DOWNGRADE). */
    int allow_downgrade;
} loom_client_config;

typedef struct loom_client_response loom_client_response;

/* Streaming: called with each piece of the (decoded) body as it arrives,
 * instead of buffering it. `resp` has the status and headers already. `data`
 * is valid during the call only. Return 0 to go on, non-zero to stop: the
 * request then completes with LOOM_CLIENT_E_CANCELLED. */
typedef int (*loom_client_chunk_cb)(loom_client_response *resp, const char *data, size_t len,
                                    void *ud);

/* Per-request options. Zero-initialise; every 0/NULL means "the client's
 * setting" or "none". One body form is sent: the first set of body, json,
 * text and form. Everything is copied: the pointers need only stay valid
 * during loom_client_send() (but a cookie jar must outlive the request).
 * POST, PUT and PATCH always carry a Content-Length (0 without a body).
 * Host, User-Agent, Accept and Accept-Encoding (gzip, deflate, and br and
 * zstd when the build has them: see loom_client_accept_encoding()) are
 * added unless given; Cookie gets the jar's cookies for the URL, after the
 * caller's own Cookie header if any.
 *
 * Redirects: to another origin (scheme, host, port), the caller's
 * Authorization, Cookie and Proxy-Authorization headers are dropped (the
 * jar's cookies for the new URL are still sent); https:// to http:// is
 * refused unless allow_downgrade. */
typedef struct {
    const loom_client_header *headers; /* added to (and overriding, by name) the client's */
    size_t nheaders;
    const loom_client_header *params; /* query parameters, percent-encoded and appended */
    size_t nparams;
    const void *body;               /* raw bytes ... */
    size_t body_len;                /* ... of this length */
    const char *content_type;       /* for `body` (default application/octet-stream) */
    const char *text;               /* text/plain; charset=utf-8 */
    const char *json;               /* JSON text, sent as application/json */
    const loom_client_header *form; /* application/x-www-form-urlencoded */
    size_t nform;
    double total_timeout;          /* 0 = client's; < 0 = none */
    double connect_timeout;        /* 0 = client's; < 0 = none */
    double read_timeout;           /* 0 = client's; < 0 = none */
    int raise_for_status;          /* 0 = client's, 1 = on, -1 = off */
    int max_redirects;             /* 0 = client's; < 0 = do not follow redirects */
    loom_client_chunk_cb on_chunk; /* stream the body instead of buffering it */
    void *chunk_ud;
    const loom_client_tls *tls;  /* HTTPS settings for this request (NULL = client's) */
    loom_cookie_jar *cookie_jar; /* the jar for this request (NULL = client's) */
    const char *proxy;           /* as loom_client_config.proxy; "" = no proxy */
    const char *proxy_auth;      /* "user:password" for that proxy */
    int allow_downgrade;         /* 0 = client's, 1 = allow, -1 = refuse */
    int trust_env;               /* 0 = client's, 1 = use the proxy environment, -1 = not */
} loom_client_opts;

/* The Accept-Encoding value sent by default: "gzip, deflate" and ", br",
 * ", zstd" when this build decodes them. A static string. */
const char *loom_client_accept_encoding(void);

/* ---- the client ----------------------------------------------------------- */

typedef struct loom_client loom_client;
typedef struct loom_client_request loom_client_request;

/* Called once when a request completes, successfully or not, on the loop's
 * thread. The callee owns `resp` (never NULL) and frees it with
 * loom_client_response_free(); loom_client_response_error(resp) tells
 * whether it failed. */
typedef void (*loom_client_done_cb)(loom_client_response *resp, void *ud);

/* Creates a client on `loop` (which must outlive it). `cfg` may be NULL for
 * the defaults; it is copied. Returns NULL when out of memory. */
loom_client *loom_client_new(uv_loop_t *loop, const loom_client_config *cfg);

/* Closes the client: every pending request completes with
 * LOOM_CLIENT_E_CANCELLED (its callback runs during this call), pooled
 * connections are closed, and the memory is freed once libuv has closed the
 * handles, so the loop must run again afterwards (uv_run returns when done).
 * `client` is invalid after the call. */
void loom_client_close(loom_client *client);

/* Starts `method` (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or any other
 * token) on `url` (http[s]://host[:port][/path][?query]). `opts` may be NULL.
 * Every failure, an invalid URL included, is reported through `cb`, which
 * never runs before this function returns. Returns a handle valid until `cb`
 * starts or loom_client_cancel() is called; NULL (and `cb` never runs) when
 * out of memory, when `client`, `method`, `url` or `cb` is NULL, when the
 * client is closing, when `method` is not an HTTP token, or when a header name
 * or value is malformed (CR or LF anywhere, ':' in a name). */
loom_client_request *loom_client_send(loom_client *client, const char *method, const char *url,
                                      const loom_client_opts *opts, loom_client_done_cb cb,
                                      void *ud);

/* Cancels a pending request: its callback will never run, its connection (if
 * any) is closed, and the handle is invalid afterwards. Must not be called
 * once the callback has started (the handle is gone then). */
void loom_client_cancel(loom_client_request *req);

/* Number of requests started and not yet completed or cancelled. */
size_t loom_client_pending(const loom_client *client);

/* ---- the blocking call ---------------------------------------------------- */

/* Runs one request to completion on a private loop with a private client
 * (configured by `cfg`, may be NULL) and returns its error code (0 or
 * LOOM_CLIENT_E_*). *out receives the response, to be freed with
 * loom_client_response_free(), also when the request failed (it then has the
 * error message); *out is NULL only on LOOM_CLIENT_E_NOMEM. Blocks the calling
 * thread; never call it from a loop callback. */
int loom_client_fetch_sync(const char *method, const char *url, const loom_client_opts *opts,
                           const loom_client_config *cfg, loom_client_response **out);

/* ---- responses ------------------------------------------------------------ */

/* 0 or the LOOM_CLIENT_E_* code the request failed with. */
int loom_client_response_error(const loom_client_response *resp);
/* The error message (names the URL), or "" when the request succeeded.
 * Valid until the response is freed, like every string below. */
const char *loom_client_response_message(const loom_client_response *resp);
/* The status code, or 0 when no response head was received. */
int loom_client_response_status(const loom_client_response *resp);
/* The reason phrase as sent ("" when none). */
const char *loom_client_response_reason(const loom_client_response *resp);
/* The URL requested first, and the URL of the final response (after redirects). */
const char *loom_client_response_request_url(const loom_client_response *resp);
const char *loom_client_response_url(const loom_client_response *resp);
/* Number of header lines, and the i-th one's name and value (0 <= i < count). */
size_t loom_client_response_header_count(const loom_client_response *resp);
void loom_client_response_header_at(const loom_client_response *resp, size_t i, const char **name,
                                    const char **value);
/* The value of the first header named `name` (case-insensitive), or NULL. */
const char *loom_client_response_header(const loom_client_response *resp, const char *name);
/* The buffered body (decoded when it was gzip, deflate, br or zstd), NUL-terminated, and its
 * length in *len (may be NULL). Empty when streamed or failed. */
const char *loom_client_response_body(const loom_client_response *resp, size_t *len);
/* Parses the body as JSON. Returns a new reference (json_decref it), or NULL
 * when the body is not JSON; then *err (may be NULL) gets jansson's message. */
json_t *loom_client_response_json(const loom_client_response *resp, json_error_t *err);
/* Redirects followed before the final response: their count, and the i-th
 * one's URL and status. */
size_t loom_client_response_history_count(const loom_client_response *resp);
const char *loom_client_response_history_url(const loom_client_response *resp, size_t i);
int loom_client_response_history_status(const loom_client_response *resp, size_t i);
/* 1 when the final response came over TLS, with the protocol version
 * ("TLSv1.3"; static) in *version and in *resumed whether its connection's
 * handshake resumed an earlier session (both may be NULL). Else 0. */
int loom_client_response_tls(const loom_client_response *resp, const char **version, int *resumed);
/* Seconds from loom_client_send() to completion. */
double loom_client_response_elapsed(const loom_client_response *resp);
/* Frees the response and everything it returned. NULL is allowed. */
void loom_client_response_free(loom_client_response *resp);

/* ---- WebSocket ------------------------------------------------------------
 * loom_client_ws_connect opens a WebSocket (RFC 6455) on the client's loop,
 * with the same message API as the server's (loom.h, loom_ws_*): whole
 * messages in, whole messages out, ping, close with a code and a reason,
 * a heartbeat and permessage-deflate (RFC 7692). Like the server, it checks
 * what the peer sends strictly and closes with the RFC's code (1002, 1007,
 * 1009) when the peer breaks a rule. ws:// and wss:// URLs: wss:// is
 * verified with the client's TLS settings (loom_client_config.tls), and the
 * client's proxy (loom_client_config.proxy, or the environment with
 * trust_env) is used for both, through a CONNECT tunnel. The connection is
 * the WebSocket's own, never a pooled one. */

typedef struct loom_client_ws loom_client_ws;

/* Message types (the same values as loom.h's LOOM_WS_*). */
#define LOOM_CLIENT_WS_TEXT 1
#define LOOM_CLIENT_WS_BINARY 2
#define LOOM_CLIENT_WS_PING 9
#define LOOM_CLIENT_WS_PONG 10

/* Results of the calls below (the same values as loom.h's LOOM_E*). */
#define LOOM_CLIENT_WS_EINVAL (-1) /* a bad argument (text not UTF-8, a code one may not send) */
#define LOOM_CLIENT_WS_ENOMEM (-2)
#define LOOM_CLIENT_WS_ESTATE (-3) /* not open: connecting, closing or closed */
#define LOOM_CLIENT_WS_ELIMIT (-6) /* the send queue is over send_queue_limit: nothing sent */

/* Options of loom_client_ws_connect. Zero-initialise; every 0 means the
 * default in the comment. The callbacks run on the loop's thread, never from
 * inside a loom_client_ws_* call. */
typedef struct {
    const loom_client_header *headers; /* extra request headers (copied) */
    size_t nheaders;
    const char *protocols;   /* subprotocols offered, comma-separated (none) */
    const char *origin;      /* an Origin header (none) */
    int deflate;             /* 1 = offer permessage-deflate (off) */
    int deflate_takeover;    /* 1 = keep compression context between messages (each side
                                resets by default: less memory, a little less compression) */
    double timeout;          /* DNS, connect and handshake together (30 s) */
    double heartbeat;        /* ping after this many seconds without a byte from the server,
                                and give up when no pong comes within half of it (none) */
    double close_timeout;    /* wait for the server's close frame, then its FIN (5 s) */
    size_t max_msg_size;     /* larger messages from the server close with 1009 (4 MiB) */
    size_t send_queue_limit; /* bytes queued past which a send fails (4 MiB) */
    /* The handshake succeeded. */
    void (*on_open)(loom_client_ws *ws, void *ud);
    /* A whole message (text is valid UTF-8); `data` is valid during the call only. */
    void (*on_message)(loom_client_ws *ws, int type, const void *data, size_t len, void *ud);
    /* Something failed: `code` is a negative LOOM_CLIENT_E_* when the
     * connection could not be opened (the message names the URL), or the
     * close code we sent when the server broke the protocol (1002, 1007,
     * 1009), or 1006 when a heartbeat ping got no answer. on_close follows. */
    void (*on_error)(loom_client_ws *ws, int code, const char *message, void *ud);
    /* Once, at the end, also after a failure: the server's close code and
     * reason (1005 when its close frame had none; 1006 when the connection
     * was lost or never opened). `ws` is freed when this returns. */
    void (*on_close)(loom_client_ws *ws, int code, const char *reason, size_t len, void *ud);
    /* The send queue emptied after a send failed with LOOM_CLIENT_WS_ELIMIT. */
    void (*on_drain)(loom_client_ws *ws, void *ud);
    void *ud;
} loom_client_ws_opts;

/* Starts connecting to `url` (ws://host[:port]/path). Returns a handle
 * valid until on_close returns, or NULL (no callback runs) for a bad URL or
 * option or when out of memory; then *err (may be NULL) holds the reason
 * (errlen bytes). */
loom_client_ws *loom_client_ws_connect(loom_client *client, const char *url,
                                       const loom_client_ws_opts *opts, char *err, size_t errlen);
/* Sends a whole message (LOOM_CLIENT_WS_TEXT, which must be UTF-8, or _BINARY),
 * or a ping or pong (at most 125 bytes). Returns 0 or LOOM_CLIENT_WS_E*. */
int loom_client_ws_send(loom_client_ws *ws, int type, const void *data, size_t len);
/* Starts the close handshake: `code` 1000 or 3000-4999 (or another the RFC
 * lets an endpoint send; 0 = no code) and a reason of at most 123 bytes
 * (NULL = none). on_close follows when the server answered (or close_timeout
 * passed). Before the handshake is done, it gives up the connection
 * (on_error with LOOM_CLIENT_E_CANCELLED, then on_close 1006). */
int loom_client_ws_close(loom_client_ws *ws, int code, const char *reason);
/* The subprotocol the server chose, or NULL. */
const char *loom_client_ws_protocol(const loom_client_ws *ws);
/* Bytes queued and not yet taken by the socket. */
size_t loom_client_ws_queued(const loom_client_ws *ws);
/* Whether permessage-deflate is in use on this connection. */
int loom_client_ws_deflate(const loom_client_ws *ws);

#ifdef __cplusplus
}
#endif

#endif
