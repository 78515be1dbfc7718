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
#define LOCAL_ORG(agency, topic)                                                                        \
    "COALESCE((SELECT CASE WHEN r.to_org = " agency " THEN r.from_org ELSE r.to_org END FROM referrals r" \
    " WHERE r.id = " topic "), (SELECT c.org_id FROM cases c WHERE c.id = " topic "))"
#define OUTBOX_ORG LOCAL_ORG("o.agency", "o.topic")
#define OUTBOX_COLS                                                                                   \
    "o.id, o.seq, o.agency, o.topic, o.kind, o.idempotency_key, o.payload, o.status, o.attempts, o.next_at," \
    " o.last_status, o.last_error, o.created_at, o.delivered_at, " OUTBOX_PERSON ", " OUTBOX_ORG ", o.region"

/* The region a message is for: that of the organisation it is (its line,
 * with its agency). */
static const char SQL_OUTBOX_SEQ[] = "SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox";
static const char SQL_OUTBOX_INSERT[] =
    "INSERT INTO outbox (id, seq, agency, topic, kind, idempotency_key, payload, status, attempts, next_at,"
    " created_at, region) VALUES (?1, ?7, ?2, ?3, ?4, ?1, ?5, 'queued', 0, 0, ?6,"
    " COALESCE((SELECT g.region FROM orgs g WHERE g.id = " LOCAL_ORG("?2", "?3") "), ''))";
/* The lines with a message queued (an agency and the region a message is
 * for), one after the other in order: each a step along the index of
 * queued messages by line. */
static const char SQL_OUTBOX_NEXT_LINE[] =
    "SELECT agency, region FROM outbox INDEXED BY outbox_line_due WHERE status = 'queued'"
    " AND (agency, region) > (?1, ?2) ORDER BY agency, region LIMIT 1";
/* Due on one line: queued, time come, and no earlier queued message on the
 * same topic; its longest waiting first (that index, in its order). */
static const char SQL_OUTBOX_DUE[] =
    "SELECT " OUTBOX_COLS " FROM outbox o INDEXED BY outbox_line_due"
    " WHERE o.agency = ?1 AND o.region = ?2 AND o.status = 'queued' AND o.next_at <= ?3"
    " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.agency = o.agency AND p.topic = o.topic"
    "                 AND p.status = 'queued' AND p.seq < o.seq)"
    " ORDER BY o.next_at, o.seq LIMIT ?4";
static const char SQL_OUTBOX_STATE[] = "SELECT agency, status FROM outbox WHERE id = ?1";
static const char SQL_OUTBOX_RESULT[] =
    "UPDATE outbox SET status = ?2, attempts = ?3, next_at = ?4, last_status = ?5, last_error = ?6,"
    " delivered_at = ?7 WHERE id = ?1";
static const char SQL_OUTBOX_GET[] = "SELECT " OUTBOX_COLS " FROM outbox o WHERE o.id = ?1";
static const char SQL_OUTBOX_RETRY[] =
    "UPDATE outbox SET status = 'queued', attempts = 0, next_at = 0, last_error = NULL WHERE id = ?1"
    " AND status = 'dead'";

/* The admin's list: by id, of one status (its index) or of all. */
enum { OUTBOX_BY_STATUS = 1, OUTBOX_AFTER = 2 };

static void outbox_list_sql(sql_buf *b, unsigned shape)
{
    /* the messages of what the reader oversees (a system operator: all) */
    sql_add(b, "SELECT " OUTBOX_COLS " FROM outbox o WHERE %s" OVERSEEN_BY(OUTBOX_ORG), shape ? "" : "/*scoped*/ ");
    if (shape & OUTBOX_BY_STATUS) sql_add(b, " AND o.status = ?1");
    if (shape & OUTBOX_AFTER) sql_add(b, " AND o.id > ?2");
    sql_add(b, " ORDER BY o.id LIMIT ?3");
}

