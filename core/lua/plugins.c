/*
 * plugins.c: plugin sets and their generations. A reload reads every file
 * of the plugin directory, hashes the set, and — unless the hash is one
 * loaded — loads and validates it (structure, references, every plugin's
 * own tests) in a throwaway VM under a time budget. Only a valid set is
 * published, by swapping one pointer. Each serving thread notices the new
 * generation at its next request boundary and rebuilds its VM; old VMs are
 * handed to the reaper thread and closed off the request path.
 *
 * Older generations may stay loaded for the open cases that keep them (a
 * reload's `stay`): a thread asked about such a case builds a VM of that
 * generation beside its serving one (a few per thread at most), and drops
 * it once the generation retires.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include <lauxlib.h>

#include "lua/vm.h"

#define MAX_FILE_BYTES (1024 * 1024)
#define MAX_FILES 512

typedef struct {
    char *path; /* relative to the plugin directory: "programs/integrated.lua" */
    char *text;
    size_t len;
    char hash[SHA256_HEX];
    char *bc;      /* LuaJIT bytecode the validating VM compiled from text */
    size_t bc_len;
} plugin_file;

typedef struct gen {
    atomic_int refs;
    atomic_bool retired;   /* no longer loaded: threads drop their VMs of it */
    char hash[SHA256_HEX]; /* of the whole set */
    char id[17];           /* its first 16 hex characters: the generation */
    plugin_file *files;
    int n_files;
    json_t *summary;       /* {programs, plugins, decls} from host.lua's summary() */
    char loaded_at[RFC3339_MAX];
} gen;

#define MAX_KEPT 16        /* generations kept for open cases (the process bounds it lower) */
#define THREAD_KEPT 4      /* VMs of kept generations one thread holds */

static struct {
    config cfg;
    pthread_mutex_t mu;        /* guards current and kept */
    gen *current;
    gen *kept[MAX_KEPT];       /* older generations open cases stay on */
    int n_kept;
    pthread_mutex_t reload_mu; /* one reload at a time (the legacy path) */
    json_t *last_errors;       /* of the last refused reload, or NULL */
    atomic_ulong reloads_published, reloads_unchanged, reloads_refused;
    atomic_int gens_live;
    luahost_hooks hooks;
    /* the reaper and the reloader */
    pthread_t reaper, reloader;
    bool threads_started;
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;
    luavm *dead;
    bool stop, reload_wanted;
} H = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .reload_mu = PTHREAD_MUTEX_INITIALIZER,
       .bg_mu = PTHREAD_MUTEX_INITIALIZER,
       .bg_cv = PTHREAD_COND_INITIALIZER};

static _Thread_local luavm *tl_vm;                /* of the serving generation */
static _Thread_local luavm *tl_kept[THREAD_KEPT]; /* of kept generations */
static _Thread_local int tl_kept_next;

/* ---- generations ---- */
static void files_free(plugin_file *f, int n)
{
    for (int i = 0; i < n; i++) {
        free(f[i].path);
        free(f[i].text);
        free(f[i].bc);
    }
    free(f);
}

static void gen_unref(gen *g)
{
    if (!g || atomic_fetch_sub(&g->refs, 1) != 1) return;
    atomic_fetch_sub(&H.gens_live, 1);
    files_free(g->files, g->n_files);
    json_decref(g->summary);
    free(g);
}

void luagen_ref(luagen *g) { atomic_fetch_add(&g->refs, 1); }
void luagen_unref(luagen *g) { gen_unref(g); }
const char *luagen_id(const luagen *g) { return g->id; }
const char *luagen_hash(const luagen *g) { return g->hash; }
json_t *luagen_decls(const luagen *g) { return json_object_get(g->summary, "decls"); }
json_t *luagen_plugins(const luagen *g) { return json_object_get(g->summary, "plugins"); }

/* ---- reading a plugin directory ---- */
static int cmp_files(const void *a, const void *b)
{
    return strcmp(((const plugin_file *)a)->path, ((const plugin_file *)b)->path);
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
        return NULL;
    }
    char *buf = malloc(MAX_FILE_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_FILE_BYTES + 1, f) : 0;
    fclose(f);
    if (!buf) {
        str_copy(err, errlen, "out of memory");
        return NULL;
    }
    if (n > MAX_FILE_BYTES) {
        free(buf);
        snprintf(err, errlen, "larger than %d bytes", MAX_FILE_BYTES);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Reads DIR/{programs,regions,agencies}/ *.lua, sorted. Files that cannot
 * be read become errors. */
static int read_set(const char *dir, plugin_file **out, int *n_out, json_t *errors)
{
    static const char *const kinds[] = {"programs", "regions", "agencies"};
    plugin_file *files = calloc(MAX_FILES, sizeof *files);
    if (!files) return -1;
    int n = 0;
    for (int k = 0; k < 3; k++) {
        char sub[1200];
        snprintf(sub, sizeof sub, "%s/%s", dir, kinds[k]);
        DIR *d = opendir(sub);
        if (!d) continue;
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t l = strlen(de->d_name);
            if (de->d_name[0] == '.' || l < 5 || strcmp(de->d_name + l - 4, ".lua")) continue;
            char rel[600], full[1900], err[200];
            snprintf(rel, sizeof rel, "%s/%s", kinds[k], de->d_name);
            snprintf(full, sizeof full, "%s/%s", dir, rel);
            if (n == MAX_FILES) {
                json_array_append_new(errors, json_pack("{s:n, s:s, s:s}", "plugin", "file", rel, "message",
                                                        "too many plugin files"));
                break;
            }
            size_t len = 0;
            char *text = read_file(full, &len, err, sizeof err);
            if (!text) {
                json_array_append_new(errors, json_pack("{s:n, s:s, s:s}", "plugin", "file", rel, "message", err));
                continue;
            }
            files[n].path = strdup(rel);
            files[n].text = text;
            files[n].len = len;
            sha256_hex(text, len, files[n].hash);
            n++;
        }
        closedir(d);
    }
    qsort(files, (size_t)n, sizeof *files, cmp_files);
    *out = files;
    *n_out = n;
    return 0;
}

static void set_hash(const plugin_file *f, int n, char out[SHA256_HEX])
{
    size_t cap = 1 + (size_t)n * 700, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        memset(out, '0', SHA256_HEX - 1);
        out[SHA256_HEX - 1] = 0;
        return;
    }
    for (int i = 0; i < n; i++) len += (size_t)snprintf(buf + len, cap - len, "%s\n%s\n", f[i].path, f[i].hash);
    sha256_hex(buf, len, out);
    free(buf);
}

static json_t *files_json(const plugin_file *f, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s%}", "path", f[i].path, "text", f[i].text, f[i].len));
    return a;
}

typedef struct {
    char *buf;
    size_t len, cap;
} dump_buf;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    dump_buf *b = ud;
    if (b->len + sz > b->cap) {
        size_t cap = (b->len + sz) * 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) return 1;
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, p, sz);
    b->len += sz;
    return 0;
}

typedef struct {
    int ref, n;
    plugin_file *f;
} keep_call;

