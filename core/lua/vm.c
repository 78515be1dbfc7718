/*
 * vm.c: one sandboxed LuaJIT VM. Creation (counting allocator, panic
 * handler, JIT off, only the base/table/string/math/os libraries, then the
 * trusted host.lua), the per-call CPU watchdog, JSON <-> Lua conversion and
 * the C functions host.lua hands to plugins through the `sarye` module.
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
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "lua/vm.h"
#include "store/store.h"
#include "outbound/outbound.h"

extern const unsigned char embedded_host_lua[];
extern const size_t embedded_host_lua_len;

#define HOOK_EVERY 1000 /* instructions between clock checks */
#define MAX_DEPTH 32    /* JSON <-> Lua nesting */

static const char ARRAY_MT = 0; /* registry key (its address) of the array marker */
static atomic_int vms_live;       /* VMs created and not yet closed */

int luavm_live(void) { return atomic_load(&vms_live); }

/* ---- allocator: counts bytes and refuses growth past the cap ---- */
static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    luavm *vm = ud;
    if (nsize == 0) {
        if (ptr) vm->mem_used -= osize;
        free(ptr);
        return NULL;
    }
    size_t old = ptr ? osize : 0;
    if (nsize > old && vm->mem_used + (nsize - old) > vm->mem_limit) {
        vm->mem_exceeded = true;
        return NULL;
    }
    void *np = realloc(ptr, nsize);
    if (np) vm->mem_used = vm->mem_used - old + nsize;
    return np;
}

static int vm_panic(lua_State *L)
{
    /* Every call into Lua is protected, so this is a bug in sarye itself. */
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

/* ---- CPU budget: a count hook checks the clock; once past the deadline
 * it re-arms itself at every instruction, so a plugin's pcall cannot
 * swallow the kill: the error is raised again until the call unwinds. */
static void vm_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    luavm *vm = vm_of(L);
    if (!vm->killed) {
        if (time_mono_ns() < vm->deadline_ns) return;
        vm->killed = true;
        snprintf(vm->killed_plugin, sizeof vm->killed_plugin, "%s", vm->current_plugin);
        snprintf(vm->killed_version, sizeof vm->killed_version, "%s", vm->current_version);
        lua_sethook(L, vm_hook, LUA_MASKCOUNT, 1);
    }
    luaL_error(L, "CPU budget of %d ms exceeded", vm->budget_ms);
}

/* ---- JSON <-> Lua ---- */
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
        lua_pushlightuserdata(L, (void *)&ARRAY_MT);
        lua_rawget(L, LUA_REGISTRYINDEX);
        lua_setmetatable(L, -2);
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

/* Converts the value at idx; NULL with a message in why. */
static json_t *to_json(lua_State *L, int idx, int depth, const char **why)
{
    if (idx < 0) idx = lua_gettop(L) + idx + 1;
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
                json_t *v = to_json(L, -1, depth + 1, why);
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
            json_t *v = to_json(L, -1, depth + 1, why);
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
    snprintf(vm->current_plugin, sizeof vm->current_plugin, "%s", p);
    snprintf(vm->current_version, sizeof vm->current_version, "%s", v);
    return 0;
}

static int c_current(lua_State *L)
{
    lua_pushstring(L, vm_of(L)->current_plugin);
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
    lua_pushlightuserdata(L, (void *)&ARRAY_MT);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_setmetatable(L, 1);
    return 1;
}

