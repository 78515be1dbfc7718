/*
 * referrals.c: case-management referrals (seed 001 II, seed 003 "사례관리
 * 간 연계") and the government-wide service referral with agencies (범정부
 * 서비스 의뢰, seed 001 부록3).
 *
 * A referral carries the person's data, the referrer, a reason and an
 * opinion, optionally counseling and assessment results, and needs the
 * person's valid consent naming the receiving organisation. The receiver
 * sees the person only through the referral until it accepts; accepting
 * opens the receiver's own case at its program's first stage while the
 * referring case goes on; a rejection carries a note the referrer sees.
 * When a case opened from a referral reaches closure, the referrer is told
 * and reviews it; an agency hears of every step.
 *
 * Like every write, each is decided on a snapshot (the agency's message
 * built by its plugin, the receiving program's referral rules) and applied
 * by a unit of work in plain C.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "outbound/outbound.h"
#include "process/internal.h"
#include "process/lookups.h"
#include "render/render.h"
#include "store/lookups.h"
#include "store/store.h"

#define ANSWER_DAYS_DEFAULT 14 /* a referral unanswered this long is overdue */
#define REVIEW_DAYS 14         /* the referrer's review of a closure */
#define FIRST_CONTACT_DAYS 14  /* seed 001: 의뢰를 받은 지자체는 14일 이내에 대상자에게 연락 */

static void due_in(int days, char out[11])
{
    char today[11];
    date_today_str(today);
    if (!date_add_days(today, days, out)) str_copy(out, 11, today);
}

static bool org_is_agency(store_tx *tx, const char *org)
{
    org_row o;
    store_err se = {0};
    if (!org || store_org_get(tx, org, &o, &se)) return false;
    bool yes = !strcmp(o.type, "agency");
    org_row_free(&o);
    return yes;
}

/* The message of kind to agency about data, as its plugin builds it. */
static int agency_payload(const char *agency, const char *kind, json_t *data, json_t **payload, err_t *e)
{
    rules_verdict v;
    int rc = rules_agency_message(agency, kind, data, payload, &v);
    if (rc) {
        rules_error(&v, RULES_ASK_MESSAGE, NULL, NULL, e);
        err_detail(e, "agency", json_string(agency));
    }
    rules_verdict_free(&v);
    return rc;
}

static void event_on(store_tx *tx, const char *case_id, const char *actor, const char *type, json_t *data,
                     const char *gen, int *rc, err_t *e)
{
    if (*rc || !case_id || !*case_id) return;
    event_in ev = {.case_id = case_id, .actor = actor, .type = type, .data = data, .generation = gen};
    store_err se = {0};
    if (store_event_append(tx, &ev, &se)) *rc = process_store_fail(&se, e);
}

/* A referral p sends or receives, or 404. */
static int referral_get(store_tx *tx, const principal *p, const char *id, referral_row *r, err_t *e)
{
    store_err se = {0};
    if (store_referral_get(tx, p, id, r, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no referral '%s'", id);
    return 0;
}

int referral_contacts_json(store_tx *tx, const char *referral_id, json_t *into, err_t *e)
{
    referral_contact_list l;
    store_err se = {0};
    if (store_referral_contacts(tx, referral_id, &l, &se)) return process_store_fail(&se, e);
    json_t *all = json_array(), *first = json_null();
    for (size_t i = 0; i < l.n; i++) {
        const referral_contact_row *c = &l.items[i];
        json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:o, s:s, s:s}", "id", c->id, "contacted_on", c->contacted_on,
                              "method", c->method, "reached", c->reached, "note",
                              c->note ? json_string(c->note) : json_null(), "created_at", c->created_at,
                              "created_by", c->created_by);
        if (c->reached && json_is_null(first)) first = json_incref(j);
        json_array_append_new(all, j);
    }
    referral_contact_list_free(&l);
    json_object_set_new(into, "first_contact", first);
    json_object_set_new(into, "contacts", all);
    return 0;
}

/* The referral as p sees it, as the answer of a unit: with the contacts
 * its receiver recorded. */
static int referral_answer(store_tx *tx, const principal *p, const char *id, int status, store_reply *reply,
                           err_t *e)
{
    referral_row r;
    if (referral_get(tx, p, id, &r, e)) return -1;
    json_t *body = render_referral(&r);
    referral_row_free(&r);
    if (referral_contacts_json(tx, id, body, e)) {
        json_decref(body);
        return -1;
    }
    reply->status = status;
    reply->body = body;
    return 0;
}

static int outbox_enqueue(store_tx *tx, const char *agency, const char *topic, const char *kind, json_t *payload,
                          err_t *e)
{
    char id[ID_MAX];
    store_err se = {0};
    return store_outbox_enqueue(tx, agency, topic, kind, payload, id, &se) ? process_store_fail(&se, e) : 0;
}

