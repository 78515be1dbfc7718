/*
 * test_store.c: store/store.h and store/records.h on a real SQLite file in
 * a temporary folder — migrations, connection settings, the unit of work
 * (commit, rollback, Idempotency-Key replays), the resources (orgs, tokens,
 * persons, households, cases, events, deadlines) as typed rows, the
 * append-only event log, the store's own outcomes (store_kind) and how the
 * API answers them, and that SQLite stays inside core/store/.
 */
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
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
#include "process/process.h"
#include "render/render.h"
#include "store/internal.h" /* white-box: raw SQL through the statement cache */
#include "store/migrations.h"
#include "store/pii.h"
#include "store/records.h"
#include "store/store.h"

static char g_dir[64];
static char g_sub[128];
static char g_db[192];
static int g_version;

static principal PA, PB; /* workers of org A and org B */

#define ORG_A "test_emd_a"
#define ORG_B "test_emd_b"

/* ---------------------------------------------------------------- helpers */

static void open_store_with(bool full, int busy_ms)
{
    store_opts o = {.path = g_db, .durability_full = full, .busy_timeout_ms = busy_ms};
    char err[512] = "";
    if (store_open(&o, err, sizeof err)) fail_msg("store_open: %s", err);
    int v = 0;
    if (store_migrate(&v, err, sizeof err)) fail_msg("store_migrate: %s", err);
    assert_int_equal(v, g_version);
}

static void open_store(bool full) { open_store_with(full, 2000); }

/* A unit of work (or a read) whose own outcome the test reads from its
 * argument; what the store itself said comes back in *se (may be NULL). */
static int write_unit(store_work_fn fn, void *arg, store_err *se)
{
    store_reply r = {0};
    err_t e = {0};
    store_err mine = {0};
    int rc = store_write(NULL, fn, arg, &r, &e, se ? se : &mine);
    store_reply_clear(&r);
    err_clear(&e);
    return rc;
}

static int read_unit(store_work_fn fn, void *arg, store_err *se)
{
    store_reply r = {0};
    err_t e = {0};
    store_err mine = {0};
    int rc = store_read(fn, arg, &r, &e, se ? se : &mine);
    store_reply_clear(&r);
    err_clear(&e);
    return rc;
}

typedef struct {
    const org_in *in;
    const char *id;
    org_row row;
    store_err se;
} org_arg;

static int work_org_insert(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    org_arg *a = arg;
    reply->status = 201;
    return store_org_insert(tx, a->in, &a->row, &a->se);
}

static int work_org_get(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    org_arg *a = arg;
    reply->status = 200;
    return store_org_get(tx, a->id, &a->row, &a->se);
}

/* The SQL of a one-integer query; sql must be static (the statement cache key). */
typedef struct {
    const char *sql;
    const char *bind1; /* optional text for ?1 */
    long long value;
    char text[256];
} scalar_arg;

static int work_scalar(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    scalar_arg *a = arg;
    store_err se = {0};
    sqlite3_stmt *st = store_stmt(tx, a->sql, &se);
    if (!st) return err_set(e, 500, "internal_error", "%s", se.message), -1;
    if (a->bind1) sqlite3_bind_text(st, 1, a->bind1, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        err_set(e, 500, "internal_error", "%s: %s", a->sql, sqlite3_errmsg(tx->db));
        return -1;
    }
    a->value = sqlite3_column_int64(st, 0);
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(a->text, sizeof a->text, "%s", t ? (const char *)t : "");
    sqlite3_reset(st);
    return 0;
}

static long long scalar(const char *sql, const char *bind1, char *text, size_t textlen)
{
    scalar_arg a = {.sql = sql, .bind1 = bind1};
    store_reply r = {0};
    err_t e = {0};
    store_err se = {0};
    if (store_read(work_scalar, &a, &r, &e, &se)) fail_msg("%s: %s%s", sql, e.message, se.message);
    store_reply_clear(&r);
    if (text && textlen) {
        size_t n = strlen(a.text);
        if (n >= textlen) n = textlen - 1;
        memcpy(text, a.text, n);
        text[n] = 0;
    }
    return a.value;
}

static const char SQL_COUNT_ORGS_BY_ID[] = "SELECT COUNT(*) FROM orgs WHERE id = ?1";
static const char SQL_COUNT_EVENTS[] = "SELECT COUNT(*) FROM case_events WHERE case_id = ?1";
static const char SQL_COUNT_EVENT_NOTES[] =
    "SELECT COUNT(*) FROM case_events WHERE case_id = ?1 AND note = 'rewritten'";
static const char SQL_CASE_VERSION[] = "SELECT version FROM cases WHERE id = ?1";
static const char SQL_CASE_STAGE[] = "SELECT stage FROM cases WHERE id = ?1";

static bool org_exists(const char *id) { return scalar(SQL_COUNT_ORGS_BY_ID, id, NULL, 0) == 1; }

static void make_org(const char *id, const char *region, const char *program)
{
    if (org_exists(id)) return;
    json_t *progs = json_pack("[s]", program);
    org_in in = {.id = id, .name = "테스트 행정복지센터", .type = "emd", .region = region, .programs = progs};
    org_arg a = {.in = &in};
    if (write_unit(work_org_insert, &a, NULL)) fail_msg("org insert %s: %s", id, a.se.message);
    org_row_free(&a.row);
    json_decref(progs);
}

static void make_principal(principal *p, const char *org, const char *user, const char *region)
{
    memset(p, 0, sizeof *p);
    snprintf(p->token_id, sizeof p->token_id, "tok_test");
    snprintf(p->user, sizeof p->user, "%s", user);
    snprintf(p->role, sizeof p->role, "worker");
    snprintf(p->org, sizeof p->org, "%s", org);
    snprintf(p->region, sizeof p->region, "%s", region);
}

typedef struct {
    const principal *p;
    const person_in *in;
    const person_query *q;
    const char *id;
    const char *address;
    json_t *members;
    person_row person;
    person_list persons;
    household_row household;
    size_t bad_member;
    store_err se;
} person_arg;

static int work_person_insert(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    person_arg *a = arg;
    reply->status = 201;
    return store_person_insert(tx, a->p, a->in, &a->person, &a->se);
}

static int work_person_get(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    person_arg *a = arg;
    reply->status = 200;
    return store_person_get(tx, a->p, a->id, &a->person, &a->se);
}

static int work_person_search(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    person_arg *a = arg;
    reply->status = 200;
    return store_person_search(tx, a->p, a->q, &a->persons, &a->se);
}

static int work_person_visible(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    (void)e;
    person_arg *a = arg;
    return store_person_visible(tx, a->p, a->id, &a->se);
}

static int work_household_insert(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    person_arg *a = arg;
    reply->status = 201;
    return store_household_insert(tx, a->p, a->address, a->members, &a->household, &a->bad_member, &a->se);
}

static int work_household_get(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    person_arg *a = arg;
    reply->status = 200;
    return store_household_get(tx, a->p, a->id, &a->household, &a->se);
}

/* Inserts a person for p; returns its id in out. */
static void make_person(const principal *p, const char *name, const char *rrn, char out[ID_MAX])
{
    person_in in = {.name = name, .birth_date = "1990-01-01", .sex = "M", .rrn = rrn};
    person_arg a = {.p = p, .in = &in};
    if (write_unit(work_person_insert, &a, NULL)) fail_msg("person insert: %s", a.se.message);
    snprintf(out, ID_MAX, "%s", a.person.id);
    person_row_free(&a.person);
}

typedef struct {
    case_row *c;
    const principal *p;
    const char *id;
    int stale_version;
    bool update_ok;
    const char *note;
    case_row got;
    store_err se;
} case_arg;

static int work_case_open(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    case_arg *a = arg;
    if (store_case_insert(tx, a->c, &a->se)) return -1;
    event_in ev = {.case_id = a->c->id, .actor = "tester", .type = "opened", .to_stage = a->c->stage,
                   .generation = a->c->generation};
    if (store_event_append(tx, &ev, &a->se)) return -1;
    reply->status = 201;
    return 0;
}

static void make_case(const principal *p, const char *person_id, case_row *c)
{
    memset(c, 0, sizeof *c);
    id_new("cas_", c->id);
    snprintf(c->person_id, sizeof c->person_id, "%s", person_id);
    snprintf(c->program, sizeof c->program, "integrated");
    snprintf(c->org, sizeof c->org, "%s", p->org);
    snprintf(c->region, sizeof c->region, "%s", p->region);
    snprintf(c->source, sizeof c->source, "walk_in");
    snprintf(c->stage, sizeof c->stage, "discovery");
    snprintf(c->status, sizeof c->status, "open");
    snprintf(c->generation, sizeof c->generation, "0123456789abcdef");
    c->version = 1;
    time_rfc3339(time_now_ms(), c->opened_at);
    case_arg a = {.c = c, .p = p};
    if (write_unit(work_case_open, &a, NULL)) fail_msg("case insert: %s", a.se.message);
}

/* Organisation A, its worker PA, a person of the given name, and a case of
 * theirs: what most tests of cases start from. */
static void make_worker_case(const char *name, char person_id[ID_MAX], case_row *c)
{
    make_org(ORG_A, "11590", "integrated");
    make_principal(&PA, ORG_A, "worker.a", "11590");
    make_person(&PA, name, NULL, person_id);
    make_case(&PA, person_id, c);
}

static long long count_events(const char *case_id) { return scalar(SQL_COUNT_EVENTS, case_id, NULL, 0); }

/* ---------------------------------------------------------------- fixture */

static int group_setup(void **state)
{
    (void)state;
    if (base_init()) return -1;
    log_set_level(LOG_ERROR);
    snprintf(g_dir, sizeof g_dir, "/tmp/sarye-unit-store-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    /* A folder that does not exist yet: store_open creates it. */
    snprintf(g_sub, sizeof g_sub, "%s/data", g_dir);
    snprintf(g_db, sizeof g_db, "%s/sarye.db", g_sub);
    /* The key that seals identifiers, created on first use. */
    char key[600], err[300];
    snprintf(key, sizeof key, "%s/sarye.key", g_dir);
    if (pii_load(key, true, err, sizeof err) < 0) return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    store_close();
    char key[600];
    snprintf(key, sizeof key, "%s/sarye.key", g_dir);
    unlink(key);
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal", NULL};
    for (const char *const *s = suffixes; *s; s++) {
        char p[256];
        snprintf(p, sizeof p, "%s%s", g_db, *s);
        unlink(p);
    }
    rmdir(g_sub);
    rmdir(g_dir);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static const char SQL_MIGRATIONS[] = "SELECT COUNT(*) FROM schema_migrations";
static const char SQL_MAX_MIGRATION[] = "SELECT MAX(version) FROM schema_migrations";
static const char SQL_TABLES[] =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN"
    " ('orgs', 'org_programs', 'tokens', 'households', 'persons', 'cases', 'case_events', 'idempotency',"
    " 'deadlines')";

static void test_open_and_migrate(void **state)
{
    (void)state;
    assert_false(store_ready());
    store_opts o = {.path = g_db, .durability_full = true, .busy_timeout_ms = 2000};
    char err[512] = "";
    assert_int_equal(store_open(&o, err, sizeof err), 0);
    assert_int_equal(access(g_db, F_OK), 0); /* the folder was made and the file created */
    assert_false(store_ready());             /* open, not migrated yet */
    int v = -1;
    assert_int_equal(store_migrate(&v, err, sizeof err), 0);
    assert_true(v > 0);
    g_version = v;
    assert_true(store_ready());
    /* Idempotent: the second run applies nothing and says the same version. */
    int v2 = -1;
    assert_int_equal(store_migrate(&v2, err, sizeof err), 0);
    assert_int_equal(v2, v);
    assert_int_equal(scalar(SQL_MIGRATIONS, NULL, NULL, 0), v);
    assert_int_equal(scalar(SQL_MAX_MIGRATION, NULL, NULL, 0), v);
    assert_int_equal(scalar(SQL_TABLES, NULL, NULL, 0), 9);
}

static const char SQL_JOURNAL[] = "PRAGMA journal_mode";
static const char SQL_FK[] = "PRAGMA foreign_keys";
static const char SQL_SYNC[] = "PRAGMA synchronous";

static void test_pragmas_full(void **state)
{
    (void)state;
    char text[64];
    scalar(SQL_JOURNAL, NULL, text, sizeof text);
    assert_string_equal(text, "wal");
    assert_int_equal(scalar(SQL_FK, NULL, NULL, 0), 1);
    assert_int_equal(scalar(SQL_SYNC, NULL, NULL, 0), 2); /* FULL */
}

static void test_pragmas_normal(void **state)
{
    (void)state;
    store_close();
    assert_false(store_ready());
    open_store(false);
    char text[64];
    scalar(SQL_JOURNAL, NULL, text, sizeof text);
    assert_string_equal(text, "wal");
    assert_int_equal(scalar(SQL_FK, NULL, NULL, 0), 1);
    assert_int_equal(scalar(SQL_SYNC, NULL, NULL, 0), 1); /* NORMAL */
    /* Back to full for the rest; the data survived the reopen. */
    store_close();
    open_store(true);
    assert_int_equal(scalar(SQL_SYNC, NULL, NULL, 0), 2);
    assert_int_equal(scalar(SQL_MIGRATIONS, NULL, NULL, 0), g_version);
}

static void test_org_insert_and_duplicate(void **state)
{
    (void)state;
    json_t *progs = json_pack("[sss]", "integrated", "dream_start", "integrated");
    org_in in = {.id = "org_dup_test", .name = "상도1동 행정복지센터", .type = "emd", .region = "11590",
                 .programs = progs};
    org_arg a = {.in = &in};
    store_err se = {0};
    assert_int_equal(write_unit(work_org_insert, &a, &se), 0);
    assert_int_equal(se.kind, STORE_OK);
    assert_string_equal(a.row.id, "org_dup_test");
    assert_string_equal(a.row.name, "상도1동 행정복지센터");
    assert_string_equal(a.row.type, "emd");
    assert_string_equal(a.row.region, "11590");
    assert_non_null(a.row.created_at);
    assert_null(a.row.area);
    assert_int_equal(a.row.n_programs, 2); /* listed twice, kept once */
    assert_string_equal(a.row.programs[0], "dream_start");
    assert_string_equal(a.row.programs[1], "integrated");
    assert_null(a.row.programs[2]);
    org_row_free(&a.row);

    /* The same id again: STORE_DUPLICATE, the unit rolls back, the first one is untouched. */
    in.name = "another name";
    org_arg dup = {.in = &in};
    assert_int_equal(write_unit(work_org_insert, &dup, &se), -1);
    assert_int_equal(se.kind, STORE_OK); /* the store itself was fine: the unit failed */
    assert_int_equal(dup.se.kind, STORE_DUPLICATE);
    assert_non_null(strstr(dup.se.message, "org_dup_test"));
    org_arg got = {.id = "org_dup_test"};
    assert_int_equal(read_unit(work_org_get, &got, NULL), 0);
    assert_string_equal(got.row.name, "상도1동 행정복지센터");
    org_row_free(&got.row);

    /* Without an id, one is made. */
    org_in gen = {.name = "generated", .type = "district", .region = "11590", .area = "1159051000"};
    org_arg g = {.in = &gen};
    assert_int_equal(write_unit(work_org_insert, &g, NULL), 0);
    assert_int_equal(strncmp(g.row.id, "org_", 4), 0);
    assert_int_equal(strlen(g.row.id), 4 + 26);
    assert_int_equal(g.row.n_programs, 0);
    assert_string_equal(g.row.area, "1159051000");
    /* The API shows it with every field, area and programs included. */
    json_t *j = render_org(&g.row);
    assert_string_equal(json_string_value(json_object_get(j, "id")), g.row.id);
    assert_string_equal(json_string_value(json_object_get(j, "area")), "1159051000");
    assert_int_equal(json_array_size(json_object_get(j, "programs")), 0);
    json_decref(j);
    org_row_free(&g.row);

    /* Unknown org: STORE_NOT_FOUND. */
    org_arg none = {.id = "no_such_org"};
    assert_int_equal(read_unit(work_org_get, &none, NULL), -1);
    assert_int_equal(none.se.kind, STORE_NOT_FOUND);
    json_decref(progs);
}

typedef struct {
    const char *user, *role, *org, *token, *expires_at, *id;
    principal p;
    token_row row;
    const principal *overseer;
    token_list list;
    token_info info;
    store_err se;
} token_arg;

static int work_token_insert(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    token_arg *a = arg;
    reply->status = 201;
    token_in in = {.user = a->user, .role = a->role, .org = a->org, .created_by = "admin", .expires_at = a->expires_at};
    return store_token_insert(tx, &in, &a->row, &a->se);
}

static int work_token_list(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    (void)e;
    token_arg *a = arg;
    token_query q = {.limit = 500};
    return store_token_list(tx, a->overseer, &q, &a->list, &a->se);
}

static int work_token_revoke(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    token_arg *a = arg;
    reply->status = 200;
    return store_token_revoke(tx, a->id, "admin", &a->info, &a->se);
}

/* Whether the list holds the token id. */
static bool listed(const token_list *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].id, id)) return true;
    return false;
}

