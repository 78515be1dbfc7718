/* cases.c: case rows (optimistic versioning) and the append-only event log. */
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"


#define CASE_COLS                                                                          \
    "id, person_id, program, org_id, region, source, referral_id, stage, status, version," \
    " assigned_to, opened_at, plugin_generation"

static const char SQL_CASE_INSERT[] =
    "INSERT INTO cases (id, person_id, program, org_id, region, source, referral_id, stage, status,"
    " version, assigned_to, opened_at, updated_at, plugin_generation)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)";
static const char SQL_CASE_GET[] = "SELECT " CASE_COLS " FROM cases WHERE id = ?1 AND " VISIBLE_TO("org_id");
static const char SQL_CASE_UPDATE[] =
    "UPDATE cases SET stage = ?1, status = ?2, version = version + 1, plugin_generation = ?3,"
    " updated_at = ?4, assigned_to = ?5 WHERE id = ?6 AND version = ?7";
static const char SQL_CASE_TOUCH[] =
    "UPDATE cases SET version = version + 1, updated_at = ?1 WHERE id = ?2 AND version = ?3";
static const char SQL_CASE_LIST[] =
    "SELECT " CASE_COLS " FROM cases WHERE " VISIBLE_TO("org_id") " AND (?1 IS NULL OR org_id = ?1)"
    " AND (?2 IS NULL OR program = ?2) AND (?3 IS NULL OR stage = ?3)"
    " AND (?4 IS NULL OR status = ?4) AND (?5 IS NULL OR id > ?5)"
    " AND (?7 IS NULL OR EXISTS (SELECT 1 FROM deadlines d WHERE d.case_id = cases.id"
    "      AND d.cleared_at IS NULL AND d.due_on < ?7))"
    " ORDER BY id LIMIT ?6";
static const char SQL_PERSON_CASES[] =
    "SELECT id, program, org_id, stage, status, opened_at FROM cases WHERE person_id = ?1 AND " VISIBLE_TO("org_id")
    " ORDER BY id";
static const char SQL_EVENT_INSERT[] =
    "INSERT INTO case_events (id, case_id, seq, at, actor, type, from_stage, to_stage, data, note,"
    " generation) SELECT ?1, ?2, COALESCE(MAX(seq), 0) + 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10"
    " FROM case_events WHERE case_id = ?2";
static const char SQL_EVENT_LIST[] =
    "SELECT id, seq, at, actor, type, from_stage, to_stage, data, note, generation FROM case_events"
    " WHERE case_id = ?1 AND (?2 IS NULL OR seq > CAST(?2 AS INTEGER)) ORDER BY seq LIMIT ?3";

static void copy_col(sqlite3_stmt *st, int i, char *dst, size_t n)
{
    const char *s = TEXT(st, i);
    snprintf(dst, n, "%s", s ? s : "");
}

static void case_from_row(sqlite3_stmt *st, case_row *c)
{
    copy_col(st, 0, c->id, sizeof c->id);
    copy_col(st, 1, c->person_id, sizeof c->person_id);
    copy_col(st, 2, c->program, sizeof c->program);
    copy_col(st, 3, c->org, sizeof c->org);
    copy_col(st, 4, c->region, sizeof c->region);
    copy_col(st, 5, c->source, sizeof c->source);
    copy_col(st, 6, c->referral_id, sizeof c->referral_id);
    copy_col(st, 7, c->stage, sizeof c->stage);
    copy_col(st, 8, c->status, sizeof c->status);
    c->version = sqlite3_column_int(st, 9);
    copy_col(st, 10, c->assigned_to, sizeof c->assigned_to);
    copy_col(st, 11, c->opened_at, sizeof c->opened_at);
    copy_col(st, 12, c->generation, sizeof c->generation);
}

static json_t *opt_str(const char *s) { return s && *s ? json_string(s) : json_null(); }

json_t *store_case_json(const case_row *c)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:i, s:o, s:s, s:o}", "id", c->id,
                     "person_id", c->person_id, "program", c->program, "org", c->org, "region",
                     c->region, "source", c->source, "referral_id", opt_str(c->referral_id),
                     "stage", c->stage, "status", c->status, "version", c->version, "assigned_to",
                     opt_str(c->assigned_to), "opened_at", c->opened_at, "plugin_generation",
                     opt_str(c->generation));
}

int store_case_insert(store_tx *tx, const case_row *c, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_CASE_INSERT, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->person_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->program, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, c->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, c->region, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, c->source, -1, SQLITE_STATIC);
    store_bind_opt(st, 7, c->referral_id);
    sqlite3_bind_text(st, 8, c->stage, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, c->status, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 10, c->version);
    store_bind_opt(st, 11, c->assigned_to);
    sqlite3_bind_text(st, 12, c->opened_at, -1, SQLITE_STATIC);
    store_bind_opt(st, 13, c->generation);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "case insert");
}

