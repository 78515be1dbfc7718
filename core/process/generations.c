/*
 * generations.c: reloading the plugin set, and what becomes of the open
 * cases when it changes. Every case records the generation it runs under
 * (cases.plugin_generation). On a reload the administrator chooses:
 *
 *   migrate  every open case follows the new rules from now on; a deadline
 *            the old rules declared moves with the new declaration (the
 *            same start, the new offset) or goes when the new rules no
 *            longer declare it; each case so changed gets an event saying
 *            so. A dry run lists the cases whose deadlines and allowed
 *            moves change.
 *   stay     every open case keeps the generation it runs under until it
 *            closes: the server keeps that generation loaded (its files in
 *            the store, so a restart loads it again) and retires it when
 *            no open case uses it; at most plugins.max_generations at once.
 *
 * The choice, with the generations and the number of cases, goes into the
 * audit trail in the same transaction that applies it. A reload may also
 * require a shadow replay (replay.c) to find no unexpected difference.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "lua/host.h"
#include "process/internal.h"
#include "store/history.h"
#include "store/store.h"

#define PLAN_EXAMPLES 100 /* cases a migration plan lists */
#define PLAN_PAGE 500
#define APPLY_CHUNK 200   /* cases rescheduled per unit of work */

static config g_cfg;
static pthread_mutex_t reload_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- reading what open cases run under ---- */
static int work_groups(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    store_err se = {0};
    return store_open_case_groups(tx, arg, &se) ? process_store_fail(&se, e) : 0;
}

static int open_groups(open_case_groups *g, err_t *e)
{
    store_reply none = {0};
    return process_read(work_groups, g, &none, e);
}

/* Open cases per loaded generation: {id: n}; cases on a generation no
 * longer loaded run under the serving one and count there. */
static json_t *open_counts(const open_case_groups *g, const char *serving)
{
    json_t *counts = json_object();
    for (size_t i = 0; i < g->n; i++) {
        luagen *lg = luahost_loaded(g->items[i].generation);
        const char *id = lg ? luagen_id(lg) : serving;
        json_object_set_new(counts, id, json_integer(json_integer_value(json_object_get(counts, id)) + g->items[i].n));
        if (lg) luagen_unref(lg);
    }
    return counts;
}

/* ---- retiring ---- */
static int work_retire(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    store_err se = {0};
    return store_generation_retire(tx, arg, &se) ? process_store_fail(&se, e) : 0;
}

int process_generations_sweep(err_t *e)
{
    json_t *gens = luahost_generations_json();
    if (json_array_size(gens) < 2) { /* the serving one alone */
        json_decref(gens);
        return 0;
    }
    open_case_groups g;
    int rc = open_groups(&g, e);
    if (!rc) {
        const char *serving = json_string_value(json_object_get(json_array_get(gens, 0), "id"));
        json_t *counts = open_counts(&g, serving);
        size_t i;
        json_t *x;
        json_array_foreach(gens, i, x) {
            const char *id = json_string_value(json_object_get(x, "id"));
            if (json_is_true(json_object_get(x, "serving")) || json_integer_value(json_object_get(counts, id)) > 0)
                continue;
            store_reply none = {0};
            if ((rc = process_write(NULL, work_retire, (void *)id, &none, e))) break;
            luahost_retire(id);
        }
        json_decref(counts);
        open_case_groups_free(&g);
    }
    json_decref(gens);
    return rc;
}

/* ---- the listing ---- */
int process_plugins(store_reply *reply, err_t *e)
{
    if (process_generations_sweep(e)) return -1;
    json_t *body = luahost_plugins_json(), *gens = luahost_generations_json();
    open_case_groups g;
    if (open_groups(&g, e)) {
        json_decref(body);
        json_decref(gens);
        return -1;
    }
    json_t *counts = open_counts(&g, json_string_value(json_object_get(body, "generation")));
    size_t i;
    json_t *x;
    json_array_foreach(gens, i, x) {
        json_t *n = json_object_get(counts, json_string_value(json_object_get(x, "id")));
        json_object_set_new(x, "open_cases", json_integer(n ? json_integer_value(n) : 0));
    }
    json_object_set_new(body, "generations", gens);
    json_object_set_new(body, "max_generations", json_integer(g_cfg.plugins_max_generations));
    json_object_set_new(body, "open_cases_default", json_string(g_cfg.plugins_stay ? "stay" : "migrate"));
    json_decref(counts);
    open_case_groups_free(&g);
    reply->status = 200;
    reply->body = body;
    return 0;
}

