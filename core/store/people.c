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
    " tags, created_at, updated_at, eligibility FROM persons WHERE id = ?1 AND merged_into IS NULL AND "
    PERSON_VISIBLE("persons.id", "org_id");

#define PERSON_COLS                                                                             \
    "id, org_id, name, birth_date, sex, rrn_masked, phone, address, household_id, relation, tags," \
    " created_at, updated_at, eligibility"
/* The name of the person a page by name ended with (the cursor is its id). */
static const char SQL_PERSON_NAME[] = "SELECT name FROM persons WHERE id = ?1";
static const char SQL_PERSON_VISIBLE[] =
    "SELECT 1 FROM persons WHERE id = ?1 AND merged_into IS NULL AND "
    PERSON_VISIBLE("persons.id", "org_id");
static const char SQL_HOUSEHOLD_INSERT[] =
    "INSERT INTO households (id, org_id, address, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_HOUSEHOLD_GET[] =
    "SELECT id, org_id, address, created_at FROM households WHERE id = ?1 AND " VISIBLE_TO("org_id");
static const char SQL_HOUSEHOLD_MEMBERS[] =
    "SELECT id, name, relation FROM persons WHERE household_id = ?1 AND merged_into IS NULL AND " VISIBLE_TO("org_id")
    " ORDER BY id";
static const char SQL_PERSON_JOIN_HOUSEHOLD[] =
    "UPDATE persons SET household_id = ?1, relation = ?2, updated_at = ?3"
    " WHERE id = ?4 AND org_id = ?5 AND merged_into IS NULL";

/* ---- search ----
 * Which index answers depends on what is given: an RRN (persons_rrn_id: the
 * few persons of the country with that number, the viewer's kept), else a
 * name prefix (persons_org_name_id: a range of names in each organisation,
 * by name then id), else a birth date (persons_org_birth_id), else all the
 * organisation's persons (persons_org_id). The others given filter the rows
 * that index returns. Over several organisations (a district) each walks
 * its own and SQLite merges them in the page's order.
 *
 * A name prefix is the range [prefix, successor) in the NOCASE collation of
 * the index: the same matches as the LIKE 'prefix%' it replaces (ASCII
 * letters in either case, any other character exactly), on an index. */
enum { PS_RRN = 1, PS_NAME = 2, PS_NAME_UPPER = 4, PS_BIRTH = 8, PS_AFTER = 16, PS_EXACT = 32, PS_SHAPES = 64 };

static void person_arm(sql_buf *b, int k, const void *shape)
{
    unsigned f = *(const unsigned *)shape;
    /* A record merged into another is not a person of its own any more. */
    sql_add(b, "SELECT " PERSON_COLS " FROM persons WHERE org_id = ?%d AND merged_into IS NULL",
            STORE_ORG_PARAM + k);
    if (f & PS_EXACT) sql_add(b, " AND name = ?8"); /* the whole name: a filter on what the index gives */
    if (f & PS_NAME) {
        /* from the cursor's name on (then after its id), else from the prefix */
        sql_add(b, f & PS_AFTER ? " AND name >= ?7 COLLATE NOCASE AND (name COLLATE NOCASE, id) > (?7, ?5)"
                                : " AND name >= ?1 COLLATE NOCASE");
        if (f & PS_NAME_UPPER) sql_add(b, " AND name < ?2 COLLATE NOCASE");
        if (f & PS_BIRTH) sql_add(b, " AND birth_date = ?3");
    } else {
        if (f & PS_BIRTH) sql_add(b, " AND birth_date = ?3");
        if (f & PS_AFTER) sql_add(b, " AND id > ?5");
    }
}

static void person_search_sql(sql_buf *b, unsigned shape, size_t n_orgs)
{
    if (shape & PS_RRN) {
        /* +org_id: the list filters, the RRN's index drives */
        sql_add(b, "SELECT " PERSON_COLS " FROM persons WHERE rrn_hash = ?4 AND merged_into IS NULL AND +org_id IN (");
        for (size_t k = 0; k < n_orgs; k++) sql_add(b, "%s?%d", k ? ", " : "", STORE_ORG_PARAM + (int)k);
        sql_add(b, ")");
        if (shape & PS_EXACT) sql_add(b, " AND name = ?8");
        if (shape & PS_NAME) sql_add(b, " AND name >= ?1 COLLATE NOCASE");
        if (shape & PS_NAME_UPPER) sql_add(b, " AND name < ?2 COLLATE NOCASE");
        if (shape & PS_BIRTH) sql_add(b, " AND birth_date = ?3");
        if (shape & PS_AFTER) sql_add(b, " AND id > ?5");
        sql_add(b, " ORDER BY id LIMIT ?6");
        return;
    }
    sql_arms(b, n_orgs, person_arm, &shape, shape & PS_NAME ? "3 COLLATE NOCASE, 1" : "1", 6);
}

