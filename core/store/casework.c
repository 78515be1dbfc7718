/* casework.c: the records of case work (counseling, assessments, plans,
 * services, checks, closure, follow-ups), case conferences, and the
 * deadline lists read from the indexed deadline rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

#define RECORD_COLS                                                                             \
    "id, case_id, kind, subkind, status, data, result, supersedes, created_at, created_by," \
    " decided_at, decided_by, recorded_on, decided_on"

static const char SQL_RECORD_INSERT[] =
    "INSERT INTO case_records (id, case_id, org_id, kind, subkind, status, data, result, supersedes,"
    " created_at, created_by, recorded_on) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
static const char SQL_RECORD_GET[] = "SELECT " RECORD_COLS " FROM case_records WHERE id = ?1 AND case_id = ?2";
static const char SQL_RECORD_LIST[] = "SELECT " RECORD_COLS " FROM case_records WHERE case_id = ?1 ORDER BY id";
static const char SQL_RECORD_LIST_KIND[] =
    "SELECT " RECORD_COLS " FROM case_records WHERE case_id = ?1 AND kind = ?2 ORDER BY id";
static const char SQL_RECORD_DECIDE[] =
    "UPDATE case_records SET status = ?2, decided_at = ?3, decided_by = ?4, decided_on = ?5 WHERE id = ?1";
static const char SQL_RECORD_SUPERSEDE[] =
    "UPDATE case_records SET status = 'superseded' WHERE case_id = ?1 AND kind = ?2 AND status = ?3"
    " AND id <> ?4";
static const char SQL_MEETING_INSERT[] =
    "INSERT INTO meetings (id, org_id, type, held_on, written, participants, decisions, created_at,"
    " created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
/* meeting_cases carries the meeting's date, so a case's conferences come
 * in date order from its index (meeting_cases_case_held). */
static const char SQL_MEETING_CASE[] =
    "INSERT INTO meeting_cases (meeting_id, case_id, held_on) VALUES (?1, ?2, ?3)";
static const char SQL_MEETINGS_OF_CASE[] =
    "SELECT m.id, m.org_id, m.type, m.held_on, m.created_at, m.created_by, m.written, m.participants, m.decisions"
    " FROM meeting_cases mc CROSS JOIN meetings m ON m.id = mc.meeting_id WHERE mc.case_id = ?1"
    " ORDER BY mc.held_on, mc.meeting_id";
static const char SQL_MEETING_CASES[] = "SELECT case_id FROM meeting_cases WHERE meeting_id = ?1 ORDER BY case_id";
/* An organisation's open deadlines, soonest first: the partial index of open
 * deadlines by organisation (and kind) and due date, ending with id, walked
 * from the cursor (due_on, id). */
enum { DDL_BEFORE = 1, DDL_KIND = 2, DDL_AFTER = 4, DDL_ASSIGNED = 8, DDL_SHAPES = 16 };

static void deadline_list_sql(sql_buf *b, unsigned shape)
{
    sql_add(b, "SELECT d.id, d.kind, d.label, d.due_on, d.plugin, d.case_id, d.referral_id, c.person_id,"
               " COALESCE(c.program, r.to_program), c.stage"
               " FROM deadlines d LEFT JOIN cases c ON c.id = d.case_id LEFT JOIN referrals r ON r.id = d.referral_id"
               " WHERE d.org_id = ?1 AND d.cleared_at IS NULL");
    if (shape & DDL_BEFORE) sql_add(b, " AND d.due_on < ?2");
    if (shape & DDL_KIND) sql_add(b, " AND d.kind = ?3");
    if (shape & DDL_AFTER) sql_add(b, " AND (d.due_on, d.id) > (?6, ?4)");
    if (shape & DDL_ASSIGNED) sql_add(b, " AND c.assigned_to = ?7"); /* a case's: a referral has no assignee */
    sql_add(b, " ORDER BY d.due_on, d.id LIMIT ?5");
}

void store_sql_of_casework(store_sql_fn fn, void *ctx)
{
    STORE_SQL(fn, ctx, SQL_RECORD_INSERT);
    STORE_SQL(fn, ctx, SQL_RECORD_GET);
    STORE_SQL(fn, ctx, SQL_RECORD_LIST);
    STORE_SQL(fn, ctx, SQL_RECORD_LIST_KIND);
    STORE_SQL(fn, ctx, SQL_RECORD_DECIDE);
    STORE_SQL(fn, ctx, SQL_RECORD_SUPERSEDE);
    STORE_SQL(fn, ctx, SQL_MEETING_INSERT);
    STORE_SQL(fn, ctx, SQL_MEETING_CASE);
    STORE_SQL(fn, ctx, SQL_MEETINGS_OF_CASE);
    STORE_SQL(fn, ctx, SQL_MEETING_CASES);
    for (unsigned shape = 0; shape < DDL_SHAPES; shape++) {
        sql_buf b = {0};
        char name[64];
        deadline_list_sql(&b, shape);
        snprintf(name, sizeof name, "deadline list (shape %u)", shape);
        if (!b.oom) fn(name, b.s, STORE_SQL_REQUEST, ctx);
        sql_free(&b);
    }
}

