/*
 * test_rules.c: rules/rules.h over a fixture plugin set
 * (tests/unit/fixtures/rules): every outcome of the rules boundary, and
 * the API status and code rules_error() makes of it. The plugins run in
 * the real sandbox (VM, budgets, phases); no store is bound, so the views
 * plugins read answer nothing.
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

#include "base/base.h"
#include "config/config.h"
#include "lua/host.h"
#include "lua/vm.h"
#include "rules/rules.h"

static char g_plugins[600];
static const principal WORKER = {.user = "kim", .role = "worker", .org = "t-emd", .region = "11111", .org_type = "emd"};

static case_row a_case(const char *program, const char *region, const char *stage)
{
    case_row c;
    memset(&c, 0, sizeof c);
    snprintf(c.id, sizeof c.id, "cas_T%s%s", region, stage);
    snprintf(c.person_id, sizeof c.person_id, "per_T");
    snprintf(c.program, sizeof c.program, "%s", program);
    snprintf(c.org, sizeof c.org, "t-emd");
    snprintf(c.region, sizeof c.region, "%s", region);
    snprintf(c.source, sizeof c.source, "walk_in");
    snprintf(c.stage, sizeof c.stage, "%s", stage);
    snprintf(c.status, sizeof c.status, "open");
    c.version = 3;
    return c;
}

/* Asks for a move of c with data (JSON text or NULL). */
static int move(const case_row *c, const char *to, const char *data, rules_verdict *v)
{
    json_t *d = data ? json_loads(data, 0, NULL) : NULL;
    rules_facts f = {.viewer = &WORKER};
    rules_move_in in = {.to = to, .data = d};
    int rc = rules_move(&f, c, &in, v);
    json_decref(d);
    return rc;
}

/* The API error of v: status, code, and the details object (owned by e). */
static void expect_error(const rules_verdict *v, rules_ask ask, const case_row *c, const char *to, int status,
                         const char *code, err_t *e)
{
    memset(e, 0, sizeof *e);
    rules_error(v, ask, c, to, e);
    if (e->status != status || strcmp(e->code, code))
        fail_msg("expected %d %s, got %d %s (%s)", status, code, e->status, e->code, e->message);
}

static const char *detail(const err_t *e, const char *key)
{
    return json_string_value(json_object_get(e->details, key));
}

/* ---- before any plugin set: not ready ---- */
static void test_no_generation_is_503(void **state)
{
    (void)state;
    case_row c = a_case("fixture", "11111", "discovery");
    rules_verdict v;
    assert_int_equal(move(&c, "intake", NULL, &v), -1);
    assert_int_equal(v.outcome, RULES_UNAVAILABLE);
    err_t e;
    expect_error(&v, RULES_ASK_MOVE, &c, "intake", 503, "not_ready", &e);
    err_clear(&e);
    rules_verdict_free(&v);
}

