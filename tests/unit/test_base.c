/*
 * test_base.c: base/base.h (dates, times, ids, tokens, hashing, UTF-8),
 * base/rrn.h (resident registration numbers) and base/err.h (the error
 * shape every answer uses).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "base/base.h"
#include "base/err.h"
#include "base/rrn.h"

static int setup(void **state)
{
    (void)state;
    return base_init();
}

/* ---------------------------------------------------------------- dates */

static void expect_date(const char *s, int y, int m, int d)
{
    int yy = -1, mm = -1, dd = -1;
    if (!date_parse(s, &yy, &mm, &dd)) fail_msg("date_parse refused '%s'", s);
    assert_int_equal(yy, y);
    assert_int_equal(mm, m);
    assert_int_equal(dd, d);
}

static void expect_no_date(const char *s)
{
    int y, m, d;
    if (date_parse(s, &y, &m, &d)) fail_msg("date_parse accepted '%s'", s ? s : "(null)");
}

static void test_date_parse_valid(void **state)
{
    (void)state;
    expect_date("2024-01-15", 2024, 1, 15);
    expect_date("1999-12-31", 1999, 12, 31);
    expect_date("1970-01-01", 1970, 1, 1);
    expect_date("2024-04-30", 2024, 4, 30);
    expect_date("2024-02-29", 2024, 2, 29); /* leap year */
    expect_date("2000-02-29", 2000, 2, 29); /* divisible by 400: leap */
    expect_date("2023-02-28", 2023, 2, 28);
}

static void test_date_parse_invalid(void **state)
{
    (void)state;
    expect_no_date("2023-02-29"); /* not a leap year */
    expect_no_date("1900-02-29"); /* divisible by 100, not by 400 */
    expect_no_date("2100-02-29");
    expect_no_date("2024-02-30");
    expect_no_date("2024-04-31");
    expect_no_date("2024-13-01");
    expect_no_date("2024-00-10");
    expect_no_date("2024-01-00");
    expect_no_date("2024-01-32");
    expect_no_date("2024-2-29");
    expect_no_date("2024-02-9");
    expect_no_date("2024/02/29");
    expect_no_date("20240229");
    expect_no_date("2024-02-29 ");
    expect_no_date(" 2024-02-29");
    expect_no_date("2024-02-29T00:00:00Z");
    expect_no_date("+024-02-10");
    expect_no_date("2024-0a-10");
    expect_no_date("abcd-ef-gh");
    expect_no_date("");
    expect_no_date(NULL);
}

static bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static void test_date_days_round_trip(void **state)
{
    (void)state;
    assert_int_equal(date_to_days(1970, 1, 1), 0);
    assert_int_equal(date_to_days(1970, 1, 2), 1);
    assert_int_equal(date_to_days(1969, 12, 31), -1);
    assert_int_equal(date_to_days(2000, 3, 1), 11017);
    assert_int_equal(date_to_days(1800, 1, 1), -62091);
    assert_int_equal(date_to_days(9999, 12, 31), 2932896);

    /* Every day from 1800-01-01 to 9999-12-31, walked with an independent
     * calendar: date -> days is consecutive, and days -> date comes back. */
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = 1800, m = 1, d = 1;
    int64_t expect = -62091;
    long checked = 0;
    for (;;) {
        int64_t days = date_to_days(y, m, d);
        if (days != expect) fail_msg("date_to_days(%04d-%02d-%02d) = %lld, expected %lld", y, m, d,
                                     (long long)days, (long long)expect);
        int ry, rm, rd;
        date_from_days(days, &ry, &rm, &rd);
        if (ry != y || rm != m || rd != d)
            fail_msg("date_from_days(%lld) = %04d-%02d-%02d, expected %04d-%02d-%02d", (long long)days, ry, rm, rd,
                     y, m, d);
        if (!date_valid(y, m, d)) fail_msg("date_valid(%04d-%02d-%02d) is false", y, m, d);
        checked++;
        if (y == 9999 && m == 12 && d == 31) break;
        int md = mdays[m - 1] + (m == 2 && is_leap(y));
        if (++d > md) {
            d = 1;
            if (++m > 12) { m = 1; y++; }
        }
        expect++;
    }
    assert_int_equal(checked, 2932896 + 62091 + 1);
    /* Before 1970 and far before 1800, the arithmetic still round-trips. */
    for (int64_t days = -1000000; days <= 1000000; days += 997) {
        int ry, rm, rd;
        date_from_days(days, &ry, &rm, &rd);
        assert_int_equal(date_to_days(ry, rm, rd), days);
    }
}