static int keep_protected(lua_State *L)
{
    keep_call *k = lua_touserdata(L, 1);
    plugin_file *f = k->f;
    lua_rawgeti(L, LUA_REGISTRYINDEX, k->ref);
    for (int i = 0; i < k->n && lua_istable(L, -1); i++) {
        lua_getfield(L, -1, f[i].path);
        dump_buf b = {0};
        if (lua_isfunction(L, -1) && lua_dump(L, dump_writer, &b) == 0) {
            free(f[i].bc);
            f[i].bc = b.buf;
            f[i].bc_len = b.len;
        } else {
            free(b.buf);
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* Keeps the bytecode of every chunk a validating VM compiled (the table
 * load_set returned, at registry reference ref), so that the serving
 * threads load the set without parsing it again. In a protected frame: an
 * allocation refused there (the process out of memory) leaves chunks
 * without bytecode, which the serving threads then parse: slower, not
 * wrong. */
static void keep_bytecode(luavm *vm, int ref, plugin_file *f, int n)
{
    keep_call k = {.ref = ref, .n = n, .f = f};
    int top = lua_gettop(vm->L);
    lua_cpcall(vm->L, keep_protected, &k);
    lua_settop(vm->L, top);
}

/* Pushes the chunks compiled for this set, for a new VM's load_set. */
static void push_bytecode(luavm *vm, const plugin_file *f, int n)
{
    lua_State *L = vm->L;
    lua_newtable(L);
    for (int i = 0; i < n; i++) {
        if (!f[i].bc) continue;
        char name[600];
        snprintf(name, sizeof name, "=%s", f[i].path);
        if (luaL_loadbufferx(L, f[i].bc, f[i].bc_len, name, "b") == 0) lua_setfield(L, -2, f[i].path);
        else lua_pop(L, 1);
    }
}

/* Loads files into a VM; the load errors (array) in *errors. With
 * compiled_ref, the table of compiled chunks is kept in the registry. */
static int vm_load_unprotected(luavm *vm, const plugin_file *f, int n, int budget_ms, json_t **errors,
                               int *compiled_ref, err_t *e)
{
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    luavm_push_entry(vm, LV_LOAD_SET);
    /* { {path=, text=}, ... }, pushed as they are: a set's sources, copied
     * through JSON (and checked as UTF-8 again), were a third of a VM's build */
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, f[i].path);
        lua_setfield(L, -2, "path");
        lua_pushlstring(L, f[i].text, f[i].len);
        lua_setfield(L, -2, "text");
        lua_rawseti(L, -2, i + 1);
    }
    push_bytecode(vm, f, n);
    if (luavm_pcall(vm, 2, 2, budget_ms, e)) {
        lua_settop(L, top);
        return -1;
    }
    const char *why = "cannot encode";
    *errors = luavm_to_json(L, -2, &why);
    if (compiled_ref) {
        lua_pushvalue(L, -1);
        *compiled_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_settop(L, top);
    if (!*errors) {
        err_set(e, 500, "internal_error", "load errors cannot be read: %s", why);
        return -1;
    }
    return 0;
}

typedef struct {
    luavm *vm;
    const plugin_file *f;
    int n, budget_ms, rc;
    json_t **errors;
    int *compiled_ref;
    err_t *e;
} load_call;

static int vm_load_protected(lua_State *L)
{
    load_call *c = lua_touserdata(L, 1);
    c->rc = vm_load_unprotected(c->vm, c->f, c->n, c->budget_ms, c->errors, c->compiled_ref, c->e);
    return 0;
}

/* The sources and chunks of a set (hundreds of kilobytes) are pushed inside
 * a protected call: an allocation refused there (the process out of memory,
 * or its address space limited) is an error, not a Lua panic that aborts the
 * server. */
static int vm_load(luavm *vm, const plugin_file *f, int n, int budget_ms, json_t **errors, int *compiled_ref,
                   err_t *e)
{
    load_call c = {.vm = vm, .f = f, .n = n, .budget_ms = budget_ms, .rc = -1, .errors = errors,
                   .compiled_ref = compiled_ref, .e = e};
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    if (lua_cpcall(L, vm_load_protected, &c)) {
        err_clear(e);
        err_set(e, 503, "not_ready", "the plugin set cannot be loaded: %s",
                lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
        lua_settop(L, top);
        return -1;
    }
    return c.rc;
}

/* The whole validation of a set, in a throwaway VM: load, structure,
 * references, then (with tests) every plugin's tests, or the tests of the
 * file `only` whose names contain `filter`. 0 valid (summary in *summary,
 * and the bytecode kept in f), 1 invalid (errors array in *errors), -1
 * could not run (e). With results, the individual test results are
 * returned too. */
typedef struct {
    bool tests;
    const char *only, *filter;
} validate_opts;

static int validate(const config *cfg, plugin_file *f, int n, const validate_opts *o, json_t **summary,
                    json_t **errors, json_t **results, err_t *e)
{
    char err[512];
    *errors = NULL;
    if (summary) *summary = NULL;
    luavm *vm = luavm_new((size_t)cfg->lua_memory_mb << 20, cfg->lua_timeout_ms, err, sizeof err);
    if (!vm) {
        err_set(e, 500, "internal_error", "%s", err);
        return -1;
    }
    int64_t deadline = time_mono_ns() + (int64_t)cfg->reload_timeout_ms * 1000000;
    int rc = -1, compiled = LUA_NOREF;
    json_t *errs = NULL, *res = NULL;
    if (vm_load(vm, f, n, cfg->reload_timeout_ms, &errs, &compiled, e)) {
        /* A file whose top level never ends or eats all memory: its own
         * error (while loading, the "plugin" running is the file's path). */
        if (!e->details) goto done;
        const char *file = json_string_value(json_object_get(e->details, "plugin"));
        errs = json_pack("[{s:n, s:s, s:s}]", "plugin", "file", file ? file : "?", "message", e->message);
        err_clear(e);
    }
    if (json_array_size(errs) == 0 && o->tests) {
        int left = (int)((deadline - time_mono_ns()) / 1000000);
        char today[11];
        date_today_str(today);
        json_t *jonly = o->only ? json_string(o->only) : json_null(), *jtoday = json_string(today);
        json_t *jfilter = o->filter ? json_string(o->filter) : json_null();
        rc = luavm_call_json(vm, LV_RUN_TESTS, left > 1 ? left : 1, &res, e, jonly, jtoday, jfilter, NULL);
        json_decref(jonly);
        json_decref(jtoday);
        json_decref(jfilter);
        if (rc) {
            /* A test that hangs or bombs is the plugin's error, not the server's. */
            json_array_append_new(errs, json_pack("{s:O?, s:s, s:s}", "plugin",
                                                  json_object_get(e->details, "plugin"), "file", "?",
                                                  "message", e->message));
            err_clear(e);
        } else {
            size_t i;
            json_t *r;
            json_array_foreach(res, i, r) {
                if (json_is_true(json_object_get(r, "ok"))) continue;
                json_t *er = json_pack("{s:O?, s:O?, s:s}", "plugin", json_object_get(r, "plugin"), "file",
                                       json_object_get(r, "file"), "message", "");
                const char *m = json_string_value(json_object_get(r, "message"));
                char msg[700];
                snprintf(msg, sizeof msg, "test '%s' failed: %s", json_string_value(json_object_get(r, "name")),
                         m ? m : "?");
                json_object_set_new(er, "message", json_string(msg));
                if (json_object_get(r, "line")) json_object_set(er, "line", json_object_get(r, "line"));
                json_array_append_new(errs, er);
            }
        }
    }
    if (json_array_size(errs) == 0 && summary) {
        if (luavm_call_json(vm, LV_SUMMARY, cfg->lua_timeout_ms * 4, summary, e, NULL)) goto done;
        keep_bytecode(vm, compiled, f, n);
    }
    rc = json_array_size(errs) ? 1 : 0;
    *errors = errs;
    errs = NULL;
    if (results) {
        *results = res;
        res = NULL;
    }
done:
    json_decref(errs);
    json_decref(res);
    luavm_free(vm);
    return rc;
}

/* ---- generations ---- */
static gen *gen_ref_locked(gen *g)
{
    if (g) atomic_fetch_add(&g->refs, 1);
    return g;
}

static gen *gen_current_ref(void)
{
    pthread_mutex_lock(&H.mu);
    gen *g = gen_ref_locked(H.current);
    pthread_mutex_unlock(&H.mu);
    return g;
}

luagen *luahost_serving(void) { return gen_current_ref(); }

/* The loaded generation (serving or kept) with this hash or id; a
 * reference, or NULL. Under H.mu. */
static gen *find_loaded_locked(const char *hash, const char *id)
{
    if (H.current && ((hash && !strcmp(H.current->hash, hash)) || (id && !strcmp(H.current->id, id))))
        return gen_ref_locked(H.current);
    for (int i = 0; i < H.n_kept; i++)
        if ((hash && !strcmp(H.kept[i]->hash, hash)) || (id && !strcmp(H.kept[i]->id, id)))
            return gen_ref_locked(H.kept[i]);
    return NULL;
}

luagen *luahost_loaded(const char *id)
{
    if (!id || !*id) return NULL;
    pthread_mutex_lock(&H.mu);
    gen *g = find_loaded_locked(NULL, id);
    pthread_mutex_unlock(&H.mu);
    return g;
}

json_t *luagen_files(const luagen *g) { return files_json(g->files, g->n_files); }

static const char *file_hash(const gen *g, const char *path)
{
    for (int i = 0; path && i < g->n_files; i++)
        if (!strcmp(g->files[i].path, path)) return g->files[i].hash;
    return "-";
}

/* The file of the plugin of kind with id (or, for a region, claiming code). */
static const char *plugin_file_of(const gen *g, const char *kind, const char *id, const char *code)
{
    size_t i, j;
    json_t *p, *c;
    json_array_foreach(json_object_get(g->summary, "plugins"), i, p) {
        if (strcmp(json_string_value(json_object_get(p, "kind")), kind)) continue;
        if (id && !strcmp(json_string_value(json_object_get(p, "id")), id))
            return json_string_value(json_object_get(p, "file"));
        json_array_foreach(json_object_get(p, "regions"), j, c) if (code && !strcmp(json_string_value(c), code))
            return json_string_value(json_object_get(p, "file"));
    }
    return NULL;
}

void luagen_rules_digest(const luagen *g, const char *program, const char *region, char out[65])
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        str_copy(out, 65, g->hash); /* the whole set: never the same as another's */
        return;
    }
    const char *extends = NULL;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(g->summary, "programs"), i, p)
        if (!strcmp(json_string_value(json_object_get(p, "id")), program))
            extends = json_string_value(json_object_get(p, "extends"));
    len += (size_t)snprintf(buf + len, cap - len, "P %s\nB %s\nR %s\n", file_hash(g, plugin_file_of(g, "program", program, NULL)),
                            extends ? file_hash(g, plugin_file_of(g, "program", extends, NULL)) : "-",
                            file_hash(g, plugin_file_of(g, "region", NULL, region)));
    for (int k = 0; k < g->n_files; k++) {
        if (strncmp(g->files[k].path, "agencies/", 9)) continue;
        if (len + 200 > cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        len += (size_t)snprintf(buf + len, cap - len, "A %s %s\n", g->files[k].path, g->files[k].hash);
    }
    sha256_hex(buf, len, out);
    free(buf);
}

static gen *gen_new(const char hash[SHA256_HEX], plugin_file *files, int n, json_t *summary)
{
    gen *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    atomic_init(&g->refs, 1);
    atomic_init(&g->retired, false);
    atomic_fetch_add(&H.gens_live, 1);
    memcpy(g->hash, hash, SHA256_HEX);
    memcpy(g->id, hash, 16);
    g->id[16] = 0;
    g->files = files;
    g->n_files = n;
    g->summary = summary;
    time_rfc3339(time_now_ms(), g->loaded_at);
    return g;
}

static bool path_ok(const char *p)
{
    static const char *const kinds[] = {"programs/", "regions/", "agencies/"};
    const char *name = NULL;
    for (int k = 0; k < 3 && !name; k++)
        if (!strncmp(p, kinds[k], strlen(kinds[k]))) name = p + strlen(kinds[k]);
    size_t l = name ? strlen(name) : 0;
    if (!name || l < 5 || l > 200 || strcmp(name + l - 4, ".lua") || name[0] == '.') return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
              *c == '-' || *c == '.'))
            return false;
    return true;
}

