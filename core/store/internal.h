/* internal.h: helpers shared by the store's resource files; not part of the
 * store's public header. The SQLite parts of the store live here. */
#ifndef SARYE_STORE_INTERNAL_H
#define SARYE_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/records.h"

/* A text bound with SQLITE_TRANSIENT is copied, and the copy can be refused
 * (out of memory): SQLite then binds NULL and says so only in the bind's
 * return code, so a statement would run with NULL in place of an id (a row
 * "not found", a NULL written). In the store's files every bind of text
 * goes through store_bind_text, and a statement one of whose binds was
 * refused fails its next step with SQLITE_NOMEM (store_step), which the
 * store answers as every refusal of memory: unavailable, retry. */
int store_bind_text(sqlite3_stmt *st, int i, const char *s, int n, void (*del)(void *));
int store_step(sqlite3_stmt *st);
#define sqlite3_bind_text(st, i, s, n, del) store_bind_text((st), (i), (s), (n), (del))
#define sqlite3_step(st) store_step(st)

typedef struct {
    const char *sql; /* the static string the statement was prepared from, or
                      * the cache's own copy of a built text (built) */
    sqlite3_stmt *stmt;
    bool built;
    unsigned hash; /* of a built text */
} cached_stmt;

/* A change to a row count the store keeps for /metrics (counts.c), waiting
 * for its batch to commit. */
typedef struct {
    int family;
    char a[64], b[32];
    long long delta;
} count_delta;

/* The head of the audit chain as the writer last wrote it, valid within one
 * batch (another process may append between batches). */
typedef struct {
    bool valid;
    long long seq;
    char hash[SHA256_HEX];
    bool cp_known;        /* cp_through read (it may lag: another process checkpoints too) */
    long long cp_through; /* position of the last checkpoint */
    char at[RFC3339_MAX]; /* the last record's time: a record is never earlier */
} store_audit_head;

