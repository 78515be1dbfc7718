/*
 * main.c: the sarye command line — serve, migrate, org create, token create
 * (and plugin check|test). Settings come from defaults < config file <
 * SARYE_* environment < options. Unknown commands and options print usage
 * on stderr and exit 2.
 */
#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "config/config.h"
#include "http/http.h"
#include "lua/host.h"
#include "outbound/outbound.h"
#include "process/process.h"
#include "store/records.h"
#include "store/pii.h"
#include "store/store.h"

extern const unsigned char embedded_default_conf[];

static const char USAGE[] =
    "usage: sarye <command> [options]\n"
    "\n"
    "  serve [--config FILE] [--listen HOST:PORT] [--db PATH] [--plugins DIR]\n"
    "        run the server (defaults: config/sarye.conf, data/sarye.db, plugins/)\n"
    "  migrate [--config FILE] [--db PATH]\n"
    "        create or upgrade the database schema\n"
    "  org create --id ID --name NAME --type TYPE --region CODE [--program P]... [--area DONG_CODE] [--db PATH]\n"
    "        bootstrap an organisation (TYPE: emd, district, program, provider, agency)\n"
    "  token create --user U --role ROLE --org ORG [--db PATH]\n"
    "        print a new bearer token (ROLE: worker, supervisor, agency, auditor, admin)\n"
    "  audit verify [--db PATH]\n"
    "        check the hash chain of the audit trail; exit 1 if a record was changed or removed\n"
    "  plugin check [DIR]\n"
    "        load and validate a plugin set exactly as a reload would (default: plugins/)\n"
    "  plugin test [DIR or FILE]\n"
    "        run the plugins' own tests inside the real sandbox\n"
    "  version\n";

static int usage(const char *why)
{
    if (why) fprintf(stderr, "sarye: %s\n\n", why);
    fputs(USAGE, stderr);
    return 2;
}

typedef struct {
    const char *config, *listen, *db, *plugins;
    const char *id, *name, *type, *region, *user, *role, *org, *area;
    const char *programs[64];
    int n_programs;
} options;

enum { O_CONFIG = 1, O_LISTEN, O_DB, O_PLUGINS, O_ID, O_NAME, O_TYPE, O_REGION, O_PROGRAM, O_USER, O_ROLE, O_ORG, O_AREA };

/* Parses the options that `allowed` names (a string of O_* codes). */
static int parse_options(int argc, char **argv, const char *allowed, options *o)
{
    static const struct option all[] = {
        {"config", required_argument, NULL, O_CONFIG}, {"listen", required_argument, NULL, O_LISTEN},
        {"db", required_argument, NULL, O_DB},         {"plugins", required_argument, NULL, O_PLUGINS},
        {"id", required_argument, NULL, O_ID},         {"name", required_argument, NULL, O_NAME},
        {"type", required_argument, NULL, O_TYPE},     {"region", required_argument, NULL, O_REGION},
        {"program", required_argument, NULL, O_PROGRAM}, {"user", required_argument, NULL, O_USER},
        {"role", required_argument, NULL, O_ROLE},     {"org", required_argument, NULL, O_ORG},
        {"area", required_argument, NULL, O_AREA},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", all, NULL)) != -1) {
        if (c == '?' || c == ':' || !strchr(allowed, c)) {
            char msg[200];
            snprintf(msg, sizeof msg, "unknown or incomplete option '%s' for this command",
                     argv[optind - 1]);
            return usage(msg);
        }
        switch (c) {
        case O_CONFIG: o->config = optarg; break;
        case O_LISTEN: o->listen = optarg; break;
        case O_DB: o->db = optarg; break;
        case O_PLUGINS: o->plugins = optarg; break;
        case O_ID: o->id = optarg; break;
        case O_NAME: o->name = optarg; break;
        case O_TYPE: o->type = optarg; break;
        case O_REGION: o->region = optarg; break;
        case O_USER: o->user = optarg; break;
        case O_ROLE: o->role = optarg; break;
        case O_ORG: o->org = optarg; break;
        case O_AREA: o->area = optarg; break;
        case O_PROGRAM:
            if (o->n_programs == 64) return usage("too many --program options");
            o->programs[o->n_programs++] = optarg;
            break;
        }
    }
    if (optind < argc) {
        char msg[200];
        snprintf(msg, sizeof msg, "unexpected argument '%s'", argv[optind]);
        return usage(msg);
    }
    return 0;
}

