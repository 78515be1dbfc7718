/*
 * server.c: the CivetWeb server and the path of every request — request id,
 * routing, draining, authentication, roles, body limits and JSON parsing,
 * Idempotency-Key hashing, then the handler, then metrics and one access-log
 * line. Handlers live in h_*.c; this file knows none of their resources.
 */
#include <arpa/inet.h>
#include <civetweb.h>
#include <sodium.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/gate.h"
#include "http/http.h"
#include "http/internal.h"
#include "http/share.h"
#include "process/process.h"
#include "store/pii.h"

/* ---- the route table: the single place routes are registered ---- */
static const route ROUTES[] = {
    {"GET", "/healthz", h_healthz, ROLES_PUBLIC, false},
    {"GET", "/readyz", h_readyz, ROLES_PUBLIC, false},
    {"GET", "/metrics", h_metrics, ROLES_PUBLIC, false},
    {"GET", "/openapi.json", h_openapi, ROLES_PUBLIC, false},
    {"GET", "/", h_console_index, ROLES_PUBLIC, false},
    {"GET", "/console/{file}", h_console_file, ROLES_PUBLIC, false},
    {"POST", "/v1/orgs", h_orgs_create, ROLE_ADMIN | ROLE_OPERATOR, true},
    {"POST", "/v1/tokens", h_tokens_create, ROLE_ADMIN | ROLE_OPERATOR, true},
    {"GET", "/v1/tokens", h_tokens_list, ROLE_ADMIN | ROLE_OPERATOR, false},
    {"POST", "/v1/tokens/{id}/revoke", h_tokens_revoke, ROLE_ADMIN | ROLE_OPERATOR, false},
    {"GET", "/v1/orgs/{id}/sharing-rights/{user}", h_sharing_right_get, ROLE_SUPERVISOR | ROLE_ADMIN, false},
    {"PUT", "/v1/orgs/{id}/sharing-rights/{user}", h_sharing_right_set, ROLE_SUPERVISOR | ROLE_ADMIN, true},
    {"POST", "/v1/orgs/{id}/sharing-rights/{user}/approve", h_sharing_right_approve, ROLE_SUPERVISOR | ROLE_ADMIN,
     false},
    {"POST", "/v1/households", h_households_create, ROLES_STAFF, true},
    {"GET", "/v1/households/{id}", h_households_get, ROLES_STAFF | ROLE_AUDITOR, false},
    {"POST", "/v1/persons", h_persons_create, ROLES_STAFF, true},
    {"GET", "/v1/persons", h_persons_search, ROLES_STAFF | ROLE_AUDITOR, false},
    {"GET", "/v1/persons/{id}", h_persons_get, ROLES_STAFF | ROLE_AUDITOR, false},
    {"PUT", "/v1/persons/{id}/eligibility", h_persons_eligibility, ROLES_STAFF, true},
    {"POST", "/v1/persons/{id}/merge", h_persons_merge, ROLE_SUPERVISOR | ROLE_ADMIN, true},
    {"POST", "/v1/persons/{id}/unmerge", h_persons_unmerge, ROLE_SUPERVISOR | ROLE_ADMIN, true},
    {"GET", "/v1/persons/{id}/merges", h_persons_merges, ROLES_STAFF | ROLE_AUDITOR, false},
    {"POST", "/v1/persons/{id}/consents", h_consents_create, ROLES_STAFF, true},
    {"GET", "/v1/persons/{id}/consents", h_consents_list, ROLES_STAFF | ROLE_AUDITOR, false},
    {"POST", "/v1/persons/{id}/consents/{consent_id}/revoke", h_consents_revoke, ROLES_STAFF, false},
    {"POST", "/v1/referrals", h_referrals_create, ROLES_STAFF | ROLE_AGENCY, true},
    {"GET", "/v1/referrals", h_referrals_list, ROLES_STAFF | ROLE_AUDITOR, false},
    {"GET", "/v1/referrals/{id}", h_referrals_get, ROLES_STAFF | ROLE_AUDITOR, false},
    {"POST", "/v1/referrals/{id}/accept", h_referrals_accept, ROLES_STAFF, true},
    {"POST", "/v1/referrals/{id}/reject", h_referrals_reject, ROLES_STAFF, true},
    {"POST", "/v1/referrals/{id}/closure-review", h_referrals_review, ROLES_STAFF, true},
    {"POST", "/v1/referrals/{id}/contacts", h_referrals_contact, ROLES_STAFF, true},
    {"POST", "/v1/referrals/{id}/agency-status", h_referrals_agency_status, ROLE_AGENCY, true},
    {"POST", "/v1/cases", h_cases_create, ROLES_STAFF, true},
    {"GET", "/v1/cases", h_cases_list, ROLES_STAFF | ROLE_AUDITOR, false},
    {"GET", "/v1/cases/{id}", h_cases_get, ROLES_STAFF | ROLE_AUDITOR, false},
    {"GET", "/v1/cases/{id}/events", h_cases_events, ROLES_STAFF | ROLE_AUDITOR, false},
    {"POST", "/v1/cases/{id}/transitions", h_cases_transition, ROLES_STAFF, true},
    {"POST", "/v1/cases/{id}/assignment", h_cases_assign, ROLE_SUPERVISOR | ROLE_ADMIN, true},
    {"POST", "/v1/cases/{id}/counseling", h_counseling, ROLES_STAFF, true},
    {"POST", "/v1/cases/{id}/assessments", h_assessments, ROLES_STAFF, true},
    {"POST", "/v1/cases/{id}/consultations", h_consultations, ROLES_STAFF, true},
    {"POST", "/v1/cases/{id}/plans", h_plans_create, ROLES_STAFF, true},
    {"GET", "/v1/cases/{id}/plans", h_plans_list, ROLES_STAFF | ROLE_AUDITOR, false},
    {"POST", "/v1/cases/{id}/plans/{plan_id}/approve", h_plans_approve, ROLE_SUPERVISOR, false},
    {"POST", "/v1/cases/{id}/services", h_services, ROLES_STAFF, true},
    {"POST", "/v1/cases/{id}/checks", h_checks, ROLES_STAFF, true},
    {"POST", "/v1/cases/{id}/closure", h_closure, ROLES_STAFF, true},
    {"POST", "/v1/cases/{id}/follow-ups", h_follow_ups, ROLES_STAFF, true},
    {"GET", "/v1/cases/{id}/records", h_records_list, ROLES_STAFF | ROLE_AUDITOR, false},
    {"POST", "/v1/meetings", h_meetings_create, ROLES_STAFF, true},
    {"GET", "/v1/deadlines", h_deadlines, ROLES_STAFF | ROLE_AUDITOR, false},
    {"GET", "/v1/persons/{id}/one-screen", h_one_screen, ROLES_STAFF | ROLE_AUDITOR, false},
    {"POST", "/v1/persons/{id}/lookup-approvals", h_lookup_approvals_create, ROLE_SUPERVISOR | ROLE_ADMIN, true},
    {"GET", "/v1/persons/{id}/lookup-approvals", h_lookup_approvals_list, ROLES_STAFF | ROLE_AUDITOR, false},
    {"GET", "/v1/admin/clock", h_clock_get, ROLES_ANY, false},
    {"PUT", "/v1/admin/clock", h_clock_set, ROLE_OPERATOR, true},
    {"GET", "/v1/programs", h_programs_list, ROLES_ANY, false},
    {"GET", "/v1/programs/{id}", h_programs_get, ROLES_ANY, false},
    {"GET", "/v1/admin/plugins", h_plugins_list, ROLE_OPERATOR, false},
    {"POST", "/v1/admin/plugins/reload", h_plugins_reload, ROLE_OPERATOR, BODY_OPTIONAL},
    {"POST", "/v1/admin/plugins/replay", h_plugins_replay, ROLE_OPERATOR, true},
    {"GET", "/v1/admin/plugins/candidate", h_plugins_candidate, ROLE_OPERATOR, false},
    {"GET", "/v1/admin/outbox", h_outbox_list, ROLE_ADMIN | ROLE_OPERATOR, false},
    {"GET", "/v1/audit", h_audit_list, ROLE_AUDITOR, false},
    {"GET", "/v1/exports/cases", h_cases_export, ROLE_SUPERVISOR | ROLE_AUDITOR | ROLE_ADMIN, false},
    {"POST", "/v1/admin/outbox/{id}/retry", h_outbox_retry, ROLE_ADMIN | ROLE_OPERATOR, false},
    /* welfare resources and their waitlist (h_resources.c) */
    {"POST", "/v1/resources", h_resources_create, ROLES_STAFF, true},
    {"GET", "/v1/resources", h_resources_list, ROLES_STAFF | ROLE_AUDITOR, false},
    {"GET", "/v1/resources/{id}", h_resources_get, ROLES_STAFF | ROLE_AUDITOR, false},
    {"PUT", "/v1/resources/{id}/capacity", h_resources_capacity, ROLES_STAFF, true},
    {"POST", "/v1/resources/{id}/reservations", h_resources_reserve, ROLES_STAFF, true},
    {"GET", "/v1/resources/{id}/waitlist", h_resources_waitlist, ROLES_STAFF | ROLE_AUDITOR, false},
    {"POST", "/v1/resources/{id}/allocations/{allocation_id}/release", h_allocations_release, ROLES_STAFF, false},
    {"POST", "/v1/waitlist", h_waitlist_create, ROLES_STAFF, true},
    {"GET", "/v1/waitlist", h_waitlist_list, ROLES_STAFF | ROLE_AUDITOR, false},
    {"GET", "/v1/waitlist/{id}", h_waitlist_get, ROLES_STAFF | ROLE_AUDITOR, false},
    {"POST", "/v1/waitlist/{id}/accept", h_waitlist_accept, ROLES_STAFF, false},
    {"POST", "/v1/waitlist/{id}/decline", h_waitlist_decline, ROLES_STAFF, true},
    {"POST", "/v1/waitlist/{id}/end", h_waitlist_end, ROLES_STAFF, true},
};
#define N_ROUTES ((int)(sizeof ROUTES / sizeof ROUTES[0]))

