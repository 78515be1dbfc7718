/*
 * main.c: the sarye command line — serve, migrate, org create, token
 * create|list|revoke, audit verify|checkpoints export|archive, key rotate,
 * backup, restore, config check, and help for each (a table of commands);
 * `plugin new|check|test|lint|replay` is cli/plugin.c's. The command line is the machine's owner: it acts as
 * a system operator named "cli". Settings come from defaults < config file <
 * SARYE_* environment < options. Unknown commands and options print usage
 * on stderr and exit 2.
 */
#include <ctype.h>
#include <errno.h>
#include <sys/resource.h>
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
#include "ops/ops.h"
#include "outbound/outbound.h"
#include "process/process.h"
#include "store/records.h"
#include "store/pii.h"
#include "store/store.h"

extern const unsigned char embedded_default_conf[];

/* Every command, once: the usage list, `sarye CMD --help` and `sarye help
 * CMD` are printed from this table. A command of two words (org create)
 * has cmd and sub; `sarye org` alone lists its subcommands. */
typedef struct {
    const char *cmd, *sub;
    const char *synopsis; /* after "sarye " */
    const char *summary;  /* one line */
    const char *details;  /* the options and what to know, for --help */
} command_doc;

static const command_doc COMMANDS[] = {
    {"serve", NULL, "serve [--config FILE] [--listen HOST:PORT] [--db PATH] [--plugins DIR]",
     "run the server (defaults: config/sarye.conf, data/sarye.db, plugins/)",
     "  --config FILE       the configuration file (default config/sarye.conf, else the copy built in)\n"
     "  --listen HOST:PORT  the address to serve (port 0 picks a free one)\n"
     "  --db PATH           the SQLite database (created with its folder)\n"
     "  --plugins DIR       the plugin set (programs/, regions/, agencies/)\n"
     "Settings: built-in defaults < the file < SARYE_* environment < these options.\n"
     "Signals: SIGTERM/SIGINT drain and stop; SIGHUP reloads the plugins.\n"
     "The operations console is at http://HOST:PORT/ (an operator, admin or auditor token).\n"},
    {"migrate", NULL, "migrate [--config FILE] [--db PATH]", "create or upgrade the database schema",
     "  --config FILE  the configuration file\n  --db PATH      the SQLite database\n"},
    {"org", "create", "org create --id ID --name NAME --type TYPE --region CODE [--program P]... [--area DONG_CODE] [--db PATH]",
     "bootstrap an organisation (TYPE: emd, district, program, provider, agency)",
     "  --id ID           the organisation's id (letters, digits, '_', '-', '.')\n"
     "  --name NAME       its name\n"
     "  --type TYPE       emd, district, program, provider or agency\n"
     "  --region CODE     its numeric region code, e.g. 11590\n"
     "  --program P       a program it runs (repeat for more)\n"
     "  --area DONG_CODE  the dong it serves (emd offices)\n"
     "  --config FILE, --db PATH  as for serve\n"},
    {"token", "create", "token create --user U --role ROLE [--org ORG] [--ttl-days N] [--db PATH]",
     "print a new bearer token (ROLE: worker, supervisor, agency, auditor, admin, operator)",
     "  --user U      the user the token acts as\n"
     "  --role ROLE   worker, supervisor, agency, auditor, admin or operator (a system operator)\n"
     "  --org ORG     the organisation (every role but operator)\n"
     "  --ttl-days N  it expires after N days (default auth.token_ttl_days; 0: never)\n"
     "  --config FILE, --db PATH  as for serve\n"
     "The token is printed once; only its hash is stored.\n"},
    {"token", "list", "token list [--org ORG] [--db PATH]",
     "the tokens: id, prefix, user, role, organisation, status, expiry (never the token)",
     "  --org ORG  only this organisation's\n"
     "  --config FILE, --db PATH  as for serve\n"},
    {"token", "revoke", "token revoke --id TOKEN_ID [--db PATH]",
     "revoke a token (a running server refuses it within a second)",
     "  --id TOKEN_ID  the token's id (tok_..., from token list)\n"
     "  --config FILE, --db PATH  as for serve\n"},
    {"audit", "verify", "audit verify [--full] [--checkpoints FILE] [--archive FILE] [--db PATH]",
     "check the audit trail against its signed checkpoints; exit 1 if a record was changed, removed or added",
     "  --full              every record, not only those since the last verified checkpoint\n"
     "  --checkpoints FILE  an export (audit checkpoints export) the database must agree with\n"
     "  --archive FILE      check an archive file (audit archive) instead of the database\n"
     "  --config FILE, --db PATH  as for serve\n"
     "The anchor file beside the key is checked too. Run it daily, with --full now and then.\n"},
    {"audit", "checkpoints", "audit checkpoints export --out FILE [--db PATH]",
     "write every signed checkpoint and the public keys to FILE, to keep apart from the database",
     "  --out FILE  the file to write (mode 0600)\n"
     "  --config FILE, --db PATH  as for serve\n"},
    {"audit", "archive", "audit archive --before DATE --out FILE [--db PATH]",
     "move the records written before DATE (YYYY-MM-DD or RFC 3339 UTC) to a verifiable FILE",
     "  --before DATE  no later than retention.audit_days ago\n"
     "  --out FILE     the archive to write; it is read back and verified before any record is deleted\n"
     "  --config FILE, --db PATH  as for serve\n"},
    {"key", "rotate", "key rotate [--db PATH]",
     "seal everything under a new key (the server must be stopped); the old key file is kept aside",
     "  --config FILE, --db PATH  as for serve\n"
     "The old key moves to sarye.key.retired-<id>: backups made before need it.\n"},
    {"plugin", "new", "plugin new program|region|agency ID [--dir DIR] [--region CODE] [--program P] [--force]",
     "write a working plugin with its tests (default: into the bundled set, plugins/)", ""},
    {"plugin", "check", "plugin check [DIR or FILE] [--plugins DIR]",
     "load and validate a plugin set exactly as a reload would (default: plugins/)", ""},
    {"plugin", "test", "plugin test [DIR or FILE] [--filter TEXT] [--verbose] [--plugins DIR]",
     "run the plugins' own tests inside the real sandbox", ""},
    {"plugin", "lint", "plugin lint [DIR or FILE]", "luacheck with the sandbox's globals", ""},
    {"plugin", "replay", "plugin replay DIR [--db PATH] [--config FILE] [--plugins DIR] [--examples N] [--json]",
     "every recorded decision a candidate set would make differently from the serving one", ""},
    {"backup", NULL, "backup FILE [--config FILE] [--db PATH]",
     "copy the database into the new file FILE, online (a running server keeps serving)",
     "  FILE           the backup to write; never overwritten\n"
     "  --config FILE, --db PATH  as for serve\n"
     "The copy is one consistent snapshot: every write acknowledged before the command\n"
     "started is in it. The key file (sarye.key) is NOT in the backup: keep it with\n"
     "your backups, but not in the same place; without it the stored resident\n"
     "registration numbers cannot be read.\n"},
    {"restore", NULL, "restore FILE [--config FILE] [--db PATH]",
     "replace the database with the backup FILE (the server must be stopped)",
     "  FILE           a file `sarye backup` wrote\n"
     "  --config FILE, --db PATH  as for serve\n"
     "Refused when the file is damaged, not a sarye database, of a newer schema, when\n"
     "the key file in place does not open its sealed numbers, or while a server uses\n"
     "the database. The replaced database is kept as DB.before-restore.\n"},
    {"config", "check", "config check [FILE]",
     "check every line of a configuration file and the SARYE_* environment",
     "FILE defaults to what serve reads (config/sarye.conf, else the copy built in).\n"
     "Every problem is named with its line; an unknown key with the nearest known one.\n"},
    {"version", NULL, "version", "print the version", ""},
    {"help", NULL, "help [COMMAND]", "this list, or one command's options (as COMMAND --help)", ""},
};
#define N_COMMANDS ((int)(sizeof COMMANDS / sizeof COMMANDS[0]))

