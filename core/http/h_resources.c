/* h_resources.c: welfare resources and their waitlist (seed 003 자원관리,
 * 자원 대기자): each handler checks the body's or query's shape and hands
 * it to process/resources.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"
#include "process/resources.h"

static int bad(err_t *e, const char *field, const char *msg)
{
    err_set(e, 400, "validation_failed", "%s: %s", field, msg);
    err_detail(e, "field", json_string(field));
    return -1;
}

static void answer(req *r, int rc, store_reply *reply, err_t *e)
{
    if (rc) return respond_error(r, e);
    respond_reply(r, reply);
}

/* An identifier-like word: need domains, target groups. */
static bool word_ok(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return false;
    return true;
}

static int words(json_t *obj, const char *name, bool required, json_t **out, err_t *e)
{
    if (field_string_array(obj, name, 20, 64, out, e)) return -1;
    if (!*out) {
        if (required) return bad(e, name, "is required: a list of lower_snake_case words");
        return 0;
    }
    if (required && json_array_size(*out) == 0) return bad(e, name, "must name at least one");
    size_t i;
    json_t *v;
    json_array_foreach(*out, i, v) if (!word_ok(json_string_value(v))) return bad(e, name, "each is a lower_snake_case word (economy, health, elderly ...)");
    return 0;
}

static int word(json_t *obj, const char *name, bool required, const char **out, err_t *e)
{
    if (field_string(obj, name, required, 64, out, e)) return -1;
    if (*out && !word_ok(*out)) return bad(e, name, "must be a lower_snake_case word");
    return 0;
}

void h_resources_create(req *r)
{
    static const char *const known[] = {"name", "provider", "distributor", "kind", "domains", "targets", "share_scope",
                                        "capacity", "period", "cost", "contact", "description", NULL};
    static const char *const provider_known[] = {"name", "type", NULL};
    static const char *const period_known[] = {"start", "end", NULL};
    err_t e = {0};
    resource_in in = {0};
    json_t *domains, *targets;
    if (fields_known(r->json, known, &e) || field_string(r->json, "name", true, 200, &in.name, &e) ||
        field_string(r->json, "distributor", false, 200, &in.distributor, &e) ||
        field_enum(r->json, "kind", true, resource_kinds, &in.kind, &e) ||
        words(r->json, "domains", true, &domains, &e) || words(r->json, "targets", false, &targets, &e) ||
        field_enum(r->json, "share_scope", false, resource_share_scopes, &in.share_scope, &e) ||
        field_string(r->json, "cost", false, 200, &in.cost, &e) ||
        field_string(r->json, "contact", false, 200, &in.contact, &e) ||
        field_string(r->json, "description", false, 4000, &in.description, &e))
        return respond_error(r, &e);
    json_t *prov = json_object_get(r->json, "provider");
    if (!json_is_object(prov) || fields_known(prov, provider_known, &e) ||
        field_string(prov, "name", true, 200, &in.provider_name, &e) ||
        field_enum(prov, "type", true, resource_provider_types, &in.provider_type, &e)) {
        json_t *f = json_object_get(e.details, "field");
        char nested[64];
        snprintf(nested, sizeof nested, "provider%s%s", f ? "." : "", f ? json_string_value(f) : "");
        if (!e.status) bad(&e, "provider", "must be {name, type: person|business|group|facility|agency}");
        err_detail(&e, "field", json_string(nested));
        return respond_error(r, &e);
    }
    json_t *period = json_object_get(r->json, "period");
    if (period && !json_is_null(period)) {
        if (!json_is_object(period) || fields_known(period, period_known, &e) ||
            field_date(period, "start", false, &in.period_start, &e) ||
            field_date(period, "end", false, &in.period_end, &e)) {
            json_t *f = json_object_get(e.details, "field");
            char nested[64];
            snprintf(nested, sizeof nested, "period%s%s", f ? "." : "", f ? json_string_value(f) : "");
            if (!e.status) bad(&e, "period", "must be {start?, end?} dates");
            err_detail(&e, "field", json_string(nested));
            return respond_error(r, &e);
        }
        if (in.period_start && in.period_end && strcmp(in.period_end, in.period_start) < 0) {
            bad(&e, "period.end", "ends before it starts");
            return respond_error(r, &e);
        }
    }
    json_t *cap = json_object_get(r->json, "capacity");
    if (cap && !json_is_null(cap)) {
        if (!json_is_integer(cap) || json_integer_value(cap) < 0 || json_integer_value(cap) > 1000000) {
            bad(&e, "capacity", "seats or quantity: an integer from 0 to 1000000, or null (not limited)");
            return respond_error(r, &e);
        }
        in.has_capacity = true;
        in.capacity = json_integer_value(cap);
    }
    in.domains = domains;
    json_t *no_targets = targets ? NULL : json_array();
    in.targets = targets ? targets : no_targets;
    if (!in.share_scope) in.share_scope = "district";
    store_idem ib;
    store_reply reply = {0};
    int rc = process_resource_create(&r->who, &in, req_idem(r, &ib), &reply, &e);
    json_decref(no_targets);
    answer(r, rc, &reply, &e);
}

