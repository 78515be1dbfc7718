/*
 * engine.c: the standard process. The ten stages, and the three ways a
 * case changes: it opens, it moves, and work is recorded on it (counseling,
 * assessments, plans and their approval, services, checks, closure,
 * follow-ups, conferences).
 *
 * Every change is made in two steps. Decide: on a read snapshot, the core
 * checks its own invariants and asks the rules (core/rules), which answer a
 * verdict; no lock is held, and a slow rule slows only its own request.
 * Apply: a unit of work on the store's writer re-checks the case version
 * the verdict was decided on and writes the verdict's effects (the row, the
 * event, deadlines, messages to agencies) — plain C, no plugin code. A case
 * that changed in between is decided again; a client's stale version is a
 * 412.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "outbound/outbound.h"
#include "process/internal.h"
#include "render/render.h"
#include "store/resources.h"
#include "store/store.h"

static const char *const STAGES[] = {
    "discovery", "initial_counseling", "intake",   "assessment", "selection",
    "planning",  "delivery",           "monitoring", "closure",  "follow_up",
};
#define N_STAGES ((int)(sizeof STAGES / sizeof STAGES[0]))

const char *process_stage_id(int i) { return i >= 0 && i < N_STAGES ? STAGES[i] : NULL; }

bool process_stage_known(const char *stage)
{
    for (int i = 0; i < N_STAGES; i++)
        if (!strcmp(STAGES[i], stage)) return true;
    return false;
}

static atomic_ulong m_applied, m_refused, m_conflict;

char *engine_metrics(void)
{
    char *s = NULL;
    if (asprintf(&s,
                 "# HELP sarye_transitions_total Case transitions by outcome.\n"
                 "# TYPE sarye_transitions_total counter\n"
                 "sarye_transitions_total{outcome=\"applied\"} %lu\n"
                 "sarye_transitions_total{outcome=\"refused\"} %lu\n"
                 "sarye_transitions_total{outcome=\"conflict\"} %lu\n",
                 atomic_load(&m_applied), atomic_load(&m_refused), atomic_load(&m_conflict)) < 0)
        s = NULL;
    return s;
}

/* The case changed between the decision and its write: decide again. */
#define CHANGED_CODE "case_changed"

bool engine_changed(const err_t *e) { return e->status == 409 && !strcmp(e->code, CHANGED_CODE); }

static int changed(err_t *e, const case_row *c)
{
    err_set(e, 409, CHANGED_CODE, "case %s changed while the rules were deciding; retry", c->id);
    return -1;
}

static engine_move_observer g_observer;

void engine_observe_moves(engine_move_observer fn) { g_observer = fn; }

