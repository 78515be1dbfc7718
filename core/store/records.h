/*
 * records: the resources of the case store, read and written inside a unit
 * of work (store_write / store_read). Rows come back rendered as the JSON
 * the API shows, so that there is one rendering of each resource.
 * Visibility: a principal sees persons, households and cases of its own
 * organisation; anything else is "not found" (404), never "forbidden".
 */
#ifndef SARYE_RECORDS_H
#define SARYE_RECORDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "base/err.h"
#include "store/store.h"

/* Who is asking: resolved from a bearer token. */
typedef struct {
    char token_id[ID_MAX];
    char user[128];
    char role[16];
    char org[64];
    char region[16];
    char org_type[16]; /* emd, district, program, provider, agency */
} principal;

/* ---- organisations and tokens ---- */
typedef struct {
    const char *id; /* NULL: generated */
    const char *name, *type, *region;
    json_t *programs; /* array of strings, may be NULL */
    const char *area; /* dong code (행정동 코드) or NULL */
} org_in;

int store_org_insert(store_tx *tx, const org_in *in, json_t **out, err_t *e);
int store_org_get(store_tx *tx, const char *id, json_t **out, err_t *e);
/* Creates a token; out gets {id, token, user, role, org} (the only time the
 * token is shown). created_by may be NULL (command line). */
int store_token_insert(store_tx *tx, const char *user, const char *role, const char *org,
                       const char *created_by, json_t **out, err_t *e);
/* Resolves a bearer token to its principal; 401 when unknown or revoked. */
int store_principal_by_token(store_tx *tx, const char *token, principal *p, err_t *e);

/* ---- persons and households ---- */
typedef struct {
    const char *name, *birth_date, *sex;
    const char *rrn; /* 13 digits, already validated, or NULL */
    const char *phone, *address, *household_id, *relation;
    json_t *tags; /* array of strings or NULL */
    json_t *eligibility; /* object of facts (수급, 차상위, 장기요양등급 ...) or NULL */
} person_in;

int store_person_insert(store_tx *tx, const principal *p, const person_in *in, json_t **out, err_t *e);
int store_person_get(store_tx *tx, const principal *p, const char *id, json_t **out, err_t *e);
/* Whether a person with this RRN is registered by another organisation:
 * nothing more is revealed (ask for the person's consent to know more). */
int store_rrn_known_elsewhere(store_tx *tx, const principal *p, const char *digits, bool *known, err_t *e);
/* Replaces the eligibility facts of a person visible to p. */
int store_person_set_eligibility(store_tx *tx, const principal *p, const char *id, json_t *eligibility,
                                 json_t **out, err_t *e);

typedef struct {
    const char *name, *birth_date, *rrn; /* each optional; rrn as 13 digits */
    int limit;
    const char *after; /* decoded cursor: the last id seen, or NULL */
} person_query;
int store_person_search(store_tx *tx, const principal *p, const person_query *q, json_t **out, err_t *e);

int store_household_insert(store_tx *tx, const principal *p, const char *address, json_t *members,
                           json_t **out, err_t *e);
int store_household_get(store_tx *tx, const principal *p, const char *id, json_t **out, err_t *e);

/* ---- cases and their event log ---- */
typedef struct {
    char id[ID_MAX];
    char person_id[ID_MAX];
    char program[64];
    char org[64];
    char region[16];
    char source[32];
    char referral_id[ID_MAX];
    char stage[32];
    char status[16];
    int version;
    char assigned_to[128];
    char opened_at[RFC3339_MAX];
    char generation[72];
} case_row;

/* True if org offers program (org_programs). */
int store_org_offers(store_tx *tx, const char *org, const char *program, bool *offers, err_t *e);
/* Whether the person exists and is visible to p (404 otherwise). */
int store_person_visible(store_tx *tx, const principal *p, const char *person_id, err_t *e);
/* The cases of a person visible to p: [{id, program, org, stage, status, opened_at}]. */
int store_person_cases(store_tx *tx, const principal *p, const char *person_id, json_t **out, err_t *e);
int store_case_insert(store_tx *tx, const case_row *c, err_t *e);
/* Loads a case visible to p; 404 otherwise. */
int store_case_load(store_tx *tx, const principal *p, const char *id, case_row *c, err_t *e);
/* Updates stage/status/generation and bumps the version, only if the stored
 * version is still c->version (412 otherwise). c->version is bumped. */
int store_case_update(store_tx *tx, case_row *c, err_t *e);
/* Bumps the version (work was recorded on the case), only if the stored
 * version is still c->version (412 otherwise). c->version is bumped. */
int store_case_touch(store_tx *tx, case_row *c, err_t *e);
/* Renders a case row as the API shows it; new reference. */
json_t *store_case_json(const case_row *c);

typedef struct {
    const char *program, *stage, *org, *status;
    bool overdue;       /* only cases with an open deadline before today */
    const char *today;  /* YYYY-MM-DD, for overdue */
    int limit;
    const char *after;
} case_query;
int store_case_list(store_tx *tx, const principal *p, const case_query *q, json_t **out, err_t *e);

