/*
 * base: small utilities every other unit of the core relies on — structured
 * one-line logging, random ids and tokens, SHA-256, dates and times.
 * It depends on libsodium (randomness, hashing) and nothing else in sarye.
 */
#ifndef SARYE_BASE_H
#define SARYE_BASE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Must be called once before anything else (initialises libsodium). */
int base_init(void);

/* ---- logging: one line per record, logfmt ("ts=.. level=.. msg=.. k=v") ---- */
typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;
void log_set_level(log_level lvl);
/* Whether a message of this level is written (to skip preparing one that is not). */
bool log_enabled(log_level lvl);
/* json: each record one JSON object instead ({"ts":..,"level":..,"msg":..,
 * then the pairs: quoted values as strings, bare numbers as numbers}). */
void log_set_json(bool json);
/* fmt is a series of extra " key=value" pairs already formatted by the caller;
 * msg is quoted for the reader. */
void log_msg(log_level lvl, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The request the calling thread is serving (NULL: none): every record it
 * logs meanwhile carries " req=<id>" after msg, so what a plugin failure,
 * the store or the audit logs deep inside a request is tied to its
 * X-Request-Id. id is copied. */
void log_set_request(const char *id);

/* ---- ids and secrets ---- */
/* A time-ordered opaque id: prefix + 26 Crockford base32 characters
 * (48-bit milliseconds + 80 bits, random per millisecond and counting up
 * within one), so ids made in this process sort by creation. */
#define ID_MAX 40
void id_new(const char *prefix, char out[ID_MAX]);
/* A bearer token: "sy_" + 43 base64url characters (256 random bits). */
#define TOKEN_MAX 64
void token_new(char out[TOKEN_MAX]);
/* Lower-case hex SHA-256 of data. */
#define SHA256_HEX 65
void sha256_hex(const void *data, size_t len, char out[SHA256_HEX]);
/* Random request id: 32 hex characters. */
void request_id_new(char out[33]);

/* ---- time ---- */
/* Milliseconds since the epoch (wall clock) and a monotonic clock. */
int64_t time_now_ms(void);
int64_t time_mono_ns(void);
/* CPU time the calling thread has used (a system call: not for hot loops). */
int64_t time_thread_cpu_ns(void);

/* A background thread that sleeps on cv under mu until *stop: sets it,
 * wakes the thread and waits for it to end. */
void thread_stop(pthread_t th, pthread_mutex_t *mu, pthread_cond_t *cv, bool *stop);
/* RFC 3339 UTC with milliseconds: "2026-11-23T18:50:19.123Z" (25 bytes). */
#define RFC3339_MAX 32
void time_rfc3339(int64_t ms, char out[RFC3339_MAX]);
/* Today's civil date in Korea (UTC+9, no DST) as y/m/d, moved by the
 * business-date offset (0 unless a test shifted the clock). Timestamps
 * (time_now_ms) are never shifted. */
void date_today_kst(int *y, int *m, int *d);
/* The same as "YYYY-MM-DD". */
void date_today_str(char out[11]);
/* Shifts the business date by days (tests; clock.adjustable = on). */
void clock_set_offset_days(int days);
int clock_offset_days(void);

/* ---- dates (proleptic Gregorian) ---- */
bool date_valid(int y, int m, int d);
/* Parses exactly "YYYY-MM-DD". */
bool date_parse(const char *s, int *y, int *m, int *d);
/* Days since 1970-01-01 and back. */
int64_t date_to_days(int y, int m, int d);
void date_from_days(int64_t days, int *y, int *m, int *d);
/* "YYYY-MM-DD" moved by n days, or by n months (a day past the end of the
 * month clamps to its last day: 01-31 + 1 month = end of February). False
 * for an invalid date or a result outside years 0 to 9999. */
bool date_add_days(const char *date, long n, char out[11]);
bool date_add_months(const char *date, long n, char out[11]);
/* Full years from the birth date to the given date (international age). */
int age_on(int by, int bm, int bd, int y, int m, int d);

/* ---- text ---- */
/* True if JSON text s nests at most max levels of arrays and objects.
 * Parsers recurse per level, and worker threads have small stacks: every
 * JSON from outside (requests, agencies, plugins) is checked first. */
bool json_depth_ok(const char *s, size_t len, int max);
/* True if s (len bytes) is well-formed UTF-8 without NUL. */
bool utf8_valid(const char *s, size_t len);
/* A value for a log line: quotes and backslashes escaped, control and
 * non-UTF-8 bytes as \xNN, and anything shaped like a resident
 * registration number (13 digits, or 6-7 with a dash) masked; cut to fit
 * out with "..." (never inside a character). */
void log_value(const char *in, char *out, size_t outlen);
/* Copies src (NULL: "") into dst of n bytes, cut to fit and always ended:
 * what snprintf(dst, n, "%s", src) does, without parsing a format (the
 * hot paths copy a dozen names a request). */
void str_copy(char *dst, size_t n, const char *src);
/* FNV-1a of the text s: the key of the fixed hash tables (regions,
 * addresses, tokens, statements). Not for anything an attacker must not
 * steer: a collision only ever shares a slot or lengthens a probe. */
uint32_t str_hash(const char *s);

#endif
