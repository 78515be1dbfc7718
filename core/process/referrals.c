/*
 * referrals.c: consents and case-management referrals (seed 001 II,
 * seed 003 "사례관리 간 연계"). A referral carries the person's data, the
 * referrer, a reason and an opinion, optionally counseling and assessment
 * results, and needs the person's valid consent that names the receiving
 * organisation. The receiver sees the person only through the referral
 * until it accepts; accepting opens the receiver's own case at its
 * program's first stage while the referring case goes on; a rejection
 * carries a note the referrer sees. When a case opened from a referral
 * reaches closure, the referrer is told and reviews it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "process/internal.h"
#include "outbound/outbound.h"
#include "store/store.h"

#define ANSWER_DAYS_DEFAULT 14 /* a referral unanswered this long is overdue */
#define REVIEW_DAYS 14         /* the referrer's review of a closure */

static void add_days(const char *date, int days, char out[11])
{
    int y, m, d;
    date_parse(date, &y, &m, &d);
    date_from_days(date_to_days(y, m, d) + days, &y, &m, &d);
    snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 100u, (unsigned)d % 100u);
}

static void add_months(const char *date, int months, char out[11])
{
    int y, m, d;
    date_parse(date, &y, &m, &d);
    int total = y * 12 + (m - 1) + months;
    y = total / 12;
    m = total % 12 + 1;
    while (!date_valid(y, m, d) && d > 28) d--;
    snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 100u, (unsigned)d % 100u);
}

/* ---- consents ---- */
typedef struct {
    const principal *p;
    const void *in;
    const char *person_id, *id, *note;
    bool flag;
    luavm *vm;
    const referral_query *q;
} ref_arg;

static int work_consent(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    const consent_in *in = a->in;
    size_t i;
    json_t *org;
    json_array_foreach(in->scope, i, org) {
        json_t *o = NULL;
        if (store_org_get(tx, json_string_value(org), &o, e)) {
            err_set(e, 422, "unknown_org", "scope[%zu]: no organisation '%s'", i, json_string_value(org));
            err_detail(e, "field", json_sprintf("scope[%zu]", i));
            return -1;
        }
        json_decref(o);
    }
    reply->status = 201;
    return store_consent_insert(tx, a->p, in, &reply->body, e);
}

int process_consent_create(const principal *p, consent_in *in, const store_idem *idem, store_reply *reply, err_t *e)
{
    /* Periods by purpose (seed 003 원스크린 정보공유 동의: counseling a week,
     * case management up to three months). */
    int max_days = !strcmp(in->purpose, "counseling") ? 7 : 0;
    char today[11], from[11], until[11], limit[11];
    date_today_str(today);
    snprintf(from, sizeof from, "%s", in->valid_from ? in->valid_from : today);
    if (max_days) add_days(from, max_days, limit);
    else add_months(from, 3, limit);
    snprintf(until, sizeof until, "%s", in->valid_until ? in->valid_until : limit);
    if (strcmp(until, from) < 0) {
        err_set(e, 422, "validation_failed", "valid_until: %s is before valid_from %s", until, from);
        err_detail(e, "field", json_string("valid_until"));
        return -1;
    }
    if (strcmp(until, limit) > 0) {
        err_set(e, 422, "validation_failed", "valid_until: a %s consent lasts at most %s (until %s)", in->purpose,
                max_days ? "7 days" : "3 months", limit);
        err_detail(e, "field", json_string("valid_until"));
        return -1;
    }
    in->valid_from = from;
    in->valid_until = until;
    ref_arg a = {.p = p, .in = in};
    return store_write(idem, work_consent, &a, reply, e);
}

static int work_consents(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    json_t *items = NULL;
    if (store_person_visible(tx, a->p, a->person_id, e) || store_consent_list(tx, a->person_id, &items, e)) return -1;
    reply->status = 200;
    reply->body = json_pack("{s:o, s:n}", "items", items, "next_cursor");
    return 0;
}