/* The smallest text above every text that starts with prefix (in NOCASE:
 * ASCII letters folded to lower case first): the prefix with its last
 * character replaced by the next one. UTF-8 orders as its code points, so
 * the next code point is the next text (한 U+D55C -> 핝 U+D55D); the
 * surrogates are skipped, a last character that has no next one is dropped
 * and the one before it moved on. 0 when there is no such text (no upper
 * bound); -1 when prefix is not valid UTF-8 or too long. */
static int name_successor(const char *prefix, char *out, size_t outlen)
{
    unsigned cps[256];
    size_t n = 0;
    for (const unsigned char *s = (const unsigned char *)prefix; *s;) {
        unsigned cp;
        int len;
        if (*s < 0x80) cp = *s, len = 1;
        else if ((*s & 0xe0) == 0xc0) cp = *s & 0x1f, len = 2;
        else if ((*s & 0xf0) == 0xe0) cp = *s & 0x0f, len = 3;
        else if ((*s & 0xf8) == 0xf0) cp = *s & 0x07, len = 4;
        else return -1;
        for (int i = 1; i < len; i++) {
            if ((s[i] & 0xc0) != 0x80) return -1;
            cp = cp << 6 | (s[i] & 0x3f);
        }
        if (n == sizeof cps / sizeof cps[0]) return -1;
        if (cp >= 'A' && cp <= 'Z') cp += 'a' - 'A';
        cps[n++] = cp;
        s += len;
    }
    while (n > 0) {
        unsigned next = cps[n - 1] + 1;
        if (next == 0xd800) next = 0xe000;
        if (next >= 'A' && next <= 'Z') next = 'Z' + 1; /* '@' + 1: upper case folds away in NOCASE */
        if (next <= 0x10ffff) {
            cps[n - 1] = next;
            break;
        }
        n--;
    }
    if (n == 0) return 0;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned cp = cps[i];
        unsigned char enc[4];
        int len;
        if (cp < 0x80) enc[0] = (unsigned char)cp, len = 1;
        else if (cp < 0x800) enc[0] = (unsigned char)(0xc0 | cp >> 6), enc[1] = (unsigned char)(0x80 | (cp & 0x3f)), len = 2;
        else if (cp < 0x10000)
            enc[0] = (unsigned char)(0xe0 | cp >> 12), enc[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f)),
            enc[2] = (unsigned char)(0x80 | (cp & 0x3f)), len = 3;
        else
            enc[0] = (unsigned char)(0xf0 | cp >> 18), enc[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f)),
            enc[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f)), enc[3] = (unsigned char)(0x80 | (cp & 0x3f)), len = 4;
        if (j + (size_t)len + 1 > outlen) return -1;
        memcpy(out + j, enc, (size_t)len);
        j += (size_t)len;
    }
    out[j] = 0;
    return 1;
}

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
        store_oom(e);
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
        return store_oom(e);
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
    char upper[1024], hash[SHA256_HEX], *after_name = NULL;
    /* An exact name filters (its persons come by birth date or id); a
     * beginning of a name is a range of the name index. */
    const char *exact = q->exact && q->name && *q->name ? q->name : NULL;
    const char *name = !exact && q->name && *q->name ? q->name : NULL, *after = q->after && *q->after ? q->after : NULL;
    unsigned shape = (q->rrn ? PS_RRN : 0) | (name ? PS_NAME : 0) | (q->birth_date && *q->birth_date ? PS_BIRTH : 0) |
                     (after ? PS_AFTER : 0) | (exact ? PS_EXACT : 0);
    if (name) {
        int up = name_successor(name, upper, sizeof upper);
        if (up < 0) return store_err_set(e, STORE_INTERNAL, "the name is not valid UTF-8 or too long");
        if (up) shape |= PS_NAME_UPPER;
    }
    const char **orgs = NULL;
    size_t n_orgs;
    sqlite3_stmt *st;
    int rc = -1;
    if (store_viewer_orgs(tx, p, NULL, &orgs, &n_orgs, e)) return -1;
    if (name && after && !(shape & PS_RRN)) {
        /* A page by name goes on from the name of the person it ended with. */
        if (!(st = store_stmt(tx, SQL_PERSON_NAME, e))) goto done;
        sqlite3_bind_text(st, 1, after, -1, SQLITE_STATIC);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) after_name = strdup(TEXT(st, 0));
        sqlite3_reset(st);
        if (s != SQLITE_ROW && s != SQLITE_DONE) {
            store_fail(tx, e, "person name");
            goto done;
        }
        if (s == SQLITE_DONE) { /* that person is gone: nothing comes after it */
            rc = 0;
            goto done;
        }
        if (!after_name) {
            store_oom(e);
            goto done;
        }
        if (sqlite3_stricmp(after_name, name) < 0) { /* renamed below the prefix: from the start again */
            free(after_name);
            if (!(after_name = strdup(name))) {
                store_oom(e);
                goto done;
            }
            after = "";
        }
    }
    sql_buf b = {0};
    person_search_sql(&b, shape, n_orgs);
    st = store_stmt_built(tx, &b, e);
    sql_free(&b);
    if (!st) goto done;
    store_bind_orgs(st, orgs, n_orgs);
    if (name) sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (shape & PS_NAME_UPPER) sqlite3_bind_text(st, 2, upper, -1, SQLITE_STATIC);
    store_bind_opt(st, 3, q->birth_date);
    if (q->rrn) {
        rrn_hash(q->rrn, hash);
        sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
    }
    store_bind_opt(st, 5, after);
    sqlite3_bind_int(st, 6, q->limit + 1);
    if (after_name) sqlite3_bind_text(st, 7, after_name, -1, SQLITE_STATIC);
    if (exact) sqlite3_bind_text(st, 8, exact, -1, SQLITE_STATIC);
    void *items;
    if (store_rows(tx, st, q->limit, sizeof *out->items, person_read, person_drop, &items, &out->n, &out->more, e,
                   "person search"))
        goto done;
    out->items = items;
    if (out->n) str_copy(out->last, sizeof out->last, out->items[out->n - 1].id);
    rc = 0;
