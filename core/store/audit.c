/* audit.c: the audit trail of personal data. Each record carries the hash
 * of the one before it, so a changed or deleted record breaks the chain;
 * records are appended by the store's one writer, so the chain is a line,
 * never a tree. The writer keeps the chain's head while a batch runs (read
 * once per batch, restored when a unit rolls back). */
#include <stdio.h>
#include <string.h>

#include "store/internal.h"

static const char SQL_AUDIT_LAST[] = "SELECT seq, hash, at FROM audit ORDER BY seq DESC LIMIT 1";
static const char SQL_AUDIT_INSERT[] =
    "INSERT INTO audit (seq, at, actor, org_id, role, action, person_id, case_id, purpose, request_id, status,"
    " prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
/* The trail by seq: of a person (audit_person), of an actor (audit_actor),
 * or all (the rowid); since: from the first record at or after that time
 * (audit_at) on, which is exact because a record's time is never before the
 * one's before it (store_audit_append). */
enum { AUD_PERSON = 1, AUD_ACTOR = 2, AUD_SINCE = 4, AUD_AFTER = 8, AUD_SHAPES = 16 };

static void audit_list_sql(sql_buf *b, unsigned shape)
{
    const char *w = " WHERE";
    sql_add(b, "SELECT seq, at, actor, org_id, role, action, person_id, case_id, purpose, request_id, status,"
               " prev_hash, hash FROM audit");
    if (shape & AUD_PERSON) sql_add(b, "%s person_id = ?1", w), w = " AND";
    /* with a person, the person's index drives: +actor only filters */
    if (shape & AUD_ACTOR) sql_add(b, "%s %sactor = ?2", w, shape & AUD_PERSON ? "+" : ""), w = " AND";
    /* one lower bound on seq, so that the index range starts there */
#define SINCE_SEQ "(SELECT seq FROM audit WHERE at >= ?3 ORDER BY at LIMIT 1)"
    if ((shape & AUD_SINCE) && (shape & AUD_AFTER))
        sql_add(b, "%s seq > MAX(CAST(?4 AS INTEGER), " SINCE_SEQ " - 1) AND at >= ?3", w);
    else if (shape & AUD_SINCE)
        sql_add(b, "%s seq >= " SINCE_SEQ " AND at >= ?3", w);
    else if (shape & AUD_AFTER)
        sql_add(b, "%s seq > CAST(?4 AS INTEGER)", w);
#undef SINCE_SEQ
    sql_add(b, " ORDER BY seq LIMIT ?5");
}
static const char SQL_AUDIT_ALL[] =
    "SELECT seq, at, actor, org_id, role, action, person_id, case_id, purpose, request_id, status, prev_hash, hash"
    " FROM audit ORDER BY seq";

#define GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

/* The hash of a record: every field, and the hash before it. */
static void chain_hash(const char *prev, long long seq, const audit_entry *a, const char *at, char out[SHA256_HEX])
{
    char buf[2048];
    int n = snprintf(buf, sizeof buf, "%s|%lld|%s|%s|%s|%s|%s|%s|%s|%s|%s|%d", prev, seq, at, a->actor, a->org,
                     a->role, a->action, a->person_id ? a->person_id : "", a->case_id ? a->case_id : "",
                     a->purpose ? a->purpose : "", a->request_id, a->status);
    sha256_hex(buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1), out);
}

/* The chain's head: cached in the writer's connection during a batch. */
static int audit_head(store_tx *tx, store_audit_head *h, store_err *e)
{
    if (tx->conn->audit.valid) {
        *h = tx->conn->audit;
        return 0;
    }
    sqlite3_stmt *st = store_stmt(tx, SQL_AUDIT_LAST, e);
    if (!st) return -1;
    h->seq = 0;
    snprintf(h->hash, sizeof h->hash, "%s", GENESIS);
    h->at[0] = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        h->seq = sqlite3_column_int64(st, 0);
        snprintf(h->hash, sizeof h->hash, "%s", TEXT(st, 1));
        snprintf(h->at, sizeof h->at, "%s", TEXT(st, 2));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_fail(tx, e, "audit last");
    h->valid = true;
    return 0;
}