/* Lays changes ([{path, text|null}]) over files (sorted): a path given
 * replaces or adds its file, a null text removes it. -1 with an error in
 * errors for a path outside programs/, regions/, agencies/. */
static int apply_changes(plugin_file **files, int *n, json_t *changes, json_t *errors)
{
    size_t i;
    json_t *c;
    json_array_foreach(changes, i, c) {
        const char *path = json_string_value(json_object_get(c, "path"));
        json_t *text = json_object_get(c, "text");
        if (!path || !path_ok(path) || (text && !json_is_string(text) && !json_is_null(text))) {
            json_array_append_new(errors, json_pack("{s:n, s:s, s:s}", "plugin", "file", path ? path : "?",
                                                    "message",
                                                    "a file is {path: programs|regions|agencies/NAME.lua, text}"));
            return -1;
        }
        int at = -1;
        for (int k = 0; k < *n; k++)
            if (!strcmp((*files)[k].path, path)) at = k;
        if (!json_is_string(text)) { /* removed */
            if (at >= 0) {
                free((*files)[at].path);
                free((*files)[at].text);
                free((*files)[at].bc);
                (*files)[at] = (*files)[*n - 1];
                (*n)--;
            }
            continue;
        }
        if (json_string_length(text) > MAX_FILE_BYTES) {
            json_array_append_new(errors, json_pack("{s:n, s:s, s:s}", "plugin", "file", path, "message",
                                                    "larger than 1048576 bytes"));
            return -1;
        }
        if (at < 0) {
            if (*n == MAX_FILES) {
                json_array_append_new(errors, json_pack("{s:n, s:s, s:s}", "plugin", "file", path, "message",
                                                        "too many plugin files"));
                return -1;
            }
            at = (*n)++;
            memset(&(*files)[at], 0, sizeof **files);
            (*files)[at].path = strdup(path);
        }
        free((*files)[at].text);
        free((*files)[at].bc);
        (*files)[at].bc = NULL;
        (*files)[at].bc_len = 0;
        (*files)[at].len = json_string_length(text);
        (*files)[at].text = malloc((*files)[at].len + 1);
        if (!(*files)[at].text || !(*files)[at].path) return -1;
        memcpy((*files)[at].text, json_string_value(text), (*files)[at].len + 1);
        sha256_hex((*files)[at].text, (*files)[at].len, (*files)[at].hash);
    }
    qsort(*files, (size_t)*n, sizeof **files, cmp_files);
    return 0;
}

