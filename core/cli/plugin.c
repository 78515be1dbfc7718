/*
 * plugin.c: `sarye plugin ...`, a plugin author's commands. Each runs the
 * real sandbox exactly as the server does (host.lua, the same memory cap
 * and CPU budget), in a throwaway VM:
 *
 *   new KIND ID   a working plugin with its tests, from the loaded set
 *   check, test   a set, or one file laid over the bundled set
 *   lint          luacheck with the sandbox's globals (the shipped .luacheckrc)
 *   replay DIR    a candidate set against the recorded history of a database
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "lua/host.h"
#include "process/process.h"
#include "store/store.h"

extern const unsigned char embedded_luacheckrc[];
extern const size_t embedded_luacheckrc_len;

const char CLI_PLUGIN_USAGE[] =
    "usage: sarye plugin <command> [options]\n"
    "\n"
    "  new program|region|agency ID [--dir DIR] [--region CODE] [--program P] [--force]\n"
    "        write a working plugin with its tests into DIR (default: the bundled set, plugins/)\n"
    "  check [DIR or FILE] [--plugins DIR]\n"
    "        load and validate a set exactly as a reload would (default: plugins/); a FILE\n"
    "        outside a set is checked laid over the bundled set (--plugins DIR)\n"
    "  test [DIR or FILE] [--filter TEXT] [--verbose] [--plugins DIR]\n"
    "        run the plugins' own tests in the real sandbox (FILE: its tests only); --filter runs\n"
    "        the tests whose name contains TEXT; --verbose shows each test's time and log\n"
    "  lint [DIR or FILE]\n"
    "        luacheck with the sandbox's globals (Debian package lua-check)\n"
    "  replay DIR [--db PATH] [--config FILE] [--plugins DIR] [--examples N] [--json]\n"
    "        run the candidate set DIR against the recorded history of the database and list\n"
    "        every decision it would make differently from the serving set (--plugins);\n"
    "        exit 1 when any differs\n";

static int usage(const char *why)
{
    if (why) fprintf(stderr, "sarye: %s\n\n", why);
    fputs(CLI_PLUGIN_USAGE, stderr);
    return 2;
}

typedef struct {
    const char *config, *db, *plugins, *dir, *region, *program, *filter;
    bool verbose, force, json;
    int examples;
    const char *pos[4];
    int n_pos;
} popts;

enum { P_CONFIG = 1, P_DB, P_PLUGINS, P_DIR, P_REGION, P_PROGRAM, P_FILTER, P_VERBOSE, P_FORCE, P_JSON, P_EXAMPLES };

/* Options `allowed` names, and at most max_pos positional arguments. */
static int parse(int argc, char **argv, const char *allowed, int max_pos, popts *o)
{
    static const struct option all[] = {
        {"config", required_argument, NULL, P_CONFIG}, {"db", required_argument, NULL, P_DB},
        {"plugins", required_argument, NULL, P_PLUGINS}, {"dir", required_argument, NULL, P_DIR},
        {"region", required_argument, NULL, P_REGION}, {"program", required_argument, NULL, P_PROGRAM},
        {"filter", required_argument, NULL, P_FILTER}, {"verbose", no_argument, NULL, P_VERBOSE},
        {"force", no_argument, NULL, P_FORCE},         {"json", no_argument, NULL, P_JSON},
        {"examples", required_argument, NULL, P_EXAMPLES}, {NULL, 0, NULL, 0},
    };
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "v", all, NULL)) != -1) {
        if (c == 'v') c = P_VERBOSE;
        if (c == '?' || c == ':' || !strchr(allowed, c)) {
            char msg[200];
            snprintf(msg, sizeof msg, "unknown or incomplete option '%s' for plugin %s", argv[optind - 1], argv[0]);
            return usage(msg);
        }
        switch (c) {
        case P_CONFIG: o->config = optarg; break;
        case P_DB: o->db = optarg; break;
        case P_PLUGINS: o->plugins = optarg; break;
        case P_DIR: o->dir = optarg; break;
        case P_REGION: o->region = optarg; break;
        case P_PROGRAM: o->program = optarg; break;
        case P_FILTER: o->filter = optarg; break;
        case P_VERBOSE: o->verbose = true; break;
        case P_FORCE: o->force = true; break;
        case P_JSON: o->json = true; break;
        case P_EXAMPLES: {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 0 || n > 1000) return usage("--examples must be a number from 0 to 1000");
            o->examples = (int)n;
            break;
        }
        }
    }
    for (; optind < argc; optind++) {
        if (o->n_pos == max_pos) {
            char msg[200];
            snprintf(msg, sizeof msg, "unexpected argument '%s' for plugin %s", argv[optind], argv[0]);
            return usage(msg);
        }
        o->pos[o->n_pos++] = argv[optind];
    }
    return 0;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *slurp(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    for (size_t n; buf && (n = fread(buf + len, 1, cap - len, f)) > 0;) {
        len += n;
        if (len == cap) {
            if (cap >= (1 << 20)) break;
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) str_copy(err, errlen, "out of memory");
    else if (len > (1 << 20)) {
        free(buf);
        snprintf(err, errlen, "%s: larger than 1048576 bytes", path);
        return NULL;
    } else buf[len] = 0;
    return buf;
}

static const char *KIND_FOLDERS[] = {"programs", "regions", "agencies"};

static bool kind_folder(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, KIND_FOLDERS[i])) return true;
    return false;
}

