/*
 * governor.c: what one region's plugin code may take from the others. Every
 * plugin call on behalf of a region (its cases' rules) or an agency (its
 * messages) passes here first and reports what it used after:
 *
 *   - at most `lua.region_concurrency` calls of one region run at once; the
 *     others wait (a waiting request uses no CPU), then 503 region_busy. Left
 *     at 0, that is the cores less one while another region's call runs
 *     (one core is left to the others), and every core otherwise (nothing
 *     is kept for no one: a lone region's calls neither queue, a context
 *     switch each, nor leave a core idle). A
 *     waiting request holds an HTTP worker, so at most half the workers
 *     (`threads`) wait for one region when the wait would be over a second
 *     (its calls' running mean on the clock): the next is refused at once;
 *   - while another region is active, a region's plugin code gets at most
 *     `lua.region_cpu_percent` of the machine's CPU (a bucket refilled at
 *     that rate, and drawn on only while another region is active): a
 *     region over it waits until its bucket refills, if it is the more
 *     overdrawn of the two (a busy region of cheap calls beside one that
 *     burns its budget goes on; the burner waits);
 *   - a region whose calls run past their CPU budget `lua.region_strikes`
 *     times within a minute is suspended (30 s, doubling up to 10 min):
 *     its requests are held briefly (so a client retrying in a loop burns
 *     nothing; an eighth of the workers at most, all regions together,
 *     past that answered at once) and answered 503 region_suspended with
 *     Retry-After. A VM
 *     rebuilt after a killed call is charged to the region that killed it.
 *
 * State is a small open-addressed table under one mutex; calls are short.
 * A region's waiting calls queue in arrival order, each on a condition of
 * its own: a call that ends wakes the first waiter of its region only (a
 * broadcast woke every waiting thread of every region, each time). The
 * first in line also looks again on its own, when its debt is paid, when
 * the regions that outrank it have gone quiet, or after a short while; the
 * others sleep until the one before them goes in or gives up.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "rules/internal.h"

#define SLOTS 1024
#define WINDOW_NS 1000000000LL          /* "active" and the strike window's unit */
#define STRIKE_WINDOW_NS (60 * WINDOW_NS)
#define SUSPEND_FIRST_NS (30 * WINDOW_NS)
#define SUSPEND_MAX_NS (600 * WINDOW_NS)
#define TARPIT_NS (1 * WINDOW_NS)         /* how long a suspended region's request is held */
#define BUSY_LOOK_NS (50 * 1000000LL)     /* the first waiter of a busy region looks again */
#define OVER_LOOK_NS (20 * 1000000LL)     /* ... of a region over its share */
#define CROWD_WAIT_NS WINDOW_NS           /* a wait that long, past max_waiting waiting: refused at once */

typedef struct waiter {
    pthread_cond_t cv;
    struct waiter *next, **prev_next;
} waiter;

typedef struct {
    char key[40];
    waiter *head, **tail;      /* the calls waiting, in arrival order */
    int running;
    int waiting;               /* calls in the queue */
    int64_t bucket_ns;         /* CPU the region may still use; negative: owed */
    int64_t refilled_at;
    int64_t last_call;
    int strikes;
    int64_t strikes_since;
    int64_t suspended_until;
    int64_t suspend_ns;        /* the next suspension's length */
    int64_t call_ns;           /* how long its calls take, on the clock (a running mean) */
    unsigned long throttled, suspended, kills;
} region_state;

static struct {
    pthread_mutex_t mu;
    region_state slot[SLOTS];
    int used;
    int recent[2];             /* the two regions called last (slot+1; 0 none) */
    int64_t recent_at[2];
    int concurrency;           /* calls of one region at once, while another is active */
    int alone;                 /* ... while no other region is */
    int64_t rate_ns_per_s;     /* CPU per second a region may use while others are active */
    int strikes;
    int max_wait_ms;
    int max_waiting;           /* calls of one region that may wait at once */
    int max_held;              /* suspended regions' requests held at once, all regions */
    int held;
    int running;               /* calls running, all regions together */
} G = {.mu = PTHREAD_MUTEX_INITIALIZER};

void governor_init(const config *cfg)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    pthread_mutex_lock(&G.mu);
    G.concurrency = cfg->lua_region_concurrency > 0 ? cfg->lua_region_concurrency : (cpus > 2 ? (int)cpus - 1 : 1);
    G.alone = cfg->lua_region_concurrency > 0 ? cfg->lua_region_concurrency : (int)cpus;
    if (G.alone < G.concurrency) G.alone = G.concurrency;
    G.rate_ns_per_s = cfg->lua_region_cpu_percent > 0 ? (int64_t)cpus * WINDOW_NS * cfg->lua_region_cpu_percent / 100
                                                      : 0;
    G.strikes = cfg->lua_region_strikes;
    G.max_wait_ms = cfg->request_timeout_ms / 4;
    /* A waiting call holds an HTTP worker: one region may hold at most
     * half of them waiting, and the requests of suspended regions held
     * in the tarpit an eighth, so that the other regions always find
     * workers free. */
    G.max_waiting = cfg->threads / 2 > 1 ? cfg->threads / 2 : 1;
    G.max_held = cfg->threads / 8 > 1 ? cfg->threads / 8 : 1;
    pthread_mutex_unlock(&G.mu);
}

