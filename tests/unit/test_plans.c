/*
 * test_plans.c: the cost of the store's queries does not grow with the
 * country. Every statement the store prepares on a request path (or in the
 * outbox worker's loop), static or built from the filters given, in every
 * shape its builder makes, is planned by SQLite (EXPLAIN QUERY PLAN)
 * against a migrated database: none may scan a table or sort for ORDER BY
 * (a page must come from an index walked in its order, so LIMIT stops the
 * walk). What a plan does not show is a filter applied to the rows an index
 * returns: each builder picks the index of the filter given for that
 * (its comments say which), and the indexes are chosen so that what is left
 * to filter is bounded by one organisation, person or case. No statistics are ever gathered (no ANALYZE), so these are the
 * plans production runs, whatever the size of its database. A statement
 * added to core/store/ and not listed by store_each_sql fails too.
 *
 * And what the built queries answer: name prefixes (Korean, NOCASE, the
 * successor string), pages by name, a district's cases merged from its dong
 * centres, deadline and audit cursors; and the counts /metrics keeps, across
 * commits and rollbacks.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "base/base.h"
#include "base/err.h"
#include "store/internal.h" /* white-box: the statement list, the statement cache */
#include "store/pii.h"
#include "store/records.h"
#include "store/store.h"

static char g_dir[64];
static char g_db[128];

/* ---------------------------------------------------------------- helpers */

typedef struct {
    char *name, *sql;
    store_sql_use use;
} listed;

static listed *g_list;
static size_t g_n;

static void collect(const char *name, const char *sql, store_sql_use use, void *ctx)
{
    (void)ctx;
    g_list = realloc(g_list, (g_n + 1) * sizeof *g_list);
    assert_non_null(g_list);
    g_list[g_n++] = (listed){strdup(name), strdup(sql), use};
}

static void list_free(void)
{
    for (size_t i = 0; i < g_n; i++) {
        free(g_list[i].name);
        free(g_list[i].sql);
    }
    free(g_list);
    g_list = NULL;
    g_n = 0;
}

static int write_unit(store_work_fn fn, void *arg)
{
    store_reply r = {0};
    err_t e = {0};
    store_err se = {0};
    int rc = store_write(NULL, fn, arg, &r, &e, &se);
    store_reply_clear(&r);
    err_clear(&e);
    return rc;
}

static int read_unit(store_work_fn fn, void *arg)
{
    store_reply r = {0};
    err_t e = {0};
    store_err se = {0};
    int rc = store_read(fn, arg, &r, &e, &se);
    store_reply_clear(&r);
    err_clear(&e);
    return rc;
}

static int work_org(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    org_row row;
    store_err se = {0};
    reply->status = 201;
    if (store_org_insert(tx, arg, &row, &se)) return -1;
    org_row_free(&row);
    return 0;
}

static void make_org(const char *id, const char *type, const char *region)
{
    org_in in = {.id = id, .name = "테스트 기관", .type = type, .region = region};
    assert_int_equal(write_unit(work_org, &in), 0);
}

static void make_principal(principal *p, const char *org, const char *type, const char *region)
{
    memset(p, 0, sizeof *p);
    snprintf(p->token_id, sizeof p->token_id, "tok_test");
    snprintf(p->user, sizeof p->user, "tester");
    snprintf(p->role, sizeof p->role, "worker");
    snprintf(p->org, sizeof p->org, "%s", org);
    snprintf(p->org_type, sizeof p->org_type, "%s", type);
    snprintf(p->region, sizeof p->region, "%s", region);
}

typedef struct {
    const principal *p;
    person_in in;
    person_row row;
} person_arg;

static int work_person(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    person_arg *a = arg;
    store_err se = {0};
    reply->status = 201;
    return store_person_insert(tx, a->p, &a->in, &a->row, &se);
}

static void make_person(const principal *p, const char *name, const char *birth, char id[ID_MAX])
{
    person_arg a = {.p = p, .in = {.name = name, .birth_date = birth, .sex = "F"}};
    assert_int_equal(write_unit(work_person, &a), 0);
    snprintf(id, ID_MAX, "%s", a.row.id);
    person_row_free(&a.row);
}

typedef struct {
    const principal *p;
    person_query q;
    person_list out;
} search_arg;

static int work_search(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    (void)e;
    search_arg *a = arg;
    store_err se = {0};
    return store_person_search(tx, a->p, &a->q, &a->out, &se);
}

/* Every page of a search, limit at a time: the names in order, joined by ','. */
static void search_all(const principal *p, const char *name, int limit, char *out, size_t outlen)
{
    char after[STORE_KEY_MAX] = "";
    size_t len = 0;
    out[0] = 0;
    for (int pages = 0; pages < 100; pages++) {
        search_arg a = {.p = p, .q = {.name = name, .limit = limit, .after = after[0] ? after : NULL}};
        assert_int_equal(read_unit(work_search, &a), 0);
        for (size_t i = 0; i < a.out.n; i++)
            len += (size_t)snprintf(out + len, outlen - len, "%s%s", len ? "," : "", a.out.items[i].name);
        bool more = a.out.more;
        snprintf(after, sizeof after, "%s", a.out.last);
        person_list_free(&a.out);
        if (!more) return;
    }
    fail_msg("search did not end");
}