/* ---- reading and rendering ---- */
int engine_case_load(store_tx *tx, const principal *p, const char *id, case_row *c, err_t *e)
{
    store_err se = {0};
    if (store_case_load(tx, p, id, c, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no case '%s'", id);
    return 0;
}

int engine_render(store_tx *tx, const case_row *c, const char *label, json_t **out, err_t *e)
{
    deadline_list due;
    store_err se = {0};
    if (store_case_due(tx, c->id, &due, &se)) return process_store_fail(&se, e);
    char today[11];
    date_today_str(today);
    json_t *j = render_case(c);
    json_object_set_new(j, "stage_label", label ? json_string(label) : json_null());
    json_object_set_new(j, "due", render_dues(&due, today));
    deadline_list_free(&due);
    *out = j;
    return 0;
}

/* A case row written on a version that is no longer the stored one: 412. */
static int case_write_failed(const store_err *se, const case_row *c, err_t *e)
{
    process_store_error(se, e, STORE_STALE, 412, "version_mismatch", "the case changed since version %d; reload it",
                        c->version);
    if (se->kind == STORE_STALE) err_detail(e, "version", json_integer(c->version));
    return -1;
}

static int append_event(store_tx *tx, const event_in *ev, err_t *e)
{
    store_err se = {0};
    return store_event_append(tx, ev, &se) ? process_store_fail(&se, e) : 0;
}

static int touch_case(store_tx *tx, case_row *c, err_t *e)
{
    store_err se = {0};
    return store_case_touch(tx, c, &se) ? case_write_failed(&se, c, e) : 0;
}

/* ---- effects ---- */
static int apply_effects(store_tx *tx, const case_row *c, const rules_effects *fx, err_t *e)
{
    store_err se = {0};
    for (int i = 0; i < fx->n_outbox; i++) { /* topic = the case: its messages keep their order */
        char id[ID_MAX];
        if (store_outbox_enqueue(tx, fx->outbox[i].agency, c->id, "rule", fx->outbox[i].payload, id, &se))
            return process_store_fail(&se, e);
    }
    for (int i = 0; i < fx->n_clear; i++)
        if (store_deadline_clear(tx, c->id, fx->clear[i], &se)) return process_store_fail(&se, e);
    for (int i = 0; i < fx->n_set; i++) {
        const rules_deadline *d = &fx->set[i];
        if (store_deadline_set(tx, c, d->kind, d->label, d->due_on, d->plugin[0] ? d->plugin : NULL, &se))
            return process_store_fail(&se, e);
    }
    return 0;
}

/* ---- the lead organisation (seed 004 주 사례기관) ---- */

/* A lead the rules asked for (ctx.set_lead), made concrete on the
 * snapshot: the organisation named exists, is of the type asked and of the
 * case's region; or, asked by type alone, the one organisation of that type
 * in the region (none or several: the lead stays where it is and the
 * record's result says it waits to be named). The record's result says
 * what was decided. */
static int decide_lead(store_tx *tx, const case_row *c, rules_verdict *v, err_t *e)
{
    rules_effects *fx = &v->effects;
    if (!fx->lead_org[0] && !fx->lead_type[0]) return 0;
    store_err se = {0};
    if (fx->lead_org[0]) {
        org_row o;
        if (store_org_get(tx, fx->lead_org, &o, &se)) {
            process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_org", "no organisation '%s' to lead case %s",
                                fx->lead_org, c->id);
            if (se.kind == STORE_NOT_FOUND) {
                err_detail(e, "field", json_string("lead_org"));
                err_detail(e, "plugin", json_string(fx->lead_plugin));
            }
            return -1;
        }
        bool type_ok = !fx->lead_type[0] || !strcmp(o.type, fx->lead_type);
        bool region_ok = !strcmp(o.region, c->region);
        char type[16];
        str_copy(type, sizeof type, o.type);
        org_row_free(&o);
        if (!type_ok || !region_ok) {
            if (!type_ok)
                err_set(e, 422, "validation_failed", "lead_org: '%s' is a %s organisation; this case type is led by a %s",
                        fx->lead_org, type, fx->lead_type);
            else
                err_set(e, 422, "validation_failed", "lead_org: '%s' is not an organisation of region %s", fx->lead_org,
                        c->region);
            err_detail(e, "field", json_string("lead_org"));
            err_detail(e, "plugin", json_string(fx->lead_plugin));
            return -1;
        }
    } else {
        const char **ids = NULL;
        size_t n = 0;
        if (store_org_ids(tx, c->region, fx->lead_type, &ids, &n, &se)) return process_store_fail(&se, e);
        if (n == 1) str_copy(fx->lead_org, sizeof fx->lead_org, ids[0]);
        free(ids);
    }
    json_t *lead = json_pack("{s:s?, s:s?, s:s?, s:s?, s:b}", "org", fx->lead_org[0] ? fx->lead_org : NULL, "type",
                             fx->lead_type[0] ? fx->lead_type : NULL, "reason",
                             fx->lead_reason[0] ? fx->lead_reason : NULL, "plugin",
                             fx->lead_plugin[0] ? fx->lead_plugin : NULL, "assigned", fx->lead_org[0] != 0);
    if (!json_is_object(v->result)) {
        json_decref(v->result);
        v->result = json_object();
    }
    json_object_set_new(v->result, "lead", lead);
    return 0;
}

/* Hands the case to the lead decided (an event says from whom to whom and
 * why); c follows. */
static int apply_lead(store_tx *tx, const principal *p, case_row *c, const rules_effects *fx, const char *record_id,
                      const char *gen, err_t *e)
{
    if (!fx->lead_org[0]) return 0;
    const char *cur = c->lead_org[0] ? c->lead_org : c->org;
    if (!strcmp(cur, fx->lead_org)) return 0;
    store_err se = {0};
    const char *lead = strcmp(fx->lead_org, c->org) ? fx->lead_org : "";
    if (store_case_set_lead(tx, c->id, lead, &se)) return process_store_fail(&se, e);
    json_t *data = json_pack("{s:s, s:s, s:s?, s:s?, s:s?}", "from", cur, "to", fx->lead_org, "reason",
                             fx->lead_reason[0] ? fx->lead_reason : NULL, "plugin",
                             fx->lead_plugin[0] ? fx->lead_plugin : NULL, "record_id", record_id);
    event_in ev = {.case_id = c->id, .actor = p->user, .type = "lead_changed", .from_stage = c->stage,
                   .to_stage = c->stage, .data = data, .generation = gen};
    int rc = append_event(tx, &ev, e);
    json_decref(data);
    if (!rc) str_copy(c->lead_org, sizeof c->lead_org, lead);
    return rc;
}

/* ---- moves ---- */
/* How a unit that applies a move (or none: NULL) is written: it reads the
 * plan and changes only the store, so it may run again in a batch without
 * savepoints, unless the move brings extra work (a referrer told). */
typedef int (*write_fn)(const store_idem *, store_work_fn, void *, store_reply *, err_t *);
static write_fn move_write(const move_plan *m)
{
    return m && m->extra.fn ? process_write : process_write_rerunnable;
}

void move_plan_free(move_plan *m)
{
    json_decref(m->data);
    rules_verdict_free(&m->v);
    if (m->extra.release) m->extra.release(m->extra.arg);
    memset(m, 0, sizeof *m);
}

static int refused(void)
{
    atomic_fetch_add(&m_refused, 1);
    return -1;
}

static int conflict(err_t *e, json_t *allowed)
{
    err_detail(e, "allowed", allowed ? allowed : json_array());
    atomic_fetch_add(&m_conflict, 1);
    return -1;
}

int engine_decide_move(const rules_facts *facts, const case_row *c, const transition_in *in, json_t *prepared,
                       move_plan *m, err_t *e)
{
    memset(m, 0, sizeof *m);
    /* Core invariants: no plugin can switch these off. */
    bool end = !strcmp(in->to, "end");
    if (!strcmp(c->status, "ended") && !in->reopen)
        return (err_set(e, 409, "case_ended", "case %s has ended; only an explicit reopen moves it", c->id),
                conflict(e, NULL));
    if (in->reopen && (end || !strcmp(c->status, "open")))
        return (err_set(e, 409, "transition_not_allowed",
                        "only a case in follow-up or ended can be reopened (case %s is %s)", c->id, c->status),
                conflict(e, NULL));
    if (end) {
        if (strcmp(c->stage, "closure") && strcmp(c->stage, "follow_up"))
            return (err_set(e, 409, "transition_not_allowed",
                            "a case ends only from closure or follow-up, not from '%s'", c->stage),
                    conflict(e, NULL));
    } else if (!strcmp(in->to, "closure")) {
        json_t *reason = json_object_get(in->data, "reason");
        if (!json_is_string(reason) || json_string_length(reason) == 0) {
            err_set(e, 422, "reason_required",
                    "closing a case needs data.reason (목표달성, 사망, 전출, 거부, 연락두절, 이관 ...)");
            err_detail(e, "field", json_string("data.reason"));
            err_detail(e, "plugin", json_string("core"));
            return refused();
        }
    }
    m->before = *c;
    m->after = *c;
    if (!end) {
        rules_move_in mi = {in->to, in->reopen, in->data, in->note, prepared};
        if (rules_move(facts, c, &mi, &m->v)) {
            rules_error(&m->v, RULES_ASK_MOVE, c, in->to, e);
            if (m->v.outcome == RULES_REFUSED) refused();
            if (m->v.outcome == RULES_NOT_ALLOWED || m->v.outcome == RULES_STAGE_UNUSED ||
                m->v.outcome == RULES_UNKNOWN_PROGRAM)
                atomic_fetch_add(&m_conflict, 1);
            rules_verdict_free(&m->v);
            return -1;
        }
    } else {
        /* Ending keeps the stage and its label. */
        const char *label = rules_label(c->program, c->region, c->stage);
        str_copy(m->v.label, sizeof m->v.label, label ? label : "");
    }
    str_copy(m->event_type, sizeof m->event_type, in->reopen ? "reopened" : end ? "ended" : "transition");
    if (!end) str_copy(m->after.stage, sizeof m->after.stage, in->to);
    str_copy(m->after.status, sizeof m->after.status,
             end ? "ended" : !strcmp(in->to, "follow_up") ? "follow_up" : "open");
    /* The generation that decided; an end (no rules asked) keeps the case's. */
    if (!end) str_copy(m->after.generation, sizeof m->after.generation, m->v.generation);
    else rules_generation_for(c->generation, m->after.generation);
    m->after.version = c->version + 1;
    m->data = in->data ? json_incref(in->data) : NULL;
    str_copy(m->note, sizeof m->note, in->note ? in->note : "");
    m->clear_all = end;
    /* A case opened from a referral: what its referrer hears of the move. */
    if (c->referral_id[0] && g_observer && facts->tx && g_observer(facts->tx, &m->after, &m->extra, e)) {
        move_plan_free(m);
        return -1;
    }
    return 0;
}

int engine_apply_move(store_tx *tx, const principal *p, case_row *c, move_plan *m, err_t *e)
{
    if (c->version != m->before.version) return changed(e, c);
    case_row after = m->after;
    after.version = c->version; /* store_case_update checks and bumps it */
    snprintf(after.assigned_to, sizeof after.assigned_to, "%s", c->assigned_to);
    store_err se = {0};
    if (store_case_update(tx, &after, &se)) return case_write_failed(&se, &after, e);
    event_in ev = {.case_id = c->id, .actor = p->user, .type = m->event_type, .from_stage = m->before.stage,
                   .to_stage = after.stage, .data = m->data, .note = m->note[0] ? m->note : NULL,
                   .generation = after.generation};
    if (append_event(tx, &ev, e)) return -1;
    if (apply_effects(tx, &after, &m->v.effects, e)) return -1;
    if (m->clear_all && store_deadline_clear(tx, c->id, NULL, &se)) /* nothing is due on an ended case */
        return process_store_fail(&se, e);
    if (m->extra.fn && m->extra.fn(tx, m->extra.arg, e)) return -1;
    *c = after;
    return 0;
}

/* ---- transitions ---- */
typedef struct {
    const principal *p;
    const char *id;
    const transition_in *in;
    json_t *prepared;
    move_plan m;
    case_row seen;
    bool decided; /* in the snapshot that first read the case */
} transition_arg;

static int decide_loaded(store_tx *tx, transition_arg *a, case_row *c, err_t *e);

static int decide_transition(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    transition_arg *a = arg;
    case_row c;
    if (engine_case_load(tx, a->p, a->id, &c, e)) return -1;
    return decide_loaded(tx, a, &c, e);
}

/* The move of case c, read in tx's snapshot. */
static int decide_loaded(store_tx *tx, transition_arg *a, case_row *c, err_t *e)
{
    if (c->version != a->in->version) {
        err_set(e, 412, "version_mismatch", "the case is at version %d, not %d; reload it", c->version, a->in->version);
        err_detail(e, "version", json_integer(c->version));
        atomic_fetch_add(&m_conflict, 1);
        return -1;
    }
    rules_facts facts = {.tx = tx, .viewer = a->p};
    return engine_decide_move(&facts, c, a->in, a->prepared, &a->m, e);
}

static int apply_transition(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    transition_arg *a = arg;
    /* The case as the decision read it, not read again: the update writes
     * only if the case is still at that version (every change bumps it). */
    case_row c = a->m.before;
    if (engine_apply_move(tx, a->p, &c, &a->m, e)) {
        if (e->status != 412 || strcmp(e->code, "version_mismatch")) return -1;
        /* Another write won the race: the client's version is stale now, and
         * the answer says which version the case is at (or that it is gone). */
        err_t now_e = {0};
        if (engine_case_load(tx, a->p, a->id, &c, &now_e)) {
            err_clear(e);
            *e = now_e;
            return -1;
        }
        err_clear(e);
        err_set(e, 412, "version_mismatch", "the case is at version %d, not %d; reload it", c.version, a->in->version);
        err_detail(e, "version", json_integer(c.version));
        return -1;
    }
    reply->status = 200;
    return engine_render(tx, &c, a->m.v.label, &reply->body, e);
}

/* Reads the case; when no plugin of its generation prepares a move (known
 * to this thread), decides the move in the same snapshot. */
static int work_load(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    transition_arg *a = arg;
    if (engine_case_load(tx, a->p, a->id, &a->seen, e)) return -1;
    if (rules_may_prepare(&a->seen, a->in->reopen)) return 0;
    (void)reply;
    a->decided = true;
    return decide_loaded(tx, a, &a->seen, e);
}

/* Before any snapshot: rules that look something up (an agency) do it
 * here, bounded by the request, so that no outbound call ever runs while a
 * write waits. The decision re-reads the case, so a case that moved
 * meanwhile gets its 412. */
static int prepare_phase(transition_arg *a, err_t *e)
{
    store_reply none = {0};
    if (process_read(work_load, a, &none, e)) return -1;
    if (a->decided) return 0;
    rules_move_in mi = {a->in->to, a->in->reopen, a->in->data, a->in->note, NULL};
    rules_verdict v;
    if (rules_prepare(a->p, &a->seen, &mi, &a->prepared, &v)) {
        rules_error(&v, RULES_ASK_LOOKUP, &a->seen, a->in->to, e);
        rules_verdict_free(&v);
        return -1;
    }
    rules_verdict_free(&v);
    return 0;
}

int process_case_transition(const principal *p, const char *id, const transition_in *in, const store_idem *idem,
                            store_reply *reply, err_t *e)
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
    transition_arg a = {.p = p, .id = id, .in = in};
    /* A repeated request answers as the first did, before any rule runs. */
    if (idem && process_replay(idem, reply, e)) return reply->replayed ? 0 : -1;
    int rc = prepare_phase(&a, e);
    store_reply none = {0};
    if (!rc && !a.decided) rc = process_read(decide_transition, &a, &none, e);
    if (!rc) rc = move_write(&a.m)(idem, apply_transition, &a, reply, e);
    /* Rules' messages, or a referred case's step (its extra work), may have
     * queued a message: only then is the sender woken (it looked for due
     * messages after every move, a twentieth of a move's CPU). */
    bool queued = a.m.v.effects.n_outbox > 0 || a.m.extra.fn;
    move_plan_free(&a.m);
    json_decref(a.prepared);
    if (!rc && !reply->replayed) atomic_fetch_add(&m_applied, 1);
    if (!rc && queued) outbound_kick();
    return rc;
}

