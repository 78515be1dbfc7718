/*
 * cases.c: what case workers read — a case, lists of cases, a case's
 * history and records, the deadlines of their organisation, and a person on
 * one screen (seed 003 원스크린) — and the overdue counts for /metrics.
 * Reads are snapshots; labels come from the rules (cached per generation).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "process/internal.h"
#include "store/store.h"

typedef struct {
    const principal *p;
    const char *id;
    const case_query *q;
    int limit;
    const char *after;
} read_arg;

static int work_get(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    read_arg *a = arg;
    case_row c;
    if (store_case_load(tx, a->p, a->id, &c, e)) return -1;
    reply->status = 200;
    return engine_render(tx, &c, rules_label(c.program, c.region, c.stage), &reply->body, e);
}

int process_case_get(const principal *p, const char *id, store_reply *reply, err_t *e)
{
    read_arg a = {.p = p, .id = id};
    return store_read(work_get, &a, reply, e);
}

static int work_list(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    read_arg *a = arg;
    reply->status = 200;
    if (store_case_list(tx, a->p, a->q, &reply->body, e)) return -1;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(reply->body, "items"), i, item) {
        const char *label = rules_label(json_string_value(json_object_get(item, "program")),
                                        json_string_value(json_object_get(item, "region")),
                                        json_string_value(json_object_get(item, "stage")));
        json_object_set_new(item, "stage_label", label ? json_string(label) : json_null());
    }
    return 0;
}

int process_case_list(const principal *p, const case_query *q, store_reply *reply, err_t *e)
{
    read_arg a = {.p = p, .q = q};
    return store_read(work_list, &a, reply, e);
}

static int work_events(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    read_arg *a = arg;
    case_row c;
    if (store_case_load(tx, a->p, a->id, &c, e)) return -1;
    reply->status = 200;
    return store_event_list(tx, a->id, a->limit, a->after, &reply->body, e);
}

int process_case_events(const principal *p, const char *id, int limit, const char *after,
                        store_reply *reply, err_t *e)
{
    read_arg a = {.p = p, .id = id, .limit = limit, .after = after};
    return store_read(work_events, &a, reply, e);
}

typedef struct {
    const principal *p;
    const char *id, *kind;
    const deadline_query *dq;
} view_arg;

static int work_records(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    view_arg *a = arg;
    case_row c;
    json_t *items = NULL;
    if (store_case_load(tx, a->p, a->id, &c, e) || store_record_list(tx, c.id, a->kind, &items, e)) return -1;
    reply->status = 200;
    reply->body = json_pack("{s:o, s:n}", "items", items, "next_cursor");
    return 0;
}

int process_records(const principal *p, const char *case_id, const char *kind, store_reply *reply, err_t *e)
{
    view_arg a = {.p = p, .id = case_id, .kind = kind};
    return store_read(work_records, &a, reply, e);
}

static int work_deadlines(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    view_arg *a = arg;
    reply->status = 200;
    return store_deadline_list(tx, a->dq, &reply->body, e);
}

int process_deadlines(const principal *p, deadline_query *q, store_reply *reply, err_t *e)
{
    char today[11];
    date_today_str(today);
    q->today = today;
    if (q->org && strcmp(q->org, p->org)) { /* other organisations' work is not visible */
        reply->status = 200;
        reply->body = json_pack("{s:[], s:n}", "items", "next_cursor");
        return 0;
    }
    q->org = p->org;
    view_arg a = {.p = p, .dq = q};
    return store_read(work_deadlines, &a, reply, e);
}

/* One screen: the person, the household, and every case of every program
 * the principal may see, each with its plans, services and deadlines. */