int process_consents(const principal *p, const char *person_id, store_reply *reply, err_t *e)
{
    ref_arg a = {.p = p, .person_id = person_id};
    return store_read(work_consents, &a, reply, e);
}

static int work_revoke(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    reply->status = 200;
    return store_consent_revoke(tx, a->p, a->person_id, a->id, &reply->body, e);
}

int process_consent_revoke(const principal *p, const char *person_id, const char *id, store_reply *reply, err_t *e)
{
    ref_arg a = {.p = p, .person_id = person_id, .id = id};
    return store_write(NULL, work_revoke, &a, reply, e);
}

/* Whether consent allows referring the person to org today; the reason why
 * not in e (422 consent_invalid). */
static int consent_allows(store_tx *tx, const char *person_id, const char *consent_id, const char *org, err_t *e)
{
    static const char *const referral_purposes[] = {"referral", "case_management", NULL};
    json_t *c = NULL;
    if (store_consent_get(tx, person_id, consent_id, &c, e)) {
        err_set(e, 422, "consent_invalid", "no consent '%s' of this person", consent_id);
        err_detail(e, "field", json_string("consent_id"));
        return -1;
    }
    char today[11];
    date_today_str(today);
    const char *why = store_consent_refusal(c, org, referral_purposes, today); /* a static text */
    json_decref(c);
    if (!why) return 0;
    err_set(e, 422, "consent_invalid", "consent %s does not allow this referral: %s", consent_id, why);
    err_detail(e, "field", json_string("consent_id"));
    err_detail(e, "reason", json_string(why));
    return -1;
}

/* ---- referrals ---- */
static void event_on(store_tx *tx, const char *case_id, const char *actor, const char *type, json_t *data,
                     luavm *vm, int *rc, err_t *e)
{
    if (*rc || !case_id || !*case_id) return;
    event_in ev = {.case_id = case_id, .actor = actor, .type = type, .data = data,
                   .generation = vm ? luavm_generation(vm) : NULL};
    *rc = store_event_append(tx, &ev, e);
}

static bool org_is_agency(store_tx *tx, const char *org)
{
    json_t *o = NULL;
    err_t e = {0};
    if (!org || store_org_get(tx, org, &o, &e)) {
        err_clear(&e);
        return false;
    }
    bool yes = !strcmp(json_string_value(json_object_get(o, "type")), "agency");
    json_decref(o);
    return yes;
}

/* Queues a message of kind to an agency about a referral, as the agency's
 * plugin builds it, in the caller's transaction. */
static int enqueue_agency(store_tx *tx, luavm *vm, const char *agency, const char *kind, const char *referral_id,
                          json_t *data, err_t *e)
{
    json_t *args = json_pack("{s:s, s:s, s:O}", "agency", agency, "kind", kind, "data", data), *res = NULL;
    int rc = luavm_call(vm, "agency_message", args, &res, e);
    json_decref(args);
    if (rc) return -1;
    if (!json_is_true(json_object_get(res, "ok"))) {
        const char *k = json_string_value(json_object_get(res, "kind"));
        if (k && !strcmp(k, "unknown_agency")) {
            err_set(e, 422, "agency_unavailable", "no agency plugin connects to '%s'", agency);
        } else if (k && !strcmp(k, "inbound_only")) {
            err_set(e, 422, "agency_unavailable", "'%s' only refers people to local government; it takes no referrals",
                    agency);
        } else {
            process_plugin_failed(res, e);
        }
        err_detail(e, "agency", json_string(agency));
        json_decref(res);
        return -1;
    }
    char id[ID_MAX];
    rc = store_outbox_enqueue(tx, agency, referral_id, kind, json_object_get(res, "payload"), id, e);
    json_decref(res);
    return rc;
}

