/*
 * base.c: logging, ids, hashing and dates. Randomness and SHA-256 come from
 * libsodium; dates are plain integer arithmetic so they never depend on the
 * process time zone.
 */
#include "base/base.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <ctype.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

static log_level g_log_level = LOG_INFO;
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;

int base_init(void)
{
    /* With glibc's malloc (the unit tests, sanitizer builds; the server
     * links jemalloc, and this then sets what nothing uses): many threads
     * each grow and shrink their malloc arena on every request (measured:
     * a fifth of a write's CPU in sysmalloc, trims and mprotect). Keep what
     * was grown; large blocks stay on the heap. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_TOP_PAD, 4 << 20);
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    return sodium_init() < 0 ? -1 : 0;
}

void log_set_level(log_level lvl) { g_log_level = lvl; }
bool log_enabled(log_level lvl) { return lvl >= g_log_level; }

static _Thread_local char t_request[72];

void log_set_request(const char *id) { str_copy(t_request, sizeof t_request, id ? id : ""); }
static bool g_log_json;
void log_set_json(bool json) { g_log_json = json; }

typedef struct {
    char *buf;
    size_t len, cap;
} jbuf;

static void jb_put(jbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) n = b->cap > b->len + 1 ? b->cap - b->len - 1 : 0;
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

static void jb_str(jbuf *b, const char *s) { jb_put(b, s, strlen(s)); }

/* A logfmt value (its quotes removed; \" \\ and \xNN escapes as log_value
 * writes them) as the inside of a JSON string. */
static void jb_escaped(jbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        if (c == '\\' && i + 1 < n && (s[i + 1] == '"' || s[i + 1] == '\\')) {
            jb_put(b, s[i + 1] == '"' ? "\\\"" : "\\\\", 2);
            i++;
        } else if (c == '\\' && i + 3 < n && s[i + 1] == 'x' && isxdigit((unsigned char)s[i + 2]) &&
                   isxdigit((unsigned char)s[i + 3])) {
            unsigned v = (unsigned)strtoul((char[]){s[i + 2], s[i + 3], 0}, NULL, 16);
            /* a control byte as JSON's escape; a byte that was not UTF-8 as text */
            snprintf(tmp, sizeof tmp, v < 0x20 || v == 0x7f ? "\\u%04x" : "\\\\x%02x", v);
            jb_str(b, tmp);
            i += 3;
        } else if (c == '"' || c == '\\') {
            jb_put(b, "\\", 1);
            jb_put(b, (const char *)&s[i], 1);
        } else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            jb_str(b, tmp);
        } else {
            jb_put(b, (const char *)&s[i], 1);
        }
    }
}

static bool json_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (i == n || !isdigit((unsigned char)s[i])) return false;
    if (s[i] == '0' && i + 1 < n && isdigit((unsigned char)s[i + 1])) return false;
    while (i < n && isdigit((unsigned char)s[i])) i++;
    if (i < n && s[i] == '.') {
        i++;
        if (i == n || !isdigit((unsigned char)s[i])) return false;
        while (i < n && isdigit((unsigned char)s[i])) i++;
    }
    return i == n;
}

/* " k=v k2=\"q\"" as ,"k":v,"k2":"q". Identifiers stay strings even when
 * they look like numbers. */
static void jb_pairs(jbuf *b, const char *s)
{
    static const char *const textual[] = {"req", "user", "org", "generation", "addr", "agency", "region", NULL};
    while (*s) {
        while (*s == ' ') s++;
        const char *k = s;
        while (*s && *s != '=' && *s != ' ') s++;
        if (*s != '=' || s == k) { /* not a pair: keep the words as text */
            const char *w = k;
            while (*s && *s != ' ') s++;
            if (s > w) {
                jb_str(b, ",\"text\":\"");
                jb_escaped(b, w, (size_t)(s - w));
                jb_str(b, "\"");
            }
            continue;
        }
        size_t kl = (size_t)(s - k);
        s++;
        jb_str(b, ",\"");
        jb_escaped(b, k, kl);
        jb_str(b, "\":");
        if (*s == '"') {
            const char *v = ++s;
            while (*s && *s != '"') s += (*s == '\\' && s[1]) ? 2 : 1;
            jb_str(b, "\"");
            jb_escaped(b, v, (size_t)(s - v));
            jb_str(b, "\"");
            if (*s == '"') s++;
        } else {
            const char *v = s;
            while (*s && *s != ' ') s++;
            bool text = false;
            for (const char *const *t = textual; *t && !text; t++) text = strlen(*t) == kl && !strncmp(*t, k, kl);
            if (!text && json_number(v, (size_t)(s - v))) {
                jb_put(b, v, (size_t)(s - v));
            } else {
                jb_str(b, "\"");
                jb_escaped(b, v, (size_t)(s - v));
                jb_str(b, "\"");
            }
        }
    }
}