typedef struct store_conn {
    sqlite3 *db;
    bool writer;
    cached_stmt *cache;
    size_t n_cache, cap_cache;
    size_t n_built; /* built statements in the cache */
    store_audit_head audit; /* the writer's only */
    count_delta *pending;   /* the writer's only: count changes of the batch */
    size_t n_pending, cap_pending;
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

/* ---- statements built from the filters actually given (list.c) ----
 * A list's WHERE clause names only the filters the caller gave, so that
 * SQLite walks the one index that answers it, in the order the page is
 * returned (never `(?1 IS NULL OR col = ?1)`, which no index can serve).
 * Built texts are cached per connection like the static ones, keyed by the
 * text. */
typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} sql_buf;
void sql_add(sql_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sql_free(sql_buf *b);
/* A cached prepared statement for a built text, reset and with bindings
 * cleared; NULL with e set (STORE_INTERNAL, also when b ran out of memory). */
sqlite3_stmt *store_stmt_built(store_tx *tx, const sql_buf *b, store_err *e);

/* The organisations whose rows p sees (own first, then a district's dong
 * centres by id), or only `only` when given and visible (none when not):
 * a vector as store_strv's. At most STORE_MAX_ARMS. */
#define STORE_MAX_ARMS 400
int store_viewer_orgs(store_tx *tx, const principal *p, const char *only, const char ***orgs, size_t *n,
                      store_err *e);
/* A page over several organisations: one SELECT per organisation (arm(b, k,
 * shape) writes the k-th, its organisation bound at ?(STORE_ORG_PARAM + k)),
 * joined by UNION ALL and merged in `order` (result column numbers), then
 * LIMIT ?limit_param. Each arm walks its own index in that order and SQLite
 * merges them (MERGE (UNION ALL)) and stops at the limit: a page costs the
 * same whatever the organisations hold. One organisation: the arm alone. */
#define STORE_ORG_PARAM 100
void sql_arms(sql_buf *b, size_t n_orgs, void (*arm)(sql_buf *b, int k, const void *shape), const void *shape,
              const char *order, int limit_param);
/* Binds orgs[k] to ?(STORE_ORG_PARAM + k). */
void store_bind_orgs(sqlite3_stmt *st, const char **orgs, size_t n);

/* ---- every statement the store prepares, for the query-plan test ----
 * Each resource file lists its statements (static ones by their name, built
 * ones in every shape their builder makes); tests/unit/test_plans.c runs
 * EXPLAIN QUERY PLAN on each against a migrated database and fails on a
 * scan of a table or a sort for ORDER BY on the request path. */
typedef enum {
    STORE_SQL_REQUEST, /* on a request path or the workers' loops: must walk an index */
    STORE_SQL_STARTUP, /* once when the server starts (counts for /metrics) */
    STORE_SQL_TOOL,    /* a command-line tool (audit verify) */
    STORE_SQL_FEW,     /* on a request path over a bounded set of rows: one person's or one
                        * organisation's (merges, live programs, tokens), one resource's waitlist,
                        * one region's resources: they may be filtered and sorted in memory */
} store_sql_use;
typedef void (*store_sql_fn)(const char *name, const char *sql, store_sql_use use, void *ctx);
void store_each_sql(store_sql_fn fn, void *ctx);
#define STORE_SQL(fn, ctx, name) (fn)(#name, (name), STORE_SQL_REQUEST, (ctx))
/* Each file's part of store_each_sql. */
void store_sql_of_store(store_sql_fn fn, void *ctx);
void store_sql_of_orgs(store_sql_fn fn, void *ctx);
void store_sql_of_people(store_sql_fn fn, void *ctx);
void store_sql_of_cases(store_sql_fn fn, void *ctx);
void store_sql_of_casework(store_sql_fn fn, void *ctx);
void store_sql_of_referrals(store_sql_fn fn, void *ctx);
void store_sql_of_outbox(store_sql_fn fn, void *ctx);
void store_sql_of_audit(store_sql_fn fn, void *ctx);
void store_sql_of_list(store_sql_fn fn, void *ctx);
void store_sql_of_counts(store_sql_fn fn, void *ctx);
void store_sql_of_keyring(store_sql_fn fn, void *ctx);
void store_sql_of_merges(store_sql_fn fn, void *ctx);
void store_sql_of_resources(store_sql_fn fn, void *ctx);
void store_sql_of_lookups(store_sql_fn fn, void *ctx);
void store_sql_of_history(store_sql_fn fn, void *ctx);

/* ---- row counts kept for /metrics (counts.c) ----
 * /metrics shows how many outbox messages are in each state and how many
 * open deadlines are overdue, at a constant cost: the counts are read from
 * the database once when the server starts (store_counts_start) and kept
 * since by the statements that change those rows, which record their change
 * here; a change is applied when its batch commits and dropped when its
 * unit or batch rolls back. Changes made by another process (none of the
 * command-line tools touches these tables) are seen at the next start. */
enum { COUNT_OUTBOX, COUNT_DEADLINE };
/* outbox: (agency, status) messages; deadline: open deadlines (kind, due_on).
 * Called inside a unit of work (no-op elsewhere). */
int store_count(store_tx *tx, int family, const char *a, const char *b, long long delta, store_err *e);
/* The writer's side: drop the changes after mark (a unit rolled back), apply
 * every pending change (the batch committed) or drop them all (it did not). */
void counts_unit_rollback(store_conn *c, size_t mark);
void counts_batch_done(store_conn *c, bool committed);
/* Reads the counts from the database on db (the writer's connection,
 * between batches). */
int counts_load(sqlite3 *db, char *err, size_t errlen);

/* Whose records a principal sees: its own organisation's; a district's
 * (시·군·구 희망복지지원단) also those of the dong centres of its region. In
 * SQL write VISIBLE_TO("org_id") and bind with store_bind_viewer (it takes
 * the parameters ?20 to ?22). */
#define VISIBLE_TO(col) \
    "(" col " = ?20 OR (?21 = 1 AND " col " IN (SELECT id FROM orgs WHERE type = 'emd' AND region = ?22)))"
void store_bind_viewer(sqlite3_stmt *st, const principal *p);
/* What an administrator or auditor oversees (store_oversees): everything
 * for a system operator, else its own organisation and, for a district,
 * the organisations of its region but districts and agencies. In SQL write
 * OVERSEEN_BY("org_id") and bind with store_bind_overseer (?23 to ?26). */
#define OVERSEEN_BY(col)                                                                                 \
    "(?23 = 1 OR " col " = ?24 OR (?25 = 1 AND " col " IN (SELECT id FROM orgs WHERE region = ?26"        \
    " AND type NOT IN ('district', 'agency'))))"
void store_bind_overseer(sqlite3_stmt *st, const principal *p);
/* A case is also seen by the organisation that leads it (cases.lead_org,
 * seed 004 주 사례기관), and a person by the lead of any of their cases;
 * bound with store_bind_viewer like VISIBLE_TO. */
#define CASE_VISIBLE(org, lead) "(" VISIBLE_TO(org) " OR " lead " = ?20)"
#define PERSON_VISIBLE(id, org) \
    "(" VISIBLE_TO(org) " OR EXISTS (SELECT 1 FROM cases lc WHERE lc.person_id = " id " AND lc.lead_org = ?20))"

/* Binds text, or NULL for a NULL or empty string. */
void store_bind_opt(sqlite3_stmt *st, int i, const char *v);

/* Whether a filter was given (NULL and "" are not). */
static inline bool store_given(const char *v) { return v && *v; }

/* ---- reading rows (list.c) ---- */
/* Copies the text of the current row's columns into one block: *fields[i]
 * points at column i's text, or is NULL for SQL NULL; a NULL fields[i]
 * skips column i. The row owns the block; NULL when out of memory. */
char *store_texts(sqlite3_stmt *st, const char **const fields[], int n);
/* Column i parsed as JSON (flags as json_loads'), or NULL for SQL NULL or
 * text that does not parse. */
json_t *store_json_col(sqlite3_stmt *st, int i, size_t flags);
/* The next number of a sequence: the one integer sql answers (a
 * COALESCE(MAX(seq), 0) + 1 over an index), key bound to ?1 when given.
 * Writes take it in a statement of their own: an INSERT ... SELECT from the
 * table it inserts into copies what it reads into a temporary table first,
 * on every run (unit_plans refuses one). */
int store_next_seq(store_tx *tx, const char *sql, const char *key, long long *seq, store_err *e);
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

/* The log is folded into the database by a checkpointer thread once it
 * holds STORE_CKPT_FRAMES frames, and by the writer itself past
 * STORE_CKPT_INLINE_FRAMES (store.c). */
#define STORE_CKPT_FRAMES 1000
#define STORE_CKPT_INLINE_FRAMES 8000

/* Registers (once) the VFS whose write-ahead logs gather a transaction's
 * writes into one (walbuf.c); its name, or NULL when SQLite's default VFS
 * cannot be wrapped (the store then opens with the default). */
const char *walbuf_register(void);
/* Writes SQLite made to write-ahead logs through that VFS, and the write
 * calls they became. */
void walbuf_counts(unsigned long *writes, unsigned long *calls);
/* Around a commit on db (its log opened through that VFS): begin forgets
 * the commit frames written so far; after a commit that failed, failed
 * spoils the commit frame that commit wrote, if it wrote one, so that
 * recovery from the log (the next start after a crash) stops before that
 * transaction: SQLite leaves its frames whole in the file when the log's
 * fsync fails, or memory for its index does, and a `kill -9` then would
 * bring back a batch every unit of which was answered "not kept". 0, or -1
 * when the frame could not be spoilt. */
void walbuf_commit_begin(sqlite3 *db);
int walbuf_commit_failed(sqlite3 *db);

#endif
