/* audit.c: the audit trail of personal data. Each record carries the hash
 * of the one before it, so a changed or deleted record breaks the chain;
 * records are appended by the store's one writer, so the chain is a line,
 * never a tree. The writer keeps the chain's head while a batch runs (read
 * once per batch, restored when a unit rolls back). */
#include <stdio.h>
#include <string.h>

#include "store/internal.h"

static const char SQL_AUDIT_LAST[] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
static const char SQL_AUDIT_INSERT[] =
    "INSERT INTO audit (seq, at, actor, org_id, role, action, person_id, case_id, purpose, request_id, status,"
    " prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
/* The persons a record names when several (audit_persons, beside the
 * chain), and who may read a record: an auditor reads those of its
 * organisations' actors and those naming a person, a case or a token (as
 * purpose) of its organisations. */
static const char SQL_AUDIT_PERSON[] = "INSERT OR IGNORE INTO audit_persons (seq, person_id) VALUES (?1, ?2)";
static const char SQL_AUDIT_LIST[] =
    "SELECT a.seq, a.at, a.actor, a.org_id, a.role, a.action, a.person_id, a.case_id, a.purpose, a.request_id,"
    " a.status, a.prev_hash, a.hash,"
    " (SELECT group_concat(ap.person_id, ' ') FROM audit_persons ap WHERE ap.seq = a.seq)"
    " FROM audit a WHERE (?1 IS NULL OR a.person_id = ?1"
    "   OR a.seq IN (SELECT ap.seq FROM audit_persons ap WHERE ap.person_id = ?1))"
    " AND (?2 IS NULL OR a.actor = ?2) AND (?3 IS NULL OR a.at >= ?3) AND (?4 IS NULL OR a.seq > CAST(?4 AS INTEGER))"
    " AND (" OVERSEEN_BY("a.org_id")
    "   OR EXISTS (SELECT 1 FROM persons p WHERE p.id = a.person_id AND " OVERSEEN_BY("p.org_id") ")"
    "   OR EXISTS (SELECT 1 FROM cases c WHERE c.id = a.case_id AND " OVERSEEN_BY("c.org_id") ")"
    "   OR EXISTS (SELECT 1 FROM tokens t WHERE t.id = a.purpose AND " OVERSEEN_BY("t.org_id") ")"
    "   OR EXISTS (SELECT 1 FROM audit_persons ap JOIN persons p ON p.id = ap.person_id"
    "              WHERE ap.seq = a.seq AND " OVERSEEN_BY("p.org_id") "))"
    " ORDER BY a.seq LIMIT ?5";
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
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        h->seq = sqlite3_column_int64(st, 0);
        snprintf(h->hash, sizeof h->hash, "%s", TEXT(st, 1));
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
    for (size_t i = 0; a->n_persons > 1 && i < a->n_persons; i++) {
        if (!(st = store_stmt(tx, SQL_AUDIT_PERSON, e))) return -1;
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_text(st, 2, a->persons[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) return store_fail(tx, e, "audit persons");
    }
    tx->conn->audit.valid = true;
    tx->conn->audit.seq = seq;
    memcpy(tx->conn->audit.hash, hash, sizeof hash);
    return 0;
}

static int audit_read(sqlite3_stmt *st, void *row)
{
    audit_row *a = row;
    const char **const f[] = {NULL,          &a->at,      &a->actor,   &a->org,        &a->role,
                              &a->action,    &a->person_id, &a->case_id, &a->purpose, &a->request_id,
                              NULL,          &a->prev_hash, &a->hash,  &a->persons};
    a->mem = store_texts(st, f, 14);
    a->seq = sqlite3_column_int64(st, 0);
    a->status = sqlite3_column_int(st, 10);
    return a->mem ? 0 : -1;
}

static void audit_drop(void *row) { audit_row_free(row); }

int store_audit_list(store_tx *tx, const principal *overseer, const audit_query *q, audit_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_AUDIT_LIST, e);
    if (!st) return -1;
    store_bind_overseer(st, overseer);
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