static int record_read(sqlite3_stmt *st, void *row)
{
    record_row *r = row;
    const char **const f[] = {&r->id,         &r->case_id,    &r->kind,       &r->subkind,    &r->status,
                              NULL,           NULL,           &r->supersedes, &r->created_at, &r->created_by,
                              &r->decided_at, &r->decided_by, &r->recorded_on, &r->decided_on};
    r->mem = store_texts(st, f, 14);
    r->data = store_json_col(st, 5, JSON_DECODE_ANY);
    r->result = store_json_col(st, 6, JSON_DECODE_ANY);
    return r->mem ? 0 : -1;
}

static void record_drop(void *row) { record_row_free(row); }

int store_record_insert(store_tx *tx, const record_in *in, char id[ID_MAX], store_err *e)
{
    char now[RFC3339_MAX];
    if (in->id && *in->id) str_copy(id, ID_MAX, in->id);
    else id_new("rec_", id);
    time_rfc3339(time_now_ms(), now);
    char *data = in->data ? json_dumps(in->data, JSON_COMPACT) : strdup("{}");
    char *result = in->result ? json_dumps(in->result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    int rc = -1;
    if (!data || (in->result && !result)) {
        store_oom(e);
        goto done;
    }
    sqlite3_stmt *st = store_stmt(tx, SQL_RECORD_INSERT, e);
    if (!st) goto done;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->case_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, in->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->kind, -1, SQLITE_STATIC);
    store_bind_opt(st, 5, in->subkind);
    store_bind_opt(st, 6, in->status);
    sqlite3_bind_text(st, 7, data, -1, SQLITE_STATIC);
    store_bind_opt(st, 8, result);
    store_bind_opt(st, 9, in->supersedes);
    sqlite3_bind_text(st, 10, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, in->by, -1, SQLITE_STATIC);
    char today[11];
    date_today_str(today);
    sqlite3_bind_text(st, 12, today, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    rc = s == SQLITE_DONE ? 0 : store_fail(tx, e, "record insert");
done:
    free(data);
    free(result);
    return rc;
}

int store_record_get(store_tx *tx, const char *case_id, const char *id, record_row *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_RECORD_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, case_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return store_err_set(e, STORE_NOT_FOUND, "no record '%s' on case '%s'", id, case_id);
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "record get");
    rc = record_read(st, out);
    sqlite3_reset(st);
    if (rc) {
        record_row_free(out);
        return store_oom(e);
    }
    return 0;
}

int store_record_list(store_tx *tx, const char *case_id, const char *kind, record_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, kind && *kind ? SQL_RECORD_LIST_KIND : SQL_RECORD_LIST, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_TRANSIENT);
    if (kind && *kind) sqlite3_bind_text(st, 2, kind, -1, SQLITE_TRANSIENT);
    void *items;
    if (store_rows(tx, st, -1, sizeof *out->items, record_read, record_drop, &items, &out->n, NULL, e, "record list"))
        return -1;
    out->items = items;
    return 0;
}

int store_record_decide(store_tx *tx, const char *id, const char *status, const char *by, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_RECORD_DECIDE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, by, -1, SQLITE_STATIC);
    char today[11];
    date_today_str(today);
    sqlite3_bind_text(st, 5, today, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "record decide");
}

int store_record_supersede(store_tx *tx, const char *case_id, const char *kind, const char *status,
                           const char *except_id, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_RECORD_SUPERSEDE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, except_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "record supersede");
}

int store_meeting_insert(store_tx *tx, const meeting_in *in, const char *id, char created_at[RFC3339_MAX],
                         store_err *e)
{
    time_rfc3339(time_now_ms(), created_at);
    char *parts = json_dumps(in->participants, JSON_COMPACT);
    char *dec = in->decisions ? json_dumps(in->decisions, JSON_COMPACT) : strdup("[]");
    int rc = -1;
    if (!parts || !dec) {
        store_oom(e);
        goto done;
    }
    sqlite3_stmt *st = store_stmt(tx, SQL_MEETING_INSERT, e);
    if (!st) goto done;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, in->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->held_on, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, in->written);
    sqlite3_bind_text(st, 6, parts, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, dec, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, created_at, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, in->by, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    if (s != SQLITE_DONE) {
        store_fail(tx, e, "meeting insert");
        goto done;
    }
    size_t i;
    json_t *cid;
    json_array_foreach(in->case_ids, i, cid) {
        if (!(st = store_stmt(tx, SQL_MEETING_CASE, e))) goto done;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, json_string_value(cid), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, in->held_on, -1, SQLITE_STATIC);
        s = sqlite3_step(st);
        sqlite3_reset(st);
        if (s == SQLITE_CONSTRAINT_PRIMARYKEY) continue; /* listed twice */
        if (s != SQLITE_DONE) {
            store_fail(tx, e, "meeting case");
            goto done;
        }
    }
    rc = 0;
