/* resources.c: welfare resources, their seats and their waitlist (seed 003
 * 자원관리, 자원 대기자 관리). See store/resources.h for the model; the offers
 * and what they mean for cases are decided in process/resources.c. */
#include "store/resources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

/* Who sees a resource: its organisation, or everyone in its share scope.
 * ?20 the viewer's organisation (NULL: anyone), ?22 its region. */
#define RESOURCE_VISIBLE                                                                        \
    "(?20 IS NULL OR r.org_id = ?20 OR (r.share_scope = 'district' AND r.region = ?22)"          \
    " OR (r.share_scope = 'region' AND substr(r.region, 1, 2) = substr(?22, 1, 2)))"

/* ?2: today (held seats count until their hold ends). */
#define RESOURCE_COLS                                                                                     \
    "r.id, r.org_id, r.region, r.name, r.provider_name, r.provider_type, r.distributor, r.kind,"          \
    " r.share_scope, r.period_start, r.period_end, r.cost, r.contact, r.description, r.status,"           \
    " r.created_at, r.created_by, r.updated_at, r.domains, r.targets, r.capacity, r.version,"             \
    " (SELECT COUNT(*) FROM resource_allocations a WHERE a.resource_id = r.id AND a.status = 'confirmed')," \
    " (SELECT COUNT(*) FROM resource_allocations a WHERE a.resource_id = r.id AND a.status = 'held'"        \
    "    AND a.hold_until >= ?2),"                                                                        \
    " (SELECT COUNT(*) FROM resource_waitlist w WHERE w.resource_id = r.id AND w.status = 'waiting')"

static const char SQL_RESOURCE_INSERT[] =
    "INSERT INTO resources (id, org_id, region, name, provider_name, provider_type, distributor, kind, domains,"
    " targets, share_scope, capacity, period_start, period_end, cost, contact, description, status, version,"
    " created_at, created_by, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, 'active', 1, ?18, ?19, ?18)";
static const char SQL_RESOURCE_GET[] = "SELECT " RESOURCE_COLS " FROM resources r WHERE r.id = ?1 AND " RESOURCE_VISIBLE;
static const char SQL_RESOURCE_LIST[] =
    "SELECT " RESOURCE_COLS " FROM resources r WHERE " RESOURCE_VISIBLE " AND r.status = 'active'"
    " AND (?3 IS NULL OR EXISTS (SELECT 1 FROM json_each(r.domains) d WHERE d.value = ?3))"
    " AND (?4 IS NULL OR r.kind = ?4)"
    " AND (?5 IS NULL OR EXISTS (SELECT 1 FROM json_each(r.targets) t WHERE t.value = ?5))"
    " AND (?6 IS NULL OR r.region = ?6)"
    " AND (?7 = 0 OR ((r.period_end IS NULL OR r.period_end >= ?2) AND (r.capacity IS NULL OR r.capacity >"
    "   (SELECT COUNT(*) FROM resource_allocations a WHERE a.resource_id = r.id AND (a.status = 'confirmed'"
    "    OR (a.status = 'held' AND a.hold_until >= ?2))))))"
    " AND (?8 IS NULL OR r.id > ?8) ORDER BY r.id LIMIT ?9";
static const char SQL_RESOURCE_CAPACITY[] =
    "UPDATE resources SET capacity = ?2, version = version + 1, updated_at = ?3 WHERE id = ?1"
    " AND (?4 < 0 OR version = ?4)";

#define ALLOCATION_COLS                                                                                 \
    "id, resource_id, case_id, person_id, org_id, waitlist_id, status, need, hold_until, created_at,"  \
    " created_by, released_at, released_by"
static const char SQL_ALLOCATION_INSERT[] =
    "INSERT INTO resource_allocations (id, resource_id, case_id, person_id, org_id, waitlist_id, status, need,"
    " hold_until, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
static const char SQL_ALLOCATION_GET[] =
    "SELECT " ALLOCATION_COLS " FROM resource_allocations WHERE id = ?1 AND resource_id = ?2";
static const char SQL_ALLOCATION_MOVE[] =
    "UPDATE resource_allocations SET status = ?3,"
    " released_at = CASE WHEN ?3 = 'released' THEN ?4 ELSE released_at END,"
    " released_by = CASE WHEN ?3 = 'released' THEN ?5 ELSE released_by END,"
    " hold_until = CASE WHEN ?3 = 'confirmed' THEN NULL ELSE hold_until END"
    " WHERE id = ?1 AND status = ?2";
