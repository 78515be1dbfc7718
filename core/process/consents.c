/*
 * consents.c: a person's consents (seed 003 정보공유 동의): the purpose,
 * the organisations named, the period (counseling a week, case management
 * and referral up to three months), and revocation. Referrals and the
 * one-screen view read them through store_consent_valid_for.
 */
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "process/process.h"
#include "render/render.h"
#include "store/store.h"

typedef struct {
    const principal *p;
    const consent_in *in;
    const char *person_id, *id;
} consent_arg;

/* The person, visible to p (404 otherwise). */
static int person_visible(store_tx *tx, const principal *p, const char *person_id, err_t *e)
{
    store_err se = {0};
    if (store_person_visible(tx, p, person_id, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no person '%s'", person_id);
    return 0;
}

static int work_consent(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    consent_arg *a = arg;
    const consent_in *in = a->in;
    store_err se = {0};
    size_t i;
    json_t *org;
    json_array_foreach(in->scope, i, org) {
        org_row o;
        if (store_org_get(tx, json_string_value(org), &o, &se)) {
            /* as it always was: whatever the store said, the scope names no organisation it knows */
            err_set(e, 422, "unknown_org", "scope[%zu]: no organisation '%s'", i, json_string_value(org));
            err_detail(e, "field", json_sprintf("scope[%zu]", i));
            return -1;
        }
        org_row_free(&o);
    }
    if (person_visible(tx, a->p, in->person_id, e)) return -1;
    consent_row c;
    if (store_consent_insert(tx, a->p, in, &c, &se)) return process_store_fail(&se, e);
    reply->status = 201;
    reply->body = render_consent(&c);
    consent_row_free(&c);
    return 0;
}

int process_consent_create(const principal *p, consent_in *in, const store_idem *idem, store_reply *reply, err_t *e)
{
    /* Periods by purpose (seed 003 원스크린 정보공유 동의: counseling a week,
     * case management up to three months). */
    int max_days = !strcmp(in->purpose, "counseling") ? 7 : 0;
    char today[11], from[11], until[11], limit[11];
    date_today_str(today);
    str_copy(from, sizeof from, in->valid_from ? in->valid_from : today);
    if (!(max_days ? date_add_days(from, max_days, limit) : date_add_months(from, 3, limit))) {
        err_set(e, 422, "validation_failed", "valid_from: %s is out of range", from);
        err_detail(e, "field", json_string("valid_from"));
        return -1;
    }
    str_copy(until, sizeof until, in->valid_until ? in->valid_until : limit);
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
    consent_arg a = {.p = p, .in = in};
    return process_write(idem, work_consent, &a, reply, e);
}

static int work_consents(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    consent_arg *a = arg;
    consent_list list;
    store_err se = {0};
    if (person_visible(tx, a->p, a->person_id, e)) return -1;
    if (store_consent_list(tx, a->person_id, &list, &se)) return process_store_fail(&se, e);
    reply->status = 200;
    reply->body = render_page(render_consents(&list), false, NULL);
    consent_list_free(&list);
    return 0;
}

int process_consents(const principal *p, const char *person_id, store_reply *reply, err_t *e)
{
    consent_arg a = {.p = p, .person_id = person_id};
    return process_read(work_consents, &a, reply, e);
}

static int work_revoke(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    consent_arg *a = arg;
    consent_row c;
    store_err se = {0};
    if (person_visible(tx, a->p, a->person_id, e)) return -1;
    if (store_consent_revoke(tx, a->p, a->person_id, a->id, &c, &se)) {
        if (se.kind == STORE_NOT_FOUND)
            return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no consent '%s' of this person",
                                       a->id);
        return process_store_error(&se, e, STORE_CONFLICT, 409, "consent_revoked", "consent %s is already revoked",
                                   a->id);
    }
    reply->status = 200;
    reply->body = render_consent(&c);
    consent_row_free(&c);
    return 0;
}

int process_consent_revoke(const principal *p, const char *person_id, const char *id, store_reply *reply, err_t *e)
{
    consent_arg a = {.p = p, .person_id = person_id, .id = id};
    return process_write(NULL, work_revoke, &a, reply, e);
}