/* ---- opening ---- */
void open_plan_free(open_plan *o)
{
    rules_verdict_free(&o->v);
    json_decref(o->cache);
    json_decref(o->person);
    memset(o, 0, sizeof *o);
}

int engine_decide_open(const rules_facts *facts, const principal *p, const case_open_in *in, json_t *person,
                       open_plan *o, err_t *e)
{
    store_tx *tx = facts->tx;
    store_err se = {0};
    if (!person) {
        person_row row;
        if (store_person_get(tx, p, in->person_id, &row, &se)) {
            process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_person", "no person '%s'", in->person_id);
            if (se.kind == STORE_NOT_FOUND) err_detail(e, "field", json_string("person_id"));
            return -1;
        }
        o->person = render_person(&row);
        person_row_free(&row);
    } else {
        o->person = json_incref(person);
    }
    bool offers = false;
    if (store_org_offers(tx, in->org, in->program, &offers, &se)) return process_store_fail(&se, e);
    if (!offers) {
        err_set(e, 422, "program_not_offered", "organisation '%s' does not run program '%s'", in->org, in->program);
        err_detail(e, "field", json_string("program"));
        return -1;
    }
    case_row *c = &o->c;
    memset(c, 0, sizeof *c);
    id_new("cas_", c->id);
    str_copy(c->person_id, sizeof c->person_id, in->person_id);
    str_copy(c->program, sizeof c->program, in->program);
    str_copy(c->org, sizeof c->org, in->org);
    str_copy(c->region, sizeof c->region, p->region);
    str_copy(c->source, sizeof c->source, in->source);
    if (in->referral_id) str_copy(c->referral_id, sizeof c->referral_id, in->referral_id);
    /* who works it: the worker named, or whoever opens it */
    if (in->assigned_to && process_assignee_check(tx, in->org, in->assigned_to, e)) return -1;
    str_copy(c->assigned_to, sizeof c->assigned_to, in->assigned_to ? in->assigned_to : p->user);
    str_copy(c->status, sizeof c->status, "open");
    c->version = 1;
    if (rules_open(facts, c, o->person, in->lookups, &o->v)) {
        rules_error(&o->v, RULES_ASK_OPEN, c, NULL, e);
        return -1;
    }
    str_copy(c->stage, sizeof c->stage, o->v.first_stage);
    str_copy(c->generation, sizeof c->generation, o->v.generation);
    o->cache = in->cache ? json_incref(in->cache) : NULL;
    return 0;
}