static int setup(void **state)
{
    (void)state;
    config cfg;
    config_defaults(&cfg);
    snprintf(cfg.plugins, sizeof cfg.plugins, "%s", g_plugins);
    /* Under valgrind (SARYE_TEST_TIMEOUT_SCALE, as for the API tests) code
     * runs some twenty times slower: the CPU budget grows with it, so that
     * the memory hog still meets its memory limit before its time. */
    const char *scale = getenv("SARYE_TEST_TIMEOUT_SCALE");
    double k = scale ? atof(scale) : 1;
    cfg.lua_timeout_ms = (int)(300 * (k > 1 ? k : 1));
    cfg.lua_memory_mb = 24;
    cfg.lua_region_strikes = 2;
    char err[2000] = "";
    if (rules_init(&cfg, err, sizeof err)) fail_msg("rules_init: %s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rules_thread_done();
    luahost_thread_done();
    rules_shutdown();
    return 0;
}

/* ---- accepted ---- */
static void test_move_accepted_with_effects(void **state)
{
    (void)state;
    case_row c = a_case("fixture", "11111", "discovery");
    rules_verdict v;
    assert_int_equal(move(&c, "intake", "{}", &v), 0);
    assert_int_equal(v.outcome, RULES_OK);
    assert_string_equal(v.label, "접수");
    assert_int_equal(v.effects.n_set, 1);
    assert_string_equal(v.effects.set[0].kind, "plan_due");
    assert_string_equal(v.effects.set[0].label, "계획 수립 기한");
    assert_string_equal(v.effects.set[0].plugin, "fixture");
    char today[11], due[11];
    date_today_str(today);
    assert_true(date_add_days(today, 30, due));
    assert_string_equal(v.effects.set[0].due_on, due);
    rules_verdict_free(&v);
    /* the region's overlay: its label */
    c = a_case("fixture", "99999", "discovery");
    assert_int_equal(move(&c, "intake", "{}", &v), 0);
    assert_string_equal(v.label, "접수 (시험 지역)");
    rules_verdict_free(&v);
    assert_string_equal(rules_label("fixture", "99999", "intake"), "접수 (시험 지역)");
    assert_string_equal(rules_label("fixture", "11111", "intake"), "접수");
    assert_null(rules_label("nowhere", "11111", "intake"));
}

static void test_open_accepted_and_refused(void **state)
{
    (void)state;
    case_row c = a_case("fixture", "11111", "");
    rules_facts f = {.viewer = &WORKER};
    rules_verdict v;
    json_t *ok = json_pack("{s:s}", "name", "홍길동"), *no = json_pack("{s:s}", "name", "거절"),
           *bad = json_pack("{s:s}", "name", "엉터리");
    assert_int_equal(rules_open(&f, &c, ok, NULL, &v), 0);
    assert_string_equal(v.first_stage, "discovery");
    assert_string_equal(v.label, "발굴");
    rules_verdict_free(&v);

    err_t e;
    assert_int_equal(rules_open(&f, &c, no, NULL, &v), -1);
    assert_int_equal(v.outcome, RULES_REFUSED);
    expect_error(&v, RULES_ASK_OPEN, &c, NULL, 422, "not_eligible", &e);
    assert_string_equal(detail(&e, "plugin"), "fixture");
    assert_string_equal(detail(&e, "version"), "2.3.4");
    assert_string_equal(detail(&e, "reason"), "대상 아님");
    err_clear(&e);
    rules_verdict_free(&v);

    /* an eligibility rule that answers neither true nor false is the plugin's error */
    assert_int_equal(rules_open(&f, &c, bad, NULL, &v), -1);
    expect_error(&v, RULES_ASK_OPEN, &c, NULL, 500, "plugin_error", &e);
    assert_non_null(strstr(detail(&e, "message"), "eligibility must return true, or false and a reason"));
    err_clear(&e);
    rules_verdict_free(&v);

    case_row u = a_case("nowhere", "11111", "");
    assert_int_equal(rules_open(&f, &u, ok, NULL, &v), -1);
    assert_int_equal(v.outcome, RULES_UNKNOWN_PROGRAM);
    expect_error(&v, RULES_ASK_OPEN, &u, NULL, 422, "unknown_program", &e);
    assert_string_equal(detail(&e, "field"), "program");
    err_clear(&e);
    rules_verdict_free(&v);
    json_decref(ok);
    json_decref(no);
    json_decref(bad);
}

/* ---- the process says no ---- */
static void test_moves_not_allowed(void **state)
{
    (void)state;
    err_t e;
    rules_verdict v;
    case_row c = a_case("fixture", "11111", "discovery");
    assert_int_equal(move(&c, "assessment", NULL, &v), -1);
    assert_int_equal(v.outcome, RULES_NOT_ALLOWED);
    expect_error(&v, RULES_ASK_MOVE, &c, "assessment", 409, "transition_not_allowed", &e);
    json_t *allowed = json_object_get(e.details, "allowed");
    assert_int_equal(json_array_size(allowed), 2);
    assert_string_equal(json_string_value(json_array_get(allowed, 0)), "intake");
    assert_string_equal(json_string_value(json_array_get(allowed, 1)), "closure");
    assert_string_equal(detail(&e, "from"), "discovery");
    err_clear(&e);
    rules_verdict_free(&v);

    assert_int_equal(move(&c, "planning", NULL, &v), -1);
    assert_int_equal(v.outcome, RULES_STAGE_UNUSED);
    expect_error(&v, RULES_ASK_MOVE, &c, "planning", 409, "transition_not_allowed", &e);
    assert_non_null(strstr(e.message, "does not use stage 'planning'"));
    err_clear(&e);
    rules_verdict_free(&v);

    case_row u = a_case("nowhere", "11111", "discovery");
    assert_int_equal(move(&u, "intake", NULL, &v), -1);
    assert_int_equal(v.outcome, RULES_UNKNOWN_PROGRAM);
    expect_error(&v, RULES_ASK_MOVE, &u, "intake", 409, "program_unavailable", &e);
    err_clear(&e);
    rules_verdict_free(&v);
}

static void test_refusals_name_plugin_and_reason(void **state)
{
    (void)state;
    err_t e;
    rules_verdict v;
    case_row c = a_case("fixture", "11111", "discovery");
    assert_int_equal(move(&c, "intake", "{\"refuse\": \"서류 미비\"}", &v), -1);
    assert_int_equal(v.outcome, RULES_REFUSED);
    expect_error(&v, RULES_ASK_MOVE, &c, "intake", 422, "guard_refused", &e);
    assert_string_equal(detail(&e, "plugin"), "fixture");
    assert_string_equal(detail(&e, "version"), "2.3.4");
    assert_string_equal(detail(&e, "reason"), "접수 거부: 서류 미비");
    err_clear(&e);
    rules_verdict_free(&v);
    /* a region's guard refuses in the region's name */
    case_row r = a_case("fixture", "99999", "assessment");
    assert_int_equal(move(&r, "closure", NULL, &v), -1);
    expect_error(&v, RULES_ASK_MOVE, &r, "closure", 422, "guard_refused", &e);
    assert_string_equal(detail(&e, "plugin"), "fixture-region");
    assert_string_equal(detail(&e, "version"), "0.9.0");
    err_clear(&e);
    rules_verdict_free(&v);
}

/* ---- plugin code that fails ---- */
static void test_failures_say_where_never_the_host_stack(void **state)
{
    (void)state;
    err_t e;
    rules_verdict v;
    case_row c = a_case("fixture", "11111", "discovery");
    assert_int_equal(move(&c, "intake", "{\"boom\": true}", &v), -1);
    assert_int_equal(v.outcome, RULES_PLUGIN_FAILED);
    expect_error(&v, RULES_ASK_MOVE, &c, "intake", 500, "plugin_error", &e);
    assert_string_equal(detail(&e, "plugin"), "fixture");
    assert_string_equal(detail(&e, "version"), "2.3.4");
    assert_string_equal(detail(&e, "message"), "guard exploded");
    assert_string_equal(detail(&e, "file"), "programs/fixture.lua");
    assert_true(json_integer_value(json_object_get(e.details, "line")) > 20);
    assert_null(strstr(e.message, "traceback"));
    assert_null(strstr(e.message, "host.lua"));
    err_clear(&e);
    rules_verdict_free(&v);

    assert_int_equal(move(&c, "intake", "{\"nonsense\": true}", &v), -1);
    expect_error(&v, RULES_ASK_MOVE, &c, "intake", 500, "plugin_error", &e);
    assert_non_null(strstr(detail(&e, "message"), "guards['discovery->intake'] must return true, or false and a reason"));
    err_clear(&e);
    rules_verdict_free(&v);

    /* a host call in the wrong phase: one message, wherever it happens */
    assert_int_equal(move(&c, "intake", "{\"wrong_phase\": true}", &v), -1);
    expect_error(&v, RULES_ASK_MOVE, &c, "intake", 500, "plugin_error", &e);
    assert_string_equal(detail(&e, "message"),
                        "ctx.set_deadline cannot be called in a guard (only in: a hook, on_record)");
    err_clear(&e);
    rules_verdict_free(&v);
}

static void test_budget_and_memory(void **state)
{
    (void)state;
    err_t e;
    rules_verdict v;
    case_row c = a_case("fixture", "33333", "discovery");
    assert_int_equal(move(&c, "intake", "{\"loop\": true}", &v), -1);
    assert_int_equal(v.outcome, RULES_PLUGIN_TIMEOUT);
    expect_error(&v, RULES_ASK_MOVE, &c, "intake", 500, "plugin_timeout", &e);
    assert_string_equal(detail(&e, "plugin"), "fixture");
    err_clear(&e);
    rules_verdict_free(&v);

    c = a_case("fixture", "44444", "discovery");
    assert_int_equal(move(&c, "intake", "{\"hog\": true}", &v), -1);
    assert_int_equal(v.outcome, RULES_PLUGIN_MEMORY);
    expect_error(&v, RULES_ASK_MOVE, &c, "intake", 500, "plugin_memory", &e);
    err_clear(&e);
    rules_verdict_free(&v);

    /* the VM was rebuilt: the next question is answered */
    assert_int_equal(move(&c, "intake", "{}", &v), 0);
    rules_verdict_free(&v);
}

/* A process out of memory, as the VM sees it: its allocator refuses every
 * growth from the g_fail_from'th on (-1: never), counting them in g_grown. */
static lua_Alloc g_real_alloc;
static long g_fail_from = -1, g_grown;

static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    if (nsize > (ptr ? osize : 0) && g_grown++ >= g_fail_from && g_fail_from >= 0) return NULL;
    return g_real_alloc(ud, ptr, osize, nsize);
}

