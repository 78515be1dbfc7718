/*
 * outbox.c: messages to agencies as administrators see them: what waits,
 * what was delivered, what an agency refused (dead letters), and sending a
 * dead one again. A message's payload is personal data (names, phones,
 * addresses): an administrator sees the messages of the organisations it
 * administers, payloads and the person they are about included (and the
 * HTTP layer records the reading in the audit trail); a system operator
 * sees every message but none of its personal data.
 */
#include <string.h>

#include "outbound/outbound.h"
#include "process/process.h"
#include "render/render.h"
#include "store/store.h"

typedef struct {
    const principal *p;
    const char *status, *after, *id;
    int limit;
} outbox_arg;

static bool personal(const principal *p) { return strcmp(p->role, "operator") != 0; }

static int work_outbox_list(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    outbox_arg *a = arg;
    outbox_list list;
    store_err se = {0};
    if (store_outbox_list(tx, a->p, a->status, a->limit, a->after, &list, &se)) return process_store_fail(&se, e);
    json_t *items = json_array();
    for (size_t i = 0; i < list.n; i++) json_array_append_new(items, render_outbox(&list.items[i], personal(a->p)));
    reply->status = 200;
    reply->body = render_page(items, list.more, list.last);
    outbox_list_free(&list);
    return 0;
}

int process_outbox_list(const principal *p, const char *status, int limit, const char *after, store_reply *reply,
                        err_t *e)
{
    outbox_arg a = {.p = p, .status = status, .limit = limit, .after = after};
    return process_read(work_outbox_list, &a, reply, e);
}

static int work_outbox_retry(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    outbox_arg *a = arg;
    outbox_row m;
    store_err se = {0};
    /* Another organisation's messages are not the caller's to know of. */
    bool mine = !personal(a->p);
    if (!mine && store_outbox_get(tx, a->id, &m, &se) == 0) {
        org_row o;
        if (m.org && store_org_get(tx, m.org, &o, &se) == 0) {
            mine = store_oversees(a->p, &o);
            org_row_free(&o);
        }
        outbox_row_free(&m);
    }
    if (se.kind != STORE_OK && se.kind != STORE_NOT_FOUND) return process_store_fail(&se, e);
    if (!mine) {
        err_set(e, 404, "not_found", "no outbox message '%s'", a->id);
        return -1;
    }
    if (store_outbox_retry(tx, a->id, &m, &se)) {
        if (se.kind == STORE_CONFLICT)
            return process_store_error(&se, e, STORE_CONFLICT, 409, "not_dead",
                                       "message %s is not dead-lettered; only dead messages are sent again", a->id);
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no outbox message '%s'", a->id);
    }
    reply->status = 200;
    reply->body = render_outbox(&m, personal(a->p));
    outbox_row_free(&m);
    return 0;
}

int process_outbox_retry(const principal *p, const char *id, store_reply *reply, err_t *e)
{
    outbox_arg a = {.p = p, .id = id};
    int rc = process_write(NULL, work_outbox_retry, &a, reply, e);
    if (!rc) outbound_kick();
    return rc;
}
