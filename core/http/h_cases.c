/* h_cases.c: cases and their event history. */
#include <string.h>

#include "http/internal.h"
#include "process/process.h"

static const char *const SOURCES[] = {"walk_in", "outreach", "referral", "gov_referral", "data_match", NULL};
static const char *const STATUSES[] = {"open", "follow_up", "ended", NULL};

void h_cases_create(req *r)
{
    static const char *const known[] = {"person_id",   "program",     "org", "source",
                                        "referral_id", "assigned_to", NULL};
    err_t e = {0};
    case_open_in in = {0};
    if (fields_known(r->json, known, &e) || field_string(r->json, "person_id", true, 64, &in.person_id, &e) ||
        field_string(r->json, "program", true, 64, &in.program, &e) ||
        field_string(r->json, "org", false, 64, &in.org, &e) ||
        field_enum(r->json, "source", true, SOURCES, &in.source, &e) ||
        field_string(r->json, "referral_id", false, 64, &in.referral_id, &e) ||
        field_string(r->json, "assigned_to", false, 127, &in.assigned_to, &e))
        return respond_error(r, &e);
    if (!in.org) in.org = r->who.org;
    store_idem ib;
    store_reply reply = {0};
    if (process_case_open(&r->who, &in, req_idem(r, &ib), &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_cases_get(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    if (process_case_get(&r->who, r->params[0], &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_cases_list(req *r)
{
    char program[64], stage[64], org[64], status[32], after[128];
    case_query q = {0};
    bool has_after;
    int rc;
    if ((rc = query_get(r, "program", program, sizeof program)) < 0) return;
    if (rc) q.program = program;
    if ((rc = query_get(r, "stage", stage, sizeof stage)) < 0) return;
    if (rc) {
        if (!process_stage_known(stage)) {
            respond_err(r, 400, "invalid_query", "stage '%s' is not a standard stage", stage);
            return;
        }
        q.stage = stage;
    }
    if ((rc = query_get(r, "org", org, sizeof org)) < 0) return;
    if (rc) q.org = org;
    if ((rc = query_get(r, "status", status, sizeof status)) < 0) return;
    if (rc) {
        bool ok = false;
        for (const char *const *s = STATUSES; *s; s++) ok |= !strcmp(*s, status);
        if (!ok) {
            respond_err(r, 400, "invalid_query", "status must be open, follow_up or ended");
            return;
        }
        q.status = status;
    }
    char assignee[128];
    if ((rc = query_assignee(r, assignee, sizeof assignee)) < 0) return;
    if (rc) q.assigned_to = assignee;
    char overdue[8], today[11];
    if ((rc = query_get(r, "overdue", overdue, sizeof overdue)) < 0) return;
    if (rc) {
        if (strcmp(overdue, "true") && strcmp(overdue, "false")) {
            respond_err(r, 400, "invalid_query", "overdue must be true or false");
            return;
        }
        if (!strcmp(overdue, "true")) { /* an open deadline due before today */
            date_today_str(today);
            q.overdue_on = today;
        }
    }
    if (query_page(r, &q.limit, after, sizeof after, &has_after)) return;
    q.after = has_after ? after : NULL;
    err_t e = {0};
    store_reply reply = {0};
    if (process_case_list(&r->who, &q, &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

/* Reassigns a case (supervisors and admins): {assigned_to, note?, version?}. */
void h_cases_assign(req *r)
{
    static const char *const known[] = {"assigned_to", "note", "version", NULL};
    err_t e = {0};
    assignment_in in = {0};
    if (fields_known(r->json, known, &e) || field_string(r->json, "assigned_to", true, 127, &in.assigned_to, &e) ||
        field_string(r->json, "note", false, 2000, &in.note, &e))
        return respond_error(r, &e);
    json_t *v = json_object_get(r->json, "version");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 2147483647) {
            err_set(&e, 400, "validation_failed", "version: the case version you last saw (a positive integer)");
            err_detail(&e, "field", json_string("version"));
            return respond_error(r, &e);
        }
        in.version = (int)json_integer_value(v);
    }
    store_idem ib;
    store_reply reply = {0};
    if (process_case_assign(&r->who, r->params[0], &in, req_idem(r, &ib), &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_cases_events(req *r)
{
    char after[128];
    int limit;
    bool has_after;
    if (query_page(r, &limit, after, sizeof after, &has_after)) return;
    err_t e = {0};
    store_reply reply = {0};
    if (process_case_events(&r->who, r->params[0], limit, has_after ? after : NULL, &reply, &e))
        return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_cases_transition(req *r)
{
    static const char *const known[] = {"to", "version", "data", "note", "reopen", NULL};
    err_t e = {0};
    transition_in in = {0};
    if (fields_known(r->json, known, &e) || field_string(r->json, "to", true, 32, &in.to, &e) ||
        field_string(r->json, "note", false, 4000, &in.note, &e))
        return respond_error(r, &e);
    json_t *v = json_object_get(r->json, "version");
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 2147483647) {
        respond_err(r, 400, "validation_failed", "version: the case version you last saw (a positive integer) is required");
        return;
    }
    in.version = (int)json_integer_value(v);
    json_t *data = json_object_get(r->json, "data");
    if (data && !json_is_null(data) && !json_is_object(data)) {
        respond_err(r, 400, "validation_failed", "data: must be an object");
        return;
    }
    in.data = json_is_object(data) ? data : NULL;
    json_t *reopen = json_object_get(r->json, "reopen");
    if (reopen && !json_is_boolean(reopen)) {
        respond_err(r, 400, "validation_failed", "reopen: must be true or false");
        return;
    }
    in.reopen = json_is_true(reopen);
    store_idem ib;
    store_reply reply = {0};
    if (process_case_transition(&r->who, r->params[0], &in, req_idem(r, &ib), &reply, &e))
        return respond_error(r, &e);
    respond_reply(r, &reply);
}

/* Bulk export of cases, de-identified (RRN, name, contacts never leave). */
void h_cases_export(req *r)
{
    char after[128];
    int limit;
    bool has_after;
    if (query_page(r, &limit, after, sizeof after, &has_after)) return;
    err_t e = {0};
    store_reply reply = {0};
    if (process_case_export(&r->who, limit, has_after ? after : NULL, &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}
