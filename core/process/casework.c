/*
 * casework.c: the work done on a case between its transitions — initial
 * counseling, assessments, service plans and their approval, services
 * delivered, monitoring checks, closure, follow-ups, case conferences —
 * and the views over it (deadlines, one-screen). The core stores each
 * record and appends an event; the program and region rules (host.lua's
 * record()) say what a record must hold, may refuse it, answer it (a
 * recommendation, the lead organisation), set deadlines, and may move or
 * end the case, all in the record's transaction.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "outbound/outbound.h"
#include "process/internal.h"
#include "store/store.h"

/* Applies deadline effects of a rule result (set and clear). */
int process_apply_deadlines(store_tx *tx, const case_row *c, json_t *effects, err_t *e)
{
    size_t i;
    json_t *x;
    /* Messages the rules queued for agencies: same transaction, topic = the case. */
    json_array_foreach(json_object_get(effects, "outbox"), i, x) {
        char id[ID_MAX];
        if (store_outbox_enqueue(tx, json_string_value(json_object_get(x, "agency")), c->id, "rule",
                                 json_object_get(x, "payload"), id, e))
            return -1;
    }
    json_array_foreach(json_object_get(effects, "clear"), i, x) {
        if (json_is_string(x) && store_deadline_clear(tx, c->id, json_string_value(x), e)) return -1;
    }
    json_array_foreach(json_object_get(effects, "set"), i, x) {
        const char *kind = json_string_value(json_object_get(x, "kind"));
        const char *due = json_string_value(json_object_get(x, "due_on"));
        const char *label = json_string_value(json_object_get(x, "label"));
        if (kind && due &&
            store_deadline_set(tx, c, kind, label ? label : kind, due,
                               json_string_value(json_object_get(x, "plugin")), e))
            return -1;
    }
    return 0;
}

/* Turns a refusing result of host.lua's record() into e. */
static int record_refused(json_t *res, err_t *e)
{
    const char *kind = json_string_value(json_object_get(res, "kind"));
    if (kind && !strcmp(kind, "invalid")) {
        const char *field = json_string_value(json_object_get(res, "field"));
        err_set(e, 422, "validation_failed", "%s: %s", field ? field : "?",
                json_string_value(json_object_get(res, "reason")));
        err_detail(e, "field", json_string(field ? field : "?"));
        err_detail(e, "plugin", json_incref(json_object_get(res, "plugin")));
        if (json_object_get(res, "allowed")) err_detail(e, "allowed", json_incref(json_object_get(res, "allowed")));
    } else if (kind && !strcmp(kind, "refused")) {
        err_set(e, 422, "guard_refused", "%s refused: %s", json_string_value(json_object_get(res, "plugin")),
                json_string_value(json_object_get(res, "reason")));
        err_detail(e, "plugin", json_incref(json_object_get(res, "plugin")));
        err_detail(e, "version", json_incref(json_object_get(res, "version")));
        err_detail(e, "reason", json_incref(json_object_get(res, "reason")));
    } else if (kind && !strcmp(kind, "unknown_program")) {
        err_set(e, 409, "program_unavailable", "no loaded plugin defines this case's program");
    } else {
        process_plugin_failed(res, e);
    }
    return -1;
}

/* Asks the rules about one record of case c; *res is their answer. */
static int ask_rules(store_tx *tx, luavm *vm, const principal *p, const case_row *c, const char *kind,
                     const char *subkind, json_t *data, json_t **res, err_t *e)
{
    char today[11];
    date_today_str(today);
    json_t *args = json_pack("{s:o, s:s, s:s?, s:O, s:s}", "case", store_case_json(c), "kind", kind, "subkind",
                             subkind, "record", data, "today", today);
    json_object_set_new(json_object_get(args, "case"), "region", json_string(c->region));
    luavm_bind(vm, tx, p);
    int rc = luavm_call(vm, "record", args, res, e);
    luavm_bind(vm, NULL, NULL);
    json_decref(args);
    if (rc) return -1;
    if (!json_is_true(json_object_get(*res, "ok"))) {
        record_refused(*res, e);
        json_decref(*res);
        *res = NULL;
        return -1;
    }
    return 0;
}

/* After a record: its deadlines, then the move or end the rules asked for
 * (with the full transition rules: a move they do not allow fails the
 * whole record). */
