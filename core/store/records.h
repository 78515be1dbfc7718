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

/* Who is asking: resolved from a bearer token. A system operator's token
 * belongs to no organisation (org, region and org_type are ""). */
typedef struct {
    char token_id[ID_MAX];
    char user[128];
    char role[16];
    char org[64];
    char region[16];
    char org_type[16]; /* emd, district, program, provider, agency */
    int64_t expires_ms; /* when the token stops working (ms since the epoch); 0: never */
    bool revoked;       /* the token was revoked: the API refuses it */
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
    const char *user, *role;
    const char *org;        /* NULL: a system operator's token */
    const char *created_by; /* NULL from the command line */
    const char *expires_at; /* RFC 3339 UTC, or NULL: never */
} token_in;

typedef struct {
    char id[ID_MAX];
    char token[TOKEN_MAX]; /* the secret, here once: wipe the row when done */
    char prefix[16];       /* its first characters, which lists show */
    char user[128], role[16], org[72]; /* org "" for a system operator */
    char created_at[RFC3339_MAX];
    char expires_at[RFC3339_MAX]; /* "" when it never expires */
} token_row;

/* A token as lists show it: never the secret or its hash. */
typedef struct {
    char *mem;
    const char *id, *user, *role, *created_at;
    const char *prefix, *org, *created_by, *expires_at, *revoked_at, *revoked_by; /* or NULL */
} token_info;
void token_info_free(token_info *t);

typedef struct {
    token_info *items;
    size_t n;
    bool more;
    char last[STORE_KEY_MAX];
} token_list;
void token_list_free(token_list *l);

/* Creates a token (only its hash and a short prefix are kept);
 * STORE_NOT_FOUND when in->org names no organisation. */
int store_token_insert(store_tx *tx, const token_in *in, token_row *out, store_err *e);
/* Resolves a bearer token to its principal, revoked or expired ones too
 * (p->revoked, p->expires_ms say so); STORE_NOT_FOUND when unknown. */
int store_principal_by_token(store_tx *tx, const char *token, principal *p, store_err *e);
/* STORE_NOT_FOUND for an unknown id. */
int store_token_get(store_tx *tx, const char *id, token_info *out, store_err *e);

typedef struct {
    const char *org; /* only this organisation's, or NULL */
    int limit;
    const char *after;
} token_query;
/* The tokens of the organisations `overseer` oversees (store_oversees),
 * newest last. */
int store_token_list(store_tx *tx, const principal *overseer, const token_query *q, token_list *out, store_err *e);
/* Revokes a token now; STORE_NOT_FOUND for an unknown id, STORE_CONFLICT
 * when it was revoked already. out: the token after. */
int store_token_revoke(store_tx *tx, const char *id, const char *by, token_info *out, store_err *e);

/* What an administrator or an auditor oversees: a system operator
 * (role "operator") everything; anyone else its own organisation, and the
 * principal of a district also the other organisations of its region but
 * districts and agencies. The same rule as the store's lists apply in SQL. */
bool store_oversees(const principal *p, const org_row *o);

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
/* STORE_NOT_FOUND when unknown, not visible to p, or merged into another
 * record (store_person_merged_into says which). */
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
    bool exact;        /* name is the whole name, not its beginning */
    int limit;
    const char *after; /* the last key of the page before, or NULL */
} person_query;
/* Persons p sees (never one merged into another), by id. */
int store_person_search(store_tx *tx, const principal *p, const person_query *q, person_list *out, store_err *e);
/* The person of org registered with this number (13 digits); STORE_NOT_FOUND when none. */
int store_person_by_rrn(store_tx *tx, const char *org, const char *digits, char id[ID_MAX], store_err *e);
/* org's own record of the person person_id, found by its number;
 * STORE_NOT_FOUND when org has none (or person_id has no number). */
int store_person_twin(store_tx *tx, const char *person_id, const char *org, char id[ID_MAX], store_err *e);
/* A record p sees that was merged into another: into, and the merge
 * (merge_id, "" if none is on record); STORE_NOT_FOUND when it was not. */
int store_person_merged_into(store_tx *tx, const principal *p, const char *id, char into[ID_MAX],
                             char merge_id[ID_MAX], store_err *e);
/* The organisation that registered a person (STORE_NOT_FOUND if none). */
int store_person_owner(store_tx *tx, const char *person_id, char org[64], store_err *e);
/* Copies a person into another organisation (a referral accepted); new id
 * in id. STORE_NOT_FOUND for an unknown src_id. */