/* Asks for a move of c with the process refusing memory from the fail'th
 * allocation of the serving VM on. */
static int move_short_of_memory(const case_row *c, json_t *data, long fail, rules_verdict *v)
{
    err_t e = {0};
    luavm *vm = luahost_vm(&e);
    assert_non_null(vm);
    g_real_alloc = vm->own_alloc;
    vm->inner_alloc = failing_alloc;
    g_fail_from = fail;
    g_grown = 0;
    rules_facts f = {.viewer = &WORKER};
    rules_move_in in = {.to = "intake", .data = data};
    int rc = rules_move(&f, c, &in, v);
    g_fail_from = -1;
    /* The same VM, unless the call poisoned it and it was rebuilt (and
     * freed with LuaJIT's own allocator). */
    luavm *now = luahost_vm(&e);
    if (now == vm) vm->inner_alloc = vm->own_alloc;
    return rc;
}

static void test_the_process_out_of_memory_is_503_never_an_abort(void **state)
{
    (void)state;
    case_row c = a_case("fixture", "11111", "discovery");
    /* data large enough that laying it into the VM takes many allocations */
    json_t *data = json_object();
    for (int i = 0; i < 200; i++) {
        char k[32];
        snprintf(k, sizeof k, "항목_%d", i);
        json_object_set_new(data, k, json_pack("{s:s, s:i}", "값", "사례 관리", "n", i));
    }
    rules_verdict v;
    assert_int_equal(move_short_of_memory(&c, data, -1, &v), 0);
    rules_verdict_free(&v);
    long total = g_grown;
    assert_true(total > 200);
    /* Every allocation from the first to past the last refused in turn
     * (the first hundred one by one: the question is laid there; then
     * spread to the end, where the answer is read). Each move is answered
     * 503 overloaded or accepted; before, a refusal outside the call was
     * a Lua panic that aborted the server. */
    int refused = 0;
    for (long fail = 0; fail <= total + 2; fail += fail < 100 ? 1 : (total - 100) / 40 + 1) {
        int rc = move_short_of_memory(&c, data, fail, &v);
        if (rc == 0) {
            assert_int_equal(v.outcome, RULES_OK);
        } else {
            if (v.outcome != RULES_UNAVAILABLE)
                fail_msg("refused from allocation %ld of %ld: outcome %d (%s)", fail, total, v.outcome, v.reason);
            err_t e;
            expect_error(&v, RULES_ASK_MOVE, &c, "intake", 503, "overloaded", &e);
            err_clear(&e);
            refused++;
        }
        rules_verdict_free(&v);
    }
    assert_true(refused >= 100);
    /* memory again: the next question is answered */
    assert_int_equal(move_short_of_memory(&c, data, -1, &v), 0);
    rules_verdict_free(&v);
    json_decref(data);
}