static int follow_through(store_tx *tx, luavm *vm, const principal *p, case_row *c, json_t *res,
                          const char *record_id, err_t *e)
{
    if (process_apply_deadlines(tx, c, json_object_get(res, "effects"), e)) return -1;
    const char *move = json_string_value(json_object_get(res, "move"));
    bool end = json_is_true(json_object_get(res, "end_case"));
    if (!move && !end) return 0;
    json_t *data = json_pack("{s:s}", "record_id", record_id);
    transition_in t = {.to = move ? move : "end", .version = c->version, .data = data,
                       .note = move ? "requested by a record" : "the follow-up schedule is complete"};
    int rc = process_apply_transition(tx, vm, p, c, &t, NULL, e);
    json_decref(data);
    return rc;
}

typedef struct {
    const principal *p;
    const record_post *in;
    luavm *vm;
    const char *case_id;
    const char *plan_id;
    const meeting_in *meeting;
} cw_arg;

static int load_open_case(store_tx *tx, const principal *p, const char *id, case_row *c, err_t *e)
{
    if (store_case_load(tx, p, id, c, e)) return -1;
    if (!strcmp(c->status, "ended")) {
        err_set(e, 409, "case_ended", "case %s has ended; reopen it before recording work on it", c->id);
        return -1;
    }
    return 0;
}

static int work_record(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    cw_arg *a = arg;
    const record_post *in = a->in;
    case_row c;
    if (load_open_case(tx, a->p, a->case_id, &c, e)) return -1;
    json_t *res = NULL;
    if (ask_rules(tx, a->vm, a->p, &c, in->kind, in->subkind, in->data, &res, e)) return -1;
    char id[ID_MAX];
    record_in rec = {.case_id = c.id, .org = c.org, .kind = in->kind, .subkind = in->subkind,
                     .status = in->status, .by = a->p->user, .data = in->data,
                     .result = json_object_get(res, "result")};
    int rc = store_record_insert(tx, &rec, id, e);
    if (!rc) {
        json_t *data = json_pack("{s:s, s:s, s:s?}", "kind", in->kind, "record_id", id, "subkind", in->subkind);
        event_in ev = {.case_id = c.id, .actor = a->p->user, .type = "record", .from_stage = c.stage,
                       .to_stage = c.stage, .data = data, .generation = luavm_generation(a->vm)};
        rc = store_event_append(tx, &ev, e);
        json_decref(data);
    }
    if (!rc) rc = follow_through(tx, a->vm, a->p, &c, res, id, e);
    /* Closure is a record and the move into the closure stage, together. */
    if (!rc && in->move_to) {
        transition_in t = {.to = in->move_to, .version = c.version, .data = in->data, .note = in->note};
        rc = process_apply_transition(tx, a->vm, a->p, &c, &t, NULL, e);
    }
    json_decref(res);
    json_t *record = NULL, *cj = NULL;
    if (rc || store_record_get(tx, c.id, id, &record, e) || process_case_render(tx, a->vm, &c, &cj, e)) {
        json_decref(record);
        return -1;
    }
    json_object_set_new(record, "case", cj);
    reply->status = 201;
    reply->body = record;
    return 0;
}

int process_record(const principal *p, const char *case_id, const record_post *in, const store_idem *idem,
                   store_reply *reply, err_t *e)
{
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    cw_arg a = {.p = p, .in = in, .vm = vm, .case_id = case_id};
    int rc = store_write(idem, work_record, &a, reply, e);
    if (!rc) outbound_kick();
    return rc;
}

static int work_approve(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    cw_arg *a = arg;
    case_row c;
    json_t *plan = NULL, *res = NULL;
    if (load_open_case(tx, a->p, a->case_id, &c, e)) return -1;
    if (store_record_get(tx, c.id, a->plan_id, &plan, e)) return -1;
    int rc = -1;
    if (strcmp(json_string_value(json_object_get(plan, "kind")), "plan")) {
        err_set(e, 404, "not_found", "no plan '%s' on case '%s'", a->plan_id, c.id);
        goto done;
    }
    const char *status = json_string_value(json_object_get(plan, "status"));
    if (!status || strcmp(status, "draft")) {
        err_set(e, 409, "plan_not_draft", "plan %s is %s; only a draft is approved", a->plan_id,
                status ? status : "?");
        goto done;
    }
    if (ask_rules(tx, a->vm, a->p, &c, "plan_approval", NULL, plan, &res, e)) goto done;
    if (store_record_decide(tx, a->plan_id, "approved", a->p->user, e) ||
        store_record_supersede(tx, c.id, "plan", "approved", a->plan_id, e))
        goto done;
    json_t *data = json_pack("{s:s}", "plan_id", a->plan_id);
    event_in ev = {.case_id = c.id, .actor = a->p->user, .type = "plan_approved", .from_stage = c.stage,
                   .to_stage = c.stage, .data = data, .generation = luavm_generation(a->vm)};
    rc = store_event_append(tx, &ev, e);
    json_decref(data);
    if (!rc) rc = follow_through(tx, a->vm, a->p, &c, res, a->plan_id, e);
    if (!rc) {
        json_decref(plan);
        plan = NULL;
        rc = store_record_get(tx, c.id, a->plan_id, &plan, e);
    }
    if (!rc) {
        reply->status = 200;
        reply->body = plan;
        plan = NULL;
    }
done:
    json_decref(plan);
    json_decref(res);
    return rc;
}

