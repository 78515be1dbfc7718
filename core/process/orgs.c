/*
 * orgs.c: organisations and bearer tokens, for the API and the command line
 * alike, and who may administer what. A system operator (role operator,
 * bootstrapped from the command line) creates organisations and regions
 * and anything global; an organisation's administrator acts inside its
 * organisation, a district's administrator inside its region
 * (store_oversees). A token is a secret shown once: the answer carries it,
 * the record kept for Idempotency-Key replays does not, and lists show its
 * prefix. Creating and revoking a token are written to the audit trail in
 * the same unit of work.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "process/process.h"
#include "render/render.h"
#include "store/store.h"

/* Who the command line acts as: a system operator without organisation. */
static const principal CLI = {.user = "cli", .role = "operator"};

static bool is_operator(const principal *p) { return !strcmp(p->role, "operator"); }

typedef struct {
    const principal *by;
    const org_in *in;
} org_arg;

static int work_org(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    org_arg *a = arg;
    const org_in *in = a->in;
    /* A district's administrator opens organisations of its own region;
     * districts, agencies and other regions are a system operator's. */
    org_row want = {.id = in->id ? in->id : "", .type = in->type, .region = in->region};
    if (!is_operator(a->by) && (strcmp(a->by->org_type, "district") || !store_oversees(a->by, &want))) {
        err_set(e, 403, "forbidden",
                "%s may not create a%s %s organisation in region %s: a district's administrator creates those of "
                "its own region (but districts and agencies), a system operator any",
                a->by->user, !strcmp(in->type, "emd") || !strcmp(in->type, "agency") ? "n" : "", in->type,
                in->region);
        return -1;
    }
    org_row o;
    store_err se = {0};
    if (store_org_insert(tx, in, &o, &se)) {
        const char *id = in->id ? in->id : "";
        process_store_error(&se, e, STORE_DUPLICATE, 409, "duplicate", "an organisation with id '%s' already exists",
                            id);
        if (se.kind == STORE_DUPLICATE) err_detail(e, "id", json_string(id));
        return -1;
    }
    reply->status = 201;
    reply->body = render_org(&o);
    org_row_free(&o);
    return 0;
}

int process_org_create(const principal *by, const org_in *in, const store_idem *idem, store_reply *reply, err_t *e)
{
    org_arg a = {by ? by : &CLI, in};
    return process_write(idem, work_org, &a, reply, e);
}

/* The audit record of a token created or revoked, in the same unit. */
static int audit_token(store_tx *tx, const principal *by, const char *action, const char *token_id,
                       const char *request_id, int status, err_t *e)
{
    audit_entry a = {.actor = by->user, .org = by->org, .role = by->role, .action = action, .purpose = token_id,
                     .request_id = request_id, .status = status};
    store_err se = {0};
    return store_audit_append(tx, &a, &se) ? process_store_fail(&se, e) : 0;
}

/* Whether by administers the organisation of a token (org NULL: a system
 * operator's token, which only operators administer). */
static int token_org_overseen(store_tx *tx, const principal *by, const char *org, bool *yes, err_t *e)
{
    *yes = is_operator(by);
    if (*yes || !org) return 0;
    org_row o;
    store_err se = {0};
    if (store_org_get(tx, org, &o, &se)) return se.kind == STORE_NOT_FOUND ? 0 : process_store_fail(&se, e);
    *yes = store_oversees(by, &o);
    org_row_free(&o);
    return 0;
}

typedef struct {
    const principal *by;
    const token_post *in;
    const char *request_id;
    char expires_at[RFC3339_MAX];
    const char *id;
    const token_query *q;
} token_arg;