int engine_apply_open(store_tx *tx, const principal *p, open_plan *o, err_t *e)
{
    case_row *c = &o->c;
    time_rfc3339(time_now_ms(), c->opened_at);
    store_err se = {0};
    if (store_case_insert(tx, c, &se)) return process_store_fail(&se, e);
    /* Facts an agency answered before opening stay on the person, dated. */
    if (json_array_size(o->cache)) {
        char today[11];
        date_today_str(today);
        json_t *elig = json_deep_copy(json_object_get(o->person, "eligibility"));
        if (!json_is_object(elig)) {
            json_decref(elig);
            elig = json_object();
        }
        size_t i;
        json_t *entry;
        json_array_foreach(o->cache, i, entry) {
            json_t *facts = json_deep_copy(json_object_get(entry, "facts"));
            json_object_set_new(facts, "checked_on", json_string(today));
            json_object_set_new(elig, json_string_value(json_object_get(entry, "key")), facts);
        }
        int rc = store_person_set_eligibility(tx, p, c->person_id, elig, NULL, &se);
        json_decref(elig);
        if (rc)
            return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no person '%s'", c->person_id);
    }
    json_t *data = json_pack("{s:s, s:o, s:s}", "source", c->source, "referral_id",
                             c->referral_id[0] ? json_string(c->referral_id) : json_null(), "assigned_to",
                             c->assigned_to);
    event_in ev = {.case_id = c->id, .actor = p->user, .type = "opened", .to_stage = c->stage, .data = data,
                   .generation = c->generation};
    int rc = append_event(tx, &ev, e);
    json_decref(data);
    if (!rc) rc = apply_effects(tx, c, &o->v.effects, e);
    return rc;
}

