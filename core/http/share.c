/*
 * share.c: a region's share of the HTTP workers.
 *
 * A request holds its worker until it is answered, and some wait long on
 * purpose (a look-up waiting for an agency, a large export). The governor
 * bounds the plugin calls of a region and each agency bounds its look-ups,
 * but nothing bounded how many workers the requests of one region hold
 * together: a region's look-ups spread over agencies, or its slow reads,
 * could take every worker, and then every other region's requests queued
 * behind them in CivetWeb, unserved.
 *
 * So a request whose principal belongs to a region counts against that
 * region while it is served. It is refused at once (503 region_busy,
 * Retry-After 1) when the workers are nearly all busy (all but a reserve
 * of threads / 8, at least one) and its region already holds half of them:
 * the reserve stays for the regions below half. Only while there is someone
 * to keep it for: another region with a request being served, or served
 * within the last minute; a server of one region (or one whose other
 * regions are quiet) lets it use every worker, as before. So a busy region
 * is not refused for being busy, only for crowding others out. Requests of
 * no region (system operators, public routes) are never refused here.
 *
 * Counting is two atomic additions a request: no lock on the request path.
 * Regions get a slot the first time they are seen (under a mutex); past
 * SLOTS regions a region is counted in the total only.
 */
#include "http/share.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "base/base.h"

#define SLOTS 512
#define KEY_MAX 16
#define ACTIVE_NS (60 * 1000000000LL) /* a region served this recently is one to keep the reserve for */

static struct {
    pthread_mutex_t mu; /* guards the filling of slots */
    int threads, reserve;
    atomic_int busy; /* requests of a region being served */
    struct {
        _Atomic bool used; /* key is set, and never changes again */
        char key[KEY_MAX];
        atomic_int busy;
        _Atomic int64_t last_ns; /* when a request of it last started (monotonic) */
    } slot[SLOTS];
    atomic_ulong refused;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

void share_start(int threads)
{
    S.threads = threads;
    S.reserve = threads / 8 > 0 ? threads / 8 : 1;
}

/* The slot of region key, taken when first seen; -1 when the table is full. */
static int slot_of(const char *key)
{
    uint32_t h = str_hash(key);
    for (int i = 0; i < SLOTS; i++) {
        int s = (int)((h + (uint32_t)i) % SLOTS);
        if (atomic_load_explicit(&S.slot[s].used, memory_order_acquire)) {
            if (!strcmp(S.slot[s].key, key)) return s;
            continue;
        }
        pthread_mutex_lock(&S.mu);
        if (!atomic_load(&S.slot[s].used)) {
            str_copy(S.slot[s].key, sizeof S.slot[s].key, key);
            atomic_store_explicit(&S.slot[s].used, true, memory_order_release);
        }
        pthread_mutex_unlock(&S.mu);
        if (!strcmp(S.slot[s].key, key)) return s;
    }
    return -1;
}

/* Whether a region other than slot s is being served, or was recently. */
static bool others_active(int s, int64_t now)
{
    for (int i = 0; i < SLOTS; i++) {
        if (i == s || !atomic_load_explicit(&S.slot[i].used, memory_order_acquire)) continue;
        if (atomic_load(&S.slot[i].busy) > 0 || now - atomic_load(&S.slot[i].last_ns) < ACTIVE_NS) return true;
    }
    return false;
}

int share_enter(const char *region, int *ticket)
{
    *ticket = SHARE_NONE;
    if (!region || !*region || S.threads <= 0 || strlen(region) >= KEY_MAX) return 0;
    int s = slot_of(region);
    int total = atomic_fetch_add(&S.busy, 1) + 1;
    if (s < 0) {
        *ticket = SHARE_TOTAL_ONLY;
        return 0;
    }
    int64_t now = time_mono_ns();
    atomic_store_explicit(&S.slot[s].last_ns, now, memory_order_relaxed);
    int mine = atomic_fetch_add(&S.slot[s].busy, 1) + 1;
    if (total > S.threads - S.reserve && mine > S.threads / 2 && others_active(s, now)) {
        atomic_fetch_sub(&S.slot[s].busy, 1);
        atomic_fetch_sub(&S.busy, 1);
        atomic_fetch_add(&S.refused, 1);
        return -1;
    }
    *ticket = s;
    return 0;
}

void share_leave(int ticket)
{
    if (ticket == SHARE_NONE) return;
    if (ticket >= 0) atomic_fetch_sub(&S.slot[ticket].busy, 1);
    atomic_fetch_sub(&S.busy, 1);
}

unsigned long share_refused(void) { return atomic_load(&S.refused); }
