/*
 * replay.c: recorded decisions asked again of a plugin set (shadow replay).
 * Each replayer owns a VM of its set, built apart from the serving
 * threads' and run on the caller's thread (process/replay.c runs it on a
 * thread of its own): the same sandbox, memory cap and CPU budget per
 * call, and no region governor (it serves no request). What the rules read
 * of the case comes through the views the caller gives: the case's events
 * before the decision and the queries as they would have answered then;
 * sarye.date.today() answers the day the decision was made. What the rules
 * log is dropped: a replayed decision is not one the server made.
 */
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/host.h"
#include "lua/vm.h"
#include "rules/internal.h"

struct rules_replayer {
    luagen *set;
    luavm *vm;
};

/* The views of one replayed decision, as the VM's host functions call them. */
typedef struct {
    const rules_replay_views *views;
    void *ud;
} replay_ud;

static json_t *v_history(void *ud, const char *case_id)
{
    (void)case_id; /* the case replayed; another case's history is not the rules' to read */
    replay_ud *r = ud;
    return r->views->history ? r->views->history(r->ud) : NULL;
}

static json_t *v_query(void *ud, const char *name, json_t *params, char *why, size_t whylen)
{
    replay_ud *r = ud;
    return r->views->query ? r->views->query(r->ud, name, params, why, whylen) : json_array();
}

static const luavm_views replay_views = {.history = v_history, .query = v_query};

rules_replayer *rules_replayer_new(rules_set *set, err_t *e)
{
    rules_replayer *r = calloc(1, sizeof *r);
    char err[300];
    if (!r) {
        err_set(e, 500, "internal_error", "out of memory");
        return NULL;
    }
    luagen_ref(set);
    r->set = set;
    r->vm = luahost_vm_of(set, err, sizeof err);
    if (!r->vm) {
        err_set(e, 500, "internal_error", "%s", err);
        rules_replayer_free(r);
        return NULL;
    }
    r->vm->mute_log = true;
    return r;
}

void rules_replayer_free(rules_replayer *r)
{
    if (!r) return;
    luahost_vm_free(r->vm);
    luagen_unref(r->set);
    free(r);
}

static const char *const STEP_NAMES[] = {[RULES_STEP_OPEN] = "open", [RULES_STEP_MOVE] = "move",
                                         [RULES_STEP_RECORD] = "record"};

/* The rest of a replayed step's input: what it was, with what it carried. */
static int more_step(lua_State *L, const void *in)
{
    const rules_step *s = in;
    rules_set_str(L, "step", STEP_NAMES[s->kind]);
    rules_set_str(L, "to", s->to);
    lua_pushboolean(L, s->reopen);
    lua_setfield(L, -2, "reopen");
    rules_set_str(L, "note", s->note);
    rules_set_str(L, "kind", s->record_kind);
    rules_set_str(L, "subkind", s->subkind);
    if (rules_set_json(L, "data", s->data) || rules_set_json(L, "record", s->record) ||
        rules_set_json(L, "person", s->person))
        return -1;
    if (!s->person) { /* no person on record: the rules read an empty one */
        lua_newtable(L);
        lua_setfield(L, -2, "person");
    }
    if (s->kind == RULES_STEP_OPEN) { /* the "open" record */
        lua_createtable(L, 0, 2);
        rules_set_str(L, "source", s->c->source);
        rules_set_str(L, "referral_id", s->c->referral_id);
        lua_setfield(L, -2, "record");
    }
    return 0;
}

int rules_replay(rules_replayer *r, const rules_step *s, const rules_replay_views *views, void *ud,
                 rules_verdict *v, json_t **offered, err_t *e)
{
    memset(v, 0, sizeof *v);
    *offered = NULL;
    if (!r->vm) { /* a call that poisoned it: a fresh VM of the same set */
        char err[300];
        r->vm = luahost_vm_of(r->set, err, sizeof err);
        if (!r->vm) return err_set(e, 500, "internal_error", "%s", err), -1;
        r->vm->mute_log = true;
    }
    luavm *vm = r->vm;
    str_copy(v->generation, sizeof v->generation, luagen_id(r->set));
    replay_ud rud = {views, ud};
    luavm_bind_views(vm, &replay_views, &rud);
    str_copy(vm->today, sizeof vm->today, s->today ? s->today : "");
    rules_question q = {.entry = LV_REPLAY_STEP, .fields = 14, .c = s->c, .actor = s->actor,
                        .today = s->today ? s->today : "", .more = more_step, .in = s, .field = "data",
                        .want = {"offered"}, .want_always = true, .v = v};
    rules_question_ask(vm, &q);
    *offered = q.got[0];
    luavm_bind_views(vm, NULL, NULL);
    vm->today[0] = 0;
    if (vm->poisoned) {
        luahost_vm_free(vm);
        r->vm = NULL;
    }
    return 0;
}