/* ---- migrating: what moves with the new rules ---- */
static json_t *decl_of(json_t *decls, const char *program, const char *region)
{
    char key[96];
    snprintf(key, sizeof key, "%s@%s", program, region);
    json_t *d = json_object_get(decls, key);
    return d ? d : json_object_get(decls, program);
}

/* The stages in a but not in b. */
static json_t *minus(json_t *a, json_t *b)
{
    json_t *out = json_array();
    size_t i, j;
    json_t *x, *y;
    json_array_foreach(a, i, x) {
        bool found = false;
        json_array_foreach(b, j, y) found = found || json_equal(x, y);
        if (!found) json_array_append(out, x);
    }
    return out;
}

/* A due date under a declaration's offset, from the one an old offset gave:
 * the day it started is the old due date less the old offset. */
static bool moved_due(const char *due, json_t *old_off, json_t *new_off, char out[11])
{
    char base[11], tmp[11];
    str_copy(base, sizeof base, due);
    json_int_t om = json_integer_value(json_object_get(old_off, "months")), od = json_integer_value(json_object_get(old_off, "days"));
    json_int_t nm = json_integer_value(json_object_get(new_off, "months")), nd = json_integer_value(json_object_get(new_off, "days"));
    if (od && !date_add_days(base, -(long)od, tmp)) return false;
    if (od) memcpy(base, tmp, sizeof base);
    if (om && !date_add_months(base, -(long)om, tmp)) return false;
    if (om) memcpy(base, tmp, sizeof base);
    if (nm && !date_add_months(base, (long)nm, tmp)) return false;
    if (nm) memcpy(base, tmp, sizeof base);
    if (nd && !date_add_days(base, (long)nd, tmp)) return false;
    if (nd) memcpy(base, tmp, sizeof base);
    memcpy(out, base, 11);
    return true;
}

typedef struct {
    luagen *serving, *cand;
    json_t *changes;     /* every case that changes: [{case_id, program, region, stage, from_generation,
                          * deadlines [{kind, due_on, new_due_on|null, label}], moves_added, moves_removed}] */
    long long open_cases, deadlines_moved, deadlines_dropped, moves_changed;
    json_t *by_program;  /* "program@region" -> counts */
} migration;

static void count(migration *m, const case_row *c, const char *key, long long n)
{
    char k[96];
    snprintf(k, sizeof k, "%s@%s", c->program, c->region);
    json_t *p = json_object_get(m->by_program, k);
    if (!p) {
        p = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "program", c->program, "region", c->region, "changing", 0,
                      "deadlines_moved", 0, "deadlines_dropped", 0, "moves_changed", 0);
        json_object_set_new(m->by_program, k, p);
    }
    json_object_set_new(p, key, json_integer(json_integer_value(json_object_get(p, key)) + n));
}

typedef struct {
    migration *m;
    const open_case_group *group;
    json_t *old, *new_;
    char after[STORE_KEY_MAX];
    bool more;
} plan_page;

