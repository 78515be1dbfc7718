/*
 * process.c: opening and reading cases under the standard process. The
 * program's own first stage and labels come from its plugin (process
 * rules); the core guarantees stage names, org ownership, versioning and an
 * event for every change, in the same transaction as the change.
 */
#include "process/process.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "lua/host.h"
#include "outbound/outbound.h"
#include "process/internal.h"
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

static atomic_ulong m_transitions_ok, m_transitions_refused, m_transitions_conflict;

static config g_cfg;

int process_init(const config *cfg, char *err, size_t errlen)
{
    g_cfg = *cfg;
    return luahost_init(cfg, err, errlen);
}

void process_shutdown(void) { luahost_shutdown(); }

void process_reload_signal(void) { luahost_reload_async(); }

void process_thread_enter(void) {}

void process_thread_leave(void)
{
    luahost_thread_done();
    store_thread_done();
}

bool process_ready(void) { return store_ready() && luahost_ready(); }

char *process_metrics(void)
{
    char *lua = luahost_metrics(), *overdue = process_overdue_metrics(), *outbox = outbound_metrics(), *s = NULL;
    if (asprintf(&s,
                 "# HELP sarye_transitions_total Case transitions by outcome.\n"
                 "# TYPE sarye_transitions_total counter\n"
                 "sarye_transitions_total{outcome=\"applied\"} %lu\n"
                 "sarye_transitions_total{outcome=\"refused\"} %lu\n"
                 "sarye_transitions_total{outcome=\"conflict\"} %lu\n%s%s%s",
                 atomic_load(&m_transitions_ok), atomic_load(&m_transitions_refused),
                 atomic_load(&m_transitions_conflict), lua ? lua : "", overdue ? overdue : "", outbox ? outbox : "") < 0)
        s = NULL;
    free(lua);
    free(overdue);
    free(outbox);
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

/* The case as the API shows it: the row, its stage's label under the
 * case's program and region, and its open deadlines. */
int process_case_render(store_tx *tx, luavm *vm, const case_row *c, json_t **out, err_t *e)
{
    json_t *j = store_case_json(c), *labels = NULL, *due = NULL;
    json_t *arg = json_pack("{s:s, s:s}", "program", c->program, "region", c->region);
    int rc = luavm_call(vm, "labels_of", arg, &labels, e);
    json_decref(arg);
    if (rc) goto fail;
    json_t *label = json_object_get(labels, c->stage);
    json_object_set_new(j, "stage_label", json_is_string(label) ? json_incref(label) : json_null());
    json_decref(labels);
    if (store_case_due(tx, c->id, &due, e)) goto fail;
    json_object_set_new(j, "due", due);
    *out = j;
    return 0;
fail:
    json_decref(j);
    return -1;
}

typedef struct {
    const principal *p;
    const case_open_in *in;
    luavm *vm;
} open_arg;

int process_open_in_tx(store_tx *tx, luavm *vm, const principal *p, const case_open_in *in, case_row *out,
                       err_t *e)
{
    if (store_person_visible(tx, p, in->person_id, e)) {
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
    /* Who the program is for: its (and the region's) eligibility rules. */
    json_t *person = NULL, *first = NULL;
    if (store_person_get(tx, p, in->person_id, &person, e)) return -1;
    char today[11];
    date_today_str(today);
    json_t *farg = json_pack("{s:{s:s, s:s, s:s, s:s, s:s}, s:O, s:s}", "case", "program", in->program, "region",
                             p->region, "person_id", in->person_id, "source", in->source, "status", "open",
                             "person", person, "today", today);
    if (in->lookups) json_object_set(farg, "lookups", in->lookups);
    luavm_bind(vm, tx, p);
    int rc = luavm_call(vm, "open_check", farg, &first, e);
    luavm_bind(vm, NULL, NULL);
    json_decref(farg);
    if (rc) {
        json_decref(person);
        return -1;
    }
    const char *stage = json_string_value(json_object_get(first, "first_stage"));
    if (!json_is_true(json_object_get(first, "ok")) || !stage) {
        const char *kind = json_string_value(json_object_get(first, "kind"));
        if (kind && !strcmp(kind, "refused")) {
            err_set(e, 422, "not_eligible", "%s: %s", json_string_value(json_object_get(first, "plugin")),
                    json_string_value(json_object_get(first, "reason")));
            err_detail(e, "plugin", json_incref(json_object_get(first, "plugin")));
            err_detail(e, "version", json_incref(json_object_get(first, "version")));
            err_detail(e, "reason", json_incref(json_object_get(first, "reason")));
        } else if (kind && !strcmp(kind, "unknown_program")) {
            err_set(e, 422, "unknown_program", "no plugin defines program '%s'", in->program);
            err_detail(e, "field", json_string("program"));
        } else {
            process_plugin_failed(first, e);
        }
        json_decref(first);
        json_decref(person);
        return -1;
    }
    case_row c;
    memset(&c, 0, sizeof c);
    id_new("cas_", c.id);
    snprintf(c.person_id, sizeof c.person_id, "%s", in->person_id);
    snprintf(c.program, sizeof c.program, "%s", in->program);
    snprintf(c.org, sizeof c.org, "%s", in->org);
    snprintf(c.region, sizeof c.region, "%s", p->region);
    snprintf(c.source, sizeof c.source, "%s", in->source);
    if (in->referral_id) snprintf(c.referral_id, sizeof c.referral_id, "%s", in->referral_id);
    snprintf(c.stage, sizeof c.stage, "%s", stage);
    json_decref(first);
    snprintf(c.status, sizeof c.status, "open");
    snprintf(c.generation, sizeof c.generation, "%s", luavm_generation(vm));
    c.version = 1;
    time_rfc3339(time_now_ms(), c.opened_at);
    if (store_case_insert(tx, &c, e)) {
        json_decref(person);
        return -1;
    }
    /* Facts an agency answered before opening stay on the person, dated. */
    if (json_array_size(in->cache)) {
        json_t *elig = json_deep_copy(json_object_get(person, "eligibility")), *updated = NULL;
        if (!json_is_object(elig)) {
            json_decref(elig);
            elig = json_object();
        }
        size_t ci;
        json_t *entry;
        json_array_foreach(in->cache, ci, entry) {
            json_t *facts = json_deep_copy(json_object_get(entry, "facts"));
            json_object_set_new(facts, "checked_on", json_string(today));
            json_object_set_new(elig, json_string_value(json_object_get(entry, "key")), facts);
        }
        rc = store_person_set_eligibility(tx, p, in->person_id, elig, &updated, e);
        json_decref(elig);
        json_decref(updated);
        if (rc) {
            json_decref(person);
            return -1;
        }
    }
    json_decref(person);
    json_t *data = json_pack("{s:s, s:o}", "source", in->source, "referral_id",
                             in->referral_id ? json_string(in->referral_id) : json_null());
    event_in ev = {.case_id = c.id, .actor = p->user, .type = "opened", .to_stage = c.stage,
                   .data = data, .generation = c.generation};
    rc = store_event_append(tx, &ev, e);
    /* The rules' say on opening: deadlines that start with the case. */
    json_t *res = NULL;
    if (!rc) {
        json_t *rargs = json_pack("{s:o, s:s, s:O, s:s}", "case", store_case_json(&c), "kind", "open", "record", data,
                                  "today", today);
        luavm_bind(vm, tx, p);
        rc = luavm_call(vm, "record", rargs, &res, e);
        luavm_bind(vm, NULL, NULL);
        json_decref(rargs);
        if (!rc && !json_is_true(json_object_get(res, "ok"))) rc = (process_plugin_failed(res, e), -1);
        if (!rc) rc = process_apply_deadlines(tx, &c, json_object_get(res, "effects"), e);
        json_decref(res);
    }
    json_decref(data);
    if (rc) return -1;
    *out = c;
    return 0;
}

static int work_open(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    open_arg *a = arg;
    case_row c;
    if (process_open_in_tx(tx, a->vm, a->p, a->in, &c, e)) return -1;
    reply->status = 201;
    return process_case_render(tx, a->vm, &c, &reply->body, e);
}

static int work_person(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    const open_arg *a = arg;
    return store_person_get(tx, a->p, a->in->person_id, &reply->body, e);
}

/* Before the transaction: the look-ups the program's rules ask for, each
 * bounded by the request, none while the database is locked. */
static int open_lookups(open_arg *a, case_open_in *in, err_t *e)
{
    json_t *q = json_pack("{s:s, s:s}", "program", in->program, "region", a->p->region), *need = NULL;
    int rc = luavm_call(a->vm, "needs_open_lookup", q, &need, e);
    json_decref(q);
    bool needed = json_is_true(json_object_get(need, "needed"));
    json_decref(need);
    if (rc || !needed) return rc;
    store_reply person = {0};
    if (store_read(work_person, a, &person, e)) {
        if (e->status == 404) {
            err_set(e, 422, "unknown_person", "no person '%s'", in->person_id);
            err_detail(e, "field", json_string("person_id"));
        }
        return -1;
    }
    char today[11];
    date_today_str(today);
    json_t *args = json_pack("{s:{s:s, s:s, s:s, s:s}, s:o, s:s}", "case", "program", in->program, "region",
                             a->p->region, "person_id", in->person_id, "source", in->source, "person", person.body,
                             "today", today),
           *res = NULL;
    person.body = NULL;
    rc = luavm_call_lookup(a->vm, "open_lookup", args, &res, g_cfg.request_timeout_ms / 2, e);
    json_decref(args);
    if (rc) return -1;
    if (!json_is_true(json_object_get(res, "ok"))) {
        if (!luavm_take_http_error(a->vm, e)) process_plugin_failed(res, e);
        json_decref(res);
        return -1;
    }
    in->lookups = json_incref(json_object_get(res, "lookups"));
    in->cache = json_incref(json_object_get(res, "cache"));
    json_decref(res);
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
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    case_open_in with = *in;
    open_arg a = {p, &with, vm};
    int rc = open_lookups(&a, &with, e);
    if (!rc) rc = store_write(idem, work_open, &a, reply, e);
    json_decref(with.lookups);
    json_decref(with.cache);
    return rc;
}

/* ---- transitions ---- */
typedef struct {
    const principal *p;
    const char *id;
    const transition_in *in;
    luavm *vm;
    json_t *prepared; /* what the prepare phase looked up, or NULL */
} transition_arg;

/* A plugin function failed (host.lua caught it): 500 naming the plugin. */
void process_plugin_failed(json_t *result, err_t *e)
{
    const char *kind = json_string_value(json_object_get(result, "kind"));
    err_set(e, 500, kind && !strcmp(kind, "plugin_memory") ? "plugin_memory" : "plugin_error",
            "plugin '%s' failed: %s", json_string_value(json_object_get(result, "plugin")),
            json_string_value(json_object_get(result, "message")));
    err_detail(e, "plugin", json_incref(json_object_get(result, "plugin")));
    err_detail(e, "version", json_incref(json_object_get(result, "version")));
    err_detail(e, "message", json_incref(json_object_get(result, "message")));
}

/* Completes a 409 the caller has set: the stages that are allowed. */
static int conflict(err_t *e, json_t *allowed)
{
    err_detail(e, "allowed", allowed ? allowed : json_array());
    atomic_fetch_add(&m_transitions_conflict, 1);
    return -1;
}

int process_apply_transition(store_tx *tx, luavm *vm, const principal *p, case_row *cp, const transition_in *in,
                             json_t *prepared, err_t *e)
{
    case_row c = *cp;
    /* Core invariants: no plugin can switch these off. */
    bool end = !strcmp(in->to, "end");
    if (!strcmp(c.status, "ended") && !in->reopen)
        return (err_set(e, 409, "case_ended", "case %s has ended; only an explicit reopen moves it", c.id), conflict(e, NULL));
    if (in->reopen && (end || !strcmp(c.status, "open")))
        return (err_set(e, 409, "transition_not_allowed", "only a case in follow-up or ended can be reopened (case %s is %s)", c.id, c.status), conflict(e, NULL));
    if (end) {
        if (strcmp(c.stage, "closure") && strcmp(c.stage, "follow_up")) {
            json_t *allowed = json_array();
            return (err_set(e, 409, "transition_not_allowed", "a case ends only from closure or follow-up, not from '%s'", c.stage), conflict(e, allowed));
        }
    } else if (!strcmp(in->to, "closure")) {
        json_t *reason = json_object_get(in->data, "reason");
        if (!json_is_string(reason) || json_string_length(reason) == 0) {
            err_set(e, 422, "reason_required", "closing a case needs data.reason (목표달성, 사망, 전출, 거부, 연락두절, 이관 ...)");
            err_detail(e, "field", json_string("data.reason"));
            err_detail(e, "plugin", json_string("core"));
            atomic_fetch_add(&m_transitions_refused, 1);
            return -1;
        }
    }

    char today[11];
    date_today_str(today);
    json_t *result = NULL;
    const char *event_type = in->reopen ? "reopened" : end ? "ended" : "transition";
    const char *to_stage = end ? c.stage : in->to;
    if (!end) {
        json_t *args = json_pack("{s:o, s:s, s:b, s:o, s:s?, s:s}", "case", store_case_json(&c), "to", in->to,
                                 "reopen", in->reopen, "data", in->data ? json_incref(in->data) : json_object(),
                                 "note", in->note, "today", today);
        json_object_set_new(json_object_get(args, "case"), "region", json_string(c.region));
        if (prepared) json_object_set(args, "prepared", prepared);
        luavm_bind(vm, tx, p);
        int rc = luavm_call(vm, "transition", args, &result, e);
        luavm_bind(vm, NULL, NULL);
        json_decref(args);
        if (rc) return -1;
        if (!json_is_true(json_object_get(result, "ok"))) {
            const char *kind = json_string_value(json_object_get(result, "kind"));
            json_t *allowed = json_incref(json_object_get(result, "allowed"));
            if (!kind) kind = "?";
            if (!strcmp(kind, "refused")) {
                err_set(e, 422, "guard_refused", "%s refused: %s",
                        json_string_value(json_object_get(result, "plugin")),
                        json_string_value(json_object_get(result, "reason")));
                err_detail(e, "plugin", json_incref(json_object_get(result, "plugin")));
                err_detail(e, "version", json_incref(json_object_get(result, "version")));
                err_detail(e, "reason", json_incref(json_object_get(result, "reason")));
                json_decref(allowed);
                json_decref(result);
                atomic_fetch_add(&m_transitions_refused, 1);
                return -1;
            }
            if (!strcmp(kind, "plugin_error") || !strcmp(kind, "plugin_memory")) {
                process_plugin_failed(result, e);
                json_decref(allowed);
                json_decref(result);
                return -1;
            }
            int r2;
            if (!strcmp(kind, "stage_unused"))
                r2 = (err_set(e, 409, "transition_not_allowed", "program '%s' does not use stage '%s'", c.program, in->to), conflict(e, allowed));
            else if (!strcmp(kind, "unknown_program"))
                r2 = (err_set(e, 409, "program_unavailable", "no loaded plugin defines program '%s' (case %s)", c.program, c.id), conflict(e, allowed));
            else
                r2 = (err_set(e, 409, "transition_not_allowed", "%s cannot move to '%s' from here", c.id, in->to), conflict(e, allowed));
            if (!strcmp(kind, "not_allowed") || !strcmp(kind, "stage_unused"))
                err_detail(e, "from", json_string(c.stage));
            json_decref(result);
            return r2;
        }
    }
    char from[32], to_buf[32];
    snprintf(from, sizeof from, "%s", c.stage);
    snprintf(to_buf, sizeof to_buf, "%s", to_stage);
    to_stage = to_buf;
    snprintf(c.stage, sizeof c.stage, "%s", to_buf);
    if (end) snprintf(c.status, sizeof c.status, "ended");
    else if (!strcmp(to_stage, "follow_up")) snprintf(c.status, sizeof c.status, "follow_up");
    else snprintf(c.status, sizeof c.status, "open");
    snprintf(c.generation, sizeof c.generation, "%s", luavm_generation(vm));
    int rc = store_case_update(tx, &c, e);
    if (!rc) {
        event_in ev = {.case_id = c.id, .actor = p->user, .type = event_type, .from_stage = from,
                       .to_stage = to_stage, .data = in->data, .note = in->note, .generation = c.generation};
        rc = store_event_append(tx, &ev, e);
    }
    if (!rc && result) rc = process_apply_deadlines(tx, &c, json_object_get(result, "effects"), e);
    if (!rc && end) rc = store_deadline_clear(tx, c.id, NULL, e); /* nothing is due on an ended case */
    if (!rc && c.referral_id[0]) rc = process_referral_case_moved(tx, vm, &c, e);
    json_decref(result);
    if (rc) return -1;
    *cp = c;
    return 0;
}

static int work_transition(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    transition_arg *a = arg;
    case_row c;
    if (store_case_load(tx, a->p, a->id, &c, e)) return -1;
    if (c.version != a->in->version) {
        err_set(e, 412, "version_mismatch", "the case is at version %d, not %d; reload it", c.version,
                a->in->version);
        err_detail(e, "version", json_integer(c.version));
        atomic_fetch_add(&m_transitions_conflict, 1);
        return -1;
    }
    if (process_apply_transition(tx, a->vm, a->p, &c, a->in, a->prepared, e)) return -1;
    reply->status = 200;
    return process_case_render(tx, a->vm, &c, &reply->body, e);
}

static int work_load(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    transition_arg *a = arg;
    case_row c;
    if (store_case_load(tx, a->p, a->id, &c, e)) return -1;
    reply->body = store_case_json(&c);
    json_object_set_new(reply->body, "region", json_string(c.region));
    return 0;
}

/* The phase before the transaction: rules that must look something up
 * (an agency, later) do it here, bounded by the plugin budget, so that no
 * outbound call ever runs while the database is locked. The transaction
 * re-checks the version, so a case that moved meanwhile gets its 412. */
static int prepare_phase(transition_arg *a, err_t *e)
{
    json_t *any = NULL;
    if (luavm_call(a->vm, "any_prepare", NULL, &any, e)) return -1;
    bool needed = json_is_true(any);
    json_decref(any);
    if (!needed) return 0;
    store_reply loaded = {0};
    if (store_read(work_load, a, &loaded, e)) return -1;
    char today[11];
    date_today_str(today);
    json_t *args = json_pack("{s:o, s:s, s:o, s:s?, s:b, s:s}", "case", loaded.body, "to", a->in->to, "data",
                             a->in->data ? json_incref(a->in->data) : json_object(), "note", a->in->note,
                             "reopen", a->in->reopen, "today", today);
    loaded.body = NULL;
    json_t *result = NULL;
    /* Bounded by the request: look-ups may take what a request may. */
    int rc = luavm_call_lookup(a->vm, "prepare", args, &result, g_cfg.request_timeout_ms / 2, e);
    json_decref(args);
    if (rc) return -1;
    if (!json_is_true(json_object_get(result, "ok"))) {
        /* An agency that did not answer is the agency's fault, named: 503. */
        if (!luavm_take_http_error(a->vm, e)) process_plugin_failed(result, e);
        json_decref(result);
        return -1;
    }
    a->prepared = json_incref(json_object_get(result, "prepared"));
    json_decref(result);
    return 0;
}

int process_case_transition(const principal *p, const char *id, const transition_in *in,
                            const store_idem *idem, store_reply *reply, err_t *e)
{
    if (strcmp(in->to, "end") && !process_stage_known(in->to)) {
        err_set(e, 400, "validation_failed", "to: '%s' is not a standard stage (or \"end\")", in->to);
        err_detail(e, "field", json_string("to"));
        json_t *stages = json_array();
        for (int i = 0; i < N_STAGES; i++) json_array_append_new(stages, json_string(STAGES[i]));
        json_array_append_new(stages, json_string("end"));
        err_detail(e, "allowed", stages);
        return -1;
    }
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    transition_arg a = {p, id, in, vm, NULL};
    if (prepare_phase(&a, e)) return -1;
    int rc = store_write(idem, work_transition, &a, reply, e);
    json_decref(a.prepared);
    if (!rc && !reply->replayed) atomic_fetch_add(&m_transitions_ok, 1);
    if (!rc) outbound_kick(); /* a referred case's step may have queued a message */
    return rc;
}

/* ---- reads ---- */
typedef struct {
    const principal *p;
    const char *id;
    const case_query *q;
    int limit;
    const char *after;
    luavm *vm;
} read_arg;

static int work_get(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    read_arg *a = arg;
    case_row c;
    if (store_case_load(tx, a->p, a->id, &c, e)) return -1;
    reply->status = 200;
    return process_case_render(tx, a->vm, &c, &reply->body, e);
}

int process_case_get(const principal *p, const char *id, store_reply *reply, err_t *e)
{
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    read_arg a = {.p = p, .id = id, .vm = vm};
    return store_read(work_get, &a, reply, e);
}

static int work_list(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    read_arg *a = arg;
    reply->status = 200;
    if (store_case_list(tx, a->p, a->q, &reply->body, e)) return -1;
    /* Labels: one call per (program, region) on the page. */
    json_t *cache = json_object();
    size_t i;
    json_t *item;
    int rc = 0;
    json_array_foreach(json_object_get(reply->body, "items"), i, item) {
        const char *prog = json_string_value(json_object_get(item, "program"));
        const char *region = json_string_value(json_object_get(item, "region"));
        char key[128];
        snprintf(key, sizeof key, "%s@%s", prog, region);
        json_t *labels = json_object_get(cache, key);
        if (!labels) {
            json_t *arg2 = json_pack("{s:s, s:s}", "program", prog, "region", region);
            rc = luavm_call(a->vm, "labels_of", arg2, &labels, e);
            json_decref(arg2);
            if (rc) break;
            json_object_set_new(cache, key, labels);
        }
        json_t *label = json_object_get(labels, json_string_value(json_object_get(item, "stage")));
        json_object_set_new(item, "stage_label", json_is_string(label) ? json_incref(label) : json_null());
    }
    json_decref(cache);
    return rc;
}

int process_case_list(const principal *p, const case_query *q, store_reply *reply, err_t *e)
{
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    read_arg a = {.p = p, .q = q, .vm = vm};
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
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    json_t *arg = json_pack("{s:s, s:s?}", "program", id, "region", region), *out = NULL;
    int rc = luavm_call(vm, "describe_of", arg, &out, e);
    json_decref(arg);
    if (rc) return -1;
    if (!json_is_object(out)) {
        json_decref(out);
        err_set(e, 404, "not_found", "no program '%s'", id);
        return -1;
    }
    json_object_set_new(out, "generation", json_string(luavm_generation(vm)));
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

/* ---- the audit trail ---- */
static int work_audit(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    return store_audit_append(tx, arg, e);
}

int process_audit(const audit_entry *a, err_t *e)
{
    store_reply reply = {0};
    return store_write(NULL, work_audit, (void *)a, &reply, e);
}

static int work_audit_list(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    reply->status = 200;
    return store_audit_list(tx, arg, &reply->body, e);
}

int process_audit_list(const audit_query *q, store_reply *reply, err_t *e)
{
    return store_read(work_audit_list, (void *)q, reply, e);
}

typedef struct {
    long long records, broken_at;
} verify_arg;

static int work_audit_verify(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    verify_arg *v = arg;
    return store_audit_verify(tx, &v->records, &v->broken_at, e);
}

int process_audit_verify(long long *records, long long *broken_at, err_t *e)
{
    verify_arg v = {0, 0};
    store_reply reply = {0};
    int rc = store_read(work_audit_verify, &v, &reply, e);
    *records = v.records;
    *broken_at = v.broken_at;
    return rc;
}

typedef struct {
    const principal *p;
    int limit;
    const char *after;
} export_arg;

static int work_export(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    export_arg *a = arg;
    reply->status = 200;
    return store_case_export(tx, a->p, a->limit, a->after, &reply->body, e);
}

int process_case_export(const principal *p, int limit, const char *after, store_reply *reply, err_t *e)
{
    export_arg a = {p, limit, after};
    return store_read(work_export, &a, reply, e);
}