static const char SQL_ALLOCATIONS_OF_CASE[] =
    "SELECT " ALLOCATION_COLS " FROM resource_allocations WHERE case_id = ?1 AND status <> 'released' ORDER BY id";

#define WAITLIST_COLS                                                                                        \
    "w.id, w.resource_id, w.case_id, w.person_id, w.org_id, w.region, w.registered_by, w.need, w.domain,"   \
    " w.kind, w.target, w.priority_reason, w.priority_plugin, w.status, w.offered_resource_id,"             \
    " w.allocation_id, w.offered_at, w.offer_due_on, w.end_reason, w.created_at, w.created_on, w.ended_at," \
    " w.ended_on, w.seq, w.priority, w.offer_days,"                                                         \
    " CASE WHEN w.status = 'waiting' THEN (SELECT COUNT(*) FROM resource_waitlist o WHERE o.status = 'waiting'" \
    "   AND ((w.resource_id IS NULL AND o.resource_id IS NULL AND o.domain = w.domain)"                      \
    "        OR o.resource_id = w.resource_id)"                                                              \
    "   AND (o.priority > w.priority OR (o.priority = w.priority AND o.seq < w.seq))) + 1 ELSE 0 END"

/* Waiting entries never get an offer of a resource they declined, nor one
 * whose case has ended meanwhile. */
#define NOT_DECLINED(res)                                                                                      \
    " AND NOT EXISTS (SELECT 1 FROM resource_declines x WHERE x.waitlist_id = w.id AND x.resource_id = " res ")" \
    " AND NOT EXISTS (SELECT 1 FROM cases xc WHERE xc.id = w.case_id AND xc.status = 'ended')"

static const char SQL_WAITLIST_SEQ[] = "SELECT COALESCE(MAX(seq), 0) + 1 FROM resource_waitlist";
static const char SQL_WAITLIST_INSERT[] =
    "INSERT INTO resource_waitlist (id, seq, resource_id, case_id, person_id, org_id, region, registered_by, need,"
    " domain, kind, target, priority, priority_reason, priority_plugin, offer_days, status, created_at, created_on)"
    " VALUES (?1, ?18, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 'waiting', ?16, ?17)";
static const char SQL_WAITLIST_GET[] = "SELECT " WAITLIST_COLS " FROM resource_waitlist w WHERE w.id = ?1";
static const char SQL_WAITLIST_BY_RESOURCE[] =
    "SELECT " WAITLIST_COLS " FROM resource_waitlist w WHERE w.resource_id = ?1"
    " AND ((?2 IS NULL AND w.status <> 'ended') OR w.status = ?2) AND (?3 IS NULL OR w.org_id = ?3)"
    " ORDER BY CASE w.status WHEN 'offered' THEN 0 WHEN 'waiting' THEN 1 ELSE 2 END, w.priority DESC, w.seq"
    " LIMIT ?4 OFFSET ?5";
static const char SQL_WAITLIST_LIST[] =
    "SELECT " WAITLIST_COLS " FROM resource_waitlist w WHERE (?1 IS NULL OR w.org_id = ?1)"
    " AND (?2 IS NULL OR w.status = ?2) AND (?3 IS NULL OR w.case_id = ?3) AND (?4 IS NULL OR w.person_id = ?4)"
    " AND (?5 IS NULL OR w.seq > CAST(?5 AS INTEGER)) ORDER BY w.seq LIMIT ?6";
static const char SQL_RESOURCE_CASE_HAS[] =
    "SELECT (SELECT COUNT(*) FROM resource_allocations WHERE resource_id = ?1 AND case_id = ?2"
    "        AND status IN ('held', 'confirmed'))"
    " + (SELECT COUNT(*) FROM resource_waitlist WHERE resource_id = ?1 AND case_id = ?2"
    "        AND status IN ('waiting', 'offered'))";
static const char SQL_WAITLIST_NEXT[] =
    "SELECT " WAITLIST_COLS " FROM resource_waitlist w WHERE w.resource_id = ?1 AND w.status = 'waiting'"
    NOT_DECLINED("?1") " ORDER BY w.priority DESC, w.seq LIMIT ?2";