static int work_principal(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    (void)e;
    token_arg *a = arg;
    return store_principal_by_token(tx, a->token, &a->p, &a->se);
}

typedef struct {
    const char *bind1; /* text for ?1, or NULL */
    const char *sql;
    int rc;
    char msg[256];
} raw_arg;

static int work_raw(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    raw_arg *a = arg;
    store_err se = {0};
    sqlite3_stmt *st = store_stmt(tx, a->sql, &se);
    if (!st) return err_set(e, 500, "internal_error", "%s", se.message), -1;
    if (a->bind1) sqlite3_bind_text(st, 1, a->bind1, -1, SQLITE_STATIC);
    a->rc = sqlite3_step(st);
    snprintf(a->msg, sizeof a->msg, "%s", sqlite3_errmsg(tx->db));
    sqlite3_reset(st);
    reply->status = 200;
    return 0; /* commit whatever happened */
}

static const char SQL_REVOKE_TOKEN[] = "UPDATE tokens SET revoked_at = '2000-01-01T00:00:00.000Z' WHERE id = ?1";
static const char SQL_TOKEN_BY_HASH[] = "SELECT COUNT(*) FROM tokens WHERE hash = ?1";

static void test_tokens(void **state)
{
    (void)state;
    make_org(ORG_A, "11590", "integrated");
    token_arg a = {.user = "kim.worker", .role = "supervisor", .org = ORG_A};
    assert_int_equal(write_unit(work_token_insert, &a, NULL), 0);
    const char *tok = a.row.token;
    assert_int_equal(strncmp(tok, "sy_", 3), 0);
    assert_int_equal(strlen(tok), 46);
    assert_int_equal(strncmp(a.row.id, "tok_", 4), 0);
    assert_string_equal(a.row.user, "kim.worker");
    assert_string_equal(a.row.role, "supervisor");
    assert_string_equal(a.row.org, ORG_A);
    assert_true(a.row.created_at[0]);
    char token[TOKEN_MAX];
    snprintf(token, sizeof token, "%s", tok);
    char tok_id[ID_MAX];
    snprintf(tok_id, sizeof tok_id, "%s", a.row.id);

    /* Only the hash is stored. */
    char hash[SHA256_HEX];
    sha256_hex(token, strlen(token), hash);
    assert_int_equal(scalar(SQL_TOKEN_BY_HASH, hash, NULL, 0), 1);
    assert_int_equal(scalar(SQL_TOKEN_BY_HASH, token, NULL, 0), 0);

    /* The token resolves to its principal. */
    token_arg q = {.token = token};
    assert_int_equal(read_unit(work_principal, &q, NULL), 0);
    assert_string_equal(q.p.token_id, tok_id);
    assert_string_equal(q.p.user, "kim.worker");
    assert_string_equal(q.p.role, "supervisor");
    assert_string_equal(q.p.org, ORG_A);
    assert_string_equal(q.p.region, "11590");

    /* Unknown tokens: STORE_NOT_FOUND (the API's 401). */
    static const char *const unknown[] = {"sy_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", "not-a-token", NULL};
    for (const char *const *u = unknown; *u; u++) {
        token_arg x = {.token = *u};
        assert_int_equal(read_unit(work_principal, &x, NULL), -1);
        assert_int_equal(x.se.kind, STORE_NOT_FOUND);
    }
    /* One character off: not found too. */
    char off[TOKEN_MAX];
    snprintf(off, sizeof off, "%s", token);
    off[10] = off[10] == 'A' ? 'B' : 'A';
    token_arg x = {.token = off};
    assert_int_equal(read_unit(work_principal, &x, NULL), -1);
    assert_int_equal(x.se.kind, STORE_NOT_FOUND);

    assert_false(q.p.revoked);
    assert_int_equal(q.p.expires_ms, 0);

    /* A revoked token resolves as revoked (the API refuses it, saying so). */
    raw_arg rv = {.bind1 = tok_id, .sql = SQL_REVOKE_TOKEN};
    assert_int_equal(write_unit(work_raw, &rv, NULL), 0);
    assert_int_equal(rv.rc, SQLITE_DONE);
    q.se.kind = STORE_OK;
    assert_int_equal(read_unit(work_principal, &q, NULL), 0);
    assert_true(q.p.revoked);

    /* An expiry comes back in milliseconds; a system operator's token has no organisation. */
    token_arg ex = {.user = "op", .role = "operator", .expires_at = "2030-01-02T03:04:05.678Z"};
    assert_int_equal(write_unit(work_token_insert, &ex, NULL), 0);
    assert_string_equal(ex.row.org, "");
    assert_string_equal(ex.row.expires_at, "2030-01-02T03:04:05.678Z");
    assert_int_equal(strncmp(ex.row.prefix, ex.row.token, 9), 0);
    assert_int_equal(strlen(ex.row.prefix), 9);
    token_arg qx = {.token = ex.row.token};
    assert_int_equal(read_unit(work_principal, &qx, NULL), 0);
    assert_int_equal(qx.p.expires_ms, 1893553445678LL);
    assert_string_equal(qx.p.org, "");
    assert_string_equal(qx.p.role, "operator");

    /* Lists: an operator sees every token, an organisation's administrator
     * its own organisation's (never another's, never an operator's). */
    make_org(ORG_B, "11680", "integrated");
    token_arg b = {.user = "b.worker", .role = "worker", .org = ORG_B};
    assert_int_equal(write_unit(work_token_insert, &b, NULL), 0);
    principal op = {.user = "op", .role = "operator"}, admin_a = {.user = "adm", .role = "admin", .org_type = "emd"};
    snprintf(admin_a.org, sizeof admin_a.org, "%s", ORG_A);
    snprintf(admin_a.region, sizeof admin_a.region, "11590");
    token_arg la = {.overseer = &op};
    assert_int_equal(read_unit(work_token_list, &la, NULL), 0);
    assert_true(listed(&la.list, tok_id) && listed(&la.list, ex.row.id) && listed(&la.list, b.row.id));
    token_list_free(&la.list);
    token_arg lb = {.overseer = &admin_a};
    assert_int_equal(read_unit(work_token_list, &lb, NULL), 0);
    assert_true(listed(&lb.list, tok_id));
    assert_false(listed(&lb.list, ex.row.id) || listed(&lb.list, b.row.id));
    token_list_free(&lb.list);

    /* Revoking: once, then STORE_CONFLICT; an unknown id STORE_NOT_FOUND. */
    token_arg r1 = {.id = b.row.id};
    assert_int_equal(write_unit(work_token_revoke, &r1, NULL), 0);
    assert_non_null(r1.info.revoked_at);
    assert_string_equal(r1.info.revoked_by, "admin");
    token_info_free(&r1.info);
    token_arg r2 = {.id = b.row.id};
    assert_int_equal(write_unit(work_token_revoke, &r2, NULL), -1);
    assert_int_equal(r2.se.kind, STORE_CONFLICT);
    token_arg r3 = {.id = "tok_nothing"};
    assert_int_equal(write_unit(work_token_revoke, &r3, NULL), -1);
    assert_int_equal(r3.se.kind, STORE_NOT_FOUND);

    /* A token for an organisation that does not exist: STORE_NOT_FOUND, nothing written. */
    token_arg bad = {.user = "u", .role = "worker", .org = "no_such_org"};
    assert_int_equal(write_unit(work_token_insert, &bad, NULL), -1);
    assert_int_equal(bad.se.kind, STORE_NOT_FOUND);
    assert_int_equal(bad.row.token[0], 0); /* no secret left behind */
}

/* Fails unless no text of the person carries the whole number. */
static void assert_no_rrn(const person_row *p, const char *digits, const char *tail)
{
    const char *fields[] = {p->id,         p->org,     p->name,    p->birth_date,   p->sex,      p->created_at,
                            p->updated_at, p->rrn_masked, p->phone, p->address,     p->household_id, p->relation};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (!fields[i]) continue;
        assert_null(strstr(fields[i], digits));
        assert_null(strstr(fields[i], tail));
    }
}

static void test_persons(void **state)
{
    (void)state;
    make_org(ORG_A, "11590", "integrated");
    make_org(ORG_B, "11680", "integrated");
    make_principal(&PA, ORG_A, "worker.a", "11590");
    make_principal(&PB, ORG_B, "worker.b", "11680");

    json_t *tags = json_pack("[ss]", "기초생활수급", "독거");
    person_in in = {.name = "홍길동", .birth_date = "1990-01-01", .sex = "M", .rrn = "9001011234568",
                    .phone = "010-1234-5678", .address = "서울특별시 동작구 상도로 1", .tags = tags};
    person_arg a = {.p = &PA, .in = &in};
    assert_int_equal(write_unit(work_person_insert, &a, NULL), 0);
    const person_row *p = &a.person;
    char id[ID_MAX];
    snprintf(id, sizeof id, "%s", p->id);
    assert_int_equal(strncmp(id, "per_", 4), 0);
    assert_string_equal(p->org, ORG_A);
    assert_string_equal(p->name, "홍길동");
    assert_string_equal(p->birth_date, "1990-01-01");
    assert_string_equal(p->sex, "M");
    assert_string_equal(p->rrn_masked, "900101-1******");
    assert_string_equal(p->phone, "010-1234-5678");
    assert_string_equal(p->address, "서울특별시 동작구 상도로 1");
    assert_null(p->household_id);
    assert_null(p->relation);
    assert_true(json_equal(p->tags, tags));
    /* The whole number is nowhere in the row. */
    assert_no_rrn(p, "9001011234568", "1234568");

    /* As the API shows it: the masked number, the age today, nulls for what is absent. */
    json_t *j = render_person(p);
    json_t *age = json_object_get(j, "age");
    assert_true(json_is_integer(age));
    int ty, tm, td;
    date_today_kst(&ty, &tm, &td);
    assert_int_equal(json_integer_value(age), age_on(1990, 1, 1, ty, tm, td));
    assert_true(json_integer_value(age) >= 34);
    assert_string_equal(json_string_value(json_object_get(j, "rrn")), "900101-1******");
    assert_true(json_is_null(json_object_get(j, "household_id")));
    assert_true(json_is_object(json_object_get(j, "eligibility")));
    char *dump = json_dumps(j, JSON_COMPACT);
    assert_null(strstr(dump, "9001011234568"));
    assert_null(strstr(dump, "1234568"));
    free(dump);
    json_decref(j);
    person_row_free(&a.person);
    json_decref(tags);

    /* The owner reads it back the same; another organisation does not find it. */
    person_arg g = {.p = &PA, .id = id};
    assert_int_equal(read_unit(work_person_get, &g, NULL), 0);
    assert_string_equal(g.person.id, id);
    assert_string_equal(g.person.rrn_masked, "900101-1******");
    person_row_free(&g.person);
    person_arg gb = {.p = &PB, .id = id};
    assert_int_equal(read_unit(work_person_get, &gb, NULL), -1);
    assert_int_equal(gb.se.kind, STORE_NOT_FOUND);
    assert_null(gb.person.mem);
    person_arg gn = {.p = &PA, .id = "per_does_not_exist"};
    assert_int_equal(read_unit(work_person_get, &gn, NULL), -1);
    assert_int_equal(gn.se.kind, STORE_NOT_FOUND);

    /* Without an rrn: absent. */
    person_in in2 = {.name = "김영희", .birth_date = "2000-02-29", .sex = "F"};
    person_arg a2 = {.p = &PA, .in = &in2};
    assert_int_equal(write_unit(work_person_insert, &a2, NULL), 0);
    assert_null(a2.person.rrn_masked);
    assert_null(a2.person.phone);
    assert_int_equal(json_array_size(a2.person.tags), 0);
    j = render_person(&a2.person);
    assert_true(json_is_null(json_object_get(j, "rrn")));
    assert_true(json_is_null(json_object_get(j, "phone")));
    json_decref(j);
    person_row_free(&a2.person);

    /* A household that p does not have: STORE_NOT_FOUND, no person written. */
    person_in in3 = {.name = "가구 없음", .birth_date = "2000-01-01", .sex = "F", .household_id = "hh_nope"};
    person_arg a3 = {.p = &PA, .in = &in3};
    assert_int_equal(write_unit(work_person_insert, &a3, NULL), -1);
    assert_int_equal(a3.se.kind, STORE_NOT_FOUND);

    /* The visibility check agrees. */
    person_arg v = {.p = &PA, .id = id};
    assert_int_equal(read_unit(work_person_visible, &v, NULL), 0);
    v.p = &PB;
    assert_int_equal(read_unit(work_person_visible, &v, NULL), -1);
    assert_int_equal(v.se.kind, STORE_NOT_FOUND);
}

