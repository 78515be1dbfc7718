/*
 * test_secrets.c: the secrets of the store on a real SQLite file — the key
 * file and its id, what is derived from it (keyed digests, seals bound to
 * what they belong to), the keyring (a new database gets a key; one that
 * has a key refuses a missing or different one), the audit chain's MAC
 * (length-prefixed, so no two records encode alike), signed checkpoints,
 * verification in short transactions (with its timing printed, not
 * asserted) and the retention purges in batches.
 */
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
#include <sodium.h>
#include <sqlite3.h>

#include "base/base.h"
#include "process/process.h"
#include "store/internal.h" /* white-box: raw SQL through the statement cache */
#include "store/keys.h"
#include "store/pii.h"
#include "store/records.h"
#include "store/store.h"

static char g_dir[64], g_db[128], g_key[128];

static void paths(const char *name)
{
    snprintf(g_db, sizeof g_db, "%s/%s.db", g_dir, name);
    snprintf(g_key, sizeof g_key, "%s/%s.key", g_dir, name);
}

static int open_db(char *err, size_t errlen)
{
    store_opts o = {.path = g_db, .durability_full = false, .busy_timeout_ms = 2000};
    int v;
    if (store_open(&o, err, errlen) || store_migrate(&v, err, errlen)) return -1;
    return store_keyring_open(g_key, err, errlen);
}

static void open_ok(void)
{
    char err[2000] = "";
    if (open_db(err, sizeof err)) fail_msg("open: %s", err);
}