/* defaults < file < environment < options */
static int load_config(const options *o, config *cfg)
{
    char err[600];
    config_defaults(cfg);
    int rc;
    if (o->config) rc = config_load_file(cfg, o->config, err, sizeof err);
    else if (access("config/sarye.conf", R_OK) == 0) rc = config_load_file(cfg, "config/sarye.conf", err, sizeof err);
    else rc = config_parse_text(cfg, (const char *)embedded_default_conf, "(embedded sarye.conf)", err, sizeof err);
    if (rc) goto fail;
    rc = config_apply_env(cfg, err, sizeof err);
    if (rc < 0) goto fail;
    if (rc > 0) fprintf(stderr, "sarye: warning: %s\n", err);
    if ((o->listen && config_set(cfg, "listen", o->listen, "option --listen", err, sizeof err)) ||
        (o->db && config_set(cfg, "db", o->db, "option --db", err, sizeof err)) ||
        (o->plugins && config_set(cfg, "plugins", o->plugins, "option --plugins", err, sizeof err)))
        goto fail;
    log_level lvl = !strcmp(cfg->log_level, "debug") ? LOG_DEBUG
                    : !strcmp(cfg->log_level, "warn") ? LOG_WARN
                    : !strcmp(cfg->log_level, "error") ? LOG_ERROR
                                                       : LOG_INFO;
    log_set_level(lvl);
    return 0;
fail:
    fprintf(stderr, "sarye: configuration: %s\n", err);
    return 1;
}

static int open_store(const config *cfg)
{
    char err[600];
    store_opts so = {cfg->db, cfg->durability_full, cfg->busy_timeout_ms};
    int version = 0;
    if (store_open(&so, err, sizeof err) || store_migrate(&version, err, sizeof err)) {
        fprintf(stderr, "sarye: store: %s\n", err);
        return 1;
    }
    /* The key lives beside the database unless configured elsewhere. */
    char key[1100];
    if (cfg->key_file[0]) {
        snprintf(key, sizeof key, "%s", cfg->key_file);
    } else {
        const char *slash = strrchr(cfg->db, '/');
        snprintf(key, sizeof key, "%.*ssarye.key", slash ? (int)(slash - cfg->db + 1) : 0, cfg->db);
    }
    if (pii_init(key, err, sizeof err)) {
        fprintf(stderr, "sarye: %s\n", err);
        store_close();
        return 1;
    }
    return 0;
}

static int cmd_serve(const config *cfg)
{
    /* Signals are taken synchronously by this thread; every other thread
     * (CivetWeb's included) inherits the blocked mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (open_store(cfg)) return 1;
    char err[4096];
    /* /metrics keeps its counts from here on (not the command-line tools) */
    if (store_counts_start(err, sizeof err)) {
        fprintf(stderr, "sarye: store: %s\n", err);
        store_close();
        return 1;
    }
    if (process_init(cfg, err, sizeof err)) {
        fprintf(stderr, "sarye: %s\n", err);
        store_close();
        return 1;
    }
    if (outbound_start(cfg, err, sizeof err)) {
        fprintf(stderr, "sarye: %s\n", err);
        process_shutdown();
        store_close();
        return 1;
    }
    if (http_start(cfg, err, sizeof err)) {
        fprintf(stderr, "sarye: %s\n", err);
        outbound_stop();
        process_shutdown();
        store_close();
        return 1;
    }
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig)) continue;
        if (sig == SIGHUP) {
            log_msg(LOG_INFO, "signal", " signal=SIGHUP action=reload");
            process_reload_signal();
            continue;
        }
        log_msg(LOG_INFO, "signal", " signal=%s action=shutdown", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
    http_stop();
    outbound_stop();
    process_shutdown();
    store_close();
    log_msg(LOG_INFO, "exit", "%s", "");
    return 0;
}

