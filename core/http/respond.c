/*
 * respond.c: writing responses (always with Content-Length and
 * X-Request-Id), reading query parameters, and validating body fields with
 * errors that name the field.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "http/internal.h"
#include "http/messages.h"
#include "process/process.h"
#include "render/render.h"

/* Whether the connection stays open after this answer, as CivetWeb will
 * decide it: HTTP/1.1 unless the client or the server said close; HTTP/1.0
 * only when the client asked for keep-alive. */
static bool keeps_alive(req *r)
{
    if (r->close) return false;
    const char *c = mg_get_header(r->conn, "Connection");
    bool v11 = r->ri->http_version && !strcmp(r->ri->http_version, "1.1");
    if (c) return !strcasecmp(c, "keep-alive") || (v11 && strcasecmp(c, "close"));
    return v11;
}

/* The whole response in one write: status line, headers and body leave in
 * one send() (a response written header by header costs a system call
 * each, the largest part of a small answer's time). */
static void write_response(req *r, int status, const char *ctype, const char *body, size_t len,
                           const char *extra_header)
{
    char head[2048];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nX-Request-Id: %s\r\n"
                     "Cache-Control: no-store\r\nConnection: %s\r\n%s%s\r\n",
                     status, mg_get_response_code_text(r->conn, status), ctype, len, r->id,
                     keeps_alive(r) ? "keep-alive" : "close", extra_header ? extra_header : "",
                     extra_header ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof head) n = 0; /* cannot happen: headers are ours and short */
    char stackbuf[8192];
    char *buf = (size_t)n + len <= sizeof stackbuf ? stackbuf : malloc((size_t)n + len);
    if (buf) {
        memcpy(buf, head, (size_t)n);
        if (len) memcpy(buf + n, body, len);
        mg_write(r->conn, buf, (size_t)n + len);
        if (buf != stackbuf) free(buf);
    } else { /* out of memory for a large body: two writes */
        mg_write(r->conn, head, (size_t)n);
        if (len) mg_write(r->conn, body, len);
    }
    r->status = status;
}

void respond_text(req *r, int status, const char *content_type, const char *body, size_t len)
{
    write_response(r, status, content_type, body, len, NULL);
}

void respond_text_hdr(req *r, int status, const char *content_type, const char *body, size_t len,
                      const char *extra_headers)
{
    write_response(r, status, content_type, body, len, extra_headers);
}

static const char *id_with(json_t *o, const char *key, const char *prefix)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v && !strncmp(v, prefix, strlen(prefix)) ? v : NULL;
}

/* The persons an answer discloses: every "person_id" in it and every "id"
 * of a person (per_...), at any depth — lists, households, one-screen
 * views, referrals' snapshots — and those the process noted without
 * naming them (reply->disclosed). At most AUDIT_MAX_PERSONS, each once. */
#define AUDIT_MAX_PERSONS 2000
typedef struct {
    const char **ids; /* inline, or on the heap once a list outgrows it */
    size_t n, cap;    /* cap 0: not collecting */
    const char *inline_ids[16];
} person_set;

static void person_add(person_set *s, const char *id)
{
    if (!id || !*id || !s->cap || s->n == AUDIT_MAX_PERSONS) return;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->ids[i], id)) return;
    if (s->n == s->cap) { /* most answers name a person or two: no allocation for them */
        size_t cap = s->cap * 2 > AUDIT_MAX_PERSONS ? AUDIT_MAX_PERSONS : s->cap * 2;
        const char **ids = s->ids == s->inline_ids ? malloc(cap * sizeof *ids) : realloc(s->ids, cap * sizeof *ids);
        if (!ids) return;
        if (s->ids == s->inline_ids) memcpy(ids, s->inline_ids, s->n * sizeof *ids);
        s->ids = ids;
        s->cap = cap;
    }
    s->ids[s->n++] = id;
}

static void persons_in(json_t *v, person_set *s, int depth)
{
    if (depth > 12) return;
    const char *k;
    json_t *x;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, k, x) {
            if (json_is_string(x)) {
                const char *t = json_string_value(x);
                if (!strcmp(k, "person_id") || (!strcmp(k, "id") && !strncmp(t, "per_", 4))) person_add(s, t);
            } else {
                persons_in(x, s, depth + 1);
            }
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x) {
            if (json_is_string(x)) continue;
            persons_in(x, s, depth + 1);
        }
    }
}

