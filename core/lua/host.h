/*
 * lua (host): the LuaJIT plugin host. One VM per serving thread, never
 * shared and never locked, built from the published plugin generation and
 * rebuilt at the thread's next request boundary when a reload publishes a
 * new one. Plugins run in an allow-list sandbox, off the JIT (so the
 * instruction-count watchdog always fires), with a memory cap per VM and a
 * CPU budget per call. Cross-thread state (the generations) lives in C.
 *
 * This header is the host's lifecycle, listings and tooling. Questions to
 * the plugins go through core/rules/, the only C that calls into a VM
 * (lua/vm.h).
 */
#ifndef SARYE_LUA_HOST_H
#define SARYE_LUA_HOST_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"
#include "config/config.h"

typedef struct luavm luavm;

/* Loads and validates the plugin set of cfg->plugins and publishes it;
 * starts the reloader thread (SIGHUP, file watch). -1 with every error in
 * err when the set is invalid: the server does not start on a broken set. */
int luahost_init(const config *cfg, char *err, size_t errlen);
void luahost_shutdown(void);
bool luahost_ready(void);

/* Reloads now. 0: published or unchanged (*out = {generation, changed,
 * plugins}); -1: e is 422 plugin_invalid with details.errors, and the
 * serving generation is untouched. */
int luahost_reload(json_t **out, err_t *e);
/* The set on disk now (what a reload would publish), validated in a
 * throwaway VM and compared with the serving generation file by file:
 * {live, candidate: {generation, hash, valid, errors, plugins}, same,
 * files: [{path, status: same|changed|added|removed, live_hash,
 * candidate_hash, live_text, candidate_text (not for same)}]}. Publishes
 * nothing. 0, or -1 with e. */
int luahost_candidate(json_t **out, err_t *e);
/* Asks the reloader thread to reload (SIGHUP); returns at once. */
void luahost_reload_async(void);

/* Drops the calling thread's VM (thread exit). */
void luahost_thread_done(void);

/* Admin listing: every plugin of the serving generation with its file,
 * content hash, and the last load error; the generations this process
 * published (newest first). New reference. */
json_t *luahost_plugins_json(void);
/* Loaded programs summary of the serving generation. New reference. */
json_t *luahost_programs_json(void);
/* Prometheus lines for the plugin host; caller frees. */
char *luahost_metrics(void);

/* Tooling (sarye plugin check|test): load DIR in a throwaway VM exactly as
 * a reload does. check: 0 valid, else *errors (array). test: runs the tests
 * of every plugin, or of the one in file `only` (a path relative to dir);
 * *results is the array of {plugin, file, name, ok, message?, line?}. */
int luahost_check_dir(const config *cfg, const char *dir, json_t **errors);
int luahost_test_dir(const config *cfg, const char *dir, const char *only, json_t **errors,
                     json_t **results);

#endif