const char *http_route_method(int i) { return i >= 0 && i < N_ROUTES ? ROUTES[i].method : NULL; }
const char *http_route_pattern(int i) { return i >= 0 && i < N_ROUTES ? ROUTES[i].pattern : NULL; }
bool http_route_allows(int i, const char *role)
{
    return i >= 0 && i < N_ROUTES && (ROUTES[i].roles & role_bit(role)) != 0;
}

int role_bit(const char *role)
{
    static const char *names[] = {"worker", "supervisor", "agency", "auditor", "admin", "operator"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(role, names[i])) return 1 << i;
    return 0;
}

/* ---- server state ---- */
static struct {
    struct mg_context *ctx;
    const config *cfg;
    atomic_int draining;
    atomic_int inflight;
} SRV;

/* ---- metrics: counters by route and status, a latency histogram ---- */
static const int STATUSES[] = {200, 201, 204, 400, 401, 403, 404, 405, 409,
                               412, 413, 415, 422, 429, 500, 503};
#define N_STATUS ((int)(sizeof STATUSES / sizeof STATUSES[0]) + 1) /* + other */
static const double BUCKETS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define N_BUCKETS ((int)(sizeof BUCKETS / sizeof BUCKETS[0]))
#define ROUTE_SLOTS (N_ROUTES + 1) /* + unmatched */
static atomic_ulong m_requests[ROUTE_SLOTS][N_STATUS];
static atomic_ulong m_latency[ROUTE_SLOTS][N_BUCKETS + 1];
static atomic_ulong m_latency_sum_us[ROUTE_SLOTS];

