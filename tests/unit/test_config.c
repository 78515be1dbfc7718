/*
 * test_config.c: config/config.h — defaults, the "key = value" format,
 * validation (every refusal names the key and the value), agency blocks and
 * the SARYE_* environment mapping and its precedence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"

extern char **environ;
extern const unsigned char embedded_default_conf[];

/* Removes every SARYE_* variable so that tests see only what they set. */
static void clear_sarye_env(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "SARYE_", 6)) continue;
            const char *eq = strchr(*e, '=');
            size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
            if (n >= sizeof name) n = sizeof name - 1;
            memcpy(name, *e, n);
            name[n] = 0;
            break;
        }
        if (!name[0]) return;
        unsetenv(name);
    }
}

static int setup_env(void **state)
{
    (void)state;
    clear_sarye_env();
    return 0;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) fail_msg("expected \"%s\" in the message \"%s\"", needle, hay);
}

static void test_defaults(void **state)
{
    (void)state;
    config c;
    memset(&c, 0x5a, sizeof c);
    config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.db, "data/sarye.db");
    assert_string_equal(c.plugins, "plugins");
    assert_int_equal(c.threads, 64);
    assert_int_equal(c.max_body_bytes, 1024 * 1024);
    assert_true(c.durability_full);
    assert_int_equal(c.request_timeout_ms, 30000);
    assert_int_equal(c.busy_timeout_ms, 5000);
    assert_int_equal(c.drain_timeout_ms, 10000);
    assert_string_equal(c.log_level, "info");
    assert_false(c.plugins_watch);
    assert_int_equal(c.lua_memory_mb, 64);
    assert_int_equal(c.lua_timeout_ms, 250);
    assert_int_equal(c.reload_timeout_ms, 10000);
    assert_int_equal(c.auth_token_ttl_days, 90);
    assert_int_equal(c.lookup_concurrency, 8);
    assert_int_equal(c.n_agencies, 0);
    assert_null(config_agency_find(&c, "microfinance"));
}

