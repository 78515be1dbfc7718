/*
 * records: the resources of the case store, read and written inside a unit
 * of work (store_write / store_read). Rows come back as C structs; what the
 * API shows of them is rendered above the store (render/render.h), so a
 * second backend implements these functions and nothing about the API.
 *
 * Rows own what they hold: the text fields (const char *) of a row the
 * store filled point into the row's one block `mem` (NULL for an absent
 * value) and its json_t fields are references the row holds; each
 * xxx_row_free releases both. A row a caller builds from borrowed strings
 * (mem NULL, borrowed json) is never freed. A list is an array of rows with
 * `more` (another page follows) and `last`: the key of its last row, which a
 * next page's query takes as `after` (its form is the store's business).
 *
 * Visibility: a principal sees persons, households and cases of its own
 * organisation (a district also those of its region's dong centres); what
 * it may not see is STORE_NOT_FOUND, as if it did not exist.
 *
 * Every function returns 0, or -1 with e set. STORE_BUSY, STORE_UNAVAILABLE
 * and STORE_INTERNAL can come from any of them; the other kinds only where
 * a function says so.
 */
#ifndef SARYE_RECORDS_H
#define SARYE_RECORDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "store/store.h"

/* The key a next page starts after (see `last` above). */
#define STORE_KEY_MAX 96

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

typedef struct {
    char *mem;
    const char *id, *name, *type, *region, *created_at;
    const char *area;       /* dong code, or NULL */
    const char **programs;  /* the programs it runs, sorted; the array owns its strings */
    size_t n_programs;
} org_row;
void org_row_free(org_row *o);

/* STORE_DUPLICATE when the id is taken. out: the organisation as stored. */
int store_org_insert(store_tx *tx, const org_in *in, org_row *out, store_err *e);
/* STORE_NOT_FOUND for an unknown id. */
int store_org_get(store_tx *tx, const char *id, org_row *out, store_err *e);
/* True if org offers program (org_programs). */
int store_org_offers(store_tx *tx, const char *org, const char *program, bool *offers, store_err *e);
/* The dong community centre (emd org) whose area code is area; STORE_NOT_FOUND when none. */
int store_org_by_area(store_tx *tx, const char *area, char id[64], store_err *e);
/* The ids of the organisations of a region (of one type, or any with type
 * NULL), sorted: *ids is one allocation (free it). */
int store_org_ids(store_tx *tx, const char *region, const char *type, const char ***ids, size_t *n, store_err *e);

typedef struct {
    char id[ID_MAX];
    char token[TOKEN_MAX]; /* the secret, here once: wipe the row when done */
    char user[128], role[16], org[72];
    char created_at[RFC3339_MAX];
} token_row;

/* Creates a token (only its hash is kept); STORE_NOT_FOUND when org does
 * not exist. created_by may be NULL (command line). */
int store_token_insert(store_tx *tx, const char *user, const char *role, const char *org, const char *created_by,
                       token_row *out, store_err *e);
/* Resolves a bearer token to its principal; STORE_NOT_FOUND when unknown or revoked. */
int store_principal_by_token(store_tx *tx, const char *token, principal *p, store_err *e);

/* ---- persons and households ---- */
typedef struct {
    const char *name, *birth_date, *sex;
    const char *rrn; /* 13 digits, already validated, or NULL */
    const char *phone, *address, *household_id, *relation;
    json_t *tags; /* array of strings or NULL */
    json_t *eligibility; /* object of facts (수급, 차상위, 장기요양등급 ...) or NULL */
} person_in;

typedef struct {
    char *mem;
    const char *id, *org, *name, *birth_date, *sex, *created_at, *updated_at;
    const char *rrn_masked; /* YYMMDD-S******, or NULL: the whole number never leaves the store */
    const char *phone, *address, *household_id, *relation; /* or NULL */
    json_t *tags;           /* array of strings (NULL: none stored) */
    json_t *eligibility;    /* object of facts (NULL: none stored) */
} person_row;
void person_row_free(person_row *p);

