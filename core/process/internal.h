/* internal.h: what process.c shares with casework.c; not part of the
 * process header. */
#ifndef SARYE_PROCESS_INTERNAL_H
#define SARYE_PROCESS_INTERNAL_H

#include "lua/host.h"
#include "process/process.h"

/* Moves c (already loaded inside tx, version checked) per in: the core
 * invariants, the program's and region's rules, the update, its event and
 * its deadlines. On success c is the updated case. */
int process_apply_transition(store_tx *tx, luavm *vm, const principal *p, case_row *c, const transition_in *in,
                             json_t *prepared, err_t *e);
/* Opens a case inside tx: person visible, program offered and defined,
 * eligibility, the first stage, the "opened" event, opening deadlines. */
int process_open_in_tx(store_tx *tx, luavm *vm, const principal *p, const case_open_in *in, case_row *out,
                       err_t *e);
/* A case opened from a referral moved (c is the case after the move): a
 * referring agency hears of every step; at closure the referrer is told. */
int process_referral_case_moved(store_tx *tx, luavm *vm, const case_row *c, err_t *e);
/* The case as the API shows it (stage label, open deadlines). */
int process_case_render(store_tx *tx, luavm *vm, const case_row *c, json_t **out, err_t *e);
/* Applies the effects a rule asked for: deadlines ({set: [...], clear:
 * [...]}) and messages to agencies ({outbox: [{agency, payload}]}). */
int process_apply_deadlines(store_tx *tx, const case_row *c, json_t *effects, err_t *e);
/* Completes a 500 from a plugin failure result of host.lua. */
void process_plugin_failed(json_t *result, err_t *e);

#endif
