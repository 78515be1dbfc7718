/*
 * outbound.c: the outbox worker. One thread owns a curl multi handle and
 * its own store connection: it picks due messages (at most one per topic,
 * so messages about one referral keep their order), posts them, and writes
 * each outcome back in its own small transaction. Why one thread: the
 * multi interface already gives many transfers in flight and connection
 * reuse; the API threads never wait for an agency. Messages wait on lines
 * (an agency and the region a message is for) that take turns: the due page
 * holds each line's oldest first, and of those the line served longest ago
 * goes first; one agency keeps at most three quarters of the deliveries in
 * flight. So one agency slow to answer leaves room for the others, and one
 * region's pile of messages to an agency does not hold another region's.
 */
#include "outbound/outbound.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "store/records.h"
#include "store/store.h"

#define MAX_AGENCIES CONFIG_MAX_AGENCIES
#define MAX_BODY (256 * 1024) /* what we keep of an agency's answer */

typedef enum { BREAKER_CLOSED = 0, BREAKER_OPEN = 1, BREAKER_HALF_OPEN = 2 } breaker_state;

typedef struct {
    char id[48];
    breaker_state state;
    int failures;          /* consecutive */
    int64_t open_until_ms;
    bool probing;          /* half-open: one message in flight decides */
    atomic_ulong delivered, retried, dead;
    atomic_int inflight;
    atomic_int lookups;         /* synchronous look-ups in flight (outbound_call) */
    atomic_ulong lookups_busy;  /* look-ups refused at the cap */
} agency_state;

typedef struct transfer {
    CURL *easy;
    struct curl_slist *headers;
    char id[ID_MAX];
    char agency[48];
    int attempts;
    char *body;
    size_t body_len;
    char *resp;
    size_t resp_len;
    agency_state *ag;
} transfer;

static struct {
    config cfg;
    pthread_t thread;
    bool started;
    atomic_int stop;
    pthread_mutex_t mu;
    CURLM *multi;
    agency_state agencies[MAX_AGENCIES + 8];
    int n_agencies;
    transfer **inflight;
    int n_inflight;
} O = {.mu = PTHREAD_MUTEX_INITIALIZER};

static agency_state *agency(const char *id)
{
    pthread_mutex_lock(&O.mu);
    agency_state *a = NULL;
    for (int i = 0; i < O.n_agencies; i++)
        if (!strcmp(O.agencies[i].id, id)) a = &O.agencies[i];
    if (!a && O.n_agencies < (int)(sizeof O.agencies / sizeof O.agencies[0])) {
        a = &O.agencies[O.n_agencies++];
        memset(a, 0, sizeof *a);
        str_copy(a->id, sizeof a->id, id);
    }
    pthread_mutex_unlock(&O.mu);
    return a;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    transfer *t = arg;
    size_t len = size * n;
    if (t->resp_len + len > MAX_BODY) return len; /* keep the start, drop the rest */
    char *nb = realloc(t->resp, t->resp_len + len + 1);
    if (!nb) return 0;
    t->resp = nb;
    memcpy(t->resp + t->resp_len, data, len);
    t->resp_len += len;
    t->resp[t->resp_len] = 0;
    return len;
}

/* Backoff: base * 2^(attempt-1), capped, with +-25% jitter. */
static int64_t backoff_ms(int attempts)
{
    double d = O.cfg.outbox_retry_base_ms;
    for (int i = 1; i < attempts && d < O.cfg.outbox_retry_max_ms; i++) d *= 2;
    if (d > O.cfg.outbox_retry_max_ms) d = O.cfg.outbox_retry_max_ms;
    double jitter = 0.75 + 0.5 * (double)randombytes_uniform(10001) / 10000.0;
    return (int64_t)(d * jitter);
}

/* The store calls of this worker: their failures are logged, never
 * answered to anyone, so they stay store-level (what, not an HTTP status). */
typedef struct {
    const outbox_result *result;
    store_err *se;
} result_arg;

static int work_result(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    (void)e;
    result_arg *a = arg;
    return store_outbox_result(tx, a->result, a->se);
}