static void metrics_observe(int route_index, int status, int64_t ns)
{
    int slot = route_index < 0 ? N_ROUTES : route_index;
    int si = N_STATUS - 1;
    for (int i = 0; i < N_STATUS - 1; i++)
        if (STATUSES[i] == status) { si = i; break; }
    atomic_fetch_add_explicit(&m_requests[slot][si], 1, memory_order_relaxed);
    double secs = (double)ns / 1e9;
    int b = 0;
    while (b < N_BUCKETS && secs > BUCKETS[b]) b++;
    atomic_fetch_add_explicit(&m_latency[slot][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m_latency_sum_us[slot], (unsigned long)(ns / 1000), memory_order_relaxed);
}

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *s, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < s->cap - s->len) { s->len += (size_t)n; return; }
        size_t cap = (s->cap + (size_t)n + 1) * 2;
        char *nb = realloc(s->buf, cap);
        if (!nb) return;
        s->buf = nb;
        s->cap = cap;
    }
}

char *metrics_render(void)
{
    sbuf s = {malloc(8192), 0, 8192};
    if (!s.buf) return NULL;
    s.buf[0] = 0;
    sb_printf(&s, "# HELP sarye_http_requests_total HTTP requests by route and status.\n"
                  "# TYPE sarye_http_requests_total counter\n");
    for (int r = 0; r < ROUTE_SLOTS; r++) {
        const char *pat = r < N_ROUTES ? ROUTES[r].pattern : "unmatched";
        const char *meth = r < N_ROUTES ? ROUTES[r].method : "";
        for (int i = 0; i < N_STATUS; i++) {
            unsigned long v = atomic_load_explicit(&m_requests[r][i], memory_order_relaxed);
            if (!v) continue;
            char st[8];
            if (i < N_STATUS - 1) snprintf(st, sizeof st, "%d", STATUSES[i]);
            else str_copy(st, sizeof st, "other");
            sb_printf(&s, "sarye_http_requests_total{method=\"%s\",route=\"%s\",status=\"%s\"} %lu\n",
                      meth, pat, st, v);
        }
    }
    sb_printf(&s, "# HELP sarye_http_request_duration_seconds Request latency by route.\n"
                  "# TYPE sarye_http_request_duration_seconds histogram\n");
    for (int r = 0; r < ROUTE_SLOTS; r++) {
        unsigned long total = 0;
        for (int b = 0; b <= N_BUCKETS; b++) total += atomic_load(&m_latency[r][b]);
        if (!total) continue;
        const char *pat = r < N_ROUTES ? ROUTES[r].pattern : "unmatched";
        const char *meth = r < N_ROUTES ? ROUTES[r].method : "";
        unsigned long cum = 0;
        for (int b = 0; b < N_BUCKETS; b++) {
            cum += atomic_load(&m_latency[r][b]);
            sb_printf(&s,
                      "sarye_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%g\"} %lu\n",
                      meth, pat, BUCKETS[b], cum);
        }
        sb_printf(&s,
                  "sarye_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"+Inf\"} %lu\n"
                  "sarye_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n"
                  "sarye_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %lu\n",
                  meth, pat, total, meth, pat, (double)atomic_load(&m_latency_sum_us[r]) / 1e6, meth,
                  pat, total);
    }
    sb_printf(&s, "# HELP sarye_http_connections_refused_total Connections refused at the door (over the per-address limit).\n"
                  "# TYPE sarye_http_connections_refused_total counter\nsarye_http_connections_refused_total %lu\n",
              gate_refused());
    sb_printf(&s, "# HELP sarye_http_region_busy_total Requests refused (503 region_busy) because their region held"
                  " half of the workers and few were free.\n"
                  "# TYPE sarye_http_region_busy_total counter\nsarye_http_region_busy_total %lu\n",
              share_refused());
    sb_printf(&s, "# HELP sarye_http_inflight Requests being served.\n# TYPE sarye_http_inflight gauge\n"
                  "sarye_http_inflight %d\n", atomic_load(&SRV.inflight));
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    sb_printf(&s, "# HELP sarye_process_resident_bytes Resident memory of the server.\n"
                  "# TYPE sarye_process_resident_bytes gauge\nsarye_process_resident_bytes %ld\n",
              resident * sysconf(_SC_PAGESIZE));
    char *extra = process_metrics();
    if (extra) {
        sb_printf(&s, "%s", extra);
        free(extra);
    }
    return s.buf;
}

