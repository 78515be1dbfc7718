/* referrals.c: consents of persons, and referrals between organisations and
 * programs, with the deadlines that belong to a referral rather than to a
 * case (an answer due from the receiver, a closure to review). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

static const char SQL_CONSENT_INSERT[] =
    "INSERT INTO consents (id, person_id, org_id, purpose, scope, valid_from, valid_until, created_at, created_by)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char SQL_CONSENT_GET[] =
    "SELECT id, person_id, purpose, scope, valid_from, valid_until, created_at, created_by, revoked_at,"
    " revoked_by FROM consents WHERE id = ?1 AND person_id = ?2";
static const char SQL_CONSENT_LIST[] =
    "SELECT id, person_id, purpose, scope, valid_from, valid_until, created_at, created_by, revoked_at,"
    " revoked_by FROM consents WHERE person_id = ?1 ORDER BY id";
static const char SQL_CONSENT_REVOKE[] =
    "UPDATE consents SET revoked_at = ?3, revoked_by = ?4 WHERE id = ?1 AND person_id = ?2 AND revoked_at IS NULL";

#define REFERRAL_COLS                                                                                     \
    "id, person_id, from_org, from_case_id, to_org, to_program, reason, opinion, consent_id, snapshot,"  \
    " status, answer_note, answered_at, answered_by, case_id, closed_at, closure_review, closure_note," \
    " created_at, created_by, agency_ref, agency_status"

static const char SQL_REFERRAL_INSERT[] =
    "INSERT INTO referrals (id, person_id, from_org, from_case_id, to_org, to_program, reason, opinion,"
    " consent_id, snapshot, status, created_at, created_by, agency_ref)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11, ?12, ?13)";
static const char SQL_REFERRAL_AGENCY_STATUS[] = "UPDATE referrals SET agency_status = ?2 WHERE id = ?1";
static const char SQL_REFERRAL_GET[] = "SELECT " REFERRAL_COLS " FROM referrals WHERE id = ?1";
/* The inbox walks referrals_to_id or referrals_to (with a status), the
 * outbox referrals_from_id or referrals_from, by id. */
enum { REF_IN = 1, REF_STATUS = 2, REF_AFTER = 4, REF_SHAPES = 8 };

static void referral_list_sql(sql_buf *b, unsigned shape)
{
    sql_add(b, "SELECT " REFERRAL_COLS " FROM referrals WHERE %s = ?1", shape & REF_IN ? "to_org" : "from_org");
    if (shape & REF_STATUS) sql_add(b, " AND status = ?3");
    if (shape & REF_AFTER) sql_add(b, " AND id > ?4");
    sql_add(b, " ORDER BY id LIMIT ?5");
}
static const char SQL_REFERRAL_ANSWER[] =
    "UPDATE referrals SET status = ?2, answer_note = ?3, answered_at = ?4, answered_by = ?5, case_id = ?6"
    " WHERE id = ?1 AND status = 'pending'";
static const char SQL_REFERRAL_OF_CASE[] = "SELECT " REFERRAL_COLS " FROM referrals WHERE case_id = ?1";
static const char SQL_REFERRAL_CLOSED[] =
    "UPDATE referrals SET closed_at = ?2 WHERE id = ?1 AND closed_at IS NULL";
static const char SQL_REFERRAL_REVIEW[] =
    "UPDATE referrals SET closure_review = ?2, closure_note = ?3 WHERE id = ?1";

static int step_done(store_tx *tx, sqlite3_stmt *st, const char *what, store_err *e)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, what);
}

/* ---- consents ---- */
static int consent_read(sqlite3_stmt *st, void *row)
{
    consent_row *c = row;
    const char **const f[] = {&c->id,         &c->person_id,  &c->purpose,    NULL,           &c->valid_from,
                              &c->valid_until, &c->created_at, &c->created_by, &c->revoked_at, &c->revoked_by};
    c->mem = store_texts(st, f, 10);
    c->scope = store_json_col(st, 3, JSON_DECODE_ANY);
    return c->mem ? 0 : -1;
}

static void consent_drop(void *row) { consent_row_free(row); }