int process_plan_approve(const principal *p, const char *case_id, const char *plan_id, const store_idem *idem,
                         store_reply *reply, err_t *e)
{
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    cw_arg a = {.p = p, .vm = vm, .case_id = case_id, .plan_id = plan_id};
    return store_write(idem, work_approve, &a, reply, e);
}

static int work_meeting(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    cw_arg *a = arg;
    meeting_in m = *a->meeting;
    m.org = a->p->org;
    m.by = a->p->user;
    size_t i;
    json_t *cid;
    case_row c;
    json_array_foreach(m.case_ids, i, cid) {
        if (store_case_load(tx, a->p, json_string_value(cid), &c, e)) {
            err_set(e, 422, "unknown_case", "no case '%s'", json_string_value(cid));
            err_detail(e, "field", json_sprintf("case_ids[%zu]", i));
            return -1;
        }
    }
    json_t *meeting = NULL;
    if (store_meeting_insert(tx, &m, &meeting, e)) return -1;
    const char *mid = json_string_value(json_object_get(meeting, "id"));
    json_array_foreach(m.case_ids, i, cid) {
        json_t *res = NULL;
        int rc = store_case_load(tx, a->p, json_string_value(cid), &c, e);
        if (!rc && strcmp(c.status, "ended")) rc = ask_rules(tx, a->vm, a->p, &c, "meeting", m.type, meeting, &res, e);
        if (!rc) {
            json_t *data = json_pack("{s:s, s:s}", "meeting_id", mid, "type", m.type);
            event_in ev = {.case_id = c.id, .actor = a->p->user, .type = "meeting", .from_stage = c.stage,
                           .to_stage = c.stage, .data = data, .generation = luavm_generation(a->vm)};
            rc = store_event_append(tx, &ev, e);
            json_decref(data);
        }
        if (!rc && res) rc = follow_through(tx, a->vm, a->p, &c, res, mid, e);
        json_decref(res);
        if (rc) {
            json_decref(meeting);
            return -1;
        }
    }
    reply->status = 201;
    reply->body = meeting;
    return 0;
}

int process_meeting(const principal *p, const meeting_in *m, const store_idem *idem, store_reply *reply, err_t *e)
{
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    cw_arg a = {.p = p, .vm = vm, .meeting = m};
    return store_write(idem, work_meeting, &a, reply, e);
}

typedef struct {
    const principal *p;
    const char *id, *kind;
    const deadline_query *dq;
    luavm *vm;
} view_arg;

static int work_records(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    view_arg *a = arg;
    case_row c;
    json_t *items = NULL;
    if (store_case_load(tx, a->p, a->id, &c, e) || store_record_list(tx, c.id, a->kind, &items, e)) return -1;
    reply->status = 200;
    reply->body = json_pack("{s:o, s:n}", "items", items, "next_cursor");
    return 0;
}

int process_records(const principal *p, const char *case_id, const char *kind, store_reply *reply, err_t *e)
{
    view_arg a = {.p = p, .id = case_id, .kind = kind};
    return store_read(work_records, &a, reply, e);
}

static int work_deadlines(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    view_arg *a = arg;
    reply->status = 200;
    return store_deadline_list(tx, a->dq, &reply->body, e);
}

int process_deadlines(const principal *p, deadline_query *q, store_reply *reply, err_t *e)
{
    char today[11];
    date_today_str(today);
    q->today = today;
    if (q->org && strcmp(q->org, p->org)) { /* other organisations' work is not visible */
        reply->status = 200;
        reply->body = json_pack("{s:[], s:n}", "items", "next_cursor");
        return 0;
    }
    q->org = p->org;
    view_arg a = {.p = p, .dq = q};
    return store_read(work_deadlines, &a, reply, e);
}

/* One screen: the person, the household, and every case of every program
 * the principal may see, each with its plans, services and deadlines. */
