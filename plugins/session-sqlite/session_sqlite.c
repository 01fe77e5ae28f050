/* session-sqlite: the embedded default session store. One SQLite file shared
 * by every worker (WAL mode, a busy timeout), so sessions survive a restart
 * and any worker can serve any client. Every query runs on the thread pool
 * (loom_work_queue); expired rows are swept there too, on a timer.
 * Config: {"db": "sessions.db", "sweep_interval": 300}. */
#define _POSIX_C_SOURCE 200809L
#include <loom/loom.h>
#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { OP_LOAD, OP_SAVE, OP_DESTROY, OP_TOUCH, OP_SWEEP };

static loom_plugin *me;
static sqlite3 *db;
static loom_timer *sweeper;

typedef struct {
    int op;
    char id[72];
    char *data;
    size_t len;
    int64_t expires;
    int32_t status;
    loom_session_done_fn done;
    void *ctx;
} job;

static void run(void *ud)
{
    job *j = ud;
    static const char *sql[] = {
        "SELECT data FROM sessions WHERE id = ?1 AND expires > ?3",
        "INSERT INTO sessions(id, data, expires) VALUES(?1, ?2, ?3) ON CONFLICT(id) DO UPDATE "
        "SET data = excluded.data, expires = excluded.expires",
        "DELETE FROM sessions WHERE id = ?1",
        "UPDATE sessions SET expires = ?3 WHERE id = ?1",
        "DELETE FROM sessions WHERE expires <= ?3",
    };
    sqlite3_stmt *st = NULL;
    j->status = LOOM_EINVAL;
    if (sqlite3_prepare_v2(db, sql[j->op], -1, &st, NULL) != SQLITE_OK) return;
    if (j->op != OP_SWEEP) sqlite3_bind_text(st, 1, j->id, -1, SQLITE_STATIC);
    if (j->op == OP_SAVE) sqlite3_bind_text(st, 2, j->data, (int)j->len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3,
                       j->op == OP_LOAD || j->op == OP_SWEEP ? (int64_t)time(NULL) : j->expires);
    int rc = sqlite3_step(st);
    if (j->op == OP_LOAD) {
        if (rc == SQLITE_ROW) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            int n = sqlite3_column_bytes(st, 0);
            free(j->data);
            j->data = malloc((size_t)n + 1);
            if (j->data && t) {
                memcpy(j->data, t, (size_t)n);
                j->len = (size_t)n;
                j->status = 0;
            } else {
                j->status = LOOM_ENOMEM;
            }
        } else {
            j->status = rc == SQLITE_DONE ? LOOM_ENOTFOUND : LOOM_EINVAL;
        }
    } else if (rc == SQLITE_DONE) {
        j->status = j->op == OP_TOUCH && sqlite3_changes(db) == 0 ? LOOM_ENOTFOUND : 0;
    }
    sqlite3_finalize(st);
}

static void done(void *ud, int32_t cancelled)
{
    job *j = ud;
    if (j->done) {
        if (cancelled) j->status = LOOM_EGONE;
        j->done(j->ctx, j->status, j->status == 0 ? j->data : NULL, j->status == 0 ? j->len : 0);
    }
    free(j->data);
    free(j);
}

static int32_t queue(int op, const char *id, const char *data, size_t len, int64_t expires,
                     loom_session_done_fn fn, void *ctx)
{
    job *j = calloc(1, sizeof *j);
    if (!j) return LOOM_ENOMEM;
    j->op = op;
    if (id) snprintf(j->id, sizeof j->id, "%s", id);
    if (data) {
        j->data = malloc(len ? len : 1);
        if (!j->data) {
            free(j);
            return LOOM_ENOMEM;
        }
        memcpy(j->data, data, len);
        j->len = len;
    }
    j->expires = expires;
    j->done = fn;
    j->ctx = ctx;
    int32_t rc = loom_work_queue(me, run, done, j);
    if (rc) {
        free(j->data);
        free(j);
    }
    return rc;
}

static int32_t st_load(void *ud, const char *id, loom_session_done_fn fn, void *ctx)
{
    (void)ud;
    return queue(OP_LOAD, id, NULL, 0, 0, fn, ctx);
}

static int32_t st_save(void *ud, const char *id, const char *data, size_t len, int64_t expires,
                       loom_session_done_fn fn, void *ctx)
{
    (void)ud;
    return queue(OP_SAVE, id, data, len, expires, fn, ctx);
}

static int32_t st_destroy(void *ud, const char *id, loom_session_done_fn fn, void *ctx)
{
    (void)ud;
    return queue(OP_DESTROY, id, NULL, 0, 0, fn, ctx);
}

static int32_t st_touch(void *ud, const char *id, int64_t expires, loom_session_done_fn fn,
                        void *ctx)
{
    (void)ud;
    return queue(OP_TOUCH, id, NULL, 0, expires, fn, ctx);
}

static void sweep(loom_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    queue(OP_SWEEP, NULL, NULL, 0, 0, NULL, NULL);
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    const loom_json *c = loom_config(self);
    static const char *const keys[] = {"db", "sweep_interval", NULL};
    if (loom_config_check_keys(self, c, NULL, keys)) return LOOM_EINVAL;
    const loom_json *dj = c ? loom_json_get(c, "db") : NULL;
    const loom_json *sj = c ? loom_json_get(c, "sweep_interval") : NULL;
    const char *path = dj ? loom_json_string(dj, NULL) : "sessions.db";
    int64_t every = sj ? loom_json_integer(sj) : 300;
    if (!path || !*path || every <= 0) {
        loom_log(self, LOOM_LOG_ERROR,
                 "session-sqlite: \"db\" must be a file name and \"sweep_interval\" > 0");
        return LOOM_EINVAL;
    }
    loom_session_store st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    st.name = "sqlite";
    st.load = st_load;
    st.save = st_save;
    st.destroy = st_destroy;
    st.touch = st_touch;
    int32_t rc = loom_session_store_register(self, &st);
    if (rc == LOOM_ESTATE || rc == LOOM_ENOTFOUND) return 0; /* not in use: stay idle */
    if (rc) return rc;
    if (sqlite3_open_v2(path, &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "session-sqlite: cannot open %s: %s", path, sqlite3_errmsg(db));
        loom_log(self, LOOM_LOG_ERROR, msg);
        sqlite3_close(db);
        db = NULL;
        return LOOM_EINVAL;
    }
    sqlite3_busy_timeout(db, 5000);
    char *err = NULL;
    if (sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     "CREATE TABLE IF NOT EXISTS sessions(id TEXT PRIMARY KEY, data TEXT NOT NULL,"
                     " expires INTEGER NOT NULL);"
                     "CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires);",
                     NULL, NULL, &err) != SQLITE_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "session-sqlite: %s: %s", path, err ? err : "?");
        loom_log(self, LOOM_LOG_ERROR, msg);
        sqlite3_free(err);
        sqlite3_close(db);
        db = NULL;
        return LOOM_EINVAL;
    }
    sweeper = loom_timer_start(self, (uint64_t)every * 1000, (uint64_t)every * 1000, sweep, NULL);
    sweep(NULL, NULL);
    return 0;
}

static void fini(loom_plugin *self)
{
    (void)self;
    if (!db) return;
    /* close_v2: a statement still running on the pool keeps the connection
     * alive until it is finalized. */
    sqlite3_close_v2(db);
}

LOOM_PLUGIN("session-sqlite", "1.0.0", init, fini);