int store_consent_insert(store_tx *tx, const principal *p, const consent_in *in, consent_row *out, store_err *e)
{
    char id[ID_MAX], now[RFC3339_MAX];
    id_new("cns_", id);
    time_rfc3339(time_now_ms(), now);
    char *scope = json_dumps(in->scope, JSON_COMPACT);
    if (!scope) return store_oom(e);
    sqlite3_stmt *st = store_stmt(tx, SQL_CONSENT_INSERT, e);
    if (!st) {
        free(scope);
        return -1;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->person_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->purpose, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, in->valid_from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, in->valid_until, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, p->user, -1, SQLITE_STATIC);
    int rc = step_done(tx, st, "consent insert", e);
    free(scope);
    return rc ? -1 : store_consent_get(tx, in->person_id, id, out, e);
}

int store_consent_get(store_tx *tx, const char *person_id, const char *id, consent_row *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_CONSENT_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, person_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return store_err_set(e, STORE_NOT_FOUND, "no consent '%s' of this person", id);
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "consent get");
    rc = consent_read(st, out);
    sqlite3_reset(st);
    if (rc) {
        consent_row_free(out);
        return store_oom(e);
    }
    return 0;
}

int store_consent_list(store_tx *tx, const char *person_id, consent_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_CONSENT_LIST, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, person_id, -1, SQLITE_TRANSIENT);
    void *items;
    if (store_rows(tx, st, -1, sizeof *out->items, consent_read, consent_drop, &items, &out->n, NULL, e,
                   "consent list"))
        return -1;
    out->items = items;
    return 0;
}

int store_consent_revoke(store_tx *tx, const principal *p, const char *person_id, const char *id, consent_row *out,
                         store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_CONSENT_REVOKE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, person_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, p->user, -1, SQLITE_STATIC);
    if (step_done(tx, st, "consent revoke", e)) return -1;
    bool revoked = sqlite3_changes(tx->db) == 1;
    if (store_consent_get(tx, person_id, id, out, e)) return -1;
    if (!revoked) {
        consent_row_free(out);
        return store_err_set(e, STORE_CONFLICT, "consent %s is already revoked", id);
    }
    return 0;
}

int store_consent_valid_for(store_tx *tx, const char *person_id, const char *party, const char *const *purposes,
                            char id[ID_MAX], store_err *e)
{
    consent_list list;
    if (store_consent_list(tx, person_id, &list, e)) return -1;
    char today[11];
    date_today_str(today);
    id[0] = 0;
    for (size_t i = 0; i < list.n; i++)
        if (!store_consent_refusal(&list.items[i], party, purposes, today))
            str_copy(id, ID_MAX, list.items[i].id);
    consent_list_free(&list);
    return 0;
}

/* ---- referrals ---- */
static int referral_read(sqlite3_stmt *st, void *row)
{
    referral_row *r = row;
    const char **const f[] = {&r->id,           &r->person_id,    &r->from_org,    &r->from_case_id, &r->to_org,
                              &r->to_program,   &r->reason,       &r->opinion,     &r->consent_id,   NULL,
                              &r->status,       &r->answer_note,  &r->answered_at, &r->answered_by,  &r->case_id,
                              &r->closed_at,    &r->closure_review, &r->closure_note, &r->created_at, &r->created_by,
                              &r->agency_ref,   &r->agency_status};
    r->mem = store_texts(st, f, 22);
    r->snapshot = store_json_col(st, 9, JSON_DECODE_ANY);
    return r->mem ? 0 : -1;
}

static void referral_drop(void *row) { referral_row_free(row); }

int store_referral_insert(store_tx *tx, const referral_in *in, char id[ID_MAX], store_err *e)
{
    char now[RFC3339_MAX];
    if (in->id && *in->id) str_copy(id, ID_MAX, in->id);
    else id_new("ref_", id);
    time_rfc3339(time_now_ms(), now);
    char *snap = json_dumps(in->snapshot, JSON_COMPACT);
    if (!snap) return store_oom(e);
    sqlite3_stmt *st = store_stmt(tx, SQL_REFERRAL_INSERT, e);
    if (!st) {
        free(snap);
        return -1;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->person_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, in->from_org, -1, SQLITE_STATIC);
    store_bind_opt(st, 4, in->from_case_id);
    sqlite3_bind_text(st, 5, in->to_org, -1, SQLITE_STATIC);
    store_bind_opt(st, 6, in->to_program);
    sqlite3_bind_text(st, 7, in->reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, in->opinion, -1, SQLITE_STATIC);
    store_bind_opt(st, 9, in->consent_id);
    sqlite3_bind_text(st, 10, snap, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, in->by, -1, SQLITE_STATIC);
    store_bind_opt(st, 13, in->agency_ref);
    int rc = step_done(tx, st, "referral insert", e);
    free(snap);
    return rc;
}