static void print_usage(FILE *f)
{
    fputs("usage: sarye <command> [options]\n\n", f);
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %s\n        %s\n", COMMANDS[i].synopsis, COMMANDS[i].summary);
    fputs("\n`sarye COMMAND --help` shows a command's options; `sarye plugin --help` the plugin kit.\n", f);
}

static int usage(const char *why)
{
    if (why) fprintf(stderr, "sarye: %s\n\n", why);
    print_usage(stderr);
    return 2;
}

static bool known_command(const char *cmd)
{
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(COMMANDS[i].cmd, cmd)) return true;
    return false;
}

/* The help of cmd [sub]: one command's, or the list of cmd's subcommands
 * when sub is not one of them. */
static void print_help(FILE *f, const char *cmd, const char *sub)
{
    if (!strcmp(cmd, "plugin") && (!sub || !strcmp(sub, "help"))) { /* the plugin kit's own list */
        fputs(CLI_PLUGIN_USAGE, f);
        return;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        const command_doc *c = &COMMANDS[i];
        if (strcmp(c->cmd, cmd) || (c->sub && (!sub || strcmp(c->sub, sub)))) continue;
        fprintf(f, "usage: sarye %s\n\n%s\n%s%s", c->synopsis, c->summary, c->details[0] ? "\n" : "", c->details);
        return;
    }
    fprintf(f, "usage: sarye %s <subcommand> ...\n\n", cmd);
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(COMMANDS[i].cmd, cmd)) fprintf(f, "  %s\n        %s\n", COMMANDS[i].synopsis, COMMANDS[i].summary);
    fprintf(f, "\n`sarye %s SUBCOMMAND --help` shows its options.\n", cmd);
}