static int deadline_set(store_tx *tx, const char *org, const char *referral_id, const char *kind, const char *label,
                        const char *due_on, err_t *e)
{
    store_err se = {0};
    return store_referral_deadline_set(tx, org, referral_id, kind, label, due_on, NULL, &se)
               ? process_store_fail(&se, e)
               : 0;
}

static int deadline_clear(store_tx *tx, const char *referral_id, const char *kind, err_t *e)
{
    store_err se = {0};
    return store_referral_deadline_clear(tx, referral_id, kind, &se) ? process_store_fail(&se, e) : 0;
}

/* pending -> status; 409 referral_answered when it was answered meanwhile. */
static int referral_answered(store_tx *tx, const char *id, const char *status, const char *note, const char *by,
                             const char *case_id, err_t *e)
{
    store_err se = {0};
    if (store_referral_answer(tx, id, status, note, by, case_id, &se))
        return process_store_error(&se, e, STORE_CONFLICT, 409, "referral_answered",
                                   "referral %s was already answered", id);
    return 0;
}

/* Whether consent allows referring the person to org today; the reason why
 * not in e (422 consent_invalid). */
static int consent_allows(store_tx *tx, const char *person_id, const char *consent_id, const char *org, err_t *e)
{
    static const char *const referral_purposes[] = {"referral", "case_management", NULL};
    consent_row c;
    store_err se = {0};
    if (store_consent_get(tx, person_id, consent_id, &c, &se)) {
        process_store_error(&se, e, STORE_NOT_FOUND, 422, "consent_invalid", "no consent '%s' of this person",
                            consent_id);
        if (se.kind == STORE_NOT_FOUND) err_detail(e, "field", json_string("consent_id"));
        return -1;
    }
    char today[11];
    date_today_str(today);
    const char *why = store_consent_refusal(&c, org, referral_purposes, today); /* a static text */
    consent_row_free(&c);
    if (!why) return 0;
    err_set(e, 422, "consent_invalid", "consent %s does not allow this referral: %s", consent_id, why);
    err_detail(e, "field", json_string("consent_id"));
    err_detail(e, "reason", json_string(why));
    return -1;
}

/* ---- a referral made ---- */
typedef struct {
    const principal *p;
    const referral_post *in;
    char id[ID_MAX];
    char gen[17];
    json_t *snapshot;      /* what the receiver sees of the person */
    bool to_agency;
    json_t *payload;       /* the message to the agency, or NULL */
    int answer_days;
} refer_arg;

static int decide_refer(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    refer_arg *a = arg;
    const referral_post *in = a->in;
    store_err se = {0};
    person_row person;
    org_row org = {0};
    if (store_person_get(tx, a->p, in->person_id, &person, &se)) {
        process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_person", "no person '%s'", in->person_id);
        if (se.kind == STORE_NOT_FOUND) err_detail(e, "field", json_string("person_id"));
        return -1;
    }
    int rc = -1;
    a->snapshot = json_pack("{s:o}", "person", render_person(&person));
    person_row_free(&person);
    if (in->from_case_id) {
        case_row c;
        int lrc = store_case_load(tx, a->p, in->from_case_id, &c, &se);
        if (lrc || strcmp(c.person_id, in->person_id)) {
            if (lrc && se.kind != STORE_NOT_FOUND) {
                process_store_fail(&se, e);
                goto done;
            }
            err_set(e, 422, "unknown_case", "no case '%s' of this person", in->from_case_id);
            err_detail(e, "field", json_string("from_case_id"));
            goto done;
        }
        /* What the referral may carry of the case's work (seed 001: 상담·사정 결과). */
        for (const char *const *k = in->attach; k && *k; k++) {
            record_list recs;
            if (store_record_list(tx, c.id, *k, &recs, &se)) {
                process_store_fail(&se, e);
                goto done;
            }
            json_object_set_new(a->snapshot, *k, render_records(&recs));
            record_list_free(&recs);
        }
        json_object_set_new(a->snapshot, "from_case",
                            json_pack("{s:s, s:s, s:s}", "id", c.id, "program", c.program, "stage", c.stage));
    }
    if (store_org_get(tx, in->to_org, &org, &se)) {
        process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_org", "no organisation '%s'", in->to_org);
        if (se.kind == STORE_NOT_FOUND) err_detail(e, "field", json_string("to_org"));
        goto done;
    }
    a->to_agency = !strcmp(org.type, "agency");
    if (a->to_agency && in->to_program) {
        err_set(e, 422, "validation_failed", "to_program: an agency runs its own services; leave to_program out");
        err_detail(e, "field", json_string("to_program"));
        goto done;
    }
    if (in->to_program) {
        bool offers = false;
        if (store_org_offers(tx, in->to_org, in->to_program, &offers, &se)) {
            process_store_fail(&se, e);
            goto done;
        }
        if (!offers) {
            err_set(e, 422, "program_not_offered", "organisation '%s' does not run program '%s'", in->to_org,
                    in->to_program);
            err_detail(e, "field", json_string("to_program"));
            goto done;
        }
    }
    if (consent_allows(tx, in->person_id, in->consent_id, in->to_org, e)) goto done;
    id_new("ref_", a->id);
    str_copy(a->gen, sizeof a->gen, rules_generation());
    if (a->to_agency) { /* delivered through the outbox, with the referral */
        referral_in r = {.id = a->id, .person_id = in->person_id, .from_org = a->p->org,
                         .from_case_id = in->from_case_id, .to_org = in->to_org, .reason = in->reason,
                         .opinion = in->opinion, .consent_id = in->consent_id, .by = a->p->user,
                         .snapshot = a->snapshot};
        char now[RFC3339_MAX];
        time_rfc3339(time_now_ms(), now);
        referral_row pending;
        referral_row_of(&r, a->id, now, &pending);
        json_t *full = render_referral(&pending);
        int qrc = agency_payload(in->to_org, "referral", full, &a->payload, e);
        json_decref(full);
        if (qrc) goto done;
    }
    /* The receiving program's rules: its deadline to answer, and which
     * programs may refer to it (the cooperation models of seed 001 II). */
    a->answer_days = ANSWER_DAYS_DEFAULT;
    if (in->to_program) {
        json_t *from = NULL;
        char plugin[96];
        if (rules_referral_rules(in->to_program, org.region, &a->answer_days, &from, plugin, e))
            goto done;
        const char *from_program =
            json_string_value(json_object_get(json_object_get(a->snapshot, "from_case"), "program"));
        if (from && from_program) {
            bool ok = false;
            size_t i;
            json_t *x;
            json_array_foreach(from, i, x) ok |= !strcmp(json_string_value(x), from_program) ||
                                                 !strcmp(json_string_value(x), "*");
            if (!ok) {
                err_set(e, 422, "referral_not_allowed", "%s takes referrals from %s cases only, not from %s",
                        in->to_program, "its partner programs'", from_program);
                err_detail(e, "plugin", json_string(plugin));
                err_detail(e, "allowed", json_incref(from));
                json_decref(from);
                goto done;
            }
        }
        json_decref(from);
    }
    rc = 0;
done:
    org_row_free(&org);
    return rc;
}