typedef struct {
    person_row *items;
    size_t n;
    bool more;
    char last[STORE_KEY_MAX];
} person_list;
void person_list_free(person_list *l);

/* Registers a person with p's organisation. STORE_NOT_FOUND: in->household_id
 * names no household p sees. */
int store_person_insert(store_tx *tx, const principal *p, const person_in *in, person_row *out, store_err *e);
/* STORE_NOT_FOUND when unknown or not visible to p. */
int store_person_get(store_tx *tx, const principal *p, const char *id, person_row *out, store_err *e);
/* Whether the person exists and is visible to p (STORE_NOT_FOUND otherwise). */
int store_person_visible(store_tx *tx, const principal *p, const char *person_id, store_err *e);
/* Whether a person with this RRN is registered by another organisation:
 * nothing more is revealed (ask for the person's consent to know more). */
int store_rrn_known_elsewhere(store_tx *tx, const principal *p, const char *digits, bool *known, store_err *e);
/* Replaces the eligibility facts of a person of p's organisation
 * (STORE_NOT_FOUND otherwise); out (may be NULL) is the person after. */
int store_person_set_eligibility(store_tx *tx, const principal *p, const char *id, json_t *eligibility,
                                 person_row *out, store_err *e);

typedef struct {
    const char *name, *birth_date, *rrn; /* each optional; rrn as 13 digits */
    int limit;
    const char *after; /* the last key of the page before, or NULL */
} person_query;
int store_person_search(store_tx *tx, const principal *p, const person_query *q, person_list *out, store_err *e);
/* The organisation that registered a person (STORE_NOT_FOUND if none). */
int store_person_owner(store_tx *tx, const char *person_id, char org[64], store_err *e);
/* Copies a person into another organisation (a referral accepted); new id
 * in id. STORE_NOT_FOUND for an unknown src_id. */
int store_person_clone(store_tx *tx, const char *src_id, const char *to_org, const char *by, char id[ID_MAX],
                       store_err *e);

typedef struct {
    char *mem;
    const char *person_id, *name;
    const char *relation; /* or NULL */
} household_member;

typedef struct {
    char *mem;
    const char *id, *org, *address, *created_at;
    household_member *members; /* the members the viewer sees, by id */
    size_t n_members;
} household_row;
void household_row_free(household_row *h);

/* members: array of {person_id, relation}. STORE_NOT_FOUND when a member is
 * not a person of p's organisation: its index in *bad_member. */
int store_household_insert(store_tx *tx, const principal *p, const char *address, json_t *members,
                           household_row *out, size_t *bad_member, store_err *e);
/* STORE_NOT_FOUND when unknown or not visible to p. */
int store_household_get(store_tx *tx, const principal *p, const char *id, household_row *out, store_err *e);

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
    char lead_org[64]; /* the organisation that leads the case (seed 004 주 사례기관); "" = org */
} case_row;

typedef struct {
    case_row *items;
    size_t n;
    bool more;
    char last[STORE_KEY_MAX];
} case_list;
void case_list_free(case_list *l);

/* The cases of a person visible to p, by id. */
int store_person_cases(store_tx *tx, const principal *p, const char *person_id, case_list *out, store_err *e);
int store_case_insert(store_tx *tx, const case_row *c, store_err *e);
/* Loads a case visible to p; STORE_NOT_FOUND otherwise. */
int store_case_load(store_tx *tx, const principal *p, const char *id, case_row *c, store_err *e);
/* Loads a case whoever may see it (work the core does on a case's behalf:
 * an offer of a seat, its deadline); STORE_NOT_FOUND when unknown. */
int store_case_row(store_tx *tx, const char *id, case_row *c, store_err *e);
/* Updates stage/status/generation/assignee and bumps the version, only if
 * the stored version is still c->version (STORE_STALE otherwise). c->version
 * is bumped. */
int store_case_update(store_tx *tx, case_row *c, store_err *e);
/* Bumps the version (work was recorded on the case), only if the stored
 * version is still c->version (STORE_STALE otherwise). c->version is bumped. */