static int c_today(lua_State *L)
{
    char buf[11];
    date_today_str(buf);
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

static void push_days(lua_State *L, int64_t days)
{
    int y, m, d;
    char buf[16];
    date_from_days(days, &y, &m, &d);
    snprintf(buf, sizeof buf, "%04d-%02d-%02d", y % 10000, m % 100, d % 100);
    lua_pushstring(L, buf);
}

static int c_date_valid(lua_State *L)
{
    int y, m, d;
    lua_pushboolean(L, lua_type(L, 1) == LUA_TSTRING && date_parse(lua_tostring(L, 1), &y, &m, &d));
    return 1;
}

static int c_date_add_days(lua_State *L)
{
    int64_t days = check_date(L, 1);
    lua_Number n = luaL_checknumber(L, 2);
    if (n < -3650000 || n > 3650000) luaL_argerror(L, 2, "out of range");
    push_days(L, days + (int64_t)n);
    return 1;
}

static int c_date_add_months(lua_State *L)
{
    int y, m, d;
    const char *s = luaL_checkstring(L, 1);
    if (!date_parse(s, &y, &m, &d)) luaL_argerror(L, 1, "expected a date YYYY-MM-DD");
    lua_Number n = luaL_checknumber(L, 2);
    if (n < -120000 || n > 120000) luaL_argerror(L, 2, "out of range");
    int64_t total = (int64_t)y * 12 + (m - 1) + (int64_t)n;
    int ny = (int)(total / 12), nm = (int)(total % 12) + 1;
    while (!date_valid(ny, nm, d) && d > 28) d--; /* 1-31 + 1 month = end of February */
    if (!date_valid(ny, nm, d)) luaL_argerror(L, 2, "the result is out of range");
    push_days(L, date_to_days(ny, nm, d));
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
    json_t *j = to_json(L, 1, 0, &why);
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

static int c_log(lua_State *L)
{
    luavm *vm = vm_of(L);
    const char *level = luaL_checkstring(L, 1);
    const char *msg = luaL_checkstring(L, 2);
    log_level lvl = !strcmp(level, "error") ? LOG_ERROR : !strcmp(level, "warn") ? LOG_WARN
                    : !strcmp(level, "debug") ? LOG_DEBUG : LOG_INFO;
    log_msg(lvl, msg, " plugin=%s", vm->current_plugin[0] ? vm->current_plugin : "-");
    return 0;
}

/* Pushes a store reply body, or nil when no transaction is bound. */
static int push_store_json(lua_State *L, json_t *j, err_t *e)
{
    if (!j) {
        const char *msg = e->message[0] ? e->message : "not found";
        lua_pushnil(L);
        lua_pushstring(L, msg);
        err_clear(e);
        return 2;
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
    if (!vm->tx) { lua_pushnil(L); return 1; }
    err_t e = {0};
    json_t *j = NULL;
    store_person_get(vm->tx, &vm->who, id, &j, &e);
    return push_store_json(L, j, &e);
}

static int c_history(lua_State *L)
{
    luavm *vm = vm_of(L);
    const char *id = luaL_checkstring(L, 1);
    if (!vm->tx) { lua_newtable(L); return 1; }
    err_t e = {0};
    json_t *page = NULL;
    store_event_list(vm->tx, id, 500, NULL, &page, &e);
    json_t *items = page ? json_incref(json_object_get(page, "items")) : NULL;
    json_decref(page);
    return push_store_json(L, items, &e);
}

/* Named read-only queries: the only way a plugin reads beyond its case. */
static int c_query(lua_State *L)
{
    luavm *vm = vm_of(L);
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!vm->tx) { lua_newtable(L); return 1; }
    err_t e = {0};
    json_t *j = NULL;
    if (!strcmp(name, "cases_of_person")) {
        lua_getfield(L, 2, "person_id");
        const char *pid = lua_tostring(L, -1);
        if (!pid) return luaL_error(L, "query cases_of_person needs {person_id = ...}");
        store_person_cases(vm->tx, &vm->who, pid, &j, &e);
        lua_pop(L, 1);
        return push_store_json(L, j, &e);
    }
    static const char *const per_case[] = {"plans_of_case", "records_of_case", "meetings_of_case",
                                           "deadlines_of_case", NULL};
    int which = -1;
    for (int i = 0; per_case[i]; i++)
        if (!strcmp(name, per_case[i])) which = i;
    if (which < 0)
        return luaL_error(L, "unknown query '%s' (known: cases_of_person, plans_of_case, records_of_case,"
                             " meetings_of_case, deadlines_of_case)", name);
    lua_getfield(L, 2, "case_id");
    lua_getfield(L, 2, "kind");
    const char *cid = lua_tostring(L, -2), *kind = lua_tostring(L, -1);
    if (!cid) return luaL_error(L, "query %s needs {case_id = ...}", name);
    case_row c;
    if (store_case_load(vm->tx, &vm->who, cid, &c, &e) == 0) { /* only cases the principal may see */
        if (which == 0) store_record_list(vm->tx, cid, "plan", &j, &e);
        else if (which == 1) store_record_list(vm->tx, cid, kind, &j, &e);
        else if (which == 2) store_meetings_of_case(vm->tx, cid, &j, &e);
        else store_case_due(vm->tx, cid, &j, &e);
    }
    lua_pop(L, 2);
    return push_store_json(L, j, &e);
}

/* sarye.http.post(agency, path, body): a look-up of a configured agency,
 * only before the transaction; the URL is the agency's from configuration,
 * so a plugin cannot reach any other host. */
static int c_http_post(lua_State *L)
{
    luavm *vm = vm_of(L);
    const char *agency = luaL_checkstring(L, 1);
    const char *path = luaL_optstring(L, 2, "");
    if (!vm->allow_http)
        return luaL_error(L, "sarye.http is available only in prepare functions (before the transaction)");
    json_t *body = NULL;
    if (!lua_isnoneornil(L, 3)) {
        const char *why = "cannot encode";
        body = to_json(L, 3, 0, &why);
        if (!body) return luaL_error(L, "sarye.http.post: body %s", why);
    }
    int64_t left_ms = (vm->deadline_ns - time_mono_ns()) / 1000000;
    json_t *out = NULL;
    err_clear(&vm->http_err);
    int rc = outbound_call(agency, *path ? path : NULL, body, left_ms > 0 ? (int)left_ms : 1, &out, &vm->http_err);
    json_decref(body);
    if (rc) return luaL_error(L, "%s", vm->http_err.message);
    err_clear(&vm->http_err);
    rc = push_json(L, out, 0);
    json_decref(out);
    if (rc) return luaL_error(L, "sarye.http.post: answer nested too deeply");
    return 1;
}

/* ctx.consent_allows(party) in look-ups: does the person's consent, valid
 * today and unrevoked, name this organisation or agency? (its own read) */
typedef struct {
    const char *person_id, *party;
    bool allows;
} consent_arg;

static int work_consent_allows(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    consent_arg *a = arg;
    char id[ID_MAX];
    if (store_consent_valid_for(tx, a->person_id, a->party, NULL, id, e)) return -1;
    a->allows = id[0] != 0;
    return 0;
}

static int c_consent_allows(lua_State *L)
{
    luavm *vm = vm_of(L);
    consent_arg a = {luaL_checkstring(L, 1), luaL_checkstring(L, 2), false};
    if (!vm->allow_http) return luaL_error(L, "ctx.consent_allows is available only in look-ups");
    err_t e = {0};
    store_reply reply = {0};
    if (store_read(work_consent_allows, &a, &reply, &e)) {
        err_clear(&e);
        return luaL_error(L, "consents cannot be read now");
    }
    lua_pushboolean(L, a.allows);
    return 1;
}

static const luaL_Reg C_FUNCS[] = {
    {"load_text", c_load_text},     {"set_current", c_set_current},
    {"current", c_current},         {"array", c_array},
    {"memory_exceeded", c_memory_exceeded},
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

/* Arms the CPU budget for one call from C. */
static void arm(luavm *vm, int budget_ms)
{
    vm->budget_ms = budget_ms;
    vm->deadline_ns = time_mono_ns() + (int64_t)budget_ms * 1000000;
    vm->killed = false;
    vm->mem_exceeded = false;
    lua_sethook(vm->L, vm_hook, LUA_MASKCOUNT, HOOK_EVERY);
}

static void disarm(luavm *vm) { lua_sethook(vm->L, NULL, 0, 0); }

/* Turns a failed pcall (error message on the stack) into e; a plugin whose
 * call was killed or ran out of memory poisons the VM, which is rebuilt. */
static void call_error(luavm *vm, int rc, err_t *e)
{
    const char *msg = lua_tostring(vm->L, -1);
    const char *plugin = vm->killed ? vm->killed_plugin : vm->current_plugin;
    const char *version = vm->killed ? vm->killed_version : vm->current_version;
    if (vm->killed) {
        err_set(e, 500, "plugin_timeout", "plugin '%s' exceeded its CPU budget of %d ms",
                plugin[0] ? plugin : "?", vm->budget_ms);
        vm->poisoned = true;
    } else if (rc == LUA_ERRMEM || vm->mem_exceeded) {
        err_set(e, 500, "plugin_memory", "plugin '%s' exceeded the memory cap of %zu MiB",
                plugin[0] ? plugin : "?", vm->mem_limit >> 20);
        vm->poisoned = true;
    } else {
        err_set(e, 500, "plugin_error", "plugin '%s' failed: %s", plugin[0] ? plugin : "?",
                msg ? msg : "unknown error");
    }
    err_detail(e, "plugin", json_string(plugin[0] ? plugin : "?"));
    err_detail(e, "version", json_string(version[0] ? version : "?"));
    if (msg) err_detail(e, "message", json_string(msg));
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

luavm *luavm_new(size_t mem_limit, int budget_ms, char *err, size_t errlen)
{
    luavm *vm = calloc(1, sizeof *vm);
    if (!vm) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    vm->mem_limit = mem_limit;
    vm->budget_ms = budget_ms;
    lua_State *L = vm->L = lua_newstate(vm_alloc, vm);
    if (!L) {
        snprintf(err, errlen, "cannot create a Lua VM (memory cap %zu bytes)", mem_limit);
        free(vm);
        return NULL;
    }
    atomic_fetch_add(&vms_live, 1);
    lua_atpanic(L, vm_panic);
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    static const luaL_Reg libs[] = {{"", luaopen_base},       {LUA_TABLIBNAME, luaopen_table},
                                    {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
                                    {LUA_OSLIBNAME, luaopen_os},     {NULL, NULL}};
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        lua_pushcfunction(L, lib->func);
        lua_pushstring(L, lib->name);
        lua_call(L, 1, 0);
    }
    /* The array marker metatable. */
    lua_pushlightuserdata(L, (void *)&ARRAY_MT);
    lua_newtable(L);
    lua_pushstring(L, "array");
    lua_setfield(L, -2, "__jsontype");
    lua_rawset(L, LUA_REGISTRYINDEX);
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
        snprintf(err, errlen, "host.lua: %s", lua_tostring(L, -1));
        goto fail;
    }
    lua_newtable(L);
    luaL_register(L, NULL, C_FUNCS);
    arm(vm, 5000);
    int rc = lua_pcall(L, 1, 0, -3);
    disarm(vm);
    if (rc) {
        snprintf(err, errlen, "host.lua: %s", lua_tostring(L, -1));
        goto fail;
    }
    lua_pop(L, 1); /* traceback */
    /* Defence in depth: what host.lua captured it keeps; nothing dangerous
     * stays reachable by name. */
    static const char *const gone[] = {"os", "load", "loadstring", "loadfile", "dofile", "require",
                                       "module", "collectgarbage", "getfenv", "setfenv", "newproxy",
                                       "print", "rawset", "gcinfo", NULL};
    for (const char *const *g = gone; *g; g++) {
        lua_pushnil(L);
        lua_setglobal(L, *g);
    }
    return vm;
fail:
    lua_close(L);
    free(vm);
    atomic_fetch_sub(&vms_live, 1);
    return NULL;
}

void luavm_free(luavm *vm)
{
    if (!vm) return;
    err_clear(&vm->http_err);
    lua_close(vm->L);
    free(vm);
    atomic_fetch_sub(&vms_live, 1);
}

int luavm_call_budget(luavm *vm, const char *fn, json_t *arg, json_t **out, int budget_ms, err_t *e)
{
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    *out = NULL;
    lua_pushcfunction(L, traceback);
    lua_getglobal(L, fn);
    if (!lua_isfunction(L, -1)) {
        lua_settop(L, top);
        err_set(e, 500, "internal_error", "host function '%s' is missing", fn);
        return -1;
    }
    if (push_json(L, arg ? arg : json_null(), 0)) {
        lua_settop(L, top);
        err_set(e, 400, "validation_failed", "input nested too deeply");
        return -1;
    }
    arm(vm, budget_ms);
    int rc = lua_pcall(L, 1, 1, top + 1);
    disarm(vm);
    if (rc) {
        call_error(vm, rc, e);
        lua_settop(L, top);
        return -1;
    }
    /* A plugin that hit the memory cap and caught the error leaves a VM in
     * an unknown state: rebuild it before the next request. */
    if (vm->mem_exceeded) vm->poisoned = true;
    const char *why = "cannot encode";
    *out = to_json(L, -1, 0, &why);
    lua_settop(L, top);
    if (!*out) {
        err_set(e, 500, "plugin_error", "a plugin returned a value that is not JSON: %s", why);
        return -1;
    }
    return 0;
}

size_t luavm_memory(const luavm *vm) { return vm->mem_used; }

int luavm_call_lookup(luavm *vm, const char *fn, json_t *arg, json_t **out, int budget_ms, err_t *e)
{
    vm->allow_http = true;
    err_clear(&vm->http_err);
    int rc = luavm_call_budget(vm, fn, arg, out, budget_ms, e);
    vm->allow_http = false;
    return rc;
}

bool luavm_take_http_error(luavm *vm, err_t *e)
{
    if (!vm->http_err.status) return false;
    err_clear(e);
    *e = vm->http_err;
    memset(&vm->http_err, 0, sizeof vm->http_err);
    return true;
}
