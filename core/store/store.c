/*
 * store.c: connections, the statement cache, read snapshots and the one
 * writer. Every serving thread reads through its own connection (SQLite
 * connections are not shared between concurrent threads; WAL lets readers
 * run beside the writer). Every write goes to the writer thread, which owns
 * the only writing connection and commits units of work in batches: one
 * transaction, a savepoint per unit (a unit that fails rolls back alone),
 * one commit, one fsync at durability=full, then every unit's caller is
 * answered. Nothing runs on the writer but the C of the units: no plugin
 * code, no network, so a batch is short and one slow request cannot hold
 * the others' writes. Nor does the writer fold the log into the database
 * (a checkpoint: copying a thousand pages and an fsync of the database, in
 * the middle of a commit): a checkpointer thread of its own connection
 * does, beside it.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "store/internal.h"
#include "store/keys.h"
#include "store/migrations.h"

/* Units in one transaction: more than can wait at once (a unit per HTTP
 * worker, at most 1024 by configuration, and per background thread), so
 * every unit queued goes in the next batch whichever region queued it, and
 * a pile of one region's writes never pushes another's to a later one. */
#define MAX_BATCH 1152
/* Upper bounds of the commit-time histogram, in microseconds (/metrics). */
static const unsigned long COMMIT_LE_US[] = {500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
                                             500000, 1000000, 2500000};
#define COMMIT_BUCKETS (sizeof COMMIT_LE_US / sizeof COMMIT_LE_US[0])