int store_case_touch(store_tx *tx, case_row *c, store_err *e);
/* Hands the case to lead (an organisation id; "" or the case's own org:
 * the case's org leads again): the lead sees and works the case and gets
 * its open deadlines. */
int store_case_set_lead(store_tx *tx, const char *case_id, const char *lead, store_err *e);

typedef struct {
    const char *program, *stage, *org, *status;
    const char *overdue_on; /* YYYY-MM-DD: only cases with an open deadline due before it; or NULL */
    int limit;
    const char *after;
} case_query;
int store_case_list(store_tx *tx, const principal *p, const case_query *q, case_list *out, store_err *e);

/* A case as a bulk export shows it: the person de-identified, as birth date
 * and sex. */
typedef struct {
    char *mem;
    const char *case_id, *program, *org, *region, *source, *stage, *status, *opened_at;
    const char *birth_date, *sex;
} case_export_row;
void case_export_row_free(case_export_row *x);

typedef struct {
    case_export_row *items;
    size_t n;
    bool more;
    char last[STORE_KEY_MAX];
} case_export_list;
void case_export_list_free(case_export_list *l);
int store_case_export(store_tx *tx, const principal *p, int limit, const char *after, case_export_list *out,
                      store_err *e);

typedef struct {
    const char *case_id, *actor, *type, *from_stage, *to_stage, *note, *generation;
    json_t *data; /* object or NULL */
} event_in;

typedef struct {
    char *mem;
    long long seq; /* 1, 2, ... within the case */
    const char *id, *at, *actor, *type;
    const char *from_stage, *to_stage, *note, *generation; /* or NULL */
    json_t *data; /* object (NULL: none stored) */
} event_row;
void event_row_free(event_row *ev);

typedef struct {
    event_row *items;
    size_t n;
    bool more;
    char last[STORE_KEY_MAX];
} event_list;
void event_list_free(event_list *l);

int store_event_append(store_tx *tx, const event_in *ev, store_err *e);
/* The events of a case in order, limit at a time, after the key given. */
int store_event_list(store_tx *tx, const char *case_id, int limit, const char *after, event_list *out,
                     store_err *e);

/* ---- deadlines ---- */
typedef struct {
    char *mem;
    const char *id, *kind, *label, *due_on;
    const char *plugin;                      /* the plugin that set it, or NULL */
    const char *case_id, *referral_id;       /* what it belongs to: one of them */
    const char *person_id, *program, *stage; /* of the case (program: or of the referral); NULL when not read */
} deadline_row;
void deadline_row_free(deadline_row *d);

typedef struct {
    deadline_row *items;
    size_t n;
    bool more;
    char last[STORE_KEY_MAX];
} deadline_list;
void deadline_list_free(deadline_list *l);

/* Sets (replacing an open one of the same kind) or clears a case deadline
 * (every open one of the case when kind is NULL). */
int store_deadline_set(store_tx *tx, const case_row *c, const char *kind, const char *label,
                       const char *due_on, const char *plugin, store_err *e);
int store_deadline_clear(store_tx *tx, const char *case_id, const char *kind, store_err *e);
/* The open deadlines of a case, soonest first (id, kind, label, due_on, plugin). */
int store_case_due(store_tx *tx, const char *case_id, deadline_list *out, store_err *e);

typedef struct {
    const char *org, *due_before, *kind;
    int limit;
    const char *after;
} deadline_query;
/* Open deadlines of an organisation, soonest first, from the indexed rows. */
int store_deadline_list(store_tx *tx, const deadline_query *q, deadline_list *out, store_err *e);

typedef struct {
    char kind[64];
    long long n;
} overdue_count;
typedef struct {
    overdue_count *items;
    size_t n;
} overdue_counts;
/* Open deadlines due before today by kind, over every organisation. */
int store_overdue_counts(store_tx *tx, const char *today, overdue_counts *out, store_err *e);

