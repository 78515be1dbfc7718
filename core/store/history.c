/* history.c: plugin generations kept for open cases, which open case runs
 * under which, and the whole recorded history shadow replay reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/history.h"
#include "store/internal.h"

static const char SQL_GEN_KEEP[] =
    "INSERT INTO plugin_generations (id, hash, files, kept_at) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (id) DO UPDATE SET files = excluded.files, kept_at = excluded.kept_at, retired_at = NULL";
static const char SQL_GEN_RETIRE[] =
    "UPDATE plugin_generations SET retired_at = ?2, files = NULL WHERE id = ?1 AND retired_at IS NULL";
static const char SQL_GEN_KEPT[] =
    "SELECT id, hash, kept_at, files FROM plugin_generations WHERE retired_at IS NULL AND files IS NOT NULL"
    " ORDER BY kept_at, id";
static const char SQL_OPEN_GROUPS[] =
    "SELECT program, region, COALESCE(plugin_generation, ''), COUNT(*) FROM cases WHERE status <> 'ended'"
    " GROUP BY program, region, COALESCE(plugin_generation, '') ORDER BY program, region";
static const char SQL_OPEN_CASES[] =
    "SELECT " STORE_CASE_COLS " FROM cases WHERE status <> 'ended' AND program = ?1 AND region = ?2"
    " AND COALESCE(plugin_generation, '') = ?3 AND (?4 IS NULL OR id > ?4) ORDER BY id LIMIT ?5";
static const char SQL_CASES_MIGRATE[] =
    "UPDATE cases SET plugin_generation = ?1 WHERE status <> 'ended'"
    " AND (plugin_generation IS NULL OR plugin_generation <> ?1)";
static const char SQL_CASES_PIN[] =
    "UPDATE cases SET plugin_generation = ?1 WHERE status <> 'ended' AND (plugin_generation IS NULL OR"
    " plugin_generation NOT IN (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17))";
static const char SQL_DEADLINE_MOVE[] =
    "UPDATE deadlines SET due_on = ?4, label = COALESCE(?5, label) WHERE case_id = ?1 AND kind = ?2 AND due_on = ?3"
    " AND cleared_at IS NULL";
static const char SQL_DEADLINE_DROP[] =
    "UPDATE deadlines SET cleared_at = ?4 WHERE case_id = ?1 AND kind = ?2 AND due_on = ?3 AND cleared_at IS NULL";
static const char SQL_CASES_ALL[] =
    "SELECT " STORE_CASE_COLS " FROM cases WHERE (?1 IS NULL OR id > ?1) ORDER BY id LIMIT ?2";
static const char SQL_DEADLINE_HISTORY[] =
    "SELECT kind, label, due_on, plugin, created_at, cleared_at FROM deadlines WHERE case_id = ?1"
    " ORDER BY created_at, id";

void generation_row_free(generation_row *g)
{
    free(g->mem);
    json_decref(g->files);
    memset(g, 0, sizeof *g);
}

static void generation_drop(void *row) { generation_row_free(row); }

void generation_list_free(generation_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, generation_drop);
    memset(l, 0, sizeof *l);
}

int store_generation_keep(store_tx *tx, const char *id, const char *hash, json_t *files, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    char *text = json_dumps(files, JSON_COMPACT);
    if (!text) return store_oom(e);
    sqlite3_stmt *st = store_stmt(tx, SQL_GEN_KEEP, e);
    if (!st) {
        free(text);
        return -1;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    free(text);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "generation keep");
}

int store_generation_retire(store_tx *tx, const char *id, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, SQL_GEN_RETIRE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(tx, e, "generation retire");
}

static int generation_read(sqlite3_stmt *st, void *row)
{
    generation_row *g = row;
    const char **const f[] = {&g->id, &g->hash, &g->kept_at, NULL};
    g->mem = store_texts(st, f, 4);
    g->files = store_json_col(st, 3, 0);
    return g->mem && g->files ? 0 : -1;
}

int store_generations_kept(store_tx *tx, generation_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_GEN_KEPT, e);
    if (!st) return -1;
    void *items;
    if (store_rows(tx, st, -1, sizeof *out->items, generation_read, generation_drop, &items, &out->n, NULL, e,
                   "generations kept"))
        return -1;
    out->items = items;
    return 0;
}

void open_case_groups_free(open_case_groups *g)
{
    free(g->items);
    memset(g, 0, sizeof *g);
}

static int group_read(sqlite3_stmt *st, void *row)
{
    open_case_group *g = row;
    str_copy(g->program, sizeof g->program, TEXT(st, 0) ? TEXT(st, 0) : "");
    str_copy(g->region, sizeof g->region, TEXT(st, 1) ? TEXT(st, 1) : "");
    str_copy(g->generation, sizeof g->generation, TEXT(st, 2) ? TEXT(st, 2) : "");
    g->n = sqlite3_column_int64(st, 3);
    return 0;
}

int store_open_case_groups(store_tx *tx, open_case_groups *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_OPEN_GROUPS, e);
    if (!st) return -1;
    void *items;
    if (store_rows(tx, st, -1, sizeof *out->items, group_read, NULL, &items, &out->n, NULL, e, "open cases"))
        return -1;
    out->items = items;
    return 0;
}

int store_open_cases(store_tx *tx, const char *program, const char *region, const char *generation, int limit,
                     const char *after, case_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_OPEN_CASES, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, program, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, region, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, generation ? generation : "", -1, SQLITE_STATIC);
    store_bind_opt(st, 4, after);
    sqlite3_bind_int(st, 5, limit + 1);
    void *items;
    if (store_rows(tx, st, limit, sizeof *out->items, store_case_read, NULL, &items, &out->n, &out->more, e,
                   "open cases"))
        return -1;
    out->items = items;
    if (out->n) str_copy(out->last, sizeof out->last, out->items[out->n - 1].id);
    return 0;
}

static int changes(store_tx *tx, sqlite3_stmt *st, long long *n, store_err *e, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_fail(tx, e, what);
    *n = sqlite3_changes(tx->db);
    return 0;
}

int store_cases_migrate(store_tx *tx, const char *to, long long *n, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, SQL_CASES_MIGRATE, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, to, -1, SQLITE_STATIC);
    return changes(tx, st, n, e, "cases migrate");
}

int store_cases_pin(store_tx *tx, const char *to, const char *const *loaded, int n_loaded, long long *n,
                    store_err *e)
{
    if (n_loaded < 1 || n_loaded > 16) return store_err_set(e, STORE_INTERNAL, "1 to 16 loaded generations");
    sqlite3_stmt *st = store_stmt(tx, SQL_CASES_PIN, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, to, -1, SQLITE_STATIC);
    /* the unused places repeat the first (a NULL would make NOT IN unknown) */
    for (int i = 0; i < 16; i++) sqlite3_bind_text(st, 2 + i, loaded[i < n_loaded ? i : 0], -1, SQLITE_STATIC);
    return changes(tx, st, n, e, "cases pin");
}