static struct {
    char path[1024];
    bool full;
    const char *vfs; /* walbuf.c's, or NULL: the default */
    int busy_ms;
    bool open, migrated;
    pthread_mutex_t mu; /* guards all */
    store_conn *all;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local store_conn *tl_conn;
static _Thread_local store_write_hook tl_hook;
static _Thread_local store_write_undo tl_hook_undo;
static _Thread_local void *tl_hook_ctx;
static _Thread_local bool tl_is_writer;

int store_err_set(store_err *e, store_kind kind, const char *fmt, ...)
{
    e->kind = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

const char *store_kind_name(store_kind kind)
{
    switch (kind) {
    case STORE_OK: return "ok";
    case STORE_NOT_FOUND: return "not_found";
    case STORE_DUPLICATE: return "duplicate";
    case STORE_CONFLICT: return "conflict";
    case STORE_STALE: return "stale";
    case STORE_KEY_REUSED: return "key_reused";
    case STORE_BUSY: return "busy";
    case STORE_UNAVAILABLE: return "unavailable";
    case STORE_INTERNAL: return "internal";
    }
    return "internal";
}

const char *store_path(void) { return S.path; }

void store_set_write_hook(store_write_hook fn, store_write_undo undo, void *ctx)
{
    tl_hook = fn;
    tl_hook_undo = undo;
    tl_hook_ctx = ctx;
}

static int mkdir_parents(const char *path)
{
    char tmp[1024];
    str_copy(tmp, sizeof tmp, path);
    char *dir = dirname(tmp);
    if (!strcmp(dir, ".") || !strcmp(dir, "/")) return 0;
    char buf[1024];
    str_copy(buf, sizeof buf, dir);
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

static store_conn *conn_open(bool writer, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(S.path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, S.vfs);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open database '%s': %s", S.path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, S.busy_ms);
    /* Debian builds SQLite with secure_delete on and synchronous=FULL even in
     * WAL mode: state both explicitly so durability is what the operator
     * chose. No mmap: the file grows with every batch, and each reader
     * would remap it (measured: a third of the speed of reads). */
    char pragmas[360];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;"
             "PRAGMA secure_delete=OFF; PRAGMA temp_store=MEMORY;%s",
             S.full ? "FULL" : "NORMAL",
             /* a read path cannot change the store, whatever it runs */
             writer ? "" : " PRAGMA query_only=ON;");
    if (exec(db, pragmas, err, errlen)) {
        sqlite3_close(db);
        return NULL;
    }
    store_conn *c = calloc(1, sizeof *c);
    if (!c) {
        sqlite3_close(db);
        str_copy(err, errlen, "out of memory");
        return NULL;
    }
    c->db = db;
    c->writer = writer;
    pthread_mutex_lock(&S.mu);
    c->next = S.all;
    S.all = c;
    pthread_mutex_unlock(&S.mu);
    return c;
}

static void conn_free(store_conn *c)
{
    for (size_t i = 0; i < c->n_cache; i++) {
        sqlite3_finalize(c->cache[i].stmt);
        if (c->cache[i].built) free((char *)c->cache[i].sql);
    }
    free(c->cache);
    free(c->pending);
    sqlite3_close(c->db);
    free(c);
}

static void conn_forget(store_conn *c)
{
    pthread_mutex_lock(&S.mu);
    for (store_conn **p = &S.all; *p; p = &(*p)->next)
        if (*p == c) { *p = c->next; break; }
    pthread_mutex_unlock(&S.mu);
}

static store_conn *conn_get(store_err *e)
{
    if (tl_conn) return tl_conn;
    char msg[512];
    tl_conn = conn_open(false, msg, sizeof msg);
    if (!tl_conn) {
        log_msg(LOG_ERROR, "store: open failed", " error=\"%s\"", msg);
        store_err_set(e, STORE_UNAVAILABLE, "the case store cannot be opened");
    }
    return tl_conn;
}

void store_thread_done(void)
{
    store_conn *c = tl_conn;
    if (!c) return;
    tl_conn = NULL;
    conn_forget(c);
    conn_free(c);
}

/* The statement one of whose binds the calling thread could not make (its
 * copy refused memory), and whether a step was refused for it since the
 * last store_fail. */
static _Thread_local sqlite3_stmt *tl_unbound;
static _Thread_local bool tl_step_refused;

int store_bind_text(sqlite3_stmt *st, int i, const char *s, int n, void (*del)(void *))
{
    int rc = (sqlite3_bind_text)(st, i, s, n, del);
    if (rc == SQLITE_NOMEM) tl_unbound = st;
    return rc;
}

int store_step(sqlite3_stmt *st)
{
    if (st && st == tl_unbound) {
        tl_unbound = NULL;
        tl_step_refused = true;
        return SQLITE_NOMEM;
    }
    return (sqlite3_step)(st);
}

static atomic_ulong oom_refusals; /* store operations failed for memory */

int store_oom(store_err *e)
{
    atomic_fetch_add(&oom_refusals, 1);
    return store_err_set(e, STORE_UNAVAILABLE, "the case store is out of memory");
}

/* What an SQLite error code is to the caller: a retry (busy, no room, no
 * memory) or a bug. */
static int fail_as(int code, store_err *e)
{
    if (code == SQLITE_IOERR_NOMEM) return store_oom(e);
    switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return store_err_set(e, STORE_BUSY, "the case store is busy; retry");
    case SQLITE_FULL: return store_err_set(e, STORE_UNAVAILABLE, "the case store cannot write");
    case SQLITE_IOERR:
        if (code == SQLITE_IOERR_READ || code == SQLITE_IOERR_SHORT_READ)
            return store_err_set(e, STORE_UNAVAILABLE, "the case store cannot read its disk");
        return store_err_set(e, STORE_UNAVAILABLE, "the case store cannot write");
    case SQLITE_NOMEM: return store_oom(e);
    default: return store_err_set(e, STORE_INTERNAL, "internal store error");
    }
}

/* Prepares sql and adds it to c's cache (key: sql, owned when built). */
static sqlite3_stmt *cache_add(store_tx *tx, const char *sql, bool built, unsigned hash, store_err *e)
{
    store_conn *c = tx->conn;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(tx->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        log_msg(LOG_ERROR, "store: prepare failed", " error=\"%s\" sql=\"%.120s\"", sqlite3_errmsg(tx->db), sql);
        fail_as(sqlite3_extended_errcode(tx->db), e);
        return NULL;
    }
    if (c->n_cache == c->cap_cache) {
        size_t cap = c->cap_cache ? c->cap_cache * 2 : 32;
        cached_stmt *nc = realloc(c->cache, cap * sizeof *nc);
        if (!nc) {
            sqlite3_finalize(st);
            store_oom(e);
            return NULL;
        }
        c->cache = nc;
        c->cap_cache = cap;
    }
    c->cache[c->n_cache++] = (cached_stmt){sql, st, built, hash};
    if (built) c->n_built++;
    return st;
}

sqlite3_stmt *store_stmt(store_tx *tx, const char *sql, store_err *e)
{
    store_conn *c = tx->conn;
    for (size_t i = 0; i < c->n_cache; i++) {
        if (c->cache[i].sql == sql) {
            sqlite3_stmt *st = c->cache[i].stmt;
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            if (tl_unbound == st) tl_unbound = NULL;
            return st;
        }
    }
    return cache_add(tx, sql, false, 0, e);
}

/* Built statements a connection keeps: the shapes in use (filters given x
 * organisations seen) are few; past this the oldest is dropped. */
#define MAX_BUILT 96

sqlite3_stmt *store_stmt_built(store_tx *tx, const sql_buf *b, store_err *e)
{
    if (b->oom || !b->s) {
        store_oom(e);
        return NULL;
    }
    unsigned h = str_hash(b->s); /* the built text: NUL-terminated, b->len long */
    store_conn *c = tx->conn;
    for (size_t i = 0; i < c->n_cache; i++) {
        cached_stmt *cs = &c->cache[i];
        if (cs->built && cs->hash == h && !strcmp(cs->sql, b->s)) {
            sqlite3_reset(cs->stmt);
            sqlite3_clear_bindings(cs->stmt);
            if (tl_unbound == cs->stmt) tl_unbound = NULL;
            return cs->stmt;
        }
    }
    if (c->n_built >= MAX_BUILT) {
        for (size_t i = 0; i < c->n_cache; i++) {
            if (!c->cache[i].built) continue;
            sqlite3_finalize(c->cache[i].stmt);
            free((char *)c->cache[i].sql);
            memmove(&c->cache[i], &c->cache[i + 1], (c->n_cache - i - 1) * sizeof c->cache[0]);
            c->n_cache--;
            c->n_built--;
            break;
        }
    }
    char *key = strdup(b->s);
    if (!key) {
        store_oom(e);
        return NULL;
    }
    sqlite3_stmt *st = cache_add(tx, key, true, h, e);
    if (!st) free(key);
    return st;
}

int store_fail(store_tx *tx, store_err *e, const char *what)
{
    /* a step refused for a bind that could not be made: SQLite's own last
     * error is another statement's */
    int code = tl_step_refused ? SQLITE_NOMEM : sqlite3_extended_errcode(tx->db);
    log_msg(LOG_ERROR, "store: statement failed", " what=\"%s\" error=\"%s\" code=%d", what,
            tl_step_refused ? "out of memory (binding a value)" : sqlite3_errmsg(tx->db), code);
    tl_step_refused = false;
    return fail_as(code, e);
}

/* Runs one of the fixed statements of a transaction's frame (BEGIN,
 * SAVEPOINT ...) through the statement cache. */
static int tx_step(store_tx *tx, const char *sql)
{
    store_err e = {0};
    sqlite3_stmt *st = store_stmt(tx, sql, &e);
    if (!st) return SQLITE_ERROR;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

void store_reply_clear(store_reply *r)
{
    if (r->body) json_decref(r->body);
    if (r->record) json_decref(r->record);
    if (r->disclosed) json_decref(r->disclosed);
    r->body = r->record = r->disclosed = NULL;
    r->status = 0;
    r->replayed = false;
}

/* ---- Idempotency-Key records ---- */
static const char SQL_IDEM_GET[] =
    "SELECT request_hash, status, body FROM idempotency WHERE scope = ?1 AND key = ?2";
static const char SQL_IDEM_PUT[] =
    "INSERT INTO idempotency (scope, key, request_hash, status, body, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

static const char SQL_IDEM_PURGE[] =
    "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency WHERE created_at < ?1"
    " ORDER BY created_at LIMIT ?2)";

/* The answer is sealed bound to its scope and key: it cannot be read
 * without the key, nor moved to another principal's key. */
static size_t idem_ad(const char *scope, const char *key, char *buf, size_t n)
{
    int len = snprintf(buf, n, "%s\n%s", scope, key);
    return len < 0 ? 0 : (size_t)len < n ? (size_t)len : n - 1;
}

char *store_idem_seal(const unsigned char body_key[32], const char *scope, const char *key, const char *body)
{
    char ad[600];
    size_t adlen = idem_ad(scope, key, ad, sizeof ad);
    return keys_seal(body_key, ad, adlen, body, strlen(body));
}

char *store_idem_open(const unsigned char body_key[32], const char *scope, const char *key, const char *sealed)
{
    char ad[600];
    size_t adlen = idem_ad(scope, key, ad, sizeof ad), len = 0;
    return (char *)keys_open(body_key, ad, adlen, sealed, &len);
}

void store_sql_of_store(store_sql_fn fn, void *ctx)
{
    STORE_SQL(fn, ctx, SQL_IDEM_GET);
    STORE_SQL(fn, ctx, SQL_IDEM_PUT);
    fn("SQL_IDEM_PURGE", SQL_IDEM_PURGE, STORE_SQL_TOOL, ctx); /* the retention sweep, every minute */
}

int store_idem_lookup(store_tx *tx, const store_idem *idem, store_reply *reply, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_IDEM_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, idem->scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, idem->key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) return store_fail(tx, e, "idempotency lookup");
    /* An empty digest: the record was sealed again under a new key (`sarye
     * key rotate`), which could not digest the request again; its key
     * alone identifies it. */
    const char *hash = TEXT(st, 0);
    if (hash && hash[0] && strcmp(hash, idem->request_hash)) {
        sqlite3_reset(st);
        return store_err_set(e, STORE_KEY_REUSED, "this Idempotency-Key was already used with a different request");
    }
    int status = sqlite3_column_int(st, 1);
    char *body = store_idem_open(keys_current()->idem_body, idem->scope, idem->key, TEXT(st, 2));
    sqlite3_reset(st);
    if (!body) return store_err_set(e, STORE_INTERNAL, "a stored answer cannot be opened with the current key");
    reply->status = status;
    reply->body = json_loads(body, 0, NULL);
    reply->replayed = true;
    sodium_memzero(body, strlen(body));
    free(body);
    return 1;
}

int store_idem_purge(store_tx *tx, const char *before, int limit, int *deleted, store_err *e)
{
    *deleted = 0;
    sqlite3_stmt *st = store_stmt(tx, SQL_IDEM_PURGE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, before, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, limit);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "idempotency purge");
    *deleted = sqlite3_changes(tx->db);
    return 0;
}