static int apply_refer(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    refer_arg *a = arg;
    const referral_post *in = a->in;
    /* A consent revoked since the decision stops the referral. */
    if (consent_allows(tx, in->person_id, in->consent_id, in->to_org, e)) return -1;
    referral_in r = {.id = a->id, .person_id = in->person_id, .from_org = a->p->org, .from_case_id = in->from_case_id,
                     .to_org = in->to_org, .to_program = in->to_program, .reason = in->reason,
                     .opinion = in->opinion, .consent_id = in->consent_id, .by = a->p->user,
                     .snapshot = a->snapshot};
    char id[ID_MAX], due[11], label[96];
    store_err se = {0};
    if (store_referral_insert(tx, &r, id, &se)) return process_store_fail(&se, e);
    if (a->payload && outbox_enqueue(tx, in->to_org, id, "referral", a->payload, e)) return -1;
    due_in(a->answer_days, due);
    snprintf(label, sizeof label, "의뢰 접수 회신 (%d일 이내)", a->answer_days);
    if (!a->to_agency && deadline_set(tx, in->to_org, id, "referral_answer", label, due, e)) return -1;
    json_t *ed = json_pack("{s:s, s:s, s:s?}", "referral_id", id, "to_org", in->to_org, "to_program", in->to_program);
    int rc = 0;
    event_on(tx, in->from_case_id, a->p->user, "referred", ed, a->gen, &rc, e);
    json_decref(ed);
    if (rc) return -1;
    return referral_answer(tx, a->p, id, 201, reply, e);
}

int process_referral_create(const principal *p, const referral_post *in, const store_idem *idem, store_reply *reply,
                            err_t *e)
{
    if (idem && process_replay(idem, reply, e)) return reply->replayed ? 0 : -1;
    refer_arg a = {.p = p, .in = in};
    store_reply none = {0};
    int rc = process_read(decide_refer, &a, &none, e);
    if (!rc) rc = process_write(idem, apply_refer, &a, reply, e);
    json_decref(a.snapshot);
    json_decref(a.payload);
    if (!rc) outbound_kick();
    return rc;
}

/* ---- answers of the receiver ---- */

/* Loads a referral addressed to p, still pending. */
static int load_inbound(store_tx *tx, const principal *p, const char *id, referral_row *r, err_t *e)
{
    if (referral_get(tx, p, id, r, e)) return -1;
    if (strcmp(r->to_org, p->org)) {
        referral_row_free(r);
        err_set(e, 403, "forbidden", "only the receiving organisation answers referral %s", id);
        return -1;
    }
    if (strcmp(r->status, "pending")) {
        err_set(e, 409, "referral_answered", "referral %s is already %s", id, r->status);
        referral_row_free(r);
        return -1;
    }
    return 0;
}

