/* notes: a JSON CRUD API on SQLite -- the seed's "asynchronous database
 * interactions". Every query runs on the thread pool (loom_work_queue), so a
 * slow disk never stalls the event loop; the answer is sent from the loop
 * thread when the query is done.
 *
 *   GET    /notes            -> 200 [{"id":1,"title":"..","body":".."}, ...]
 *   POST   /notes  {title, body} -> 201 the new note
 *   GET    /notes/{id}       -> 200 the note, or 404
 *   PUT    /notes/{id}  {title, body} -> 200 the note, or 404
 *   DELETE /notes/{id}       -> 204, or 404
 *
 * Config: {"db": "path"} (default "notes.db" in the working directory, so
 * that every worker process sees the same notes; WAL mode lets them write
 * concurrently). SQLite builds the JSON (json_object), so the plugin needs
 * no JSON library of its own. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <loom/loom.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OP_LIST, OP_CREATE, OP_GET, OP_UPDATE, OP_DELETE };

static loom_plugin *me;
static sqlite3 *db;

typedef struct {
    loom_req *req;
    int op;
    long long id;
    const char *title, *body;
    int status;
    char *out; /* malloc'd JSON */
    char err[160];
} job;

#define NOTE_JSON "json_object('id', id, 'title', title, 'body', body)"

static char *one_row(sqlite3_stmt *st)
{
    const unsigned char *t = sqlite3_column_text(st, 0);
    return t ? strdup((const char *)t) : NULL;
}

/* On a pool thread: no loom calls here. The connection is in serialized
 * mode, so jobs on several pool threads are safe. */
static void run(void *ud)
{
    job *j = ud;
    sqlite3_stmt *st = NULL;
    static const char *sql[] = {
        "SELECT coalesce(json_group_array(" NOTE_JSON "), '[]') FROM (SELECT * FROM notes "
        "ORDER BY id)",
        "INSERT INTO notes(title, body) VALUES(?1, ?2) RETURNING " NOTE_JSON,
        "SELECT " NOTE_JSON " FROM notes WHERE id = ?3",
        "UPDATE notes SET title = ?1, body = ?2 WHERE id = ?3 RETURNING " NOTE_JSON,
        "DELETE FROM notes WHERE id = ?3 RETURNING id",
    };
    j->status = 500;
    if (sqlite3_prepare_v2(db, sql[j->op], -1, &st, NULL) != SQLITE_OK) goto fail;
    if (j->title) sqlite3_bind_text(st, 1, j->title, -1, SQLITE_STATIC);
    if (j->body) sqlite3_bind_text(st, 2, j->body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, j->id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        j->out = j->op == OP_DELETE ? NULL : one_row(st);
        j->status = j->op == OP_CREATE ? 201 : j->op == OP_DELETE ? 204 : 200;
    } else if (rc == SQLITE_DONE) {
        j->status = 404;
    } else {
        goto fail;
    }
    sqlite3_finalize(st);
    return;
fail:
    snprintf(j->err, sizeof j->err, "database error: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
}

static void done(void *ud, int32_t cancelled)
{
    job *j = ud;
    (void)cancelled;
    if (j->status == 404)
        loom_resp_error(j->req, 404, "no such note");
    else if (j->status == 500)
        loom_resp_error(j->req, 500, j->err);
    else if (j->status == 204)
        loom_resp_bytes(j->req, 204, NULL, "", 0);
    else
        loom_resp_json(j->req, j->status, j->out ? j->out : "null", j->out ? strlen(j->out) : 4);
    free(j->out);
}

static int32_t start(loom_req *req, int op)
{
    job *j = loom_req_alloc(req, sizeof *j);
    if (!j) return LOOM_ENOMEM;
    memset(j, 0, sizeof *j);
    j->req = req;
    j->op = op;
    const char *id = loom_req_match(req, "id", NULL);
    if (id) j->id = strtoll(id, NULL, 10);
    if (op == OP_CREATE || op == OP_UPDATE) {
        const loom_json *in;
        if (loom_req_json(req, &in) != LOOM_OK) return LOOM_DONE;
        const loom_json *t = loom_json_get(in, "title"), *b = loom_json_get(in, "body");
        j->title = loom_json_string(t, NULL);
        j->body = b ? loom_json_string(b, NULL) : "";
        if (loom_json_type(in) != LOOM_JSON_OBJECT || !j->title || !j->body)
            return loom_resp_error(req, 422, "want {\"title\": string, \"body\": string}");
    }
    int32_t rc = loom_work_queue(me, run, done, j);
    return rc == LOOM_OK ? LOOM_PENDING : rc;
}

static int32_t h_list(loom_req *r, void *ud)
{
    (void)ud;
    return start(r, OP_LIST);
}
static int32_t h_create(loom_req *r, void *ud)
{
    (void)ud;
    return start(r, OP_CREATE);
}
static int32_t h_get(loom_req *r, void *ud)
{
    (void)ud;
    return start(r, OP_GET);
}
static int32_t h_update(loom_req *r, void *ud)
{
    (void)ud;
    return start(r, OP_UPDATE);
}
static int32_t h_delete(loom_req *r, void *ud)
{
    (void)ud;
    return start(r, OP_DELETE);
}

static int32_t init(loom_plugin *self, const char *config, size_t len)
{
    (void)config;
    (void)len;
    me = self;
    static const char *const keys[] = {"db", NULL};
    if (loom_config_check_keys(self, loom_config(self), NULL, keys)) return LOOM_EINVAL;
    const loom_json *p = loom_json_get(loom_config(self), "db");
    const char *path = p ? loom_json_string(p, NULL) : "notes.db";
    if (!path) return LOOM_EINVAL;
    if (sqlite3_open_v2(path, &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot open database '%s': %s", path, sqlite3_errmsg(db));
        loom_log(self, LOOM_LOG_ERROR, msg);
        sqlite3_close(db);
        db = NULL;
        return LOOM_EINVAL;
    }
    sqlite3_busy_timeout(db, 5000);
    char *err = NULL;
    if (sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, "
                     "title TEXT NOT NULL, body TEXT NOT NULL)",
                     NULL, NULL, &err) != SQLITE_OK) {
        loom_log(self, LOOM_LOG_ERROR, err ? err : "cannot create table");
        sqlite3_free(err);
        sqlite3_close(db);
        db = NULL;
        return LOOM_EINVAL;
    }
    int32_t rc = 0;
    rc |= loom_route_add(self, "GET", "/notes", h_list, NULL);
    rc |= loom_route_add(self, "POST", "/notes", h_create, NULL);
    rc |= loom_route_add(self, "GET", "/notes/{id:\\d+}", h_get, NULL);
    rc |= loom_route_add(self, "PUT", "/notes/{id:\\d+}", h_update, NULL);
    rc |= loom_route_add(self, "DELETE", "/notes/{id:\\d+}", h_delete, NULL);
    return rc;
}

static void fini(loom_plugin *self)
{
    (void)self;
    sqlite3_close(db);
    db = NULL;
}

LOOM_PLUGIN("notes", "1.0.0", init, fini)