static int work_refer(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    const referral_post *in = a->in;
    json_t *person = NULL, *org = NULL;
    if (store_person_get(tx, a->p, in->person_id, &person, e)) {
        err_set(e, 422, "unknown_person", "no person '%s'", in->person_id);
        err_detail(e, "field", json_string("person_id"));
        return -1;
    }
    int rc = -1;
    json_t *snapshot = json_pack("{s:O}", "person", person);
    if (in->from_case_id) {
        case_row c;
        if (store_case_load(tx, a->p, in->from_case_id, &c, e) || strcmp(c.person_id, in->person_id)) {
            err_set(e, 422, "unknown_case", "no case '%s' of this person", in->from_case_id);
            err_detail(e, "field", json_string("from_case_id"));
            goto done;
        }
        /* What the referral may carry of the case's work (seed 001: 상담·사정 결과). */
        for (const char *const *k = in->attach; k && *k; k++) {
            json_t *recs = NULL;
            if (store_record_list(tx, c.id, *k, &recs, e)) goto done;
            json_object_set_new(snapshot, *k, recs);
        }
        json_object_set_new(snapshot, "from_case", json_pack("{s:s, s:s, s:s}", "id", c.id, "program", c.program,
                                                             "stage", c.stage));
    }
    if (store_org_get(tx, in->to_org, &org, e)) {
        err_set(e, 422, "unknown_org", "no organisation '%s'", in->to_org);
        err_detail(e, "field", json_string("to_org"));
        goto done;
    }
    bool to_agency = !strcmp(json_string_value(json_object_get(org, "type")), "agency");
    if (to_agency && in->to_program) {
        err_set(e, 422, "validation_failed", "to_program: an agency runs its own services; leave to_program out");
        err_detail(e, "field", json_string("to_program"));
        goto done;
    }
    if (in->to_program) {
        bool offers = false;
        if (store_org_offers(tx, in->to_org, in->to_program, &offers, e)) goto done;
        if (!offers) {
            err_set(e, 422, "program_not_offered", "organisation '%s' does not run program '%s'", in->to_org,
                    in->to_program);
            err_detail(e, "field", json_string("to_program"));
            goto done;
        }
    }
    if (consent_allows(tx, in->person_id, in->consent_id, in->to_org, e)) goto done;
    referral_in r = {.person_id = in->person_id, .from_org = a->p->org, .from_case_id = in->from_case_id,
                     .to_org = in->to_org, .to_program = in->to_program, .reason = in->reason,
                     .opinion = in->opinion, .consent_id = in->consent_id, .by = a->p->user,
                     .snapshot = snapshot};
    char id[ID_MAX], today[11], due[11];
    if (store_referral_insert(tx, &r, id, e)) goto done;
    if (to_agency) { /* delivered through the outbox, in this transaction */
        json_t *full = NULL;
        if (store_referral_get(tx, a->p, id, &full, e)) goto done;
        int qrc = enqueue_agency(tx, a->vm, in->to_org, "referral", id, full, e);
        json_decref(full);
        if (qrc) goto done;
    }
    /* The receiving program's rules: its deadline to answer, and which
     * programs may refer to it (the cooperation models of seed 001 II). */
    int days = ANSWER_DAYS_DEFAULT;
    if (in->to_program && a->vm) {
        json_t *rules = NULL, *arg2 = json_pack("{s:s, s:s}", "program", in->to_program, "region",
                                                json_string_value(json_object_get(org, "region")));
        int rrc = luavm_call(a->vm, "referral_rules_of", arg2, &rules, e);
        json_decref(arg2);
        if (rrc) goto done;
        json_t *d = json_object_get(rules, "answer_days");
        if (json_is_integer(d) && json_integer_value(d) > 0 && json_integer_value(d) < 3650)
            days = (int)json_integer_value(d);
        json_t *from = json_object_get(rules, "accepts_from");
        const char *from_program = json_string_value(json_object_get(json_object_get(snapshot, "from_case"), "program"));
        if (json_is_array(from) && from_program) {
            bool ok = false;
            size_t i;
            json_t *x;
            json_array_foreach(from, i, x) ok |= !strcmp(json_string_value(x), from_program) ||
                                                 !strcmp(json_string_value(x), "*");
            if (!ok) {
                err_set(e, 422, "referral_not_allowed", "%s takes referrals from %s cases only, not from %s",
                        in->to_program, "its partner programs'", from_program);
                err_detail(e, "plugin", json_incref(json_object_get(rules, "plugin")));
                err_detail(e, "allowed", json_incref(from));
                json_decref(rules);
                goto done;
            }
        }
        json_decref(rules);
    }
    date_today_str(today);
    add_days(today, days, due);
    char label[96];
    snprintf(label, sizeof label, "의뢰 접수 회신 (%d일 이내)", days);
    if (!to_agency && store_referral_deadline_set(tx, in->to_org, id, "referral_answer", label, due, NULL, e))
        goto done;
    json_t *ed = json_pack("{s:s, s:s, s:s?}", "referral_id", id, "to_org", in->to_org, "to_program", in->to_program);
    rc = 0;
    event_on(tx, in->from_case_id, a->p->user, "referred", ed, a->vm, &rc, e);
    json_decref(ed);
    if (!rc) {
        reply->status = 201;
        rc = store_referral_get(tx, a->p, id, &reply->body, e);
    }
done:
    json_decref(person);
    json_decref(org);
    json_decref(snapshot);
    return rc;
}