/* ---- case work records and conferences ---- */
typedef struct {
    const char *id; /* chosen by the caller, or NULL: a new id */
    const char *case_id, *org, *kind, *subkind, *status, *supersedes, *by;
    json_t *data, *result; /* result: what the rules answered (recommendation ...) */
} record_in;

typedef struct {
    char *mem;
    const char *id, *case_id, *kind, *created_at, *created_by, *recorded_on;
    const char *subkind, *status, *supersedes;          /* or NULL */
    const char *decided_at, *decided_by, *decided_on;   /* or NULL until decided */
    json_t *data;   /* NULL when none is stored */
    json_t *result; /* what the rules answered, or NULL */
} record_row;
void record_row_free(record_row *r);

typedef struct {
    record_row *items;
    size_t n;
} record_list;
void record_list_free(record_list *l);

int store_record_insert(store_tx *tx, const record_in *in, char id[ID_MAX], store_err *e);
/* STORE_NOT_FOUND when the case has no record id. */
int store_record_get(store_tx *tx, const char *case_id, const char *id, record_row *out, store_err *e);
/* Every record of a case (of one kind, or all with kind NULL), oldest first. */
int store_record_list(store_tx *tx, const char *case_id, const char *kind, record_list *out, store_err *e);
/* Sets a record's status (a plan approved) with who and when. */
int store_record_decide(store_tx *tx, const char *id, const char *status, const char *by, store_err *e);
/* Marks the case's records of kind in status as superseded, but except_id. */
int store_record_supersede(store_tx *tx, const char *case_id, const char *kind, const char *status,
                           const char *except_id, store_err *e);

typedef struct {
    const char *org, *type, *held_on, *by;
    bool written;
    json_t *participants, *decisions, *case_ids;
} meeting_in;

typedef struct {
    char *mem;
    const char *id, *org, *type, *held_on, *created_at, *created_by;
    bool written;
    json_t *participants; /* array of {org, role, name} */
    json_t *decisions;    /* array, or NULL when none was given */
    const char **case_ids; /* the cases it was about; the array owns its strings */
    size_t n_case_ids;
} meeting_row;
void meeting_row_free(meeting_row *m);

typedef struct {
    meeting_row *items;
    size_t n;
} meeting_list;
void meeting_list_free(meeting_list *l);

/* Stores the meeting under id (chosen by the caller); created_at gets its time. */
int store_meeting_insert(store_tx *tx, const meeting_in *in, const char *id, char created_at[RFC3339_MAX],
                         store_err *e);
/* The meetings about a case, by date. */
int store_meetings_of_case(store_tx *tx, const char *case_id, meeting_list *out, store_err *e);

/* ---- consents (referrals.c) ---- */
typedef struct {
    const char *person_id, *purpose, *valid_from, *valid_until;
    json_t *scope; /* array of org ids */
} consent_in;

typedef struct {
    char *mem;
    const char *id, *person_id, *purpose, *valid_from, *valid_until, *created_at, *created_by;
    const char *revoked_at, *revoked_by; /* or NULL */
    json_t *scope;                       /* array of organisation ids */
} consent_row;
void consent_row_free(consent_row *c);

typedef struct {
    consent_row *items;
    size_t n;
} consent_list;
void consent_list_free(consent_list *l);

/* Records a consent given to p's organisation (the caller checked the person). */
int store_consent_insert(store_tx *tx, const principal *p, const consent_in *in, consent_row *out, store_err *e);
/* STORE_NOT_FOUND when the person has no consent id. */
int store_consent_get(store_tx *tx, const char *person_id, const char *id, consent_row *out, store_err *e);
int store_consent_list(store_tx *tx, const char *person_id, consent_list *out, store_err *e);
/* Revokes a consent; STORE_NOT_FOUND for none, STORE_CONFLICT when it was
 * revoked already. out: the consent after. */
int store_consent_revoke(store_tx *tx, const principal *p, const char *person_id, const char *id, consent_row *out,
                         store_err *e);
