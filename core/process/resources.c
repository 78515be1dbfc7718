/*
 * resources.c: welfare resources and their waitlist (process/resources.h).
 *
 * A reservation or a waitlist entry is decided on a snapshot — the case and
 * the resource as the principal sees them, and the priority the case's
 * program and region give it (rules_waitlist) — and applied by a unit of
 * work that counts the seats again: units run one at a time on the store's
 * writer, so counting free seats and taking one cannot interleave with
 * another request doing the same. Everything that follows a seat freeing
 * (the offer to the next case, its hold, its event and deadline, the
 * expiry of offers nobody answered) is plain C inside the same unit.
 */
#include "process/resources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "process/internal.h"
#include "render/render.h"
#include "render/resources.h"
#include "rules/rules.h"

const char *const resource_kinds[] = {"cash", "goods", "service", NULL};
const char *const resource_provider_types[] = {"person", "business", "group", "facility", "agency", NULL};
const char *const resource_share_scopes[] = {"none", "district", "region", NULL};

#define OFFER_BATCH 100       /* offers made at most per freed resource in one unit */
#define SYSTEM_ACTOR "sarye"  /* offers and expiries happen on behalf of the waitlist */
#define OFFER_DEADLINE "resource_offer"

static void today_str(char out[11]) { date_today_str(out); }

/* ---- what happens to a case: events and the offer deadline ---- */
/* gen: the rules generation that decided the change (a reservation's
 * priority), or NULL for what the waitlist does by itself (an offer, an
 * expiry): units run on the writer, which never asks the rules. */
static int case_event(store_tx *tx, const char *case_id, const char *actor, const char *type, json_t *data,
                      const char *gen, err_t *e)
{
    case_row c;
    store_err se = {0};
    if (store_case_row(tx, case_id, &c, &se)) return process_store_fail(&se, e);
    event_in ev = {.case_id = case_id, .actor = actor, .type = type, .from_stage = c.stage, .to_stage = c.stage,
                   .data = data, .generation = gen};
    int rc = store_event_append(tx, &ev, &se) ? process_store_fail(&se, e) : 0;
    json_decref(data);
    return rc;
}

/* The case's resource_offer deadline: due with its earliest open offer,
 * cleared when none is open. Its worker (the case's lead) sees it. */
static int offer_deadline(store_tx *tx, const char *case_id, err_t *e)
{
    char due[11];
    int n = 0;
    store_err se = {0};
    case_row c;
    if (store_case_row(tx, case_id, &c, &se) || store_case_offers(tx, case_id, due, &n, &se))
        return process_store_fail(&se, e);
    int rc;
    if (n > 0) {
        char label[128];
        snprintf(label, sizeof label, "자원 제공 제안 회신 (%d건)", n);
        rc = store_deadline_set(tx, &c, OFFER_DEADLINE, label, due, NULL, &se);
    } else {
        rc = store_deadline_clear(tx, case_id, OFFER_DEADLINE, &se);
    }
    return rc ? process_store_fail(&se, e) : 0;
}

/* ---- offers ---- */

/* Offers resource r to waiting entry w: a held seat (when r counts seats)
 * until the answer is due, an event on w's case, its deadline. */
static int make_offer(store_tx *tx, const resource_row *r, const waitlist_row *w, err_t *e)
{
    char today[11], due[11], alloc[ID_MAX] = "";
    today_str(today);
    if (!date_add_days(today, w->offer_days > 0 ? w->offer_days : 7, due)) str_copy(due, sizeof due, today);
    store_err se = {0};
    if (r->has_capacity) {
        id_new("alc_", alloc);
        allocation_in ai = {.id = alloc, .resource_id = r->id, .case_id = w->case_id, .person_id = w->person_id,
                            .org = w->org, .waitlist_id = w->id, .status = "held", .need = w->need,
                            .hold_until = due, .by = SYSTEM_ACTOR};
        if (store_allocation_insert(tx, &ai, &se)) return process_store_fail(&se, e);
    }
    if (store_waitlist_offer(tx, w->id, r->id, alloc[0] ? alloc : NULL, due, &se)) return process_store_fail(&se, e);
    json_t *data = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "waitlist_id", w->id, "resource_id", r->id,
                             "resource_name", r->name, "due_on", due, "allocation_id", alloc[0] ? alloc : NULL);
    if (case_event(tx, w->case_id, SYSTEM_ACTOR, "resource_offered", data, NULL, e)) return -1;
    return offer_deadline(tx, w->case_id, e);
}

