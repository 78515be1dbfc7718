/* lookups.c: look-up approvals of provider heads and first contacts of
 * referrals (store/lookups.h). */
#include "store/lookups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

static const char SQL_APPROVAL_INSERT[] =
    "INSERT INTO lookup_approvals (id, org_id, person_id, user_name, consent_id, approved_by, approved_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_APPROVALS[] =
    "SELECT id, org_id, person_id, user_name, consent_id, approved_by, approved_at, revoked_at FROM lookup_approvals"
    " WHERE org_id = ?1 AND person_id = ?2 AND (?3 IS NULL OR user_name = ?3) ORDER BY id";
static const char SQL_CONTACT_INSERT[] =
    "INSERT INTO referral_contacts (id, referral_id, contacted_on, method, reached, note, created_at, created_by)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static const char SQL_REFERRAL_CLOSED_AT[] =
    "UPDATE referrals SET closed_at = ?2 WHERE id = ?1 AND closed_at IS NULL";
static const char SQL_CONTACTS[] =
    "SELECT id, referral_id, contacted_on, method, note, created_at, created_by, reached FROM referral_contacts"
    " WHERE referral_id = ?1 ORDER BY id";

void lookup_approval_row_free(lookup_approval_row *a)
{
    free(a->mem);
    memset(a, 0, sizeof *a);
}

static void approval_drop(void *row) { lookup_approval_row_free(row); }

void lookup_approval_list_free(lookup_approval_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, approval_drop);
    memset(l, 0, sizeof *l);
}

void referral_contact_row_free(referral_contact_row *c)
{
    free(c->mem);
    memset(c, 0, sizeof *c);
}

static void contact_drop(void *row) { referral_contact_row_free(row); }

void referral_contact_list_free(referral_contact_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, contact_drop);
    memset(l, 0, sizeof *l);
}

static int approval_read(sqlite3_stmt *st, void *row)
{
    lookup_approval_row *a = row;
    const char **const f[] = {&a->id,         &a->org,         &a->person_id,   &a->user,
                              &a->consent_id, &a->approved_by, &a->approved_at, &a->revoked_at};
    a->mem = store_texts(st, f, 8);
    return a->mem ? 0 : -1;
}

static int contact_read(sqlite3_stmt *st, void *row)
{
    referral_contact_row *c = row;
    const char **const f[] = {&c->id, &c->referral_id, &c->contacted_on, &c->method, &c->note, &c->created_at,
                              &c->created_by};
    c->mem = store_texts(st, f, 7);
    c->reached = sqlite3_column_int(st, 7) != 0;
    return c->mem ? 0 : -1;
}

int store_lookup_approval_insert(store_tx *tx, const char *org, const char *person_id, const char *user,
                                 const char *consent_id, const char *by, lookup_approval_row *out, store_err *e)
{
    char id[ID_MAX], now[RFC3339_MAX];
    id_new("lka_", id);
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_APPROVAL_INSERT, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, person_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, consent_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, by, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "lookup approval insert");
    memset(out, 0, sizeof *out);
    if (!(out->mem = malloc(strlen(id) + strlen(org) + strlen(person_id) + strlen(user) + strlen(consent_id) +
                            strlen(by) + strlen(now) + 7)))
        return store_oom(e);
    char *at = out->mem;
    const char *src[] = {id, org, person_id, user, consent_id, by, now};
    const char **dst[] = {&out->id, &out->org, &out->person_id, &out->user, &out->consent_id, &out->approved_by,
                          &out->approved_at};
    for (int i = 0; i < 7; i++) {
        size_t n = strlen(src[i]) + 1;
        memcpy(at, src[i], n);
        *dst[i] = at;
        at += n;
    }
    return 0;
}

int store_lookup_approvals(store_tx *tx, const char *org, const char *person_id, const char *user,
                           lookup_approval_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_APPROVALS, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, person_id, -1, SQLITE_TRANSIENT);
    store_bind_opt(st, 3, user);
    void *items;
    if (store_rows(tx, st, -1, sizeof *out->items, approval_read, approval_drop, &items, &out->n, NULL, e,
                   "lookup approvals"))
        return -1;
    out->items = items;
    return 0;
}

int store_referral_contact_insert(store_tx *tx, const char *referral_id, const char *contacted_on, const char *method,
                                  bool reached, const char *note, const char *by, store_err *e)
{
    char id[ID_MAX], now[RFC3339_MAX];
    id_new("rct_", id);
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_CONTACT_INSERT, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, referral_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, contacted_on, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, method, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, reached);
    store_bind_opt(st, 6, note);
    sqlite3_bind_text(st, 7, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, by, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "referral contact insert");
}

int store_referral_contacts(store_tx *tx, const char *referral_id, referral_contact_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_CONTACTS, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, referral_id, -1, SQLITE_TRANSIENT);
    void *items;
    if (store_rows(tx, st, -1, sizeof *out->items, contact_read, contact_drop, &items, &out->n, NULL, e,
                   "referral contacts"))
        return -1;
    out->items = items;
    return 0;
}

int store_referral_closed_at(store_tx *tx, const char *referral_id, const char *at, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_REFERRAL_CLOSED_AT, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, referral_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, at, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "referral closed");
}

void store_sql_of_lookups(store_sql_fn fn, void *ctx)
{
    STORE_SQL(fn, ctx, SQL_APPROVAL_INSERT);
    STORE_SQL(fn, ctx, SQL_APPROVALS);
    STORE_SQL(fn, ctx, SQL_CONTACT_INSERT);
    STORE_SQL(fn, ctx, SQL_REFERRAL_CLOSED_AT);
    STORE_SQL(fn, ctx, SQL_CONTACTS);
}