/* The slot of key (created on first use); -1 when the table is full. */
static int slot_of(const char *key)
{
    uint32_t h = str_hash(key);
    for (int i = 0; i < SLOTS; i++) {
        int s = (int)((h + (uint32_t)i) % SLOTS);
        region_state *r = &G.slot[s];
        if (!r->key[0]) {
            if (G.used >= SLOTS * 3 / 4) return -1;
            str_copy(r->key, sizeof r->key, key);
            r->bucket_ns = G.rate_ns_per_s;
            r->refilled_at = time_mono_ns();
            r->suspend_ns = SUSPEND_FIRST_NS;
            r->head = NULL;
            r->tail = &r->head;
            G.used++;
            return s;
        }
        if (!strcmp(r->key, key)) return s;
    }
    return -1;
}

static void refill(region_state *r, int64_t now);

/* Another region made a call within the last second, and has used less of
 * its share than region s: s is the one to wait. (Only the more overdrawn
 * waits: a region busy with cheap calls, a little over its share beside
 * one that burns all of its own, is not held back by the burner.) Returns
 * 0 when s may go on, else how long until the regions that outrank it have
 * been quiet for their second (s looks again by then at the latest: a
 * region whose debt takes seconds to refill is not held for all of it by
 * one that stopped calling). */
static int64_t outranked(int s, int64_t now)
{
    int64_t quiet_in = 0;
    for (int i = 0; i < 2; i++) {
        int o = G.recent[i] - 1;
        if (o < 0 || o == s || now - G.recent_at[i] >= WINDOW_NS) continue;
        refill(&G.slot[o], now);
        if (G.slot[o].bucket_ns > G.slot[s].bucket_ns) {
            int64_t left = G.recent_at[i] + WINDOW_NS - now;
            if (left > quiet_in) quiet_in = left;
        }
    }
    return quiet_in;
}

/* Another region than s made a call within the last second. (The two
 * regions called last are distinct: if any other was active, one of them
 * is, at least as lately.) */
static bool others_active(int s, int64_t now)
{
    for (int i = 0; i < 2; i++) {
        int o = G.recent[i] - 1;
        if (o >= 0 && o != s && now - G.recent_at[i] < WINDOW_NS) return true;
    }
    return false;
}

/* How many calls of region s may run at once: one core fewer while
 * another region's call runs (a region that calls now and then, or waits
 * for its share, does not take a core from a busy one meanwhile; its call,
 * when it comes, goes in at once). */
static int limit_of(int s) { return G.running > G.slot[s].running ? G.concurrency : G.alone; }

static void note_call(int s, int64_t now)
{
    if (G.recent[0] - 1 != s) {
        G.recent[1] = G.recent[0];
        G.recent_at[1] = G.recent_at[0];
        G.recent[0] = s + 1;
    }
    G.recent_at[0] = now;
}

static void refill(region_state *r, int64_t now)
{
    if (!G.rate_ns_per_s) return;
    int64_t dt = now - r->refilled_at;
    if (dt <= 0) return;
    if (dt > WINDOW_NS) dt = WINDOW_NS; /* a full bucket holds one second's worth */
    r->bucket_ns += (int64_t)((double)dt * (double)G.rate_ns_per_s / WINDOW_NS);
    if (r->bucket_ns > G.rate_ns_per_s) r->bucket_ns = G.rate_ns_per_s;
    r->refilled_at = now;
}

/* How long until an overdrawn bucket is back at zero. */
static int64_t owed_ns(const region_state *r)
{
    return (int64_t)(-(double)r->bucket_ns * WINDOW_NS / (double)G.rate_ns_per_s);
}

static void wait_enqueue(region_state *r, waiter *w)
{
    r->waiting++;
    w->next = NULL;
    w->prev_next = r->tail;
    *r->tail = w;
    r->tail = &w->next;
}

static void wait_dequeue(region_state *r, waiter *w)
{
    r->waiting--;
    *w->prev_next = w->next;
    if (w->next) w->next->prev_next = w->prev_next;
    else r->tail = w->prev_next;
}

/* Under G.mu: the first call waiting on region r, if any, looks again. */
static void wake_first(region_state *r)
{
    if (r->head) pthread_cond_signal(&r->head->cv);
}

