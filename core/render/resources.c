/* resources.c: resources, seats and waitlist entries as JSON
 * (render/resources.h). */
#include "render/resources.h"

#include <stdio.h>
#include <string.h>

#include "base/base.h"

static json_t *str(const char *s) { return s ? json_string(s) : json_null(); }
static void set(json_t *o, const char *key, json_t *v) { json_object_set_new(o, key, v ? v : json_null()); }

json_t *render_resource(const resource_row *r)
{
    json_t *j = json_object();
    set(j, "id", str(r->id));
    set(j, "org", str(r->org));
    set(j, "region", str(r->region));
    set(j, "name", str(r->name));
    set(j, "provider", json_pack("{s:o, s:o}", "name", str(r->provider_name), "type", str(r->provider_type)));
    set(j, "distributor", str(r->distributor));
    set(j, "kind", str(r->kind));
    set(j, "domains", r->domains ? json_incref(r->domains) : json_array());
    set(j, "targets", r->targets ? json_incref(r->targets) : json_array());
    set(j, "share_scope", str(r->share_scope));
    set(j, "capacity", r->has_capacity ? json_integer(r->capacity) : json_null());
    set(j, "confirmed", json_integer(r->confirmed));
    set(j, "held", json_integer(r->held));
    long long free_seats = r->capacity - r->confirmed - r->held;
    set(j, "available", r->has_capacity ? json_integer(free_seats > 0 ? free_seats : 0) : json_null());
    set(j, "waiting", json_integer(r->waiting));
    set(j, "period", json_pack("{s:o, s:o}", "start", str(r->period_start), "end", str(r->period_end)));
    set(j, "cost", str(r->cost));
    set(j, "contact", str(r->contact));
    set(j, "description", str(r->description));
    set(j, "status", str(r->status));
    set(j, "version", json_integer(r->version));
    set(j, "created_at", str(r->created_at));
    set(j, "created_by", str(r->created_by));
    set(j, "updated_at", str(r->updated_at));
    return j;
}

json_t *render_resources(const resource_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) json_array_append_new(a, render_resource(&l->items[i]));
    return a;
}

json_t *render_allocation(const allocation_row *a)
{
    json_t *j = json_object();
    set(j, "id", str(a->id));
    set(j, "resource_id", str(a->resource_id));
    set(j, "case_id", str(a->case_id));
    set(j, "org", str(a->org));
    set(j, "waitlist_id", str(a->waitlist_id));
    set(j, "status", str(a->status));
    set(j, "need", str(a->need));
    set(j, "hold_until", str(a->hold_until));
    set(j, "created_at", str(a->created_at));
    set(j, "created_by", str(a->created_by));
    set(j, "released_at", str(a->released_at));
    set(j, "released_by", str(a->released_by));
    return j;
}

json_t *render_allocations(const allocation_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) json_array_append_new(a, render_allocation(&l->items[i]));
    return a;
}

/* Days from a to b (both YYYY-MM-DD); 0 when either is not a date. */
static long long days_between(const char *a, const char *b)
{
    int y1, m1, d1, y2, m2, d2;
    if (!a || !b || !date_parse(a, &y1, &m1, &d1) || !date_parse(b, &y2, &m2, &d2)) return 0;
    return (long long)(date_to_days(y2, m2, d2) - date_to_days(y1, m1, d1));
}

json_t *render_waitlist(const waitlist_row *w, const char *today, bool full)
{
    json_t *j = json_object();
    set(j, "id", str(w->id));
    set(j, "resource_id", str(w->resource_id));
    set(j, "case_id", full ? str(w->case_id) : json_null());
    set(j, "person_id", full ? str(w->person_id) : json_null());
    set(j, "org", str(w->org));
    set(j, "region", str(w->region));
    set(j, "need", full ? str(w->need) : json_null());
    set(j, "domain", str(w->domain));
    set(j, "kind", str(w->kind));
    set(j, "target", str(w->target));
    set(j, "priority", json_integer(w->priority));
    set(j, "priority_reason", str(w->priority_reason));
    set(j, "status", str(w->status));
    set(j, "position", w->position > 0 ? json_integer(w->position) : json_null());
    set(j, "waiting_since", str(w->created_on));
    set(j, "waited_days", json_integer(days_between(w->created_on, w->ended_on ? w->ended_on : today)));
    json_t *offer = json_null();
    if (w->offered_resource_id)
        offer = json_pack("{s:s, s:o, s:o, s:o, s:b}", "resource_id", w->offered_resource_id, "allocation_id",
                          str(w->allocation_id), "offered_at", str(w->offered_at), "due_on", str(w->offer_due_on),
                          "overdue", w->offer_due_on && today && strcmp(w->offer_due_on, today) < 0);
    set(j, "offer", offer);
    set(j, "offer_days", json_integer(w->offer_days));
    set(j, "end_reason", str(w->end_reason));
    set(j, "registered_by", full ? str(w->registered_by) : json_null());
    set(j, "created_at", str(w->created_at));
    set(j, "ended_at", str(w->ended_at));
    return j;
}