static int referral_one(store_tx *tx, const char *sql, const char *key, referral_row *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, sql, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return store_err_set(e, STORE_NOT_FOUND, "no referral of '%s'", key);
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "referral get");
    rc = referral_read(st, out);
    sqlite3_reset(st);
    if (rc) {
        referral_row_free(out);
        return store_oom(e);
    }
    return 0;
}

int store_referral_get(store_tx *tx, const principal *p, const char *id, referral_row *out, store_err *e)
{
    if (referral_one(tx, SQL_REFERRAL_GET, id, out, e)) {
        if (e->kind == STORE_NOT_FOUND) store_err_set(e, STORE_NOT_FOUND, "no referral '%s'", id);
        return -1;
    }
    /* Only the two ends of a referral know it exists. */
    if (strcmp(out->from_org, p->org) && strcmp(out->to_org, p->org)) {
        referral_row_free(out);
        return store_err_set(e, STORE_NOT_FOUND, "no referral '%s'", id);
    }
    return 0;
}

int store_referral_of_case(store_tx *tx, const char *case_id, referral_row *out, store_err *e)
{
    return referral_one(tx, SQL_REFERRAL_OF_CASE, case_id, out, e);
}

int store_referral_list(store_tx *tx, const principal *p, const referral_query *q, referral_list *out,
                        store_err *e)
{
    memset(out, 0, sizeof *out);
    sql_buf b = {0};
    referral_list_sql(&b, (q->inbound ? REF_IN : 0) | (q->status && *q->status ? REF_STATUS : 0) |
                              (q->after && *q->after ? REF_AFTER : 0));
    sqlite3_stmt *st = store_stmt_built(tx, &b, e);
    sql_free(&b);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, p->org, -1, SQLITE_STATIC);
    store_bind_opt(st, 3, q->status);
    store_bind_opt(st, 4, q->after);
    sqlite3_bind_int(st, 5, q->limit + 1);
    void *items;
    if (store_rows(tx, st, q->limit, sizeof *out->items, referral_read, referral_drop, &items, &out->n, &out->more,
                   e, "referral list"))
        return -1;
    out->items = items;
    if (out->n) str_copy(out->last, sizeof out->last, out->items[out->n - 1].id);
    return 0;
}

int store_referral_answer(store_tx *tx, const char *id, const char *status, const char *note, const char *by,
                          const char *case_id, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_REFERRAL_ANSWER, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
    store_bind_opt(st, 3, note);
    sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, by, -1, SQLITE_STATIC);
    store_bind_opt(st, 6, case_id);
    if (step_done(tx, st, "referral answer", e)) return -1;
    if (sqlite3_changes(tx->db) != 1) return store_err_set(e, STORE_CONFLICT, "referral %s was already answered", id);
    return 0;
}

int store_referral_closed(store_tx *tx, const char *id, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_REFERRAL_CLOSED, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
    return step_done(tx, st, "referral closed", e);
}

int store_referral_review(store_tx *tx, const char *id, const char *review, const char *note, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_REFERRAL_REVIEW, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, review, -1, SQLITE_STATIC);
    store_bind_opt(st, 3, note);
    return step_done(tx, st, "referral review", e);
}

int store_referral_agency_status(store_tx *tx, const char *id, const char *status, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_REFERRAL_AGENCY_STATUS, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
    return step_done(tx, st, "referral agency status", e);
}

/* ---- sharing rights of private-provider workers (seed 003 정보공유 권한:
 * 개인정보보호 교육 이수 + 보안서약서, 소속기관 승인, 시·군·구 승인) ---- */
