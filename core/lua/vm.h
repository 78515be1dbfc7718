/* vm.h: internal to core/lua — one sandboxed VM and calls into host.lua. */
#ifndef SARYE_LUA_VM_H
#define SARYE_LUA_VM_H

#include <jansson.h>
#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "lua/host.h"
#include "store/records.h"

struct gen;

struct luavm {
    lua_State *L;
    size_t mem_used, mem_limit;
    bool mem_exceeded;
    int budget_ms;
    int64_t deadline_ns;
    bool killed, poisoned;
    char current_plugin[96], current_version[32];
    char killed_plugin[96], killed_version[32];
    store_tx *tx;      /* bound for the store views, or NULL */
    bool allow_http;   /* sarye.http works only in the phase before the transaction */
    err_t http_err;    /* why the last sarye.http call failed (agency down ...) */
    principal who;
    struct gen *gen;   /* the generation it was built from (plugins.c) */
    struct luavm *next_dead;
};

/* A new VM with host.lua loaded (no plugins yet). NULL with err. */
luavm *luavm_new(size_t mem_limit, int budget_ms, char *err, size_t errlen);
void luavm_free(luavm *vm);
/* Calls host.lua's global fn(arg) under a CPU budget. */
int luavm_call_budget(luavm *vm, const char *fn, json_t *arg, json_t **out, int budget_ms, err_t *e);
size_t luavm_memory(const luavm *vm);
/* VMs alive in the process (for metrics and leak tests). */
int luavm_live(void);

#endif
