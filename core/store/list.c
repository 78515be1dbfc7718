/* list.c: building the SQL of a list from the filters given, binding
 * parameters and reading rows: a row's text in one block, JSON columns,
 * lists of strings, and pages of rows; and the list of every statement the
 * store prepares (for the query-plan test). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

void store_bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v) sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, i);
}

void store_bind_viewer(sqlite3_stmt *st, const principal *p)
{
    sqlite3_bind_text(st, 20, p->org, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 21, !strcmp(p->org_type, "district"));
    sqlite3_bind_text(st, 22, p->region, -1, SQLITE_TRANSIENT);
}

void store_bind_overseer(sqlite3_stmt *st, const principal *p)
{
    sqlite3_bind_int(st, 23, !strcmp(p->role, "operator"));
    sqlite3_bind_text(st, 24, p->org, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 25, !strcmp(p->org_type, "district"));
    sqlite3_bind_text(st, 26, p->region, -1, SQLITE_TRANSIENT);
}

bool store_oversees(const principal *p, const org_row *o)
{
    if (!strcmp(p->role, "operator")) return true;
    if (!strcmp(o->id, p->org)) return true;
    return !strcmp(p->org_type, "district") && !strcmp(o->region, p->region) && strcmp(o->type, "district") &&
           strcmp(o->type, "agency");
}

/* ---- built statements ---- */
void sql_add(sql_buf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->s && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *grown = realloc(b->s, cap);
        if (!grown) {
            b->oom = true;
            return;
        }
        b->s = grown;
        b->cap = cap;
    }
}

void sql_free(sql_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

void sql_arms(sql_buf *b, size_t n_orgs, void (*arm)(sql_buf *b, int k, const void *shape), const void *shape,
              const char *order, int limit_param)
{
    for (size_t k = 0; k < n_orgs; k++) {
        if (k) sql_add(b, " UNION ALL ");
        arm(b, (int)k, shape);
    }
    sql_add(b, " ORDER BY %s LIMIT ?%d", order, limit_param);
}

void store_bind_orgs(sqlite3_stmt *st, const char **orgs, size_t n)
{
    for (size_t k = 0; k < n; k++) sqlite3_bind_text(st, STORE_ORG_PARAM + (int)k, orgs[k], -1, SQLITE_STATIC);
}

/* A district's dong centres (the visibility rule of VISIBLE_TO). */
static const char SQL_VIEWER_ORGS[] = "SELECT id FROM orgs WHERE region = ?1 AND type = 'emd' AND id <> ?2 ORDER BY id";

int store_viewer_orgs(store_tx *tx, const principal *p, const char *only, const char ***orgs, size_t *n,
                      store_err *e)
{
    *orgs = NULL;
    *n = 0;
    const char **found = NULL;
    size_t n_found = 0;
    if (!strcmp(p->org_type, "district") && (!only || strcmp(only, p->org))) {
        sqlite3_stmt *st = store_stmt(tx, SQL_VIEWER_ORGS, e);
        if (!st) return -1;
        sqlite3_bind_text(st, 1, p->region, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, p->org, -1, SQLITE_TRANSIENT);
        if (store_strv(tx, st, &found, &n_found, e)) return -1;
    }
    /* One block: the pointers, then the strings. */
    size_t len = strlen(p->org) + 1;
    for (size_t i = 0; i < n_found; i++) len += strlen(found[i]) + 1;
    const char **vec = malloc((n_found + 2) * sizeof *vec + len);
    if (!vec) {
        free(found);
        return store_oom(e);
    }
    char *at = (char *)(vec + n_found + 2);
    size_t count = 0;
    for (size_t i = 0; i <= n_found; i++) {
        const char *id = i == 0 ? p->org : found[i - 1];
        if (only && strcmp(only, id)) continue;
        size_t l = strlen(id) + 1;
        memcpy(at, id, l);
        vec[count++] = at;
        at += l;
    }
    vec[count] = NULL;
    free(found);
    if (count > STORE_MAX_ARMS) {
        free(vec);
        log_msg(LOG_ERROR, "store: too many organisations in one view", " org=%s count=%zu", p->org, count);
        return store_err_set(e, STORE_INTERNAL, "internal store error");
    }
    *orgs = vec;
    *n = count;
    return 0;
}

void store_sql_of_list(store_sql_fn fn, void *ctx) { STORE_SQL(fn, ctx, SQL_VIEWER_ORGS); }

void store_each_sql(store_sql_fn fn, void *ctx)
{
    store_sql_of_store(fn, ctx);
    store_sql_of_list(fn, ctx);
    store_sql_of_orgs(fn, ctx);
    store_sql_of_people(fn, ctx);
    store_sql_of_cases(fn, ctx);
    store_sql_of_casework(fn, ctx);
    store_sql_of_referrals(fn, ctx);
    store_sql_of_outbox(fn, ctx);
    store_sql_of_audit(fn, ctx);
    store_sql_of_counts(fn, ctx);
    store_sql_of_keyring(fn, ctx);
    store_sql_of_merges(fn, ctx);
    store_sql_of_resources(fn, ctx);
    store_sql_of_lookups(fn, ctx);
    store_sql_of_history(fn, ctx);
}

char *store_texts(sqlite3_stmt *st, const char **const fields[], int n)
{
    size_t total = 1;
    for (int i = 0; i < n; i++)
        if (fields[i] && sqlite3_column_type(st, i) != SQLITE_NULL) total += (size_t)sqlite3_column_bytes(st, i) + 1;
    char *mem = malloc(total), *at = mem;
    if (!mem) return NULL;
    for (int i = 0; i < n; i++) {
        if (!fields[i]) continue;
        if (sqlite3_column_type(st, i) == SQLITE_NULL) {
            *fields[i] = NULL;
            continue;
        }
        /* column_text before column_bytes: the length is of the text form */
        const char *s = TEXT(st, i);
        size_t len = (size_t)sqlite3_column_bytes(st, i);
        memcpy(at, s ? s : "", len);
        at[len] = 0;
        *fields[i] = at;
        at += len + 1;
    }
    return mem;
}

json_t *store_json_col(sqlite3_stmt *st, int i, size_t flags)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) return NULL;
    return json_loads(TEXT(st, i), flags, NULL);
}

