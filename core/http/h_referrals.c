/* h_referrals.c: consents of a person and referrals between programs and
 * organisations. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "http/internal.h"
#include "process/process.h"

static const char *const PURPOSES[] = {"counseling", "case_management", "referral", NULL};
static const char *const ATTACHABLE[] = {"counseling", "assessment", NULL};

void h_consents_create(req *r)
{
    static const char *const known[] = {"purpose", "scope", "valid_from", "valid_until", NULL};
    err_t e = {0};
    consent_in in = {.person_id = r->params[0]};
    if (fields_known(r->json, known, &e) || field_enum(r->json, "purpose", true, PURPOSES, &in.purpose, &e) ||
        field_string_array(r->json, "scope", 50, 64, &in.scope, &e) ||
        field_date(r->json, "valid_from", false, &in.valid_from, &e) ||
        field_date(r->json, "valid_until", false, &in.valid_until, &e))
        return respond_error(r, &e);
    if (!in.scope || json_array_size(in.scope) == 0) {
        err_set(&e, 400, "validation_failed", "scope: the organisations the person agrees to share with (at least one)");
        err_detail(&e, "field", json_string("scope"));
        return respond_error(r, &e);
    }
    store_idem ib;
    store_reply reply = {0};
    if (process_consent_create(&r->who, &in, req_idem(r, &ib), &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_consents_list(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    if (process_consents(&r->who, r->params[0], &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_consents_revoke(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    if (process_consent_revoke(&r->who, r->params[0], r->params[1], &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

/* A government-wide referral from an agency (agency token). */
static void referral_from_agency(req *r)
{
    static const char *const known[] = {"person", "to_org", "dong_code", "region", "reason", "opinion", "agency_ref",
                                        NULL};
    err_t e = {0};
    referral_inbound in = {0};
    person_in person;
    char digits[14] = "", birth[11];
    if (fields_known(r->json, known, &e) || field_string(r->json, "to_org", false, 64, &in.to_org, &e) ||
        field_string(r->json, "dong_code", false, 16, &in.dong_code, &e) ||
        field_string(r->json, "region", false, 10, &in.region, &e) ||
        field_string(r->json, "reason", true, 2000, &in.reason, &e) ||
        field_string(r->json, "opinion", true, 4000, &in.opinion, &e) ||
        field_string(r->json, "agency_ref", false, 128, &in.agency_ref, &e))
        return respond_error(r, &e);
    if (!in.to_org && !in.dong_code) {
        err_set(&e, 400, "validation_failed", "dong_code: the dong of the person's address (or to_org) is required");
        err_detail(&e, "field", json_string("dong_code"));
        return respond_error(r, &e);
    }
    json_t *warnings = NULL;
    if (person_from_json(json_object_get(r->json, "person"), false, &person, digits, birth, &warnings, &e)) {
        json_t *f = json_object_get(e.details, "field");
        if (f && strcmp(json_string_value(f), "person")) {
            char nested[96];
            snprintf(nested, sizeof nested, "person.%s", json_string_value(f));
            err_detail(&e, "field", json_string(nested));
        }
        return respond_error(r, &e);
    }
    in.person = &person;
    in.warnings = warnings;
    store_idem ib;
    store_reply reply = {0};
    int rc = process_referral_inbound(&r->who, &in, req_idem(r, &ib), &reply, &e);
    sodium_memzero(digits, sizeof digits);
    json_decref(warnings);
    if (rc) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_referrals_agency_status(req *r)
{
    static const char *const known[] = {"status", "reason", NULL};
    err_t e = {0};
    agency_update in = {0};
    if (fields_known(r->json, known, &e) || field_string(r->json, "status", true, 32, &in.status, &e) ||
        field_string(r->json, "reason", false, 2000, &in.reason, &e))
        return respond_error(r, &e);
    store_idem ib;
    store_reply reply = {0};
    if (process_referral_agency_status(&r->who, r->params[0], &in, req_idem(r, &ib), &reply, &e))
        return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_outbox_list(req *r)
{
    char status[16], after[128];
    int limit;
    bool has_after;
    int rc = query_get(r, "status", status, sizeof status);
    if (rc < 0) return;
    if (rc && strcmp(status, "queued") && strcmp(status, "delivered") && strcmp(status, "dead")) {
        respond_err(r, 400, "invalid_query", "status must be queued, delivered or dead");
        return;
    }
    if (query_page(r, &limit, after, sizeof after, &has_after)) return;
    err_t e = {0};
    store_reply reply = {0};
    if (process_outbox_list(&r->who, rc ? status : NULL, limit, has_after ? after : NULL, &reply, &e))
        return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_outbox_retry(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    if (process_outbox_retry(&r->who, r->params[0], &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_referrals_create(req *r)
{
    if (!strcmp(r->who.role, "agency")) return referral_from_agency(r);
    static const char *const known[] = {"person_id", "from_case_id", "to_program", "to_org", "to_agency", "reason",
                                        "opinion", "consent_id", "attach", NULL};
    err_t e = {0};
    referral_post in = {0};
    const char *agency;
    json_t *attach;
    if (fields_known(r->json, known, &e) || field_string(r->json, "person_id", true, 64, &in.person_id, &e) ||
        field_string(r->json, "from_case_id", false, 64, &in.from_case_id, &e) ||
        field_string(r->json, "to_program", false, 64, &in.to_program, &e) ||
        field_string(r->json, "to_org", false, 64, &in.to_org, &e) ||
        field_string(r->json, "to_agency", false, 64, &agency, &e) ||
        field_string(r->json, "reason", true, 2000, &in.reason, &e) ||
        field_string(r->json, "opinion", true, 4000, &in.opinion, &e) ||
        field_string(r->json, "consent_id", true, 64, &in.consent_id, &e) ||
        field_string_array(r->json, "attach", 2, 32, &attach, &e))
        return respond_error(r, &e);
    if (agency && in.to_org) {
        err_set(&e, 400, "validation_failed", "to_agency: give to_org or to_agency, not both");
        err_detail(&e, "field", json_string("to_agency"));
        return respond_error(r, &e);
    }
    if (agency) in.to_org = agency; /* agencies are organisations of type agency */
    if (!in.to_org) {
        err_set(&e, 400, "validation_failed", "to_org: the receiving organisation is required");
        err_detail(&e, "field", json_string("to_org"));
        return respond_error(r, &e);
    }
    const char *kinds[3] = {NULL, NULL, NULL};
    size_t i;
    json_t *k;
    json_array_foreach(attach, i, k) {
        bool ok = false;
        for (const char *const *a = ATTACHABLE; *a && !ok; a++) ok = !strcmp(*a, json_string_value(k));
        if (!ok) {
            err_set(&e, 400, "validation_failed", "attach: counseling and/or assessment results");
            err_detail(&e, "field", json_string("attach"));
            return respond_error(r, &e);
        }
        kinds[i] = json_string_value(k);
    }
    if (attach && !in.from_case_id) {
        err_set(&e, 400, "validation_failed", "attach: results come from from_case_id, which is missing");
        err_detail(&e, "field", json_string("attach"));
        return respond_error(r, &e);
    }
    in.attach = kinds;
    store_idem ib;
    store_reply reply = {0};
    if (process_referral_create(&r->who, &in, req_idem(r, &ib), &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_referrals_list(req *r)
{
    char dir[8], status[16], after[128];
    referral_query q = {0};
    bool has_after;
    int rc = query_get(r, "direction", dir, sizeof dir);
    if (rc < 0) return;
    if (rc && strcmp(dir, "in") && strcmp(dir, "out")) {
        respond_err(r, 400, "invalid_query", "direction must be in (received) or out (sent)");
        return;
    }
    q.inbound = !rc || !strcmp(dir, "in");
    if ((rc = query_get(r, "status", status, sizeof status)) < 0) return;
    if (rc) {
        if (strcmp(status, "pending") && strcmp(status, "accepted") && strcmp(status, "rejected")) {
            respond_err(r, 400, "invalid_query", "status must be pending, accepted or rejected");
            return;
        }
        q.status = status;
    }
    if (query_page(r, &q.limit, after, sizeof after, &has_after)) return;
    q.after = has_after ? after : NULL;
    err_t e = {0};
    store_reply reply = {0};
    if (process_referrals(&r->who, &q, &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_referrals_get(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    if (process_referral_get(&r->who, r->params[0], &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_referrals_accept(req *r)
{
    static const char *const known[] = {"case_id", "program", "note", NULL};
    err_t e = {0};
    referral_accept in = {0};
    if (fields_known(r->json, known, &e) || field_string(r->json, "case_id", false, 64, &in.case_id, &e) ||
        field_string(r->json, "program", false, 64, &in.program, &e) ||
        field_string(r->json, "note", false, 4000, &in.note, &e))
        return respond_error(r, &e);
    store_idem ib;
    store_reply reply = {0};
    if (process_referral_accept(&r->who, r->params[0], &in, req_idem(r, &ib), &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_referrals_reject(req *r)
{
    static const char *const known[] = {"note", NULL};
    err_t e = {0};
    const char *note;
    if (fields_known(r->json, known, &e) || field_string(r->json, "note", true, 4000, &note, &e))
        return respond_error(r, &e);
    store_idem ib;
    store_reply reply = {0};
    if (process_referral_reject(&r->who, r->params[0], note, req_idem(r, &ib), &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_referrals_review(req *r)
{
    static const char *const known[] = {"appropriate", "note", NULL};
    err_t e = {0};
    const char *note;
    if (fields_known(r->json, known, &e) || field_string(r->json, "note", false, 4000, &note, &e))
        return respond_error(r, &e);
    json_t *ok = json_object_get(r->json, "appropriate");
    if (!json_is_boolean(ok)) {
        err_set(&e, 400, "validation_failed", "appropriate: true if the closure was appropriate, else false");
        err_detail(&e, "field", json_string("appropriate"));
        return respond_error(r, &e);
    }
    store_reply reply = {0};
    if (process_referral_review(&r->who, r->params[0], json_is_true(ok), note, &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}
