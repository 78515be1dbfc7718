/* cases.c: case rows (optimistic versioning) and the append-only event log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"


#define CASE_COLS                                                                          \
    "id, person_id, program, org_id, region, source, referral_id, stage, status, version," \
    " assigned_to, opened_at, plugin_generation, lead_org"

static const char SQL_CASE_INSERT[] =
    "INSERT INTO cases (id, person_id, program, org_id, region, source, referral_id, stage, status,"
    " version, assigned_to, opened_at, updated_at, plugin_generation)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)";
static const char SQL_CASE_GET[] =
    "SELECT " CASE_COLS " FROM cases WHERE id = ?1 AND " CASE_VISIBLE("org_id", "lead_org");
static const char SQL_CASE_UPDATE[] =
    "UPDATE cases SET stage = ?1, status = ?2, version = version + 1, plugin_generation = ?3,"
    " updated_at = ?4, assigned_to = ?5 WHERE id = ?6 AND version = ?7";
static const char SQL_CASE_TOUCH[] =
    "UPDATE cases SET version = version + 1, updated_at = ?1 WHERE id = ?2 AND version = ?3";
static const char SQL_PERSON_CASES[] =
    "SELECT " CASE_COLS " FROM cases WHERE person_id = ?1 AND " CASE_VISIBLE("org_id", "lead_org") " ORDER BY id";
static const char SQL_EVENT_SEQ[] = "SELECT COALESCE(MAX(seq), 0) + 1 FROM case_events WHERE case_id = ?1";
static const char SQL_EVENT_INSERT[] =
    "INSERT INTO case_events (id, case_id, seq, at, actor, type, from_stage, to_stage, data, note,"
    " generation) VALUES (?1, ?2, ?11, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
#define EVENT_COLS "id, seq, at, actor, type, from_stage, to_stage, data, note, generation"
static const char SQL_EVENT_LIST[] =
    "SELECT " EVENT_COLS " FROM case_events WHERE case_id = ?1 ORDER BY seq LIMIT ?3";
static const char SQL_EVENT_LIST_AFTER[] =
    "SELECT " EVENT_COLS " FROM case_events WHERE case_id = ?1 AND seq > CAST(?2 AS INTEGER) ORDER BY seq LIMIT ?3";

/* A page of cases: one SELECT per organisation the viewer sees, each on the
 * index of the filter given that ends with id (cases_org, cases_org_program,
 * cases_org_stage, cases_org_status), merged by id. Overdue: the case ids of
 * the organisation's open deadlines past due (deadlines_org_open), in id
 * order. */
enum {
    CASE_PROGRAM = 1, CASE_STAGE = 2, CASE_STATUS = 4, CASE_AFTER = 8, CASE_OVERDUE = 16, CASE_ASSIGNED = 32,
    CASE_SHAPES = 64
};

static void case_filters(sql_buf *b, unsigned f, int org)
{
    if (f & CASE_PROGRAM) sql_add(b, " AND program = ?1");
    if (f & CASE_STAGE) sql_add(b, " AND stage = ?2");
    if (f & CASE_STATUS) sql_add(b, " AND status = ?3");
    if (f & CASE_ASSIGNED) sql_add(b, " AND assigned_to = ?7"); /* cases_org_assignee */
    if (f & CASE_AFTER) sql_add(b, " AND id > ?4");
    if (f & CASE_OVERDUE)
        sql_add(b, " AND id IN (SELECT case_id FROM deadlines WHERE org_id = ?%d AND cleared_at IS NULL"
                   " AND due_on < ?6)", org);
}

/* With lead, one more arm: the cases the viewer leads (seed 004 주
 * 사례기관) of organisations it does not see otherwise (cases_lead), its
 * organisation bound at ?20 (store_bind_viewer); their deadlines are the
 * lead's. */