typedef struct {
    case_row c;
} case_arg;

static int work_case(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    store_err se = {0};
    reply->status = 201;
    return store_case_insert(tx, &((case_arg *)arg)->c, &se);
}

static void make_case(const char *org, const char *person_id, const char *stage, char id[ID_MAX])
{
    case_arg a;
    memset(&a, 0, sizeof a);
    id_new("cas_", a.c.id);
    snprintf(a.c.person_id, sizeof a.c.person_id, "%s", person_id);
    snprintf(a.c.program, sizeof a.c.program, "integrated");
    snprintf(a.c.org, sizeof a.c.org, "%s", org);
    snprintf(a.c.region, sizeof a.c.region, "11590");
    snprintf(a.c.source, sizeof a.c.source, "walk_in");
    snprintf(a.c.stage, sizeof a.c.stage, "%s", stage);
    snprintf(a.c.status, sizeof a.c.status, "open");
    a.c.version = 1;
    time_rfc3339(time_now_ms(), a.c.opened_at);
    assert_int_equal(write_unit(work_case, &a), 0);
    snprintf(id, ID_MAX, "%s", a.c.id);
}

typedef struct {
    const principal *p;
    case_query q;
    case_list out;
} case_list_arg;

static int work_case_list(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    (void)e;
    case_list_arg *a = arg;
    store_err se = {0};
    return store_case_list(tx, a->p, &a->q, &a->out, &se);
}

/* ---------------------------------------------------------------- fixture */

