/*
 * config: the server's settings. Sources in rising precedence: built-in
 * defaults, a "key = value" file, SARYE_* environment variables, then
 * command-line options. Every value is validated when it is set; an invalid
 * one is refused with a message naming the key, the value and its source.
 */
#ifndef SARYE_CONFIG_H
#define SARYE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_MAX_AGENCIES 32

typedef struct {
    char id[48];
    char url[512];
    int timeout_ms;
    char token[256];
    int concurrency; /* synchronous look-ups in flight at once (0: lookup.concurrency) */
} config_agency;

typedef struct {
    char listen[128];        /* HOST:PORT; port 0 picks a free port */
    char db[1024];           /* SQLite file */
    char plugins[1024];      /* plugin directory */
    char key_file[1024];     /* master key sealing personal identifiers (created 0600);
                              * "" means sarye.key in the database's folder */
    int threads;             /* HTTP worker threads */
    long max_body_bytes;     /* request body limit (413 above) */
    bool durability_full;    /* synchronous=FULL (true) or NORMAL */
    int request_timeout_ms;  /* what one request may take, look-ups of agencies included */
    int http_io_timeout_ms;  /* reading a request (its headers: in total) and each write of the answer */
    int http_keep_alive_ms;  /* how long a kept-alive connection may idle */
    int http_max_per_address;/* open connections from one client address (0: no limit) */
    int busy_timeout_ms;     /* SQLite busy timeout */
    int drain_timeout_ms;    /* graceful shutdown: wait this long for in-flight requests */
    char log_level[8];       /* debug | info | warn | error */
    bool log_json;           /* log.format = json: one JSON object a line (else logfmt) */
    char trusted_proxies[512]; /* http.trusted_proxies: addresses whose X-Forwarded-For is believed ("" none) */
    bool plugins_watch;      /* reload when plugin files change */
    bool plugins_stay;       /* a reload without a choice keeps open cases on their generation (else migrates them) */
    int plugins_max_generations; /* generations loaded at once: the serving one and those open cases stay on */
    int replay_timeout_ms;   /* what one shadow replay may take */
    int lua_memory_mb;       /* per-VM memory cap */
    int lua_timeout_ms;      /* per-call CPU budget for plugin code */
    int reload_timeout_ms;   /* time budget for loading a new plugin set */
    int lua_region_concurrency; /* plugin calls of one region at once (0: cores - 1, at least 1,
                                  * while another region's call runs; all cores otherwise) */
    int lua_region_cpu_percent; /* a region's share of all CPU for plugin code while others are active (0: no cap) */
    int lua_region_strikes;     /* budget overruns within a minute that suspend a region (0: never) */
    bool clock_adjustable;   /* tests: PUT /v1/admin/clock may move the business date */
    int outbox_retry_base_ms;   /* first retry delay; doubles each attempt */
    int outbox_retry_max_ms;    /* longest retry delay */
    int outbox_breaker_failures;/* consecutive failures that open an agency's circuit */
    int outbox_breaker_open_ms; /* how long an open circuit waits before one probe */
    int outbox_concurrency;     /* messages in flight at once */
    int rate_per_minute;        /* requests per token per minute (0: no limit) */
    int rate_burst;             /* requests a token may send at once */
    int retention_idempotency_hours; /* Idempotency-Key records expire after this */
    int retention_outbox_days;  /* delivered outbox messages are purged after this */
    int retention_audit_days;   /* audit records stay in the database at least this long */
    int retention_sweep_ms;     /* how often the purges run */
    int retention_batch;        /* rows one purge unit removes */
    int audit_checkpoint_every; /* records between two signed checkpoints (0: only at shutdown, verify ...) */
    char audit_anchor_file[1024]; /* the newest checkpoint, kept beside the key; "" = sarye.anchor beside
                                   * the key file, "off" = none */
    int auth_token_ttl_days;    /* days a new token lasts unless it says otherwise (0: never expires) */
    int lookup_concurrency;     /* look-ups of one agency in flight at once, unless agency.<id>.concurrency */
    config_agency agencies[CONFIG_MAX_AGENCIES];
    int n_agencies;
} config;

/* Fills c with the built-in defaults. */
void config_defaults(config *c);

/* Sets one key from a named source ("file:12", "env SARYE_X", "option").
 * Returns 0, or -1 with a message in err naming key, value and source. */
int config_set(config *c, const char *key, const char *value, const char *source,
               char *err, size_t errlen);

/* Parses "key = value" text (# comments, blank lines). name is used in errors. */
int config_parse_text(config *c, const char *text, const char *name, char *err, size_t errlen);
int config_load_file(config *c, const char *path, char *err, size_t errlen);

/* Applies SARYE_* variables from the environment. Unknown SARYE_ variables
 * are reported in err as a warning but not refused (returns 1 then). */
int config_apply_env(config *c, char *err, size_t errlen);

/* The known key nearest to an unknown one (edit distance, as plugins'
 * "did you mean"), or NULL when none is near. */
const char *config_suggest(const char *key);

/* Checks a configuration file without stopping at the first problem:
 * each bad line (unknown key, with a suggestion; invalid value; not
 * "key = value") is reported through report(message, ctx). Returns the
 * number of problems (-1 when out of memory), and *n_keys the
 * number of settings read. */
int config_check_text(const char *text, const char *name, int *n_keys, void (*report)(const char *, void *),
                      void *ctx);

/* True when addr (numeric, as CivetWeb and getnameinfo write it) is one
 * of http.trusted_proxies. */
bool config_proxy_trusted(const config *c, const char *addr);

/* Finds an agency block by id, or NULL. */
const config_agency *config_agency_find(const config *c, const char *id);

#endif
