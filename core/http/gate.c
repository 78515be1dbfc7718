/*
 * gate.c: the door in front of CivetWeb's worker threads.
 *
 * CivetWeb 1.15 gives every accepted connection a worker thread until it
 * closes, and offers no hook before that: seventy connections that send
 * nothing used to hold every worker, and the API with them. So:
 *
 *   - the listening socket gets TCP_DEFER_ACCEPT: the kernel completes an
 *     accept only once the client has sent data, so a connection that
 *     sends nothing never takes a worker (it is dropped by the kernel);
 *   - sarye defines accept() itself. The dynamic linker resolves
 *     CivetWeb's call to it (an executable's symbols come first); it calls
 *     the real accept and refuses a connection from an address that
 *     already has http.max_per_address open ones, before any worker sees
 *     it. CivetWeb's connection_close callback counts them down, keyed by
 *     the same numeric address string CivetWeb makes (getnameinfo,
 *     NI_NUMERICHOST);
 *   - a request must arrive within http.io_timeout_ms (CivetWeb bounds the
 *     whole header read by it, not each read), and a kept-alive
 *     connection may idle http.keep_alive_ms.
 */
#include "http/gate.h"

#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/base.h"

#define SLOTS 4096
#define DEFER_SECONDS 10

static struct {
    pthread_mutex_t mu;
    int max_per_address; /* 0: no limit */
    bool enabled;
    struct {
        char addr[48];
        int open;
    } slot[SLOTS];
    atomic_ulong refused;
    atomic_int deferred_fd; /* the listening socket given TCP_DEFER_ACCEPT, or -1 */
    bool (*exempt)(const char *addr);
} G = {.mu = PTHREAD_MUTEX_INITIALIZER, .deferred_fd = -1};

void gate_start(int max_per_address)
{
    pthread_mutex_lock(&G.mu);
    G.max_per_address = max_per_address;
    G.enabled = true;
    pthread_mutex_unlock(&G.mu);
}

void gate_exempt(bool (*exempt)(const char *addr))
{
    pthread_mutex_lock(&G.mu);
    G.exempt = exempt;
    pthread_mutex_unlock(&G.mu);
}

void gate_stop(void)
{
    pthread_mutex_lock(&G.mu);
    G.enabled = false;
    memset(G.slot, 0, sizeof G.slot);
    pthread_mutex_unlock(&G.mu);
    atomic_store(&G.deferred_fd, -1);
}

/* The slot of addr (claimed when free); -1 when the table is full. */
static int slot_of(const char *addr, bool claim)
{
    uint32_t h = str_hash(addr);
    for (int i = 0; i < SLOTS; i++) {
        int s = (int)((h + (uint32_t)i) % SLOTS);
        if (!strcmp(G.slot[s].addr, addr)) return s;
        if (!G.slot[s].addr[0]) {
            if (!claim) return -1;
            str_copy(G.slot[s].addr, sizeof G.slot[s].addr, addr);
            return s;
        }
    }
    return -1;
}

/* Admits one more connection from addr, or says no. */
static bool admit(const char *addr)
{
    pthread_mutex_lock(&G.mu);
    bool ok = true;
    if (G.enabled) {
        int s = slot_of(addr, true);
        if (s >= 0) {
            if (G.max_per_address > 0 && G.slot[s].open >= G.max_per_address && !(G.exempt && G.exempt(addr)))
                ok = false;
            else G.slot[s].open++;
        }
    }
    pthread_mutex_unlock(&G.mu);
    return ok;
}

void gate_closed(const char *addr)
{
    pthread_mutex_lock(&G.mu);
    if (G.enabled) {
        int s = slot_of(addr, false);
        /* a free slot stays claimed: open probes stop at it */
        if (s >= 0 && G.slot[s].open > 0) G.slot[s].open--;
    }
    pthread_mutex_unlock(&G.mu);
}

static int (*real_accept(void))(int, struct sockaddr *, socklen_t *)
{
    static int (*fn)(int, struct sockaddr *, socklen_t *);
    if (!fn) fn = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    return fn;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    int (*accept_fn)(int, struct sockaddr *, socklen_t *) = real_accept();
    if (!accept_fn) {
        errno = ENOSYS;
        return -1;
    }
    if (G.enabled && atomic_load(&G.deferred_fd) != fd) {
        /* Only connections that have sent something are handed over. */
        int secs = DEFER_SECONDS;
        if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof secs) == 0) atomic_store(&G.deferred_fd, fd);
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    struct sockaddr *a = addr ? addr : (struct sockaddr *)&ss;
    socklen_t *l = addr ? len : &sl;
    int s = accept_fn(fd, a, l);
    if (s < 0 || !G.enabled || (a->sa_family != AF_INET && a->sa_family != AF_INET6)) return s;
    char host[48] = "";
    if (getnameinfo(a, *l, host, sizeof host, NULL, 0, NI_NUMERICHOST) != 0 || admit(host)) return s;
    /* Over its limit: refused at the door, no worker involved. CivetWeb
     * ignores a failed accept and polls again. */
    close(s);
    atomic_fetch_add(&G.refused, 1);
    errno = ECONNABORTED;
    return -1;
}

unsigned long gate_refused(void) { return atomic_load(&G.refused); }
