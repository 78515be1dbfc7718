/*
 * vm.c: one sandboxed LuaJIT VM. Creation (counting allocator, panic
 * handler, JIT off, only the base/table/string/math/os libraries, then the
 * trusted host.lua, whose entry points are kept by registry reference), the
 * per-call CPU watchdog, JSON <-> Lua conversion and the C functions
 * host.lua hands to plugins through the `sarye` module. What those
 * functions read of the world (the store, consents, agencies) comes through
 * the views core/rules binds for one call: this file knows no store.
 *
 * Why the JIT is off: compiled traces do not run count hooks, so a JIT-hot
 * `while true do end` would never be stopped. The interpreter always runs
 * them, and plugin rules are small enough that it is plenty fast.
 */
#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "lua/vm.h"

extern const unsigned char embedded_host_lua[];
extern const size_t embedded_host_lua_len;

#define HOOK_EVERY 10000 /* instructions between clock checks (~20-50 us of interpreter work) */
#define MAX_DEPTH 32    /* JSON <-> Lua nesting */
#define LOG_LINES_PER_CALL 20 /* what one plugin call may write to the log */
#define LOG_BYTES 2000  /* of one plugin log message */

static const char ARRAY_MT = 0; /* registry key (its address) of the array marker */
static atomic_int vms_live;       /* VMs created and not yet closed */

int luavm_live(void) { return atomic_load(&vms_live); }

static atomic_ulong memory_refused; /* allocations the process refused to VMs */
unsigned long luavm_memory_refused(void) { return atomic_load(&memory_refused); }

/* ---- allocator: counts bytes and refuses growth past the cap. The
 * blocks come from LuaJIT's own allocator (a private arena per VM: no lock,
 * nothing shared with other threads' allocations); this only counts. ---- */
static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    luavm *vm = ud;
    size_t old = ptr ? osize : 0;
    if (nsize > old && vm->mem_used + (nsize - old) > vm->mem_limit) {
        vm->mem_exceeded = true;
        return NULL;
    }
    void *np = vm->inner_alloc(vm->inner_ud, ptr, osize, nsize);
    if (np || nsize == 0) {
        vm->mem_used = vm->mem_used - old + nsize;
    } else {
        vm->sys_oom = true;
        atomic_fetch_add(&memory_refused, 1);
    }
    return np;
}

static int vm_panic(lua_State *L)
{
    /* An error outside a protected call: a bug. A VM's construction, the
     * loading of a set and every call (its arguments pushed, its answer
     * read: luavm_ask) run inside a protected frame, so that even an
     * allocation the process refuses is an error there. */
    log_msg(LOG_ERROR, "lua: unprotected error (panic)", " error=\"%s\"",
            lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
    abort();
}

static luavm *vm_of(lua_State *L)
{
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}

luavm *luavm_of_state(lua_State *L)
{
    void *ud = NULL;
    return lua_getallocf(L, &ud) == vm_alloc ? ud : NULL;
}

/* ---- CPU budget: a count hook checks the clock; once past the deadline
 * it re-arms itself at every instruction, so a plugin's pcall cannot
 * swallow the kill: the error is raised again until the call unwinds. */
static void vm_hook(lua_State *L, lua_Debug *ar);

/* Past the budget: the call is killed (once), and every instruction from
 * now on raises again until it unwinds to C. */
static void kill(luavm *vm)
{
    if (!vm->killed) {
        vm->killed = true;
        str_copy(vm->killed_plugin, sizeof vm->killed_plugin, vm->current_plugin);
        str_copy(vm->killed_version, sizeof vm->killed_version, vm->current_version);
        lua_sethook(vm->L, vm_hook, LUA_MASKCOUNT, 1);
    }
    luaL_error(vm->L, "CPU budget of %d ms exceeded", vm->budget_ms);
}

static bool past_budget(const luavm *vm)
{
    return time_thread_cpu_ns() >= vm->cpu_deadline_ns || time_mono_ns() >= vm->wall_deadline_ns;
}

static void vm_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    luavm *vm = vm_of(L);
    if (vm->killed || past_budget(vm)) kill(vm);
    /* A file's top-level code past its allowance is stopped where it is,
     * as an error its loader catches (the VM goes on: only the plugin's
     * own code unwinds), whatever the rest of the call's budget. */
    if (vm->top_level_start_ns && time_thread_cpu_ns() - vm->top_level_start_ns > vm->top_level_limit_ns) {
        vm->top_level_start_ns = 0;
        vm->top_level_over = true;
        luaL_error(L, "top-level code past its CPU allowance");
    }
}

void luavm_check_budget(luavm *vm)
{
    if (vm->armed && (vm->killed || past_budget(vm))) kill(vm);
}