/* A copy of a generation's files (without their bytecode). */
static plugin_file *files_copy(const gen *g, int *n)
{
    plugin_file *f = calloc(MAX_FILES, sizeof *f);
    if (!f) return NULL;
    for (int i = 0; i < g->n_files; i++) {
        f[i].path = strdup(g->files[i].path);
        f[i].text = malloc(g->files[i].len + 1);
        if (f[i].text) memcpy(f[i].text, g->files[i].text, g->files[i].len + 1);
        f[i].len = g->files[i].len;
        memcpy(f[i].hash, g->files[i].hash, SHA256_HEX);
        if (!f[i].path || !f[i].text) {
            files_free(f, i + 1);
            return NULL;
        }
    }
    *n = g->n_files;
    return f;
}

static void note_refused(json_t *errors)
{
    pthread_mutex_lock(&H.mu);
    json_decref(H.last_errors);
    H.last_errors = json_incref(errors);
    pthread_mutex_unlock(&H.mu);
    atomic_fetch_add(&H.reloads_refused, 1);
    log_msg(LOG_WARN, "plugins: reload refused", " errors=%zu", json_array_size(errors));
}

void luahost_note_refused(json_t *errors) { note_refused(errors); }
/* A reload that found the live set again: the last reload was not refused,
 * so the errors of an earlier one no longer stand. */
void luahost_note_unchanged(void)
{
    pthread_mutex_lock(&H.mu);
    json_decref(H.last_errors);
    H.last_errors = NULL;
    pthread_mutex_unlock(&H.mu);
    atomic_fetch_add(&H.reloads_unchanged, 1);
}

int luahost_candidate(const luahost_source *src, luagen **out, json_t **errors, err_t *e)
{
    *out = NULL;
    *errors = NULL;
    plugin_file *files = NULL;
    int n = 0;
    json_t *errs = json_array(), *summary = NULL, *verrs = NULL;
    int rc = -1;
    if (src->dir) {
        if (read_set(src->dir, &files, &n, errs)) goto oom;
    } else {
        gen *cur = gen_current_ref();
        files = cur ? files_copy(cur, &n) : calloc(MAX_FILES, sizeof *files);
        gen_unref(cur);
        if (!files) goto oom;
    }
    if (json_array_size(errs) == 0 && src->changes && apply_changes(&files, &n, src->changes, errs) &&
        json_array_size(errs) == 0)
        goto oom;
    if (n == 0 && json_array_size(errs) == 0)
        json_array_append_new(errs, json_pack("{s:n, s:s, s:s}", "plugin", "file", src->dir ? src->dir : "-",
                                              "message",
                                              "no plugin files (programs/*.lua, regions/*.lua) in this set"));
    if (json_array_size(errs)) {
        rc = 1;
        goto out;
    }
    char hash[SHA256_HEX];
    set_hash(files, n, hash);
    pthread_mutex_lock(&H.mu);
    gen *same = find_loaded_locked(hash, NULL);
    pthread_mutex_unlock(&H.mu);
    if (same) {
        *out = same;
        rc = 0;
        goto out;
    }
    validate_opts vo = {.tests = src->tests};
    int v = validate(&H.cfg, files, n, &vo, &summary, &verrs, NULL, e);
    if (v < 0) goto out;
    if (v > 0) {
        json_array_extend(errs, verrs);
        rc = 1;
        goto out;
    }
    gen *g = gen_new(hash, files, n, summary);
    if (!g) goto oom;
    files = NULL;
    summary = NULL;
    *out = g;
    rc = 0;
    goto out;
oom:
    if (!e->status) err_set(e, 500, "internal_error", "out of memory");
    rc = -1;
out:
    if (files) files_free(files, n);
    json_decref(summary);
    json_decref(verrs);
    if (rc == 1) *errors = errs;
    else json_decref(errs);
    return rc;
}

/* ---- publishing ---- */
/* Unloads g from the lists (under H.mu): threads drop their VMs of it at
 * their next call; it is freed when the last one is. */
static void retire_locked(gen *g)
{
    atomic_store(&g->retired, true);
    gen_unref(g);
}

static void publish_locked(gen *g, bool keep)
{
    gen *old = H.current;
    if (old == g) return;
    for (int i = 0; i < H.n_kept; i++)
        if (H.kept[i] == g) { /* a kept generation serves again: the list's reference becomes the current's */
            H.kept[i] = H.kept[--H.n_kept];
            atomic_fetch_sub(&g->refs, 1);
            break;
        }
    H.current = gen_ref_locked(g);
    if (old && keep && H.n_kept < MAX_KEPT) {
        H.kept[H.n_kept++] = old;
    } else {
        if (old) retire_locked(old);
        if (!keep) {
            for (int i = 0; i < H.n_kept; i++) retire_locked(H.kept[i]);
            H.n_kept = 0;
        }
    }
    json_decref(H.last_errors);
    H.last_errors = NULL;
}

void luahost_publish(luagen *g, bool keep)
{
    pthread_mutex_lock(&H.mu);
    bool changed = H.current != g;
    publish_locked(g, keep);
    pthread_mutex_unlock(&H.mu);
    if (!changed) return;
    atomic_fetch_add(&H.reloads_published, 1);
    log_msg(LOG_INFO, "plugins: generation published", " generation=%s files=%d keep=%s", g->id, g->n_files,
            keep ? "true" : "false");
}

void luahost_retire(const char *id)
{
    pthread_mutex_lock(&H.mu);
    for (int i = 0; i < H.n_kept; i++)
        if (!strcmp(H.kept[i]->id, id)) {
            gen *g = H.kept[i];
            H.kept[i] = H.kept[--H.n_kept];
            retire_locked(g);
            log_msg(LOG_INFO, "plugins: generation retired", " generation=%s", id);
            break;
        }
    pthread_mutex_unlock(&H.mu);
}

