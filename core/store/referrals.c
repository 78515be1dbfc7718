/* referrals.c: consents of persons, and referrals between organisations and
 * programs, with the deadlines that belong to a referral rather than to a
 * case (an answer due from the receiver, a closure to review). */
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
static const char SQL_REFERRAL_LIST[] =
    "SELECT " REFERRAL_COLS " FROM referrals WHERE (CASE WHEN ?2 = 'in' THEN to_org ELSE from_org END) = ?1"
    " AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR id > ?4) ORDER BY id LIMIT ?5";
static const char SQL_REFERRAL_ANSWER[] =
    "UPDATE referrals SET status = ?2, answer_note = ?3, answered_at = ?4, answered_by = ?5, case_id = ?6"
    " WHERE id = ?1 AND status = 'pending'";
static const char SQL_REFERRAL_OF_CASE[] = "SELECT " REFERRAL_COLS " FROM referrals WHERE case_id = ?1";
static const char SQL_REFERRAL_CLOSED[] =
    "UPDATE referrals SET closed_at = ?2 WHERE id = ?1 AND closed_at IS NULL";
static const char SQL_REFERRAL_REVIEW[] =
    "UPDATE referrals SET closure_review = ?2, closure_note = ?3 WHERE id = ?1";

static json_t *json_col(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) return json_null();
    json_t *j = json_loads(TEXT(st, i), JSON_DECODE_ANY, NULL);
    return j ? j : json_null();
}

static int step_done(store_tx *tx, sqlite3_stmt *st, const char *what, err_t *e)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, what);
}

/* ---- consents ---- */
static json_t *consent_row(sqlite3_stmt *st)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:o, s:o}", "id", TEXT(st, 0), "person_id",
                     TEXT(st, 1), "purpose", TEXT(st, 2), "scope", json_col(st, 3), "valid_from", TEXT(st, 4),
                     "valid_until", TEXT(st, 5), "created_at", TEXT(st, 6), "created_by", TEXT(st, 7),
                     "revoked_at", OPT(st, 8), "revoked_by", OPT(st, 9));
}

int store_consent_insert(store_tx *tx, const principal *p, const consent_in *in, json_t **out, err_t *e)
{
    if (store_person_visible(tx, p, in->person_id, e)) return -1;
    char id[ID_MAX], now[RFC3339_MAX];
    id_new("cns_", id);
    time_rfc3339(time_now_ms(), now);
    char *scope = json_dumps(in->scope, JSON_COMPACT);
    if (!scope) return err_set(e, 500, "internal_error", "out of memory"), -1;
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

int store_consent_get(store_tx *tx, const char *person_id, const char *id, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_CONSENT_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, person_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        err_set(e, 404, "not_found", "no consent '%s' of this person", id);
        return -1;
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "consent get");
    *out = consent_row(st);
    sqlite3_reset(st);
    return 0;
}

int store_consent_list(store_tx *tx, const char *person_id, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_CONSENT_LIST, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, person_id, -1, SQLITE_TRANSIENT);
    json_t *items = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) json_array_append_new(items, consent_row(st));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(items);
        return store_fail(tx, e, "consent list");
    }
    *out = items;
    return 0;
}

int store_consent_revoke(store_tx *tx, const principal *p, const char *person_id, const char *id, json_t **out,
                         err_t *e)
{
    json_t *c = NULL;
    if (store_person_visible(tx, p, person_id, e) || store_consent_get(tx, person_id, id, &c, e)) return -1;
    bool already = !json_is_null(json_object_get(c, "revoked_at"));
    json_decref(c);
    if (already) {
        err_set(e, 409, "consent_revoked", "consent %s is already revoked", id);
        return -1;
    }
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_CONSENT_REVOKE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, person_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, p->user, -1, SQLITE_STATIC);
    if (step_done(tx, st, "consent revoke", e)) return -1;
    return store_consent_get(tx, person_id, id, out, e);
}