/* ---- JSON <-> Lua ---- */
void luavm_mark_array(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&ARRAY_MT);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_setmetatable(L, -2);
}

static int push_json(lua_State *L, json_t *j, int depth)
{
    if (depth > MAX_DEPTH || !lua_checkstack(L, 4)) return -1;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        lua_createtable(L, 0, (int)json_object_size(j));
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            if (push_json(L, v, depth + 1)) return -1;
            lua_setfield(L, -2, k);
        }
        return 0;
    }
    case JSON_ARRAY: {
        lua_createtable(L, (int)json_array_size(j), 0);
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            if (push_json(L, v, depth + 1)) return -1;
            lua_rawseti(L, -2, (int)i + 1);
        }
        luavm_mark_array(L);
        return 0;
    }
    case JSON_STRING: lua_pushlstring(L, json_string_value(j), json_string_length(j)); return 0;
    case JSON_INTEGER: lua_pushnumber(L, (lua_Number)json_integer_value(j)); return 0;
    case JSON_REAL: lua_pushnumber(L, json_real_value(j)); return 0;
    case JSON_TRUE: lua_pushboolean(L, 1); return 0;
    case JSON_FALSE: lua_pushboolean(L, 0); return 0;
    case JSON_NULL: lua_pushnil(L); return 0;
    }
    return -1;
}

static bool is_array_marked(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx)) return false;
    lua_pushlightuserdata(L, (void *)&ARRAY_MT);
    lua_rawget(L, LUA_REGISTRYINDEX);
    bool yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return yes;
}

/* Takes n bytes of JSON text from what is left; false when it is spent. */
static bool spend(size_t *left, size_t n, const char **why)
{
    if (*left < n) {
        *why = "the value is too large (more than the largest request body as JSON)";
        return false;
    }
    *left -= n;
    return true;
}

/* Converts the value at idx; NULL with a message in why. left: the JSON
 * text it may still take (counted about: strings and keys with their
 * quotes, a few bytes a number or a separator). */
static json_t *to_json(lua_State *L, int idx, int depth, const char **why, size_t *left)
{
    if (idx < 0) idx = lua_gettop(L) + idx + 1;
    if (!spend(left, 4, why)) return NULL;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return json_null();
    case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (d == (double)(json_int_t)d && d > -9007199254740992.0 && d < 9007199254740992.0)
            return json_integer((json_int_t)d);
        if (d != d || d == 1.0 / 0.0 || d == -1.0 / 0.0) { *why = "cannot encode NaN or infinity"; return NULL; }
        return json_real(d);
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (!spend(left, n, why)) return NULL;
        json_t *j = json_stringn(s, n);
        if (!j) *why = "a string is not valid UTF-8";
        return j;
    }
    case LUA_TTABLE: {
        if (depth > MAX_DEPTH || !lua_checkstack(L, 4)) { *why = "value nested too deeply (or cyclic)"; return NULL; }
        size_t n = lua_objlen(L, idx);
        bool arr = is_array_marked(L, idx);
        if (!arr && n > 0) { /* a sequence with no other keys is an array */
            size_t count = 0;
            lua_pushnil(L);
            while (lua_next(L, idx)) { count++; lua_pop(L, 1); }
            arr = count == n;
        }
        if (arr) {
            json_t *a = json_array();
            for (size_t i = 1; i <= n; i++) {
                lua_rawgeti(L, idx, (int)i);
                json_t *v = to_json(L, -1, depth + 1, why, left);
                lua_pop(L, 1);
                if (!v) { json_decref(a); return NULL; }
                json_array_append_new(a, v);
            }
            return a;
        }
        json_t *o = json_object();
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            char numkey[32];
            const char *k;
            if (lua_type(L, -2) == LUA_TSTRING) k = lua_tostring(L, -2);
            else if (lua_type(L, -2) == LUA_TNUMBER) {
                snprintf(numkey, sizeof numkey, "%.14g", lua_tonumber(L, -2));
                k = numkey;
            } else { lua_pop(L, 2); json_decref(o); *why = "table keys must be strings or numbers"; return NULL; }
            if (!spend(left, strlen(k) + 3, why)) { lua_pop(L, 2); json_decref(o); return NULL; }
            json_t *v = to_json(L, -1, depth + 1, why, left);
            if (!v) { lua_pop(L, 2); json_decref(o); return NULL; }
            if (json_object_set_new(o, k, v)) { lua_pop(L, 2); json_decref(o); *why = "a key is not valid UTF-8"; return NULL; }
            lua_pop(L, 1);
        }
        return o;
    }
    default:
        *why = "cannot encode a function, userdata or thread";
        return NULL;
    }
}

int luavm_push_json(lua_State *L, json_t *j) { return push_json(L, j ? j : json_null(), 0); }

