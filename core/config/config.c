/*
 * config.c: a table of known keys drives parsing, validation and the
 * environment mapping, so adding a setting is one row here and one field in
 * config.h.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"

extern char **environ;

typedef enum { K_STR, K_INT, K_LONG, K_ENUM_BOOL } key_type;

typedef struct {
    const char *name;
    key_type type;
    size_t off, size;
    long min, max;
    const char *on, *off_word; /* for K_ENUM_BOOL: the two accepted words */
} key_def;

#define F(field) offsetof(config, field), sizeof(((config *)0)->field)
static const key_def keys[] = {
    {"listen", K_STR, F(listen), 0, 0, NULL, NULL},
    {"db", K_STR, F(db), 0, 0, NULL, NULL},
    {"plugins", K_STR, F(plugins), 0, 0, NULL, NULL},
    {"key_file", K_STR, F(key_file), 0, 0, NULL, NULL},
    {"threads", K_INT, F(threads), 1, 1024, NULL, NULL}, /* store.c: MAX_BATCH holds a unit of each */
    {"max_body_bytes", K_LONG, F(max_body_bytes), 64, 64L * 1024 * 1024, NULL, NULL},
    {"durability", K_ENUM_BOOL, F(durability_full), 0, 0, "full", "normal"},
    {"request_timeout_ms", K_INT, F(request_timeout_ms), 100, 600000, NULL, NULL},
    {"http.io_timeout_ms", K_INT, F(http_io_timeout_ms), 100, 600000, NULL, NULL},
    {"http.keep_alive_ms", K_INT, F(http_keep_alive_ms), 100, 600000, NULL, NULL},
    {"http.max_per_address", K_INT, F(http_max_per_address), 0, 100000, NULL, NULL},
    {"busy_timeout_ms", K_INT, F(busy_timeout_ms), 10, 600000, NULL, NULL},
    {"drain_timeout_ms", K_INT, F(drain_timeout_ms), 0, 600000, NULL, NULL},
    {"log_level", K_STR, F(log_level), 0, 0, NULL, NULL},
    {"log.format", K_ENUM_BOOL, F(log_json), 0, 0, "json", "text"},
    {"http.trusted_proxies", K_STR, F(trusted_proxies), 0, 0, NULL, NULL},
    {"plugins.watch", K_ENUM_BOOL, F(plugins_watch), 0, 0, "on", "off"},
    {"plugins.open_cases", K_ENUM_BOOL, F(plugins_stay), 0, 0, "stay", "migrate"},
    {"plugins.max_generations", K_INT, F(plugins_max_generations), 1, 16, NULL, NULL},
    {"replay.timeout_ms", K_INT, F(replay_timeout_ms), 100, 3600000, NULL, NULL},
    {"lua.memory_mb", K_INT, F(lua_memory_mb), 4, 4096, NULL, NULL},
    {"lua.timeout_ms", K_INT, F(lua_timeout_ms), 1, 60000, NULL, NULL},
    {"reload.timeout_ms", K_INT, F(reload_timeout_ms), 100, 600000, NULL, NULL},
    {"lua.region_concurrency", K_INT, F(lua_region_concurrency), 0, 1024, NULL, NULL},
    {"lua.region_cpu_percent", K_INT, F(lua_region_cpu_percent), 0, 100, NULL, NULL},
    {"lua.region_strikes", K_INT, F(lua_region_strikes), 0, 1000, NULL, NULL},
    {"clock.adjustable", K_ENUM_BOOL, F(clock_adjustable), 0, 0, "on", "off"},
    {"outbox.retry_base_ms", K_INT, F(outbox_retry_base_ms), 10, 3600000, NULL, NULL},
    {"outbox.retry_max_ms", K_INT, F(outbox_retry_max_ms), 10, 86400000, NULL, NULL},
    {"outbox.breaker_failures", K_INT, F(outbox_breaker_failures), 1, 1000, NULL, NULL},
    {"outbox.breaker_open_ms", K_INT, F(outbox_breaker_open_ms), 10, 3600000, NULL, NULL},
    {"outbox.concurrency", K_INT, F(outbox_concurrency), 1, 1024, NULL, NULL},
    {"rate_limit.per_minute", K_INT, F(rate_per_minute), 0, 6000000, NULL, NULL},
    {"rate_limit.burst", K_INT, F(rate_burst), 1, 1000000, NULL, NULL},
    {"retention.idempotency_hours", K_INT, F(retention_idempotency_hours), 1, 8760, NULL, NULL},
    {"retention.outbox_days", K_INT, F(retention_outbox_days), 1, 36500, NULL, NULL},
    {"retention.audit_days", K_INT, F(retention_audit_days), 0, 36500, NULL, NULL},
    {"retention.sweep_ms", K_INT, F(retention_sweep_ms), 100, 86400000, NULL, NULL},
    {"retention.batch", K_INT, F(retention_batch), 1, 100000, NULL, NULL},
    {"audit.checkpoint_every", K_INT, F(audit_checkpoint_every), 0, 100000000, NULL, NULL},
    {"audit.anchor_file", K_STR, F(audit_anchor_file), 0, 0, NULL, NULL},
    {"auth.token_ttl_days", K_INT, F(auth_token_ttl_days), 0, 3650, NULL, NULL},
    {"lookup.concurrency", K_INT, F(lookup_concurrency), 1, 1024, NULL, NULL},
};
#undef F

