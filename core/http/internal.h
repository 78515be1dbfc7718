/*
 * internal.h: what the server core shares with its handler files: the
 * request context, route table entries and response helpers.
 */
#ifndef SARYE_HTTP_INTERNAL_H
#define SARYE_HTTP_INTERNAL_H

#include <civetweb.h>
#include <jansson.h>
#include <stdbool.h>

#include "base/base.h"
#include "base/err.h"
#include "config/config.h"
#include "store/records.h"

#define MAX_PARAMS 4

/* Roles as a bit set, so a route can allow several. */
enum {
    ROLE_WORKER = 1 << 0,
    ROLE_SUPERVISOR = 1 << 1,
    ROLE_AGENCY = 1 << 2,
    ROLE_AUDITOR = 1 << 3,
    ROLE_ADMIN = 1 << 4,    /* of its organisation; of its region when the organisation is a district */
    ROLE_OPERATOR = 1 << 5, /* a system operator: organisations, regions, tokens, plugins, the clock */
    ROLES_STAFF = ROLE_WORKER | ROLE_SUPERVISOR | ROLE_ADMIN,
    ROLES_ANY = 0x3f,
    ROLES_PUBLIC = 0, /* no authentication at all */
};
int role_bit(const char *role); /* 0 for an unknown role */

struct req;
typedef void (*handler_fn)(struct req *r);

typedef struct {
    const char *method;
    const char *pattern; /* "/v1/persons/{id}" */
    handler_fn fn;
    int roles;           /* ROLES_PUBLIC or a set of ROLE_* */
    int body;            /* false: none; true: a JSON object body is required; BODY_OPTIONAL: one may come */
} route;
#define BODY_OPTIONAL 2

typedef struct req {
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    const config *cfg;
    char id[72];              /* X-Request-Id */
    const route *route;
    int route_index;
    char path[1024];          /* the request path, decoded and checked (server.c) */
    char params[MAX_PARAMS][128];
    int n_params;
    bool param_too_long;      /* a {param} was longer than params[] holds (answered 404) */
    principal who;            /* valid when route->roles != ROLES_PUBLIC */
    json_t *json;             /* the parsed body (routes with body) */
    char *body;
    size_t body_len;
    char idem_key[256];       /* Idempotency-Key, or "" */
    char idem_scope[256];
    char idem_hash[SHA256_HEX];
    int status;               /* what was answered */
    bool audited;             /* its audit record is written */
    bool audited_in_write;    /* ... by audit_in_write, in a write's transaction */
    bool close;               /* the connection closes after this answer */
    char err_code[48];        /* for the access log */
} req;

/* ---- responses (each writes a complete response with Content-Length) ---- */
void respond_json(req *r, int status, json_t *body); /* steals body */
void respond_text(req *r, int status, const char *content_type, const char *body, size_t len);
/* The same with extra header lines ("A: b\r\nC: d", no trailing CRLF). */
void respond_text_hdr(req *r, int status, const char *content_type, const char *body, size_t len,
                      const char *extra_headers);
