/*
 * lookups.c: one-screen access outside the organisation that holds a
 * person's record, and the provider head's approval of each person's
 * look-up (process/lookups.h; seed 003 정보공유).
 */
#include "process/lookups.h"

#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "store/lookups.h"

/* What a consent may open the one-screen view for (seed 003: 상담안내, 사례관리). */
static const char *const SHARING[] = {"counseling", "case_management", NULL};

static bool local_government(const principal *p)
{
    return !strcmp(p->org_type, "emd") || !strcmp(p->org_type, "district");
}

/* Why consent c does not let p look the person up today, or NULL. A local
 * government office is not held to the consent's period: "별도의 조회가능
 * 기간 제한은 없으며, 행복e음 내 복지대상자 정보 폐기 후에는 조회 불가". */
static const char *refusal(const consent_row *c, const principal *p, const char *today)
{
    const char *why = store_consent_refusal(c, p->org, SHARING, today);
    if (why && local_government(p) && !strcmp(why, "it has expired"))
        why = store_consent_refusal(c, p->org, SHARING, c->valid_until);
    return why;
}

int process_one_screen_access(store_tx *tx, const principal *p, const char *person_id, char consent[ID_MAX],
                              err_t *e)
{
    consent[0] = 0;
    char today[11];
    date_today_str(today);
    consent_list list;
    store_err se = {0};
    if (store_consent_list(tx, person_id, &list, &se)) return process_store_fail(&se, e);
    for (size_t i = 0; i < list.n; i++)
        if (!refusal(&list.items[i], p, today)) str_copy(consent, ID_MAX, list.items[i].id);
    if (!consent[0]) {
        /* A consent that named this organisation once (now past its period)
         * says so; with none, the person's existence is not told. */
        bool named = false;
        for (size_t i = 0; i < list.n && !named; i++)
            named = list.items[i].valid_until &&
                    !store_consent_refusal(&list.items[i], p->org, SHARING, list.items[i].valid_until);
        consent_list_free(&list);
        if (!named) {
            ONE_SCREEN_HIDDEN(e, person_id, p->org);
            return -1;
        }
        err_set(e, 403, "consent_required",
                "the person's one-screen is shared with %s only under a valid consent naming it", p->org);
        return -1;
    }
    if (strcmp(p->org_type, "provider")) {
        consent_list_free(&list);
        return 0;
    }
    /* A provider's worker: the head's approval of this person's look-up, under
     * a consent still valid. */
    lookup_approval_list approvals;
    if (store_lookup_approvals(tx, p->org, person_id, p->user, &approvals, &se)) {
        consent_list_free(&list);
        return process_store_fail(&se, e);
    }
    bool approved = false;
    for (size_t i = 0; i < approvals.n && !approved; i++) {
        if (approvals.items[i].revoked_at) continue;
        for (size_t j = 0; j < list.n && !approved; j++)
            if (!strcmp(list.items[j].id, approvals.items[i].consent_id) && !refusal(&list.items[j], p, today)) {
                approved = true;
                str_copy(consent, ID_MAX, list.items[j].id);
            }
    }
    lookup_approval_list_free(&approvals);
    consent_list_free(&list);
    if (!approved) {
        err_set(e, 403, "lookup_approval_required",
                "the head of %s approves %s's look-up of this person first (사회서비스 제공기관의 장의 정보조회 승인)",
                p->org, p->user);
        return -1;
    }
    return 0;
}

static json_t *approval_json(const lookup_approval_row *a)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "id", a->id, "org", a->org, "person_id",
                     a->person_id, "user", a->user, "consent_id", a->consent_id, "approved_by", a->approved_by,
                     "approved_at", a->approved_at, "revoked_at",
                     a->revoked_at ? json_string(a->revoked_at) : json_null());
}

typedef struct {
    const principal *p;
    const char *person_id, *user, *consent_id;
} approve_arg;

static int work_approve(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    approve_arg *a = arg;
    store_err se = {0};
    char owner[64];
    if (store_person_owner(tx, a->person_id, owner, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no person '%s'", a->person_id);
    if (strcmp(a->p->org_type, "provider")) {
        err_set(e, 409, "not_needed",
                "only a private provider's workers need their head's approval of a look-up; %s is a %s", a->p->org,
                a->p->org_type);
        return -1;
    }
    consent_row c;
    if (store_consent_get(tx, a->person_id, a->consent_id, &c, &se)) {
        process_store_error(&se, e, STORE_NOT_FOUND, 422, "consent_invalid", "no consent '%s' of this person",
                            a->consent_id);
        if (se.kind == STORE_NOT_FOUND) err_detail(e, "field", json_string("consent_id"));
        return -1;
    }
    char today[11];
    date_today_str(today);
    const char *why = refusal(&c, a->p, today);
    consent_row_free(&c);
    if (why) {
        err_set(e, 422, "consent_invalid", "consent %s does not let %s look this person up: %s", a->consent_id,
                a->p->org, why);
        err_detail(e, "field", json_string("consent_id"));
        err_detail(e, "reason", json_string(why));
        return -1;
    }
    lookup_approval_row row;
    if (store_lookup_approval_insert(tx, a->p->org, a->person_id, a->user, a->consent_id, a->p->user, &row, &se))
        return process_store_fail(&se, e);
    reply->status = 201;
    reply->body = approval_json(&row);
    lookup_approval_row_free(&row);
    return 0;
}

int process_lookup_approve(const principal *p, const char *person_id, const char *user, const char *consent_id,
                           store_reply *reply, err_t *e)
{
    approve_arg a = {p, person_id, user, consent_id};
    return process_write(NULL, work_approve, &a, reply, e);
}

static int work_approvals(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    approve_arg *a = arg;
    store_err se = {0};
    /* The caller's own approvals for the person: of a person it sees, or
     * one it has approved look-ups of; anyone else is told nothing exists
     * (an empty list would say the person does). */
    bool sees = store_person_visible(tx, a->p, a->person_id, &se) == 0;
    if (!sees && se.kind != STORE_NOT_FOUND) return process_store_fail(&se, e);
    lookup_approval_list l;
    if (store_lookup_approvals(tx, a->p->org, a->person_id, NULL, &l, &se)) return process_store_fail(&se, e);
    if (!sees && l.n == 0) {
        lookup_approval_list_free(&l);
        err_set(e, 404, "not_found", "no person '%s'", a->person_id);
        return -1;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < l.n; i++) json_array_append_new(items, approval_json(&l.items[i]));
    lookup_approval_list_free(&l);
    reply->status = 200;
    reply->body = json_pack("{s:o, s:n}", "items", items, "next_cursor");
    return 0;
}

int process_lookup_approvals(const principal *p, const char *person_id, store_reply *reply, err_t *e)
{
    approve_arg a = {.p = p, .person_id = person_id};
    return process_read(work_approvals, &a, reply, e);
}