void config_defaults(config *c)
{
    memset(c, 0, sizeof *c);
    str_copy(c->listen, sizeof c->listen, "127.0.0.1:8080");
    str_copy(c->db, sizeof c->db, "data/sarye.db");
    str_copy(c->plugins, sizeof c->plugins, "plugins");
    c->threads = 64;
    c->max_body_bytes = 1024 * 1024;
    c->durability_full = true;
    c->request_timeout_ms = 30000;
    c->http_io_timeout_ms = 10000;
    c->http_keep_alive_ms = 5000;
    c->http_max_per_address = 32;
    c->busy_timeout_ms = 5000;
    c->drain_timeout_ms = 10000;
    str_copy(c->log_level, sizeof c->log_level, "info");
    c->plugins_watch = false;
    c->plugins_stay = false;
    c->plugins_max_generations = 3;
    c->replay_timeout_ms = 60000;
    c->lua_memory_mb = 64;
    c->lua_timeout_ms = 250;
    c->reload_timeout_ms = 10000;
    c->lua_region_concurrency = 0;
    c->lua_region_cpu_percent = 15;
    c->lua_region_strikes = 3;
    c->outbox_retry_base_ms = 1000;
    c->outbox_retry_max_ms = 300000;
    c->outbox_breaker_failures = 5;
    c->outbox_breaker_open_ms = 30000;
    c->outbox_concurrency = 32;
    c->rate_per_minute = 6000;
    c->rate_burst = 300;
    c->retention_idempotency_hours = 24;
    c->retention_outbox_days = 30;
    c->retention_audit_days = 3650;
    c->retention_sweep_ms = 60000;
    c->retention_batch = 500;
    c->audit_checkpoint_every = 10000;
    c->auth_token_ttl_days = 90;
    c->lookup_concurrency = 8;
}

static int fail(char *err, size_t errlen, const char *key, const char *value,
                const char *source, const char *why)
{
    snprintf(err, errlen, "invalid value for '%s': '%s' (%s)%s%s", key, value, why,
             source ? " from " : "", source ? source : "");
    return -1;
}

static int parse_long(const char *v, long *out)
{
    if (!*v) return -1;
    errno = 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (errno || *end) return -1;
    *out = x;
    return 0;
}

static int check_listen(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v) return -1;
    long port;
    if (parse_long(colon + 1, &port) || port < 0 || port > 65535) return -1;
    for (const char *p = v; p < colon; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '[' && *p != ']' && *p != ':')
            return -1;
    return 0;
}

/* "127.0.0.1, ::1": each a numeric IPv4 or IPv6 address. */
static int check_proxies(const char *v)
{
    char buf[512];
    str_copy(buf, sizeof buf, v);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        char *e = t + strlen(t);
        while (e > t && e[-1] == ' ') *--e = 0;
        unsigned char addr[16];
        if (inet_pton(AF_INET, t, addr) != 1 && inet_pton(AF_INET6, t, addr) != 1) return -1;
        n++;
    }
    return n ? 0 : -1;
}

