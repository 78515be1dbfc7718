/*
 * rules: the one boundary between the core and plugin code. Nothing else in
 * C calls the Lua host. Each question the core asks (may this case open,
 * may it move, what does this record mean, what message goes to this
 * agency) takes typed inputs — the case row, the move or record, who asks,
 * the store views the rules may read — and answers a typed verdict: the
 * outcome, the plugin and version that decided, the field and reason, the
 * moves allowed, and the effects to apply (deadlines set and cleared,
 * messages to agencies, a follow-on move or end). rules_error() is the one
 * place a verdict becomes an API error.
 *
 * Rules are asked before any write and never from the writer thread: a
 * verdict is computed on a read snapshot, and the write that applies it
 * re-checks the case version it was computed on.
 */
#ifndef SARYE_RULES_H
#define SARYE_RULES_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"
#include "config/config.h"
#include "store/records.h"

/* Starts the rules (the plugin host: load, validate and publish the set of
 * cfg->plugins). -1 with every error in err when the set is invalid. */
int rules_init(const config *cfg, char *err, size_t errlen);
void rules_shutdown(void);
/* Per-thread state (the VM, cached labels) dies with the thread. */
void rules_thread_done(void);
/* Prometheus lines of the governor (calls refused, budget kills, by region). */
char *rules_metrics(void);

typedef enum {
    RULES_OK = 0,
    RULES_NOT_ALLOWED,     /* not a transition of the program from here (409, details.allowed) */
    RULES_STAGE_UNUSED,    /* the program does not use that stage (409) */
    RULES_UNKNOWN_PROGRAM, /* no loaded plugin defines the program */
    RULES_REFUSED,         /* a guard, validate or eligibility rule said no (422, its reason) */
    RULES_INVALID,         /* a record lacks what the rules require (422, the field) */
    RULES_UNKNOWN_AGENCY,  /* no agency plugin connects it (422) */
    RULES_INBOUND_ONLY,    /* the agency only refers people; it takes no referrals (422) */
    RULES_PLUGIN_FAILED,   /* plugin code raised an error or answered nonsense (500) */
    RULES_PLUGIN_TIMEOUT,  /* plugin code ran past its CPU budget (500) */
    RULES_PLUGIN_MEMORY,   /* plugin code ran past the VM's memory cap (500) */
    RULES_THROTTLED,       /* the region's plugins used their share of CPU (503, retry) */
    RULES_UNAVAILABLE,     /* no plugin generation can serve (503) */
    RULES_AGENCY_FAILED,   /* an agency a look-up asked did not answer (503) */
} rules_outcome;

/* What was asked, for the error a verdict becomes. */
typedef enum { RULES_ASK_OPEN, RULES_ASK_MOVE, RULES_ASK_RECORD, RULES_ASK_MESSAGE, RULES_ASK_LOOKUP } rules_ask;

typedef struct {
    char kind[64];
    char due_on[11];
    char label[256];
    char plugin[96];
} rules_deadline;

typedef struct {
    char agency[48];
    json_t *payload; /* owned */
} rules_message;

/* What applying a verdict changes besides the case row and its event. */
typedef struct {
    rules_deadline *set;
    int n_set;
    char (*clear)[64];
    int n_clear;
    rules_message *outbox;
    int n_outbox;
    /* A record's rules hand the case to another organisation (ctx.set_lead):
     * lead_org names it, or lead_type asks for the one organisation of that
     * type in the case's region; "" for neither. */
    char lead_org[64], lead_type[16], lead_reason[256], lead_plugin[96];
} rules_effects;

typedef struct {
    rules_outcome outcome;
    char plugin[96], version[32]; /* who decided (or failed) */
    char rule[24];         /* a refusal's rule: guard, validate, eligibility */
    char field[128];       /* an invalid record's field */
    char reason[600];      /* a refusal's reason, or a failure's message */
    char file[160];        /* where plugin code failed: file and line */
    int line;
    json_t *allowed;       /* stages (or values) allowed, or NULL; owned */
    char first_stage[32];  /* open: where the case starts */
    char label[256];       /* the label of the stage reached */
    json_t *result;        /* what a record's rules answered, or NULL; owned */
    rules_effects effects;
    char move[32];         /* a record asks the case to move there */
    bool end_case;         /* a record asks the case to end */
    err_t failure;         /* RULES_AGENCY_FAILED / RULES_THROTTLED: the error itself */
    char generation[17];   /* the plugin generation that was asked */
} rules_verdict;

void rules_verdict_free(rules_verdict *v);
/* Turns a verdict that is not RULES_OK into the API error (the one mapping
 * of outcomes to statuses and codes); c is the case asked about, or NULL. */
void rules_error(const rules_verdict *v, rules_ask ask, const case_row *c, const char *to, err_t *e);

/* The store as the rules may read it during one question: a read snapshot
 * seen as viewer sees it, plus what the write being decided will add (a
 * record, a meeting, deadlines), so that a follow-on move is decided on the
 * case as it will be. */
typedef struct {
    store_tx *tx;              /* a read snapshot, or NULL (no views) */
    const principal *viewer;   /* whose view (and ctx.actor) */
    const char *case_id;       /* the case the pending changes belong to */
    json_t *pending_records;   /* array of records the write adds to case_id, or NULL */
    json_t *pending_meeting;   /* a meeting the write adds (of its case_ids), or NULL */
    const rules_effects *pending_deadlines; /* deadlines the write sets and clears on case_id */
} rules_facts;

/* May a case of in->program open for person (the API's person JSON)?
 * proposal: the case as it would open (id, program, region, org, source,
 * person_id; stage ignored). lookups: what open_lookup found, or NULL. On
 * RULES_OK: first_stage, label, effects (deadlines that start with the
 * case). */