void h_resources_list(req *r)
{
    char domain[72], kind[16], target[72], region[16], available[8], after[160];
    resource_query q = {0};
    bool has_after;
    int rc;
    if ((rc = query_get(r, "domain", domain, sizeof domain)) < 0) return;
    if (rc) q.domain = domain;
    if ((rc = query_get(r, "kind", kind, sizeof kind)) < 0) return;
    if (rc) q.kind = kind;
    if ((rc = query_get(r, "target", target, sizeof target)) < 0) return;
    if (rc) q.target = target;
    if ((rc = query_region(r, region, sizeof region)) < 0) return;
    if (rc) q.region = region;
    if ((rc = query_get(r, "available", available, sizeof available)) < 0) return;
    if (rc) {
        if (strcmp(available, "true") && strcmp(available, "false")) {
            respond_err(r, 400, "invalid_query", "available must be true or false");
            return;
        }
        q.available = !strcmp(available, "true");
    }
    if (query_page(r, &q.limit, after, sizeof after, &has_after)) return;
    q.after = has_after ? after : NULL;
    err_t e = {0};
    store_reply reply = {0};
    answer(r, process_resource_list(&r->who, &q, &reply, &e), &reply, &e);
}

void h_resources_get(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    answer(r, process_resource_get(&r->who, r->params[0], &reply, &e), &reply, &e);
}

void h_resources_capacity(req *r)
{
    static const char *const known[] = {"capacity", "version", NULL};
    err_t e = {0};
    if (fields_known(r->json, known, &e)) return respond_error(r, &e);
    json_t *cap = json_object_get(r->json, "capacity"), *ver = json_object_get(r->json, "version");
    if (!cap || (!json_is_null(cap) && (!json_is_integer(cap) || json_integer_value(cap) < 0 ||
                                       json_integer_value(cap) > 1000000))) {
        bad(&e, "capacity", "is required: an integer from 0 to 1000000, or null (not limited)");
        return respond_error(r, &e);
    }
    if (ver && !json_is_integer(ver)) {
        bad(&e, "version", "must be the resource's version (an integer)");
        return respond_error(r, &e);
    }
    store_reply reply = {0};
    answer(r,
           process_resource_capacity(&r->who, r->params[0], !json_is_null(cap), json_integer_value(cap),
                                     ver ? (int)json_integer_value(ver) : -1, &reply, &e),
           &reply, &e);
}

static int waitlist_body(req *r, waitlist_post *in, bool kind_entry, err_t *e)
{
    static const char *const known[] = {"case_id", "need", "domain", "kind", "target", NULL};
    memset(in, 0, sizeof *in);
    if (fields_known(r->json, known, e) || field_string(r->json, "case_id", true, 64, &in->case_id, e) ||
        field_string(r->json, "need", true, 2000, &in->need, e) || word(r->json, "domain", kind_entry, &in->domain, e) ||
        field_enum(r->json, "kind", false, resource_kinds, &in->kind, e) ||
        word(r->json, "target", false, &in->target, e))
        return -1;
    if (!kind_entry && (in->kind || in->target)) {
        bad(e, in->kind ? "kind" : "target", "a reservation is for the resource itself; leave kind and target out");
        return -1;
    }
    return 0;
}

void h_resources_reserve(req *r)
{
    err_t e = {0};
    waitlist_post in;
    if (waitlist_body(r, &in, false, &e)) return respond_error(r, &e);
    store_idem ib;
    store_reply reply = {0};
    answer(r, process_resource_reserve(&r->who, r->params[0], &in, req_idem(r, &ib), &reply, &e), &reply, &e);
}