static void test_age_on(void **state)
{
    (void)state;
    /* Born 1990-06-15. */
    assert_int_equal(age_on(1990, 6, 15, 2024, 6, 15), 34); /* birthday today */
    assert_int_equal(age_on(1990, 6, 15, 2024, 6, 14), 33); /* birthday tomorrow */
    assert_int_equal(age_on(1990, 6, 15, 2024, 6, 16), 34); /* birthday yesterday */
    assert_int_equal(age_on(1990, 6, 15, 2024, 5, 31), 33);
    assert_int_equal(age_on(1990, 6, 15, 2024, 7, 1), 34);
    assert_int_equal(age_on(1990, 6, 15, 1990, 6, 15), 0); /* the day of birth */
    assert_int_equal(age_on(1990, 6, 15, 1990, 1, 1), 0);  /* before birth: never negative */
    assert_int_equal(age_on(1990, 12, 31, 2024, 1, 1), 33);
    assert_int_equal(age_on(1990, 1, 1, 2024, 12, 31), 34);
    /* Born on 29 February: in common years the year is full after
     * 28 February (Civil Act art. 160(3)), so the age changes on 1 March. */
    assert_int_equal(age_on(2000, 2, 29, 2001, 2, 28), 0);
    assert_int_equal(age_on(2000, 2, 29, 2001, 3, 1), 1);
    assert_int_equal(age_on(2000, 2, 29, 2004, 2, 28), 3);
    assert_int_equal(age_on(2000, 2, 29, 2004, 2, 29), 4); /* leap year: the birthday itself */
    assert_int_equal(age_on(2000, 2, 29, 2004, 3, 1), 4);
    assert_int_equal(age_on(2000, 2, 29, 2023, 2, 28), 22);
    assert_int_equal(age_on(2000, 2, 29, 2023, 3, 1), 23);
}

static void test_date_today_kst(void **state)
{
    (void)state;
    int y, m, d;
    date_today_kst(&y, &m, &d);
    assert_true(date_valid(y, m, d));
    /* Korea is UTC+9 without DST: today in Korea is the UTC date of now+9h. */
    time_t t = (time_t)(time_now_ms() / 1000) + 9 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    /* (A midnight between the two reads would make them differ by a day.) */
    int64_t a = date_to_days(y, m, d), b = date_to_days(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    assert_true(a == b || a + 1 == b);
}

/* ---------------------------------------------------------------- time */

static void test_time_rfc3339(void **state)
{
    (void)state;
    char s[RFC3339_MAX];
    time_rfc3339(0, s);
    assert_string_equal(s, "1970-01-01T00:00:00.000Z");
    time_rfc3339(1700000000123LL, s);
    assert_string_equal(s, "2023-11-14T22:13:20.123Z");
    time_rfc3339(951782400000LL, s);
    assert_string_equal(s, "2000-02-29T00:00:00.000Z");
    time_rfc3339(951782399999LL, s);
    assert_string_equal(s, "2000-02-28T23:59:59.999Z");
    time_rfc3339(-1, s);
    assert_string_equal(s, "1969-12-31T23:59:59.999Z");
    time_rfc3339(-86400000LL, s);
    assert_string_equal(s, "1969-12-31T00:00:00.000Z");

    /* Now: the shape, and agreement with gmtime. */
    int64_t now = time_now_ms();
    time_rfc3339(now, s);
    assert_int_equal(strlen(s), 24);
    for (int i = 0; i < 24; i++) {
        char c = s[i];
        switch (i) {
        case 4: case 7: assert_int_equal(c, '-'); break;
        case 10: assert_int_equal(c, 'T'); break;
        case 13: case 16: assert_int_equal(c, ':'); break;
        case 19: assert_int_equal(c, '.'); break;
        case 23: assert_int_equal(c, 'Z'); break;
        default: assert_true(c >= '0' && c <= '9');
        }
    }
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char want[64];
    snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(now % 1000));
    assert_string_equal(s, want);

    /* Across the years 1970 to 9999, against gmtime (a fixed sequence). */
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t ms = (int64_t)(x % 253402300800000ULL); /* up to 9999-12-31T23:59:59.999Z */
        time_rfc3339(ms, s);
        t = (time_t)(ms / 1000);
        gmtime_r(&t, &tm);
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
        assert_string_equal(s, want);
    }
}