static const char SQL_WAITLIST_MATCHING[] =
    "SELECT " WAITLIST_COLS " FROM resource_waitlist w WHERE w.status = 'waiting'"
    " AND (w.resource_id IS NULL OR w.resource_id <> ?1)"
    " AND w.domain IN (SELECT value FROM json_each(?2))"
    " AND (w.kind IS NULL OR w.kind = ?3)"
    " AND (w.target IS NULL OR w.target IN (SELECT value FROM json_each(?4)))"
    " AND ((?5 = 'none' AND w.org_id = ?6) OR (?5 = 'district' AND w.region = ?7)"
    "      OR (?5 = 'region' AND substr(w.region, 1, 2) = substr(?7, 1, 2)))"
    NOT_DECLINED("?1")
    " AND NOT EXISTS (SELECT 1 FROM resource_allocations a WHERE a.resource_id = ?1 AND a.case_id = w.case_id"
    "                 AND a.status IN ('held', 'confirmed'))"
    " ORDER BY w.priority DESC, w.seq LIMIT ?8";
static const char SQL_WAITLIST_OVERDUE[] =
    "SELECT " WAITLIST_COLS " FROM resource_waitlist w WHERE w.status = 'offered' AND w.offer_due_on < ?1"
    " ORDER BY w.seq LIMIT ?2";
static const char SQL_WAITLIST_OFFER[] =
    "UPDATE resource_waitlist SET status = 'offered', offered_resource_id = ?2, allocation_id = ?3,"
    " offered_at = ?4, offer_due_on = ?5 WHERE id = ?1 AND status = 'waiting'";
static const char SQL_WAITLIST_UNOFFER[] =
    "UPDATE resource_waitlist SET status = 'waiting', offered_resource_id = NULL, allocation_id = NULL,"
    " offered_at = NULL, offer_due_on = NULL WHERE id = ?1 AND status = 'offered'";
static const char SQL_DECLINE_INSERT[] =
    "INSERT OR IGNORE INTO resource_declines (waitlist_id, resource_id) VALUES (?1, ?2)";
static const char SQL_WAITLIST_END[] =
    "UPDATE resource_waitlist SET status = 'ended', end_reason = ?2, ended_at = ?3, ended_on = ?4"
    " WHERE id = ?1 AND status <> 'ended'";
static const char SQL_CASE_OFFERS[] =
    "SELECT MIN(offer_due_on), COUNT(*) FROM resource_waitlist WHERE case_id = ?1 AND status = 'offered'";

/* ---- rows ---- */
void resource_row_free(resource_row *r)
{
    free(r->mem);
    json_decref(r->domains);
    json_decref(r->targets);
    memset(r, 0, sizeof *r);
}

static void resource_drop(void *row) { resource_row_free(row); }

void resource_list_free(resource_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, resource_drop);
    memset(l, 0, sizeof *l);
}

void allocation_row_free(allocation_row *a)
{
    free(a->mem);
    memset(a, 0, sizeof *a);
}

static void allocation_drop(void *row) { allocation_row_free(row); }

void allocation_list_free(allocation_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, allocation_drop);
    memset(l, 0, sizeof *l);
}

void waitlist_row_free(waitlist_row *w)
{
    free(w->mem);
    memset(w, 0, sizeof *w);
}

static void waitlist_drop(void *row) { waitlist_row_free(row); }

void waitlist_list_free(waitlist_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, waitlist_drop);
    memset(l, 0, sizeof *l);
}

static int resource_read(sqlite3_stmt *st, void *row)
{
    resource_row *r = row;
    const char **const f[] = {&r->id,           &r->org,        &r->region,      &r->name,        &r->provider_name,
                              &r->provider_type, &r->distributor, &r->kind,      &r->share_scope, &r->period_start,
                              &r->period_end,   &r->cost,       &r->contact,     &r->description, &r->status,
                              &r->created_at,   &r->created_by, &r->updated_at};
    r->mem = store_texts(st, f, 18);
    r->domains = store_json_col(st, 18, 0);
    r->targets = store_json_col(st, 19, 0);
    r->has_capacity = sqlite3_column_type(st, 20) != SQLITE_NULL;
    r->capacity = r->has_capacity ? sqlite3_column_int64(st, 20) : 0;
    r->version = sqlite3_column_int(st, 21);
    r->confirmed = sqlite3_column_int64(st, 22);
    r->held = sqlite3_column_int64(st, 23);
    r->waiting = sqlite3_column_int64(st, 24);
    return r->mem ? 0 : -1;
}