/* The one consent check: why consent c does not allow party to use the
 * person's data for one of purposes (NULL: any) on today, or NULL when it
 * does. The same over any backend: it reads the row, not the store. */
const char *store_consent_refusal(const consent_row *c, const char *party, const char *const *purposes,
                                  const char *today);
/* A consent of the person valid today, unrevoked, for one of purposes (NULL:
 * any), naming party in its scope: its id in id, or "" when there is none. */
int store_consent_valid_for(store_tx *tx, const char *person_id, const char *party, const char *const *purposes,
                            char id[ID_MAX], store_err *e);

/* ---- referrals (referrals.c) ---- */
typedef struct {
    const char *id; /* chosen by the caller, or NULL: a new id */
    const char *person_id, *from_org, *from_case_id, *to_org, *to_program, *reason, *opinion, *consent_id, *by;
    const char *agency_ref; /* the agency's own reference (inbound government referrals) */
    json_t *snapshot;       /* what the receiver sees of the person until it accepts */
} referral_in;

typedef struct {
    char *mem;
    const char *id, *person_id, *from_org, *to_org, *reason, *opinion, *status, *created_at, *created_by;
    const char *from_case_id, *to_program, *consent_id;            /* or NULL */
    const char *answer_note, *answered_at, *answered_by, *case_id; /* or NULL until answered */
    const char *closed_at, *closure_review, *closure_note;         /* or NULL */
    const char *agency_ref, *agency_status;                        /* or NULL */
    json_t *snapshot; /* what the receiver sees of the person */
} referral_row;
void referral_row_free(referral_row *r);
/* The referral in will be once inserted under id at created_at (pending,
 * unanswered): a row borrowing in's strings, never freed. */
void referral_row_of(const referral_in *in, const char *id, const char *created_at, referral_row *out);

typedef struct {
    referral_row *items;
    size_t n;
    bool more;
    char last[STORE_KEY_MAX];
} referral_list;
void referral_list_free(referral_list *l);

int store_referral_insert(store_tx *tx, const referral_in *in, char id[ID_MAX], store_err *e);
/* A referral p sends or receives; STORE_NOT_FOUND for anyone else. */
int store_referral_get(store_tx *tx, const principal *p, const char *id, referral_row *out, store_err *e);
/* The referral a case was opened from; STORE_NOT_FOUND when none. */
int store_referral_of_case(store_tx *tx, const char *case_id, referral_row *out, store_err *e);
typedef struct {
    bool inbound;
    const char *status;
    int limit;
    const char *after;
} referral_query;
int store_referral_list(store_tx *tx, const principal *p, const referral_query *q, referral_list *out,
                        store_err *e);
/* pending -> accepted|rejected; STORE_CONFLICT if it is no longer pending. */
int store_referral_answer(store_tx *tx, const char *id, const char *status, const char *note, const char *by,
                          const char *case_id, store_err *e);
int store_referral_closed(store_tx *tx, const char *id, store_err *e);
/* The agency's own status of a referral (received, in_progress, rejected, completed). */
int store_referral_agency_status(store_tx *tx, const char *id, const char *status, store_err *e);
int store_referral_review(store_tx *tx, const char *id, const char *review, const char *note, store_err *e);
int store_referral_deadline_set(store_tx *tx, const char *org, const char *referral_id, const char *kind,
                                const char *label, const char *due_on, const char *plugin, store_err *e);
int store_referral_deadline_clear(store_tx *tx, const char *referral_id, const char *kind, store_err *e);

/* ---- sharing rights of private-provider workers (referrals.c): training
 * and pledge with the organisation's approval (set), then the district's
 * (approve) ---- */
typedef struct {
    char *mem;
    const char *org, *user, *training_on, *pledge_on, *org_approved_by, *org_approved_at;
    const char *district_approved_by, *district_approved_at; /* NULL until the district approves */
} sharing_right_row;
void sharing_right_row_free(sharing_right_row *s);