bool config_proxy_trusted(const config *c, const char *addr)
{
    if (!c->trusted_proxies[0] || !addr || !*addr) return false;
    unsigned char want[16], have[16];
    int fam = strchr(addr, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, addr, want) != 1) return false;
    char buf[512];
    str_copy(buf, sizeof buf, c->trusted_proxies);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        char *e = t + strlen(t);
        while (e > t && e[-1] == ' ') *--e = 0;
        int f = strchr(t, ':') ? AF_INET6 : AF_INET;
        if (f == fam && inet_pton(f, t, have) == 1 && !memcmp(want, have, fam == AF_INET ? 4 : 16)) return true;
    }
    return false;
}

static int set_agency(config *c, const char *key, const char *value, const char *source,
                      char *err, size_t errlen)
{
    const char *id = key + strlen("agency.");
    const char *dot = strrchr(id, '.');
    if (!dot || dot == id || (size_t)(dot - id) >= sizeof c->agencies[0].id) {
        snprintf(err, errlen, "unknown configuration key '%s'%s%s", key,
                 source ? " from " : "", source ? source : "");
        return -1;
    }
    char aid[48];
    memcpy(aid, id, (size_t)(dot - id));
    aid[dot - id] = 0;
    for (const char *p = aid; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
            return fail(err, errlen, key, value, source, "agency id must be [a-z0-9_]");
    const char *field = dot + 1;
    long x = 0;
    if (!strcmp(field, "url")) {
        if (strncmp(value, "http://", 7) && strncmp(value, "https://", 8))
            return fail(err, errlen, key, value, source, "expected an http:// or https:// URL");
        if (strlen(value) >= sizeof c->agencies[0].url) return fail(err, errlen, key, value, source, "too long");
    } else if (!strcmp(field, "timeout_ms")) {
        if (parse_long(value, &x) || x < 1 || x > 600000)
            return fail(err, errlen, key, value, source, "expected an integer 1..600000");
    } else if (!strcmp(field, "token")) {
        if (strlen(value) >= sizeof c->agencies[0].token) return fail(err, errlen, key, value, source, "too long");
    } else if (!strcmp(field, "concurrency")) {
        if (parse_long(value, &x) || x < 1 || x > 1024)
            return fail(err, errlen, key, value, source, "expected an integer 1..1024");
    } else {
        snprintf(err, errlen,
                 "unknown configuration key '%s' (agency keys are url, timeout_ms, token, concurrency)%s%s",
                 key, source ? " from " : "", source ? source : "");
        return -1;
    }
    config_agency *a = (config_agency *)config_agency_find(c, aid);
    if (!a) {
        if (c->n_agencies == CONFIG_MAX_AGENCIES)
            return fail(err, errlen, key, value, source, "too many agencies");
        a = &c->agencies[c->n_agencies++];
        memset(a, 0, sizeof *a);
        str_copy(a->id, sizeof a->id, aid);
        a->timeout_ms = 5000;
    }
    if (!strcmp(field, "url")) str_copy(a->url, sizeof a->url, value);
    else if (!strcmp(field, "timeout_ms")) a->timeout_ms = (int)x;
    else if (!strcmp(field, "concurrency")) a->concurrency = (int)x;
    else str_copy(a->token, sizeof a->token, value);
    return 0;
}

int config_set(config *c, const char *key, const char *value, const char *source,
               char *err, size_t errlen)
{
    if (!strncmp(key, "agency.", 7)) return set_agency(c, key, value, source, err, errlen);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const key_def *k = &keys[i];
        if (strcmp(k->name, key)) continue;
        char *field = (char *)c + k->off;
        char why[96];
        switch (k->type) {
        case K_STR:
            if (!*value) return fail(err, errlen, key, value, source, "must not be empty");
            if (strlen(value) >= k->size) return fail(err, errlen, key, value, source, "too long");
            if (!strcmp(key, "listen") && check_listen(value))
                return fail(err, errlen, key, value, source, "expected HOST:PORT");
            if (!strcmp(key, "http.trusted_proxies") && check_proxies(value))
                return fail(err, errlen, key, value, source,
                            "expected numeric IP addresses separated by commas, e.g. 127.0.0.1,::1");
            if (!strcmp(key, "log_level") && strcmp(value, "debug") && strcmp(value, "info") &&
                strcmp(value, "warn") && strcmp(value, "error"))
                return fail(err, errlen, key, value, source, "expected debug, info, warn or error");
            str_copy(field, k->size, value);
            return 0;
        case K_INT:
        case K_LONG: {
            long x;
            if (parse_long(value, &x) || x < k->min || x > k->max) {
                snprintf(why, sizeof why, "expected an integer %ld..%ld", k->min, k->max);
                return fail(err, errlen, key, value, source, why);
            }
            if (k->type == K_INT) *(int *)field = (int)x;
            else *(long *)field = x;
            return 0;
        }
        case K_ENUM_BOOL:
            if (!strcmp(value, k->on)) *(bool *)field = true;
            else if (!strcmp(value, k->off_word)) *(bool *)field = false;
            else {
                snprintf(why, sizeof why, "expected %s or %s", k->on, k->off_word);
                return fail(err, errlen, key, value, source, why);
            }
            return 0;
        }
    }
    const char *near = config_suggest(key);
    snprintf(err, errlen, "unknown configuration key '%s'%s%s%s%s", key, near ? " (did you mean '" : "",
             near ? near : "", near ? "'?)" : "", source ? " from " : "");
    if (source) {
        size_t n = strlen(err);
        str_copy(err + n, errlen > n ? errlen - n : 0, source);
    }
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

int config_parse_text(config *c, const char *text, const char *name, char *err, size_t errlen)
{
    char *copy = strdup(text);
    if (!copy) { str_copy(err, errlen, "out of memory"); return -1; }
    int rc = 0, lineno = 0;
    char *save = NULL;
    /* strtok_r would skip empty lines and so miscount; walk by hand. */
    char *line = copy;
    (void)save;
    while (line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        lineno++;
        /* A comment starts with '#' at the start of the line or after a
         * blank; a '#' inside a value (a token, a URL fragment) is kept. */
        for (char *h = line; *h; h++)
            if (*h == '#' && (h == line || h[-1] == ' ' || h[-1] == '\t')) {
                *h = 0;
                break;
            }
        char *t = trim(line);
        if (*t) {
            char source[300];
            snprintf(source, sizeof source, "%s:%d", name, lineno);
            char *eq = strchr(t, '=');
            if (!eq) {
                snprintf(err, errlen, "%s: expected 'key = value'", source);
                rc = -1;
                break;
            }
            *eq = 0;
            char *k = trim(t), *v = trim(eq + 1);
            if (config_set(c, k, v, source, err, errlen)) { rc = -1; break; }
        }
        line = nl ? nl + 1 : NULL;
    }
    free(copy);
    return rc;
}

int config_load_file(config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read configuration file '%s': %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); str_copy(err, errlen, "out of memory"); return -1; }
            buf = nb;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (!buf) return 0;
    buf[len] = 0;
    int rc = config_parse_text(c, buf, path, err, errlen);
    free(buf);
    return rc;
}

