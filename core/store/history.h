/*
 * history: what the plugin host's generations and shadow replay read and
 * write of the store (history.c). Plugin generations that open cases stay
 * on are kept here with their files, so that a restart loads them again;
 * which generation each open case runs under is the case row's
 * plugin_generation. Replay reads every case's recorded history, whole:
 * its deadlines as they were set and cleared, besides what records.h
 * gives (events, records, meetings, the person).
 *
 * Conventions as records.h: rows own their text (`mem`) and JSON, each
 * function returns 0 or -1 with e.
 */
#ifndef SARYE_STORE_HISTORY_H
#define SARYE_STORE_HISTORY_H

#include "store/records.h"

/* ---- generations kept for open cases ---- */
typedef struct {
    char *mem;
    const char *id, *hash, *kept_at;
    json_t *files; /* [{path, text}] */
} generation_row;
void generation_row_free(generation_row *g);

typedef struct {
    generation_row *items;
    size_t n;
} generation_list;
void generation_list_free(generation_list *l);

/* Records that open cases stay on generation id (files: [{path, text}]). */
int store_generation_keep(store_tx *tx, const char *id, const char *hash, json_t *files, store_err *e);
/* No open case uses it any more: its files go, its row stays. */
int store_generation_retire(store_tx *tx, const char *id, store_err *e);
/* The generations kept and not retired, oldest first. */
int store_generations_kept(store_tx *tx, generation_list *out, store_err *e);

/* Open cases (not ended) by the generation they run under. */
typedef struct {
    char program[64], region[16], generation[72]; /* generation: "" when none is recorded */
    long long n;
} open_case_group;
typedef struct {
    open_case_group *items;
    size_t n;
} open_case_groups;
void open_case_groups_free(open_case_groups *g);
int store_open_case_groups(store_tx *tx, open_case_groups *out, store_err *e);
/* A page of the open cases of program in region on generation ("": none
 * recorded), by id after `after`. */
int store_open_cases(store_tx *tx, const char *program, const char *region, const char *generation, int limit,
                     const char *after, case_list *out, store_err *e);
/* Moves every open case to generation to (migrate): *n cases changed. */
int store_cases_migrate(store_tx *tx, const char *to, long long *n, store_err *e);
/* Pins the open cases whose generation is none of loaded (n_loaded, at
 * most 16) to generation to (they ran under it): *n cases changed. */
int store_cases_pin(store_tx *tx, const char *to, const char *const *loaded, int n_loaded, long long *n,
                    store_err *e);

/* Moves the open deadline of kind of a case that is due on due_was to
 * due_on with label (due_on NULL: clears it); *n is 0 when there is no
 * such deadline any more (the case moved on meanwhile). */
int store_deadline_reschedule(store_tx *tx, const char *case_id, const char *kind, const char *due_was,
                              const char *due_on, const char *label, long long *n, store_err *e);

/* ---- replay ---- */
/* A page of every case (any organisation), by id after `after`. */
int store_cases_all(store_tx *tx, int limit, const char *after, case_list *out, store_err *e);

/* A deadline of a case as it was set, and cleared (NULL while open). */
typedef struct {
    char *mem;
    const char *kind, *label, *due_on, *plugin, *created_at, *cleared_at;
} deadline_hist_row;
typedef struct {
    deadline_hist_row *items;
    size_t n;
} deadline_hist_list;
void deadline_hist_list_free(deadline_hist_list *l);
/* Every deadline a case ever had, oldest first. */
int store_case_deadline_history(store_tx *tx, const char *case_id, deadline_hist_list *out, store_err *e);

#endif