static void test_person_search_and_pages(void **state)
{
    (void)state;
    make_org(ORG_A, "11590", "integrated");
    make_org(ORG_B, "11680", "integrated");
    make_principal(&PA, ORG_A, "worker.a", "11590");
    make_principal(&PB, ORG_B, "worker.b", "11680");
    char ids[3][ID_MAX], other[ID_MAX];
    make_person(&PA, "박_검색%대상 일", "8501011234566", ids[0]);
    make_person(&PA, "박_검색%대상 이", NULL, ids[1]);
    make_person(&PA, "박_검색%대상 삼", NULL, ids[2]);
    make_person(&PB, "박_검색%대상 타기관", NULL, other);

    /* A search by name pages in name order (then id): 삼 < 이 < 일. */
    char sorted[3][ID_MAX];
    memcpy(sorted[0], ids[2], ID_MAX);
    memcpy(sorted[1], ids[1], ID_MAX);
    memcpy(sorted[2], ids[0], ID_MAX);

    person_query q = {.name = "박_검색%대상", .limit = 2};
    person_arg a = {.p = &PA, .q = &q};
    assert_int_equal(read_unit(work_person_search, &a, NULL), 0);
    assert_int_equal(a.persons.n, 2);
    assert_string_equal(a.persons.items[0].id, sorted[0]);
    assert_string_equal(a.persons.items[1].id, sorted[1]);
    assert_true(a.persons.more);
    char after[STORE_KEY_MAX];
    snprintf(after, sizeof after, "%s", a.persons.last);
    assert_string_equal(after, sorted[1]);
    /* The API's page: the cursor of the last key. */
    json_t *page = render_page(render_persons(&a.persons), a.persons.more, a.persons.last);
    char back[STORE_KEY_MAX];
    assert_int_equal(cursor_decode(json_string_value(json_object_get(page, "next_cursor")), back, sizeof back), 0);
    assert_string_equal(back, sorted[1]);
    assert_int_equal(json_array_size(json_object_get(page, "items")), 2);
    json_decref(page);
    person_list_free(&a.persons);

    q.after = after;
    assert_int_equal(read_unit(work_person_search, &a, NULL), 0);
    assert_int_equal(a.persons.n, 1);
    assert_string_equal(a.persons.items[0].id, sorted[2]);
    assert_false(a.persons.more);
    page = render_page(render_persons(&a.persons), a.persons.more, a.persons.last);
    assert_true(json_is_null(json_object_get(page, "next_cursor")));
    json_decref(page);
    person_list_free(&a.persons);

    /* LIKE's own characters are matched literally: "박_" does not match "박x". */
    person_query q2 = {.name = "박x검색", .limit = 10};
    a.q = &q2;
    assert_int_equal(read_unit(work_person_search, &a, NULL), 0);
    assert_int_equal(a.persons.n, 0);
    person_list_free(&a.persons);

    /* By resident registration number (the blind index). */
    person_query q3 = {.rrn = "8501011234566", .limit = 10};
    a.q = &q3;
    assert_int_equal(read_unit(work_person_search, &a, NULL), 0);
    assert_int_equal(a.persons.n, 1);
    assert_string_equal(a.persons.items[0].id, ids[0]);
    person_list_free(&a.persons);

    /* Another organisation sees only its own. */
    a.p = &PB;
    a.q = &q;
    q.after = NULL;
    assert_int_equal(read_unit(work_person_search, &a, NULL), 0);
    assert_int_equal(a.persons.n, 1);
    assert_string_equal(a.persons.items[0].id, other);
    person_list_free(&a.persons);
}

static const char SQL_COUNT_HOUSEHOLDS[] = "SELECT COUNT(*) FROM households WHERE address = ?1";

static void test_households(void **state)
{
    (void)state;
    make_org(ORG_A, "11590", "integrated");
    make_principal(&PA, ORG_A, "worker.a", "11590");
    make_principal(&PB, ORG_B, "worker.b", "11680");
    char pid[ID_MAX];
    make_person(&PA, "가구원", NULL, pid);
    json_t *members = json_pack("[{s:s, s:s}]", "person_id", pid, "relation", "본인");
    person_arg a = {.p = &PA, .address = "서울 동작구", .members = members};
    assert_int_equal(write_unit(work_household_insert, &a, NULL), 0);
    char hid[ID_MAX];
    snprintf(hid, sizeof hid, "%s", a.household.id);
    assert_int_equal(strncmp(hid, "hh_", 3), 0);
    assert_string_equal(a.household.org, ORG_A);
    assert_string_equal(a.household.address, "서울 동작구");
    assert_int_equal(a.household.n_members, 1);
    assert_string_equal(a.household.members[0].person_id, pid);
    assert_string_equal(a.household.members[0].name, "가구원");
    assert_string_equal(a.household.members[0].relation, "본인");
    household_row_free(&a.household);
    json_decref(members);

    person_arg g = {.p = &PB, .id = hid};
    assert_int_equal(read_unit(work_household_get, &g, NULL), -1);
    assert_int_equal(g.se.kind, STORE_NOT_FOUND);

    /* A member the organisation does not have: STORE_NOT_FOUND naming it,
     * and no household was left. */
    json_t *bad = json_pack("[{s:s}, {s:s}]", "person_id", pid, "person_id", "per_nobody");
    person_arg b = {.p = &PA, .address = "남지 않는 가구", .members = bad};
    assert_int_equal(write_unit(work_household_insert, &b, NULL), -1);
    assert_int_equal(b.se.kind, STORE_NOT_FOUND);
    assert_int_equal(b.bad_member, 1);
    assert_int_equal(scalar(SQL_COUNT_HOUSEHOLDS, "남지 않는 가구", NULL, 0), 0);
    json_decref(bad);
}

static int work_case_update(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    case_arg *a = arg;
    case_row c;
    if (store_case_load(tx, a->p, a->id, &c, &a->se)) return -1;
    int loaded = c.version;
    if (a->stale_version) c.version = a->stale_version;
    snprintf(c.stage, sizeof c.stage, "initial_counseling");
    int rc = store_case_update(tx, &c, &a->se);
    a->update_ok = rc == 0;
    if (rc) {
        assert_int_equal(c.version, a->stale_version); /* not bumped on failure */
        return -1;
    }
    assert_int_equal(c.version, loaded + 1);
    event_in ev = {.case_id = c.id, .actor = "tester", .type = "transition", .from_stage = "discovery",
                   .to_stage = c.stage, .note = a->note};
    if (store_event_append(tx, &ev, &a->se)) return -1;
    reply->status = 200;
    a->got = c;
    return 0;
}

static int work_case_get(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    case_arg *a = arg;
    reply->status = 200;
    return store_case_load(tx, a->p, a->id, &a->got, &a->se);
}

typedef struct {
    const char *case_id;
    int limit;
    const char *after;
    event_list events;
    store_err se;
} events_arg;

static int work_events(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    events_arg *a = arg;
    reply->status = 200;
    return store_event_list(tx, a->case_id, a->limit, a->after, &a->events, &a->se);
}

static void test_cases_events_and_versions(void **state)
{
    (void)state;
    make_org(ORG_A, "11590", "integrated");
    make_principal(&PA, ORG_A, "worker.a", "11590");
    make_principal(&PB, ORG_B, "worker.b", "11680");
    char pid[ID_MAX];
    make_person(&PA, "사례 대상자", NULL, pid);
    case_row c;
    make_case(&PA, pid, &c);

    case_arg g = {.p = &PA, .id = c.id};
    assert_int_equal(read_unit(work_case_get, &g, NULL), 0);
    assert_string_equal(g.got.id, c.id);
    assert_string_equal(g.got.person_id, pid);
    assert_string_equal(g.got.stage, "discovery");
    assert_string_equal(g.got.status, "open");
    assert_int_equal(g.got.version, 1);
    assert_string_equal(g.got.referral_id, "");
    assert_string_equal(g.got.assigned_to, "");
    assert_string_equal(g.got.generation, "0123456789abcdef");
    /* The API shows what a case does not have as null. */
    json_t *j = render_case(&g.got);
    assert_true(json_is_null(json_object_get(j, "referral_id")));
    assert_true(json_is_null(json_object_get(j, "assigned_to")));
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "plugin_generation")), "0123456789abcdef");
    json_decref(j);
    /* Another organisation: not found. */
    case_arg gb = {.p = &PB, .id = c.id};
    assert_int_equal(read_unit(work_case_get, &gb, NULL), -1);
    assert_int_equal(gb.se.kind, STORE_NOT_FOUND);

    /* A move with the right version: version 2, one more event. */
    case_arg u = {.p = &PA, .id = c.id, .note = "첫 상담"};
    assert_int_equal(write_unit(work_case_update, &u, NULL), 0);
    assert_true(u.update_ok);
    assert_int_equal(u.got.version, 2);
    assert_int_equal(scalar(SQL_CASE_VERSION, c.id, NULL, 0), 2);
    assert_int_equal(count_events(c.id), 2);

    /* A stale version: STORE_STALE, and nothing changed — not the row, not the log. */
    case_arg s = {.p = &PA, .id = c.id, .stale_version = 1};
    assert_int_equal(write_unit(work_case_update, &s, NULL), -1);
    assert_false(s.update_ok);
    assert_int_equal(s.se.kind, STORE_STALE);
    assert_non_null(strstr(s.se.message, "version 1"));
    assert_int_equal(scalar(SQL_CASE_VERSION, c.id, NULL, 0), 2);
    char stage[64];
    scalar(SQL_CASE_STAGE, c.id, stage, sizeof stage);
    assert_string_equal(stage, "initial_counseling");
    assert_int_equal(count_events(c.id), 2);
    /* A version from the future is stale too. */
    s.stale_version = 3;
    s.se.kind = STORE_OK;
    assert_int_equal(write_unit(work_case_update, &s, NULL), -1);
    assert_int_equal(s.se.kind, STORE_STALE);
    assert_int_equal(scalar(SQL_CASE_VERSION, c.id, NULL, 0), 2);

    /* The history, in order, in pages. */
    events_arg ev = {.case_id = c.id, .limit = 1};
    assert_int_equal(read_unit(work_events, &ev, NULL), 0);
    assert_int_equal(ev.events.n, 1);
    const event_row *e1 = &ev.events.items[0];
    assert_int_equal(e1->seq, 1);
    assert_string_equal(e1->type, "opened");
    assert_null(e1->from_stage);
    assert_string_equal(e1->to_stage, "discovery");
    assert_string_equal(e1->actor, "tester");
    assert_true(json_is_object(e1->data));
    assert_true(ev.events.more);
    j = render_event(e1);
    assert_true(json_is_null(json_object_get(j, "from")));
    assert_string_equal(json_string_value(json_object_get(j, "to")), "discovery");
    json_decref(j);
    char after[STORE_KEY_MAX];
    snprintf(after, sizeof after, "%s", ev.events.last);
    event_list_free(&ev.events);
    ev.after = after;
    ev.limit = 10;
    assert_int_equal(read_unit(work_events, &ev, NULL), 0);
    assert_int_equal(ev.events.n, 1);
    const event_row *e2 = &ev.events.items[0];
    assert_int_equal(e2->seq, 2);
    assert_string_equal(e2->type, "transition");
    assert_string_equal(e2->from_stage, "discovery");
    assert_string_equal(e2->to_stage, "initial_counseling");
    assert_string_equal(e2->note, "첫 상담");
    assert_false(ev.events.more);
    event_list_free(&ev.events);
}

/* ---- the unit of work ---- */

static int work_insert_then_fail(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    const char *case_id = arg;
    org_in in = {.id = "rollback_org", .name = "x", .type = "emd", .region = "11590"};
    org_row out;
    store_err se = {0};
    if (store_org_insert(tx, &in, &out, &se)) return -1;
    org_row_free(&out);
    event_in ev = {.case_id = case_id, .actor = "tester", .type = "note"};
    if (store_event_append(tx, &ev, &se)) return -1;
    reply->status = 201;
    reply->body = json_pack("{s:s}", "half", "done");
    err_set(e, 422, "refused_late", "refused after writing");
    return -1;
}

static int work_read_tries_write(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    org_arg *a = arg;
    org_in in = {.id = "read_only_org", .name = "x", .type = "emd", .region = "11590"};
    reply->status = 200;
    return store_org_insert(tx, &in, &a->row, &a->se);
}

static void test_write_rollback(void **state)
{
    (void)state;
    char pid[ID_MAX];
    case_row c;
    make_worker_case("롤백", pid, &c);
    long long before = count_events(c.id);

    /* The unit's own error comes back untouched; the store says nothing of its own. */
    store_reply r = {0};
    err_t e = {0};
    store_err se = {0};
    assert_int_equal(store_write(NULL, work_insert_then_fail, c.id, &r, &e, &se), -1);
    assert_int_equal(e.status, 422);
    assert_string_equal(e.code, "refused_late");
    assert_int_equal(se.kind, STORE_OK);
    assert_null(r.body); /* the half-made answer is dropped */
    assert_int_equal(r.status, 0);
    err_clear(&e);
    assert_false(org_exists("rollback_org"));
    assert_int_equal(count_events(c.id), before);

    /* The connection is usable afterwards (no transaction left open). */
    make_org("after_rollback_org", "11590", "integrated");
    assert_true(org_exists("after_rollback_org"));

    /* A read cannot write at all: its connection is query-only. */
    org_arg ro = {0};
    assert_int_equal(read_unit(work_read_tries_write, &ro, NULL), -1);
    assert_int_equal(ro.se.kind, STORE_INTERNAL);
    assert_false(org_exists("read_only_org"));
}

typedef struct {
    int runs;
    const char *org_id;
    bool secret;
    store_err se;
} idem_arg;

static int work_idem(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    idem_arg *a = arg;
    a->runs++;
    org_in in = {.id = a->org_id, .name = "멱등", .type = "emd", .region = "11590"};
    org_row o;
    if (store_org_insert(tx, &in, &o, &a->se)) return process_store_fail(&a->se, e);
    reply->status = 201;
    reply->body = json_pack("{s:s, s:s}", "id", o.id, "secret", "shown-once");
    org_row_free(&o);
    if (a->secret) {
        reply->record = json_deep_copy(reply->body);
        json_object_set_new(reply->record, "secret", json_null());
    }
    return 0;
}

static int work_status_422(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)tx;
    (void)e;
    idem_arg *a = arg;
    a->runs++;
    reply->status = 422;
    reply->body = json_pack("{s:s}", "note", "not a success");
    return 0;
}

static const char SQL_IDEM_COUNT[] = "SELECT COUNT(*) FROM idempotency WHERE key = ?1";
static const char SQL_IDEM_SEALED[] =
    "SELECT COUNT(*) FROM idempotency WHERE key = ?1 AND body LIKE 's1.%' AND instr(body, 'idem_org') = 0";