/* The referral as it reads once answered (what an agency is told). */
static json_t *answered(const referral_row *r, const char *status, const char *note, const char *by,
                        const char *case_id)
{
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    json_t *a = render_referral(r);
    json_object_set_new(a, "status", json_string(status));
    json_object_set_new(a, "answer_note", note ? json_string(note) : json_null());
    json_object_set_new(a, "answered_at", json_string(now));
    json_object_set_new(a, "answered_by", json_string(by));
    json_object_set_new(a, "case_id", case_id ? json_string(case_id) : json_null());
    return a;
}

typedef struct {
    const principal *p;
    const char *id;
    const referral_accept *in;
    const char *note;
    char gen[17];
    referral_row r;        /* the referral as decided on (loaded: r.mem) */
    bool from_agency;
    bool open;             /* a case opens (else in->case_id is linked) */
    open_plan o;
    case_row linked;
    char label[256];
    json_t *payload;       /* the answer to the agency, or NULL */
} answer_arg;

static void answer_reset(answer_arg *a)
{
    referral_row_free(&a->r);
    json_decref(a->payload);
    open_plan_free(&a->o);
    a->payload = NULL;
    a->open = false;
}

/* The referral is still addressed to p and pending at the write. */
static int still_inbound(store_tx *tx, const principal *p, const char *id, err_t *e)
{
    referral_row r;
    if (load_inbound(tx, p, id, &r, e)) return -1;
    referral_row_free(&r);
    return 0;
}

static int decide_accept(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    answer_arg *a = arg;
    const referral_accept *in = a->in;
    if (load_inbound(tx, a->p, a->id, &a->r, e)) return -1;
    a->from_agency = org_is_agency(tx, a->r.from_org);
    str_copy(a->gen, sizeof a->gen, rules_generation());
    const char *case_id;
    if (in->case_id) { /* the receiver already has the person's case */
        store_err se = {0};
        if (store_case_load(tx, a->p, in->case_id, &a->linked, &se)) {
            process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_case", "no case '%s'", in->case_id);
            if (se.kind == STORE_NOT_FOUND) err_detail(e, "field", json_string("case_id"));
            return -1;
        }
        const char *label = rules_label(a->linked.program, a->linked.region, a->linked.stage);
        str_copy(a->label, sizeof a->label, label ? label : "");
        case_id = in->case_id;
    } else {
        const char *program = in->program ? in->program : a->r.to_program;
        if (!program) {
            err_set(e, 422, "validation_failed", "program: the referral names no program; give program or case_id");
            err_detail(e, "field", json_string("program"));
            return -1;
        }
        /* The receiver's own record of the person, from the referrer's: the
         * rules decide on the person as the referral shows it. */
        json_t *shown = json_object_get(a->r.snapshot, "person");
        json_t *person = shown ? json_incref(shown) : json_object();
        case_open_in open = {.person_id = a->r.person_id, .program = program, .org = a->p->org,
                             .source = a->from_agency ? "gov_referral" : "referral", .referral_id = a->id};
        rules_facts facts = {.tx = tx, .viewer = a->p};
        int rc = engine_decide_open(&facts, a->p, &open, person, &a->o, e);
        json_decref(person);
        if (rc) return -1;
        a->open = true;
        str_copy(a->label, sizeof a->label, a->o.v.label);
        case_id = a->o.c.id;
    }
    /* seed 001: the registration (접수) and the opinion go back to the agency */
    if (a->from_agency) {
        json_t *after = answered(&a->r, "accepted", in->note, a->p->user, case_id);
        int rc = agency_payload(a->r.from_org, "answer", after, &a->payload, e);
        json_decref(after);
        if (rc) return -1;
    }
    return 0;
}

/* The receiver's own record of the person a referral carries, if it has
 * one (one person, one record): the referral's person itself when the
 * receiver registered it (an agency's referral registers the person at the
 * dong), else the receiver's record with the same number. 1 found (id in
 * pid), 0 none, -1 with e. */
