/* Prepared statements: one id per distinct SQL text and parameter types,
 * the same on every connection of the pool (each prepares it once, as
 * "loom_<id>"). Up to `statements` of them; beyond, queries go unnamed. */
#include "pg_int.h"

#include <stdlib.h>
#include <string.h>

uint32_t pg__stmt_id(pg_pool *p, const char *sql, uint32_t sql_len, const char *types,
                     uint32_t npar)
{
    if (!p->nslots) return UINT32_MAX;
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < sql_len; i++) h = (h ^ (uint8_t)sql[i]) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (uint32_t i = 0; i < npar; i++) h = (h ^ (uint8_t)types[i]) * 16777619u;
    size_t klen = (size_t)sql_len + 1 + npar;
    uint32_t mask = p->nslots - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t s = p->slots[i];
        if (s == 0) {
            if (p->nstmts >= p->max_stmts) return UINT32_MAX; /* not cached: unnamed */
            char *key = malloc(klen);
            if (!key) return UINT32_MAX;
            memcpy(key, sql, sql_len);
            key[sql_len] = '\0';
            memcpy(key + sql_len + 1, types, npar);
            pg_stmt *st = &p->stmts[p->nstmts];
            *st = (pg_stmt){key, klen, h, npar};
            p->slots[i] = ++p->nstmts;
            return p->nstmts - 1;
        }
        const pg_stmt *st = &p->stmts[s - 1];
        if (st->hash == h && st->klen == klen && memcmp(st->key, sql, sql_len) == 0 &&
            st->key[sql_len] == '\0' && memcmp(st->key + sql_len + 1, types, npar) == 0)
            return s - 1;
    }
}