static int group_setup(void **state)
{
    (void)state;
    if (base_init()) return -1;
    log_set_level(LOG_ERROR);
    snprintf(g_dir, sizeof g_dir, "/tmp/sarye-unit-plans-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_db, sizeof g_db, "%s/sarye.db", g_dir);
    char key[600], err[300];
    snprintf(key, sizeof key, "%s/sarye.key", g_dir);
    if (pii_load(key, true, err, sizeof err) < 0) return -1;
    store_opts o = {.path = g_db, .durability_full = false, .busy_timeout_ms = 2000};
    int v = 0;
    if (store_open(&o, err, sizeof err) || store_migrate(&v, err, sizeof err)) return -1;
    if (store_counts_start(err, sizeof err)) return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    store_close();
    char p[256];
    static const char *const files[] = {"sarye.db", "sarye.db-wal", "sarye.db-shm", "sarye.key", NULL};
    for (const char *const *f = files; *f; f++) {
        snprintf(p, sizeof p, "%s/%s", g_dir, *f);
        unlink(p);
    }
    rmdir(g_dir);
    return 0;
}

/* ---------------------------------------------------------------- plans */

/* Why a plan line is refused on the request path, or NULL. A SCAN is a
 * table (or index) read from its start: allowed only when nothing filters it
 * (no WHERE) and a LIMIT stops it, so every row read is a row returned (the
 * first page of everything, in the table's own order). */
static const char *refused(const char *sql, const char *detail)
{
    /* A list whose one filter is the reader's scope (the audit trail, the
     * outbox: "WHERE /\*scoped*\/") walks in its own order too, each row
     * kept or not: its page costs what the reader's share of the rows makes
     * it (a system operator's: one row read a row returned). */
    bool ordered_walk = (!strstr(sql, " WHERE ") || strstr(sql, " WHERE /*scoped*/ ")) && strstr(sql, " LIMIT ");
    if (!strncmp(detail, "SCAN ", 5) && strncmp(detail, "SCAN CONSTANT ROW", 17) && detail[5] != '(' &&
        !ordered_walk)
        return "scans a table";
    if (strstr(detail, "USE TEMP B-TREE")) return "sorts (a temporary B-tree)";
    if (strstr(detail, "AUTOMATIC")) return "builds an automatic index per query";
    return NULL;
}

/* A write that reads the table it writes (INSERT ... SELECT ... FROM the
 * same table) first copies what it reads into a temporary table: a B-tree
 * built and dropped on every run, its pages allocated and freed on the
 * writer's thread. A plan does not show it; the program does. */
static const char *copies_what_it_reads(sqlite3 *db, const char *sql)
{
    if (strncmp(sql, "INSERT", 6) && strncmp(sql, "UPDATE", 6) && strncmp(sql, "DELETE", 6)) return NULL;
    size_t len = strlen(sql) + 16;
    char *ex = malloc(len);
    assert_non_null(ex);
    snprintf(ex, len, "EXPLAIN %s", sql);
    sqlite3_stmt *st = NULL;
    const char *why = NULL;
    if (sqlite3_prepare_v2(db, ex, -1, &st, NULL) == SQLITE_OK)
        while (!why && sqlite3_step(st) == SQLITE_ROW)
            if (!strcmp((const char *)sqlite3_column_text(st, 1), "OpenEphemeral"))
                why = "copies the rows it reads into a temporary table (a write that reads what it writes)";
    sqlite3_finalize(st);
    free(ex);
    return why;
}

/* The plan of sql on db: its lines in plan (may be NULL), and why it is
 * refused on the request path (NULL: it is not). prepare_failed when it
 * does not prepare. */
static const char *plan_of(sqlite3 *db, const char *sql, char *plan, size_t planlen, bool *prepare_failed)
{
    size_t len = strlen(sql) + 32, pl = 0;
    char *eqp = malloc(len);
    assert_non_null(eqp);
    snprintf(eqp, len, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st = NULL;
    *prepare_failed = sqlite3_prepare_v2(db, eqp, -1, &st, NULL) != SQLITE_OK;
    free(eqp);
    if (plan && planlen) plan[0] = 0;
    if (*prepare_failed) return "does not prepare";
    const char *why = NULL;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(st, 3);
        if (plan && pl < planlen) pl += (size_t)snprintf(plan + pl, planlen - pl, "    %s\n", detail);
        if (!why) why = refused(sql, detail);
    }
    sqlite3_finalize(st);
    if (!why) why = copies_what_it_reads(db, sql);
    return why;
}

/* The check itself can fail: the statements the issue measured are refused
 * (the deadlines' old cursor, `due_on || '.' || id > ?`, is a filter on an
 * index walked in order: a plan shows no fault, the page costs below do). */
static void test_the_check_refuses_what_the_issue_measured(void **state)
{
    (void)state;
    static const char *const before[] = {
        /* the case list: OR on the organisation, (? IS NULL OR ...) filters, a sort of all visible */
        "SELECT id FROM cases WHERE (org_id = ?20 OR (?21 = 1 AND org_id IN (SELECT id FROM orgs WHERE type = 'emd'"
        " AND region = ?22))) AND (?1 IS NULL OR org_id = ?1) AND (?2 IS NULL OR program = ?2)"
        " AND (?5 IS NULL OR id > ?5) ORDER BY id LIMIT ?6",
        /* the audit by person: the filters defeat audit_person */
        "SELECT seq FROM audit WHERE (?1 IS NULL OR person_id = ?1) AND (?2 IS NULL OR actor = ?2)"
        " AND (?4 IS NULL OR seq > CAST(?4 AS INTEGER)) ORDER BY seq LIMIT ?5",
        /* the person search: LIKE ... ESCAPE cannot use an index, the filters defeat the others */
        "SELECT id FROM persons WHERE (org_id = ?20 OR (?21 = 1 AND org_id IN (SELECT id FROM orgs WHERE type = 'emd'"
        " AND region = ?22))) AND (?2 IS NULL OR name LIKE ?2 ESCAPE '\\') AND (?3 IS NULL OR birth_date = ?3)"
        " AND (?4 IS NULL OR rrn_hash = ?4) AND (?5 IS NULL OR id > ?5) ORDER BY id LIMIT ?6",
        /* the admin outbox by status */
        "SELECT id FROM outbox WHERE (?1 IS NULL OR status = ?1) ORDER BY id LIMIT ?3",
    };
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(g_db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (size_t i = 0; i < sizeof before / sizeof before[0]; i++) {
        bool bad_sql;
        const char *why = plan_of(db, before[i], NULL, 0, &bad_sql);
        assert_false(bad_sql);
        if (!why) fail_msg("not refused: %s", before[i]);
    }
    sqlite3_close(db);
}

static void test_every_request_statement_walks_an_index(void **state)
{
    (void)state;
    store_each_sql(collect, NULL);
    assert_true(g_n > 100);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(g_db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    int failures = 0, checked = 0;
    bool show = getenv("SARYE_PLANS_PRINT") != NULL; /* every plan, for reading */
    for (size_t i = 0; i < g_n; i++) {
        char plan[4096];
        bool bad_sql;
        const char *why = plan_of(db, g_list[i].sql, plan, sizeof plan, &bad_sql);
        if (bad_sql) {
            print_error("%s does not prepare: %s\n  %s\n", g_list[i].name, sqlite3_errmsg(db), g_list[i].sql);
            failures++;
            continue;
        }
        if (show) print_message("%s:\n  %s\n%s", g_list[i].name, g_list[i].sql, plan);
        if (g_list[i].use != STORE_SQL_REQUEST) continue;
        checked++;
        if (why) {
            print_error("%s %s:\n  %s\n%s", g_list[i].name, why, g_list[i].sql, plan);
            failures++;
        }
    }
    sqlite3_close(db);
    list_free();
    assert_true(checked > 100);
    assert_int_equal(failures, 0);
}

/* Every `static const char SQL_...[]` in core/store/ is listed. */
static void test_every_statement_is_listed(void **state)
{
    (void)state;
    store_each_sql(collect, NULL);
    const char *src = getenv("SOURCE_DIR");
    if (!src) src = ".";
    char dirpath[1024];
    snprintf(dirpath, sizeof dirpath, "%s/core/store", src);
    DIR *d = opendir(dirpath);
    assert_non_null(d);
    struct dirent *de;
    int missing = 0, found = 0;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 3 || strcmp(de->d_name + n - 2, ".c")) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dirpath, de->d_name);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char line[1024];
        while (fgets(line, sizeof line, f)) {
            const char *at = strstr(line, "static const char SQL_");
            if (!at) continue;
            at += strlen("static const char ");
            char name[128];
            size_t k = 0;
            while (at[k] && at[k] != '[' && k + 1 < sizeof name) {
                name[k] = at[k];
                k++;
            }
            name[k] = 0;
            found++;
            bool listed_ = false;
            for (size_t i = 0; i < g_n && !listed_; i++) listed_ = !strcmp(g_list[i].name, name);
            if (!listed_) {
                print_error("%s (%s) is not listed by store_each_sql: add it to its file's store_sql_of_*\n", name,
                            de->d_name);
                missing++;
            }
        }
        fclose(f);
    }
    closedir(d);
    list_free();
    assert_true(found > 50);
    assert_int_equal(missing, 0);
}

