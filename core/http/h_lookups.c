/* h_lookups.c: a provider head's approval of a person's look-up (seed 003
 * 정보조회 승인) and the first contact with a referred person (seed 001 부록3
 * 유선연락). */
#include <string.h>

#include "http/internal.h"
#include "process/lookups.h"

void h_lookup_approvals_create(req *r)
{
    static const char *const known[] = {"user", "consent_id", NULL};
    err_t e = {0};
    const char *user, *consent;
    if (fields_known(r->json, known, &e) || field_string(r->json, "user", true, 120, &user, &e) ||
        field_string(r->json, "consent_id", true, 64, &consent, &e))
        return respond_error(r, &e);
    store_reply reply = {0};
    if (process_lookup_approve(&r->who, r->params[0], user, consent, &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_lookup_approvals_list(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    if (process_lookup_approvals(&r->who, r->params[0], &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_referrals_contact(req *r)
{
    static const char *const known[] = {"contacted_on", "method", "reached", "note", NULL};
    static const char *const methods[] = {"phone", "visit", "other", NULL};
    err_t e = {0};
    referral_contact_in in = {0};
    if (fields_known(r->json, known, &e) || field_date(r->json, "contacted_on", true, &in.contacted_on, &e) ||
        field_enum(r->json, "method", true, methods, &in.method, &e) ||
        field_string(r->json, "note", false, 4000, &in.note, &e))
        return respond_error(r, &e);
    json_t *reached = json_object_get(r->json, "reached");
    if (!json_is_boolean(reached)) {
        err_set(&e, 400, "validation_failed", "reached: is required: true when the person was reached");
        err_detail(&e, "field", json_string("reached"));
        return respond_error(r, &e);
    }
    in.reached = json_is_true(reached);
    store_idem ib;
    store_reply reply = {0};
    if (process_referral_contact(&r->who, r->params[0], &in, req_idem(r, &ib), &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}