int process_referral_create(const principal *p, const referral_post *in, const store_idem *idem, store_reply *reply,
                            err_t *e)
{
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    ref_arg a = {.p = p, .in = in, .vm = vm};
    int rc = store_write(idem, work_refer, &a, reply, e);
    if (!rc) outbound_kick();
    return rc;
}

/* Loads a referral addressed to p for an answer. */
static int load_inbound(store_tx *tx, const principal *p, const char *id, json_t **r, err_t *e)
{
    if (store_referral_get(tx, p, id, r, e)) return -1;
    if (strcmp(json_string_value(json_object_get(*r, "to_org")), p->org)) {
        json_decref(*r);
        err_set(e, 403, "forbidden", "only the receiving organisation answers referral %s", id);
        return -1;
    }
    if (strcmp(json_string_value(json_object_get(*r, "status")), "pending")) {
        err_set(e, 409, "referral_answered", "referral %s is already %s", id,
                json_string_value(json_object_get(*r, "status")));
        json_decref(*r);
        return -1;
    }
    return 0;
}

static int work_accept(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    const referral_accept *in = a->in;
    json_t *r = NULL;
    if (load_inbound(tx, a->p, a->id, &r, e)) return -1;
    int rc = -1;
    case_row c;
    bool from_agency = org_is_agency(tx, json_string_value(json_object_get(r, "from_org")));
    if (in->case_id) { /* the receiver already has the person's case */
        if (store_case_load(tx, a->p, in->case_id, &c, e)) {
            err_set(e, 422, "unknown_case", "no case '%s'", in->case_id);
            err_detail(e, "field", json_string("case_id"));
            goto done;
        }
    } else {
        const char *program = in->program ? in->program : json_string_value(json_object_get(r, "to_program"));
        if (!program) {
            err_set(e, 422, "validation_failed", "program: the referral names no program; give program or case_id");
            err_detail(e, "field", json_string("program"));
            goto done;
        }
        /* The receiver's own record of the person, from the referrer's. */
        char pid[ID_MAX];
        if (store_person_clone(tx, json_string_value(json_object_get(r, "person_id")), a->p->org, a->p->user, pid, e))
            goto done;
        case_open_in open = {.person_id = pid, .program = program, .org = a->p->org,
                             .source = from_agency ? "gov_referral" : "referral", .referral_id = a->id};
        if (process_open_in_tx(tx, a->vm, a->p, &open, &c, e)) goto done;
    }
    if (store_referral_answer(tx, a->id, "accepted", in->note, a->p->user, c.id, e) ||
        store_referral_deadline_clear(tx, a->id, NULL, e))
        goto done;
    json_t *ed = json_pack("{s:s, s:s, s:s?}", "referral_id", a->id, "case_id", c.id, "note", in->note);
    rc = 0;
    event_on(tx, json_string_value(json_object_get(r, "from_case_id")), a->p->user, "referral_accepted", ed, a->vm,
             &rc, e);
    json_decref(ed);
    json_t *ref = NULL, *cj = NULL;
    if (!rc) rc = store_referral_get(tx, a->p, a->id, &ref, e);
    /* seed 001: the registration (접수) and the opinion go back to the agency */
    if (!rc && from_agency)
        rc = enqueue_agency(tx, a->vm, json_string_value(json_object_get(r, "from_org")), "answer", a->id, ref, e);
    if (!rc) rc = process_case_render(tx, a->vm, &c, &cj, e);
    if (!rc) {
        json_object_set_new(ref, "case", cj);
        reply->status = 200;
        reply->body = ref;
    } else {
        json_decref(ref);
    }
done:
    json_decref(r);
    return rc;
}