static void save(const outbox_result *r)
{
    err_t e = {0};
    store_err se = {0};
    store_reply reply = {0};
    result_arg a = {r, &se};
    if (store_write(NULL, work_result, &a, &reply, &e, &se))
        log_msg(LOG_ERROR, "outbox: cannot record a delivery result", " msg=%s error=\"%s\"", r->id, se.message);
    err_clear(&e);
    store_reply_clear(&reply);
}

static void breaker_success(agency_state *a)
{
    pthread_mutex_lock(&O.mu);
    if (a->state != BREAKER_CLOSED) log_msg(LOG_INFO, "outbox: circuit closed", " agency=%s", a->id);
    a->state = BREAKER_CLOSED;
    a->failures = 0;
    a->probing = false;
    pthread_mutex_unlock(&O.mu);
}

static void breaker_failure(agency_state *a)
{
    pthread_mutex_lock(&O.mu);
    a->failures++;
    a->probing = false;
    if (a->state == BREAKER_HALF_OPEN || a->failures >= O.cfg.outbox_breaker_failures) {
        if (a->state != BREAKER_OPEN)
            log_msg(LOG_WARN, "outbox: circuit open", " agency=%s failures=%d", a->id, a->failures);
        a->state = BREAKER_OPEN;
        a->open_until_ms = time_now_ms() + O.cfg.outbox_breaker_open_ms;
    }
    pthread_mutex_unlock(&O.mu);
}

/* May a message to a go now? Open circuits wait; a half-open one lets one
 * probe through. */
static bool breaker_allows(agency_state *a)
{
    pthread_mutex_lock(&O.mu);
    bool ok = true;
    if (a->state == BREAKER_OPEN) {
        if (time_now_ms() >= a->open_until_ms) {
            a->state = BREAKER_HALF_OPEN;
            a->probing = false;
        } else {
            ok = false;
        }
    }
    if (ok && a->state == BREAKER_HALF_OPEN) {
        ok = !a->probing;
        if (ok) a->probing = true;
    }
    pthread_mutex_unlock(&O.mu);
    return ok;
}

static void transfer_free(transfer *t)
{
    if (t->easy) {
        curl_multi_remove_handle(O.multi, t->easy);
        curl_easy_cleanup(t->easy);
    }
    curl_slist_free_all(t->headers);
    free(t->body);
    free(t->resp);
    free(t);
}

static bool is_inflight(const char *id)
{
    for (int i = 0; i < O.n_inflight; i++)
        if (!strcmp(O.inflight[i]->id, id)) return true;
    return false;
}

/* When each line (agency, region) last had a message started: a serial
 * number, not a time. The worker thread's own: no lock. */
#define LINES 1024
static struct {
    char agency[48], region[32];
    uint64_t last;
} lines[LINES];
static int n_lines;
static uint64_t line_serial;

static uint64_t *line_last(const char *agency, const char *region)
{
    int oldest = 0;
    for (int i = 0; i < n_lines; i++) {
        if (!strcmp(lines[i].agency, agency) && !strcmp(lines[i].region, region)) return &lines[i].last;
        if (lines[i].last < lines[oldest].last) oldest = i;
    }
    int i = n_lines < LINES ? n_lines++ : oldest; /* full: the line served longest ago makes room */
    str_copy(lines[i].agency, sizeof lines[i].agency, agency);
    str_copy(lines[i].region, sizeof lines[i].region, region);
    lines[i].last = 0;
    return &lines[i].last;
}

typedef struct {
    int turn;
    uint64_t last;
    size_t i;
} pick;