static void deadline_in(struct timespec *ts, int64_t ns)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ns += ts->tv_nsec;
    ts->tv_sec += ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
}

static void refuse(err_t *e, int status, const char *code, const char *key, int64_t wait_ns, const char *why)
{
    long secs = (long)((wait_ns + WINDOW_NS - 1) / WINDOW_NS);
    if (secs < 1) secs = 1;
    err_set(e, status, code, "the plugin rules of %s %s; retry in %ld s", key, why, secs);
    err_detail(e, "region", json_string(key));
    err_detail(e, "retry_after", json_integer(secs));
}

int governor_enter(const char *key, gov_ticket *t, err_t *e)
{
    t->slot = -1;
    if (!key || !*key) return 0;
    pthread_mutex_lock(&G.mu);
    int s = G.concurrency ? slot_of(key) : -1; /* not started (tooling): ungoverned */
    if (s < 0) { /* more keys than slots: ungoverned, as before there was a governor */
        pthread_mutex_unlock(&G.mu);
        return 0;
    }
    region_state *r = &G.slot[s];
    int64_t now = time_mono_ns();
    int64_t give_up = now + (int64_t)G.max_wait_ms * 1000000;
    waiter w;
    bool queued = false;
    for (;;) {
        now = time_mono_ns();
        if (r->suspended_until > now) { /* also for calls that were waiting when it was suspended */
            int64_t left = r->suspended_until - now;
            r->suspended++;
            if (queued) {
                wait_dequeue(r, &w);
                pthread_cond_destroy(&w.cv);
                wake_first(r); /* it is refused too, at once, not after its nap */
            }
            /* Held, not answered at once: a client that retries in a loop
             * must not burn the CPU the suspension saves. But a held
             * request holds an HTTP worker: past max_held, answered at once. */
            bool hold_it = G.held < G.max_held;
            if (hold_it) G.held++;
            pthread_mutex_unlock(&G.mu);
            if (hold_it) {
                int64_t hold = left < TARPIT_NS ? left : TARPIT_NS;
                struct timespec ts = {(time_t)(hold / 1000000000), (long)(hold % 1000000000)};
                while (nanosleep(&ts, &ts) && errno == EINTR) {}
                pthread_mutex_lock(&G.mu);
                G.held--;
                pthread_mutex_unlock(&G.mu);
            }
            refuse(e, 503, "region_suspended", key, left,
                   "are suspended: they ran past their CPU budget again and again");
            return -1;
        }
        refill(r, now);
        int64_t quiet_in = G.rate_ns_per_s && r->bucket_ns < 0 ? outranked(s, now) : 0;
        bool over = quiet_in > 0;
        /* Whoever finds room takes it (a call already running on a core
         * goes on at once; a woken waiter that finds none waits again,
         * first in line). */
        int limit = limit_of(s);
        if (r->running < limit && !over) break;
        /* Past its wait, or one call too many waiting already for a wait
         * that would be long (short waits hold a worker briefly: a busy
         * region of quick calls is not refused for its numbers). */
        int64_t expect = over ? owed_ns(r) : (int64_t)(r->waiting + 1) * r->call_ns / limit;
        bool crowded = !queued && r->waiting >= G.max_waiting && expect > CROWD_WAIT_NS;
        if (now >= give_up || crowded) {
            r->throttled++;
            int64_t owed = over ? owed_ns(r) : WINDOW_NS;
            if (queued) {
                wait_dequeue(r, &w);
                pthread_cond_destroy(&w.cv);
                wake_first(r);
            }
            pthread_mutex_unlock(&G.mu);
            refuse(e, 503, "region_busy", key, owed,
                   over      ? "used their share of the CPU"
                   : crowded ? "have too many calls waiting"
                             : "are all busy");
            return -1;
        }
        /* The first in line looks again when something may have changed:
         * its debt is paid, the regions that outrank it have gone quiet, or
         * a while has passed (the others' buckets move too). The others in
         * line wait to be woken: by a call that ends, or by the one before
         * them as it goes in or gives up. */
        int64_t nap = give_up - now;
        if (!queued ? !r->head : r->head == &w) {
            int64_t look = over ? OVER_LOOK_NS : BUSY_LOOK_NS;
            if (over && owed_ns(r) < look) look = owed_ns(r);
            if (over && quiet_in < look) look = quiet_in;
            if (look < nap) nap = look;
        }
        if (nap < 1000000) nap = 1000000;
        struct timespec ts;
        deadline_in(&ts, nap);
        if (!queued) {
            pthread_condattr_t ca;
            pthread_condattr_init(&ca);
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
            pthread_cond_init(&w.cv, &ca);
            pthread_condattr_destroy(&ca);
            wait_enqueue(r, &w);
            queued = true;
        }
        pthread_cond_timedwait(&w.cv, &G.mu, &ts);
    }
    if (queued) {
        wait_dequeue(r, &w);
        pthread_cond_destroy(&w.cv);
    }
    r->running++;
    G.running++;
    /* More room (a concurrency above one): the next in line looks too. */
    if (r->running < limit_of(s)) wake_first(r);
    r->last_call = now;
    note_call(s, now);
    pthread_mutex_unlock(&G.mu);
    t->slot = s;
    t->cpu0 = time_thread_cpu_ns();
    t->wall0 = now;
    return 0;
}