/* One page of a group's open cases: what the new rules change of each. */
static int work_plan_page(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    plan_page *pp = arg;
    case_list cases;
    store_err se = {0};
    if (store_open_cases(tx, pp->group->program, pp->group->region, pp->group->generation, PLAN_PAGE,
                         pp->after[0] ? pp->after : NULL, &cases, &se))
        return process_store_fail(&se, e);
    pp->more = cases.more;
    str_copy(pp->after, sizeof pp->after, cases.last);
    json_t *old_tr = json_object_get(pp->old, "transitions"), *new_tr = json_object_get(pp->new_, "transitions");
    json_t *old_dl = json_object_get(pp->old, "deadlines"), *new_dl = json_object_get(pp->new_, "deadlines");
    for (size_t i = 0; i < cases.n; i++) {
        const case_row *c = &cases.items[i];
        json_t *from_old = json_object_get(old_tr, c->stage), *from_new = json_object_get(new_tr, c->stage);
        json_t *added = minus(from_new, from_old), *removed = minus(from_old, from_new), *dls = json_array();
        deadline_list due;
        if (store_case_due(tx, c->id, &due, &se)) {
            json_decref(added);
            json_decref(removed);
            json_decref(dls);
            case_list_free(&cases);
            return process_store_fail(&se, e);
        }
        long long moved = 0, dropped = 0;
        for (size_t k = 0; k < due.n; k++) {
            const deadline_row *d = &due.items[k];
            json_t *od = json_object_get(old_dl, d->kind), *nd = json_object_get(new_dl, d->kind);
            if (!od) continue; /* set by a rule's code, not declared: it stays */
            if (!nd) {
                json_array_append_new(dls, json_pack("{s:s, s:s, s:n, s:s}", "kind", d->kind, "due_on", d->due_on,
                                                     "new_due_on", "label", d->label));
                dropped++;
                continue;
            }
            char to[11];
            const char *label = json_string_value(json_object_get(nd, "label"));
            if (!moved_due(d->due_on, json_object_get(od, "offset"), json_object_get(nd, "offset"), to)) continue;
            if (strcmp(to, d->due_on) || (label && strcmp(label, d->label))) {
                json_array_append_new(dls, json_pack("{s:s, s:s, s:s, s:s}", "kind", d->kind, "due_on", d->due_on,
                                                     "new_due_on", to, "label", label ? label : d->label));
                moved++;
            }
        }
        deadline_list_free(&due);
        bool moves = json_array_size(added) || json_array_size(removed);
        if (json_array_size(dls) || moves) {
            json_array_append_new(pp->m->changes,
                                  json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "case_id", c->id, "program",
                                            c->program, "region", c->region, "stage", c->stage, "from_generation",
                                            c->generation, "deadlines", dls, "moves_added", added, "moves_removed",
                                            removed));
            pp->m->deadlines_moved += moved;
            pp->m->deadlines_dropped += dropped;
            pp->m->moves_changed += moves;
            count(pp->m, c, "changing", 1);
            count(pp->m, c, "deadlines_moved", moved);
            count(pp->m, c, "deadlines_dropped", dropped);
            count(pp->m, c, "moves_changed", moves);
        } else {
            json_decref(dls);
            json_decref(added);
            json_decref(removed);
        }
    }
    case_list_free(&cases);
    return 0;
}

/* What migrating every open case to the candidate changes. */
static int plan_migration(migration *m, const open_case_groups *g, err_t *e)
{
    m->changes = json_array();
    m->by_program = json_object();
    json_t *cand_decls = luagen_decls(m->cand);
    for (size_t i = 0; i < g->n; i++) {
        const open_case_group *gr = &g->items[i];
        m->open_cases += gr->n;
        luagen *on = luahost_loaded(gr->generation);
        json_t *old = decl_of(luagen_decls(on ? on : m->serving), gr->program, gr->region);
        json_t *new_ = decl_of(cand_decls, gr->program, gr->region);
        bool same = (!old && !new_) || (old && new_ && json_equal(old, new_));
        if (on) luagen_unref(on);
        if (same) continue;
        json_t *empty = json_object();
        plan_page pp = {.m = m, .group = gr, .old = old ? old : empty, .new_ = new_ ? new_ : empty};
        do {
            store_reply none = {0};
            if (process_read(work_plan_page, &pp, &none, e)) {
                json_decref(empty);
                return -1;
            }
        } while (pp.more);
        json_decref(empty);
    }
    return 0;
}

static void migration_free(migration *m)
{
    json_decref(m->changes);
    json_decref(m->by_program);
}

static json_t *migration_json(const migration *m)
{
    json_t *cases = json_array(), *by = json_array();
    size_t n = json_array_size(m->changes);
    for (size_t i = 0; i < n && i < PLAN_EXAMPLES; i++) json_array_append(cases, json_array_get(m->changes, i));
    const char *k;
    json_t *v;
    json_object_foreach(m->by_program, k, v) json_array_append(by, v);
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:b}", "open_cases", m->open_cases, "changing",
                     (json_int_t)n, "deadlines_moved", m->deadlines_moved, "deadlines_dropped", m->deadlines_dropped,
                     "moves_changed", m->moves_changed, "by_program", by, "cases", cases, "cases_truncated",
                     n > PLAN_EXAMPLES);
}

