/* casework.c: the records of case work (counseling, assessments, plans,
 * services, checks, closure, follow-ups), case conferences, and the
 * deadline lists read from the indexed deadline rows. */
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
static const char SQL_RECORD_LIST[] =
    "SELECT " RECORD_COLS " FROM case_records WHERE case_id = ?1 AND (?2 IS NULL OR kind = ?2) ORDER BY id";
static const char SQL_RECORD_DECIDE[] =
    "UPDATE case_records SET status = ?2, decided_at = ?3, decided_by = ?4, decided_on = ?5 WHERE id = ?1";
static const char SQL_RECORD_SUPERSEDE[] =
    "UPDATE case_records SET status = 'superseded' WHERE case_id = ?1 AND kind = ?2 AND status = ?3"
    " AND id <> ?4";
static const char SQL_MEETING_INSERT[] =
    "INSERT INTO meetings (id, org_id, type, held_on, written, participants, decisions, created_at,"
    " created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char SQL_MEETING_CASE[] = "INSERT INTO meeting_cases (meeting_id, case_id) VALUES (?1, ?2)";
static const char SQL_MEETINGS_OF_CASE[] =
    "SELECT m.id, m.type, m.held_on, m.written, m.participants, m.decisions, m.created_at, m.created_by"
    " FROM meetings m JOIN meeting_cases mc ON mc.meeting_id = m.id WHERE mc.case_id = ?1"
    " ORDER BY m.held_on, m.id";
static const char SQL_MEETING_CASES[] = "SELECT case_id FROM meeting_cases WHERE meeting_id = ?1 ORDER BY case_id";
static const char SQL_DEADLINE_LIST[] =
    "SELECT d.id, d.case_id, d.kind, d.label, d.due_on, d.plugin, c.person_id,"
    " COALESCE(c.program, r.to_program), c.stage, d.referral_id"
    " FROM deadlines d LEFT JOIN cases c ON c.id = d.case_id LEFT JOIN referrals r ON r.id = d.referral_id"
    " WHERE d.org_id = ?1 AND d.cleared_at IS NULL"
    " AND (?2 IS NULL OR d.due_on < ?2) AND (?3 IS NULL OR d.kind = ?3)"
    " AND (?4 IS NULL OR d.due_on || '.' || d.id > ?4)"
    " ORDER BY d.due_on, d.id LIMIT ?5";
static const char SQL_OVERDUE_COUNTS[] =
    "SELECT kind, COUNT(*) FROM deadlines WHERE cleared_at IS NULL AND due_on < ?1 GROUP BY kind ORDER BY kind";

static json_t *json_col(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) return json_null();
    json_t *j = json_loads(TEXT(st, i), JSON_DECODE_ANY, NULL);
    return j ? j : json_null();
}

static json_t *record_row(sqlite3_stmt *st)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:s, s:s, s:o, s:o, s:s, s:o}", "id", TEXT(st, 0),
                     "case_id", TEXT(st, 1), "kind", TEXT(st, 2), "subkind", OPT(st, 3), "status", OPT(st, 4),
                     "data", json_col(st, 5), "result", json_col(st, 6), "supersedes", OPT(st, 7), "created_at",
                     TEXT(st, 8), "created_by", TEXT(st, 9), "decided_at", OPT(st, 10), "decided_by", OPT(st, 11),
                     "recorded_on", TEXT(st, 12), "decided_on", OPT(st, 13));
}

int store_record_insert(store_tx *tx, const record_in *in, char id[ID_MAX], err_t *e)
{
    char now[RFC3339_MAX];
    if (in->id && *in->id) snprintf(id, ID_MAX, "%s", in->id);
    else id_new("rec_", id);
    time_rfc3339(time_now_ms(), now);
    char *data = in->data ? json_dumps(in->data, JSON_COMPACT) : strdup("{}");
    char *result = in->result ? json_dumps(in->result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    int rc = -1;
    sqlite3_stmt *st = store_stmt(tx, SQL_RECORD_INSERT, e);
    if (!st || !data) goto done;
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
    if (!data && !e->status) err_set(e, 500, "internal_error", "out of memory");
    free(data);
    free(result);
    return rc;
}

int store_record_get(store_tx *tx, const char *case_id, const char *id, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_RECORD_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, case_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        err_set(e, 404, "not_found", "no record '%s' on case '%s'", id, case_id);
        return -1;
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "record get");
    *out = record_row(st);
    sqlite3_reset(st);
    return 0;
}

int store_record_list(store_tx *tx, const char *case_id, const char *kind, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_RECORD_LIST, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_TRANSIENT);
    store_bind_opt(st, 2, kind);
    json_t *items = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) json_array_append_new(items, record_row(st));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(items);
        return store_fail(tx, e, "record list");
    }
    *out = items;
    return 0;
}

int store_record_decide(store_tx *tx, const char *id, const char *status, const char *by, err_t *e)
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
                           const char *except_id, err_t *e)
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

