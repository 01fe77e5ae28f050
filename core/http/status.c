#include "http/status.h"

#define STATUSES(X)                                                                                \
    X(100, "Continue")                                                                             \
    X(101, "Switching Protocols")                                                                  \
    X(200, "OK")                                                                                   \
    X(201, "Created")                                                                              \
    X(202, "Accepted")                                                                             \
    X(204, "No Content")                                                                           \
    X(206, "Partial Content")                                                                      \
    X(301, "Moved Permanently")                                                                    \
    X(302, "Found")                                                                                \
    X(303, "See Other")                                                                            \
    X(304, "Not Modified")                                                                         \
    X(307, "Temporary Redirect")                                                                   \
    X(308, "Permanent Redirect")                                                                   \
    X(400, "Bad Request")                                                                          \
    X(401, "Unauthorized")                                                                         \
    X(403, "Forbidden")                                                                            \
    X(404, "Not Found")                                                                            \
    X(405, "Method Not Allowed")                                                                   \
    X(406, "Not Acceptable")                                                                       \
    X(408, "Request Timeout")                                                                      \
    X(409, "Conflict")                                                                             \
    X(410, "Gone")                                                                                 \
    X(411, "Length Required")                                                                      \
    X(412, "Precondition Failed")                                                                  \
    X(413, "Request Entity Too Large")                                                             \
    X(414, "Request-URI Too Long")                                                                 \
    X(415, "Unsupported Media Type")                                                               \
    X(416, "Range Not Satisfiable")                                                                \
    X(417, "Expectation Failed")                                                                   \
    X(422, "Unprocessable Entity")                                                                 \
    X(429, "Too Many Requests")                                                                    \
    X(431, "Request Header Fields Too Large")                                                      \
    X(500, "Internal Server Error")                                                                \
    X(501, "Not Implemented")                                                                      \
    X(502, "Bad Gateway")                                                                          \
    X(503, "Service Unavailable")                                                                  \
    X(504, "Gateway Timeout")                                                                      \
    X(505, "HTTP Version Not Supported")

const char *loom__status_reason(int status)
{
    switch (status) {
#define REASON(code, text)                                                                         \
    case code:                                                                                     \
        return text;
        STATUSES(REASON)
#undef REASON
    default:
        return status < 200   ? "Informational"
               : status < 300 ? "Success"
               : status < 400 ? "Redirection"
               : status < 500 ? "Client Error"
                              : "Server Error";
    }
}

enum {
#define INDEX(code, text) S_##code,
    STATUSES(INDEX)
#undef INDEX
};

/* Padded to LOOM__STATUS_LINE_READ bytes (a longer line does not compile),
 * so the caller copies a fixed size. */
static const struct {
    char text[LOOM__STATUS_LINE_READ];
    unsigned char len;
} lines[] = {
#define LINE(code, text)                                                                           \
    {"HTTP/1.1 " #code " " text "\r\n", sizeof("HTTP/1.1 " #code " " text "\r\n") - 1},
    STATUSES(LINE)
#undef LINE
};

const char *loom__status_line(int status, size_t *len)
{
    int i;
    switch (status) {
#define CASE(code, text)                                                                           \
    case code:                                                                                     \
        i = S_##code;                                                                              \
        break;
        STATUSES(CASE)
#undef CASE
    default:
        return NULL;
    }
    *len = lines[i].len;
    return lines[i].text;
}