done:
    free(after_name);
    free(orgs);
    return rc;
}

static const char SQL_PERSON_BY_RRN[] =
    "SELECT id FROM persons WHERE org_id = ?1 AND rrn_hash = ?2 AND merged_into IS NULL ORDER BY id LIMIT 1";

int store_person_by_rrn(store_tx *tx, const char *org, const char *digits, char id[ID_MAX], store_err *e)
{
    char hash[SHA256_HEX];
    rrn_hash(digits, hash);
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_BY_RRN, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) str_copy(id, ID_MAX, TEXT(st, 0));
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc != SQLITE_DONE) return store_fail(tx, e, "person by number");
    return store_err_set(e, STORE_NOT_FOUND, "no person with this number");
}

static const char SQL_PERSON_TWIN[] =
    "SELECT t.id FROM persons t WHERE t.org_id = ?2 AND t.merged_into IS NULL AND t.rrn_hash IS NOT NULL"
    " AND t.rrn_hash = (SELECT s.rrn_hash FROM persons s WHERE s.id = ?1) ORDER BY t.id LIMIT 1";

int store_person_twin(store_tx *tx, const char *person_id, const char *org, char id[ID_MAX], store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_TWIN, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, person_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, org, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) str_copy(id, ID_MAX, TEXT(st, 0));
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc != SQLITE_DONE) return store_fail(tx, e, "person twin");
    return store_err_set(e, STORE_NOT_FOUND, "no record of this person in '%s'", org);
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
    if (!out->mem) return store_oom(e);
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
    "UPDATE persons SET eligibility = ?1, updated_at = ?2 WHERE id = ?3 AND org_id = ?4 AND merged_into IS NULL";

