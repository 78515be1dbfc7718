/* orgs.c: organisations, the programs they run, and bearer tokens (only the
 * SHA-256 of a token and its first characters are stored; a token may
 * expire and be revoked). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/internal.h"

static const char SQL_ORG_INSERT[] =
    "INSERT INTO orgs (id, name, type, region, created_at, area) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_ORG_PROGRAM[] = "INSERT INTO org_programs (org_id, program) VALUES (?1, ?2)";
static const char SQL_ORG_GET[] = "SELECT id, name, type, region, created_at, area FROM orgs WHERE id = ?1";
static const char SQL_ORG_PROGRAMS[] =
    "SELECT program FROM org_programs WHERE org_id = ?1 ORDER BY program";
static const char SQL_ORG_OFFERS[] =
    "SELECT 1 FROM org_programs WHERE org_id = ?1 AND program = ?2";
static const char SQL_TOKEN_INSERT[] =
    "INSERT INTO tokens (id, hash, prefix, user_name, role, org_id, created_at, created_by, expires_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char SQL_PRINCIPAL[] =
    "SELECT t.id, t.user_name, t.role, t.org_id, o.region, o.type, t.expires_at, t.revoked_at FROM tokens t"
    " LEFT JOIN orgs o ON o.id = t.org_id WHERE t.hash = ?1";
#define TOKEN_COLS "id, user_name, role, created_at, prefix, org_id, created_by, expires_at, revoked_at, revoked_by"
static const char SQL_TOKEN_GET[] = "SELECT " TOKEN_COLS " FROM tokens WHERE id = ?1";
static const char SQL_TOKEN_LIST[] =
    "SELECT " TOKEN_COLS " FROM tokens WHERE " OVERSEEN_BY("org_id")
    " AND (?1 IS NULL OR org_id = ?1) AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3";
static const char SQL_TOKEN_REVOKE[] =
    "UPDATE tokens SET revoked_at = ?2, revoked_by = ?3 WHERE id = ?1 AND revoked_at IS NULL";


static int org_read(store_tx *tx, sqlite3_stmt *st, const char *id, org_row *o, store_err *e)
{
    memset(o, 0, sizeof *o);
    const char **const f[] = {&o->id, &o->name, &o->type, &o->region, &o->created_at, &o->area};
    o->mem = store_texts(st, f, 6);
    sqlite3_reset(st);
    if (!o->mem) return store_oom(e);
    if (!(st = store_stmt(tx, SQL_ORG_PROGRAMS, e))) goto fail;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (store_strv(tx, st, &o->programs, &o->n_programs, e)) goto fail;
    return 0;
fail:
    org_row_free(o);
    return -1;
}

int store_org_insert(store_tx *tx, const org_in *in, org_row *out, store_err *e)
{
    char id[ID_MAX], now[RFC3339_MAX];
    if (in->id) str_copy(id, sizeof id, in->id);
    else id_new("org_", id);
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_ORG_INSERT, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, in->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->region, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
    store_bind_opt(st, 6, in->area);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return store_err_set(e, STORE_DUPLICATE, "an organisation with id '%s' already exists", id);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "org insert");
    size_t i;
    json_t *p;
    json_array_foreach(in->programs, i, p) {
        if (!(st = store_stmt(tx, SQL_ORG_PROGRAM, e))) return -1;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, json_string_value(p), -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) continue; /* listed twice: once is enough */
        if (rc != SQLITE_DONE) return store_fail(tx, e, "org program insert");
    }
    return store_org_get(tx, id, out, e);
}

int store_org_get(store_tx *tx, const char *id, org_row *out, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_ORG_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return store_err_set(e, STORE_NOT_FOUND, "no organisation '%s'", id);
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "org get");
    return org_read(tx, st, id, out, e);
}

int store_org_offers(store_tx *tx, const char *org, const char *program, bool *offers, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_ORG_OFFERS, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, program, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_fail(tx, e, "org offers");
    *offers = rc == SQLITE_ROW;
    return 0;
}