static int allocation_read(sqlite3_stmt *st, void *row)
{
    allocation_row *a = row;
    const char **const f[] = {&a->id,   &a->resource_id, &a->case_id,    &a->person_id,  &a->org,
                              &a->waitlist_id, &a->status, &a->need,     &a->hold_until, &a->created_at,
                              &a->created_by, &a->released_at, &a->released_by};
    a->mem = store_texts(st, f, 13);
    return a->mem ? 0 : -1;
}

static int waitlist_read(sqlite3_stmt *st, void *row)
{
    waitlist_row *w = row;
    const char **const f[] = {&w->id,          &w->resource_id,     &w->case_id,       &w->person_id,
                              &w->org,         &w->region,          &w->registered_by, &w->need,
                              &w->domain,      &w->kind,            &w->target,        &w->priority_reason,
                              &w->priority_plugin, &w->status,      &w->offered_resource_id, &w->allocation_id,
                              &w->offered_at,  &w->offer_due_on,    &w->end_reason,    &w->created_at,
                              &w->created_on,  &w->ended_at,        &w->ended_on};
    w->mem = store_texts(st, f, 23);
    w->seq = sqlite3_column_int64(st, 23);
    w->priority = sqlite3_column_int(st, 24);
    w->offer_days = sqlite3_column_int(st, 25);
    w->position = sqlite3_column_int64(st, 26);
    return w->mem ? 0 : -1;
}

static int step_done(store_tx *tx, sqlite3_stmt *st, const char *what, store_err *e)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, what);
}

/* Binds the viewer of RESOURCE_VISIBLE (NULL: anyone). */
static void bind_resource_viewer(sqlite3_stmt *st, const principal *p)
{
    if (p) {
        sqlite3_bind_text(st, 20, p->org, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 22, p->region, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(st, 20);
        sqlite3_bind_null(st, 22);
    }
}

/* ---- resources ---- */
int store_resource_insert(store_tx *tx, const char *id, const resource_in *in, resource_row *out, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    char *domains = json_dumps(in->domains, JSON_COMPACT), *targets = json_dumps(in->targets, JSON_COMPACT);
    int rc = -1;
    sqlite3_stmt *st;
    if (!domains || !targets) {
        store_oom(e);
        goto done;
    }
    if (!(st = store_stmt(tx, SQL_RESOURCE_INSERT, e))) goto done;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, in->region, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, in->provider_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, in->provider_type, -1, SQLITE_STATIC);
    store_bind_opt(st, 7, in->distributor);
    sqlite3_bind_text(st, 8, in->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, domains, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, targets, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, in->share_scope, -1, SQLITE_STATIC);
    if (in->has_capacity) sqlite3_bind_int64(st, 12, in->capacity);
    else sqlite3_bind_null(st, 12);
    store_bind_opt(st, 13, in->period_start);
    store_bind_opt(st, 14, in->period_end);
    store_bind_opt(st, 15, in->cost);
    store_bind_opt(st, 16, in->contact);
    store_bind_opt(st, 17, in->description);
    sqlite3_bind_text(st, 18, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 19, in->by, -1, SQLITE_STATIC);
    if (step_done(tx, st, "resource insert", e)) goto done;
    char today[11];
    date_today_str(today);
    rc = store_resource_get(tx, NULL, id, today, out, e);
done:
    free(domains);
    free(targets);
    return rc;
}

int store_resource_get(store_tx *tx, const principal *p, const char *id, const char *today, resource_row *out,
                       store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_RESOURCE_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, today, -1, SQLITE_TRANSIENT);
    bind_resource_viewer(st, p);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return store_err_set(e, STORE_NOT_FOUND, "no resource '%s'", id);
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "resource get");
    int r = resource_read(st, out);
    sqlite3_reset(st);
    return r ? store_oom(e) : 0;
}