json_t *luavm_to_json(lua_State *L, int idx, const char **why)
{
    size_t left = SIZE_MAX;
    return to_json(L, idx, 0, why, &left);
}

json_t *luavm_to_json_max(lua_State *L, int idx, size_t max, const char **why)
{
    return to_json(L, idx, 0, why, &max);
}

/* ---- the C functions host.lua receives as `C` ---- */
static int c_load_text(lua_State *L)
{
    size_t n;
    const char *text = luaL_checklstring(L, 1, &n);
    const char *name = luaL_checkstring(L, 2);
    /* "t": text only; precompiled bytecode is refused. */
    if (luaL_loadbufferx(L, text, n, name, "t") != 0) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    return 1;
}

static int c_set_current(lua_State *L)
{
    luavm *vm = vm_of(L);
    const char *p = lua_isstring(L, 1) ? lua_tostring(L, 1) : "";
    const char *v = lua_isstring(L, 2) ? lua_tostring(L, 2) : "";
    str_copy(vm->current_plugin, sizeof vm->current_plugin, p);
    str_copy(vm->current_version, sizeof vm->current_version, v);
    return 0;
}

/* The plugin whose code runs now, and its version. */
static int c_current(lua_State *L)
{
    lua_pushstring(L, vm_of(L)->current_plugin);
    lua_pushstring(L, vm_of(L)->current_version);
    return 2;
}

/* C.top_level(ms): a file's top-level code starts, and may take ms of CPU
 * (the hook stops it past that). C.top_level(): it ended; returns the CPU
 * it took in milliseconds, and whether it was stopped. */
static int c_top_level(lua_State *L)
{
    luavm *vm = vm_of(L);
    int64_t now = time_thread_cpu_ns();
    if (lua_isnumber(L, 1)) {
        vm->top_level_limit_ns = (int64_t)lua_tonumber(L, 1) * 1000000;
        vm->top_level_start_ns = now;
        vm->top_level_over = false;
        return 0;
    }
    int64_t spent = vm->top_level_start_ns ? now - vm->top_level_start_ns : vm->top_level_limit_ns;
    lua_pushnumber(L, (lua_Number)(spent / 1000000));
    lua_pushboolean(L, vm->top_level_over);
    vm->top_level_start_ns = 0;
    vm->top_level_over = false;
    return 2;
}

/* The stack of a failed plugin call, for the log (never for a client):
 * host.lua's message handler calls it while the failed call's frames are
 * still there. Bounded C: a handler runs with the hooks off. */
static int c_traceback(lua_State *L)
{
    const char *msg = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : "(an error object that is not text)";
    luaL_traceback(L, L, msg, 2);
    return 1;
}

static int c_memory_exceeded(lua_State *L)
{
    lua_pushboolean(L, vm_of(L)->mem_exceeded);
    return 1;
}

static int c_array(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luavm_mark_array(L);
    return 1;
}

static int c_today(lua_State *L)
{
    char buf[11];
    luavm *vm = vm_of(L);
    if (vm->today[0]) str_copy(buf, sizeof buf, vm->today);
    else date_today_str(buf);
    lua_pushstring(L, buf);
    return 1;
}

static int64_t check_date(lua_State *L, int arg)
{
    int y, m, d;
    const char *s = luaL_checkstring(L, arg);
    if (!date_parse(s, &y, &m, &d)) luaL_argerror(L, arg, "expected a date YYYY-MM-DD");
    return date_to_days(y, m, d);
}

static int c_date_valid(lua_State *L)
{
    int y, m, d;
    lua_pushboolean(L, lua_type(L, 1) == LUA_TSTRING && date_parse(lua_tostring(L, 1), &y, &m, &d));
    return 1;
}

static int c_date_add_days(lua_State *L)
{
    const char *s = luaL_checkstring(L, 1);
    lua_Number n = luaL_checknumber(L, 2);
    char out[11];
    if (!date_add_days(s, (long)n, out)) luaL_argerror(L, 1, "expected a date YYYY-MM-DD and a day count in range");
    lua_pushstring(L, out);
    return 1;
}

static int c_date_add_months(lua_State *L)
{
    const char *s = luaL_checkstring(L, 1);
    lua_Number n = luaL_checknumber(L, 2);
    char out[11];
    if (!date_add_months(s, (long)n, out))
        luaL_argerror(L, 1, "expected a date YYYY-MM-DD and a month count in range");
    lua_pushstring(L, out);
    return 1;
}

static int c_date_diff_days(lua_State *L)
{
    int64_t a = check_date(L, 1), b = check_date(L, 2);
    lua_pushnumber(L, (lua_Number)(b - a));
    return 1;
}

static int c_json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    const char *why = "cannot encode";
    json_t *j = luavm_to_json(L, 1, &why);
    if (!j) return luaL_error(L, "json.encode: %s", why);
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    if (!s) return luaL_error(L, "json.encode: out of memory");
    lua_pushstring(L, s);
    free(s);
    return 1;
}

