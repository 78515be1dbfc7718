/*
 * main.c: the sarye command line — serve, migrate, org create, token create,
 * audit verify (and `plugin ...`, in cli/plugin.c). Settings come from defaults < config file <
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
#include "cli/cli.h"
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
    "  audit verify [--full] [--checkpoints FILE] [--archive FILE] [--db PATH]\n"
    "        check the audit trail from the last verified checkpoint (--full: every record) against its\n"
    "        signed checkpoints, the anchor beside the key and an export (FILE); --archive checks an\n"
    "        archive file; exit 1 if a record was changed, removed or added\n"
    "  audit checkpoints export --out FILE [--db PATH]\n"
    "        write every signed checkpoint and the public keys to FILE, to keep apart from the database\n"
    "  audit archive --before DATE --out FILE [--db PATH]\n"
    "        move the records written before DATE (YYYY-MM-DD or RFC 3339 UTC) to a verifiable FILE\n"
    "  key rotate [--db PATH]\n"
    "        seal everything under a new key (the server must be stopped); the old key file is kept aside\n"
    "  plugin new|check|test|lint|replay ...\n"
    "        a plugin author's commands (sarye plugin --help)\n"
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
    const char *checkpoints, *archive, *out, *before;
    bool full;
    const char *programs[64];
    int n_programs;
} options;

enum {
    O_CONFIG = 1, O_LISTEN, O_DB, O_PLUGINS, O_ID, O_NAME, O_TYPE, O_REGION, O_PROGRAM, O_USER, O_ROLE, O_ORG,
    O_AREA, O_FULL, O_CHECKPOINTS, O_ARCHIVE, O_OUT, O_BEFORE
};

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
        {"full", no_argument, NULL, O_FULL},           {"checkpoints", required_argument, NULL, O_CHECKPOINTS},
        {"archive", required_argument, NULL, O_ARCHIVE}, {"out", required_argument, NULL, O_OUT},
        {"before", required_argument, NULL, O_BEFORE},
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
        case O_FULL: o->full = true; break;
        case O_CHECKPOINTS: o->checkpoints = optarg; break;
        case O_ARCHIVE: o->archive = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_BEFORE: o->before = optarg; break;
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

/* The key lives beside the database unless configured elsewhere. */
static void key_path(const config *cfg, char *key, size_t n)
{
    if (cfg->key_file[0]) {
        snprintf(key, n, "%s", cfg->key_file);
    } else {
        const char *slash = strrchr(cfg->db, '/');
        snprintf(key, n, "%.*ssarye.key", slash ? (int)(slash - cfg->db + 1) : 0, cfg->db);
    }
}

