/*
 * store.c: connections, the statement cache, transactions and the unit of
 * work. Every thread gets its own connection (SQLite connections are not to
 * be shared between concurrent threads); all connections are kept in a
 * registry so that shutdown can close them and checkpoint the WAL.
 */
#include "store/store.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "store/migrations.h"

typedef struct {
    const char *sql; /* the static string the statement was prepared from */
    sqlite3_stmt *stmt;
} cached_stmt;

typedef struct conn {
    sqlite3 *db;
    cached_stmt *cache;
    size_t n_cache, cap_cache;
    struct conn *next;
} conn;

static struct {
    char path[1024];
    bool full;
    int busy_ms;
    bool open, migrated;
    pthread_mutex_t mu;
    conn *all;
    /* One writer at a time, queued here rather than in SQLite's busy
     * handler, which sleeps and retries and so starves some writers for
     * hundreds of milliseconds under load. Other processes on the same file
     * still meet the busy timeout. */
    pthread_mutex_t write_mu;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .write_mu = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local conn *tl_conn;
static _Thread_local store_write_hook tl_hook;
static _Thread_local void *tl_hook_ctx;

void store_set_write_hook(store_write_hook fn, void *ctx)
{
    tl_hook = fn;
    tl_hook_ctx = ctx;
}

static int mkdir_parents(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    char *dir = dirname(tmp);
    if (!strcmp(dir, ".") || !strcmp(dir, "/")) return 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0750) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0750) && errno != EEXIST) return -1;
    return 0;
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static conn *conn_open(char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(S.path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open database '%s': %s", S.path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, S.busy_ms);
    /* Debian builds SQLite with secure_delete on and synchronous=FULL even in
     * WAL mode: state both explicitly so durability is what the operator chose. */
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;"
             "PRAGMA secure_delete=OFF; PRAGMA temp_store=MEMORY;",
             S.full ? "FULL" : "NORMAL");
    if (exec(db, pragmas, err, errlen)) {
        sqlite3_close(db);
        return NULL;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        sqlite3_close(db);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->db = db;
    pthread_mutex_lock(&S.mu);
    c->next = S.all;
    S.all = c;
    pthread_mutex_unlock(&S.mu);
    return c;
}

static void conn_free(conn *c)
{
    for (size_t i = 0; i < c->n_cache; i++) sqlite3_finalize(c->cache[i].stmt);
    free(c->cache);
    sqlite3_close(c->db);
    free(c);
}

static conn *conn_get(err_t *e)
{
    if (tl_conn) return tl_conn;
    char msg[512];
    tl_conn = conn_open(msg, sizeof msg);
    if (!tl_conn) {
        log_msg(LOG_ERROR, "store: open failed", " error=\"%s\"", msg);
        if (e) err_set(e, 503, "store_unavailable", "the case store cannot be opened");
    }
    return tl_conn;
}

void store_thread_done(void)
{
    conn *c = tl_conn;
    if (!c) return;
    tl_conn = NULL;
    pthread_mutex_lock(&S.mu);
    for (conn **p = &S.all; *p; p = &(*p)->next)
        if (*p == c) { *p = c->next; break; }
    pthread_mutex_unlock(&S.mu);
    conn_free(c);
}

int store_open(const store_opts *opts, char *err, size_t errlen)
{
    snprintf(S.path, sizeof S.path, "%s", opts->path);
    S.full = opts->durability_full;
    S.busy_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
    if (strcmp(S.path, ":memory:") && mkdir_parents(S.path)) {
        snprintf(err, errlen, "cannot create the folder of '%s': %s", S.path, strerror(errno));
        return -1;
    }
    tl_conn = conn_open(err, errlen);
    if (!tl_conn) return -1;
    S.open = true;
    return 0;
}

bool store_ready(void) { return S.open && S.migrated; }

void store_close(void)
{
    pthread_mutex_lock(&S.mu);
    conn *all = S.all;
    S.all = NULL;
    pthread_mutex_unlock(&S.mu);
    for (conn *c = all; c;) {
        conn *next = c->next;
        if (!next) {
            /* The last one closes: fold the WAL back into the database. */
            sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        }
        conn_free(c);
        c = next;
    }
    tl_conn = NULL;
    S.open = S.migrated = false;
}

sqlite3_stmt *store_stmt(store_tx *tx, const char *sql, err_t *e)
{
    conn *c = tl_conn;
    for (size_t i = 0; i < c->n_cache; i++) {
        if (c->cache[i].sql == sql) {
            sqlite3_stmt *st = c->cache[i].stmt;
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return st;
        }
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(tx->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        log_msg(LOG_ERROR, "store: prepare failed", " error=\"%s\" sql=\"%.120s\"",
                sqlite3_errmsg(tx->db), sql);
        err_set(e, 500, "internal_error", "internal store error");
        return NULL;
    }
    if (c->n_cache == c->cap_cache) {
        size_t cap = c->cap_cache ? c->cap_cache * 2 : 32;
        cached_stmt *nc = realloc(c->cache, cap * sizeof *nc);
        if (!nc) {
            sqlite3_finalize(st);
            err_set(e, 500, "internal_error", "out of memory");
            return NULL;
        }
        c->cache = nc;
        c->cap_cache = cap;
    }
    c->cache[c->n_cache++] = (cached_stmt){sql, st};
    return st;
}

int store_fail(store_tx *tx, err_t *e, const char *what)
{
    int code = sqlite3_extended_errcode(tx->db);
    log_msg(LOG_ERROR, "store: statement failed", " what=\"%s\" error=\"%s\" code=%d", what,
            sqlite3_errmsg(tx->db), code);
    if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
        err_set(e, 503, "store_busy", "the case store is busy; retry");
    else if ((code & 0xff) == SQLITE_FULL || (code & 0xff) == SQLITE_IOERR)
        err_set(e, 503, "store_unavailable", "the case store cannot write");
    else
        err_set(e, 500, "internal_error", "internal store error");
    return -1;
}

static int tx_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

void store_reply_clear(store_reply *r)
{
    if (r->body) json_decref(r->body);
    if (r->record) json_decref(r->record);
    r->body = r->record = NULL;
    r->status = 0;
    r->replayed = false;
}

static const char SQL_IDEM_GET[] =
    "SELECT request_hash, status, body FROM idempotency WHERE scope = ?1 AND key = ?2";
static const char SQL_IDEM_PUT[] =
    "INSERT INTO idempotency (scope, key, request_hash, status, body, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/* 1: replayed into reply; 0: not seen; -1: error (conflict or store). */
static int idem_lookup(store_tx *tx, const store_idem *idem, store_reply *reply, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_IDEM_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, idem->scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, idem->key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) return store_fail(tx, e, "idempotency lookup");
    if (strcmp((const char *)sqlite3_column_text(st, 0), idem->request_hash)) {
        sqlite3_reset(st);
        err_set(e, 409, "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request");
        err_detail(e, "idempotency_key", json_string(idem->key));
        return -1;
    }
    reply->status = sqlite3_column_int(st, 1);
    reply->body = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
    reply->replayed = true;
    sqlite3_reset(st);
    return 1;
}

static int idem_record(store_tx *tx, const store_idem *idem, const store_reply *reply, err_t *e)
{
    json_t *what = reply->record ? reply->record : reply->body;
    char *body = json_dumps(what ? what : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    if (!body) return err_set(e, 500, "internal_error", "out of memory"), -1;
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_IDEM_PUT, e);
    if (!st) { free(body); return -1; }
    sqlite3_bind_text(st, 1, idem->scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, idem->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, idem->request_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, reply->status);
    sqlite3_bind_text(st, 5, body, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    free(body);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "idempotency record");
}

int store_write(const store_idem *idem, store_work_fn fn, void *arg, store_reply *reply, err_t *e)
{
    conn *c = conn_get(e);
    if (!c) return -1;
    store_tx tx = {c->db, true};
    pthread_mutex_lock(&S.write_mu);
    int rc = 0;
    if (tx_exec(c->db, "BEGIN IMMEDIATE") != SQLITE_OK) {
        rc = store_fail(&tx, e, "begin");
        goto out;
    }
    if (idem) {
        rc = idem_lookup(&tx, idem, reply, e);
        if (rc != 0) {
            tx_exec(c->db, "ROLLBACK");
            rc = rc > 0 ? 0 : -1;
            goto out;
        }
    }
    rc = fn(&tx, arg, reply, e);
    if (rc == 0 && idem && reply->status >= 200 && reply->status < 300)
        rc = idem_record(&tx, idem, reply, e);
    if (rc == 0 && tl_hook && reply->status >= 200 && reply->status < 300) rc = tl_hook(&tx, reply, tl_hook_ctx, e);
    if (rc == 0 && tx_exec(c->db, "COMMIT") != SQLITE_OK) rc = store_fail(&tx, e, "commit");
    if (rc != 0) {
        if (!sqlite3_get_autocommit(c->db)) tx_exec(c->db, "ROLLBACK");
        store_reply_clear(reply);
        rc = -1;
    }
out:
    pthread_mutex_unlock(&S.write_mu);
    return rc;
}

int store_read(store_work_fn fn, void *arg, store_reply *reply, err_t *e)
{
    conn *c = conn_get(e);
    if (!c) return -1;
    store_tx tx = {c->db, false};
    if (tx_exec(c->db, "BEGIN") != SQLITE_OK) return store_fail(&tx, e, "begin");
    int rc = fn(&tx, arg, reply, e);
    /* A read-only transaction: COMMIT and ROLLBACK are the same; ROLLBACK
     * also undoes anything a buggy read might have tried. */
    tx_exec(c->db, "ROLLBACK");
    if (rc != 0) store_reply_clear(reply);
    return rc;
}

int store_migrate(int *version, char *err, size_t errlen)
{
    conn *c = tl_conn;
    if (!c) {
        c = tl_conn = conn_open(err, errlen);
        if (!c) return -1;
    }
    if (exec(c->db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
             err, errlen))
        return -1;
    int current = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1,
                           &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(c->db));
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW) current = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (current > migrations_count) {
        snprintf(err, errlen,
                 "the database schema is version %d but this sarye knows only up to %d; "
                 "run a newer sarye",
                 current, migrations_count);
        return -1;
    }
    for (int v = current + 1; v <= migrations_count; v++) {
        if (exec(c->db, "BEGIN IMMEDIATE", err, errlen)) return -1;
        char rec[160], now[RFC3339_MAX];
        time_rfc3339(time_now_ms(), now);
        snprintf(rec, sizeof rec, "INSERT INTO schema_migrations VALUES (%d, '%s')", v, now);
        if (exec(c->db, migrations[v - 1], err, errlen) || exec(c->db, rec, err, errlen)) {
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
            char inner[400];
            snprintf(inner, sizeof inner, "%s", err);
            snprintf(err, errlen, "migration %d failed: %s", v, inner);
            return -1;
        }
        if (exec(c->db, "COMMIT", err, errlen)) return -1;
        log_msg(LOG_INFO, "store: migrated", " version=%d", v);
    }
    if (version) *version = migrations_count;
    S.migrated = true;
    return 0;
}