/* ---- routing ---- */
/* Matches path against pattern, capturing {params}. */
static bool match(const char *pattern, const char *path, req *r)
{
    int n = 0;
    const char *p = pattern, *s = path;
    r->param_too_long = false;
    while (*p && *s) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            const char *end = strchr(s, '/');
            size_t len = end ? (size_t)(end - s) : strlen(s);
            if (!len || n == MAX_PARAMS) return false;
            /* An id longer than any there is still names this route (a
             * wrong method is 405); the request is answered 404. */
            if (len >= sizeof r->params[0]) r->param_too_long = true;
            size_t keep = len < sizeof r->params[0] ? len : sizeof r->params[0] - 1;
            memcpy(r->params[n], s, keep);
            r->params[n++][keep] = 0;
            p = close + 1;
            s += len;
        } else if (*p++ != *s++) {
            return false;
        }
    }
    if (*p || *s) return false;
    r->n_params = n;
    return true;
}

int http_route_find(const char *method, const char *path)
{
    req scratch;
    bool known = false;
    for (int i = 0; i < N_ROUTES; i++) {
        memset(&scratch, 0, sizeof scratch);
        if (!match(ROUTES[i].pattern, path, &scratch)) continue;
        if (!strcmp(ROUTES[i].method, method)) return i;
        known = true;
    }
    return known ? -2 : -1;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The request path, percent-decoded here rather than by CivetWeb (which
 * decodes in place, so that a %00 silently cut the path short): no NUL or
 * other control byte, no encoded '/', no broken escape, valid UTF-8. NULL
 * when the path is fine, else why not. */
static const char *path_decode(const char *raw, char *out, size_t outlen)
{
    size_t j = 0;
    for (const char *s = raw; *s; s++) {
        int c = (unsigned char)*s;
        if (c == '%') {
            int hi = hexval((unsigned char)s[1]), lo = hi < 0 ? -1 : hexval((unsigned char)s[2]);
            if (lo < 0) return "a '%' in the path is not followed by two hex digits";
            c = hi * 16 + lo;
            if (c == '/') return "the path holds an encoded '/' (%2F)";
            s += 2;
        }
        if (c < 0x20 || c == 0x7f) return "the path holds a control character (NUL, newline ...)";
        if (j + 1 >= outlen) return "the path is too long";
        out[j++] = (char)c;
    }
    out[j] = 0;
    if (!utf8_valid(out, j)) return "the path is not valid UTF-8";
    return NULL;
}

void req_close(req *r)
{
    mg_disable_keep_alive(r->conn);
    r->close = true;
}

/* Request ids from the client are kept when they are short and plain. */
static void request_id(req *r)
{
    const char *h = mg_get_header(r->conn, "X-Request-Id");
    if (h) {
        size_t n = strlen(h);
        bool ok = n > 0 && n < sizeof r->id;
        for (size_t i = 0; ok && i < n; i++)
            ok = (h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'z') ||
                 (h[i] >= 'A' && h[i] <= 'Z') || h[i] == '-' || h[i] == '_' || h[i] == '.';
        if (ok) { memcpy(r->id, h, n + 1); return; }
    }
    request_id_new(r->id);
}

/* ---- rate limiting: a token bucket per bearer token, in a fixed table of
 * buckets (a token's bucket may be shared with another's by hash, which
 * only ever makes the limit stricter) ---- */
#define RATE_BUCKETS 4096
static struct {
    pthread_mutex_t mu;
    double tokens[RATE_BUCKETS];
    int64_t at_ns[RATE_BUCKETS];
} RL = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* 0 if the request may go on, else the seconds to wait. */
static int rate_check(const char *token_id)
{
    if (SRV.cfg->rate_per_minute <= 0) return 0;
    uint32_t h = str_hash(token_id) % RATE_BUCKETS;
    double rate = SRV.cfg->rate_per_minute / 60e9; /* per nanosecond */
    int64_t now = time_mono_ns();
    int wait = 0;
    pthread_mutex_lock(&RL.mu);
    if (RL.at_ns[h] == 0) RL.tokens[h] = SRV.cfg->rate_burst;
    else RL.tokens[h] += (double)(now - RL.at_ns[h]) * rate;
    if (RL.tokens[h] > SRV.cfg->rate_burst) RL.tokens[h] = SRV.cfg->rate_burst;
    RL.at_ns[h] = now;
    if (RL.tokens[h] >= 1) RL.tokens[h] -= 1;
    else wait = (int)((1 - RL.tokens[h]) / rate / 1e9) + 1;
    pthread_mutex_unlock(&RL.mu);
    return wait;
}

/* 401 with the challenge RFC 6750 asks for: the scheme and realm, and for
 * a token that was given but cannot be used, error="invalid_token" with
 * why (unknown, revoked, expired). */
static void respond_401(req *r, err_t *e, bool token_given)
{
    char hdr[400], why[240];
    size_t j = 0;
    for (const char *s = e->message; *s && j + 1 < sizeof why; s++)
        why[j++] = *s == '"' || *s == '\\' ? '\'' : *s; /* a quoted-string: no quotes or backslashes */
    why[j] = 0;
    if (token_given)
        snprintf(hdr, sizeof hdr, "WWW-Authenticate: Bearer realm=\"sarye\", error=\"invalid_token\", "
                                  "error_description=\"%s\"", why);
    else
        snprintf(hdr, sizeof hdr, "WWW-Authenticate: Bearer realm=\"sarye\"");
    respond_error_hdr(r, e, hdr);
}

static int authenticate(req *r)
{
    err_t e = {0};
    const char *h = mg_get_header(r->conn, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) || !h[7]) {
        err_set(&e, 401, "unauthorized", "missing bearer token (Authorization: Bearer <token>)");
        respond_401(r, &e, false);
        return -1;
    }
    const char *tok = h + 7;
    while (*tok == ' ') tok++;
    if (strlen(tok) > 200) {
        err_set(&e, 401, "unauthorized", "unknown bearer token");
        respond_401(r, &e, true);
        return -1;
    }
    if (process_authenticate(tok, &r->who, &e)) {
        if (e.status == 401) {
            memset(&r->who, 0, sizeof r->who); /* a revoked or expired token is no one */
            respond_401(r, &e, true);
        } else {
            respond_error(r, &e);
        }
        return -1;
    }
    int wait = rate_check(r->who.token_id);
    if (wait) {
        err_set(&e, 429, "rate_limited", "too many requests for this token; retry in %d s", wait);
        err_detail(&e, "retry_after", json_integer(wait));
        respond_error(r, &e); /* with Retry-After */
        return -1;
    }
    if (!(role_bit(r->who.role) & r->route->roles)) {
        respond_err(r, 403, "forbidden", "role '%s' may not %s %s", r->who.role, r->route->method,
                    r->route->pattern);
        return -1;
    }
    return 0;
}