static const char SQL_RIGHT_UPSERT[] =
    "INSERT INTO sharing_rights (org_id, user_name, training_on, pledge_on, org_approved_by, org_approved_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (org_id, user_name) DO UPDATE SET training_on = ?3,"
    " pledge_on = ?4, org_approved_by = ?5, org_approved_at = ?6";
static const char SQL_RIGHT_APPROVE[] =
    "UPDATE sharing_rights SET district_approved_by = ?3, district_approved_at = ?4 WHERE org_id = ?1"
    " AND user_name = ?2";
static const char SQL_RIGHT_GET[] =
    "SELECT org_id, user_name, training_on, pledge_on, org_approved_by, org_approved_at, district_approved_by,"
    " district_approved_at FROM sharing_rights WHERE org_id = ?1 AND user_name = ?2";

static int right_read(sqlite3_stmt *st, sharing_right_row *r)
{
    const char **const f[] = {&r->org,          &r->user,           &r->training_on,          &r->pledge_on,
                              &r->org_approved_by, &r->org_approved_at, &r->district_approved_by,
                              &r->district_approved_at};
    r->mem = store_texts(st, f, 8);
    return r->mem ? 0 : -1;
}

int store_sharing_right_get(store_tx *tx, const char *org, const char *user, sharing_right_row *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_RIGHT_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, user, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    int bad = rc == SQLITE_ROW && right_read(st, out);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return store_err_set(e, STORE_NOT_FOUND, "no sharing right of %s at %s", user, org);
    if (rc != SQLITE_ROW) return store_fail(tx, e, "sharing right");
    if (bad) {
        sharing_right_row_free(out);
        return store_oom(e);
    }
    return 0;
}

int store_sharing_right_set(store_tx *tx, const char *org, const char *user, const char *training_on,
                            const char *pledge_on, const char *by, sharing_right_row *out, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_RIGHT_UPSERT, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, training_on, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, pledge_on, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, by, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
    if (step_done(tx, st, "sharing right set", e)) return -1;
    return store_sharing_right_get(tx, org, user, out, e);
}

int store_sharing_right_approve(store_tx *tx, const char *org, const char *user, const char *by,
                                sharing_right_row *out, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_RIGHT_APPROVE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, by, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
    if (step_done(tx, st, "sharing right approve", e)) return -1;
    if (sqlite3_changes(tx->db) != 1)
        return store_err_set(e, STORE_NOT_FOUND, "%s of %s has no training and pledge approved by the organisation yet",
                             user, org);
    return store_sharing_right_get(tx, org, user, out, e);
}

void store_sql_of_referrals(store_sql_fn fn, void *ctx)
{
    STORE_SQL(fn, ctx, SQL_CONSENT_INSERT);
    STORE_SQL(fn, ctx, SQL_CONSENT_GET);
    STORE_SQL(fn, ctx, SQL_CONSENT_LIST);
    STORE_SQL(fn, ctx, SQL_CONSENT_REVOKE);
    STORE_SQL(fn, ctx, SQL_REFERRAL_INSERT);
    STORE_SQL(fn, ctx, SQL_REFERRAL_AGENCY_STATUS);
    STORE_SQL(fn, ctx, SQL_REFERRAL_GET);
    STORE_SQL(fn, ctx, SQL_REFERRAL_ANSWER);
    STORE_SQL(fn, ctx, SQL_REFERRAL_OF_CASE);
    STORE_SQL(fn, ctx, SQL_REFERRAL_CLOSED);
    STORE_SQL(fn, ctx, SQL_REFERRAL_REVIEW);
    STORE_SQL(fn, ctx, SQL_RIGHT_UPSERT);
    STORE_SQL(fn, ctx, SQL_RIGHT_APPROVE);
    STORE_SQL(fn, ctx, SQL_RIGHT_GET);
    for (unsigned shape = 0; shape < REF_SHAPES; shape++) {
        sql_buf b = {0};
        char name[64];
        referral_list_sql(&b, shape);
        snprintf(name, sizeof name, "referral list (shape %u)", shape);
        if (!b.oom) fn(name, b.s, STORE_SQL_REQUEST, ctx);
        sql_free(&b);
    }
}
