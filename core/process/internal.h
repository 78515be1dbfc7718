/* internal.h: the engine as the other process files use it; not part of
 * the process header. engine.c owns it; referrals.c opens cases through it
 * and tells it what a referred case's move means for the referrer. */
#ifndef SARYE_PROCESS_INTERNAL_H
#define SARYE_PROCESS_INTERNAL_H

#include "process/process.h"
#include "rules/rules.h"

/* Extra writes a decision brings along (a referrer told of a move ...):
 * decided on the snapshot, applied by fn inside the unit of work. */
typedef struct {
    int (*fn)(store_tx *tx, void *arg, err_t *e);
    void (*release)(void *arg);
    void *arg;
} engine_extra;

/* A move of one case, decided on a snapshot and applied by a unit of work
 * that re-checks the version it was decided on. */
typedef struct {
    case_row before;        /* as the rules saw it */
    case_row after;         /* stage, status and generation after the move */
    char event_type[16];    /* transition, ended, reopened */
    json_t *data;           /* the event's data (owned) */
    char note[4001];
    rules_verdict v;        /* effects, label */
    bool clear_all;         /* an ended case: nothing stays due */
    engine_extra extra;     /* what the case's referrer is told */
} move_plan;

void move_plan_free(move_plan *m);

/* Decides a move of c on the snapshot tx: core invariants first (no plugin
 * switches them off), then the program's and region's rules. facts carry
 * the snapshot and anything the same write adds before the move. 0, or -1
 * with e (409, 422, 500 ... as rules_error says). */
int engine_decide_move(const rules_facts *facts, const case_row *c, const transition_in *in, json_t *prepared,
                       move_plan *out, err_t *e);
/* Applies a decided move inside a unit of work; *c is the case as it is
 * now and becomes the case after the move (412 when its version is not the
 * one decided on). */
int engine_apply_move(store_tx *tx, const principal *p, case_row *c, move_plan *m, err_t *e);

/* Opening a case: the person is visible, the organisation runs the
 * program, the rules let it open; the new case's id is chosen here. */
typedef struct {
    case_row c;             /* the case to insert */
    rules_verdict v;        /* first stage, label, effects */
    json_t *cache;          /* looked-up facts to keep on the person (owned) */
    json_t *person;         /* the person as the rules saw it (owned) */
} open_plan;

void open_plan_free(open_plan *o);
/* person: the person's JSON as the rules should see it (NULL: read it as
 * p sees it, 422 unknown_person when invisible). */
int engine_decide_open(const rules_facts *facts, const principal *p, const case_open_in *in, json_t *person,
                       open_plan *out, err_t *e);
int engine_apply_open(store_tx *tx, const principal *p, open_plan *o, err_t *e);

/* Whether user may be assigned cases of org; 422 unknown_assignee
 * (field assigned_to) otherwise. */
int process_assignee_check(store_tx *tx, const char *org, const char *user, err_t *e);

/* A case p may see; 404 not_found otherwise. */
int engine_case_load(store_tx *tx, const principal *p, const char *id, case_row *c, err_t *e);
/* The case as the API shows it: the row, its stage's label (given, as the
 * rules name it), its open deadlines. */
int engine_render(store_tx *tx, const case_row *c, const char *label, json_t **out, err_t *e);

/* What a move of a case opened from a referral brings along (referrals.c
 * registers it): decided on the snapshot after the move was. */
typedef int (*engine_move_observer)(store_tx *snap, const case_row *after, engine_extra *out, err_t *e);
void engine_observe_moves(engine_move_observer fn);

/* A unit of work that found its case changed since the decision: the
 * decision is made again (at most ENGINE_RETRIES times). */
#define ENGINE_RETRIES 4
bool engine_changed(const err_t *e);

/* Plugin generations (generations.c): the kept ones loaded from the store,
 * the reloader's hooks set; 0, or -1 with err. */
int generations_init(const config *cfg, char *err, size_t errlen);

/* A shadow replay of every case's recorded decisions: baseline against
 * candidate (replay.c), on a thread of its own. The report as
 * process_plugins_replay answers it. */
int process_replay_sets(struct gen *baseline, struct gen *candidate, const char *region, int max_examples,
                        json_t **report, err_t *e);
void replay_init(const config *cfg);
/* The day a recorded time fell on in Korea (UTC+9): YYYY-MM-DD. */
void replay_day_of(const char *rfc3339, char out[11]);

#endif
