/* h_casework.c: counseling, assessments, plans, services, checks, closure,
 * follow-ups, conferences, deadlines, one-screen, and the test clock. Each
 * handler checks the body's shape (types, sizes, dates) and hands the
 * record to process; what a record must contain beyond its shape is the
 * program's and region's rule. */
#include <stdio.h>
#include <string.h>

#include "http/internal.h"
#include "process/process.h"

/* The domains of initial counseling (seed 004 초기상담지): 안전, 건강,
 * 일상생활, 사회관계, 경제, 교육, 취업, 인권. */
static const char *const COUNSELING_DOMAINS[] = {"safety",    "health",     "daily_living", "social_relations",
                                                 "economy",   "education",  "employment",   "rights", NULL};

static int bad(err_t *e, const char *field, const char *msg)
{
    err_set(e, 400, "validation_failed", "%s: %s", field, msg);
    err_detail(e, "field", json_string(field));
    return -1;
}

static int opt_text(json_t *obj, const char *name, size_t max, err_t *e)
{
    const char *s;
    return field_string(obj, name, false, max, &s, e);
}

static int opt_bool(json_t *obj, const char *name, err_t *e)
{
    json_t *v = json_object_get(obj, name);
    if (v && !json_is_boolean(v) && !json_is_null(v)) return bad(e, name, "must be true or false");
    return 0;
}

static int opt_object(json_t *obj, const char *name, err_t *e)
{
    json_t *v = json_object_get(obj, name);
    if (v && !json_is_object(v) && !json_is_null(v)) return bad(e, name, "must be an object");
    return 0;
}