/* "SARYE_LUA_MEMORY_MB" -> the key whose env form matches. */
static void env_name(const char *key, char *out, size_t n)
{
    size_t j = (size_t)snprintf(out, n, "SARYE_");
    for (size_t i = 0; key[i] && j + 1 < n; i++)
        out[j++] = key[i] == '.' ? '_' : (char)toupper((unsigned char)key[i]);
    out[j] = 0;
}

int config_apply_env(config *c, char *err, size_t errlen)
{
    int warned = 0;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "SARYE_", 6)) continue;
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        char name[256];
        size_t nlen = (size_t)(eq - *e);
        if (nlen >= sizeof name) continue;
        memcpy(name, *e, nlen);
        name[nlen] = 0;
        const char *value = eq + 1;
        char source[300];
        snprintf(source, sizeof source, "environment %s", name);
        const char *match = NULL;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            char en[128];
            env_name(keys[i].name, en, sizeof en);
            if (!strcmp(en, name)) { match = keys[i].name; break; }
        }
        if (match) {
            if (config_set(c, match, value, source, err, errlen)) return -1;
            continue;
        }
        /* SARYE_AGENCY_<ID>_<FIELD>: the field is one of a known few, the id the rest. */
        static const char *fields[] = {"_URL", "_TIMEOUT_MS", "_TOKEN", "_CONCURRENCY"};
        if (!strncmp(name, "SARYE_AGENCY_", 13)) {
            int done = 0;
            for (size_t f = 0; f < sizeof fields / sizeof fields[0] && !done; f++) {
                size_t fl = strlen(fields[f]);
                if (nlen > 13 + fl && !strcmp(name + nlen - fl, fields[f])) {
                    char key[256];
                    size_t j = (size_t)snprintf(key, sizeof key, "agency.");
                    for (size_t i = 13; i < nlen - fl; i++) key[j++] = (char)tolower((unsigned char)name[i]);
                    key[j++] = '.';
                    for (size_t i = nlen - fl + 1; i < nlen; i++) key[j++] = (char)tolower((unsigned char)name[i]);
                    key[j] = 0;
                    if (config_set(c, key, value, source, err, errlen)) return -1;
                    done = 1;
                }
            }
            if (done) continue;
        }
        if (!warned) snprintf(err, errlen, "ignoring unknown environment variable %s", name);
        warned = 1;
    }
    return warned;
}