static void case_list_sql(sql_buf *b, unsigned shape, size_t n_orgs, bool lead)
{
    for (size_t k = 0; k < n_orgs; k++) {
        int org = STORE_ORG_PARAM + (int)k;
        if (k) sql_add(b, " UNION ALL ");
        sql_add(b, "SELECT " CASE_COLS " FROM cases WHERE org_id = ?%d", org);
        case_filters(b, shape, org);
    }
    if (lead) {
        if (n_orgs) sql_add(b, " UNION ALL ");
        sql_add(b, "SELECT " CASE_COLS " FROM cases WHERE lead_org = ?20");
        if (n_orgs) {
            sql_add(b, " AND org_id NOT IN (");
            for (size_t k = 0; k < n_orgs; k++) sql_add(b, "%s?%d", k ? ", " : "", STORE_ORG_PARAM + (int)k);
            sql_add(b, ")");
        }
        case_filters(b, shape, 20);
    }
    sql_add(b, " ORDER BY 1 LIMIT ?5");
}

/* The de-identified export: the same walk, each case joined to its person. */
static void export_arm(sql_buf *b, int k, const void *shape)
{
    bool after = *(const bool *)shape;
    sql_add(b, "SELECT c.id, c.program, c.org_id, c.region, c.source, c.stage, c.status, c.opened_at, p.birth_date,"
               " p.sex, c.person_id FROM cases c CROSS JOIN persons p ON p.id = c.person_id WHERE c.org_id = ?%d%s",
            STORE_ORG_PARAM + k, after ? " AND c.id > ?1" : "");
}

static void export_sql(sql_buf *b, bool after, size_t n_orgs) { sql_arms(b, n_orgs, export_arm, &after, "1", 2); }

/* A text column into a fixed field, cut at the field's size (a case is
 * read on every request about it: no printf machinery for a copy). */
static void copy_col(sqlite3_stmt *st, int i, char *dst, size_t n)
{
    const char *s = TEXT(st, i);
    size_t len = s ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (len >= n) len = n - 1;
    if (len) memcpy(dst, s, len);
    dst[len] = 0;
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
    copy_col(st, 13, c->lead_org, sizeof c->lead_org);
}

int store_case_insert(store_tx *tx, const case_row *c, store_err *e)
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

/* The one case the bound statement st selects, into c. */
static int one_case(store_tx *tx, sqlite3_stmt *st, const char *id, case_row *c, store_err *e, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return store_err_set(e, STORE_NOT_FOUND, "no case '%s'", id);
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, what);
    case_from_row(st, c);
    sqlite3_reset(st);
    return 0;
}

int store_case_load(store_tx *tx, const principal *p, const char *id, case_row *c, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_CASE_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    store_bind_viewer(st, p);
    return one_case(tx, st, id, c, e, "case get");
}

static const char SQL_CASE_ROW[] = "SELECT " CASE_COLS " FROM cases WHERE id = ?1";

int store_case_row(store_tx *tx, const char *id, case_row *c, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_CASE_ROW, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    return one_case(tx, st, id, c, e, "case row");
}

int store_case_update(store_tx *tx, case_row *c, store_err *e)
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
    if (sqlite3_changes(tx->db) != 1)
        return store_err_set(e, STORE_STALE, "the case changed since version %d; reload it", c->version);
    c->version++;
    return 0;
}

int store_case_touch(store_tx *tx, case_row *c, store_err *e)
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
    if (sqlite3_changes(tx->db) != 1)
        return store_err_set(e, STORE_STALE, "the case changed since version %d; reload it", c->version);
    c->version++;
    return 0;
}

/* The case's open deadlines go with it to its new lead (the lead's
 * deadline list is where its workers see them). */
static const char SQL_CASE_LEAD[] = "UPDATE cases SET lead_org = ?2, updated_at = ?3 WHERE id = ?1";
static const char SQL_CASE_LEAD_DEADLINES[] =
    "UPDATE deadlines SET org_id = COALESCE(?2, (SELECT org_id FROM cases WHERE id = ?1))"
    " WHERE case_id = ?1 AND cleared_at IS NULL";