static int receiver_record(store_tx *tx, const principal *p, const char *person_id, char pid[ID_MAX], err_t *e)
{
    char owner[64], merge_id[ID_MAX];
    store_err se = {0};
    if (store_person_owner(tx, person_id, owner, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no person '%s'", person_id);
    if (!strcmp(owner, p->org)) {
        if (!store_person_visible(tx, p, person_id, &se)) {
            str_copy(pid, ID_MAX, person_id);
            return 1;
        }
        if (se.kind != STORE_NOT_FOUND) return process_store_fail(&se, e);
        if (!store_person_merged_into(tx, p, person_id, pid, merge_id, &se)) return 1; /* where it is now */
        if (se.kind != STORE_NOT_FOUND) return process_store_fail(&se, e);
    }
    if (!store_person_twin(tx, person_id, p->org, pid, &se)) return 1;
    return se.kind == STORE_NOT_FOUND ? 0 : process_store_fail(&se, e);
}

static int apply_accept(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    answer_arg *a = arg;
    if (still_inbound(tx, a->p, a->id, e)) return -1;
    case_row c;
    if (a->open) {
        /* The case opens on the receiver's own record of the person: the one
         * it has, or a copy of the referrer's that becomes its own. */
        char pid[ID_MAX];
        store_err se = {0};
        int found = receiver_record(tx, a->p, a->r.person_id, pid, e);
        if (found < 0) return -1;
        if (!found && store_person_clone(tx, a->r.person_id, a->p->org, a->p->user, pid, &se))
            return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no person '%s'", a->r.person_id);
        str_copy(a->o.c.person_id, sizeof a->o.c.person_id, pid);
        if (engine_apply_open(tx, a->p, &a->o, e)) return -1;
        c = a->o.c;
    } else {
        c = a->linked;
    }
    if (referral_answered(tx, a->id, "accepted", a->in->note, a->p->user, c.id, e) ||
        deadline_clear(tx, a->id, NULL, e))
        return -1;
    json_t *ed = json_pack("{s:s, s:s, s:s?}", "referral_id", a->id, "case_id", c.id, "note", a->in->note);
    int rc = 0;
    event_on(tx, a->r.from_case_id, a->p->user, "referral_accepted", ed, a->gen, &rc, e);
    json_decref(ed);
    if (!rc && a->payload) rc = outbox_enqueue(tx, a->r.from_org, a->id, "answer", a->payload, e);
    json_t *cj = NULL;
    if (!rc) rc = referral_answer(tx, a->p, a->id, 200, reply, e);
    if (!rc) rc = engine_render(tx, &c, a->label, &cj, e);
    if (rc) return -1;
    json_object_set_new(reply->body, "case", cj);
    return 0;
}

int process_referral_accept(const principal *p, const char *id, const referral_accept *in, const store_idem *idem,
                            store_reply *reply, err_t *e)
{
    if (idem && process_replay(idem, reply, e)) return reply->replayed ? 0 : -1;
    answer_arg a = {.p = p, .id = id, .in = in};
    store_reply none = {0};
    int rc = process_read(decide_accept, &a, &none, e);
    if (!rc) rc = process_write(idem, apply_accept, &a, reply, e);
    answer_reset(&a);
    if (!rc) outbound_kick();
    return rc;
}

static int decide_reject(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    answer_arg *a = arg;
    if (load_inbound(tx, a->p, a->id, &a->r, e)) return -1;
    str_copy(a->gen, sizeof a->gen, rules_generation());
    if (!org_is_agency(tx, a->r.from_org)) return 0;
    json_t *after = answered(&a->r, "rejected", a->note, a->p->user, NULL);
    int rc = agency_payload(a->r.from_org, "answer", after, &a->payload, e);
    json_decref(after);
    return rc;
}

static int apply_reject(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    answer_arg *a = arg;
    if (still_inbound(tx, a->p, a->id, e)) return -1;
    int rc = referral_answered(tx, a->id, "rejected", a->note, a->p->user, NULL, e);
    if (!rc) rc = deadline_clear(tx, a->id, NULL, e);
    json_t *ed = json_pack("{s:s, s:s}", "referral_id", a->id, "note", a->note);
    event_on(tx, a->r.from_case_id, a->p->user, "referral_rejected", ed, NULL, &rc, e);
    json_decref(ed);
    if (!rc && a->payload) rc = outbox_enqueue(tx, a->r.from_org, a->id, "answer", a->payload, e);
    if (rc) return -1;
    return referral_answer(tx, a->p, a->id, 200, reply, e);
}

int process_referral_reject(const principal *p, const char *id, const char *note, const store_idem *idem,
                            store_reply *reply, err_t *e)
{
    if (idem && process_replay(idem, reply, e)) return reply->replayed ? 0 : -1;
    answer_arg a = {.p = p, .id = id, .note = note};
    store_reply none = {0};
    int rc = process_read(decide_reject, &a, &none, e);
    if (!rc) rc = process_write(idem, apply_reject, &a, reply, e);
    answer_reset(&a);
    if (!rc) outbound_kick();
    return rc;
}

/* ---- the referrer's review of a closure ---- */
typedef struct {
    const principal *p;
    const char *id, *note;
    bool appropriate;
    const referral_query *q;
} ref_arg;

static int work_review(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    referral_row r;
    if (referral_get(tx, a->p, a->id, &r, e)) return -1;
    int rc = -1;
    if (strcmp(r.from_org, a->p->org)) {
        err_set(e, 403, "forbidden", "only the referring organisation reviews the closure of referral %s", a->id);
    } else if (!r.closed_at) {
        err_set(e, 409, "referral_not_closed", "the case opened from referral %s has not been closed", a->id);
    } else {
        store_err se = {0};
        rc = store_referral_review(tx, a->id, a->appropriate ? "appropriate" : "inappropriate", a->note, &se);
        if (rc) process_store_fail(&se, e);
        if (!rc) rc = deadline_clear(tx, a->id, "referral_closure_review", e);
    }
    referral_row_free(&r);
    if (rc) return -1;
    return referral_answer(tx, a->p, a->id, 200, reply, e);
}

int process_referral_review(const principal *p, const char *id, bool appropriate, const char *note,
                            store_reply *reply, err_t *e)
{
    ref_arg a = {.p = p, .id = id, .appropriate = appropriate, .note = note};
    return process_write(NULL, work_review, &a, reply, e);
}

static int work_referral_get(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    return referral_answer(tx, a->p, a->id, 200, reply, e);
}

int process_referral_get(const principal *p, const char *id, store_reply *reply, err_t *e)
{
    ref_arg a = {.p = p, .id = id};
    return process_read(work_referral_get, &a, reply, e);
}

static int work_referrals(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    ref_arg *a = arg;
    referral_list list;
    store_err se = {0};
    if (store_referral_list(tx, a->p, a->q, &list, &se)) return process_store_fail(&se, e);
    reply->status = 200;
    reply->body = render_page(render_referrals(&list), list.more, list.last);
    referral_list_free(&list);
    return 0;
}

int process_referrals(const principal *p, const referral_query *q, store_reply *reply, err_t *e)
{
    ref_arg a = {.p = p, .q = q};
    return process_read(work_referrals, &a, reply, e);
}

/* ---- a referred case moved ----
 * seed 001: 범정부 서비스 의뢰 — each processing step goes back to the
 * agency; 연계된 사례가 종결되면 의뢰기관에 알리고, 의뢰기관은 종결이
 * 적절했는지 확인한다. Decided with the move; written with it. */
typedef struct {
    char referral_id[ID_MAX];
    char agency[64];
    json_t *payload;        /* the agency's progress message, or NULL */
    bool closed;            /* the case reached closure: the referral's closed_at */
    bool review;            /* ... and the referring organisation reviews it (an agency reviews on its side) */
    char closed_at[RFC3339_MAX]; /* the time told to the agency, and stored */
    char from_org[64], from_case_id[ID_MAX], case_id[ID_MAX];
} moved_notice;

static void notice_release(void *arg)
{
    moved_notice *n = arg;
    json_decref(n->payload);
    free(n);
}

static int notice_apply(store_tx *tx, void *arg, err_t *e)
{
    moved_notice *n = arg;
    if (n->payload && outbox_enqueue(tx, n->agency, n->referral_id, "progress", n->payload, e)) return -1;
    if (!n->closed) return 0;
    store_err se = {0};
    int rc = store_referral_closed_at(tx, n->referral_id, n->closed_at, &se) ? process_store_fail(&se, e) : 0;
    if (rc || !n->review) return rc;
    char due[11];
    due_in(REVIEW_DAYS, due);
    rc = deadline_set(tx, n->from_org, n->referral_id, "referral_closure_review", "의뢰 사례 종결 확인", due, e);
    json_t *ed = json_pack("{s:s, s:s}", "referral_id", n->referral_id, "case_id", n->case_id);
    event_on(tx, n->from_case_id, "sarye", "referred_case_closed", ed, NULL, &rc, e);
    json_decref(ed);
    return rc;
}

static int referred_case_moved(store_tx *snap, const case_row *c, engine_extra *out, err_t *e)
{
    referral_row r;
    store_err se = {0};
    if (store_referral_of_case(snap, c->id, &r, &se)) /* not opened from a referral: nobody to tell */
        return se.kind == STORE_NOT_FOUND ? 0 : process_store_fail(&se, e);
    moved_notice *n = calloc(1, sizeof *n);
    if (!n) {
        referral_row_free(&r);
        return err_set(e, 503, "overloaded", "out of memory"), -1;
    }
    str_copy(n->referral_id, sizeof n->referral_id, r.id);
    str_copy(n->case_id, sizeof n->case_id, c->id);
    int rc = 0;
    /* Closed (seed 001 II.1: 사례관리 종결 시 의뢰 기관에 종결 통보): the referral's
     * closed_at, for a referral from an agency as for any other. */
    bool closing = !strcmp(c->stage, "closure") && !strcmp(c->status, "open");
    if (r.closed_at) str_copy(n->closed_at, sizeof n->closed_at, r.closed_at);
    else time_rfc3339(time_now_ms(), n->closed_at);
    if (org_is_agency(snap, r.from_org)) {
        /* 처리단계별 처리내용 (seed 001 부록3): each step; the closure as 완료 with its time */
        snprintf(n->agency, sizeof n->agency, "%s", r.from_org);
        n->closed = closing;
        json_t *data = json_pack("{s:s, s:o, s:s, s:s, s:s, s:o}", "referral_id", n->referral_id, "agency_ref",
                                 r.agency_ref ? json_string(r.agency_ref) : json_null(), "case_id", c->id, "stage",
                                 c->stage, "status", c->status, "closed_at",
                                 closing || r.closed_at ? json_string(n->closed_at) : json_null());
        rc = agency_payload(r.from_org, "progress", data, &n->payload, e);
        json_decref(data);
    } else if (closing) {
        n->closed = n->review = true;
        str_copy(n->from_org, sizeof n->from_org, r.from_org);
        str_copy(n->from_case_id, sizeof n->from_case_id, r.from_case_id ? r.from_case_id : "");
    }
    referral_row_free(&r);
    if (rc) {
        notice_release(n);
        return -1;
    }
    *out = (engine_extra){notice_apply, notice_release, n};
    return 0;
}

void referrals_init(void) { engine_observe_moves(referred_case_moved); }

/* ---- government-wide referrals from agencies (seed 001 부록3) ---- */
typedef struct {
    const principal *p;
    const referral_inbound *in;
    const char *id;
    const agency_update *upd;
    char mapped[24];
    char gen[17];
} agency_arg;

static int work_inbound(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    agency_arg *a = arg;
    const referral_inbound *in = a->in;
    char to_org[64];
    store_err se = {0};
    if (in->to_org) {
        str_copy(to_org, sizeof to_org, in->to_org);
    } else if (store_org_by_area(tx, in->dong_code, to_org, &se)) {
        process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_area", "no dong community centre serves area '%s'",
                            in->dong_code);
        if (se.kind == STORE_NOT_FOUND) err_detail(e, "field", json_string("dong_code"));
        return -1;
    }
    org_row org;
    if (store_org_get(tx, to_org, &org, &se)) {
        process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_org", "no organisation '%s'", to_org);
        if (se.kind == STORE_NOT_FOUND) err_detail(e, "field", json_string("to_org"));
        return -1;
    }
    bool local = !strcmp(org.type, "emd") || !strcmp(org.type, "district");
    bool region_ok = !in->region || !strcmp(in->region, org.region);
    org_row_free(&org);
    if (!local || !region_ok) {
        err_set(e, 422, "unknown_org", "'%s' is not a local government office%s", to_org,
                region_ok ? "" : " of that region");
        err_detail(e, "field", json_string(in->to_org ? "to_org" : "dong_code"));
        return -1;
    }
    /* The person becomes known to the receiving dong only: as the record
     * it has of them already (the same number: one person, one record), or
     * as a new one. */
    principal as_dong = *a->p;
    str_copy(as_dong.org, sizeof as_dong.org, to_org);
    person_row person;
    char known[ID_MAX];
    bool had = in->person->rrn && !store_person_by_rrn(tx, to_org, in->person->rrn, known, &se);
    if (!had && se.kind != STORE_OK && se.kind != STORE_NOT_FOUND) return process_store_fail(&se, e);
    if (had ? store_person_get(tx, &as_dong, known, &person, &se)
            : store_person_insert(tx, &as_dong, in->person, &person, &se))
        return process_store_fail(&se, e);
    json_t *snapshot = json_pack("{s:o, s:{s:s}}", "person", render_person(&person), "agency", "id", a->p->org);
    if (had) /* what the agency sent, beside the record the dong has (never the number) */
        json_object_set_new(snapshot, "person_sent",
                            json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "name", in->person->name, "birth_date",
                                      in->person->birth_date, "sex", in->person->sex, "phone", in->person->phone,
                                      "address", in->person->address));
    referral_in r = {.person_id = person.id, .from_org = a->p->org, .to_org = to_org, .reason = in->reason,
                     .opinion = in->opinion, .by = a->p->user, .agency_ref = in->agency_ref, .snapshot = snapshot};
    char id[ID_MAX], due[11];
    int rc = store_referral_insert(tx, &r, id, &se) ? process_store_fail(&se, e) : 0;
    due_in(FIRST_CONTACT_DAYS, due);
    if (!rc) rc = deadline_set(tx, to_org, id, "first_contact", "범정부 의뢰 초기 연락 (14일 이내)", due, e);
    person_row_free(&person);
    json_decref(snapshot);
    if (rc || referral_answer(tx, a->p, id, 201, reply, e)) return -1;
    if (in->warnings) json_object_set_new(reply->body, "warnings", json_incref(in->warnings));
    return 0;
}