/* The folder of a loose file's kind, from its text (kind = "region"). */
static const char *folder_of_text(const char *text)
{
    for (const char *p = strstr(text, "kind"); p; p = strstr(p + 4, "kind")) {
        const char *q = p + 4;
        while (*q == ' ' || *q == '\t') q++;
        if (*q != '=') continue;
        q++;
        while (*q == ' ' || *q == '\t') q++;
        if (*q != '"' && *q != '\'') continue;
        q++;
        if (!strncmp(q, "program", 7) && (q[7] == '"' || q[7] == '\'')) return "programs";
        if (!strncmp(q, "region", 6) && (q[6] == '"' || q[6] == '\'')) return "regions";
        if (!strncmp(q, "agency", 6) && (q[6] == '"' || q[6] == '\'')) return "agencies";
    }
    return NULL;
}

/* Whether two paths name the same directory. */
static bool same_dir(const char *a, const char *b)
{
    char ra[4096], rb[4096];
    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/* What `check|test TARGET` loads. A directory is a set, whole. A file in
 * the folder of its kind (DIR/regions/x.lua) runs laid over the bundled
 * set together with every plugin of DIR (a work in progress beside the
 * bundled plugins); DIR alone when it is the bundled set or there is none.
 * Any other file is laid over the bundled set in the folder of its kind.
 * 0, or an exit status after printing why. */
typedef struct {
    char dir[1100];
    char overlay[1100];
    char add_path[2400];
    char *add_text;
    char only[2400];
} target;

static void target_set(const target *t, const char *filter, luahost_tool_set *s)
{
    *s = (luahost_tool_set){.dir = t->dir,
                            .overlay = t->overlay[0] ? t->overlay : NULL,
                            .add_path = t->add_path[0] ? t->add_path : NULL,
                            .add_text = t->add_text,
                            .only = t->only[0] ? t->only : NULL,
                            .filter = filter};
}

static int resolve(const char *arg, const char *bundled, target *t)
{
    memset(t, 0, sizeof *t);
    struct stat st;
    if (stat(arg, &st)) {
        fprintf(stderr, "sarye: %s: %s\n", arg, strerror(errno));
        return 1;
    }
    if (S_ISDIR(st.st_mode)) {
        str_copy(t->dir, sizeof t->dir, arg);
        return 0;
    }
    char path[1100], parent[1100];
    str_copy(path, sizeof path, arg);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t bl = strlen(base);
    if (bl < 5 || strcmp(base + bl - 4, ".lua")) {
        fprintf(stderr, "sarye: %s: a plugin file is NAME.lua\n", arg);
        return 2;
    }
    snprintf(parent, sizeof parent, "%.*s", (int)(base - path ? base - path - 1 : 0), path);
    if (!parent[0]) str_copy(parent, sizeof parent, ".");
    const char *pname = strrchr(parent, '/') ? strrchr(parent, '/') + 1 : parent;
    if (kind_folder(pname)) {
        char set[1100];
        snprintf(set, sizeof set, "%.*s", (int)(pname - parent ? pname - parent - 1 : 0), parent);
        if (!set[0]) str_copy(set, sizeof set, ".");
        snprintf(t->only, sizeof t->only, "%s/%s", pname, base);
        if (!is_dir(bundled) || same_dir(set, bundled)) {
            str_copy(t->dir, sizeof t->dir, set);
        } else {
            str_copy(t->dir, sizeof t->dir, bundled);
            str_copy(t->overlay, sizeof t->overlay, set);
        }
        return 0;
    }
    char err[300];
    t->add_text = slurp(arg, err, sizeof err);
    if (!t->add_text) {
        fprintf(stderr, "sarye: %s\n", err);
        return 1;
    }
    const char *folder = folder_of_text(t->add_text);
    int rc = 0;
    if (!folder) {
        fprintf(stderr, "sarye: %s: cannot tell its kind: put it in programs/, regions/ or agencies/, or write "
                        "kind = \"program\" | \"region\" | \"agency\"\n", arg);
        rc = 2;
    } else if (!is_dir(bundled)) {
        fprintf(stderr, "sarye: %s is checked laid over the bundled plugin set, and '%s' is not a directory: give "
                        "--plugins DIR\n", arg, bundled);
        rc = 1;
    }
    if (rc) {
        free(t->add_text);
        t->add_text = NULL;
        return rc;
    }
    str_copy(t->dir, sizeof t->dir, bundled);
    snprintf(t->add_path, sizeof t->add_path, "%s/%s", folder, base);
    str_copy(t->only, sizeof t->only, t->add_path);
    return 0;
}

static void print_errors(json_t *errors)
{
    size_t i;
    json_t *x;
    json_array_foreach(errors, i, x) {
        json_t *line = json_object_get(x, "line");
        const char *file = json_string_value(json_object_get(x, "file"));
        const char *plugin = json_string_value(json_object_get(x, "plugin"));
        if (json_is_integer(line))
            fprintf(stderr, "%s:%lld: %s: %s\n", file ? file : "?", (long long)json_integer_value(line),
                    plugin ? plugin : "?", json_string_value(json_object_get(x, "message")));
        else
            fprintf(stderr, "%s: %s: %s\n", file ? file : "?", plugin ? plugin : "?",
                    json_string_value(json_object_get(x, "message")));
    }
}

/* One test's result: "ok N - plugin: name", with its time under
 * --verbose; a failure's file:line and message; its log under --verbose
 * or when it failed. */
static void print_result(size_t n, json_t *r, bool verbose)
{
    bool ok = json_is_true(json_object_get(r, "ok"));
    printf("%s %zu - %s: %s", ok ? "ok" : "not ok", n, json_string_value(json_object_get(r, "plugin")),
           json_string_value(json_object_get(r, "name")));
    if (verbose) printf(" (%.2f ms)", json_number_value(json_object_get(r, "ms")));
    printf("\n");
    if (!ok) {
        json_t *line = json_object_get(r, "line");
        const char *file = json_string_value(json_object_get(r, "file"));
        const char *msg = json_string_value(json_object_get(r, "message"));
        if (json_is_integer(line))
            printf("  # %s:%lld: %s\n", file ? file : "?", (long long)json_integer_value(line), msg ? msg : "?");
        else
            printf("  # %s\n", msg ? msg : "?");
    }
    if (verbose || !ok) {
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(r, "log"), i, l) printf("  # log: %s\n", json_string_value(l));
    }
}

