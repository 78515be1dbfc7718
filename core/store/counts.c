/* counts.c: the row counts /metrics shows, kept in memory so that a scrape
 * costs the same on any database: outbox messages by agency and status, and
 * open deadlines by kind and due date (overdue: due before today's business
 * date). They are read once at start (counts_load, on the writer thread
 * between batches) and then kept by the statements that change those rows:
 * each records its change in its connection (store_count), the writer
 * applies a batch's changes once the batch commits and drops a unit's when
 * the unit rolls back, so the counts are what a COUNT(*) would answer after
 * the last commit.
 *
 * Overdue deadlines depend on the date: the open deadlines are kept by kind
 * and due date, and the overdue sums by kind are recomputed only when the
 * business date changes (the deadline sweep: once a day, or when an admin
 * moves the test clock); in between a change adds to the sums directly. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

typedef struct {
    char a[64], b[32]; /* outbox: agency, status; deadline: kind, due_on */
    long long n;
} count_cell;

typedef struct {
    count_cell *cells; /* sorted by (a, b) */
    size_t n, cap;
} count_table;

typedef struct {
    char kind[64];
    long long overdue;
} overdue_sum;

static struct {
    pthread_mutex_t mu;
    bool loaded;
    count_table outbox, deadlines;
    char today[11]; /* the date the overdue sums are for ("" when not computed) */
    overdue_sum *sums;
    size_t n_sums, cap_sums;
} C = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const char SQL_COUNT_OUTBOX[] = "SELECT agency, status, COUNT(*) FROM outbox GROUP BY agency, status";
/* Over the partial index of open deadlines by kind and due date. */
static const char SQL_COUNT_DEADLINES[] =
    "SELECT kind, due_on, COUNT(*) FROM deadlines WHERE cleared_at IS NULL GROUP BY kind, due_on";

void store_sql_of_counts(store_sql_fn fn, void *ctx)
{
    fn("SQL_COUNT_OUTBOX", SQL_COUNT_OUTBOX, STORE_SQL_STARTUP, ctx);
    fn("SQL_COUNT_DEADLINES", SQL_COUNT_DEADLINES, STORE_SQL_STARTUP, ctx);
}

static int cell_cmp(const count_cell *c, const char *a, const char *b)
{
    int r = strcmp(c->a, a);
    return r ? r : strcmp(c->b, b);
}

/* The cell (a, b) of t, added (n = 0) when missing; NULL when out of memory. */
static count_cell *cell(count_table *t, const char *a, const char *b)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = cell_cmp(&t->cells[mid], a, b);
        if (r == 0) return &t->cells[mid];
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        count_cell *grown = realloc(t->cells, cap * sizeof *grown);
        if (!grown) return NULL;
        t->cells = grown;
        t->cap = cap;
    }
    memmove(&t->cells[lo + 1], &t->cells[lo], (t->n - lo) * sizeof *t->cells);
    t->n++;
    count_cell *c = &t->cells[lo];
    memset(c, 0, sizeof *c);
    str_copy(c->a, sizeof c->a, a);
    str_copy(c->b, sizeof c->b, b);
    return c;
}

static void cell_drop(count_table *t, count_cell *c)
{
    size_t i = (size_t)(c - t->cells);
    memmove(c, c + 1, (t->n - i - 1) * sizeof *c);
    t->n--;
}

static overdue_sum *sum_of(const char *kind)
{
    for (size_t i = 0; i < C.n_sums; i++)
        if (!strcmp(C.sums[i].kind, kind)) return &C.sums[i];
    if (C.n_sums == C.cap_sums) {
        size_t cap = C.cap_sums ? C.cap_sums * 2 : 8;
        overdue_sum *grown = realloc(C.sums, cap * sizeof *grown);
        if (!grown) return NULL;
        C.sums = grown;
        C.cap_sums = cap;
    }
    overdue_sum *s = &C.sums[C.n_sums++];
    memset(s, 0, sizeof *s);
    str_copy(s->kind, sizeof s->kind, kind);
    return s;
}

/* The sweep: the overdue sums for today, from the open deadlines. Every kind
 * ever seen keeps its line (at 0). */
static void sweep(const char *today)
{
    for (size_t i = 0; i < C.n_sums; i++) C.sums[i].overdue = 0;
    for (size_t i = 0; i < C.deadlines.n; i++) {
        const count_cell *c = &C.deadlines.cells[i];
        overdue_sum *s = sum_of(c->a);
        if (s && strcmp(c->b, today) < 0) s->overdue += c->n;
    }
    str_copy(C.today, sizeof C.today, today);
}