static int cmd_migrate(const config *cfg)
{
    if (open_store(cfg)) return 1;
    store_close();
    printf("schema up to date\n");
    return 0;
}

typedef int (*cli_write_fn)(void *arg, store_reply *reply, err_t *e);

static int write_org(void *arg, store_reply *reply, err_t *e) { return process_org_create(arg, NULL, reply, e); }

static int write_token(void *arg, store_reply *reply, err_t *e)
{
    const options *o = arg;
    return process_token_create(o->user, o->role, o->org, NULL, NULL, reply, e);
}

static int cmd_write(const config *cfg, cli_write_fn fn, void *arg, const char *print_field)
{
    if (open_store(cfg)) return 1;
    err_t e = {0};
    store_reply reply = {0};
    int rc = fn(arg, &reply, &e);
    if (rc) {
        fprintf(stderr, "sarye: %s\n", e.message);
        err_clear(&e);
    } else if (print_field) {
        printf("%s\n", json_string_value(json_object_get(reply.body, print_field)));
    } else {
        char *s = json_dumps(reply.body, JSON_INDENT(2) | JSON_ENSURE_ASCII * 0);
        printf("%s\n", s ? s : "");
        free(s);
    }
    store_reply_clear(&reply);
    store_close();
    return rc ? 1 : 0;
}

static int cmd_org_create(const config *cfg, options *o)
{
    if (!o->id || !o->name || !o->type || !o->region)
        return usage("org create needs --id, --name, --type and --region");
    if (!process_one_of(o->type, process_org_types))
        return usage("--type must be one of emd, district, program, provider, agency");
    for (const char *s = o->region; *s; s++)
        if (!isdigit((unsigned char)*s)) return usage("--region must be a numeric region code, e.g. 11590");
    json_t *progs = json_array();
    for (int i = 0; i < o->n_programs; i++) json_array_append_new(progs, json_string(o->programs[i]));
    org_in in = {o->id, o->name, o->type, o->region, progs, o->area};
    int rc = cmd_write(cfg, write_org, &in, NULL);
    json_decref(progs);
    return rc;
}

