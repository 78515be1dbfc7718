/* internal.h: helpers shared by the store's resource files; not part of the
 * store's public header. */
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
 * cache key. NULL with e set (500) on a prepare error. */
sqlite3_stmt *store_stmt(store_tx *tx, const char *sql, err_t *e);
/* The stored answer of an Idempotency-Key inside tx: 1 replayed, 0 not
 * seen, -1 with e. */
int store_idem_lookup(store_tx *tx, const store_idem *idem, store_reply *reply, err_t *e);
/* Sets e for a failed SQLite call (503 busy or I/O, else 500), logging the
 * SQLite message. */
int store_fail(store_tx *tx, err_t *e, const char *what);

#define TEXT(st, i) ((const char *)sqlite3_column_text((st), (i)))
#define OPT(st, i) \
    (sqlite3_column_type((st), (i)) == SQLITE_NULL ? json_null() : json_string(TEXT(st, i)))

/* Whose records a principal sees: its own organisation's; a district's
 * (시·군·구 희망복지지원단) also those of the dong centres of its region. In
 * SQL write VISIBLE_TO("org_id") and bind with store_bind_viewer (it takes
 * the parameters ?20 to ?22). */
#define VISIBLE_TO(col) \
    "(" col " = ?20 OR (?21 = 1 AND " col " IN (SELECT id FROM orgs WHERE type = 'emd' AND region = ?22)))"
void store_bind_viewer(sqlite3_stmt *st, const principal *p);

/* Binds text, or NULL for a NULL or empty string. */
void store_bind_opt(sqlite3_stmt *st, int i, const char *v);

/* Steps st into {"items": [...], "next_cursor"}: st must select limit+1
 * rows; row renders one; cursor_col is the column a next page starts after. */
int store_page(store_tx *tx, sqlite3_stmt *st, int limit, json_t *(*row)(sqlite3_stmt *),
               int cursor_col, json_t **out, err_t *e);

#endif
