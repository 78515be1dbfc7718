/*
 * assign.c: who works a case (seed 003's 사례 담당자; child protection has
 * a stage of its own for it, 사례 담당자 지정). A case is assigned on opening
 * to whoever opens it, or to the worker named then; a supervisor (or an
 * admin) of the case's organisation reassigns it. Every reassignment is an
 * `assigned` event in the case's history (the first assignee is in the
 * `opened` event) and moves the case's version on. The assignee is a user
 * who works cases in the case's organisation (a worker, supervisor or
 * admin token of it, not revoked).
 *
 * No plugin rule is asked; the answer's stage label is read on the
 * request's thread (the decision), the write re-checks the case's version.
 */
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "process/internal.h"
#include "store/store.h"

int process_assignee_check(store_tx *tx, const char *org, const char *user, err_t *e)
{
    bool known = false;
    store_err se = {0};
    if (store_case_assignee_known(tx, org, user, &known, &se)) return process_store_fail(&se, e);
    if (known) return 0;
    err_set(e, 422, "unknown_assignee", "assigned_to: '%s' works no cases in %s (a worker, supervisor or admin of it)",
            user, org);
    err_detail(e, "field", json_string("assigned_to"));
    return -1;
}

typedef struct {
    const principal *p;
    const char *id;
    const assignment_in *in;
    case_row seen; /* as decided on */
    char label[256];
} assign_arg;

/* The checks, on the case as it is in tx: 0, or -1 with e. */
static int check(store_tx *tx, assign_arg *a, const case_row *c, err_t *e)
{
    if (strcmp(c->org, a->p->org)) {
        err_set(e, 403, "forbidden", "only %s reassigns its case %s", c->org, c->id);
        return -1;
    }
    if (!strcmp(c->status, "ended")) {
        err_set(e, 409, "case_ended", "case %s has ended; reopen it before assigning it", c->id);
        return -1;
    }
    if (a->in->version && a->in->version != c->version) {
        err_set(e, 412, "version_mismatch", "the case is at version %d, not %d; reload it", c->version,
                a->in->version);
        err_detail(e, "version", json_integer(c->version));
        return -1;
    }
    return process_assignee_check(tx, c->org, a->in->assigned_to, e);
}

static int decide_assign(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    assign_arg *a = arg;
    if (engine_case_load(tx, a->p, a->id, &a->seen, e) || check(tx, a, &a->seen, e)) return -1;
    const char *label = rules_label(a->seen.program, a->seen.region, a->seen.stage);
    str_copy(a->label, sizeof a->label, label ? label : "");
    return 0;
}

static int apply_assign(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    assign_arg *a = arg;
    case_row c;
    if (engine_case_load(tx, a->p, a->id, &c, e) || check(tx, a, &c, e)) return -1;
    if (c.version != a->seen.version) { /* moved since the label was read: decide again */
        err_set(e, 409, "case_changed", "case %s changed while it was being assigned; retry", c.id);
        return -1;
    }
    if (strcmp(c.assigned_to, a->in->assigned_to)) { /* already theirs: nothing happens */
        char from[sizeof c.assigned_to];
        str_copy(from, sizeof from, c.assigned_to);
        str_copy(c.assigned_to, sizeof c.assigned_to, a->in->assigned_to);
        store_err se = {0};
        if (store_case_update(tx, &c, &se))
            return process_store_error(&se, e, STORE_STALE, 412, "version_mismatch", "case %s changed; reload it",
                                       c.id);
        json_t *data = json_pack("{s:o, s:s}", "from", from[0] ? json_string(from) : json_null(), "to",
                                 c.assigned_to);
        event_in ev = {.case_id = c.id, .actor = a->p->user, .type = "assigned", .from_stage = c.stage,
                       .to_stage = c.stage, .data = data, .note = a->in->note, .generation = c.generation};
        int rc = store_event_append(tx, &ev, &se);
        json_decref(data);
        if (rc) return process_store_fail(&se, e);
    }
    reply->status = 200;
    return engine_render(tx, &c, a->label, &reply->body, e);
}

int process_case_assign(const principal *p, const char *id, const assignment_in *in, const store_idem *idem,
                        store_reply *reply, err_t *e)
{
    if (idem && process_replay(idem, reply, e)) return reply->replayed ? 0 : -1;
    assign_arg a = {.p = p, .id = id, .in = in};
    for (int attempt = 0;; attempt++) {
        store_reply none = {0};
        int rc = process_read(decide_assign, &a, &none, e);
        if (!rc) rc = process_write(idem, apply_assign, &a, reply, e);
        if (!rc || !engine_changed(e) || attempt + 1 == ENGINE_RETRIES) return rc;
        err_clear(e);
    }
}