int process_referral_accept(const principal *p, const char *id, const referral_accept *in, const store_idem *idem,
                            store_reply *reply, err_t *e)
{
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    ref_arg a = {.p = p, .id = id, .in = in, .vm = vm};
    int rc = store_write(idem, work_accept, &a, reply, e);
    if (!rc) outbound_kick();
    return rc;
}

static int work_reject(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    json_t *r = NULL;
    if (load_inbound(tx, a->p, a->id, &r, e)) return -1;
    int rc = store_referral_answer(tx, a->id, "rejected", a->note, a->p->user, NULL, e);
    if (!rc) rc = store_referral_deadline_clear(tx, a->id, NULL, e);
    json_t *ed = json_pack("{s:s, s:s}", "referral_id", a->id, "note", a->note);
    event_on(tx, json_string_value(json_object_get(r, "from_case_id")), a->p->user, "referral_rejected", ed, NULL,
             &rc, e);
    json_decref(ed);
    if (rc) {
        json_decref(r);
        return -1;
    }
    reply->status = 200;
    rc = store_referral_get(tx, a->p, a->id, &reply->body, e);
    const char *from = json_string_value(json_object_get(r, "from_org"));
    if (!rc && org_is_agency(tx, from)) rc = enqueue_agency(tx, a->vm, from, "answer", a->id, reply->body, e);
    json_decref(r);
    return rc;
}

int process_referral_reject(const principal *p, const char *id, const char *note, const store_idem *idem,
                            store_reply *reply, err_t *e)
{
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    ref_arg a = {.p = p, .id = id, .note = note, .vm = vm};
    int rc = store_write(idem, work_reject, &a, reply, e);
    if (!rc) outbound_kick();
    return rc;
}

static int work_review(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    json_t *r = NULL;
    if (store_referral_get(tx, a->p, a->id, &r, e)) return -1;
    int rc = -1;
    if (strcmp(json_string_value(json_object_get(r, "from_org")), a->p->org)) {
        err_set(e, 403, "forbidden", "only the referring organisation reviews the closure of referral %s", a->id);
    } else if (json_is_null(json_object_get(r, "closed_at"))) {
        err_set(e, 409, "referral_not_closed", "the case opened from referral %s has not been closed", a->id);
    } else {
        rc = store_referral_review(tx, a->id, a->flag ? "appropriate" : "inappropriate", a->note, e);
        if (!rc) rc = store_referral_deadline_clear(tx, a->id, "referral_closure_review", e);
    }
    json_decref(r);
    if (rc) return -1;
    reply->status = 200;
    return store_referral_get(tx, a->p, a->id, &reply->body, e);
}