static int pick_cmp(const void *a, const void *b)
{
    const pick *x = a, *y = b;
    if (x->turn != y->turn) return x->turn < y->turn ? -1 : 1;
    if (x->last != y->last) return x->last < y->last ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Starts one message; false if it cannot go now. */
static bool start(const outbox_row *m)
{
    const char *id = m->id;
    const char *ag_id = m->agency;
    if (is_inflight(id)) return false;
    agency_state *ag = agency(ag_id);
    if (!ag) return false;
    const config_agency *conf = config_agency_find(&O.cfg, ag_id);
    int attempts = m->attempts + 1;
    if (!conf || !conf->url[0]) {
        /* Not configured: wait (configuration may come with a restart). */
        outbox_result r = {.id = id, .status = "queued", .attempts = attempts,
                           .next_at_ms = time_now_ms() + backoff_ms(attempts), .error = "agency has no url configured"};
        save(&r);
        return false;
    }
    if (!breaker_allows(ag)) return false;
    /* One agency that is slow to answer keeps at most three quarters of the
     * deliveries in flight: the others always find room. */
    int share = O.cfg.outbox_concurrency * 3 / 4;
    if (atomic_load(&ag->inflight) >= (share > 1 ? share : 1)) return false;
    transfer *t = calloc(1, sizeof *t);
    if (!t) return false;
    str_copy(t->id, sizeof t->id, id);
    str_copy(t->agency, sizeof t->agency, ag_id);
    t->attempts = attempts;
    t->ag = ag;
    t->body = m->payload ? json_dumps(m->payload, JSON_COMPACT) : NULL;
    t->body_len = t->body ? strlen(t->body) : 0;
    t->easy = curl_easy_init();
    if (!t->body || !t->easy) {
        transfer_free(t);
        return false;
    }
    char h[4][320];
    int n_h = 0;
    snprintf(h[n_h++], sizeof h[0], "Content-Type: application/json; charset=utf-8");
    snprintf(h[n_h++], sizeof h[0], "Idempotency-Key: %s", id);
    snprintf(h[n_h++], sizeof h[0], "X-Sarye-Message-Kind: %s", m->kind);
    if (conf->token[0]) snprintf(h[n_h++], sizeof h[0], "Authorization: Bearer %s", conf->token);
    for (int i = 0; i < n_h; i++) {
        /* Short of memory, curl keeps the list and answers NULL: a message
         * never leaves without its idempotency key or its token. */
        struct curl_slist *more = curl_slist_append(t->headers, h[i]);
        if (!more) {
            transfer_free(t);
            return false;
        }
        t->headers = more;
    }
    curl_easy_setopt(t->easy, CURLOPT_URL, conf->url);
    curl_easy_setopt(t->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE, (long)t->body_len);
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)conf->timeout_ms);
    curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(conf->timeout_ms < 3000 ? conf->timeout_ms : 3000));
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(t->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "sarye/" SARYE_VERSION);
    curl_multi_add_handle(O.multi, t->easy);
    transfer **ni = realloc(O.inflight, (size_t)(O.n_inflight + 1) * sizeof *ni);
    if (!ni) {
        transfer_free(t);
        return false;
    }
    O.inflight = ni;
    O.inflight[O.n_inflight++] = t;
    atomic_fetch_add(&ag->inflight, 1);
    *line_last(ag_id, m->region ? m->region : "") = ++line_serial;
    return true;
}

/* Starts what can go of a due page: by turn on its line, then the line
 * served longest ago first (the page's order within a turn otherwise). */
static void start_page(const outbox_list *due)
{
    pick *p = due->n ? calloc(due->n, sizeof *p) : NULL;
    if (!p) return; /* nothing due, or no memory: the next poll */
    for (size_t i = 0; i < due->n; i++) {
        const outbox_row *m = &due->items[i];
        p[i] = (pick){m->turn, *line_last(m->agency, m->region ? m->region : ""), i};
    }
    qsort(p, due->n, sizeof *p, pick_cmp);
    for (size_t k = 0; k < due->n && O.n_inflight < O.cfg.outbox_concurrency; k++) start(&due->items[p[k].i]);
    free(p);
}

/* Seconds or an HTTP date in Retry-After, as milliseconds from now. */
static int64_t retry_after_ms(CURL *easy)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h) return -1;
    char *end;
    long secs = strtol(h->value, &end, 10);
    if (end != h->value && secs >= 0) return (int64_t)secs * 1000;
    time_t when = curl_getdate(h->value, NULL);
    if (when < 0) return -1;
    int64_t d = (int64_t)when * 1000 - time_now_ms();
    return d > 0 ? d : 0;
}