static void test_idempotency(void **state)
{
    (void)state;
    store_reply r = {0};
    err_t e = {0};
    store_err se = {0};
    idem_arg a = {.org_id = "idem_org_1"};
    store_idem k = {.scope = ORG_A "/worker.a", .key = "key-1", .request_hash = "hash-1"};
    assert_int_equal(store_write(&k, work_idem, &a, &r, &e, &se), 0);
    assert_int_equal(a.runs, 1);
    assert_false(r.replayed);
    assert_int_equal(r.status, 201);
    json_t *first = json_incref(r.body);
    store_reply_clear(&r);
    /* The answer is kept sealed, never in clear. */
    assert_int_equal(scalar(SQL_IDEM_SEALED, "key-1", NULL, 0), 1);

    /* Same key, same request: the first answer, and the work is not run. */
    assert_int_equal(store_write(&k, work_idem, &a, &r, &e, &se), 0);
    assert_int_equal(a.runs, 1);
    assert_true(r.replayed);
    assert_int_equal(r.status, 201);
    assert_true(json_equal(r.body, first));
    store_reply_clear(&r);
    json_decref(first);
    /* Read ahead of a decision, the same. */
    assert_int_equal(store_idem_replay(&k, &r, &se), 1);
    assert_true(r.replayed);
    store_reply_clear(&r);

    /* Same key, another request: STORE_KEY_REUSED, nothing runs. */
    store_idem k2 = {.scope = k.scope, .key = "key-1", .request_hash = "hash-2"};
    assert_int_equal(store_write(&k2, work_idem, &a, &r, &e, &se), -1);
    assert_int_equal(a.runs, 1);
    assert_int_equal(se.kind, STORE_KEY_REUSED);
    assert_int_equal(e.status, 0); /* the store says it in its own terms */
    se = (store_err){0};
    assert_int_equal(store_idem_replay(&k2, &r, &se), -1);
    assert_int_equal(se.kind, STORE_KEY_REUSED);
    /* ... and the API answers it as 409 idempotency_key_reused, naming the key. */
    assert_int_equal(process_write(&k2, work_idem, &a, &r, &e), -1);
    assert_int_equal(e.status, 409);
    assert_string_equal(e.code, "idempotency_key_reused");
    assert_string_equal(json_string_value(json_object_get(e.details, "idempotency_key")), "key-1");
    err_clear(&e);
    assert_int_equal(process_replay(&k2, &r, &e), -1);
    assert_string_equal(e.code, "idempotency_key_reused");
    err_clear(&e);

    /* The same key in another scope is another key. */
    idem_arg b = {.org_id = "idem_org_2"};
    store_idem k3 = {.scope = ORG_B "/worker.b", .key = "key-1", .request_hash = "hash-2"};
    se = (store_err){0};
    assert_int_equal(store_write(&k3, work_idem, &b, &r, &e, &se), 0);
    assert_int_equal(b.runs, 1);
    assert_false(r.replayed);
    store_reply_clear(&r);

    /* A failed write records nothing: the key stays free. */
    idem_arg c = {.org_id = "idem_org_1"}; /* duplicate id */
    store_idem k4 = {.scope = k.scope, .key = "key-fail", .request_hash = "hash-x"};
    assert_int_equal(store_write(&k4, work_idem, &c, &r, &e, &se), -1);
    assert_int_equal(se.kind, STORE_OK);
    assert_int_equal(c.se.kind, STORE_DUPLICATE);
    assert_int_equal(e.status, 409); /* the unit's own answer of it */
    assert_string_equal(e.code, "duplicate");
    err_clear(&e);
    assert_int_equal(scalar(SQL_IDEM_COUNT, "key-fail", NULL, 0), 0);
    c.org_id = "idem_org_3";
    assert_int_equal(store_write(&k4, work_idem, &c, &r, &e, &se), 0);
    assert_false(r.replayed);
    assert_int_equal(c.runs, 2);
    store_reply_clear(&r);

    /* A non-2xx answer is not recorded: a repeat runs again. */
    idem_arg d = {0};
    store_idem k5 = {.scope = k.scope, .key = "key-422", .request_hash = "h"};
    assert_int_equal(store_write(&k5, work_status_422, &d, &r, &e, &se), 0);
    store_reply_clear(&r);
    assert_int_equal(store_write(&k5, work_status_422, &d, &r, &e, &se), 0);
    assert_false(r.replayed);
    assert_int_equal(d.runs, 2);
    store_reply_clear(&r);

    /* reply.record: what a replay shows instead of the body (secrets once). */
    idem_arg s = {.org_id = "idem_org_4", .secret = true};
    store_idem k6 = {.scope = k.scope, .key = "key-secret", .request_hash = "h"};
    assert_int_equal(store_write(&k6, work_idem, &s, &r, &e, &se), 0);
    assert_string_equal(json_string_value(json_object_get(r.body, "secret")), "shown-once");
    store_reply_clear(&r);
    assert_int_equal(store_write(&k6, work_idem, &s, &r, &e, &se), 0);
    assert_true(r.replayed);
    assert_int_equal(s.runs, 1);
    assert_true(json_is_null(json_object_get(r.body, "secret")));
    assert_string_equal(json_string_value(json_object_get(r.body, "id")), "idem_org_4");
    store_reply_clear(&r);
}

/* ---- the event log is append-only ---- */

static const char SQL_RAW_UPDATE[] = "UPDATE case_events SET note = 'rewritten' WHERE case_id = ?1";
static const char SQL_RAW_DELETE[] = "DELETE FROM case_events WHERE case_id = ?1";

static void test_event_log_append_only(void **state)
{
    (void)state;
    char pid[ID_MAX];
    case_row c;
    make_worker_case("이력", pid, &c);
    long long n = count_events(c.id);
    assert_true(n >= 1);

    raw_arg up = {.bind1 = c.id, .sql = SQL_RAW_UPDATE};
    assert_int_equal(write_unit(work_raw, &up, NULL), 0);
    assert_int_not_equal(up.rc, SQLITE_DONE);
    assert_int_equal(up.rc & 0xff, SQLITE_CONSTRAINT);
    assert_non_null(strstr(up.msg, "append-only"));
    assert_int_equal(scalar(SQL_COUNT_EVENT_NOTES, c.id, NULL, 0), 0);

    raw_arg del = {.bind1 = c.id, .sql = SQL_RAW_DELETE};
    assert_int_equal(write_unit(work_raw, &del, NULL), 0);
    assert_int_not_equal(del.rc, SQLITE_DONE);
    assert_int_equal(del.rc & 0xff, SQLITE_CONSTRAINT);
    assert_non_null(strstr(del.msg, "append-only"));
    assert_int_equal(count_events(c.id), n);
}

static const char SQL_ORPHAN_PERSON[] =
    "INSERT INTO persons (id, org_id, name, birth_date, sex, tags, created_at, created_by, updated_at)"
    " VALUES ('per_orphan', 'no_such_org', 'x', '2000-01-01', 'M', '[]', 't', 'u', 't')";

static void test_foreign_keys_enforced(void **state)
{
    (void)state;
    raw_arg a = {.sql = SQL_ORPHAN_PERSON};
    assert_int_equal(write_unit(work_raw, &a, NULL), 0);
    assert_int_equal(a.rc & 0xff, SQLITE_CONSTRAINT);
    assert_int_equal(a.rc, SQLITE_CONSTRAINT_FOREIGNKEY);
}

/* ---- a schema newer than this binary is refused ---- */

static const char SQL_FUTURE_MIGRATION[] = "INSERT INTO schema_migrations VALUES (999, 'from the future')";
static const char SQL_FORGET_FUTURE[] = "DELETE FROM schema_migrations WHERE version = 999";

static void test_migrate_refuses_newer_schema(void **state)
{
    (void)state;
    raw_arg a = {.sql = SQL_FUTURE_MIGRATION};
    assert_int_equal(write_unit(work_raw, &a, NULL), 0);
    assert_int_equal(a.rc, SQLITE_DONE);
    char err[512] = "";
    int v = -1;
    assert_int_equal(store_migrate(&v, err, sizeof err), -1);
    assert_non_null(strstr(err, "999"));
    raw_arg b = {.sql = SQL_FORGET_FUTURE};
    assert_int_equal(write_unit(work_raw, &b, NULL), 0);
    assert_int_equal(b.rc, SQLITE_DONE);
    assert_int_equal(store_migrate(&v, err, sizeof err), 0);
    assert_int_equal(v, g_version);
}

/* ---- deadlines of a case ---- */

typedef struct {
    case_row *c;
    const char *kind, *due_on; /* NULL due_on: clear */
    deadline_list due;
    store_err se;
} deadline_arg;

static int work_deadline(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    deadline_arg *a = arg;
    int rc = a->due_on ? store_deadline_set(tx, a->c, a->kind, "계획 수립 기한", a->due_on, "integrated", &a->se)
                       : store_deadline_clear(tx, a->c->id, a->kind, &a->se);
    if (rc) return -1;
    reply->status = 200;
    return store_case_due(tx, a->c->id, &a->due, &a->se);
}

static void test_deadlines(void **state)
{
    (void)state;
    char pid[ID_MAX];
    case_row c;
    make_worker_case("기한", pid, &c);
    char today[11];
    date_today_str(today);

    deadline_arg a = {.c = &c, .kind = "plan_due", .due_on = "2000-01-01"};
    assert_int_equal(write_unit(work_deadline, &a, NULL), 0);
    assert_int_equal(a.due.n, 1);
    const deadline_row *d = &a.due.items[0];
    assert_string_equal(d->kind, "plan_due");
    assert_string_equal(d->label, "계획 수립 기한");
    assert_string_equal(d->due_on, "2000-01-01");
    assert_string_equal(d->plugin, "integrated");
    assert_string_equal(d->case_id, c.id);
    /* Overdue is the API's reading of the date, today. */
    json_t *j = render_due(d, today);
    assert_true(json_is_true(json_object_get(j, "overdue")));
    assert_int_equal(json_object_size(j), 5);
    json_decref(j);
    deadline_list_free(&a.due);

    /* Setting the same kind again replaces it. */
    a.due_on = "9999-12-31";
    assert_int_equal(write_unit(work_deadline, &a, NULL), 0);
    assert_int_equal(a.due.n, 1);
    assert_string_equal(a.due.items[0].due_on, "9999-12-31");
    j = render_due(&a.due.items[0], today);
    assert_true(json_is_false(json_object_get(j, "overdue")));
    json_decref(j);
    deadline_list_free(&a.due);

    /* Another kind adds one; clearing removes only its kind. */
    deadline_arg b = {.c = &c, .kind = "first_contact", .due_on = "2100-01-01"};
    assert_int_equal(write_unit(work_deadline, &b, NULL), 0);
    assert_int_equal(b.due.n, 2);
    assert_string_equal(b.due.items[0].kind, "first_contact");
    deadline_list_free(&b.due);
    a.due_on = NULL;
    assert_int_equal(write_unit(work_deadline, &a, NULL), 0);
    assert_int_equal(a.due.n, 1);
    assert_string_equal(a.due.items[0].kind, "first_contact");
    deadline_list_free(&a.due);
}

/* ---- states a change needs: STORE_CONFLICT ---- */

typedef struct {
    const principal *p;
    char person_id[ID_MAX], id[ID_MAX];
    consent_row consent;
    outbox_row msg;
    store_err se;
    int op;
} conflict_arg;

enum { OP_CONSENT, OP_REVOKE, OP_REFER, OP_ANSWER, OP_ENQUEUE, OP_RETRY, OP_RETRY_UNKNOWN };

static int work_conflict(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)e;
    conflict_arg *a = arg;
    reply->status = 200;
    switch (a->op) {
    case OP_CONSENT: {
        json_t *scope = json_pack("[s]", ORG_B);
        consent_in in = {.person_id = a->person_id, .purpose = "referral", .valid_from = "2000-01-01",
                         .valid_until = "2999-12-31", .scope = scope};
        int rc = store_consent_insert(tx, a->p, &in, &a->consent, &a->se);
        json_decref(scope);
        return rc;
    }
    case OP_REVOKE: return store_consent_revoke(tx, a->p, a->person_id, a->id, &a->consent, &a->se);
    case OP_REFER: {
        json_t *snap = json_object();
        referral_in in = {.person_id = a->person_id, .from_org = ORG_A, .to_org = ORG_B, .reason = "r",
                          .opinion = "o", .by = "worker.a", .snapshot = snap};
        int rc = store_referral_insert(tx, &in, a->id, &a->se);
        json_decref(snap);
        return rc;
    }
    case OP_ANSWER: return store_referral_answer(tx, a->id, "rejected", "아니요", "worker.b", NULL, &a->se);
    case OP_ENQUEUE: {
        json_t *payload = json_pack("{s:i}", "n", 1);
        int rc = store_outbox_enqueue(tx, "agency_x", "topic", "test", payload, a->id, &a->se);
        json_decref(payload);
        return rc;
    }
    case OP_RETRY: return store_outbox_retry(tx, a->id, &a->msg, &a->se);
    case OP_RETRY_UNKNOWN: return store_outbox_retry(tx, "msg_unknown", &a->msg, &a->se);
    }
    return -1;
}

static void test_conflicts(void **state)
{
    (void)state;
    make_org(ORG_A, "11590", "integrated");
    make_org(ORG_B, "11680", "integrated");
    make_principal(&PA, ORG_A, "worker.a", "11590");
    conflict_arg a = {.p = &PA};
    make_person(&PA, "충돌", NULL, a.person_id);

    /* A consent revoked twice: the second is STORE_CONFLICT, and the row stays as revoked. */
    a.op = OP_CONSENT;
    assert_int_equal(write_unit(work_conflict, &a, NULL), 0);
    snprintf(a.id, sizeof a.id, "%s", a.consent.id);
    assert_null(a.consent.revoked_at);
    char today[11];
    date_today_str(today);
    static const char *const purposes[] = {"referral", NULL};
    assert_null(store_consent_refusal(&a.consent, ORG_B, purposes, today));
    assert_non_null(store_consent_refusal(&a.consent, ORG_A, purposes, today)); /* not in its scope */
    consent_row_free(&a.consent);
    a.op = OP_REVOKE;
    assert_int_equal(write_unit(work_conflict, &a, NULL), 0);
    assert_non_null(a.consent.revoked_at);
    assert_string_equal(store_consent_refusal(&a.consent, ORG_B, purposes, today), "it was revoked");
    consent_row_free(&a.consent);
    assert_int_equal(write_unit(work_conflict, &a, NULL), -1);
    assert_int_equal(a.se.kind, STORE_CONFLICT);
    snprintf(a.id, sizeof a.id, "cns_nope");
    a.se.kind = STORE_OK;
    assert_int_equal(write_unit(work_conflict, &a, NULL), -1);
    assert_int_equal(a.se.kind, STORE_NOT_FOUND);

    /* A referral answered twice. */
    a.op = OP_REFER;
    assert_int_equal(write_unit(work_conflict, &a, NULL), 0);
    a.op = OP_ANSWER;
    assert_int_equal(write_unit(work_conflict, &a, NULL), 0);
    assert_int_equal(write_unit(work_conflict, &a, NULL), -1);
    assert_int_equal(a.se.kind, STORE_CONFLICT);

    /* Only a dead message is sent again; an unknown one is not found. */
    a.op = OP_ENQUEUE;
    assert_int_equal(write_unit(work_conflict, &a, NULL), 0);
    a.op = OP_RETRY;
    a.se.kind = STORE_OK;
    assert_int_equal(write_unit(work_conflict, &a, NULL), -1);
    assert_int_equal(a.se.kind, STORE_CONFLICT);
    a.op = OP_RETRY_UNKNOWN;
    assert_int_equal(write_unit(work_conflict, &a, NULL), -1);
    assert_int_equal(a.se.kind, STORE_NOT_FOUND);
}