static int work_one_screen(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    view_arg *a = arg;
    json_t *person = NULL, *household = json_null(), *cases = NULL, *out = NULL;
    /* Another organisation sees it only under the person's consent naming it
     * (seed 003 원스크린: counseling a week, case management up to 3 months). */
    static const char *const sharing[] = {"counseling", "case_management", NULL};
    /* A private provider's worker needs a complete sharing right (seed 003). */
    if (!strcmp(a->p->org_type, "provider")) {
        json_t *right = NULL;
        if (store_sharing_right_get(tx, a->p->org, a->p->user, &right, e)) return -1;
        bool complete = json_is_true(json_object_get(right, "complete"));
        json_decref(right);
        if (!complete) {
            err_set(e, 403, "sharing_right_required",
                    "%s needs privacy training, a security pledge and the approval of %s and its district first",
                    a->p->user, a->p->org);
            return -1;
        }
    }
    principal owner = *a->p;
    const principal *as = a->p;
    char consent[ID_MAX] = "";
    if (store_person_visible(tx, a->p, a->id, e)) {
        err_clear(e);
        if (store_person_owner(tx, a->id, owner.org, e) ||
            store_consent_valid_for(tx, a->id, a->p->org, sharing, consent, e))
            return -1;
        if (!consent[0]) {
            err_set(e, 403, "consent_required",
                    "the person's one-screen is shared with %s only under a valid consent naming it", a->p->org);
            return -1;
        }
        as = &owner;
    }
    if (store_person_get(tx, as, a->id, &person, e)) return -1;
    const char *hh = json_string_value(json_object_get(person, "household_id"));
    if (hh && store_household_get(tx, as, hh, &household, e)) goto fail;
    if (store_person_cases(tx, as, a->id, &cases, e)) goto fail;
    size_t i;
    json_t *cs;
    json_array_foreach(cases, i, cs) {
        case_row c;
        json_t *full = NULL, *records = NULL;
        if (store_case_load(tx, as, json_string_value(json_object_get(cs, "id")), &c, e) ||
            process_case_render(tx, a->vm, &c, &full, e) || store_record_list(tx, c.id, NULL, &records, e)) {
            json_decref(full);
            goto fail;
        }
        json_t *plans = json_array(), *services = json_array(), *other = json_array();
        size_t j;
        json_t *r;
        json_array_foreach(records, j, r) {
            const char *k = json_string_value(json_object_get(r, "kind"));
            json_array_append(!strcmp(k, "plan") ? plans : !strcmp(k, "service") ? services : other, r);
        }
        json_decref(records);
        json_object_set_new(full, "plans", plans);
        json_object_set_new(full, "services", services);
        json_object_set_new(full, "records", other);
        json_array_set_new(cases, i, full);
    }
    out = json_pack("{s:o, s:o, s:o}", "person", person, "household", household, "cases", cases);
    if (consent[0]) json_object_set_new(out, "consent_id", json_string(consent));
    reply->status = 200;
    reply->body = out;
    return 0;
fail:
    json_decref(person);
    json_decref(household);
    json_decref(cases);
    return -1;
}

int process_one_screen(const principal *p, const char *person_id, store_reply *reply, err_t *e)
{
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    view_arg a = {.p = p, .id = person_id, .vm = vm};
    return store_read(work_one_screen, &a, reply, e);
}

static int work_overdue(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)arg;
    char today[11];
    date_today_str(today);
    return store_overdue_counts(tx, today, &reply->body, e);
}

char *process_overdue_metrics(void)
{
    store_reply reply = {0};
    err_t e = {0};
    if (store_read(work_overdue, NULL, &reply, &e)) {
        err_clear(&e);
        return NULL;
    }
    size_t cap = 256, len = 0;
    char *s = malloc(cap);
    if (!s) {
        store_reply_clear(&reply);
        return NULL;
    }
    len = (size_t)snprintf(s, cap, "# HELP sarye_deadlines_overdue Open deadlines past due, by kind.\n"
                                    "# TYPE sarye_deadlines_overdue gauge\n");
    const char *k;
    json_t *v;
    json_object_foreach(reply.body, k, v) {
        char line[200];
        int n = snprintf(line, sizeof line, "sarye_deadlines_overdue{kind=\"%.64s\"} %lld\n", k,
                         (long long)json_integer_value(v));
        if (len + (size_t)n + 1 > cap) {
            cap = (len + (size_t)n + 1) * 2;
            char *ns = realloc(s, cap);
            if (!ns) break;
            s = ns;
        }
        memcpy(s + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
    store_reply_clear(&reply);
    return s;
}
