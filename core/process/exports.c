/*
 * exports.c: bulk export of cases, de-identified (seed 003: sensitive data
 * in bulk exports is reduced to what does not name the person — the birth
 * date and sex instead of the resident number, no names or contacts).
 */
#include "process/process.h"
#include "render/render.h"
#include "store/store.h"

typedef struct {
    const principal *p;
    int limit;
    const char *after;
} export_arg;

static int work_export(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    export_arg *a = arg;
    case_export_list list;
    store_err se = {0};
    if (store_case_export(tx, a->p, a->limit, a->after, &list, &se)) return process_store_fail(&se, e);
    reply->status = 200;
    reply->body = render_page(render_case_exports(&list), list.more, list.last);
    for (size_t i = 0; i < list.n; i++) process_disclose(reply, list.items[i].person_id); /* named in the trail */
    case_export_list_free(&list);
    return 0;
}

int process_case_export(const principal *p, int limit, const char *after, store_reply *reply, err_t *e)
{
    export_arg a = {p, limit, after};
    return process_read(work_export, &a, reply, e);
}
