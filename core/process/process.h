/*
 * process: the standard case-management process. It owns the rules every
 * program shares (stages, statuses, invariants, the event log) and asks the
 * plugin host for what programs and regions add. Each call is one unit of
 * work in the store; HTTP handlers call these and answer the reply. The
 * store's rows become the API's JSON here (render/render.h), and the
 * store's outcomes the API's errors (process_store_error).
 */
#ifndef SARYE_PROCESS_H
#define SARYE_PROCESS_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"
#include "config/config.h"
#include "store/records.h"

/* Starts the process layer (and the plugin host) for serving; for tooling
 * that reads the store and asks plugins (sarye plugin replay), only the
 * plugin host: it keeps and retires no generation and writes nothing. */
int process_init(const config *cfg, char *err, size_t errlen);
int process_init_tool(const config *cfg, char *err, size_t errlen);
void process_shutdown(void);
/* Asks for a plugin reload (SIGHUP); returns at once. */
void process_reload_signal(void);
/* Per-thread state (store connection, plugin VM): created on the thread
 * that serves, destroyed when it exits. */
void process_thread_enter(void);
void process_thread_leave(void);
/* Ready to serve: the store is migrated and a plugin generation is loaded. */
bool process_ready(void);
/* Extra Prometheus text (transitions, plugin generation); caller frees. */
char *process_metrics(void);

/* The accepted organisation types and roles (NULL-terminated). */
extern const char *const process_org_types[];
extern const char *const process_roles[];
/* True if v is in the NULL-terminated list. */
bool process_one_of(const char *v, const char *const *list);

/* ---- the store as the API sees it (outcome.c) ---- */
/* store_write, store_read and store_idem_replay, with a failure of the
 * store itself (busy, unavailable, a commit that failed, an
 * Idempotency-Key reused) answered as the API answers it: 503 store_busy
 * or store_unavailable, 500 internal_error, 409 idempotency_key_reused. */
int process_write(const store_idem *idem, store_work_fn fn, void *arg, store_reply *reply, err_t *e);
/* process_write of a unit that may run again (store_write_rerunnable). */
int process_write_rerunnable(const store_idem *idem, store_work_fn fn, void *arg, store_reply *reply, err_t *e);
int process_read(store_work_fn fn, void *arg, store_reply *reply, err_t *e);
int process_replay(const store_idem *idem, store_reply *reply, err_t *e);
/* Turns a failed store call into the API's error in e and returns -1: when
 * se->kind is kind, status, code and the printf message (what that outcome
 * means to the caller: 404 not_found "no case 'x'", 422 unknown_org ...);
 * any other kind gets its generic answer (process_store_fail). */