int luahost_keep_files(const char *id, json_t *files, char *err, size_t errlen)
{
    err_t e = {0};
    json_t *errors = NULL;
    luagen *g = NULL;
    /* A generation to keep is built from its files alone, not over the serving set. */
    plugin_file *f = calloc(MAX_FILES, sizeof *f);
    int n = 0, rc = -1;
    json_t *errs = json_array(), *summary = NULL;
    if (!f || apply_changes(&f, &n, files, errs) || n == 0) {
        snprintf(err, errlen, "generation %s: its files cannot be read back", id);
        goto done;
    }
    char hash[SHA256_HEX];
    set_hash(f, n, hash);
    if (strncmp(hash, id, 16)) {
        snprintf(err, errlen, "generation %s: its files hash to %.16s", id, hash);
        goto done;
    }
    validate_opts vo = {.tests = false};
    int v = validate(&H.cfg, f, n, &vo, &summary, &errors, NULL, &e);
    if (v) {
        snprintf(err, errlen, "generation %s no longer loads: %s", id,
                 v < 0 ? e.message
                       : json_string_value(json_object_get(json_array_get(errors, 0), "message"))
                             ? json_string_value(json_object_get(json_array_get(errors, 0), "message"))
                             : "?");
        goto done;
    }
    g = gen_new(hash, f, n, summary);
    if (!g) {
        str_copy(err, errlen, "out of memory");
        goto done;
    }
    f = NULL;
    summary = NULL;
    pthread_mutex_lock(&H.mu);
    gen *there = find_loaded_locked(hash, NULL);
    if (!there && H.n_kept < MAX_KEPT) {
        H.kept[H.n_kept++] = g;
        g = NULL;
    }
    pthread_mutex_unlock(&H.mu);
    gen_unref(there);
    rc = 0;
done:
    gen_unref(g);
    if (f) files_free(f, n);
    json_decref(errs);
    json_decref(errors);
    json_decref(summary);
    err_clear(&e);
    return rc;
}

json_t *luahost_generations_json(void)
{
    json_t *a = json_array();
    pthread_mutex_lock(&H.mu);
    if (H.current)
        json_array_append_new(a, json_pack("{s:s, s:b, s:s}", "id", H.current->id, "serving", true, "loaded_at",
                                           H.current->loaded_at));
    for (int i = 0; i < H.n_kept; i++)
        json_array_append_new(a, json_pack("{s:s, s:b, s:s}", "id", H.kept[i]->id, "serving", false, "loaded_at",
                                           H.kept[i]->loaded_at));
    pthread_mutex_unlock(&H.mu);
    return a;
}

int luahost_loaded_count(void)
{
    pthread_mutex_lock(&H.mu);
    int n = (H.current ? 1 : 0) + H.n_kept;
    pthread_mutex_unlock(&H.mu);
    return n;
}

static json_t *reload_result(const gen *g, bool changed)
{
    return json_pack("{s:s, s:s, s:b, s:O}", "generation", g->id, "hash", g->hash, "changed", changed,
                     "plugins", json_object_get(g->summary, "plugins"));
}

int luahost_reload(json_t **out, err_t *e)
{
    pthread_mutex_lock(&H.reload_mu);
    luahost_source src = {.dir = H.cfg.plugins, .tests = true};
    luagen *g = NULL;
    json_t *errors = NULL;
    gen *cur = gen_current_ref();
    int rc = luahost_candidate(&src, &g, &errors, e);
    if (rc == 1) {
        err_set(e, 422, "plugin_invalid", "the plugin set is invalid (%zu errors); the serving generation is unchanged",
                json_array_size(errors));
        err_detail(e, "errors", json_incref(errors));
        note_refused(errors);
        rc = -1;
    } else if (rc == 0) {
        bool changed = g != cur;
        if (changed) luahost_publish(g, false);
        else atomic_fetch_add(&H.reloads_unchanged, 1);
        *out = reload_result(g, changed);
    }
    gen_unref(cur);
    gen_unref(g);
    json_decref(errors);
    pthread_mutex_unlock(&H.reload_mu);
    return rc;
}

/* ---- per-thread VMs ---- */
static void reap(luavm *vm)
{
    if (!vm) return;
    if (!H.threads_started) {
        gen_unref(vm->gen);
        luavm_free(vm);
        return;
    }
    pthread_mutex_lock(&H.bg_mu);
    vm->next_dead = H.dead;
    H.dead = vm;
    pthread_cond_signal(&H.bg_cv);
    pthread_mutex_unlock(&H.bg_mu);
}

/* A new VM with g's set loaded (takes a reference to g); NULL with e. */
static luavm *vm_build(gen *g, err_t *e)
{
    char err[512];
    luavm *nvm = luavm_new((size_t)H.cfg.lua_memory_mb << 20, H.cfg.lua_timeout_ms, err, sizeof err);
    json_t *errors = NULL;
    if (nvm && vm_load(nvm, g->files, g->n_files, H.cfg.reload_timeout_ms, &errors, NULL, e) == 0 &&
        json_array_size(errors) == 0) {
        json_decref(errors);
        nvm->gen = g;
        atomic_fetch_add(&g->refs, 1);
        return nvm;
    }
    /* A published set loaded before; failing now means memory or a bug. */
    log_msg(LOG_ERROR, "plugins: cannot build a VM", " generation=%s error=\"%s\"", g->id,
            nvm ? (e->message[0] ? e->message : "load errors") : err);
    json_decref(errors);
    luavm_free(nvm);
    err_clear(e);
    return NULL;
}

/* Drops the thread's VMs of retired generations. */
static void prune_kept(void)
{
    for (int i = 0; i < THREAD_KEPT; i++)
        if (tl_kept[i] && atomic_load(&tl_kept[i]->gen->retired)) {
            reap(tl_kept[i]);
            tl_kept[i] = NULL;
        }
}

luavm *luahost_vm(err_t *e)
{
    luavm *vm = tl_vm;
    pthread_mutex_lock(&H.mu);
    gen *cur = H.current;
    bool fresh = vm && vm->gen == cur && !vm->poisoned;
    if (!fresh && cur) atomic_fetch_add(&cur->refs, 1);
    pthread_mutex_unlock(&H.mu);
    if (fresh) return vm;
    prune_kept();
    if (!cur) {
        err_set(e, 503, "not_ready", "no plugin generation is loaded");
        return NULL;
    }
    luavm *nvm = vm_build(cur, e);
    gen_unref(cur);
    if (nvm) {
        tl_vm = nvm;
        reap(vm);
        return nvm;
    }
    if (vm && !vm->poisoned) return vm; /* keep serving on the previous generation */
    err_set(e, 503, "not_ready", "the plugin VM cannot be built");
    return NULL;
}

luavm *luahost_vm_for(const char *gen_id, err_t *e)
{
    if (!gen_id || !*gen_id) return luahost_vm(e);
    pthread_mutex_lock(&H.mu);
    gen *g = NULL;
    bool serving = H.current && !strcmp(H.current->id, gen_id);
    for (int i = 0; i < H.n_kept && !serving && !g; i++)
        if (!strcmp(H.kept[i]->id, gen_id)) g = gen_ref_locked(H.kept[i]);
    pthread_mutex_unlock(&H.mu);
    if (!g) return luahost_vm(e); /* the serving one, or a generation no longer loaded: the serving rules */
    int free_slot = -1;
    for (int i = 0; i < THREAD_KEPT; i++) {
        luavm *vm = tl_kept[i];
        if (vm && vm->gen == g && !vm->poisoned) {
            gen_unref(g);
            return vm;
        }
        if (vm && (vm->gen == g || atomic_load(&vm->gen->retired))) {
            reap(vm);
            tl_kept[i] = NULL;
        }
        if (!tl_kept[i] && free_slot < 0) free_slot = i;
    }
    luavm *nvm = vm_build(g, e);
    gen_unref(g);
    if (!nvm) return luahost_vm(e);
    if (free_slot < 0) {
        free_slot = tl_kept_next;
        tl_kept_next = (tl_kept_next + 1) % THREAD_KEPT;
        reap(tl_kept[free_slot]);
    }
    tl_kept[free_slot] = nvm;
    return nvm;
}

