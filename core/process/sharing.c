/*
 * sharing.c: sharing rights of private-provider workers (seed 003 정보공유
 * 권한): privacy training and a security pledge approved by their own
 * organisation, then by the district of its region. Until both, a provider
 * worker cannot open the one-screen view.
 */
#include <stdio.h>
#include <string.h>

#include "process/process.h"
#include "render/render.h"
#include "store/store.h"

typedef struct {
    const principal *p;
    const char *org, *user, *training_on, *pledge_on;
    int op; /* 0 get, 1 set, 2 approve */
} right_arg;

static int work_right(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    right_arg *a = arg;
    store_err se = {0};
    org_row org;
    if (store_org_get(tx, a->org, &org, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no organisation '%s'", a->org);
    bool own = !strcmp(a->org, a->p->org);
    bool district = !strcmp(a->p->org_type, "district") && !strcmp(org.region, a->p->region);
    org_row_free(&org);
    if ((a->op == 1 && !own) || (a->op == 2 && !district) || (a->op == 0 && !own && !district)) {
        err_set(e, 403, "forbidden", a->op == 2 ? "only the district of %s approves its sharing rights"
                                                : "only %s itself (or its district) manages its sharing rights",
                a->org);
        return -1;
    }
    sharing_right_row right;
    int rc;
    if (a->op == 1) {
        if ((rc = store_sharing_right_set(tx, a->org, a->user, a->training_on, a->pledge_on, a->p->user, &right, &se)))
            process_store_fail(&se, e);
    } else if (a->op == 2) {
        if ((rc = store_sharing_right_approve(tx, a->org, a->user, a->p->user, &right, &se)))
            process_store_error(&se, e, STORE_NOT_FOUND, 409, "sharing_right_incomplete",
                                "%s of %s has no training and pledge approved by the organisation yet", a->user,
                                a->org);
    } else if ((rc = store_sharing_right_get(tx, a->org, a->user, &right, &se))) {
        process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no sharing right of %s at %s", a->user,
                            a->org);
    }
    if (rc) return -1;
    reply->status = 200;
    reply->body = render_sharing_right(&right);
    sharing_right_row_free(&right);
    return 0;
}

int process_sharing_right_set(const principal *p, const char *org, const char *user, const char *training_on,
                              const char *pledge_on, store_reply *reply, err_t *e)
{
    right_arg a = {p, org, user, training_on, pledge_on, 1};
    return process_write(NULL, work_right, &a, reply, e);
}

int process_sharing_right_approve(const principal *p, const char *org, const char *user, store_reply *reply,
                                  err_t *e)
{
    right_arg a = {p, org, user, NULL, NULL, 2};
    return process_write(NULL, work_right, &a, reply, e);
}

int process_sharing_right_get(const principal *p, const char *org, const char *user, store_reply *reply, err_t *e)
{
    right_arg a = {p, org, user, NULL, NULL, 0};
    return process_read(work_right, &a, reply, e);
}