int store_resource_list(store_tx *tx, const principal *p, const resource_query *q, resource_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_RESOURCE_LIST, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 2, q->today, -1, SQLITE_TRANSIENT);
    store_bind_opt(st, 3, q->domain);
    store_bind_opt(st, 4, q->kind);
    store_bind_opt(st, 5, q->target);
    store_bind_opt(st, 6, q->region);
    sqlite3_bind_int(st, 7, q->available);
    store_bind_opt(st, 8, q->after);
    sqlite3_bind_int(st, 9, q->limit + 1);
    bind_resource_viewer(st, p);
    void *items;
    if (store_rows(tx, st, q->limit, sizeof *out->items, resource_read, resource_drop, &items, &out->n, &out->more,
                   e, "resource list"))
        return -1;
    out->items = items;
    if (out->n) str_copy(out->last, sizeof out->last, out->items[out->n - 1].id);
    return 0;
}

int store_resource_set_capacity(store_tx *tx, const char *id, bool has_capacity, long long capacity, int version,
                                store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_RESOURCE_CAPACITY, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (has_capacity) sqlite3_bind_int64(st, 2, capacity);
    else sqlite3_bind_null(st, 2);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, version);
    if (step_done(tx, st, "resource capacity", e)) return -1;
    if (sqlite3_changes(tx->db) != 1)
        return store_err_set(e, STORE_STALE, "resource %s changed since version %d; reload it", id, version);
    return 0;
}

/* ---- seats ---- */
int store_allocation_insert(store_tx *tx, const allocation_in *in, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_ALLOCATION_INSERT, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, in->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->resource_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, in->case_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->person_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, in->org, -1, SQLITE_STATIC);
    store_bind_opt(st, 6, in->waitlist_id);
    sqlite3_bind_text(st, 7, in->status, -1, SQLITE_STATIC);
    store_bind_opt(st, 8, in->need);
    store_bind_opt(st, 9, in->hold_until);
    sqlite3_bind_text(st, 10, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, in->by, -1, SQLITE_STATIC);
    return step_done(tx, st, "allocation insert", e);
}

int store_allocation_get(store_tx *tx, const char *resource_id, const char *id, allocation_row *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_ALLOCATION_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, resource_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return store_err_set(e, STORE_NOT_FOUND, "no allocation '%s' of resource '%s'", id, resource_id);
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "allocation get");
    int r = allocation_read(st, out);
    sqlite3_reset(st);
    return r ? store_oom(e) : 0;
}

int store_allocation_move(store_tx *tx, const char *id, const char *from, const char *to, const char *by,
                          store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_ALLOCATION_MOVE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, to, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
    store_bind_opt(st, 5, by);
    if (step_done(tx, st, "allocation move", e)) return -1;
    if (sqlite3_changes(tx->db) != 1) return store_err_set(e, STORE_CONFLICT, "allocation %s is not %s", id, from);
    return 0;
}

int store_allocations_of_case(store_tx *tx, const char *case_id, allocation_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_ALLOCATIONS_OF_CASE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_TRANSIENT);
    void *items;
    if (store_rows(tx, st, -1, sizeof *out->items, allocation_read, allocation_drop, &items, &out->n, NULL, e,
                   "allocations of case"))
        return -1;
    out->items = items;
    return 0;
}

/* ---- the waitlist ---- */
int store_waitlist_insert(store_tx *tx, const waitlist_in *in, store_err *e)
{
    char now[RFC3339_MAX], today[11];
    time_rfc3339(time_now_ms(), now);
    date_today_str(today);
    long long seq;
    if (store_next_seq(tx, SQL_WAITLIST_SEQ, NULL, &seq, e)) return -1;
    sqlite3_stmt *st = store_stmt(tx, SQL_WAITLIST_INSERT, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, in->id, -1, SQLITE_STATIC);
    store_bind_opt(st, 2, in->resource_id);
    sqlite3_bind_text(st, 3, in->case_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->person_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, in->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, in->region, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, in->by, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, in->need, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, in->domain, -1, SQLITE_STATIC);
    store_bind_opt(st, 10, in->kind);
    store_bind_opt(st, 11, in->target);
    sqlite3_bind_int(st, 12, in->priority);
    store_bind_opt(st, 13, in->priority_reason);
    store_bind_opt(st, 14, in->priority_plugin);
    sqlite3_bind_int(st, 15, in->offer_days);
    sqlite3_bind_text(st, 16, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 17, today, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 18, seq);
    return step_done(tx, st, "waitlist insert", e);
}