typedef struct {
    const principal *p;
    case_open_in *in;
    open_plan o;
} open_arg;

static int decide_open(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    open_arg *a = arg;
    rules_facts facts = {.tx = tx, .viewer = a->p};
    return engine_decide_open(&facts, a->p, a->in, NULL, &a->o, e);
}

static int apply_open(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    open_arg *a = arg;
    if (engine_apply_open(tx, a->p, &a->o, e)) return -1;
    reply->status = 201;
    return engine_render(tx, &a->o.c, a->o.v.label, &reply->body, e);
}

static int work_person(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    const open_arg *a = arg;
    person_row row;
    store_err se = {0};
    if (store_person_get(tx, a->p, a->in->person_id, &row, &se)) {
        process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_person", "no person '%s'", a->in->person_id);
        if (se.kind == STORE_NOT_FOUND) err_detail(e, "field", json_string("person_id"));
        return -1;
    }
    reply->body = render_person(&row);
    person_row_free(&row);
    return 0;
}

/* Before any snapshot: the look-ups the program's rules ask for, each
 * bounded by the request. */
static int open_lookups(open_arg *a, err_t *e)
{
    if (!rules_needs_lookup(a->in->program, a->p->region)) return 0;
    store_reply person = {0};
    if (process_read(work_person, a, &person, e)) return -1;
    case_row proposal = {0};
    str_copy(proposal.person_id, sizeof proposal.person_id, a->in->person_id);
    str_copy(proposal.program, sizeof proposal.program, a->in->program);
    str_copy(proposal.region, sizeof proposal.region, a->p->region);
    str_copy(proposal.org, sizeof proposal.org, a->in->org);
    str_copy(proposal.source, sizeof proposal.source, a->in->source);
    str_copy(proposal.status, sizeof proposal.status, "open");
    rules_verdict v;
    int rc = rules_lookup(a->p, &proposal, person.body, &a->in->lookups, &a->in->cache, &v);
    if (rc) rules_error(&v, RULES_ASK_LOOKUP, &proposal, NULL, e);
    rules_verdict_free(&v);
    store_reply_clear(&person);
    return rc;
}

int process_case_open(const principal *p, const case_open_in *in, const store_idem *idem, store_reply *reply,
                      err_t *e)
{
    if (strcmp(in->org, p->org)) {
        err_set(e, 403, "forbidden", "cases are opened by their own organisation ('%s'), not '%s'", p->org, in->org);
        err_detail(e, "field", json_string("org"));
        return -1;
    }
    if (idem && process_replay(idem, reply, e)) return reply->replayed ? 0 : -1;
    case_open_in with = *in;
    open_arg a = {.p = p, .in = &with};
    int rc = open_lookups(&a, e);
    store_reply none = {0};
    if (!rc) rc = process_read(decide_open, &a, &none, e);
    if (!rc) rc = process_write_rerunnable(idem, apply_open, &a, reply, e); /* reads the plan only */
    open_plan_free(&a.o);
    json_decref(with.lookups);
    json_decref(with.cache);
    return rc;
}

/* ---- case work ---- */

/* A record on a case and what follows it (a move the rules asked for, or
 * closure's move into the closure stage), decided together. */
typedef struct {
    const principal *p;
    const char *case_id;
    const record_post *in;        /* NULL for a plan approval */
    const char *plan_id;          /* a plan approval */
    case_row c;                   /* as decided on */
    char record_id[ID_MAX];       /* chosen at decision time */
    json_t *record;               /* the plan being approved (as stored) */
    rules_verdict v;              /* the record's verdict */
    bool then;                    /* a follow-on move was decided */
    move_plan m;
    char label[256];              /* the case's label after all */
    char gen[17];                 /* the generation that decided */
} work_arg;

static void work_reset(work_arg *a)
{
    rules_verdict_free(&a->v);
    move_plan_free(&a->m);
    json_decref(a->record);
    a->record = NULL;
    a->then = false;
}

/* The follow-on move of a record: the rules' move or end, or closure's
 * move into its stage; decided on the case as the record leaves it. */