int rules_open(const rules_facts *f, const case_row *proposal, json_t *person, json_t *lookups, rules_verdict *v);

/* A move of c to `to` (a standard stage): transitions, guards, hooks,
 * declared deadlines. On RULES_OK: label, effects. */
typedef struct {
    const char *to;
    bool reopen;
    json_t *data;      /* object or NULL */
    const char *note;
    json_t *prepared;  /* what prepare functions answered, or NULL */
} rules_move_in;
int rules_move(const rules_facts *f, const case_row *c, const rules_move_in *in, rules_verdict *v);

/* A case-work record of kind (subkind: the instrument, or a meeting's
 * type) on c. On RULES_OK: result, effects, and move / end_case. */
int rules_record(const rules_facts *f, const case_row *c, const char *kind, const char *subkind, json_t *record,
                 rules_verdict *v);

/* The phase before any snapshot, for moves into in->to: prepare functions
 * may call agencies. *prepared is what they answered (NULL when no plugin
 * prepares anything); on failure v says why. */
/* False when this thread already knows that no plugin of c's generation
 * prepares a move (rules_prepare would answer nothing): the move can be
 * decided in the snapshot that read c. True when it does not know. */
bool rules_may_prepare(const case_row *c, bool reopen);

int rules_prepare(const principal *actor, const case_row *c, const rules_move_in *in, json_t **prepared,
                  rules_verdict *v);
/* Before a case opens, outside any transaction: look-ups of agencies.
 * *lookups and *cache (facts to keep on the person) are set, or NULL when
 * the program asks for none. */
int rules_lookup(const principal *actor, const case_row *proposal, json_t *person, json_t **lookups, json_t **cache,
                 rules_verdict *v);
/* Whether opening a case of program in region asks agencies first. */
bool rules_needs_lookup(const char *program, const char *region);

/* The message of kind (referral, answer, progress) to agency, as its
 * plugin builds it from data; *payload on RULES_OK. */
int rules_agency_message(const char *agency, const char *kind, json_t *data, json_t **payload, rules_verdict *v);
/* An agency's own status code mapped to received | in_progress |
 * rejected | completed into out; false when it means nothing. */
bool rules_agency_status(const char *agency, const char *status, char out[24]);
/* Whether a plugin connects the agency. */
bool rules_agency_known(const char *agency);
/* How program (in region) takes referrals: its answer days (default when
 * it says nothing) and the programs whose cases may refer to it (NULL:
 * any; owned) with the plugin that says so. */
int rules_referral_rules(const char *program, const char *region, int *answer_days, json_t **accepts_from,
                         char plugin[96], err_t *e);

/* Where a case waits on a resource's waitlist: the priority its program
 * and region give it (their waitlist.priority, added; higher is offered
 * first; 0 when none says), their reasons, and the days its worker has to
 * answer an offer (waitlist.offer_days, 7 when none says). entry: the
 * waitlist entry as the rules see it ({resource?, need, domain, kind?,
 * target?}). On RULES_OK v->result is {priority, reasons, plugin,
 * offer_days}. */
int rules_waitlist(const rules_facts *f, const case_row *c, json_t *entry, rules_verdict *v);

/* The label of stage under program and region (NULL when the program is not
 * loaded or the stage unused); valid until the thread's next rules call. */
const char *rules_label(const char *program, const char *region, const char *stage);
/* The effective rules of program under region (GET /v1/programs/{id}), or
 * *out NULL for an unknown program. */
int rules_describe(const char *program, const char *region, json_t **out, err_t *e);
/* The generation the calling thread's rules run on: 16 hex characters. */
const char *rules_generation(void);
/* The generation a case recorded on gen runs under: gen itself while it is
 * loaded (serving, or kept for the open cases that stay on it), else the
 * serving one. */
void rules_generation_for(const char *gen, char out[17]);

/* ---- shadow replay: recorded decisions asked again of a plugin set, in
 * a VM of its own (never a serving thread's), under the same memory cap
 * and CPU budget ---- */
typedef struct rules_replayer rules_replayer;
typedef struct gen rules_set; /* a loaded plugin set (lua/host.h's luagen) */
/* A replayer of set (a reference is taken); NULL with e. */
rules_replayer *rules_replayer_new(rules_set *set, err_t *e);
void rules_replayer_free(rules_replayer *r);

typedef enum { RULES_STEP_OPEN, RULES_STEP_MOVE, RULES_STEP_RECORD } rules_step_kind;
/* One recorded decision: the case as it was before it, what was asked,
 * the person and the day it was decided on. */
typedef struct {
    rules_step_kind kind;
    const case_row *c;
    const char *to;                   /* move */
    bool reopen;
    json_t *data;
    const char *note;
    const char *record_kind, *subkind; /* record */
    json_t *record;
    json_t *person;                   /* the person as the API shows it, or NULL */
    const char *today;                /* YYYY-MM-DD */
    const principal *actor;
} rules_step;
/* What the rules read of the case during a replayed decision: its events
 * before it, and the named queries as they would have answered then.
 * Results are new references; query answers NULL with why. */
typedef struct {
    json_t *(*history)(void *ud);
    json_t *(*query)(void *ud, const char *name, json_t *params, char *why, size_t whylen);
} rules_replay_views;
/* Asks the decision again: 0 with v (any outcome, as rules_move and
 * rules_record answer) and *offered (a move: the stages the rules offer
 * from the case's stage; else NULL); -1 when the replayer itself failed
 * (e). A call past its budget poisons nothing: the VM is rebuilt. */
int rules_replay(rules_replayer *r, const rules_step *s, const rules_replay_views *views, void *ud,
                 rules_verdict *v, json_t **offered, err_t *e);

#endif
