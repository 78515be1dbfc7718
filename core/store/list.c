/* list.c: binding parameters and reading rows: a row's text in one block,
 * JSON columns, lists of strings, and pages of rows. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

void store_bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v) sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, i);
}

void store_sql_add(store_sql *q, const char *part)
{
    size_t n = strlen(part);
    if (q->overflow || q->len + n + 1 > sizeof q->text) {
        q->overflow = true;
        return;
    }
    memcpy(q->text + q->len, part, n + 1);
    q->len += n;
}

/* The texts built so far, each once: a list that only grows. */
typedef struct built_sql {
    struct built_sql *next;
    char text[];
} built_sql;
static built_sql *g_built;
static pthread_mutex_t g_built_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *sql_interned(const char *text)
{
    pthread_mutex_lock(&g_built_mu);
    built_sql *b = g_built;
    while (b && strcmp(b->text, text)) b = b->next;
    if (!b && (b = malloc(sizeof *b + strlen(text) + 1))) {
        strcpy(b->text, text);
        b->next = g_built;
        g_built = b;
    }
    pthread_mutex_unlock(&g_built_mu);
    return b ? b->text : NULL;
}

sqlite3_stmt *store_stmt_built(store_tx *tx, const store_sql *q, store_err *e)
{
    if (q->overflow) {
        log_msg(LOG_ERROR, "store: a built statement is too long", " start=\"%.80s\"", q->text);
        store_err_set(e, STORE_INTERNAL, "internal store error");
        return NULL;
    }
    const char *sql = sql_interned(q->text);
    if (!sql) {
        store_err_set(e, STORE_INTERNAL, "out of memory");
        return NULL;
    }
    return store_stmt(tx, sql, e);
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
            return store_err_set(e, STORE_INTERNAL, "out of memory");
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
        return store_err_set(e, STORE_INTERNAL, "out of memory");
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
        return oom ? store_err_set(e, STORE_INTERNAL, "out of memory") : store_fail(tx, e, what);
    }
    *items = rows;
    *n = count;
    return 0;
}
