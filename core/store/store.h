/*
 * store: the SQLite case store. Reads run on the calling thread's own
 * connection, in a snapshot (WAL); writes are units of work handed to the
 * one writer thread, which commits many of them in one transaction (group
 * commit: a failing unit rolls back alone, one fsync per batch) and answers
 * each only once its batch is durable. Versioned migrations are compiled into the
 * binary. SQL, SQLite's types and its error codes stay inside core/store/:
 * callers see store_tx (opaque), the store's own outcomes (store_err) and
 * the rows of records.h. What a caller is told of an outcome (an HTTP
 * status, a message) is decided above the store.
 *
 * The resource functions (orgs, tokens, persons, households, cases, events
 * ...) are declared in store/records.h; they take a store_tx and run inside
 * a unit of work or a read.
 */
#ifndef SARYE_STORE_H
#define SARYE_STORE_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"

/* How a store call failed, in the store's terms; the same for any backend. */
typedef enum {
    STORE_OK = 0,
    STORE_NOT_FOUND,   /* no such row, or none the viewer may see */
    STORE_DUPLICATE,   /* a row with that key exists already */
    STORE_CONFLICT,    /* the row is not in the state the change needs (answered, revoked, not dead ...) */
    STORE_STALE,       /* the row's version is not the one the change was decided on */
    STORE_KEY_REUSED,  /* an Idempotency-Key already recorded for another request */
    STORE_BUSY,        /* the database stayed locked past the busy timeout: retry */
    STORE_UNAVAILABLE, /* the database cannot be opened, read or written (I/O error, disk full) */
    STORE_INTERNAL,    /* a bug in a statement, a corrupt value, or out of memory */
} store_kind;

typedef struct {
    store_kind kind;
    char message[200]; /* what happened, in words a person can act on; never SQL */
} store_err;

/* Sets e (kind and a printf message); returns -1. */
int store_err_set(store_err *e, store_kind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A memory allocation refused: STORE_UNAVAILABLE (503, retry), not a bug;
 * returns -1. */
int store_oom(store_err *e);
/* The kind's name ("not_found", "busy" ...), for logs and tests. */
const char *store_kind_name(store_kind kind);

typedef struct {
    const char *path;
    bool durability_full;  /* synchronous=FULL, else NORMAL */
    int busy_timeout_ms;
} store_opts;

/* A transaction in progress: a read snapshot, or a unit of work inside the
 * writer's batch. */
typedef struct store_tx store_tx;

/* What a unit of work answers, in the caller's terms: a status and a JSON
 * body (owned). The store records it whole for Idempotency-Key replays; it
 * reads only whether the status is a success (2xx). */
typedef struct {
    int status;
    json_t *body;
    bool replayed; /* true when the answer came from an Idempotency-Key record */
    json_t *record; /* if set, recorded for replays instead of body (to keep
                     * secrets shown once out of the idempotency table); owned */
    json_t *disclosed; /* ids of persons the answer discloses without naming
                        * them (a case's history, a de-identified export):
                        * for the audit trail, never sent; owned, or NULL */
} store_reply;

/* An Idempotency-Key: scope (the principal), key, and the request's hash. */
typedef struct {
    const char *scope;
    const char *key;
    const char *request_hash;
} store_idem;

/* A unit of work (or a read). It answers 0, or -1 with e set in the
 * caller's terms (the store carries e back untouched); the store's own
 * failures inside it come back from each store call as a store_err, which
 * the unit turns into its e. */
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

/* Runs fn as one unit of work on the writer thread, in the next batch, and
 * returns once that batch is committed (durable at durability=full). fn
 * must be quick C: it runs while every other write waits, so it never calls
 * plugins, the network, or store_write. With idem set: a stored answer for
 * the same key and request hash is replayed (reply->replayed, fn does not
 * run); the same key with another hash is STORE_KEY_REUSED; a new 2xx answer
 * is recorded with the write, in the same unit. Returns 0, or -1: either
 * the unit failed (e as fn or the write hook set it, se->kind STORE_OK) or
 * the store did (se says how: busy, unavailable, a commit that failed ...).
 * On -1 nothing of the unit was written. */
int store_write(const store_idem *idem, store_work_fn fn, void *arg, store_reply *reply, err_t *e, store_err *se);
/* As store_write, for a unit that may run more than once: fn changes
 * nothing but tx and reply (its arg is read, not consumed), so the writer
 * may roll its batch back and run it again. Batches of such units take no
 * savepoint per unit (a statement and a copy of every page a unit changes);
 * when one fails, the batch runs again with a savepoint for each. */
int store_write_rerunnable(const store_idem *idem, store_work_fn fn, void *arg, store_reply *reply, err_t *e,
                           store_err *se);
/* True on the writer thread (inside a unit of work). */
bool store_on_writer(void);
/* A hook the calling thread may set for its next writes: it runs inside the
 * write's transaction, after a 2xx unit of work, and returns -1 to veto the
 * commit (e says why), 1 when it wrote something, 0 when it had nothing to.
 * The HTTP layer records the audit of a write this way, in the write's own
 * transaction (one commit, one fsync). undo (may be NULL) is called when a
 * hook that succeeded is rolled back with its unit (the unit runs again,
 * or its batch did not commit): it forgets what the hook noted outside the
 * transaction. NULL clears both. */
typedef int (*store_write_hook)(store_tx *tx, const store_reply *reply, void *ctx, err_t *e);
typedef void (*store_write_undo)(void *ctx);
void store_set_write_hook(store_write_hook fn, store_write_undo undo, void *ctx);

/* Runs fn in one read transaction (a consistent snapshot) on the calling
 * thread's connection, which cannot write. Failures as store_write's. */
int store_read(store_work_fn fn, void *arg, store_reply *reply, err_t *e, store_err *se);
/* The stored answer of an Idempotency-Key, read ahead of deciding a write
 * (the unit checks again): 1 replayed into reply, 0 not seen, -1 with se
 * (STORE_KEY_REUSED for the same key with another request). */
int store_idem_replay(const store_idem *idem, store_reply *reply, store_err *se);
void store_reply_clear(store_reply *r);
/* Reads from the database, once, the counts /metrics shows of outbox
 * messages and open deadlines, and keeps them from then on as the writer
 * commits changes to them (store_outbox_counts, store_overdue_counts); until
 * it is called they are empty. The server calls it at start; a scan of those
 * rows, on the writer thread between two batches. */
int store_counts_start(char *err, size_t errlen);
/* Prometheus lines of the writer (batches, units); caller frees. */
char *store_metrics(void);

#endif
