/* h_people.c: persons and households. */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/rrn.h"
#include "http/internal.h"
#include "process/process.h"
#include "render/render.h"

static const char *const SEXES[] = {"M", "F", NULL};

typedef struct {
    const principal *p;
    const void *in;
    const char *id;
    const char *address;
    json_t *members;
    json_t *warnings; /* what the answer warns of (the number's check digit), or NULL */
} people_arg;

/* With an RRN, the answer says whether another organisation has registered
 * the same person — only that (ask for the person's consent to know more). */
static int known_elsewhere(store_tx *tx, const principal *p, const char *rrn, json_t *body, err_t *e)
{
    if (!rrn) return 0;
    bool known = false;
    store_err se = {0};
    if (store_rrn_known_elsewhere(tx, p, rrn, &known, &se)) return process_store_fail(&se, e);
    json_object_set_new(body, "known_elsewhere", json_boolean(known));
    return 0;
}

/* A person answered as the API shows it. */
static void answer_person(store_reply *reply, int status, person_row *person)
{
    reply->status = status;
    reply->body = render_person(person);
    person_row_free(person);
}

static int work_person_insert(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    people_arg *a = arg;
    const person_in *in = a->in;
    person_row person;
    store_err se = {0};
    /* One person, one record: a number the organisation registered already
     * names the record it has (the check and the insert are one unit). */
    char existing[ID_MAX];
    if (in->rrn && !store_person_by_rrn(tx, a->p->org, in->rrn, existing, &se)) {
        err_set(e, 409, "person_exists", "a person with this number is registered here already: %s", existing);
        err_detail(e, "person_id", json_string(existing));
        err_detail(e, "field", json_string("rrn"));
        return -1;
    }
    if (se.kind != STORE_OK && se.kind != STORE_NOT_FOUND) return process_store_fail(&se, e);
    if (store_person_insert(tx, a->p, in, &person, &se)) {
        process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_household", "no household '%s'",
                            in->household_id ? in->household_id : "");
        if (se.kind == STORE_NOT_FOUND) err_detail(e, "field", json_string("household_id"));
        return -1;
    }
    answer_person(reply, 201, &person);
    if (a->warnings) json_object_set_new(reply->body, "warnings", json_incref(a->warnings));
    return known_elsewhere(tx, a->p, in->rrn, reply->body, e);
}

static int work_person_get(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    people_arg *a = arg;
    person_row person;
    store_err se = {0};
    if (store_person_get(tx, a->p, a->id, &person, &se)) {
        char into[ID_MAX], merge_id[ID_MAX];
        store_err me = {0};
        if (se.kind != STORE_NOT_FOUND || store_person_merged_into(tx, a->p, a->id, into, merge_id, &me))
            return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no person '%s'", a->id);
        /* a record merged into another: where the person is now */
        err_set(e, 404, "person_merged", "person %s was merged into %s", a->id, into);
        err_detail(e, "merged_into", json_string(into));
        if (merge_id[0]) err_detail(e, "merge_id", json_string(merge_id));
        return -1;
    }
    answer_person(reply, 200, &person);
    return 0;
}

static int work_person_search(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    people_arg *a = arg;
    const person_query *q = a->in;
    person_list list;
    store_err se = {0};
    if (store_person_search(tx, a->p, q, &list, &se)) return process_store_fail(&se, e);
    reply->status = 200;
    reply->body = render_page(render_persons(&list), list.more, list.last);
    person_list_free(&list);
    return known_elsewhere(tx, a->p, q->rrn, reply->body, e);
}

/* A household as the API shows it. */
static void answer_household(store_reply *reply, int status, household_row *h, const principal *p)
{
    reply->status = status;
    reply->body = render_household(h, p->org);
    household_row_free(h);
}

static int work_household_insert(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    people_arg *a = arg;
    household_row h;
    size_t bad = 0;
    store_err se = {0};
    if (store_household_insert(tx, a->p, a->address, a->members, &h, &bad, &se)) {
        const char *pid = json_string_value(json_object_get(json_array_get(a->members, bad), "person_id"));
        process_store_error(&se, e, STORE_NOT_FOUND, 422, "unknown_person", "no person '%s'", pid ? pid : "");
        if (se.kind == STORE_NOT_FOUND) err_detail(e, "field", json_sprintf("members[%zu].person_id", bad));
        return -1;
    }
    answer_household(reply, 201, &h, a->p);
    return 0;
}

