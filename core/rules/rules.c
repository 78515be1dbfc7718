/*
 * rules.c: asking the plugins. Each question pushes its typed inputs as Lua
 * tables (no JSON text in between), calls one of host.lua's entry points in
 * the calling thread's VM under the CPU budget, and reads the answer back
 * field by field into a rules_verdict. rules_error() is the only place a
 * verdict becomes an API error. The store views the plugins read during a
 * question are in views.c.
 */
#include "rules/rules.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "lua/vm.h"
#include "rules/internal.h"
#include "store/store.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* ---- verdicts ---- */
void rules_verdict_free(rules_verdict *v)
{
    json_decref(v->allowed);
    json_decref(v->result);
    for (int i = 0; i < v->effects.n_outbox; i++) json_decref(v->effects.outbox[i].payload);
    free(v->effects.set);
    free(v->effects.clear);
    free(v->effects.outbox);
    err_clear(&v->failure);
    memset(v, 0, sizeof *v);
}

static void verdict_fail(rules_verdict *v, rules_outcome o, const err_t *e)
{
    v->outcome = o;
    if (e) {
        err_clear(&v->failure);
        v->failure = *e;
        v->failure.details = e->details ? json_deep_copy(e->details) : NULL;
        const char *plugin = json_string_value(json_object_get(e->details, "plugin"));
        const char *version = json_string_value(json_object_get(e->details, "version"));
        if (plugin) str_copy(v->plugin, sizeof v->plugin, plugin);
        if (version) str_copy(v->version, sizeof v->version, version);
        const char *msg = json_string_value(json_object_get(e->details, "message"));
        str_copy(v->reason, sizeof v->reason, msg ? msg : e->message);
    }
}

/* A failed luavm_pcall (budget, memory, a host error) as a verdict. */
void rules_verdict_from_err(rules_verdict *v, const err_t *e)
{
    rules_outcome o = !strcmp(e->code, "plugin_timeout") ? RULES_PLUGIN_TIMEOUT
                      : !strcmp(e->code, "plugin_memory") ? RULES_PLUGIN_MEMORY
                      : e->status == 503 ? RULES_UNAVAILABLE
                                         : RULES_PLUGIN_FAILED;
    verdict_fail(v, o, e);
}

static void api_detail_plugin(const rules_verdict *v, err_t *e)
{
    err_detail(e, "plugin", json_string(v->plugin[0] ? v->plugin : "core"));
    if (v->version[0]) err_detail(e, "version", json_string(v->version));
}

void rules_error(const rules_verdict *v, rules_ask ask, const case_row *c, const char *to, err_t *e)
{
    const char *cid = c ? c->id : "?";
    switch (v->outcome) {
    case RULES_OK: err_set(e, 500, "internal_error", "rules_error called on an accepted verdict"); return;
    case RULES_NOT_ALLOWED:
    case RULES_STAGE_UNUSED:
        if (v->outcome == RULES_STAGE_UNUSED)
            err_set(e, 409, "transition_not_allowed", "program '%s' does not use stage '%s'", c ? c->program : "?",
                    to ? to : "?");
        else
            err_set(e, 409, "transition_not_allowed", "%s cannot move to '%s' from here", cid, to ? to : "?");
        err_detail(e, "allowed", v->allowed ? json_incref(v->allowed) : json_array());
        if (c) err_detail(e, "from", json_string(c->stage));
        return;
    case RULES_UNKNOWN_PROGRAM:
        if (ask == RULES_ASK_OPEN) {
            err_set(e, 422, "unknown_program", "no plugin defines program '%s'", c ? c->program : "?");
            err_detail(e, "field", json_string("program"));
        } else {
            err_set(e, 409, "program_unavailable", "no loaded plugin defines program '%s' (case %s)",
                    c ? c->program : "?", cid);
            err_detail(e, "allowed", json_array());
        }
        return;
    case RULES_REFUSED:
        if (ask == RULES_ASK_OPEN && !strcmp(v->rule, "eligibility"))
            err_set(e, 422, "not_eligible", "%s: %s", v->plugin, v->reason);
        else
            err_set(e, 422, "guard_refused", "%s refused: %s", v->plugin, v->reason);
        api_detail_plugin(v, e);
        err_detail(e, "reason", json_string(v->reason));
        return;
    case RULES_INVALID:
        err_set(e, 422, "validation_failed", "%s: %s", v->field[0] ? v->field : "?", v->reason);
        err_detail(e, "field", json_string(v->field[0] ? v->field : "?"));
        err_detail(e, "plugin", json_string(v->plugin[0] ? v->plugin : "core"));
        if (v->allowed) err_detail(e, "allowed", json_incref(v->allowed));
        return;
    case RULES_UNKNOWN_AGENCY:
    case RULES_INBOUND_ONLY:
        if (v->outcome == RULES_UNKNOWN_AGENCY)
            err_set(e, 422, "agency_unavailable", "no agency plugin connects to '%s'", v->plugin);
        else
            err_set(e, 422, "agency_unavailable", "'%s' only refers people to local government; it takes no referrals",
                    v->plugin);
        err_detail(e, "agency", json_string(v->plugin));
        return;
    case RULES_PLUGIN_FAILED:
    case RULES_PLUGIN_TIMEOUT:
    case RULES_PLUGIN_MEMORY: {
        const char *code = v->outcome == RULES_PLUGIN_TIMEOUT  ? "plugin_timeout"
                           : v->outcome == RULES_PLUGIN_MEMORY ? "plugin_memory"
                                                               : "plugin_error";
        if (v->outcome == RULES_PLUGIN_FAILED)
            err_set(e, 500, code, "plugin '%s' failed: %s", v->plugin[0] ? v->plugin : "?", v->reason);
        else
            err_set(e, 500, code, "%s", v->failure.message[0] ? v->failure.message : v->reason);
        err_detail(e, "plugin", json_string(v->plugin[0] ? v->plugin : "?"));
        err_detail(e, "version", json_string(v->version[0] ? v->version : "?"));
        err_detail(e, "message", json_string(v->reason));
        if (v->file[0]) err_detail(e, "file", json_string(v->file));
        if (v->line > 0) err_detail(e, "line", json_integer(v->line));
        return;
    }
    case RULES_THROTTLED:
    case RULES_UNAVAILABLE:
    case RULES_AGENCY_FAILED:
        err_clear(e);
        *e = v->failure;
        e->details = v->failure.details ? json_deep_copy(v->failure.details) : NULL;
        if (!e->status) err_set(e, 503, "not_ready", "the plugin rules cannot be asked now");
        return;
    }
}