static int cmd_token_create(const config *cfg, options *o)
{
    if (!o->user || !o->role || !o->org) return usage("token create needs --user, --role and --org");
    if (!process_one_of(o->role, process_roles))
        return usage("--role must be one of worker, supervisor, agency, auditor, admin");
    return cmd_write(cfg, write_token, o, "token");
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

/* plugin check|test: DIR is a plugin set; FILE is one plugin of the set two
 * folders up (plugins/programs/x.lua -> plugins/), whose tests alone run. */
static int cmd_plugin(const config *cfg, const char *what, const char *arg)
{
    char dir[1024], only[2100] = "";
    struct stat st;
    snprintf(dir, sizeof dir, "%s", arg ? arg : cfg->plugins);
    if (stat(dir, &st)) {
        fprintf(stderr, "sarye: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    if (S_ISREG(st.st_mode)) {
        char *slash = strrchr(dir, '/');
        char *kind = NULL;
        if (slash) {
            *slash = 0;
            kind = strrchr(dir, '/');
            kind = kind ? kind + 1 : dir;
        }
        if (!slash || (strcmp(kind, "programs") && strcmp(kind, "regions") && strcmp(kind, "agencies"))) {
            fprintf(stderr, "sarye: %s: a plugin file lives in programs/, regions/ or agencies/ of a plugin set\n", arg);
            return 2;
        }
        snprintf(only, sizeof only, "%s/%s", kind, slash + 1);
        if (kind == dir) snprintf(dir, sizeof dir, ".");
        else kind[-1] = 0;
    }
    json_t *errors = NULL, *results = NULL;
    int rc;
    if (!strcmp(what, "check")) {
        rc = luahost_check_dir(cfg, dir, &errors);
        if (rc == 0) printf("plugin set %s is valid\n", dir);
    } else {
        rc = luahost_test_dir(cfg, dir, only[0] ? only : NULL, &errors, &results);
        size_t i, passed = 0, failed = 0;
        json_t *r;
        json_array_foreach(results, i, r) {
            bool ok = json_is_true(json_object_get(r, "ok"));
            printf("%s %zu - %s: %s\n", ok ? "ok" : "not ok", i + 1,
                   json_string_value(json_object_get(r, "plugin")), json_string_value(json_object_get(r, "name")));
            if (!ok) printf("  # %s\n", json_string_value(json_object_get(r, "message")));
            ok ? passed++ : failed++;
        }
        printf("%zu passed, %zu failed\n", passed, failed);
        if (!results && rc == 0) rc = 1;
    }
    if (rc) print_errors(errors);
    json_decref(errors);
    json_decref(results);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (base_init()) {
        fprintf(stderr, "sarye: cannot initialise libsodium\n");
        return 1;
    }
    if (argc < 2) return usage(NULL);
    const char *cmd = argv[1];
    options o;
    memset(&o, 0, sizeof o);
    config cfg;
    char all[] = {O_CONFIG, O_LISTEN, O_DB, O_PLUGINS, 0};
    char dbonly[] = {O_CONFIG, O_DB, 0};
    char org[] = {O_CONFIG, O_DB, O_ID, O_NAME, O_TYPE, O_REGION, O_PROGRAM, O_AREA, 0};
    char tok[] = {O_CONFIG, O_DB, O_USER, O_ROLE, O_ORG, 0};
    int rc;
    if (!strcmp(cmd, "serve")) {
        if ((rc = parse_options(argc - 1, argv + 1, all, &o))) return rc;
        if (load_config(&o, &cfg)) return 1;
        return cmd_serve(&cfg);
    }
    if (!strcmp(cmd, "migrate")) {
        if ((rc = parse_options(argc - 1, argv + 1, dbonly, &o))) return rc;
        if (load_config(&o, &cfg)) return 1;
        return cmd_migrate(&cfg);
    }
    if (!strcmp(cmd, "org") && argc >= 3 && !strcmp(argv[2], "create")) {
        if ((rc = parse_options(argc - 2, argv + 2, org, &o))) return rc;
        if (load_config(&o, &cfg)) return 1;
        return cmd_org_create(&cfg, &o);
    }
    if (!strcmp(cmd, "token") && argc >= 3 && !strcmp(argv[2], "create")) {
        if ((rc = parse_options(argc - 2, argv + 2, tok, &o))) return rc;
        if (load_config(&o, &cfg)) return 1;
        return cmd_token_create(&cfg, &o);
    }
    if (!strcmp(cmd, "plugin") && argc >= 3 && (!strcmp(argv[2], "check") || !strcmp(argv[2], "test"))) {
        if (argc > 4) return usage("plugin check|test takes at most one DIR or FILE");
        if (argc == 4 && argv[3][0] == '-') return usage("plugin check|test takes no options");
        if (load_config(&o, &cfg)) return 1;
        return cmd_plugin(&cfg, argv[2], argc == 4 ? argv[3] : NULL);
    }
    if (!strcmp(cmd, "audit") && argc >= 3 && !strcmp(argv[2], "verify")) {
        if ((rc = parse_options(argc - 2, argv + 2, dbonly, &o))) return rc;
        if (load_config(&o, &cfg) || open_store(&cfg)) return 1;
        long long records = 0, broken = 0;
        err_t e = {0};
        rc = process_audit_verify(&records, &broken, &e);
        store_close();
        if (rc) {
            fprintf(stderr, "sarye: audit verify: %s\n", e.message);
            err_clear(&e);
            return 1;
        }
        if (broken) {
            fprintf(stderr, "sarye: audit trail broken at record %lld (after %lld good records)\n", broken, records);
            return 1;
        }
        printf("audit trail verified: %lld records\n", records);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("sarye %s\n", SARYE_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        fputs(USAGE, stdout);
        return 0;
    }
    char msg[200];
    snprintf(msg, sizeof msg, "unknown command '%s'", cmd);
    return usage(msg);
}