/* ---- the store's outcomes as the API answers them ---- */

static void expect_answer(store_kind kind, int status, const char *code)
{
    store_err se = {0};
    err_t e = {0};
    store_err_set(&se, kind, "what happened");
    assert_int_equal(process_store_fail(&se, &e), -1);
    assert_int_equal(e.status, status);
    assert_string_equal(e.code, code);
    assert_string_equal(e.message, "what happened");
    err_clear(&e);
}

static void test_kinds_answered(void **state)
{
    (void)state;
    expect_answer(STORE_NOT_FOUND, 404, "not_found");
    expect_answer(STORE_DUPLICATE, 409, "duplicate");
    expect_answer(STORE_CONFLICT, 409, "conflict");
    expect_answer(STORE_STALE, 412, "version_mismatch");
    expect_answer(STORE_KEY_REUSED, 409, "idempotency_key_reused");
    expect_answer(STORE_BUSY, 503, "store_busy");
    expect_answer(STORE_UNAVAILABLE, 503, "store_unavailable");
    expect_answer(STORE_INTERNAL, 500, "internal_error");
    assert_string_equal(store_kind_name(STORE_NOT_FOUND), "not_found");
    assert_string_equal(store_kind_name(STORE_BUSY), "busy");

    /* A caller says what an outcome means to it; the others keep theirs. */
    store_err se = {0};
    err_t e = {0};
    store_err_set(&se, STORE_NOT_FOUND, "no row");
    process_store_error(&se, &e, STORE_NOT_FOUND, 422, "unknown_case", "no case '%s'", "cas_x");
    assert_int_equal(e.status, 422);
    assert_string_equal(e.code, "unknown_case");
    assert_string_equal(e.message, "no case 'cas_x'");
    err_clear(&e);
    store_err_set(&se, STORE_BUSY, "the case store is busy; retry");
    process_store_error(&se, &e, STORE_NOT_FOUND, 422, "unknown_case", "no case '%s'", "cas_x");
    assert_int_equal(e.status, 503);
    assert_string_equal(e.code, "store_busy");
    err_clear(&e);
}

/* A write while another connection holds the database: STORE_BUSY once the
 * busy timeout passes, and the API's 503 store_busy. */
static void test_busy(void **state)
{
    (void)state;
    store_close();
    open_store_with(true, 100);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(g_db, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    org_in in = {.id = "busy_org", .name = "잠김", .type = "emd", .region = "11590"};
    org_arg a = {.in = &in};
    store_err se = {0};
    assert_int_equal(write_unit(work_org_insert, &a, &se), -1);
    assert_int_equal(se.kind, STORE_BUSY);
    store_reply r = {0};
    err_t e = {0};
    assert_int_equal(process_write(NULL, work_org_insert, &a, &r, &e), -1);
    assert_int_equal(e.status, 503);
    assert_string_equal(e.code, "store_busy");
    err_clear(&e);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    /* Free again: the write goes through. */
    assert_int_equal(write_unit(work_org_insert, &a, &se), 0);
    org_row_free(&a.row);
    store_close();
    open_store(true);
}

/* ---- one connection per thread; concurrent writers serialise ---- */

enum { WRITERS = 4, WRITES_EACH = 25 };

typedef struct {
    long long records, broken;
    store_err se;
} verify_arg;

/* Walks the whole chain: each record against the MAC before it. */
static int work_verify(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    (void)e;
    verify_arg *v = arg;
    char prev[SHA256_HEX] = "0000000000000000000000000000000000000000000000000000000000000000", why[300];
    long long after = 0;
    for (;;) {
        audit_list l;
        if (store_audit_range(tx, after, 100, &l, &v->se)) return -1;
        for (size_t i = 0; i < l.n && !v->broken; i++) {
            if (!store_audit_record_ok(&l.items[i], prev, why, sizeof why)) v->broken = l.items[i].seq;
            snprintf(prev, sizeof prev, "%s", l.items[i].hash);
            v->records++;
        }
        bool more = l.more;
        if (l.n) after = l.items[l.n - 1].seq;
        audit_list_free(&l);
        if (!more || v->broken) return 0;
    }
}

static const char SQL_COUNT_THREAD_ORGS[] = "SELECT COUNT(*) FROM orgs WHERE id LIKE 'thr\\_%' ESCAPE '\\'";

static void *writer_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    long failures = 0;
    for (int i = 0; i < WRITES_EACH; i++) {
        char id[64];
        snprintf(id, sizeof id, "thr_%d_%d", t, i);
        org_in in = {.id = id, .name = "동시", .type = "emd", .region = "11590"};
        org_arg a = {.in = &in};
        if (write_unit(work_org_insert, &a, NULL)) failures++;
        org_row_free(&a.row);
    }
    store_thread_done();
    return (void *)(intptr_t)failures;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t th[WRITERS];
    for (int t = 0; t < WRITERS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, writer_thread, (void *)(intptr_t)t), 0);
    long failures = 0;
    for (int t = 0; t < WRITERS; t++) {
        void *ret = NULL;
        assert_int_equal(pthread_join(th[t], &ret), 0);
        failures += (long)(intptr_t)ret;
    }
    assert_int_equal(failures, 0);
    assert_int_equal(scalar(SQL_COUNT_THREAD_ORGS, NULL, NULL, 0), WRITERS * WRITES_EACH);
}

/* ---- group commit: a failing unit rolls back alone, the audit chain
 * stays one line ---- */
#define GC_THREADS 8
#define GC_EACH 60

typedef struct {
    int t, i;
    const char *run; /* "gc" or "gr": the prefix of its ids, and its actor */
} gc_arg;

/* Appends an audit record and an org; every third unit then fails, after
 * both were written, so the writer must roll back exactly that unit. */
static int work_gc(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    gc_arg *a = arg;
    char id[64], rid[64];
    snprintf(id, sizeof id, "%s_%d_%d", a->run, a->t, a->i);
    snprintf(rid, sizeof rid, "req_%d_%d", a->t, a->i);
    store_err se = {0};
    audit_entry ae = {.actor = a->run, .org = ORG_A, .role = "worker", .action = "TEST", .request_id = rid,
                      .status = 200};
    if (store_audit_append(tx, &ae, &se)) return process_store_fail(&se, e);
    org_in in = {.id = id, .name = "묶음", .type = "emd", .region = "11590"};
    org_row o;
    if (store_org_insert(tx, &in, &o, &se)) return process_store_fail(&se, e);
    org_row_free(&o);
    if (a->i % 3 == 2) {
        err_set(e, 422, "refused_late", "refused after writing");
        return -1;
    }
    reply->status = 201;
    return 0;
}

/* A write hook that counts what it did, and what was undone of it: once
 * the writes are over, what stands is one per write that committed. */
typedef struct {
    long done;
} gc_hook_ctx;

static int gc_hook(store_tx *tx, const store_reply *reply, void *ctx, err_t *e)
{
    (void)tx;
    (void)reply;
    (void)e;
    ((gc_hook_ctx *)ctx)->done++;
    return 1;
}

static void gc_hook_undo(void *ctx) { ((gc_hook_ctx *)ctx)->done--; }

static bool gc_rerunnable; /* the threads write with store_write_rerunnable */

static void *gc_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    long wrong = 0, committed = 0;
    gc_hook_ctx hook = {0};
    store_set_write_hook(gc_hook, gc_hook_undo, &hook);
    for (int i = 0; i < GC_EACH; i++) {
        gc_arg a = {t, i, gc_rerunnable ? "gr" : "gc"};
        store_reply r = {0};
        err_t e = {0};
        store_err se = {0};
        int rc = (gc_rerunnable ? store_write_rerunnable : store_write)(NULL, work_gc, &a, &r, &e, &se);
        if (rc == 0) committed++;
        if ((i % 3 == 2) != (rc == -1)) wrong++;
        if (rc == -1 && (e.status != 422 || se.kind != STORE_OK)) wrong++;
        err_clear(&e);
        store_reply_clear(&r);
    }
    if (hook.done != committed) wrong++;
    store_set_write_hook(NULL, NULL, NULL);
    store_thread_done();
    return (void *)(intptr_t)wrong;
}

static const char SQL_COUNT_GC_ORGS[] = "SELECT COUNT(*) FROM orgs WHERE id LIKE ?1 || '\\_%' ESCAPE '\\'";
static const char SQL_COUNT_GC_AUDIT[] = "SELECT COUNT(*) FROM audit WHERE actor = ?1";
static const char SQL_COUNT_GC_FAILED[] =
    "SELECT COUNT(*) FROM audit WHERE actor = ?1 AND CAST(substr(request_id, instr(substr(request_id, 5), '_') + 5)"
    " AS INTEGER) % 3 = 2";

static unsigned long metric(const char *name)
{
    char *m = store_metrics();
    assert_non_null(m);
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *at = strstr(m, key);
    assert_non_null(at);
    unsigned long v = strtoul(at + strlen(key), NULL, 10);
    free(m);
    return v;
}

static void group_commit(bool rerunnable)
{
    gc_rerunnable = rerunnable;
    unsigned long reruns0 = metric("sarye_store_batch_reruns_total");
    make_org(ORG_A, "11590", "integrated");
    pthread_t th[GC_THREADS];
    for (int t = 0; t < GC_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, gc_thread, (void *)(intptr_t)t), 0);
    long wrong = 0;
    for (int t = 0; t < GC_THREADS; t++) {
        void *ret = NULL;
        assert_int_equal(pthread_join(th[t], &ret), 0);
        wrong += (long)(intptr_t)ret;
    }
    assert_int_equal(wrong, 0);
    long long kept = GC_THREADS * (GC_EACH - GC_EACH / 3);
    const char *run = rerunnable ? "gr" : "gc";
    assert_int_equal(scalar(SQL_COUNT_GC_ORGS, run, NULL, 0), kept);
    assert_int_equal(scalar(SQL_COUNT_GC_AUDIT, run, NULL, 0), kept);
    assert_int_equal(scalar(SQL_COUNT_GC_FAILED, run, NULL, 0), 0); /* no trace of a failed unit */
    /* Many units shared a batch, yet the chain is one unbroken line. */
    verify_arg v = {0, 0, {0}};
    assert_int_equal(read_unit(work_verify, &v, NULL), 0);
    assert_int_equal(v.broken, 0);
    assert_true(v.records >= kept);
    unsigned long reruns = metric("sarye_store_batch_reruns_total") - reruns0;
    if (rerunnable) /* the first batch with a failing unit ran without savepoints, then again with them */
        assert_true(reruns >= 1);
    else /* a unit that may not run twice never does */
        assert_int_equal(reruns, 0);
}

static void test_group_commit(void **state)
{
    (void)state;
    group_commit(false);
}

/* Units that may run again share batches without a savepoint each; a
 * failing one sends its batch back to run again, unit by unit: the same
 * rows stand, and each write hook's work is undone with its unit. */
static void test_group_commit_rerunnable(void **state)
{
    (void)state;
    group_commit(true);
}

/* ---- memory refused to SQLite in the middle of batches ---- */

/* SQLite's allocator, wrapped: while g_nomem is on, one allocation in
 * NOMEM_EVERY is refused (counted over all threads). */
#define NOMEM_EVERY 500
#define NOMEM_THREADS 6
#define NOMEM_EACH 40
static sqlite3_mem_methods g_sqlite_mem;
static atomic_bool g_nomem;
static atomic_long g_nomem_count, g_nomem_refused;

static atomic_long g_nomem_only = -1; /* >= 0: only the allocation of that number is refused */

static bool nomem_now(void)
{
    if (!atomic_load(&g_nomem)) return false;
    long n = atomic_fetch_add(&g_nomem_count, 1), only = atomic_load(&g_nomem_only);
    if (only >= 0 ? n != only : n % NOMEM_EVERY != NOMEM_EVERY - 1) return false;
    atomic_fetch_add(&g_nomem_refused, 1);
    return true;
}

static void *nomem_malloc(int n) { return nomem_now() ? NULL : g_sqlite_mem.xMalloc(n); }
static void *nomem_realloc(void *p, int n) { return nomem_now() ? NULL : g_sqlite_mem.xRealloc(p, n); }

/* Installs the wrapper; before SQLite is first used (main). */
static void nomem_install(void)
{
    sqlite3_config(SQLITE_CONFIG_GETMALLOC, &g_sqlite_mem);
    sqlite3_mem_methods m = g_sqlite_mem;
    m.xMalloc = nomem_malloc;
    m.xRealloc = nomem_realloc;
    sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
}

typedef struct {
    int t;
    const char *run; /* the prefix of its ids */
    char acked[NOMEM_EACH][64], refused[NOMEM_EACH][64];
    int n_acked, n_refused, wrong;
    char why[400];
} nomem_thread_arg;

static int work_nomem(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    const char *id = arg;
    store_err se = {0};
    audit_entry ae = {.actor = "nm", .org = ORG_A, .role = "worker", .action = "TEST", .request_id = id,
                      .status = 200};
    if (store_audit_append(tx, &ae, &se)) return process_store_fail(&se, e);
    org_in in = {.id = id, .name = "메모리 부족", .type = "emd", .region = "11590"};
    org_row o;
    if (store_org_insert(tx, &in, &o, &se)) return process_store_fail(&se, e);
    org_row_free(&o);
    reply->status = 201;
    return 0;
}

static void *nomem_thread(void *arg)
{
    nomem_thread_arg *a = arg;
    for (int i = 0; i < NOMEM_EACH; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s_%d_%d", a->run, a->t, i);
        store_reply r = {0};
        err_t e = {0};
        store_err se = {0};
        if (store_write(NULL, work_nomem, id, &r, &e, &se) == 0) {
            snprintf(a->acked[a->n_acked++], 64, "%s", id);
        } else {
            snprintf(a->refused[a->n_refused++], 64, "%s", id);
            /* a refusal is a retry (503), never a 500 */
            bool retry = se.kind == STORE_UNAVAILABLE || se.kind == STORE_BUSY || e.status == 503;
            if (!retry && !a->wrong++)
                snprintf(a->why, sizeof a->why, "%s: %d %.40s / %s %.200s", id, e.status, e.code,
                         store_kind_name(se.kind), se.message);
        }
        err_clear(&e);
        store_reply_clear(&r);
    }
    store_thread_done();
    return NULL;
}

/* Six writers share batches while fault(true) lasts: every write
 * acknowledged is there, every write refused left nothing and was refused
 * as a retry, the audit chain is whole, and the writer goes on. */