int process_referral_review(const principal *p, const char *id, bool appropriate, const char *note,
                            store_reply *reply, err_t *e)
{
    ref_arg a = {.p = p, .id = id, .flag = appropriate, .note = note};
    return store_write(NULL, work_review, &a, reply, e);
}

static int work_referral_get(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    reply->status = 200;
    return store_referral_get(tx, a->p, a->id, &reply->body, e);
}

int process_referral_get(const principal *p, const char *id, store_reply *reply, err_t *e)
{
    ref_arg a = {.p = p, .id = id};
    return store_read(work_referral_get, &a, reply, e);
}

static int work_referrals(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    reply->status = 200;
    return store_referral_list(tx, a->p, a->q, &reply->body, e);
}

int process_referrals(const principal *p, const referral_query *q, store_reply *reply, err_t *e)
{
    ref_arg a = {.p = p, .q = q};
    return store_read(work_referrals, &a, reply, e);
}

/* seed 001: 범정부 서비스 의뢰 — each processing step goes back to the
 * agency; 연계된 사례가 종결되면 의뢰기관에 알리고, 의뢰기관은 종결이
 * 적절했는지 확인한다. */
int process_referral_case_moved(store_tx *tx, luavm *vm, const case_row *c, err_t *e)
{
    json_t *r = NULL;
    if (store_referral_of_case(tx, c->id, &r, e)) return -1;
    if (!r) return 0;
    const char *id = json_string_value(json_object_get(r, "id"));
    const char *from = json_string_value(json_object_get(r, "from_org"));
    if (org_is_agency(tx, from)) {
        json_t *data = json_pack("{s:s, s:O, s:s, s:s, s:s}", "referral_id", id, "agency_ref",
                                 json_object_get(r, "agency_ref"), "case_id", c->id, "stage", c->stage, "status",
                                 c->status);
        int rc = enqueue_agency(tx, vm, from, "progress", id, data, e);
        json_decref(data);
        json_decref(r);
        return rc;
    }
    if (strcmp(c->stage, "closure") || strcmp(c->status, "open")) {
        json_decref(r);
        return 0;
    }
    char today[11], due[11];
    date_today_str(today);
    add_days(today, REVIEW_DAYS, due);
    int rc = store_referral_closed(tx, id, e);
    if (!rc)
        rc = store_referral_deadline_set(tx, json_string_value(json_object_get(r, "from_org")), id,
                                         "referral_closure_review", "의뢰 사례 종결 확인", due, NULL, e);
    json_t *ed = json_pack("{s:s, s:s}", "referral_id", id, "case_id", c->id);
    event_on(tx, json_string_value(json_object_get(r, "from_case_id")), "sarye", "referred_case_closed", ed, NULL, &rc,
             e);
    json_decref(ed);
    json_decref(r);
    return rc;
}

