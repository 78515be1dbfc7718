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
#include "process/lookups.h"
#include "process/resources.h"
#include "render/render.h"
#include "store/store.h"

typedef struct {
    const principal *p;
    const char *id;
    const case_query *q;
    int limit;
    const char *after;
} read_arg;

/* A case the principal may see, or 404. */
static int load_case(store_tx *tx, const principal *p, const char *id, case_row *c, err_t *e)
{
    store_err se = {0};
    if (store_case_load(tx, p, id, c, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no case '%s'", id);
    return 0;
}

static int work_get(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    read_arg *a = arg;
    case_row c;
    if (load_case(tx, a->p, a->id, &c, e)) return -1;
    reply->status = 200;
    return engine_render(tx, &c, rules_label(c.program, c.region, c.stage), &reply->body, e);
}

int process_case_get(const principal *p, const char *id, store_reply *reply, err_t *e)
{
    read_arg a = {.p = p, .id = id};
    return process_read(work_get, &a, reply, e);
}

static int work_list(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    read_arg *a = arg;
    case_list list;
    store_err se = {0};
    if (store_case_list(tx, a->p, a->q, &list, &se)) return process_store_fail(&se, e);
    json_t *items = json_array();
    for (size_t i = 0; i < list.n; i++) {
        const case_row *c = &list.items[i];
        json_t *item = render_case(c);
        const char *label = rules_label(c->program, c->region, c->stage);
        json_object_set_new(item, "stage_label", label ? json_string(label) : json_null());
        json_array_append_new(items, item);
    }
    reply->status = 200;
    reply->body = render_page(items, list.more, list.last);
    case_list_free(&list);
    return 0;
}

int process_case_list(const principal *p, const case_query *q, store_reply *reply, err_t *e)
{
    read_arg a = {.p = p, .q = q};
    return process_read(work_list, &a, reply, e);
}

static int work_events(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    read_arg *a = arg;
    case_row c;
    if (load_case(tx, a->p, a->id, &c, e)) return -1;
    event_list list;
    store_err se = {0};
    if (store_event_list(tx, a->id, a->limit, a->after, &list, &se)) return process_store_fail(&se, e);
    reply->status = 200;
    process_disclose(reply, c.person_id);
    reply->body = render_page(render_events(&list), list.more, list.last);
    event_list_free(&list);
    return 0;
}

int process_case_events(const principal *p, const char *id, int limit, const char *after,
                        store_reply *reply, err_t *e)
{
    read_arg a = {.p = p, .id = id, .limit = limit, .after = after};
    return process_read(work_events, &a, reply, e);
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
    record_list list;
    store_err se = {0};
    if (load_case(tx, a->p, a->id, &c, e)) return -1;
    if (store_record_list(tx, c.id, a->kind, &list, &se)) return process_store_fail(&se, e);
    reply->status = 200;
    process_disclose(reply, c.person_id);
    reply->body = render_page(render_records(&list), false, NULL);
    record_list_free(&list);
    return 0;
}

int process_records(const principal *p, const char *case_id, const char *kind, store_reply *reply, err_t *e)
{
    view_arg a = {.p = p, .id = case_id, .kind = kind};
    return process_read(work_records, &a, reply, e);
}

static int work_deadlines(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    view_arg *a = arg;
    deadline_list list;
    store_err se = {0};
    if (store_deadline_list(tx, a->dq, &list, &se)) return process_store_fail(&se, e);
    char today[11];
    date_today_str(today);
    reply->status = 200;
    reply->body = render_page(render_deadlines(&list, today), list.more, list.last);
    deadline_list_free(&list);
    return 0;
}

int process_deadlines(const principal *p, const deadline_query *q, store_reply *reply, err_t *e)
{
    if (q->org && strcmp(q->org, p->org)) { /* other organisations' work is not visible */
        reply->status = 200;
        reply->body = render_page(json_array(), false, NULL);
        return 0;
    }
    deadline_query mine = *q;
    mine.org = p->org;
    view_arg a = {.p = p, .dq = &mine};
    return process_read(work_deadlines, &a, reply, e);
}

/* A case of the one-screen view: as the API shows it, with its plans,
 * services and other records apart. */
static int one_screen_case(store_tx *tx, const case_row *c, json_t **out, err_t *e)
{
    json_t *full = NULL;
    record_list records;
    store_err se = {0};
    if (engine_render(tx, c, rules_label(c->program, c->region, c->stage), &full, e)) return -1;
    if (store_record_list(tx, c->id, NULL, &records, &se)) {
        json_decref(full);
        return process_store_fail(&se, e);
    }
    json_t *plans = json_array(), *services = json_array(), *other = json_array();
    for (size_t j = 0; j < records.n; j++) {
        const char *k = records.items[j].kind;
        json_array_append_new(!strcmp(k, "plan") ? plans : !strcmp(k, "service") ? services : other,
                              render_record(&records.items[j]));
    }
    record_list_free(&records);
    json_object_set_new(full, "plans", plans);
    json_object_set_new(full, "services", services);
    json_object_set_new(full, "records", other);
    json_t *resources = NULL; /* seats held and resources waited for (seed 003 자원 대기자) */
    if (process_case_resources(tx, c->id, &resources, e)) {
        json_decref(full);
        return -1;
    }
    json_object_set_new(full, "resources", resources);
    *out = full;
    return 0;
}

/* One screen: the person, the household, and every case of every program
 * the principal may see, each with its plans, services and deadlines. */
static int work_one_screen(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    view_arg *a = arg;
    store_err se = {0};
    person_row person = {0};
    household_row household = {0};
    case_list cases = {0};
    json_t *household_json = json_null(), *cases_json = json_array();
    int rc = -1;
    /* Another organisation sees it only under the person's consent naming it
     * (seed 003 원스크린: counseling a week, case management up to 3 months;
     * local government offices without the period limit). */
    /* A private provider's worker needs a complete sharing right (seed 003). */
    if (!strcmp(a->p->org_type, "provider")) {
        sharing_right_row right;
        bool complete = false;
        if (store_sharing_right_get(tx, a->p->org, a->p->user, &right, &se) == 0) {
            complete = right.district_approved_by != NULL;
            sharing_right_row_free(&right);
        } else if (se.kind != STORE_NOT_FOUND) {
            process_store_fail(&se, e);
            goto done;
        }
        if (!complete) {
            err_set(e, 403, "sharing_right_required",
                    "%s needs privacy training, a security pledge and the approval of %s and its district first",
                    a->p->user, a->p->org);
            goto done;
        }
    }
    principal owner = *a->p;
    const principal *as = a->p;
    char consent[ID_MAX] = "";
    if (store_person_visible(tx, a->p, a->id, &se)) {
        if (se.kind != STORE_NOT_FOUND) {
            process_store_fail(&se, e);
            goto done;
        }
        bool exists = store_person_owner(tx, a->id, owner.org, &se) == 0;
        if (!exists && se.kind != STORE_NOT_FOUND) {
            process_store_fail(&se, e);
            goto done;
        }
        /* No person, and another organisation's person under no consent that
         * ever named this one, answer the same (lookups.h, ONE_SCREEN_HIDDEN);
         * else the consent's period by kind of organisation, and a provider
         * head's approval of the look-up (process/lookups.c). */
        if (!exists) {
            ONE_SCREEN_HIDDEN(e, a->id, a->p->org);
            goto done;
        }
        if (process_one_screen_access(tx, a->p, a->id, consent, e)) goto done;
        as = &owner;
    }
    if (store_person_get(tx, as, a->id, &person, &se)) {
        process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no person '%s'", a->id);
        goto done;
    }
    if (person.household_id) {
        /* The lead of one of the person's cases sees the household as the
         * organisation that holds the person's record does. */
        principal holder = *as;
        str_copy(holder.org, sizeof holder.org, person.org);
        holder.org_type[0] = 0;
        if (store_household_get(tx, as, person.household_id, &household, &se) &&
            (se.kind != STORE_NOT_FOUND || store_household_get(tx, &holder, person.household_id, &household, &se))) {
            process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no household '%s'", person.household_id);
            goto done;
        }
        json_decref(household_json);
        household_json = render_household(&household, as->org);
    }
    if (store_person_cases(tx, as, a->id, &cases, &se)) {
        process_store_fail(&se, e);
        goto done;
    }
    for (size_t i = 0; i < cases.n; i++) {
        json_t *full = NULL;
        if (one_screen_case(tx, &cases.items[i], &full, e)) goto done;
        json_array_append_new(cases_json, full);
    }
    json_t *out = json_pack("{s:o, s:O, s:O}", "person", render_person(&person), "household", household_json,
                            "cases", cases_json);
    if (consent[0]) json_object_set_new(out, "consent_id", json_string(consent));
    reply->status = 200;
    reply->body = out;
    rc = 0;
done:
    person_row_free(&person);
    household_row_free(&household);
    case_list_free(&cases);
    json_decref(household_json);
    json_decref(cases_json);
    return rc;
}

int process_one_screen(const principal *p, const char *person_id, store_reply *reply, err_t *e)
{
    view_arg a = {.p = p, .id = person_id};
    return process_read(work_one_screen, &a, reply, e);
}

/* Overdue deadlines by kind, as Prometheus lines; caller frees. */
static char *overdue_text(const overdue_counts *counts)
{
    size_t cap = 256, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    len = (size_t)snprintf(s, cap, "# HELP sarye_deadlines_overdue Open deadlines past due, by kind.\n"
                                    "# TYPE sarye_deadlines_overdue gauge\n");
    for (size_t i = 0; i < counts->n; i++) {
        char line[200];
        int n = snprintf(line, sizeof line, "sarye_deadlines_overdue{kind=\"%.64s\"} %lld\n", counts->items[i].kind,
                         counts->items[i].n);
        if (len + (size_t)n + 1 > cap) {
            cap = (len + (size_t)n + 1) * 2;
            char *ns = realloc(s, cap);
            if (!ns) break;
            s = ns;
        }
        memcpy(s + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
    return s;
}

/* Kept by the store as deadlines are set and cleared: no query per scrape. */
char *process_overdue_metrics(void)
{
    char today[11];
    date_today_str(today);
    overdue_counts counts = {0};
    if (store_overdue_counts(today, &counts)) return NULL;
    char *s = overdue_text(&counts);
    free(counts.items);
    return s;
}
