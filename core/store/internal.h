/* internal.h: helpers shared by the store's resource files; not part of the
 * store's public header. The SQLite parts of the store live here. */
#ifndef SARYE_STORE_INTERNAL_H
#define SARYE_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/records.h"

typedef struct {
    const char *sql; /* the static string the statement was prepared from */
    sqlite3_stmt *stmt;
} cached_stmt;

/* The head of the audit chain as the writer last wrote it, valid within one
 * batch (another process may append between batches). */
typedef struct {
    bool valid;
    long long seq;
    char hash[SHA256_HEX];
    bool cp_known;        /* cp_through read (it may lag: another process checkpoints too) */
    long long cp_through; /* position of the last checkpoint */
} store_audit_head;

typedef struct store_conn {
    sqlite3 *db;
    bool writer;
    cached_stmt *cache;
    size_t n_cache, cap_cache;
    store_audit_head audit; /* the writer's only */
    struct store_conn *next;
} store_conn;

struct store_tx {
    sqlite3 *db;
    bool write;
    store_conn *conn;
};

/* A cached prepared statement for sql on tx's connection, reset and with
 * bindings cleared. sql must be a string with static storage: it is the
 * cache key. NULL with e set (STORE_INTERNAL) on a prepare error. */
sqlite3_stmt *store_stmt(store_tx *tx, const char *sql, store_err *e);
/* The stored answer of an Idempotency-Key inside tx: 1 replayed, 0 not
 * seen, -1 with e (STORE_KEY_REUSED, or the store's failure). */
int store_idem_lookup(store_tx *tx, const store_idem *idem, store_reply *reply, store_err *e);
/* Sets e for a failed SQLite call — the one place SQLite's result codes
 * become store kinds (busy or locked: STORE_BUSY; I/O or a full disk:
 * STORE_UNAVAILABLE; anything else: STORE_INTERNAL) — and logs the SQLite
 * message. Returns -1. */
int store_fail(store_tx *tx, store_err *e, const char *what);

/* The database's path (for messages). */
const char *store_path(void);

/* ---- the audit trail's keys and checkpoints (audit.c, keyring.c) ---- */
/* At the end of a writer batch: a checkpoint if `every` records have been
 * appended since the last; 1 written (into out), 0 not. */
int store_audit_batch_checkpoint(store_tx *tx, audit_checkpoint *out);
store_checkpoint_hook store_audit_hook(void);
/* The text an epoch's endorsement signs. */
int audit_epoch_message(const audit_epoch *ep, char *buf, size_t n);
/* The audit key that chained record seq: *legacy for records of the first
 * sarye (an unkeyed chain; NULL returned); *usable false when its epoch's
 * key cannot be opened. Without a keyring (unit tests): the current key. */
const unsigned char *keyring_mac_for(long long seq, bool *legacy, bool *usable);
/* The current epoch (0 without a keyring). */
int keyring_epoch_now(void);

/* Idempotency-Key answers are sealed under a key, bound to their scope and
 * key (store.c); malloc'd; NULL on failure. */
char *store_idem_seal(const unsigned char body_key[32], const char *scope, const char *key, const char *body);
char *store_idem_open(const unsigned char body_key[32], const char *scope, const char *key, const char *sealed);

#define TEXT(st, i) ((const char *)sqlite3_column_text((st), (i)))

/* Whose records a principal sees: its own organisation's; a district's
 * (시·군·구 희망복지지원단) also those of the dong centres of its region. In
 * SQL write VISIBLE_TO("org_id") and bind with store_bind_viewer (it takes
 * the parameters ?20 to ?22). */
#define VISIBLE_TO(col) \
    "(" col " = ?20 OR (?21 = 1 AND " col " IN (SELECT id FROM orgs WHERE type = 'emd' AND region = ?22)))"
void store_bind_viewer(sqlite3_stmt *st, const principal *p);

/* Binds text, or NULL for a NULL or empty string. */
void store_bind_opt(sqlite3_stmt *st, int i, const char *v);

/* ---- reading rows (list.c) ---- */
/* Copies the text of the current row's columns into one block: *fields[i]
 * points at column i's text, or is NULL for SQL NULL; a NULL fields[i]
 * skips column i. The row owns the block; NULL when out of memory. */
char *store_texts(sqlite3_stmt *st, const char **const fields[], int n);
/* Column i parsed as JSON (flags as json_loads'), or NULL for SQL NULL or
 * text that does not parse. */
json_t *store_json_col(sqlite3_stmt *st, int i, size_t flags);
/* Steps st and collects column 0 of every row as a string vector: *out is
 * one allocation holding the pointers and the strings. */
int store_strv(store_tx *tx, sqlite3_stmt *st, const char ***out, size_t *n, store_err *e);

/* Steps st into an array of rows of size bytes, each read by read (0, or -1
 * when out of memory): at most limit rows (limit < 0: all), *more when st
 * had another. On failure the rows read so far are dropped (drop may be
 * NULL) and *items is NULL. st is reset. */
int store_rows(store_tx *tx, sqlite3_stmt *st, int limit, size_t size, int (*read)(sqlite3_stmt *, void *),
               void (*drop)(void *), void **items, size_t *n, bool *more, store_err *e, const char *what);
/* Reads a case row from the columns of CASE_COLS (cases.c), in order:
 * id, person_id, program, org_id, region, source, referral_id, stage,
 * status, version, assigned_to, opened_at, plugin_generation. */
int store_case_read(sqlite3_stmt *st, void *row);
#define STORE_CASE_COLS                                                                    \
    "id, person_id, program, org_id, region, source, referral_id, stage, status, version," \
    " assigned_to, opened_at, plugin_generation"

/* Frees an array of n rows of size bytes, each with drop (may be NULL). */
void store_rows_free(void *items, size_t n, size_t size, void (*drop)(void *));

#endif
