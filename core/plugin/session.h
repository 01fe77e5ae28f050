/* Sessions, inside the core: what session.c (config, cookie, load, the
 * handler API) and session_save.c (the save: merge, compare-and-set, retry)
 * share. See sdk/include/loom/loom.h for the semantics and docs/decisions.md
 * for why they are built this way. */
#ifndef LOOM_PLUGIN_SESSION_H
#define LOOM_PLUGIN_SESSION_H

#include "plugin/host.h"

#define LOOM__SESS_ID_BYTES 16
#define LOOM__SESS_ID_HEX (LOOM__SESS_ID_BYTES * 2)

typedef struct {
    int configured; /* 1 ok, -1 bad config (logged once), -2 off */
    unsigned char *keys[8];
    size_t key_len[8];
    size_t nkeys;
    char store_name[64];
    char cookie_name[64];
    int secure, http_only;
    char same_site[8];
    int64_t max_age, idle, absolute;
    size_t max_size;
    /* the registered store */
    loom_plugin *owner;
    loom_session_store store;
    int versioned; /* the store has load_versioned, save_if and destroy_if */
    char *name;
    /* store failures, logged at most once a second for each LOOM__SESS_OP_* */
    int64_t fail_logged_at[3];
    uint64_t fail_quiet[3];
    /* Sessions of this worker whose compare-and-set on an ID is running or
     * waiting for another one on the same ID, in arrival order
     * (session_save.c). */
    struct loom__sess *locks;
} loom__sess_host;

typedef struct loom__sess {
    loom_req *req;
    char id[LOOM__SESS_ID_HEX + 1];     /* "" until saved for the first time */
    char old_id[LOOM__SESS_ID_HEX + 1]; /* to delete after regenerate/invalidate */
    int64_t issued, expires;
    json_t *data;         /* what the handler sees and changes */
    json_t *base;         /* the stored state `data` was derived from; NULL: {} */
    uint64_t version;     /* base's version under id (0: not stored) */
    uint64_t old_version; /* the version of old_id's record, for destroy_if */
    uint8_t loaded, loading, is_new, dirty, regenerated, invalidated, discard_old;
    uint8_t refresh;     /* extend the expiry (touch) even when nothing changed */
    uint8_t saving;      /* a store write is in flight */
    uint8_t finished;    /* the final save (before the response) is done */
    uint8_t waiting;     /* the response is done while the load was in flight */
    uint8_t unavailable; /* the store failed to load it: no session */
    uint8_t explicit_;   /* the save in flight is a loom_session_save */
    uint8_t cookie_due;  /* a new cookie must go out */
    uint8_t attempts;    /* compare-and-set rounds of the save in flight */
    int32_t failed;      /* the last save's error, until one succeeds */
    char sent_id[LOOM__SESS_ID_HEX + 1];
    int64_t sent_expires;
    char conflict_key[64];
    char lock_id[LOOM__SESS_ID_HEX + 1]; /* the ID of its entry in locks */
    uint8_t lock_state;                  /* 0 none, 1 holds lock_id, 2 waits for it */
    struct loom__sess *lock_next;
    loom_session_fn fn; /* loom_session_load's callback */
    void *ud;
    loom_session_fn save_fn; /* loom_session_save's callback */
    void *save_ud;
} loom__sess;

/* The worker's session host, or NULL. */
loom__sess_host *loom__sess_host_of(loom_req *r);
/* The session of a request, or NULL. */
loom__sess *loom__sess_of(loom_req *r);
/* Makes a new random ID. Returns 0 or -1. */
int loom__sess_new_id(char out[LOOM__SESS_ID_HEX + 1]);
/* When the session ends if it is written now (idle and absolute timeouts). */
int64_t loom__sess_expiry(const loom__sess_host *sh, const loom__sess *s, int64_t now);
/* Adds the Set-Cookie for the session (clear: one that expires it). */
void loom__sess_set_cookie(loom_req *r, const loom__sess_host *sh, loom__sess *s, int clear);
/* Logs a store failure of an operation (LOOM__SESS_OP_*): at most one line a
 * second for each, then a count. */
enum { LOOM__SESS_OP_LOAD, LOOM__SESS_OP_SAVE, LOOM__SESS_OP_DELETE };
void loom__sess_log_failure(loom__sess_host *sh, int op, int32_t code, loom_req *r);
/* Leaves the queue of compare-and-sets (a request freed in it). */
void loom__sess_drop_lock(loom__sess *s);
/* A name for a LOOM_E* code. */
const char *loom__sess_errname(int32_t code);

#endif