void h_resources_waitlist(req *r)
{
    char status[16], after[160];
    int limit, rc;
    bool has_after;
    if ((rc = query_get(r, "status", status, sizeof status)) < 0) return;
    if (rc && strcmp(status, "waiting") && strcmp(status, "offered") && strcmp(status, "ended")) {
        respond_err(r, 400, "invalid_query", "status must be waiting, offered or ended");
        return;
    }
    if (query_page(r, &limit, after, sizeof after, &has_after)) return;
    if (has_after) {
        char *end;
        long long v = strtoll(after, &end, 10);
        if (*end || v < 0) {
            respond_err(r, 400, "invalid_query", "cursor is not one this list gave");
            return;
        }
    }
    err_t e = {0};
    store_reply reply = {0};
    answer(r,
           process_resource_waitlist(&r->who, r->params[0], rc ? status : NULL, limit, has_after ? after : NULL,
                                     &reply, &e),
           &reply, &e);
}

void h_allocations_release(req *r)
{
    static const char *const known[] = {"note", NULL};
    err_t e = {0};
    const char *note = NULL;
    if (r->json && (fields_known(r->json, known, &e) || field_string(r->json, "note", false, 4000, &note, &e)))
        return respond_error(r, &e);
    store_reply reply = {0};
    answer(r, process_allocation_release(&r->who, r->params[0], r->params[1], note, &reply, &e), &reply, &e);
}

void h_waitlist_create(req *r)
{
    err_t e = {0};
    waitlist_post in;
    if (waitlist_body(r, &in, true, &e)) return respond_error(r, &e);
    store_idem ib;
    store_reply reply = {0};
    answer(r, process_waitlist_add(&r->who, &in, req_idem(r, &ib), &reply, &e), &reply, &e);
}

void h_waitlist_list(req *r)
{
    char case_id[72], person_id[72], status[16], after[160];
    waitlist_query q = {0};
    bool has_after;
    int rc;
    if ((rc = query_get(r, "case_id", case_id, sizeof case_id)) < 0) return;
    if (rc) q.case_id = case_id;
    if ((rc = query_get(r, "person_id", person_id, sizeof person_id)) < 0) return;
    if (rc) q.person_id = person_id;
    if ((rc = query_get(r, "status", status, sizeof status)) < 0) return;
    if (rc) {
        if (strcmp(status, "waiting") && strcmp(status, "offered") && strcmp(status, "ended")) {
            respond_err(r, 400, "invalid_query", "status must be waiting, offered or ended");
            return;
        }
        q.status = status;
    }
    if (query_page(r, &q.limit, after, sizeof after, &has_after)) return;
    if (has_after) {
        char *end;
        long long v = strtoll(after, &end, 10);
        if (*end || v < 0) {
            respond_err(r, 400, "invalid_query", "cursor is not one this list gave");
            return;
        }
    }
    q.after = has_after ? after : NULL;
    err_t e = {0};
    store_reply reply = {0};
    answer(r, process_waitlist_list(&r->who, &q, &reply, &e), &reply, &e);
}

void h_waitlist_get(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    answer(r, process_waitlist_get(&r->who, r->params[0], &reply, &e), &reply, &e);
}

static void waitlist_answer(req *r, bool accept)
{
    static const char *const known[] = {"note", NULL};
    err_t e = {0};
    const char *note = NULL;
    if (r->json && (fields_known(r->json, known, &e) || field_string(r->json, "note", false, 4000, &note, &e)))
        return respond_error(r, &e);
    store_reply reply = {0};
    answer(r, process_waitlist_answer(&r->who, r->params[0], accept, note, &reply, &e), &reply, &e);
}

void h_waitlist_accept(req *r) { waitlist_answer(r, true); }
void h_waitlist_decline(req *r) { waitlist_answer(r, false); }

void h_waitlist_end(req *r)
{
    static const char *const known[] = {"reason", "note", NULL};
    static const char *const reasons[] = {"met", "cancelled", NULL};
    err_t e = {0};
    const char *reason, *note;
    if (fields_known(r->json, known, &e) || field_enum(r->json, "reason", true, reasons, &reason, &e) ||
        field_string(r->json, "note", false, 4000, &note, &e))
        return respond_error(r, &e);
    store_reply reply = {0};
    answer(r, process_waitlist_end(&r->who, r->params[0], reason, note, &reply, &e), &reply, &e);
}