/* ---------------------------------------------------------------- answers */

static void test_name_prefix_is_an_index_range(void **state)
{
    (void)state;
    principal p;
    make_org("plan_emd_names", "emd", "11590");
    make_principal(&p, "plan_emd_names", "emd", "11590");
    /* 홍 U+D64D; 홎 U+D64E is the next syllable and must not match 홍 */
    static const char *const names[] = {"홍길동", "홎", "홍", "김철수", "홍길순", "Kim Mi-na", "kimberly", "KIMURA",
                                        "@home", "[bracket", "홍길동", "가", "힣힣"};
    char id[ID_MAX];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) make_person(&p, names[i], "1980-01-01", id);
    char got[1024];
    search_all(&p, "홍", 50, got, sizeof got);
    assert_string_equal(got, "홍,홍길동,홍길동,홍길순");
    search_all(&p, "홍", 1, got, sizeof got); /* page by page, through names that repeat */
    assert_string_equal(got, "홍,홍길동,홍길동,홍길순");
    search_all(&p, "홍길", 2, got, sizeof got);
    assert_string_equal(got, "홍길동,홍길동,홍길순");
    search_all(&p, "홍길동", 1, got, sizeof got);
    assert_string_equal(got, "홍길동,홍길동");
    /* ASCII letters in either case, as LIKE matched them */
    search_all(&p, "kim", 50, got, sizeof got);
    assert_string_equal(got, "Kim Mi-na,kimberly,KIMURA");
    search_all(&p, "KIM", 2, got, sizeof got);
    assert_string_equal(got, "Kim Mi-na,kimberly,KIMURA");
    /* '@' + 1 is 'A', which NOCASE folds away: the range must not take in [ */
    search_all(&p, "@", 50, got, sizeof got);
    assert_string_equal(got, "@home");
    /* the last syllable of the block: its successor is past it */
    search_all(&p, "힣", 50, got, sizeof got);
    assert_string_equal(got, "힣힣");
    search_all(&p, "없는이름", 50, got, sizeof got);
    assert_string_equal(got, "");
    /* LIKE's own characters are plain characters of a prefix */
    search_all(&p, "%", 50, got, sizeof got);
    assert_string_equal(got, "");
}

static void test_district_pages_merge_its_dong_centres(void **state)
{
    (void)state;
    make_org("plan_district", "district", "22222");
    make_org("plan_emd_a", "emd", "22222");
    make_org("plan_emd_b", "emd", "22222");
    make_org("plan_emd_other", "emd", "33333");
    principal d, a, b, o;
    make_principal(&d, "plan_district", "district", "22222");
    make_principal(&a, "plan_emd_a", "emd", "22222");
    make_principal(&b, "plan_emd_b", "emd", "22222");
    make_principal(&o, "plan_emd_other", "emd", "33333");
    const principal *who[] = {&a, &b, &d, &o, &a, &b, &a, &o, &d, &b};
    char ids[10][ID_MAX], pid[ID_MAX];
    for (int i = 0; i < 10; i++) {
        make_person(who[i], "이서준", "1990-02-02", pid);
        make_case(who[i]->org, pid, i % 3 == 0 ? "intake" : "discovery", ids[i]);
    }
    /* the district: its own and its dong centres' (8 of 10), by id, in pages of 3 */
    char after[STORE_KEY_MAX] = "", prev[ID_MAX] = "";
    int seen = 0;
    for (int pages = 0; pages < 10; pages++) {
        case_list_arg arg = {.p = &d, .q = {.limit = 3, .after = after[0] ? after : NULL}};
        assert_int_equal(read_unit(work_case_list, &arg), 0);
        for (size_t i = 0; i < arg.out.n; i++) {
            assert_true(strcmp(prev, arg.out.items[i].id) < 0);
            assert_string_not_equal(arg.out.items[i].org, "plan_emd_other");
            snprintf(prev, sizeof prev, "%s", arg.out.items[i].id);
            seen++;
        }
        bool more = arg.out.more;
        snprintf(after, sizeof after, "%s", arg.out.last);
        case_list_free(&arg.out);
        if (!more) break;
    }
    assert_int_equal(seen, 8);
    /* filtered by stage and by one of its dong centres */
    case_list_arg arg = {.p = &d, .q = {.limit = 50, .stage = "intake", .org = "plan_emd_b"}};
    assert_int_equal(read_unit(work_case_list, &arg), 0);
    assert_int_equal(arg.out.n, 1); /* b's are 1, 5 and 9; only 9 is at intake */
    assert_string_equal(arg.out.items[0].id, ids[9]);
    case_list_free(&arg.out);
    /* an organisation the district does not see: nothing */
    case_list_arg other = {.p = &d, .q = {.limit = 50, .org = "plan_emd_other"}};
    assert_int_equal(read_unit(work_case_list, &other), 0);
    assert_int_equal(other.out.n, 0);
    case_list_free(&other.out);
    /* a dong centre sees its own only */
    case_list_arg own = {.p = &a, .q = {.limit = 50}};
    assert_int_equal(read_unit(work_case_list, &own), 0);
    assert_int_equal(own.out.n, 3);
    case_list_free(&own.out);
}