static void test_a_region_past_its_budget_is_suspended(void **state)
{
    (void)state;
    err_t e;
    rules_verdict v;
    case_row c = a_case("fixture", "55555", "discovery");
    for (int i = 0; i < 2; i++) { /* lua.region_strikes = 2 */
        assert_int_equal(move(&c, "intake", "{\"loop\": true}", &v), -1);
        assert_int_equal(v.outcome, RULES_PLUGIN_TIMEOUT);
        rules_verdict_free(&v);
    }
    assert_int_equal(move(&c, "intake", "{}", &v), -1);
    assert_int_equal(v.outcome, RULES_THROTTLED);
    expect_error(&v, RULES_ASK_MOVE, &c, "intake", 503, "region_suspended", &e);
    assert_string_equal(detail(&e, "region"), "55555");
    assert_true(json_integer_value(json_object_get(e.details, "retry_after")) >= 1);
    err_clear(&e);
    rules_verdict_free(&v);
    /* another region is not held */
    c = a_case("fixture", "11111", "discovery");
    assert_int_equal(move(&c, "intake", "{}", &v), 0);
    rules_verdict_free(&v);
}

/* ---- records ---- */
static void test_records(void **state)
{
    (void)state;
    err_t e;
    rules_verdict v;
    rules_facts f = {.viewer = &WORKER};
    case_row c = a_case("fixture", "11111", "intake");
    json_t *empty = json_object(), *no = json_pack("{s:s}", "opinion", "no"),
           *check = json_pack("{s:b}", "reassess", 1), *assess = json_pack("{s:{s:{}}}", "domains", "rent");
    assert_int_equal(rules_record(&f, &c, "counseling", NULL, empty, &v), -1);
    assert_int_equal(v.outcome, RULES_INVALID);
    expect_error(&v, RULES_ASK_RECORD, &c, NULL, 422, "validation_failed", &e);
    assert_string_equal(detail(&e, "field"), "opinion");
    assert_string_equal(detail(&e, "plugin"), "fixture");
    err_clear(&e);
    rules_verdict_free(&v);

    assert_int_equal(rules_record(&f, &c, "counseling", NULL, no, &v), -1);
    expect_error(&v, RULES_ASK_RECORD, &c, NULL, 422, "guard_refused", &e);
    assert_string_equal(detail(&e, "reason"), "의견 불충분");
    err_clear(&e);
    rules_verdict_free(&v);

    assert_int_equal(rules_record(&f, &c, "assessment", "needs", assess, &v), -1);
    expect_error(&v, RULES_ASK_RECORD, &c, NULL, 422, "validation_failed", &e);
    assert_string_equal(detail(&e, "field"), "domains.rent");
    assert_int_equal(json_array_size(json_object_get(e.details, "allowed")), 2);
    err_clear(&e);
    rules_verdict_free(&v);

    assert_int_equal(rules_record(&f, &c, "check", NULL, check, &v), 0);
    assert_string_equal(v.move, "assessment");
    assert_false(v.end_case);
    assert_true(json_is_true(json_object_get(v.result, "seen")));
    rules_verdict_free(&v);
    json_decref(empty);
    json_decref(no);
    json_decref(check);
    json_decref(assess);
}