int store_case_set_lead(store_tx *tx, const char *case_id, const char *lead, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_CASE_LEAD, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    store_bind_opt(st, 2, lead);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "case lead");
    if (sqlite3_changes(tx->db) != 1) return store_err_set(e, STORE_NOT_FOUND, "no case '%s'", case_id);
    if (!(st = store_stmt(tx, SQL_CASE_LEAD_DEADLINES, e))) return -1;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    store_bind_opt(st, 2, lead);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "case lead deadlines");
}

int store_case_read(sqlite3_stmt *st, void *row)
{
    case_from_row(st, row);
    return 0;
}

static void case_page_last(case_list *l)
{
    if (l->n) str_copy(l->last, sizeof l->last, l->items[l->n - 1].id);
}

int store_case_list(store_tx *tx, const principal *p, const case_query *q, case_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    const char **orgs;
    size_t n_orgs;
    if (store_viewer_orgs(tx, p, q->org && *q->org ? q->org : NULL, &orgs, &n_orgs, e)) return -1;
    if (!n_orgs) { /* an organisation p does not see: nothing */
        free(orgs);
        return 0;
    }
    unsigned shape = (q->program && *q->program ? CASE_PROGRAM : 0) | (q->stage && *q->stage ? CASE_STAGE : 0) |
                     (q->status && *q->status ? CASE_STATUS : 0) | (q->after && *q->after ? CASE_AFTER : 0) |
                     (q->overdue_on && *q->overdue_on ? CASE_OVERDUE : 0) |
                     (q->assigned_to && *q->assigned_to ? CASE_ASSIGNED : 0);
    sql_buf b = {0};
    bool lead = !(q->org && *q->org); /* a filter on an organisation is on its own cases */
    case_list_sql(&b, shape, n_orgs, lead);
    sqlite3_stmt *st = store_stmt_built(tx, &b, e);
    sql_free(&b);
    if (!st) {
        free(orgs);
        return -1;
    }
    store_bind_orgs(st, orgs, n_orgs);
    if (lead) sqlite3_bind_text(st, 20, p->org, -1, SQLITE_TRANSIENT);
    store_bind_opt(st, 1, q->program);
    store_bind_opt(st, 2, q->stage);
    store_bind_opt(st, 3, q->status);
    store_bind_opt(st, 4, q->after);
    sqlite3_bind_int(st, 5, q->limit + 1);
    store_bind_opt(st, 6, q->overdue_on);
    store_bind_opt(st, 7, q->assigned_to);
    void *items;
    int rc = store_rows(tx, st, q->limit, sizeof *out->items, store_case_read, NULL, &items, &out->n, &out->more, e,
                        "case list");
    free(orgs);
    if (rc) return -1;
    out->items = items;
    case_page_last(out);
    return 0;
}

/* Who may be assigned a case: a user of the organisation with a token of
 * a role that works cases, neither revoked nor expired. */
static const char SQL_ASSIGNEE[] =
    "SELECT 1 FROM tokens WHERE org_id = ?1 AND user_name = ?2 AND revoked_at IS NULL"
    " AND (expires_at IS NULL OR expires_at > strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"
    " AND role IN ('worker', 'supervisor', 'admin') LIMIT 1";

int store_case_assignee_known(store_tx *tx, const char *org, const char *user, bool *known, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_ASSIGNEE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_fail(tx, e, "case assignee");
    *known = rc == SQLITE_ROW;
    return 0;
}

/* A bulk export de-identifies: the person is their birth date and sex,
 * nothing that names them (seed 003). */
static int export_read(sqlite3_stmt *st, void *row)
{
    case_export_row *x = row;
    const char **const f[] = {&x->case_id, &x->program, &x->org,       &x->region,     &x->source,
                              &x->stage,   &x->status,  &x->opened_at, &x->birth_date, &x->sex,
                              &x->person_id};
    x->mem = store_texts(st, f, 11);
    return x->mem ? 0 : -1;
}

static void export_drop(void *row) { case_export_row_free(row); }