static int c_json_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    if (!json_depth_ok(s, n, MAX_DEPTH)) {
        lua_pushnil(L);
        lua_pushstring(L, "nested too deeply");
        return 2;
    }
    json_error_t je;
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY, &je);
    if (!j) {
        lua_pushnil(L);
        lua_pushstring(L, je.text);
        return 2;
    }
    int rc = push_json(L, j, 0);
    json_decref(j);
    if (rc) return luaL_error(L, "json.decode: nested too deeply");
    return 1;
}

/* sarye.log(level, message): one line per call of it, at most
 * LOG_LINES_PER_CALL per plugin call (then one line saying how many were
 * dropped), each message cut at LOG_BYTES with a mark. */
static int c_log(lua_State *L)
{
    luavm *vm = vm_of(L);
    const char *level = luaL_checkstring(L, 1);
    size_t n;
    const char *msg = luaL_checklstring(L, 2, &n);
    log_level lvl = !strcmp(level, "error") ? LOG_ERROR : !strcmp(level, "warn") ? LOG_WARN
                    : !strcmp(level, "debug") ? LOG_DEBUG : LOG_INFO;
    const char *plugin = vm->current_plugin[0] ? vm->current_plugin : "-";
    if (vm->mute_log) return 0;
    if (++vm->log_lines > LOG_LINES_PER_CALL) {
        if (vm->log_lines == LOG_LINES_PER_CALL + 1)
            log_msg(LOG_WARN, "plugin log limit reached: further lines of this call are dropped",
                    " plugin=%s limit=%d", plugin, LOG_LINES_PER_CALL);
        return 0;
    }
    char cut[LOG_BYTES + 32];
    if (n > LOG_BYTES) {
        size_t k = LOG_BYTES;
        while (k > 0 && ((unsigned char)msg[k] & 0xC0) == 0x80) k--; /* not inside a UTF-8 character */
        snprintf(cut, sizeof cut, "%.*s ...[%zu bytes]", (int)k, msg, n);
        msg = cut;
    }
    log_msg(lvl, msg, " plugin=%s", plugin);
    return 0;
}

/* Pushes a view's answer (a new reference, consumed), or nil. */
static int push_view(lua_State *L, json_t *j)
{
    if (!j) {
        lua_pushnil(L);
        return 1;
    }
    int rc = push_json(L, j, 0);
    json_decref(j);
    if (rc) return luaL_error(L, "store view nested too deeply");
    return 1;
}

static int c_person(lua_State *L)
{
    luavm *vm = vm_of(L);
    const char *id = luaL_checkstring(L, 1);
    if (!vm->views || !vm->views->person) return push_view(L, NULL);
    return push_view(L, vm->views->person(vm->views_ud, id));
}

static int c_history(lua_State *L)
{
    luavm *vm = vm_of(L);
    const char *id = luaL_checkstring(L, 1);
    json_t *j = vm->views && vm->views->history ? vm->views->history(vm->views_ud, id) : NULL;
    if (!j) {
        lua_newtable(L);
        luavm_mark_array(L);
        return 1;
    }
    return push_view(L, j);
}

/* Named read-only queries (host.lua checked the name and the phase). */
static int c_query(lua_State *L)
{
    luavm *vm = vm_of(L);
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!vm->views || !vm->views->query) {
        lua_newtable(L);
        luavm_mark_array(L);
        return 1;
    }
    const char *why = "cannot encode";
    json_t *params = luavm_to_json(L, 2, &why);
    if (!params) return luaL_error(L, "ctx.query: params %s", why);
    char msg[300] = "";
    json_t *j = vm->views->query(vm->views_ud, name, params, msg, sizeof msg);
    json_decref(params);
    if (!j) return luaL_error(L, "%s", msg[0] ? msg : "the query failed");
    return push_view(L, j);
}

/* sarye.http.post(agency, path, body): a look-up of a configured agency,
 * in the phases before any transaction only (host.lua checks the phase;
 * allow_http is the C side's own check). The URL is the agency's from
 * configuration, so a plugin cannot reach any other host. */
