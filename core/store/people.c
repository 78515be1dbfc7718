/* people.c: persons and households. A person's resident registration number
 * is kept sealed (store/pii.c), as a blind index (for search) and in its
 * masked form (the only one shown). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"
#include "store/pii.h"


static const char SQL_PERSON_INSERT[] =
    "INSERT INTO persons (id, org_id, name, birth_date, sex, rrn_hash, rrn_masked, phone, address,"
    " household_id, relation, tags, created_at, created_by, updated_at, eligibility, rrn_sealed)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?13, ?15, ?16)";
static const char SQL_PERSON_GET[] =
    "SELECT id, org_id, name, birth_date, sex, rrn_masked, phone, address, household_id, relation,"
    " tags, created_at, updated_at, eligibility FROM persons WHERE id = ?1 AND " PERSON_VISIBLE("persons.id", "org_id");
static const char SQL_PERSON_SEARCH[] =
    "SELECT id, org_id, name, birth_date, sex, rrn_masked, phone, address, household_id, relation,"
    " tags, created_at, updated_at, eligibility FROM persons WHERE " VISIBLE_TO("org_id")
    " AND (?2 IS NULL OR name LIKE ?2 ESCAPE '\\')"
    " AND (?3 IS NULL OR birth_date = ?3)"
    " AND (?4 IS NULL OR rrn_hash = ?4)"
    " AND (?5 IS NULL OR id > ?5)"
    " ORDER BY id LIMIT ?6";
static const char SQL_PERSON_VISIBLE[] =
    "SELECT 1 FROM persons WHERE id = ?1 AND " PERSON_VISIBLE("persons.id", "org_id");
static const char SQL_HOUSEHOLD_INSERT[] =
    "INSERT INTO households (id, org_id, address, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_HOUSEHOLD_GET[] =
    "SELECT id, org_id, address, created_at FROM households WHERE id = ?1 AND " VISIBLE_TO("org_id");
static const char SQL_HOUSEHOLD_MEMBERS[] =
    "SELECT id, name, relation FROM persons WHERE household_id = ?1 AND " VISIBLE_TO("org_id") " ORDER BY id";
static const char SQL_PERSON_JOIN_HOUSEHOLD[] =
    "UPDATE persons SET household_id = ?1, relation = ?2, updated_at = ?3"
    " WHERE id = ?4 AND org_id = ?5";

/* The blind index that lets a search find a person by RRN (store/pii.c). */
static void rrn_hash(const char *rrn, char out[SHA256_HEX]) { pii_rrn_index(rrn, out); }

static int person_read(sqlite3_stmt *st, void *row)
{
    person_row *p = row;
    const char **const f[] = {&p->id,      &p->org,          &p->name,     &p->birth_date, &p->sex,
                              &p->rrn_masked, &p->phone,     &p->address,  &p->household_id, &p->relation,
                              NULL,         &p->created_at,  &p->updated_at};
    p->mem = store_texts(st, f, 13);
    p->tags = store_json_col(st, 10, 0);
    p->eligibility = store_json_col(st, 13, 0);
    return p->mem ? 0 : -1;
}

static int household_visible(store_tx *tx, const principal *p, const char *id, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_HOUSEHOLD_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    store_bind_viewer(st, p);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc != SQLITE_DONE) return store_fail(tx, e, "household get");
    return store_err_set(e, STORE_NOT_FOUND, "no household '%s'", id);
}

int store_person_insert(store_tx *tx, const principal *p, const person_in *in, person_row *out, store_err *e)
{
    if (in->household_id && household_visible(tx, p, in->household_id, e)) return -1;
    char id[ID_MAX], now[RFC3339_MAX], hash[SHA256_HEX], masked[16], sealed[128];
    id_new("per_", id);
    time_rfc3339(time_now_ms(), now);
    int rc = -1;
    char *tags = in->tags ? json_dumps(in->tags, JSON_COMPACT) : strdup("[]");
    char *elig = in->eligibility ? json_dumps(in->eligibility, JSON_COMPACT) : strdup("{}");
    if (!tags || !elig) {
        store_err_set(e, STORE_INTERNAL, "out of memory");
        goto done;
    }
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_INSERT, e);
    if (!st) goto done;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, in->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->birth_date, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, in->sex, -1, SQLITE_STATIC);
    if (in->rrn) {
        rrn_hash(in->rrn, hash);
        pii_rrn_mask(in->rrn, masked);
        if (pii_rrn_seal(in->rrn, id, sealed, sizeof sealed)) {
            store_err_set(e, STORE_INTERNAL, "cannot seal the identifier");
            goto done;
        }
        sqlite3_bind_text(st, 6, hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, masked, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 16, sealed, -1, SQLITE_STATIC);
    }
    store_bind_opt(st, 8, in->phone);
    store_bind_opt(st, 9, in->address);
    store_bind_opt(st, 10, in->household_id);
    store_bind_opt(st, 11, in->relation);
    sqlite3_bind_text(st, 12, tags, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 14, p->user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 15, elig, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    if (s != SQLITE_DONE) {
        store_fail(tx, e, "person insert");
        goto done;
    }
    rc = store_person_get(tx, p, id, out, e);
done:
    free(tags);
    free(elig);
    return rc;
}

