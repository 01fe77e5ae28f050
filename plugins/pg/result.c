/* Results, read during a batch's callback: PostgreSQL's text output,
 * converted to typed values on request. */
#include "pg_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define B(r) ((const loom_pg_batch *)(r))

int32_t pg__res_error(const loom_pg_result *r)
{
    return B(r)->err;
}

const char *pg__res_sqlstate(const loom_pg_result *r)
{
    return B(r)->sqlstate;
}

const char *pg__res_message(const loom_pg_result *r)
{
    return B(r)->msg ? B(r)->msg : "";
}

int32_t pg__res_failed_query(const loom_pg_result *r)
{
    return B(r)->err ? B(r)->failed_q : -1;
}

uint32_t pg__res_nqueries(const loom_pg_result *r)
{
    return B(r)->nq;
}

static const PGresult *res_of(const loom_pg_result *r, uint32_t q)
{
    return q < B(r)->nq ? B(r)->q[q].res : NULL;
}

uint32_t pg__res_nrows(const loom_pg_result *r, uint32_t q)
{
    const PGresult *x = res_of(r, q);
    return x ? (uint32_t)PQntuples(x) : 0;
}

uint32_t pg__res_ncols(const loom_pg_result *r, uint32_t q)
{
    const PGresult *x = res_of(r, q);
    return x ? (uint32_t)PQnfields(x) : 0;
}

const char *pg__res_col_name(const loom_pg_result *r, uint32_t q, uint32_t col)
{
    const PGresult *x = res_of(r, q);
    return x && col < (uint32_t)PQnfields(x) ? PQfname(x, (int)col) : NULL;
}

uint32_t pg__res_col_type(const loom_pg_result *r, uint32_t q, uint32_t col)
{
    const PGresult *x = res_of(r, q);
    return x && col < (uint32_t)PQnfields(x) ? (uint32_t)PQftype(x, (int)col) : 0;
}

static const char *value(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                         size_t *len)
{
    const PGresult *x = res_of(r, q);
    if (!x || row >= (uint32_t)PQntuples(x) || col >= (uint32_t)PQnfields(x) ||
        PQgetisnull(x, (int)row, (int)col))
        return NULL;
    if (len) *len = (size_t)PQgetlength(x, (int)row, (int)col);
    return PQgetvalue(x, (int)row, (int)col);
}

int32_t pg__res_is_null(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col)
{
    return value(r, q, row, col, NULL) == NULL;
}

const char *pg__res_text(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                         size_t *len)
{
    return value(r, q, row, col, len);
}

int32_t pg__res_get_int(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                        int64_t *out)
{
    const char *s = value(r, q, row, col, NULL);
    if (!s) return LOOM_ENOTFOUND;
    /* The hot path of every query result: parse by hand. */
    const char *p = s;
    int neg = *p == '-';
    if (neg || *p == '+') p++;
    if (!*p) return LOOM_EINVAL;
    uint64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return LOOM_EINVAL;
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return LOOM_EINVAL;
        v = v * 10 + d;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX) return LOOM_EINVAL;
    if (out) *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return LOOM_OK;
}

int32_t pg__res_get_float(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                          double *out)
{
    const char *s = value(r, q, row, col, NULL);
    if (!s) return LOOM_ENOTFOUND;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE) return LOOM_EINVAL;
    if (out) *out = v;
    return LOOM_OK;
}

int32_t pg__res_get_bool(const loom_pg_result *r, uint32_t q, uint32_t row, uint32_t col,
                         int32_t *out)
{
    const char *s = value(r, q, row, col, NULL);
    if (!s) return LOOM_ENOTFOUND;
    if ((s[0] != 't' && s[0] != 'f') || s[1]) return LOOM_EINVAL;
    if (out) *out = s[0] == 't';
    return LOOM_OK;
}

int64_t pg__res_affected(const loom_pg_result *r, uint32_t q)
{
    const PGresult *x = res_of(r, q);
    const char *s = x ? PQcmdTuples((PGresult *)x) : "";
    if (!*s) return -1;
    return strtoll(s, NULL, 10);
}