static void writers_through(const char *run, void (*fault)(bool on), atomic_long *faults)
{
    make_org(ORG_A, "11590", "integrated");
    static nomem_thread_arg args[NOMEM_THREADS];
    pthread_t th[NOMEM_THREADS];
    atomic_store(faults, 0);
    fault(true);
    for (int t = 0; t < NOMEM_THREADS; t++) {
        memset(&args[t], 0, sizeof args[t]);
        args[t].t = t;
        args[t].run = run;
        assert_int_equal(pthread_create(&th[t], NULL, nomem_thread, &args[t]), 0);
    }
    for (int t = 0; t < NOMEM_THREADS; t++) assert_int_equal(pthread_join(th[t], NULL), 0);
    fault(false);
    assert_true(atomic_load(faults) > 0);
    int acked = 0, refused = 0;
    for (int t = 0; t < NOMEM_THREADS; t++) {
        if (args[t].wrong) fail_msg("thread %d: %s", t, args[t].why);
        for (int i = 0; i < args[t].n_acked; i++)
            if (!org_exists(args[t].acked[i])) fail_msg("%s was acknowledged and is missing", args[t].acked[i]);
        for (int i = 0; i < args[t].n_refused; i++)
            if (org_exists(args[t].refused[i])) fail_msg("%s was refused and is there", args[t].refused[i]);
        acked += args[t].n_acked;
        refused += args[t].n_refused;
    }
    assert_true(refused > 0);
    assert_true(acked > 0);
    verify_arg v = {0, 0, {0}};
    assert_int_equal(read_unit(work_verify, &v, NULL), 0);
    assert_int_equal(v.broken, 0);
    /* and the writer goes on */
    char after[64];
    snprintf(after, sizeof after, "%s_after", run);
    store_reply r = {0};
    err_t e = {0};
    store_err se = {0};
    assert_int_equal(store_write(NULL, work_nomem, after, &r, &e, &se), 0);
    store_reply_clear(&r);
    assert_true(org_exists(after));
}

static void nomem_fault(bool on) { atomic_store(&g_nomem, on); }

/* SQLite is refused one allocation in 500. SQLite rolls a transaction back
 * by itself after some such errors; a unit's changes, or later units'
 * statements, must then not commit on their own. */
static void test_memory_refused_mid_batch(void **state)
{
    (void)state;
    writers_through("nm", nomem_fault, &g_nomem_refused);
}

/* ---- the disk failing under the writer ---- */

/* The default VFS, wrapped (installed as the default before the store
 * first opens, so the store's own VFS sits on it): while g_disk_fault is
 * on, one sync of a write-ahead log in DISK_EVERY fails (EIO: the disk
 * could not make the batch durable), or one write of it does. */
#define DISK_EVERY 7
typedef enum { DISK_OK, DISK_SYNC, DISK_WRITE, DISK_READ, DISK_DB_SYNC } disk_fault;
static _Atomic disk_fault g_disk_fault;
static _Thread_local bool g_disk_reads_here; /* DISK_READ: reads of this thread's only */
static atomic_long g_disk_count, g_disk_failed;
static sqlite3_vfs *g_disk_base;

typedef struct {
    sqlite3_file base;
    sqlite3_file *real; /* just after this struct */
    bool wal, main_db;
} disk_file;

#define DREAL(f) (((disk_file *)(f))->real)

static bool disk_fails(sqlite3_file *f, disk_fault kind)
{
    if (atomic_load(&g_disk_fault) != kind) return false;
    if (kind == DISK_DB_SYNC) { /* every sync of the database fails */
        if (!((disk_file *)f)->main_db) return false;
        atomic_fetch_add(&g_disk_failed, 1);
        return true;
    }
    if (kind == DISK_READ ? !g_disk_reads_here : !((disk_file *)f)->wal) return false;
    if (atomic_fetch_add(&g_disk_count, 1) % DISK_EVERY != DISK_EVERY - 1) return false;
    atomic_fetch_add(&g_disk_failed, 1);
    return true;
}

static int d_close(sqlite3_file *f) { return DREAL(f)->pMethods->xClose(DREAL(f)); }
static int d_read(sqlite3_file *f, void *out, int n, sqlite3_int64 off)
{
    if (disk_fails(f, DISK_READ)) return SQLITE_IOERR_READ;
    return DREAL(f)->pMethods->xRead(DREAL(f), out, n, off);
}
static int d_write(sqlite3_file *f, const void *data, int n, sqlite3_int64 off)
{
    if (disk_fails(f, DISK_WRITE)) return SQLITE_IOERR_WRITE;
    return DREAL(f)->pMethods->xWrite(DREAL(f), data, n, off);
}
static int d_truncate(sqlite3_file *f, sqlite3_int64 size) { return DREAL(f)->pMethods->xTruncate(DREAL(f), size); }
static int d_sync(sqlite3_file *f, int flags)
{
    if (disk_fails(f, DISK_SYNC) || disk_fails(f, DISK_DB_SYNC)) return SQLITE_IOERR_FSYNC;
    return DREAL(f)->pMethods->xSync(DREAL(f), flags);
}
static int d_size(sqlite3_file *f, sqlite3_int64 *size) { return DREAL(f)->pMethods->xFileSize(DREAL(f), size); }
static int d_lock(sqlite3_file *f, int l) { return DREAL(f)->pMethods->xLock(DREAL(f), l); }
static int d_unlock(sqlite3_file *f, int l) { return DREAL(f)->pMethods->xUnlock(DREAL(f), l); }
static int d_reserved(sqlite3_file *f, int *out) { return DREAL(f)->pMethods->xCheckReservedLock(DREAL(f), out); }
static int d_fcntl(sqlite3_file *f, int op, void *arg) { return DREAL(f)->pMethods->xFileControl(DREAL(f), op, arg); }
static int d_sector(sqlite3_file *f) { return DREAL(f)->pMethods->xSectorSize(DREAL(f)); }
static int d_device(sqlite3_file *f) { return DREAL(f)->pMethods->xDeviceCharacteristics(DREAL(f)); }
static int d_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **out)
{
    return DREAL(f)->pMethods->xShmMap(DREAL(f), pg, sz, extend, out);
}
static int d_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return DREAL(f)->pMethods->xShmLock(DREAL(f), off, n, flags);
}
static void d_shm_barrier(sqlite3_file *f) { DREAL(f)->pMethods->xShmBarrier(DREAL(f)); }
static int d_shm_unmap(sqlite3_file *f, int del) { return DREAL(f)->pMethods->xShmUnmap(DREAL(f), del); }
static int d_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
    return DREAL(f)->pMethods->xFetch(DREAL(f), off, n, out);
}
static int d_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p) { return DREAL(f)->pMethods->xUnfetch(DREAL(f), off, p); }

static const sqlite3_io_methods disk_methods = {
    3,          d_close,  d_read,        d_write,     d_truncate, d_sync,   d_size,
    d_lock,     d_unlock, d_reserved,    d_fcntl,     d_sector,   d_device, d_shm_map,
    d_shm_lock, d_shm_barrier, d_shm_unmap, d_fetch, d_unfetch,
};

static int d_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    disk_file *d = (disk_file *)f;
    memset(d, 0, sizeof *d);
    d->real = (sqlite3_file *)(d + 1);
    d->wal = flags & SQLITE_OPEN_WAL;
    d->main_db = flags & SQLITE_OPEN_MAIN_DB;
    int rc = g_disk_base->xOpen(g_disk_base, name, d->real, flags, out_flags);
    /* what the default VFS opened, it closes through us; what it did not,
     * nothing does */
    d->base.pMethods = d->real->pMethods ? &disk_methods : NULL;
    return rc;
}

static sqlite3_vfs g_disk_vfs;

/* The wrapper, as the default VFS (main, before SQLite is first used). */
static void disk_install(void)
{
    g_disk_base = sqlite3_vfs_find(NULL);
    g_disk_vfs = *g_disk_base;
    g_disk_vfs.zName = "test-disk";
    g_disk_vfs.szOsFile = (int)((sizeof(disk_file) + 15) / 16 * 16) + g_disk_base->szOsFile;
    g_disk_vfs.xOpen = d_open;
    g_disk_vfs.pAppData = NULL;
    g_disk_vfs.pNext = NULL;
    if (g_disk_vfs.iVersion > 2) g_disk_vfs.iVersion = 2; /* no xSetSystemCall & co. to pass on */
    sqlite3_vfs_register(&g_disk_vfs, 1);
}

static void sync_fault(bool on)
{
    atomic_store(&g_disk_count, 0);
    atomic_store(&g_disk_fault, on ? DISK_SYNC : DISK_OK);
}

static void write_fault(bool on)
{
    atomic_store(&g_disk_count, 0);
    atomic_store(&g_disk_fault, on ? DISK_WRITE : DISK_OK);
}

/* The disk fails the fsync of one batch's commit in seven: none of that
 * batch is kept, each of its writes is refused as a retry, and the writer
 * goes on with the next batch. */
static void test_fsync_failed_mid_batch(void **state)
{
    (void)state;
    writers_through("fs", sync_fault, &g_disk_failed);
}

/* The same when the disk fails a write of the log (one in seven). */
static void test_log_write_failed_mid_batch(void **state)
{
    (void)state;
    writers_through("fw", write_fault, &g_disk_failed);
}

/* What a crash leaves: the database and its log copied aside (no shared
 * memory index: opening the copy recovers from the log, as after kill -9),
 * then what sql (one integer; ?1 bound to bind, if any) reads in it. */
static long long crash_copy_scalar(const char *sql, const char *bind)
{
    char dir[96], path[160], from[256], to[256];
    snprintf(dir, sizeof dir, "%s/crash-XXXXXX", g_dir);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/copy.db", dir);
    static const char *const suffixes[] = {"", "-wal"};
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s%s", g_db, suffixes[i]);
        snprintf(to, sizeof to, "%s%s", path, suffixes[i]);
        FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
        assert_non_null(out);
        char buf[65536];
        size_t n;
        while (in && (n = fread(buf, 1, sizeof buf, in)) > 0) assert_int_equal(fwrite(buf, 1, n, out), n);
        if (in) fclose(in);
        fclose(out);
    }
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, "unix"), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (bind) sqlite3_bind_text(st, 1, bind, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    for (int i = 0; i < 3; i++) {
        snprintf(to, sizeof to, "%s%s", path, i < 2 ? suffixes[i] : "-shm");
        unlink(to);
    }
    rmdir(dir);
    return v;
}

static bool org_in_crash_copy(const char *id)
{
    return crash_copy_scalar("SELECT COUNT(*) FROM orgs WHERE id = ?1", id) > 0;
}

/* A write whose batch's fsync failed was answered "not kept, retry": the
 * server killed right after (nothing written since) must not bring it back
 * from the log, or the client's retry makes it twice. */
static void test_fsync_failed_then_killed(void **state)
{
    (void)state;
    make_org(ORG_A, "11590", "integrated");
    assert_int_equal(write_unit(work_nomem, "fk_before", NULL), 0);
    atomic_store(&g_disk_count, DISK_EVERY - 1); /* the next sync of a log fails */
    atomic_store(&g_disk_fault, DISK_SYNC);
    store_err se = {0};
    int rc = write_unit(work_nomem, "fk_failed", &se);
    atomic_store(&g_disk_fault, DISK_OK);
    assert_int_equal(rc, -1);
    assert_int_equal(se.kind, STORE_UNAVAILABLE);
    assert_false(org_exists("fk_failed"));
    assert_true(org_in_crash_copy("fk_before"));
    assert_false(org_in_crash_copy("fk_failed"));
    /* and the next write is kept, there and after a crash */
    assert_int_equal(write_unit(work_nomem, "fk_after", NULL), 0);
    assert_true(org_in_crash_copy("fk_after"));
    assert_false(org_in_crash_copy("fk_failed"));
}

/* One write at a time, each of its allocations refused in turn (the
 * first, then the second ... to past the last): each is kept and
 * acknowledged, or refused as a retry and leaves nothing. */
static void test_each_allocation_of_a_write_refused_in_turn(void **state)
{
    (void)state;
    make_org(ORG_A, "11590", "integrated");
    int kept = 0, refused = 0;
    for (int i = 0; i < 400; i++) {
        char id[64];
        snprintf(id, sizeof id, "sw_%d", i);
        store_reply r = {0};
        err_t e = {0};
        store_err se = {0};
        atomic_store(&g_nomem_count, 0);
        atomic_store(&g_nomem_only, i);
        atomic_store(&g_nomem, true);
        int rc = store_write(NULL, work_nomem, id, &r, &e, &se);
        atomic_store(&g_nomem, false);
        atomic_store(&g_nomem_only, -1);
        bool there = org_exists(id);
        if (rc == 0 && !there) fail_msg("%s: acknowledged, and not there", id);
        if (rc != 0 && there) fail_msg("%s: refused (%d %s / %s), and there", id, e.status, e.code, se.message);
        if (rc != 0 && se.kind != STORE_UNAVAILABLE && se.kind != STORE_BUSY && e.status != 503)
            fail_msg("%s: refused as %d %s / %s %s", id, e.status, e.code, store_kind_name(se.kind), se.message);
        kept += rc == 0;
        refused += rc != 0;
        err_clear(&e);
        store_reply_clear(&r);
    }
    assert_true(refused > 10);
    assert_true(kept > 10);
}

/* A bearer token read while SQLite is refused memory: a value it could not
 * copy out must not read as none (an expiry as "never", an organisation
 * as none). Each of the read's allocations (about a dozen) refused in
 * turn: each read is the token as it is, or refused (unavailable). */
static void test_principal_read_short_of_memory(void **state)
{
    (void)state;
    make_org(ORG_A, "11590", "integrated");
    token_arg a = {.user = "short.of.memory", .role = "worker", .org = ORG_A,
                   .expires_at = "2001-02-03T04:05:06.789Z"};
    assert_int_equal(write_unit(work_token_insert, &a, NULL), 0);
    char token[TOKEN_MAX];
    snprintf(token, sizeof token, "%s", a.row.token);
    token_arg ok = {.token = token};
    assert_int_equal(read_unit(work_principal, &ok, NULL), 0);
    assert_true(ok.p.expires_ms > 0);
    /* The first allocation of the read refused, then the second ... to
     * past the last. */
    int read = 0, refused = 0;
    for (int i = 0; i < 200; i++) {
        token_arg q = {.token = token};
        atomic_store(&g_nomem_count, 0);
        atomic_store(&g_nomem_only, i);
        atomic_store(&g_nomem, true);
        int rc = read_unit(work_principal, &q, NULL);
        atomic_store(&g_nomem, false);
        if (rc) {
            if (q.se.kind != STORE_UNAVAILABLE && q.se.kind != STORE_BUSY)
                fail_msg("read %d: refused as %s: %s", i, store_kind_name(q.se.kind), q.se.message);
            refused++;
            continue;
        }
        read++;
        if (q.p.expires_ms != ok.p.expires_ms || strcmp(q.p.org, ORG_A) || strcmp(q.p.role, "worker") ||
            strcmp(q.p.region, "11590") || strcmp(q.p.user, "short.of.memory"))
            fail_msg("read %d: the token read as expires_ms=%lld org='%s' role='%s' region='%s' user='%s'", i,
                     (long long)q.p.expires_ms, q.p.org, q.p.role, q.p.region, q.p.user);
    }
    atomic_store(&g_nomem_only, -1);
    assert_true(read > 0);
    assert_true(refused > 0);
}