luavm *luahost_vm_of(luagen *g, char *err, size_t errlen)
{
    err_t e = {0};
    luavm *vm = vm_build(g, &e);
    if (!vm) snprintf(err, errlen, "a VM of generation %s cannot be built", g->id);
    err_clear(&e);
    return vm;
}

void luahost_vm_free(luavm *vm)
{
    if (!vm) return;
    gen_unref(vm->gen);
    luavm_free(vm);
}

void luahost_thread_done(void)
{
    luavm *vm = tl_vm;
    tl_vm = NULL;
    if (vm) {
        gen_unref(vm->gen);
        luavm_free(vm);
    }
    for (int i = 0; i < THREAD_KEPT; i++) {
        if (tl_kept[i]) {
            gen_unref(tl_kept[i]->gen);
            luavm_free(tl_kept[i]);
        }
        tl_kept[i] = NULL;
    }
}

const char *luavm_generation(const luavm *vm) { return vm->gen ? vm->gen->id : ""; }

int luahost_budget_ms(void) { return H.cfg.lua_timeout_ms; }

/* ---- background: the reaper closes old VMs; the reloader serves SIGHUP
 * and, with plugins.watch = on, polls the directory for changes ---- */
static void *reaper_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "sarye-reaper");
    pthread_mutex_lock(&H.bg_mu);
    for (;;) {
        while (!H.dead && !H.stop) pthread_cond_wait(&H.bg_cv, &H.bg_mu);
        luavm *list = H.dead;
        H.dead = NULL;
        pthread_mutex_unlock(&H.bg_mu);
        while (list) {
            luavm *next = list->next_dead;
            gen_unref(list->gen);
            luavm_free(list);
            list = next;
        }
        pthread_mutex_lock(&H.bg_mu);
        if (H.stop && !H.dead) break;
    }
    pthread_mutex_unlock(&H.bg_mu);
    return NULL;
}

/* A cheap signature of the directory: names, sizes, modification times. */
static void dir_signature(char out[SHA256_HEX])
{
    static const char *const kinds[] = {"programs", "regions", "agencies"};
    char buf[65536];
    size_t len = 0;
    for (int k = 0; k < 3; k++) {
        char sub[1200];
        snprintf(sub, sizeof sub, "%s/%s", H.cfg.plugins, kinds[k]);
        struct dirent **list = NULL;
        int n = scandir(sub, &list, NULL, alphasort);
        for (int i = 0; i < n; i++) {
            char full[2400];
            struct stat st;
            snprintf(full, sizeof full, "%s/%s", sub, list[i]->d_name);
            if (list[i]->d_name[0] != '.' && stat(full, &st) == 0 && len + 600 < sizeof buf)
                len += (size_t)snprintf(buf + len, sizeof buf - len, "%s %lld %lld.%09ld\n", full,
                                        (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
            free(list[i]);
        }
        free(list);
    }
    sha256_hex(buf, len, out);
}

static void reload_now(void)
{
    if (H.hooks.reload) {
        H.hooks.reload();
        return;
    }
    json_t *out = NULL;
    err_t e = {0};
    if (luahost_reload(&out, &e) == 0)
        log_msg(LOG_INFO, "plugins: reload done", " generation=%s changed=%s",
                json_string_value(json_object_get(out, "generation")),
                json_is_true(json_object_get(out, "changed")) ? "true" : "false");
    json_decref(out);
    err_clear(&e);
}

static void *reloader_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "sarye-reloader");
    char sig[SHA256_HEX] = "";
    if (H.cfg.plugins_watch) dir_signature(sig);
    int64_t next_tick = time_mono_ns() + (int64_t)H.hooks.tick_ms * 1000000;
    pthread_mutex_lock(&H.bg_mu);
    while (!H.stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        if (!H.reload_wanted) pthread_cond_timedwait(&H.bg_cv, &H.bg_mu, &ts);
        if (H.stop) break;
        bool want = H.reload_wanted;
        H.reload_wanted = false;
        pthread_mutex_unlock(&H.bg_mu);
        if (!want && H.cfg.plugins_watch) {
            char now[SHA256_HEX];
            dir_signature(now);
            if (strcmp(now, sig)) {
                memcpy(sig, now, sizeof sig);
                want = true;
                log_msg(LOG_INFO, "plugins: files changed", "%s", "");
            }
        }
        if (want) reload_now();
        if (H.hooks.tick && H.hooks.tick_ms > 0 && time_mono_ns() >= next_tick) {
            H.hooks.tick();
            next_tick = time_mono_ns() + (int64_t)H.hooks.tick_ms * 1000000;
        }
        pthread_mutex_lock(&H.bg_mu);
    }
    pthread_mutex_unlock(&H.bg_mu);
    if (H.hooks.thread_done) H.hooks.thread_done();
    return NULL;
}

void luahost_set_hooks(const luahost_hooks *h)
{
    pthread_mutex_lock(&H.bg_mu);
    H.hooks = h ? *h : (luahost_hooks){0};
    pthread_mutex_unlock(&H.bg_mu);
}

void luahost_reload_async(void)
{
    pthread_mutex_lock(&H.bg_mu);
    H.reload_wanted = true;
    pthread_cond_broadcast(&H.bg_cv);
    pthread_mutex_unlock(&H.bg_mu);
}

static void errors_text(json_t *errors, char *err, size_t errlen)
{
    size_t len = (size_t)snprintf(err, errlen, "the plugin set is invalid:");
    size_t i;
    json_t *x;
    json_array_foreach(errors, i, x) {
        if (len >= errlen) break;
        json_t *line = json_object_get(x, "line");
        char lbuf[24] = "";
        if (json_is_integer(line)) snprintf(lbuf, sizeof lbuf, ":%lld", (long long)json_integer_value(line));
        len += (size_t)snprintf(err + len, errlen - len, "\n  %s%s: %s: %s",
                                json_string_value(json_object_get(x, "file")) ? json_string_value(json_object_get(x, "file")) : "?",
                                lbuf,
                                json_string_value(json_object_get(x, "plugin")) ? json_string_value(json_object_get(x, "plugin")) : "?",
                                json_string_value(json_object_get(x, "message")));
    }
}

int luahost_init(const config *cfg, char *err, size_t errlen)
{
    H.cfg = *cfg;
    H.stop = false;
    json_t *out = NULL;
    err_t e = {0};
    if (luahost_reload(&out, &e)) {
        if (e.status == 422) errors_text(json_object_get(e.details, "errors"), err, errlen);
        else snprintf(err, errlen, "plugins: %s", e.message);
        err_clear(&e);
        return -1;
    }
    json_decref(out);
    pthread_create(&H.reaper, NULL, reaper_main, NULL);
    pthread_create(&H.reloader, NULL, reloader_main, NULL);
    H.threads_started = true;
    return 0;
}

