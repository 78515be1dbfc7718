/*
 * process/resources.h: welfare resources and their waitlist (seed 003
 * 보건복지자원 관리, 자원 대기자 관리), as the API uses them.
 *
 * A resource is registered by an organisation with its provider, kind
 * (cash, goods, service), the need domains it serves, its targets, share
 * scope, period, cost, contact and capacity. A case reserves a seat: it is
 * confirmed while one is free, else the case goes on the resource's
 * waitlist with its need, in order (the priority the case's program and
 * region give it, then arrival). A case may also wait for a kind of
 * resource (a need domain). When a seat frees (released, capacity raised,
 * an offer declined or expired) it is offered to the next waiting case,
 * and a newly registered resource is offered to the waiting cases it
 * matches: an offer holds the seat, puts an event on the case and a
 * resource_offer deadline (the program's waitlist.offer_days) on its
 * worker, who accepts or declines. Seats are counted and taken in one unit
 * of work on the store's one writer: a resource is never overbooked.
 */
#ifndef SARYE_PROCESS_RESOURCES_H
#define SARYE_PROCESS_RESOURCES_H

#include "process/process.h"
#include "store/resources.h"

/* The kinds (제공서비스: 현금·현물·서비스), provider types (제공주체: 개인,
 * 사업자, 단체, 시설, 기관) and share scopes (공유범위), NULL-terminated. */
extern const char *const resource_kinds[];
extern const char *const resource_provider_types[];
extern const char *const resource_share_scopes[];

/* 201 the resource, with `offered`: how many waiting cases it was offered to. */
int process_resource_create(const principal *p, resource_in *in, const store_idem *idem, store_reply *reply,
                            err_t *e);
int process_resource_get(const principal *p, const char *id, store_reply *reply, err_t *e);
int process_resource_list(const principal *p, resource_query *q, store_reply *reply, err_t *e);
/* The registering organisation changes the capacity; seats freed are
 * offered. 412 on a stale version, 409 capacity_below_use when fewer seats
 * than are confirmed and held. */
int process_resource_capacity(const principal *p, const char *id, bool has_capacity, long long capacity, int version,
                              store_reply *reply, err_t *e);

typedef struct {
    const char *case_id, *need, *domain, *kind, *target; /* domain/kind/target: optional on a reservation */
} waitlist_post;

/* A seat for a case: 201 {status: "confirmed", allocation, resource} or
 * {status: "waitlisted", waitlist, resource}. 409 already_reserved when
 * the case holds, uses or waits for the resource. */
int process_resource_reserve(const principal *p, const char *resource_id, const waitlist_post *in,
                             const store_idem *idem, store_reply *reply, err_t *e);
/* A seat given back (by the case's or the resource's organisation); the
 * seat is offered to the next waiting case. */
int process_allocation_release(const principal *p, const char *resource_id, const char *id, const char *note,
                               store_reply *reply, err_t *e);
/* The waitlist of a resource in offering order. */
int process_resource_waitlist(const principal *p, const char *resource_id, const char *status, int limit,
                              const char *after, store_reply *reply, err_t *e);
/* A case waiting for a kind of resource (자원대기자 등록): 201 the entry. */
int process_waitlist_add(const principal *p, const waitlist_post *in, const store_idem *idem, store_reply *reply,
                         err_t *e);
/* The principal's organisation's waitlist entries (filters of q). */
int process_waitlist_list(const principal *p, waitlist_query *q, store_reply *reply, err_t *e);
int process_waitlist_get(const principal *p, const char *id, store_reply *reply, err_t *e);
/* The worker answers an offer: accepted (the seat is the case's; the need
 * is met and the entry ends) or declined (the seat goes to the next). */
int process_waitlist_answer(const principal *p, const char *id, bool accept, const char *note, store_reply *reply,
                            err_t *e);
/* The entry ends: met (the need was met otherwise) or cancelled. */
int process_waitlist_end(const principal *p, const char *id, const char *reason, const char *note,
                         store_reply *reply, err_t *e);

/* The seats and waitlist entries of a case, for the one-screen view. */
int process_case_resources(store_tx *tx, const char *case_id, json_t **out, err_t *e);

#endif
