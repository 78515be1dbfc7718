/*
 * process.c: opening and reading cases under the standard process. The
 * program's own first stage and labels come from its plugin (process
 * rules); the core guarantees stage names, org ownership, versioning and an
 * event for every change, in the same transaction as the change.
 */
#include "process/process.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "store/store.h"

static const char *const STAGES[] = {
    "discovery", "initial_counseling", "intake",   "assessment", "selection",
    "planning",  "delivery",           "monitoring", "closure",  "follow_up",
};
#define N_STAGES ((int)(sizeof STAGES / sizeof STAGES[0]))

const char *const process_org_types[] = {"emd", "district", "program", "provider", "agency", NULL};
const char *const process_roles[] = {"worker", "supervisor", "agency", "auditor", "admin", NULL};

bool process_one_of(const char *v, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(v, *list)) return true;
    return false;
}

const char *process_stage_id(int i) { return i >= 0 && i < N_STAGES ? STAGES[i] : NULL; }

bool process_stage_known(const char *stage)
{
    for (int i = 0; i < N_STAGES; i++)
        if (!strcmp(STAGES[i], stage)) return true;
    return false;
}

int process_init(const config *cfg, char *err, size_t errlen)
{
    (void)cfg;
    (void)err;
    (void)errlen;
    return 0;
}

void process_shutdown(void) {}

void process_reload_signal(void) {}

void process_thread_enter(void) {}

void process_thread_leave(void) { store_thread_done(); }

bool process_ready(void) { return store_ready(); }

char *process_metrics(void) { return NULL; }

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

typedef struct {
    const principal *p;
    const case_open_in *in;
} open_arg;

static int work_open(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    open_arg *a = arg;
    const case_open_in *in = a->in;
    if (store_person_visible(tx, a->p, in->person_id, e)) {
        err_set(e, 422, "unknown_person", "no person '%s'", in->person_id);
        err_detail(e, "field", json_string("person_id"));
        return -1;
    }
    bool offers = false;
    if (store_org_offers(tx, in->org, in->program, &offers, e)) return -1;
    if (!offers) {
        err_set(e, 422, "program_not_offered", "organisation '%s' does not run program '%s'", in->org,
                in->program);
        err_detail(e, "field", json_string("program"));
        return -1;
    }
    case_row c;
    memset(&c, 0, sizeof c);
    id_new("cas_", c.id);
    snprintf(c.person_id, sizeof c.person_id, "%s", in->person_id);
    snprintf(c.program, sizeof c.program, "%s", in->program);
    snprintf(c.org, sizeof c.org, "%s", in->org);
    snprintf(c.region, sizeof c.region, "%s", a->p->region);
    snprintf(c.source, sizeof c.source, "%s", in->source);
    if (in->referral_id) snprintf(c.referral_id, sizeof c.referral_id, "%s", in->referral_id);
    snprintf(c.stage, sizeof c.stage, "%s", STAGES[0]);
    snprintf(c.status, sizeof c.status, "open");
    c.version = 1;
    time_rfc3339(time_now_ms(), c.opened_at);
    if (store_case_insert(tx, &c, e)) return -1;
    json_t *data = json_pack("{s:s, s:o}", "source", in->source, "referral_id",
                             in->referral_id ? json_string(in->referral_id) : json_null());
    event_in ev = {.case_id = c.id, .actor = a->p->user, .type = "opened", .to_stage = c.stage,
                   .data = data, .generation = c.generation};
    int rc = store_event_append(tx, &ev, e);
    json_decref(data);
    if (rc) return -1;
    reply->status = 201;
    reply->body = store_case_json(&c);
    return 0;
}

int process_case_open(const principal *p, const case_open_in *in, const store_idem *idem,
                      store_reply *reply, err_t *e)
{
    if (strcmp(in->org, p->org)) {
        err_set(e, 403, "forbidden", "cases are opened by their own organisation ('%s'), not '%s'",
                p->org, in->org);
        err_detail(e, "field", json_string("org"));
        return -1;
    }
    open_arg a = {p, in};
    return store_write(idem, work_open, &a, reply, e);
}

typedef struct {
    const principal *p;
    const char *id;
    const case_query *q;
    int limit;
    const char *after;
} read_arg;

static int work_get(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    read_arg *a = arg;
    case_row c;
    if (store_case_load(tx, a->p, a->id, &c, e)) return -1;
    reply->status = 200;
    reply->body = store_case_json(&c);
    return 0;
}

int process_case_get(const principal *p, const char *id, store_reply *reply, err_t *e)
{
    read_arg a = {.p = p, .id = id};
    return store_read(work_get, &a, reply, e);
}

static int work_list(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    read_arg *a = arg;
    reply->status = 200;
    return store_case_list(tx, a->p, a->q, &reply->body, e);
}

int process_case_list(const principal *p, const case_query *q, store_reply *reply, err_t *e)
{
    read_arg a = {.p = p, .q = q};
    return store_read(work_list, &a, reply, e);
}

static int work_events(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    read_arg *a = arg;
    case_row c;
    if (store_case_load(tx, a->p, a->id, &c, e)) return -1;
    reply->status = 200;
    return store_event_list(tx, a->id, a->limit, a->after, &reply->body, e);
}

int process_case_events(const principal *p, const char *id, int limit, const char *after,
                        store_reply *reply, err_t *e)
{
    read_arg a = {.p = p, .id = id, .limit = limit, .after = after};
    return store_read(work_events, &a, reply, e);
}