/* Edit distance between a and b (short strings). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 64;
    size_t prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++) prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1, sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            cur[j] = del < ins ? (del < sub ? del : sub) : (ins < sub ? ins : sub);
        }
        memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
    }
    return prev[lb];
}

const char *config_suggest(const char *key)
{
    static const char *const agency_keys[] = {"agency.<id>.url", "agency.<id>.timeout_ms", "agency.<id>.token"};
    const char *best = NULL;
    size_t bd = 64;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        size_t d = distance(key, keys[i].name);
        /* case only: the nearest of all */
        if (!strcasecmp(key, keys[i].name)) return keys[i].name;
        if (d < bd) { bd = d; best = keys[i].name; }
    }
    if (!strncmp(key, "agenc", 5) || !strncmp(key, "agnecy", 6)) {
        const char *last = strrchr(key, '.');
        for (size_t i = 0; last && i < 3; i++) {
            size_t d = distance(last, strrchr(agency_keys[i], '.'));
            if (d < bd) { bd = d; best = agency_keys[i]; }
        }
    }
    size_t len = strlen(key), limit = len / 3 > 2 ? len / 3 : 2;
    return best && bd <= limit ? best : NULL;
}

int config_check_text(const char *text, const char *name, int *n_keys, void (*report)(const char *, void *), void *ctx)
{
    config c;
    config_defaults(&c);
    char *copy = strdup(text);
    if (!copy) return -1;
    int problems = 0, lineno = 0;
    *n_keys = 0;
    char *line = copy;
    while (line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        lineno++;
        for (char *h = line; *h; h++)
            if (*h == '#' && (h == line || h[-1] == ' ' || h[-1] == '\t')) {
                *h = 0;
                break;
            }
        char *t = trim(line);
        if (*t) {
            char source[300], err[900];
            snprintf(source, sizeof source, "%s:%d", name, lineno);
            char *eq = strchr(t, '=');
            if (!eq) {
                snprintf(err, sizeof err, "%s: expected 'key = value'", source);
                report(err, ctx);
                problems++;
            } else {
                *eq = 0;
                if (config_set(&c, trim(t), trim(eq + 1), source, err, sizeof err)) {
                    report(err, ctx);
                    problems++;
                } else {
                    (*n_keys)++;
                }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    free(copy);
    return problems;
}

const config_agency *config_agency_find(const config *c, const char *id)
{
    for (int i = 0; i < c->n_agencies; i++)
        if (!strcmp(c->agencies[i].id, id)) return &c->agencies[i];
    return NULL;
}
