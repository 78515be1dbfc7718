/* outbox.c: messages to external agencies. A message is written in the
 * transaction of the change that causes it and stays until delivered or
 * dead; messages of one agency about one topic (a referral) go out in order. */
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

#define OUTBOX_COLS                                                                                   \
    "id, seq, agency, topic, kind, idempotency_key, payload, status, attempts, next_at, last_status," \
    " last_error, created_at, delivered_at"

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
static const char SQL_OUTBOX_GET[] = "SELECT " OUTBOX_COLS " FROM outbox WHERE id = ?1";
static const char SQL_OUTBOX_LIST[] =
    "SELECT " OUTBOX_COLS " FROM outbox WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR id > ?2)"
    " ORDER BY id LIMIT ?3";
static const char SQL_OUTBOX_RETRY[] =
    "UPDATE outbox SET status = 'queued', attempts = 0, next_at = 0, last_error = NULL WHERE id = ?1"
    " AND status = 'dead'";
static const char SQL_OUTBOX_COUNTS[] = "SELECT agency, status, COUNT(*) FROM outbox GROUP BY agency, status";

static json_t *outbox_row(sqlite3_stmt *st)
{
    json_t *payload = json_loads(TEXT(st, 6), 0, NULL);
    json_t *m = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:o, s:s, s:i, s:I}", "id", TEXT(st, 0), "seq",
                          (json_int_t)sqlite3_column_int64(st, 1), "agency", TEXT(st, 2), "topic", TEXT(st, 3), "kind",
                          TEXT(st, 4), "idempotency_key", TEXT(st, 5), "payload", payload ? payload : json_null(),
                          "status", TEXT(st, 7), "attempts", sqlite3_column_int(st, 8), "next_at_ms",
                          (json_int_t)sqlite3_column_int64(st, 9));
    json_object_set_new(m, "last_status",
                        sqlite3_column_type(st, 10) == SQLITE_NULL ? json_null() : json_integer(sqlite3_column_int(st, 10)));
    json_object_set_new(m, "last_error", OPT(st, 11));
    json_object_set_new(m, "created_at", json_string(TEXT(st, 12)));
    json_object_set_new(m, "delivered_at", OPT(st, 13));
    return m;
}

int store_outbox_enqueue(store_tx *tx, const char *agency, const char *topic, const char *kind, json_t *payload,
                         char id[ID_MAX], err_t *e)
{
    char now[RFC3339_MAX];
    id_new("msg_", id);
    time_rfc3339(time_now_ms(), now);
    char *text = json_dumps(payload, JSON_COMPACT);
    if (!text) return err_set(e, 500, "internal_error", "out of memory"), -1;
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

static int rows(store_tx *tx, sqlite3_stmt *st, json_t **out, err_t *e)
{
    json_t *items = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) json_array_append_new(items, outbox_row(st));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(items);
        return store_fail(tx, e, "outbox read");
    }
    *out = items;
    return 0;
}

int store_outbox_due(store_tx *tx, int64_t now_ms, int limit, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_DUE, e);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int(st, 2, limit);
    return rows(tx, st, out, e);
}

int store_outbox_result(store_tx *tx, const outbox_result *r, err_t *e)
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

int store_outbox_get(store_tx *tx, const char *id, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    json_t *items = NULL;
    if (rows(tx, st, &items, e)) return -1;
    if (json_array_size(items) == 0) {
        json_decref(items);
        err_set(e, 404, "not_found", "no outbox message '%s'", id);
        return -1;
    }
    *out = json_incref(json_array_get(items, 0));
    json_decref(items);
    return 0;
}

int store_outbox_list(store_tx *tx, const char *status, int limit, const char *after, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_LIST, e);
    if (!st) return -1;
    store_bind_opt(st, 1, status);
    store_bind_opt(st, 2, after);
    sqlite3_bind_int(st, 3, limit + 1);
    return store_page(tx, st, limit, outbox_row, 0, out, e);
}

int store_outbox_retry(store_tx *tx, const char *id, json_t **out, err_t *e)
{
    json_t *m = NULL;
    if (store_outbox_get(tx, id, &m, e)) return -1;
    bool dead = !strcmp(json_string_value(json_object_get(m, "status")), "dead");
    json_decref(m);
    if (!dead) {
        err_set(e, 409, "not_dead", "message %s is not dead-lettered; only dead messages are sent again", id);
        return -1;
    }
    sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_RETRY, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "outbox retry");
    return store_outbox_get(tx, id, out, e);
}

int store_outbox_counts(store_tx *tx, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_OUTBOX_COUNTS, e);
    if (!st) return -1;
    json_t *o = json_object();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *a = json_object_get(o, TEXT(st, 0));
        if (!a) {
            a = json_object();
            json_object_set_new(o, TEXT(st, 0), a);
        }
        json_object_set_new(a, TEXT(st, 1), json_integer(sqlite3_column_int64(st, 2)));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(o);
        return store_fail(tx, e, "outbox counts");
    }
    *out = o;
    return 0;
}
