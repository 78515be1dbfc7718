/* internal.h: what rules.c shares with views.c; not part of rules.h. */
#ifndef SARYE_RULES_INTERNAL_H
#define SARYE_RULES_INTERNAL_H

#include <lua.h>
#include <stdint.h>

#include "lua/vm.h"
#include "rules/rules.h"

struct gov_ticket;

/* What the views of one question read: the facts it was given, the person
 * it is about (look-ups: their consents decide what may leave), and its
 * governor ticket (given up while a look-up waits on an agency). */
typedef struct {
    const rules_facts *f;
    const char *person_id;     /* look-ups and prepare: the case's person */
    const char *key;           /* the region (or agency) the call runs for */
    struct gov_ticket *ticket;
} view_ctx;

/* The views the VM's host functions read through (views.c). */
extern const luavm_views rules_views;

/* The governor (governor.c): a plugin call on behalf of a region (or an
 * agency) enters before it runs and leaves with what it used. */
typedef struct gov_ticket {
    int slot;         /* -1: ungoverned */
    int64_t cpu0;     /* the thread's CPU clock at entry */
    int64_t wall0;    /* the monotonic clock at entry */
} gov_ticket;
void governor_init(const config *cfg);
/* 0, or -1 with e (503 region_busy / region_suspended, details.retry_after). */
int governor_enter(const char *key, gov_ticket *t, err_t *e);
/* killed: the call ran past its CPU budget (a strike). */
void governor_leave(gov_ticket *t, bool killed);
/* A call that waits on something else (an agency's answer) uses no CPU:
 * it gives its place up while it waits (pause: the CPU so far is charged)
 * and comes back after without waiting (resume: a call under way is let
 * back in even past the region's concurrency; it is short). */
void governor_pause(gov_ticket *t, int *slot);
void governor_resume(gov_ticket *t, int slot);
char *governor_metrics(void);
/* Calls of region key waiting now (tests). */
int governor_waiting(const char *key);

/* Pushes a case row as the Lua table plugins see. */
void rules_push_case(lua_State *L, const case_row *c);
/* Lua values of a question and its verdict (rules.c), shared with
 * replay.c. */
void rules_set_str(lua_State *L, const char *k, const char *v);
int rules_set_json(lua_State *L, const char *k, json_t *j);
void rules_push_actor(lua_State *L, const principal *p);
/* The value of field k of the table at t as JSON (NULL when nil). A value
 * that cannot be JSON, or is larger than LUAVM_ANSWER_MAX: NULL, and the
 * verdict v (if given) fails naming k and why. */
json_t *rules_get_json(lua_State *L, int t, const char *k, rules_verdict *v);
void rules_read_verdict(lua_State *L, rules_verdict *v);

/* One question about a case (or, with no case, an agency's), asked through
 * luavm_ask: its input table carries the case, today and who asks, and the
 * rest more() lays (0, or -1 when a JSON part is nested too deeply: the
 * verdict is then RULES_INVALID naming field). The answer's verdict goes
 * into v, and its fields want[] (read only when it is RULES_OK, unless
 * want_always) into got[] as JSON, which the caller owns. */
typedef struct {
    luavm_entry entry;
    int fields;                 /* size hint of the input table */
    const case_row *c;          /* NULL: no case, today or actor */
    const principal *actor;
    const char *today;          /* NULL: the server's today; "": none */
    int (*more)(lua_State *L, const void *in);
    const void *in;
    const char *field;          /* named when the input cannot be laid ("data" if NULL) */
    const char *want[2];
    json_t *got[2];
    bool want_always;
    int wall_ms;                /* 0: no wall budget of its own (luavm_pcall_wall) */
    rules_verdict *v;
} rules_question;
/* 0 (RULES_OK) or -1, v set either way; a failure of the call (budget,
 * memory, an agency that did not answer) is a verdict too. */
int rules_question_ask(luavm *vm, rules_question *q);
void rules_verdict_from_err(rules_verdict *v, const err_t *e);

/* What look-ups (agencies, before any transaction) may take: half the
 * request timeout. */
int rules_lookup_budget_ms(void);

#endif