/* Cases de-identified for bulk export: the person as birth date and sex. */
int store_case_export(store_tx *tx, const principal *p, int limit, const char *after, json_t **out, err_t *e);

typedef struct {
    const char *case_id, *actor, *type, *from_stage, *to_stage, *note, *generation;
    json_t *data; /* object or NULL */
} event_in;
int store_event_append(store_tx *tx, const event_in *ev, err_t *e);
int store_event_list(store_tx *tx, const char *case_id, int limit, const char *after, json_t **out,
                     err_t *e);

/* ---- deadlines ---- */
/* Sets (replacing an open one of the same kind) or clears a case deadline
 * (every open one of the case when kind is NULL). */
int store_deadline_set(store_tx *tx, const case_row *c, const char *kind, const char *label,
                       const char *due_on, const char *plugin, err_t *e);
int store_deadline_clear(store_tx *tx, const char *case_id, const char *kind, err_t *e);
/* The open deadlines of a case: [{kind, label, due_on, plugin, overdue}]. */
int store_case_due(store_tx *tx, const char *case_id, json_t **out, err_t *e);

/* ---- case work records and conferences ---- */
typedef struct {
    const char *id; /* chosen by the caller, or NULL: a new id */
    const char *case_id, *org, *kind, *subkind, *status, *supersedes, *by;
    json_t *data, *result; /* result: what the rules answered (recommendation ...) */
} record_in;

int store_record_insert(store_tx *tx, const record_in *in, char id[ID_MAX], err_t *e);
int store_record_get(store_tx *tx, const char *case_id, const char *id, json_t **out, err_t *e);
/* Every record of a case (of one kind, or all with kind NULL), oldest first. */
int store_record_list(store_tx *tx, const char *case_id, const char *kind, json_t **out, err_t *e);
/* Sets a record's status (a plan approved) with who and when. */
int store_record_decide(store_tx *tx, const char *id, const char *status, const char *by, err_t *e);
/* Marks the case's records of kind in status as superseded, but except_id. */
int store_record_supersede(store_tx *tx, const char *case_id, const char *kind, const char *status,
                           const char *except_id, err_t *e);

typedef struct {
    const char *org, *type, *held_on, *by;
    bool written;
    json_t *participants, *decisions, *case_ids;
} meeting_in;
/* The meeting as it will be stored under id (for rules deciding on it). */
json_t *store_meeting_json(const meeting_in *in, const char *id);
int store_meeting_insert(store_tx *tx, const meeting_in *in, const char *id, json_t **out, err_t *e);
int store_meetings_of_case(store_tx *tx, const char *case_id, json_t **out, err_t *e);

typedef struct {
    const char *org, *due_before, *kind, *today;
    int limit;
    const char *after; /* decoded cursor "due_on.id" */
} deadline_query;
/* Open deadlines of an organisation, soonest first, from the indexed rows. */
int store_deadline_list(store_tx *tx, const deadline_query *q, json_t **out, err_t *e);
/* Overdue open deadlines by kind, over every organisation: {kind: n}. */
int store_overdue_counts(store_tx *tx, const char *today, json_t **out, err_t *e);

/* ---- consents and referrals (referrals.c) ---- */
typedef struct {
    const char *person_id, *purpose, *valid_from, *valid_until;
    json_t *scope; /* array of org ids */
} consent_in;
int store_consent_insert(store_tx *tx, const principal *p, const consent_in *in, json_t **out, err_t *e);
int store_consent_get(store_tx *tx, const char *person_id, const char *id, json_t **out, err_t *e);
int store_consent_list(store_tx *tx, const char *person_id, json_t **out, err_t *e);
/* 409 consent_revoked when already revoked. */
int store_consent_revoke(store_tx *tx, const principal *p, const char *person_id, const char *id, json_t **out,
                         err_t *e);

typedef struct {
    const char *id; /* chosen by the caller, or NULL: a new id */
    const char *person_id, *from_org, *from_case_id, *to_org, *to_program, *reason, *opinion, *consent_id, *by;
    const char *agency_ref; /* the agency's own reference (inbound government referrals) */
    json_t *snapshot;       /* what the receiver sees of the person until it accepts */
} referral_in;
int store_referral_insert(store_tx *tx, const referral_in *in, char id[ID_MAX], err_t *e);
/* The referral as store_referral_get will show it once inserted under id
 * (what an agency's message is built from before the write). */
json_t *store_referral_json(const referral_in *in, const char *id, const char *created_at);
/* A referral p sends or receives; 404 for anyone else. */
int store_referral_get(store_tx *tx, const principal *p, const char *id, json_t **out, err_t *e);
/* The referral a case was opened from, or *out NULL. */
int store_referral_of_case(store_tx *tx, const char *case_id, json_t **out, err_t *e);
typedef struct {
    bool inbound;
    const char *status;
    int limit;
    const char *after;
} referral_query;
int store_referral_list(store_tx *tx, const principal *p, const referral_query *q, json_t **out, err_t *e);
/* pending -> accepted|rejected (409 referral_answered if not pending). */
int store_referral_answer(store_tx *tx, const char *id, const char *status, const char *note, const char *by,
                          const char *case_id, err_t *e);