static void test_str_copy(void **state)
{
    (void)state;
    char b[6];
    memset(b, 'x', sizeof b);
    str_copy(b, sizeof b, "상도"); /* 6 bytes of UTF-8: cut to 5 bytes, as snprintf cut */
    assert_memory_equal(b, "\xec\x83\x81\xeb\x8f", 5);
    assert_int_equal(b[5], 0);
    str_copy(b, sizeof b, "abc");
    assert_string_equal(b, "abc");
    str_copy(b, sizeof b, "abcde"); /* exactly fits */
    assert_string_equal(b, "abcde");
    str_copy(b, sizeof b, "abcdefgh");
    assert_string_equal(b, "abcde");
    str_copy(b, sizeof b, NULL);
    assert_string_equal(b, "");
    str_copy(b, 1, "abc");
    assert_string_equal(b, "");
    b[0] = 'q';
    str_copy(b, 0, "abc"); /* no room: untouched */
    assert_int_equal(b[0], 'q');
    char o[16] = "hello world";
    str_copy(o, sizeof o, o + 6); /* overlapping, as snprintf was never allowed to */
    assert_string_equal(o, "world");
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t a = time_mono_ns(), b = time_mono_ns();
    assert_true(b >= a);
    int64_t ms = time_now_ms();
    assert_true(ms > 1600000000000LL); /* after 2020 */
}

/* ---------------------------------------------------------------- ids */