int store_audit_append(store_tx *tx, const audit_entry *a, store_err *e)
{
    store_audit_head h;
    if (audit_head(tx, &h, e)) return -1;
    long long seq = h.seq + 1;
    char prev[SHA256_HEX], at[RFC3339_MAX], hash[SHA256_HEX];
    snprintf(prev, sizeof prev, "%s", h.hash);
    time_rfc3339(time_now_ms(), at);
    /* A clock stepped back does not put a record before the one it follows:
     * the trail is in time order, which `since` relies on. */
    if (strcmp(at, h.at) < 0) snprintf(at, sizeof at, "%s", h.at);
    chain_hash(prev, seq, a, at, hash);
    sqlite3_stmt *st = store_stmt(tx, SQL_AUDIT_INSERT, e);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_text(st, 2, at, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, a->role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, a->action, -1, SQLITE_STATIC);
    store_bind_opt(st, 7, a->person_id);
    store_bind_opt(st, 8, a->case_id);
    store_bind_opt(st, 9, a->purpose);
    sqlite3_bind_text(st, 10, a->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 11, a->status);
    sqlite3_bind_text(st, 12, prev, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "audit append");
    tx->conn->audit.valid = true;
    tx->conn->audit.seq = seq;
    memcpy(tx->conn->audit.hash, hash, sizeof hash);
    memcpy(tx->conn->audit.at, at, sizeof at);
    return 0;
}

static int audit_read(sqlite3_stmt *st, void *row)
{
    audit_row *a = row;
    const char **const f[] = {NULL,          &a->at,      &a->actor,   &a->org,        &a->role,
                              &a->action,    &a->person_id, &a->case_id, &a->purpose, &a->request_id,
                              NULL,          &a->prev_hash, &a->hash};
    a->mem = store_texts(st, f, 13);
    a->seq = sqlite3_column_int64(st, 0);
    a->status = sqlite3_column_int(st, 10);
    return a->mem ? 0 : -1;
}

static void audit_drop(void *row) { audit_row_free(row); }

int store_audit_list(store_tx *tx, const audit_query *q, audit_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sql_buf b = {0};
    audit_list_sql(&b, (q->person_id && *q->person_id ? AUD_PERSON : 0) | (q->actor && *q->actor ? AUD_ACTOR : 0) |
                           (q->since && *q->since ? AUD_SINCE : 0) | (q->after && *q->after ? AUD_AFTER : 0));
    sqlite3_stmt *st = store_stmt_built(tx, &b, e);
    sql_free(&b);
    if (!st) return -1;
    store_bind_opt(st, 1, q->person_id);
    store_bind_opt(st, 2, q->actor);
    store_bind_opt(st, 3, q->since);
    store_bind_opt(st, 4, q->after);
    sqlite3_bind_int(st, 5, q->limit + 1);
    void *items;
    if (store_rows(tx, st, q->limit, sizeof *out->items, audit_read, audit_drop, &items, &out->n, &out->more, e,
                   "audit list"))
        return -1;
    out->items = items;
    if (out->n) snprintf(out->last, sizeof out->last, "%lld", out->items[out->n - 1].seq);
    return 0;
}

void store_sql_of_audit(store_sql_fn fn, void *ctx)
{
    STORE_SQL(fn, ctx, SQL_AUDIT_LAST);
    STORE_SQL(fn, ctx, SQL_AUDIT_INSERT);
    fn("SQL_AUDIT_ALL", SQL_AUDIT_ALL, STORE_SQL_TOOL, ctx);
    for (unsigned shape = 0; shape < AUD_SHAPES; shape++) {
        sql_buf b = {0};
        char name[64];
        audit_list_sql(&b, shape);
        snprintf(name, sizeof name, "audit list (shape %u)", shape);
        if (!b.oom) fn(name, b.s, STORE_SQL_REQUEST, ctx);
        sql_free(&b);
    }
}

int store_audit_verify(store_tx *tx, long long *records, long long *broken_at, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_AUDIT_ALL, e);
    if (!st) return -1;
    char prev[SHA256_HEX] = GENESIS, hash[SHA256_HEX];
    long long expect = 1;
    int rc;
    *records = 0;
    *broken_at = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        long long seq = sqlite3_column_int64(st, 0);
        audit_entry a = {.actor = TEXT(st, 2), .org = TEXT(st, 3), .role = TEXT(st, 4), .action = TEXT(st, 5),
                         .person_id = (const char *)sqlite3_column_text(st, 6),
                         .case_id = (const char *)sqlite3_column_text(st, 7),
                         .purpose = (const char *)sqlite3_column_text(st, 8), .request_id = TEXT(st, 9),
                         .status = sqlite3_column_int(st, 10)};
        chain_hash(prev, seq, &a, TEXT(st, 1), hash);
        if (seq != expect || strcmp(prev, TEXT(st, 11)) || strcmp(hash, TEXT(st, 12))) {
            *broken_at = seq != expect ? expect : seq;
            break;
        }
        snprintf(prev, sizeof prev, "%s", TEXT(st, 12));
        expect++;
        (*records)++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_fail(tx, e, "audit verify");
    return 0;
}