static bool is_json_type(const char *ct)
{
    if (!ct) return false;
    while (*ct == ' ') ct++;
    if (strncasecmp(ct, "application/json", 16)) return false;
    ct += 16;
    while (*ct == ' ') ct++;
    return !*ct || *ct == ';';
}

#define MAX_JSON_DEPTH 32

/* Reads and parses the JSON body, enforcing max_body_bytes (CivetWeb's
 * max_request_size bounds headers only). */
static int read_body(req *r)
{
    long long cl = r->ri->content_length;
    const char *te = mg_get_header(r->conn, "Transfer-Encoding");
    bool has_body = cl > 0 || (te && strcasecmp(te, "identity"));
    if (!has_body && r->route->body == BODY_OPTIONAL) return 0;
    if (!has_body) {
        respond_err(r, 400, "body_required", "this request needs a JSON object body");
        return -1;
    }
    if (!is_json_type(mg_get_header(r->conn, "Content-Type"))) {
        respond_err(r, 415, "unsupported_media_type",
                    "the body must be application/json; charset=utf-8");
        return -1;
    }
    long max = r->cfg->max_body_bytes;
    if (cl > max) {
        req_close(r); /* the unread body must not be taken for a request */
        respond_err(r, 413, "body_too_large", "the body is %lld bytes; the limit is %ld", cl, max);
        return -1;
    }
    size_t cap = cl > 0 ? (size_t)cl : 8192;
    r->body = malloc(cap + 1);
    if (!r->body) {
        respond_err(r, 503, "overloaded", "out of memory");
        return -1;
    }
    for (;;) {
        if (r->body_len == cap) {
            if (cap >= (size_t)max + 1) break;
            size_t ncap = cap * 2 > (size_t)max + 1 ? (size_t)max + 1 : cap * 2;
            char *nb = realloc(r->body, ncap + 1);
            if (!nb) break;
            r->body = nb;
            cap = ncap;
        }
        int n = mg_read(r->conn, r->body + r->body_len, cap - r->body_len);
        if (n <= 0) break;
        r->body_len += (size_t)n;
        if (r->body_len > (size_t)max) break;
    }
    if (r->body_len > (size_t)max) {
        req_close(r);
        respond_err(r, 413, "body_too_large", "the body exceeds the limit of %ld bytes", max);
        return -1;
    }
    if (cl > 0 && r->body_len != (size_t)cl) {
        req_close(r);
        respond_err(r, 400, "incomplete_body", "the body ended after %zu of %lld bytes", r->body_len, cl);
        return -1;
    }
    r->body[r->body_len] = 0;
    if (!json_depth_ok(r->body, r->body_len, MAX_JSON_DEPTH)) {
        respond_err(r, 400, "malformed_json", "the body nests deeper than %d levels", MAX_JSON_DEPTH);
        return -1;
    }
    json_error_t je;
    r->json = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!r->json) {
        err_t e = {0};
        err_set(&e, 400, "malformed_json", "the body is not valid JSON: %s", je.text);
        err_detail(&e, "line", json_integer(je.line));
        err_detail(&e, "column", json_integer(je.column));
        respond_error(r, &e);
        return -1;
    }
    if (!json_is_object(r->json)) {
        respond_err(r, 400, "malformed_json", "the body must be a JSON object");
        return -1;
    }
    return 0;
}