/* STORE_NOT_FOUND when none is on record. */
int store_sharing_right_get(store_tx *tx, const char *org, const char *user, sharing_right_row *out, store_err *e);
int store_sharing_right_set(store_tx *tx, const char *org, const char *user, const char *training_on,
                            const char *pledge_on, const char *by, sharing_right_row *out, store_err *e);
/* STORE_NOT_FOUND when the organisation has approved nothing yet. */
int store_sharing_right_approve(store_tx *tx, const char *org, const char *user, const char *by,
                                sharing_right_row *out, store_err *e);

/* ---- the outbox (outbox.c) ---- */
typedef struct {
    char *mem;
    const char *id, *agency, *topic, *kind, *idempotency_key, *status, *created_at;
    const char *last_error, *delivered_at; /* or NULL */
    long long seq;
    int attempts;
    int64_t next_at_ms;
    int last_status; /* the agency's last HTTP status; 0 when none */
    json_t *payload;
} outbox_row;
void outbox_row_free(outbox_row *m);

typedef struct {
    outbox_row *items;
    size_t n;
    bool more;
    char last[STORE_KEY_MAX];
} outbox_list;
void outbox_list_free(outbox_list *l);

/* Queues a message to agency about topic; its id is also its
 * Idempotency-Key, the same on every retry. */
int store_outbox_enqueue(store_tx *tx, const char *agency, const char *topic, const char *kind, json_t *payload,
                         char id[ID_MAX], store_err *e);
/* Queued messages due by now_ms, the oldest first, at most one per topic. */
int store_outbox_due(store_tx *tx, int64_t now_ms, int limit, outbox_list *out, store_err *e);
typedef struct {
    const char *id, *status; /* queued (retry later), delivered, dead */
    int attempts;
    int64_t next_at_ms;
    int http_status;         /* 0: none (a connection error or timeout) */
    const char *error;
} outbox_result;
int store_outbox_result(store_tx *tx, const outbox_result *r, store_err *e);
/* STORE_NOT_FOUND for an unknown id. */
int store_outbox_get(store_tx *tx, const char *id, outbox_row *out, store_err *e);
int store_outbox_list(store_tx *tx, const char *status, int limit, const char *after, outbox_list *out,
                      store_err *e);
/* dead -> queued, attempts reset; STORE_NOT_FOUND for an unknown id,
 * STORE_CONFLICT when it is not dead. out: the message after. */
int store_outbox_retry(store_tx *tx, const char *id, outbox_row *out, store_err *e);

typedef struct {
    char agency[64];
    char status[16];
    long long n;
} outbox_count;
typedef struct {
    outbox_count *items;
    size_t n;
} outbox_counts;
/* Messages by agency and status. */
int store_outbox_counts(store_tx *tx, outbox_counts *out, store_err *e);

/* ---- the audit trail (audit.c) ---- */
typedef struct {
    const char *actor, *org, *role, *action; /* action: "GET /v1/persons/{id}" */
    const char *person_id, *case_id, *purpose, *request_id;
    int status;
} audit_entry;
/* Appends a record chained to the one before it. */
int store_audit_append(store_tx *tx, const audit_entry *a, store_err *e);

typedef struct {
    char *mem;
    long long seq;
    const char *at, *actor, *org, *role, *action, *request_id, *prev_hash, *hash;
    const char *person_id, *case_id, *purpose; /* or NULL */
    int status;
} audit_row;
void audit_row_free(audit_row *a);

typedef struct {
    audit_row *items;
    size_t n;
    bool more;
    char last[STORE_KEY_MAX];
} audit_list;
void audit_list_free(audit_list *l);

typedef struct {
    const char *person_id, *actor, *since; /* each optional */
    int limit;
    const char *after; /* the last key of the page before */
} audit_query;
int store_audit_list(store_tx *tx, const audit_query *q, audit_list *out, store_err *e);
/* Recomputes the chain: *broken_at is the first record that does not
 * match (0 when the chain holds); *records the records that do. */
int store_audit_verify(store_tx *tx, long long *records, long long *broken_at, store_err *e);

#endif