/* ---------------------------------------------------------------- page costs
 * A page's cost, counted as SQLite counts it (virtual-machine steps of
 * every statement the page ran: deterministic, unlike a clock), is the same
 * at the first page and deep in the list, and does not grow with the rows
 * of other organisations. This sees what a plan cannot: rows an index
 * returns that a filter then drops. */

#define PC_X "cost_emd_x"     /* the organisation whose pages are read */
#define PC_Y "cost_emd_y"     /* another dong centre of the same district */
#define PC_D "cost_district"  /* their district */
#define PC_Z "cost_emd_other" /* elsewhere: rows that must cost nothing */
#define PC_ROWS 240

static char g_pc_person[ID_MAX], g_pc_case[ID_MAX];
static principal g_pc_x, g_pc_d;

typedef struct {
    int i, n;
    const char *org;
} fill_arg;

/* A unit that writes n cases (each with its person, a deadline, events and
 * audit records, a referral and an outbox message) for org. */
static int work_fill(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    fill_arg *a = arg;
    store_err se = {0};
    principal p;
    make_principal(&p, a->org, "emd", strcmp(a->org, PC_Z) ? "44444" : "55555");
    for (int k = 0; k < a->n; k++) {
        int i = a->i + k;
        char name[64];
        snprintf(name, sizeof name, "%s%04d", i % 3 ? "김민수" : "이영희", i);
        person_in in = {.name = name, .birth_date = "1960-05-05", .sex = "M"};
        person_row pr;
        if (store_person_insert(tx, &p, &in, &pr, &se)) return -1;
        case_row c;
        memset(&c, 0, sizeof c);
        id_new("cas_", c.id);
        snprintf(c.person_id, sizeof c.person_id, "%s", pr.id);
        snprintf(c.program, sizeof c.program, "integrated");
        snprintf(c.org, sizeof c.org, "%s", a->org);
        snprintf(c.region, sizeof c.region, "%s", p.region);
        snprintf(c.source, sizeof c.source, "walk_in");
        snprintf(c.stage, sizeof c.stage, "%s", i % 2 ? "intake" : "planning");
        snprintf(c.status, sizeof c.status, "open");
        c.version = 1;
        time_rfc3339(time_now_ms(), c.opened_at);
        char due[16];
        snprintf(due, sizeof due, "2031-%02d-%02d", 1 + i % 12, 1 + i % 28);
        event_in ev = {.case_id = c.id, .actor = "filler", .type = "opened", .to_stage = c.stage};
        if (store_case_insert(tx, &c, &se) || store_event_append(tx, &ev, &se) ||
            store_deadline_set(tx, &c, "plan_due", "계획 수립", due, NULL, &se))
            return -1;
        bool mine = !strcmp(a->org, PC_X);
        if (!g_pc_person[0] && mine) {
            snprintf(g_pc_person, sizeof g_pc_person, "%s", pr.id);
            snprintf(g_pc_case, sizeof g_pc_case, "%s", c.id);
        }
        /* the audit: the chosen person's records among everyone's */
        audit_entry au = {.actor = mine ? "kim" : "lee", .org = a->org, .role = "worker", .action = "GET /v1/cases/{id}",
                          .person_id = mine && g_pc_person[0] ? g_pc_person : pr.id, .case_id = c.id,
                          .request_id = "req", .status = 200};
        if (store_audit_append(tx, &au, &se)) return -1;
        /* the chosen case's history grows */
        event_in more = {.case_id = mine && g_pc_case[0] ? g_pc_case : c.id, .actor = "filler", .type = "note"};
        if (store_event_append(tx, &more, &se)) return -1;
        /* referrals: received by X from Z, and between others */
        json_t *snap = json_object();
        referral_in r = {.person_id = pr.id, .from_org = a->org, .to_org = mine ? PC_Y : PC_X, .reason = "의뢰",
                         .opinion = "의견", .by = "kim", .snapshot = snap};
        char rid[ID_MAX], mid[ID_MAX];
        int rc = store_referral_insert(tx, &r, rid, &se);
        /* outbox: every other one dead */
        if (!rc) rc = store_outbox_enqueue(tx, "cost-agency", rid, "referral", snap, mid, &se);
        json_decref(snap);
        outbox_result res = {.id = mid, .status = i % 2 ? "dead" : "delivered", .attempts = 1};
        person_row_free(&pr);
        if (rc || store_outbox_result(tx, &res, &se)) return -1;
    }
    reply->status = 200;
    return 0;
}

static void fill(const char *org, int n)
{
    for (int i = 0; i < n; i += 60) {
        fill_arg a = {.i = i, .n = n - i < 60 ? n - i : 60, .org = org};
        if (write_unit(work_fill, &a)) fail_msg("fill %s", org);
    }
}

/* One page of a list, after the key given: rows, the last key, more. */
typedef int (*page_fn)(store_tx *tx, const char *after, size_t *n, char last[STORE_KEY_MAX], bool *more);

static int page_cases_district(store_tx *tx, const char *after, size_t *n, char *last, bool *more)
{
    store_err se = {0};
    case_list l;
    case_query q = {.limit = 10, .after = after};
    if (store_case_list(tx, &g_pc_d, &q, &l, &se)) return -1;
    *n = l.n, *more = l.more;
    snprintf(last, STORE_KEY_MAX, "%s", l.last);
    case_list_free(&l);
    return 0;
}