typedef struct {
    const store_idem *idem;
    store_err *e;
} replay_arg;

static int work_idem_replay(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    replay_arg *a = arg;
    return store_idem_lookup(tx, a->idem, reply, a->e) < 0 ? -1 : 0;
}

int store_idem_replay(const store_idem *idem, store_reply *reply, store_err *se)
{
    err_t unused = {0};
    replay_arg a = {idem, se};
    int rc = store_read(work_idem_replay, &a, reply, &unused, se);
    err_clear(&unused);
    if (rc) return -1;
    return reply->replayed ? 1 : 0;
}

static int idem_record(store_tx *tx, const store_idem *idem, const store_reply *reply, store_err *e)
{
    json_t *what = reply->record ? reply->record : reply->body;
    char *clear = json_dumps(what ? what : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    char *body = clear ? store_idem_seal(keys_current()->idem_body, idem->scope, idem->key, clear) : NULL;
    if (clear) {
        sodium_memzero(clear, strlen(clear));
        free(clear);
    }
    if (!keys_current()->ready) {
        free(body);
        return store_err_set(e, STORE_INTERNAL, "no key is loaded: an answer cannot be kept for replays");
    }
    if (!body) return store_oom(e);
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_IDEM_PUT, e);
    if (!st) {
        free(body);
        return -1;
    }
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

/* ---- the writer ---- */
typedef struct unit {
    store_work_fn fn;
    void *arg;
    store_reply *reply;
    err_t *e;      /* the unit's own error, as fn or the hook set it */
    store_err *se; /* the store's */
    const store_idem *idem;
    store_write_hook hook;
    store_write_undo undo;
    void *hook_ctx;
    bool hook_ran;  /* the hook did its work in this batch's transaction */
    bool rerunnable; /* fn and hook may run again (store_write_rerunnable) */
    int rc;
    sem_t done;
    struct unit *next;
} unit;

/* After a batch had to run again, this many batches take a savepoint per
 * unit from the start: a client sending stale versions again and again
 * does not make every batch run twice. */
#define CAREFUL_BATCHES 32

static struct {
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unit *head, *tail;
    bool stop;
    store_conn *conn;
    atomic_ulong batches, units, failed_commits, checkpoints, reruns;
    atomic_int max_batch;
    atomic_int queued; /* units waiting for the writer, not yet in a batch */
    /* how long COMMIT took (the log's write and its fsync; and the
     * writer's own checkpoint of the log when it had to make one) */
    atomic_ulong commit_le[COMMIT_BUCKETS + 1], commit_us;
    /* store_counts_start: a load of the counts asked of the writer, done
     * between two batches; load_rc its outcome once load_done */
    bool load, load_done;
    int load_rc;
    char load_err[256];
    pthread_cond_t load_cv;
    int careful; /* batches left that run with a savepoint per unit anyway */
} W = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .load_cv = PTHREAD_COND_INITIALIZER};

/* What a unit's hook did outside the transaction is undone with it. */
static void unit_undo(unit *u)
{
    if (u->hook_ran && u->undo) u->undo(u->hook_ctx);
    u->hook_ran = false;
}

/* A unit of a batch rolled back, made ready to run again. */
static void unit_reset(unit *u)
{
    unit_undo(u);
    store_reply_clear(u->reply);
    err_clear(u->e);
    memset(u->se, 0, sizeof *u->se);
    u->rc = 0;
}