int store_person_get(store_tx *tx, const principal *p, const char *id, person_row *out, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    store_bind_viewer(st, p);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return store_err_set(e, STORE_NOT_FOUND, "no person '%s'", id);
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "person get");
    memset(out, 0, sizeof *out);
    rc = person_read(st, out);
    sqlite3_reset(st);
    if (rc) {
        person_row_free(out);
        return store_err_set(e, STORE_INTERNAL, "out of memory");
    }
    return 0;
}

int store_person_visible(store_tx *tx, const principal *p, const char *person_id, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_VISIBLE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, person_id, -1, SQLITE_STATIC);
    store_bind_viewer(st, p);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc != SQLITE_DONE) return store_fail(tx, e, "person visible");
    return store_err_set(e, STORE_NOT_FOUND, "no person '%s'", person_id);
}

static void person_drop(void *row) { person_row_free(row); }

int store_person_search(store_tx *tx, const principal *p, const person_query *q, person_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_SEARCH, e);
    if (!st) return -1;
    char like[512], hash[SHA256_HEX];
    store_bind_viewer(st, p);
    if (q->name) { /* prefix match; escape LIKE's own characters */
        size_t j = 0;
        for (const char *s = q->name; *s && j + 3 < sizeof like; s++) {
            if (*s == '%' || *s == '_' || *s == '\\') like[j++] = '\\';
            like[j++] = *s;
        }
        like[j++] = '%';
        like[j] = 0;
        sqlite3_bind_text(st, 2, like, -1, SQLITE_STATIC);
    }
    store_bind_opt(st, 3, q->birth_date);
    if (q->rrn) {
        rrn_hash(q->rrn, hash);
        sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
    }
    store_bind_opt(st, 5, q->after);
    sqlite3_bind_int(st, 6, q->limit + 1);
    void *items;
    if (store_rows(tx, st, q->limit, sizeof *out->items, person_read, person_drop, &items, &out->n, &out->more, e,
                   "person search"))
        return -1;
    out->items = items;
    if (out->n) snprintf(out->last, sizeof out->last, "%s", out->items[out->n - 1].id);
    return 0;
}

int store_household_insert(store_tx *tx, const principal *p, const char *address, json_t *members,
                           household_row *out, size_t *bad_member, store_err *e)
{
    char id[ID_MAX], now[RFC3339_MAX];
    id_new("hh_", id);
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_HOUSEHOLD_INSERT, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, address, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, p->user, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "household insert");
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
        const char *pid = json_string_value(json_object_get(m, "person_id"));
        const char *rel = json_string_value(json_object_get(m, "relation"));
        if (!(st = store_stmt(tx, SQL_PERSON_JOIN_HOUSEHOLD, e))) return -1;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        store_bind_opt(st, 2, rel);
        sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, pid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, p->org, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) return store_fail(tx, e, "household member");
        if (sqlite3_changes(tx->db) != 1) {
            *bad_member = i;
            return store_err_set(e, STORE_NOT_FOUND, "no person '%s'", pid);
        }
    }
    return store_household_get(tx, p, id, out, e);
}

static int member_read(sqlite3_stmt *st, void *row)
{
    household_member *m = row;
    const char **const f[] = {&m->person_id, &m->name, &m->relation};
    m->mem = store_texts(st, f, 3);
    return m->mem ? 0 : -1;
}

static void member_drop(void *row) { free(((household_member *)row)->mem); }