static int decide_follow_on(store_tx *tx, work_arg *a, json_t *pending_records, err_t *e)
{
    const char *to = NULL, *note = NULL;
    json_t *data = NULL;
    if (a->v.move[0] || a->v.end_case) {
        to = a->v.move[0] ? a->v.move : "end";
        note = a->v.move[0] ? "requested by a record" : "the follow-up schedule is complete";
        data = json_pack("{s:s}", "record_id", a->record_id);
    } else if (a->in && a->in->move_to) {
        to = a->in->move_to;
        note = a->in->note;
        data = json_incref(a->in->data);
    } else {
        const char *label = rules_label(a->c.program, a->c.region, a->c.stage);
        str_copy(a->label, sizeof a->label, label ? label : "");
        return 0;
    }
    case_row after = a->c;
    after.version++; /* the record bumps it first */
    transition_in t = {.to = to, .version = after.version, .data = data, .note = note};
    rules_facts facts = {.tx = tx, .viewer = a->p, .case_id = a->c.id, .pending_records = pending_records,
                         .pending_deadlines = &a->v.effects};
    int rc = engine_decide_move(&facts, &after, &t, NULL, &a->m, e);
    json_decref(data);
    if (rc) return -1;
    a->then = true;
    str_copy(a->label, sizeof a->label, a->m.v.label);
    return 0;
}

static int load_open_case(store_tx *tx, const principal *p, const char *id, case_row *c, err_t *e)
{
    if (engine_case_load(tx, p, id, c, e)) return -1;
    if (!strcmp(c->status, "ended")) {
        err_set(e, 409, "case_ended", "case %s has ended; reopen it before recording work on it", c->id);
        return -1;
    }
    return 0;
}

/* A plan's services may name resources of the registry (seed 003 자원에
 * 대한 서비스 의뢰): each must be one the worker sees. */
static int plan_resources_known(store_tx *tx, const principal *p, json_t *plan, err_t *e)
{
    char today[11];
    date_today_str(today);
    size_t i, j;
    json_t *g, *svc;
    json_array_foreach(json_object_get(plan, "goals"), i, g) {
        json_array_foreach(json_object_get(g, "services"), j, svc) {
            const char *rid = json_string_value(json_object_get(svc, "resource_id"));
            if (!rid) continue;
            resource_row r;
            store_err se = {0};
            if (store_resource_get(tx, p, rid, today, &r, &se)) {
                process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_resource", "no resource '%s'", rid);
                if (se.kind == STORE_NOT_FOUND)
                    err_detail(e, "field", json_sprintf("goals[%zu].services[%zu].resource_id", i, j));
                return -1;
            }
            resource_row_free(&r);
        }
    }
    return 0;
}

static int decide_record(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    work_arg *a = arg;
    const record_post *in = a->in;
    if (load_open_case(tx, a->p, a->case_id, &a->c, e)) return -1;
    if (!strcmp(in->kind, "plan") && plan_resources_known(tx, a->p, in->data, e)) return -1;
    rules_facts facts = {.tx = tx, .viewer = a->p};
    if (rules_record(&facts, &a->c, in->kind, in->subkind, in->data, &a->v)) {
        rules_error(&a->v, RULES_ASK_RECORD, &a->c, NULL, e);
        return -1;
    }
    str_copy(a->gen, sizeof a->gen, a->v.generation);
    if (decide_lead(tx, &a->c, &a->v, e)) return -1;
    id_new("rec_", a->record_id);
    char today[11];
    date_today_str(today);
    json_t *pending = json_pack("[{s:s, s:s, s:s?, s:s?, s:O, s:O?, s:s}]", "id", a->record_id, "kind", in->kind,
                                "subkind", in->subkind, "status", in->status, "data", in->data, "result",
                                a->v.result, "recorded_on", today);
    int rc = decide_follow_on(tx, a, pending, e);
    json_decref(pending);
    return rc;
}

/* A record of the case as the API shows it, with the case after the work:
 * every answer of case work carries the case's new version. */
