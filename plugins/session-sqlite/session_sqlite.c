/* session-sqlite: the embedded default session store. One SQLite file shared
 * by every worker (WAL mode, a busy timeout), so sessions survive a restart
 * and any worker can serve any client. Every query runs on the thread pool
 * (loom_work_queue); expired rows are swept there too, on a timer.
 *
 * Each row has a version for the host's compare-and-set saves. Every
 * operation is one statement (UPDATE/INSERT/DELETE ... RETURNING), hence one
 * atomic step for every process that shares the file. The pool threads share
 * one connection, and a job holds its mutex from prepare to finalize: a
 * statement another thread left open would put ours inside its transaction,
 * where SQLite answers SQLITE_BUSY at once instead of waiting for the other
 * process (the busy timeout only works between transactions). A compare that
 * fails reads the row as it is now, for the host to merge.
 * Config: {"db": "sessions.db", "sweep_interval": 300}. */
#define _POSIX_C_SOURCE 200809L
#include <loom/loom.h>
#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { OP_LOAD, OP_SAVE_NEW, OP_SAVE_IF, OP_DESTROY_IF, OP_DESTROY, OP_TOUCH, OP_SWEEP, OP_READ };

static loom_plugin *me;
static sqlite3 *db;
static loom_timer *sweeper;

typedef struct {
    int op;
    char id[72];
    char *data;
    size_t len;
    int64_t expires;
    uint64_t version;
    int32_t status;
    int sqlite_rc; /* the SQLite error, for the log line */
    loom_session_vdone_fn vdone;
    loom_session_done_fn done;
    void *ctx;
} job;

/* ?1 id, ?2 data, ?3 expires, ?4 now, ?5 version. A statement that returns
 * a row did its work; one that returns none found the compare false. */
static const char *const sql[] = {
    [OP_LOAD] = "SELECT data, version FROM sessions WHERE id = ?1 AND expires > ?4",
    [OP_SAVE_NEW] = "INSERT INTO sessions(id, data, expires, version) VALUES(?1, ?2, ?3, 1) "
                    "ON CONFLICT(id) DO UPDATE SET data = excluded.data, expires = "
                    "excluded.expires, version = sessions.version + 1 "
                    "WHERE sessions.expires <= ?4 RETURNING version",
    [OP_SAVE_IF] = "UPDATE sessions SET data = ?2, expires = ?3, version = version + 1 "
                   "WHERE id = ?1 AND version = ?5 AND expires > ?4 RETURNING version",
    [OP_DESTROY_IF] = "DELETE FROM sessions WHERE id = ?1 AND version = ?5 AND expires > ?4 "
                      "RETURNING 0",
    [OP_DESTROY] = "DELETE FROM sessions WHERE id = ?1",
    [OP_TOUCH] = "UPDATE sessions SET expires = ?3 WHERE id = ?1 AND expires > ?4 RETURNING 0",
    [OP_SWEEP] = "DELETE FROM sessions WHERE expires <= ?4",
    [OP_READ] = "SELECT data, version FROM sessions WHERE id = ?1 AND expires > ?4",
};

/* Runs one statement; *row is set when it returned a row, and for the
 * SELECTs the row is copied into the job. Returns the SQLite result. */
