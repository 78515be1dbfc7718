/* vm.h: one sandboxed VM and the calls into host.lua's entry points.
 * Internal to core/lua and core/rules (the only C that asks plugins). */
#ifndef SARYE_LUA_VM_H
#define SARYE_LUA_VM_H

#include <jansson.h>
#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "lua/host.h"

struct gen;

/* host.lua's entry points (the fields of the table it returns). */
typedef enum {
    LV_LOAD_SET, LV_RUN_TESTS, LV_SUMMARY, LV_DESCRIBE, LV_LABELS, LV_OPEN, LV_TRANSITION, LV_RECORD,
    LV_PREPARE, LV_ANY_PREPARE, LV_LOOKUP, LV_NEEDS_LOOKUP, LV_AGENCY_MESSAGE, LV_AGENCY_STATUS,
    LV_AGENCY_KNOWN, LV_REFERRAL_RULES, LV_CLOSURE_REASONS, LV_WAITLIST, LV_REPLAY_STEP, LV_DECLS, LV_SCAFFOLD,
    LV__COUNT
} luavm_entry;

/* How the host functions a plugin calls (ctx.person, ctx.query ...) read
 * the world during one call; supplied by core/rules. NULL functions (or no
 * views bound) answer nothing. Results are new JSON references. */
typedef struct {
    json_t *(*person)(void *ud, const char *id);
    json_t *(*history)(void *ud, const char *case_id);
    /* NULL with why set (a message for the plugin's error) */
    json_t *(*query)(void *ud, const char *name, json_t *params, char *why, size_t whylen);
    int (*consent_allows)(void *ud, const char *person_id, const char *party, bool *allows);
    int (*http_post)(void *ud, const char *agency, const char *path, json_t *body, int budget_ms, json_t **out,
                     err_t *e);
} luavm_views;

struct luavm {
    lua_State *L;
    lua_Alloc inner_alloc;      /* what vm_alloc asks, and counts: LuaJIT's own allocator (a
                                 * test puts one that fails here, as a process out of memory) */
    void *inner_ud;
    lua_Alloc own_alloc;        /* LuaJIT's own, given back at close (it frees its arena whole) */
    void *own_ud;
    size_t mem_used, mem_limit;
    bool mem_exceeded;
    bool sys_oom;               /* the process refused an allocation the cap allowed */
    int budget_ms;              /* the CPU budget of the call running */
    int64_t cpu_deadline_ns;    /* of the thread's CPU clock */
    int64_t wall_deadline_ns;   /* of the monotonic clock (look-ups wait on agencies) */
    int64_t top_level_start_ns; /* a file's top-level code runs (thread CPU clock at its start), or 0 */
    int64_t top_level_limit_ns; /* ... and the CPU it may take: past it, a catchable error */
    bool top_level_over;        /* it was stopped there */
    bool killed, poisoned;
    bool armed;                 /* a call from C is running under its budgets */
    char current_plugin[96], current_version[32];
    char killed_plugin[96], killed_version[32];
    int log_lines;              /* lines logged by the current call */
    int refs[LV__COUNT];        /* registry references of the entry points */
    const luavm_views *views;   /* bound for one call, or NULL */
    void *views_ud;
    bool allow_http;            /* sarye.http works only in lookups and prepares */
    char today[11];             /* what sarye.date.today() answers when set (a replayed day), else "" */
    bool mute_log;              /* plugin logs are dropped (replayed decisions write nothing) */
    err_t http_err;             /* why the last sarye.http call failed (agency down ...) */
    struct gen *gen;            /* the generation it was built from (plugins.c) */
    struct luavm *next_dead;
};

/* A new VM with host.lua loaded (no plugins yet). NULL with err. */
luavm *luavm_new(size_t mem_limit, int budget_ms, char *err, size_t errlen);
void luavm_free(luavm *vm);
/* Pushes entry point which. */
void luavm_push_entry(luavm *vm, luavm_entry which);
/* Calls the function below its nargs arguments on the stack under a CPU
 * budget (the thread's CPU time, so a busy machine does not make a call
 * look slow) and a wall-clock budget (what a look-up may wait for agencies;
 * 0: only a backstop of twenty times the CPU budget); nres results are left
 * on the stack on success. A failure (budget, memory cap, an error escaping
 * host.lua) is -1 with e (500 plugin_timeout, plugin_memory or
 * plugin_error, naming the plugin); its traceback goes to the log, never
 * into e. */