void luahost_shutdown(void)
{
    if (H.threads_started) {
        pthread_mutex_lock(&H.bg_mu);
        H.stop = true;
        pthread_cond_broadcast(&H.bg_cv);
        pthread_mutex_unlock(&H.bg_mu);
        pthread_join(H.reloader, NULL);
        pthread_join(H.reaper, NULL);
        H.threads_started = false;
    }
    luahost_thread_done();
    pthread_mutex_lock(&H.mu);
    gen *old = H.current;
    H.current = NULL;
    for (int i = 0; i < H.n_kept; i++) retire_locked(H.kept[i]);
    H.n_kept = 0;
    json_decref(H.last_errors);
    H.last_errors = NULL;
    pthread_mutex_unlock(&H.mu);
    gen_unref(old);
}

bool luahost_ready(void)
{
    pthread_mutex_lock(&H.mu);
    bool ok = H.current != NULL;
    pthread_mutex_unlock(&H.mu);
    return ok;
}

/* ---- listings ---- */
json_t *luahost_plugins_json(void)
{
    gen *g = gen_current_ref();
    pthread_mutex_lock(&H.mu);
    json_t *last = H.last_errors ? json_incref(H.last_errors) : NULL;
    pthread_mutex_unlock(&H.mu);
    json_t *items = json_array();
    if (g) {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(g->summary, "plugins"), i, p) {
            json_t *item = json_deep_copy(p);
            const char *file = json_string_value(json_object_get(p, "file"));
            for (int k = 0; k < g->n_files; k++)
                if (file && !strcmp(g->files[k].path, file))
                    json_object_set_new(item, "content_hash", json_string(g->files[k].hash));
            json_object_set_new(item, "generation", json_string(g->id));
            json_t *lerr = json_null();
            size_t j;
            json_t *x;
            json_array_foreach(last, j, x) {
                const char *xf = json_string_value(json_object_get(x, "file"));
                if (xf && file && !strcmp(xf, file)) { json_decref(lerr); lerr = json_incref(x); }
            }
            json_object_set_new(item, "last_load_error", lerr);
            json_array_append_new(items, item);
        }
    }
    json_t *out = json_pack("{s:o, s:s?, s:s?, s:o}", "items", items, "generation", g ? g->id : NULL,
                            "loaded_at", g ? g->loaded_at : NULL, "last_reload_errors", last ? last : json_null());
    gen_unref(g);
    return out;
}

json_t *luahost_programs_json(void)
{
    gen *g = gen_current_ref();
    json_t *out = json_pack("{s:o, s:s?}", "items", g ? json_incref(json_object_get(g->summary, "programs")) : json_array(),
                            "generation", g ? g->id : NULL);
    gen_unref(g);
    return out;
}

char *luahost_metrics(void)
{
    gen *g = gen_current_ref();
    char *s = NULL;
    if (asprintf(&s,
                 "# HELP sarye_plugin_generation_info The serving plugin generation.\n"
                 "# TYPE sarye_plugin_generation_info gauge\n"
                 "sarye_plugin_generation_info{generation=\"%s\"} 1\n"
                 "# HELP sarye_plugin_reloads_total Plugin reloads by result.\n"
                 "# TYPE sarye_plugin_reloads_total counter\n"
                 "sarye_plugin_reloads_total{result=\"published\"} %lu\n"
                 "sarye_plugin_reloads_total{result=\"unchanged\"} %lu\n"
                 "sarye_plugin_reloads_total{result=\"refused\"} %lu\n"
                 "# HELP sarye_plugin_generations_live Generations still referenced (serving, kept or draining).\n"
                 "# TYPE sarye_plugin_generations_live gauge\n"
                 "sarye_plugin_generations_live %d\n"
                 "# HELP sarye_plugin_generations_loaded Generations loaded: the serving one and those kept for open cases.\n"
                 "# TYPE sarye_plugin_generations_loaded gauge\n"
                 "sarye_plugin_generations_loaded %d\n"
                 "# HELP sarye_plugin_vms_live Plugin VMs alive (one per serving thread, plus reloads).\n"
                 "# TYPE sarye_plugin_vms_live gauge\n"
                 "sarye_plugin_vms_live %d\n"
                 "# HELP sarye_plugin_memory_refused_total Allocations the process refused to plugin VMs (not"
                 " a VM's own cap; calls answered 503): the machine is out of memory.\n"
                 "# TYPE sarye_plugin_memory_refused_total counter\n"
                 "sarye_plugin_memory_refused_total %lu\n",
                 g ? g->id : "", atomic_load(&H.reloads_published), atomic_load(&H.reloads_unchanged),
                 atomic_load(&H.reloads_refused), atomic_load(&H.gens_live), luahost_loaded_count(),
                 luavm_live(), luavm_memory_refused()) < 0)
        s = NULL;
    gen_unref(g);
    return s;
}

/* ---- tooling ---- */
/* The files of a tool's set: dir's, with the added file laid over them. */
static int tool_files(const luahost_tool_set *s, plugin_file **files, int *n, json_t *errs)
{
    if (read_set(s->dir, files, n, errs)) return -1;
    if (s->overlay) {
        plugin_file *over = NULL;
        int m = 0;
        if (read_set(s->overlay, &over, &m, errs)) return -1;
        json_t *ch = json_array();
        for (int i = 0; i < m; i++)
            json_array_append_new(ch, json_pack("{s:s, s:s%}", "path", over[i].path, "text", over[i].text, over[i].len));
        files_free(over, m);
        int rc = apply_changes(files, n, ch, errs);
        json_decref(ch);
        if (rc && json_array_size(errs) == 0) return -1;
    }
    if (s->add_path) {
        json_t *ch = json_pack("[{s:s, s:s}]", "path", s->add_path, "text", s->add_text ? s->add_text : "");
        int rc = apply_changes(files, n, ch, errs);
        json_decref(ch);
        if (rc && json_array_size(errs) == 0) return -1;
    }
    if (*n == 0 && json_array_size(errs) == 0)
        json_array_append_new(errs, json_pack("{s:n, s:s, s:s}", "plugin", "file", s->dir, "message",
                                              "no plugin files (programs/*.lua, regions/*.lua) in this directory"));
    return 0;
}

static int tool_run(const config *cfg, const luahost_tool_set *s, bool tests, json_t **errors, json_t **results)
{
    plugin_file *files = NULL;
    int n = 0;
    json_t *errs = json_array();
    *errors = NULL;
    if (results) *results = NULL;
    if (tool_files(s, &files, &n, errs)) {
        files_free(files, n);
        json_decref(errs);
        return -1;
    }
    int rc = 1;
    if (json_array_size(errs) == 0) {
        err_t e = {0};
        json_t *verrs = NULL;
        validate_opts vo = {.tests = tests, .only = s->only, .filter = s->filter};
        rc = validate(cfg, files, n, &vo, NULL, &verrs, results, &e);
        if (rc < 0) {
            json_array_append_new(errs, json_pack("{s:n, s:s, s:s}", "plugin", "file", s->dir, "message", e.message));
            err_clear(&e);
            rc = 1;
        } else {
            json_array_extend(errs, verrs);
        }
        json_decref(verrs);
    }
    files_free(files, n);
    *errors = errs;
    return json_array_size(errs) ? 1 : rc;
}