/* What a read gave, as the API would show it (NULL: refused as a retry). */
typedef char *(*read_shown)(int i, bool *refused);

static char *shown_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    assert_non_null(s);
    return s;
}

static principal *g_sweep_p;
static const char *g_sweep_id;

static void check_refused(int i, const char *what, const store_err *se)
{
    if (se->kind != STORE_UNAVAILABLE && se->kind != STORE_BUSY)
        fail_msg("%s, allocation %d refused: answered %s: %s", what, i, store_kind_name(se->kind), se->message);
}

static char *case_shown(int i, bool *refused)
{
    case_arg g = {.p = g_sweep_p, .id = g_sweep_id};
    if (read_unit(work_case_get, &g, NULL)) {
        check_refused(i, "case read", &g.se);
        *refused = true;
        return NULL;
    }
    return shown_json(render_case(&g.got));
}

static char *person_shown(int i, bool *refused)
{
    person_arg g = {.p = g_sweep_p, .id = g_sweep_id};
    if (read_unit(work_person_get, &g, NULL)) {
        check_refused(i, "person read", &g.se);
        *refused = true;
        return NULL;
    }
    char *s = shown_json(render_person(&g.person));
    person_row_free(&g.person);
    return s;
}

/* Each allocation of a read refused in turn, the first to past the last:
 * the read is what it is without a refusal, or refused as a retry; never a
 * row with a field silently empty (an organisation, a name, a stage). */
static void sweep_read(const char *what, read_shown shown)
{
    bool refused = false;
    char *want = shown(-1, &refused);
    assert_false(refused);
    int read = 0, refusals = 0;
    for (int i = 0; i < 300; i++) {
        atomic_store(&g_nomem_count, 0);
        atomic_store(&g_nomem_only, i);
        atomic_store(&g_nomem, true);
        refused = false;
        char *got = shown(i, &refused);
        atomic_store(&g_nomem, false);
        if (refused) {
            refusals++;
            continue;
        }
        read++;
        if (strcmp(got, want)) fail_msg("%s, allocation %d refused: read %s\n  not %s", what, i, got, want);
        free(got);
    }
    atomic_store(&g_nomem_only, -1);
    free(want);
    assert_true(read > 0);
    assert_true(refusals > 0);
}

/* A case and a person with every field filled (Korean text, tags,
 * eligibility facts, a sealed number shown masked), read short of memory. */
static void test_case_and_person_reads_short_of_memory(void **state)
{
    (void)state;
    make_org(ORG_A, "11590", "integrated");
    make_principal(&PA, ORG_A, "worker.a", "11590");
    json_t *tags = json_pack("[ss]", "독거", "기초생활수급");
    json_t *facts = json_pack("{sbss}", "수급", 1, "장기요양등급", "3등급");
    person_in in = {.name = "메모리 부족 대상자", .birth_date = "1948-03-01", .sex = "F", .rrn = "4803012234560",
                    .phone = "010-1234-5678", .address = "서울특별시 동작구 상도로 1", .tags = tags,
                    .eligibility = facts};
    person_arg a = {.p = &PA, .in = &in};
    if (write_unit(work_person_insert, &a, NULL)) fail_msg("person insert: %s", a.se.message);
    char pid[ID_MAX];
    snprintf(pid, sizeof pid, "%s", a.person.id);
    person_row_free(&a.person);
    json_decref(tags);
    json_decref(facts);
    case_row c;
    make_case(&PA, pid, &c);
    g_sweep_p = &PA;
    g_sweep_id = c.id;
    sweep_read("case read", case_shown);
    g_sweep_id = pid;
    sweep_read("person read", person_shown);
}

/* The disk fails one read in seven of the reading thread (the database
 * and its log), while a write between two reads makes each read the pages
 * again: each read is the case as it is, or refused as a retry ("cannot
 * read its disk"), never a row with a field silently empty. */
static void test_case_read_when_the_disk_fails_reads(void **state)
{
    (void)state;
    char pid[ID_MAX];
    case_row c;
    make_worker_case("읽기 실패 대상자", pid, &c);
    g_sweep_p = &PA;
    g_sweep_id = c.id;
    bool refused = false;
    char *want = case_shown(-1, &refused);
    assert_false(refused);
    int read = 0, refusals = 0;
    atomic_store(&g_disk_count, 0);
    atomic_store(&g_disk_fault, DISK_READ);
    for (int i = 0; i < 60; i++) {
        char id[64];
        snprintf(id, sizeof id, "dr_%d", i);
        assert_int_equal(write_unit(work_nomem, id, NULL), 0); /* the writer's reads are not failed */
        g_disk_reads_here = true;
        case_arg g = {.p = &PA, .id = c.id};
        int rc = read_unit(work_case_get, &g, NULL);
        g_disk_reads_here = false;
        if (rc) {
            if (g.se.kind != STORE_UNAVAILABLE || !strstr(g.se.message, "cannot read"))
                fail_msg("read %d: refused as %s: %s", i, store_kind_name(g.se.kind), g.se.message);
            refusals++;
            continue;
        }
        read++;
        char *got = shown_json(render_case(&g.got));
        if (strcmp(got, want)) fail_msg("read %d: %s\n  not %s", i, got, want);
        free(got);
    }
    atomic_store(&g_disk_fault, DISK_OK);
    assert_true(read > 0);
    assert_true(refusals > 0);
    /* and the same connection reads again once the disk does */
    char *after = case_shown(-1, &refused);
    assert_false(refused);
    assert_string_equal(after, want);
    free(after);
    free(want);
}

/* ---- cursors (the API's, over the store's keys) ---- */

static void test_cursor_round_trip(void **state)
{
    (void)state;
    static const char *const ids[] = {"per_01JD7XK3M4N5P6Q7R8S9T0VWXY", "1", "42", "a-b_c", "cas_0",
                                      "2026-01-31.ddl_01JD7XK3M4N5P6Q7R8S9T0VWXY", NULL};
    for (const char *const *id = ids; *id; id++) {
        char cur[96], back[ID_MAX + 16];
        cursor_encode(*id, cur, sizeof cur);
        assert_true(strlen(cur) > 0);
        for (const char *p = cur; *p; p++)
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                  *p == '_'))
                fail_msg("cursor %s is not URL-safe", cur);
        assert_int_equal(cursor_decode(cur, back, sizeof back), 0);
        assert_string_equal(back, *id);
    }
    /* Fresh ids round-trip too. */
    for (int i = 0; i < 100; i++) {
        char id[ID_MAX], cur[96], back[ID_MAX];
        id_new("evt_", id);
        cursor_encode(id, cur, sizeof cur);
        assert_int_equal(cursor_decode(cur, back, sizeof back), 0);
        assert_string_equal(back, id);
    }
}

static void test_cursor_garbage(void **state)
{
    (void)state;
    char id[ID_MAX];
    assert_int_equal(cursor_decode(NULL, id, sizeof id), -1);
    assert_int_equal(cursor_decode("", id, sizeof id), -1);
    assert_int_equal(cursor_decode("!!!!", id, sizeof id), -1);
    assert_int_equal(cursor_decode("a", id, sizeof id), -1);        /* not a base64 length */
    assert_int_equal(cursor_decode("cGVy+/8", id, sizeof id), -1);  /* standard, not URL-safe, alphabet */
    assert_int_equal(cursor_decode("cGVyXzE=", id, sizeof id), -1); /* padding is not used */
    assert_int_equal(cursor_decode("cGVy XzE", id, sizeof id), -1);
    /* Well-formed base64 of something that is not an id. */
    char cur[256];
    cursor_encode("per_1; DROP TABLE persons", cur, sizeof cur);
    assert_int_equal(cursor_decode(cur, id, sizeof id), -1);
    cursor_encode("per\n1", cur, sizeof cur);
    assert_int_equal(cursor_decode(cur, id, sizeof id), -1);
    cursor_encode("홍길동", cur, sizeof cur);
    assert_int_equal(cursor_decode(cur, id, sizeof id), -1);
    /* Longer than the caller's buffer: refused, not truncated or overflowed. */
    char small[8];
    cursor_encode("per_0123456789", cur, sizeof cur);
    assert_int_equal(cursor_decode(cur, small, sizeof small), -1);
}

/* RRNs at rest: sealed, bound to their person, found by a keyed index. */
static void test_pii_seal(void **state)
{
    (void)state;
    char sealed[128], digits[14], idx1[SHA256_HEX], idx2[SHA256_HEX], masked[16];
    assert_int_equal(pii_rrn_seal("9001011234568", "per_A", sealed, sizeof sealed), 0);
    assert_null(strstr(sealed, "9001011234568"));
    assert_int_equal(pii_rrn_open(sealed, "per_A", digits), 0);
    assert_string_equal(digits, "9001011234568");
    assert_int_equal(pii_rrn_open(sealed, "per_B", digits), -1); /* bound to its person */
    sealed[30] = sealed[30] == 'A' ? 'B' : 'A';
    assert_int_equal(pii_rrn_open(sealed, "per_A", digits), -1); /* tampered */
    pii_rrn_index("9001011234568", idx1);
    pii_rrn_index("9001011234568", idx2);
    assert_string_equal(idx1, idx2);
    char plain[SHA256_HEX];
    sha256_hex("9001011234568", 13, plain);
    assert_string_not_equal(idx1, plain); /* keyed: not a plain hash anyone can recompute */
    pii_rrn_mask("9001011234568", masked);
    assert_string_equal(masked, "900101-1******");
}

/* ---- SQLite stays inside core/store/ ---- */

/* Fails when path (a C file outside core/store/) names SQLite or the
 * store's internal header. */
static void check_no_sqlite(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        n++;
        if (strstr(line, "sqlite3") || strstr(line, "SQLITE_") || strstr(line, "store/internal.h"))
            fail_msg("%s:%d names SQLite outside core/store/: %s", path, n, line);
    }
    fclose(f);
}

static int scan_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int files = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st)) continue;
        size_t len = strlen(de->d_name);
        if (S_ISDIR(st.st_mode)) {
            if (strcmp(de->d_name, "store")) files += scan_tree(path);
        } else if (len > 2 && (!strcmp(de->d_name + len - 2, ".h") || !strcmp(de->d_name + len - 2, ".c"))) {
            check_no_sqlite(path);
            files++;
        }
    }
    closedir(d);
    return files;
}

static void test_sqlite_stays_in_store(void **state)
{
    (void)state;
    const char *src = getenv("SOURCE_DIR");
    if (!src) skip();
    char core[4096];
    snprintf(core, sizeof core, "%s/core", src);
    assert_true(scan_tree(core) > 20); /* every header and source of the core but the store's own */
}

/* ---- the checkpointer: the log is folded in beside the writer ---- */
static const char SQL_SCRATCH[] = "CREATE TABLE IF NOT EXISTS ckpt_scratch (b BLOB)";
static const char SQL_SCRATCH_ROW[] = "INSERT INTO ckpt_scratch (b) VALUES (zeroblob(36000))"; /* 9 pages */
static const char SQL_SCRATCH_COUNT[] = "SELECT count(*) FROM ckpt_scratch";

static int work_scratch(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)arg;
    store_err se = {0};
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st = store_stmt(tx, i ? SQL_SCRATCH_ROW : SQL_SCRATCH, &se);
        if (!st) return err_set(e, 500, "internal_error", "%s", se.message), -1;
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) return err_set(e, 500, "internal_error", "%s", sqlite3_errmsg(tx->db)), -1;
    }
    reply->status = 200;
    return 0;
}

#define CHECKPOINTS_BY_CHECKPOINTER "sarye_store_log_checkpoints_total{by=\"checkpointer\"}"

/* Writes of some 9,000 pages in all: the checkpointer folds the log into
 * the database beside the writer, a pass once a thousand frames, and the
 * log never grows past the frames at which the writer folds it in itself
 * (and one unit's more). */
static void test_log_checkpoints_beside_the_writer(void **state)
{
    (void)state;
    char wal[256];
    snprintf(wal, sizeof wal, "%s-wal", g_db);
    unsigned long before = metric(CHECKPOINTS_BY_CHECKPOINTER), writes0 = metric("sarye_store_wal_writes_total");
    long long largest = 0;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(write_unit(work_scratch, NULL, NULL), 0);
        struct stat st;
        if (stat(wal, &st) == 0 && st.st_size > largest) largest = st.st_size;
    }
    assert_int_equal(scalar(SQL_SCRATCH_COUNT, NULL, NULL, 0), 1000);
    for (int waited = 0; metric(CHECKPOINTS_BY_CHECKPOINTER) == before && waited < 300; waited++) usleep(100000);
    unsigned long passes = metric(CHECKPOINTS_BY_CHECKPOINTER) - before;
    unsigned long frames = (metric("sarye_store_wal_writes_total") - writes0) / 2; /* a frame is two writes */
    assert_true(passes > 0);
    /* a pass falls due once a thousand frames of log (the row's nine and
     * the table's: some 11,000 here), and no more often */
    if (passes > frames / STORE_CKPT_FRAMES + 1)
        fail_msg("%lu passes of the checkpointer for %lu frames", passes, frames);
    long long bound = 32 + (long long)(STORE_CKPT_INLINE_FRAMES + 16) * (4096 + 24);
    if (largest > bound) fail_msg("the log reached %lld bytes (bound %lld)", largest, bound);
}

/* ---- opening the store while memory is refused ---- */
#define CKPT_RUNNING "sarye_store_checkpointer_running"

/* Without a checkpointer, the writer folds the log in itself every
 * thousand frames, and after each time tries to start one again. */
static void check_writer_folds_then_mends(void)
{
    char wal[256];
    snprintf(wal, sizeof wal, "%s-wal", g_db);
    const char *by_writer = "sarye_store_log_checkpoints_total{by=\"writer\"}";
    unsigned long folded0 = metric(by_writer);
    long long largest = 0;
    int writes = 0;
    for (; writes < 400 && metric(CKPT_RUNNING) == 0; writes++) {
        assert_int_equal(write_unit(work_scratch, NULL, NULL), 0);
        struct stat st;
        if (stat(wal, &st) == 0 && st.st_size > largest) largest = st.st_size;
    }
    if (metric(CKPT_RUNNING) != 1) fail_msg("no checkpointer after %d writes of 9 pages", writes);
    assert_true(metric(by_writer) > folded0); /* the writer folded the log in itself first */
    /* about a thousand frames a time (and a unit's more), not the 8,000 at
     * which a writer beside a checkpointer does */
    long long bound = 32 + (long long)(STORE_CKPT_FRAMES + 16) * (4096 + 24);
    if (largest > bound) fail_msg("the log reached %lld bytes (bound %lld)", largest, bound);
    /* and with the checkpointer started, the store goes on */
    unsigned long passes0 = metric(CHECKPOINTS_BY_CHECKPOINTER);
    for (int i = 0; i < 200 && metric(CHECKPOINTS_BY_CHECKPOINTER) == passes0; i++)
        assert_int_equal(write_unit(work_scratch, NULL, NULL), 0);
    for (int waited = 0; metric(CHECKPOINTS_BY_CHECKPOINTER) == passes0 && waited < 300; waited++) usleep(100000);
    assert_true(metric(CHECKPOINTS_BY_CHECKPOINTER) > passes0);
}

