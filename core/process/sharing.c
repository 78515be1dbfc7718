/*
 * sharing.c: sharing rights of private-provider workers (seed 003 정보공유
 * 권한): privacy training and a security pledge approved by their own
 * organisation, then by the district of its region. Until both, a provider
 * worker cannot open the one-screen view.
 */
#include <stdio.h>
#include <string.h>

#include "process/process.h"
#include "store/store.h"

typedef struct {
    const principal *p;
    const char *org, *user, *training_on, *pledge_on;
    int op; /* 0 get, 1 set, 2 approve */
} right_arg;

static int work_right(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    right_arg *a = arg;
    json_t *org = NULL;
    if (store_org_get(tx, a->org, &org, e)) return -1;
    bool own = !strcmp(a->org, a->p->org);
    bool district = !strcmp(a->p->org_type, "district") &&
                    !strcmp(json_string_value(json_object_get(org, "region")), a->p->region);
    json_decref(org);
    if ((a->op == 1 && !own) || (a->op == 2 && !district) || (a->op == 0 && !own && !district)) {
        err_set(e, 403, "forbidden", a->op == 2 ? "only the district of %s approves its sharing rights"
                                                : "only %s itself (or its district) manages its sharing rights",
                a->org);
        return -1;
    }
    reply->status = 200;
    if (a->op == 1)
        return store_sharing_right_set(tx, a->org, a->user, a->training_on, a->pledge_on, a->p->user, &reply->body, e);
    if (a->op == 2) return store_sharing_right_approve(tx, a->org, a->user, a->p->user, &reply->body, e);
    if (store_sharing_right_get(tx, a->org, a->user, &reply->body, e)) return -1;
    if (!reply->body) {
        err_set(e, 404, "not_found", "no sharing right of %s at %s", a->user, a->org);
        return -1;
    }
    return 0;
}

int process_sharing_right_set(const principal *p, const char *org, const char *user, const char *training_on,
                              const char *pledge_on, store_reply *reply, err_t *e)
{
    right_arg a = {p, org, user, training_on, pledge_on, 1};
    return store_write(NULL, work_right, &a, reply, e);
}

int process_sharing_right_approve(const principal *p, const char *org, const char *user, store_reply *reply,
                                  err_t *e)
{
    right_arg a = {p, org, user, NULL, NULL, 2};
    return store_write(NULL, work_right, &a, reply, e);
}

int process_sharing_right_get(const principal *p, const char *org, const char *user, store_reply *reply, err_t *e)
{
    right_arg a = {p, org, user, NULL, NULL, 0};
    return store_read(work_right, &a, reply, e);
}