static int idempotency(req *r)
{
    const char *k = mg_get_header(r->conn, "Idempotency-Key");
    if (!k) return 0;
    size_t n = strlen(k);
    bool ok = n > 0 && n < sizeof r->idem_key;
    for (size_t i = 0; ok && i < n; i++) ok = k[i] > 0x20 && k[i] < 0x7f;
    if (!ok) {
        respond_err(r, 400, "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 255 visible ASCII characters");
        return -1;
    }
    memcpy(r->idem_key, k, n + 1);
    snprintf(r->idem_scope, sizeof r->idem_scope, "%s/%s", r->who.org, r->who.user);
    /* The request's identity: method, path and exact body bytes. */
    size_t plen = strlen(r->path) + strlen(r->ri->request_method) + 2;
    char *buf = malloc(plen + r->body_len);
    if (!buf) {
        respond_err(r, 503, "overloaded", "out of memory");
        return -1;
    }
    int m = snprintf(buf, plen, "%s %s", r->ri->request_method, r->path);
    buf[m] = '\n';
    if (r->body_len) memcpy(buf + m + 1, r->body, r->body_len);
    /* keyed: the digest of a body that held a resident number cannot be
     * tested against guesses without the key */
    pii_request_hash(buf, (size_t)m + 1 + r->body_len, r->idem_hash);
    sodium_memzero(buf, (size_t)m + 1 + r->body_len);
    free(buf);
    return 0;
}

const store_idem *req_idem(req *r, store_idem *buf)
{
    if (!r->idem_key[0]) return NULL;
    buf->scope = r->idem_scope;
    buf->key = r->idem_key;
    buf->request_hash = r->idem_hash;
    return buf;
}

/* 405 with the Allow header RFC 9110 asks for. */
static void respond_405(req *r, const char *method, const char *path)
{
    char allow[128] = "";
    size_t n = 0;
    req probe;
    json_t *methods = json_array();
    for (int i = 0; i < N_ROUTES; i++) {
        memset(&probe, 0, sizeof probe);
        if (match(ROUTES[i].pattern, path, &probe) && n + 10 < sizeof allow) {
            n += (size_t)snprintf(allow + n, sizeof allow - n, "%s%s", n ? ", " : "", ROUTES[i].method);
            json_array_append_new(methods, json_string(ROUTES[i].method));
        }
    }
    err_t e = {0};
    err_set(&e, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)", method, path, allow);
    err_detail(&e, "allowed", methods);
    char hdr[160];
    snprintf(hdr, sizeof hdr, "Allow: %s", allow);
    respond_error_hdr(r, &e, hdr);
}

static bool proxy_exempt(const char *addr) { return config_proxy_trusted(SRV.cfg, addr); }

/* The client's address: the peer's, unless the peer is a trusted proxy
 * (http.trusted_proxies); then the right-most X-Forwarded-For entry that
 * is not itself a trusted proxy (entries left of it are the client's own
 * word and may be forged). */