/* `sarye CMD` without a subcommand it has: its list on stderr, exit 2. */
static int sub_usage(const char *cmd, const char *got)
{
    char subs[200] = "";
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(COMMANDS[i].cmd, cmd) && COMMANDS[i].sub) {
            size_t n = strlen(subs);
            snprintf(subs + n, sizeof subs - n, "%s%s", n ? " or " : "", COMMANDS[i].sub);
        }
    if (got) fprintf(stderr, "sarye: %s: unknown subcommand '%s' (%s)\n\n", cmd, got, subs);
    else fprintf(stderr, "sarye: %s needs a subcommand: %s\n\n", cmd, subs);
    print_help(stderr, cmd, NULL);
    return 2;
}

static bool is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

typedef struct {
    const char *config, *listen, *db, *plugins;
    const char *id, *name, *type, *region, *user, *role, *org, *area, *ttl_days;
    const char *checkpoints, *archive, *out, *before;
    bool full;
    const char *programs[64];
    int n_programs;
} options;

enum {
    O_CONFIG = 1, O_LISTEN, O_DB, O_PLUGINS, O_ID, O_NAME, O_TYPE, O_REGION, O_PROGRAM, O_USER, O_ROLE, O_ORG,
    O_AREA, O_FULL, O_CHECKPOINTS, O_ARCHIVE, O_OUT, O_BEFORE, O_TTL_DAYS
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
        {"before", required_argument, NULL, O_BEFORE},      {"ttl-days", required_argument, NULL, O_TTL_DAYS},
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
        case O_TTL_DAYS: o->ttl_days = optarg; break;
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
    log_set_json(cfg->log_json);
    return 0;
fail:
    fprintf(stderr, "sarye: configuration: %s\n", err);
    return 1;
}