int store_household_get(store_tx *tx, const principal *p, const char *id, household_row *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_HOUSEHOLD_GET, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    store_bind_viewer(st, p);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return store_err_set(e, STORE_NOT_FOUND, "no household '%s'", id);
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "household get");
    const char **const f[] = {&out->id, &out->org, &out->address, &out->created_at};
    out->mem = store_texts(st, f, 4);
    sqlite3_reset(st);
    if (!out->mem) return store_err_set(e, STORE_INTERNAL, "out of memory");
    void *members;
    if (!(st = store_stmt(tx, SQL_HOUSEHOLD_MEMBERS, e))) goto fail;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    store_bind_viewer(st, p);
    if (store_rows(tx, st, -1, sizeof *out->members, member_read, member_drop, &members, &out->n_members, NULL, e,
                   "household members"))
        goto fail;
    out->members = members;
    return 0;
fail:
    household_row_free(out);
    return -1;
}


static const char SQL_PERSON_ELIGIBILITY[] =
    "UPDATE persons SET eligibility = ?1, updated_at = ?2 WHERE id = ?3 AND org_id = ?4";

int store_person_set_eligibility(store_tx *tx, const principal *p, const char *id, json_t *eligibility,
                                 person_row *out, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    char *text = json_dumps(eligibility, JSON_COMPACT);
    if (!text) return store_err_set(e, STORE_INTERNAL, "out of memory");
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_ELIGIBILITY, e);
    if (!st) {
        free(text);
        return -1;
    }
    sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, p->org, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    free(text);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "person eligibility");
    if (sqlite3_changes(tx->db) != 1) return store_err_set(e, STORE_NOT_FOUND, "no person '%s'", id);
    return out ? store_person_get(tx, p, id, out, e) : 0;
}

static const char SQL_PERSON_CLONE[] =
    "INSERT INTO persons (id, org_id, name, birth_date, sex, rrn_hash, rrn_masked, phone, address, tags,"
    " created_at, created_by, updated_at, eligibility)"
    " SELECT ?1, ?2, name, birth_date, sex, rrn_hash, rrn_masked, phone, address, tags, ?3, ?4, ?3, eligibility"
    " FROM persons WHERE id = ?5";
static const char SQL_PERSON_SEALED[] = "SELECT rrn_sealed FROM persons WHERE id = ?1";
static const char SQL_PERSON_RESEAL[] = "UPDATE persons SET rrn_sealed = ?2 WHERE id = ?1";

int store_person_clone(store_tx *tx, const char *src_id, const char *to_org, const char *by, char id[ID_MAX],
                       store_err *e)
{
    char now[RFC3339_MAX];
    id_new("per_", id);
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_CLONE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, to_org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, by, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, src_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "person clone");
    if (sqlite3_changes(tx->db) != 1) return store_err_set(e, STORE_NOT_FOUND, "no person '%s'", src_id);
    /* The sealed RRN is bound to its person: open and seal it for the copy. */
    if (!(st = store_stmt(tx, SQL_PERSON_SEALED, e))) return -1;
    sqlite3_bind_text(st, 1, src_id, -1, SQLITE_STATIC);
    char sealed[128] = "", digits[14];
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        snprintf(sealed, sizeof sealed, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    if (!sealed[0]) return 0;
    if (pii_rrn_open(sealed, src_id, digits) || pii_rrn_seal(digits, id, sealed, sizeof sealed)) {
        sodium_memzero(digits, sizeof digits);
        return store_err_set(e, STORE_INTERNAL, "cannot reseal the identifier");
    }
    sodium_memzero(digits, sizeof digits);
    if (!(st = store_stmt(tx, SQL_PERSON_RESEAL, e))) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sealed, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "person reseal");
}

static const char SQL_RRN_ELSEWHERE[] = "SELECT 1 FROM persons WHERE rrn_hash = ?1 AND org_id <> ?2 LIMIT 1";

int store_rrn_known_elsewhere(store_tx *tx, const principal *p, const char *digits, bool *known, store_err *e)
{
    char hash[SHA256_HEX];
    rrn_hash(digits, hash);
    sqlite3_stmt *st = store_stmt(tx, SQL_RRN_ELSEWHERE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->org, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_fail(tx, e, "rrn elsewhere");
    *known = rc == SQLITE_ROW;
    return 0;
}

static const char SQL_PERSON_OWNER[] = "SELECT org_id FROM persons WHERE id = ?1";

int store_person_owner(store_tx *tx, const char *person_id, char org[64], store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_OWNER, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, person_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) snprintf(org, 64, "%s", TEXT(st, 0));
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc != SQLITE_DONE) return store_fail(tx, e, "person owner");
    return store_err_set(e, STORE_NOT_FOUND, "no person '%s'", person_id);
}
