/* h_admin.c: organisations and tokens (administrators and system
 * operators; who may act on which organisation is process/orgs.c's), the
 * audit trail (auditors) and sharing rights. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "http/internal.h"
#include "process/process.h"


static bool plain_id(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') return false;
    return true;
}

void h_orgs_create(req *r)
{
    static const char *const known[] = {"id", "name", "type", "region", "programs", "area", NULL};
    err_t e = {0};
    org_in in = {0};
    if (fields_known(r->json, known, &e) || field_string(r->json, "id", false, 64, &in.id, &e) ||
        field_string(r->json, "name", true, 200, &in.name, &e) ||
        field_enum(r->json, "type", true, process_org_types, &in.type, &e) ||
        field_string(r->json, "region", true, 10, &in.region, &e) ||
        field_string_array(r->json, "programs", 64, 64, &in.programs, &e) ||
        field_string(r->json, "area", false, 16, &in.area, &e))
        return respond_error(r, &e);
    if (in.id && !plain_id(in.id)) {
        respond_err(r, 400, "validation_failed", "id: use letters, digits, '_', '-' or '.'");
        return;
    }
    for (const char *s = in.region; *s; s++)
        if (!isdigit((unsigned char)*s)) {
            respond_err(r, 400, "validation_failed",
                        "region: a numeric region code such as 11590");
            return;
        }
    store_idem ib;
    store_reply reply = {0};
    if (process_org_create(&r->who, &in, req_idem(r, &ib), &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_tokens_create(req *r)
{
    static const char *const known[] = {"user", "role", "org", "ttl_days", NULL};
    err_t e = {0};
    token_post in = {.ttl_days = r->cfg->auth_token_ttl_days};
    if (fields_known(r->json, known, &e) || field_string(r->json, "user", true, 120, &in.user, &e) ||
        field_enum(r->json, "role", true, process_roles, &in.role, &e) ||
        field_string(r->json, "org", false, 64, &in.org, &e))
        return respond_error(r, &e);
    bool op = !strcmp(in.role, "operator");
    if (op == (in.org != NULL)) {
        err_set(&e, 400, "validation_failed",
                op ? "org: a system operator's token belongs to no organisation" : "org: is required");
        err_detail(&e, "field", json_string("org"));
        return respond_error(r, &e);
    }
    json_t *ttl = json_object_get(r->json, "ttl_days");
    if (ttl && !json_is_null(ttl)) {
        if (!json_is_integer(ttl) || json_integer_value(ttl) < 1 || json_integer_value(ttl) > 3650) {
            err_set(&e, 400, "validation_failed", "ttl_days: an integer from 1 to 3650 (days until the token expires)");
            err_detail(&e, "field", json_string("ttl_days"));
            return respond_error(r, &e);
        }
        in.ttl_days = (int)json_integer_value(ttl);
    }
    store_idem ib;
    store_reply reply = {0};
    if (process_token_create(&r->who, &in, r->id, req_idem(r, &ib), &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_tokens_list(req *r)
{
    char org[128], after[128];
    token_query q = {0};
    bool has_after;
    int rc = query_get(r, "org", org, sizeof org);
    if (rc < 0) return;
    if (rc) q.org = org;
    if (query_page(r, &q.limit, after, sizeof after, &has_after)) return;
    q.after = has_after ? after : NULL;
    err_t e = {0};
    store_reply reply = {0};
    if (process_tokens_list(&r->who, &q, &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_tokens_revoke(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    if (process_token_revoke(&r->who, r->params[0], r->id, &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

/* The audit trail (auditors): who read or wrote whose data, when, why. */
void h_audit_list(req *r)
{
    char person[128], actor[128], since[64], after[64];
    audit_query q = {0};
    bool has_after;
    int rc;
    if ((rc = query_get(r, "person_id", person, sizeof person)) < 0) return;
    if (rc) q.person_id = person;
    if ((rc = query_get(r, "actor", actor, sizeof actor)) < 0) return;
    if (rc) q.actor = actor;
    if ((rc = query_get(r, "since", since, sizeof since)) < 0) return;
    if (rc) {
        /* A date or an RFC 3339 time: both compare as text with the stored times. */
        char date[11];
        int y, m, d;
        snprintf(date, sizeof date, "%.10s", since);
        if (!date_parse(date, &y, &m, &d) || (since[10] && since[10] != 'T')) {
            respond_err(r, 400, "invalid_query", "since must be a date (YYYY-MM-DD) or an RFC 3339 time");
            return;
        }
        q.since = since;
    }
    if (query_page(r, &q.limit, after, sizeof after, &has_after)) return;
    q.after = has_after ? after : NULL;
    err_t e = {0};
    store_reply reply = {0};
    if (process_audit_list(&r->who, &q, &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

/* Sharing rights of a private-provider worker (정보공유 권한). */
void h_sharing_right_set(req *r)
{
    static const char *const known[] = {"training_on", "pledge_on", NULL};
    err_t e = {0};
    const char *training, *pledge;
    if (fields_known(r->json, known, &e) || field_date(r->json, "training_on", true, &training, &e) ||
        field_date(r->json, "pledge_on", true, &pledge, &e))
        return respond_error(r, &e);
    store_reply reply = {0};
    if (process_sharing_right_set(&r->who, r->params[0], r->params[1], training, pledge, &reply, &e))
        return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_sharing_right_approve(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    if (process_sharing_right_approve(&r->who, r->params[0], r->params[1], &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_sharing_right_get(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    if (process_sharing_right_get(&r->who, r->params[0], r->params[1], &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}