static int work_token(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    token_arg *a = arg;
    const token_post *in = a->in;
    store_err se = {0};
    if (!strcmp(in->role, "operator")) {
        if (!is_operator(a->by)) {
            err_set(e, 403, "forbidden", "only a system operator creates a system operator's token");
            return -1;
        }
    } else {
        org_row o;
        if (store_org_get(tx, in->org, &o, &se)) {
            process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_org", "no organisation '%s'", in->org);
            if (se.kind == STORE_NOT_FOUND) err_detail(e, "org", json_string(in->org));
            return -1;
        }
        bool mine = store_oversees(a->by, &o), agency_org = !strcmp(o.type, "agency");
        char region[16];
        str_copy(region, sizeof region, o.region);
        org_row_free(&o);
        if (!mine) {
            err_set(e, 403, "forbidden", "%s administers %s%s; '%s' (region %s) is not theirs", a->by->user,
                    a->by->org, !strcmp(a->by->org_type, "district") ? " and its region" : "", in->org, region);
            err_detail(e, "org", json_string(in->org));
            return -1;
        }
        if (!strcmp(in->role, "agency") && !agency_org) {
            err_set(e, 422, "validation_failed", "role: an agency token belongs to an organisation of type agency");
            err_detail(e, "field", json_string("role"));
            return -1;
        }
    }
    token_in ti = {.user = in->user, .role = in->role, .org = strcmp(in->role, "operator") ? in->org : NULL,
                   .created_by = a->by == &CLI ? NULL : a->by->user,
                   .expires_at = a->expires_at[0] ? a->expires_at : NULL};
    token_row t;
    if (store_token_insert(tx, &ti, &t, &se)) {
        process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_org", "no organisation '%s'", in->org);
        return -1;
    }
    if (audit_token(tx, a->by, "POST /v1/tokens", t.id, a->request_id, 201, e)) {
        sodium_memzero(&t, sizeof t);
        return -1;
    }
    reply->status = 201;
    reply->body = render_token(&t);
    sodium_memzero(&t, sizeof t);
    reply->record = json_deep_copy(reply->body);
    json_object_set_new(reply->record, "token", json_null());
    return 0;
}

int process_token_create(const principal *by, const token_post *in, const char *request_id, const store_idem *idem,
                         store_reply *reply, err_t *e)
{
    token_arg a = {.by = by ? by : &CLI, .in = in, .request_id = request_id};
    char rid[33];
    if (!request_id) {
        request_id_new(rid);
        a.request_id = rid;
    }
    if (in->ttl_days > 0) time_rfc3339(time_now_ms() + (int64_t)in->ttl_days * 86400000, a.expires_at);
    return process_write(idem, work_token, &a, reply, e);
}

static int work_tokens(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    token_arg *a = arg;
    token_list list;
    store_err se = {0};
    if (store_token_list(tx, a->by, a->q, &list, &se)) return process_store_fail(&se, e);
    char now[RFC3339_MAX];
    time_rfc3339(time_now_ms(), now);
    json_t *items = json_array();
    for (size_t i = 0; i < list.n; i++) json_array_append_new(items, render_token_info(&list.items[i], now));
    reply->status = 200;
    reply->body = render_page(items, list.more, list.last);
    token_list_free(&list);
    return 0;
}

int process_tokens_list(const principal *by, const token_query *q, store_reply *reply, err_t *e)
{
    token_arg a = {.by = by ? by : &CLI, .q = q};
    return process_read(work_tokens, &a, reply, e);
}

static int work_revoke(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    token_arg *a = arg;
    token_info t;
    store_err se = {0};
    bool mine = false;
    if (store_token_get(tx, a->id, &t, &se) == 0) {
        int rc = token_org_overseen(tx, a->by, t.org, &mine, e);
        token_info_free(&t);
        if (rc) return -1;
    } else if (se.kind != STORE_NOT_FOUND) {
        return process_store_fail(&se, e);
    }
    if (!mine) { /* the tokens of others are not theirs to know of */
        err_set(e, 404, "not_found", "no token '%s'", a->id);
        return -1;
    }
    if (store_token_revoke(tx, a->id, a->by->user, &t, &se))
        return process_store_error(&se, e, STORE_CONFLICT, 409, "token_revoked", "token %s is already revoked",
                                   a->id);
    int rc = audit_token(tx, a->by, "POST /v1/tokens/{id}/revoke", t.id, a->request_id, 200, e);
    if (!rc) {
        char now[RFC3339_MAX];
        time_rfc3339(time_now_ms(), now);
        reply->status = 200;
        reply->body = render_token_info(&t, now);
    }
    token_info_free(&t);
    return rc;
}

int process_token_revoke(const principal *by, const char *id, const char *request_id, store_reply *reply, err_t *e)
{
    token_arg a = {.by = by ? by : &CLI, .id = id, .request_id = request_id};
    char rid[33];
    if (!request_id) {
        request_id_new(rid);
        a.request_id = rid;
    }
    int rc = process_write(NULL, work_revoke, &a, reply, e);
    if (!rc) process_tokens_changed(); /* refused at once on this server, not after the cache's second */
    return rc;
}
