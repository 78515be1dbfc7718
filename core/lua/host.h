/*
 * lua (host): the LuaJIT plugin host. One VM per serving thread, never
 * shared and never locked, built from the published plugin generation and
 * rebuilt at the thread's next request boundary when a reload publishes a
 * new one. Plugins run in an allow-list sandbox, off the JIT (so the
 * instruction-count watchdog always fires), with a memory cap per VM and a
 * CPU budget per call. Cross-thread state (the generations) lives in C.
 *
 * Besides the serving generation the host may keep older ones loaded, for
 * the open cases that stay on the rules they started with (a reload's
 * `stay`); a thread asked about such a case builds a VM of that generation
 * beside its serving one. Which cases use which generation is the process
 * layer's business: it keeps, retires and bounds them through this header.
 *
 * This header is the host's lifecycle, generations, listings and tooling.
 * Questions to the plugins go through core/rules/, the only C that calls
 * into a VM (lua/vm.h).
 */
#ifndef SARYE_LUA_HOST_H
#define SARYE_LUA_HOST_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"
#include "config/config.h"

typedef struct luavm luavm;
/* A loaded and validated plugin set: serving, kept for open cases, or a
 * candidate not (yet) published. Reference-counted. */
typedef struct gen luagen;

/* Loads and validates the plugin set of cfg->plugins and publishes it;
 * starts the reloader thread (SIGHUP, file watch). -1 with every error in
 * err when the set is invalid: the server does not start on a broken set. */
int luahost_init(const config *cfg, char *err, size_t errlen);
void luahost_shutdown(void);
bool luahost_ready(void);

/* What SIGHUP, the file watch and the periodic tick call (set by the
 * process layer, which owns the store the reload writes to); they run on
 * the host's reloader thread, and thread_done when it exits. Without
 * hooks a reload is luahost_reload(). */
typedef struct {
    void (*reload)(void);
    void (*tick)(void);        /* every tick_ms, while the host runs */
    void (*thread_done)(void);
    int tick_ms;
} luahost_hooks;
void luahost_set_hooks(const luahost_hooks *h);
/* The set on disk now (what a reload would publish), validated in a
 * throwaway VM and compared with the serving generation file by file (the
 * console's diff): {live, candidate: {generation, hash, valid, errors,
 * plugins}, same, files: [{path, status: same|changed|added|removed,
 * live_hash, candidate_hash, live_text, candidate_text (not for same)}]}.
 * Publishes nothing. 0, or -1 with e. */
int luahost_candidate_diff(json_t **out, err_t *e);
/* Asks the reloader thread to reload (SIGHUP); returns at once. */
void luahost_reload_async(void);
/* Reloads the configured directory now and publishes it, retiring every
 * older generation. 0: published or unchanged (*out = {generation,
 * changed, plugins}); -1: e is 422 plugin_invalid with details.errors,
 * and the serving generation is untouched. */
int luahost_reload(json_t **out, err_t *e);

/* ---- generations ---- */
/* A candidate set: the files of dir (NULL: the serving set's), with
 * changes laid over them (array of {path, text}; text null removes the
 * file; NULL: none), validated as a reload validates (with the plugins'
 * tests when tests). 0 with *out (a new reference: the serving or a kept
 * generation itself when the files are the same); 1 invalid with *errors
 * (array of {plugin, file, line?, message}); -1 could not run (e). */
typedef struct {
    const char *dir;
    json_t *changes;
    bool tests;
} luahost_source;
int luahost_candidate(const luahost_source *src, luagen **out, json_t **errors, err_t *e);
void luagen_ref(luagen *g);
void luagen_unref(luagen *g);
/* Its generation: 16 hex characters (the start of its hash). */
const char *luagen_id(const luagen *g);
/* The SHA-256 (hex) of its files. */
const char *luagen_hash(const luagen *g);
/* What migrating open cases reads of it: program (or "program@code") ->
 * {transitions {stage: [to]}, deadlines {kind: {start, offset, stop, label,
 * plugin}}}. Borrowed. */
