/*
 * views.c: what plugin code reads of the world during one question, and
 * nothing else: the person and history of the case, the named queries, over
 * the read snapshot the question was given and as its viewer may see them;
 * in look-ups, the person's consents and the configured agencies. The
 * pending changes of the write being decided (a record, a meeting,
 * deadlines) are laid over the snapshot, so that a follow-on move is
 * decided on the case as it will be once written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "outbound/outbound.h"
#include "render/render.h"
#include "rules/internal.h"
#include "store/store.h"

static config g_cfg;

int rules_lookup_budget_ms(void) { return g_cfg.request_timeout_ms / 2; }

int rules_init(const config *cfg, char *err, size_t errlen)
{
    g_cfg = *cfg;
    governor_init(cfg);
    return luahost_init(cfg, err, errlen);
}

char *rules_metrics(void) { return governor_metrics(); }

void rules_shutdown(void) { luahost_shutdown(); }

static json_t *v_person(void *ud, const char *id)
{
    const rules_facts *f = ((view_ctx *)ud)->f;
    if (!f || !f->tx) return NULL;
    store_err e = {0};
    person_row p;
    if (store_person_get(f->tx, f->viewer, id, &p, &e)) return NULL;
    json_t *j = render_person(&p);
    person_row_free(&p);
    return j;
}

static json_t *v_history(void *ud, const char *case_id)
{
    const rules_facts *f = ((view_ctx *)ud)->f;
    if (!f || !f->tx) return NULL;
    store_err e = {0};
    event_list events;
    if (store_event_list(f->tx, case_id, 500, NULL, &events, &e)) return NULL;
    json_t *items = render_events(&events);
    event_list_free(&events);
    return items;
}

/* items with the pending records of kind (NULL: all) laid over: a record
 * with the id of one listed replaces it, others are added. */
static void overlay_records(json_t *items, json_t *pending, const char *kind)
{
    size_t i, j;
    json_t *p, *it;
    json_array_foreach(pending, i, p) {
        const char *pk = json_string_value(json_object_get(p, "kind"));
        if (kind && (!pk || strcmp(pk, kind))) continue;
        const char *pid = json_string_value(json_object_get(p, "id"));
        bool replaced = false;
        json_array_foreach(items, j, it) {
            const char *iid = json_string_value(json_object_get(it, "id"));
            if (pid && iid && !strcmp(pid, iid)) {
                json_array_set(items, j, p);
                replaced = true;
                break;
            }
        }
        if (!replaced) json_array_append(items, p);
    }
}

static void overlay_deadlines(json_t *items, const rules_effects *fx)
{
    for (size_t i = json_array_size(items); i-- > 0;) {
        const char *k = json_string_value(json_object_get(json_array_get(items, i), "kind"));
        bool gone = false;
        for (int c = 0; c < fx->n_clear && !gone; c++) gone = k && !strcmp(k, fx->clear[c]);
        for (int s = 0; s < fx->n_set && !gone; s++) gone = k && !strcmp(k, fx->set[s].kind);
        if (gone) json_array_remove(items, i);
    }
    char today[11];
    date_today_str(today);
    for (int s = 0; s < fx->n_set; s++) {
        const rules_deadline *d = &fx->set[s];
        json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s, s:b}", "kind", d->kind, "label", d->label,
                                               "due_on", d->due_on, "plugin", d->plugin, "overdue",
                                               strcmp(d->due_on, today) < 0));
    }
}

static bool meeting_names(json_t *meeting, const char *case_id)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(meeting, "case_ids"), i, c)
        if (!strcmp(json_string_value(c), case_id)) return true;
    return false;
}