/* The writer's own statements, the frame of its transactions (no query to
 * plan), prepared when it starts (prepare_control): a ROLLBACK TO that
 * could not be prepared when memory runs out would leave a failed unit's
 * changes in the batch. */
static const char TX_BEGIN_WRITE[] = "BEGIN IMMEDIATE", TX_COMMIT[] = "COMMIT", TX_ROLLBACK[] = "ROLLBACK",
                  TX_SAVEPOINT[] = "SAVEPOINT unit", TX_ROLLBACK_TO[] = "ROLLBACK TO unit",
                  TX_RELEASE[] = "RELEASE unit";

static int prepare_control(store_conn *c, char *err, size_t errlen)
{
    store_tx tx = {c->db, true, c};
    const char *const all[] = {TX_BEGIN_WRITE, TX_COMMIT, TX_ROLLBACK, TX_SAVEPOINT, TX_ROLLBACK_TO, TX_RELEASE};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        store_err e = {0};
        if (!store_stmt(&tx, all[i], &e)) {
            snprintf(err, errlen, "cannot prepare '%s': %s", all[i], e.message);
            return -1;
        }
    }
    return 0;
}

/* The writer's connection commits nothing but a batch's COMMIT: a statement
 * a unit runs after SQLite rolled the batch back by itself would otherwise
 * commit on its own, and the unit's client be told it failed. (Read-only
 * transactions call no hook.) */
static bool w_committing;

static int commit_guard(void *arg)
{
    (void)arg;
    if (w_committing) return 0;
    log_msg(LOG_ERROR, "store: a statement outside the batch's transaction was not committed", "%s", "");
    return 1; /* the commit becomes a rollback */
}

/* Whether the batch's transaction is still open. SQLite rolls a
 * transaction back by itself after some errors (SQLITE_NOMEM, SQLITE_FULL,
 * SQLITE_IOERR ...): what ran before is gone, and a statement run after it
 * would commit on its own. */
static bool tx_open(const store_tx *tx) { return !sqlite3_get_autocommit(tx->db); }

/* One unit inside the batch's transaction; with a savepoint of its own, a
 * unit that fails is rolled back alone. Without one (a batch of units
 * that may run again), a unit that fails leaves its changes for the batch
 * to roll back. False when the batch cannot go on: its transaction was
 * rolled back under it, or a failed unit's changes could not be rolled
 * back alone. */
static bool run_unit(store_tx *tx, unit *u, bool savepoint)
{
    store_audit_head saved = tx->conn->audit;
    size_t counted = tx->conn->n_pending;
    if (savepoint && tx_step(tx, TX_SAVEPOINT) != SQLITE_OK) {
        u->rc = store_fail(tx, u->se, "savepoint");
        return tx_open(tx);
    }
    int rc = 0;
    if (u->idem) {
        rc = store_idem_lookup(tx, u->idem, u->reply, u->se);
        if (rc > 0) { /* answered before: replay, change nothing */
            if (savepoint) tx_step(tx, TX_RELEASE);
            u->rc = 0;
            return tx_open(tx);
        }
    }
    if (rc == 0) rc = u->fn(tx, u->arg, u->reply, u->e);
    bool ok2xx = u->reply->status >= 200 && u->reply->status < 300;
    if (rc == 0 && u->idem && ok2xx) rc = idem_record(tx, u->idem, u->reply, u->se);
    if (rc == 0 && u->hook && ok2xx) {
        int hr = u->hook(tx, u->reply, u->hook_ctx, u->e);
        if (hr < 0) rc = hr;
        else u->hook_ran = hr > 0;
    }
    bool alone = true;
    if (rc != 0 && savepoint) {
        alone = tx_open(tx) && tx_step(tx, TX_ROLLBACK_TO) == SQLITE_OK;
        tx->conn->audit = saved;
        counts_unit_rollback(tx->conn, counted);
        store_reply_clear(u->reply);
    }
    if (savepoint && tx_open(tx)) tx_step(tx, TX_RELEASE);
    u->rc = rc ? -1 : 0;
    return alone && tx_open(tx);
}

/* The units of one batch in one transaction. Units that may run again
 * (the common writes and the audit records of reads) run without a
 * savepoint each, which costs a statement and a copy of every page a unit
 * changes; if one of them fails, the batch is rolled back and runs again,
 * every unit under its own savepoint. */
