/* outbox.c: messages to external agencies. A message is written in the
 * transaction of the change that causes it and stays until delivered or
 * dead; messages of one agency about one topic (a referral) go out in order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

/* Whom a message is about and whose it is (the organisation that sent
 * it): from the referral or the case that is its topic. A message to an
 * agency about a referral to it is its referrer's; one about a referral
 * from it (an answer) its receiver's. */
#define OUTBOX_PERSON                                                                                  \
    "COALESCE((SELECT r.person_id FROM referrals r WHERE r.id = o.topic),"                              \
    " (SELECT c.person_id FROM cases c WHERE c.id = o.topic))"
#define OUTBOX_ORG                                                                                     \
    "COALESCE((SELECT CASE WHEN r.to_org = o.agency THEN r.from_org ELSE r.to_org END FROM referrals r" \
    " WHERE r.id = o.topic), (SELECT c.org_id FROM cases c WHERE c.id = o.topic))"
#define OUTBOX_COLS                                                                                   \
    "o.id, o.seq, o.agency, o.topic, o.kind, o.idempotency_key, o.payload, o.status, o.attempts, o.next_at," \
    " o.last_status, o.last_error, o.created_at, o.delivered_at, " OUTBOX_PERSON ", " OUTBOX_ORG

static const char SQL_OUTBOX_INSERT[] =
    "INSERT INTO outbox (id, seq, agency, topic, kind, idempotency_key, payload, status, attempts, next_at,"
    " created_at) SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?1, ?5, 'queued', 0, 0, ?6 FROM outbox";
/* Due: queued, time come, and no earlier queued message on the same topic. */
static const char SQL_OUTBOX_DUE[] =
    "SELECT " OUTBOX_COLS " FROM outbox o WHERE o.status = 'queued' AND o.next_at <= ?1"
    " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.agency = o.agency AND p.topic = o.topic"
    "                 AND p.status = 'queued' AND p.seq < o.seq)"
    " ORDER BY o.seq LIMIT ?2";
static const char SQL_OUTBOX_RESULT[] =
    "UPDATE outbox SET status = ?2, attempts = ?3, next_at = ?4, last_status = ?5, last_error = ?6,"
    " delivered_at = ?7 WHERE id = ?1";
static const char SQL_OUTBOX_GET[] = "SELECT " OUTBOX_COLS " FROM outbox o WHERE o.id = ?1";
static const char SQL_OUTBOX_LIST[] =
    "SELECT " OUTBOX_COLS " FROM outbox o WHERE (?1 IS NULL OR o.status = ?1) AND (?2 IS NULL OR o.id > ?2)"
    " AND " OVERSEEN_BY(OUTBOX_ORG) " ORDER BY o.id LIMIT ?3";
static const char SQL_OUTBOX_RETRY[] =
    "UPDATE outbox SET status = 'queued', attempts = 0, next_at = 0, last_error = NULL WHERE id = ?1"
    " AND status = 'dead'";
static const char SQL_OUTBOX_COUNTS[] = "SELECT agency, status, COUNT(*) FROM outbox GROUP BY agency, status";

static int outbox_read(sqlite3_stmt *st, void *row)
{
    outbox_row *m = row;
    const char **const f[] = {&m->id,     NULL,        &m->agency, &m->topic, &m->kind,      &m->idempotency_key,
                              NULL,       &m->status,  NULL,       NULL,      NULL,          &m->last_error,
                              &m->created_at, &m->delivered_at, &m->person_id, &m->org};
    m->mem = store_texts(st, f, 16);
    m->seq = sqlite3_column_int64(st, 1);
    m->payload = store_json_col(st, 6, 0);
    m->attempts = sqlite3_column_int(st, 8);
    m->next_at_ms = sqlite3_column_int64(st, 9);
    m->last_status = sqlite3_column_type(st, 10) == SQLITE_NULL ? 0 : sqlite3_column_int(st, 10);
    return m->mem ? 0 : -1;
}

static void outbox_drop(void *row) { outbox_row_free(row); }