void respond_error(req *r, err_t *e);                /* clears e */
void respond_error_hdr(req *r, err_t *e, const char *extra_header);
void respond_err(req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Answers a store reply (status + body; a replay is marked with the
 * Idempotent-Replayed header). Clears the reply. */
void respond_reply(req *r, store_reply *reply);

/* The connection closes after the answer (CivetWeb is told, and the
 * answer says Connection: close). */
void req_close(req *r);

/* The store_idem for this request, or NULL without an Idempotency-Key. */
const store_idem *req_idem(req *r, store_idem *buf);

/* ---- query parameters ---- */
/* Copies the decoded query parameter into out. Returns 1 if present, 0 if
 * absent, -1 (and answers 400) when malformed or too long. */
int query_get(req *r, const char *name, char *out, size_t outlen);
/* ?region=: a numeric region code. 1 given (in out), 0 absent, -1 answered
 * (400 invalid_query, or as query_get). */
int query_region(req *r, char *out, size_t outlen);
/* ?assigned_to=: a user, or "me" for the caller, into out. 1 given, 0
 * absent, -1 after answering 400. */
int query_assignee(req *r, char *out, size_t outlen);
/* limit (default 50, 1..500) and cursor; -1 after answering 400. */
int query_page(req *r, int *limit, char *after, size_t afterlen, bool *has_after);

/* ---- body fields: each returns 0, or -1 after filling e with a 400/422
 * naming the field ---- */
int field_string(json_t *obj, const char *name, bool required, size_t max, const char **out, err_t *e);
int field_enum(json_t *obj, const char *name, bool required, const char *const *allowed,
               const char **out, err_t *e);
int field_date(json_t *obj, const char *name, bool required, const char **out, err_t *e);
int field_string_array(json_t *obj, const char *name, size_t max_items, size_t max_len,
                       json_t **out, err_t *e);
/* Refuses members not in the allowed list (NULL-terminated). */
int fields_known(json_t *obj, const char *const *allowed, err_t *e);

/* A person body validated into in (h_people.c); digits and birth are what
 * an RRN gives; *warnings what the answer should warn of (a new array of
 * {field, code, message}, or NULL). household_fields: household_id and
 * relation are allowed. */
int person_from_json(json_t *obj, bool household_fields, person_in *in, char digits[14], char birth[11],
                     json_t **warnings, err_t *e);

/* ---- handlers, one file per resource ---- */
void h_healthz(req *r);
void h_readyz(req *r);
void h_metrics(req *r);
void h_openapi(req *r);
void h_orgs_create(req *r);
void h_tokens_create(req *r);
void h_tokens_list(req *r);
void h_tokens_revoke(req *r);
void h_households_create(req *r);
void h_households_get(req *r);
void h_persons_create(req *r);
void h_persons_get(req *r);
void h_persons_search(req *r);
void h_persons_eligibility(req *r);
void h_persons_merge(req *r);
void h_persons_unmerge(req *r);
void h_persons_merges(req *r);
void h_cases_create(req *r);
void h_cases_get(req *r);
void h_cases_list(req *r);
void h_cases_events(req *r);
void h_cases_transition(req *r);
void h_cases_assign(req *r);
void h_programs_list(req *r);
void h_counseling(req *r);
void h_assessments(req *r);
void h_consultations(req *r);
void h_lookup_approvals_create(req *r);
void h_lookup_approvals_list(req *r);
void h_referrals_contact(req *r);
void h_plans_create(req *r);
void h_plans_list(req *r);
void h_plans_approve(req *r);
void h_services(req *r);
void h_checks(req *r);
void h_closure(req *r);
void h_follow_ups(req *r);
void h_records_list(req *r);
void h_meetings_create(req *r);
void h_deadlines(req *r);
void h_one_screen(req *r);
void h_clock_get(req *r);
void h_clock_set(req *r);
void h_consents_create(req *r);
void h_consents_list(req *r);
void h_consents_revoke(req *r);
void h_referrals_create(req *r);
void h_referrals_list(req *r);
void h_referrals_get(req *r);
void h_referrals_accept(req *r);
void h_referrals_reject(req *r);
void h_referrals_review(req *r);
void h_referrals_agency_status(req *r);
void h_outbox_list(req *r);
void h_audit_list(req *r);
void h_cases_export(req *r);
void h_sharing_right_set(req *r);
void h_sharing_right_approve(req *r);
void h_sharing_right_get(req *r);
void h_outbox_retry(req *r);
void h_programs_get(req *r);
void h_plugins_list(req *r);
void h_plugins_reload(req *r);
void h_plugins_candidate(req *r);
void h_console_index(req *r);
void h_console_file(req *r);
void h_resources_create(req *r);
void h_resources_list(req *r);
void h_resources_get(req *r);
void h_resources_capacity(req *r);
void h_resources_reserve(req *r);
void h_resources_waitlist(req *r);
void h_allocations_release(req *r);
void h_waitlist_create(req *r);
void h_waitlist_list(req *r);
void h_waitlist_get(req *r);
void h_waitlist_accept(req *r);
void h_waitlist_decline(req *r);
void h_waitlist_end(req *r);
void h_plugins_replay(req *r);

/* The store write hook that records a write's audit in its own transaction
 * (respond.c); ctx is the request. */
int audit_in_write(store_tx *tx, const store_reply *reply, void *ctx, err_t *e);
/* The write audit_in_write recorded was rolled back: it is not written. */
void audit_in_write_undo(void *ctx);

/* Metrics text and the draining flag (server.c). */
char *metrics_render(void);
bool http_draining(void);

#endif
