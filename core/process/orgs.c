/*
 * orgs.c: organisations and bearer tokens, for the API (admins) and the
 * command line alike. A token is a secret shown once: the answer carries
 * it, the record kept for Idempotency-Key replays does not.
 */
#include <sodium.h>

#include "process/process.h"
#include "render/render.h"
#include "store/store.h"

static int work_org(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    const org_in *in = arg;
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

int process_org_create(const org_in *in, const store_idem *idem, store_reply *reply, err_t *e)
{
    return process_write(idem, work_org, (void *)in, reply, e);
}

typedef struct {
    const char *user, *role, *org, *by;
} token_arg;

static int work_token(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    token_arg *a = arg;
    token_row t;
    store_err se = {0};
    if (store_token_insert(tx, a->user, a->role, a->org, a->by, &t, &se)) {
        process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_org", "no organisation '%s'", a->org);
        if (se.kind == STORE_NOT_FOUND) err_detail(e, "org", json_string(a->org));
        return -1;
    }
    reply->status = 201;
    reply->body = render_token(&t);
    sodium_memzero(&t, sizeof t);
    reply->record = json_deep_copy(reply->body);
    json_object_set_new(reply->record, "token", json_null());
    return 0;
}

int process_token_create(const char *user, const char *role, const char *org, const char *created_by,
                         const store_idem *idem, store_reply *reply, err_t *e)
{
    token_arg a = {user, role, org, created_by};
    return process_write(idem, work_token, &a, reply, e);
}
