/*
 * resources: welfare resources of the community (seed 003 보건복지자원:
 * a provider's cash, goods or service), the seats a case holds on one, and
 * the waitlist of people whose need a resource could meet (자원대기자).
 * Rows and functions in the manner of store/records.h: rows own their text
 * (mem) and JSON, each xxx_free releases them; every function returns 0 or
 * -1 with e set.
 *
 * Who sees a resource is its share scope (공유범위): "none" only the
 * organisation that registered it, "district" every organisation of the
 * same region code (시·군·구), "region" every organisation whose region
 * code starts with the same two digits (시·도).
 *
 * Capacity: a resource with a capacity has that many seats; a seat is
 * "confirmed" (a case uses it) or "held" (offered to a waiting person until
 * hold_until). Counting and taking seats happen in one unit of work on the
 * store's one writer, so two requests never both take the last seat.
 */
#ifndef SARYE_STORE_RESOURCES_H
#define SARYE_STORE_RESOURCES_H

#include "store/records.h"

typedef struct {
    const char *org, *region, *name, *provider_name, *provider_type, *distributor, *kind, *share_scope;
    json_t *domains, *targets; /* arrays of strings */
    bool has_capacity;
    long long capacity;
    const char *period_start, *period_end, *cost, *contact, *description, *by; /* optional ones NULL */
} resource_in;

typedef struct {
    char *mem;
    const char *id, *org, *region, *name, *provider_name, *provider_type, *distributor, *kind, *share_scope;
    const char *period_start, *period_end, *cost, *contact, *description, *status;
    const char *created_at, *created_by, *updated_at;
    json_t *domains, *targets;
    bool has_capacity;
    long long capacity;
    long long confirmed, held, waiting; /* seats used, seats held by offers, people waiting for it */
    int version;
} resource_row;
void resource_row_free(resource_row *r);

typedef struct {
    resource_row *items;
    size_t n;
    bool more;
    char last[STORE_KEY_MAX];
} resource_list;
void resource_list_free(resource_list *l);

/* The id is chosen by the caller. out: the resource as stored. */
int store_resource_insert(store_tx *tx, const char *id, const resource_in *in, resource_row *out, store_err *e);
/* A resource p may see (STORE_NOT_FOUND otherwise), with its seats counted
 * on today (held seats past their hold do not count). p NULL: any. */
int store_resource_get(store_tx *tx, const principal *p, const char *id, const char *today, resource_row *out,
                       store_err *e);

typedef struct {
    const char *domain, *kind, *target, *region; /* each optional */
    bool available;                              /* only resources with a free seat (or no capacity) today */
    const char *today;
    int limit;
    const char *after;
} resource_query;
int store_resource_list(store_tx *tx, const principal *p, const resource_query *q, resource_list *out,
                        store_err *e);
/* New capacity (NULL: unlimited); STORE_STALE when version is not the
 * stored one (version < 0: any). */
int store_resource_set_capacity(store_tx *tx, const char *id, bool has_capacity, long long capacity, int version,
                                store_err *e);

/* ---- seats ---- */
typedef struct {
    char *mem;
    const char *id, *resource_id, *case_id, *person_id, *org, *waitlist_id, *status, *need, *hold_until;
    const char *created_at, *created_by, *released_at, *released_by;
} allocation_row;
void allocation_row_free(allocation_row *a);

typedef struct {
    allocation_row *items;
    size_t n;
} allocation_list;
void allocation_list_free(allocation_list *l);

typedef struct {
    const char *id, *resource_id, *case_id, *person_id, *org, *waitlist_id, *status, *need, *hold_until, *by;
} allocation_in;
int store_allocation_insert(store_tx *tx, const allocation_in *in, store_err *e);
/* STORE_NOT_FOUND when the resource has no allocation id. */
int store_allocation_get(store_tx *tx, const char *resource_id, const char *id, allocation_row *out, store_err *e);
/* held -> confirmed, or confirmed/held -> released (by); STORE_CONFLICT
 * when the seat is not in from. */
int store_allocation_move(store_tx *tx, const char *id, const char *from, const char *to, const char *by,
                          store_err *e);
/* The seats (held or confirmed) of a case. */
int store_allocations_of_case(store_tx *tx, const char *case_id, allocation_list *out, store_err *e);

/* ---- the waitlist ---- */
typedef struct {
    const char *id, *resource_id, *case_id, *person_id, *org, *region, *by, *need, *domain, *kind, *target;
    int priority;
    const char *priority_reason, *priority_plugin;
    int offer_days;
} waitlist_in;

typedef struct {
    char *mem;
    long long seq;
    const char *id, *resource_id, *case_id, *person_id, *org, *region, *registered_by, *need, *domain, *kind, *target;
    const char *priority_reason, *priority_plugin, *status, *offered_resource_id, *allocation_id, *offered_at;
    const char *offer_due_on, *end_reason, *created_at, *created_on, *ended_at, *ended_on;
    int priority, offer_days;
    long long position; /* 1-based place among those waiting for the same resource (or kind); 0 when not waiting */
} waitlist_row;
void waitlist_row_free(waitlist_row *w);

typedef struct {
    waitlist_row *items;
    size_t n;
    bool more;
    char last[STORE_KEY_MAX];
} waitlist_list;
void waitlist_list_free(waitlist_list *l);

int store_waitlist_insert(store_tx *tx, const waitlist_in *in, store_err *e);
/* STORE_NOT_FOUND for an unknown id. */
int store_waitlist_get(store_tx *tx, const char *id, waitlist_row *out, store_err *e);

typedef struct {
    const char *resource_id; /* the waitlist of one resource, in order; or NULL */
    const char *org;         /* entries of one organisation; or NULL */
    const char *case_id, *person_id, *status; /* optional filters */
    int limit;
    const char *after;
} waitlist_query;
/* By resource: in the order seats are offered (priority, then arrival);
 * otherwise by arrival. */
int store_waitlist_list(store_tx *tx, const waitlist_query *q, waitlist_list *out, store_err *e);
/* Whether the case waits for, holds or uses the resource already. */
int store_resource_case_has(store_tx *tx, const char *resource_id, const char *case_id, bool *has, store_err *e);

/* The next people a free seat of resource r goes to: at most n entries
 * waiting for r, in order. */
int store_waitlist_next(store_tx *tx, const resource_row *r, int n, waitlist_list *out, store_err *e);
/* The people a newly registered resource r matches: at most n entries
 * waiting (for a kind of resource, or for another resource) whose need
 * domain r serves, whose kind and target r fits, in r's share scope, that
 * have not declined r; in order (priority, then arrival). */
int store_waitlist_matching(store_tx *tx, const resource_row *r, int n, waitlist_list *out, store_err *e);
/* Offers whose answer was due before today. */
int store_waitlist_overdue(store_tx *tx, const char *today, int n, waitlist_list *out, store_err *e);
/* waiting -> offered (resource, its held seat, the day an answer is due). */
int store_waitlist_offer(store_tx *tx, const char *id, const char *resource_id, const char *allocation_id,
                         const char *due_on, store_err *e);
/* offered -> waiting again (the resource declined, or the offer expired:
 * it is not offered to this entry again). */
int store_waitlist_unoffer(store_tx *tx, const char *id, const char *resource_id, store_err *e);
/* -> ended (met, declined, cancelled ...); STORE_CONFLICT when it has ended already. */
int store_waitlist_end(store_tx *tx, const char *id, const char *reason, store_err *e);
/* The open offers of a case: the earliest answer due, and how many. */
int store_case_offers(store_tx *tx, const char *case_id, char due_on[11], int *n, store_err *e);

#endif
