/*
 * test_messages.c: the Korean catalogue of error messages. Every error
 * code the server can answer is found in the source (a status followed by
 * a code literal, or a code chosen by a conditional where an error is set)
 * and must have its Korean message; the choice of language from
 * Accept-Language honours q-values; a translated error keeps its code and
 * its English text in details.message_en.
 */
#include <ftw.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "http/messages.h"

#define MAX_CODES 512

static struct {
    char code[MAX_CODES][64];
    char where[MAX_CODES][300];
    int n;
} FOUND;

static void add_code(const char *code, size_t len, const char *file)
{
    if (len >= sizeof FOUND.code[0]) return;
    for (int i = 0; i < FOUND.n; i++)
        if (strlen(FOUND.code[i]) == len && !strncmp(FOUND.code[i], code, len)) return;
    if (FOUND.n == MAX_CODES) return;
    memcpy(FOUND.code[FOUND.n], code, len);
    FOUND.code[FOUND.n][len] = 0;
    snprintf(FOUND.where[FOUND.n], sizeof FOUND.where[0], "%s", file);
    FOUND.n++;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = 0;
    fclose(f);
    return buf;
}

static regex_t RE_STATUS, RE_TERNARY, RE_SETS;

/* The statement around position i: from the last ';', '{' or '}' before it
 * to the next ';'. */
static void statement_at(const char *text, size_t i, char *out, size_t outlen)
{
    size_t a = i;
    while (a > 0 && text[a - 1] != ';' && text[a - 1] != '{' && text[a - 1] != '}') a--;
    size_t b = i;
    while (text[b] && text[b] != ';') b++;
    size_t n = b - a < outlen - 1 ? b - a : outlen - 1;
    memcpy(out, text + a, n);
    out[n] = 0;
}

static int scan_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    size_t l = strlen(path);
    if (type != FTW_F || l < 3 || strcmp(path + l - 2, ".c")) return 0;
    if (strstr(path, "messages_ko.c")) return 0; /* the catalogue itself */
    char *text = slurp(path);
    if (!text) return 0;
    regmatch_t m[3];
    /* 1. a status, then the code: err_set(e, 404, "not_found", ...) */
    for (const char *p = text; !regexec(&RE_STATUS, p, 3, m, 0); p += m[0].rm_eo)
        add_code(p + m[2].rm_so, (size_t)(m[2].rm_eo - m[2].rm_so), path);
    /* 2. a code chosen by a conditional, in a statement that sets an error
     * or names a code: code = a ? "plugin_timeout" : "plugin_error" */
    for (const char *p = text; !regexec(&RE_TERNARY, p, 3, m, 0); p += m[0].rm_eo) {
        char stmt[2000];
        statement_at(text, (size_t)(p - text) + (size_t)m[0].rm_so, stmt, sizeof stmt);
        if (!regexec(&RE_SETS, stmt, 0, NULL, 0))
            add_code(p + m[1].rm_so, (size_t)(m[1].rm_eo - m[1].rm_so), path);
    }
    free(text);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(regcomp(&RE_STATUS, "([1-5][0-9][0-9]),[ \t\n]*\"([a-z][a-z0-9_]*)\"", REG_EXTENDED), 0);
    assert_int_equal(regcomp(&RE_TERNARY, "[?:][ \t\n]*\"([a-z][a-z0-9]*(_[a-z0-9]+)+)\"", REG_EXTENDED), 0);
    assert_int_equal(regcomp(&RE_SETS, "err_set|respond_err|process_store_error|[^a-z_]code[ \t]*=", REG_EXTENDED),
                     0);
    const char *src = getenv("SOURCE_DIR");
    if (!src) {
        fprintf(stderr, "SOURCE_DIR is not set (the source tree, for core/)\n");
        return -1;
    }
    char core[1200];
    snprintf(core, sizeof core, "%s/core", src);
    if (nftw(core, scan_file, 16, FTW_PHYS)) {
        fprintf(stderr, "cannot walk %s\n", core);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    regfree(&RE_STATUS);
    regfree(&RE_TERNARY);
    regfree(&RE_SETS);
    return 0;
}

static void test_scanner_finds_the_codes(void **state)
{
    (void)state;
    /* A scanner that finds nothing would pass everything: it must see the
     * codes of each kind of call site. */
    assert_true(FOUND.n >= 50);
    static const char *const known[] = {"validation_failed", "not_found", "unauthorized", "rate_limited",
                                        "plugin_timeout", "plugin_error", "headers_too_large",
                                        "malformed_request", "method_not_allowed", "sharing_right_incomplete",
                                        NULL};
    for (const char *const *k = known; *k; k++) {
        bool seen = false;
        for (int i = 0; i < FOUND.n && !seen; i++) seen = !strcmp(FOUND.code[i], *k);
        if (!seen) fail_msg("the scanner did not find error code '%s' in core/", *k);
    }
}

static void test_every_code_has_a_korean_message(void **state)
{
    (void)state;
    int missing = 0;
    for (int i = 0; i < FOUND.n; i++) {
        if (messages_ko(FOUND.code[i])) continue;
        fprintf(stderr, "error code '%s' (%s) has no Korean message in core/http/messages_ko.c\n", FOUND.code[i],
                FOUND.where[i]);
        missing++;
    }
    assert_int_equal(missing, 0);
}