/* The shipped default file says what the built-in defaults are. */
static void test_default_file_matches_defaults(void **state)
{
    (void)state;
    config d, c;
    config_defaults(&d);
    config_defaults(&c);
    char err[512] = "";
    assert_int_equal(config_parse_text(&c, (const char *)embedded_default_conf, "embedded", err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_memory_equal(&c, &d, sizeof c);

    const char *src = getenv("SOURCE_DIR");
    if (src) {
        char path[4096];
        snprintf(path, sizeof path, "%s/config/sarye.conf", src);
        config f;
        config_defaults(&f);
        assert_int_equal(config_load_file(&f, path, err, sizeof err), 0);
        assert_memory_equal(&f, &d, sizeof f);
    }
    config f;
    config_defaults(&f);
    assert_int_equal(config_load_file(&f, "/nonexistent/sarye.conf", err, sizeof err), -1);
    assert_contains(err, "/nonexistent/sarye.conf");
}

static void test_parse_text_format(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    char err[512] = "";
    const char *text =
        "# a comment line\n"
        "\n"
        "   \n"
        "\t# an indented comment\n"
        "threads=8\n"
        "  listen   =   0.0.0.0:9090   # a trailing comment\n"
        "\tdb\t=\t/var/lib/sarye/main.db\t\n"
        "durability = normal\r\n"
        "max_body_bytes = 65536\n"
        "log_level = debug\n"
        "plugins.watch = on\n"
        "lua.memory_mb = 128\n"
        "lua.timeout_ms = 100\n"
        "reload.timeout_ms = 2000\n"
        "request_timeout_ms = 1000\n"
        "busy_timeout_ms = 20\n"
        "drain_timeout_ms = 0\n"
        "plugins = /opt/sarye/plugins"; /* no final newline */
    assert_int_equal(config_parse_text(&c, text, "test.conf", err, sizeof err), 0);
    assert_int_equal(c.threads, 8);
    assert_string_equal(c.listen, "0.0.0.0:9090");
    assert_string_equal(c.db, "/var/lib/sarye/main.db");
    assert_false(c.durability_full);
    assert_int_equal(c.max_body_bytes, 65536);
    assert_string_equal(c.log_level, "debug");
    assert_true(c.plugins_watch);
    assert_int_equal(c.lua_memory_mb, 128);
    assert_int_equal(c.lua_timeout_ms, 100);
    assert_int_equal(c.reload_timeout_ms, 2000);
    assert_int_equal(c.request_timeout_ms, 1000);
    assert_int_equal(c.busy_timeout_ms, 20);
    assert_int_equal(c.drain_timeout_ms, 0);
    assert_string_equal(c.plugins, "/opt/sarye/plugins");

    /* A later line wins over an earlier one; the other way round too. */
    assert_int_equal(config_parse_text(&c, "durability = full\nthreads = 2\nthreads = 3\n", "t", err, sizeof err), 0);
    assert_true(c.durability_full);
    assert_int_equal(c.threads, 3);
    /* Empty text and comments only change nothing. */
    config before = c;
    assert_int_equal(config_parse_text(&c, "", "t", err, sizeof err), 0);
    assert_int_equal(config_parse_text(&c, "# nothing\n\n#\n", "t", err, sizeof err), 0);
    assert_memory_equal(&c, &before, sizeof c);
    /* IPv6 and bracketed hosts, port 0. */
    assert_int_equal(config_parse_text(&c, "listen = [::1]:0", "t", err, sizeof err), 0);
    assert_string_equal(c.listen, "[::1]:0");
}

static void test_parse_text_line_without_equals(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    char err[512] = "";
    assert_int_equal(config_parse_text(&c, "threads = 4\n\njust words\n", "x.conf", err, sizeof err), -1);
    assert_contains(err, "x.conf:3");
    assert_contains(err, "key = value");
}

typedef struct {
    const char *key, *value;
} kv;

static const kv INVALID[] = {
    {"threads", "0"},
    {"threads", "abc"},
    {"threads", "-4"},
    {"threads", "8x"},
    {"threads", "1025"},
    {"threads", "99999999999999999999999"},
    {"durability", "maybe"},
    {"durability", "FULL"},
    {"listen", "nonsense"},
    {"listen", "127.0.0.1:"},
    {"listen", ":8080"},
    {"listen", "127.0.0.1:65536"},
    {"listen", "127.0.0.1:-1"},
    {"listen", "local host:8080"},
    {"max_body_bytes", "67108865"},
    {"max_body_bytes", "1073741824"},
    {"max_body_bytes", "63"},
    {"log_level", "loud"},
    {"log_level", "INFO"},
    {"plugins.watch", "yes"},
    {"lua.memory_mb", "1"},
    {"lua.timeout_ms", "0"},
    {"reload.timeout_ms", "1"},
    {"request_timeout_ms", "ten"},
    {"busy_timeout_ms", "1"},
    {"drain_timeout_ms", "-1"},
    {"agency.microfinance.url", "ftp://agency.example"},
    {"agency.microfinance.url", "agency.example/referrals"},
    {"agency.microfinance.timeout_ms", "0"},
    {"agency.microfinance.timeout_ms", "soon"},
    {"agency.microfinance.concurrency", "0"},
    {"agency.microfinance.concurrency", "1025"},
    {"agency.Micro.url", "http://x"},
    {"auth.token_ttl_days", "-1"},
    {"auth.token_ttl_days", "3651"},
    {"lookup.concurrency", "0"},
};

static void test_invalid_values_name_key_and_value(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof INVALID / sizeof INVALID[0]; i++) {
        const kv *x = &INVALID[i];
        config c, before;
        config_defaults(&c);
        before = c;
        char text[512], err[1024] = "";
        snprintf(text, sizeof text, "# settings\n%s = %s\n", x->key, x->value);
        if (config_parse_text(&c, text, "bad.conf", err, sizeof err) != -1)
            fail_msg("%s = %s was accepted", x->key, x->value);
        assert_contains(err, x->key);
        assert_contains(err, x->value);
        assert_contains(err, "bad.conf:2"); /* and where */
        /* A refused value leaves the setting as it was. */
        if (strncmp(x->key, "agency.", 7)) assert_memory_equal(&c, &before, sizeof c);

        /* config_set directly says the same, with the source it was given. */
        config_defaults(&c);
        err[0] = 0;
        assert_int_equal(config_set(&c, x->key, x->value, "option", err, sizeof err), -1);
        assert_contains(err, x->key);
        assert_contains(err, x->value);
        assert_contains(err, "option");
    }
}

static void test_empty_values_refused(void **state)
{
    (void)state;
    static const char *const keys[] = {"listen", "db", "plugins", "threads", "durability", "log_level", NULL};
    for (const char *const *k = keys; *k; k++) {
        config c;
        config_defaults(&c);
        char text[128], err[512] = "";
        snprintf(text, sizeof text, "%s =\n", *k);
        if (config_parse_text(&c, text, "t", err, sizeof err) != -1) fail_msg("empty %s was accepted", *k);
        assert_contains(err, *k);
    }
}

static void test_unknown_key_refused(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    char err[512] = "";
    assert_int_equal(config_parse_text(&c, "threads = 4\ncolour = blue\n", "u.conf", err, sizeof err), -1);
    assert_contains(err, "colour");
    assert_contains(err, "u.conf:2");
    assert_int_equal(config_set(&c, "Threads", "4", "option", err, sizeof err), -1);
    assert_contains(err, "Threads");
    assert_int_equal(config_set(&c, "agency.microfinance.colour", "blue", "option", err, sizeof err), -1);
    assert_contains(err, "agency.microfinance.colour");
    assert_int_equal(config_set(&c, "agency.url", "http://x", "option", err, sizeof err), -1);
    assert_contains(err, "agency.url");
    assert_int_equal(config_set(&c, "agency..url", "http://x", "option", err, sizeof err), -1);
    assert_contains(err, "agency..url");
}

/* '#' begins a comment only at the start of a line or after a blank. */
static void test_hash_inside_value_is_kept(void **state)
{
    (void)state;
    config c;
    char err[512];
    config_defaults(&c);
    assert_int_equal(config_parse_text(&c, "agency.x.token = ab#cd # the token\n", "t", err, sizeof err), 0);
    assert_string_equal(config_agency_find(&c, "x")->token, "ab#cd");
}

static void test_agencies(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    char err[512] = "";
    const char *text =
        "agency.microfinance.url = https://mf.example/referrals\n"
        "agency.microfinance.timeout_ms = 2500\n"
        "agency.microfinance.token = s3cret-Token_value\n"
        "agency.microfinance.concurrency = 4\n"
        "agency.mental_health_center.url = http://mhc.example:8443/in\n"
        "agency.employment.token = t0k\n";
    assert_int_equal(config_parse_text(&c, text, "a.conf", err, sizeof err), 0);
    assert_int_equal(c.n_agencies, 3);
    const config_agency *mf = config_agency_find(&c, "microfinance");
    assert_non_null(mf);
    assert_string_equal(mf->id, "microfinance");
    assert_string_equal(mf->url, "https://mf.example/referrals");
    assert_int_equal(mf->timeout_ms, 2500);
    assert_string_equal(mf->token, "s3cret-Token_value");
    assert_int_equal(mf->concurrency, 4);
    const config_agency *mhc = config_agency_find(&c, "mental_health_center");
    assert_non_null(mhc);
    assert_string_equal(mhc->url, "http://mhc.example:8443/in");
    assert_int_equal(mhc->timeout_ms, 5000); /* the default */
    assert_int_equal(mhc->concurrency, 0);   /* lookup.concurrency */
    assert_string_equal(mhc->token, "");
    const config_agency *emp = config_agency_find(&c, "employment");
    assert_non_null(emp);
    assert_string_equal(emp->url, "");
    assert_string_equal(emp->token, "t0k");
    assert_null(config_agency_find(&c, "housing"));
    assert_null(config_agency_find(&c, "micro"));
    /* Setting a field again changes the same agency. */
    assert_int_equal(config_set(&c, "agency.microfinance.timeout_ms", "100", "option", err, sizeof err), 0);
    assert_int_equal(c.n_agencies, 3);
    assert_int_equal(config_agency_find(&c, "microfinance")->timeout_ms, 100);
}

static void test_agency_limit(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    char err[512] = "", key[96];
    for (int i = 0; i < CONFIG_MAX_AGENCIES; i++) {
        snprintf(key, sizeof key, "agency.a%d.url", i);
        assert_int_equal(config_set(&c, key, "http://x", "option", err, sizeof err), 0);
    }
    assert_int_equal(c.n_agencies, CONFIG_MAX_AGENCIES);
    assert_int_equal(config_set(&c, "agency.one_more.url", "http://x", "option", err, sizeof err), -1);
    assert_contains(err, "agency.one_more.url");
    assert_int_equal(c.n_agencies, CONFIG_MAX_AGENCIES);
}

static void test_env(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    char err[512] = "";
    setenv("SARYE_THREADS", "8", 1);
    setenv("SARYE_AGENCY_MENTAL_HEALTH_CENTER_URL", "http://x", 1);
    setenv("SARYE_AGENCY_MENTAL_HEALTH_CENTER_TIMEOUT_MS", "1500", 1);
    setenv("SARYE_AGENCY_MICROFINANCE_TOKEN", "abc", 1);
    setenv("SARYE_AGENCY_MICROFINANCE_CONCURRENCY", "3", 1);
    setenv("SARYE_AUTH_TOKEN_TTL_DAYS", "0", 1);
    setenv("SARYE_LUA_MEMORY_MB", "96", 1);
    setenv("SARYE_PLUGINS_WATCH", "on", 1);
    setenv("SARYE_DURABILITY", "normal", 1);
    setenv("SARYE_LISTEN", "127.0.0.1:0", 1);
    assert_int_equal(config_apply_env(&c, err, sizeof err), 0);
    assert_int_equal(c.threads, 8);
    assert_int_equal(c.lua_memory_mb, 96);
    assert_true(c.plugins_watch);
    assert_false(c.durability_full);
    assert_string_equal(c.listen, "127.0.0.1:0");
    const config_agency *a = config_agency_find(&c, "mental_health_center");
    assert_non_null(a);
    assert_string_equal(a->url, "http://x");
    assert_int_equal(a->timeout_ms, 1500);
    const config_agency *m = config_agency_find(&c, "microfinance");
    assert_non_null(m);
    assert_string_equal(m->token, "abc");
    assert_int_equal(m->concurrency, 3);
    assert_int_equal(c.auth_token_ttl_days, 0);
    assert_int_equal(c.n_agencies, 2);
    clear_sarye_env();
}

static void test_env_beats_file(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    char err[512] = "";
    /* The order the command line applies them: defaults, file, environment. */
    assert_int_equal(config_parse_text(&c, "threads = 4\ndb = file.db\nagency.housing.url = http://file\n", "f.conf",
                                       err, sizeof err), 0);
    setenv("SARYE_THREADS", "8", 1);
    setenv("SARYE_AGENCY_HOUSING_URL", "https://env", 1);
    assert_int_equal(config_apply_env(&c, err, sizeof err), 0);
    assert_int_equal(c.threads, 8);
    assert_string_equal(c.db, "file.db"); /* not in the environment: the file's */
    assert_string_equal(config_agency_find(&c, "housing")->url, "https://env");
    assert_int_equal(c.n_agencies, 1);
    /* And options win over both. */
    assert_int_equal(config_set(&c, "threads", "2", "option --threads", err, sizeof err), 0);
    assert_int_equal(c.threads, 2);
    clear_sarye_env();
}

static void test_env_invalid_refused(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    char err[512] = "";
    setenv("SARYE_THREADS", "0", 1);
    assert_int_equal(config_apply_env(&c, err, sizeof err), -1);
    assert_contains(err, "SARYE_THREADS");
    assert_contains(err, "threads");
    assert_contains(err, "'0'");
    assert_int_equal(c.threads, 64);
    clear_sarye_env();

    config_defaults(&c);
    err[0] = 0;
    setenv("SARYE_DURABILITY", "maybe", 1);
    assert_int_equal(config_apply_env(&c, err, sizeof err), -1);
    assert_contains(err, "SARYE_DURABILITY");
    assert_contains(err, "maybe");
    clear_sarye_env();

    config_defaults(&c);
    err[0] = 0;
    setenv("SARYE_AGENCY_HOUSING_URL", "gopher://x", 1);
    assert_int_equal(config_apply_env(&c, err, sizeof err), -1);
    assert_contains(err, "SARYE_AGENCY_HOUSING_URL");
    assert_contains(err, "gopher://x");
    clear_sarye_env();
}

static void test_env_unknown_warns(void **state)
{
    (void)state;
    config c, before;
    config_defaults(&c);
    before = c;
    char err[512] = "";
    setenv("SARYE_COLOUR", "blue", 1);
    assert_int_equal(config_apply_env(&c, err, sizeof err), 1);
    assert_contains(err, "SARYE_COLOUR");
    assert_memory_equal(&c, &before, sizeof c);
    clear_sarye_env();
    /* Nothing set: nothing to say. */
    err[0] = 0;
    assert_int_equal(config_apply_env(&c, err, sizeof err), 0);
    assert_string_equal(err, "");
}

static void count_problem(const char *msg, void *ctx)
{
    (void)msg;
    (*(int *)ctx)++;
}

static void test_suggestions_and_check(void **state)
{
    (void)state;
    assert_string_equal(config_suggest("threds"), "threads");
    assert_string_equal(config_suggest("lisen"), "listen");
    assert_string_equal(config_suggest("LISTEN"), "listen");
    assert_string_equal(config_suggest("log.fromat"), "log.format");
    assert_string_equal(config_suggest("http.trusted_proxy"), "http.trusted_proxies");
    assert_string_equal(config_suggest("agency.x.ulr"), "agency.<id>.url");
    assert_null(config_suggest("completely_different"));
    config c;
    config_defaults(&c);
    char err[512] = "";
    assert_int_equal(config_set(&c, "threds", "4", "x.conf:1", err, sizeof err), -1);
    assert_contains(err, "(did you mean 'threads'?) from x.conf:1");
    /* every problem, not the first */
    int seen = 0, keys = 0;
    assert_int_equal(config_check_text("threds = 4\nlog.format = json\nbad line\nthreads = 0\nlisten = x\n", "c.conf",
                                       &keys, count_problem, &seen), 4);
    assert_int_equal(seen, 4);
    assert_int_equal(keys, 1);
    /* trusted proxies: numeric addresses only, matched exactly */
    assert_int_equal(config_set(&c, "http.trusted_proxies", "10.0.0.1, ::1", "t", err, sizeof err), 0);
    assert_true(config_proxy_trusted(&c, "10.0.0.1"));
    assert_true(config_proxy_trusted(&c, "::1"));
    assert_false(config_proxy_trusted(&c, "10.0.0.10"));
    assert_false(config_proxy_trusted(&c, "127.0.0.1"));
    assert_false(config_proxy_trusted(&c, ""));
    assert_int_equal(config_set(&c, "http.trusted_proxies", "proxy.example", "t", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "http.trusted_proxies", "10.0.0.1,,", "t", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "log.format", "json", "t", err, sizeof err), 0);
    assert_true(c.log_json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_default_file_matches_defaults),
        cmocka_unit_test(test_parse_text_format),
        cmocka_unit_test(test_parse_text_line_without_equals),
        cmocka_unit_test(test_invalid_values_name_key_and_value),
        cmocka_unit_test(test_empty_values_refused),
        cmocka_unit_test(test_unknown_key_refused),
        cmocka_unit_test(test_agencies),
        cmocka_unit_test(test_hash_inside_value_is_kept),
        cmocka_unit_test(test_agency_limit),
        cmocka_unit_test_setup(test_env, setup_env),
        cmocka_unit_test_setup(test_env_beats_file, setup_env),
        cmocka_unit_test_setup(test_env_invalid_refused, setup_env),
        cmocka_unit_test_setup(test_env_unknown_warns, setup_env),
        cmocka_unit_test(test_suggestions_and_check),
    };
    return cmocka_run_group_tests(tests, setup_env, NULL);
}