int store_deadline_reschedule(store_tx *tx, const char *case_id, const char *kind, const char *due_was,
                              const char *due_on, const char *label, long long *n, store_err *e)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    sqlite3_stmt *st = store_stmt(tx, due_on ? SQL_DEADLINE_MOVE : SQL_DEADLINE_DROP, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, due_was, -1, SQLITE_STATIC);
    if (due_on) {
        sqlite3_bind_text(st, 4, due_on, -1, SQLITE_STATIC);
        store_bind_opt(st, 5, label);
    } else {
        sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
    }
    return changes(tx, st, n, e, "deadline reschedule");
}

int store_cases_all(store_tx *tx, int limit, const char *after, case_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_CASES_ALL, e);
    if (!st) return -1;
    store_bind_opt(st, 1, after);
    sqlite3_bind_int(st, 2, limit + 1);
    void *items;
    if (store_rows(tx, st, limit, sizeof *out->items, store_case_read, NULL, &items, &out->n, &out->more, e,
                   "cases"))
        return -1;
    out->items = items;
    if (out->n) str_copy(out->last, sizeof out->last, out->items[out->n - 1].id);
    return 0;
}

static void hist_drop(void *row)
{
    deadline_hist_row *d = row;
    free(d->mem);
}

void deadline_hist_list_free(deadline_hist_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, hist_drop);
    memset(l, 0, sizeof *l);
}

static int hist_read(sqlite3_stmt *st, void *row)
{
    deadline_hist_row *d = row;
    const char **const f[] = {&d->kind, &d->label, &d->due_on, &d->plugin, &d->created_at, &d->cleared_at};
    d->mem = store_texts(st, f, 6);
    return d->mem ? 0 : -1;
}

int store_case_deadline_history(store_tx *tx, const char *case_id, deadline_hist_list *out, store_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(tx, SQL_DEADLINE_HISTORY, e);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    void *items;
    if (store_rows(tx, st, -1, sizeof *out->items, hist_read, hist_drop, &items, &out->n, NULL, e,
                   "deadline history"))
        return -1;
    out->items = items;
    return 0;
}

/* A reload's migration plan and a shadow replay walk the recorded history
 * in pages, on a thread of their own: off the request path. */
void store_sql_of_history(store_sql_fn fn, void *ctx)
{
    fn("SQL_GEN_KEEP", SQL_GEN_KEEP, STORE_SQL_TOOL, ctx);
    fn("SQL_GEN_RETIRE", SQL_GEN_RETIRE, STORE_SQL_TOOL, ctx);
    fn("SQL_GEN_KEPT", SQL_GEN_KEPT, STORE_SQL_TOOL, ctx);
    fn("SQL_OPEN_GROUPS", SQL_OPEN_GROUPS, STORE_SQL_TOOL, ctx);
    fn("SQL_OPEN_CASES", SQL_OPEN_CASES, STORE_SQL_TOOL, ctx);
    fn("SQL_CASES_MIGRATE", SQL_CASES_MIGRATE, STORE_SQL_TOOL, ctx);
    fn("SQL_CASES_PIN", SQL_CASES_PIN, STORE_SQL_TOOL, ctx);
    fn("SQL_DEADLINE_MOVE", SQL_DEADLINE_MOVE, STORE_SQL_TOOL, ctx);
    fn("SQL_DEADLINE_DROP", SQL_DEADLINE_DROP, STORE_SQL_TOOL, ctx);
    fn("SQL_CASES_ALL", SQL_CASES_ALL, STORE_SQL_TOOL, ctx);
    fn("SQL_DEADLINE_HISTORY", SQL_DEADLINE_HISTORY, STORE_SQL_TOOL, ctx);
}
