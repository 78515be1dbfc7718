/* merges.c: one person, one record. Two records of one person in an
 * organisation are merged: the cases, consents and referrals of the one
 * merged move to the one kept, the merged row stays (merged_into) and the
 * merge records what it moved and what it filled in, so that it can be
 * undone exactly. What may be merged, and what the kept record takes, is
 * decided above the store (process/merges.c). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"
#include "store/pii.h"

/* What moves with a person: the table, and how a row of it moves (a case
 * moves its version on: its person changed). */
static const struct {
    const char *key;
    const char *select; /* the ids of the person's rows */
    const char *move;   /* ?1 the person it moves to, ?2 the row, ?3 now, ?4 the person it is on */
} MOVES[] = {
    {"cases", "SELECT id FROM cases WHERE person_id = ?1 ORDER BY id",
     "UPDATE cases SET person_id = ?1, version = version + 1, updated_at = ?3 WHERE id = ?2 AND person_id = ?4"},
    {"consents", "SELECT id FROM consents WHERE person_id = ?1 ORDER BY id",
     "UPDATE consents SET person_id = ?1 WHERE id = ?2 AND person_id = ?4"},
    {"referrals", "SELECT id FROM referrals WHERE person_id = ?1 ORDER BY id",
     "UPDATE referrals SET person_id = ?1 WHERE id = ?2 AND person_id = ?4"},
};
#define N_MOVES ((int)(sizeof MOVES / sizeof MOVES[0]))

static const char SQL_MERGE_INSERT[] =
    "INSERT INTO person_merges (id, org_id, kept_id, merged_id, moved, filled, note, created_at, created_by)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char SQL_MARK_MERGED[] =
    "UPDATE persons SET merged_into = ?2, updated_at = ?3 WHERE id = ?1 AND merged_into IS NULL";
static const char SQL_MARK_UNMERGED[] =
    "UPDATE persons SET merged_into = NULL, updated_at = ?3 WHERE id = ?1 AND merged_into = ?2";
static const char SQL_MERGE_UNDONE[] =
    "UPDATE person_merges SET undone_at = ?2, undone_by = ?3 WHERE id = ?1 AND undone_at IS NULL";
#define MERGE_COLS \
    "id, org_id, kept_id, merged_id, note, created_at, created_by, undone_at, undone_by, moved, filled"
static const char SQL_MERGE_GET[] =
    "SELECT " MERGE_COLS " FROM person_merges WHERE id = ?1 AND kept_id = ?2 AND org_id = ?3";
static const char SQL_MERGE_BY_ID[] = "SELECT " MERGE_COLS " FROM person_merges WHERE id = ?1";
static const char SQL_MERGES_OF_PERSON[] =
    "SELECT " MERGE_COLS " FROM person_merges WHERE (kept_id = ?1 OR merged_id = ?1) AND " VISIBLE_TO("org_id")
    " ORDER BY id DESC";
static const char SQL_PERSON_FIELDS[] =
    "UPDATE persons SET phone = ?2, address = ?3, household_id = ?4, relation = ?5, tags = ?6, eligibility = ?7,"
    " updated_at = ?8 WHERE id = ?1 AND merged_into IS NULL";
static const char SQL_TAKE_NUMBER[] =
    "UPDATE persons SET rrn_hash = (SELECT rrn_hash FROM persons WHERE id = ?2),"
    " rrn_masked = (SELECT rrn_masked FROM persons WHERE id = ?2), rrn_sealed = ?3 WHERE id = ?1";
static const char SQL_DROP_NUMBER[] =
    "UPDATE persons SET rrn_hash = NULL, rrn_masked = NULL, rrn_sealed = NULL WHERE id = ?1";
static const char SQL_SEALED[] = "SELECT rrn_sealed FROM persons WHERE id = ?1";
static const char SQL_NUMBERS[] =
    "SELECT a.rrn_hash IS NOT NULL, b.rrn_hash IS NOT NULL, COALESCE(a.rrn_hash = b.rrn_hash, 0)"
    " FROM persons a, persons b WHERE a.id = ?1 AND b.id = ?2";
static const char SQL_LIVE_PROGRAMS[] =
    "SELECT DISTINCT program FROM cases WHERE person_id = ?1 AND status <> 'ended' ORDER BY program";

static int step_done(store_tx *tx, sqlite3_stmt *st, store_err *e, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, what);
}

/* Moves the rows named in ids (a JSON array) of one kind from one person
 * to another, each only if it is still on the person it moves from; the
 * ids of those that moved are added to done (if given). */
static int move_rows(store_tx *tx, int kind, json_t *ids, const char *to, const char *from, const char *now,
                     json_t *done, store_err *e)
{
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id) {
        sqlite3_stmt *st = store_stmt(tx, MOVES[kind].move, e);
        if (!st) return -1;
        sqlite3_bind_text(st, 1, to, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, json_string_value(id), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, from, -1, SQLITE_STATIC);
        if (step_done(tx, st, e, "merge move")) return -1;
        if (done && sqlite3_changes(tx->db) == 1) json_array_append(done, id);
    }
    return 0;
}