done:
    free(parts);
    free(dec);
    return rc;
}

static int meeting_read(sqlite3_stmt *st, void *row)
{
    meeting_row *m = row;
    const char **const f[] = {&m->id, &m->org, &m->type, &m->held_on, &m->created_at, &m->created_by};
    m->mem = store_texts(st, f, 6);
    m->written = sqlite3_column_int(st, 6) != 0;
    m->participants = store_json_col(st, 7, JSON_DECODE_ANY);
    m->decisions = store_json_col(st, 8, JSON_DECODE_ANY);
    return m->mem ? 0 : -1;
}

static void meeting_drop(void *row) { meeting_row_free(row); }

int store_meetings_of_case(store_tx *tx, const char *case_id, meeting_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_MEETINGS_OF_CASE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_TRANSIENT);
    void *items;
    if (store_rows(tx, st, -1, sizeof *out->items, meeting_read, meeting_drop, &items, &out->n, NULL, e,
                   "meetings of case"))
        return -1;
    out->items = items;
    /* Each meeting's cases, for the one-screen view and plugins. */
    for (size_t i = 0; i < out->n; i++) {
        meeting_row *m = &out->items[i];
        if (!(st = store_stmt(tx, SQL_MEETING_CASES, e))) goto fail;
        sqlite3_bind_text(st, 1, m->id, -1, SQLITE_TRANSIENT);
        if (store_strv(tx, st, &m->case_ids, &m->n_case_ids, e)) goto fail;
    }
    return 0;
fail:
    meeting_list_free(out);
    return -1;
}

static int deadline_read(sqlite3_stmt *st, void *row)
{
    deadline_row *d = row;
    const char **const f[] = {&d->id,          &d->kind,      &d->label,   &d->due_on,  &d->plugin,
                              &d->case_id,     &d->referral_id, &d->person_id, &d->program, &d->stage};
    d->mem = store_texts(st, f, 10);
    return d->mem ? 0 : -1;
}

static void deadline_drop(void *row) { deadline_row_free(row); }

int store_deadline_list(store_tx *tx, const deadline_query *q, deadline_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    /* The cursor is "due_on.id" (the last row's): due_on is a date, so the
     * first '.' ends it. */
    char due[16] = "";
    const char *after_id = NULL;
    if (q->after && *q->after) {
        const char *dot = strchr(q->after, '.');
        if (!dot || (size_t)(dot - q->after) >= sizeof due) {
            snprintf(due, sizeof due, "%.15s", q->after); /* not one we gave out: after that day */
            after_id = "";
        } else {
            memcpy(due, q->after, (size_t)(dot - q->after));
            due[dot - q->after] = 0;
            after_id = dot + 1;
        }
    }
    unsigned shape = (q->due_before && *q->due_before ? DDL_BEFORE : 0) | (q->kind && *q->kind ? DDL_KIND : 0) |
                     (after_id ? DDL_AFTER : 0) | (q->assigned_to && *q->assigned_to ? DDL_ASSIGNED : 0);
    sql_buf b = {0};
    deadline_list_sql(&b, shape);
    sqlite3_stmt *st = store_stmt_built(tx, &b, e);
    sql_free(&b);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, q->org, -1, SQLITE_STATIC);
    store_bind_opt(st, 2, q->due_before);
    store_bind_opt(st, 3, q->kind);
    if (after_id) {
        sqlite3_bind_text(st, 4, after_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, due, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int(st, 5, q->limit + 1);
    store_bind_opt(st, 7, q->assigned_to);
    void *items;
    if (store_rows(tx, st, q->limit, sizeof *out->items, deadline_read, deadline_drop, &items, &out->n, &out->more,
                   e, "deadline list"))
        return -1;
    out->items = items;
    /* The key of a page of deadlines: when it is due, then which. */
    if (out->n) {
        const deadline_row *d = &out->items[out->n - 1];
        snprintf(out->last, sizeof out->last, "%s.%s", d->due_on, d->id);
    }
    return 0;
}