static int offer_list(store_tx *tx, const resource_row *r, waitlist_list *l, int *offered, err_t *e)
{
    int rc = 0;
    for (size_t i = 0; i < l->n && !rc; i++) {
        rc = make_offer(tx, r, &l->items[i], e);
        if (!rc && offered) (*offered)++;
    }
    waitlist_list_free(l);
    return rc;
}

/* The free seats of a resource go to the next cases waiting for it. */
static int offer_free_seats(store_tx *tx, const char *resource_id, int *offered, err_t *e)
{
    char today[11];
    today_str(today);
    resource_row r;
    store_err se = {0};
    if (store_resource_get(tx, NULL, resource_id, today, &r, &se)) return process_store_fail(&se, e);
    long long n = r.has_capacity ? r.capacity - r.confirmed - r.held : OFFER_BATCH;
    bool open = !strcmp(r.status, "active") && !(r.period_end && strcmp(r.period_end, today) < 0);
    int rc = 0;
    if (open && n > 0) {
        waitlist_list next;
        if (store_waitlist_next(tx, &r, n > OFFER_BATCH ? OFFER_BATCH : (int)n, &next, &se)) rc = process_store_fail(&se, e);
        else rc = offer_list(tx, &r, &next, offered, e);
    }
    resource_row_free(&r);
    return rc;
}

/* Offers nobody answered in time: the held seat goes back and to the next
 * case; the entry stops waiting for that resource (an entry that waited
 * for it ends as expired, one waiting for a kind of resource waits on). */
static int expire_offers(store_tx *tx, err_t *e)
{
    char today[11];
    today_str(today);
    waitlist_list over;
    store_err se = {0};
    if (store_waitlist_overdue(tx, today, OFFER_BATCH, &over, &se)) return process_store_fail(&se, e);
    int rc = 0;
    for (size_t i = 0; i < over.n && !rc; i++) {
        const waitlist_row *w = &over.items[i];
        char res[ID_MAX];
        str_copy(res, sizeof res, w->offered_resource_id ? w->offered_resource_id : "");
        if (w->allocation_id && store_allocation_move(tx, w->allocation_id, "held", "released", SYSTEM_ACTOR, &se) &&
            se.kind != STORE_CONFLICT)
            rc = process_store_fail(&se, e);
        bool own = w->resource_id && !strcmp(w->resource_id, res);
        if (!rc && (own ? store_waitlist_end(tx, w->id, "expired", &se) : store_waitlist_unoffer(tx, w->id, res, &se)))
            rc = process_store_fail(&se, e);
        if (!rc)
            rc = case_event(tx, w->case_id, SYSTEM_ACTOR, "resource_offer_expired",
                            json_pack("{s:s, s:s, s:s?}", "waitlist_id", w->id, "resource_id", res, "due_on",
                                      w->offer_due_on),
                            NULL, e);
        if (!rc) rc = offer_deadline(tx, w->case_id, e);
        if (!rc) rc = offer_free_seats(tx, res, NULL, e);
    }
    waitlist_list_free(&over);
    return rc;
}

/* ---- resources ---- */
typedef struct {
    const principal *p;
    resource_in *in;
    const char *id;
    resource_query *q;
    bool has_capacity;
    long long capacity;
    int version;
    char new_id[ID_MAX];
} res_arg;