/* ---- applying ---- */
typedef struct {
    const plugins_reload_in *in;
    migration *m;
    size_t from, to;         /* the changes this unit reschedules */
    const char *gen_to;
    bool stay;
    luagen *serving, *cand;
    json_t *kept;            /* loaded generations (ids) */
    long long pinned;        /* cases pinned or migrated */
} apply_arg;

static const char *actor_of(const plugins_reload_in *in) { return in->by ? in->by->user : "system"; }

static int work_reschedule(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    apply_arg *a = arg;
    store_err se = {0};
    for (size_t i = a->from; i < a->to; i++) {
        json_t *ch = json_array_get(a->m->changes, i);
        const char *cid = json_string_value(json_object_get(ch, "case_id"));
        json_t *done = json_array();
        size_t k;
        json_t *d;
        json_array_foreach(json_object_get(ch, "deadlines"), k, d) {
            long long n = 0;
            if (store_deadline_reschedule(tx, cid, json_string_value(json_object_get(d, "kind")),
                                          json_string_value(json_object_get(d, "due_on")),
                                          json_string_value(json_object_get(d, "new_due_on")),
                                          json_string_value(json_object_get(d, "label")), &n, &se)) {
                json_decref(done);
                return process_store_fail(&se, e);
            }
            if (n) json_array_append(done, d);
        }
        if (json_array_size(done)) { /* the case's history says why its deadlines moved */
            json_t *data = json_pack("{s:s, s:s, s:o}", "from_generation",
                                     json_string_value(json_object_get(ch, "from_generation")), "to_generation",
                                     a->gen_to, "deadlines", done);
            const char *stage = json_string_value(json_object_get(ch, "stage"));
            event_in ev = {.case_id = cid, .actor = actor_of(a->in), .type = "rules_migrated", .from_stage = stage,
                           .to_stage = stage, .data = data, .generation = a->gen_to};
            int rc = store_event_append(tx, &ev, &se);
            json_decref(data);
            if (rc) return process_store_fail(&se, e);
        } else {
            json_decref(done);
        }
    }
    return 0;
}

/* The last unit: the cases' generation, the generations kept, the audit. */
static int work_switch(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    apply_arg *a = arg;
    store_err se = {0};
    size_t i;
    json_t *x;
    if (a->stay) {
        json_t *files = luagen_files(a->serving);
        int rc = store_generation_keep(tx, luagen_id(a->serving), luagen_hash(a->serving), files, &se);
        json_decref(files);
        if (rc) return process_store_fail(&se, e);
        const char *loaded[16];
        int n = 0;
        json_array_foreach(a->kept, i, x) if (n < 16) loaded[n++] = json_string_value(json_object_get(x, "id"));
        if (store_cases_pin(tx, luagen_id(a->serving), loaded, n, &a->pinned, &se)) return process_store_fail(&se, e);
    } else {
        if (store_cases_migrate(tx, a->gen_to, &a->pinned, &se)) return process_store_fail(&se, e);
        json_array_foreach(a->kept, i, x) {
            if (json_is_true(json_object_get(x, "serving"))) continue;
            if (store_generation_retire(tx, json_string_value(json_object_get(x, "id")), &se))
                return process_store_fail(&se, e);
        }
    }
    char purpose[300];
    snprintf(purpose, sizeof purpose, "plugins reload: open_cases=%s generation=%s from=%s cases=%lld%s",
             a->stay ? "stay" : "migrate", a->gen_to, luagen_id(a->serving),
             a->stay ? 0LL : (long long)json_array_size(a->m->changes), a->in->require_replay ? " replayed" : "");
    audit_entry au = {.actor = actor_of(a->in), .org = a->in->by ? a->in->by->org : "-",
                      .role = a->in->by ? a->in->by->role : "system", .action = "POST /v1/admin/plugins/reload",
                      .purpose = purpose, .request_id = a->in->request_id ? a->in->request_id : "signal",
                      .status = 200};
    if (store_audit_append(tx, &au, &se)) return process_store_fail(&se, e);
    return 0;
}

/* ---- the reload ---- */
static json_t *result(luagen *g, bool changed, const char *choice, bool dry)
{
    return json_pack("{s:s, s:s, s:b, s:s, s:b, s:O}", "generation", luagen_id(g), "hash", luagen_hash(g), "changed",
                     changed, "open_cases", choice, "dry_run", dry, "plugins", luagen_plugins(g));
}