int luahost_check_set(const config *cfg, const luahost_tool_set *s, json_t **errors)
{
    return tool_run(cfg, s, true, errors, NULL);
}

int luahost_test_set(const config *cfg, const luahost_tool_set *s, json_t **errors, json_t **results)
{
    return tool_run(cfg, s, true, errors, results);
}

int luahost_check_dir(const config *cfg, const char *dir, json_t **errors)
{
    luahost_tool_set s = {.dir = dir};
    return luahost_check_set(cfg, &s, errors);
}

int luahost_scaffold(const config *cfg, const luahost_tool_set *set, const char *kind, const char *id, json_t *opts,
                     char **path, char **text, json_t **errors, char *msg, size_t msglen)
{
    *path = *text = NULL;
    *errors = NULL;
    plugin_file *files = NULL;
    int n = 0, rc = 1;
    json_t *errs = json_array(), *loaded = NULL, *out = NULL;
    char err[512] = "";
    luavm *vm = NULL;
    err_t e = {0};
    if (tool_files(set, &files, &n, errs)) {
        str_copy(msg, msglen, "out of memory");
        goto done;
    }
    if (json_array_size(errs) && n == 0) json_array_clear(errs); /* an empty set: a first plugin */
    if (json_array_size(errs)) goto done;
    vm = luavm_new((size_t)cfg->lua_memory_mb << 20, cfg->lua_timeout_ms, err, sizeof err);
    if (!vm) {
        str_copy(msg, msglen, err);
        goto done;
    }
    if (vm_load(vm, files, n, cfg->reload_timeout_ms, &loaded, NULL, &e)) {
        str_copy(msg, msglen, e.message);
        err_clear(&e);
        goto done;
    }
    if (json_array_size(loaded)) {
        json_array_extend(errs, loaded);
        goto done;
    }
    json_t *jk = json_string(kind), *ji = json_string(id), *jo = opts ? json_incref(opts) : json_object();
    int crc = luavm_call_json(vm, LV_SCAFFOLD, cfg->reload_timeout_ms, &out, &e, jk, ji, jo, NULL);
    json_decref(jk);
    json_decref(ji);
    json_decref(jo);
    if (crc) {
        str_copy(msg, msglen, e.message);
        err_clear(&e);
        goto done;
    }
    if (!json_is_true(json_object_get(out, "ok"))) {
        const char *m = json_string_value(json_object_get(out, "message"));
        str_copy(msg, msglen, m ? m : "no scaffold");
        goto done;
    }
    *path = strdup(json_string_value(json_object_get(out, "path")));
    *text = strdup(json_string_value(json_object_get(out, "text")));
    rc = (*path && *text) ? 0 : 1;
done:
    if (json_array_size(errs)) *errors = json_incref(errs);
    json_decref(errs);
    json_decref(loaded);
    json_decref(out);
    if (files) files_free(files, n);
    luavm_free(vm);
    return rc;
}

/* ---- the candidate: the set on disk now, against the serving one (the
 * console's diff) ---- */
static json_t *file_diff(const char *path, const char *status, const plugin_file *live, const plugin_file *cand)
{
    json_t *o = json_pack("{s:s, s:s, s:s?, s:s?}", "path", path, "status", status, "live_hash",
                          live ? live->hash : NULL, "candidate_hash", cand ? cand->hash : NULL);
    if (strcmp(status, "same")) {
        json_object_set_new(o, "live_text", live ? json_stringn(live->text, live->len) : json_null());
        json_object_set_new(o, "candidate_text", cand ? json_stringn(cand->text, cand->len) : json_null());
    }
    return o;
}

int luahost_candidate_diff(json_t **out, err_t *e)
{
    pthread_mutex_lock(&H.reload_mu);
    int rc = -1;
    plugin_file *files = NULL;
    int n = 0;
    json_t *errors = json_array(), *summary = NULL, *verrors = NULL;
    gen *cur = gen_current_ref();
    if (read_set(H.cfg.plugins, &files, &n, errors)) {
        err_set(e, 500, "internal_error", "out of memory");
        goto done;
    }
    char hash[SHA256_HEX];
    set_hash(files, n, hash);
    if (n == 0 && json_array_size(errors) == 0)
        json_array_append_new(errors, json_pack("{s:n, s:s, s:s}", "plugin", "file", H.cfg.plugins, "message",
                                                "no plugin files (programs/*.lua, regions/*.lua) in this directory"));
    if (json_array_size(errors) == 0) {
        validate_opts vo = {.tests = false}; /* as a reload validates, without running the tests */
        if (validate(&H.cfg, files, n, &vo, &summary, &verrors, NULL, e) < 0) goto done;
        json_array_extend(errors, verrors);
    }
    /* Both lists are sorted by path: walk them side by side. */
    json_t *diff = json_array();
    int i = 0, j = 0, ln = cur ? cur->n_files : 0;
    while (i < ln || j < n) {
        const plugin_file *l = i < ln ? &cur->files[i] : NULL, *c = j < n ? &files[j] : NULL;
        int order = !l ? 1 : !c ? -1 : strcmp(l->path, c->path);
        if (order < 0) {
            json_array_append_new(diff, file_diff(l->path, "removed", l, NULL));
            i++;
        } else if (order > 0) {
            json_array_append_new(diff, file_diff(c->path, "added", NULL, c));
            j++;
        } else {
            json_array_append_new(diff, file_diff(l->path, strcmp(l->hash, c->hash) ? "changed" : "same", l, c));
            i++;
            j++;
        }
    }
    char cand_id[17];
    memcpy(cand_id, hash, 16);
    cand_id[16] = 0;
    *out = json_pack("{s:{s:s?, s:s?, s:s?}, s:{s:s, s:s, s:b, s:O, s:o}, s:b, s:o}",
                     "live", "generation", cur ? cur->id : NULL, "hash", cur ? cur->hash : NULL, "loaded_at",
                     cur ? cur->loaded_at : NULL,
                     "candidate", "generation", cand_id, "hash", hash, "valid", json_array_size(errors) == 0,
                     "errors", errors, "plugins",
                     summary && json_object_get(summary, "plugins") ? json_incref(json_object_get(summary, "plugins"))
                                                                    : json_array(),
                     "same", cur && !strcmp(cur->hash, hash), "files", diff);
    rc = *out ? 0 : -1;
    if (rc) err_set(e, 500, "internal_error", "out of memory");
done:
    if (files) files_free(files, n);
    gen_unref(cur);
    json_decref(errors);
    json_decref(verrors);
    json_decref(summary);
    pthread_mutex_unlock(&H.reload_mu);
    return rc;
}