/* The key lives beside the database unless configured elsewhere. */
static void key_path(const config *cfg, char *key, size_t n)
{
    if (cfg->key_file[0]) {
        str_copy(key, n, cfg->key_file);
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
    else if (strcmp(cfg->audit_anchor_file, "off")) str_copy(anchor, sizeof anchor, cfg->audit_anchor_file);
    process_audit_setup(anchor, cfg->audit_checkpoint_every);
    return 0;
}

/* Each HTTP worker holds a socket and, once it has served, its own
 * connection to the store (the database and its log): three descriptors,
 * besides the writer's, the agencies' and the listener's. The soft limit on
 * open files, 1024 where a shell or systemd leaves it, is raised to the hard
 * one (as Go's runtime does; nothing here uses select()), and a limit still
 * short of that is said at start, not found at the first busy hour as
 * requests answered 503 store_unavailable. */
static void open_files_limit(const config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return;
    rlim_t was = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            log_msg(LOG_INFO, "open files limit raised", " from=%llu to=%llu", (unsigned long long)was,
                    (unsigned long long)rl.rlim_cur);
        else if (getrlimit(RLIMIT_NOFILE, &rl))
            return;
    }
    unsigned long long need = 3ULL * (unsigned long long)cfg->threads + 64;
    if (rl.rlim_cur != RLIM_INFINITY && (unsigned long long)rl.rlim_cur < need)
        log_msg(LOG_WARN, "open files limit too low",
                " limit=%llu needed=%llu threads=%d hint=\"raise it (ulimit -n, systemd's LimitNOFILE) or lower"
                " threads: past it, requests answer 503 store_unavailable\"",
                (unsigned long long)rl.rlim_cur, need, cfg->threads);
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
    open_files_limit(cfg);

    char err[4096];
    /* Before the database is opened: a restore may be replacing it. */
    if (ops_serve_lock(cfg, err, sizeof err)) {
        fprintf(stderr, "sarye: %s\n", err);
        return 1;
    }
    if (open_store(cfg)) return 1;
    if (ops_serve_lock(cfg, err, sizeof err)) { /* a database created just now */
        fprintf(stderr, "sarye: %s\n", err);
        store_close();
        return 1;
    }
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

static int write_org(void *arg, store_reply *reply, err_t *e) { return process_org_create(NULL, arg, NULL, reply, e); }

static int write_token(void *arg, store_reply *reply, err_t *e) { return process_token_create(NULL, arg, NULL, NULL, reply, e); }

static int write_revoke(void *arg, store_reply *reply, err_t *e) { return process_token_revoke(NULL, arg, NULL, reply, e); }

/* One line per token: id, prefix, user, role, organisation, status, expiry. */
static int list_tokens(void *arg, store_reply *reply, err_t *e)
{
    token_query q = {.org = arg, .limit = 500};
    char after[STORE_KEY_MAX] = "";
    for (;;) {
        if (process_tokens_list(NULL, &q, reply, e)) return -1;
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(reply->body, "items"), i, t) {
            const char *f[] = {"id", "prefix", "user", "role", "org", "status", "expires_at"};
            for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
                const char *v = json_string_value(json_object_get(t, f[k]));
                printf("%s%s", k ? "\t" : "", v ? v : "-");
            }
            printf("\n");
            str_copy(after, sizeof after, json_string_value(json_object_get(t, "id")));
        }
        bool more = !json_is_null(json_object_get(reply->body, "next_cursor"));
        store_reply_clear(reply);
        if (!more) return 0;
        q.after = after;
    }
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
    if (!o->user || !o->role) return usage("token create needs --user and --role");
    if (!process_one_of(o->role, process_roles))
        return usage("--role must be one of worker, supervisor, agency, auditor, admin, operator");
    bool op = !strcmp(o->role, "operator");
    if (op && o->org) return usage("a system operator's token belongs to no organisation: leave out --org");
    if (!op && !o->org) return usage("token create needs --org for every role but operator");
    token_post in = {.user = o->user, .role = o->role, .org = o->org, .ttl_days = cfg->auth_token_ttl_days};
    if (o->ttl_days) {
        char *end;
        long n = strtol(o->ttl_days, &end, 10);
        if (*end || n < 1 || n > 3650) return usage("--ttl-days must be a number of days from 1 to 3650");
        in.ttl_days = (int)n;
    }
    return cmd_write(cfg, write_token, &in, "token");
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

static int cli_load_config(const char *config_file, const char *db, const char *plugins, config *cfg)
{
    options o;
    memset(&o, 0, sizeof o);
    o.config = config_file;
    o.db = db;
    o.plugins = plugins;
    return load_config(&o, cfg);
}

