/* orgs.c: organisations, the programs they run, and bearer tokens (only the
 * SHA-256 of a token is stored). */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

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
    "INSERT INTO tokens (id, hash, user_name, role, org_id, created_at, created_by)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_PRINCIPAL[] =
    "SELECT t.id, t.user_name, t.role, t.org_id, o.region, o.type FROM tokens t"
    " JOIN orgs o ON o.id = t.org_id WHERE t.hash = ?1 AND t.revoked_at IS NULL";


static int org_read(store_tx *tx, sqlite3_stmt *st, const char *id, org_row *o, store_err *e)
{
    memset(o, 0, sizeof *o);
    const char **const f[] = {&o->id, &o->name, &o->type, &o->region, &o->created_at, &o->area};
    o->mem = store_texts(st, f, 6);
    sqlite3_reset(st);
    if (!o->mem) return store_err_set(e, STORE_INTERNAL, "out of memory");
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
    if (in->id) snprintf(id, sizeof id, "%s", in->id);
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

int store_token_insert(store_tx *tx, const char *user, const char *role, const char *org, const char *created_by,
                       token_row *out, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_ORG_EXISTS, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return store_err_set(e, STORE_NOT_FOUND, "no organisation '%s'", org);
    if (rc != SQLITE_ROW) return store_fail(tx, e, "org exists");
    char hash[SHA256_HEX];
    memset(out, 0, sizeof *out);
    id_new("tok_", out->id);
    token_new(out->token);
    sha256_hex(out->token, strlen(out->token), hash);
    time_rfc3339(time_now_ms(), out->created_at);
    snprintf(out->user, sizeof out->user, "%s", user);
    snprintf(out->role, sizeof out->role, "%s", role);
    snprintf(out->org, sizeof out->org, "%s", org);
    if (!(st = store_stmt(tx, SQL_TOKEN_INSERT, e))) goto fail;
    sqlite3_bind_text(st, 1, out->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, out->created_at, -1, SQLITE_STATIC);
    if (created_by) sqlite3_bind_text(st, 7, created_by, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return 0;
    store_fail(tx, e, "token insert");
fail:
    sodium_memzero(out, sizeof *out);
    return -1;
}

int store_principal_by_token(store_tx *tx, const char *token, principal *p, store_err *e)
{
    char hash[SHA256_HEX];
    sha256_hex(token, strlen(token), hash);
    sqlite3_stmt *st = store_stmt(tx, SQL_PRINCIPAL, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) return store_err_set(e, STORE_NOT_FOUND, "unknown or revoked bearer token");
    if (rc != SQLITE_ROW) return store_fail(tx, e, "principal");
    snprintf(p->token_id, sizeof p->token_id, "%s", TEXT(st, 0));
    snprintf(p->user, sizeof p->user, "%s", TEXT(st, 1));
    snprintf(p->role, sizeof p->role, "%s", TEXT(st, 2));
    snprintf(p->org, sizeof p->org, "%s", TEXT(st, 3));
    snprintf(p->region, sizeof p->region, "%s", TEXT(st, 4));
    snprintf(p->org_type, sizeof p->org_type, "%s", TEXT(st, 5));
    sqlite3_reset(st);
    return 0;
}

static const char SQL_ORG_BY_AREA[] = "SELECT id FROM orgs WHERE area = ?1 AND type = 'emd' ORDER BY id LIMIT 1";

int store_org_by_area(store_tx *tx, const char *area, char id[64], store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_ORG_BY_AREA, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, area, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) snprintf(id, 64, "%s", TEXT(st, 0));
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
