/*
 * retention.c: what expires goes. Every retention.sweep_ms a thread removes
 * Idempotency-Key records older than retention.idempotency_hours and outbox
 * messages delivered more than retention.outbox_days ago, retention.batch
 * rows per unit of work: each unit is one short write in the writer's next
 * batch, so a purge of a million rows never holds the other writes for
 * longer than one small DELETE. Audit records are never purged here: they
 * leave only through `sarye audit archive`, into a verifiable file.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "process/process.h"
#include "store/store.h"

static struct {
    pthread_t thread;
    bool started, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int idem_hours, outbox_days, sweep_ms, batch;
    atomic_ulong idem, outbox, sweeps, failures;
} J = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

typedef struct {
    bool outbox;
    char before[RFC3339_MAX];
    int limit, deleted;
} purge_arg;

static int work_purge(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    purge_arg *a = arg;
    store_err se = {0};
    int rc = a->outbox ? store_outbox_purge(tx, a->before, a->limit, &a->deleted, &se)
                       : store_idem_purge(tx, a->before, a->limit, &a->deleted, &se);
    return rc ? process_store_fail(&se, e) : 0;
}

static bool stopping(void)
{
    pthread_mutex_lock(&J.mu);
    bool s = J.stop;
    pthread_mutex_unlock(&J.mu);
    return s;
}

/* Waits ms, or until the server stops; true when it stops. */
static bool pause_ms(long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&J.mu);
    while (!J.stop && pthread_cond_timedwait(&J.cv, &J.mu, &until) == 0) {}
    bool stop = J.stop;
    pthread_mutex_unlock(&J.mu);
    return stop;
}

/* Batches until one comes back short (or the server stops). Between two
 * full batches it waits a little (PURGE_PAUSE_MS): a backlog (a database
 * older than its retention, the first start after an upgrade) drains in the
 * background, a batch in ten of the writer's time at most, instead of
 * riding every batch of the writer until it is gone. */
#define PURGE_PAUSE_MS 50
static void purge(bool outbox, int64_t age_ms, atomic_ulong *counter)
{
    purge_arg a = {.outbox = outbox, .limit = J.batch};
    time_rfc3339(time_now_ms() - age_ms, a.before);
    while (!stopping()) {
        store_reply reply = {0};
        err_t e = {0};
        a.deleted = 0;
        if (process_write(NULL, work_purge, &a, &reply, &e)) {
            log_msg(LOG_WARN, "retention: purge failed", " what=%s error=\"%s\"", outbox ? "outbox" : "idempotency",
                    e.message);
            err_clear(&e);
            atomic_fetch_add(&J.failures, 1);
            return;
        }
        atomic_fetch_add(counter, (unsigned long)a.deleted);
        if (a.deleted < a.limit) return;
        if (pause_ms(PURGE_PAUSE_MS)) return;
    }
}

static void *janitor(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "sarye-retention");
    for (;;) {
        purge(false, (int64_t)J.idem_hours * 3600000LL, &J.idem);
        purge(true, (int64_t)J.outbox_days * 86400000LL, &J.outbox);
        atomic_fetch_add(&J.sweeps, 1);
        if (pause_ms(J.sweep_ms)) break;
    }
    store_thread_done();
    return NULL;
}

int process_retention_start(const config *cfg, char *err, size_t errlen)
{
    J.idem_hours = cfg->retention_idempotency_hours;
    J.outbox_days = cfg->retention_outbox_days;
    J.sweep_ms = cfg->retention_sweep_ms;
    J.batch = cfg->retention_batch;
    J.stop = false;
    if (pthread_create(&J.thread, NULL, janitor, NULL)) {
        str_copy(err, errlen, "cannot start the retention thread");
        return -1;
    }
    J.started = true;
    return 0;
}

void process_retention_stop(void)
{
    if (!J.started) return;
    thread_stop(J.thread, &J.mu, &J.cv, &J.stop);
    J.started = false;
}

char *retention_metrics(void)
{
    char *s = NULL;
    if (asprintf(&s,
                 "# HELP sarye_retention_purged_total Rows removed because their retention period ended.\n"
                 "# TYPE sarye_retention_purged_total counter\n"
                 "sarye_retention_purged_total{kind=\"idempotency\"} %lu\n"
                 "sarye_retention_purged_total{kind=\"outbox\"} %lu\n"
                 "# HELP sarye_retention_sweeps_total Retention sweeps completed.\n"
                 "# TYPE sarye_retention_sweeps_total counter\n"
                 "sarye_retention_sweeps_total %lu\n"
                 "# HELP sarye_retention_failures_total Purge units that failed (retried at the next sweep).\n"
                 "# TYPE sarye_retention_failures_total counter\n"
                 "sarye_retention_failures_total %lu\n",
                 atomic_load(&J.idem), atomic_load(&J.outbox), atomic_load(&J.sweeps),
                 atomic_load(&J.failures)) < 0)
        s = NULL;
    return s;
}