/* ---- Lua values from C ---- */
void rules_set_str(lua_State *L, const char *k, const char *v)
{
    if (v && *v) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

void rules_push_case(lua_State *L, const case_row *c)
{
    lua_createtable(L, 0, 14);
    rules_set_str(L, "id", c->id);
    rules_set_str(L, "person_id", c->person_id);
    rules_set_str(L, "program", c->program);
    rules_set_str(L, "org", c->org);
    rules_set_str(L, "region", c->region);
    rules_set_str(L, "source", c->source);
    rules_set_str(L, "referral_id", c->referral_id);
    rules_set_str(L, "stage", c->stage);
    rules_set_str(L, "status", c->status);
    rules_set_str(L, "assigned_to", c->assigned_to);
    rules_set_str(L, "opened_at", c->opened_at);
    rules_set_str(L, "plugin_generation", c->generation);
    rules_set_str(L, "lead_org", c->lead_org[0] ? c->lead_org : c->org);
    lua_pushnumber(L, c->version);
    lua_setfield(L, -2, "version");
}

void rules_push_actor(lua_State *L, const principal *p)
{
    lua_createtable(L, 0, 5);
    if (p) {
        rules_set_str(L, "user", p->user);
        rules_set_str(L, "role", p->role);
        rules_set_str(L, "org", p->org);
        rules_set_str(L, "org_type", p->org_type);
        rules_set_str(L, "region", p->region);
    }
}

/* Sets field k of the table on top to JSON j (nil for NULL). */
int rules_set_json(lua_State *L, const char *k, json_t *j)
{
    if (!j) return 0;
    if (luavm_push_json(L, j)) return -1;
    lua_setfield(L, -2, k);
    return 0;
}

/* ---- verdicts from Lua ---- */
static void get_str(lua_State *L, int t, const char *k, char *out, size_t n)
{
    lua_getfield(L, t, k);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    str_copy(out, n, s ? s : "");
    lua_pop(L, 1);
}

json_t *rules_get_json(lua_State *L, int t, const char *k, rules_verdict *v)
{
    lua_getfield(L, t, k);
    json_t *j = NULL;
    if (!lua_isnil(L, -1)) {
        const char *why = "cannot be JSON";
        j = luavm_to_json_max(L, -1, LUAVM_ANSWER_MAX, &why);
        if (!j && v) {
            v->outcome = RULES_PLUGIN_FAILED;
            snprintf(v->reason, sizeof v->reason, "the plugin's %s: %s", k, why);
        }
    }
    lua_pop(L, 1);
    return j;
}

/* Pushes list k of the effects table ef; its length, or -1 with why when
 * it is longer than max (nothing pushed then). */
static int effects_list(lua_State *L, int ef, const char *k, int max, const char *too_long, const char **why)
{
    lua_getfield(L, ef, k);
    int n = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 0;
    if (n <= max) return n;
    lua_pop(L, 1);
    *why = too_long;
    return -1;
}

/* Reads effects = {set = {...}, clear = {...}, outbox = {...}} at index t.
 * -1 with why for a malformed one (host.lua builds them; this is its check;
 * why NULL: v->reason says it). */
static int read_effects(lua_State *L, int t, rules_verdict *v, const char **why)
{
    rules_effects *fx = &v->effects;
    lua_getfield(L, t, "effects");
    int ef = lua_gettop(L);
    int rc = 0;
    if (!lua_istable(L, ef)) goto done;
    int n = effects_list(L, ef, "set", LUAVM_MAX_DEADLINES,
                         "a decision sets at most " STR(LUAVM_MAX_DEADLINES) " deadlines", why);
    if (n < 0) {
        rc = -1;
        goto done;
    }
    if (n) fx->set = calloc((size_t)n, sizeof *fx->set);
    for (int i = 1; i <= n && fx->set; i++) {
        lua_rawgeti(L, -1, i);
        rules_deadline *d = &fx->set[fx->n_set];
        int it = lua_gettop(L);
        get_str(L, it, "kind", d->kind, sizeof d->kind);
        get_str(L, it, "due_on", d->due_on, sizeof d->due_on);
        get_str(L, it, "label", d->label, sizeof d->label);
        get_str(L, it, "plugin", d->plugin, sizeof d->plugin);
        lua_pop(L, 1);
        int y, m, dd;
        if (!d->kind[0] || !date_parse(d->due_on, &y, &m, &dd)) {
            *why = "a deadline needs a kind and a due date YYYY-MM-DD";
            rc = -1;
            break;
        }
        if (!d->label[0]) str_copy(d->label, sizeof d->label, d->kind);
        fx->n_set++;
    }
    lua_pop(L, 1);
    n = effects_list(L, ef, "clear", LUAVM_MAX_DEADLINES,
                     "a decision clears at most " STR(LUAVM_MAX_DEADLINES) " deadlines", why);
    if (n < 0) {
        rc = -1;
        goto done;
    }
    if (n) fx->clear = calloc((size_t)n, sizeof *fx->clear);
    for (int i = 1; i <= n && fx->clear; i++) {
        lua_rawgeti(L, -1, i);
        if (lua_type(L, -1) == LUA_TSTRING) str_copy(fx->clear[fx->n_clear++], 64, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    n = effects_list(L, ef, "outbox", LUAVM_MAX_MESSAGES,
                     "a decision writes at most " STR(LUAVM_MAX_MESSAGES) " messages", why);
    if (n < 0) {
        rc = -1;
        goto done;
    }
    if (n) fx->outbox = calloc((size_t)n, sizeof *fx->outbox);
    for (int i = 1; i <= n && fx->outbox; i++) {
        lua_rawgeti(L, -1, i);
        rules_message *m = &fx->outbox[fx->n_outbox];
        get_str(L, lua_gettop(L), "agency", m->agency, sizeof m->agency);
        int mt = lua_gettop(L);
        m->payload = rules_get_json(L, mt, "payload", v);
        bool refused = v->outcome == RULES_PLUGIN_FAILED; /* too large, or not JSON: v->reason says */
        if (refused) { /* the plugin that wrote the message is the one to blame */
            get_str(L, mt, "plugin", v->plugin, sizeof v->plugin);
            get_str(L, mt, "version", v->version, sizeof v->version);
        }
        lua_pop(L, 1);
        if (!m->agency[0] || !m->payload) {
            json_decref(m->payload);
            *why = refused ? NULL : "a message needs an agency and a payload";
            rc = -1;
            break;
        }
        fx->n_outbox++;
    }
    lua_pop(L, 1);
    lua_getfield(L, ef, "lead");
    if (lua_istable(L, -1)) {
        int lt = lua_gettop(L);
        get_str(L, lt, "org", fx->lead_org, sizeof fx->lead_org);
        get_str(L, lt, "type", fx->lead_type, sizeof fx->lead_type);
        get_str(L, lt, "reason", fx->lead_reason, sizeof fx->lead_reason);
        get_str(L, lt, "plugin", fx->lead_plugin, sizeof fx->lead_plugin);
        if (!fx->lead_org[0] && !fx->lead_type[0]) {
            *why = "a lead needs an organisation or an organisation type";
            rc = -1;
        }
    }
    lua_pop(L, 1);
done:
    lua_pop(L, 1);
    return rc;
}

static rules_outcome outcome_of(const char *kind)
{
    static const struct {
        const char *kind;
        rules_outcome o;
    } map[] = {
        {"not_allowed", RULES_NOT_ALLOWED},       {"stage_unused", RULES_STAGE_UNUSED},
        {"unknown_program", RULES_UNKNOWN_PROGRAM}, {"refused", RULES_REFUSED},
        {"invalid", RULES_INVALID},               {"unknown_agency", RULES_UNKNOWN_AGENCY},
        {"inbound_only", RULES_INBOUND_ONLY},     {"plugin_memory", RULES_PLUGIN_MEMORY},
        {"plugin_error", RULES_PLUGIN_FAILED},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(kind, map[i].kind)) return map[i].o;
    return RULES_PLUGIN_FAILED;
}

/* A plugin that failed: its stack goes to the log (with the request's id),
 * never to the client, who gets the plugin, its version, file:line and
 * the message. */
static void log_failure(lua_State *L, int t, const rules_verdict *v)
{
    lua_getfield(L, t, "trace");
    const char *trace = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (trace) {
        char logged[2000];
        log_value(trace, logged, sizeof logged);
        log_msg(LOG_WARN, "plugin failed", " plugin=%s version=%s at=%s:%d trace=\"%s\"", v->plugin[0] ? v->plugin : "-",
                v->version[0] ? v->version : "-", v->file[0] ? v->file : "-", v->line, logged);
    }
    lua_pop(L, 1);
}

/* Reads the verdict table on top of the stack into v. */
void rules_read_verdict(lua_State *L, rules_verdict *v)
{
    int t = lua_gettop(L);
    if (!lua_istable(L, t)) {
        v->outcome = RULES_PLUGIN_FAILED;
        str_copy(v->reason, sizeof v->reason, "the host answered no verdict");
        return;
    }
    lua_getfield(L, t, "ok");
    bool ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
    char kind[32];
    get_str(L, t, "kind", kind, sizeof kind);
    get_str(L, t, "plugin", v->plugin, sizeof v->plugin);
    get_str(L, t, "version", v->version, sizeof v->version);
    get_str(L, t, "rule", v->rule, sizeof v->rule);
    get_str(L, t, "field", v->field, sizeof v->field);
    get_str(L, t, "reason", v->reason, sizeof v->reason);
    if (!v->reason[0]) get_str(L, t, "message", v->reason, sizeof v->reason);
    get_str(L, t, "file", v->file, sizeof v->file);
    lua_getfield(L, t, "line");
    v->line = lua_isnumber(L, -1) ? (int)lua_tonumber(L, -1) : 0;
    lua_pop(L, 1);
    get_str(L, t, "label", v->label, sizeof v->label);
    get_str(L, t, "first_stage", v->first_stage, sizeof v->first_stage);
    get_str(L, t, "move", v->move, sizeof v->move);
    lua_getfield(L, t, "end_case");
    v->end_case = lua_toboolean(L, -1);
    lua_pop(L, 1);
    v->allowed = rules_get_json(L, t, "allowed", NULL);
    if (!ok) {
        v->outcome = outcome_of(kind);
        log_failure(L, t, v);
        return;
    }
    v->outcome = RULES_OK;
    v->result = rules_get_json(L, t, "result", v);
    if (v->outcome != RULES_OK) return;
    const char *why = NULL;
    if (read_effects(L, t, v, &why)) {
        v->outcome = RULES_PLUGIN_FAILED;
        if (why) str_copy(v->reason, sizeof v->reason, why);
    }
}

/* What the rules say of a (program, region) that does not depend on a case
 * — its labels, whether opening asks agencies first — and whether any
 * plugin prepares moves: kept per thread for the generation they were read
 * from, so that most requests make no plugin call for them. */
#define LABEL_SLOTS 64
typedef struct {
    char key[96];
    json_t *labels;
    int needs_lookup; /* -1: not asked yet */
} label_slot;

static _Thread_local struct {
    char gen[17];
    int any_prepare; /* -1: not asked yet */
    int n;
    label_slot slot[LABEL_SLOTS];
} tl_labels = {.any_prepare = -1};

static void labels_flush(void)
{
    for (int i = 0; i < tl_labels.n; i++) json_decref(tl_labels.slot[i].labels);
    tl_labels.n = 0;
    tl_labels.any_prepare = -1;
}

/* Empties the cache when vm's generation is not the one it was read from. */
static void cache_sync(const luavm *vm)
{
    const char *gen = luavm_generation(vm);
    if (strcmp(gen, tl_labels.gen)) {
        labels_flush();
        str_copy(tl_labels.gen, sizeof tl_labels.gen, gen);
    }
}

/* The calling thread's VM (rebuilt first if a generation was published),
 * with the cache synced to it. */
static luavm *cached_vm(void)
{
    err_t e = {0};
    luavm *vm = luahost_vm(&e);
    err_clear(&e);
    if (vm) cache_sync(vm);
    return vm;
}

/* The slot of (program, region), filled on first use; NULL on failure. */
static label_slot *slot_for(luavm *vm, const char *program, const char *region)
{
    char key[96];
    snprintf(key, sizeof key, "%s@%s", program, region ? region : "");
    for (int i = 0; i < tl_labels.n; i++)
        if (!strcmp(tl_labels.slot[i].key, key)) return &tl_labels.slot[i];
    json_t *labels = NULL, *p = json_string(program), *r = region && *region ? json_string(region) : json_null();
    err_t e = {0};
    int rc = luavm_call_json(vm, LV_LABELS, luahost_budget_ms(), &labels, &e, p, r, NULL);
    json_decref(p);
    json_decref(r);
    err_clear(&e);
    if (rc) return NULL;
    if (tl_labels.n == LABEL_SLOTS) {
        labels_flush();
        tl_labels.any_prepare = -1;
    }
    label_slot *s = &tl_labels.slot[tl_labels.n++];
    str_copy(s->key, sizeof s->key, key);
    s->labels = labels;
    s->needs_lookup = -1;
    return s;
}

const char *rules_label(const char *program, const char *region, const char *stage)
{
    luavm *vm = cached_vm();
    label_slot *s = vm ? slot_for(vm, program, region) : NULL;
    return s ? json_string_value(json_object_get(s->labels, stage)) : NULL;
}

/* ---- one question ---- */

/* The calling thread's VM with the views of f bound, once the governor
 * lets a call of region `key` run; NULL with v set. */
static luavm *begin(const rules_facts *f, view_ctx *vc, bool http, const char *key, const char *gen, gov_ticket *t,
                    rules_verdict *v)
{
    memset(v, 0, sizeof *v);
    t->slot = -1;
    err_t e = {0};
    if (store_on_writer()) { /* rules never run while the writes wait */
        err_set(&e, 500, "internal_error", "plugin rules asked from the writer");
        verdict_fail(v, RULES_UNAVAILABLE, &e);
        err_clear(&e);
        return NULL;
    }
    if (governor_enter(key, t, &e)) {
        verdict_fail(v, RULES_THROTTLED, &e);
        err_clear(&e);
        return NULL;
    }
    luavm *vm = luahost_vm_for(gen, &e);
    if (!vm) {
        governor_leave(t, false);
        verdict_fail(v, RULES_UNAVAILABLE, &e);
        err_clear(&e);
        return NULL;
    }
    str_copy(v->generation, sizeof v->generation, luavm_generation(vm));
    vc->f = f;
    vc->person_id = NULL;
    vc->key = key;
    vc->ticket = t;
    luavm_bind_views(vm, &rules_views, vc);
    vm->allow_http = http;
    return vm;
}

/* Unbinds; a VM the call left poisoned (budget, memory) is rebuilt now,
 * on the time of the region that poisoned it. */
static void end(luavm *vm, gov_ticket *t)
{
    const view_ctx *vc = vm->views_ud;
    luavm_settle(vm, vc ? vc->key : NULL); /* charged to that region: before the governor hears of the end */
    luavm_bind_views(vm, NULL, NULL);
    vm->allow_http = false;
    bool killed = vm->killed;
    if (vm->poisoned) {
        char gen[17];
        str_copy(gen, sizeof gen, luavm_generation(vm));
        err_t e = {0};
        luahost_vm_for(gen, &e);
        err_clear(&e);
    }
    governor_leave(t, killed);
}

/* ---- laying a question, reading its answer (inside luavm_ask's
 * protected frame: an allocation refused there is an error, not a panic) ---- */
static int lay_question(lua_State *L, void *ud)
{
    rules_question *q = ud;
    lua_createtable(L, 0, q->fields);
    if (q->c) {
        char now[11];
        if (!q->today) date_today_str(now);
        rules_push_case(L, q->c);
        lua_setfield(L, -2, "case");
        rules_set_str(L, "today", q->today ? q->today : now);
        rules_push_actor(L, q->actor);
        lua_setfield(L, -2, "actor");
    }
    return q->more && q->more(L, q->in) ? -1 : 1;
}

static void read_answer(lua_State *L, void *ud)
{
    rules_question *q = ud;
    rules_read_verdict(L, q->v);
    for (int i = 0; i < 2 && q->want[i] && (q->v->outcome == RULES_OK || q->want_always); i++)
        q->got[i] = rules_get_json(L, lua_gettop(L), q->want[i], q->v);
}

int rules_question_ask(luavm *vm, rules_question *q)
{
    rules_verdict *v = q->v;
    err_t e = {0};
    luavm_question lq = {.entry = q->entry, .cpu_ms = luahost_budget_ms(), .wall_ms = q->wall_ms,
                         .lay = lay_question, .read = read_answer, .ud = q};
    int rc = luavm_ask(vm, &lq, &e);
    if (rc == 1) { /* a JSON part of the input nested too deeply: an invalid input */
        v->outcome = RULES_INVALID;
        str_copy(v->field, sizeof v->field, q->field ? q->field : "data");
        str_copy(v->reason, sizeof v->reason, "nested too deeply");
    } else if (rc < 0) {
        if (luavm_take_http_error(vm, &v->failure)) v->outcome = RULES_AGENCY_FAILED;
        else rules_verdict_from_err(v, &e);
        err_clear(&e);
    } else if (v->outcome != RULES_OK && vm->sys_oom && !vm->mem_exceeded) {
        /* A plugin's failure host.lua caught, where the process refused
         * memory: the server's, not the plugin's. */
        err_set(&e, 503, "overloaded", "the server is out of memory for plugin calls");
        verdict_fail(v, RULES_UNAVAILABLE, &e);
        err_clear(&e);
        vm->poisoned = true;
    } else if (v->outcome != RULES_OK) {
        /* A look-up whose agency did not answer: the agency's error. */
        if (luavm_take_http_error(vm, &v->failure)) v->outcome = RULES_AGENCY_FAILED;
    }
    if (v->outcome == RULES_OK || q->want_always) return v->outcome == RULES_OK ? 0 : -1;
    for (int i = 0; i < 2; i++) {
        json_decref(q->got[i]);
        q->got[i] = NULL;
    }
    return -1;
}

/* The rest of each question's input. */
typedef struct {
    const case_row *proposal;
    json_t *person, *lookups;
} rules_open_in;

/* The rest of a question made of at most two strings and one JSON value,
 * each under its key (NULL keys: not there). */
typedef struct {
    const char *key[2], *str[2];
    const char *json_key;
    json_t *json;
} rules_fields_in;

static int more_open(lua_State *L, const void *in)
{
    const rules_open_in *o = in;
    lua_createtable(L, 0, 2); /* the "open" record */
    rules_set_str(L, "source", o->proposal->source);
    rules_set_str(L, "referral_id", o->proposal->referral_id);
    lua_setfield(L, -2, "record");
    return rules_set_json(L, "person", o->person) || rules_set_json(L, "lookups", o->lookups) ? -1 : 0;
}

static int more_prepare(lua_State *L, const void *in)
{
    const rules_move_in *m = in;
    rules_set_str(L, "to", m->to);
    lua_pushboolean(L, m->reopen);
    lua_setfield(L, -2, "reopen");
    rules_set_str(L, "note", m->note);
    return rules_set_json(L, "data", m->data);
}

static int more_move(lua_State *L, const void *in)
{
    const rules_move_in *m = in;
    return more_prepare(L, in) || rules_set_json(L, "prepared", m->prepared) ? -1 : 0;
}

static int more_fields(lua_State *L, const void *in)
{
    const rules_fields_in *f = in;
    for (int i = 0; i < 2; i++)
        if (f->key[i]) rules_set_str(L, f->key[i], f->str[i]);
    return f->json_key ? rules_set_json(L, f->json_key, f->json) : 0;
}

int rules_open(const rules_facts *f, const case_row *proposal, json_t *person, json_t *lookups, rules_verdict *v)
{
    view_ctx vc;
    gov_ticket t;
    luavm *vm = begin(f, &vc, false, proposal->region, NULL, &t, v);
    if (!vm) return -1;
    rules_open_in in = {proposal, person, lookups};
    rules_question q = {.entry = LV_OPEN, .fields = 6, .c = proposal, .actor = f ? f->viewer : NULL,
                        .more = more_open, .in = &in, .field = "person", .v = v};
    int rc = rules_question_ask(vm, &q);
    end(vm, &t);
    return rc;
}

int rules_move(const rules_facts *f, const case_row *c, const rules_move_in *in, rules_verdict *v)
{
    view_ctx vc;
    gov_ticket t;
    /* A case runs under its generation until it closes; reopened, it
     * takes the serving rules. */
    luavm *vm = begin(f, &vc, false, c->region, in->reopen ? NULL : c->generation, &t, v);
    if (!vm) return -1;
    rules_question q = {.entry = LV_TRANSITION, .fields = 8, .c = c, .actor = f ? f->viewer : NULL,
                        .more = more_move, .in = in, .field = "data", .v = v};
    int rc = rules_question_ask(vm, &q);
    end(vm, &t);
    return rc;
}

int rules_record(const rules_facts *f, const case_row *c, const char *kind, const char *subkind, json_t *record,
                 rules_verdict *v)
{
    view_ctx vc;
    gov_ticket t;
    luavm *vm = begin(f, &vc, false, c->region, c->generation, &t, v);
    if (!vm) return -1;
    rules_fields_in in = {{"kind", "subkind"}, {kind, subkind}, "record", record};
    rules_question q = {.entry = LV_RECORD, .fields = 6, .c = c, .actor = f ? f->viewer : NULL,
                        .more = more_fields, .in = &in, .field = "record", .v = v};
    int rc = rules_question_ask(vm, &q);
    end(vm, &t);
    return rc;
}

int rules_waitlist(const rules_facts *f, const case_row *c, json_t *entry, rules_verdict *v)
{
    view_ctx vc;
    gov_ticket t;
    luavm *vm = begin(f, &vc, false, c->region, c->generation, &t, v);
    if (!vm) return -1;
    rules_fields_in in = {.json_key = "entry", .json = entry};
    rules_question q = {.entry = LV_WAITLIST, .fields = 4, .c = c, .actor = f ? f->viewer : NULL,
                        .more = more_fields, .in = &in, .field = "entry", .v = v};
    int rc = rules_question_ask(vm, &q);
    end(vm, &t);
    return rc;
}

bool rules_may_prepare(const case_row *c, bool reopen)
{
    /* A reopened case moves on the newest generation, which this cache
     * may not be about. */
    return reopen || !c->generation[0] || strcmp(c->generation, tl_labels.gen) || tl_labels.any_prepare != 0;
}

int rules_prepare(const principal *actor, const case_row *c, const rules_move_in *in, json_t **prepared,
                  rules_verdict *v)
{
    *prepared = NULL;
    /* Nothing to run, no plugin slot to take. */
    if (!rules_may_prepare(c, in->reopen)) {
        memset(v, 0, sizeof *v);
        str_copy(v->generation, sizeof v->generation, tl_labels.gen);
        return 0;
    }
    rules_facts f = {.viewer = actor};
    view_ctx vc;
    gov_ticket t;
    luavm *vm = begin(&f, &vc, true, c->region, in->reopen ? NULL : c->generation, &t, v);
    if (!vm) return -1;
    vc.person_id = c->person_id; /* what its look-ups send is this person's */
    cache_sync(vm); /* the VM begin() holds: fetching the thread's VM again could rebuild it under us */
    if (tl_labels.any_prepare < 0) {
        err_t e = {0};
        json_t *any = NULL;
        if (luavm_call_json(vm, LV_ANY_PREPARE, luahost_budget_ms(), &any, &e, NULL)) {
            rules_verdict_from_err(v, &e);
            err_clear(&e);
            end(vm, &t);
            return -1;
        }
        tl_labels.any_prepare = json_is_true(any);
        json_decref(any);
    }
    if (!tl_labels.any_prepare) {
        end(vm, &t);
        return 0;
    }
    /* Look-ups may wait what a request may for the agencies they ask; their
     * own code has the rules' CPU budget like any other. */
    rules_question q = {.entry = LV_PREPARE, .fields = 6, .c = c, .actor = actor, .more = more_prepare, .in = in,
                        .field = "data", .want = {"prepared"}, .wall_ms = rules_lookup_budget_ms(), .v = v};
    int rc = rules_question_ask(vm, &q);
    *prepared = q.got[0];
    end(vm, &t);
    return rc;
}

bool rules_needs_lookup(const char *program, const char *region)
{
    luavm *vm = cached_vm();
    label_slot *s = vm ? slot_for(vm, program, region) : NULL;
    if (!s) return false;
    if (s->needs_lookup < 0) {
        err_t e = {0};
        json_t *p = json_string(program), *r = region && *region ? json_string(region) : json_null(), *out = NULL;
        int rc = luavm_call_json(vm, LV_NEEDS_LOOKUP, luahost_budget_ms(), &out, &e, p, r, NULL);
        json_decref(p);
        json_decref(r);
        err_clear(&e);
        if (rc) return false;
        s->needs_lookup = json_is_true(out);
        json_decref(out);
    }
    return s->needs_lookup == 1;
}

int rules_lookup(const principal *actor, const case_row *proposal, json_t *person, json_t **lookups, json_t **cache,
                 rules_verdict *v)
{
    *lookups = *cache = NULL;
    rules_facts f = {.viewer = actor};
    view_ctx vc;
    gov_ticket t;
    luavm *vm = begin(&f, &vc, true, proposal->region, NULL, &t, v);
    if (!vm) return -1;
    vc.person_id = proposal->person_id; /* what its look-ups send is this person's */
    rules_fields_in in = {.json_key = "person", .json = person};
    rules_question q = {.entry = LV_LOOKUP, .fields = 4, .c = proposal, .actor = actor, .more = more_fields,
                        .in = &in, .field = "person", .want = {"lookups", "cache"},
                        .wall_ms = rules_lookup_budget_ms(), .v = v};
    int rc = rules_question_ask(vm, &q);
    *lookups = q.got[0];
    *cache = q.got[1];
    end(vm, &t);
    return rc;
}

/* ---- agencies ---- */

int rules_agency_message(const char *agency, const char *kind, json_t *data, json_t **payload, rules_verdict *v)
{
    *payload = NULL;
    view_ctx vc;
    gov_ticket t;
    char key[64];
    snprintf(key, sizeof key, "agency:%s", agency);
    luavm *vm = begin(NULL, &vc, false, key, NULL, &t, v);
    if (!vm) return -1;
    rules_fields_in in = {{"agency", "kind"}, {agency, kind}, "data", data};
    rules_question q = {.entry = LV_AGENCY_MESSAGE, .fields = 3, .more = more_fields, .in = &in,
                        .want = {"payload"}, .v = v};
    rules_question_ask(vm, &q);
    *payload = q.got[0];
    if (v->outcome == RULES_UNKNOWN_AGENCY || v->outcome == RULES_INBOUND_ONLY)
        str_copy(v->plugin, sizeof v->plugin, agency); /* names the agency in the error */
    end(vm, &t);
    if (v->outcome == RULES_OK && !*payload) {
        v->outcome = RULES_PLUGIN_FAILED;
        snprintf(v->reason, sizeof v->reason, "messages.%s answered no payload", kind);
    }
    return v->outcome == RULES_OK ? 0 : -1;
}

bool rules_agency_status(const char *agency, const char *status, char out[24])
{
    err_t e = {0};
    luavm *vm = luahost_vm(&e);
    out[0] = 0;
    if (!vm) {
        err_clear(&e);
        return false;
    }
    json_t *a = json_string(agency), *st = json_string(status), *got = NULL;
    int rc = !a || !st ? -1 : luavm_call_json(vm, LV_AGENCY_STATUS, luahost_budget_ms(), &got, &e, a, st, NULL);
    json_decref(a);
    json_decref(st);
    err_clear(&e);
    if (rc == 0 && json_is_string(got)) str_copy(out, 24, json_string_value(got));
    json_decref(got);
    return out[0] != 0;
}

bool rules_agency_known(const char *agency)
{
    err_t e = {0};
    luavm *vm = luahost_vm(&e);
    if (!vm) {
        err_clear(&e);
        return false;
    }
    json_t *a = json_string(agency), *out = NULL;
    bool yes = false;
    if (luavm_call_json(vm, LV_AGENCY_KNOWN, luahost_budget_ms(), &out, &e, a, NULL) == 0)
        yes = json_is_true(json_object_get(out, "known"));
    err_clear(&e);
    json_decref(a);
    json_decref(out);
    return yes;
}

int rules_referral_rules(const char *program, const char *region, int *answer_days, json_t **accepts_from,
                         char plugin[96], err_t *e)
{
    *accepts_from = NULL;
    plugin[0] = 0;
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    json_t *p = json_string(program), *r = region ? json_string(region) : json_null(), *out = NULL;
    int rc = luavm_call_json(vm, LV_REFERRAL_RULES, luahost_budget_ms(), &out, e, p, r, NULL);
    json_decref(p);
    json_decref(r);
    if (rc) return -1;
    json_t *d = json_object_get(out, "answer_days");
    if (json_is_integer(d) && json_integer_value(d) > 0 && json_integer_value(d) < 3650)
        *answer_days = (int)json_integer_value(d);
    json_t *from = json_object_get(out, "accepts_from");
    if (json_is_array(from)) {
        *accepts_from = json_incref(from);
        const char *who = json_string_value(json_object_get(out, "plugin"));
        str_copy(plugin, 96, who ? who : "");
    }
    json_decref(out);
    return 0;
}

/* ---- descriptions ---- */

void rules_thread_done(void)
{
    labels_flush();
    tl_labels.gen[0] = 0;
}

int rules_describe(const char *program, const char *region, json_t **out, err_t *e)
{
    *out = NULL;
    luavm *vm = luahost_vm(e);
    if (!vm) return -1;
    json_t *p = json_string(program), *r = region ? json_string(region) : json_null(), *d = NULL;
    int rc = luavm_call_json(vm, LV_DESCRIBE, luahost_budget_ms(), &d, e, p, r, NULL);
    json_decref(p);
    json_decref(r);
    if (rc) return -1;
    if (json_is_object(d)) {
        json_object_set_new(d, "generation", json_string(luavm_generation(vm)));
        *out = d;
    } else {
        json_decref(d);
    }
    return 0;
}

void rules_generation_for(const char *gen, char out[17])
{
    luagen *g = gen && *gen ? luahost_loaded(gen) : NULL;
    if (g) {
        str_copy(out, 17, luagen_id(g));
        luagen_unref(g);
        return;
    }
    str_copy(out, 17, rules_generation());
}

const char *rules_generation(void)
{
    err_t e = {0};
    luavm *vm = luahost_vm(&e);
    err_clear(&e);
    return vm ? luavm_generation(vm) : "";
}