int process_plugins_reload(const plugins_reload_in *in, store_reply *reply, err_t *e)
{
    bool stay = in->open_cases ? !strcmp(in->open_cases, "stay") : g_cfg.plugins_stay;
    const char *choice = stay ? "stay" : "migrate";
    pthread_mutex_lock(&reload_mu);
    luagen *serving = luahost_serving(), *cand = NULL;
    json_t *errors = NULL, *report = NULL, *kept = NULL, *body = NULL;
    migration m = {0};
    open_case_groups groups = {0};
    int rc = -1;
    if (!serving) {
        err_set(e, 503, "not_ready", "no plugin generation is loaded");
        goto done;
    }
    luahost_source src = {.dir = g_cfg.plugins, .tests = true};
    int c = luahost_candidate(&src, &cand, &errors, e);
    if (c < 0) goto done;
    if (c > 0) {
        err_set(e, 422, "plugin_invalid", "the plugin set is invalid (%zu errors); the serving generation is unchanged",
                json_array_size(errors));
        err_detail(e, "errors", json_incref(errors));
        if (!in->dry_run) luahost_note_refused(errors);
        goto done;
    }
    if (cand == serving) {
        if (!in->dry_run) luahost_note_unchanged();
        body = result(cand, false, choice, in->dry_run);
        rc = 0;
        goto done;
    }
    if (in->require_replay) {
        if (process_replay_sets(serving, cand, in->by && in->by->region[0] ? in->by->region : NULL, 20, &report, e))
            goto done;
        bool clean = json_integer_value(json_object_get(report, "differences")) == 0 &&
                     json_is_true(json_object_get(report, "complete"));
        const char *digest = json_string_value(json_object_get(report, "digest"));
        bool expected = in->expected_digest && digest && json_is_true(json_object_get(report, "complete")) &&
                        !strcmp(in->expected_digest, digest);
        if (!clean && !expected) {
            if (!json_is_true(json_object_get(report, "complete")))
                err_set(e, 409, "replay_differs", "the replay did not finish within replay.timeout_ms; nothing was published");
            else if (in->expected_digest)
                err_set(e, 409, "replay_differs", "the replay found %lld differences, not the ones expected (digest %s); "
                        "nothing was published", (long long)json_integer_value(json_object_get(report, "differences")),
                        digest ? digest : "?");
            else
                err_set(e, 409, "replay_differs", "the replay found %lld decisions that would differ; nothing was "
                        "published (review them, then reload with expected_digest)",
                        (long long)json_integer_value(json_object_get(report, "differences")));
            err_detail(e, "replay", json_incref(report));
            goto done;
        }
    }
    if (open_groups(&groups, e)) goto done;
    kept = luahost_generations_json();
    json_t *counts = open_counts(&groups, luagen_id(serving));
    json_t *plan;
    if (stay) {
        /* loaded after: the generations open cases run under, and the new one */
        int after = 1;
        json_t *list = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(kept, i, x) {
            const char *id = json_string_value(json_object_get(x, "id"));
            json_int_t n = json_integer_value(json_object_get(counts, id));
            if (n > 0 && strcmp(id, luagen_id(cand))) after++;
            json_array_append_new(list, json_pack("{s:s, s:b, s:I}", "id", id, "serving",
                                                  json_is_true(json_object_get(x, "serving")), "open_cases", n));
        }
        if (after > g_cfg.plugins_max_generations) {
            err_set(e, 409, "too_many_generations",
                    "keeping the open cases on their rules would load %d generations (plugins.max_generations is "
                    "%d): migrate them, or wait until the cases of an older generation close",
                    after, g_cfg.plugins_max_generations);
            err_detail(e, "generations", list);
            err_detail(e, "max_generations", json_integer(g_cfg.plugins_max_generations));
            json_decref(counts);
            goto done;
        }
        plan = json_pack("{s:o, s:i, s:i}", "generations", list, "loaded_after", after, "max_generations",
                         g_cfg.plugins_max_generations);
    } else {
        m.serving = serving;
        m.cand = cand;
        if (plan_migration(&m, &groups, e)) {
            json_decref(counts);
            goto done;
        }
        plan = migration_json(&m);
    }
    json_decref(counts);
    body = result(cand, true, choice, in->dry_run);
    json_object_set_new(body, stay ? "stay" : "migration", plan);
    if (report) json_object_set(body, "replay", report);
    if (in->dry_run) {
        json_object_set_new(body, "serving", json_string(luagen_id(serving)));
        rc = 0;
        goto done;
    }
    apply_arg a = {.in = in, .m = &m, .gen_to = luagen_id(cand), .stay = stay, .serving = serving, .cand = cand,
                   .kept = kept};
    size_t n = stay ? 0 : json_array_size(m.changes);
    for (a.from = 0; a.from < n; a.from = a.to) {
        a.to = a.from + APPLY_CHUNK < n ? a.from + APPLY_CHUNK : n;
        store_reply none = {0};
        if (process_write(NULL, work_reschedule, &a, &none, e)) goto done;
    }
    store_reply none = {0};
    if (process_write(NULL, work_switch, &a, &none, e)) goto done;
    luahost_publish(cand, stay);
    json_object_set_new(body, "cases_switched", json_integer(a.pinned));
    log_msg(LOG_INFO, "plugins: reload", " generation=%s from=%s open_cases=%s by=%s", luagen_id(cand),
            luagen_id(serving), choice, actor_of(in));
    err_t se = {0};
    if (process_generations_sweep(&se)) { /* a generation left with no case retires at the next sweep */
        log_msg(LOG_WARN, "plugins: sweep after reload failed", " error=\"%s\"", se.message);
        err_clear(&se);
    }
    rc = 0;
done:
    if (rc == 0) {
        reply->status = 200;
        reply->body = body;
        body = NULL;
    }
    pthread_mutex_unlock(&reload_mu);
    json_decref(body);
    json_decref(errors);
    json_decref(report);
    json_decref(kept);
    migration_free(&m);
    open_case_groups_free(&groups);
    if (cand) luagen_unref(cand);
    if (serving) luagen_unref(serving);
    return rc;
}