int main(int argc, char **argv)
{
    /* A file-size limit (ulimit -f, systemd's LimitFSIZE) reached is a write
     * that fails with EFBIG, answered like a full disk: not a signal that
     * kills the server and every request in flight, or a backup half made. */
    signal(SIGXFSZ, SIG_IGN);
    if (base_init()) {
        fprintf(stderr, "sarye: cannot initialise libsodium\n");
        return 1;
    }
    if (argc < 2) return usage(NULL);
    const char *cmd = argv[1];
    /* Help: `sarye help [CMD [SUB]]`, `sarye CMD [SUB] --help` (or -h). */
    if (!strcmp(cmd, "help") || is_help(cmd)) {
        if (argc < 3 || is_help(cmd)) {
            print_usage(stdout);
            return 0;
        }
        if (is_help(argv[2])) {
            print_help(stdout, "help", NULL);
            return 0;
        }
        if (!known_command(argv[2])) {
            char msg[200];
            snprintf(msg, sizeof msg, "no command '%s'", argv[2]);
            return usage(msg);
        }
        print_help(stdout, argv[2], argc > 3 ? argv[3] : NULL);
        return 0;
    }
    for (int i = 2; i < argc; i++) {
        if (!is_help(argv[i])) continue;
        if (!known_command(cmd)) break; /* answered below as unknown */
        print_help(stdout, cmd, argc > 2 && argv[2][0] != '-' ? argv[2] : NULL);
        return 0;
    }
    options o;
    memset(&o, 0, sizeof o);
    config cfg;
    char all[] = {O_CONFIG, O_LISTEN, O_DB, O_PLUGINS, 0};
    char dbonly[] = {O_CONFIG, O_DB, 0};
    char org[] = {O_CONFIG, O_DB, O_ID, O_NAME, O_TYPE, O_REGION, O_PROGRAM, O_AREA, 0};
    char tok[] = {O_CONFIG, O_DB, O_USER, O_ROLE, O_ORG, O_TTL_DAYS, 0};
    char toklist[] = {O_CONFIG, O_DB, O_ORG, 0};
    char tokrevoke[] = {O_CONFIG, O_DB, O_ID, 0};
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
    if (!strcmp(cmd, "token") && argc >= 3 && !strcmp(argv[2], "list")) {
        if ((rc = parse_options(argc - 2, argv + 2, toklist, &o))) return rc;
        if (load_config(&o, &cfg) || open_store(&cfg)) return 1;
        err_t e = {0};
        store_reply reply = {0};
        rc = list_tokens((void *)o.org, &reply, &e);
        if (rc) fprintf(stderr, "sarye: %s\n", e.message);
        err_clear(&e);
        store_reply_clear(&reply);
        store_close();
        return rc ? 1 : 0;
    }
    if (!strcmp(cmd, "token") && argc >= 3 && !strcmp(argv[2], "revoke")) {
        if ((rc = parse_options(argc - 2, argv + 2, tokrevoke, &o))) return rc;
        if (!o.id) return usage("token revoke needs --id TOKEN_ID (see token list)");
        if (load_config(&o, &cfg)) return 1;
        return cmd_write(&cfg, write_revoke, (void *)o.id, "revoked_at");
    }
    if (!strcmp(cmd, "plugin")) { /* the plugin kit (cli/plugin.c) */
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
    if (!strcmp(cmd, "backup") || !strcmp(cmd, "restore")) {
        if (argc < 3 || argv[2][0] == '-') {
            fprintf(stderr, "sarye: %s needs the FILE\n\n", cmd);
            print_help(stderr, cmd, NULL);
            return 2;
        }
        if ((rc = parse_options(argc - 2, argv + 2, dbonly, &o))) return rc;
        if (load_config(&o, &cfg)) return 1;
        return !strcmp(cmd, "backup") ? ops_backup(&cfg, argv[2]) : ops_restore(&cfg, argv[2]);
    }
    if (!strcmp(cmd, "config") && argc >= 3 && !strcmp(argv[2], "check")) {
        if (argc > 4) return usage("config check takes at most one FILE");
        if (argc == 4 && argv[3][0] == '-') return usage("config check takes no options");
        return ops_config_check(argc == 4 ? argv[3] : NULL);
    }
    /* A command of two words, without (or with an unknown) second. */
    if (!strcmp(cmd, "org") || !strcmp(cmd, "token") || !strcmp(cmd, "plugin") || !strcmp(cmd, "audit") ||
        !strcmp(cmd, "config") || !strcmp(cmd, "key"))
        return sub_usage(cmd, argc >= 3 ? argv[2] : NULL);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("sarye %s\n", SARYE_VERSION);
        return 0;
    }
    char msg[200];
    snprintf(msg, sizeof msg, "unknown command '%s'", cmd);
    return usage(msg);
}