static int c_http_post(lua_State *L)
{
    luavm *vm = vm_of(L);
    const char *agency = luaL_checkstring(L, 1);
    const char *path = luaL_optstring(L, 2, "");
    if (!vm->allow_http || !vm->views || !vm->views->http_post)
        return luaL_error(L, "sarye.http is available only in lookup and prepare functions (before the transaction)");
    json_t *body = NULL;
    if (!lua_isnoneornil(L, 3)) {
        const char *why = "cannot encode";
        body = luavm_to_json(L, 3, &why);
        if (!body) return luaL_error(L, "sarye.http.post: body %s", why);
    }
    int64_t left_ms = (vm->wall_deadline_ns - time_mono_ns()) / 1000000;
    json_t *out = NULL;
    err_clear(&vm->http_err);
    int rc = vm->views->http_post(vm->views_ud, agency, *path ? path : NULL, body, left_ms > 0 ? (int)left_ms : 1, &out,
                                  &vm->http_err);
    json_decref(body);
    if (rc) return luaL_error(L, "%s", vm->http_err.message);
    err_clear(&vm->http_err);
    rc = push_json(L, out, 0);
    json_decref(out);
    if (rc) return luaL_error(L, "sarye.http.post: answer nested too deeply");
    return 1;
}

/* ctx.consent_allows(party) in look-ups: does the person's consent, valid
 * today and unrevoked, name this organisation or agency? */
static int c_consent_allows(lua_State *L)
{
    luavm *vm = vm_of(L);
    const char *person = luaL_checkstring(L, 1), *party = luaL_checkstring(L, 2);
    if (!vm->allow_http) return luaL_error(L, "ctx.consent_allows is available only in lookup and prepare");
    bool allows = false;
    if (!vm->views || !vm->views->consent_allows || vm->views->consent_allows(vm->views_ud, person, party, &allows))
        return luaL_error(L, "consents cannot be read now");
    lua_pushboolean(L, allows);
    return 1;
}

static const luaL_Reg C_FUNCS[] = {
    {"load_text", c_load_text},     {"set_current", c_set_current},
    {"current", c_current},         {"array", c_array},
    {"memory_exceeded", c_memory_exceeded}, {"top_level", c_top_level},
    {"traceback", c_traceback},
    {"today", c_today},             {"date_valid", c_date_valid},
    {"date_add_days", c_date_add_days}, {"date_add_months", c_date_add_months},
    {"date_diff_days", c_date_diff_days}, {"json_encode", c_json_encode},
    {"json_decode", c_json_decode}, {"log", c_log},
    {"person", c_person},           {"history", c_history},
    {"query", c_query},             {"http_post", c_http_post},
    {"consent_allows", c_consent_allows},
    {NULL, NULL},
};

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = "(error object is not a string)";
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* A call without a wall-clock budget of its own (all but look-ups) is
 * stopped by the clock only when it has been waiting this many times its
 * CPU budget: plugin code cannot wait on anything, so the CPU budget is
 * what stops it; a thread starved of CPU on a busy machine is not the
 * plugin's fault (a wall deadline equal to the CPU budget made a call that
 * used a third of its CPU fail as plugin_timeout under load). */
#define WALL_BACKSTOP 20

/* Arms the budgets for one call from C. */
static void arm(luavm *vm, int budget_ms, int wall_ms)
{
    vm->budget_ms = budget_ms;
    vm->cpu_deadline_ns = time_thread_cpu_ns() + (int64_t)budget_ms * 1000000;
    int64_t wall = wall_ms > 0 ? (wall_ms > budget_ms ? wall_ms : budget_ms) : (int64_t)budget_ms * WALL_BACKSTOP;
    vm->wall_deadline_ns = time_mono_ns() + wall * 1000000;
    vm->killed = false;
    vm->mem_exceeded = false;
    vm->sys_oom = false;
    vm->log_lines = 0;
    vm->armed = true;
    lua_sethook(vm->L, vm_hook, LUA_MASKCOUNT, HOOK_EVERY);
}

static void disarm(luavm *vm)
{
    vm->armed = false;
    lua_sethook(vm->L, NULL, 0, 0);
}

/* Turns a failed pcall (the traceback on the stack) into e: the first line
 * (the message) for the client, the whole traceback to the log. A plugin
 * whose call was killed or ran out of memory poisons the VM, which is
 * rebuilt before the next request. */