/* An audit record being made: the entry and what it points into. */
typedef struct {
    audit_entry a;
    char action[160];
    person_set persons;
} audit_rec;

static void audit_rec_free(audit_rec *ar)
{
    if (ar->persons.ids != ar->persons.inline_ids) free(ar->persons.ids);
}

/* A denial on personal data: refused by role (403), a person, case or
 * other record the principal may not see or that does not exist (404),
 * or one named in the body that it may not use (422 unknown_person ...). */
static bool denied(req *r, int status)
{
    if (status == 403 || status == 404) return true;
    return status == 422 && (!strcmp(r->err_code, "unknown_person") || !strcmp(r->err_code, "unknown_case") ||
                             !strcmp(r->err_code, "unknown_household"));
}

/* The audit record of a personal-data answer: who, what, about which
 * persons and case, why — from the path, the answer itself and what the
 * process noted — or of a denied attempt on personal data: who, and the
 * person or case (or other record, as purpose) it was after. False when
 * the answer is not one to record. */
static bool audit_entry_for(req *r, int status, json_t *body, json_t *disclosed, audit_rec *ar)
{
    const char *pat = r->route ? r->route->pattern : "";
    static const char *const personal[] = {"/v1/persons",  "/v1/households", "/v1/cases",        "/v1/referrals",
                                           "/v1/meetings", "/v1/deadlines",  "/v1/exports",      "/v1/admin/outbox",
                                           "/v1/resources", "/v1/waitlist",
                                           NULL};
    bool touches = false;
    for (const char *const *p = personal; *p && !touches; p++) touches = !strncmp(pat, *p, strlen(*p));
    bool ok = status >= 200 && status < 300;
    if (!touches || !r->who.user[0] || (!ok && !denied(r, status))) return false;
    memset(ar, 0, sizeof *ar);
    audit_entry *a = &ar->a;
    *a = (audit_entry){.actor = r->who.user, .org = r->who.org, .role = r->who.role, .request_id = r->id,
                       .status = status};
    snprintf(ar->action, sizeof ar->action, "%s %s", r->route->method, pat);
    a->action = ar->action;
    if (!strncmp(pat, "/v1/persons/{id}", 16)) a->person_id = r->params[0];
    if (!strncmp(pat, "/v1/cases/{id}", 14)) a->case_id = r->params[0];
    if (!ok) { /* the target of the attempt, from the path or the body */
        if (!a->person_id && !a->case_id && r->n_params) a->purpose = r->params[0];
        if (!a->person_id) a->person_id = id_with(r->json, "person_id", "");
        if (!a->case_id) a->case_id = id_with(r->json, "case_id", "");
        if (!a->case_id) a->case_id = id_with(r->json, "from_case_id", "");
        return true;
    }
    json_t *person = json_object_get(body, "person"), *kase = json_object_get(body, "case");
    if (!a->person_id) a->person_id = json_string_value(json_object_get(body, "person_id"));
    if (!a->person_id) a->person_id = id_with(body, "id", "per_");
    if (!a->person_id) a->person_id = id_with(person, "id", "per_");
    if (!a->person_id) a->person_id = json_string_value(json_object_get(kase, "person_id"));
    if (!a->case_id) a->case_id = id_with(body, "id", "cas_");
    if (!a->case_id) a->case_id = json_string_value(json_object_get(body, "case_id"));
    if (!a->case_id) a->case_id = id_with(kase, "id", "cas_");
    a->purpose = json_string_value(json_object_get(body, "consent_id"));
    if (!a->purpose) a->purpose = json_string_value(json_object_get(json_object_get(body, "merge"), "id"));
    if (!a->purpose) a->purpose = a->case_id;
    /* Every person disclosed, the record's own person first. */
    ar->persons.ids = ar->persons.inline_ids;
    ar->persons.cap = sizeof ar->persons.inline_ids / sizeof *ar->persons.inline_ids;
    person_add(&ar->persons, a->person_id);
    persons_in(body, &ar->persons, 0);
    size_t i;
    json_t *x;
    json_array_foreach(disclosed, i, x) person_add(&ar->persons, json_string_value(x));
    if (!a->person_id && ar->persons.n) a->person_id = ar->persons.ids[0];
    a->persons = ar->persons.ids;
    a->n_persons = ar->persons.n;
    return true;
}

