/* orgs.c: organisations, the programs they run, and bearer tokens (only the
 * SHA-256 of a token is stored). */
#include <sodium.h>
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


int store_org_insert(store_tx *tx, const org_in *in, json_t **out, err_t *e)
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
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        err_set(e, 409, "duplicate", "an organisation with id '%s' already exists", id);
        err_detail(e, "id", json_string(id));
        return -1;
    }
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

int store_org_get(store_tx *tx, const char *id, json_t **out, err_t *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_ORG_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        err_set(e, 404, "not_found", "no organisation '%s'", id);
        return -1;
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "org get");
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", TEXT(st, 0), "name", TEXT(st, 1),
                          "type", TEXT(st, 2), "region", TEXT(st, 3), "created_at", TEXT(st, 4));
    json_object_set_new(o, "area", OPT(st, 5));
    sqlite3_reset(st);
    json_t *progs = json_array();
    if (!(st = store_stmt(tx, SQL_ORG_PROGRAMS, e))) goto fail;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) json_array_append_new(progs, json_string(TEXT(st, 0)));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) { store_fail(tx, e, "org programs"); goto fail; }
    json_object_set_new(o, "programs", progs);
    *out = o;
    return 0;
fail:
    json_decref(progs);
    json_decref(o);
    return -1;
}

int store_org_offers(store_tx *tx, const char *org, const char *program, bool *offers, err_t *e)
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

int store_token_insert(store_tx *tx, const char *user, const char *role, const char *org,
                       const char *created_by, json_t **out, err_t *e)
{
    json_t *o = NULL;
    if (store_org_get(tx, org, &o, e)) {
        if (e->status == 404) {
            err_set(e, 422, "unknown_org", "no organisation '%s'", org);
            err_detail(e, "org", json_string(org));
        }
        return -1;
    }
    json_decref(o);
    char id[ID_MAX], token[TOKEN_MAX], hash[SHA256_HEX], now[RFC3339_MAX];
    id_new("tok_", id);
    token_new(token);
    sha256_hex(token, strlen(token), hash);
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_TOKEN_INSERT, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
    if (created_by) sqlite3_bind_text(st, 7, created_by, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "token insert");
    *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", id, "token", token, "user", user,
                     "role", role, "org", org, "created_at", now);
    sodium_memzero(token, sizeof token);
    return 0;
}

int store_principal_by_token(store_tx *tx, const char *token, principal *p, err_t *e)
{
    char hash[SHA256_HEX];
    sha256_hex(token, strlen(token), hash);
    sqlite3_stmt *st = store_stmt(tx, SQL_PRINCIPAL, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        err_set(e, 401, "unauthorized", "unknown or revoked bearer token");
        return -1;
    }
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