void governor_leave(gov_ticket *t, bool killed)
{
    if (t->slot < 0) return;
    int64_t used = time_thread_cpu_ns() - t->cpu0;
    pthread_mutex_lock(&G.mu);
    region_state *r = &G.slot[t->slot];
    int64_t now = time_mono_ns();
    r->running--;
    G.running--;
    int64_t took = now - t->wall0;
    r->call_ns = r->call_ns ? r->call_ns + (took - r->call_ns) / 8 : took;
    refill(r, now);
    /* The share holds while another region is at work: CPU a region used
     * alone, when no one else needed it, is not owed (a busy region that
     * had the machine to itself was the more overdrawn the moment another
     * came, and all its calls waited up to a second beside a burner). */
    if (G.rate_ns_per_s && others_active(t->slot, now)) r->bucket_ns -= used;
    if (killed) {
        r->kills++;
        if (now - r->strikes_since > STRIKE_WINDOW_NS) {
            r->strikes = 0;
            r->strikes_since = now;
        }
        if (G.strikes > 0 && ++r->strikes >= G.strikes) {
            r->suspended_until = now + r->suspend_ns;
            log_msg(LOG_WARN, "governor: region suspended", " region=%s strikes=%d suspended_s=%lld", r->key,
                    r->strikes, (long long)(r->suspend_ns / WINDOW_NS));
            r->suspend_ns = r->suspend_ns * 2 > SUSPEND_MAX_NS ? SUSPEND_MAX_NS : r->suspend_ns * 2;
            r->strikes = 0;
            r->strikes_since = now;
        }
    } else if (r->suspend_ns > SUSPEND_FIRST_NS && now - r->strikes_since > SUSPEND_MAX_NS) {
        r->suspend_ns = SUSPEND_FIRST_NS; /* well-behaved for long: forgiven */
    }
    wake_first(r);
    pthread_mutex_unlock(&G.mu);
    t->slot = -1;
}

void governor_pause(gov_ticket *t, int *slot)
{
    *slot = t->slot;
    governor_leave(t, false);
}

void governor_resume(gov_ticket *t, int slot)
{
    if (slot < 0) return;
    pthread_mutex_lock(&G.mu);
    G.slot[slot].running++;
    G.running++;
    pthread_mutex_unlock(&G.mu);
    t->slot = slot;
    t->cpu0 = time_thread_cpu_ns();
    t->wall0 = time_mono_ns();
}

int governor_waiting(const char *key)
{
    pthread_mutex_lock(&G.mu);
    int s = slot_of(key), n = s < 0 ? 0 : G.slot[s].waiting;
    pthread_mutex_unlock(&G.mu);
    return n;
}

char *governor_metrics(void)
{
    size_t cap = 1024, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    len = (size_t)snprintf(s, cap,
                           "# HELP sarye_region_calls_refused_total Plugin calls refused to protect other regions.\n"
                           "# TYPE sarye_region_calls_refused_total counter\n"
                           "# HELP sarye_region_budget_kills_total Plugin calls stopped at their CPU budget.\n"
                           "# TYPE sarye_region_budget_kills_total counter\n");
    pthread_mutex_lock(&G.mu);
    int64_t now = time_mono_ns();
    for (int i = 0; i < SLOTS; i++) {
        region_state *r = &G.slot[i];
        if (!r->key[0] || !(r->throttled || r->suspended || r->kills || r->suspended_until > now)) continue;
        char line[400];
        int n = snprintf(line, sizeof line,
                         "sarye_region_calls_refused_total{region=\"%s\",why=\"busy\"} %lu\n"
                         "sarye_region_calls_refused_total{region=\"%s\",why=\"suspended\"} %lu\n"
                         "sarye_region_budget_kills_total{region=\"%s\"} %lu\n",
                         r->key, r->throttled, r->key, r->suspended, r->key, r->kills);
        if (len + (size_t)n + 1 > cap) {
            cap = (len + (size_t)n + 1) * 2;
            char *ns = realloc(s, cap);
            if (!ns) break;
            s = ns;
        }
        memcpy(s + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
    pthread_mutex_unlock(&G.mu);
    return s;
}