int store_outbox_enqueue(store_tx *tx, const char *agency, const char *topic, const char *kind, json_t *payload,
                         char id[ID_MAX], store_err *e)
{
    char now[RFC3339_MAX];
    id_new("msg_", id);
    time_rfc3339(time_now_ms(), now);
    char *text = json_dumps(payload, JSON_COMPACT);
    if (!text) return store_err_set(e, STORE_INTERNAL, "out of memory");
    sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_INSERT, e);
    if (!st) {
        free(text);
        return -1;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, agency, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, topic, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    free(text);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "outbox enqueue");
}

static int page(store_tx *tx, sqlite3_stmt *st, int limit, outbox_list *out, store_err *e)
{
    void *items;
    if (store_rows(tx, st, limit, sizeof *out->items, outbox_read, outbox_drop, &items, &out->n, &out->more, e,
                   "outbox read"))
        return -1;
    out->items = items;
    if (out->n) snprintf(out->last, sizeof out->last, "%s", out->items[out->n - 1].id);
    return 0;
}

int store_outbox_due(store_tx *tx, int64_t now_ms, int limit, outbox_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_DUE, e);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int(st, 2, limit);
    return page(tx, st, -1, out, e);
}

int store_outbox_result(store_tx *tx, const outbox_result *r, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_RESULT, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->status, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, r->attempts);
    sqlite3_bind_int64(st, 4, r->next_at_ms);
    if (r->http_status) sqlite3_bind_int(st, 5, r->http_status);
    else sqlite3_bind_null(st, 5);
    store_bind_opt(st, 6, r->error);
    if (!strcmp(r->status, "delivered")) sqlite3_bind_text(st, 7, now, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, 7);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "outbox result");
}

int store_outbox_get(store_tx *tx, const char *id, outbox_row *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    outbox_list one = {0};
    if (page(tx, st, 1, &one, e)) return -1;
    if (one.n == 0) {
        outbox_list_free(&one);
        return store_err_set(e, STORE_NOT_FOUND, "no outbox message '%s'", id);
    }
    *out = one.items[0];
    free(one.items);
    return 0;
}

int store_outbox_list(store_tx *tx, const principal *overseer, const char *status, int limit, const char *after,
                      outbox_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_LIST, e);
    if (!st) return -1;
    store_bind_overseer(st, overseer);
    store_bind_opt(st, 1, status);
    store_bind_opt(st, 2, after);
    sqlite3_bind_int(st, 3, limit + 1);
    return page(tx, st, limit, out, e);
}

int store_outbox_retry(store_tx *tx, const char *id, outbox_row *out, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_RETRY, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "outbox retry");
    bool retried = sqlite3_changes(tx->db) == 1;
    if (store_outbox_get(tx, id, out, e)) return -1;
    if (!retried) {
        outbox_row_free(out);
        return store_err_set(e, STORE_CONFLICT, "message %s is not dead-lettered", id);
    }
    return 0;
}

int store_outbox_counts(store_tx *tx, outbox_counts *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_COUNTS, e);
    if (!st) return -1;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 8;
            outbox_count *grown = realloc(out->items, cap * sizeof *grown);
            if (!grown) {
                sqlite3_reset(st);
                free(out->items);
                memset(out, 0, sizeof *out);
                return store_err_set(e, STORE_INTERNAL, "out of memory");
            }
            out->items = grown;
        }
        outbox_count *c = &out->items[out->n++];
        snprintf(c->agency, sizeof c->agency, "%s", TEXT(st, 0));
        snprintf(c->status, sizeof c->status, "%s", TEXT(st, 1));
        c->n = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        free(out->items);
        memset(out, 0, sizeof *out);
        return store_fail(tx, e, "outbox counts");
    }
    return 0;
}

static const char SQL_OUTBOX_PURGE[] =
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status = 'delivered' AND delivered_at < ?1"
    " ORDER BY delivered_at LIMIT ?2)";

int store_outbox_purge(store_tx *tx, const char *before, int limit, int *deleted, store_err *e)
{
    *deleted = 0;
    sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_PURGE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, before, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, limit);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "outbox purge");
    *deleted = sqlite3_changes(tx->db);
    return 0;
}