static int merge_read(sqlite3_stmt *st, void *row)
{
    merge_row *m = row;
    const char **const f[] = {&m->id,         &m->org,       &m->kept_id,   &m->merged_id, &m->note,
                              &m->created_at, &m->created_by, &m->undone_at, &m->undone_by};
    m->mem = store_texts(st, f, 9);
    m->moved = store_json_col(st, 9, 0);
    m->filled = store_json_col(st, 10, 0);
    return m->mem && m->moved && m->filled ? 0 : -1;
}

static void merge_drop(void *row) { merge_row_free(row); }

/* A merge by id (kept_id and org NULL), or of kept_id in org. */
static int merge_load(store_tx *tx, const char *id, const char *kept_id, const char *org, merge_row *out,
                      store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, kept_id ? SQL_MERGE_GET : SQL_MERGE_BY_ID, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (kept_id) {
        sqlite3_bind_text(st, 2, kept_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, org, -1, SQLITE_STATIC);
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return store_err_set(e, STORE_NOT_FOUND, "no merge '%s'", id);
    }
    if (rc != SQLITE_ROW) return store_fail(tx, e, "merge get");
    rc = merge_read(st, out);
    sqlite3_reset(st);
    if (rc) {
        merge_row_free(out);
        return store_oom(e);
    }
    return 0;
}

int store_person_merge(store_tx *tx, const merge_in *in, merge_row *out, store_err *e)
{
    char id[ID_MAX], now[RFC3339_MAX];
    id_new("mrg_", id);
    time_rfc3339(time_now_ms(), now);
    json_t *moved = json_object();
    char *moved_text = NULL, *filled_text = NULL;
    int rc = -1;
    /* the merged record first: it is not merged already */
    sqlite3_stmt *st = store_stmt(tx, SQL_MARK_MERGED, e);
    if (!st) goto done;
    sqlite3_bind_text(st, 1, in->merged_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->kept_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    if (step_done(tx, st, e, "merge mark")) goto done;
    if (sqlite3_changes(tx->db) != 1) {
        store_err_set(e, STORE_CONFLICT, "person '%s' is merged already", in->merged_id);
        goto done;
    }
    for (int k = 0; k < N_MOVES; k++) {
        const char **ids;
        size_t n;
        if (!(st = store_stmt(tx, MOVES[k].select, e))) goto done;
        sqlite3_bind_text(st, 1, in->merged_id, -1, SQLITE_STATIC);
        if (store_strv(tx, st, &ids, &n, e)) goto done;
        json_t *list = json_array();
        for (size_t i = 0; i < n; i++) json_array_append_new(list, json_string(ids[i]));
        free(ids);
        json_object_set_new(moved, MOVES[k].key, list);
        if (move_rows(tx, k, list, in->kept_id, in->merged_id, now, NULL, e)) goto done;
    }
    moved_text = json_dumps(moved, JSON_COMPACT);
    filled_text = json_dumps(in->filled, JSON_COMPACT);
    if (!moved_text || !filled_text) {
        store_oom(e);
        goto done;
    }
    if (!(st = store_stmt(tx, SQL_MERGE_INSERT, e))) goto done;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, in->kept_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->merged_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, moved_text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, filled_text, -1, SQLITE_STATIC);
    store_bind_opt(st, 7, in->note);
    sqlite3_bind_text(st, 8, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, in->by, -1, SQLITE_STATIC);
    if (step_done(tx, st, e, "merge insert")) goto done;
    rc = merge_load(tx, id, NULL, NULL, out, e);
done:
    json_decref(moved);
    free(moved_text);
    free(filled_text);
    return rc;
}

int store_merge_get(store_tx *tx, const principal *p, const char *kept_id, const char *id, merge_row *out,
                    store_err *e)
{
    return merge_load(tx, id, kept_id, p->org, out, e);
}

int store_person_unmerge(store_tx *tx, const merge_row *m, const char *by, json_t *moved_back, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_MERGE_UNDONE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, m->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, by, -1, SQLITE_STATIC);
    if (step_done(tx, st, e, "unmerge mark")) return -1;
    if (sqlite3_changes(tx->db) != 1) return store_err_set(e, STORE_CONFLICT, "merge '%s' was undone already", m->id);
    if (!(st = store_stmt(tx, SQL_MARK_UNMERGED, e))) return -1;
    sqlite3_bind_text(st, 1, m->merged_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, m->kept_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    if (step_done(tx, st, e, "unmerge person")) return -1;
    if (sqlite3_changes(tx->db) != 1)
        return store_err_set(e, STORE_CONFLICT, "person '%s' is no longer merged into '%s'", m->merged_id, m->kept_id);
    for (int k = 0; k < N_MOVES; k++) {
        json_t *done = json_array();
        json_object_set_new(moved_back, MOVES[k].key, done);
        if (move_rows(tx, k, json_object_get(m->moved, MOVES[k].key), m->merged_id, m->kept_id, now, done, e))
            return -1;
    }
    return 0;
}