static int cmd_check_test(const char *what, int argc, char **argv, const cli_env *env)
{
    popts o = {0};
    bool test = !strcmp(what, "test");
    char allowed[] = {P_CONFIG, P_PLUGINS, test ? P_FILTER : P_CONFIG, test ? P_VERBOSE : P_CONFIG, 0};
    int rc = parse(argc, argv, allowed, 1, &o);
    if (rc) return rc;
    config cfg;
    if (env->load_config(o.config, NULL, o.plugins, &cfg)) return 1;
    target t;
    if ((rc = resolve(o.n_pos ? o.pos[0] : cfg.plugins, cfg.plugins, &t))) return rc;
    luahost_tool_set s;
    target_set(&t, o.filter, &s);
    json_t *errors = NULL, *results = NULL;
    const char *shown = o.n_pos ? o.pos[0] : t.dir;
    if (!test) {
        rc = luahost_check_set(&cfg, &s, &errors);
        if (rc == 0 && (t.add_path[0] || t.overlay[0]))
            printf("%s is valid, with the plugin set %s\n", shown, t.dir);
        else if (rc == 0)
            printf("plugin set %s is valid\n", shown);
    } else {
        rc = luahost_test_set(&cfg, &s, &errors, &results);
        size_t i, passed = 0, failed = 0;
        json_t *r;
        json_array_foreach(results, i, r) {
            print_result(i + 1, r, o.verbose);
            json_is_true(json_object_get(r, "ok")) ? passed++ : failed++;
        }
        printf("%zu passed, %zu failed\n", passed, failed);
        if (o.filter && results && passed + failed == 0) {
            fprintf(stderr, "sarye: no test name contains '%s'\n", o.filter);
            rc = rc ? rc : 1;
        }
        if (!results && rc == 0) rc = 1;
    }
    if (rc) print_errors(errors);
    json_decref(errors);
    json_decref(results);
    free(t.add_text);
    return rc ? 1 : 0;
}

