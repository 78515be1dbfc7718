/*
 * audit.c: the audit trail of personal data. Every read and write that
 * discloses a person is recorded before the answer leaves, naming every
 * person it discloses (process_disclose for those the answer does not
 * name); the record of a write is part of the write's own unit, the record
 * of a read is a unit of its own, which rides the writer's next batch with
 * everything else.
 */
#include "process/process.h"
#include "render/render.h"
#include "store/store.h"

void process_disclose(store_reply *reply, const char *person_id)
{
    if (!person_id || !*person_id) return;
    if (!reply->disclosed) reply->disclosed = json_array();
    json_array_append_new(reply->disclosed, json_string(person_id));
}

static int work_audit(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    store_err se = {0};
    if (store_audit_append(tx, arg, &se)) return process_store_fail(&se, e);
    return 0;
}

int process_audit(const audit_entry *a, err_t *e)
{
    store_reply reply = {0};
    return process_write(NULL, work_audit, (void *)a, &reply, e);
}

typedef struct {
    const principal *p;
    const audit_query *q;
} list_arg;

static int work_audit_list(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    list_arg *a = arg;
    audit_list list;
    store_err se = {0};
    if (store_audit_list(tx, a->p, a->q, &list, &se)) return process_store_fail(&se, e);
    reply->status = 200;
    reply->body = render_page(render_audits(&list), list.more, list.last);
    audit_list_free(&list);
    return 0;
}

int process_audit_list(const principal *p, const audit_query *q, store_reply *reply, err_t *e)
{
    list_arg a = {p, q};
    return process_read(work_audit_list, &a, reply, e);
}

typedef struct {
    long long records, broken_at;
} verify_arg;

static int work_audit_verify(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    verify_arg *v = arg;
    store_err se = {0};
    if (store_audit_verify(tx, &v->records, &v->broken_at, &se)) return process_store_fail(&se, e);
    return 0;
}

int process_audit_verify(long long *records, long long *broken_at, err_t *e)
{
    verify_arg v = {0, 0};
    store_reply reply = {0};
    int rc = process_read(work_audit_verify, &v, &reply, e);
    *records = v.records;
    *broken_at = v.broken_at;
    return rc;
}