int store_person_merges(store_tx *tx, const principal *p, const char *person_id, merge_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_MERGES_OF_PERSON, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, person_id, -1, SQLITE_STATIC);
    store_bind_viewer(st, p);
    void *items;
    if (store_rows(tx, st, -1, sizeof *out->items, merge_read, merge_drop, &items, &out->n, NULL, e, "merges"))
        return -1;
    out->items = items;
    return 0;
}

int store_person_set_fields(store_tx *tx, const char *id, const person_fields *f, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    char *tags = json_dumps(f->tags, JSON_COMPACT), *elig = json_dumps(f->eligibility, JSON_COMPACT);
    int rc = -1;
    if (!tags || !elig) {
        store_oom(e);
        goto done;
    }
    sqlite3_stmt *st = store_stmt(tx, SQL_PERSON_FIELDS, e);
    if (!st) goto done;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    store_bind_opt(st, 2, f->phone);
    store_bind_opt(st, 3, f->address);
    store_bind_opt(st, 4, f->household_id);
    store_bind_opt(st, 5, f->relation);
    sqlite3_bind_text(st, 6, tags, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, elig, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, now, -1, SQLITE_STATIC);
    if (step_done(tx, st, e, "person fields")) goto done;
    rc = sqlite3_changes(tx->db) == 1 ? 0 : store_err_set(e, STORE_NOT_FOUND, "no person '%s'", id);
done:
    free(tags);
    free(elig);
    return rc;
}

int store_person_take_number(store_tx *tx, const char *id, const char *from_id, store_err *e)
{
    /* The sealed number is bound to its person: opened and sealed again
     * for the record that takes it. */
    sqlite3_stmt *st = store_stmt(tx, SQL_SEALED, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, from_id, -1, SQLITE_STATIC);
    char sealed[128] = "", digits[14];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        str_copy(sealed, sizeof sealed, TEXT(st, 0));
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_fail(tx, e, "person sealed");
    if (!sealed[0]) return store_err_set(e, STORE_NOT_FOUND, "person '%s' has no number", from_id);
    int bad = pii_rrn_open(sealed, from_id, digits) || pii_rrn_seal(digits, id, sealed, sizeof sealed);
    sodium_memzero(digits, sizeof digits);
    if (bad) return store_err_set(e, STORE_INTERNAL, "cannot reseal the identifier");
    if (!(st = store_stmt(tx, SQL_TAKE_NUMBER, e))) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, from_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, sealed, -1, SQLITE_STATIC);
    return step_done(tx, st, e, "person take number");
}

int store_person_drop_number(store_tx *tx, const char *id, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_DROP_NUMBER, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return step_done(tx, st, e, "person drop number");
}

int store_person_numbers(store_tx *tx, const char *a, const char *b, person_numbers *out, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_NUMBERS, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->a_has = sqlite3_column_int(st, 0);
        out->b_has = sqlite3_column_int(st, 1);
        out->same = sqlite3_column_int(st, 2);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc != SQLITE_DONE) return store_fail(tx, e, "person numbers");
    return store_err_set(e, STORE_NOT_FOUND, "no person '%s' or '%s'", a, b);
}

int store_person_live_programs(store_tx *tx, const char *person_id, const char ***programs, size_t *n,
                               store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_LIVE_PROGRAMS, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, person_id, -1, SQLITE_STATIC);
    return store_strv(tx, st, programs, n, e);
}

void store_sql_of_merges(store_sql_fn fn, void *ctx)
{
    STORE_SQL(fn, ctx, SQL_MERGE_INSERT);
    STORE_SQL(fn, ctx, SQL_MARK_MERGED);
    STORE_SQL(fn, ctx, SQL_MARK_UNMERGED);
    STORE_SQL(fn, ctx, SQL_MERGE_UNDONE);
    STORE_SQL(fn, ctx, SQL_MERGE_GET);
    STORE_SQL(fn, ctx, SQL_MERGE_BY_ID);
    fn("SQL_MERGES_OF_PERSON", SQL_MERGES_OF_PERSON, STORE_SQL_FEW, ctx);
    STORE_SQL(fn, ctx, SQL_PERSON_FIELDS);
    STORE_SQL(fn, ctx, SQL_TAKE_NUMBER);
    STORE_SQL(fn, ctx, SQL_DROP_NUMBER);
    STORE_SQL(fn, ctx, SQL_SEALED);
    STORE_SQL(fn, ctx, SQL_NUMBERS);
    fn("SQL_LIVE_PROGRAMS", SQL_LIVE_PROGRAMS, STORE_SQL_FEW, ctx);
}