static const char SQL_ORG_EXISTS[] = "SELECT 1 FROM orgs WHERE id = ?1";

int store_token_insert(store_tx *tx, const token_in *in, token_row *out, store_err *e)
{
    sqlite3_stmt *st;
    int rc;
    if (in->org) {
        if (!(st = store_stmt(tx, SQL_ORG_EXISTS, e))) return -1;
        sqlite3_bind_text(st, 1, in->org, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_DONE) return store_err_set(e, STORE_NOT_FOUND, "no organisation '%s'", in->org);
        if (rc != SQLITE_ROW) return store_fail(tx, e, "org exists");
    }
    char hash[SHA256_HEX];
    memset(out, 0, sizeof *out);
    id_new("tok_", out->id);
    token_new(out->token);
    sha256_hex(out->token, strlen(out->token), hash);
    /* "sy_" and six characters (36 of its 256 random bits): enough for a
     * person to tell their tokens apart, nothing to guess the rest by. */
    snprintf(out->prefix, sizeof out->prefix, "%.9s", out->token);
    time_rfc3339(time_now_ms(), out->created_at);
    str_copy(out->user, sizeof out->user, in->user);
    str_copy(out->role, sizeof out->role, in->role);
    str_copy(out->org, sizeof out->org, in->org ? in->org : "");
    str_copy(out->expires_at, sizeof out->expires_at, in->expires_at ? in->expires_at : "");
    if (!(st = store_stmt(tx, SQL_TOKEN_INSERT, e))) goto fail;
    sqlite3_bind_text(st, 1, out->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, out->prefix, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, in->role, -1, SQLITE_STATIC);
    store_bind_opt(st, 6, in->org);
    sqlite3_bind_text(st, 7, out->created_at, -1, SQLITE_STATIC);
    store_bind_opt(st, 8, in->created_by);
    store_bind_opt(st, 9, in->expires_at);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return 0;
    store_fail(tx, e, "token insert");
fail:
    sodium_memzero(out, sizeof *out);
    return -1;
}

/* Milliseconds since the epoch of a stored RFC 3339 UTC time; 0 for NULL
 * or text that is not one (a token that never expires). */
static int64_t rfc3339_ms(const char *s)
{
    int y, mo, d, h, mi;
    double sec;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%lfZ", &y, &mo, &d, &h, &mi, &sec) != 6) return 0;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (int64_t)timegm(&tm) * 1000 + (int64_t)(sec * 1000 + 0.5);
}

int store_principal_by_token(store_tx *tx, const char *token, principal *p, store_err *e)
{
    char hash[SHA256_HEX];
    sha256_hex(token, strlen(token), hash);
    sqlite3_stmt *st = store_stmt(tx, SQL_PRINCIPAL, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) return store_err_set(e, STORE_NOT_FOUND, "unknown bearer token");
    if (rc != SQLITE_ROW) return store_fail(tx, e, "principal");
    memset(p, 0, sizeof *p);
    const char *text[6];
    for (int i = 0; i < 6; i++) text[i] = (const char *)sqlite3_column_text(st, i);
    str_copy(p->token_id, sizeof p->token_id, text[0]);
    str_copy(p->user, sizeof p->user, text[1]);
    str_copy(p->role, sizeof p->role, text[2]);
    str_copy(p->org, sizeof p->org, text[3] ? text[3] : "");
    str_copy(p->region, sizeof p->region, text[4] ? text[4] : "");
    str_copy(p->org_type, sizeof p->org_type, text[5] ? text[5] : "");
    p->expires_ms = rfc3339_ms((const char *)sqlite3_column_text(st, 6));
    p->revoked = sqlite3_column_type(st, 7) != SQLITE_NULL;
    sqlite3_reset(st);
    return 0;
}

static int token_read(sqlite3_stmt *st, void *row)
{
    token_info *t = row;
    const char **const f[] = {&t->id,  &t->user,       &t->role,       &t->created_at, &t->prefix,
                              &t->org, &t->created_by, &t->expires_at, &t->revoked_at, &t->revoked_by};
    t->mem = store_texts(st, f, 10);
    return t->mem ? 0 : -1;
}