static int page_cases_stage(store_tx *tx, const char *after, size_t *n, char *last, bool *more)
{
    store_err se = {0};
    case_list l;
    case_query q = {.limit = 10, .after = after, .stage = "intake", .status = "open"};
    if (store_case_list(tx, &g_pc_x, &q, &l, &se)) return -1;
    *n = l.n, *more = l.more;
    snprintf(last, STORE_KEY_MAX, "%s", l.last);
    case_list_free(&l);
    return 0;
}

static int page_persons_name(store_tx *tx, const char *after, size_t *n, char *last, bool *more)
{
    store_err se = {0};
    person_list l;
    person_query q = {.limit = 10, .after = after, .name = "김민"};
    if (store_person_search(tx, &g_pc_d, &q, &l, &se)) return -1;
    *n = l.n, *more = l.more;
    snprintf(last, STORE_KEY_MAX, "%s", l.last);
    person_list_free(&l);
    return 0;
}

static int page_persons_birth(store_tx *tx, const char *after, size_t *n, char *last, bool *more)
{
    store_err se = {0};
    person_list l;
    person_query q = {.limit = 10, .after = after, .birth_date = "1960-05-05"};
    if (store_person_search(tx, &g_pc_x, &q, &l, &se)) return -1;
    *n = l.n, *more = l.more;
    snprintf(last, STORE_KEY_MAX, "%s", l.last);
    person_list_free(&l);
    return 0;
}

static int page_deadlines(store_tx *tx, const char *after, size_t *n, char *last, bool *more)
{
    store_err se = {0};
    deadline_list l;
    deadline_query q = {.org = PC_X, .limit = 10, .after = after, .kind = "plan_due"};
    if (store_deadline_list(tx, &q, &l, &se)) return -1;
    *n = l.n, *more = l.more;
    snprintf(last, STORE_KEY_MAX, "%s", l.last);
    deadline_list_free(&l);
    return 0;
}

static int page_audit_person(store_tx *tx, const char *after, size_t *n, char *last, bool *more)
{
    store_err se = {0};
    audit_list l;
    audit_query q = {.person_id = g_pc_person, .limit = 10, .after = after, .since = "2000-01-01"};
    if (store_audit_list(tx, &g_pc_x, &q, &l, &se)) return -1;
    *n = l.n, *more = l.more;
    snprintf(last, STORE_KEY_MAX, "%s", l.last);
    audit_list_free(&l);
    return 0;
}

static int page_audit_since(store_tx *tx, const char *after, size_t *n, char *last, bool *more)
{
    store_err se = {0};
    audit_list l;
    audit_query q = {.limit = 10, .after = after, .since = "2000-01-01"};
    principal op; /* a system operator oversees every record */
    make_principal(&op, "", "", "");
    snprintf(op.role, sizeof op.role, "operator");
    if (store_audit_list(tx, &op, &q, &l, &se)) return -1;
    *n = l.n, *more = l.more;
    snprintf(last, STORE_KEY_MAX, "%s", l.last);
    audit_list_free(&l);
    return 0;
}

static int page_audit_actor(store_tx *tx, const char *after, size_t *n, char *last, bool *more)
{
    store_err se = {0};
    audit_list l;
    audit_query q = {.actor = "kim", .limit = 10, .after = after};
    if (store_audit_list(tx, &g_pc_x, &q, &l, &se)) return -1;
    *n = l.n, *more = l.more;
    snprintf(last, STORE_KEY_MAX, "%s", l.last);
    audit_list_free(&l);
    return 0;
}

static int page_cases_overdue(store_tx *tx, const char *after, size_t *n, char *last, bool *more)
{
    store_err se = {0};
    case_list l;
    case_query q = {.limit = 10, .after = after, .overdue_on = "2032-01-01"};
    if (store_case_list(tx, &g_pc_x, &q, &l, &se)) return -1;
    *n = l.n, *more = l.more;
    snprintf(last, STORE_KEY_MAX, "%s", l.last);
    case_list_free(&l);
    return 0;
}

static int page_events(store_tx *tx, const char *after, size_t *n, char *last, bool *more)
{
    store_err se = {0};
    event_list l;
    if (store_event_list(tx, g_pc_case, 10, after, &l, &se)) return -1;
    *n = l.n, *more = l.more;
    snprintf(last, STORE_KEY_MAX, "%s", l.last);
    event_list_free(&l);
    return 0;
}

static int page_inbox(store_tx *tx, const char *after, size_t *n, char *last, bool *more)
{
    store_err se = {0};
    referral_list l;
    referral_query q = {.inbound = true, .limit = 10, .after = after};
    if (store_referral_list(tx, &g_pc_x, &q, &l, &se)) return -1;
    *n = l.n, *more = l.more;
    snprintf(last, STORE_KEY_MAX, "%s", l.last);
    referral_list_free(&l);
    return 0;
}