static json_t *meeting_row(sqlite3_stmt *st)
{
    return json_pack("{s:s, s:s, s:s, s:b, s:o, s:o, s:s, s:s}", "id", TEXT(st, 0), "type", TEXT(st, 1), "held_on",
                     TEXT(st, 2), "written", sqlite3_column_int(st, 3), "participants", json_col(st, 4),
                     "decisions", json_col(st, 5), "created_at", TEXT(st, 6), "created_by", TEXT(st, 7));
}

json_t *store_meeting_json(const meeting_in *in, const char *id)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:O, s:O, s:O, s:s, s:s}", "id", id, "org", in->org, "type",
                     in->type, "held_on", in->held_on, "written", in->written, "participants", in->participants,
                     "decisions", in->decisions ? in->decisions : json_null(), "case_ids", in->case_ids,
                     "created_at", now, "created_by", in->by);
}

int store_meeting_insert(store_tx *tx, const meeting_in *in, const char *id, json_t **out, err_t *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    char *parts = json_dumps(in->participants, JSON_COMPACT);
    char *dec = in->decisions ? json_dumps(in->decisions, JSON_COMPACT) : strdup("[]");
    int rc = -1;
    sqlite3_stmt *st = store_stmt(tx, SQL_MEETING_INSERT, e);
    if (!st || !parts || !dec) goto done;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, in->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->held_on, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, in->written);
    sqlite3_bind_text(st, 6, parts, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, dec, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, now, -1, SQLITE_STATIC);
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
        s = sqlite3_step(st);
        sqlite3_reset(st);
        if (s == SQLITE_CONSTRAINT_PRIMARYKEY) continue; /* listed twice */
        if (s != SQLITE_DONE) {
            store_fail(tx, e, "meeting case");
            goto done;
        }
    }
    *out = store_meeting_json(in, id);
    json_object_set_new(*out, "created_at", json_string(now));
    rc = 0;
done:
    if ((!parts || !dec) && !e->status) err_set(e, 500, "internal_error", "out of memory");
    free(parts);
    free(dec);
    return rc;
}

int store_meetings_of_case(store_tx *tx, const char *case_id, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_MEETINGS_OF_CASE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_TRANSIENT);
    json_t *items = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) json_array_append_new(items, meeting_row(st));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(items);
        return store_fail(tx, e, "meetings of case");
    }
    /* Each meeting's cases, for the one-screen view and plugins. */
    size_t i;
    json_t *m;
    json_array_foreach(items, i, m) {
        if (!(st = store_stmt(tx, SQL_MEETING_CASES, e))) break;
        sqlite3_bind_text(st, 1, json_string_value(json_object_get(m, "id")), -1, SQLITE_TRANSIENT);
        json_t *ids = json_array();
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) json_array_append_new(ids, json_string(TEXT(st, 0)));
        sqlite3_reset(st);
        json_object_set_new(m, "case_ids", ids);
    }
    *out = items;
    return 0;
}

static json_t *deadline_row(sqlite3_stmt *st)
{
    return json_pack("{s:s, s:o, s:o, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "id", TEXT(st, 0), "case_id", OPT(st, 1),
                     "referral_id", OPT(st, 9), "kind", TEXT(st, 2), "label", TEXT(st, 3), "due_on", TEXT(st, 4),
                     "plugin", OPT(st, 5), "person_id", OPT(st, 6), "program", OPT(st, 7), "stage", OPT(st, 8));
}

int store_deadline_list(store_tx *tx, const deadline_query *q, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_DEADLINE_LIST, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, q->org, -1, SQLITE_STATIC);
    store_bind_opt(st, 2, q->due_before);
    store_bind_opt(st, 3, q->kind);
    store_bind_opt(st, 4, q->after);
    sqlite3_bind_int(st, 5, q->limit + 1);
    json_t *items = json_array();
    char last[ID_MAX + 16] = "";
    int rc, n = 0;
    bool more = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == q->limit) {
            more = true;
            break;
        }
        json_t *d = deadline_row(st);
        json_object_set_new(d, "overdue", json_boolean(strcmp(TEXT(st, 4), q->today) < 0));
        json_array_append_new(items, d);
        snprintf(last, sizeof last, "%s.%s", TEXT(st, 4), TEXT(st, 0));
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        json_decref(items);
        return store_fail(tx, e, "deadline list");
    }
    char cur[128];
    if (more) cursor_encode(last, cur, sizeof cur);
    *out = json_pack("{s:o, s:o}", "items", items, "next_cursor", more ? json_string(cur) : json_null());
    return 0;
}

int store_overdue_counts(store_tx *tx, const char *today, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_OVERDUE_COUNTS, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, today, -1, SQLITE_STATIC);
    json_t *o = json_object();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_object_set_new(o, TEXT(st, 0), json_integer(sqlite3_column_int64(st, 1)));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(o);
        return store_fail(tx, e, "overdue counts");
    }
    *out = o;
    return 0;
}