static void finish(transfer *t, CURLcode code)
{
    long http = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &http);
    outbox_result r = {.id = t->id, .attempts = t->attempts, .http_status = (int)http};
    char err[300];
    bool retry;
    if (code == CURLE_OK && http >= 200 && http < 300) {
        r.status = "delivered";
        save(&r);
        breaker_success(t->ag);
        atomic_fetch_add(&t->ag->delivered, 1);
        log_msg(LOG_INFO, "outbox: delivered", " msg=%s agency=%s status=%ld attempts=%d", t->id, t->agency, http,
                t->attempts);
        return;
    }
    if (code != CURLE_OK) {
        str_copy(err, sizeof err, curl_easy_strerror(code));
        retry = true;
    } else {
        snprintf(err, sizeof err, "HTTP %ld: %.200s", http, t->resp ? t->resp : "");
        retry = http == 408 || http == 429 || http >= 500;
    }
    r.error = err;
    if (!retry) {
        r.status = "dead";
        save(&r);
        breaker_success(t->ag); /* the agency answered: it is up */
        atomic_fetch_add(&t->ag->dead, 1);
        log_msg(LOG_WARN, "outbox: dead letter", " msg=%s agency=%s error=\"%s\"", t->id, t->agency, err);
        return;
    }
    int64_t wait = backoff_ms(t->attempts);
    int64_t ra = code == CURLE_OK ? retry_after_ms(t->easy) : -1;
    if (ra > wait) wait = ra > 86400000 ? 86400000 : ra;
    r.status = "queued";
    r.next_at_ms = time_now_ms() + wait;
    save(&r);
    breaker_failure(t->ag);
    atomic_fetch_add(&t->ag->retried, 1);
    log_msg(LOG_WARN, "outbox: retry", " msg=%s agency=%s attempts=%d in_ms=%lld error=\"%s\"", t->id, t->agency,
            t->attempts, (long long)wait, err);
}

typedef struct {
    int limit;
    outbox_list due;
    store_err se;
} due_arg;

static int work_due(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    (void)e;
    due_arg *a = arg;
    return store_outbox_due(tx, time_now_ms(), a->limit, &a->due, &a->se);
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "sarye-outbox");
    while (!atomic_load(&O.stop)) {
        int room = O.cfg.outbox_concurrency - O.n_inflight;
        if (room > 0) {
            due_arg a = {.limit = room + O.n_inflight}; /* in-flight ones come back too: skip them */
            store_reply reply = {0};
            err_t e = {0};
            if (store_read(work_due, &a, &reply, &e, &a.se) == 0) {
                start_page(&a.due);
                outbox_list_free(&a.due);
            }
            err_clear(&e);
            store_reply_clear(&reply);
        }
        int running = 0;
        curl_multi_perform(O.multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(O.multi, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            transfer *t = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            CURLcode code = msg->data.result;
            finish(t, code);
            for (int i = 0; i < O.n_inflight; i++)
                if (O.inflight[i] == t) {
                    O.inflight[i] = O.inflight[--O.n_inflight];
                    break;
                }
            atomic_fetch_sub(&t->ag->inflight, 1);
            transfer_free(t);
        }
        /* Wait for sockets, a kick, or the next due time (polled). */
        curl_multi_poll(O.multi, NULL, 0, 100, NULL);
    }
    for (int i = 0; i < O.n_inflight; i++) {
        atomic_fetch_sub(&O.inflight[i]->ag->inflight, 1);
        transfer_free(O.inflight[i]); /* still queued in the store: resumed next start */
    }
    O.n_inflight = 0;
    free(O.inflight);
    O.inflight = NULL;
    store_thread_done();
    return NULL;
}