int process_referral_inbound(const principal *p, const referral_inbound *in, const store_idem *idem,
                             store_reply *reply, err_t *e)
{
    if (!rules_agency_known(p->org)) {
        err_set(e, 403, "forbidden", "no agency plugin connects '%s'; it cannot refer", p->org);
        return -1;
    }
    agency_arg a = {.p = p, .in = in};
    return process_write(idem, work_inbound, &a, reply, e);
}

/* An agency's news about a referral sent to it: received, in progress,
 * rejected (with a reason) or completed, in its own codes (mapped by its
 * plugin before the write). */
static int work_agency_status(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    agency_arg *a = arg;
    const agency_update *in = a->upd;
    referral_row r;
    store_err se = {0};
    if (referral_get(tx, a->p, a->id, &r, e)) return -1;
    int rc = -1;
    if (strcmp(r.to_org, a->p->org)) {
        err_set(e, 404, "not_found", "no referral '%s' sent to %s", a->id, a->p->org);
        goto done;
    }
    rc = store_referral_agency_status(tx, a->id, a->mapped, &se) ? process_store_fail(&se, e) : 0;
    if (!rc && !strcmp(r.status, "pending")) {
        bool rejected = !strcmp(a->mapped, "rejected");
        rc = referral_answered(tx, a->id, rejected ? "rejected" : "accepted", in->reason, a->p->user, NULL, e);
        if (!rc) rc = deadline_clear(tx, a->id, NULL, e);
    }
    json_t *ed = json_pack("{s:s, s:s, s:s, s:s?}", "referral_id", a->id, "agency", a->p->org, "status", a->mapped,
                           "reason", in->reason);
    event_on(tx, r.from_case_id, a->p->user, "agency_status", ed, a->gen, &rc, e);
    json_decref(ed);
    if (!rc) rc = referral_answer(tx, a->p, a->id, 200, reply, e);
done:
    referral_row_free(&r);
    return rc;
}