/* ---- referrals ---- */
static json_t *referral_row(sqlite3_stmt *st)
{
    json_t *r = json_pack("{s:s, s:s, s:s, s:o, s:s, s:o, s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o}", "id",
                          TEXT(st, 0), "person_id", TEXT(st, 1), "from_org", TEXT(st, 2), "from_case_id", OPT(st, 3),
                          "to_org", TEXT(st, 4), "to_program", OPT(st, 5), "reason", TEXT(st, 6), "opinion",
                          TEXT(st, 7), "consent_id", OPT(st, 8), "person", json_col(st, 9), "status", TEXT(st, 10),
                          "answer_note", OPT(st, 11), "answered_at", OPT(st, 12), "answered_by", OPT(st, 13),
                          "case_id", OPT(st, 14));
    json_object_set_new(r, "closed_at", OPT(st, 15));
    json_object_set_new(r, "closure_review", OPT(st, 16));
    json_object_set_new(r, "closure_note", OPT(st, 17));
    json_object_set_new(r, "created_at", json_string(TEXT(st, 18)));
    json_object_set_new(r, "created_by", json_string(TEXT(st, 19)));
    json_object_set_new(r, "agency_ref", OPT(st, 20));
    json_object_set_new(r, "agency_status", OPT(st, 21));
    json_object_set_new(r, "consent_id", OPT(st, 8));
    return r;
}

json_t *store_referral_json(const referral_in *in, const char *id, const char *created_at)
{
    json_t *r = json_pack("{s:s, s:s, s:s, s:o, s:s, s:o, s:s, s:s, s:o, s:O, s:s, s:n, s:n, s:n, s:n}", "id", id,
                          "person_id", in->person_id, "from_org", in->from_org, "from_case_id",
                          in->from_case_id ? json_string(in->from_case_id) : json_null(), "to_org", in->to_org,
                          "to_program", in->to_program ? json_string(in->to_program) : json_null(), "reason",
                          in->reason, "opinion", in->opinion, "consent_id",
                          in->consent_id ? json_string(in->consent_id) : json_null(), "person", in->snapshot,
                          "status", "pending", "answer_note", "answered_at", "answered_by", "case_id");
    json_object_set_new(r, "closed_at", json_null());
    json_object_set_new(r, "closure_review", json_null());
    json_object_set_new(r, "closure_note", json_null());
    json_object_set_new(r, "created_at", json_string(created_at));
    json_object_set_new(r, "created_by", json_string(in->by));
    json_object_set_new(r, "agency_ref", in->agency_ref ? json_string(in->agency_ref) : json_null());
    json_object_set_new(r, "agency_status", json_null());
    return r;
}

int store_referral_insert(store_tx *tx, const referral_in *in, char id[ID_MAX], err_t *e)
{
    char now[RFC3339_MAX];
    if (in->id && *in->id) snprintf(id, ID_MAX, "%s", in->id);
    else id_new("ref_", id);
    time_rfc3339(time_now_ms(), now);
    char *snap = json_dumps(in->snapshot, JSON_COMPACT);
    if (!snap) return err_set(e, 500, "internal_error", "out of memory"), -1;
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

static int referral_one(store_tx *tx, const char *sql, const char *key, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, sql, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        *out = NULL;
        return 0;
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "referral get");
    *out = referral_row(st);
    sqlite3_reset(st);
    return 0;
}

int store_referral_get(store_tx *tx, const principal *p, const char *id, json_t **out, err_t *e)
{
    if (referral_one(tx, SQL_REFERRAL_GET, id, out, e)) return -1;
    /* Only the two ends of a referral know it exists. */
    if (!*out || (strcmp(json_string_value(json_object_get(*out, "from_org")), p->org) &&
                  strcmp(json_string_value(json_object_get(*out, "to_org")), p->org))) {
        json_decref(*out);
        *out = NULL;
        err_set(e, 404, "not_found", "no referral '%s'", id);
        return -1;
    }
    return 0;
}

int store_referral_of_case(store_tx *tx, const char *case_id, json_t **out, err_t *e)
{
    return referral_one(tx, SQL_REFERRAL_OF_CASE, case_id, out, e);
}

int store_referral_list(store_tx *tx, const principal *p, const referral_query *q, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_REFERRAL_LIST, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, p->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, q->inbound ? "in" : "out", -1, SQLITE_STATIC);
    store_bind_opt(st, 3, q->status);
    store_bind_opt(st, 4, q->after);
    sqlite3_bind_int(st, 5, q->limit + 1);
    return store_page(tx, st, q->limit, referral_row, 0, out, e);
}

int store_referral_answer(store_tx *tx, const char *id, const char *status, const char *note, const char *by,
                          const char *case_id, err_t *e)
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
    if (sqlite3_changes(tx->db) != 1) {
        err_set(e, 409, "referral_answered", "referral %s was already answered", id);
        return -1;
    }
    return 0;
}