void log_msg(log_level lvl, const char *msg, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (lvl < g_log_level) return;
    char ts[RFC3339_MAX];
    time_rfc3339(time_now_ms(), ts);
    char extra[2048] = "";
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(extra, sizeof extra, fmt, ap);
        va_end(ap);
    }
    /* Quote the message; it may contain spaces but never a newline. */
    char qmsg[512];
    size_t j = 0;
    for (size_t i = 0; msg[i] && j + 3 < sizeof qmsg; i++) {
        char c = msg[i];
        if (c == '\n' || c == '\r') c = ' ';
        if (c == '"' || c == '\\') qmsg[j++] = '\\';
        qmsg[j++] = c;
    }
    qmsg[j] = 0;
    if (g_log_json) {
        /* Every byte of the pairs takes at most six in JSON: this fits. */
        static _Thread_local char line[6 * sizeof extra + 2048];
        jbuf b = {line, 0, sizeof line};
        line[0] = 0;
        jb_str(&b, "{\"ts\":\"");
        jb_str(&b, ts);
        jb_str(&b, "\",\"level\":\"");
        jb_str(&b, names[lvl]);
        jb_str(&b, "\",\"msg\":\"");
        jb_escaped(&b, qmsg, strlen(qmsg));
        jb_str(&b, "\"");
        if (t_request[0]) {
            jb_str(&b, ",\"req\":\"");
            jb_escaped(&b, t_request, strlen(t_request));
            jb_str(&b, "\"");
        }
        jb_pairs(&b, extra);
        pthread_mutex_lock(&g_log_mu);
        fprintf(stderr, "%s}\n", line);
        fflush(stderr);
        pthread_mutex_unlock(&g_log_mu);
        return;
    }
    pthread_mutex_lock(&g_log_mu);
    fprintf(stderr, "ts=%s level=%s msg=\"%s\"%s%s%s\n", ts, names[lvl], qmsg, t_request[0] ? " req=" : "",
            t_request, extra);
    fflush(stderr);
    pthread_mutex_unlock(&g_log_mu);
}

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Monotonic within a millisecond: the next id of the same millisecond is
 * the previous random part plus one, so ids sort by creation. */
static pthread_mutex_t g_id_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_id_ms;
static uint8_t g_id_rand[10];

void id_new(const char *prefix, char out[ID_MAX])
{
    uint8_t raw[16];
    uint64_t ms = (uint64_t)time_now_ms();
    pthread_mutex_lock(&g_id_mu);
    if (ms <= g_id_ms) {
        ms = g_id_ms; /* same millisecond, or the clock stepped back */
        for (int i = 9; i >= 0 && ++g_id_rand[i] == 0; i--) {}
    } else {
        g_id_ms = ms;
        randombytes_buf(g_id_rand, sizeof g_id_rand);
        g_id_rand[0] &= 0x7f; /* room to count up without wrapping */
    }
    memcpy(raw + 6, g_id_rand, 10);
    pthread_mutex_unlock(&g_id_mu);
    for (int i = 0; i < 6; i++) raw[i] = (uint8_t)(ms >> (8 * (5 - i)));
    size_t p = strlen(prefix);
    if (p > ID_MAX - 27) p = ID_MAX - 27;
    memcpy(out, prefix, p);
    /* 128 bits -> 26 base32 digits, most significant first. */
    for (int i = 0; i < 26; i++) {
        int bit = i * 5 - 2; /* the first digit carries only 3 bits */
        int v = 0;
        for (int b = 0; b < 5; b++, bit++) {
            v <<= 1;
            if (bit >= 0) v |= (raw[bit / 8] >> (7 - bit % 8)) & 1;
        }
        out[p + (size_t)i] = crockford[v];
    }
    out[p + 26] = 0;
}

