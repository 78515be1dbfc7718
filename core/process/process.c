/*
 * process.c: the process layer's lifecycle and what is not one resource —
 * starting the rules, per-thread state, readiness, metrics, authentication,
 * the organisation types and roles, and the listings of programs and
 * plugins. The standard process itself is in engine.c.
 */
#include "process/process.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "lua/host.h"
#include "outbound/outbound.h"
#include "process/internal.h"
#include "rules/rules.h"
#include "store/store.h"

const char *const process_org_types[] = {"emd", "district", "program", "provider", "agency", NULL};
const char *const process_roles[] = {"worker", "supervisor", "agency", "auditor", "admin", "operator", NULL};

bool process_one_of(const char *v, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(v, *list)) return true;
    return false;
}

void referrals_init(void);
char *engine_metrics(void);
char *retention_metrics(void);

static void auth_init(void);

int process_init(const config *cfg, char *err, size_t errlen)
{
    auth_init();
    referrals_init();
    if (rules_init(cfg, err, errlen)) return -1;
    return generations_init(cfg, err, errlen);
}

int process_init_tool(const config *cfg, char *err, size_t errlen)
{
    if (rules_init(cfg, err, errlen)) return -1;
    replay_init(cfg);
    return 0;
}

void process_shutdown(void) { rules_shutdown(); }

void process_reload_signal(void) { luahost_reload_async(); }

void process_thread_enter(void) {}

void process_thread_leave(void)
{
    rules_thread_done();
    luahost_thread_done();
    store_thread_done();
}

bool process_ready(void) { return store_ready() && luahost_ready(); }

char *process_metrics(void)
{
    char *parts[] = {engine_metrics(), luahost_metrics(), rules_metrics(), process_overdue_metrics(),
                     outbound_metrics(), store_metrics(), retention_metrics()};
    size_t n = sizeof parts / sizeof parts[0], len = 0;
    for (size_t i = 0; i < n; i++) len += parts[i] ? strlen(parts[i]) : 0;
    char *s = malloc(len + 1);
    if (s) {
        s[0] = 0;
        for (size_t i = 0; i < n; i++)
            if (parts[i]) strcat(s, parts[i]);
    }
    for (size_t i = 0; i < n; i++) free(parts[i]);
    return s;
}

typedef struct {
    const char *token;
    principal *p;
} auth_arg;

static int work_auth(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    auth_arg *a = arg;
    store_err se = {0};
    if (store_principal_by_token(tx, a->token, a->p, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 401, "unauthorized", "unknown bearer token");
    return 0;
}

/* Tokens resolved in the last second, by the hash of the token (never the
 * token itself): most requests then need one read transaction, not two
 * (every commit makes a reader's next transaction read its pages again).
 * A token revoked through this server is forgotten at once
 * (process_tokens_changed); one revoked by another process (the command
 * line) is refused within AUTH_TTL_NS. */
#define AUTH_SLOTS 2048
#define AUTH_STRIPES 16
#define AUTH_TTL_NS 1000000000LL

static struct {
    pthread_mutex_t mu[AUTH_STRIPES];
    struct {
        char hash[SHA256_HEX];
        principal p;
        int64_t at;
    } slot[AUTH_SLOTS];
    atomic_ulong epoch; /* bumped when tokens change: older entries are stale */
    int64_t epoch_at[AUTH_SLOTS];
} A;

static void auth_init(void)
{
    for (int i = 0; i < AUTH_STRIPES; i++) pthread_mutex_init(&A.mu[i], NULL);
}

static unsigned hex_digit(char c) { return (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10) & 15u; }

void process_tokens_changed(void) { atomic_fetch_add(&A.epoch, 1); }

/* A resolved token that may not be used any more: 401 saying why. */
static int token_ended(const principal *p, err_t *e)
{
    if (p->revoked) {
        err_set(e, 401, "unauthorized", "this bearer token was revoked");
        return -1;
    }
    if (p->expires_ms && time_now_ms() >= p->expires_ms) {
        char at[RFC3339_MAX];
        time_rfc3339(p->expires_ms, at);
        err_set(e, 401, "unauthorized", "this bearer token expired at %s", at);
        return -1;
    }
    return 0;
}

int process_authenticate(const char *token, principal *p, err_t *e)
{
    char hash[SHA256_HEX];
    sha256_hex(token, strlen(token), hash);
    unsigned idx = (hex_digit(hash[0]) << 8 | hex_digit(hash[1]) << 4 | hex_digit(hash[2])) % AUTH_SLOTS;
    pthread_mutex_t *mu = &A.mu[idx % AUTH_STRIPES];
    int64_t now = time_mono_ns();
    unsigned long epoch = atomic_load(&A.epoch);
    pthread_mutex_lock(mu);
    bool hit = !strcmp(A.slot[idx].hash, hash) && now - A.slot[idx].at < AUTH_TTL_NS &&
               (unsigned long)A.epoch_at[idx] == epoch;
    if (hit) *p = A.slot[idx].p;
    pthread_mutex_unlock(mu);
    if (hit) return token_ended(p, e);
    store_reply reply = {0};
    auth_arg a = {token, p};
    if (process_read(work_auth, &a, &reply, e)) return -1;
    pthread_mutex_lock(mu);
    memcpy(A.slot[idx].hash, hash, sizeof hash);
    A.slot[idx].p = *p;
    A.slot[idx].at = now;
    A.epoch_at[idx] = (int64_t)epoch;
    pthread_mutex_unlock(mu);
    return token_ended(p, e);
}

/* ---- programs and plugins ---- */
int process_programs(store_reply *reply, err_t *e)
{
    (void)e;
    reply->status = 200;
    reply->body = luahost_programs_json();
    return 0;
}

int process_program(const char *id, const char *region, store_reply *reply, err_t *e)
{
    json_t *out = NULL;
    if (rules_describe(id, region, &out, e)) return -1;
    if (!out) {
        err_set(e, 404, "not_found", "no program '%s'", id);
        return -1;
    }
    reply->status = 200;
    reply->body = out;
    return 0;
}

int process_plugins_candidate(store_reply *reply, err_t *e)
{
    if (luahost_candidate_diff(&reply->body, e)) return -1;
    reply->status = 200;
    return 0;
}