int process_store_error(const store_err *se, err_t *e, store_kind kind, int status, const char *code,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The generic answer of a store outcome: 404 not_found, 409 duplicate or
 * conflict, 412 version_mismatch, 409 idempotency_key_reused, 503
 * store_busy or store_unavailable, 500 internal_error; the message is the
 * store's. Returns -1. */
int process_store_fail(const store_err *se, err_t *e);

/* Notes that the answer in reply discloses the person (a case's history,
 * an export that does not name them): the audit trail names them too. */
void process_disclose(store_reply *reply, const char *person_id);

/* ---- organisations and tokens (orgs.c) ----
 * by is who asks (NULL: the command line, which acts as a system operator
 * named "cli"). A system operator (role operator) administers everything;
 * an administrator its own organisation, a district's administrator also
 * the organisations of its region but districts and agencies
 * (store_oversees); anyone else nothing. */
/* Registers an organisation: 201 with it; 409 duplicate for an id taken;
 * 403 when by may not (organisations are created by a system operator, or
 * by a district's administrator in its own region, districts and agencies
 * excepted). */
int process_org_create(const principal *by, const org_in *in, const store_idem *idem, store_reply *reply, err_t *e);

typedef struct {
    const char *user, *role;
    const char *org;  /* NULL for role operator, required otherwise */
    int ttl_days;     /* days until it expires; 0: never */
} token_post;
/* A new bearer token: 201 {id, token, prefix, user, role, org,
 * created_at, expires_at}, the only time the token is shown (a replay
 * answers it as null); 422 unknown_org; 403 for an organisation by does not
 * administer, or an operator's token asked by anyone but an operator; 422
 * validation_failed (field role) for an agency token outside an agency.
 * Recorded in the audit trail (purpose: the token's id). request_id NULL:
 * one is made. */
int process_token_create(const principal *by, const token_post *in, const char *request_id, const store_idem *idem,
                         store_reply *reply, err_t *e);
/* The tokens of the organisations by administers (never the secret). */
int process_tokens_list(const principal *by, const token_query *q, store_reply *reply, err_t *e);
/* Revokes a token now: 200 with it; 404 for one by does not administer;
 * 409 token_revoked. Audited; this server refuses it from the next request
 * on (another process's cache within a second). */
int process_token_revoke(const principal *by, const char *id, const char *request_id, store_reply *reply, err_t *e);

/* Resolves a bearer token: 401 unauthorized when unknown, revoked or
 * expired (the message says which). Resolved tokens are kept a second (by
 * hash; an expiry is checked on every use); process_tokens_changed()
 * forgets them all at once. */
int process_authenticate(const char *token, principal *p, err_t *e);
void process_tokens_changed(void);

/* The ten standard stages, in order; NULL past the end. */
const char *process_stage_id(int i);
bool process_stage_known(const char *stage);

typedef struct {
    const char *person_id, *program, *org, *source, *referral_id;
    const char *assigned_to; /* who works it (a user of org who works cases); NULL: whoever opens it */
    json_t *lookups; /* filled by process: what the rules looked up before opening */
    json_t *cache;   /* filled by process: looked-up facts to keep on the person */
} case_open_in;

/* Opens a case in the program's first stage and appends its first event. */
int process_case_open(const principal *p, const case_open_in *in, const store_idem *idem,
                      store_reply *reply, err_t *e);
typedef struct {
    const char *to;   /* a standard stage, or "end" to end a case after closure / follow-up */
    int version;      /* the version the client last saw */
    json_t *data;     /* object or NULL */
    const char *note;
    bool reopen;      /* moving an ended (or follow-up) case back into the process */
} transition_in;

/* Moves a case: core invariants, then the program's and region's rules,
 * then the case update, its event and its deadlines in one transaction.
 * 404 unknown case, 412 stale version, 409 not allowed (details.allowed),
 * 422 refused by a rule (details.plugin, details.reason). */
int process_case_transition(const principal *p, const char *id, const transition_in *in,
                            const store_idem *idem, store_reply *reply, err_t *e);

/* ---- who works a case (assign.c) ---- */
typedef struct {
    const char *assigned_to; /* a user who works cases in the case's organisation */
    const char *note;        /* or NULL */
    int version;             /* the version the client saw, or 0: any */
} assignment_in;
/* Reassigns a case of p's organisation: 200 the case; an `assigned` event
 * (none when it is the assignee already). 404, 403 another organisation's
 * case, 409 case_ended, 412 stale version, 422 unknown_assignee. */
int process_case_assign(const principal *p, const char *id, const assignment_in *in, const store_idem *idem,
                        store_reply *reply, err_t *e);

/* ---- case work (casework.c) ---- */
typedef struct {
    const char *kind;    /* counseling, assessment, plan, service, check, closure, follow_up */
    const char *subkind; /* the assessment instrument, or NULL */
    const char *status;  /* plans start as "draft"; NULL otherwise */
    json_t *data;        /* the record as posted (validated in shape by the handler) */
    const char *move_to; /* closure: the stage the record moves the case into, or NULL */
    const char *note;
} record_post;

/* Records case work on an open case: 201 {record..., case}. The rules may
 * refuse it (422 naming the field or plugin), answer it (record.result),
 * set deadlines, move or end the case, in the same transaction. */
int process_record(const principal *p, const char *case_id, const record_post *in, const store_idem *idem,
                   store_reply *reply, err_t *e);
/* Approves a draft plan (supervisors); the approved plan before it is
 * superseded. 409 if the plan is not a draft. */
int process_plan_approve(const principal *p, const char *case_id, const char *plan_id, const store_idem *idem,
                         store_reply *reply, err_t *e);
/* A case conference on one or more of the principal's cases. */
int process_meeting(const principal *p, const meeting_in *m, const store_idem *idem, store_reply *reply, err_t *e);
/* The records of a case (one kind, or all). */
int process_records(const principal *p, const char *case_id, const char *kind, store_reply *reply, err_t *e);
/* Open deadlines of the principal's organisation, soonest first. */
int process_deadlines(const principal *p, const deadline_query *q, store_reply *reply, err_t *e);
/* The person, household and every visible case with its plans, services and deadlines. */
int process_one_screen(const principal *p, const char *person_id, store_reply *reply, err_t *e);
/* Prometheus lines: overdue deadlines by kind; caller frees. */
char *process_overdue_metrics(void);

/* ---- one person, one record (merges.c) ---- */
/* Merges the record duplicate_id into kept_id, both of p's organisation:
 * 200 {merge, person}; 404 for an unknown kept_id, 422 unknown_person for
 * duplicate_id, 403 for another organisation's records, 409
 * merge_conflict (details.conflicts: [{field, reason}]) when they disagree
 * on who the person is, are in two households, or both have a case of one
 * program that has not ended. */
int process_person_merge(const principal *p, const char *kept_id, const char *duplicate_id, const char *note,
                         const store_idem *idem, store_reply *reply, err_t *e);
/* Undoes merge merge_id of kept_id: 200 {merge, person, restored, moved_back};
 * 404 for no such merge, 409 merge_undone, 409 merge_conflict when the kept
 * record was merged into another since. */
int process_person_unmerge(const principal *p, const char *kept_id, const char *merge_id, const store_idem *idem,
                           store_reply *reply, err_t *e);
/* The merges a person took part in: {items, next_cursor: null}. */
int process_person_merges(const principal *p, const char *person_id, store_reply *reply, err_t *e);

/* ---- consents and referrals (referrals.c) ---- */
/* Records a consent; valid_from defaults to today and valid_until by
 * purpose (counseling 7 days, case_management and referral 3 months, also
 * the longest allowed). */
int process_consent_create(const principal *p, consent_in *in, const store_idem *idem, store_reply *reply, err_t *e);
int process_consents(const principal *p, const char *person_id, store_reply *reply, err_t *e);
int process_consent_revoke(const principal *p, const char *person_id, const char *id, store_reply *reply, err_t *e);

typedef struct {
    const char *person_id, *from_case_id, *to_org, *to_program, *reason, *opinion, *consent_id;
    const char *const *attach; /* record kinds of the from case to carry (counseling, assessment), NULL-ended */
} referral_post;
typedef struct {
    const char *case_id; /* link to the receiver's existing case, or NULL to open one */
    const char *program; /* when the referral names none */
    const char *note;
} referral_accept;

/* 201 pending; 422 unknown_person / unknown_case / unknown_org /
 * program_not_offered / consent_invalid. The receiver gets a
 * referral_answer deadline. */
int process_referral_create(const principal *p, const referral_post *in, const store_idem *idem, store_reply *reply,
                            err_t *e);
/* The receiver accepts: its own copy of the person and a case at the
 * program's first stage (source referral), or a link to its case. */
int process_referral_accept(const principal *p, const char *id, const referral_accept *in, const store_idem *idem,
                            store_reply *reply, err_t *e);
int process_referral_reject(const principal *p, const char *id, const char *note, const store_idem *idem,
                            store_reply *reply, err_t *e);
/* The referrer's review of the closure of the case its referral opened. */
int process_referral_review(const principal *p, const char *id, bool appropriate, const char *note,
                            store_reply *reply, err_t *e);
int process_referral_get(const principal *p, const char *id, store_reply *reply, err_t *e);
int process_referrals(const principal *p, const referral_query *q, store_reply *reply, err_t *e);

/* ---- agencies (referrals.c) ---- */
typedef struct {
    const person_in *person; /* validated by the handler */
    const char *to_org, *dong_code, *region, *reason, *opinion, *agency_ref;
    json_t *warnings;        /* what the answer warns of (the person's number), or NULL */
} referral_inbound;
/* A government-wide referral from an agency (agency token): the person is
 * registered at the dong (to_org, or the dong whose area is dong_code),
 * with a 14-day first-contact deadline. */
int process_referral_inbound(const principal *p, const referral_inbound *in, const store_idem *idem,
                             store_reply *reply, err_t *e);
typedef struct {
    const char *status; /* the agency's own code; its plugin maps it */
    const char *reason;
} agency_update;
/* An agency's status of a referral sent to it. */
int process_referral_agency_status(const principal *p, const char *id, const agency_update *in,
                                   const store_idem *idem, store_reply *reply, err_t *e);
/* The messages to agencies of the organisations p administers, payloads
 * and the person each is about included (personal data: the HTTP layer
 * audits the reading); a system operator sees every message without them. */
int process_outbox_list(const principal *p, const char *status, int limit, const char *after, store_reply *reply,
                        err_t *e);
/* A dead message sent again (404 for another organisation's). */
int process_outbox_retry(const principal *p, const char *id, store_reply *reply, err_t *e);

/* A page of the principal's cases, de-identified. */
int process_case_export(const principal *p, int limit, const char *after, store_reply *reply, err_t *e);

/* ---- sharing rights of private-provider workers (referrals.c) ---- */
/* The worker's organisation records privacy training and security pledge
 * (its approval); the district of its region then approves. Until both, a
 * provider worker cannot open the one-screen view. */
int process_sharing_right_set(const principal *p, const char *org, const char *user, const char *training_on,
                              const char *pledge_on, store_reply *reply, err_t *e);
int process_sharing_right_approve(const principal *p, const char *org, const char *user, store_reply *reply,
                                  err_t *e);
int process_sharing_right_get(const principal *p, const char *org, const char *user, store_reply *reply, err_t *e);

/* ---- the audit trail ---- */
/* Appends one record of a read or write of personal data (its own small
 * transaction, before the data leaves the server). */
int process_audit(const audit_entry *a, err_t *e);
/* The records an auditor may read: those of the organisations it oversees
 * (its own; a district's auditor its region's) — their actors' records and
 * those naming their persons, cases or tokens. */
int process_audit_list(const principal *p, const audit_query *q, store_reply *reply, err_t *e);

/* Retention: a thread that purges expired Idempotency-Key records and
 * delivered outbox messages in small batches (retention.*). */
int process_retention_start(const config *cfg, char *err, size_t errlen);
void process_retention_stop(void);

/* The anchor file (the newest checkpoint, kept beside the key) and how
 * many records the writer appends between two checkpoints. */
void process_audit_setup(const char *anchor_file, long every);
/* A checkpoint at the chain's head, unless one is there (shutdown);
 * out->id 0 when none was needed. */
int process_audit_checkpoint(const char *reason, audit_checkpoint *out, err_t *e);
/* Rewrites the anchor with c if it is newer (after a checkpoint written
 * outside process_audit_*: a key rotation). */
void process_audit_anchor(const audit_checkpoint *c);

typedef struct {
    bool full;                    /* every record, not from the last verified checkpoint */
    const char *checkpoints_file; /* an export the database must agree with (NULL: none) */
    int batch;                    /* records per read transaction (0: 5000) */
} audit_verify_opts;

typedef struct {
    bool ok;
    char why[700];           /* what is wrong, when !ok */
    char note[600];          /* said beside a success */
    long long records;       /* in the database (those not archived) */
    long long checked;       /* records whose MAC was recomputed */
    long long first, last;   /* the records walked */
    long long transactions;  /* read transactions it took */
    size_t checkpoints;      /* signed checkpoints checked */
    size_t external;         /* checkpoints held outside that agree */
    long long from_checkpoint; /* the verified checkpoint it started from (0: the first record) */
    bool anchor;             /* the anchor file was there and agrees */
    audit_checkpoint written; /* the "verify" checkpoint it wrote (id 0: none) */
    double elapsed_ms;
} audit_verify_result;
/* sarye audit verify. -1 only when the store fails (e); a trail that does
 * not hold is r->ok false with r->why. */
int process_audit_verify(const audit_verify_opts *o, audit_verify_result *r, err_t *e);
/* An archive file read back: every record against its MAC, its checkpoints
 * and its signed statement. */
int process_audit_verify_archive(const char *path, audit_verify_result *r, err_t *e);
/* Every checkpoint and archive, with the keys' public parts, to path. */
int process_audit_export(const char *path, size_t *n, err_t *e);

typedef struct {
    long long from, through, records; /* archived now (0 records: none) */
    long long deleted;                /* records removed from the database */
    audit_checkpoint checkpoint;
} audit_archive_result;
/* sarye audit archive: records written before `before` (a date or an RFC
 * 3339 time, at least keep_days ago) go to path, are read back and
 * verified, recorded with a signature, then deleted in small batches. */
int process_audit_archive(const char *before, int keep_days, const char *path, audit_archive_result *res, err_t *e);

/* Programs and plugins of the serving generation; the listing also names
 * the generations loaded and how many open cases each runs. */
int process_programs(store_reply *reply, err_t *e);
int process_program(const char *id, const char *region, store_reply *reply, err_t *e);
int process_plugins(store_reply *reply, err_t *e);
/* The plugin set on disk against the serving one, validated, nothing
 * published (luahost_candidate_diff). */
int process_plugins_candidate(store_reply *reply, err_t *e);

/* ---- plugin generations (generations.c) and shadow replay (replay.c) ---- */
/* A reload of the plugin directory, and what becomes of the open cases:
 * "migrate" (they follow the new rules; their declared deadlines move with
 * them) or "stay" (each keeps the generation it runs under until it
 * closes; at most plugins.max_generations loaded, 409
 * too_many_generations past it). dry_run answers what would happen and
 * publishes nothing. require_replay publishes only when a shadow replay of
 * the recorded history finds no difference, or exactly the ones whose
 * digest is expected_digest (409 replay_differs otherwise). The choice is
 * in the audit trail (by NULL: a signal or the file watch). 200 {generation,
 * changed, plugins, open_cases, migration | stay, replay?, dry_run}; 422
 * plugin_invalid with every error. */
typedef struct {
    const char *open_cases;      /* "migrate" | "stay"; NULL: plugins.open_cases */
    bool dry_run;
    bool require_replay;
    const char *expected_digest;
    const principal *by;
    const char *request_id;
} plugins_reload_in;
int process_plugins_reload(const plugins_reload_in *in, store_reply *reply, err_t *e);
/* Retires the kept generations no open case runs under any more. */
int process_generations_sweep(err_t *e);

/* A shadow replay: the recorded decisions of every case asked again of a
 * candidate set and of the serving one, each in a VM of its own on a
 * thread of its own; 200 with the report of every decision that differs
 * (counts per program and region, at most max_examples examples, case ids
 * only of region when given, a digest of the differences). 422
 * plugin_invalid for a candidate that does not load or pass its tests;
 * 409 replay_running while another replay runs. */
typedef struct {
    const char *dir;    /* a candidate directory (the command line's) */
    json_t *files;      /* or changes over the serving set: [{path, text|null}] */
    const char *region; /* examples only of this region's cases (NULL: any) */
    int max_examples;
} plugins_replay_in;
int process_plugins_replay(const plugins_replay_in *in, store_reply *reply, err_t *e);

int process_case_get(const principal *p, const char *id, store_reply *reply, err_t *e);
int process_case_list(const principal *p, const case_query *q, store_reply *reply, err_t *e);
int process_case_events(const principal *p, const char *id, int limit, const char *after,
                        store_reply *reply, err_t *e);

#endif