static const char CROCKFORD[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static int cmp_str(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

static int64_t id_ms(const char *digits)
{
    /* The first 10 characters carry 3 + 9*5 = 48 bits: the milliseconds. */
    int64_t v = 0;
    for (int i = 0; i < 10; i++) {
        const char *p = strchr(CROCKFORD, digits[i]);
        assert_non_null(p);
        v = (v << 5) | (p - CROCKFORD);
    }
    return v;
}

static void test_id_new_shape(void **state)
{
    (void)state;
    char id[ID_MAX];
    int64_t before = time_now_ms();
    id_new("per_", id);
    int64_t after = time_now_ms();
    assert_int_equal(strlen(id), 4 + 26);
    assert_int_equal(strncmp(id, "per_", 4), 0);
    for (size_t i = 4; i < strlen(id); i++)
        if (!strchr(CROCKFORD, id[i]) || !id[i]) fail_msg("id '%s' has a non-Crockford character", id);
    assert_true(strchr("01234567", id[4]) != NULL); /* the first digit carries 3 bits */
    int64_t ms = id_ms(id + 4);
    assert_true(ms >= before && ms <= after);

    id_new("", id);
    assert_int_equal(strlen(id), 26);
    /* A long prefix is cut so the id still fits. */
    id_new("a_very_long_prefix_that_goes_on_", id);
    assert_true(strlen(id) < ID_MAX);
    assert_int_equal(strlen(id), ID_MAX - 27 + 26);
    assert_int_equal(strncmp(id, "a_very_long_p", ID_MAX - 27), 0);
}

static void test_id_new_unique(void **state)
{
    (void)state;
    enum { N = 10000 };
    char(*ids)[ID_MAX] = calloc(N, ID_MAX);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) id_new("cas_", ids[i]);
    qsort(ids, N, ID_MAX, cmp_str);
    for (int i = 1; i < N; i++)
        if (!strcmp(ids[i - 1], ids[i])) fail_msg("duplicate id %s", ids[i]);
    free(ids);
}

/* Ids made back to back (most in the same millisecond) sort in the order
 * they were made. */
static void test_id_new_monotonic(void **state)
{
    (void)state;
    char prev[ID_MAX], cur[ID_MAX];
    id_new("x_", prev);
    for (int i = 0; i < 20000; i++) {
        id_new("x_", cur);
        assert_true(strcmp(prev, cur) < 0);
        memcpy(prev, cur, sizeof cur);
    }
}

static void test_id_new_sorted_by_time(void **state)
{
    (void)state;
    char prev[ID_MAX], cur[ID_MAX];
    id_new("evt_", prev);
    for (int i = 0; i < 20; i++) {
        int64_t t = time_now_ms();
        while (time_now_ms() == t) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        id_new("evt_", cur);
        if (strcmp(prev, cur) >= 0) fail_msg("id %s made later does not sort after %s", cur, prev);
        memcpy(prev, cur, sizeof prev);
    }
}

static void test_token_new(void **state)
{
    (void)state;
    enum { N = 2000 };
    char(*toks)[TOKEN_MAX] = calloc(N, TOKEN_MAX);
    assert_non_null(toks);
    for (int i = 0; i < N; i++) {
        token_new(toks[i]);
        const char *t = toks[i];
        assert_int_equal(strlen(t), 3 + 43);
        assert_int_equal(strncmp(t, "sy_", 3), 0);
        for (size_t k = 3; t[k]; k++) {
            char c = t[k];
            bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '_';
            if (!ok) fail_msg("token %s has a character outside base64url", t);
        }
    }
    qsort(toks, N, TOKEN_MAX, cmp_str);
    for (int i = 1; i < N; i++)
        if (!strcmp(toks[i - 1], toks[i])) fail_msg("duplicate token");
    free(toks);
}

static void test_sha256_hex(void **state)
{
    (void)state;
    char h[SHA256_HEX];
    sha256_hex("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_hex("", 0, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_request_id_new(void **state)
{
    (void)state;
    char a[33], b[33];
    request_id_new(a);
    request_id_new(b);
    assert_int_equal(strlen(a), 32);
    for (int i = 0; i < 32; i++) assert_non_null(strchr("0123456789abcdef", a[i]));
    assert_string_not_equal(a, b);
}

/* ---------------------------------------------------------------- UTF-8 */

#define U8(lit) utf8_valid((lit), sizeof(lit) - 1)

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(U8(""));
    assert_true(U8("plain ascii 123"));
    assert_true(U8("홍길동 통합사례관리 — 대상자 발굴"));
    assert_true(U8("\xC2\x80"));             /* U+0080, smallest 2-byte */
    assert_true(U8("\xE0\xA0\x80"));         /* U+0800, smallest 3-byte */
    assert_true(U8("\xED\x9F\xBF"));         /* U+D7FF, just below the surrogates */
    assert_true(U8("\xEE\x80\x80"));         /* U+E000, just above */
    assert_true(U8("\xF0\x9F\x98\x80"));     /* U+1F600 */
    assert_true(U8("\xF4\x8F\xBF\xBF"));     /* U+10FFFF, the last code point */

    /* Overlong encodings. */
    assert_false(U8("\xC0\xAF"));
    assert_false(U8("\xC1\xBF"));
    assert_false(U8("\xE0\x80\xAF"));
    assert_false(U8("\xE0\x9F\xBF"));
    assert_false(U8("\xF0\x80\x80\xAF"));
    assert_false(U8("\xF0\x8F\xBF\xBF"));
    /* Surrogates (CESU-8). */
    assert_false(U8("\xED\xA0\x80"));
    assert_false(U8("\xED\xBF\xBF"));
    assert_false(U8("\xED\xA0\xBD\xED\xB8\x80"));
    /* Beyond U+10FFFF, and bytes that never start a sequence. */
    assert_false(U8("\xF4\x90\x80\x80"));
    assert_false(U8("\xF8\x88\x80\x80\x80"));
    assert_false(U8("\xFF"));
    assert_false(U8("\x80"));
    assert_false(U8("a\xBF" "b"));
    /* Truncated sequences, at the end and in the middle. */
    const char *hong = "홍길동";
    size_t n = strlen(hong);
    assert_int_equal(n, 9);
    assert_true(utf8_valid(hong, n));
    assert_false(utf8_valid(hong, n - 1));
    assert_false(utf8_valid(hong, n - 2));
    assert_true(utf8_valid(hong, n - 3));
    assert_false(U8("\xEC\x82"));
    assert_false(U8("\xEC\x82" "a"));
    assert_false(U8("\xF0\x9F\x98"));
    assert_false(U8("\xC2"));
    /* NUL is refused even though it is valid UTF-8. */
    assert_false(U8("a\0b"));
    assert_false(U8("\0"));
    assert_false(U8("홍\0"));
}

/* ---------------------------------------------------------------- RRN */

/* Builds a valid number from its first 12 digits. */
static void with_check(const char *twelve, char out[14])
{
    static const int w[12] = {2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5};
    int sum = 0;
    for (int i = 0; i < 12; i++) sum += (twelve[i] - '0') * w[i];
    memcpy(out, twelve, 12);
    out[12] = (char)('0' + (11 - sum % 11) % 10);
    out[13] = 0;
}

static void hyphenate(const char *digits, char out[15])
{
    snprintf(out, 15, "%.6s-%s", digits, digits + 6);
}

/* Numbers are read as of this day in these tests. */
#define RRN_TODAY "2026-12-01"

static void expect_rrn(const char *s, const char *digits, const char *birth, bool male)
{
    rrn_info info;
    rrn_status st = rrn_read(s, RRN_TODAY, &info);
    if (st != RRN_OK) fail_msg("rrn_read('%s') = %d (%s)", s, st, rrn_status_text(st));
    assert_string_equal(info.digits, digits);
    assert_string_equal(info.birth, birth);
    assert_int_equal(info.male, male);
}

static void expect_rrn_status(const char *s, rrn_status want)
{
    rrn_info info;
    rrn_status st = rrn_read(s, RRN_TODAY, &info);
    if (st != want) fail_msg("rrn_read('%s') = %d, expected %d", s, st, want);
}

static void test_rrn_valid(void **state)
{
    (void)state;
    static const struct {
        const char *twelve, *birth;
        bool male;
    } cases[] = {
        {"900101123456", "1990-01-01", true},  /* 1: 1900s man */
        {"851231234567", "1985-12-31", false}, /* 2: 1900s woman */
        {"050315312345", "2005-03-15", true},  /* 3: 2000s man */
        {"000229412345", "2000-02-29", false}, /* 4: 2000s woman, leap day */
        {"991231912345", "1899-12-31", true},  /* 9: 1800s man */
        {"990101012345", "1899-01-01", false}, /* 0: 1800s woman */
        {"760704512345", "1976-07-04", true},  /* 5: foreign resident, 1900s */
        {"760704612345", "1976-07-04", false}, /* 6 */
        {"120101712345", "2012-01-01", true},  /* 7: foreign resident, 2000s */
        {"120101812345", "2012-01-01", false}, /* 8 */
        {"960229112345", "1996-02-29", true},  /* 1900s leap day */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char digits[14], hy[15];
        with_check(cases[i].twelve, digits);
        hyphenate(digits, hy);
        expect_rrn(digits, digits, cases[i].birth, cases[i].male);
        expect_rrn(hy, digits, cases[i].birth, cases[i].male);
    }
    /* The helper itself, by hand: 9*2+0*3+0*4+1*5+0*6+1*7+1*8+2*9+3*2+4*3+5*4+6*5
     * = 124; 124 % 11 = 3; 11 - 3 = 8. */
    char d[14];
    with_check("900101123456", d);
    assert_string_equal(d, "9001011234568");
    expect_rrn("900101-1234568", "9001011234568", "1990-01-01", true);
    expect_rrn("900101-1234567", "9001011234567", "1990-01-01", true); /* a wrong check digit warns only */
}

/* The check digit of numbers issued before 2020-10-05 is only a warning,
 * and only for someone born before that day; numbers since have random
 * digits after the sex digit (issue: every child born since October 2020
 * was refused). */
static void test_rrn_check_digit(void **state)
{
    (void)state;
    rrn_info info;
    char digits[14];
    with_check("900101123456", digits);
    assert_int_equal(rrn_read(digits, RRN_TODAY, &info), RRN_OK);
    assert_false(info.check_mismatch);
    assert_null(rrn_warning(&info));
    for (int k = 1; k <= 9; k++) {
        char bad[14];
        memcpy(bad, digits, sizeof bad);
        bad[12] = (char)('0' + (digits[12] - '0' + k) % 10);
        assert_int_equal(rrn_read(bad, RRN_TODAY, &info), RRN_OK); /* accepted ... */
        assert_true(info.check_mismatch);                            /* ... with a warning */
        assert_non_null(strstr(rrn_warning(&info), "2020-10-05"));
    }
    /* A child born in 2021: random digits, no check, no warning whatever the last digit. */
    for (int last = 0; last <= 9; last++) {
        char kid[16];
        snprintf(kid, sizeof kid, "210315-482917%d", last);
        assert_int_equal(rrn_read(kid, RRN_TODAY, &info), RRN_OK);
        assert_string_equal(info.birth, "2021-03-15");
        assert_false(info.male);
        assert_false(info.check_mismatch);
    }
    /* The day the change took effect: no check from then on. */
    assert_int_equal(rrn_read("201005-3999999", RRN_TODAY, &info), RRN_OK);
    assert_false(info.check_mismatch);
    assert_int_equal(rrn_read("201004-3999999", RRN_TODAY, &info), RRN_OK);
    assert_true(info.check_mismatch);
    /* A foreign resident's number: its own variant of the check. */
    static const int w[12] = {2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5};
    char f[14] = "880617612345";
    int sum = 0;
    for (int i = 0; i < 12; i++) sum += (f[i] - '0') * w[i];
    f[12] = (char)('0' + (13 - sum % 11) % 10);
    f[13] = 0;
    assert_int_equal(rrn_read(f, RRN_TODAY, &info), RRN_OK);
    assert_true(info.foreign);
    assert_false(info.male);
    assert_string_equal(info.birth, "1988-06-17");
    assert_false(info.check_mismatch);
    f[12] = (char)('0' + (f[12] - '0' + 1) % 10);
    assert_int_equal(rrn_read(f, RRN_TODAY, &info), RRN_OK);
    assert_true(info.check_mismatch);
    /* A birth date still to come cannot be real. */
    assert_int_equal(rrn_read("270101-4123456", RRN_TODAY, &info), RRN_FUTURE);
    assert_int_equal(rrn_read("261201-4123456", RRN_TODAY, &info), RRN_OK);
    assert_string_equal(rrn_status_text(RRN_FUTURE), "the birth date in it is after today");
}

static void test_rrn_bad_dates(void **state)
{
    (void)state;
    static const char *const twelve[] = {
        "900230123456", /* 30 February */
        "901301123456", /* month 13 */
        "900001123456", /* month 0 */
        "900100123456", /* day 0 */
        "900132123456", /* day 32 */
        "900431123456", /* 31 April */
        "000229123456", /* 1900-02-29: 1900 is not a leap year */
        "000229923456", /* 1800-02-29: nor 1800 */
        "010229323456", /* 2001-02-29 */
        "000000123456",
    };
    for (size_t i = 0; i < sizeof twelve / sizeof twelve[0]; i++) {
        char digits[14];
        with_check(twelve[i], digits);
        expect_rrn_status(digits, RRN_DATE);
    }
    /* ... while 2000-02-29 (sex digit 3) exists. */
    char ok[14];
    with_check("000229323456", ok);
    expect_rrn(ok, ok, "2000-02-29", true);
}

static void test_rrn_format(void **state)
{
    (void)state;
    char digits[14];
    with_check("900101123456", digits);
    char buf[64];
    expect_rrn_status("", RRN_FORMAT);
    expect_rrn_status("900101", RRN_FORMAT);
    snprintf(buf, sizeof buf, "%.12s", digits); /* 12 digits */
    expect_rrn_status(buf, RRN_FORMAT);
    snprintf(buf, sizeof buf, "%s0", digits); /* 14 digits */
    expect_rrn_status(buf, RRN_FORMAT);
    snprintf(buf, sizeof buf, "%.6s-%s0", digits, digits + 6); /* 14 digits, hyphenated */
    expect_rrn_status(buf, RRN_FORMAT);
    snprintf(buf, sizeof buf, "%.5s-%s", digits, digits + 5); /* hyphen in the wrong place */
    expect_rrn_status(buf, RRN_FORMAT);
    snprintf(buf, sizeof buf, "%.7s-%s", digits, digits + 7);
    expect_rrn_status(buf, RRN_FORMAT);
    snprintf(buf, sizeof buf, "%.6s--%s", digits, digits + 6); /* two hyphens */
    expect_rrn_status(buf, RRN_FORMAT);
    snprintf(buf, sizeof buf, "%s-", digits); /* trailing hyphen */
    expect_rrn_status(buf, RRN_FORMAT);
    snprintf(buf, sizeof buf, "-%s", digits);
    expect_rrn_status(buf, RRN_FORMAT);
    snprintf(buf, sizeof buf, "%.6s %s", digits, digits + 6); /* a space instead of the hyphen */
    expect_rrn_status(buf, RRN_FORMAT);
    snprintf(buf, sizeof buf, " %s", digits);
    expect_rrn_status(buf, RRN_FORMAT);
    expect_rrn_status("90010a-1234567", RRN_FORMAT); /* letters */
    expect_rrn_status("900101-123456X", RRN_FORMAT);
    expect_rrn_status("abcdefghijklm", RRN_FORMAT);
    expect_rrn_status("900101\xE2\x80\x93" "1234567", RRN_FORMAT); /* an en dash */
    expect_rrn_status("９００１０１１２３４５６８", RRN_FORMAT); /* full-width digits */

    /* Every status has a text. */
    assert_string_equal(rrn_status_text(RRN_OK), "valid");
    assert_true(strlen(rrn_status_text(RRN_FORMAT)) > 0);
    assert_true(strlen(rrn_status_text(RRN_DATE)) > 0);
    assert_true(strlen(rrn_status_text(RRN_FUTURE)) > 0);
    assert_string_not_equal(rrn_status_text(RRN_FORMAT), rrn_status_text(RRN_FUTURE));
}

/* ---------------------------------------------------------------- err_t */

static void test_err_json_shape(void **state)
{
    (void)state;
    err_t e = {0};
    err_set(&e, 404, "not_found", "no person '%s'", "per_X");
    assert_int_equal(e.status, 404);
    assert_string_equal(e.code, "not_found");
    assert_string_equal(e.message, "no person 'per_X'");
    assert_null(e.details);

    json_t *j = err_json(&e);
    assert_true(json_is_object(j));
    assert_int_equal(json_object_size(j), 1);
    json_t *inner = json_object_get(j, "error");
    assert_true(json_is_object(inner));
    assert_int_equal(json_object_size(inner), 3);
    assert_string_equal(json_string_value(json_object_get(inner, "code")), "not_found");
    assert_string_equal(json_string_value(json_object_get(inner, "message")), "no person 'per_X'");
    json_t *details = json_object_get(inner, "details");
    assert_true(json_is_object(details));
    assert_int_equal(json_object_size(details), 0);
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"error\":{\"code\":\"not_found\",\"details\":{},\"message\":\"no person 'per_X'\"}}");
    free(text);
    json_decref(j);
    err_clear(&e);
}

static void test_err_details(void **state)
{
    (void)state;
    err_t e = {0};
    err_set(&e, 422, "guard_refused", "%s refused: %s", "integrated", "선정 결과 없음");
    err_detail(&e, "plugin", json_string("integrated"));
    err_detail(&e, "reason", json_string("선정 결과 없음"));
    err_detail(&e, "allowed", json_pack("[ss]", "planning", "closure"));
    json_t *j = err_json(&e);
    json_t *d = json_object_get(json_object_get(j, "error"), "details");
    assert_int_equal(json_object_size(d), 3);
    assert_string_equal(json_string_value(json_object_get(d, "plugin")), "integrated");
    assert_string_equal(json_string_value(json_object_get(d, "reason")), "선정 결과 없음");
    assert_int_equal(json_array_size(json_object_get(d, "allowed")), 2);
    /* The rendering stays valid after the err is cleared. */
    err_clear(&e);
    assert_int_equal(e.status, 0);
    assert_string_equal(e.code, "");
    assert_string_equal(e.message, "");
    assert_null(e.details);
    assert_string_equal(json_string_value(json_object_get(d, "plugin")), "integrated");
    json_decref(j);

    /* A new err_set drops the old details. */
    err_set(&e, 400, "validation_failed", "first");
    err_detail(&e, "field", json_string("name"));
    err_set(&e, 409, "duplicate", "second");
    assert_null(e.details);
    j = err_json(&e);
    assert_int_equal(json_object_size(json_object_get(json_object_get(j, "error"), "details")), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "duplicate");
    json_decref(j);
    err_clear(&e);
}

static void test_err_defaults_and_limits(void **state)
{
    (void)state;
    err_t e = {0};
    /* An err never set still renders the shape, as an internal error. */
    json_t *j = err_json(&e);
    json_t *inner = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(inner, "code")), "internal_error");
    assert_true(strlen(json_string_value(json_object_get(inner, "message"))) > 0);
    assert_true(json_is_object(json_object_get(inner, "details")));
    json_decref(j);
    /* Over-long text is cut, never overflowed. */
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    err_set(&e, 400, "validation_failed_with_a_code_that_is_much_longer_than_forty_eight", "%s", big);
    assert_int_equal(strlen(e.message), sizeof e.message - 1);
    assert_int_equal(strlen(e.code), sizeof e.code - 1);
    err_clear(&e);
}