static int exec(job *j, int op, int *row)
{
    sqlite3_stmt *st = NULL;
    *row = 0;
    int rc = sqlite3_prepare_v2(db, sql[op], -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    sqlite3_bind_text(st, 1, j->id, -1, SQLITE_STATIC);
    if (j->data && (op == OP_SAVE_NEW || op == OP_SAVE_IF))
        sqlite3_bind_text(st, 2, j->data, (int)j->len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, j->expires);
    sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
    sqlite3_bind_int64(st, 5, (int64_t)j->version);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *row = 1;
        if (op == OP_LOAD || op == OP_READ) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            int n = sqlite3_column_bytes(st, 0);
            j->version = (uint64_t)sqlite3_column_int64(st, 1);
            free(j->data);
            j->data = t ? malloc((size_t)n + 1) : NULL;
            if (!j->data) {
                sqlite3_finalize(st);
                return SQLITE_NOMEM;
            }
            memcpy(j->data, t, (size_t)n);
            j->len = (size_t)n;
        } else if (op == OP_SAVE_NEW || op == OP_SAVE_IF) {
            j->version = (uint64_t)sqlite3_column_int64(st, 0);
        }
        rc = sqlite3_step(st); /* runs the statement to its end: then it is done */
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void run_locked(job *j);

static void run(void *ud)
{
    job *j = ud;
    sqlite3_mutex *m = sqlite3_db_mutex(db);
    sqlite3_mutex_enter(m);
    run_locked(j);
    sqlite3_mutex_leave(m);
}

static void run_locked(job *j)
{
    int row;
    j->sqlite_rc = exec(j, j->op, &row);
    if (j->sqlite_rc != SQLITE_OK) {
        j->status = LOOM_EUNAVAIL;
        return;
    }
    switch (j->op) {
    case OP_LOAD:
        j->status = row ? 0 : LOOM_ENOTFOUND;
        break;
    case OP_TOUCH:
        j->status = row ? 0 : LOOM_ENOTFOUND;
        break;
    case OP_SAVE_NEW:
    case OP_SAVE_IF:
    case OP_DESTROY_IF:
        if (row) {
            free(j->data);
            j->data = NULL;
            j->len = 0;
            if (j->op == OP_DESTROY_IF) j->version = 0;
            j->status = 0;
            break;
        }
        /* The compare failed: what is there now? */
        free(j->data);
        j->data = NULL;
        j->len = 0;
        j->sqlite_rc = exec(j, OP_READ, &row);
        if (j->sqlite_rc != SQLITE_OK) {
            j->status = LOOM_EUNAVAIL;
            break;
        }
        if (!row) j->version = 0;
        j->status = LOOM_ECONFLICT;
        break;
    default:
        j->status = 0;
    }
}

static void done(void *ud, int32_t cancelled)
{
    job *j = ud;
    if (cancelled) j->status = LOOM_EGONE;
    if (j->status == LOOM_EUNAVAIL && j->sqlite_rc != SQLITE_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, "session-sqlite: a query failed: %s",
                 sqlite3_errstr(j->sqlite_rc));
        loom_log(me, LOOM_LOG_ERROR, msg);
    }
    int with_data = j->status == 0 || j->status == LOOM_ECONFLICT;
    if (j->vdone)
        j->vdone(j->ctx, j->status, with_data ? j->data : NULL, with_data ? j->len : 0,
                 with_data ? j->version : 0);
    else if (j->done)
        j->done(j->ctx, j->status, NULL, 0);
    free(j->data);
    free(j);
}

static int32_t queue(int op, const char *id, const char *data, size_t len, int64_t expires,
                     uint64_t version, loom_session_vdone_fn vfn, loom_session_done_fn fn,
                     void *ctx)
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
    j->version = version;
    j->vdone = vfn;
    j->done = fn;
    j->ctx = ctx;
    int32_t rc = loom_work_queue(me, run, done, j);
    if (rc) {
        free(j->data);
        free(j);
    }
    return rc;
}

static int32_t st_load(void *ud, const char *id, loom_session_vdone_fn fn, void *ctx)
{
    (void)ud;
    return queue(OP_LOAD, id, NULL, 0, 0, 0, fn, NULL, ctx);
}

static int32_t st_save_if(void *ud, const char *id, const char *data, size_t len, int64_t expires,
                          uint64_t version, loom_session_vdone_fn fn, void *ctx)
{
    (void)ud;
    return queue(version ? OP_SAVE_IF : OP_SAVE_NEW, id, data, len, expires, version, fn, NULL,
                 ctx);
}

static int32_t st_destroy_if(void *ud, const char *id, uint64_t version, loom_session_vdone_fn fn,
                             void *ctx)
{
    (void)ud;
    return queue(OP_DESTROY_IF, id, NULL, 0, 0, version, fn, NULL, ctx);
}

static int32_t st_destroy(void *ud, const char *id, loom_session_done_fn fn, void *ctx)
{
    (void)ud;
    return queue(OP_DESTROY, id, NULL, 0, 0, 0, NULL, fn, ctx);
}

static int32_t st_touch(void *ud, const char *id, int64_t expires, loom_session_done_fn fn,
                        void *ctx)
{
    (void)ud;
    return queue(OP_TOUCH, id, NULL, 0, expires, 0, NULL, fn, ctx);
}

static void sweep(loom_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    queue(OP_SWEEP, NULL, NULL, 0, 0, 0, NULL, NULL, NULL);
}

/* Sessions tables made before versions get the column (every row version 1). */
static int add_version_column(void)
{
    sqlite3_stmt *st = NULL;
    int has = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info('sessions') WHERE name = 'version'",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    has = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (has) return 0;
    /* Another worker may add it at the same moment: then ours fails, and the
     * column is there all the same. */
    sqlite3_exec(db, "ALTER TABLE sessions ADD COLUMN version INTEGER NOT NULL DEFAULT 1", NULL,
                 NULL, NULL);
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info('sessions') WHERE name = 'version'",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    has = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return has ? 0 : -1;
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
    st.load_versioned = st_load;
    st.save_if = st_save_if;
    st.destroy_if = st_destroy_if;
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
                     " expires INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 1);"
                     "CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires);",
                     NULL, NULL, &err) != SQLITE_OK ||
        add_version_column()) {
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