static void client_addr(req *r, char out[48])
{
    str_copy(out, 48, r->ri->remote_addr);
    if (!config_proxy_trusted(SRV.cfg, r->ri->remote_addr)) return;
    const char *xff = mg_get_header(r->conn, "X-Forwarded-For");
    if (!xff || strlen(xff) > 1000) return;
    char buf[1001];
    str_copy(buf, sizeof buf, xff);
    for (;;) {
        char *comma = strrchr(buf, ',');
        char *t = comma ? comma + 1 : buf;
        while (*t == ' ' || *t == '\t') t++;
        char *e = t + strlen(t);
        while (e > t && (e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
        unsigned char a[16];
        size_t tl = strlen(t);
        if (tl >= 48 || (inet_pton(AF_INET, t, a) != 1 && inet_pton(AF_INET6, t, a) != 1)) return;
        memcpy(out, t, tl + 1);
        if (!config_proxy_trusted(SRV.cfg, t) || !comma) return;
        *comma = 0;
    }
}

/* The requests of the principal's region hold their share of nearly busy
 * workers (share.c): the others' reserve is not theirs to take. */
static void respond_region_busy(req *r)
{
    err_t e = {0};
    err_set(&e, 503, "region_busy",
            "the requests of %s hold half of the server's workers and few are free; retry in 1 s", r->who.region);
    err_detail(&e, "region", json_string(r->who.region));
    err_detail(&e, "retry_after", json_integer(1));
    respond_error(r, &e);
}

static int dispatch(struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    int64_t t0 = time_mono_ns();
    int share = SHARE_NONE;
    req r;
    memset(&r, 0, sizeof r);
    r.conn = conn;
    r.ri = mg_get_request_info(conn);
    r.cfg = SRV.cfg;
    r.route_index = -1;
    request_id(&r);
    log_set_request(r.id); /* what is logged while serving it names it */
    atomic_fetch_add(&SRV.inflight, 1);

    const char *raw = r.ri->local_uri ? r.ri->local_uri : "";
    const char *bad_path = path_decode(raw, r.path, sizeof r.path);
    const char *path = bad_path ? "" : r.path;
    const char *method = r.ri->request_method;
    bool path_known = false;
    for (int i = 0; i < N_ROUTES && !bad_path; i++) {
        if (!match(ROUTES[i].pattern, path, &r)) continue;
        path_known = true;
        if (!strcmp(ROUTES[i].method, method)) {
            r.route = &ROUTES[i];
            r.route_index = i;
            break;
        }
    }
    if (bad_path) {
        respond_err(&r, 400, "invalid_path", "%s", bad_path);
    } else if (atomic_load(&SRV.draining) && !(r.route && r.route->fn == h_healthz)) {
        req_close(&r);
        respond_err(&r, 503, "shutting_down", "the server is shutting down; retry elsewhere");
    } else if (!r.route) {
        if (path_known) respond_405(&r, method, path);
        else respond_err(&r, 404, "not_found", "no such endpoint: %s", path);
    } else if (r.route->roles != ROLES_PUBLIC && authenticate(&r)) {
        /* answered */
    } else if (share_enter(r.who.region, &share)) {
        respond_region_busy(&r);
    } else if (r.param_too_long) {
        respond_err(&r, 404, "not_found", "no such resource: an id in the path is longer than any id");
    } else if (r.route->body && read_body(&r)) {
        /* answered */
    } else if (!strcmp(method, "POST") && idempotency(&r)) {
        /* answered */
    } else {
        store_set_write_hook(audit_in_write, audit_in_write_undo, &r);
        r.route->fn(&r);
        store_set_write_hook(NULL, NULL, NULL);
        if (!r.status) respond_err(&r, 500, "internal_error", "the handler gave no answer");
    }

    int64_t ns = time_mono_ns() - t0;
    log_set_request(NULL);
    metrics_observe(r.route_index, r.status, ns);
    /* The path as the client sent it, escaped, with anything shaped like a
     * resident registration number masked. */
    log_level level = r.status >= 500 ? LOG_ERROR : LOG_INFO;
    char logged[600], client[48];
    if (log_enabled(level)) {
        log_value(raw, logged, sizeof logged);
        client_addr(&r, client);
        log_msg(level, "request",
                " req=%s method=%s path=\"%s\" route=\"%s\" status=%d dur_ms=%.3f client=%s user=%s org=%s%s%s",
                r.id, method, logged, r.route ? r.route->pattern : "-", r.status, (double)ns / 1e6, client,
                r.who.user[0] ? r.who.user : "-", r.who.org[0] ? r.who.org : "-", r.err_code[0] ? " error=" : "",
                r.err_code);
    }
    json_decref(r.json);
    free(r.body);
    share_leave(share);
    atomic_fetch_sub(&SRV.inflight, 1);
    return r.status ? r.status : 500;
}

/* ---- thread lifecycle: each worker owns its store connection and its
 * plugin VM; both are created on the thread and die with it ---- */
static void *on_init_thread(const struct mg_context *ctx, int type)
{
    (void)ctx;
    if (type == 1) process_thread_enter();
    return NULL;
}

static void on_exit_thread(const struct mg_context *ctx, int type, void *ptr)
{
    (void)ctx;
    (void)ptr;
    if (type == 1) process_thread_leave();
}

/* Errors CivetWeb answers itself (a malformed request line, headers over
 * the limit ...) get the API's error shape and a request id too. */
static int on_http_error(struct mg_connection *conn, int status, const char *errmsg)
{
    char id[33];
    request_id_new(id);
    err_t e = {0};
    err_set(&e, status, status == 413 || status == 431 ? "headers_too_large" : "malformed_request", "%s",
            errmsg && *errmsg ? errmsg : "the request could not be parsed");
    json_t *body = err_json(&e);
    err_clear(&e);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) return 1;
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %zu\r\n"
              "X-Request-Id: %s\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n%s",
              status, mg_get_response_code_text(conn, status), strlen(text), id, text);
    free(text);
    metrics_observe(-1, status, 0);
    log_msg(LOG_INFO, "request", " req=%s status=%d error=malformed_request detail=\"%.200s\"", id, status,
            errmsg ? errmsg : "");
    return 0;
}