static void run_batch(unit *list)
{
    store_tx tx = {W.conn->db, true, W.conn};
    int n = 0;
    bool careful = W.careful > 0;
    if (careful) W.careful--;
    for (unit *u = list; u; u = u->next) {
        n++;
        if (!u->rerunnable) careful = true;
    }
again:
    W.conn->audit.valid = false; /* another process may have appended since */
    counts_batch_done(W.conn, false);
    if (tx_open(&tx)) tx_step(&tx, TX_ROLLBACK); /* what a lost batch could not roll back */
    if (tx_step(&tx, TX_BEGIN_WRITE) != SQLITE_OK) {
        for (unit *u = list; u; u = u->next) u->rc = store_fail(&tx, u->se, "begin");
        return;
    }
    bool lost = false;
    for (unit *u = list; u; u = u->next) {
        if (!run_unit(&tx, u, careful)) {
            lost = true; /* every unit is told: those that ran, and those that did not */
            break;
        }
        if (u->rc && !careful) {
            tx_step(&tx, TX_ROLLBACK);
            for (unit *v = list; v; v = v->next) unit_reset(v);
            W.conn->audit.cp_known = false;
            W.careful = CAREFUL_BATCHES;
            atomic_fetch_add(&W.reruns, 1);
            careful = true;
            goto again;
        }
    }
    /* Every `every` records, the batch ends with a signed checkpoint. */
    audit_checkpoint cp;
    int checkpointed = lost ? 0 : store_audit_batch_checkpoint(&tx, &cp);
    if (!tx_open(&tx)) lost = true; /* the checkpoint's own statements can meet what a unit's did */
    int64_t t0 = time_mono_ns();
    w_committing = true;
    if (!lost) walbuf_commit_begin(tx.db);
    bool committed = !lost && tx_step(&tx, TX_COMMIT) == SQLITE_OK;
    w_committing = false;
    /* A commit that failed after its frames reached the log (its fsync, or
     * memory for the log's index, refused) left them whole: a crash now
     * would bring the batch back. Before any unit is answered, its commit
     * frame is spoilt. */
    if (!lost && !committed && walbuf_commit_failed(tx.db))
        log_msg(LOG_ERROR, "store: a failed commit's frames could not be spoilt in the log; a crash before the"
                           " next commit may bring its batch back", " units=%d", n);
    unsigned long us = (unsigned long)((time_mono_ns() - t0) / 1000);
    size_t b = 0;
    while (b < COMMIT_BUCKETS && us > COMMIT_LE_US[b]) b++;
    atomic_fetch_add(&W.commit_le[b], 1);
    atomic_fetch_add(&W.commit_us, us);
    counts_batch_done(W.conn, committed);
    if (!committed) {
        /* Nothing of the batch is kept: every unit that thought it was
         * done is told it was not. */
        store_err why = {0};
        if (lost) {
            log_msg(LOG_ERROR, "store: a batch's transaction was lost; none of it is kept", " units=%d", n);
            store_err_set(&why, STORE_UNAVAILABLE, "the case store could not keep this write; retry");
        } else {
            store_fail(&tx, &why, "commit");
        }
        if (tx_open(&tx)) tx_step(&tx, TX_ROLLBACK);
        W.conn->audit.valid = false;
        W.conn->audit.cp_known = false;
        checkpointed = 0;
        atomic_fetch_add(&W.failed_commits, 1);
        for (unit *u = list; u; u = u->next) {
            if (u->rc) continue;
            unit_undo(u);
            store_reply_clear(u->reply);
            *u->se = why;
            u->rc = -1;
        }
    }
    if (checkpointed > 0) {
        atomic_fetch_add(&W.checkpoints, 1);
        store_checkpoint_hook hook = store_audit_hook();
        if (hook) hook(&cp);
    }
    atomic_fetch_add(&W.batches, 1);
    atomic_fetch_add(&W.units, (unsigned long)n);
    if (n > atomic_load(&W.max_batch)) atomic_store(&W.max_batch, n);
}

static void ckpt_mend(void);

static void *writer_main(void *arg)
{
    (void)arg;
    tl_is_writer = true;
    pthread_setname_np(pthread_self(), "sarye-writer");
    pthread_mutex_lock(&W.mu);
    for (;;) {
        while (!W.head && !W.stop && !W.load) pthread_cond_wait(&W.cv, &W.mu);
        if (W.load) {
            /* Between batches: what it reads is every committed change, and
             * no change is pending. */
            W.load = false;
            pthread_mutex_unlock(&W.mu);
            char err[256] = "";
            int rc = counts_load(W.conn->db, err, sizeof err);
            pthread_mutex_lock(&W.mu);
            W.load_rc = rc;
            str_copy(W.load_err, sizeof W.load_err, err);
            W.load_done = true;
            pthread_cond_broadcast(&W.load_cv);
            continue;
        }
        if (!W.head && W.stop) break;
        /* Everything queued so far, up to MAX_BATCH, is one transaction. */
        unit *list = W.head, *last = list;
        int n = 1;
        while (last->next && n < MAX_BATCH) {
            last = last->next;
            n++;
        }
        W.head = last->next;
        if (!W.head) W.tail = NULL;
        last->next = NULL;
        atomic_fetch_sub(&W.queued, n);
        pthread_mutex_unlock(&W.mu);
        run_batch(list);
        for (unit *u = list, *next; u; u = next) {
            next = u->next; /* u lives on its caller's stack: read before waking it */
            sem_post(&u->done);
        }
        ckpt_mend();
        pthread_mutex_lock(&W.mu);
    }
    pthread_mutex_unlock(&W.mu);
    return NULL;
}

/* ---- the checkpointer: folds the log into the database beside the writer,
 * not in its commits ---- */
#define CKPT_FRAMES STORE_CKPT_FRAMES               /* a checkpoint falls due (as SQLite's own) */
#define CKPT_INLINE_FRAMES STORE_CKPT_INLINE_FRAMES /* the writer makes it: the log must end somewhere */
static struct {
    pthread_t thread;
    bool started, stop, due, copying;
    bool retry;      /* the writer's: no checkpointer, and it folded the log itself; try to start one */
    bool warned;     /* the writer's: the checkpointer's failure to start was logged */
    int next_at, last_frames; /* the writer's: where the next pass falls due, and the log's length */
    pthread_mutex_t mu;
    pthread_cond_t cv, idle;
    store_conn *conn;
    atomic_ulong runs, inline_runs;
    atomic_ulong failures;   /* checkpoints that failed (the disk: an fsync or a write of the database) */
    atomic_ulong unlogged;   /* ... not yet said in the log */
    atomic_llong logged_ns;  /* when the last was said (monotonic), 0: never */
    int inline_next;         /* the writer's: after its own checkpoint failed, the log's length to try again at */
    atomic_bool running; /* started, for /metrics */
} K = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER};

/* One checkpoint of the log (by the checkpointer, or the writer); true
 * when it did not fail. A failure is the disk's (the database's write or
 * fsync): the log is kept whole and grows until a checkpoint succeeds.
 * /metrics counts every failure; the log says them at most once every ten
 * seconds, with how many there were since. Another process's checkpoint
 * under way (busy) is no failure. */
#define CKPT_LOG_EVERY_NS (10 * 1000000000LL)
static bool ckpt_run(sqlite3 *db, const char *name, atomic_ulong *runs)
{
    int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc == SQLITE_OK) {
        atomic_fetch_add(runs, 1);
        return true;
    }
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) return true;
    atomic_fetch_add(&K.failures, 1);
    atomic_fetch_add(&K.unlogged, 1);
    long long now = time_mono_ns(), last = atomic_load(&K.logged_ns);
    if ((!last || now - last >= CKPT_LOG_EVERY_NS) && atomic_compare_exchange_strong(&K.logged_ns, &last, now))
        log_msg(LOG_ERROR, "store: checkpoints of the log failed; the log is kept and grows until one succeeds",
                " failed=%lu error=\"%s\" code=%d", atomic_exchange(&K.unlogged, 0), sqlite3_errmsg(db), rc);
    return false;
}