static void token_drop(void *row) { token_info_free(row); }

void token_info_free(token_info *t)
{
    free(t->mem);
    memset(t, 0, sizeof *t);
}

void token_list_free(token_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, token_drop);
    memset(l, 0, sizeof *l);
}

int store_token_get(store_tx *tx, const char *id, token_info *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_TOKEN_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return store_err_set(e, STORE_NOT_FOUND, "no token '%s'", id);
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "token get");
    rc = token_read(st, out);
    sqlite3_reset(st);
    return rc ? store_oom(e) : 0;
}

int store_token_list(store_tx *tx, const principal *overseer, const token_query *q, token_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_TOKEN_LIST, e);
    if (!st) return -1;
    store_bind_overseer(st, overseer);
    store_bind_opt(st, 1, q->org);
    store_bind_opt(st, 2, q->after);
    sqlite3_bind_int(st, 3, q->limit + 1);
    void *items;
    if (store_rows(tx, st, q->limit, sizeof *out->items, token_read, token_drop, &items, &out->n, &out->more, e,
                   "token list"))
        return -1;
    out->items = items;
    if (out->n) str_copy(out->last, sizeof out->last, out->items[out->n - 1].id);
    return 0;
}

int store_token_revoke(store_tx *tx, const char *id, const char *by, token_info *out, store_err *e)
{
    if (store_token_get(tx, id, out, e)) return -1;
    bool revoked = out->revoked_at != NULL;
    token_info_free(out);
    if (revoked) return store_err_set(e, STORE_CONFLICT, "token %s is already revoked", id);
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_TOKEN_REVOKE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, by, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "token revoke");
    return store_token_get(tx, id, out, e);
}

static const char SQL_ORG_BY_AREA[] = "SELECT id FROM orgs WHERE area = ?1 AND type = 'emd' ORDER BY id LIMIT 1";

int store_org_by_area(store_tx *tx, const char *area, char id[64], store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_ORG_BY_AREA, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, area, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) str_copy(id, 64, TEXT(st, 0));
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc != SQLITE_DONE) return store_fail(tx, e, "org by area");
    return store_err_set(e, STORE_NOT_FOUND, "no dong community centre serves area '%s'", area);
}

static const char SQL_ORG_IDS[] =
    "SELECT id FROM orgs WHERE region = ?1 AND (?2 IS NULL OR type = ?2) ORDER BY id";

int store_org_ids(store_tx *tx, const char *region, const char *type, const char ***ids, size_t *n, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_ORG_IDS, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, region, -1, SQLITE_TRANSIENT);
    store_bind_opt(st, 2, type);
    return store_strv(tx, st, ids, n, e);
}

void store_sql_of_orgs(store_sql_fn fn, void *ctx)
{
    STORE_SQL(fn, ctx, SQL_ORG_INSERT);
    STORE_SQL(fn, ctx, SQL_ORG_PROGRAM);
    STORE_SQL(fn, ctx, SQL_ORG_GET);
    STORE_SQL(fn, ctx, SQL_ORG_PROGRAMS);
    STORE_SQL(fn, ctx, SQL_ORG_OFFERS);
    STORE_SQL(fn, ctx, SQL_TOKEN_INSERT);
    STORE_SQL(fn, ctx, SQL_PRINCIPAL);
    STORE_SQL(fn, ctx, SQL_ORG_EXISTS);
    STORE_SQL(fn, ctx, SQL_ORG_BY_AREA);
    STORE_SQL(fn, ctx, SQL_TOKEN_GET);
    fn("SQL_TOKEN_LIST", SQL_TOKEN_LIST, STORE_SQL_FEW, ctx);
    STORE_SQL(fn, ctx, SQL_TOKEN_REVOKE);
    fn("SQL_ORG_IDS", SQL_ORG_IDS, STORE_SQL_FEW, ctx); /* a region's organisations */
}
