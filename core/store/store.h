/*
 * store: the SQLite case store. One connection per thread (opened lazily,
 * WAL, foreign keys, busy timeout, cached prepared statements), versioned
 * migrations compiled into the binary, and one function — store_write — that
 * runs every write as a unit of work in one BEGIN IMMEDIATE transaction,
 * together with its Idempotency-Key record. A later group-commit writer can
 * replace store_write's inside without touching callers.
 *
 * The resource functions (orgs, tokens, persons, households, cases, events)
 * are declared in store/records.h; they take a store_tx and run inside a
 * unit of work.
 */
#ifndef SARYE_STORE_H
#define SARYE_STORE_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "base/err.h"

typedef struct {
    const char *path;
    bool durability_full;  /* synchronous=FULL, else NORMAL */
    int busy_timeout_ms;
} store_opts;

/* A transaction in progress on this thread's connection. */
typedef struct store_tx {
    sqlite3 *db;
    bool write;
} store_tx;

/* What a unit of work answers: an HTTP status and a JSON body (owned). */
typedef struct {
    int status;
    json_t *body;
    bool replayed; /* true when the answer came from an Idempotency-Key record */
    json_t *record; /* if set, recorded for replays instead of body (to keep
                     * secrets shown once out of the idempotency table); owned */
} store_reply;

/* An Idempotency-Key: scope (the principal), key, and the request's hash. */
typedef struct {
    const char *scope;
    const char *key;
    const char *request_hash;
} store_idem;

typedef int (*store_work_fn)(store_tx *tx, void *arg, store_reply *reply, err_t *e);

/* Opens the store (creates the file's folder if needed) and checks it can be
 * used. Connections are opened per thread on first use. */
int store_open(const store_opts *opts, char *err, size_t errlen);
/* Applies pending migrations; *version receives the schema version. */
int store_migrate(int *version, char *err, size_t errlen);
/* Checkpoints the WAL and closes every connection. */
void store_close(void);
/* Closes the calling thread's connection (thread exit). */
void store_thread_done(void);
/* True once the store is open and migrated. */
bool store_ready(void);

/* Runs fn in one write transaction. With idem set: a stored answer for the
 * same key and request hash is replayed (reply->replayed, nothing runs); the
 * same key with another hash is a 409; a new 2xx answer is recorded with the
 * write, in the same transaction. Returns 0 or -1 with e set; on -1 nothing
 * was written. */
int store_write(const store_idem *idem, store_work_fn fn, void *arg, store_reply *reply, err_t *e);
/* A hook the calling thread may set for its next writes: it runs inside the
 * write's transaction, after a 2xx unit of work, and can veto the commit.
 * The HTTP layer records the audit of a write this way, in the write's own
 * transaction (one commit, one fsync). NULL clears it. */
typedef int (*store_write_hook)(store_tx *tx, const store_reply *reply, void *ctx, err_t *e);
void store_set_write_hook(store_write_hook fn, void *ctx);

/* Runs fn in one read transaction (a consistent snapshot). */
int store_read(store_work_fn fn, void *arg, store_reply *reply, err_t *e);
void store_reply_clear(store_reply *r);

/* A cached prepared statement for sql on tx's connection, reset and with
 * bindings cleared. sql must be a string with static storage: it is the
 * cache key. NULL with e set (500) on a prepare error. */
sqlite3_stmt *store_stmt(store_tx *tx, const char *sql, err_t *e);
/* Sets e to a 500 for a failed SQLite call, logging the SQLite message. */
int store_fail(store_tx *tx, err_t *e, const char *what);

#endif