int process_referral_agency_status(const principal *p, const char *id, const agency_update *in,
                                   const store_idem *idem, store_reply *reply, err_t *e)
{
    agency_arg a = {.p = p, .id = id, .upd = in};
    if (!rules_agency_status(p->org, in->status, a.mapped)) {
        err_set(e, 422, "validation_failed", "status: '%s' means nothing to the %s connector", in->status, p->org);
        err_detail(e, "field", json_string("status"));
        return -1;
    }
    str_copy(a.gen, sizeof a.gen, rules_generation());
    return process_write(idem, work_agency_status, &a, reply, e);
}

/* ---- first contact (seed 001 부록3: 서비스 의뢰 건에 대해 가능한 14일 이내
 * 유선연락 후 의뢰접수처리) ---- */
typedef struct {
    const principal *p;
    const char *id;
    const referral_contact_in *in;
    bool from_agency;
    json_t *payload; /* the agency hears of the first contact that reached the person */
} contact_arg;

static int decide_contact(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    contact_arg *a = arg;
    referral_row r;
    if (load_inbound(tx, a->p, a->id, &r, e)) return -1;
    a->from_agency = org_is_agency(tx, r.from_org);
    int rc = 0;
    if (a->from_agency && a->in->reached) {
        json_t *data = json_pack("{s:s, s:o, s:s, s:s, s:s}", "referral_id", r.id, "agency_ref",
                                 r.agency_ref ? json_string(r.agency_ref) : json_null(), "stage", "first_contact",
                                 "status", "pending", "contacted_on", a->in->contacted_on);
        rc = agency_payload(r.from_org, "progress", data, &a->payload, e);
        json_decref(data);
    }
    referral_row_free(&r);
    return rc;
}