int outbound_start(const config *cfg, char *err, size_t errlen)
{
    O.cfg = *cfg;
    atomic_store(&O.stop, 0);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        str_copy(err, errlen, "cannot initialise libcurl");
        return -1;
    }
    O.multi = curl_multi_init();
    if (!O.multi) {
        str_copy(err, errlen, "cannot create a libcurl multi handle");
        return -1;
    }
    curl_multi_setopt(O.multi, CURLMOPT_MAX_HOST_CONNECTIONS, 8L);
    for (int i = 0; i < cfg->n_agencies; i++) agency(cfg->agencies[i].id);
    if (pthread_create(&O.thread, NULL, worker, NULL)) {
        str_copy(err, errlen, "cannot start the outbox worker");
        return -1;
    }
    O.started = true;
    return 0;
}

void outbound_stop(void)
{
    if (!O.started) return;
    atomic_store(&O.stop, 1);
    curl_multi_wakeup(O.multi);
    pthread_join(O.thread, NULL);
    curl_multi_cleanup(O.multi);
    O.multi = NULL;
    O.started = false;
    curl_global_cleanup();
}

void outbound_kick(void)
{
    if (O.started) curl_multi_wakeup(O.multi);
}

char *outbound_metrics(void)
{
    outbox_counts counts = {0}; /* kept by the store as messages change: no query per scrape */
    if (store_outbox_counts(&counts)) memset(&counts, 0, sizeof counts);
    size_t cap = 1024, len = 0;
    char *s = malloc(cap);
    if (!s) goto out;
    s[0] = 0;
#define APPEND(...)                                                                    \
    do {                                                                               \
        int n_ = snprintf(NULL, 0, __VA_ARGS__);                                       \
        if (len + (size_t)n_ + 1 > cap) {                                              \
            cap = (len + (size_t)n_ + 1) * 2;                                          \
            char *ns_ = realloc(s, cap);                                               \
            if (!ns_) goto out;                                                        \
            s = ns_;                                                                   \
        }                                                                              \
        len += (size_t)snprintf(s + len, cap - len, __VA_ARGS__);                     \
    } while (0)
    APPEND("# HELP sarye_outbox_messages Outbox messages by agency and status.\n"
           "# TYPE sarye_outbox_messages gauge\n");
    for (size_t i = 0; i < counts.n; i++)
        APPEND("sarye_outbox_messages{agency=\"%s\",status=\"%s\"} %lld\n", counts.items[i].agency,
               counts.items[i].status, counts.items[i].n);
    APPEND("# HELP sarye_outbox_inflight Messages being sent.\n# TYPE sarye_outbox_inflight gauge\n"
           "# HELP sarye_outbox_delivered_total Deliveries since start.\n# TYPE sarye_outbox_delivered_total counter\n"
           "# HELP sarye_outbox_retried_total Failed attempts that will be retried.\n"
           "# TYPE sarye_outbox_retried_total counter\n"
           "# HELP sarye_outbox_dead_total Messages dead-lettered since start.\n# TYPE sarye_outbox_dead_total counter\n"
           "# HELP sarye_outbox_breaker_state Circuit per agency: 0 closed, 1 open, 2 half-open.\n"
           "# TYPE sarye_outbox_breaker_state gauge\n"
           "# HELP sarye_agency_lookups_inflight Synchronous look-ups of an agency waiting for its answer.\n"
           "# TYPE sarye_agency_lookups_inflight gauge\n"
           "# HELP sarye_agency_lookups_busy_total Look-ups refused (503 agency_busy) at the agency's concurrency.\n"
           "# TYPE sarye_agency_lookups_busy_total counter\n");
    pthread_mutex_lock(&O.mu);
    for (int i = 0; i < O.n_agencies; i++) {
        agency_state *a = &O.agencies[i];
        APPEND("sarye_outbox_inflight{agency=\"%s\"} %d\nsarye_outbox_delivered_total{agency=\"%s\"} %lu\n"
               "sarye_outbox_retried_total{agency=\"%s\"} %lu\nsarye_outbox_dead_total{agency=\"%s\"} %lu\n"
               "sarye_outbox_breaker_state{agency=\"%s\"} %d\n",
               a->id, atomic_load(&a->inflight), a->id, atomic_load(&a->delivered), a->id, atomic_load(&a->retried),
               a->id, atomic_load(&a->dead), a->id, (int)a->state);
        APPEND("sarye_agency_lookups_inflight{agency=\"%s\"} %d\nsarye_agency_lookups_busy_total{agency=\"%s\"} %lu\n",
               a->id, atomic_load(&a->lookups), a->id, atomic_load(&a->lookups_busy));
    }
    pthread_mutex_unlock(&O.mu);
#undef APPEND
out:
    free(counts.items);
    return s;
}