int store_waitlist_get(store_tx *tx, const char *id, waitlist_row *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_WAITLIST_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return store_err_set(e, STORE_NOT_FOUND, "no waitlist entry '%s'", id);
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "waitlist get");
    int r = waitlist_read(st, out);
    sqlite3_reset(st);
    return r ? store_oom(e) : 0;
}

int store_waitlist_list(store_tx *tx, const waitlist_query *q, waitlist_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    if (q->resource_id) {
        /* A resource's list is in its offering order: a page is an offset into it. */
        long long offset = q->after ? strtoll(q->after, NULL, 10) : 0;
        if (offset < 0) offset = 0;
        if (!(st = store_stmt(tx, SQL_WAITLIST_BY_RESOURCE, e))) return -1;
        sqlite3_bind_text(st, 1, q->resource_id, -1, SQLITE_TRANSIENT);
        store_bind_opt(st, 2, q->status);
        store_bind_opt(st, 3, q->org);
        sqlite3_bind_int(st, 4, q->limit + 1);
        sqlite3_bind_int64(st, 5, offset);
        void *items;
        if (store_rows(tx, st, q->limit, sizeof *out->items, waitlist_read, waitlist_drop, &items, &out->n,
                       &out->more, e, "resource waitlist"))
            return -1;
        out->items = items;
        snprintf(out->last, sizeof out->last, "%lld", offset + (long long)out->n);
        return 0;
    }
    if (!(st = store_stmt(tx, SQL_WAITLIST_LIST, e))) return -1;
    store_bind_opt(st, 1, q->org);
    store_bind_opt(st, 2, q->status);
    store_bind_opt(st, 3, q->case_id);
    store_bind_opt(st, 4, q->person_id);
    store_bind_opt(st, 5, q->after);
    sqlite3_bind_int(st, 6, q->limit + 1);
    void *items;
    if (store_rows(tx, st, q->limit, sizeof *out->items, waitlist_read, waitlist_drop, &items, &out->n, &out->more,
                   e, "waitlist"))
        return -1;
    out->items = items;
    if (out->n) snprintf(out->last, sizeof out->last, "%lld", out->items[out->n - 1].seq);
    return 0;
}

int store_resource_case_has(store_tx *tx, const char *resource_id, const char *case_id, bool *has, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_RESOURCE_CASE_HAS, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, resource_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, case_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) return store_fail(tx, e, "resource case has");
    *has = sqlite3_column_int64(st, 0) > 0;
    sqlite3_reset(st);
    return 0;
}

static int waitlist_rows(store_tx *tx, sqlite3_stmt *st, int n, waitlist_list *out, store_err *e, const char *what)
{
    void *items;
    if (store_rows(tx, st, n, sizeof *out->items, waitlist_read, waitlist_drop, &items, &out->n, NULL, e, what))
        return -1;
    out->items = items;
    return 0;
}

int store_waitlist_next(store_tx *tx, const resource_row *r, int n, waitlist_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_WAITLIST_NEXT, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, r->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, n);
    return waitlist_rows(tx, st, n, out, e, "waitlist next");
}

int store_waitlist_matching(store_tx *tx, const resource_row *r, int n, waitlist_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    char *domains = json_dumps(r->domains, JSON_COMPACT | JSON_ENCODE_ANY);
    char *targets = json_dumps(r->targets, JSON_COMPACT | JSON_ENCODE_ANY);
    int rc = -1;
    sqlite3_stmt *st;
    if (!domains || !targets) {
        store_oom(e);
        goto done;
    }
    if (!(st = store_stmt(tx, SQL_WAITLIST_MATCHING, e))) goto done;
    sqlite3_bind_text(st, 1, r->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, domains, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, r->kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, targets, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, r->share_scope, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, r->org, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, r->region, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 8, n);
    rc = waitlist_rows(tx, st, n, out, e, "waitlist matching");
done:
    free(domains);
    free(targets);
    return rc;
}

int store_waitlist_overdue(store_tx *tx, const char *today, int n, waitlist_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_WAITLIST_OVERDUE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, today, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, n);
    return waitlist_rows(tx, st, n, out, e, "waitlist overdue");
}