/* After each of the writer's commits (SQLite's hook, on the writer's
 * thread): the log holds frames frames. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)arg;
    if (frames < K.last_frames) K.next_at = CKPT_FRAMES, K.inline_next = 0; /* the log started over */
    K.last_frames = frames;
    if ((frames >= CKPT_INLINE_FRAMES || (!K.started && frames >= CKPT_FRAMES)) && frames >= K.inline_next) {
        /* The checkpointer has not caught up (the writer appends while it
         * copies, so its last pass never reaches the end), or there is none
         * (its connection could not be opened): the writer folds the rest
         * in itself, nothing is appended meanwhile, and the next
         * transaction starts the log over. While the checkpointer copies,
         * it holds the checkpoint's lock and the writer's own would fail:
         * the writer waits for its pass to end (it never waits on the
         * writer), so the log stops here and not a pass's worth later. */
        pthread_mutex_lock(&K.mu); /* held: no pass starts meanwhile */
        while (K.copying) pthread_cond_wait(&K.idle, &K.mu);
        /* Failed, it is tried again a CKPT_FRAMES of log later, not after
         * every commit: each try copies the whole log. */
        if (!ckpt_run(db, name, &K.inline_runs)) K.inline_next = frames + CKPT_FRAMES;
        pthread_mutex_unlock(&K.mu);
        if (!K.started) K.retry = true; /* between batches, not inside SQLite's commit */
    } else if (K.started && frames >= K.next_at) {
        /* Once a pass a CKPT_FRAMES of log: a pass reaches no further than
         * the log's end when it starts, and each ends with an fsync of the
         * database; woken after every commit past the mark, it would make
         * one for every commit or two. */
        K.next_at = frames + CKPT_FRAMES;
        pthread_mutex_lock(&K.mu);
        K.due = true;
        pthread_cond_signal(&K.cv);
        pthread_mutex_unlock(&K.mu);
    }
    return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "sarye-ckpt");
    pthread_mutex_lock(&K.mu);
    for (;;) {
        while (!K.due && !K.stop) pthread_cond_wait(&K.cv, &K.mu);
        if (K.stop) break;
        K.due = false;
        K.copying = true;
        pthread_mutex_unlock(&K.mu);
        ckpt_run(K.conn->db, NULL, &K.runs);
        pthread_mutex_lock(&K.mu);
        K.copying = false;
        pthread_cond_broadcast(&K.idle);
    }
    pthread_mutex_unlock(&K.mu);
    return NULL;
}

/* Starts the checkpointer: when the writer starts, and again, between
 * batches, each time the writer had to fold the log in itself for want of
 * one (its connection could not be opened: memory, file descriptors). Until
 * one runs, the writer folds the log every CKPT_FRAMES frames. */
static void ckpt_start(void)
{
    char err[256];
    K.retry = false;
    K.conn = conn_open(true, err, sizeof err);
    if (K.conn) {
        K.stop = K.due = false;
        if (!pthread_create(&K.thread, NULL, ckpt_main, NULL)) {
            K.started = true;
            atomic_store(&K.running, true);
            if (K.warned) log_msg(LOG_INFO, "store: the checkpointer started", "%s", "");
            K.warned = false;
            return;
        }
        str_copy(err, sizeof err, "cannot start its thread");
        conn_forget(K.conn);
        conn_free(K.conn);
        K.conn = NULL;
    }
    if (!K.warned) /* once, not at every retry */
        log_msg(LOG_WARN, "store: no checkpointer; the writer checkpoints", " error=\"%s\"", err);
    K.warned = true;
}

/* Between the writer's batches: a checkpointer that is due to be tried
 * again is. */
static void ckpt_mend(void)
{
    if (K.retry) ckpt_start();
}

static void ckpt_stop(void)
{
    K.retry = K.warned = false;
    if (!K.started) return;
    thread_stop(K.thread, &K.mu, &K.cv, &K.stop);
    K.started = false;
    atomic_store(&K.running, false);
    K.conn = NULL; /* closed with the others */
}

static int writer_start(char *err, size_t errlen)
{
    W.conn = conn_open(true, err, errlen);
    if (!W.conn) return -1;
    if (prepare_control(W.conn, err, errlen)) {
        conn_forget(W.conn);
        conn_free(W.conn);
        W.conn = NULL;
        return -1;
    }
    K.next_at = CKPT_FRAMES; /* with or without a checkpointer: the hook reads it */
    K.last_frames = K.inline_next = 0;
    ckpt_start();
    sqlite3_wal_hook(W.conn->db, wal_hook, NULL); /* in place of SQLite's autocheckpoint */
    sqlite3_commit_hook(W.conn->db, commit_guard, NULL);
    W.stop = false;
    if (pthread_create(&W.thread, NULL, writer_main, NULL)) {
        str_copy(err, errlen, "cannot start the writer thread");
        ckpt_stop();
        conn_forget(W.conn);
        conn_free(W.conn);
        W.conn = NULL;
        return -1;
    }
    W.started = true;
    return 0;
}

static void writer_stop(void)
{
    if (!W.started) return;
    thread_stop(W.thread, &W.mu, &W.cv, &W.stop); /* it drains the queue first */
    W.started = false;
    W.conn = NULL; /* closed with the others */
    ckpt_stop();
}

static int write_unit(const store_idem *idem, store_work_fn fn, void *arg, store_reply *reply, err_t *e,
                      store_err *se, bool rerunnable)
{
    if (tl_is_writer || !W.started) {
        /* A unit that writes again from inside a unit would wait for itself. */
        return store_err_set(se, STORE_INTERNAL, "store_write called %s",
                             tl_is_writer ? "from a unit of work" : "before the store is open");
    }
    unit u = {.fn = fn, .arg = arg, .reply = reply, .e = e, .se = se, .idem = idem, .hook = tl_hook,
              .undo = tl_hook_undo, .hook_ctx = tl_hook_ctx, .rerunnable = rerunnable};
    sem_init(&u.done, 0, 0);
    pthread_mutex_lock(&W.mu);
    if (W.tail) W.tail->next = &u;
    else W.head = &u;
    W.tail = &u;
    atomic_fetch_add(&W.queued, 1);
    pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
    while (sem_wait(&u.done) && errno == EINTR) {}
    sem_destroy(&u.done);
    return u.rc;
}