/* ---- SIGHUP, the file watch, the periodic sweep ---- */
static void reload_hook(void)
{
    plugins_reload_in in = {0};
    store_reply reply = {0};
    err_t e = {0};
    if (process_plugins_reload(&in, &reply, &e) == 0)
        log_msg(LOG_INFO, "plugins: reload done", " generation=%s changed=%s",
                json_string_value(json_object_get(reply.body, "generation")),
                json_is_true(json_object_get(reply.body, "changed")) ? "true" : "false");
    else if (e.status != 422)
        log_msg(LOG_WARN, "plugins: reload failed", " error=\"%s\"", e.message);
    store_reply_clear(&reply);
    err_clear(&e);
}

static void tick_hook(void)
{
    err_t e = {0};
    if (process_generations_sweep(&e)) log_msg(LOG_WARN, "plugins: sweep failed", " error=\"%s\"", e.message);
    err_clear(&e);
}

static void thread_done_hook(void) { store_thread_done(); }

static int work_kept(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    store_err se = {0};
    return store_generations_kept(tx, arg, &se) ? process_store_fail(&se, e) : 0;
}

int generations_init(const config *cfg, char *err, size_t errlen)
{
    g_cfg = *cfg;
    replay_init(cfg);
    if (!store_ready()) return 0; /* tooling without a store */
    /* The generations open cases stay on, as the store kept them. */
    generation_list kept;
    err_t e = {0};
    store_reply none = {0};
    if (process_read(work_kept, &kept, &none, &e)) {
        snprintf(err, errlen, "plugin generations: %s", e.message);
        err_clear(&e);
        return -1;
    }
    for (size_t i = 0; i < kept.n; i++) {
        char why[600];
        if (luahost_keep_files(kept.items[i].id, kept.items[i].files, why, sizeof why))
            log_msg(LOG_WARN, "plugins: a kept generation does not load; its open cases run under the serving one",
                    " generation=%s error=\"%s\"", kept.items[i].id, why);
    }
    generation_list_free(&kept);
    if (process_generations_sweep(&e)) {
        log_msg(LOG_WARN, "plugins: sweep failed", " error=\"%s\"", e.message);
        err_clear(&e);
    }
    luahost_hooks h = {.reload = reload_hook, .tick = tick_hook, .thread_done = thread_done_hook, .tick_ms = 30000};
    luahost_set_hooks(&h);
    return 0;
}
