/*
 * outbox.c: messages to agencies as administrators see them: what waits,
 * what was delivered, what an agency refused (dead letters), and sending a
 * dead one again.
 */
#include "outbound/outbound.h"
#include "process/process.h"
#include "store/store.h"

typedef struct {
    const char *status, *after, *id;
    int limit;
} outbox_arg;

static int work_outbox_list(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    outbox_arg *a = arg;
    reply->status = 200;
    return store_outbox_list(tx, a->status, a->limit, a->after, &reply->body, e);
}

int process_outbox_list(const char *status, int limit, const char *after, store_reply *reply, err_t *e)
{
    outbox_arg a = {.status = status, .limit = limit, .after = after};
    return store_read(work_outbox_list, &a, reply, e);
}

static int work_outbox_retry(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    outbox_arg *a = arg;
    reply->status = 200;
    return store_outbox_retry(tx, a->id, &reply->body, e);
}

int process_outbox_retry(const char *id, store_reply *reply, err_t *e)
{
    outbox_arg a = {.id = id};
    int rc = store_write(NULL, work_outbox_retry, &a, reply, e);
    if (!rc) outbound_kick();
    return rc;
}