int store_case_export(store_tx *tx, const principal *p, int limit, const char *after, case_export_list *out,
                      store_err *e)
{
    memset(out, 0, sizeof *out);
    const char **orgs;
    size_t n_orgs;
    if (store_viewer_orgs(tx, p, NULL, &orgs, &n_orgs, e)) return -1;
    sql_buf b = {0};
    export_sql(&b, after && *after, n_orgs);
    sqlite3_stmt *st = store_stmt_built(tx, &b, e);
    sql_free(&b);
    if (!st) {
        free(orgs);
        return -1;
    }
    store_bind_orgs(st, orgs, n_orgs);
    store_bind_opt(st, 1, after);
    sqlite3_bind_int(st, 2, limit + 1);
    void *items;
    int rc = store_rows(tx, st, limit, sizeof *out->items, export_read, export_drop, &items, &out->n, &out->more, e,
                        "case export");
    free(orgs);
    if (rc) return -1;
    out->items = items;
    if (out->n) str_copy(out->last, sizeof out->last, out->items[out->n - 1].case_id);
    return 0;
}

int store_event_append(store_tx *tx, const event_in *ev, store_err *e)
{
    char id[ID_MAX], now[RFC3339_MAX];
    id_new("evt_", id);
    time_rfc3339(time_now_ms(), now);
    long long seq;
    if (store_next_seq(tx, SQL_EVENT_SEQ, ev->case_id, &seq, e)) return -1;
    char *data = ev->data ? json_dumps(ev->data, JSON_COMPACT) : strdup("{}");
    if (!data) return store_oom(e);
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
    sqlite3_bind_int64(st, 11, seq);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    free(data);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "event append");
}

static int event_read(sqlite3_stmt *st, void *row)
{
    event_row *ev = row;
    const char **const f[] = {&ev->id,         NULL,         &ev->at,   &ev->actor, &ev->type,
                              &ev->from_stage, &ev->to_stage, NULL,     &ev->note,  &ev->generation};
    ev->mem = store_texts(st, f, 10);
    ev->seq = sqlite3_column_int64(st, 1);
    ev->data = store_json_col(st, 7, 0);
    return ev->mem ? 0 : -1;
}

static void event_drop(void *row) { event_row_free(row); }

int store_event_list(store_tx *tx, const char *case_id, int limit, const char *after, event_list *out,
                     store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, after && *after ? SQL_EVENT_LIST_AFTER : SQL_EVENT_LIST, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    if (after && *after) sqlite3_bind_text(st, 2, after, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, limit + 1);
    void *items;
    if (store_rows(tx, st, limit, sizeof *out->items, event_read, event_drop, &items, &out->n, &out->more, e,
                   "event list"))
        return -1;
    out->items = items;
    if (out->n) snprintf(out->last, sizeof out->last, "%lld", out->items[out->n - 1].seq);
    return 0;
}

int store_person_cases(store_tx *tx, const principal *p, const char *person_id, case_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_CASES, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, person_id, -1, SQLITE_TRANSIENT);
    store_bind_viewer(st, p);
    void *items;
    if (store_rows(tx, st, -1, sizeof *out->items, store_case_read, NULL, &items, &out->n, NULL, e, "person cases"))
        return -1;
    out->items = items;
    case_page_last(out);
    return 0;
}

/* Deadlines belong to a case or to a referral (an answer due, a closure to
 * review); both kinds are set and cleared the same way. */
/* Clearing reads the open ones (to count them out), then clears each by its
 * row: an UPDATE ... RETURNING keeps its rows in a temporary table on every
 * run, and so does an UPDATE of the column of the index it walks (open
 * deadlines: cleared_at IS NULL); most moves have nothing to clear. */
static const char SQL_DEADLINE_OPEN[] =
    "SELECT rowid, kind, due_on FROM deadlines WHERE case_id = ?1 AND kind = ?2 AND cleared_at IS NULL LIMIT 32";
static const char SQL_DEADLINE_OPEN_ALL[] =
    "SELECT rowid, kind, due_on FROM deadlines WHERE case_id = ?1 AND cleared_at IS NULL LIMIT 32";