void token_new(char out[TOKEN_MAX])
{
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    memcpy(out, "sy_", 3);
    sodium_bin2base64(out + 3, TOKEN_MAX - 3, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

void sha256_hex(const void *data, size_t len, char out[SHA256_HEX])
{
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, data, len);
    sodium_bin2hex(out, SHA256_HEX, h, sizeof h);
}

/* Unpredictable, without a system call per request: each thread keys a
 * ChaCha20 stream once from the kernel's generator and takes the next block
 * of it (a counter as the nonce) for every id. */
void request_id_new(char out[33])
{
    static _Thread_local uint8_t key[crypto_stream_chacha20_KEYBYTES];
    static _Thread_local uint64_t counter;
    if (!counter++) randombytes_buf(key, sizeof key);
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0}, raw[16];
    memcpy(nonce, &counter, sizeof counter < sizeof nonce ? sizeof counter : sizeof nonce);
    crypto_stream_chacha20(raw, sizeof raw, nonce, key);
    sodium_bin2hex(out, 33, raw, sizeof raw);
}

int64_t time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void thread_stop(pthread_t th, pthread_mutex_t *mu, pthread_cond_t *cv, bool *stop)
{
    pthread_mutex_lock(mu);
    *stop = true;
    pthread_cond_signal(cv);
    pthread_mutex_unlock(mu);
    pthread_join(th, NULL);
}

int64_t time_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The last `width` decimal digits of v, then `sep`; returns the next place. */
static char *put_digits(char *p, unsigned v, int width, char sep)
{
    for (int k = width - 1; k >= 0; k--, v /= 10) p[k] = (char)('0' + v % 10);
    p[width] = sep;
    return p + width + 1;
}

void time_rfc3339(int64_t ms, char out[RFC3339_MAX])
{
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    int y, m, d;
    date_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) { /* never a time sarye keeps: the general way */
        snprintf(out, RFC3339_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, (int)(rem / 3600),
                 (int)(rem / 60 % 60), (int)(rem % 60), (int)(ms - secs * 1000));
        return;
    }
    /* Every write stamps a time or three: digits by hand, not snprintf. */
    char *p = out;
    p = put_digits(p, (unsigned)y, 4, '-');
    p = put_digits(p, (unsigned)m, 2, '-');
    p = put_digits(p, (unsigned)d, 2, 'T');
    p = put_digits(p, (unsigned)(rem / 3600), 2, ':');
    p = put_digits(p, (unsigned)(rem / 60 % 60), 2, ':');
    p = put_digits(p, (unsigned)(rem % 60), 2, '.');
    p = put_digits(p, (unsigned)(ms - secs * 1000), 3, 'Z');
    *p = 0;
}

static atomic_int g_clock_offset_days;

void clock_set_offset_days(int days) { atomic_store(&g_clock_offset_days, days); }
int clock_offset_days(void) { return atomic_load(&g_clock_offset_days); }

void date_today_kst(int *y, int *m, int *d)
{
    int64_t secs = time_now_ms() / 1000 + 9 * 3600;
    date_from_days(secs / 86400 + atomic_load(&g_clock_offset_days), y, m, d);
}

void date_today_str(char out[11])
{
    int y, m, d;
    date_today_kst(&y, &m, &d);
    char *p = put_digits(out, (unsigned)y, 4, '-');
    p = put_digits(p, (unsigned)m, 2, '-');
    put_digits(p, (unsigned)d, 2, 0);
}

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

bool date_valid(int y, int m, int d)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1800 || y > 9999 || m < 1 || m > 12 || d < 1) return false;
    int md = mdays[m - 1] + (m == 2 && leap(y));
    return d <= md;
}