int store_waitlist_offer(store_tx *tx, const char *id, const char *resource_id, const char *allocation_id,
                         const char *due_on, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_WAITLIST_OFFER, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, resource_id, -1, SQLITE_STATIC);
    store_bind_opt(st, 3, allocation_id);
    sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, due_on, -1, SQLITE_STATIC);
    if (step_done(tx, st, "waitlist offer", e)) return -1;
    if (sqlite3_changes(tx->db) != 1) return store_err_set(e, STORE_CONFLICT, "waitlist entry %s is not waiting", id);
    return 0;
}

int store_waitlist_unoffer(store_tx *tx, const char *id, const char *resource_id, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_WAITLIST_UNOFFER, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (step_done(tx, st, "waitlist unoffer", e)) return -1;
    if (sqlite3_changes(tx->db) != 1) return store_err_set(e, STORE_CONFLICT, "waitlist entry %s has no offer", id);
    if (!(st = store_stmt(tx, SQL_DECLINE_INSERT, e))) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, resource_id, -1, SQLITE_STATIC);
    return step_done(tx, st, "waitlist decline", e);
}

int store_waitlist_end(store_tx *tx, const char *id, const char *reason, store_err *e)
{
    char now[RFC3339_MAX], today[11];
    time_rfc3339(time_now_ms(), now);
    date_today_str(today);
    sqlite3_stmt *st = store_stmt(tx, SQL_WAITLIST_END, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, today, -1, SQLITE_STATIC);
    if (step_done(tx, st, "waitlist end", e)) return -1;
    if (sqlite3_changes(tx->db) != 1) return store_err_set(e, STORE_CONFLICT, "waitlist entry %s has ended", id);
    return 0;
}

int store_case_offers(store_tx *tx, const char *case_id, char due_on[11], int *n, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_CASE_OFFERS, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) return store_fail(tx, e, "case offers");
    const char *d = TEXT(st, 0);
    str_copy(due_on, 11, d ? d : "");
    *n = sqlite3_column_int(st, 1);
    sqlite3_reset(st);
    return 0;
}

void store_sql_of_resources(store_sql_fn fn, void *ctx)
{
    /* A resource's waitlist is a queue of a few cases; the lists of a
     * region's resources and waiting entries are filtered walks (FEW: not
     * yet each filter on its own index). */
    STORE_SQL(fn, ctx, SQL_RESOURCE_INSERT);
    STORE_SQL(fn, ctx, SQL_RESOURCE_GET);
    fn("SQL_RESOURCE_LIST", SQL_RESOURCE_LIST, STORE_SQL_FEW, ctx);
    STORE_SQL(fn, ctx, SQL_RESOURCE_CAPACITY);
    STORE_SQL(fn, ctx, SQL_ALLOCATION_INSERT);
    STORE_SQL(fn, ctx, SQL_ALLOCATION_GET);
    STORE_SQL(fn, ctx, SQL_ALLOCATION_MOVE);
    STORE_SQL(fn, ctx, SQL_ALLOCATIONS_OF_CASE);
    STORE_SQL(fn, ctx, SQL_WAITLIST_SEQ);
    STORE_SQL(fn, ctx, SQL_WAITLIST_INSERT);
    STORE_SQL(fn, ctx, SQL_WAITLIST_GET);
    fn("SQL_WAITLIST_BY_RESOURCE", SQL_WAITLIST_BY_RESOURCE, STORE_SQL_FEW, ctx);
    fn("SQL_WAITLIST_LIST", SQL_WAITLIST_LIST, STORE_SQL_FEW, ctx);
    STORE_SQL(fn, ctx, SQL_RESOURCE_CASE_HAS);
    fn("SQL_WAITLIST_NEXT", SQL_WAITLIST_NEXT, STORE_SQL_FEW, ctx);
    fn("SQL_WAITLIST_MATCHING", SQL_WAITLIST_MATCHING, STORE_SQL_FEW, ctx);
    fn("SQL_WAITLIST_OVERDUE", SQL_WAITLIST_OVERDUE, STORE_SQL_FEW, ctx); /* the offers past due, a sweep */
    STORE_SQL(fn, ctx, SQL_WAITLIST_OFFER);
    STORE_SQL(fn, ctx, SQL_WAITLIST_UNOFFER);
    STORE_SQL(fn, ctx, SQL_DECLINE_INSERT);
    STORE_SQL(fn, ctx, SQL_WAITLIST_END);
    STORE_SQL(fn, ctx, SQL_CASE_OFFERS);
}