int audit_in_write(store_tx *tx, const store_reply *reply, void *ctx, err_t *e)
{
    req *r = ctx;
    audit_rec ar;
    if (r->audited || reply->replayed || !audit_entry_for(r, reply->status, reply->body, reply->disclosed, &ar))
        return 0;
    store_err se = {0};
    int rc = store_audit_append(tx, &ar.a, &se);
    /* A merge (or its undoing) touches two records: the other one is
     * recorded too, under the same merge id. */
    const char *other = json_string_value(json_object_get(json_object_get(reply->body, "merge"), "merged_id"));
    if (!rc && other && ar.a.person_id && strcmp(other, ar.a.person_id)) {
        ar.a.person_id = other;
        rc = store_audit_append(tx, &ar.a, &se);
    }
    audit_rec_free(&ar);
    if (rc) return process_store_fail(&se, e);
    r->audited = true;
    r->audited_in_write = true;
    return 1;
}

void audit_in_write_undo(void *ctx)
{
    req *r = ctx;
    if (!r->audited_in_write) return;
    r->audited_in_write = false;
    r->audited = false;
}

/* Reads (and replays) are recorded in a transaction of their own, before
 * the answer leaves; writes already were, inside their own transaction.
 * So are denied attempts. */
static int audit(req *r, int status, json_t *body, json_t *disclosed)
{
    audit_rec ar;
    if (r->audited || !audit_entry_for(r, status, body, disclosed, &ar)) return 0;
    err_t e = {0};
    int rc = process_audit(&ar.a, &e);
    audit_rec_free(&ar);
    if (rc) {
        log_msg(LOG_ERROR, "audit: cannot record", " error=\"%s\"", e.message);
        err_clear(&e);
        return -1;
    }
    r->audited = true;
    return 0;
}

/* The client prefers Korean: the console always says so, an API client
 * with Accept-Language. */
static bool wants_korean(req *r)
{
    return messages_prefers_ko(mg_get_header(r->conn, "Accept-Language"));
}

static void respond_json_full(req *r, int status, json_t *body, const char *extra, json_t *disclosed)
{
    /* No personal data leaves without its audit record (a denial, which
     * discloses nothing, is answered even when its record cannot be). */
    if (audit(r, status, body, disclosed) && status < 300) {
        json_decref(body);
        status = 503;
        err_t e = {0};
        err_set(&e, 503, "audit_unavailable", "the audit trail cannot be written; nothing was disclosed");
        str_copy(r->err_code, sizeof r->err_code, "audit_unavailable");
        bool ko = wants_korean(r) && messages_translate_ko(&e);
        body = err_json(&e);
        err_clear(&e);
        extra = ko ? "Vary: Accept-Language\r\nRetry-After: 1\r\nContent-Language: ko"
                   : "Vary: Accept-Language\r\nRetry-After: 1";
    }
    /* Most answers fit on the stack: no growing buffer and copy of it. */
    char small[6144], *text = small;
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    size_t len = json_dumpb(body, small, sizeof small, flags);
    if (len > sizeof small && (text = malloc(len)) && json_dumpb(body, text, len, flags) != len) {
        free(text);
        text = NULL;
    }
    json_decref(body);
    if (!text || !len) {
        if (text != small) free(text);
        static const char oom[] =
            "{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\",\"details\":{}}}";
        write_response(r, 500, "application/json; charset=utf-8", oom, sizeof oom - 1, NULL);
        return;
    }
    write_response(r, status, "application/json; charset=utf-8", text, len, extra);
    if (text != small) free(text);
}

static void respond_json_hdr(req *r, int status, json_t *body, const char *extra)
{
    respond_json_full(r, status, body, extra, NULL);
}