static int page_outbox_dead(store_tx *tx, const char *after, size_t *n, char *last, bool *more)
{
    store_err se = {0};
    outbox_list l;
    principal op;
    make_principal(&op, "", "", "");
    snprintf(op.role, sizeof op.role, "operator");
    if (store_outbox_list(tx, &op, "dead", 10, after, &l, &se)) return -1;
    *n = l.n, *more = l.more;
    snprintf(last, STORE_KEY_MAX, "%s", l.last);
    outbox_list_free(&l);
    return 0;
}

static int page_export(store_tx *tx, const char *after, size_t *n, char *last, bool *more)
{
    store_err se = {0};
    case_export_list l;
    if (store_case_export(tx, &g_pc_d, 10, after, &l, &se)) return -1;
    *n = l.n, *more = l.more;
    snprintf(last, STORE_KEY_MAX, "%s", l.last);
    case_export_list_free(&l);
    return 0;
}

/* Virtual-machine steps of every statement the connection ran since the last call. */
static long long vm_steps(store_tx *tx)
{
    long long n = 0;
    for (size_t i = 0; i < tx->conn->n_cache; i++)
        n += sqlite3_stmt_status(tx->conn->cache[i].stmt, SQLITE_STMTSTATUS_VM_STEP, 1);
    return n;
}

typedef struct {
    page_fn page;
    long long first, worst;
    int pages;
    size_t rows;
} cost_arg;

static int work_costs(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    cost_arg *a = arg;
    char after[STORE_KEY_MAX] = "";
    for (a->pages = 0; a->pages < 1000; a->pages++) {
        size_t n;
        bool more;
        char last[STORE_KEY_MAX];
        vm_steps(tx);
        if (a->page(tx, after[0] ? after : NULL, &n, last, &more)) return err_set(e, 500, "page", "page failed"), -1;
        long long steps = vm_steps(tx);
        a->rows += n;
        if (a->pages == 0) a->first = steps;
        else if (more && steps > a->worst) a->worst = steps; /* the last page may be short */
        snprintf(after, sizeof after, "%s", last);
        if (!more) break;
    }
    return 0;
}