static int resource_answer(store_tx *tx, const principal *p, const char *id, int status, int offered,
                           store_reply *reply, err_t *e)
{
    char today[11];
    today_str(today);
    resource_row r;
    store_err se = {0};
    if (store_resource_get(tx, p, id, today, &r, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no resource '%s'", id);
    reply->status = status;
    reply->body = render_resource(&r);
    if (offered >= 0) json_object_set_new(reply->body, "offered", json_integer(offered));
    resource_row_free(&r);
    return 0;
}

static int work_resource_create(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    res_arg *a = arg;
    store_err se = {0};
    if (expire_offers(tx, e)) return -1;
    resource_row r;
    id_new("rsc_", a->new_id);
    if (store_resource_insert(tx, a->new_id, a->in, &r, &se)) return process_store_fail(&se, e);
    /* seed 003: 새로운 자원이 입력되면 자원대기자를 등록한 담당자에게 알려 */
    int offered = 0;
    waitlist_list match;
    long long n = r.has_capacity ? r.capacity : OFFER_BATCH;
    int rc = 0;
    if (n > 0) {
        if (store_waitlist_matching(tx, &r, n > OFFER_BATCH ? OFFER_BATCH : (int)n, &match, &se))
            rc = process_store_fail(&se, e);
        else rc = offer_list(tx, &r, &match, &offered, e);
    }
    resource_row_free(&r);
    return rc ? -1 : resource_answer(tx, a->p, a->new_id, 201, offered, reply, e);
}

int process_resource_create(const principal *p, resource_in *in, const store_idem *idem, store_reply *reply,
                            err_t *e)
{
    in->org = p->org;
    in->region = p->region;
    in->by = p->user;
    res_arg a = {.p = p, .in = in};
    return process_write(idem, work_resource_create, &a, reply, e);
}

static int work_resource_get(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    res_arg *a = arg;
    return resource_answer(tx, a->p, a->id, 200, -1, reply, e);
}

int process_resource_get(const principal *p, const char *id, store_reply *reply, err_t *e)
{
    res_arg a = {.p = p, .id = id};
    return process_read(work_resource_get, &a, reply, e);
}

static int work_resource_list(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    res_arg *a = arg;
    resource_list l;
    store_err se = {0};
    if (store_resource_list(tx, a->p, a->q, &l, &se)) return process_store_fail(&se, e);
    reply->status = 200;
    reply->body = render_page(render_resources(&l), l.more, l.last);
    resource_list_free(&l);
    return 0;
}

int process_resource_list(const principal *p, resource_query *q, store_reply *reply, err_t *e)
{
    char today[11];
    today_str(today);
    q->today = today;
    res_arg a = {.p = p, .q = q};
    return process_read(work_resource_list, &a, reply, e);
}

/* A resource p may see; 404 otherwise. */
static int resource_visible(store_tx *tx, const principal *p, const char *id, resource_row *r, err_t *e)
{
    char today[11];
    today_str(today);
    store_err se = {0};
    if (store_resource_get(tx, p, id, today, r, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no resource '%s'", id);
    return 0;
}

static int work_capacity(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    res_arg *a = arg;
    if (expire_offers(tx, e)) return -1;
    resource_row r;
    if (resource_visible(tx, a->p, a->id, &r, e)) return -1;
    int rc = -1;
    store_err se = {0};
    if (strcmp(r.org, a->p->org)) {
        err_set(e, 403, "forbidden", "only %s, which registered resource %s, changes its capacity", r.org, r.id);
    } else if (a->has_capacity && a->capacity < r.confirmed + r.held) {
        err_set(e, 409, "capacity_below_use", "resource %s has %lld seats in use and %lld held by offers; capacity %lld "
                "is less", r.id, r.confirmed, r.held, a->capacity);
        err_detail(e, "in_use", json_integer(r.confirmed + r.held));
    } else if (store_resource_set_capacity(tx, r.id, a->has_capacity, a->capacity, a->version, &se)) {
        process_store_error(&se, e, STORE_STALE, 412, "version_mismatch", "resource %s is at version %d, not %d", r.id,
                            r.version, a->version);
        if (se.kind == STORE_STALE) err_detail(e, "version", json_integer(r.version));
    } else {
        rc = 0;
    }
    char id[ID_MAX];
    str_copy(id, sizeof id, r.id);
    resource_row_free(&r);
    if (rc) return -1;
    int offered = 0;
    if (offer_free_seats(tx, id, &offered, e)) return -1;
    return resource_answer(tx, a->p, id, 200, offered, reply, e);
}

int process_resource_capacity(const principal *p, const char *id, bool has_capacity, long long capacity, int version,
                              store_reply *reply, err_t *e)
{
    res_arg a = {.p = p, .id = id, .has_capacity = has_capacity, .capacity = capacity, .version = version};
    return process_write(NULL, work_capacity, &a, reply, e);
}

/* ---- reservations and the waitlist ---- */
typedef struct {
    const principal *p;
    const char *resource_id; /* NULL: waiting for a kind of resource */
    const waitlist_post *in;
    char domain[64], kind[16];
    int priority, offer_days;
    char reason[512], plugin[96];
    char gen[17]; /* the rules generation that gave the priority */
} reserve_arg;

/* The case of a body's case_id, seen by p and not ended: 422 unknown_case
 * or 409 case_ended otherwise. */
static int body_case(store_tx *tx, const principal *p, const char *id, case_row *c, err_t *e)
{
    store_err se = {0};
    if (store_case_load(tx, p, id, c, &se)) {
        process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_case", "no case '%s'", id);
        if (se.kind == STORE_NOT_FOUND) err_detail(e, "field", json_string("case_id"));
        return -1;
    }
    if (!strcmp(c->status, "ended")) {
        err_set(e, 409, "case_ended", "case %s has ended; reopen it before it waits for a resource", c->id);
        return -1;
    }
    return 0;
}

static bool in_array(json_t *a, const char *v)
{
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) if (json_is_string(x) && !strcmp(json_string_value(x), v)) return true;
    return false;
}

/* Whether the case waits for, holds or uses the resource: 409 already_reserved. */
static int not_yet(store_tx *tx, const char *resource_id, const char *case_id, err_t *e)
{
    bool has = false;
    store_err se = {0};
    if (store_resource_case_has(tx, resource_id, case_id, &has, &se)) return process_store_fail(&se, e);
    if (has) {
        err_set(e, 409, "already_reserved", "case %s already holds, uses or waits for resource %s", case_id,
                resource_id);
        return -1;
    }
    return 0;
}

static int decide_reserve(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    reserve_arg *a = arg;
    case_row c;
    if (body_case(tx, a->p, a->in->case_id, &c, e)) return -1;
    json_t *entry = json_pack("{s:s, s:s?, s:s?, s:s?}", "need", a->in->need, "domain", a->in->domain, "kind",
                              a->in->kind, "target", a->in->target);
    int rc = -1;
    if (a->resource_id) {
        resource_row r;
        if (resource_visible(tx, a->p, a->resource_id, &r, e)) goto done;
        char today[11];
        today_str(today);
        if (strcmp(r.status, "active") || (r.period_end && strcmp(r.period_end, today) < 0)) {
            err_set(e, 409, "resource_closed", "resource %s is not offered any more (%s%s)", r.id,
                    strcmp(r.status, "active") ? r.status : "its period ended on ",
                    strcmp(r.status, "active") ? "" : r.period_end);
        } else if (a->in->domain && !in_array(r.domains, a->in->domain)) {
            err_set(e, 422, "validation_failed", "domain: resource %s does not serve '%s'", r.id, a->in->domain);
            err_detail(e, "field", json_string("domain"));
            err_detail(e, "allowed", json_incref(r.domains));
        } else {
            const char *d = a->in->domain ? a->in->domain : json_string_value(json_array_get(r.domains, 0));
            str_copy(a->domain, sizeof a->domain, d ? d : "");
            str_copy(a->kind, sizeof a->kind, r.kind);
            json_object_set_new(entry, "resource", render_resource(&r));
            json_object_set_new(entry, "domain", json_string(a->domain));
            json_object_set_new(entry, "kind", json_string(a->kind));
            rc = not_yet(tx, r.id, c.id, e);
        }
        resource_row_free(&r);
        if (rc) goto done;
    } else {
        str_copy(a->domain, sizeof a->domain, a->in->domain);
        str_copy(a->kind, sizeof a->kind, a->in->kind ? a->in->kind : "");
    }
    /* Programs and regions may put some cases first (a crisis case ...). */
    rules_facts facts = {.tx = tx, .viewer = a->p};
    rules_verdict v;
    if (rules_waitlist(&facts, &c, entry, &v)) {
        rules_error(&v, RULES_ASK_RECORD, &c, NULL, e);
        rules_verdict_free(&v);
        rc = -1;
        goto done;
    }
    str_copy(a->gen, sizeof a->gen, rules_generation());
    json_t *res = v.result;
    a->priority = (int)json_integer_value(json_object_get(res, "priority"));
    a->offer_days = (int)json_integer_value(json_object_get(res, "offer_days"));
    if (a->offer_days < 1) a->offer_days = 7;
    a->reason[0] = a->plugin[0] = 0;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(res, "reasons"), i, x) {
        size_t len = strlen(a->reason);
        snprintf(a->reason + len, sizeof a->reason - len, "%s%s", len ? "; " : "", json_string_value(x));
    }
    json_array_foreach(json_object_get(res, "plugins"), i, x) {
        size_t len = strlen(a->plugin);
        snprintf(a->plugin + len, sizeof a->plugin - len, "%s%s", len ? "," : "", json_string_value(x));
    }
    rules_verdict_free(&v);
    rc = 0;
done:
    json_decref(entry);
    return rc;
}

/* The entry of the waitlist the case takes, as decided. */
static int waitlist_put(store_tx *tx, reserve_arg *a, const case_row *c, char id[ID_MAX], err_t *e)
{
    id_new("wl_", id);
    waitlist_in wi = {.id = id, .resource_id = a->resource_id, .case_id = c->id, .person_id = c->person_id,
                      .org = c->lead_org[0] ? c->lead_org : c->org, .region = c->region, .by = a->p->user,
                      .need = a->in->need, .domain = a->domain, .kind = a->kind[0] ? a->kind : NULL,
                      .target = a->in->target, .priority = a->priority,
                      .priority_reason = a->reason[0] ? a->reason : NULL,
                      .priority_plugin = a->plugin[0] ? a->plugin : NULL, .offer_days = a->offer_days};
    store_err se = {0};
    return store_waitlist_insert(tx, &wi, &se) ? process_store_fail(&se, e) : 0;
}

static json_t *waitlist_json(store_tx *tx, const char *id, err_t *e)
{
    char today[11];
    today_str(today);
    waitlist_row w;
    store_err se = {0};
    if (store_waitlist_get(tx, id, &w, &se)) {
        process_store_fail(&se, e);
        return NULL;
    }
    json_t *j = render_waitlist(&w, today, true);
    waitlist_row_free(&w);
    return j;
}

static int apply_reserve(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    reserve_arg *a = arg;
    if (expire_offers(tx, e)) return -1;
    case_row c;
    if (body_case(tx, a->p, a->in->case_id, &c, e)) return -1;
    if (not_yet(tx, a->resource_id, c.id, e)) return -1;
    /* Seats already free go to those waiting before this request. */
    if (offer_free_seats(tx, a->resource_id, NULL, e)) return -1;
    resource_row r;
    if (resource_visible(tx, a->p, a->resource_id, &r, e)) return -1;
    bool seat = (!r.has_capacity || r.capacity - r.confirmed - r.held > 0) && r.waiting == 0;
    resource_row_free(&r);
    store_err se = {0};
    json_t *body = json_object();
    int rc = 0;
    if (seat) {
        char id[ID_MAX];
        id_new("alc_", id);
        allocation_in ai = {.id = id, .resource_id = a->resource_id, .case_id = c.id, .person_id = c.person_id,
                            .org = c.lead_org[0] ? c.lead_org : c.org, .status = "confirmed", .need = a->in->need,
                            .by = a->p->user};
        allocation_row row;
        if (store_allocation_insert(tx, &ai, &se) || store_allocation_get(tx, a->resource_id, id, &row, &se)) {
            rc = process_store_fail(&se, e);
        } else {
            json_object_set_new(body, "status", json_string("confirmed"));
            json_object_set_new(body, "allocation", render_allocation(&row));
            allocation_row_free(&row);
            rc = case_event(tx, c.id, a->p->user, "resource_reserved",
                            json_pack("{s:s, s:s}", "resource_id", a->resource_id, "allocation_id", id), a->gen, e);
        }
    } else {
        char id[ID_MAX];
        json_t *w = NULL;
        rc = waitlist_put(tx, a, &c, id, e);
        if (!rc && !(w = waitlist_json(tx, id, e))) rc = -1;
        if (!rc) {
            json_object_set_new(body, "status", json_string("waitlisted"));
            json_object_set_new(body, "waitlist", w);
            rc = case_event(tx, c.id, a->p->user, "resource_waitlisted",
                            json_pack("{s:s, s:s, s:O}", "resource_id", a->resource_id, "waitlist_id", id, "position",
                                      json_object_get(w, "position")),
                            a->gen, e);
        }
    }
    store_reply res = {0};
    if (!rc) rc = resource_answer(tx, a->p, a->resource_id, 200, -1, &res, e);
    if (rc) {
        json_decref(body);
        return -1;
    }
    json_object_set_new(body, "resource", res.body);
    reply->status = 201;
    reply->body = body;
    return 0;
}

int process_resource_reserve(const principal *p, const char *resource_id, const waitlist_post *in,
                             const store_idem *idem, store_reply *reply, err_t *e)
{
    if (idem && process_replay(idem, reply, e)) return reply->replayed ? 0 : -1;
    reserve_arg a = {.p = p, .resource_id = resource_id, .in = in};
    store_reply none = {0};
    int rc = process_read(decide_reserve, &a, &none, e);
    if (!rc) rc = process_write(idem, apply_reserve, &a, reply, e);
    return rc;
}

static int apply_waitlist_add(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    reserve_arg *a = arg;
    case_row c;
    if (body_case(tx, a->p, a->in->case_id, &c, e)) return -1;
    char id[ID_MAX];
    if (waitlist_put(tx, a, &c, id, e)) return -1;
    json_t *w = waitlist_json(tx, id, e);
    if (!w) return -1;
    if (case_event(tx, c.id, a->p->user, "resource_waitlisted",
                   json_pack("{s:s, s:s}", "waitlist_id", id, "domain", a->domain), a->gen, e)) {
        json_decref(w);
        return -1;
    }
    reply->status = 201;
    reply->body = w;
    return 0;
}

int process_waitlist_add(const principal *p, const waitlist_post *in, const store_idem *idem, store_reply *reply,
                         err_t *e)
{
    if (idem && process_replay(idem, reply, e)) return reply->replayed ? 0 : -1;
    reserve_arg a = {.p = p, .in = in};
    store_reply none = {0};
    int rc = process_read(decide_reserve, &a, &none, e);
    if (!rc) rc = process_write(idem, apply_waitlist_add, &a, reply, e);
    return rc;
}

/* ---- seats given back ---- */
typedef struct {
    const principal *p;
    const char *resource_id, *id, *note, *reason, *status;
    bool accept;
    waitlist_query *q;
    int limit;
    const char *after;
} wl_arg;

static int work_release(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    wl_arg *a = arg;
    if (expire_offers(tx, e)) return -1;
    resource_row r;
    if (resource_visible(tx, a->p, a->resource_id, &r, e)) return -1;
    bool owner = !strcmp(r.org, a->p->org);
    resource_row_free(&r);
    allocation_row al;
    store_err se = {0};
    if (store_allocation_get(tx, a->resource_id, a->id, &al, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no allocation '%s' of resource '%s'",
                                   a->id, a->resource_id);
    int rc = -1;
    case_row c;
    if (!owner && store_case_load(tx, a->p, al.case_id, &c, &se)) {
        process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no allocation '%s' of resource '%s'", a->id,
                            a->resource_id);
    } else if (strcmp(al.status, "confirmed")) {
        err_set(e, 409, "allocation_not_confirmed",
                "allocation %s is %s; a held seat is answered through its waitlist entry", al.id, al.status);
    } else if (store_allocation_move(tx, al.id, "confirmed", "released", a->p->user, &se)) {
        process_store_fail(&se, e);
    } else {
        rc = case_event(tx, al.case_id, a->p->user, "resource_released",
                        json_pack("{s:s, s:s, s:s?}", "resource_id", a->resource_id, "allocation_id", al.id, "note",
                                  a->note),
                        NULL, e);
    }
    int offered = 0;
    if (!rc) rc = offer_free_seats(tx, a->resource_id, &offered, e);
    allocation_row after = {0};
    if (!rc && store_allocation_get(tx, a->resource_id, a->id, &after, &se)) rc = process_store_fail(&se, e);
    store_reply res = {0};
    if (!rc) rc = resource_answer(tx, a->p, a->resource_id, 200, offered, &res, e);
    if (!rc) {
        reply->status = 200;
        reply->body = json_pack("{s:o, s:o}", "allocation", render_allocation(&after), "resource", res.body);
    }
    allocation_row_free(&after);
    allocation_row_free(&al);
    return rc;
}

int process_allocation_release(const principal *p, const char *resource_id, const char *id, const char *note,
                               store_reply *reply, err_t *e)
{
    wl_arg a = {.p = p, .resource_id = resource_id, .id = id, .note = note};
    return process_write(NULL, work_release, &a, reply, e);
}

/* ---- reading the waitlist ---- */
static bool sees_case(store_tx *tx, const principal *p, const char *case_id)
{
    case_row c;
    store_err se = {0};
    return store_case_load(tx, p, case_id, &c, &se) == 0;
}

static int work_resource_waitlist(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    wl_arg *a = arg;
    resource_row r;
    if (resource_visible(tx, a->p, a->resource_id, &r, e)) return -1;
    resource_row_free(&r);
    waitlist_query q = {.resource_id = a->resource_id, .status = a->status, .limit = a->limit, .after = a->after};
    waitlist_list l;
    store_err se = {0};
    if (store_waitlist_list(tx, &q, &l, &se)) return process_store_fail(&se, e);
    char today[11];
    today_str(today);
    json_t *items = json_array();
    for (size_t i = 0; i < l.n; i++)
        json_array_append_new(items, render_waitlist(&l.items[i], today, sees_case(tx, a->p, l.items[i].case_id)));
    reply->status = 200;
    reply->body = render_page(items, l.more, l.last);
    waitlist_list_free(&l);
    return 0;
}

int process_resource_waitlist(const principal *p, const char *resource_id, const char *status, int limit,
                              const char *after, store_reply *reply, err_t *e)
{
    wl_arg a = {.p = p, .resource_id = resource_id, .status = status, .limit = limit, .after = after};
    return process_read(work_resource_waitlist, &a, reply, e);
}

static int work_waitlist_list(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    wl_arg *a = arg;
    waitlist_query q = *a->q;
    if (q.case_id) {
        if (!sees_case(tx, a->p, q.case_id)) {
            reply->status = 200;
            reply->body = render_page(json_array(), false, NULL);
            return 0;
        }
    } else {
        q.org = a->p->org;
    }
    waitlist_list l;
    store_err se = {0};
    if (store_waitlist_list(tx, &q, &l, &se)) return process_store_fail(&se, e);
    char today[11];
    today_str(today);
    json_t *items = json_array();
    for (size_t i = 0; i < l.n; i++) json_array_append_new(items, render_waitlist(&l.items[i], today, true));
    reply->status = 200;
    reply->body = render_page(items, l.more, l.last);
    waitlist_list_free(&l);
    return 0;
}

int process_waitlist_list(const principal *p, waitlist_query *q, store_reply *reply, err_t *e)
{
    wl_arg a = {.p = p, .q = q};
    return process_read(work_waitlist_list, &a, reply, e);
}

/* An entry whose case p sees; 404 otherwise. */
static int entry_visible(store_tx *tx, const principal *p, const char *id, waitlist_row *w, err_t *e)
{
    store_err se = {0};
    if (store_waitlist_get(tx, id, w, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no waitlist entry '%s'", id);
    if (!sees_case(tx, p, w->case_id)) {
        waitlist_row_free(w);
        err_set(e, 404, "not_found", "no waitlist entry '%s'", id);
        return -1;
    }
    return 0;
}

static int entry_answer(store_tx *tx, const char *id, int status, store_reply *reply, err_t *e)
{
    json_t *w = waitlist_json(tx, id, e);
    if (!w) return -1;
    reply->status = status;
    reply->body = w;
    return 0;
}

static int work_waitlist_get(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    wl_arg *a = arg;
    waitlist_row w;
    if (entry_visible(tx, a->p, a->id, &w, e)) return -1;
    waitlist_row_free(&w);
    return entry_answer(tx, a->id, 200, reply, e);
}

int process_waitlist_get(const principal *p, const char *id, store_reply *reply, err_t *e)
{
    wl_arg a = {.p = p, .id = id};
    return process_read(work_waitlist_get, &a, reply, e);
}

/* ---- offers answered, entries ended ---- */
static int work_answer(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    wl_arg *a = arg;
    waitlist_row w;
    if (entry_visible(tx, a->p, a->id, &w, e)) return -1;
    char today[11], res[ID_MAX] = "", alloc[ID_MAX] = "";
    today_str(today);
    int rc = -1;
    store_err se = {0};
    if (strcmp(w.status, "offered")) {
        err_set(e, 409, "no_offer", "waitlist entry %s has no open offer (it is %s)", w.id, w.status);
        goto done;
    }
    str_copy(res, sizeof res, w.offered_resource_id);
    if (w.allocation_id) str_copy(alloc, sizeof alloc, w.allocation_id);
    if (a->accept) {
        if (w.offer_due_on && strcmp(w.offer_due_on, today) < 0) {
            err_set(e, 409, "offer_expired", "the offer of resource %s was to be answered by %s", res, w.offer_due_on);
            goto done;
        }
        if (alloc[0]) {
            if (store_allocation_move(tx, alloc, "held", "confirmed", NULL, &se)) {
                process_store_error(&se, e, STORE_CONFLICT, 409, "offer_expired", "the seat held for %s is gone", w.id);
                goto done;
            }
        } else {
            id_new("alc_", alloc);
            allocation_in ai = {.id = alloc, .resource_id = res, .case_id = w.case_id, .person_id = w.person_id,
                                .org = w.org, .waitlist_id = w.id, .status = "confirmed", .need = w.need,
                                .by = a->p->user};
            if (store_allocation_insert(tx, &ai, &se)) {
                process_store_fail(&se, e);
                goto done;
            }
        }
        /* seed 003: 대기하던 자원이 제공되어 욕구가 충족되었을 경우 대기자 목록에서 제외 */
        if (store_waitlist_end(tx, w.id, "met", &se)) {
            process_store_fail(&se, e);
            goto done;
        }
        rc = case_event(tx, w.case_id, a->p->user, "resource_offer_accepted",
                        json_pack("{s:s, s:s, s:s, s:s?}", "waitlist_id", w.id, "resource_id", res, "allocation_id",
                                  alloc, "note", a->note),
                        NULL, e);
    } else {
        if (alloc[0] && store_allocation_move(tx, alloc, "held", "released", a->p->user, &se) &&
            se.kind != STORE_CONFLICT) {
            process_store_fail(&se, e);
            goto done;
        }
        bool own = w.resource_id && !strcmp(w.resource_id, res);
        if (own ? store_waitlist_end(tx, w.id, "declined", &se) : store_waitlist_unoffer(tx, w.id, res, &se)) {
            process_store_fail(&se, e);
            goto done;
        }
        rc = case_event(tx, w.case_id, a->p->user, "resource_offer_declined",
                        json_pack("{s:s, s:s, s:s?}", "waitlist_id", w.id, "resource_id", res, "note", a->note), NULL, e);
        if (!rc) rc = offer_free_seats(tx, res, NULL, e);
    }
    if (!rc) rc = offer_deadline(tx, w.case_id, e);
done:
    waitlist_row_free(&w);
    if (rc) return -1;
    if (entry_answer(tx, a->id, 200, reply, e)) return -1;
    if (a->accept) {
        allocation_row al;
        if (store_allocation_get(tx, res, alloc, &al, &se)) return process_store_fail(&se, e);
        json_object_set_new(reply->body, "allocation", render_allocation(&al));
        allocation_row_free(&al);
    }
    return 0;
}

int process_waitlist_answer(const principal *p, const char *id, bool accept, const char *note, store_reply *reply,
                            err_t *e)
{
    wl_arg a = {.p = p, .id = id, .accept = accept, .note = note};
    return process_write(NULL, work_answer, &a, reply, e);
}

static int work_end(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    wl_arg *a = arg;
    waitlist_row w;
    if (entry_visible(tx, a->p, a->id, &w, e)) return -1;
    int rc = -1;
    store_err se = {0};
    char res[ID_MAX] = "";
    if (!strcmp(w.status, "ended")) {
        err_set(e, 409, "waitlist_ended", "waitlist entry %s has ended (%s)", w.id, w.end_reason ? w.end_reason : "?");
        goto done;
    }
    if (!strcmp(w.status, "offered")) {
        str_copy(res, sizeof res, w.offered_resource_id);
        if (w.allocation_id && store_allocation_move(tx, w.allocation_id, "held", "released", a->p->user, &se) &&
            se.kind != STORE_CONFLICT) {
            process_store_fail(&se, e);
            goto done;
        }
    }
    if (store_waitlist_end(tx, w.id, a->reason, &se)) {
        process_store_fail(&se, e);
        goto done;
    }
    rc = case_event(tx, w.case_id, a->p->user, "waitlist_ended",
                    json_pack("{s:s, s:s, s:s?}", "waitlist_id", w.id, "reason", a->reason, "note", a->note), NULL, e);
    if (!rc) rc = offer_deadline(tx, w.case_id, e);
    if (!rc && res[0]) rc = offer_free_seats(tx, res, NULL, e);
done:
    waitlist_row_free(&w);
    return rc ? -1 : entry_answer(tx, a->id, 200, reply, e);
}

int process_waitlist_end(const principal *p, const char *id, const char *reason, const char *note,
                         store_reply *reply, err_t *e)
{
    wl_arg a = {.p = p, .id = id, .reason = reason, .note = note};
    return process_write(NULL, work_end, &a, reply, e);
}

/* ---- the one-screen view ---- */
int process_case_resources(store_tx *tx, const char *case_id, json_t **out, err_t *e)
{
    allocation_list al;
    waitlist_list wl;
    store_err se = {0};
    waitlist_query q = {.case_id = case_id, .limit = 200};
    if (store_allocations_of_case(tx, case_id, &al, &se)) return process_store_fail(&se, e);
    if (store_waitlist_list(tx, &q, &wl, &se)) {
        allocation_list_free(&al);
        return process_store_fail(&se, e);
    }
    char today[11];
    today_str(today);
    json_t *waiting = json_array();
    for (size_t i = 0; i < wl.n; i++) json_array_append_new(waiting, render_waitlist(&wl.items[i], today, true));
    *out = json_pack("{s:o, s:o}", "allocations", render_allocations(&al), "waitlist", waiting);
    allocation_list_free(&al);
    waitlist_list_free(&wl);
    return 0;
}