static int apply_contact(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    contact_arg *a = arg;
    referral_row r;
    if (load_inbound(tx, a->p, a->id, &r, e)) return -1;
    char from_org[64];
    str_copy(from_org, sizeof from_org, r.from_org);
    referral_row_free(&r);
    referral_contact_list before;
    store_err se = {0};
    if (store_referral_contacts(tx, a->id, &before, &se)) return process_store_fail(&se, e);
    bool first = true;
    for (size_t i = 0; i < before.n; i++) first &= !before.items[i].reached;
    referral_contact_list_free(&before);
    if (store_referral_contact_insert(tx, a->id, a->in->contacted_on, a->in->method, a->in->reached, a->in->note,
                                      a->p->user, &se))
        return process_store_fail(&se, e);
    if (a->in->reached && first) {
        if (deadline_clear(tx, a->id, "first_contact", e)) return -1;
        if (a->payload && outbox_enqueue(tx, from_org, a->id, "progress", a->payload, e)) return -1;
    }
    return referral_answer(tx, a->p, a->id, 201, reply, e);
}

int process_referral_contact(const principal *p, const char *id, const referral_contact_in *in,
                             const store_idem *idem, store_reply *reply, err_t *e)
{
    if (idem && process_replay(idem, reply, e)) return reply->replayed ? 0 : -1;
    contact_arg a = {.p = p, .id = id, .in = in};
    store_reply none = {0};
    int rc = process_read(decide_contact, &a, &none, e);
    if (!rc) rc = process_write(idem, apply_contact, &a, reply, e);
    json_decref(a.payload);
    if (!rc) outbound_kick();
    return rc;
}