int store_person_set_eligibility(store_tx *tx, const principal *p, const char *id, json_t *eligibility,
                                 person_row *out, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    char *text = json_dumps(eligibility, JSON_COMPACT);
    if (!text) return store_oom(e);
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

/* A copy is read, then inserted: an INSERT ... SELECT from persons would
 * copy what it reads into a temporary table first. */
#define CLONED_COLS "name, birth_date, sex, rrn_hash, rrn_masked, phone, address, tags, eligibility"
static const char SQL_PERSON_CLONE_SRC[] = "SELECT " CLONED_COLS " FROM persons WHERE id = ?1";
static const char SQL_PERSON_CLONE[] =
    "INSERT INTO persons (id, org_id, created_at, created_by, updated_at, " CLONED_COLS ")"
    " VALUES (?1, ?2, ?3, ?4, ?3, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
static const char SQL_PERSON_SEALED[] = "SELECT rrn_sealed FROM persons WHERE id = ?1";
static const char SQL_PERSON_RESEAL[] = "UPDATE persons SET rrn_sealed = ?2 WHERE id = ?1";

int store_person_clone(store_tx *tx, const char *src_id, const char *to_org, const char *by, char id[ID_MAX],
                       store_err *e)
{
    char now[RFC3339_MAX];
    id_new("per_", id);
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *src = store_stmt(tx, SQL_PERSON_CLONE_SRC, e);
    if (!src) return -1;
    sqlite3_bind_text(src, 1, src_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(src);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(src);
        if (rc == SQLITE_DONE) return store_err_set(e, STORE_NOT_FOUND, "no person '%s'", src_id);
        return store_fail(tx, e, "person clone");
    }
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_CLONE, e);
    if (!st) {
        sqlite3_reset(src);
        return -1;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, to_org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, by, -1, SQLITE_STATIC);
    for (int i = 0; i < 9; i++) sqlite3_bind_value(st, 5 + i, sqlite3_column_value(src, i)); /* copied as bound */
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_reset(src);
    if (rc != SQLITE_DONE) return store_fail(tx, e, "person clone");
    /* The sealed RRN is bound to its person: open and seal it for the copy. */
    if (!(st = store_stmt(tx, SQL_PERSON_SEALED, e))) return -1;
    sqlite3_bind_text(st, 1, src_id, -1, SQLITE_STATIC);
    char sealed[128] = "", digits[14];
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        str_copy(sealed, sizeof sealed, (const char *)sqlite3_column_text(st, 0));
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

static const char SQL_RRN_ELSEWHERE[] =
    "SELECT 1 FROM persons WHERE rrn_hash = ?1 AND org_id <> ?2 AND merged_into IS NULL LIMIT 1";

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

static const char SQL_PERSON_MERGED[] =
    "SELECT p.merged_into, (SELECT m.id FROM person_merges m WHERE m.merged_id = p.id AND m.undone_at IS NULL"
    " ORDER BY m.id DESC LIMIT 1) FROM persons p WHERE p.id = ?1 AND p.merged_into IS NOT NULL AND "
    VISIBLE_TO("p.org_id");

int store_person_merged_into(store_tx *tx, const principal *p, const char *id, char into[ID_MAX],
                             char merge_id[ID_MAX], store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_MERGED, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    store_bind_viewer(st, p);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        str_copy(into, ID_MAX, TEXT(st, 0));
        str_copy(merge_id, ID_MAX, TEXT(st, 1) ? TEXT(st, 1) : "");
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc != SQLITE_DONE) return store_fail(tx, e, "person merged");
    return store_err_set(e, STORE_NOT_FOUND, "person '%s' was not merged", id);
}

static const char SQL_PERSON_OWNER[] = "SELECT org_id FROM persons WHERE id = ?1";

int store_person_owner(store_tx *tx, const char *person_id, char org[64], store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_OWNER, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, person_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) str_copy(org, 64, TEXT(st, 0));
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc != SQLITE_DONE) return store_fail(tx, e, "person owner");
    return store_err_set(e, STORE_NOT_FOUND, "no person '%s'", person_id);
}

void store_sql_of_people(store_sql_fn fn, void *ctx)
{
    STORE_SQL(fn, ctx, SQL_PERSON_INSERT);
    STORE_SQL(fn, ctx, SQL_PERSON_GET);
    STORE_SQL(fn, ctx, SQL_PERSON_NAME);
    STORE_SQL(fn, ctx, SQL_PERSON_VISIBLE);
    STORE_SQL(fn, ctx, SQL_HOUSEHOLD_INSERT);
    STORE_SQL(fn, ctx, SQL_HOUSEHOLD_GET);
    STORE_SQL(fn, ctx, SQL_HOUSEHOLD_MEMBERS);
    STORE_SQL(fn, ctx, SQL_PERSON_JOIN_HOUSEHOLD);
    STORE_SQL(fn, ctx, SQL_PERSON_ELIGIBILITY);
    STORE_SQL(fn, ctx, SQL_PERSON_CLONE_SRC);
    STORE_SQL(fn, ctx, SQL_PERSON_CLONE);
    STORE_SQL(fn, ctx, SQL_PERSON_SEALED);
    STORE_SQL(fn, ctx, SQL_PERSON_RESEAL);
    STORE_SQL(fn, ctx, SQL_RRN_ELSEWHERE);
    STORE_SQL(fn, ctx, SQL_PERSON_OWNER);
    STORE_SQL(fn, ctx, SQL_PERSON_BY_RRN);
    STORE_SQL(fn, ctx, SQL_PERSON_MERGED);
    STORE_SQL(fn, ctx, SQL_PERSON_TWIN);
    static const size_t orgs[] = {1, 3};
    for (size_t i = 0; i < 2; i++)
        for (unsigned shape = 0; shape < PS_SHAPES; shape++) {
            if ((shape & PS_NAME_UPPER) && !(shape & PS_NAME)) continue;
            if ((shape & PS_EXACT) && (shape & PS_NAME)) continue;
            sql_buf b = {0};
            char name[80];
            person_search_sql(&b, shape, orgs[i]);
            snprintf(name, sizeof name, "person search (shape %u, %zu organisations)", shape, orgs[i]);
            if (!b.oom) fn(name, b.s, STORE_SQL_REQUEST, ctx);
            sql_free(&b);
        }
}