int store_write(const store_idem *idem, store_work_fn fn, void *arg, store_reply *reply, err_t *e, store_err *se)
{
    return write_unit(idem, fn, arg, reply, e, se, false);
}

int store_write_rerunnable(const store_idem *idem, store_work_fn fn, void *arg, store_reply *reply, err_t *e,
                           store_err *se)
{
    return write_unit(idem, fn, arg, reply, e, se, true);
}

bool store_on_writer(void) { return tl_is_writer; }

int store_counts_start(char *err, size_t errlen)
{
    if (!W.started) {
        str_copy(err, errlen, "the store is not open");
        return -1;
    }
    pthread_mutex_lock(&W.mu);
    W.load = true;
    W.load_done = false;
    pthread_cond_signal(&W.cv);
    while (!W.load_done) pthread_cond_wait(&W.load_cv, &W.mu);
    int rc = W.load_rc;
    if (rc) str_copy(err, errlen, W.load_err);
    pthread_mutex_unlock(&W.mu);
    return rc;
}

int store_read(store_work_fn fn, void *arg, store_reply *reply, err_t *e, store_err *se)
{
    store_conn *c = conn_get(se);
    if (!c) return -1;
    store_tx tx = {c->db, false, c};
    if (tx_step(&tx, "BEGIN") != SQLITE_OK) return store_fail(&tx, se, "begin");
    int rc = fn(&tx, arg, reply, e);
    /* A read-only transaction: COMMIT and ROLLBACK are the same; ROLLBACK
     * also undoes anything a buggy read might have tried. */
    tx_step(&tx, "ROLLBACK");
    if (rc != 0) store_reply_clear(reply);
    return rc;
}

char *store_metrics(void)
{
    char *s = NULL;
    unsigned long b = atomic_load(&W.batches), u = atomic_load(&W.units);
    unsigned long wal_writes, wal_calls;
    walbuf_counts(&wal_writes, &wal_calls);
    if (asprintf(&s,
                 "# HELP sarye_store_batches_total Write transactions committed by the writer (group commit).\n"
                 "# TYPE sarye_store_batches_total counter\n"
                 "sarye_store_batches_total %lu\n"
                 "# HELP sarye_store_units_total Units of work (writes and audit records) in those batches.\n"
                 "# TYPE sarye_store_units_total counter\n"
                 "sarye_store_units_total %lu\n"
                 "# HELP sarye_store_batch_max The largest batch so far.\n"
                 "# TYPE sarye_store_batch_max gauge\n"
                 "sarye_store_batch_max %d\n"
                 "# HELP sarye_store_queue_depth Units of work waiting for the writer, not yet in a batch (a batch"
                 " takes at most %d).\n"
                 "# TYPE sarye_store_queue_depth gauge\n"
                 "sarye_store_queue_depth %d\n"
                 "# HELP sarye_store_failed_commits_total Batches whose commit failed, or whose transaction SQLite"
                 " rolled back (every unit answered 503).\n"
                 "# TYPE sarye_store_failed_commits_total counter\n"
                 "sarye_store_failed_commits_total %lu\n"
                 "# HELP sarye_store_batch_reruns_total Batches rolled back and run again, a savepoint per unit,"
                 " because a unit failed.\n"
                 "# TYPE sarye_store_batch_reruns_total counter\n"
                 "sarye_store_batch_reruns_total %lu\n"
                 "# HELP sarye_audit_checkpoints_total Signed checkpoints of the audit chain written by the writer.\n"
                 "# TYPE sarye_audit_checkpoints_total counter\n"
                 "sarye_audit_checkpoints_total %lu\n"
                 "# HELP sarye_store_wal_writes_total Writes SQLite made to the write-ahead log (a frame is two).\n"
                 "# TYPE sarye_store_wal_writes_total counter\n"
                 "sarye_store_wal_writes_total %lu\n"
                 "# HELP sarye_store_wal_write_calls_total Write system calls those became (a transaction's frames"
                 " are gathered into one).\n"
                 "# TYPE sarye_store_wal_write_calls_total counter\n"
                 "sarye_store_wal_write_calls_total %lu\n"
                 "# HELP sarye_store_memory_refused_total Store operations that failed because memory was"
                 " refused (answered 503 store_unavailable): the machine is out of memory.\n"
                 "# TYPE sarye_store_memory_refused_total counter\n"
                 "sarye_store_memory_refused_total %lu\n",
                 b, u, atomic_load(&W.max_batch), MAX_BATCH, atomic_load(&W.queued), atomic_load(&W.failed_commits),
                 atomic_load(&W.reruns), atomic_load(&W.checkpoints), wal_writes, wal_calls,
                 atomic_load(&oom_refusals)) < 0)
        return NULL;
    /* The commits' durations, as a Prometheus histogram; and who folded the
     * log into the database. */
    char h[4096];
    size_t n = (size_t)snprintf(h, sizeof h,
                                "# HELP sarye_store_log_checkpoints_total Checkpoints of the write-ahead log into the"
                                " database: by the checkpointer thread, beside the writer, or by the writer itself"
                                " when the log reached %d frames.\n"
                                "# TYPE sarye_store_log_checkpoints_total counter\n"
                                "sarye_store_log_checkpoints_total{by=\"checkpointer\"} %lu\n"
                                "sarye_store_log_checkpoints_total{by=\"writer\"} %lu\n"
                                "# HELP sarye_store_checkpointer_running 1 while the checkpointer thread folds the"
                                " log beside the writer; 0 when it could not start, and the writer folds the log"
                                " itself every %d frames (and tries to start it again each time).\n"
                                "# TYPE sarye_store_checkpointer_running gauge\n"
                                "sarye_store_checkpointer_running %d\n"
                                "# HELP sarye_store_log_checkpoint_failures_total Checkpoints of the log that failed:"
                                " the disk refused a write or an fsync of the database; the log is kept and grows"
                                " until one succeeds.\n"
                                "# TYPE sarye_store_log_checkpoint_failures_total counter\n"
                                "sarye_store_log_checkpoint_failures_total %lu\n",
                                CKPT_INLINE_FRAMES, atomic_load(&K.runs), atomic_load(&K.inline_runs), CKPT_FRAMES,
                                atomic_load(&K.running) ? 1 : 0, atomic_load(&K.failures));
    n += (size_t)snprintf(h + n, sizeof h - n,
                                "# HELP sarye_store_commit_seconds How long the writer's commits took (the log's"
                                " write and fsync, and a checkpoint of the log when the writer had to make one).\n"
                                "# TYPE sarye_store_commit_seconds histogram\n");
    unsigned long cum = 0;
    for (size_t i = 0; i <= COMMIT_BUCKETS && n < sizeof h; i++) {
        cum += atomic_load(&W.commit_le[i]);
        if (i < COMMIT_BUCKETS)
            n += (size_t)snprintf(h + n, sizeof h - n, "sarye_store_commit_seconds_bucket{le=\"%g\"} %lu\n",
                                  (double)COMMIT_LE_US[i] / 1e6, cum);
        else
            n += (size_t)snprintf(h + n, sizeof h - n,
                                  "sarye_store_commit_seconds_bucket{le=\"+Inf\"} %lu\n"
                                  "sarye_store_commit_seconds_sum %.6f\nsarye_store_commit_seconds_count %lu\n",
                                  cum, (double)atomic_load(&W.commit_us) / 1e6, cum);
    }
    char *all = NULL;
    if (asprintf(&all, "%s%s", s, h) < 0) all = NULL;
    free(s);
    return all;
}