int store_next_seq(store_tx *tx, const char *sql, const char *key, long long *seq, store_err *e)
{
    sqlite3_stmt *st = store_stmt(tx, sql, e);
    if (!st) return -1;
    if (key) sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *seq = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : store_fail(tx, e, "next sequence number");
}

int store_strv(store_tx *tx, sqlite3_stmt *st, const char ***out, size_t *n, store_err *e)
{
    /* Collected as one text first: the pointers go in front once the count is known. */
    char *text = NULL;
    size_t len = 0, count = 0;
    int rc;
    *out = NULL;
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *s = TEXT(st, 0);
        size_t sl = strlen(s ? s : "");
        char *grown = realloc(text, len + sl + 1);
        if (!grown) {
            sqlite3_reset(st);
            free(text);
            return store_oom(e);
        }
        text = grown;
        memcpy(text + len, s ? s : "", sl + 1);
        len += sl + 1;
        count++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        free(text);
        return store_fail(tx, e, "list of strings");
    }
    const char **vec = malloc((count + 1) * sizeof *vec + len + 1);
    if (!vec) {
        free(text);
        return store_oom(e);
    }
    char *at = (char *)(vec + count + 1);
    if (len) memcpy(at, text, len);
    free(text);
    for (size_t i = 0; i < count; i++) {
        vec[i] = at;
        at += strlen(at) + 1;
    }
    vec[count] = NULL;
    *out = vec;
    *n = count;
    return 0;
}

void store_rows_free(void *items, size_t n, size_t size, void (*drop)(void *))
{
    if (drop)
        for (size_t i = 0; i < n; i++) drop((char *)items + i * size);
    free(items);
}

int store_rows(store_tx *tx, sqlite3_stmt *st, int limit, size_t size, int (*read)(sqlite3_stmt *, void *),
               void (*drop)(void *), void **items, size_t *n, bool *more, store_err *e, const char *what)
{
    char *rows = NULL;
    size_t count = 0, cap = 0;
    int rc;
    bool oom = false;
    *items = NULL;
    *n = 0;
    if (more) *more = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (limit >= 0 && count == (size_t)limit) {
            if (more) *more = true;
            break;
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char *grown = realloc(rows, ncap * size);
            if (!grown) {
                oom = true;
                break;
            }
            rows = grown;
            cap = ncap;
        }
        memset(rows + count * size, 0, size);
        if (read(st, rows + count * size)) {
            if (drop) drop(rows + count * size);
            oom = true;
            break;
        }
        count++;
    }
    sqlite3_reset(st);
    if (oom || (rc != SQLITE_ROW && rc != SQLITE_DONE)) {
        store_rows_free(rows, count, size, drop);
        return oom ? store_oom(e) : store_fail(tx, e, what);
    }
    *items = rows;
    *n = count;
    return 0;
}