static int work_household_get(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    people_arg *a = arg;
    household_row h;
    store_err se = {0};
    if (store_household_get(tx, a->p, a->id, &h, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no household '%s'", a->id);
    answer_household(reply, 200, &h, a->p);
    return 0;
}

/* Eligibility facts: an object of at most 50 facts, each a boolean, a
 * number, a short text, or a list of short texts. What they mean is for the
 * program rules (elderly care reads ltc_grade, basic_pension ...). */
static int eligibility_valid(json_t *v, err_t *e)
{
    if (!v || json_is_null(v)) return 0;
    const char *k;
    json_t *x;
    if (!json_is_object(v) || json_object_size(v) > 50) goto bad;
    json_object_foreach(v, k, x) {
        if (strlen(k) > 64) goto bad;
        if (json_is_boolean(x) || json_is_number(x) || (json_is_string(x) && json_string_length(x) <= 200)) continue;
        if (json_is_array(x) && json_array_size(x) <= 50) {
            size_t i;
            json_t *it;
            json_array_foreach(x, i, it) if (!json_is_string(it) || json_string_length(it) > 200) goto bad;
            continue;
        }
        goto bad;
    }
    return 0;
bad:
    err_set(e, 400, "validation_failed",
            "eligibility: an object of at most 50 facts, each true/false, a number, a text or a list of texts");
    err_detail(e, "field", json_string("eligibility"));
    return -1;
}

static int work_eligibility(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    people_arg *a = arg;
    person_row person;
    store_err se = {0};
    if (store_person_set_eligibility(tx, a->p, a->id, a->members, &person, &se))
        return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no person '%s'", a->id);
    answer_person(reply, 200, &person);
    return 0;
}

void h_persons_eligibility(req *r)
{
    err_t e = {0};
    if (eligibility_valid(r->json, &e)) return respond_error(r, &e);
    store_reply reply = {0};
    people_arg a = {.p = &r->who, .id = r->params[0], .members = r->json};
    if (process_write(NULL, work_eligibility, &a, &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

static int invalid(err_t *e, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int invalid(err_t *e, const char *field, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err_set(e, 422, "validation_failed", "%s: %s", field, msg);
    err_detail(e, "field", json_string(field));
    return -1;
}

/* Who the seventh digit of a number says the person is, for messages:
 * "a man born in the 2000s", "a foreign resident, a woman born in the 1900s". */
static void rrn_says(const rrn_info *info, char out[80])
{
    snprintf(out, 80, "%s%s born in the %.2s00s", info->foreign ? "a foreign resident, " : "",
             info->male ? "a man" : "a woman", info->birth);
}

/* A warning in an answer: {field, code, message}. */
static void warn(json_t **warnings, const char *field, const char *code, const char *message)
{
    if (!*warnings) *warnings = json_array();
    json_array_append_new(*warnings, json_pack("{s:s, s:s, s:s}", "field", field, "code", code, "message", message));
}

/* Validates a person body (create, or inside an agency's referral) into
 * in; digits and birth hold what the RRN gives. A number is accepted when
 * it can be real (rrn.h); birth_date and sex, when given, must agree with
 * it. What the number only makes doubtful is added to *warnings (a new
 * array, or left NULL). 0, or -1 with e set. */
int person_from_json(json_t *obj, bool household_fields, person_in *in, char digits[14], char birth[11],
                     json_t **warnings, err_t *e)
{
    static const char *const known[] = {"name",    "birth_date",   "sex",      "rrn",  "phone",
                                        "address", "household_id", "relation", "tags", "eligibility", NULL};
    static const char *const known_plain[] = {"name", "birth_date", "sex", "rrn", "phone", "address", "tags",
                                              "eligibility", NULL};
    const char *rrn = NULL;
    memset(in, 0, sizeof *in);
    *warnings = NULL;
    if (!json_is_object(obj)) {
        err_set(e, 400, "validation_failed", "person: must be an object");
        err_detail(e, "field", json_string("person"));
        return -1;
    }
    if (fields_known(obj, household_fields ? known : known_plain, e) ||
        field_string(obj, "name", true, 200, &in->name, e) || field_string(obj, "rrn", false, 64, &rrn, e) ||
        field_date(obj, "birth_date", rrn == NULL, &in->birth_date, e) ||
        field_enum(obj, "sex", rrn == NULL, SEXES, &in->sex, e) || field_string(obj, "phone", false, 32, &in->phone, e) ||
        field_string(obj, "address", false, 300, &in->address, e) ||
        (household_fields && (field_string(obj, "household_id", false, 64, &in->household_id, e) ||
                              field_string(obj, "relation", false, 32, &in->relation, e))) ||
        field_string_array(obj, "tags", 32, 64, &in->tags, e) || eligibility_valid(json_object_get(obj, "eligibility"), e))
        return -1;
    /* null is "none", as the description allows */
    json_t *elig = json_object_get(obj, "eligibility");
    in->eligibility = json_is_object(elig) ? elig : NULL;
    char today[11];
    date_today_str(today);
    if (rrn) {
        rrn_info info;
        rrn_status st = rrn_read(rrn, today, &info);
        if (st != RRN_OK) {
            sodium_memzero(&info, sizeof info);
            return invalid(e, "rrn", "%s", rrn_status_text(st));
        }
        char says[80];
        rrn_says(&info, says);
        const char *sex = info.male ? "M" : "F";
        int rc = 0;
        if (in->birth_date && strcmp(in->birth_date, info.birth)) {
            rc = invalid(e, "birth_date", "%s disagrees with the number, which gives %s (%s)", in->birth_date,
                         info.birth, says);
            err_detail(e, "from_rrn", json_string(info.birth));
        } else if (in->sex && strcmp(in->sex, sex)) {
            rc = invalid(e, "sex", "%s disagrees with the number's seventh digit: %s", in->sex, says);
            err_detail(e, "from_rrn", json_string(sex));
        }
        if (!rc) {
            memcpy(digits, info.digits, 14);
            memcpy(birth, info.birth, 11);
            if (!in->birth_date) in->birth_date = birth;
            if (!in->sex) in->sex = sex;
            in->rrn = digits;
            const char *w = rrn_warning(&info);
            if (w) warn(warnings, "rrn", "rrn_check_digit", w);
        }
        sodium_memzero(&info, sizeof info);
        if (rc) return rc;
    }
    if (strcmp(in->birth_date, today) > 0) {
        json_decref(*warnings);
        *warnings = NULL;
        return invalid(e, "birth_date", "'%s' is in the future", in->birth_date);
    }
    return 0;
}

void h_persons_create(req *r)
{
    err_t e = {0};
    person_in in;
    char digits[14] = "", birth[11];
    json_t *warnings = NULL;
    if (person_from_json(r->json, true, &in, digits, birth, &warnings, &e)) {
        sodium_memzero(digits, sizeof digits);
        return respond_error(r, &e);
    }
    store_idem ib;
    store_reply reply = {0};
    people_arg a = {.p = &r->who, .in = &in, .warnings = warnings};
    int rc = process_write(req_idem(r, &ib), work_person_insert, &a, &reply, &e);
    sodium_memzero(digits, sizeof digits);
    json_decref(warnings);
    if (rc) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_persons_get(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    people_arg a = {.p = &r->who, .id = r->params[0]};
    if (process_read(work_person_get, &a, &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_persons_search(req *r)
{
    char name[256], birth[32], rrn[64], after[128], digits[14];
    person_query q = {0};
    bool has_after;
    int rc;
    if ((rc = query_get(r, "name", name, sizeof name)) < 0) return;
    if (rc) q.name = name;
    if ((rc = query_get(r, "birth_date", birth, sizeof birth)) < 0) return;
    if (rc) {
        int y, m, d;
        if (!date_parse(birth, &y, &m, &d)) {
            respond_err(r, 400, "invalid_query", "birth_date must be a date (YYYY-MM-DD)");
            return;
        }
        q.birth_date = birth;
    }
    char match[16];
    if ((rc = query_get(r, "match", match, sizeof match)) < 0) return;
    if (rc) {
        if (strcmp(match, "exact") && strcmp(match, "prefix")) {
            respond_err(r, 400, "invalid_query", "match must be exact or prefix");
            return;
        }
        q.exact = !strcmp(match, "exact");
        if (q.exact && !q.name) {
            respond_err(r, 400, "invalid_query", "match=exact compares the whole name: give name");
            return;
        }
    }
    if ((rc = query_get(r, "rrn", rrn, sizeof rrn)) < 0) return;
    if (rc) {
        char today[11];
        date_today_str(today);
        rrn_info info;
        rrn_status st = rrn_read(rrn, today, &info);
        if (st == RRN_OK) memcpy(digits, info.digits, sizeof digits);
        sodium_memzero(&info, sizeof info);
        if (st != RRN_OK) {
            sodium_memzero(rrn, sizeof rrn);
            respond_err(r, 400, "invalid_query", "rrn %s", rrn_status_text(st));
            return;
        }
        q.rrn = digits;
    }
    if (query_page(r, &q.limit, after, sizeof after, &has_after)) return;
    q.after = has_after ? after : NULL;
    err_t e = {0};
    store_reply reply = {0};
    people_arg a = {.p = &r->who, .in = &q};
    rc = process_read(work_person_search, &a, &reply, &e);
    sodium_memzero(digits, sizeof digits);
    sodium_memzero(rrn, sizeof rrn);
    if (rc) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_households_create(req *r)
{
    static const char *const known[] = {"address", "members", NULL};
    static const char *const member_known[] = {"person_id", "relation", NULL};
    err_t e = {0};
    people_arg a = {.p = &r->who};
    if (fields_known(r->json, known, &e) || field_string(r->json, "address", true, 300, &a.address, &e))
        return respond_error(r, &e);
    json_t *members = json_object_get(r->json, "members");
    if (members && !json_is_null(members)) {
        if (!json_is_array(members) || json_array_size(members) > 50) {
            respond_err(r, 400, "validation_failed", "members: an array of at most 50 {person_id, relation}");
            return;
        }
        size_t i;
        json_t *m;
        json_array_foreach(members, i, m) {
            const char *pid, *rel;
            if (!json_is_object(m) || fields_known(m, member_known, &e) ||
                field_string(m, "person_id", true, 64, &pid, &e) ||
                field_string(m, "relation", false, 32, &rel, &e)) {
                if (!e.status) err_set(&e, 400, "validation_failed", "members[%zu]: must be an object", i);
                err_detail(&e, "index", json_integer((json_int_t)i));
                return respond_error(r, &e);
            }
        }
        a.members = members;
    }
    store_idem ib;
    store_reply reply = {0};
    if (process_write(req_idem(r, &ib), work_household_insert, &a, &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_households_get(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    people_arg a = {.p = &r->who, .id = r->params[0]};
    if (process_read(work_household_get, &a, &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

/* ---- one person, one record ---- */
void h_persons_merge(req *r)
{
    static const char *const known[] = {"duplicate_id", "note", NULL};
    err_t e = {0};
    const char *dup, *note;
    if (fields_known(r->json, known, &e) || field_string(r->json, "duplicate_id", true, 64, &dup, &e) ||
        field_string(r->json, "note", false, 2000, &note, &e))
        return respond_error(r, &e);
    store_idem ib;
    store_reply reply = {0};
    if (process_person_merge(&r->who, r->params[0], dup, note, req_idem(r, &ib), &reply, &e))
        return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_persons_unmerge(req *r)
{
    static const char *const known[] = {"merge_id", NULL};
    err_t e = {0};
    const char *merge_id;
    if (fields_known(r->json, known, &e) || field_string(r->json, "merge_id", true, 64, &merge_id, &e))
        return respond_error(r, &e);
    store_idem ib;
    store_reply reply = {0};
    if (process_person_unmerge(&r->who, r->params[0], merge_id, req_idem(r, &ib), &reply, &e))
        return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_persons_merges(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    if (process_person_merges(&r->who, r->params[0], &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}