/* The store opened while SQLite is refused one allocation, each in turn
 * (a sample of some 150 across the whole opening: three connections, the
 * schema read by each, the writer's statements): it opens working, or is
 * refused with a reason and leaves nothing behind (memcheck and ASan see
 * the leaks). Where the refusal falls in the checkpointer's connection,
 * the store opens without one and says so in /metrics; the writer folds
 * the log in itself, and starts the checkpointer once memory allows. */
static void test_open_short_of_memory(void **state)
{
    (void)state;
    store_close();
    /* the allocations an opening makes */
    atomic_store(&g_nomem_only, LONG_MAX);
    atomic_store(&g_nomem_count, 0);
    atomic_store(&g_nomem, true);
    open_store(true);
    atomic_store(&g_nomem, false);
    long total = atomic_load(&g_nomem_count);
    assert_int_equal(metric(CKPT_RUNNING), 1);
    store_close();
    assert_true(total > 100);
    int opened = 0, refused = 0, without = 0;
    for (long i = 0; i < total; i += total / 150 + 1) {
        store_opts o = {.path = g_db, .durability_full = true, .busy_timeout_ms = 2000};
        char err[512] = "";
        int v = 0;
        atomic_store(&g_nomem_only, i);
        atomic_store(&g_nomem_count, 0);
        atomic_store(&g_nomem, true);
        int rc = store_open(&o, err, sizeof err);
        if (!rc) rc = store_migrate(&v, err, sizeof err);
        atomic_store(&g_nomem, false);
        if (rc) {
            refused++;
            if (!err[0]) fail_msg("allocation %ld of %ld refused: the opening failed without a reason", i, total);
        } else {
            opened++;
            assert_int_equal(v, g_version);
            /* before any write: one could find the log long enough to fold,
             * and start the checkpointer */
            bool running = metric(CKPT_RUNNING) == 1;
            if (!running && !without++) check_writer_folds_then_mends();
            assert_int_equal(write_unit(work_scratch, NULL, NULL), 0);
            assert_true(scalar(SQL_SCRATCH_COUNT, NULL, NULL, 0) > 0);
        }
        store_close();
    }
    assert_true(refused > 0);
    if (!without) fail_msg("no refusal of %d fell in the checkpointer's connection (%ld allocations)", opened + refused,
                           total);
    atomic_store(&g_nomem_only, -1);
    open_store(true); /* for the tests after */
}

/* ---- a queue longer than one batch ---- */
#define LONG_QUEUE 1300 /* more than a batch takes (MAX_BATCH, 1152) */

static pthread_mutex_t g_gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_gate_cv = PTHREAD_COND_INITIALIZER;
static bool g_gate_held, g_gate_open;

/* Holds the writer until the test opens the gate. */
static int work_gate(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)tx;
    (void)arg;
    (void)e;
    pthread_mutex_lock(&g_gate_mu);
    g_gate_held = true;
    pthread_cond_broadcast(&g_gate_cv);
    while (!g_gate_open) pthread_cond_wait(&g_gate_cv, &g_gate_mu);
    pthread_mutex_unlock(&g_gate_mu);
    reply->status = 200;
    return 0;
}

static void *gate_thread(void *arg)
{
    (void)arg;
    long rc = write_unit(work_gate, NULL, NULL);
    store_thread_done();
    return (void *)rc;
}

static void *queued_thread(void *arg)
{
    int i = (int)(intptr_t)arg;
    char id[64];
    snprintf(id, sizeof id, "lq_%d", i);
    long rc = write_unit(work_nomem, id, NULL); /* an audit record and an organisation named id */
    store_thread_done();
    return (void *)rc;
}

/* The writer is held while 1,300 writes queue behind it; let go, it takes
 * them in batches of at most 1,152, one after the other without waiting
 * for more: every write is acknowledged and there, and the audit chain is
 * one line across the batches. */
static void test_queue_longer_than_a_batch(void **state)
{
    (void)state;
    make_org(ORG_A, "11590", "integrated");
    g_gate_held = g_gate_open = false;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t gate, th[LONG_QUEUE];
    assert_int_equal(pthread_create(&gate, &attr, gate_thread, NULL), 0);
    pthread_mutex_lock(&g_gate_mu); /* the gate is in the writer's hands, not in the queue */
    while (!g_gate_held) pthread_cond_wait(&g_gate_cv, &g_gate_mu);
    pthread_mutex_unlock(&g_gate_mu);
    assert_int_equal(metric("sarye_store_queue_depth"), 0);
    for (int i = 0; i < LONG_QUEUE; i++)
        assert_int_equal(pthread_create(&th[i], &attr, queued_thread, (void *)(intptr_t)i), 0);
    pthread_attr_destroy(&attr);
    for (int waited = 0; metric("sarye_store_queue_depth") < LONG_QUEUE; waited++) {
        if (waited > 60000) fail_msg("%lu of %d writes queued", metric("sarye_store_queue_depth"), LONG_QUEUE);
        usleep(10000);
    }
    unsigned long batches1 = metric("sarye_store_batches_total");
    pthread_mutex_lock(&g_gate_mu);
    g_gate_open = true;
    pthread_cond_broadcast(&g_gate_cv);
    pthread_mutex_unlock(&g_gate_mu);
    void *ret = NULL;
    assert_int_equal(pthread_join(gate, &ret), 0);
    assert_int_equal((long)ret, 0);
    long failed = 0;
    for (int i = 0; i < LONG_QUEUE; i++) {
        assert_int_equal(pthread_join(th[i], &ret), 0);
        failed += (long)ret != 0;
    }
    assert_int_equal(failed, 0);
    assert_int_equal(metric("sarye_store_queue_depth"), 0);
    assert_int_equal(metric("sarye_store_batch_max"), 1152);
    /* the gate's batch, then the queue: one batch full, the rest in the next */
    assert_int_equal(metric("sarye_store_batches_total") - batches1, 3);
    assert_int_equal(scalar("SELECT COUNT(*) FROM orgs WHERE id LIKE 'lq\\_%' ESCAPE '\\'", NULL, NULL, 0), LONG_QUEUE);
    verify_arg v = {0, 0, {0}};
    assert_int_equal(read_unit(work_verify, &v, NULL), 0);
    assert_int_equal(v.broken, 0);
}

/* Checkpoints of the log that succeeded, the writer's and the
 * checkpointer's. */
static unsigned long checkpoints_done(void)
{
    return metric("sarye_store_log_checkpoints_total{by=\"writer\"}") + metric(CHECKPOINTS_BY_CHECKPOINTER);
}

/* Every fsync of the database fails while 1,000 rows of 9 pages are
 * written (some 11,000 frames of log): no checkpoint folds the log in, so
 * it grows past the 8,000 frames at which the writer folds it itself. Every
 * write is kept, in the log (a crash copy holds them all); the failures are
 * counted, and the writer's own fold, failed, is tried again a thousand
 * frames later, not after every commit. Once the disk mends, checkpoints
 * succeed and none fails. */
static void test_checkpoints_failing_keep_the_log(void **state)
{
    (void)state;
    const char *failures = "sarye_store_log_checkpoint_failures_total";
    unsigned long failed0 = metric(failures), writes0 = metric("sarye_store_wal_writes_total");
    long long rows0 = scalar(SQL_SCRATCH_COUNT, NULL, NULL, 0);
    atomic_store(&g_disk_fault, DISK_DB_SYNC);
    for (int i = 0; i < 1000; i++) assert_int_equal(write_unit(work_scratch, NULL, NULL), 0);
    unsigned long failed = metric(failures) - failed0;
    unsigned long frames = (metric("sarye_store_wal_writes_total") - writes0) / 2;
    assert_true(frames > STORE_CKPT_INLINE_FRAMES);
    assert_true(failed > 0);
    /* the checkpointer's passes (one a thousand frames) and the writer's
     * folds past 8,000 frames (one a thousand more): not one a commit */
    unsigned long bound = frames / STORE_CKPT_FRAMES + (frames - STORE_CKPT_INLINE_FRAMES) / STORE_CKPT_FRAMES + 4;
    if (failed > bound) fail_msg("%lu checkpoints failed over %lu frames (bound %lu)", failed, frames, bound);
    /* a crash now: the log answers for every row */
    assert_int_equal(crash_copy_scalar(SQL_SCRATCH_COUNT, NULL), rows0 + 1000);
    atomic_store(&g_disk_fault, DISK_OK);
    assert_int_equal(scalar(SQL_SCRATCH_COUNT, NULL, NULL, 0), rows0 + 1000);
    /* the disk mended: checkpoints succeed (the writer's, or the
     * checkpointer's), and none fails. Checkpoints run one at a time:
     * once one has succeeded since, the one that may have been under way
     * when the disk mended has ended too. */
    unsigned long mended = 0;
    for (int round = 0; round < 2; round++) {
        mended = metric(failures);
        unsigned long done0 = checkpoints_done();
        for (int i = 0; i < 300 && checkpoints_done() == done0; i++)
            assert_int_equal(write_unit(work_scratch, NULL, NULL), 0);
        for (int waited = 0; checkpoints_done() == done0 && waited < 300; waited++)
            usleep(100000); /* a pass due, not yet run */
        assert_true(checkpoints_done() > done0);
    }
    assert_int_equal(metric(failures), mended);
}

/* ---- migration 10: queued messages get their region ---- */
static void exec_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg ? msg : "?");
}

static const char *region_of_message(sqlite3 *db, const char *id, char *out, size_t n)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT region FROM outbox WHERE id = ?1", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
}

/* A database at schema 9 with messages in its outbox, migrated to 10: every
 * queued message is on the line of the region whose organisation it is
 * (its case's, or its referral's end that is not the agency), one whose
 * topic names nothing on the line of no region, and a delivered one left
 * alone (no line reads it). */
static void test_migration_10_gives_queued_messages_their_region(void **state)
{
    (void)state;
    assert_true(migrations_count >= 10);
    char path[256];
    snprintf(path, sizeof path, "%s/schema9.db", g_dir);
    unlink(path);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    for (int v = 0; v < 9; v++) exec_sql(db, migrations[v]);
    exec_sql(db,
             "INSERT INTO orgs (id, name, type, region, created_at) VALUES"
             " ('m_dong', '상도1동', 'emd', '11590', 'now'), ('m_gu', '관악구청', 'sigungu', '11620', 'now'),"
             " ('m_agency', '고용센터', 'agency', '99995', 'now');"
             "INSERT INTO persons (id, org_id, name, birth_date, sex, tags, created_at, created_by, updated_at)"
             " VALUES ('m_per', 'm_dong', '홍길동', '1970-01-01', 'M', '[]', 'now', 'kim', 'now');"
             "INSERT INTO cases (id, person_id, program, org_id, region, source, stage, status, version, opened_at,"
             " updated_at) VALUES ('m_case', 'm_per', 'integrated', 'm_dong', '11590', 'walk_in', 'intake', 'open',"
             " 1, 'now', 'now');"
             "INSERT INTO referrals (id, person_id, from_org, to_org, reason, opinion, snapshot, status, created_at,"
             " created_by) VALUES"
             " ('m_out', 'm_per', 'm_gu', 'm_agency', '취업 연계', '의견', '{}', 'sent', 'now', 'kim'),"
             " ('m_in', 'm_per', 'm_agency', 'm_dong', '회신', '의견', '{}', 'sent', 'now', 'kim');"
             "INSERT INTO outbox (id, seq, agency, topic, kind, idempotency_key, payload, status, attempts, next_at,"
             " created_at) VALUES"
             " ('m1', 1, 'm_agency', 'm_case', 'case', 'm1', '{}', 'queued', 0, 0, 'now'),"
             " ('m2', 2, 'm_agency', 'm_out', 'referral', 'm2', '{}', 'queued', 0, 0, 'now'),"
             " ('m3', 3, 'm_agency', 'm_in', 'answer', 'm3', '{}', 'queued', 0, 0, 'now'),"
             " ('m4', 4, 'm_agency', 'm_nothing', 'case', 'm4', '{}', 'queued', 0, 0, 'now'),"
             " ('m5', 5, 'm_agency', 'm_case', 'case', 'm5', '{}', 'delivered', 1, 0, 'now');");
    exec_sql(db, migrations[9]);
    char r[32];
    assert_string_equal(region_of_message(db, "m1", r, sizeof r), "11590"); /* its case's organisation */
    assert_string_equal(region_of_message(db, "m2", r, sizeof r), "11620"); /* the referral's sender */
    assert_string_equal(region_of_message(db, "m3", r, sizeof r), "11590"); /* the referral's receiver */
    assert_string_equal(region_of_message(db, "m4", r, sizeof r), "");
    assert_string_equal(region_of_message(db, "m5", r, sizeof r), "");
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_schema"
                                        " WHERE type = 'index' AND name IN ('outbox_line_due', 'outbox_due_seq')"
                                        " ORDER BY name)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "outbox_line_due");
    sqlite3_finalize(st);
    sqlite3_close(db);
    unlink(path);
}

int main(void)
{
    nomem_install();
    disk_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migration_10_gives_queued_messages_their_region),
        cmocka_unit_test(test_pii_seal),
        cmocka_unit_test(test_open_and_migrate),
        cmocka_unit_test(test_pragmas_full),
        cmocka_unit_test(test_pragmas_normal),
        cmocka_unit_test(test_org_insert_and_duplicate),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_persons),
        cmocka_unit_test(test_person_search_and_pages),
        cmocka_unit_test(test_households),
        cmocka_unit_test(test_cases_events_and_versions),
        cmocka_unit_test(test_write_rollback),
        cmocka_unit_test(test_idempotency),
        cmocka_unit_test(test_event_log_append_only),
        cmocka_unit_test(test_foreign_keys_enforced),
        cmocka_unit_test(test_migrate_refuses_newer_schema),
        cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_conflicts),
        cmocka_unit_test(test_kinds_answered),
        cmocka_unit_test(test_busy),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_group_commit_rerunnable),
        cmocka_unit_test(test_memory_refused_mid_batch),
        cmocka_unit_test(test_fsync_failed_mid_batch),
        cmocka_unit_test(test_log_write_failed_mid_batch),
        cmocka_unit_test(test_fsync_failed_then_killed),
        cmocka_unit_test(test_each_allocation_of_a_write_refused_in_turn),
        cmocka_unit_test(test_principal_read_short_of_memory),
        cmocka_unit_test(test_case_and_person_reads_short_of_memory),
        cmocka_unit_test(test_case_read_when_the_disk_fails_reads),
        cmocka_unit_test(test_cursor_round_trip),
        cmocka_unit_test(test_cursor_garbage),
        cmocka_unit_test(test_sqlite_stays_in_store),
        cmocka_unit_test(test_log_checkpoints_beside_the_writer),
        cmocka_unit_test(test_checkpoints_failing_keep_the_log),
        cmocka_unit_test(test_queue_longer_than_a_batch),
        cmocka_unit_test(test_open_short_of_memory),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