static void apply(const count_delta *d)
{
    count_table *t = d->family == COUNT_OUTBOX ? &C.outbox : &C.deadlines;
    count_cell *c = cell(t, d->a, d->b);
    if (!c) {
        C.today[0] = 0; /* out of memory: lose this change, recount the sums next time */
        return;
    }
    c->n += d->delta;
    if (d->family != COUNT_DEADLINE) return;
    if (C.today[0] && strcmp(d->b, C.today) < 0) {
        overdue_sum *s = sum_of(d->a);
        if (s) s->overdue += d->delta;
        else C.today[0] = 0;
    } else if (C.today[0]) {
        sum_of(d->a); /* a new kind gets its line */
    }
    if (c->n == 0) cell_drop(t, c); /* dates pass: keep only the ones with open deadlines */
}

int store_count(store_tx *tx, int family, const char *a, const char *b, long long delta, store_err *e)
{
    if (!tx->write || !delta) return 0;
    store_conn *c = tx->conn;
    if (c->n_pending == c->cap_pending) {
        size_t cap = c->cap_pending ? c->cap_pending * 2 : 16;
        count_delta *grown = realloc(c->pending, cap * sizeof *grown);
        if (!grown) return store_oom(e);
        c->pending = grown;
        c->cap_pending = cap;
    }
    count_delta *d = &c->pending[c->n_pending++];
    d->family = family;
    str_copy(d->a, sizeof d->a, a ? a : "");
    str_copy(d->b, sizeof d->b, b ? b : "");
    d->delta = delta;
    return 0;
}

void counts_unit_rollback(store_conn *c, size_t mark)
{
    if (mark < c->n_pending) c->n_pending = mark;
}

void counts_batch_done(store_conn *c, bool committed)
{
    if (committed && c->n_pending) {
        pthread_mutex_lock(&C.mu);
        if (C.loaded)
            for (size_t i = 0; i < c->n_pending; i++) apply(&c->pending[i]);
        pthread_mutex_unlock(&C.mu);
    }
    c->n_pending = 0;
}

static int load_table(sqlite3 *db, const char *sql, count_table *t, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "counts: %s", sqlite3_errmsg(db));
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        count_cell *c = cell(t, TEXT(st, 0), TEXT(st, 1));
        if (!c) {
            sqlite3_finalize(st);
            str_copy(err, errlen, "counts: out of memory");
            return -1;
        }
        c->n = sqlite3_column_int64(st, 2);
    }
    if (rc != SQLITE_DONE) snprintf(err, errlen, "counts: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int counts_load(sqlite3 *db, char *err, size_t errlen)
{
    count_table outbox = {0}, deadlines = {0};
    int rc = -1;
    /* One read snapshot for both. */
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "counts: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (load_table(db, SQL_COUNT_OUTBOX, &outbox, err, errlen) ||
        load_table(db, SQL_COUNT_DEADLINES, &deadlines, err, errlen))
        goto done;
    pthread_mutex_lock(&C.mu);
    free(C.outbox.cells);
    free(C.deadlines.cells);
    C.outbox = outbox;
    C.deadlines = deadlines;
    memset(&outbox, 0, sizeof outbox);
    memset(&deadlines, 0, sizeof deadlines);
    C.today[0] = 0;
    C.loaded = true;
    pthread_mutex_unlock(&C.mu);
    rc = 0;
done:
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    free(outbox.cells);
    free(deadlines.cells);
    return rc;
}

int store_outbox_counts(outbox_counts *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&C.mu);
    if (C.outbox.n && !(out->items = calloc(C.outbox.n, sizeof *out->items))) {
        pthread_mutex_unlock(&C.mu);
        return -1;
    }
    for (size_t i = 0; i < C.outbox.n; i++) {
        outbox_count *o = &out->items[out->n++];
        str_copy(o->agency, sizeof o->agency, C.outbox.cells[i].a);
        snprintf(o->status, sizeof o->status, "%.15s", C.outbox.cells[i].b);
        o->n = C.outbox.cells[i].n;
    }
    pthread_mutex_unlock(&C.mu);
    return 0;
}

static int by_kind(const void *x, const void *y)
{
    return strcmp(((const overdue_count *)x)->kind, ((const overdue_count *)y)->kind);
}

int store_overdue_counts(const char *today, overdue_counts *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&C.mu);
    if (!C.loaded) {
        pthread_mutex_unlock(&C.mu);
        return 0;
    }
    if (strcmp(C.today, today)) sweep(today);
    if (C.n_sums && !(out->items = calloc(C.n_sums, sizeof *out->items))) {
        pthread_mutex_unlock(&C.mu);
        return -1;
    }
    for (size_t i = 0; i < C.n_sums; i++) {
        overdue_count *o = &out->items[out->n++];
        str_copy(o->kind, sizeof o->kind, C.sums[i].kind);
        o->n = C.sums[i].overdue;
    }
    pthread_mutex_unlock(&C.mu);
    if (out->n) qsort(out->items, out->n, sizeof *out->items, by_kind);
    return 0;
}