static const char SQL_DEADLINE_CLEAR[] = "UPDATE deadlines SET cleared_at = ?2 WHERE rowid = ?1";
static const char SQL_DEADLINE_INSERT[] =
    "INSERT INTO deadlines (id, case_id, org_id, kind, label, due_on, plugin, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static const char SQL_REFERRAL_DEADLINE_OPEN[] =
    "SELECT rowid, kind, due_on FROM deadlines WHERE referral_id = ?1 AND kind = ?2 AND cleared_at IS NULL LIMIT 32";
static const char SQL_REFERRAL_DEADLINE_OPEN_ALL[] =
    "SELECT rowid, kind, due_on FROM deadlines WHERE referral_id = ?1 AND cleared_at IS NULL LIMIT 32";
static const char SQL_REFERRAL_DEADLINE_INSERT[] =
    "INSERT INTO deadlines (id, referral_id, org_id, kind, label, due_on, plugin, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static const char SQL_DEADLINES_OF_CASE[] =
    "SELECT id, kind, label, due_on, plugin, case_id FROM deadlines WHERE case_id = ?1 AND cleared_at IS NULL"
    " ORDER BY due_on, kind";

void store_sql_of_cases(store_sql_fn fn, void *ctx)
{
    STORE_SQL(fn, ctx, SQL_CASE_INSERT);
    STORE_SQL(fn, ctx, SQL_CASE_GET);
    STORE_SQL(fn, ctx, SQL_CASE_UPDATE);
    STORE_SQL(fn, ctx, SQL_CASE_TOUCH);
    STORE_SQL(fn, ctx, SQL_PERSON_CASES);
    STORE_SQL(fn, ctx, SQL_EVENT_SEQ);
    STORE_SQL(fn, ctx, SQL_EVENT_INSERT);
    STORE_SQL(fn, ctx, SQL_EVENT_LIST);
    STORE_SQL(fn, ctx, SQL_EVENT_LIST_AFTER);
    STORE_SQL(fn, ctx, SQL_DEADLINE_OPEN);
    STORE_SQL(fn, ctx, SQL_DEADLINE_OPEN_ALL);
    STORE_SQL(fn, ctx, SQL_DEADLINE_CLEAR);
    STORE_SQL(fn, ctx, SQL_DEADLINE_INSERT);
    STORE_SQL(fn, ctx, SQL_REFERRAL_DEADLINE_OPEN);
    STORE_SQL(fn, ctx, SQL_REFERRAL_DEADLINE_OPEN_ALL);
    STORE_SQL(fn, ctx, SQL_REFERRAL_DEADLINE_INSERT);
    STORE_SQL(fn, ctx, SQL_DEADLINES_OF_CASE);
    STORE_SQL(fn, ctx, SQL_ASSIGNEE);
    STORE_SQL(fn, ctx, SQL_CASE_ROW);
    STORE_SQL(fn, ctx, SQL_CASE_LEAD);
    STORE_SQL(fn, ctx, SQL_CASE_LEAD_DEADLINES);
    static const size_t orgs[] = {1, 3};
    for (size_t i = 0; i < 2; i++) {
        for (unsigned shape = 0; shape < CASE_SHAPES; shape++) {
            sql_buf b = {0};
            char name[80];
            case_list_sql(&b, shape, orgs[i], true);
            snprintf(name, sizeof name, "case list (shape %u, %zu organisations and the led)", shape, orgs[i]);
            if (!b.oom) fn(name, b.s, STORE_SQL_REQUEST, ctx);
            sql_free(&b);
            sql_buf own = {0};
            case_list_sql(&own, shape, orgs[i], false);
            snprintf(name, sizeof name, "case list (shape %u, %zu organisations)", shape, orgs[i]);
            if (!own.oom) fn(name, own.s, STORE_SQL_REQUEST, ctx);
            sql_free(&own);
        }
        for (int after = 0; after < 2; after++) {
            sql_buf b = {0};
            char name[80];
            export_sql(&b, after, orgs[i]);
            snprintf(name, sizeof name, "case export (%s, %zu organisations)", after ? "after" : "first", orgs[i]);
            if (!b.oom) fn(name, b.s, STORE_SQL_REQUEST, ctx);
            sql_free(&b);
        }
    }
}

