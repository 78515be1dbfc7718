/*
 * process.c: the process layer's lifecycle and what is not one resource —
 * starting the rules, per-thread state, readiness, metrics, authentication,
 * the organisation types and roles, and the listings of programs and
 * plugins. The standard process itself is in engine.c.
 */
#include "process/process.h"

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
const char *const process_roles[] = {"worker", "supervisor", "agency", "auditor", "admin", NULL};

bool process_one_of(const char *v, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(v, *list)) return true;
    return false;
}

void referrals_init(void);
char *engine_metrics(void);

int process_init(const config *cfg, char *err, size_t errlen)
{
    referrals_init();
    return rules_init(cfg, err, errlen);
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
                     outbound_metrics(), store_metrics()};
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
    return store_principal_by_token(tx, a->token, a->p, e);
}

int process_authenticate(const char *token, principal *p, err_t *e)
{
    store_reply reply = {0};
    auth_arg a = {token, p};
    return store_read(work_auth, &a, &reply, e);
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

int process_plugins(store_reply *reply, err_t *e)
{
    (void)e;
    reply->status = 200;
    reply->body = luahost_plugins_json();
    return 0;
}

int process_plugins_reload(store_reply *reply, err_t *e)
{
    if (luahost_reload(&reply->body, e)) return -1;
    reply->status = 200;
    return 0;
}