bool date_parse(const char *s, int *y, int *m, int *d)
{
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-') return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return false;
    *y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    *m = (s[5] - '0') * 10 + (s[6] - '0');
    *d = (s[8] - '0') * 10 + (s[9] - '0');
    return date_valid(*y, *m, *d);
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
int64_t date_to_days(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void date_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

static bool date_format(int y, int m, int d, char out[11])
{
    if (y < 0 || y > 9999 || !date_valid(y, m, d)) return false;
    snprintf(out, 11, "%04d-%02d-%02d", y, m, d);
    return true;
}

bool date_add_days(const char *date, long n, char out[11])
{
    int y, m, d;
    if (!date_parse(date, &y, &m, &d) || n < -3650000 || n > 3650000) return false;
    date_from_days(date_to_days(y, m, d) + n, &y, &m, &d);
    return date_format(y, m, d, out);
}

bool date_add_months(const char *date, long n, char out[11])
{
    int y, m, d;
    if (!date_parse(date, &y, &m, &d) || n < -120000 || n > 120000) return false;
    int64_t total = (int64_t)y * 12 + (m - 1) + n;
    if (total < 0) return false;
    int ny = (int)(total / 12), nm = (int)(total % 12) + 1;
    while (!date_valid(ny, nm, d) && d > 28) d--; /* 1-31 + 1 month = end of February */
    return date_format(ny, nm, d, out);
}

int age_on(int by, int bm, int bd, int y, int m, int d)
{
    int age = y - by;
    if (m < bm || (m == bm && d < bd)) age--;
    return age < 0 ? 0 : age;
}

/* Length of an RRN-shaped run at s (13 digits, or 6 digits '-' 7 digits,
 * not part of a longer run of digits), or 0. */
static size_t rrn_shape(const char *start, const char *s)
{
    if (s > start && isdigit((unsigned char)s[-1])) return 0;
    size_t n = 0;
    while (isdigit((unsigned char)s[n])) n++;
    if (n == 13) return 13;
    if (n == 6 && s[6] == '-') {
        size_t m = 0;
        while (isdigit((unsigned char)s[7 + m])) m++;
        if (m == 7) return 14;
    }
    return 0;
}

uint32_t str_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

void str_copy(char *dst, size_t n, const char *src)
{
    if (!n) return;
    size_t len = src ? strnlen(src, n - 1) : 0;
    if (len) memmove(dst, src, len);
    dst[len] = 0;
}

void log_value(const char *in, char *out, size_t outlen)
{
    size_t j = 0, n = strlen(in);
    for (size_t i = 0; i < n && j + 8 < outlen;) {
        size_t r = rrn_shape(in, in + i);
        if (r) {
            if (j + r + 1 >= outlen) break;
            for (size_t k = 0; k < r; k++) out[j++] = in[i + k] == '-' ? '-' : '*';
            i += r;
            continue;
        }
        unsigned char c = (unsigned char)in[i];
        size_t clen = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (c == '"' || c == '\\') {
            out[j++] = '\\';
            out[j++] = (char)c;
            i++;
        } else if (c < 0x20 || c == 0x7f || !clen || i + clen > n || !utf8_valid(in + i, clen)) {
            j += (size_t)snprintf(out + j, outlen - j, "\\x%02x", c);
            i++;
        } else {
            if (j + clen + 1 >= outlen) break;
            memcpy(out + j, in + i, clen);
            j += clen;
            i += clen;
        }
        if (i < n && j + 8 >= outlen && j + 4 < outlen) {
            memcpy(out + j, "...", 3);
            j += 3;
            break;
        }
    }
    out[j < outlen ? j : outlen - 1] = 0;
}

bool json_depth_ok(const char *s, size_t n, int max)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max) return false;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return true;
}

bool utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c == 0) return false;
        if (c < 0x80) { i++; continue; }
        size_t n;
        unsigned min;
        if ((c & 0xE0) == 0xC0) { n = 1; min = 0x80; c &= 0x1F; }
        else if ((c & 0xF0) == 0xE0) { n = 2; min = 0x800; c &= 0x0F; }
        else if ((c & 0xF8) == 0xF0) { n = 3; min = 0x10000; c &= 0x07; }
        else return false;
        if (i + n >= len) return false; /* truncated sequence */
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
        i += n + 1;
    }
    return true;
}