/* ---- agencies ---- */
static void test_agencies(void **state)
{
    (void)state;
    err_t e;
    rules_verdict v;
    json_t *data = json_pack("{s:s}", "id", "ref_1"), *failing = json_pack("{s:s, s:b}", "id", "ref_2", "fail", 1),
           *payload = NULL;
    assert_int_equal(rules_agency_message("fixture-agency", "referral", data, &payload, &v), 0);
    assert_string_equal(json_string_value(json_object_get(payload, "id")), "ref_1");
    json_decref(payload);
    rules_verdict_free(&v);

    assert_int_equal(rules_agency_message("nowhere", "referral", data, &payload, &v), -1);
    assert_int_equal(v.outcome, RULES_UNKNOWN_AGENCY);
    expect_error(&v, RULES_ASK_MESSAGE, NULL, NULL, 422, "agency_unavailable", &e);
    assert_string_equal(detail(&e, "agency"), "nowhere");
    err_clear(&e);
    rules_verdict_free(&v);

    assert_int_equal(rules_agency_message("fixture-inbound", "referral", data, &payload, &v), -1);
    assert_int_equal(v.outcome, RULES_INBOUND_ONLY);
    expect_error(&v, RULES_ASK_MESSAGE, NULL, NULL, 422, "agency_unavailable", &e);
    err_clear(&e);
    rules_verdict_free(&v);

    assert_int_equal(rules_agency_message("fixture-agency", "referral", failing, &payload, &v), -1);
    expect_error(&v, RULES_ASK_MESSAGE, NULL, NULL, 500, "plugin_error", &e);
    assert_string_equal(detail(&e, "plugin"), "fixture-agency");
    err_clear(&e);
    rules_verdict_free(&v);

    char st[24];
    assert_true(rules_agency_status("fixture-agency", "반려", st));
    assert_string_equal(st, "rejected");
    assert_false(rules_agency_status("fixture-agency", "???", st));
    assert_true(rules_agency_known("fixture-inbound"));
    assert_false(rules_agency_known("nowhere"));
    json_decref(data);
    json_decref(failing);
}