static int setup(void **state)
{
    (void)state;
    if (base_init()) return -1;
    log_set_level(LOG_ERROR);
    snprintf(g_dir, sizeof g_dir, "/tmp/sarye-unit-secrets-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- units of work ---- */
typedef struct {
    int n;
    const char *actor, *org;
} append_arg;

static int work_append(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    append_arg *a = arg;
    store_err se = {0};
    for (int i = 0; i < a->n; i++) {
        char rid[40];
        snprintf(rid, sizeof rid, "req_%d", i);
        audit_entry ae = {.actor = a->actor ? a->actor : "w1", .org = a->org ? a->org : "org1", .role = "worker",
                          .action = "GET /v1/persons/{id}", .person_id = "per_1", .request_id = rid, .status = 200};
        if (store_audit_append(tx, &ae, &se)) return err_set(e, 503, "x", "%s", se.message), -1;
    }
    return 0;
}

static void append(int n)
{
    append_arg a = {n, NULL, NULL};
    store_reply r = {0};
    err_t e = {0};
    store_err se = {0};
    assert_int_equal(store_write(NULL, work_append, &a, &r, &e, &se), 0);
}

typedef struct {
    const char *sql;
    long long value;
} sql_arg;

static int work_sql(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    (void)e;
    sql_arg *a = arg;
    store_err se = {0};
    sqlite3_stmt *st = store_stmt(tx, a->sql, &se);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    a->value = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static long long sql_write(const char *sql)
{
    sql_arg a = {sql, 0};
    store_reply r = {0};
    err_t e = {0};
    store_err se = {0};
    if (store_write(NULL, work_sql, &a, &r, &e, &se)) return -1;
    return a.value;
}

static long long sql_read(const char *sql)
{
    sql_arg a = {sql, 0};
    store_reply r = {0};
    err_t e = {0};
    store_err se = {0};
    if (store_read(work_sql, &a, &r, &e, &se)) return -1;
    return a.value;
}

/* ---- tests ---- */
static void test_keys_are_derived_and_bound(void **state)
{
    (void)state;
    paths("derive");
    char err[600];
    assert_int_equal(pii_load(g_key, true, err, sizeof err), 1); /* made */
    struct stat st;
    assert_int_equal(stat(g_key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char id1[PII_KEY_ID_HEX], h1[65], h2[65], idx1[65];
    snprintf(id1, sizeof id1, "%s", pii_key_id());
    assert_int_equal(strlen(id1), 16);
    pii_request_hash("POST /v1/persons\n{}", 19, h1);
    pii_rrn_index("9001011234568", idx1);
    assert_int_equal(pii_load(g_key, false, err, sizeof err), 0); /* the same key again: the same id */
    assert_string_equal(pii_key_id(), id1);
    pii_request_hash("POST /v1/persons\n{}", 19, h2);
    assert_string_equal(h1, h2);
    /* keyed: not the plain digest */
    char plain[65];
    sha256_hex("POST /v1/persons\n{}", 19, plain);
    assert_string_not_equal(h1, plain);
    /* another key: another id, digest and index */
    unlink(g_key);
    assert_int_equal(pii_load(g_key, true, err, sizeof err), 1);
    assert_string_not_equal(pii_key_id(), id1);
    pii_request_hash("POST /v1/persons\n{}", 19, h2);
    assert_string_not_equal(h1, h2);
    char idx2[65];
    pii_rrn_index("9001011234568", idx2);
    assert_string_not_equal(idx1, idx2);
    /* a seal opens only under its key and for what it is bound to */
    const keyset *ks = keys_current();
    char *s = keys_seal(ks->idem_body, "a/b\nk", 5, "{\"x\":1}", 7);
    assert_true(keys_is_sealed(s));
    size_t len = 0;
    unsigned char *p = keys_open(ks->idem_body, "a/b\nk", 5, s, &len);
    assert_non_null(p);
    assert_string_equal((char *)p, "{\"x\":1}");
    free(p);
    assert_null(keys_open(ks->idem_body, "a/b\nj", 5, s, &len)); /* another key's record */
    assert_null(keys_open(ks->seal, "a/b\nk", 5, s, &len));      /* another key */
    s[10] ^= 1;
    assert_null(keys_open(ks->idem_body, "a/b\nk", 5, s, &len)); /* changed */
    free(s);
    /* not a key */
    FILE *f = fopen(g_key, "w");
    fputs("short", f);
    fclose(f);
    assert_int_equal(pii_load(g_key, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "is not a sarye key"));
    unlink(g_key);
    assert_int_equal(pii_load(g_key, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot read the key file"));
    assert_int_equal(access(g_key, F_OK), -1); /* not made */
}

static void test_keyring_makes_a_key_only_for_a_new_database(void **state)
{
    (void)state;
    paths("ring");
    char err[2000] = "";
    open_ok();
    char id[PII_KEY_ID_HEX];
    snprintf(id, sizeof id, "%s", pii_key_id());
    size_t n;
    const audit_epoch *ep = store_keyring_epochs(&n);
    assert_int_equal(n, 1);
    assert_string_equal(ep[0].key_id, id);
    assert_int_equal(ep[0].first_seq, 1);
    append(3);
    store_close();
    /* the same key: opens */
    open_ok();
    store_close();
    /* no key file: refused, none made */
    char kept[160];
    snprintf(kept, sizeof kept, "%s.kept", g_key);
    assert_int_equal(rename(g_key, kept), 0);
    assert_int_equal(open_db(err, sizeof err), -1);
    assert_non_null(strstr(err, "does not exist, but the database"));
    assert_non_null(strstr(err, id));
    assert_int_equal(access(g_key, F_OK), -1);
    store_close();
    /* another key: refused, both ids named */
    keyset other;
    assert_int_equal(keys_create(g_key, &other, err, sizeof err), 0);
    assert_int_equal(open_db(err, sizeof err), -1);
    assert_non_null(strstr(err, id));
    assert_non_null(strstr(err, other.id));
    keys_wipe(&other);
    store_close();
    assert_int_equal(rename(kept, g_key), 0);
    open_ok();
    store_close();
}

static void test_the_mac_encodes_every_field_apart(void **state)
{
    (void)state;
    paths("mac");
    open_ok();
    /* "a|b" + "c" and "a" + "b|c" join alike with a separator; the MAC
     * takes each field with its length, so they differ. */
    append_arg a1 = {1, "a|b", "c"}, a2 = {1, "a", "b|c"};
    store_reply r = {0};
    err_t e = {0};
    store_err se = {0};
    assert_int_equal(store_write(NULL, work_append, &a1, &r, &e, &se), 0);
    assert_int_equal(store_write(NULL, work_append, &a2, &r, &e, &se), 0);
    audit_verify_opts o = {true, NULL, 0};
    audit_verify_result res;
    assert_int_equal(process_audit_verify(&o, &res, &e), 0);
    assert_true(res.ok);
    /* record 2 carrying record 1's fields, shifted, is found */
    assert_int_equal(sql_write("DROP TRIGGER audit_no_update"), 0);
    assert_int_equal(sql_write("UPDATE audit SET actor = 'a|b', org_id = 'c' WHERE seq = 2"), 0);
    o.full = true;
    assert_int_equal(process_audit_verify(&o, &res, &e), 0);
    assert_false(res.ok);
    assert_non_null(strstr(res.why, "record 2 was changed"));
    store_close();
}

typedef struct {
    audit_checkpoint *cps;
    size_t n;
} cps_arg;

static int work_cps(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    (void)e;
    cps_arg *a = arg;
    store_err se = {0};
    return store_audit_checkpoints(tx, 0, &a->cps, &a->n, &se);
}

static void test_checkpoints_are_signed_and_verify_is_incremental(void **state)
{
    (void)state;
    paths("verify");
    open_ok();
    process_audit_setup("", 1000);
    enum { N = 20000 };
    for (int i = 0; i < N / 1000; i++) append(1000);
    assert_int_equal(sql_read("SELECT COUNT(*) FROM audit_checkpoints WHERE reason = 'interval'"), N / 1000);
    err_t e = {0};
    audit_verify_opts o = {true, NULL, 2000};
    audit_verify_result r;
    assert_int_equal(process_audit_verify(&o, &r, &e), 0);
    assert_true(r.ok);
    assert_int_equal(r.checked, N);
    assert_int_equal(r.checkpoints, N / 1000);
    assert_true(r.transactions >= N / 2000);
    assert_true(r.written.id > 0);
    print_message("verify --full of %d records: %.1f ms in %lld read transactions of at most 2000\n", N,
                  r.elapsed_ms, r.transactions);
    append(10);
    o.full = false;
    assert_int_equal(process_audit_verify(&o, &r, &e), 0);
    assert_true(r.ok);
    assert_int_equal(r.checked, 10);
    assert_int_equal(r.from_checkpoint, N / 1000 + 1);
    print_message("verify (incremental) of 10 new records: %.1f ms\n", r.elapsed_ms);
    /* a checkpoint's signature covers what it says */
    cps_arg ca = {NULL, 0};
    store_reply rep = {0};
    store_err se = {0};
    assert_int_equal(store_read(work_cps, &ca, &rep, &e, &se), 0);
    size_t ne;
    const audit_epoch *ep = store_keyring_epochs(&ne);
    assert_true(store_audit_checkpoint_ok(&ca.cps[0], ep, ne));
    ca.cps[0].through_seq++;
    assert_false(store_audit_checkpoint_ok(&ca.cps[0], ep, ne));
    free(ca.cps);
    process_audit_setup("", 10000);
    store_close();
}

typedef struct {
    bool outbox;
    const char *before;
    int limit, deleted;
} purge_arg;

static int work_purge(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    (void)e;
    purge_arg *a = arg;
    store_err se = {0};
    return a->outbox ? store_outbox_purge(tx, a->before, a->limit, &a->deleted, &se)
                     : store_idem_purge(tx, a->before, a->limit, &a->deleted, &se);
}

static void test_purges_go_in_batches_and_spare_the_young(void **state)
{
    (void)state;
    paths("purge");
    open_ok();
    static const char *const old[] = {
        "INSERT INTO idempotency VALUES ('s', 'old1', '', 201, 's1.x', '2020-01-01T00:00:00.000Z')",
        "INSERT INTO idempotency VALUES ('s', 'old2', '', 201, 's1.x', '2020-01-02T00:00:00.000Z')",
        "INSERT INTO idempotency VALUES ('s', 'old3', '', 201, 's1.x', '2020-01-03T00:00:00.000Z')",
        "INSERT INTO idempotency VALUES ('s', 'old4', '', 201, 's1.x', '2020-01-04T00:00:00.000Z')",
        "INSERT INTO idempotency VALUES ('s', 'old5', '', 201, 's1.x', '2020-01-05T00:00:00.000Z')",
        "INSERT INTO idempotency VALUES ('s', 'old6', '', 201, 's1.x', '2020-01-06T00:00:00.000Z')",
        "INSERT INTO idempotency VALUES ('s', 'old7', '', 201, 's1.x', '2020-01-07T00:00:00.000Z')",
    };
    for (size_t i = 0; i < sizeof old / sizeof *old; i++) assert_int_equal(sql_write(old[i]), 0);
    assert_int_equal(sql_write("INSERT INTO idempotency VALUES ('s', 'young', '', 201, 's1.x', '2030-01-01T00:00:00.000Z')"), 0);
    assert_int_equal(sql_write("INSERT INTO outbox (id, seq, agency, topic, kind, idempotency_key, payload, status,"
                               " attempts, next_at, created_at, delivered_at) VALUES ('m1', 1, 'a', 't', 'k', 'm1',"
                               " '{}', 'delivered', 1, 0, '2020-01-01', '2020-01-01T00:00:00.000Z')"),
                     0);
    assert_int_equal(sql_write("INSERT INTO outbox (id, seq, agency, topic, kind, idempotency_key, payload, status,"
                               " attempts, next_at, created_at, delivered_at) VALUES ('m2', 2, 'a', 't', 'k', 'm2',"
                               " '{}', 'dead', 1, 0, '2020-01-01', NULL)"),
                     0);
    purge_arg a = {false, "2025-01-01T00:00:00.000Z", 3, 0};
    store_reply r = {0};
    err_t e = {0};
    store_err se = {0};
    int rounds = 0, total = 0;
    do {
        assert_int_equal(store_write(NULL, work_purge, &a, &r, &e, &se), 0);
        total += a.deleted;
        rounds++;
    } while (a.deleted == a.limit);
    assert_int_equal(total, 7);
    assert_int_equal(rounds, 3); /* 3 + 3 + 1 */
    assert_int_equal(sql_read("SELECT COUNT(*) FROM idempotency"), 1);
    purge_arg b = {true, "2025-01-01T00:00:00.000Z", 10, 0};
    assert_int_equal(store_write(NULL, work_purge, &b, &r, &e, &se), 0);
    assert_int_equal(b.deleted, 1);
    assert_int_equal(sql_read("SELECT COUNT(*) FROM outbox WHERE id = 'm2'"), 1);
    store_close();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_are_derived_and_bound),
        cmocka_unit_test(test_keyring_makes_a_key_only_for_a_new_database),
        cmocka_unit_test(test_the_mac_encodes_every_field_apart),
        cmocka_unit_test(test_checkpoints_are_signed_and_verify_is_incremental),
        cmocka_unit_test(test_purges_go_in_batches_and_spare_the_young),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