int luavm_pcall_wall(luavm *vm, int nargs, int nres, int cpu_ms, int wall_ms, err_t *e);
int luavm_pcall(luavm *vm, int nargs, int nres, int budget_ms, err_t *e);
/* One call of an entry point, asked whole inside a protected frame: lay
 * pushes its arguments and returns how many (or -1: one cannot be laid,
 * nested too deeply; nothing is called), read takes the answer on top of
 * the stack. An allocation refused while the question is laid or the
 * answer read (the process out of memory) is then an error like one in the
 * call, never a Lua panic that aborts the server. What read had built in C
 * when that happens is lost (the price of a process out of memory). */
typedef struct {
    luavm_entry entry;
    int cpu_ms, wall_ms; /* as luavm_pcall_wall's */
    int (*lay)(lua_State *L, void *ud);
    void (*read)(lua_State *L, void *ud);
    void *ud;
} luavm_question;
/* 0: answered (read has run); 1: lay refused (nothing was called); -1: the
 * call failed, e set (as luavm_pcall_wall's; or 503 overloaded, 500
 * plugin_memory when the question or its answer could not be held). The
 * stack is left as it was. */
int luavm_ask(luavm *vm, const luavm_question *q, err_t *e);
/* Calls entry with JSON arguments (NULL-terminated, at most 4) and converts
 * its first result to JSON (for tooling and listings). */
int luavm_call_json(luavm *vm, luavm_entry entry, int budget_ms, json_t **out, err_t *e, ...);
/* Binds the views the next calls read through (NULL unbinds). */
void luavm_bind_views(luavm *vm, const luavm_views *views, void *ud);
/* After a call of plugin code: a VM that still holds more than half its
 * memory cap once collected is poisoned (rebuilt before its next call), so
 * that a plugin hoarding memory between calls (a table at the top of its
 * file that grows) fails no one: not the next call, of whatever region,
 * that would have met the cap. Logs who the call ran for (a region, an
 * agency). */
void luavm_settle(luavm *vm, const char *who);
/* JSON <-> Lua: push (0, or -1 when nested too deeply) and convert (NULL
 * with *why). */
int luavm_push_json(lua_State *L, json_t *j);
json_t *luavm_to_json(lua_State *L, int idx, const char **why);
/* The same, refused (NULL, *why) past max bytes of JSON text (about). */
json_t *luavm_to_json_max(lua_State *L, int idx, size_t max, const char **why);

/* What one plugin decision may ask of the writer. Every region's writes
 * pass one writer, so a decision is bounded as a request is: host.lua
 * refuses the call past a count (it reads them as C.max_deadlines ...),
 * rules.c checks the verdict again, and what a plugin answers is refused
 * past the size of the largest request body by default. */
#define LUAVM_MAX_DEADLINES 64          /* deadlines a decision sets; and clears */
#define LUAVM_MAX_MESSAGES 16           /* outbox messages a decision writes */
#define LUAVM_ANSWER_MAX (1024 * 1024)  /* a value a plugin answers, as JSON text */
/* Marks the table on top of the stack as a JSON array. */
void luavm_mark_array(lua_State *L);
/* VMs alive in the process (for metrics and leak tests). */
int luavm_live(void);
/* Allocations the process refused to plugin VMs (not a VM's own cap), and
 * VMs it could not create: the machine is out of memory (for metrics). */
unsigned long luavm_memory_refused(void);
/* The sarye VM a Lua state belongs to, or NULL (a plain state: tests). */
luavm *luavm_of_state(lua_State *L);
/* For C code that runs long inside a call (the pattern matcher): raises the
 * watchdog's kill when the call is past its budget, like the hook does. */
void luavm_check_budget(luavm *vm);
/* Replaces string.find, match, gmatch and gsub with the step-counted
 * matcher (pattern.c). */
void luavm_open_patterns(lua_State *L);
/* Moves the error of the last failed sarye.http call into e; false if none. */
bool luavm_take_http_error(luavm *vm, err_t *e);

/* The calling thread's VM, rebuilt first if a newer generation is
 * published or the VM was poisoned by a killed call. NULL with e (503). */
luavm *luahost_vm(err_t *e);
/* The calling thread's VM for a case on generation gen_id: a VM of that
 * generation when it is kept loaded for open cases, else the serving one
 * (luahost_vm). NULL with e (503). */
luavm *luahost_vm_for(const char *gen_id, err_t *e);
/* The generation that VM was built from: 16 hex characters. */
const char *luavm_generation(const luavm *vm);
/* The per-call CPU budget from the configuration. */
int luahost_budget_ms(void);

#endif
