/*
 * outbox.c: messages to agencies as administrators see them: what waits,
 * what was delivered, what an agency refused (dead letters), and sending a
 * dead one again.
 */
#include "outbound/outbound.h"
#include "process/process.h"
#include "render/render.h"
#include "store/store.h"

typedef struct {
    const char *status, *after, *id;
    int limit;
} outbox_arg;

static int work_outbox_list(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    outbox_arg *a = arg;
    outbox_list list;
    store_err se = {0};
    if (store_outbox_list(tx, a->status, a->limit, a->after, &list, &se)) return process_store_fail(&se, e);
    reply->status = 200;
    reply->body = render_page(render_outboxes(&list), list.more, list.last);
    outbox_list_free(&list);
    return 0;
}

int process_outbox_list(const char *status, int limit, const char *after, store_reply *reply, err_t *e)
{
    outbox_arg a = {.status = status, .limit = limit, .after = after};
    return process_read(work_outbox_list, &a, reply, e);
}

static int work_outbox_retry(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    outbox_arg *a = arg;
    outbox_row m;
    store_err se = {0};
    if (store_outbox_retry(tx, a->id, &m, &se)) {
        if (se.kind == STORE_CONFLICT)
            return process_store_error(&se, e, STORE_CONFLICT, 409, "not_dead",
                                       "message %s is not dead-lettered; only dead messages are sent again", a->id);
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no outbox message '%s'", a->id);
    }
    reply->status = 200;
    reply->body = render_outbox(&m);
    outbox_row_free(&m);
    return 0;
}

int process_outbox_retry(const char *id, store_reply *reply, err_t *e)
{
    outbox_arg a = {.id = id};
    int rc = process_write(NULL, work_outbox_retry, &a, reply, e);
    if (!rc) outbound_kick();
    return rc;
}