/* ---- opening and closing ---- */
int store_open(const store_opts *opts, char *err, size_t errlen)
{
    /* SQLite counts every allocation under one process-wide mutex unless
     * told not to: with a connection per thread, that mutex was the most
     * contended lock of the server (futex calls per request). Nothing here
     * reads sqlite3_memory_used. Only possible before SQLite initialises:
     * a second store_open (tests) keeps the first setting. */
    static bool configured;
    if (!configured) {
        configured = true;
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        S.vfs = walbuf_register();
    }
    str_copy(S.path, sizeof S.path, opts->path);
    S.full = opts->durability_full;
    S.busy_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
    if (strcmp(S.path, ":memory:") && mkdir_parents(S.path)) {
        snprintf(err, errlen, "cannot create the folder of '%s': %s", S.path, strerror(errno));
        return -1;
    }
    /* The database holds personal data: its file is its owner's alone, and
     * SQLite makes the -wal and -shm files with the database's mode. The
     * umask covers the file SQLite itself would make (store_open runs
     * before any other thread of sarye starts). */
    mode_t old_mask = umask(077);
    if (strcmp(S.path, ":memory:")) {
        int fd = open(S.path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) close(fd);
        struct stat st;
        if (stat(S.path, &st) == 0 && (st.st_mode & 077))
            log_msg(LOG_WARN, "store: the database file is readable by others", " db=\"%s\" mode=%03o hint=\"chmod 600\"",
                    S.path, (unsigned)(st.st_mode & 0777));
    }
    tl_conn = conn_open(false, err, errlen);
    umask(old_mask);
    if (!tl_conn) return -1;
    S.open = true;
    return 0;
}

bool store_ready(void) { return S.open && S.migrated; }

void store_close(void)
{
    writer_stop();
    store_keyring_close();
    pthread_mutex_lock(&S.mu);
    store_conn *all = S.all;
    S.all = NULL;
    pthread_mutex_unlock(&S.mu);
    for (store_conn *c = all; c;) {
        store_conn *next = c->next;
        if (!next) {
            /* The last one closes: fold the WAL back into the database, as
             * far as no other process reads it (SQLite's close then removes
             * the log if none has the database open). PASSIVE, not
             * TRUNCATE: a command run beside a live server (`sarye token
             * create`) must not hold the server's writer until every
             * reader of the log is done. */
            sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        }
        conn_free(c);
        c = next;
    }
    tl_conn = NULL;
    S.open = S.migrated = false;
}

int store_migrate(int *version, char *err, size_t errlen)
{
    int rc = -1;
    store_conn *c = conn_open(true, err, errlen);
    if (!c) return -1;
    if (exec(c->db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
             err, errlen))
        goto done;
    int current = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1, &st, NULL) !=
        SQLITE_OK) {
        str_copy(err, errlen, sqlite3_errmsg(c->db));
        goto done;
    }
    if (sqlite3_step(st) == SQLITE_ROW) current = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (current > migrations_count) {
        snprintf(err, errlen,
                 "the database schema is version %d but this sarye knows only up to %d; run a newer sarye",
                 current, migrations_count);
        goto done;
    }
    for (int v = current + 1; v <= migrations_count; v++) {
        if (exec(c->db, "BEGIN IMMEDIATE", err, errlen)) goto done;
        char rec[160], now[RFC3339_MAX];
        time_rfc3339(time_now_ms(), now);
        snprintf(rec, sizeof rec, "INSERT INTO schema_migrations VALUES (%d, '%s')", v, now);
        if (exec(c->db, migrations[v - 1], err, errlen) || exec(c->db, rec, err, errlen)) {
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
            char inner[400];
            str_copy(inner, sizeof inner, err);
            snprintf(err, errlen, "migration %d failed: %s", v, inner);
            goto done;
        }
        if (exec(c->db, "COMMIT", err, errlen)) goto done;
        log_msg(LOG_INFO, "store: migrated", " version=%d", v);
    }
    if (version) *version = migrations_count;
    /* The writer starts once the schema is current. */
    if (!W.started && writer_start(err, errlen)) goto done;
    S.migrated = true;
    rc = 0;
done:
    conn_forget(c);
    conn_free(c);
    return rc;
}