int store_case_load(store_tx *tx, const principal *p, const char *id, case_row *c, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_CASE_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    store_bind_viewer(st, p);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        err_set(e, 404, "not_found", "no case '%s'", id);
        return -1;
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "case get");
    case_from_row(st, c);
    sqlite3_reset(st);
    return 0;
}

int store_case_update(store_tx *tx, case_row *c, err_t *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_CASE_UPDATE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, c->stage, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->status, -1, SQLITE_STATIC);
    store_bind_opt(st, 3, c->generation);
    sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
    store_bind_opt(st, 5, c->assigned_to);
    sqlite3_bind_text(st, 6, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, c->version);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "case update");
    if (sqlite3_changes(tx->db) != 1) {
        err_set(e, 412, "version_mismatch", "the case changed since version %d; reload it", c->version);
        err_detail(e, "version", json_integer(c->version));
        return -1;
    }
    c->version++;
    return 0;
}

int store_case_touch(store_tx *tx, case_row *c, err_t *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_CASE_TOUCH, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, c->version);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "case touch");
    if (sqlite3_changes(tx->db) != 1) {
        err_set(e, 412, "version_mismatch", "the case changed since version %d; reload it", c->version);
        err_detail(e, "version", json_integer(c->version));
        return -1;
    }
    c->version++;
    return 0;
}

static json_t *case_list_row(sqlite3_stmt *st)
{
    case_row c;
    case_from_row(st, &c);
    return store_case_json(&c);
}

int store_case_list(store_tx *tx, const principal *p, const case_query *q, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_CASE_LIST, e);
    if (!st) return -1;
    store_bind_viewer(st, p);
    store_bind_opt(st, 1, q->org); /* a filter within what p sees */
    store_bind_opt(st, 2, q->program);
    store_bind_opt(st, 3, q->stage);
    store_bind_opt(st, 4, q->status);
    store_bind_opt(st, 5, q->after);
    sqlite3_bind_int(st, 6, q->limit + 1);
    store_bind_opt(st, 7, q->overdue ? q->today : NULL);
    return store_page(tx, st, q->limit, case_list_row, 0, out, e);
}

static const char SQL_CASE_EXPORT[] =
    "SELECT c.id, c.program, c.org_id, c.region, c.source, c.stage, c.status, c.opened_at, p.birth_date, p.sex"
    " FROM cases c JOIN persons p ON p.id = c.person_id WHERE " VISIBLE_TO("c.org_id")
    " AND (?1 IS NULL OR c.id > ?1) ORDER BY c.id LIMIT ?2";

/* A bulk export de-identifies: the person is their birth date and sex,
 * nothing that names them (seed 003). */
static json_t *export_row(sqlite3_stmt *st)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "case_id", TEXT(st, 0), "program",
                     TEXT(st, 1), "org", TEXT(st, 2), "region", TEXT(st, 3), "source", TEXT(st, 4), "stage",
                     TEXT(st, 5), "status", TEXT(st, 6), "opened_at", TEXT(st, 7), "person", "birth_date",
                     TEXT(st, 8), "sex", TEXT(st, 9));
}

int store_case_export(store_tx *tx, const principal *p, int limit, const char *after, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_CASE_EXPORT, e);
    if (!st) return -1;
    store_bind_viewer(st, p);
    store_bind_opt(st, 1, after);
    sqlite3_bind_int(st, 2, limit + 1);
    return store_page(tx, st, limit, export_row, 0, out, e);
}

int store_event_append(store_tx *tx, const event_in *ev, err_t *e)
{
    char id[ID_MAX], now[RFC3339_MAX];
    id_new("evt_", id);
    time_rfc3339(time_now_ms(), now);
    char *data = ev->data ? json_dumps(ev->data, JSON_COMPACT) : strdup("{}");
    if (!data) return err_set(e, 500, "internal_error", "out of memory"), -1;
    sqlite3_stmt *st = store_stmt(tx, SQL_EVENT_INSERT, e);
    if (!st) { free(data); return -1; }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ev->case_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, ev->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, ev->type, -1, SQLITE_STATIC);
    store_bind_opt(st, 6, ev->from_stage);
    store_bind_opt(st, 7, ev->to_stage);
    sqlite3_bind_text(st, 8, data, -1, SQLITE_STATIC);
    store_bind_opt(st, 9, ev->note);
    store_bind_opt(st, 10, ev->generation);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    free(data);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "event append");
}

static json_t *event_row(sqlite3_stmt *st)
{
    json_t *data = json_loads(TEXT(st, 7), 0, NULL);
    return json_pack("{s:s, s:i, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "id", TEXT(st, 0), "seq",
                     sqlite3_column_int(st, 1), "at", TEXT(st, 2), "actor", TEXT(st, 3), "type",
                     TEXT(st, 4), "from", OPT(st, 5), "to", OPT(st, 6), "data",
                     data ? data : json_object(), "note", OPT(st, 8), "plugin_generation", OPT(st, 9));
}