int store_person_clone(store_tx *tx, const char *src_id, const char *to_org, const char *by, char id[ID_MAX],
                       store_err *e);

/* ---- one person, one record: merges (merges.c) ---- */
typedef struct {
    char *mem;
    const char *id, *org, *kept_id, *merged_id, *created_at, *created_by;
    const char *note, *undone_at, *undone_by; /* or NULL */
    json_t *moved;  /* {"cases": [ids], "consents": [ids], "referrals": [ids]}: what moved to the kept record */
    json_t *filled; /* what the kept record took from the merged one, as the layer above recorded it */
} merge_row;
void merge_row_free(merge_row *m);

typedef struct {
    merge_row *items;
    size_t n;
} merge_list;
void merge_list_free(merge_list *l);

typedef struct {
    const char *kept_id, *merged_id, *org, *by, *note;
    json_t *filled; /* recorded with the merge (the store does not read it) */
} merge_in;

/* Marks merged_id merged into kept_id, moves every case (its version
 * bumped), consent and referral of merged_id to kept_id, and records what
 * moved under a new merge id (out). STORE_CONFLICT when merged_id is
 * merged already. The two being mergeable is the caller's decision. */
int store_person_merge(store_tx *tx, const merge_in *in, merge_row *out, store_err *e);
/* The merge id of kept_id made in p's organisation; STORE_NOT_FOUND otherwise. */
int store_merge_get(store_tx *tx, const principal *p, const char *kept_id, const char *id, merge_row *out,
                    store_err *e);
/* Undoes merge m: merged_id is a record again and what m moved goes back
 * (each row only if it is still on the kept record); moved_back (an
 * object) gets what did, as m->moved lists it. STORE_CONFLICT when m was
 * undone already, or merged_id is no longer merged into kept_id. */
int store_person_unmerge(store_tx *tx, const merge_row *m, const char *by, json_t *moved_back, store_err *e);
/* The merges a person p sees took part in (kept or merged), newest first. */
int store_person_merges(store_tx *tx, const principal *p, const char *person_id, merge_list *out, store_err *e);

/* The fields of a record a merge fills in from the other (and an unmerge
 * puts back). */
typedef struct {
    const char *phone, *address, *household_id, *relation; /* NULL: none */
    json_t *tags;        /* array */
    json_t *eligibility; /* object */
} person_fields;
/* STORE_NOT_FOUND for no such record (or one merged). */
int store_person_set_fields(store_tx *tx, const char *id, const person_fields *f, store_err *e);
/* id takes from_id's number (sealed again for id); STORE_NOT_FOUND when from_id has none. */
int store_person_take_number(store_tx *tx, const char *id, const char *from_id, store_err *e);
int store_person_drop_number(store_tx *tx, const char *id, store_err *e);

typedef struct {
    bool a_has, b_has; /* each has a number */
    bool same;         /* both have, and it is the same */
} person_numbers;
/* What the numbers of two records say about each other (never the numbers). */
int store_person_numbers(store_tx *tx, const char *a, const char *b, person_numbers *out, store_err *e);
/* The programs of the person's cases that have not ended, in any
 * organisation; one allocation (free it). */
int store_person_live_programs(store_tx *tx, const char *person_id, const char ***programs, size_t *n,
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
    const char *overdue_on;  /* YYYY-MM-DD: only cases with an open deadline due before it; or NULL */
    const char *assigned_to; /* only cases assigned to this user; or NULL */
    int limit;
    const char *after;
} case_query;
/* The cases p sees, by id, with the filters given (each NULL or empty: no filter). */
int store_case_list(store_tx *tx, const principal *p, const case_query *q, case_list *out, store_err *e);
/* Whether user works cases in org (a token of a worker, supervisor or
 * admin of org, neither revoked nor expired): who a case may be assigned to. */
int store_case_assignee_known(store_tx *tx, const char *org, const char *user, bool *known, store_err *e);

/* A case as a bulk export shows it: the person de-identified, as birth date
 * and sex. person_id is for the audit trail only, never rendered. */