static void test_pages_cost_the_same_deep_and_shallow(void **state)
{
    (void)state;
    make_org(PC_D, "district", "44444");
    make_org(PC_X, "emd", "44444");
    make_org(PC_Y, "emd", "44444");
    make_org(PC_Z, "emd", "55555");
    make_principal(&g_pc_x, PC_X, "emd", "44444");
    make_principal(&g_pc_d, PC_D, "district", "44444");
    fill(PC_X, PC_ROWS);
    fill(PC_Y, PC_ROWS / 2);
    fill(PC_Z, PC_ROWS * 2); /* the rest of the country */
    static const struct {
        const char *what;
        page_fn page;
        size_t rows; /* expected */
    } lists[] = {
        {"cases of a district", page_cases_district, PC_ROWS + PC_ROWS / 2},
        {"cases by stage and status", page_cases_stage, PC_ROWS / 2},
        {"persons by name prefix (district)", page_persons_name, (PC_ROWS + PC_ROWS / 2) * 2 / 3},
        {"persons by birth date", page_persons_birth, PC_ROWS},
        {"deadlines of kind", page_deadlines, PC_ROWS},
        {"cases overdue", page_cases_overdue, PC_ROWS},
        {"audit of a person since", page_audit_person, PC_ROWS},
        {"audit since", page_audit_since, PC_ROWS + PC_ROWS / 2 + PC_ROWS * 2},
        {"audit of an actor", page_audit_actor, PC_ROWS},
        {"events of a case", page_events, PC_ROWS + 1},
        {"referrals received", page_inbox, PC_ROWS / 2 + PC_ROWS * 2},
        {"outbox dead", page_outbox_dead, (PC_ROWS + PC_ROWS / 2 + PC_ROWS * 2) / 2},
        {"export of a district", page_export, PC_ROWS + PC_ROWS / 2},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        cost_arg a = {.page = lists[i].page};
        assert_int_equal(read_unit(work_costs, &a), 0);
        print_message("%-36s %4zu rows, %3d pages: first page %lld steps, the worst after it %lld\n", lists[i].what,
                      a.rows, a.pages + 1, a.first, a.worst);
        if (a.rows != lists[i].rows) {
            print_error("%s: %zu rows, expected %zu\n", lists[i].what, a.rows, lists[i].rows);
            bad++;
        }
        /* deep pages may look up their cursor: a few steps more, never a walk from the start */
        if (a.pages < 10 || a.worst > 2 * a.first + 100) {
            print_error("%s: a deep page costs %lld steps, the first %lld\n", lists[i].what, a.worst, a.first);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* ---------------------------------------------------------------- counts */

typedef struct {
    const char *case_id, *org, *kind, *due;
    bool fail; /* roll the unit back after its writes */
    bool clear;
} deadline_arg;

static int work_deadline(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    deadline_arg *a = arg;
    store_err se = {0};
    case_row c;
    memset(&c, 0, sizeof c);
    snprintf(c.id, sizeof c.id, "%s", a->case_id);
    snprintf(c.org, sizeof c.org, "%s", a->org);
    int rc = a->clear ? store_deadline_clear(tx, a->case_id, NULL, &se)
                      : store_deadline_set(tx, &c, a->kind, "기한", a->due, NULL, &se);
    char id[ID_MAX];
    json_t *payload = json_object();
    if (!rc) rc = store_outbox_enqueue(tx, "plan-agency", a->case_id, "test", payload, id, &se);
    json_decref(payload);
    if (rc) return -1;
    if (a->fail) return err_set(e, 409, "test_rollback", "rolled back"), -1;
    reply->status = 200;
    return 0;
}

static long long overdue_of(const char *kind, const char *today)
{
    overdue_counts c;
    assert_int_equal(store_overdue_counts(today, &c), 0);
    long long n = -1;
    for (size_t i = 0; i < c.n; i++)
        if (!strcmp(c.items[i].kind, kind)) n = c.items[i].n;
    free(c.items);
    return n;
}

static long long queued_of(const char *agency)
{
    outbox_counts c;
    assert_int_equal(store_outbox_counts(&c), 0);
    long long n = -1;
    for (size_t i = 0; i < c.n; i++)
        if (!strcmp(c.items[i].agency, agency) && !strcmp(c.items[i].status, "queued")) n = c.items[i].n;
    free(c.items);
    return n;
}

static void test_counts_follow_commits_not_rollbacks(void **state)
{
    (void)state;
    principal p;
    make_org("plan_emd_counts", "emd", "11590");
    make_principal(&p, "plan_emd_counts", "emd", "11590");
    char pid[ID_MAX], c1[ID_MAX], c2[ID_MAX];
    make_person(&p, "박민지", "1970-03-03", pid);
    make_case(p.org, pid, "intake", c1);
    make_case(p.org, pid, "intake", c2);
    assert_int_equal(overdue_of("plan_count_kind", "2030-01-01"), -1);
    deadline_arg a = {.case_id = c1, .org = p.org, .kind = "plan_count_kind", .due = "2029-06-01"};
    assert_int_equal(write_unit(work_deadline, &a), 0);
    assert_int_equal(overdue_of("plan_count_kind", "2030-01-01"), 1);
    assert_int_equal(overdue_of("plan_count_kind", "2029-06-01"), 0); /* due that day: not yet overdue */
    assert_int_equal(queued_of("plan-agency"), 1);
    /* set again: the old one is cleared, a new one is open */
    a.due = "2029-07-01";
    assert_int_equal(write_unit(work_deadline, &a), 0);
    assert_int_equal(overdue_of("plan_count_kind", "2029-06-15"), 0);
    assert_int_equal(overdue_of("plan_count_kind", "2029-07-02"), 1);
    assert_int_equal(queued_of("plan-agency"), 2);
    /* a unit that rolls back changes no count */
    deadline_arg bad = {.case_id = c2, .org = p.org, .kind = "plan_count_kind", .due = "2029-01-01", .fail = true};
    assert_int_not_equal(write_unit(work_deadline, &bad), 0);
    assert_int_equal(overdue_of("plan_count_kind", "2029-07-02"), 1);
    assert_int_equal(queued_of("plan-agency"), 2);
    deadline_arg ok2 = {.case_id = c2, .org = p.org, .kind = "plan_count_kind", .due = "2029-01-01"};
    assert_int_equal(write_unit(work_deadline, &ok2), 0);
    assert_int_equal(overdue_of("plan_count_kind", "2029-07-02"), 2);
    /* cleared: every open one of the case */
    deadline_arg clear = {.case_id = c1, .org = p.org, .clear = true};
    assert_int_equal(write_unit(work_deadline, &clear), 0);
    assert_int_equal(overdue_of("plan_count_kind", "2029-07-02"), 1);
    assert_int_equal(queued_of("plan-agency"), 4);
    /* what a count of the rows says, read again from the database */
    char err[200];
    assert_int_equal(store_counts_start(err, sizeof err), 0);
    assert_int_equal(overdue_of("plan_count_kind", "2029-07-02"), 1);
    assert_int_equal(overdue_of("plan_count_kind", "2028-01-01"), 0);
    assert_int_equal(queued_of("plan-agency"), 4);
    /* more open deadlines than one page of a clearing (32): every one is
     * cleared and counted out */
    char c3[ID_MAX];
    make_case(p.org, pid, "intake", c3);
    char kinds[40][24];
    for (int i = 0; i < 40; i++) {
        snprintf(kinds[i], sizeof kinds[i], "plan_many_%02d", i);
        deadline_arg k = {.case_id = c3, .org = p.org, .kind = kinds[i], .due = "2029-01-01"};
        assert_int_equal(write_unit(work_deadline, &k), 0);
        assert_int_equal(overdue_of(kinds[i], "2029-07-02"), 1);
    }
    deadline_arg all = {.case_id = c3, .org = p.org, .clear = true};
    assert_int_equal(write_unit(work_deadline, &all), 0);
    assert_int_equal(store_counts_start(err, sizeof err), 0); /* the rows agree with the counts kept */
    for (int i = 0; i < 40; i++) assert_int_equal(overdue_of(kinds[i], "2029-07-02"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_check_refuses_what_the_issue_measured),
        cmocka_unit_test(test_every_request_statement_walks_an_index),
        cmocka_unit_test(test_every_statement_is_listed),
        cmocka_unit_test(test_name_prefix_is_an_index_range),
        cmocka_unit_test(test_district_pages_merge_its_dong_centres),
        cmocka_unit_test(test_pages_cost_the_same_deep_and_shallow),
        cmocka_unit_test(test_counts_follow_commits_not_rollbacks),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