int store_event_list(store_tx *tx, const char *case_id, int limit, const char *after, json_t **out,
                     err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_EVENT_LIST, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    store_bind_opt(st, 2, after);
    sqlite3_bind_int(st, 3, limit + 1);
    return store_page(tx, st, limit, event_row, 1, out, e);
}

int store_person_cases(store_tx *tx, const principal *p, const char *person_id, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_CASES, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, person_id, -1, SQLITE_TRANSIENT);
    store_bind_viewer(st, p);
    json_t *items = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", TEXT(st, 0),
                                               "program", TEXT(st, 1), "org", TEXT(st, 2), "stage",
                                               TEXT(st, 3), "status", TEXT(st, 4), "opened_at", TEXT(st, 5)));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(items);
        return store_fail(tx, e, "person cases");
    }
    *out = items;
    return 0;
}

/* Deadlines belong to a case or to a referral (an answer due, a closure to
 * review); both kinds are set and cleared the same way. */
static const char SQL_DEADLINE_CLEAR[] =
    "UPDATE deadlines SET cleared_at = ?3 WHERE case_id = ?1 AND (?2 IS NULL OR kind = ?2)"
    " AND cleared_at IS NULL";
static const char SQL_DEADLINE_INSERT[] =
    "INSERT INTO deadlines (id, case_id, org_id, kind, label, due_on, plugin, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static const char SQL_REFERRAL_DEADLINE_CLEAR[] =
    "UPDATE deadlines SET cleared_at = ?3 WHERE referral_id = ?1 AND (?2 IS NULL OR kind = ?2)"
    " AND cleared_at IS NULL";
static const char SQL_REFERRAL_DEADLINE_INSERT[] =
    "INSERT INTO deadlines (id, referral_id, org_id, kind, label, due_on, plugin, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static const char SQL_DEADLINES_OF_CASE[] =
    "SELECT kind, label, due_on, plugin FROM deadlines WHERE case_id = ?1 AND cleared_at IS NULL"
    " ORDER BY due_on, kind";

static int deadline_clear(store_tx *tx, const char *sql, const char *owner, const char *kind, err_t *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, sql, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    store_bind_opt(st, 2, kind);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "deadline clear");
}

/* Replaces the open deadline of kind of the owner by one due on due_on. */
static int deadline_put(store_tx *tx, const char *clear_sql, const char *insert_sql, const char *owner,
                        const char *org, const char *kind, const char *label, const char *due_on, const char *plugin,
                        err_t *e)
{
    if (deadline_clear(tx, clear_sql, owner, kind, e)) return -1;
    char id[ID_MAX], now[RFC3339_MAX];
    id_new("ddl_", id);
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, insert_sql, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, label, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, due_on, -1, SQLITE_STATIC);
    store_bind_opt(st, 7, plugin);
    sqlite3_bind_text(st, 8, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "deadline insert");
}

int store_deadline_clear(store_tx *tx, const char *case_id, const char *kind, err_t *e)
{
    return deadline_clear(tx, SQL_DEADLINE_CLEAR, case_id, kind, e);
}

int store_deadline_set(store_tx *tx, const case_row *c, const char *kind, const char *label,
                       const char *due_on, const char *plugin, err_t *e)
{
    return deadline_put(tx, SQL_DEADLINE_CLEAR, SQL_DEADLINE_INSERT, c->id, c->org, kind, label, due_on, plugin, e);
}

int store_referral_deadline_set(store_tx *tx, const char *org, const char *referral_id, const char *kind,
                                const char *label, const char *due_on, const char *plugin, err_t *e)
{
    return deadline_put(tx, SQL_REFERRAL_DEADLINE_CLEAR, SQL_REFERRAL_DEADLINE_INSERT, referral_id, org, kind, label,
                        due_on, plugin, e);
}

int store_referral_deadline_clear(store_tx *tx, const char *referral_id, const char *kind, err_t *e)
{
    return deadline_clear(tx, SQL_REFERRAL_DEADLINE_CLEAR, referral_id, kind, e);
}

int store_case_due(store_tx *tx, const char *case_id, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_DEADLINES_OF_CASE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    char today[11];
    date_today_str(today);
    json_t *items = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:o, s:b}", "kind", TEXT(st, 0), "label",
                                               TEXT(st, 1), "due_on", TEXT(st, 2), "plugin", OPT(st, 3),
                                               "overdue", strcmp(TEXT(st, 2), today) < 0));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(items);
        return store_fail(tx, e, "case deadlines");
    }
    *out = items;
    return 0;
}