static void call_error(luavm *vm, int rc, err_t *e)
{
    const char *trace = lua_tostring(vm->L, -1);
    char msg[400];
    str_copy(msg, sizeof msg, trace ? trace : "unknown error");
    char *nl = strchr(msg, '\n');
    if (nl) *nl = 0;
    const char *plugin = vm->killed ? vm->killed_plugin : vm->current_plugin;
    const char *version = vm->killed ? vm->killed_version : vm->current_version;
    if (vm->killed) {
        err_set(e, 500, "plugin_timeout", "plugin '%s' exceeded its CPU budget of %d ms",
                plugin[0] ? plugin : "?", vm->budget_ms);
        vm->poisoned = true;
    } else if (vm->sys_oom && !vm->mem_exceeded) {
        /* Not the plugin's doing: the server has no memory to give (its
         * error may have become another, a traceback that could not be
         * made: LUA_ERRERR). */
        err_set(e, 503, "overloaded", "the server is out of memory for plugin calls");
        vm->poisoned = true;
    } else if (rc == LUA_ERRMEM || vm->mem_exceeded) {
        err_set(e, 500, "plugin_memory", "plugin '%s' exceeded the memory cap of %zu MiB",
                plugin[0] ? plugin : "?", vm->mem_limit >> 20);
        vm->poisoned = true;
    } else {
        err_set(e, 500, "plugin_error", "plugin '%s' failed: %s", plugin[0] ? plugin : "?", msg);
        char logged[1600];
        log_value(trace ? trace : "", logged, sizeof logged);
        log_msg(LOG_WARN, "lua: call failed", " plugin=%s trace=\"%s\"", plugin[0] ? plugin : "-", logged);
    }
    err_detail(e, "plugin", json_string(plugin[0] ? plugin : "?"));
    err_detail(e, "version", json_string(version[0] ? version : "?"));
    err_detail(e, "message", json_string(msg));
    lua_pop(vm->L, 1);
    vm->current_plugin[0] = vm->current_version[0] = 0;
}

/* host.lua is compiled once per process: every VM after the first loads its
 * bytecode (made here from the embedded text, never read from anywhere). */
static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static char *host_bc;
static size_t host_bc_len;

static int host_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    (void)ud;
    char *nb = realloc(host_bc, host_bc_len + sz);
    if (!nb) return 1;
    host_bc = nb;
    memcpy(host_bc + host_bc_len, p, sz);
    host_bc_len += sz;
    return 0;
}

static void compile_host(void)
{
    lua_State *L = luaL_newstate();
    if (!L) return;
    if (luaL_loadbufferx(L, (const char *)embedded_host_lua, embedded_host_lua_len, "=host.lua", "t") == 0 &&
        lua_dump(L, host_writer, NULL) != 0) {
        free(host_bc);
        host_bc = NULL;
        host_bc_len = 0;
    }
    lua_close(L);
}

static int load_host(lua_State *L)
{
    pthread_once(&host_once, compile_host);
    if (host_bc) return luaL_loadbufferx(L, host_bc, host_bc_len, "=host.lua", "b");
    return luaL_loadbufferx(L, (const char *)embedded_host_lua, embedded_host_lua_len, "=host.lua", "t");
}

/* What luavm_new builds inside a protected call: a VM's libraries, the
 * host module and its entry points. Every step may allocate, and an
 * allocation refused (the process out of memory, or its address space
 * limited) is then an error luavm_new reports, not a panic that aborts the
 * server. */
typedef struct {
    luavm *vm;
    char *err;
    size_t errlen;
    bool failed; /* err says why */
} vm_build;

static int build_failed(vm_build *s)
{
    s->failed = true;
    return 0;
}