static int outbox_read(sqlite3_stmt *st, void *row)
{
    outbox_row *m = row;
    const char **const f[] = {&m->id,     NULL,        &m->agency, &m->topic, &m->kind,      &m->idempotency_key,
                              NULL,       &m->status,  NULL,       NULL,      NULL,          &m->last_error,
                              &m->created_at, &m->delivered_at, &m->person_id, &m->org, &m->region};
    m->mem = store_texts(st, f, 17);
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
    long long seq;
    if (store_next_seq(tx, SQL_OUTBOX_SEQ, NULL, &seq, e)) return -1;
    char *text = json_dumps(payload, JSON_COMPACT);
    if (!text) return store_oom(e);
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
    sqlite3_bind_int64(st, 7, seq);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    free(text);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "outbox enqueue");
    return store_count(tx, COUNT_OUTBOX, agency, "queued", 1, e);
}

static int page(store_tx *tx, sqlite3_stmt *st, int limit, outbox_list *out, store_err *e)
{
    void *items;
    if (store_rows(tx, st, limit, sizeof *out->items, outbox_read, outbox_drop, &items, &out->n, &out->more, e,
                   "outbox read"))
        return -1;
    out->items = items;
    if (out->n) str_copy(out->last, sizeof out->last, out->items[out->n - 1].id);
    return 0;
}

static bool before(const outbox_row *a, const outbox_row *b)
{
    return a->next_at_ms < b->next_at_ms || (a->next_at_ms == b->next_at_ms && a->seq < b->seq);
}

/* The lines take turns (an agency and a region): each one's longest
 * waiting, the oldest of those first, then each one's second ..., so that
 * a pile of messages for one agency, or from one region, does not keep the
 * others out of the page. Each line's are read along the index (a pile
 * costs nothing to step over). */
int store_outbox_due(store_tx *tx, int64_t now_ms, int limit, outbox_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    outbox_list *per = NULL;
    size_t n_per = 0, total = 0;
    char agency[128] = "", region[64] = "";
    int rc = 0;
    for (;;) {
        sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_NEXT_LINE, e);
        if (!st) {
            rc = -1;
            break;
        }
        sqlite3_bind_text(st, 1, agency, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, region, -1, SQLITE_TRANSIENT);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            str_copy(agency, sizeof agency, TEXT(st, 0) ? TEXT(st, 0) : "");
            str_copy(region, sizeof region, TEXT(st, 1) ? TEXT(st, 1) : "");
        }
        sqlite3_reset(st);
        if (step == SQLITE_DONE) break;
        if (step != SQLITE_ROW) {
            rc = store_fail(tx, e, "outbox lines");
            break;
        }
        outbox_list *np = realloc(per, (n_per + 1) * sizeof *per);
        if (!np) {
            rc = store_oom(e);
            break;
        }
        per = np;
        if (!(st = store_stmt(tx, SQL_OUTBOX_DUE, e))) {
            rc = -1;
            break;
        }
        sqlite3_bind_text(st, 1, agency, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, region, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, now_ms);
        sqlite3_bind_int(st, 4, limit);
        memset(&per[n_per], 0, sizeof *per);
        if (page(tx, st, -1, &per[n_per], e)) {
            rc = -1;
            break;
        }
        total += per[n_per++].n;
    }
    size_t want = rc == 0 && limit > 0 ? ((size_t)limit < total ? (size_t)limit : total) : 0;
    if (want && !(out->items = calloc(want, sizeof *out->items))) rc = store_oom(e);
    for (size_t turn = 0; rc == 0 && out->n < want; turn++) {
        for (;;) { /* this turn's rows, the oldest first */
            size_t best = n_per;
            for (size_t i = 0; i < n_per; i++)
                if (turn < per[i].n && per[i].items[turn].id &&
                    (best == n_per || before(&per[i].items[turn], &per[best].items[turn])))
                    best = i;
            if (best == n_per || out->n == want) break;
            out->items[out->n] = per[best].items[turn];
            out->items[out->n++].turn = (int)turn;
            memset(&per[best].items[turn], 0, sizeof per[best].items[turn]); /* moved */
        }
    }
    for (size_t i = 0; i < n_per; i++) outbox_list_free(&per[i]);
    free(per);
    if (rc) {
        outbox_list_free(out);
        memset(out, 0, sizeof *out);
        return -1;
    }
    if (out->n) str_copy(out->last, sizeof out->last, out->items[out->n - 1].id);
    return 0;
}