typedef struct {
    char *mem;
    const char *case_id, *program, *org, *region, *source, *stage, *status, *opened_at;
    const char *birth_date, *sex;
    const char *person_id;
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
    const char *assigned_to; /* only deadlines of cases assigned to this user; or NULL */
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
/* Open deadlines due before today by kind, over every organisation, by
 * kind; every kind seen since the server started keeps its line. Kept in
 * memory (store_counts_start): no transaction, a constant cost; empty until
 * the counts are loaded. -1 only when out of memory. */
int store_overdue_counts(const char *today, overdue_counts *out);

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
    const char *person_id, *org; /* whom it is about and whose it is (of its referral or case), or NULL */
    const char *region;          /* the region it is for ("" when none): with agency, its line */
    int turn;                    /* store_outbox_due: its place on its line (0: the line's oldest) */
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
/* The messages of the organisations overseer oversees (store_oversees),
 * by id. */
int store_outbox_list(store_tx *tx, const principal *overseer, const char *status, int limit, const char *after,
                      outbox_list *out, store_err *e);
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
/* Messages by agency and status (a status that emptied stays, at 0). Kept
 * in memory like store_overdue_counts. */
int store_outbox_counts(outbox_counts *out);

/* ---- the audit trail (audit.c) ---- */
typedef struct {
    const char *actor, *org, *role, *action; /* action: "GET /v1/persons/{id}" */
    const char *person_id, *case_id, *purpose, *request_id;
    int status;
    /* Every person the record names when it names several (a list, a
     * household, a one-screen view ...): kept beside the record so that a
     * search by person finds it; person_id is the first of them. */
    const char *const *persons;
    size_t n_persons;
} audit_entry;
/* Appends a record chained to the one before it (and the persons it
 * names, when several). */
int store_audit_append(store_tx *tx, const audit_entry *a, store_err *e);

typedef struct {
    char *mem;
    long long seq;
    const char *at, *actor, *org, *role, *action, *request_id, *prev_hash, *hash;
    const char *person_id, *case_id, *purpose; /* or NULL */
    const char *persons; /* every person named, space-separated, when several; or NULL */
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
/* The records about the organisations overseer oversees
 * (store_oversees): those of its actors, and those that name a person, a
 * case or a token (its id as purpose) of them; a person_id query finds
 * every record naming the person. */
int store_audit_list(store_tx *tx, const principal *overseer, const audit_query *q, audit_list *out, store_err *e);
/* Records after after_seq in order, at most limit (out->more if there are
 * others). */
int store_audit_range(store_tx *tx, long long after_seq, int limit, audit_list *out, store_err *e);

/* ---- keys, checkpoints and archives of the trail (keyring.c, audit.c) ----
 * Each record carries a keyed MAC (BLAKE2b) of its fields and of the MAC
 * before it, so a record cannot be changed, nor the chain recomputed,
 * without the key. Signed checkpoints (Ed25519) hold the chain's position
 * and head: records removed from the end, or every record, are missing
 * from a signed position. The key that chains and signs changes with `sarye
 * key rotate`: each key is an epoch of the keyring, endorsed by the one
 * before. */
#define AUDIT_SIG_HEX 129
#define AUDIT_PK_HEX 65
#define AUDIT_KEY_ID_HEX 17

typedef struct {
    int epoch;
    char key_id[AUDIT_KEY_ID_HEX];
    long long first_seq;             /* the first record it chained */
    char public_key[AUDIT_PK_HEX];   /* hex Ed25519, verifies its checkpoints */
    char endorsement[AUDIT_SIG_HEX]; /* by the epoch before ("" for the first) */
    char created_at[RFC3339_MAX];
    char retired_at[RFC3339_MAX];    /* "" while current */
} audit_epoch;

typedef struct {
    long long id;
    int epoch;                  /* the key that signed it */
    long long through_seq;      /* the last record it covers (0: none yet) */
    char head[SHA256_HEX];      /* that record's MAC */
    long long archived_through; /* records up to this one are in archive files */
    char at[RFC3339_MAX];
    char reason[16];            /* interval, shutdown, verify, archive, rotate, register */
    char signature[AUDIT_SIG_HEX];
} audit_checkpoint;

typedef struct {
    long long from_seq, through_seq, records;
    int epoch;
    char prev[SHA256_HEX]; /* the MAC before from_seq */
    char head[SHA256_HEX]; /* the MAC of through_seq */
    char at[RFC3339_MAX];
    char file[512];
    char signature[AUDIT_SIG_HEX];
} audit_archive;

/* Opens the key the database is sealed with (key_path), and its keyring:
 * a new database gets a new key (created 0600) and its first epoch; a
 * database already sealed refuses a missing or different key file with a
 * message naming the file and both key ids. The key file stays locked
 * (shared) while the store is open, so `sarye key rotate` can tell that a
 * server is running. 0, or -1 with err. */
int store_keyring_open(const char *key_path, char *err, size_t errlen);
void store_keyring_close(void);
/* The keyring's epochs, oldest first, as opened (valid until close). */
const audit_epoch *store_keyring_epochs(size_t *n);

typedef struct {
    char old_id[AUDIT_KEY_ID_HEX], new_id[AUDIT_KEY_ID_HEX];
    long long numbers;            /* resident numbers sealed and indexed again */
    long long answers;            /* Idempotency-Key answers sealed again */
    char retired_file[1100];      /* where the old key file now is */
    audit_checkpoint checkpoint;  /* the last one signed with the old key */
} key_rotation;
/* `sarye key rotate`: a new key in key_path, everything sealed, indexed
 * and keyed under it in one transaction; the trail goes on in a new epoch.
 * Needs the database to itself (no server). 0, or -1 with err. */
int store_key_rotate(const char *key_path, key_rotation *out, char *err, size_t errlen);

/* Writes a checkpoint (signed with the current key) at record seq whose
 * MAC is head, or with head NULL at the chain's head; unless force, not
 * when the last checkpoint is at that record already. */
int store_audit_checkpoint(store_tx *tx, const char *reason, long long seq, const char *head, bool force,
                           audit_checkpoint *out, bool *written, store_err *e);
/* Every checkpoint with id > after_id, in order (malloc'd array). */
int store_audit_checkpoints(store_tx *tx, long long after_id, audit_checkpoint **out, size_t *n, store_err *e);
/* Every archive, in order (malloc'd array). */
int store_audit_archives(store_tx *tx, audit_archive **out, size_t *n, store_err *e);
/* The chain's head: the last record, else the last archive's, else none. */
int store_audit_chain_head(store_tx *tx, long long *seq, char head[SHA256_HEX], store_err *e);

/* Checks without the database. A record against the MAC before it (its
 * prev_hash and its own MAC, with the key of its epoch); a checkpoint's
 * and an archive's signature with the public key of their epoch; an
 * epoch's endorsement by the one before. why gets a sentence when false. */
bool store_audit_record_ok(const audit_row *r, const char *prev, char *why, size_t whylen);
bool store_audit_checkpoint_ok(const audit_checkpoint *c, const audit_epoch *epochs, size_t n);
bool store_audit_archive_ok(const audit_archive *a, const audit_epoch *epochs, size_t n);
bool store_audit_epochs_ok(const audit_epoch *epochs, size_t n, char *why, size_t whylen);

/* Archiving: the last record of the oldest run of records written before
 * `before` (an RFC 3339 time or a date), after after_seq; 0 if none. */
int store_audit_cut(store_tx *tx, const char *before, long long after_seq, long long *cut, store_err *e);
/* Signs an archive's statement (its epoch: the current key's). */
void store_audit_archive_sign(audit_archive *a);
/* Records a signed archive and a checkpoint at the head saying records up
 * to a->through_seq leave the database; from then on they may be deleted
 * (store_audit_archive_purge). STORE_CONFLICT if archived already. */
int store_audit_archive_record(store_tx *tx, const audit_archive *a, audit_checkpoint *cp, store_err *e);
/* Deletes at most limit archived records (those up to the last archive). */
int store_audit_archive_purge(store_tx *tx, int limit, int *deleted, store_err *e);

/* Called on the writer thread after a batch that wrote a checkpoint (every
 * `every` records) has committed; NULL for none. */
typedef void (*store_checkpoint_hook)(const audit_checkpoint *c);
void store_audit_checkpoints_every(long every, store_checkpoint_hook hook);

/* ---- retention (store.c, outbox.c) ---- */
/* Deletes at most limit Idempotency-Key records made before `before`
 * (RFC 3339), oldest first; *deleted says how many. */
int store_idem_purge(store_tx *tx, const char *before, int limit, int *deleted, store_err *e);
/* Deletes at most limit outbox messages delivered before `before`. */
int store_outbox_purge(store_tx *tx, const char *before, int limit, int *deleted, store_err *e);

#endif