int store_referral_closed(store_tx *tx, const char *id, err_t *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_REFERRAL_CLOSED, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
    return step_done(tx, st, "referral closed", e);
}

int store_referral_review(store_tx *tx, const char *id, const char *review, const char *note, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_REFERRAL_REVIEW, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, review, -1, SQLITE_STATIC);
    store_bind_opt(st, 3, note);
    return step_done(tx, st, "referral review", e);
}

int store_referral_agency_status(store_tx *tx, const char *id, const char *status, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_REFERRAL_AGENCY_STATUS, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
    return step_done(tx, st, "referral agency status", e);
}

static const char SQL_ORG_BY_AREA[] = "SELECT id FROM orgs WHERE area = ?1 AND type = 'emd' ORDER BY id LIMIT 1";

int store_org_by_area(store_tx *tx, const char *area, char id[64], err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_ORG_BY_AREA, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, area, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) snprintf(id, 64, "%s", TEXT(st, 0));
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc != SQLITE_DONE) return store_fail(tx, e, "org by area");
    err_set(e, 422, "unknown_area", "no dong community centre serves area '%s'", area);
    err_detail(e, "field", json_string("dong_code"));
    return -1;
}

static const char SQL_PERSON_OWNER[] = "SELECT org_id FROM persons WHERE id = ?1";

int store_person_owner(store_tx *tx, const char *person_id, char org[64], err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_OWNER, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, person_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) snprintf(org, 64, "%s", TEXT(st, 0));
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc != SQLITE_DONE) return store_fail(tx, e, "person owner");
    err_set(e, 404, "not_found", "no person '%s'", person_id);
    return -1;
}

const char *store_consent_refusal(json_t *c, const char *party, const char *const *purposes, const char *today)
{
    bool in_scope = false, purpose_ok = !purposes;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(c, "scope"), i, o) in_scope |= !strcmp(json_string_value(o), party);
    for (const char *const *pp = purposes; pp && *pp && !purpose_ok; pp++)
        purpose_ok = !strcmp(*pp, json_string_value(json_object_get(c, "purpose")));
    if (!json_is_null(json_object_get(c, "revoked_at"))) return "it was revoked";
    if (strcmp(today, json_string_value(json_object_get(c, "valid_from"))) < 0) return "it is not valid yet";
    if (strcmp(today, json_string_value(json_object_get(c, "valid_until"))) > 0) return "it has expired";
    if (!purpose_ok) return "its purpose does not cover this use";
    if (!in_scope) return "its scope does not name the organisation";
    return NULL;
}

int store_consent_valid_for(store_tx *tx, const char *person_id, const char *party, const char *const *purposes,
                            char id[ID_MAX], err_t *e)
{
    json_t *list = NULL;
    if (store_consent_list(tx, person_id, &list, e)) return -1;
    char today[11];
    date_today_str(today);
    size_t i;
    json_t *c;
    id[0] = 0;
    json_array_foreach(list, i, c) {
        if (!store_consent_refusal(c, party, purposes, today))
            snprintf(id, ID_MAX, "%s", json_string_value(json_object_get(c, "id")));
    }
    json_decref(list);
    return 0;
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

static json_t *right_row(sqlite3_stmt *st)
{
    json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "org", TEXT(st, 0), "user", TEXT(st, 1),
                          "training_on", TEXT(st, 2), "pledge_on", TEXT(st, 3), "org_approved_by", TEXT(st, 4),
                          "org_approved_at", TEXT(st, 5), "district_approved_by", OPT(st, 6), "district_approved_at",
                          OPT(st, 7));
    json_object_set_new(r, "complete", json_boolean(sqlite3_column_type(st, 6) != SQLITE_NULL));
    return r;
}

int store_sharing_right_get(store_tx *tx, const char *org, const char *user, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_RIGHT_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, user, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? right_row(st) : NULL;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_fail(tx, e, "sharing right");
    return 0;
}

int store_sharing_right_set(store_tx *tx, const char *org, const char *user, const char *training_on,
                            const char *pledge_on, const char *by, json_t **out, err_t *e)
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

int store_sharing_right_approve(store_tx *tx, const char *org, const char *user, const char *by, json_t **out,
                                err_t *e)
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
    if (sqlite3_changes(tx->db) != 1) {
        err_set(e, 409, "sharing_right_incomplete",
                "%s of %s has no training and pledge approved by the organisation yet", user, org);
        return -1;
    }
    return store_sharing_right_get(tx, org, user, out, e);
}