/* Named read-only queries (host.lua checked the name). */
static json_t *v_query(void *ud, const char *name, json_t *params, char *why, size_t whylen)
{
    const rules_facts *f = ((view_ctx *)ud)->f;
    if (!f || !f->tx) return json_array();
    store_err e = {0};
    json_t *j = NULL;
    if (!strcmp(name, "cases_of_person")) {
        const char *pid = json_string_value(json_object_get(params, "person_id"));
        if (!pid) {
            str_copy(why, whylen, "query cases_of_person needs {person_id = ...}");
            return NULL;
        }
        case_list cases;
        if (store_person_cases(f->tx, f->viewer, pid, &cases, &e)) return json_array();
        j = render_case_briefs(&cases);
        case_list_free(&cases);
        return j;
    }
    if (!strcmp(name, "orgs")) { /* the organisations of a region (of one type) */
        const char *region = json_string_value(json_object_get(params, "region"));
        const char *type = json_string_value(json_object_get(params, "type"));
        if (!region) {
            str_copy(why, whylen, "query orgs needs {region = ..., type = ...?}");
            return NULL;
        }
        const char **ids = NULL;
        size_t n = 0;
        j = json_array();
        if (store_org_ids(f->tx, region, type, &ids, &n, &e) == 0) {
            for (size_t i = 0; i < n; i++) {
                org_row o;
                if (store_org_get(f->tx, ids[i], &o, &e)) continue;
                json_t *oj = render_org(&o);
                json_object_del(oj, "created_at");
                json_array_append_new(j, oj);
                org_row_free(&o);
            }
            free(ids);
        }
        return j;
    }
    const char *cid = json_string_value(json_object_get(params, "case_id"));
    const char *kind = json_string_value(json_object_get(params, "kind"));
    if (!cid) {
        snprintf(why, whylen, "query %s needs {case_id = ...}", name);
        return NULL;
    }
    case_row c;
    if (store_case_load(f->tx, f->viewer, cid, &c, &e) == 0) { /* only cases the viewer may see */
        bool mine = f->case_id && !strcmp(f->case_id, cid);
        if (!strcmp(name, "plans_of_case") || !strcmp(name, "records_of_case")) {
            const char *of = !strcmp(name, "plans_of_case") ? "plan" : kind;
            record_list records;
            if (store_record_list(f->tx, cid, of, &records, &e) == 0) {
                j = render_records(&records);
                record_list_free(&records);
                if (mine) overlay_records(j, f->pending_records, of);
            }
        } else if (!strcmp(name, "meetings_of_case")) {
            meeting_list meetings;
            if (store_meetings_of_case(f->tx, cid, &meetings, &e) == 0) {
                j = render_meetings(&meetings);
                meeting_list_free(&meetings);
                if (f->pending_meeting && meeting_names(f->pending_meeting, cid))
                    json_array_append(j, f->pending_meeting);
            }
        } else if (!strcmp(name, "deadlines_of_case")) {
            deadline_list due;
            if (store_case_due(f->tx, cid, &due, &e) == 0) {
                char today[11];
                date_today_str(today);
                j = render_dues(&due, today);
                deadline_list_free(&due);
                if (mine && f->pending_deadlines) overlay_deadlines(j, f->pending_deadlines);
            }
        } else {
            snprintf(why, whylen, "unknown query '%s'", name);
            return NULL;
        }
    }
    return j ? j : json_array();
}

/* Look-ups run before any snapshot: a consent is read on its own. */
typedef struct {
    const char *person_id, *party;
    bool allows;
} consent_arg;

static int work_consent_allows(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    (void)e;
    consent_arg *a = arg;
    char id[ID_MAX];
    store_err se = {0};
    if (store_consent_valid_for(tx, a->person_id, a->party, NULL, id, &se)) return -1;
    a->allows = id[0] != 0;
    return 0;
}

static int v_consent_allows(void *ud, const char *person_id, const char *party, bool *allows)
{
    (void)ud;
    consent_arg a = {person_id, party, false};
    err_t e = {0};
    store_err se = {0};
    store_reply reply = {0};
    if (store_read(work_consent_allows, &a, &reply, &e, &se)) {
        err_clear(&e);
        return -1;
    }
    *allows = a.allows;
    return 0;
}

/* A look-up sends the person's data to an agency: only under the person's
 * valid consent naming the agency — the same check as every other sharing
 * (store_consent_valid_for), made here whatever the plugin asked
 * (ctx.consent_allows is for plugins to ask first, not the guard). While
 * the agency answers, the call gives its governor place up: waiting uses
 * no CPU, and the region's other calls need not wait for a slow agency. */
static int v_http_post(void *ud, const char *agency, const char *path, json_t *body, int budget_ms, json_t **out,
                       err_t *e)
{
    view_ctx *vc = ud;
    *out = NULL;
    if (!vc || !vc->person_id) {
        err_set(e, 500, "internal_error", "a look-up without the person it is about");
        return -1;
    }
    bool allows = false;
    if (!outbound_agency_configured(agency)) /* refused before anything is sent: says which agency */
        return outbound_call(agency, path, body, budget_ms, out, e);
    if (v_consent_allows(vc, vc->person_id, agency, &allows)) {
        err_set(e, 503, "store_busy", "the person's consents cannot be read now; retry");
        err_detail(e, "retry_after", json_integer(1));
        return -1;
    }
    if (!allows) {
        err_set(e, 422, "consent_required",
                "a look-up would send the person's data to agency '%s', and no valid consent of theirs names it",
                agency);
        err_detail(e, "agency", json_string(agency));
        err_detail(e, "person_id", json_string(vc->person_id));
        return -1;
    }
    int slot;
    governor_pause(vc->ticket, &slot);
    int rc = outbound_call(agency, path, body, budget_ms, out, e);
    governor_resume(vc->ticket, slot);
    return rc;
}

const luavm_views rules_views = {
    .person = v_person,
    .history = v_history,
    .query = v_query,
    .consent_allows = v_consent_allows,
    .http_post = v_http_post,
};