/* A look-up whose agency does not answer: the agency's error, as it is. */
static void test_lookup_agency_failure(void **state)
{
    (void)state;
    case_row c = a_case("fixture", "11111", "");
    json_t *person = json_pack("{s:s}", "name", "조회"), *lookups = NULL, *cache = NULL;
    rules_verdict v;
    assert_true(rules_needs_lookup("fixture", "11111"));
    assert_int_equal(rules_lookup(&WORKER, &c, person, &lookups, &cache, &v), -1);
    assert_int_equal(v.outcome, RULES_AGENCY_FAILED);
    err_t e;
    expect_error(&v, RULES_ASK_LOOKUP, &c, NULL, 422, "agency_unavailable", &e);
    assert_string_equal(detail(&e, "agency"), "nowhere");
    err_clear(&e);
    rules_verdict_free(&v);
    json_decref(person);
}

/* Query names are checked when a set loads, at their line. */
static void test_unknown_query_name_fails_the_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/sarye-rules-XXXXXX", sub[600], file[700];
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof sub, "%s/programs", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(file, sizeof file, "%s/q.lua", sub);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fputs("return { id = \"q\", kind = \"program\", version = \"1.0.0\", api = 1, name = \"q\",\n"
          "  stages = { { id = \"discovery\", label = \"d\" }, { id = \"intake\", label = \"i\" } },\n"
          "  transitions = { discovery = { \"intake\" } },\n"
          "  guards = { [\"discovery->intake\"] = function(c, i, ctx)\n"
          "    return #ctx.query(\"records_of_kase\", { case_id = c.id }) == 0 end },\n"
          "}\n",
          fp);
    fclose(fp);
    config cfg;
    config_defaults(&cfg);
    json_t *errors = NULL;
    assert_int_equal(luahost_check_dir(&cfg, dir, &errors), 1);
    json_t *first = json_array_get(errors, 0);
    assert_string_equal(json_string_value(json_object_get(first, "file")), "programs/q.lua");
    assert_int_equal(json_integer_value(json_object_get(first, "line")), 5);
    assert_non_null(strstr(json_string_value(json_object_get(first, "message")), "unknown query 'records_of_kase'"));
    json_decref(errors);
    unlink(file);
    rmdir(sub);
    rmdir(dir);
}

/* A VM that cannot get the memory to be built, or to load a plugin set (its
 * cap reached, or the process out of memory: the same refused allocation),
 * is an error, never a Lua panic that aborts the server. */
static void test_out_of_memory_while_building_is_an_error(void **state)
{
    (void)state;
    int built = 0, refused = 0;
    for (size_t cap = 4 << 10; cap <= 8 << 20; cap *= 2) {
        char err[512] = "";
        luavm *vm = luavm_new(cap, 1000, err, sizeof err);
        if (vm) {
            built++;
            luavm_free(vm);
        } else {
            refused++;
            assert_non_null(strstr(err, "memory"));
        }
    }
    assert_true(refused > 0);
    assert_true(built > 0);

    /* The bundled set does not fit in 1 MiB: loading it is refused. */
    config cfg;
    config_defaults(&cfg);
    cfg.lua_memory_mb = 1;
    char dir[1200];
    const char *src = getenv("SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/plugins", src ? src : ".");
    json_t *errors = NULL;
    int rc = luahost_check_dir(&cfg, dir, &errors);
    assert_int_not_equal(rc, 0);
    json_decref(errors);
}

int main(void)
{
    base_init();
    log_set_level(LOG_ERROR);
    const char *src = getenv("SOURCE_DIR");
    snprintf(g_plugins, sizeof g_plugins, "%s/tests/unit/fixtures/rules", src ? src : ".");
    const struct CMUnitTest before[] = {
        cmocka_unit_test(test_no_generation_is_503),
        cmocka_unit_test(test_unknown_query_name_fails_the_load),
        cmocka_unit_test(test_out_of_memory_while_building_is_an_error),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_move_accepted_with_effects),
        cmocka_unit_test(test_open_accepted_and_refused),
        cmocka_unit_test(test_moves_not_allowed),
        cmocka_unit_test(test_refusals_name_plugin_and_reason),
        cmocka_unit_test(test_failures_say_where_never_the_host_stack),
        cmocka_unit_test(test_budget_and_memory),
        cmocka_unit_test(test_the_process_out_of_memory_is_503_never_an_abort),
        cmocka_unit_test(test_a_region_past_its_budget_is_suspended),
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_agencies),
        cmocka_unit_test(test_lookup_agency_failure),
    };
    int failed = cmocka_run_group_tests_name("before a plugin set", before, NULL, NULL);
    return failed + cmocka_run_group_tests_name("rules over the fixture set", tests, setup, teardown);
}