json_t *luagen_decls(const luagen *g);
/* Its plugins: [{id, kind, version, file, name, regions?}]. Borrowed. */
json_t *luagen_plugins(const luagen *g);
/* A digest of every file the rules of program under region come from: the
 * program's, the one it extends, the region's that claims the code, and
 * the agencies'. Two sets with the same one decide the same for its cases. */
void luagen_rules_digest(const luagen *g, const char *program, const char *region, char out[65]);
/* Its files as [{path, text}]. New reference. */
json_t *luagen_files(const luagen *g);
/* The serving generation, or a loaded one by id (serving or kept); a new
 * reference, or NULL. */
luagen *luahost_serving(void);
luagen *luahost_loaded(const char *id);
/* Publishes g (it serves from every thread's next request). keep: the
 * generation serving until now stays loaded (its open cases stay on it);
 * otherwise it and every kept one retire. */
void luahost_publish(luagen *g, bool keep);
/* A kept generation no open case uses any more: unloaded. */
void luahost_retire(const char *id);
/* Loads a kept generation from its files (at start: the store has them),
 * validated without its tests; -1 with err when it no longer loads or its
 * files do not hash to id. */
int luahost_keep_files(const char *id, json_t *files, char *err, size_t errlen);
/* Loaded generations: [{id, serving, loaded_at}], the serving one first. */
json_t *luahost_generations_json(void);
/* How many generations are loaded (serving and kept). */
int luahost_loaded_count(void);
/* A reload the process layer refused (its errors show in the listing) or
 * found unchanged: counted for /metrics. */
void luahost_note_refused(json_t *errors);
void luahost_note_unchanged(void);

/* A VM of g for work outside the serving threads (shadow replay), under
 * the same memory cap and CPU budget; NULL with err. Free it with
 * luahost_vm_free (which releases g). */
luavm *luahost_vm_of(luagen *g, char *err, size_t errlen);
void luahost_vm_free(luavm *vm);

/* Drops the calling thread's VMs (thread exit). */
void luahost_thread_done(void);

/* Admin listing: every plugin of the serving generation with its file,
 * content hash, and the last load error; the generations this process
 * published (newest first). New reference. */
json_t *luahost_plugins_json(void);
/* Loaded programs summary of the serving generation. New reference. */
json_t *luahost_programs_json(void);
/* Prometheus lines for the plugin host; caller frees. */
char *luahost_metrics(void);

/* ---- tooling (sarye plugin check|test|new): a set loaded in a throwaway
 * VM exactly as a reload does ---- */
typedef struct {
    const char *dir;      /* the set */
    const char *overlay;  /* a directory whose plugin files are laid over it (a work in progress), or NULL */
    const char *add_path; /* a file laid over it at this path ("regions/x.lua"), or NULL */
    const char *add_text;
    const char *only;     /* run only the tests of this file (a path in the set) */
    const char *filter;   /* and only tests whose name contains this */
} luahost_tool_set;
/* check: 0 valid, else *errors (array). test: *results is the array of
 * {plugin, file, name, ok, message?, line?, ms, log?}. */
int luahost_check_set(const config *cfg, const luahost_tool_set *s, json_t **errors);
int luahost_test_set(const config *cfg, const luahost_tool_set *s, json_t **errors, json_t **results);
int luahost_check_dir(const config *cfg, const char *dir, json_t **errors);
/* A new plugin of kind (program, region, agency) for the set: 0 with
 * *path (relative to the set) and *text (both malloc'd); 1 with *errors
 * (the set does not load) or a message in msg. opts: {region, program} or
 * NULL. */
int luahost_scaffold(const config *cfg, const luahost_tool_set *set, const char *kind, const char *id, json_t *opts,
                     char **path, char **text, json_t **errors, char *msg, size_t msglen);

#endif