int store_referral_closed(store_tx *tx, const char *id, err_t *e);
/* The agency's own status of a referral (received, in_progress, rejected, completed). */
int store_referral_agency_status(store_tx *tx, const char *id, const char *status, err_t *e);
/* The dong community centre (emd org) whose area code is area; 422 unknown_area. */
int store_org_by_area(store_tx *tx, const char *area, char id[64], err_t *e);
int store_referral_review(store_tx *tx, const char *id, const char *review, const char *note, err_t *e);
int store_referral_deadline_set(store_tx *tx, const char *org, const char *referral_id, const char *kind,
                                const char *label, const char *due_on, const char *plugin, err_t *e);
int store_referral_deadline_clear(store_tx *tx, const char *referral_id, const char *kind, err_t *e);
/* The organisation that registered a person (404 if none). */
int store_person_owner(store_tx *tx, const char *person_id, char org[64], err_t *e);
/* The one consent check: why consent c does not allow party to use the
 * person's data for one of purposes (NULL: any) on today, or NULL when it
 * does. */
const char *store_consent_refusal(json_t *c, const char *party, const char *const *purposes, const char *today);
/* A consent of the person valid today, unrevoked, for one of purposes (NULL:
 * any), naming party in its scope: its id in id, or "" when there is none. */
int store_consent_valid_for(store_tx *tx, const char *person_id, const char *party, const char *const *purposes,
                            char id[ID_MAX], err_t *e);
/* Sharing rights of private-provider workers: training and pledge with the
 * organisation's approval (set), then the district's (approve); *out NULL
 * when none is on record. */
int store_sharing_right_get(store_tx *tx, const char *org, const char *user, json_t **out, err_t *e);
int store_sharing_right_set(store_tx *tx, const char *org, const char *user, const char *training_on,
                            const char *pledge_on, const char *by, json_t **out, err_t *e);
/* 409 sharing_right_incomplete before the organisation's approval. */
int store_sharing_right_approve(store_tx *tx, const char *org, const char *user, const char *by, json_t **out,
                                err_t *e);
/* Copies a person into another organisation (a referral accepted); new id in id. */
int store_person_clone(store_tx *tx, const char *src_id, const char *to_org, const char *by, char id[ID_MAX],
                       err_t *e);

/* ---- the outbox (outbox.c) ---- */
/* Queues a message to agency about topic; its id is also its
 * Idempotency-Key, the same on every retry. */
int store_outbox_enqueue(store_tx *tx, const char *agency, const char *topic, const char *kind, json_t *payload,
                         char id[ID_MAX], err_t *e);
/* Queued messages due by now_ms, the oldest first, at most one per topic. */
int store_outbox_due(store_tx *tx, int64_t now_ms, int limit, json_t **out, err_t *e);
typedef struct {
    const char *id, *status; /* queued (retry later), delivered, dead */
    int attempts;
    int64_t next_at_ms;
    int http_status;         /* 0: none (a connection error or timeout) */
    const char *error;
} outbox_result;
int store_outbox_result(store_tx *tx, const outbox_result *r, err_t *e);
int store_outbox_get(store_tx *tx, const char *id, json_t **out, err_t *e);
int store_outbox_list(store_tx *tx, const char *status, int limit, const char *after, json_t **out, err_t *e);
/* dead -> queued, attempts reset (409 not_dead otherwise). */
int store_outbox_retry(store_tx *tx, const char *id, json_t **out, err_t *e);
/* {agency: {status: n}} */
int store_outbox_counts(store_tx *tx, json_t **out, err_t *e);

/* ---- the audit trail (audit.c) ---- */
typedef struct {
    const char *actor, *org, *role, *action; /* action: "GET /v1/persons/{id}" */
    const char *person_id, *case_id, *purpose, *request_id;
    int status;
} audit_entry;
/* Appends a record chained to the one before it. */
int store_audit_append(store_tx *tx, const audit_entry *a, err_t *e);
typedef struct {
    const char *person_id, *actor, *since; /* each optional */
    int limit;
    const char *after; /* decoded cursor: the last seq seen */
} audit_query;
int store_audit_list(store_tx *tx, const audit_query *q, json_t **out, err_t *e);
/* Recomputes the chain: *broken_at is the first record that does not
 * match (0 when the chain holds); *records the records that do. */
int store_audit_verify(store_tx *tx, long long *records, long long *broken_at, err_t *e);

/* ---- list helpers ---- */
/* Cursors are opaque to clients: base64url of the last id of a page. */
void cursor_encode(const char *last_id, char *out, size_t outlen);
/* Returns 0 and the id, or -1 for a malformed cursor. */
int cursor_decode(const char *cursor, char *id, size_t idlen);

#endif