void respond_json(req *r, int status, json_t *body) { respond_json_hdr(r, status, body, NULL); }

void respond_error_hdr(req *r, err_t *e, const char *extra_header)
{
    int status = e->status ? e->status : 500;
    str_copy(r->err_code, sizeof r->err_code, e->code[0] ? e->code : "internal_error");
    if (status >= 500) { /* the request's id is on the line already (log_set_request) */
        char detail[600];
        log_value(e->message, detail, sizeof detail);
        log_msg(LOG_ERROR, "request failed", " code=%s detail=\"%s\"", e->code, detail);
    }
    /* An error that says when to come back says it in the header too; every
     * 503 does (a second when nothing better is known). */
    char hdrs[400];
    int n = snprintf(hdrs, sizeof hdrs, "%s%sVary: Accept-Language", extra_header ? extra_header : "",
                     extra_header ? "\r\n" : "");
    json_t *ra = json_object_get(e->details, "retry_after");
    if (json_is_integer(ra) || status == 503 || status == 429)
        n += snprintf(hdrs + n, sizeof hdrs - (size_t)n, "\r\nRetry-After: %lld",
                      json_is_integer(ra) && json_integer_value(ra) > 0 ? (long long)json_integer_value(ra) : 1LL);
    if (wants_korean(r) && messages_translate_ko(e))
        snprintf(hdrs + n, sizeof hdrs - (size_t)n, "\r\nContent-Language: ko");
    respond_json_hdr(r, status, err_json(e), hdrs);
    err_clear(e);
}

void respond_error(req *r, err_t *e) { respond_error_hdr(r, e, NULL); }

void respond_err(req *r, int status, const char *code, const char *fmt, ...)
{
    err_t e = {0};
    e.status = status;
    str_copy(e.code, sizeof e.code, code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    respond_error(r, &e);
}

/* A 201 names what it created when the API can read it back: the request
 * path and the new id, if that is a GET route (persons, households, cases,
 * referrals). */
static void location_of(req *r, json_t *body, char *out, size_t outlen)
{
    out[0] = 0;
    const char *id = json_string_value(json_object_get(body, "id"));
    if (!id || !*id || strlen(id) > 100 || strchr(id, '/') || !r->route) return;
    for (const char *c = id; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == '?' || *c == '#' || *c == '%' || (unsigned char)*c >= 0x7f) return;
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", r->path, id);
    if (http_route_find("GET", path) >= 0) snprintf(out, outlen, "Location: %s", path);
}

void respond_reply(req *r, store_reply *reply)
{
    json_t *body = reply->body ? reply->body : json_object();
    reply->body = NULL;
    int status = reply->status ? reply->status : 200;
    char hdrs[1300] = "", loc[1250] = "";
    if (status == 201) location_of(r, body, loc, sizeof loc);
    snprintf(hdrs, sizeof hdrs, "%s%s%s", reply->replayed ? "Idempotent-Replayed: true" : "",
             reply->replayed && loc[0] ? "\r\n" : "", loc);
    respond_json_full(r, status, body, hdrs[0] ? hdrs : NULL, reply->disclosed);
    store_reply_clear(reply);
}

/* ---- query parameters ---- */
int query_get(req *r, const char *name, char *out, size_t outlen)
{
    const char *qs = r->ri->query_string;
    if (!qs) return 0;
    int n = mg_get_var(qs, strlen(qs), name, out, outlen);
    if (n == -1) return 0;
    if (n < 0) {
        respond_err(r, 400, "invalid_query", "query parameter '%s' is too long", name);
        return -1;
    }
    if (!utf8_valid(out, (size_t)n)) {
        respond_err(r, 400, "invalid_query", "query parameter '%s' is not valid UTF-8", name);
        return -1;
    }
    return n ? 1 : 0;
}

int query_region(req *r, char *out, size_t outlen)
{
    int rc = query_get(r, "region", out, outlen);
    if (rc <= 0) return rc;
    for (const char *s = out; *s; s++)
        if (*s < '0' || *s > '9') {
            respond_err(r, 400, "invalid_query", "region must be a numeric region code such as 11590");
            return -1;
        }
    return 1;
}

int query_assignee(req *r, char *out, size_t outlen)
{
    int rc = query_get(r, "assigned_to", out, outlen);
    if (rc <= 0) return rc; /* an empty one is no filter, as for every parameter */
    if (!strcmp(out, "me")) str_copy(out, outlen, r->who.user);
    return 1;
}

int query_page(req *r, int *limit, char *after, size_t afterlen, bool *has_after)
{
    char buf[256];
    *limit = 50;
    *has_after = false;
    int rc = query_get(r, "limit", buf, sizeof buf);
    if (rc < 0) return -1;
    if (rc) {
        char *end;
        long v = strtol(buf, &end, 10);
        if (*end || buf[0] < '0' || buf[0] > '9' || v < 1 || v > 500) {
            respond_err(r, 400, "invalid_query", "limit must be an integer from 1 to 500, not '%s'", buf);
            return -1;
        }
        *limit = (int)v;
    }
    rc = query_get(r, "cursor", buf, sizeof buf);
    if (rc < 0) return -1;
    if (rc) {
        if (cursor_decode(buf, after, afterlen)) {
            respond_err(r, 400, "invalid_cursor", "cursor is not one this server gave out");
            return -1;
        }
        *has_after = true;
    }
    return 0;
}

/* ---- body fields ---- */
static int bad_field(err_t *e, int status, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad_field(err_t *e, int status, const char *name, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err_set(e, status, "validation_failed", "%s: %s", name, msg);
    err_detail(e, "field", json_string(name));
    return -1;
}

int field_string(json_t *obj, const char *name, bool required, size_t max, const char **out, err_t *e)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required) return bad_field(e, 400, name, "%s", "is required");
        return 0;
    }
    if (!json_is_string(v)) return bad_field(e, 400, name, "%s", "must be a string");
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strlen(s) != len) return bad_field(e, 400, name, "%s", "must not contain NUL characters");
    if (required && len == 0) return bad_field(e, 400, name, "%s", "must not be empty");
    if (len > max) {
        return bad_field(e, 400, name, "must be at most %zu bytes", max);
    }
    *out = s;
    return 0;
}