/* Clears the open deadlines of an owner (of one kind, or all), counting
 * each cleared one out of the open ones. */
static int deadline_clear(store_tx *tx, const char *open_sql, const char *owner, const char *kind, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    for (;;) { /* a page of open ones (LIMIT 32), read whole, then cleared; again until none is left */
        sqlite3_stmt *st = store_stmt(tx, open_sql, e);
        if (!st) return -1;
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
        if (kind) sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
        sqlite3_int64 rows[32];
        int n = 0, rc;
        while (n < 32 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            rows[n++] = sqlite3_column_int64(st, 0);
            if (store_count(tx, COUNT_DEADLINE, TEXT(st, 1), TEXT(st, 2), -1, e)) {
                sqlite3_reset(st);
                return -1;
            }
        }
        sqlite3_reset(st);
        if (n < 32 && rc != SQLITE_DONE) return store_fail(tx, e, "deadline clear");
        for (int i = 0; i < n; i++) {
            if (!(st = store_stmt(tx, SQL_DEADLINE_CLEAR, e))) return -1;
            sqlite3_bind_int64(st, 1, rows[i]);
            sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
            rc = sqlite3_step(st);
            sqlite3_reset(st);
            if (rc != SQLITE_DONE) return store_fail(tx, e, "deadline clear");
        }
        if (n < 32) return 0;
    }
}

/* Replaces the open deadline of kind of the owner by one due on due_on. */
static int deadline_put(store_tx *tx, const char *open_sql, const char *insert_sql, const char *owner,
                        const char *org, const char *kind, const char *label, const char *due_on, const char *plugin,
                        store_err *e)
{
    if (deadline_clear(tx, open_sql, owner, kind, e)) return -1;
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
    if (rc != SQLITE_DONE) return store_fail(tx, e, "deadline insert");
    return store_count(tx, COUNT_DEADLINE, kind, due_on, 1, e);
}

int store_deadline_clear(store_tx *tx, const char *case_id, const char *kind, store_err *e)
{
    return deadline_clear(tx, kind ? SQL_DEADLINE_OPEN : SQL_DEADLINE_OPEN_ALL, case_id, kind, e);
}

int store_deadline_set(store_tx *tx, const case_row *c, const char *kind, const char *label,
                       const char *due_on, const char *plugin, store_err *e)
{
    const char *org = c->lead_org[0] ? c->lead_org : c->org; /* the lead's workers see it */
    return deadline_put(tx, SQL_DEADLINE_OPEN, SQL_DEADLINE_INSERT, c->id, org, kind, label, due_on, plugin, e);
}

int store_referral_deadline_set(store_tx *tx, const char *org, const char *referral_id, const char *kind,
                                const char *label, const char *due_on, const char *plugin, store_err *e)
{
    return deadline_put(tx, SQL_REFERRAL_DEADLINE_OPEN, SQL_REFERRAL_DEADLINE_INSERT, referral_id, org, kind, label,
                        due_on, plugin, e);
}

int store_referral_deadline_clear(store_tx *tx, const char *referral_id, const char *kind, store_err *e)
{
    return deadline_clear(tx, kind ? SQL_REFERRAL_DEADLINE_OPEN : SQL_REFERRAL_DEADLINE_OPEN_ALL, referral_id, kind,
                          e);
}

static int due_read(sqlite3_stmt *st, void *row)
{
    deadline_row *d = row;
    const char **const f[] = {&d->id, &d->kind, &d->label, &d->due_on, &d->plugin, &d->case_id};
    d->mem = store_texts(st, f, 6);
    return d->mem ? 0 : -1;
}

static void deadline_drop(void *row) { deadline_row_free(row); }

int store_case_due(store_tx *tx, const char *case_id, deadline_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_DEADLINES_OF_CASE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    void *items;
    if (store_rows(tx, st, -1, sizeof *out->items, due_read, deadline_drop, &items, &out->n, NULL, e,
                   "case deadlines"))
        return -1;
    out->items = items;
    return 0;
}