static int mkdirs(const char *path)
{
    char tmp[1400];
    str_copy(tmp, sizeof tmp, path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

static int cmd_new(int argc, char **argv, const cli_env *env)
{
    popts o = {0};
    char allowed[] = {P_CONFIG, P_PLUGINS, P_DIR, P_REGION, P_PROGRAM, P_FORCE, 0};
    int rc = parse(argc, argv, allowed, 2, &o);
    if (rc) return rc;
    if (o.n_pos != 2) return usage("plugin new needs a kind (program, region or agency) and an id");
    const char *kind = o.pos[0], *id = o.pos[1];
    if (strcmp(kind, "program") && strcmp(kind, "region") && strcmp(kind, "agency"))
        return usage("plugin new: the kind is program, region or agency");
    config cfg;
    if (env->load_config(o.config, NULL, o.plugins, &cfg)) return 1;
    const char *dir = o.dir ? o.dir : cfg.plugins;
    /* The set the new plugin joins: the bundled one, with what dir holds
     * already laid over it (dir alone when it is the bundled set or there
     * is none). */
    luahost_tool_set set = {.dir = cfg.plugins};
    if (!is_dir(cfg.plugins)) set.dir = dir;
    else if (is_dir(dir) && !same_dir(dir, cfg.plugins)) set.overlay = dir;
    if (!is_dir(set.dir)) {
        fprintf(stderr, "sarye: the plugin set '%s' is not a directory: give --plugins DIR\n", set.dir);
        return 1;
    }
    char full[1700], folder[1300];
    snprintf(folder, sizeof folder, "%s/%s", dir, !strcmp(kind, "program") ? "programs" : !strcmp(kind, "region") ? "regions" : "agencies");
    snprintf(full, sizeof full, "%s/%s.lua", folder, id);
    struct stat st;
    if (!o.force && stat(full, &st) == 0) {
        fprintf(stderr, "sarye: %s exists already (--force writes over it)\n", full);
        return 1;
    }
    json_t *opts = json_object();
    if (o.region) json_object_set_new(opts, "region", json_string(o.region));
    if (o.program) json_object_set_new(opts, "program", json_string(o.program));
    char *path = NULL, *text = NULL, msg[600] = "";
    json_t *errors = NULL;
    rc = luahost_scaffold(&cfg, &set, kind, id, opts, &path, &text, &errors, msg, sizeof msg);
    json_decref(opts);
    if (rc) {
        if (errors) {
            fprintf(stderr, "sarye: the plugin set %s%s%s does not load:\n", set.dir, set.overlay ? " with " : "",
                    set.overlay ? set.overlay : "");
            print_errors(errors);
        } else {
            fprintf(stderr, "sarye: plugin new %s %s: %s\n", kind, id, msg);
        }
        json_decref(errors);
        return 1;
    }
    snprintf(full, sizeof full, "%s/%s", dir, path);
    if (mkdirs(folder)) {
        fprintf(stderr, "sarye: %s: %s\n", folder, strerror(errno));
        rc = 1;
    } else {
        FILE *f = fopen(full, "w");
        if (!f || fputs(text, f) < 0 || fclose(f)) {
            fprintf(stderr, "sarye: %s: %s\n", full, strerror(errno));
            rc = 1;
        }
    }
    if (!rc) {
        /* What it was written to pass: its own tests, with its set. */
        target t;
        rc = resolve(full, cfg.plugins, &t);
        json_t *results = NULL;
        if (!rc) {
            luahost_tool_set s;
            target_set(&t, NULL, &s);
            rc = luahost_test_set(&cfg, &s, &errors, &results);
        }
        size_t n = json_array_size(results);
        if (rc) {
            fprintf(stderr, "sarye: %s was written but does not pass with the set %s:\n", full, t.dir);
            print_errors(errors);
            rc = 1;
        } else {
            printf("wrote %s (%s %s): its %zu tests pass with the plugin set %s\n", full, kind, id, n, t.dir);
            printf("next: edit it, then\n  sarye plugin test %s\n  sarye plugin lint %s\n", full, full);
        }
        json_decref(results);
        free(t.add_text);
    }
    json_decref(errors);
    free(path);
    free(text);
    return rc;
}

/* luacheck with the shipped configuration: the sandbox's globals. */
static int cmd_lint(int argc, char **argv, const cli_env *env)
{
    popts o = {0};
    char allowed[] = {P_CONFIG, P_PLUGINS, 0};
    int rc = parse(argc, argv, allowed, 1, &o);
    if (rc) return rc;
    config cfg;
    if (env->load_config(o.config, NULL, o.plugins, &cfg)) return 1;
    const char *target_path = o.n_pos ? o.pos[0] : cfg.plugins;
    struct stat st;
    if (stat(target_path, &st)) {
        fprintf(stderr, "sarye: %s: %s\n", target_path, strerror(errno));
        return 1;
    }
    /* A set's plugins are its programs/, regions/ and agencies/ (not the
     * editor's annotations beside them). */
    char paths[3][1200];
    char *args[16];
    int n = 0;
    args[n++] = "luacheck";
    args[n++] = "--no-color";
    args[n++] = "--codes";
    args[n++] = "-q";
    args[n++] = "--config";
    char rcfile[] = "/tmp/sarye-luacheckrc-XXXXXX";
    int fd = mkstemp(rcfile);
    if (fd < 0 || write(fd, embedded_luacheckrc, embedded_luacheckrc_len) != (ssize_t)embedded_luacheckrc_len) {
        fprintf(stderr, "sarye: cannot write the luacheck configuration: %s\n", strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(rcfile);
        }
        return 1;
    }
    close(fd);
    args[n++] = rcfile;
    args[n++] = "--";
    int files = 0;
    if (S_ISDIR(st.st_mode)) {
        for (int k = 0; k < 3; k++) {
            snprintf(paths[k], sizeof paths[k], "%s/%s", target_path, KIND_FOLDERS[k]);
            if (is_dir(paths[k])) {
                args[n++] = paths[k];
                files++;
            }
        }
    } else {
        args[n++] = (char *)target_path;
        files++;
    }
    args[n] = NULL;
    if (!files) {
        unlink(rcfile);
        fprintf(stderr, "sarye: %s has no programs/, regions/ or agencies/\n", target_path);
        return 1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execvp("luacheck", args);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) status = -1;
    unlink(rcfile);
    if (pid < 0 || status == -1) {
        fprintf(stderr, "sarye: cannot run luacheck: %s\n", strerror(errno));
        return 1;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    if (code == 127) {
        fprintf(stderr, "sarye: luacheck is not installed: it is the Debian package lua-check (scripts/setup "
                        "installs it)\n");
        return 1;
    }
    return code == 0 ? 0 : 1;
}

/* ---- replay ---- */
static void print_change(json_t *c)
{
    const char *what = json_string_value(json_object_get(c, "change"));
    printf("      %s", what);
    const char *kind = json_string_value(json_object_get(c, "kind"));
    if (kind) printf(" %s", kind);
    const char *from = json_string_value(json_object_get(c, "from"));
    const char *to = json_string_value(json_object_get(c, "to"));
    if (from || to) printf(": %s -> %s", from ? from : "none", to ? to : "none");
    json_t *moves = json_object_get(c, "moves");
    if (moves) {
        printf(":");
        size_t i;
        json_t *m;
        json_array_foreach(moves, i, m) printf(" %s", json_string_value(m));
    }
    json_t *cand = json_object_get(c, "candidate");
    const char *reason = json_string_value(json_object_get(cand, "reason"));
    const char *by = json_string_value(json_object_get(cand, "plugin"));
    if (reason) printf(" (%s: %s)", by ? by : "core", reason);
    printf("\n");
}

static void print_report(json_t *r)
{
    json_t *x;
    size_t i;
    printf("replayed %lld of %lld recorded decisions on %lld cases (%lld under rules the same in both sets, not "
           "asked): the serving set %s against the candidate %s, in %.2f s (%.0f decisions/s)%s\n",
           (long long)json_integer_value(json_object_get(r, "replayed")),
           (long long)json_integer_value(json_object_get(r, "decisions")),
           (long long)json_integer_value(json_object_get(r, "cases")),
           (long long)json_integer_value(json_object_get(r, "same_rules")),
           json_string_value(json_object_get(r, "baseline")), json_string_value(json_object_get(r, "candidate")),
           json_number_value(json_object_get(r, "seconds")), json_number_value(json_object_get(r, "rate_per_s")),
           json_is_true(json_object_get(r, "complete")) ? "" : " -- stopped at its time limit, not complete");
    long long diff = json_integer_value(json_object_get(r, "differences"));
    printf("%lld decisions differ, on %lld cases\n", diff,
           (long long)json_integer_value(json_object_get(r, "cases_differing")));
    json_array_foreach(json_object_get(r, "by_program"), i, x) {
        if (!json_integer_value(json_object_get(x, "differences"))) continue;
        printf("  %s in %s: %lld of %lld decisions differ", json_string_value(json_object_get(x, "program")),
               json_string_value(json_object_get(x, "region")),
               (long long)json_integer_value(json_object_get(x, "differences")),
               (long long)json_integer_value(json_object_get(x, "decisions")));
        const char *keys[] = {"refused_now", "allowed_now", "refusal_changed", "failed_now", "deadlines_moved",
                              "deadlines_added", "deadlines_dropped", "clears_changed", "moves_added",
                              "moves_removed", "follow_on_changed", "result_changed", NULL};
        for (const char **k = keys; *k; k++) {
            long long v = json_integer_value(json_object_get(x, *k));
            if (v) printf(", %s %lld", *k, v);
        }
        printf("\n");
    }
    json_array_foreach(json_object_get(r, "examples"), i, x) {
        const char *to = json_string_value(json_object_get(x, "to"));
        const char *rk = json_string_value(json_object_get(x, "record"));
        printf("    %s #%lld %s %s (%s, %s): %s%s%s\n", json_string_value(json_object_get(x, "case_id")),
               (long long)json_integer_value(json_object_get(x, "seq")), json_string_value(json_object_get(x, "at")),
               json_string_value(json_object_get(x, "type")), json_string_value(json_object_get(x, "program")),
               json_string_value(json_object_get(x, "region")), json_string_value(json_object_get(x, "stage")),
               to ? " -> " : rk ? " record " : "", to ? to : rk ? rk : "");
        size_t j;
        json_t *c;
        json_array_foreach(json_object_get(x, "changes"), j, c) print_change(c);
    }
    if (json_is_true(json_object_get(r, "examples_truncated"))) printf("    ... (--examples N shows more)\n");
    printf("digest %s\n", json_string_value(json_object_get(r, "digest")));
}

static int cmd_replay(int argc, char **argv, const cli_env *env)
{
    popts o = {.examples = 20};
    char allowed[] = {P_CONFIG, P_DB, P_PLUGINS, P_EXAMPLES, P_JSON, 0};
    int rc = parse(argc, argv, allowed, 1, &o);
    if (rc) return rc;
    if (o.n_pos != 1) return usage("plugin replay needs the candidate set's directory");
    if (!is_dir(o.pos[0])) {
        fprintf(stderr, "sarye: %s is not a directory (a candidate plugin set)\n", o.pos[0]);
        return 1;
    }
    config cfg;
    if (env->load_config(o.config, o.db, o.plugins, &cfg) || env->open_store(&cfg)) return 1;
    if (!strcmp(cfg.log_level, "info")) log_set_level(LOG_WARN); /* the report is the output */
    char err[4096];
    if (process_init_tool(&cfg, err, sizeof err)) {
        fprintf(stderr, "sarye: the serving set: %s\n", err);
        store_close();
        return 1;
    }
    plugins_replay_in in = {.dir = o.pos[0], .max_examples = o.examples};
    store_reply reply = {0};
    err_t e = {0};
    rc = process_plugins_replay(&in, &reply, &e);
    if (rc) {
        json_t *errors = json_object_get(e.details, "errors");
        fprintf(stderr, "sarye: plugin replay: %s\n", e.message);
        if (errors) print_errors(errors);
        err_clear(&e);
        rc = 1;
    } else {
        if (o.json) {
            char *s = json_dumps(reply.body, JSON_INDENT(2));
            printf("%s\n", s ? s : "{}");
            free(s);
        } else {
            print_report(reply.body);
        }
        rc = json_integer_value(json_object_get(reply.body, "differences")) ||
                     !json_is_true(json_object_get(reply.body, "complete"))
                 ? 1
                 : 0;
    }
    store_reply_clear(&reply);
    process_shutdown();
    store_close();
    return rc;
}

int cli_plugin(int argc, char **argv, const cli_env *env)
{
    if (argc < 2) return usage("plugin needs a command");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(CLI_PLUGIN_USAGE, stdout);
        return 0;
    }
    if (!strcmp(cmd, "check") || !strcmp(cmd, "test")) return cmd_check_test(cmd, argc - 1, argv + 1, env);
    if (!strcmp(cmd, "new")) return cmd_new(argc - 1, argv + 1, env);
    if (!strcmp(cmd, "lint")) return cmd_lint(argc - 1, argv + 1, env);
    if (!strcmp(cmd, "replay")) return cmd_replay(argc - 1, argv + 1, env);
    char msg[200];
    snprintf(msg, sizeof msg, "plugin: unknown subcommand '%s' (new, check, test, lint or replay)", cmd);
    return usage(msg);
}
