/*
 * The governor's share of CPU between regions: a region over its share
 * waits only when it is the more overdrawn of the regions at work, so a
 * busy region of cheap calls is not held back by one that burns its own
 * share (which waits, then is refused).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/base.h"
#include "config/config.h"
#include "rules/internal.h"

static long cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n;
}

/* Spends ms of this thread's CPU. */
static void burn(int64_t ms)
{
    int64_t until = time_thread_cpu_ns() + ms * 1000000;
    volatile unsigned long x = 0;
    while (time_thread_cpu_ns() < until) x++;
}

/* The governor as configured: threads HTTP workers, concurrency calls of a
 * region at once, a CPU share of percent, no strikes; a call waits at most
 * a quarter of request_timeout_ms. */
static void start(int threads, int concurrency, int percent, int request_timeout_ms)
{
    config cfg;
    config_defaults(&cfg);
    cfg.threads = threads;
    cfg.lua_region_concurrency = concurrency;
    cfg.lua_region_cpu_percent = percent;
    cfg.lua_region_strikes = 0;
    cfg.request_timeout_ms = request_timeout_ms;
    governor_init(&cfg);
}

/* One plugin call of region key that uses ms of CPU; 0, or -1 with e set. */
static int call(const char *key, int64_t ms, err_t *e)
{
    gov_ticket t;
    if (governor_enter(key, &t, e)) return -1;
    burn(ms);
    governor_leave(&t, false);
    return 0;
}

static void test_the_more_overdrawn_region_waits(void **state)
{
    (void)state;
    /* A full bucket: 10 ms of CPU per core; a call waits at most 50 ms,
     * then is refused. */
    start(64, 4, 1, 200);
    int64_t unit = 10 * cpus(); /* ms: one full bucket */
    err_t e = {0};

    /* The hog overdraws its bucket three times over, the busy region a
     * half: both are over their share, and at work within the second (a
     * bucket is drawn on only while another region is at work: the busy
     * region is, first). */
    assert_int_equal(call("busy", 0, &e), 0);
    assert_int_equal(call("hog", 3 * unit, &e), 0);
    assert_int_equal(call("busy", unit + unit / 2, &e), 0);

    /* The busy region goes on: the hog is the more overdrawn. Its next
     * call would wait a quarter of a second for its own bucket, past the
     * 50 ms a call may wait, if it were held. */
    assert_int_equal(call("busy", 0, &e), 0);

    /* The hog waits for its share, and is refused at the end of the wait. */
    assert_int_equal(call("hog", 0, &e), -1);
    assert_int_equal(e.status, 503);
    assert_string_equal(e.code, "region_busy");
    assert_non_null(strstr(e.message, "used their share of the CPU"));
    err_clear(&e);

    /* Alone at work, even an overdrawn region goes on: no other region
     * made a call within the last second (the hog's bucket refills a full
     * bucket a second: it is still a bucket short). */
    struct timespec pause = {1, 100000000};
    nanosleep(&pause, NULL);
    assert_int_equal(call("hog", 0, &e), 0);
}

/* A region over its share waits while another region at work has used
 * less of its own; once that region has been quiet for its second, the
 * waiting call goes in, though its own debt takes far longer to refill
 * than that region's quiet second. (A call used to sleep until its debt was
 * paid, or its wait was over: a busy region's calls, all waiting, stalled
 * for seconds beside a region that had stopped calling.) */
static void test_a_region_goes_on_once_the_one_that_outranks_it_is_quiet(void **state)
{
    (void)state;
    /* A full bucket: 10 ms of CPU per core, refilled each second; a call
     * waits at most 50 s, then is refused. */
    start(64, 4, 1, 200000);
    int64_t unit = 10 * cpus(); /* ms: one full bucket */
    err_t e = {0};

    /* Twenty buckets in debt, run while the light region is at work (it
     * calls between the pieces: a bucket is drawn on only while another
     * region is at work): twenty seconds to refill. */
    gov_ticket t;
    assert_int_equal(call("light", 0, &e), 0);
    assert_int_equal(governor_enter("indebted", &t, &e), 0);
    for (int i = 0; i < 21; i++) {
        burn(unit);
        assert_int_equal(call("light", 0, &e), 0); /* at work, its bucket full */
    }
    governor_leave(&t, false);

    int64_t t0 = time_mono_ns();
    assert_int_equal(call("indebted", 0, &e), 0);
    int64_t waited_ms = (time_mono_ns() - t0) / 1000000;
    /* It did wait (the light region was at work for most of a second
     * more), and it went in when that region went quiet (a second), not
     * when its debt was paid (twenty): the bound leaves nine seconds for a
     * busy machine. */
    assert_true(waited_ms >= 500);
    assert_true(waited_ms < 10000);
}

static void *wait_for_room(void *arg)
{
    err_t e = {0};
    *(int *)arg = call("crowd", 0, &e);
    return NULL;
}

/* A waiting call holds an HTTP worker: at most half of them (threads) wait
 * for one region when the wait would be long; the next call is refused at
 * once, not after its wait. (A region of quick calls is not refused for
 * its numbers: test_isolation's busy region of 32 connections.) */