static int vm_build_protected(lua_State *L)
{
    vm_build *s = lua_touserdata(L, 1);
    luavm *vm = s->vm;
    static const luaL_Reg libs[] = {{"", luaopen_base},       {LUA_TABLIBNAME, luaopen_table},
                                    {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
                                    {LUA_OSLIBNAME, luaopen_os},     {NULL, NULL}};
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        lua_pushcfunction(L, lib->func);
        lua_pushstring(L, lib->name);
        lua_call(L, 1, 0);
    }
    /* The array marker metatable: one per VM, sealed (getmetatable of an
     * array answers false), so no plugin can change what another plugin's
     * arrays do. */
    lua_pushlightuserdata(L, (void *)&ARRAY_MT);
    lua_newtable(L);
    lua_pushstring(L, "array");
    lua_setfield(L, -2, "__jsontype");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_rawset(L, LUA_REGISTRYINDEX);
    /* Patterns that cannot run past the budget, for plugins and host.lua. */
    luavm_open_patterns(L);
    /* Protect the string metatable and take string.dump away even from
     * method calls ("x"):dump(). */
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    lua_pushstring(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    lua_pushcfunction(L, traceback);
    if (load_host(L)) {
        snprintf(s->err, s->errlen, "host.lua: %s", lua_tostring(L, -1));
        return build_failed(s);
    }
    lua_newtable(L);
    luaL_register(L, NULL, C_FUNCS);
    lua_pushinteger(L, LUAVM_MAX_DEADLINES);
    lua_setfield(L, -2, "max_deadlines");
    lua_pushinteger(L, LUAVM_MAX_MESSAGES);
    lua_setfield(L, -2, "max_messages");
    arm(vm, 5000, 0);
    int rc = lua_pcall(L, 1, 1, -3);
    disarm(vm);
    if (rc || !lua_istable(L, -1)) {
        snprintf(s->err, s->errlen, "host.lua: %s", rc ? lua_tostring(L, -1) : "did not return its entry points");
        return build_failed(s);
    }
    /* The entry points, by reference: nothing is looked up by name later. */
    static const char *const names[LV__COUNT] = {
        [LV_LOAD_SET] = "load_set", [LV_RUN_TESTS] = "run_tests", [LV_SUMMARY] = "summary",
        [LV_DESCRIBE] = "describe", [LV_LABELS] = "labels", [LV_OPEN] = "open", [LV_TRANSITION] = "transition",
        [LV_RECORD] = "record", [LV_PREPARE] = "prepare", [LV_ANY_PREPARE] = "any_prepare",
        [LV_LOOKUP] = "lookup", [LV_NEEDS_LOOKUP] = "needs_lookup", [LV_AGENCY_MESSAGE] = "agency_message",
        [LV_AGENCY_STATUS] = "agency_status", [LV_AGENCY_KNOWN] = "agency_known",
        [LV_REFERRAL_RULES] = "referral_rules", [LV_CLOSURE_REASONS] = "closure_reasons",
        [LV_WAITLIST] = "waitlist",
        [LV_REPLAY_STEP] = "replay_step", [LV_DECLS] = "decls", [LV_SCAFFOLD] = "scaffold",
    };
    for (int i = 0; i < LV__COUNT; i++) {
        lua_getfield(L, -1, names[i]);
        if (!lua_isfunction(L, -1)) {
            snprintf(s->err, s->errlen, "host.lua: entry point '%s' is missing", names[i]);
            return build_failed(s);
        }
        vm->refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_pop(L, 2); /* the module, the traceback handler */
    /* Defence in depth: what host.lua captured it keeps; nothing dangerous
     * stays reachable by name. */
    static const char *const gone[] = {"os", "load", "loadstring", "loadfile", "dofile", "require",
                                       "module", "collectgarbage", "getfenv", "setfenv", "newproxy",
                                       "print", "rawset", "gcinfo", NULL};
    for (const char *const *g = gone; *g; g++) {
        lua_pushnil(L);
        lua_setglobal(L, *g);
    }
    return 0;
}

luavm *luavm_new(size_t mem_limit, int budget_ms, char *err, size_t errlen)
{
    luavm *vm = calloc(1, sizeof *vm);
    if (!vm) {
        str_copy(err, errlen, "out of memory");
        return NULL;
    }
    vm->mem_limit = mem_limit;
    vm->budget_ms = budget_ms;
    lua_State *L = vm->L = luaL_newstate();
    if (!L) {
        atomic_fetch_add(&memory_refused, 1);
        snprintf(err, errlen, "cannot create a Lua VM (memory cap %zu bytes)", mem_limit);
        free(vm);
        return NULL;
    }
    vm->own_alloc = vm->inner_alloc = lua_getallocf(L, &vm->own_ud);
    vm->inner_ud = vm->own_ud;
    lua_setallocf(L, vm_alloc, vm);
    atomic_fetch_add(&vms_live, 1);
    lua_atpanic(L, vm_panic);
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    vm_build b = {.vm = vm, .err = err, .errlen = errlen};
    int rc = lua_cpcall(L, vm_build_protected, &b);
    if (rc && !b.failed)
        snprintf(err, errlen, "cannot build a Lua VM: %s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
    if (rc || b.failed) goto fail;
    lua_settop(L, 0);
    return vm;
fail:
    lua_setallocf(L, vm->own_alloc, vm->own_ud);
    lua_close(L);
    free(vm);
    atomic_fetch_sub(&vms_live, 1);
    return NULL;
}

void luavm_free(luavm *vm)
{
    if (!vm) return;
    err_clear(&vm->http_err);
    /* LuaJIT frees its arena whole at close only when its own allocator
     * is the state's: give it back first. */
    lua_setallocf(vm->L, vm->own_alloc, vm->own_ud);
    lua_close(vm->L);
    free(vm);
    atomic_fetch_sub(&vms_live, 1);
}

void luavm_push_entry(luavm *vm, luavm_entry which) { lua_rawgeti(vm->L, LUA_REGISTRYINDEX, vm->refs[which]); }

void luavm_settle(luavm *vm, const char *who)
{
    if (vm->poisoned || vm->mem_used <= vm->mem_limit / 2) return;
    lua_gc(vm->L, LUA_GCCOLLECT, 0);
    if (vm->mem_used <= vm->mem_limit / 2) return;
    log_msg(LOG_WARN, "lua: plugin code holds memory from call to call; its VM is rebuilt",
            " for=%s held_mib=%zu cap_mib=%zu", who && *who ? who : "-", vm->mem_used >> 20, vm->mem_limit >> 20);
    vm->poisoned = true;
}

void luavm_bind_views(luavm *vm, const luavm_views *views, void *ud)
{
    vm->views = views;
    vm->views_ud = ud;
}

int luavm_pcall(luavm *vm, int nargs, int nres, int budget_ms, err_t *e)
{
    return luavm_pcall_wall(vm, nargs, nres, budget_ms, 0, e);
}

int luavm_pcall_wall(luavm *vm, int nargs, int nres, int cpu_ms, int wall_ms, err_t *e)
{
    lua_State *L = vm->L;
    int fn = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, fn);
    arm(vm, cpu_ms, wall_ms);
    int rc = lua_pcall(L, nargs, nres, fn);
    disarm(vm);
    if (rc) {
        call_error(vm, rc, e);
        lua_remove(L, fn);
        return -1;
    }
    lua_remove(L, fn);
    /* A plugin that hit the memory cap and caught the error leaves a VM in
     * an unknown state: rebuild it before the next request. */
    if (vm->mem_exceeded) vm->poisoned = true;
    return 0;
}

/* ---- one question, whole inside a protected frame ---- */
typedef struct {
    luavm *vm;
    const luavm_question *q;
    err_t *e;
    int rc;
} ask_frame;

static int ask_protected(lua_State *L)
{
    ask_frame *f = lua_touserdata(L, 1);
    const luavm_question *q = f->q;
    lua_pop(L, 1);
    luavm_push_entry(f->vm, q->entry);
    int nargs = q->lay ? q->lay(L, q->ud) : 0;
    if (nargs < 0) {
        f->rc = 1;
        return 0;
    }
    if (luavm_pcall_wall(f->vm, nargs, 1, q->cpu_ms, q->wall_ms, f->e)) {
        f->rc = -1;
        return 0;
    }
    if (q->read) q->read(L, q->ud);
    f->rc = 0;
    return 0;
}

int luavm_ask(luavm *vm, const luavm_question *q, err_t *e)
{
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    vm->mem_exceeded = vm->sys_oom = false;
    ask_frame f = {.vm = vm, .q = q, .e = e, .rc = -1};
    int rc = lua_cpcall(L, ask_protected, &f);
    if (rc) {
        /* Raised while the question was laid or its answer read: only an
         * allocation refused, by the process or by the VM's cap (the
         * question did not fit beside what the VM holds). The VM is
         * rebuilt before its next call either way. */
        err_clear(e);
        if (vm->sys_oom && !vm->mem_exceeded)
            err_set(e, 503, "overloaded", "the server is out of memory for plugin calls");
        else if (rc == LUA_ERRMEM)
            err_set(e, 500, "plugin_memory", "the call's input or answer does not fit the memory cap of %zu MiB",
                    vm->mem_limit >> 20);
        else
            err_set(e, 500, "internal_error", "a plugin call's input or answer cannot be handled: %s",
                    lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
        vm->poisoned = true;
        vm->current_plugin[0] = vm->current_version[0] = 0;
        f.rc = -1;
    }
    lua_settop(L, top);
    return f.rc;
}

#define JSON_ARGS_MAX 4
typedef struct {
    json_t *args[JSON_ARGS_MAX];
    int n;
    json_t *out;
    const char *why;
} json_call;

static int lay_json(lua_State *L, void *ud)
{
    json_call *c = ud;
    for (int i = 0; i < c->n; i++)
        if (push_json(L, c->args[i], 0)) return -1;
    return c->n;
}

static void read_json(lua_State *L, void *ud)
{
    json_call *c = ud;
    c->out = luavm_to_json(L, -1, &c->why);
}

int luavm_call_json(luavm *vm, luavm_entry entry, int budget_ms, json_t **out, err_t *e, ...)
{
    json_call c = {.why = "cannot encode"};
    va_list ap;
    va_start(ap, e);
    for (json_t *a; (a = va_arg(ap, json_t *));) {
        if (c.n == JSON_ARGS_MAX) {
            va_end(ap);
            *out = NULL;
            return err_set(e, 500, "internal_error", "too many arguments for a plugin call"), -1;
        }
        c.args[c.n++] = a;
    }
    va_end(ap);
    luavm_question q = {.entry = entry, .cpu_ms = budget_ms, .lay = lay_json, .read = read_json, .ud = &c};
    int rc = luavm_ask(vm, &q, e);
    *out = rc == 0 ? c.out : NULL;
    if (rc == 1) err_set(e, 400, "validation_failed", "input nested too deeply");
    if (rc) {
        json_decref(c.out);
        return -1;
    }
    if (!*out) {
        err_set(e, 500, "plugin_error", "a plugin returned a value that is not JSON: %s", c.why);
        return -1;
    }
    return 0;
}

bool luavm_take_http_error(luavm *vm, err_t *e)
{
    if (!vm->http_err.status) return false;
    err_clear(e);
    *e = vm->http_err;
    memset(&vm->http_err, 0, sizeof vm->http_err);
    return true;
}