/* A connection closes: the gate counts it down for its address. */
static void on_connection_close(const struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (ri) gate_closed(ri->remote_addr);
}

static int on_log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    log_msg(LOG_WARN, "civetweb", " detail=\"%.300s\"", message);
    return 1;
}

static int grant_all(struct mg_connection *conn, void *cbdata)
{
    (void)conn;
    (void)cbdata;
    return 1;
}

int http_start(const config *cfg, char *err, size_t errlen)
{
    SRV.cfg = cfg;
    atomic_store(&SRV.draining, 0);
    char threads[16], timeout[16], keep_alive[16];
    snprintf(threads, sizeof threads, "%d", cfg->threads);
    snprintf(timeout, sizeof timeout, "%d", cfg->http_io_timeout_ms);
    snprintf(keep_alive, sizeof keep_alive, "%d", cfg->http_keep_alive_ms);
    const char *opts[] = {
        "listening_ports", cfg->listen,
        "num_threads", threads,
        "enable_keep_alive", "yes",
        "keep_alive_timeout_ms", keep_alive,
        "tcp_nodelay", "1",
        "request_timeout_ms", timeout,
        "max_request_size", "16384",
        "enable_directory_listing", "no",
        "decode_url", "no", /* dispatch decodes, and refuses what should not be in a path */
        NULL,
    };
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.init_thread = on_init_thread;
    cb.exit_thread = on_exit_thread;
    cb.log_message = on_log_message;
    cb.http_error = on_http_error;
    cb.connection_close = on_connection_close;
    gate_start(cfg->http_max_per_address);
    share_start(cfg->threads);
    gate_exempt(proxy_exempt);
    struct mg_init_data init = {.callbacks = &cb, .user_data = NULL, .configuration_options = opts};
    char msg[256] = "";
    struct mg_error_data ed = {.text = msg, .text_buffer_size = sizeof msg};
    SRV.ctx = mg_start2(&init, &ed);
    if (!SRV.ctx) {
        gate_stop();
        snprintf(err, errlen, "cannot listen on %s: %s", cfg->listen, msg[0] ? msg : "unknown error");
        return -1;
    }
    /* Authorization is the API's (bearer tokens, in dispatch): without a
     * handler of its own, CivetWeb looks for a .htpasswd file on every
     * request, one failed stat(2) each. */
    mg_set_auth_handler(SRV.ctx, "/", grant_all, NULL);
    mg_set_request_handler(SRV.ctx, "/", dispatch, NULL);
    struct mg_server_port ports[4];
    int n = mg_get_server_ports(SRV.ctx, 4, ports);
    char host[128];
    str_copy(host, sizeof host, cfg->listen);
    char *colon = strrchr(host, ':');
    if (colon) *colon = 0;
    log_msg(LOG_INFO, "listening", " addr=%s:%d threads=%d", host, n > 0 ? ports[0].port : -1,
            cfg->threads);
    return 0;
}

void http_stop(void)
{
    if (!SRV.ctx) return;
    atomic_store(&SRV.draining, 1);
    log_msg(LOG_INFO, "draining", " inflight=%d", atomic_load(&SRV.inflight));
    int64_t deadline = time_mono_ns() + (int64_t)SRV.cfg->drain_timeout_ms * 1000000;
    while (atomic_load(&SRV.inflight) > 0 && time_mono_ns() < deadline) usleep(5000);
    mg_stop(SRV.ctx);
    SRV.ctx = NULL;
    gate_stop();
    log_msg(LOG_INFO, "stopped", "%s", "");
}

bool http_draining(void) { return atomic_load(&SRV.draining) != 0; }

extern const unsigned char embedded_openapi_json[];
const char *http_openapi_json(void) { return (const char *)embedded_openapi_json; }