int field_enum(json_t *obj, const char *name, bool required, const char *const *allowed,
               const char **out, err_t *e)
{
    if (field_string(obj, name, required, 64, out, e)) return -1;
    if (!*out) return 0;
    for (const char *const *a = allowed; *a; a++)
        if (!strcmp(*a, *out)) return 0;
    json_t *list = json_array();
    for (const char *const *a = allowed; *a; a++) json_array_append_new(list, json_string(*a));
    char *joined = json_dumps(list, JSON_COMPACT);
    bad_field(e, 400, name, "must be one of %s", joined ? joined : "the allowed values");
    err_detail(e, "allowed", list);
    free(joined);
    return -1;
}

int field_date(json_t *obj, const char *name, bool required, const char **out, err_t *e)
{
    if (field_string(obj, name, required, 10, out, e)) return -1;
    int y, m, d;
    if (*out && !date_parse(*out, &y, &m, &d))
        return bad_field(e, 400, name, "'%s' is not a date (YYYY-MM-DD)", *out);
    return 0;
}

int field_string_array(json_t *obj, const char *name, size_t max_items, size_t max_len,
                       json_t **out, err_t *e)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v)) return bad_field(e, 400, name, "%s", "must be an array of strings");
    if (json_array_size(v) > max_items) return bad_field(e, 400, name, "%s", "has too many items");
    size_t i;
    json_t *it;
    json_array_foreach(v, i, it) {
        if (!json_is_string(it) || json_string_length(it) == 0 || json_string_length(it) > max_len ||
            strlen(json_string_value(it)) != json_string_length(it))
            return bad_field(e, 400, name, "%s", "must be an array of non-empty strings");
    }
    *out = v;
    return 0;
}

int fields_known(json_t *obj, const char *const *allowed, err_t *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++) ok = !strcmp(*a, key);
        if (!ok) {
            err_set(e, 400, "validation_failed", "unknown field '%s'", key);
            err_detail(e, "field", json_string(key));
            return -1;
        }
    }
    return 0;
}