static void test_at_most_half_the_workers_wait_for_one_region(void **state)
{
    (void)state;
    start(4, 1, 0, 200000); /* two may wait, one call at a time, no CPU share; a call would wait 50 s */
    err_t e = {0};

    /* Its calls take 600 ms on the clock: three waiting, 1.8 s. */
    assert_int_equal(call("crowd", 600, &e), 0);
    gov_ticket running;
    assert_int_equal(governor_enter("crowd", &running, &e), 0); /* the region's one call at a time */
    pthread_t th[2];
    int rc[2] = {-2, -2};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, wait_for_room, &rc[i]), 0);
        while (governor_waiting("crowd") < i + 1) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
    }
    assert_int_equal(call("crowd", 0, &e), -1); /* a third would wait: refused */
    assert_int_equal(e.status, 503);
    assert_string_equal(e.code, "region_busy");
    assert_non_null(strstr(e.message, "too many calls waiting"));
    err_clear(&e);
    assert_int_equal(call("other", 0, &e), 0); /* another region goes in */

    governor_leave(&running, false); /* the two waiting go in, in turn */
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(rc[i], 0);
    }
    assert_int_equal(governor_waiting("crowd"), 0);
}

/* CPU a region uses alone is not owed: its bucket is drawn on only while
 * another region is at work. A busy region that had the machine to itself
 * is not the more overdrawn the moment another comes (all its calls waited
 * up to a second beside a region that burned its budget). */
static void test_what_a_region_uses_alone_is_not_owed(void **state)
{
    (void)state;
    /* A full bucket: 10 ms of CPU per core; a call waits at most 50 ms. */
    start(64, 4, 1, 200);
    int64_t unit = 10 * cpus();
    err_t e = {0};
    struct timespec second = {1, 100000000};
    nanosleep(&second, NULL); /* the regions of the tests before are quiet by now */

    assert_int_equal(call("solo", 3 * unit, &e), 0); /* alone: three buckets' worth, not owed */
    /* The newcomer uses a bucket and a half while solo is at work (solo
     * calls between the pieces, and goes on at once each time: it owes
     * nothing): half a bucket owed. */
    gov_ticket t;
    assert_int_equal(governor_enter("newcomer", &t, &e), 0);
    for (int i = 0; i < 3; i++) {
        burn(unit / 2);
        assert_int_equal(call("solo", 0, &e), 0);
    }
    governor_leave(&t, false);
    /* Solo is not the more overdrawn: it goes on; the newcomer, over its
     * share beside solo's fuller bucket, waits and is refused. */
    assert_int_equal(call("solo", 0, &e), 0);
    assert_int_equal(call("newcomer", 0, &e), -1);
    assert_string_equal(e.code, "region_busy");
    err_clear(&e);
}

static void *enter_and_hold(void *arg)
{
    err_t e = {0};
    gov_ticket *t = arg;
    if (governor_enter("lone", t, &e)) t->slot = -2;
    return NULL;
}

static void wait_until_waiting(const char *key, int n)
{
    while (governor_waiting(key) != n) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
}

/* Left at 0, a region's calls run on every core while no other region's
 * call runs, and on all but one while one does: a lone region neither
 * queues its calls nor leaves a core idle, and another region's call goes
 * in at once and keeps its core while it runs. */
static void test_a_lone_region_uses_every_core(void **state)
{
    (void)state;
    start(64, 0, 0, 200000); /* the default concurrency, no CPU share; a call would wait 50 s */
    int alone = (int)cpus(), shared = cpus() > 2 ? (int)cpus() - 1 : 1;
    err_t e = {0};
    gov_ticket *running = calloc((size_t)alone, sizeof *running);
    assert_non_null(running);
    for (int i = 0; i < alone; i++) assert_int_equal(governor_enter("lone", &running[i], &e), 0); /* at once */
    assert_int_equal(governor_waiting("lone"), 0);
    gov_ticket next;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, enter_and_hold, &next), 0);
    wait_until_waiting("lone", 1); /* one more than the cores: it waits */

    /* Another region's call goes in at once, and runs: calls of the lone
     * region end until it runs fewer than `shared`, and only then does the
     * one waiting go in. (Each end wakes it to look again.) */
    gov_ticket company;
    assert_int_equal(governor_enter("company", &company, &e), 0);
    int held = alone;
    while (held > shared) {
        governor_leave(&running[--held], false);
        struct timespec ms = {0, 50000000};
        nanosleep(&ms, NULL);
        assert_int_equal(governor_waiting("lone"), 1);
    }
    governor_leave(&running[--held], false);
    pthread_join(th, NULL);
    assert_int_not_equal(next.slot, -2);
    running[held++] = next;

    /* The other region's call ends: the lone region has every core again. */
    governor_leave(&company, false);
    while (held < alone) assert_int_equal(governor_enter("lone", &running[held++], &e), 0);
    while (held > 0) governor_leave(&running[--held], false);

    /* Configured, the concurrency is the same alone or not. */
    start(64, 1, 0, 200000);
    assert_int_equal(governor_enter("lone", &running[0], &e), 0);
    assert_int_equal(pthread_create(&th, NULL, enter_and_hold, &next), 0);
    wait_until_waiting("lone", 1);
    governor_leave(&running[0], false);
    pthread_join(th, NULL);
    assert_int_not_equal(next.slot, -2);
    governor_leave(&next, false);
    free(running);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_more_overdrawn_region_waits),
        cmocka_unit_test(test_a_region_goes_on_once_the_one_that_outranks_it_is_quiet),
        cmocka_unit_test(test_at_most_half_the_workers_wait_for_one_region),
        cmocka_unit_test(test_a_lone_region_uses_every_core),
        cmocka_unit_test(test_what_a_region_uses_alone_is_not_owed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