static int work_one_screen(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    view_arg *a = arg;
    json_t *person = NULL, *household = json_null(), *cases = NULL, *out = NULL;
    /* Another organisation sees it only under the person's consent naming it
     * (seed 003 원스크린: counseling a week, case management up to 3 months). */
    static const char *const sharing[] = {"counseling", "case_management", NULL};
    /* A private provider's worker needs a complete sharing right (seed 003). */
    if (!strcmp(a->p->org_type, "provider")) {
        json_t *right = NULL;
        if (store_sharing_right_get(tx, a->p->org, a->p->user, &right, e)) return -1;
        bool complete = json_is_true(json_object_get(right, "complete"));
        json_decref(right);
        if (!complete) {
            err_set(e, 403, "sharing_right_required",
                    "%s needs privacy training, a security pledge and the approval of %s and its district first",
                    a->p->user, a->p->org);
            return -1;
        }
    }
    principal owner = *a->p;
    const principal *as = a->p;
    char consent[ID_MAX] = "";
    if (store_person_visible(tx, a->p, a->id, e)) {
        err_clear(e);
        if (store_person_owner(tx, a->id, owner.org, e) ||
            store_consent_valid_for(tx, a->id, a->p->org, sharing, consent, e))
            return -1;
        if (!consent[0]) {
            err_set(e, 403, "consent_required",
                    "the person's one-screen is shared with %s only under a valid consent naming it", a->p->org);
            return -1;
        }
        as = &owner;
    }
    if (store_person_get(tx, as, a->id, &person, e)) return -1;
    const char *hh = json_string_value(json_object_get(person, "household_id"));
    if (hh && store_household_get(tx, as, hh, &household, e)) goto fail;
    if (store_person_cases(tx, as, a->id, &cases, e)) goto fail;
    size_t i;
    json_t *cs;
    json_array_foreach(cases, i, cs) {
        case_row c;
        json_t *full = NULL, *records = NULL;
        if (store_case_load(tx, as, json_string_value(json_object_get(cs, "id")), &c, e) ||
            engine_render(tx, &c, rules_label(c.program, c.region, c.stage), &full, e) ||
            store_record_list(tx, c.id, NULL, &records, e)) {
            json_decref(full);
            goto fail;
        }
        json_t *plans = json_array(), *services = json_array(), *other = json_array();
        size_t j;
        json_t *r;
        json_array_foreach(records, j, r) {
            const char *k = json_string_value(json_object_get(r, "kind"));
            json_array_append(!strcmp(k, "plan") ? plans : !strcmp(k, "service") ? services : other, r);
        }
        json_decref(records);
        json_object_set_new(full, "plans", plans);
        json_object_set_new(full, "services", services);
        json_object_set_new(full, "records", other);
        json_array_set_new(cases, i, full);
    }
    out = json_pack("{s:o, s:o, s:o}", "person", person, "household", household, "cases", cases);
    if (consent[0]) json_object_set_new(out, "consent_id", json_string(consent));
    reply->status = 200;
    reply->body = out;
    return 0;
fail:
    json_decref(person);
    json_decref(household);
    json_decref(cases);
    return -1;
}

int process_one_screen(const principal *p, const char *person_id, store_reply *reply, err_t *e)
{
    view_arg a = {.p = p, .id = person_id};
    return store_read(work_one_screen, &a, reply, e);
}

static int work_overdue(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)arg;
    char today[11];
    date_today_str(today);
    return store_overdue_counts(tx, today, &reply->body, e);
}

char *process_overdue_metrics(void)
{
    store_reply reply = {0};
    err_t e = {0};
    if (store_read(work_overdue, NULL, &reply, &e)) {
        err_clear(&e);
        return NULL;
    }
    size_t cap = 256, len = 0;
    char *s = malloc(cap);
    if (!s) {
        store_reply_clear(&reply);
        return NULL;
    }
    len = (size_t)snprintf(s, cap, "# HELP sarye_deadlines_overdue Open deadlines past due, by kind.\n"
                                    "# TYPE sarye_deadlines_overdue gauge\n");
    const char *k;
    json_t *v;
    json_object_foreach(reply.body, k, v) {
        char line[200];
        int n = snprintf(line, sizeof line, "sarye_deadlines_overdue{kind=\"%.64s\"} %lld\n", k,
                         (long long)json_integer_value(v));
        if (len + (size_t)n + 1 > cap) {
            cap = (len + (size_t)n + 1) * 2;
            char *ns = realloc(s, cap);
            if (!ns) break;
            s = ns;
        }
        memcpy(s + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
    store_reply_clear(&reply);
    return s;
}