static void test_catalogue_is_sorted_and_korean(void **state)
{
    (void)state;
    const char *prev = NULL, *text = NULL, *code;
    int n = 0;
    for (int i = 0; (code = messages_ko_at(i, &text)); i++, n++) {
        if (prev && strcmp(prev, code) >= 0) fail_msg("catalogue not sorted or duplicated at '%s'", code);
        /* Hangul syllables are U+AC00..U+D7A3: lead byte 0xEA..0xED in UTF-8. */
        bool hangul = false;
        for (const unsigned char *c = (const unsigned char *)text; *c && !hangul; c++) hangul = *c >= 0xEA && *c <= 0xED;
        if (!hangul) fail_msg("the message of '%s' is not Korean: %s", code, text);
        assert_ptr_equal(messages_ko(code), text);
        prev = code;
    }
    assert_true(n >= 50);
    assert_null(messages_ko("no_such_code"));
    assert_null(messages_ko_at(-1, NULL));
}

static void test_accept_language(void **state)
{
    (void)state;
    assert_false(messages_prefers_ko(NULL));
    assert_false(messages_prefers_ko(""));
    assert_true(messages_prefers_ko("ko"));
    assert_true(messages_prefers_ko("ko-KR"));
    assert_true(messages_prefers_ko("KO-kr,ko;q=0.9"));
    assert_true(messages_prefers_ko("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7"));
    assert_false(messages_prefers_ko("en-US,en;q=0.9,ko;q=0.8"));
    assert_true(messages_prefers_ko("en;q=0.5, ko;q=0.8"));
    assert_true(messages_prefers_ko("en;q=0.5,ko"));
    assert_false(messages_prefers_ko("ko;q=0"));
    assert_false(messages_prefers_ko("ko;q=0.000, en"));
    assert_false(messages_prefers_ko("*"));
    assert_false(messages_prefers_ko("en"));
    assert_false(messages_prefers_ko("fr"));
    assert_true(messages_prefers_ko("fr, ko;q=0.1"));
    assert_false(messages_prefers_ko("en, ko"));           /* equal: the first listed */
    assert_true(messages_prefers_ko("ko, en"));
    assert_true(messages_prefers_ko("*;q=0.1, ko;q=0.5")); /* English only by the wildcard */
    assert_false(messages_prefers_ko("*;q=0.9, ko;q=0.5"));
    assert_false(messages_prefers_ko("kor"));              /* not a subtag of ko */
    assert_false(messages_prefers_ko("ko;q=2"));           /* a malformed q: the member is ignored */
    assert_false(messages_prefers_ko("ko;q=abc"));
    assert_true(messages_prefers_ko("ko ; q=0.7 , en;q=0.3"));
    assert_true(messages_prefers_ko("ko;q=1.000"));
    assert_false(messages_prefers_ko("ko;q=1.5"));
}

static void test_translate(void **state)
{
    (void)state;
    err_t e = {0};
    err_set(&e, 400, "validation_failed", "name: must be at most 200 bytes");
    err_detail(&e, "field", json_string("name"));
    assert_true(messages_translate_ko(&e));
    assert_string_equal(e.code, "validation_failed");
    assert_int_equal(e.status, 400);
    assert_string_equal(e.message, "입력값이 올바르지 않습니다 (항목: name)");
    assert_string_equal(json_string_value(json_object_get(e.details, "message_en")), "name: must be at most 200 bytes");
    err_clear(&e);

    err_set(&e, 422, "guard_refused", "kr-11590 refused: 계획 승인 필요");
    err_detail(&e, "reason", json_string("계획 승인 필요"));
    assert_true(messages_translate_ko(&e));
    assert_string_equal(e.message, "업무 규칙에 따라 거부되었습니다: 계획 승인 필요");
    err_clear(&e);

    err_set(&e, 409, "transition_not_allowed", "cas_1 cannot move to 'planning' from here");
    json_t *allowed = json_array();
    json_array_append_new(allowed, json_string("assessment"));
    json_array_append_new(allowed, json_string("closure"));
    err_detail(&e, "allowed", allowed);
    assert_true(messages_translate_ko(&e));
    assert_string_equal(e.message, "이 단계로 옮길 수 없습니다 (허용: assessment, closure)");
    err_clear(&e);

    err_set(&e, 500, "plugin_error", "plugin 'x' failed: boom");
    err_detail(&e, "file", json_string("regions/x.lua"));
    err_detail(&e, "line", json_integer(12));
    assert_true(messages_translate_ko(&e));
    assert_string_equal(e.message, "플러그인 실행 중 오류가 발생했습니다 (regions/x.lua:12)");
    err_clear(&e);

    /* A very long list is cut at a character boundary. */
    err_set(&e, 400, "validation_failed", "x");
    err_detail(&e, "field", json_string("가나다라마바사아자차카타파하가나다라마바사아자차카타파하가나다라마바사아자차카타파하"
                                        "가나다라마바사아자차카타파하가나다라마바사아자차카타파하가나다라마바사아자차카타파하"
                                        "가나다라마바사아자차카타파하가나다라마바사아자차카타파하가나다라마바사아자차카타파하"
                                        "가나다라마바사아자차카타파하가나다라마바사아자차카타파하가나다라마바사아자차카타파하"));
    assert_true(messages_translate_ko(&e));
    json_t *j = json_string(e.message);
    assert_non_null(j); /* valid UTF-8 */
    json_decref(j);
    err_clear(&e);

    err_set(&e, 418, "no_such_code", "teapot");
    assert_false(messages_translate_ko(&e));
    assert_string_equal(e.message, "teapot");
    assert_null(e.details);
    err_clear(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scanner_finds_the_codes),
        cmocka_unit_test(test_every_code_has_a_korean_message),
        cmocka_unit_test(test_catalogue_is_sorted_and_korean),
        cmocka_unit_test(test_accept_language),
        cmocka_unit_test(test_translate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