int store_outbox_result(store_tx *tx, const outbox_result *r, store_err *e)
{
    char now[RFC3339_MAX], agency[64] = "", was[16] = "";
    time_rfc3339(time_now_ms(), now);
    /* What it was, for the counts. */
    sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_STATE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        str_copy(agency, sizeof agency, TEXT(st, 0));
        str_copy(was, sizeof was, TEXT(st, 1));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_fail(tx, e, "outbox state");
    if (!(st = store_stmt(tx, SQL_OUTBOX_RESULT, e))) return -1;
    sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->status, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, r->attempts);
    sqlite3_bind_int64(st, 4, r->next_at_ms);
    if (r->http_status) sqlite3_bind_int(st, 5, r->http_status);
    else sqlite3_bind_null(st, 5);
    store_bind_opt(st, 6, r->error);
    if (!strcmp(r->status, "delivered")) sqlite3_bind_text(st, 7, now, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, 7);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "outbox result");
    if (!agency[0] || !strcmp(was, r->status)) return 0;
    return store_count(tx, COUNT_OUTBOX, agency, was, -1, e) || store_count(tx, COUNT_OUTBOX, agency, r->status, 1, e)
               ? -1
               : 0;
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
    sql_buf b = {0};
    outbox_list_sql(&b, (status && *status ? OUTBOX_BY_STATUS : 0) | (after && *after ? OUTBOX_AFTER : 0));
    sqlite3_stmt *st = store_stmt_built(tx, &b, e);
    sql_free(&b);
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
    if (store_count(tx, COUNT_OUTBOX, out->agency, "dead", -1, e) ||
        store_count(tx, COUNT_OUTBOX, out->agency, "queued", 1, e)) {
        outbox_row_free(out);
        return -1;
    }
    return 0;
}

/* Each message removed is counted out of /metrics' counts (RETURNING). */
static const char SQL_OUTBOX_PURGE[] =
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status = 'delivered' AND delivered_at < ?1"
    " ORDER BY delivered_at LIMIT ?2) RETURNING agency";

int store_outbox_purge(store_tx *tx, const char *before, int limit, int *deleted, store_err *e)
{
    *deleted = 0;
    sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_PURGE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, before, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char agency[128];
        str_copy(agency, sizeof agency, TEXT(st, 0) ? TEXT(st, 0) : "");
        if (store_count(tx, COUNT_OUTBOX, agency, "delivered", -1, e)) {
            sqlite3_reset(st);
            return -1;
        }
        (*deleted)++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "outbox purge");
    return 0;
}

void store_sql_of_outbox(store_sql_fn fn, void *ctx)
{
    STORE_SQL(fn, ctx, SQL_OUTBOX_SEQ);
    STORE_SQL(fn, ctx, SQL_OUTBOX_INSERT);
    STORE_SQL(fn, ctx, SQL_OUTBOX_NEXT_LINE);
    STORE_SQL(fn, ctx, SQL_OUTBOX_DUE);
    STORE_SQL(fn, ctx, SQL_OUTBOX_STATE);
    STORE_SQL(fn, ctx, SQL_OUTBOX_RESULT);
    STORE_SQL(fn, ctx, SQL_OUTBOX_GET);
    STORE_SQL(fn, ctx, SQL_OUTBOX_RETRY);
    fn("SQL_OUTBOX_PURGE", SQL_OUTBOX_PURGE, STORE_SQL_TOOL, ctx); /* the retention sweep */
    for (unsigned shape = 0; shape < 4; shape++) {
        sql_buf b = {0};
        char name[64];
        outbox_list_sql(&b, shape);
        snprintf(name, sizeof name, "outbox list (shape %u)", shape);
        if (!b.oom) fn(name, b.s, STORE_SQL_REQUEST, ctx);
        sql_free(&b);
    }
}