static void post_record(req *r, record_post *in)
{
    err_t e = {0};
    store_idem ib;
    store_reply reply = {0};
    in->data = r->json;
    if (process_record(&r->who, r->params[0], in, req_idem(r, &ib), &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_counseling(req *r)
{
    static const char *const known[] = {"case_type", "household", "housing", "family", "health", "domains",
                                        "main_problems", "current_services", "opinion", "counseled_on", "lead_org",
                                        NULL};
    static const char *const types[] = {"general", "specialist", "crisis", NULL};
    err_t e = {0};
    const char *s;
    json_t *arr;
    if (fields_known(r->json, known, &e) || field_enum(r->json, "case_type", false, types, &s, &e) ||
        opt_text(r->json, "household", 2000, &e) || opt_text(r->json, "housing", 2000, &e) ||
        opt_text(r->json, "family", 2000, &e) || opt_text(r->json, "health", 2000, &e) ||
        opt_text(r->json, "opinion", 4000, &e) || field_date(r->json, "counseled_on", false, &s, &e) ||
        field_string(r->json, "lead_org", false, 64, &s, &e) ||
        opt_object(r->json, "domains", &e) ||
        field_string_array(r->json, "main_problems", 2, 32, &arr, &e) ||
        field_string_array(r->json, "current_services", 50, 200, &arr, &e))
        return respond_error(r, &e);
    json_t *domains = json_object_get(r->json, "domains");
    const char *k;
    json_t *v;
    json_object_foreach(domains, k, v) {
        bool ok = false;
        for (const char *const *d = COUNSELING_DOMAINS; *d && !ok; d++) ok = !strcmp(*d, k);
        char field[80];
        snprintf(field, sizeof field, "domains.%.60s", k);
        if (!ok) {
            bad(&e, field, "not a counseling domain (safety, health, daily_living, social_relations, economy, "
                           "education, employment, rights)");
            return respond_error(r, &e);
        }
        if (!json_is_string(v) || json_string_length(v) > 4000) {
            bad(&e, field, "must be text of at most 4000 bytes");
            return respond_error(r, &e);
        }
    }
    size_t i;
    json_array_foreach(json_object_get(r->json, "main_problems"), i, v) {
        bool ok = false;
        for (const char *const *d = COUNSELING_DOMAINS; *d && !ok; d++) ok = !strcmp(*d, json_string_value(v));
        if (!ok) {
            bad(&e, "main_problems", "each is a counseling domain (the top two problems)");
            return respond_error(r, &e);
        }
    }
    record_post in = {.kind = "counseling"};
    post_record(r, &in);
}

/* A consultation about the case with another organisation (seed 004 II.1:
 * 기타 모호한 대상은 희망복지지원팀과의 사전 협의를 통해 결정): with whom,
 * what was said, and what it decided (a case type, a lead). */
void h_consultations(req *r)
{
    static const char *const known[] = {"held_on", "with_org", "participants", "content", "case_type", "lead_org",
                                        NULL};
    static const char *const types[] = {"general", "specialist", "crisis", NULL};
    err_t e = {0};
    const char *s;
    json_t *arr;
    if (fields_known(r->json, known, &e) || field_date(r->json, "held_on", true, &s, &e) ||
        field_string(r->json, "with_org", true, 64, &s, &e) ||
        field_string(r->json, "content", true, 4000, &s, &e) ||
        field_enum(r->json, "case_type", false, types, &s, &e) ||
        field_string(r->json, "lead_org", false, 64, &s, &e) ||
        field_string_array(r->json, "participants", 50, 200, &arr, &e))
        return respond_error(r, &e);
    record_post in = {.kind = "consultation"};
    post_record(r, &in);
}

void h_assessments(req *r)
{
    static const char *const known[] = {"kind", "domains", "expected_intervention_months", "opinion",
                                        "assessed_on", NULL};
    err_t e = {0};
    const char *kind, *s;
    if (fields_known(r->json, known, &e) || field_string(r->json, "kind", true, 32, &kind, &e) ||
        opt_text(r->json, "opinion", 4000, &e) || field_date(r->json, "assessed_on", false, &s, &e))
        return respond_error(r, &e);
    json_t *domains = json_object_get(r->json, "domains");
    if (!json_is_object(domains) || json_object_size(domains) == 0 || json_object_size(domains) > 50) {
        bad(&e, "domains", "an object of 1 to 50 domains: {domain: {score?, note?}}");
        return respond_error(r, &e);
    }
    const char *k;
    json_t *v;
    json_object_foreach(domains, k, v) {
        char field[96];
        snprintf(field, sizeof field, "domains.%.60s", k);
        json_t *sc = json_object_get(v, "score"), *note = json_object_get(v, "note");
        if (!json_is_object(v) || (sc && !json_is_integer(sc)) ||
            (note && (!json_is_string(note) || json_string_length(note) > 4000))) {
            bad(&e, field, "must be {score?: integer, note?: text}");
            return respond_error(r, &e);
        }
    }
    json_t *months = json_object_get(r->json, "expected_intervention_months");
    if (months && (!json_is_number(months) || json_number_value(months) < 0 || json_number_value(months) > 600)) {
        bad(&e, "expected_intervention_months", "a number of months from 0 to 600");
        return respond_error(r, &e);
    }
    record_post in = {.kind = "assessment", .subkind = kind};
    post_record(r, &in);
}

/* A period: start and end dates, end not before start. */
static int period(json_t *obj, const char *prefix, bool required, err_t *e)
{
    const char *start, *end;
    char f1[96], f2[96];
    if (field_date(obj, "start", required, &start, e) || field_date(obj, "end", required, &end, e)) {
        /* name the nested field */
        json_t *f = json_object_get(e->details, "field");
        char nested[160];
        snprintf(nested, sizeof nested, "%s.%s", prefix, f ? json_string_value(f) : "?");
        err_detail(e, "field", json_string(nested));
        return -1;
    }
    snprintf(f1, sizeof f1, "%s.end", prefix);
    (void)f2;
    if (start && end && strcmp(end, start) < 0) return bad(e, f1, "ends before it starts");
    return 0;
}

void h_plans_create(req *r)
{
    static const char *const known[] = {"goals", "note", "participation", "consent", NULL};
    static const char *const goal_known[] = {"term", "text", "start", "end", "services", NULL};
    static const char *const svc_known[] = {"type", "method", "content", "provider", "resource_id", "start", "end",
                                            "consented", NULL};
    static const char *const terms[] = {"short", "long", NULL};
    /* The person's part in the plan (seed 004 IV 대상자의 권리: 사례관리계획수립에
     * 참여할 권리, 서비스 동의): how they took part, and their consent. */
    static const char *const part_known[] = {"took_part", "how", "own_words", "opinion", NULL};
    static const char *const consent_known[] = {"given", "on", "by", "note", NULL};
    static const char *const consent_by[] = {"self", "guardian", "proxy", NULL};
    err_t e = {0};
    const char *s;
    if (fields_known(r->json, known, &e) || opt_text(r->json, "note", 4000, &e)) return respond_error(r, &e);
    json_t *part = json_object_get(r->json, "participation"), *cons = json_object_get(r->json, "consent");
    if (part && !json_is_null(part)) {
        if (!json_is_object(part) || fields_known(part, part_known, &e) || opt_bool(part, "took_part", &e) ||
            opt_text(part, "how", 2000, &e) || opt_text(part, "own_words", 2000, &e) ||
            opt_text(part, "opinion", 4000, &e) || !json_is_boolean(json_object_get(part, "took_part"))) {
            json_t *f = json_object_get(e.details, "field");
            char nested[96];
            snprintf(nested, sizeof nested, "participation%s%s", f ? "." : "", f ? json_string_value(f) : "");
            if (!e.status) bad(&e, "participation", "must be {took_part: bool, how?, own_words?, opinion?}");
            err_detail(&e, "field", json_string(nested));
            return respond_error(r, &e);
        }
    }
    if (cons && !json_is_null(cons)) {
        if (!json_is_object(cons) || fields_known(cons, consent_known, &e) || opt_bool(cons, "given", &e) ||
            field_date(cons, "on", false, &s, &e) || field_enum(cons, "by", false, consent_by, &s, &e) ||
            opt_text(cons, "note", 2000, &e) || !json_is_boolean(json_object_get(cons, "given"))) {
            json_t *f = json_object_get(e.details, "field");
            char nested[96];
            snprintf(nested, sizeof nested, "consent%s%s", f ? "." : "", f ? json_string_value(f) : "");
            if (!e.status) bad(&e, "consent", "must be {given: bool, on?: date, by?: self|guardian|proxy, note?}");
            err_detail(&e, "field", json_string(nested));
            return respond_error(r, &e);
        }
    }
    json_t *goals = json_object_get(r->json, "goals");
    if (!json_is_array(goals) || json_array_size(goals) == 0 || json_array_size(goals) > 20) {
        bad(&e, "goals", "a list of 1 to 20 goals {term, text, services}");
        return respond_error(r, &e);
    }
    size_t i, j;
    json_t *g, *svc;
    json_array_foreach(goals, i, g) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "goals[%zu]", i);
        if (!json_is_object(g)) {
            bad(&e, prefix, "must be an object");
            return respond_error(r, &e);
        }
        if (fields_known(g, goal_known, &e) || field_enum(g, "term", true, terms, &s, &e) ||
            field_string(g, "text", true, 1000, &s, &e) || period(g, prefix, false, &e)) {
            json_t *f = json_object_get(e.details, "field");
            if (f && !strchr(json_string_value(f), '[')) {
                char nested[160];
                snprintf(nested, sizeof nested, "%s.%s", prefix, json_string_value(f));
                err_detail(&e, "field", json_string(nested));
            }
            return respond_error(r, &e);
        }
        json_t *services = json_object_get(g, "services");
        if (services && (!json_is_array(services) || json_array_size(services) > 50)) {
            char f[96];
            snprintf(f, sizeof f, "%s.services", prefix);
            bad(&e, f, "a list of at most 50 services");
            return respond_error(r, &e);
        }
        json_array_foreach(services, j, svc) {
            char sp[96];
            snprintf(sp, sizeof sp, "%s.services[%zu]", prefix, j);
            if (!json_is_object(svc) || fields_known(svc, svc_known, &e) ||
                field_string(svc, "type", true, 64, &s, &e) || field_string(svc, "method", true, 64, &s, &e) ||
                field_string(svc, "content", true, 2000, &s, &e) ||
                field_string(svc, "provider", false, 200, &s, &e) ||
                field_string(svc, "resource_id", false, 64, &s, &e) || opt_bool(svc, "consented", &e) ||
                period(svc, sp, true, &e)) {
                if (!e.status) bad(&e, sp, "must be an object");
                json_t *f = json_object_get(e.details, "field");
                if (f && !strchr(json_string_value(f), '[')) {
                    char nested[200];
                    snprintf(nested, sizeof nested, "%s.%s", sp, json_string_value(f));
                    err_detail(&e, "field", json_string(nested));
                }
                return respond_error(r, &e);
            }
        }
    }
    record_post in = {.kind = "plan", .status = "draft"};
    post_record(r, &in);
}

void h_plans_list(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    if (process_records(&r->who, r->params[0], "plan", &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_plans_approve(req *r)
{
    err_t e = {0};
    store_idem ib;
    store_reply reply = {0};
    if (process_plan_approve(&r->who, r->params[0], r->params[1], req_idem(r, &ib), &reply, &e))
        return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_services(req *r)
{
    static const char *const known[] = {"plan_service_id", "date", "provider", "content", NULL};
    err_t e = {0};
    const char *s;
    if (fields_known(r->json, known, &e) || field_string(r->json, "plan_service_id", false, 64, &s, &e) ||
        field_date(r->json, "date", true, &s, &e) || field_string(r->json, "provider", true, 200, &s, &e) ||
        field_string(r->json, "content", true, 4000, &s, &e))
        return respond_error(r, &e);
    record_post in = {.kind = "service"};
    post_record(r, &in);
}

void h_checks(req *r)
{
    static const char *const known[] = {"date", "with", "content", "needs_reassessment", NULL};
    err_t e = {0};
    const char *s;
    if (fields_known(r->json, known, &e) || field_date(r->json, "date", true, &s, &e) ||
        field_string(r->json, "with", true, 200, &s, &e) || field_string(r->json, "content", true, 4000, &s, &e) ||
        opt_bool(r->json, "needs_reassessment", &e))
        return respond_error(r, &e);
    record_post in = {.kind = "check"};
    post_record(r, &in);
}

void h_closure(req *r)
{
    static const char *const known[] = {"reason", "evaluation", "notice_given_on", "note", NULL};
    err_t e = {0};
    const char *s, *note;
    if (fields_known(r->json, known, &e) || field_string(r->json, "reason", true, 64, &s, &e) ||
        field_string(r->json, "evaluation", true, 4000, &s, &e) ||
        field_date(r->json, "notice_given_on", false, &s, &e) || field_string(r->json, "note", false, 4000, &note, &e))
        return respond_error(r, &e);
    record_post in = {.kind = "closure", .move_to = "closure", .note = note};
    post_record(r, &in);
}

void h_follow_ups(req *r)
{
    static const char *const known[] = {"date", "content", "satisfaction", "new_needs", NULL};
    err_t e = {0};
    const char *s;
    if (fields_known(r->json, known, &e) || field_date(r->json, "date", true, &s, &e) ||
        field_string(r->json, "content", true, 4000, &s, &e) || opt_bool(r->json, "new_needs", &e))
        return respond_error(r, &e);
    json_t *sat = json_object_get(r->json, "satisfaction");
    if (sat && !json_is_null(sat) && (!json_is_integer(sat) || json_integer_value(sat) < 1 || json_integer_value(sat) > 5)) {
        bad(&e, "satisfaction", "an integer from 1 (very dissatisfied) to 5 (very satisfied)");
        return respond_error(r, &e);
    }
    record_post in = {.kind = "follow_up"};
    post_record(r, &in);
}

void h_records_list(req *r)
{
    char kind[32];
    int rc = query_get(r, "kind", kind, sizeof kind);
    if (rc < 0) return;
    err_t e = {0};
    store_reply reply = {0};
    if (process_records(&r->who, r->params[0], rc ? kind : NULL, &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_meetings_create(req *r)
{
    static const char *const known[] = {"type", "case_ids", "held_on", "participants", "written", "decisions", NULL};
    static const char *const types[] = {"internal", "integrated", "solution", "closure", NULL};
    static const char *const part_known[] = {"org", "role", "name", NULL};
    err_t e = {0};
    meeting_in m = {0};
    json_t *ids;
    const char *s;
    if (fields_known(r->json, known, &e) || field_enum(r->json, "type", true, types, &m.type, &e) ||
        field_date(r->json, "held_on", true, &m.held_on, &e) ||
        field_string_array(r->json, "case_ids", 50, 64, &ids, &e) || opt_bool(r->json, "written", &e))
        return respond_error(r, &e);
    if (!ids || json_array_size(ids) == 0) {
        bad(&e, "case_ids", "at least one case");
        return respond_error(r, &e);
    }
    json_t *parts = json_object_get(r->json, "participants");
    if (!json_is_array(parts) || json_array_size(parts) == 0 || json_array_size(parts) > 100) {
        bad(&e, "participants", "a list of 1 to 100 participants {org, role}");
        return respond_error(r, &e);
    }
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p) {
        if (!json_is_object(p) || fields_known(p, part_known, &e) || field_string(p, "org", true, 64, &s, &e) ||
            field_string(p, "role", true, 64, &s, &e) || field_string(p, "name", false, 100, &s, &e)) {
            char f[64];
            snprintf(f, sizeof f, "participants[%zu]", i);
            if (!e.status) err_set(&e, 400, "validation_failed", "%s: must be {org, role}", f);
            err_detail(&e, "field", json_string(f));
            return respond_error(r, &e);
        }
    }
    json_t *dec = json_object_get(r->json, "decisions");
    if (dec && !json_is_null(dec) && (!json_is_array(dec) || json_array_size(dec) > 100)) {
        bad(&e, "decisions", "a list of at most 100 decisions");
        return respond_error(r, &e);
    }
    m.case_ids = ids;
    m.participants = parts;
    m.decisions = json_is_array(dec) ? dec : NULL;
    m.written = json_is_true(json_object_get(r->json, "written"));
    store_idem ib;
    store_reply reply = {0};
    if (process_meeting(&r->who, &m, req_idem(r, &ib), &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_deadlines(req *r)
{
    char due[16], org[64], kind[64], after[160];
    deadline_query q = {0};
    bool has_after;
    int rc;
    if ((rc = query_get(r, "due_before", due, sizeof due)) < 0) return;
    if (rc) {
        int y, m, d;
        if (!date_parse(due, &y, &m, &d)) {
            respond_err(r, 400, "invalid_query", "due_before must be a date (YYYY-MM-DD)");
            return;
        }
        q.due_before = due;
    }
    if ((rc = query_get(r, "org", org, sizeof org)) < 0) return;
    if (rc) q.org = org;
    if ((rc = query_get(r, "kind", kind, sizeof kind)) < 0) return;
    if (rc) q.kind = kind;
    char assignee[128];
    if ((rc = query_assignee(r, assignee, sizeof assignee)) < 0) return;
    if (rc) q.assigned_to = assignee;
    if (query_page(r, &q.limit, after, sizeof after, &has_after)) return;
    q.after = has_after ? after : NULL;
    err_t e = {0};
    store_reply reply = {0};
    if (process_deadlines(&r->who, &q, &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

void h_one_screen(req *r)
{
    err_t e = {0};
    store_reply reply = {0};
    if (process_one_screen(&r->who, r->params[0], &reply, &e)) return respond_error(r, &e);
    respond_reply(r, &reply);
}

static json_t *clock_json(void)
{
    char today[11];
    date_today_str(today);
    return json_pack("{s:s, s:i}", "today", today, "offset_days", clock_offset_days());
}

void h_clock_get(req *r) { respond_json(r, 200, clock_json()); }

void h_clock_set(req *r)
{
    static const char *const known[] = {"today", "offset_days", NULL};
    err_t e = {0};
    if (!r->cfg->clock_adjustable) {
        respond_err(r, 403, "clock_not_adjustable",
                    "the business date moves only with clock.adjustable = on (test servers)");
        return;
    }
    const char *today;
    if (fields_known(r->json, known, &e) || field_date(r->json, "today", false, &today, &e))
        return respond_error(r, &e);
    json_t *off = json_object_get(r->json, "offset_days");
    if (today) {
        int y, m, d, ty, tm, td;
        date_parse(today, &y, &m, &d);
        clock_set_offset_days(0);
        date_today_kst(&ty, &tm, &td);
        clock_set_offset_days((int)(date_to_days(y, m, d) - date_to_days(ty, tm, td)));
    } else if (json_is_integer(off) && json_integer_value(off) > -36500 && json_integer_value(off) < 36500) {
        clock_set_offset_days((int)json_integer_value(off));
    } else {
        bad(&e, "today", "give today (YYYY-MM-DD) or offset_days (an integer)");
        return respond_error(r, &e);
    }
    log_msg(LOG_WARN, "clock moved", " offset_days=%d by=%s", clock_offset_days(), r->who.user);
    respond_json(r, 200, clock_json());
}