bool outbound_agency_configured(const char *agency_id)
{
    const config_agency *conf = config_agency_find(&O.cfg, agency_id);
    return conf && conf->url[0];
}

int outbound_call(const char *agency_id, const char *path, json_t *body, int budget_ms, json_t **out, err_t *e)
{
    const config_agency *conf = config_agency_find(&O.cfg, agency_id);
    *out = NULL;
    if (!conf || !conf->url[0]) {
        err_set(e, 422, "agency_unavailable", "no agency '%s' is configured (agency.%s.url)", agency_id, agency_id);
        err_detail(e, "agency", json_string(agency_id));
        return -1;
    }
    if (path && (strstr(path, "..") || strchr(path, ':') || strchr(path, '@') || strchr(path, '?') || path[0] != '/')) {
        err_set(e, 422, "agency_unavailable", "a look-up path must be a plain path under the agency's URL");
        return -1;
    }
    char url[1100];
    snprintf(url, sizeof url, "%s%s", conf->url, path ? path : "");
    int timeout = conf->timeout_ms < budget_ms ? conf->timeout_ms : budget_ms;
    if (timeout < 1) timeout = 1;
    /* A slow agency must not hold every HTTP worker: past its concurrency
     * a look-up is refused at once, with when to come back (the time one
     * look-up may take). */
    agency_state *ag = agency(agency_id);
    int cap = conf->concurrency > 0 ? conf->concurrency : O.cfg.lookup_concurrency > 0 ? O.cfg.lookup_concurrency : 8;
    if (ag && atomic_fetch_add(&ag->lookups, 1) >= cap) {
        atomic_fetch_sub(&ag->lookups, 1);
        atomic_fetch_add(&ag->lookups_busy, 1);
        int secs = (timeout + 999) / 1000;
        err_set(e, 503, "agency_busy", "agency '%s' already has %d look-ups waiting for its answer; retry in %d s",
                agency_id, cap, secs);
        err_detail(e, "agency", json_string(agency_id));
        err_detail(e, "retry_after", json_integer(secs));
        return -1;
    }
    CURL *easy = curl_easy_init();
    transfer t = {0};
    char *text = body ? json_dumps(body, JSON_COMPACT) : strdup("{}");
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json; charset=utf-8");
    char auth[300];
    if (conf->token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", conf->token);
        headers = curl_slist_append(headers, auth);
    }
    int rc = -1;
    if (!easy || !text) {
        err_set(e, 500, "internal_error", "out of memory");
        goto done;
    }
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    CURLcode code = curl_easy_perform(easy);
    long http = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &http);
    if (code != CURLE_OK || http >= 500 || http == 0) {
        err_set(e, 503, "agency_unavailable", "agency '%s' did not answer: %s", agency_id,
                code != CURLE_OK ? curl_easy_strerror(code) : "server error");
        err_detail(e, "agency", json_string(agency_id));
        goto done;
    }
    json_t *j = t.resp && json_depth_ok(t.resp, t.resp_len, 32) ? json_loads(t.resp, 0, NULL) : NULL;
    if (http >= 300 || !j) {
        json_decref(j);
        err_set(e, 502, "agency_error", "agency '%s' answered HTTP %ld%s", agency_id, http,
                j ? "" : " without JSON");
        err_detail(e, "agency", json_string(agency_id));
        goto done;
    }
    *out = j;
    rc = 0;
done:
    if (ag) atomic_fetch_sub(&ag->lookups, 1);
    curl_slist_free_all(headers);
    if (easy) curl_easy_cleanup(easy);
    free(text);
    free(t.resp);
    return rc;
}