/* ---- government-wide referrals from agencies (seed 001 부록3) ---- */
static int work_inbound(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    const referral_inbound *in = a->in;
    json_t *args = json_pack("{s:s}", "agency", a->p->org), *known = NULL;
    int rc = luavm_call(a->vm, "agency_known", args, &known, e);
    json_decref(args);
    if (rc) return -1;
    bool ok = json_is_true(json_object_get(known, "known"));
    json_decref(known);
    if (!ok) {
        err_set(e, 403, "forbidden", "no agency plugin connects '%s'; it cannot refer", a->p->org);
        return -1;
    }
    char to_org[64];
    json_t *org = NULL;
    if (in->to_org) snprintf(to_org, sizeof to_org, "%s", in->to_org);
    else if (store_org_by_area(tx, in->dong_code, to_org, e)) return -1;
    if (store_org_get(tx, to_org, &org, e)) {
        err_set(e, 422, "unknown_org", "no organisation '%s'", to_org);
        err_detail(e, "field", json_string("to_org"));
        return -1;
    }
    const char *type = json_string_value(json_object_get(org, "type"));
    bool local = !strcmp(type, "emd") || !strcmp(type, "district");
    bool region_ok = !in->region || !strcmp(in->region, json_string_value(json_object_get(org, "region")));
    json_decref(org);
    if (!local || !region_ok) {
        err_set(e, 422, "unknown_org", "'%s' is not a local government office%s", to_org,
                region_ok ? "" : " of that region");
        err_detail(e, "field", json_string(in->to_org ? "to_org" : "dong_code"));
        return -1;
    }
    /* The person becomes known to the receiving dong only. */
    principal as_dong = *a->p;
    snprintf(as_dong.org, sizeof as_dong.org, "%s", to_org);
    json_t *person = NULL, *snapshot = NULL;
    if (store_person_insert(tx, &as_dong, in->person, &person, e)) return -1;
    snapshot = json_pack("{s:O, s:{s:s}}", "person", person, "agency", "id", a->p->org);
    referral_in r = {.person_id = json_string_value(json_object_get(person, "id")), .from_org = a->p->org,
                     .to_org = to_org, .reason = in->reason, .opinion = in->opinion, .by = a->p->user,
                     .agency_ref = in->agency_ref, .snapshot = snapshot};
    char id[ID_MAX], today[11], due[11];
    rc = store_referral_insert(tx, &r, id, e);
    /* seed 001: 의뢰를 받은 지자체는 14일 이내에 대상자에게 연락 */
    date_today_str(today);
    add_days(today, 14, due);
    if (!rc) rc = store_referral_deadline_set(tx, to_org, id, "first_contact", "범정부 의뢰 초기 연락 (14일 이내)", due,
                                              NULL, e);
    json_decref(person);
    json_decref(snapshot);
    if (rc) return -1;
    reply->status = 201;
    return store_referral_get(tx, a->p, id, &reply->body, e);
}

int process_referral_inbound(const principal *p, const referral_inbound *in, const store_idem *idem,
                             store_reply *reply, err_t *e)
{
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    ref_arg a = {.p = p, .in = in, .vm = vm};
    return store_write(idem, work_inbound, &a, reply, e);
}

/* An agency's news about a referral sent to it: received, in progress,
 * rejected (with a reason) or completed, in its own codes. */
static int work_agency_status(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    const agency_update *in = a->in;
    json_t *r = NULL;
    if (store_referral_get(tx, a->p, a->id, &r, e)) return -1;
    int rc = -1;
    if (strcmp(json_string_value(json_object_get(r, "to_org")), a->p->org)) {
        err_set(e, 404, "not_found", "no referral '%s' sent to %s", a->id, a->p->org);
        goto done;
    }
    json_t *args = json_pack("{s:s, s:s}", "agency", a->p->org, "status", in->status), *st = NULL;
    rc = luavm_call(a->vm, "agency_status_of", args, &st, e);
    json_decref(args);
    if (rc) goto done;
    const char *status = json_string_value(json_object_get(st, "status"));
    if (!status) {
        err_set(e, 422, "validation_failed", "status: '%s' means nothing to the %s connector", in->status, a->p->org);
        err_detail(e, "field", json_string("status"));
        json_decref(st);
        rc = -1;
        goto done;
    }
    char mapped[24];
    snprintf(mapped, sizeof mapped, "%s", status);
    json_decref(st);
    rc = store_referral_agency_status(tx, a->id, mapped, e);
    if (!rc && !strcmp(json_string_value(json_object_get(r, "status")), "pending")) {
        bool rejected = !strcmp(mapped, "rejected");
        rc = store_referral_answer(tx, a->id, rejected ? "rejected" : "accepted", in->reason, a->p->user, NULL, e);
        if (!rc) rc = store_referral_deadline_clear(tx, a->id, NULL, e);
    }
    json_t *ed = json_pack("{s:s, s:s, s:s, s:s?}", "referral_id", a->id, "agency", a->p->org, "status", mapped,
                           "reason", in->reason);
    event_on(tx, json_string_value(json_object_get(r, "from_case_id")), a->p->user, "agency_status", ed, a->vm, &rc,
             e);
    json_decref(ed);
    if (!rc) {
        reply->status = 200;
        rc = store_referral_get(tx, a->p, a->id, &reply->body, e);
    }
done:
    json_decref(r);
    return rc;
}