static int open_store(const config *cfg)
{
    char err[2000];
    store_opts so = {cfg->db, cfg->durability_full, cfg->busy_timeout_ms};
    int version = 0;
    if (store_open(&so, err, sizeof err) || store_migrate(&version, err, sizeof err)) {
        fprintf(stderr, "sarye: store: %s\n", err);
        return 1;
    }
    char key[1100], anchor[1200] = "";
    key_path(cfg, key, sizeof key);
    if (store_keyring_open(key, err, sizeof err)) {
        fprintf(stderr, "sarye: %s\n", err);
        store_close();
        return 1;
    }
    /* The newest checkpoint is kept with the key, away from the database. */
    if (!cfg->audit_anchor_file[0]) snprintf(anchor, sizeof anchor, "%s.anchor", key);
    else if (strcmp(cfg->audit_anchor_file, "off")) snprintf(anchor, sizeof anchor, "%s", cfg->audit_anchor_file);
    process_audit_setup(anchor, cfg->audit_checkpoint_every);
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
    if (process_init(cfg, err, sizeof err)) {
        fprintf(stderr, "sarye: %s\n", err);
        store_close();
        return 1;
    }
    if (outbound_start(cfg, err, sizeof err) || process_retention_start(cfg, err, sizeof err)) {
        fprintf(stderr, "sarye: %s\n", err);
        outbound_stop();
        process_shutdown();
        store_close();
        return 1;
    }
    if (http_start(cfg, err, sizeof err)) {
        fprintf(stderr, "sarye: %s\n", err);
        process_retention_stop();
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
    process_retention_stop();
    /* The trail's last records are held by a signed checkpoint. */
    audit_checkpoint cp;
    err_t e = {0};
    if (process_audit_checkpoint("shutdown", &cp, &e)) {
        log_msg(LOG_ERROR, "audit: no checkpoint at shutdown", " error=\"%s\"", e.message);
        err_clear(&e);
    } else if (cp.id) {
        log_msg(LOG_INFO, "audit: checkpoint", " id=%lld through=%lld reason=shutdown", cp.id, cp.through_seq);
    }
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

static int cli_load_config(const char *config_file, const char *db, const char *plugins, config *cfg)
{
    options o;
    memset(&o, 0, sizeof o);
    o.config = config_file;
    o.db = db;
    o.plugins = plugins;
    return load_config(&o, cfg);
}

static int cmd_audit_verify(const options *o)
{
    audit_verify_result r;
    err_t e = {0};
    int rc;
    if (o->archive) {
        rc = process_audit_verify_archive(o->archive, &r, &e);
    } else {
        audit_verify_opts vo = {o->full, o->checkpoints, 0};
        rc = process_audit_verify(&vo, &r, &e);
    }
    store_close();
    if (rc) {
        fprintf(stderr, "sarye: audit verify: %s\n", e.message);
        err_clear(&e);
        return 1;
    }
    if (!r.ok) {
        fprintf(stderr, "sarye: audit trail NOT verified: %s\n", r.why);
        return 1;
    }
    if (o->archive) {
        printf("archive verified: %lld records (%lld to %lld), %zu signed checkpoints, its signed statement; %.1f ms\n",
               r.records, r.first, r.last, r.checkpoints, r.elapsed_ms);
        return 0;
    }
    printf("audit trail verified: %lld records; %lld checked (%lld to %lld) %s in %lld read transactions;"
           " %zu signed checkpoints%s%s; %.1f ms\n",
           r.records, r.checked, r.first, r.checked ? r.last : r.first - 1,
           r.from_checkpoint ? "from the last verified checkpoint" : "from the first record", r.transactions,
           r.checkpoints, r.anchor ? ", the anchor agrees" : ", no anchor file",
           o->checkpoints ? ", the export agrees" : "", r.elapsed_ms);
    if (r.note[0]) fprintf(stderr, "sarye: warning: %s\n", r.note);
    return 0;
}

static int cmd_audit_export(const options *o)
{
    size_t n = 0;
    err_t e = {0};
    int rc = process_audit_export(o->out, &n, &e);
    store_close();
    if (rc) {
        fprintf(stderr, "sarye: audit checkpoints export: %s\n", e.message);
        err_clear(&e);
        return 1;
    }
    printf("%zu signed checkpoints and the public keys written to %s\n", n, o->out);
    return 0;
}

static int cmd_audit_archive(const config *cfg, const options *o)
{
    audit_archive_result r;
    err_t e = {0};
    int rc = process_audit_archive(o->before, cfg->retention_audit_days, o->out, &r, &e);
    store_close();
    if (rc) {
        fprintf(stderr, "sarye: audit archive: %s\n", e.message);
        err_clear(&e);
        return 1;
    }
    if (r.records)
        printf("archived records %lld to %lld (%lld) to %s, verified; %lld removed from the database\n", r.from,
               r.through, r.records, o->out, r.deleted);
    else
        printf("nothing to archive before %s%s\n", o->before,
               r.deleted ? " (records of an earlier archive removed)" : "");
    return 0;
}

static int cmd_key_rotate(const config *cfg)
{
    char key[1100], err[2000];
    key_path(cfg, key, sizeof key);
    key_rotation r;
    int rc = store_key_rotate(key, &r, err, sizeof err);
    if (rc == 0) process_audit_anchor(&r.checkpoint);
    store_close();
    if (rc) {
        fprintf(stderr, "sarye: key rotate: %s\n", err);
        return 1;
    }
    printf("key rotated: %s -> %s\n"
           "  %lld resident numbers and %lld stored answers sealed again under the new key;\n"
           "  the audit trail up to record %lld is signed with the old key (checkpoint %lld), later records with"
           " the new one\n"
           "  the old key is now %s: backups made before now need it; keep it with them, or destroy it\n",
           r.old_id, r.new_id, r.numbers, r.answers, r.checkpoint.through_seq, r.checkpoint.id, r.retired_file);
    return 0;
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
    if (!strcmp(cmd, "plugin")) {
        cli_env env = {cli_load_config, open_store};
        return cli_plugin(argc - 1, argv + 1, &env);
    }
    if (!strcmp(cmd, "audit") && argc >= 3 && !strcmp(argv[2], "verify")) {
        char opts[] = {O_CONFIG, O_DB, O_FULL, O_CHECKPOINTS, O_ARCHIVE, 0};
        if ((rc = parse_options(argc - 2, argv + 2, opts, &o))) return rc;
        if (load_config(&o, &cfg) || open_store(&cfg)) return 1;
        return cmd_audit_verify(&o);
    }
    if (!strcmp(cmd, "audit") && argc >= 4 && !strcmp(argv[2], "checkpoints") && !strcmp(argv[3], "export")) {
        char opts[] = {O_CONFIG, O_DB, O_OUT, 0};
        if ((rc = parse_options(argc - 3, argv + 3, opts, &o))) return rc;
        if (!o.out) return usage("audit checkpoints export needs --out FILE");
        if (load_config(&o, &cfg) || open_store(&cfg)) return 1;
        return cmd_audit_export(&o);
    }
    if (!strcmp(cmd, "audit") && argc >= 3 && !strcmp(argv[2], "archive")) {
        char opts[] = {O_CONFIG, O_DB, O_OUT, O_BEFORE, 0};
        if ((rc = parse_options(argc - 2, argv + 2, opts, &o))) return rc;
        if (!o.out || !o.before) return usage("audit archive needs --before DATE and --out FILE");
        if (load_config(&o, &cfg) || open_store(&cfg)) return 1;
        return cmd_audit_archive(&cfg, &o);
    }
    if (!strcmp(cmd, "key") && argc >= 3 && !strcmp(argv[2], "rotate")) {
        if ((rc = parse_options(argc - 2, argv + 2, dbonly, &o))) return rc;
        if (load_config(&o, &cfg) || open_store(&cfg)) return 1;
        return cmd_key_rotate(&cfg);
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