static int record_answer(store_tx *tx, const case_row *c, const char *id, const char *label, json_t **out, err_t *e)
{
    record_row r;
    store_err se = {0};
    json_t *cj = NULL;
    if (store_record_get(tx, c->id, id, &r, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no record '%s' on case '%s'", id,
                                   c->id);
    json_t *record = render_record(&r);
    record_row_free(&r);
    if (engine_render(tx, c, label, &cj, e)) {
        json_decref(record);
        return -1;
    }
    json_object_set_new(record, "case", cj);
    *out = record;
    return 0;
}

/* The unit of a record: the case is as decided, the record and its event,
 * its effects, the version bumped, then the follow-on move. */
static int apply_record(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    work_arg *a = arg;
    const record_post *in = a->in;
    case_row c;
    if (load_open_case(tx, a->p, a->case_id, &c, e)) return -1;
    if (c.version != a->c.version) return changed(e, &c);
    record_in rec = {.id = a->record_id, .case_id = c.id, .org = c.org, .kind = in->kind, .subkind = in->subkind,
                     .status = in->status, .by = a->p->user, .data = in->data, .result = a->v.result};
    char id[ID_MAX];
    store_err se = {0};
    if (store_record_insert(tx, &rec, id, &se)) return process_store_fail(&se, e);
    json_t *data = json_pack("{s:s, s:s, s:s?}", "kind", in->kind, "record_id", id, "subkind", in->subkind);
    event_in ev = {.case_id = c.id, .actor = a->p->user, .type = "record", .from_stage = c.stage,
                   .to_stage = c.stage, .data = data, .generation = a->gen};
    int rc = append_event(tx, &ev, e);
    json_decref(data);
    if (!rc) rc = apply_effects(tx, &c, &a->v.effects, e);
    if (!rc) rc = apply_lead(tx, a->p, &c, &a->v.effects, id, a->gen, e);
    if (!rc) rc = touch_case(tx, &c, e);
    char lead[64];
    str_copy(lead, sizeof lead, c.lead_org);
    if (!rc && a->then) rc = engine_apply_move(tx, a->p, &c, &a->m, e);
    str_copy(c.lead_org, sizeof c.lead_org, lead);
    if (rc || record_answer(tx, &c, id, a->label, &reply->body, e)) return -1;
    reply->status = 201;
    return 0;
}

/* Decides and applies, deciding again when the case changed in between. */
static int decide_and_apply(work_arg *a, store_work_fn decide, store_work_fn apply, const store_idem *idem,
                            store_reply *reply, err_t *e)
{
    if (idem && process_replay(idem, reply, e)) return reply->replayed ? 0 : -1;
    for (int attempt = 0;; attempt++) {
        store_reply none = {0};
        int rc = process_read(decide, a, &none, e);
        /* apply_record and apply_approve, like a move, read a and write
         * through tx and reply only. */
        if (!rc) rc = move_write(a->then ? &a->m : NULL)(idem, apply, a, reply, e);
        work_reset(a);
        if (!rc || !engine_changed(e) || attempt + 1 == ENGINE_RETRIES) {
            if (rc && engine_changed(e)) err_detail(e, "retries", json_integer(ENGINE_RETRIES));
            if (!rc) outbound_kick();
            return rc;
        }
        err_clear(e);
    }
}

int process_record(const principal *p, const char *case_id, const record_post *in, const store_idem *idem,
                   store_reply *reply, err_t *e)
{
    work_arg a = {.p = p, .case_id = case_id, .in = in};
    return decide_and_apply(&a, decide_record, apply_record, idem, reply, e);
}

/* ---- plan approval ---- */
static int decide_approve(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    work_arg *a = arg;
    if (load_open_case(tx, a->p, a->case_id, &a->c, e)) return -1;
    record_row plan;
    store_err se = {0};
    if (store_record_get(tx, a->c.id, a->plan_id, &plan, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no record '%s' on case '%s'",
                                   a->plan_id, a->c.id);
    a->record = render_record(&plan); /* the plan as the rules see it */
    bool is_plan = !strcmp(plan.kind, "plan");
    char status[32];
    str_copy(status, sizeof status, plan.status ? plan.status : "?");
    record_row_free(&plan);
    if (!is_plan) {
        err_set(e, 404, "not_found", "no plan '%s' on case '%s'", a->plan_id, a->c.id);
        return -1;
    }
    if (strcmp(status, "draft")) {
        err_set(e, 409, "plan_not_draft", "plan %s is %s; only a draft is approved", a->plan_id, status);
        return -1;
    }
    rules_facts facts = {.tx = tx, .viewer = a->p};
    if (rules_record(&facts, &a->c, "plan_approval", NULL, a->record, &a->v)) {
        rules_error(&a->v, RULES_ASK_RECORD, &a->c, NULL, e);
        return -1;
    }
    str_copy(a->gen, sizeof a->gen, a->v.generation);
    str_copy(a->record_id, sizeof a->record_id, a->plan_id);
    /* What follows sees the plan approved. */
    json_t *approved = json_deep_copy(a->record);
    json_object_set_new(approved, "status", json_string("approved"));
    json_t *pending = json_pack("[o]", approved);
    int rc = decide_follow_on(tx, a, pending, e);
    json_decref(pending);
    return rc;
}

static int apply_approve(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    work_arg *a = arg;
    case_row c;
    if (load_open_case(tx, a->p, a->case_id, &c, e)) return -1;
    if (c.version != a->c.version) return changed(e, &c);
    store_err se = {0};
    if (store_record_decide(tx, a->plan_id, "approved", a->p->user, &se) ||
        store_record_supersede(tx, c.id, "plan", "approved", a->plan_id, &se))
        return process_store_fail(&se, e);
    json_t *data = json_pack("{s:s}", "plan_id", a->plan_id);
    event_in ev = {.case_id = c.id, .actor = a->p->user, .type = "plan_approved", .from_stage = c.stage,
                   .to_stage = c.stage, .data = data, .generation = a->gen};
    int rc = append_event(tx, &ev, e);
    json_decref(data);
    if (!rc) rc = apply_effects(tx, &c, &a->v.effects, e);
    if (!rc) rc = touch_case(tx, &c, e);
    if (!rc && a->then) rc = engine_apply_move(tx, a->p, &c, &a->m, e);
    if (rc || record_answer(tx, &c, a->plan_id, a->label, &reply->body, e)) return -1;
    reply->status = 200;
    return 0;
}

int process_plan_approve(const principal *p, const char *case_id, const char *plan_id, const store_idem *idem,
                         store_reply *reply, err_t *e)
{
    work_arg a = {.p = p, .case_id = case_id, .plan_id = plan_id};
    return decide_and_apply(&a, decide_approve, apply_approve, idem, reply, e);
}

/* ---- case conferences ---- */

/* A meeting as the API shows it, from what was posted (its case_ids as
 * given, repeats and all). */
static json_t *meeting_json(const meeting_in *in, const char *id, const char *created_at)
{
    size_t n = json_array_size(in->case_ids);
    const char **ids = calloc(n + 1, sizeof *ids);
    if (!ids) return NULL;
    for (size_t i = 0; i < n; i++) ids[i] = json_string_value(json_array_get(in->case_ids, i));
    meeting_row m = {.id = id, .org = in->org, .type = in->type, .held_on = in->held_on, .created_at = created_at,
                     .created_by = in->by, .written = in->written, .participants = in->participants,
                     .decisions = in->decisions, .case_ids = ids, .n_case_ids = n};
    json_t *j = render_meeting(&m);
    free(ids);
    return j;
}
typedef struct {
    const principal *p;
    const meeting_in *in;
    char id[ID_MAX];
    json_t *meeting;  /* as it will be stored */
    int n;
    work_arg *cases;  /* one per case, decided on */
} meeting_arg;

static void meeting_reset(meeting_arg *a)
{
    for (int i = 0; i < a->n; i++) work_reset(&a->cases[i]);
    free(a->cases);
    a->cases = NULL;
    a->n = 0;
    json_decref(a->meeting);
    a->meeting = NULL;
}

static int decide_meeting(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    meeting_arg *a = arg;
    size_t i;
    json_t *cid;
    a->n = (int)json_array_size(a->in->case_ids);
    a->cases = calloc((size_t)a->n + 1, sizeof *a->cases);
    if (!a->cases) return err_set(e, 503, "overloaded", "out of memory"), -1;
    id_new("mtg_", a->id);
    meeting_in m = *a->in;
    m.org = a->p->org;
    m.by = a->p->user;
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    if (!(a->meeting = meeting_json(&m, a->id, now))) return err_set(e, 503, "overloaded", "out of memory"), -1;
    json_array_foreach(a->in->case_ids, i, cid) {
        work_arg *w = &a->cases[i];
        w->p = a->p;
        w->case_id = json_string_value(cid);
        str_copy(w->record_id, sizeof w->record_id, a->id);
        store_err se = {0};
        if (store_case_load(tx, a->p, w->case_id, &w->c, &se)) {
            process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_case", "no case '%s'", w->case_id);
            if (se.kind == STORE_NOT_FOUND) err_detail(e, "field", json_sprintf("case_ids[%zu]", i));
            return -1;
        }
        rules_generation_for(w->c.generation, w->gen);
        if (!strcmp(w->c.status, "ended")) { /* the conference is on its record; no rules move it */
            const char *label = rules_label(w->c.program, w->c.region, w->c.stage);
            str_copy(w->label, sizeof w->label, label ? label : "");
            continue;
        }
        rules_facts facts = {.tx = tx, .viewer = a->p, .pending_meeting = a->meeting};
        if (rules_record(&facts, &w->c, "meeting", a->in->type, a->meeting, &w->v)) {
            rules_error(&w->v, RULES_ASK_RECORD, &w->c, NULL, e);
            return -1;
        }
        str_copy(w->gen, sizeof w->gen, w->v.generation);
        if (decide_lead(tx, &w->c, &w->v, e)) return -1;
        if (decide_follow_on(tx, w, NULL, e)) return -1;
    }
    return 0;
}

static int apply_meeting(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    meeting_arg *a = arg;
    meeting_in m = *a->in;
    m.org = a->p->org;
    m.by = a->p->user;
    char created_at[RFC3339_MAX];
    store_err se = {0};
    if (store_meeting_insert(tx, &m, a->id, created_at, &se)) return process_store_fail(&se, e);
    json_t *meeting = meeting_json(&m, a->id, created_at), *cases = json_array();
    if (!meeting) {
        json_decref(cases);
        return err_set(e, 503, "overloaded", "out of memory"), -1;
    }
    for (int i = 0; i < a->n; i++) {
        work_arg *w = &a->cases[i];
        case_row c;
        if (engine_case_load(tx, a->p, w->case_id, &c, e)) break;
        if (c.version != w->c.version) {
            changed(e, &c);
            break;
        }
        json_t *data = json_pack("{s:s, s:s}", "meeting_id", a->id, "type", m.type);
        event_in ev = {.case_id = c.id, .actor = a->p->user, .type = "meeting", .from_stage = c.stage,
                       .to_stage = c.stage, .data = data, .generation = w->gen};
        int rc = append_event(tx, &ev, e);
        json_decref(data);
        if (!rc) rc = apply_effects(tx, &c, &w->v.effects, e);
        if (!rc) rc = apply_lead(tx, a->p, &c, &w->v.effects, a->id, w->gen, e);
        if (!rc) rc = touch_case(tx, &c, e);
        char lead[64];
        str_copy(lead, sizeof lead, c.lead_org);
        if (!rc && w->then) rc = engine_apply_move(tx, a->p, &c, &w->m, e);
        str_copy(c.lead_org, sizeof c.lead_org, lead);
        json_t *cj = NULL;
        if (!rc) rc = engine_render(tx, &c, w->label, &cj, e);
        if (rc) break;
        json_array_append_new(cases, cj); /* each case as the conference leaves it (its new version) */
        if (i + 1 == a->n) {
            json_object_set_new(meeting, "cases", cases);
            reply->status = 201;
            reply->body = meeting;
            return 0;
        }
    }
    json_decref(cases);
    json_decref(meeting);
    return -1;
}

int process_meeting(const principal *p, const meeting_in *m, const store_idem *idem, store_reply *reply, err_t *e)
{
    if (idem && process_replay(idem, reply, e)) return reply->replayed ? 0 : -1;
    meeting_arg a = {.p = p, .in = m};
    for (int attempt = 0;; attempt++) {
        store_reply none = {0};
        int rc = process_read(decide_meeting, &a, &none, e);
        if (!rc) rc = process_write(idem, apply_meeting, &a, reply, e);
        meeting_reset(&a);
        if (!rc || !engine_changed(e) || attempt + 1 == ENGINE_RETRIES) {
            if (!rc) outbound_kick();
            return rc;
        }
        err_clear(e);
    }
}