int process_referral_agency_status(const principal *p, const char *id, const agency_update *in,
                                   const store_idem *idem, store_reply *reply, err_t *e)
{
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    ref_arg a = {.p = p, .id = id, .in = in, .vm = vm};
    return store_write(idem, work_agency_status, &a, reply, e);
}

/* ---- the outbox, for administrators ---- */
static int work_outbox_list(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    const referral_query *q = a->q;
    reply->status = 200;
    return store_outbox_list(tx, q->status, q->limit, q->after, &reply->body, e);
}

int process_outbox_list(const char *status, int limit, const char *after, store_reply *reply, err_t *e)
{
    referral_query q = {.status = status, .limit = limit, .after = after};
    ref_arg a = {.q = &q};
    return store_read(work_outbox_list, &a, reply, e);
}

static int work_outbox_retry(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    reply->status = 200;
    return store_outbox_retry(tx, a->id, &reply->body, e);
}

int process_outbox_retry(const char *id, store_reply *reply, err_t *e)
{
    ref_arg a = {.id = id};
    int rc = store_write(NULL, work_outbox_retry, &a, reply, e);
    if (!rc) outbound_kick();
    return rc;
}

/* ---- sharing rights ---- */
typedef struct {
    const principal *p;
    const char *org, *user, *training_on, *pledge_on;
    int op; /* 0 get, 1 set, 2 approve */
} right_arg;

static int work_right(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    right_arg *a = arg;
    json_t *org = NULL;
    if (store_org_get(tx, a->org, &org, e)) return -1;
    bool own = !strcmp(a->org, a->p->org);
    bool district = !strcmp(a->p->org_type, "district") &&
                    !strcmp(json_string_value(json_object_get(org, "region")), a->p->region);
    json_decref(org);
    if ((a->op == 1 && !own) || (a->op == 2 && !district) || (a->op == 0 && !own && !district)) {
        err_set(e, 403, "forbidden", a->op == 2 ? "only the district of %s approves its sharing rights"
                                                : "only %s itself (or its district) manages its sharing rights",
                a->org);
        return -1;
    }
    reply->status = 200;
    if (a->op == 1)
        return store_sharing_right_set(tx, a->org, a->user, a->training_on, a->pledge_on, a->p->user, &reply->body, e);
    if (a->op == 2) return store_sharing_right_approve(tx, a->org, a->user, a->p->user, &reply->body, e);
    if (store_sharing_right_get(tx, a->org, a->user, &reply->body, e)) return -1;
    if (!reply->body) {
        err_set(e, 404, "not_found", "no sharing right of %s at %s", a->user, a->org);
        return -1;
    }
    return 0;
}

int process_sharing_right_set(const principal *p, const char *org, const char *user, const char *training_on,
                              const char *pledge_on, store_reply *reply, err_t *e)
{
    right_arg a = {p, org, user, training_on, pledge_on, 1};
    return store_write(NULL, work_right, &a, reply, e);
}

int process_sharing_right_approve(const principal *p, const char *org, const char *user, store_reply *reply,
                                  err_t *e)
{
    right_arg a = {p, org, user, NULL, NULL, 2};
    return store_write(NULL, work_right, &a, reply, e);
}

int process_sharing_right_get(const principal *p, const char *org, const char *user, store_reply *reply, err_t *e)
{
    right_arg a = {p, org, user, NULL, NULL, 0};
    return store_read(work_right, &a, reply, e);
}