/* Log values: escaped, resident-number shapes masked, cut on a character. */
static void test_log_value(void **state)
{
    (void)state;
    char out[64];
    log_value("/v1/persons/9001011234568", out, sizeof out);
    assert_string_equal(out, "/v1/persons/*************");
    log_value("rrn 900101-1234568 and 12345678901234", out, sizeof out);
    assert_string_equal(out, "rrn ******-******* and 12345678901234"); /* 14 digits: not the shape */
    log_value("a\"b\\c\nd\x01", out, sizeof out);
    assert_string_equal(out, "a\\\"b\\\\c\\x0ad\\x01");
    log_value("\xff\xfe", out, sizeof out);
    assert_string_equal(out, "\\xff\\xfe");
    char small[16];
    log_value("홍길동홍길동홍길동", small, sizeof small); /* 3 bytes a character */
    assert_true(utf8_valid(small, strlen(small)));
    assert_non_null(strstr(small, "..."));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date_parse_valid),
        cmocka_unit_test(test_date_parse_invalid),
        cmocka_unit_test(test_date_days_round_trip),
        cmocka_unit_test(test_age_on),
        cmocka_unit_test(test_date_today_kst),
        cmocka_unit_test(test_time_rfc3339),
        cmocka_unit_test(test_str_copy),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_id_new_shape),
        cmocka_unit_test(test_id_new_unique),
        cmocka_unit_test(test_id_new_sorted_by_time),
        cmocka_unit_test(test_id_new_monotonic),
        cmocka_unit_test(test_token_new),
        cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test(test_request_id_new),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_rrn_valid),
        cmocka_unit_test(test_rrn_check_digit),
        cmocka_unit_test(test_rrn_bad_dates),
        cmocka_unit_test(test_rrn_format),
        cmocka_unit_test(test_err_json_shape),
        cmocka_unit_test(test_err_details),
        cmocka_unit_test(test_err_defaults_and_limits),
        cmocka_unit_test(test_log_value),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
