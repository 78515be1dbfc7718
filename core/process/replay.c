/*
 * replay.c: shadow replay. Before a plugin set is published, every decision
 * recorded in the case history — each case opened, each move, each piece
 * of work recorded (a record, a plan approved, a conference) — is asked
 * again of the candidate set and of the serving one, on the facts it was
 * decided on: the case as it stood, what was asked (the move's data and
 * note, the record as posted), the day, and what the rules read then
 * (the case's events before it, its records, plans, conferences and open
 * deadlines as they were at that moment). Whatever the two sets decide
 * differently is reported: moves refused or newly allowed, deadlines that
 * move, appear or go, moves a stage offers or no longer offers, a record's
 * answer or its follow-on move — counted per program and region, with a
 * bounded list of examples and a digest of every difference.
 *
 * Nothing leaves the server but the report (case ids, stages, dates and
 * the rules' reasons; never a person), and nothing is written. The work
 * runs on a thread of its own, in VMs of its own (never a serving
 * thread's, never on the request threads' budget) under the same sandbox
 * limits, one replay at a time, within replay.timeout_ms.
 *
 * Two things are read as they are now, not as they were: the person (facts
 * recorded about a person are not versioned) and the person's other cases;
 * both sets see the same, so a difference is always the rules'.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "lua/host.h"
#include "process/internal.h"
#include "render/render.h"
#include "store/history.h"
#include "store/store.h"

#define REPLAY_PAGE 100
#define MAX_EXAMPLES 1000

static config g_cfg;
static pthread_mutex_t replay_mu = PTHREAD_MUTEX_INITIALIZER;

void replay_day_of(const char *t, char out[11])
{
    int y, m, d, hh = 0;
    char date[11];
    snprintf(date, sizeof date, "%.10s", t ? t : "");
    if (!date_parse(date, &y, &m, &d)) {
        date_today_str(out);
        return;
    }
    if (strlen(t) >= 13) hh = (t[11] - '0') * 10 + (t[12] - '0');
    int64_t days = date_to_days(y, m, d) + (hh + 9 >= 24 ? 1 : 0);
    date_from_days(days, &y, &m, &d);
    snprintf(out, 11, "%04d-%02d-%02d", y, m, d);
}

typedef struct {
    luagen *base, *cand;
    const char *region;
    int max_examples;
    int64_t deadline_ns;
    rules_replayer *rb, *rcand;
    char after[STORE_KEY_MAX];
    bool more, complete;
    long long cases, decisions, replayed, same_rules, differences, cases_differing, baseline_refused;
    json_t *same;       /* "program@region" -> whether both sets have the same rules for it */
    json_t *by_program; /* "program@region" -> counts */
    json_t *examples;
    bool examples_truncated;
    char digest[SHA256_HEX];
    int status; /* 0, or -1 with err */
    err_t err;
} replay_job;

/* ---- a case as it was at one decision ---- */
typedef struct {
    store_tx *tx;
    const case_row *c;
    event_row *ev;
    size_t n_ev, at_idx;
    const char *at;             /* when the decision was written */
    const char *exclude_record; /* the record being decided (not stored yet then) */
    record_list records;
    meeting_list meetings;
    deadline_hist_list deadlines;
    principal viewer;           /* the case's organisation, for its person and other cases */
    char today[11];
} case_ctx;

static json_t *view_history(void *ud)
{
    case_ctx *x = ud;
    event_list l = {.items = x->ev, .n = x->at_idx};
    return render_events(&l);
}

/* A plan's status at time at: draft until decided, approved until a later
 * plan was. */
static const char *status_at(const case_ctx *x, const record_row *r, const char *at)
{
    if (!r->status || strcmp(r->kind, "plan")) return r->status;
    if (!r->decided_at || strcmp(r->decided_at, at) > 0) return "draft";
    if (strcmp(r->status, "superseded")) return r->status;
    for (size_t i = 0; i < x->records.n; i++) {
        const record_row *o = &x->records.items[i];
        if (o != r && !strcmp(o->kind, "plan") && o->decided_at && strcmp(o->decided_at, r->decided_at) > 0 &&
            strcmp(o->decided_at, at) <= 0)
            return "superseded";
    }
    return "approved";
}

static json_t *record_at(const case_ctx *x, const record_row *r)
{
    record_row copy = *r;
    copy.status = status_at(x, r, x->at);
    if (copy.status && !strcmp(copy.status, "draft")) copy.decided_at = copy.decided_by = copy.decided_on = NULL;
    return render_record(&copy);
}

static json_t *view_query(void *ud, const char *name, json_t *params, char *why, size_t whylen)
{
    case_ctx *x = ud;
    store_err se = {0};
    if (!strcmp(name, "cases_of_person")) {
        const char *pid = json_string_value(json_object_get(params, "person_id"));
        if (!pid) {
            str_copy(why, whylen, "query cases_of_person needs {person_id = ...}");
            return NULL;
        }
        case_list cases;
        if (store_person_cases(x->tx, &x->viewer, pid, &cases, &se)) return json_array();
        json_t *j = render_case_briefs(&cases);
        case_list_free(&cases);
        return j;
    }
    const char *cid = json_string_value(json_object_get(params, "case_id"));
    const char *kind = json_string_value(json_object_get(params, "kind"));
    if (!cid) {
        snprintf(why, whylen, "query %s needs {case_id = ...}", name);
        return NULL;
    }
    if (strcmp(cid, x->c->id)) return json_array(); /* another case: not the decision's to read */
    json_t *out = json_array();
    if (!strcmp(name, "plans_of_case") || !strcmp(name, "records_of_case")) {
        const char *of = !strcmp(name, "plans_of_case") ? "plan" : kind;
        for (size_t i = 0; i < x->records.n; i++) {
            const record_row *r = &x->records.items[i];
            if (strcmp(r->created_at, x->at) > 0 || (of && strcmp(r->kind, of)) ||
                (x->exclude_record && !strcmp(r->id, x->exclude_record)))
                continue;
            json_array_append_new(out, record_at(x, r));
        }
    } else if (!strcmp(name, "meetings_of_case")) {
        for (size_t i = 0; i < x->meetings.n; i++)
            if (strcmp(x->meetings.items[i].created_at, x->at) <= 0)
                json_array_append_new(out, render_meeting(&x->meetings.items[i]));
    } else if (!strcmp(name, "deadlines_of_case")) {
        for (size_t i = 0; i < x->deadlines.n; i++) {
            const deadline_hist_row *h = &x->deadlines.items[i];
            if (strcmp(h->created_at, x->at) >= 0 || (h->cleared_at && strcmp(h->cleared_at, x->at) < 0)) continue;
            deadline_row d = {.kind = h->kind, .label = h->label, .due_on = h->due_on, .plugin = h->plugin,
                              .case_id = x->c->id};
            json_array_append_new(out, render_due(&d, x->today));
        }
    } else {
        json_decref(out);
        snprintf(why, whylen, "unknown query '%s'", name);
        return NULL;
    }
    return out;
}

static const rules_replay_views VIEWS = {.history = view_history, .query = view_query};

/* ---- comparing two verdicts ---- */
static const char *outcome_name(rules_outcome o)
{
    switch (o) {
    case RULES_OK: return "ok";
    case RULES_NOT_ALLOWED: return "not_allowed";
    case RULES_STAGE_UNUSED: return "stage_unused";
    case RULES_UNKNOWN_PROGRAM: return "unknown_program";
    case RULES_REFUSED: return "refused";
    case RULES_INVALID: return "invalid";
    case RULES_UNKNOWN_AGENCY: return "unknown_agency";
    case RULES_INBOUND_ONLY: return "inbound_only";
    case RULES_PLUGIN_FAILED: return "plugin_error";
    case RULES_PLUGIN_TIMEOUT: return "plugin_timeout";
    case RULES_PLUGIN_MEMORY: return "plugin_memory";
    case RULES_THROTTLED: return "throttled";
    case RULES_UNAVAILABLE: return "unavailable";
    case RULES_AGENCY_FAILED: return "agency_failed";
    }
    return "?";
}

static bool failed(const rules_verdict *v)
{
    return v->outcome == RULES_PLUGIN_FAILED || v->outcome == RULES_PLUGIN_TIMEOUT ||
           v->outcome == RULES_PLUGIN_MEMORY || v->outcome == RULES_UNAVAILABLE;
}

static json_t *brief(const rules_verdict *v)
{
    json_t *j = json_pack("{s:b, s:s}", "ok", v->outcome == RULES_OK, "kind", outcome_name(v->outcome));
    if (v->plugin[0]) json_object_set_new(j, "plugin", json_string(v->plugin));
    if (v->outcome != RULES_OK && v->reason[0]) json_object_set_new(j, "reason", json_string(v->reason));
    if (v->field[0]) json_object_set_new(j, "field", json_string(v->field));
    return j;
}

static const rules_deadline *set_of(const rules_verdict *v, const char *kind)
{
    for (int i = 0; i < v->effects.n_set; i++)
        if (!strcmp(v->effects.set[i].kind, kind)) return &v->effects.set[i];
    return NULL;
}

static bool clears(const rules_verdict *v, const char *kind)
{
    for (int i = 0; i < v->effects.n_clear; i++)
        if (!strcmp(v->effects.clear[i], kind)) return true;
    return false;
}

static void add(json_t *changes, const char *change, const char *kind, const char *from, const char *to)
{
    json_t *c = json_pack("{s:s}", "change", change);
    if (kind) json_object_set_new(c, "kind", json_string(kind));
    if (from) json_object_set_new(c, "from", json_string(from));
    if (to) json_object_set_new(c, "to", json_string(to));
    json_array_append_new(changes, c);
}

static json_t *minus(json_t *a, json_t *b)
{
    json_t *out = json_array();
    size_t i, j;
    json_t *x, *y;
    json_array_foreach(a, i, x) {
        bool found = false;
        json_array_foreach(b, j, y) found = found || json_equal(x, y);
        if (!found) json_array_append(out, x);
    }
    return out;
}

static const char *follow_on(const rules_verdict *v) { return v->end_case ? "end" : v->move[0] ? v->move : NULL; }

/* What the candidate decides differently from the baseline. */
static json_t *compare(const rules_verdict *b, const rules_verdict *c, json_t *ob, json_t *oc)
{
    json_t *ch = json_array();
    bool okb = b->outcome == RULES_OK, okc = c->outcome == RULES_OK;
    if (okb && !okc) {
        json_t *x = json_pack("{s:s, s:o}", "change", failed(c) ? "failed_now" : "refused_now", "candidate", brief(c));
        json_array_append_new(ch, x);
    } else if (!okb && okc) {
        json_array_append_new(ch, json_pack("{s:s, s:o}", "change", "allowed_now", "baseline", brief(b)));
    } else if (!okb && !okc) {
        if (b->outcome != c->outcome || strcmp(b->reason, c->reason) || strcmp(b->plugin, c->plugin))
            json_array_append_new(ch, json_pack("{s:s, s:o, s:o}", "change", failed(c) ? "failed_now" : "refusal_changed",
                                                "baseline", brief(b), "candidate", brief(c)));
    } else {
        for (int i = 0; i < b->effects.n_set; i++) {
            const rules_deadline *d = &b->effects.set[i], *n = set_of(c, d->kind);
            if (!n) add(ch, "deadline_dropped", d->kind, d->due_on, NULL);
            else if (strcmp(n->due_on, d->due_on)) add(ch, "deadline_moved", d->kind, d->due_on, n->due_on);
        }
        for (int i = 0; i < c->effects.n_set; i++)
            if (!set_of(b, c->effects.set[i].kind)) add(ch, "deadline_added", c->effects.set[i].kind, NULL, c->effects.set[i].due_on);
        for (int i = 0; i < b->effects.n_clear; i++)
            if (!clears(c, b->effects.clear[i])) add(ch, "clears_changed", b->effects.clear[i], "cleared", "kept");
        for (int i = 0; i < c->effects.n_clear; i++)
            if (!clears(b, c->effects.clear[i])) add(ch, "clears_changed", c->effects.clear[i], "kept", "cleared");
        const char *fb = follow_on(b), *fc = follow_on(c);
        if ((fb || fc) && (!fb || !fc || strcmp(fb, fc))) add(ch, "follow_on_changed", NULL, fb, fc);
        if (!((!b->result && !c->result) || (b->result && c->result && json_equal(b->result, c->result))))
            json_array_append_new(ch, json_pack("{s:s, s:O?, s:O?}", "change", "result_changed", "baseline", b->result,
                                                "candidate", c->result));
    }
    if (ob && oc) {
        json_t *added = minus(oc, ob), *removed = minus(ob, oc);
        if (json_array_size(added)) json_array_append_new(ch, json_pack("{s:s, s:O}", "change", "moves_added", "moves", added));
        if (json_array_size(removed))
            json_array_append_new(ch, json_pack("{s:s, s:O}", "change", "moves_removed", "moves", removed));
        json_decref(added);
        json_decref(removed);
    }
    return ch;
}

static const char *const COUNTERS[] = {"refused_now", "allowed_now", "refusal_changed", "failed_now",
                                       "deadline_moved", "deadline_added", "deadline_dropped", "clears_changed",
                                       "moves_added", "moves_removed", "follow_on_changed", "result_changed", NULL};
/* the report's names for them (plural where they count deadlines and moves) */
static const char *const COUNTED_AS[] = {"refused_now", "allowed_now", "refusal_changed", "failed_now",
                                         "deadlines_moved", "deadlines_added", "deadlines_dropped", "clears_changed",
                                         "moves_added", "moves_removed", "follow_on_changed", "result_changed", NULL};

static json_t *program_counts(replay_job *j, const case_row *c)
{
    char key[96];
    snprintf(key, sizeof key, "%s@%s", c->program, c->region);
    json_t *p = json_object_get(j->by_program, key);
    if (!p) {
        p = json_pack("{s:s, s:s, s:I, s:I, s:I}", "program", c->program, "region", c->region, "decisions", 0,
                      "same_rules", 0, "differences", 0);
        for (int i = 0; COUNTED_AS[i]; i++) json_object_set_new(p, COUNTED_AS[i], json_integer(0));
        json_object_set_new(j->by_program, key, p);
    }
    return p;
}

static void bump(json_t *o, const char *k) { json_object_set_new(o, k, json_integer(json_integer_value(json_object_get(o, k)) + 1)); }

/* ---- one case ---- */
static const json_t *find_record(const case_ctx *x, const char *id, const record_row **out)
{
    for (size_t i = 0; id && i < x->records.n; i++)
        if (!strcmp(x->records.items[i].id, id)) {
            *out = &x->records.items[i];
            return x->records.items[i].data;
        }
    *out = NULL;
    return NULL;
}

static int read_case(case_ctx *x, err_t *e)
{
    store_err se = {0};
    size_t cap = 0;
    char after[STORE_KEY_MAX] = "";
    for (;;) {
        event_list page;
        if (store_event_list(x->tx, x->c->id, 500, after[0] ? after : NULL, &page, &se))
            return process_store_fail(&se, e);
        if (x->n_ev + page.n > cap) {
            size_t ncap = (x->n_ev + page.n) * 2;
            event_row *grown = realloc(x->ev, ncap * sizeof *grown);
            if (!grown) {
                event_list_free(&page);
                return err_set(e, 500, "internal_error", "out of memory"), -1;
            }
            x->ev = grown;
            cap = ncap;
        }
        if (page.n) memcpy(x->ev + x->n_ev, page.items, page.n * sizeof *page.items);
        x->n_ev += page.n;
        free(page.items); /* the rows moved */
        snprintf(after, sizeof after, "%s", page.last);
        if (!page.more) break;
    }
    return 0;
}

static int read_work(case_ctx *x, err_t *e)
{
    store_err se = {0};
    if (store_record_list(x->tx, x->c->id, NULL, &x->records, &se) ||
        store_meetings_of_case(x->tx, x->c->id, &x->meetings, &se) ||
        store_case_deadline_history(x->tx, x->c->id, &x->deadlines, &se))
        return process_store_fail(&se, e);
    return 0;
}

static void free_case(case_ctx *x)
{
    for (size_t i = 0; i < x->n_ev; i++) event_row_free(&x->ev[i]);
    free(x->ev);
    record_list_free(&x->records);
    meeting_list_free(&x->meetings);
    deadline_hist_list_free(&x->deadlines);
}

static void digest_add(replay_job *j, const case_row *c, long long seq, json_t *changes)
{
    char *text = json_dumps(changes, JSON_COMPACT | JSON_SORT_KEYS);
    size_t len = strlen(j->digest) + strlen(c->id) + (text ? strlen(text) : 0) + 48;
    char *buf = malloc(len);
    if (buf) {
        int n = snprintf(buf, len, "%s\n%s:%lld:%s", j->digest, c->id, seq, text ? text : "");
        sha256_hex(buf, (size_t)n, j->digest);
    }
    free(buf);
    free(text);
}

static bool is_decision(const char *type)
{
    static const char *const kinds[] = {"opened", "transition", "reopened", "record", "plan_approved", "meeting", NULL};
    for (const char *const *k = kinds; *k; k++)
        if (!strcmp(type, *k)) return true;
    return false;
}

/* Whether both sets have the same rules for the cases of program in region
 * (the same files they come from): those decide the same, unasked. */
static bool same_rules(replay_job *j, const case_row *c)
{
    char key[96], a[65], b[65];
    snprintf(key, sizeof key, "%s@%s", c->program, c->region);
    json_t *v = json_object_get(j->same, key);
    if (v) return json_is_true(v);
    luagen_rules_digest(j->base, c->program, c->region, a);
    luagen_rules_digest(j->cand, c->program, c->region, b);
    json_object_set_new(j->same, key, json_boolean(!strcmp(a, b)));
    return !strcmp(a, b);
}

static int replay_case(replay_job *j, store_tx *tx, const case_row *c, err_t *e)
{
    case_ctx x = {.tx = tx, .c = c};
    str_copy(x.viewer.org, sizeof x.viewer.org, c->org);
    str_copy(x.viewer.region, sizeof x.viewer.region, c->region);
    str_copy(x.viewer.user, sizeof x.viewer.user, "replay");
    if (read_case(&x, e)) {
        free_case(&x);
        return -1;
    }
    if (same_rules(j, c)) {
        json_t *pc = program_counts(j, c);
        for (size_t i = 0; i < x.n_ev; i++)
            if (is_decision(x.ev[i].type)) {
                j->decisions++;
                j->same_rules++;
                bump(pc, "decisions");
                bump(pc, "same_rules");
            }
        j->cases++;
        free_case(&x);
        return 0;
    }
    if (read_work(&x, e)) {
        free_case(&x);
        return -1;
    }
    json_t *person = NULL;
    person_row pr;
    store_err se = {0};
    if (store_person_get(tx, &x.viewer, c->person_id, &pr, &se) == 0) {
        person = render_person(&pr);
        person_row_free(&pr);
    }
    case_row cur = *c;
    str_copy(cur.status, sizeof cur.status, "open");
    cur.version = 0;
    bool differed = false;
    int rc = 0;
    for (size_t i = 0; i < x.n_ev && rc == 0; i++) {
        event_row *ev = &x.ev[i];
        rules_step s = {.c = &cur, .person = person, .today = x.today};
        const record_row *rec = NULL;
        json_t *owned = NULL;
        const char *type = ev->type;
        if (ev->from_stage) str_copy(cur.stage, sizeof cur.stage, ev->from_stage);
        str_copy(cur.generation, sizeof cur.generation, ev->generation ? ev->generation : "");
        bool ask = true;
        x.exclude_record = NULL;
        if (!strcmp(type, "opened")) {
            s.kind = RULES_STEP_OPEN;
            str_copy(cur.status, sizeof cur.status, "open");
            cur.version = 1;
        } else if (!strcmp(type, "transition") || !strcmp(type, "reopened")) {
            s.kind = RULES_STEP_MOVE;
            s.to = ev->to_stage;
            s.reopen = !strcmp(type, "reopened");
            s.data = ev->data;
            s.note = ev->note;
        } else if (!strcmp(type, "record")) {
            s.kind = RULES_STEP_RECORD;
            s.record_kind = json_string_value(json_object_get(ev->data, "kind"));
            s.subkind = json_string_value(json_object_get(ev->data, "subkind"));
            x.exclude_record = json_string_value(json_object_get(ev->data, "record_id"));
            s.record = (json_t *)find_record(&x, x.exclude_record, &rec);
            ask = s.record_kind && rec;
        } else if (!strcmp(type, "plan_approved")) {
            s.kind = RULES_STEP_RECORD;
            s.record_kind = "plan_approval";
            find_record(&x, json_string_value(json_object_get(ev->data, "plan_id")), &rec);
            x.at = ev->at;
            if (rec) s.record = owned = record_at(&x, rec);
            ask = rec != NULL;
        } else if (!strcmp(type, "meeting")) {
            s.kind = RULES_STEP_RECORD;
            s.record_kind = "meeting";
            s.subkind = json_string_value(json_object_get(ev->data, "type"));
            const char *mid = json_string_value(json_object_get(ev->data, "meeting_id"));
            ask = false;
            for (size_t k = 0; mid && k < x.meetings.n; k++)
                if (!strcmp(x.meetings.items[k].id, mid)) {
                    s.record = owned = render_meeting(&x.meetings.items[k]);
                    ask = true;
                }
        } else {
            ask = false; /* ended, rules_migrated ...: no rule decided them */
        }
        if (ask) {
            x.at_idx = i;
            x.at = ev->at;
            replay_day_of(ev->at, x.today);
            principal actor = x.viewer;
            str_copy(actor.user, sizeof actor.user, ev->actor ? ev->actor : "");
            s.actor = &actor;
            rules_verdict vb, vc;
            json_t *ob = NULL, *oc = NULL;
            if (rules_replay(j->rb, &s, &VIEWS, &x, &vb, &ob, e) || rules_replay(j->rcand, &s, &VIEWS, &x, &vc, &oc, e)) {
                rc = -1;
            } else {
                j->decisions++;
                j->replayed++;
                json_t *pc = program_counts(j, c);
                bump(pc, "decisions");
                if (vb.outcome != RULES_OK) j->baseline_refused++;
                json_t *changes = compare(&vb, &vc, ob, oc);
                if (json_array_size(changes)) {
                    differed = true;
                    j->differences++;
                    bump(pc, "differences");
                    size_t k;
                    json_t *ch;
                    json_array_foreach(changes, k, ch) {
                        const char *name = json_string_value(json_object_get(ch, "change"));
                        for (int q = 0; COUNTERS[q]; q++)
                            if (!strcmp(name, COUNTERS[q])) bump(pc, COUNTED_AS[q]);
                    }
                    digest_add(j, c, ev->seq, changes);
                    if (!j->region || !strcmp(j->region, c->region)) {
                        if ((int)json_array_size(j->examples) < j->max_examples) {
                            json_t *ex = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:O}", "case_id", c->id, "seq",
                                                   (json_int_t)ev->seq, "at", ev->at, "type", type, "program",
                                                   c->program, "region", c->region, "stage", cur.stage, "changes",
                                                   changes);
                            if (s.kind == RULES_STEP_MOVE) json_object_set_new(ex, "to", json_string(s.to));
                            if (s.kind == RULES_STEP_RECORD) json_object_set_new(ex, "record", json_string(s.record_kind));
                            json_array_append_new(j->examples, ex);
                        } else {
                            j->examples_truncated = true;
                        }
                    }
                }
                json_decref(changes);
                rules_verdict_free(&vb);
                rules_verdict_free(&vc);
            }
            json_decref(ob);
            json_decref(oc);
        }
        json_decref(owned);
        /* the case as the recorded decision left it */
        if (!strcmp(type, "transition") || !strcmp(type, "reopened")) {
            if (ev->to_stage) str_copy(cur.stage, sizeof cur.stage, ev->to_stage);
            str_copy(cur.status, sizeof cur.status,
                     ev->to_stage && !strcmp(ev->to_stage, "follow_up") ? "follow_up" : "open");
        } else if (!strcmp(type, "ended")) {
            str_copy(cur.status, sizeof cur.status, "ended");
        } else if (!strcmp(type, "opened") && ev->to_stage) {
            str_copy(cur.stage, sizeof cur.stage, ev->to_stage);
        }
        if (strcmp(type, "opened") && strcmp(type, "rules_migrated")) cur.version++;
    }
    if (differed) j->cases_differing++;
    j->cases++;
    json_decref(person);
    free_case(&x);
    return rc;
}

static int work_page(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    (void)reply;
    replay_job *j = arg;
    case_list cases;
    store_err se = {0};
    if (store_cases_all(tx, REPLAY_PAGE, j->after[0] ? j->after : NULL, &cases, &se))
        return process_store_fail(&se, e);
    j->more = cases.more;
    for (size_t i = 0; i < cases.n; i++) {
        if (time_mono_ns() > j->deadline_ns) {
            j->complete = false;
            j->more = false;
            break;
        }
        if (replay_case(j, tx, &cases.items[i], e)) {
            case_list_free(&cases);
            return -1;
        }
        str_copy(j->after, sizeof j->after, cases.items[i].id);
    }
    case_list_free(&cases);
    return 0;
}

static void *replay_main(void *arg)
{
    replay_job *j = arg;
    j->rb = rules_replayer_new(j->base, &j->err);
    j->rcand = j->rb ? rules_replayer_new(j->cand, &j->err) : NULL;
    if (!j->rcand) {
        j->status = -1;
    } else {
        do {
            store_reply none = {0};
            if (process_read(work_page, j, &none, &j->err)) {
                j->status = -1;
                break;
            }
        } while (j->more);
    }
    rules_replayer_free(j->rb);
    rules_replayer_free(j->rcand);
    store_thread_done();
    return NULL;
}

int process_replay_sets(luagen *base, luagen *cand, const char *region, int max_examples, json_t **report, err_t *e)
{
    *report = NULL;
    if (pthread_mutex_trylock(&replay_mu)) {
        err_set(e, 409, "replay_running", "a replay is running; try again when it is done");
        return -1;
    }
    replay_job j = {.base = base, .cand = cand, .region = region, .complete = true,
                    .max_examples = max_examples < 0 ? 0 : max_examples > MAX_EXAMPLES ? MAX_EXAMPLES : max_examples,
                    .by_program = json_object(), .examples = json_array(), .same = json_object()};
    sha256_hex("", 0, j.digest);
    int64_t t0 = time_mono_ns();
    j.deadline_ns = t0 + (int64_t)g_cfg.replay_timeout_ms * 1000000;
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8u << 20);
    if (pthread_create(&th, &attr, replay_main, &j)) {
        j.status = -1;
        err_set(&j.err, 503, "overloaded", "cannot start the replay");
    } else {
        pthread_join(th, NULL);
    }
    pthread_attr_destroy(&attr);
    pthread_mutex_unlock(&replay_mu);
    json_decref(j.same);
    if (j.status) {
        *e = j.err;
        json_decref(j.by_program);
        json_decref(j.examples);
        return -1;
    }
    double secs = (double)(time_mono_ns() - t0) / 1e9;
    json_t *by = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(j.by_program, k, v) json_array_append(by, v);
    json_decref(j.by_program);
    *report = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:o, s:o, s:b, s:s, s:s?}",
                        "baseline", luagen_id(base), "candidate", luagen_id(cand), "complete", j.complete,
                        "cases", (json_int_t)j.cases, "decisions", (json_int_t)j.decisions, "replayed",
                        (json_int_t)j.replayed, "same_rules", (json_int_t)j.same_rules, "seconds", secs,
                        "rate_per_s", secs > 0 ? (double)j.replayed / secs : 0.0, "differences",
                        (json_int_t)j.differences, "cases_differing", (json_int_t)j.cases_differing,
                        "baseline_refused", (json_int_t)j.baseline_refused, "by_program", by, "examples", j.examples,
                        "examples_truncated", j.examples_truncated, "digest", j.digest, "examples_region", region);
    return 0;
}

int process_plugins_replay(const plugins_replay_in *in, store_reply *reply, err_t *e)
{
    luahost_source src = {.dir = in->dir, .changes = in->files, .tests = true};
    luagen *cand = NULL, *base = luahost_serving();
    json_t *errors = NULL, *report = NULL;
    int rc = -1;
    if (!base) {
        err_set(e, 503, "not_ready", "no plugin generation is loaded");
        return -1;
    }
    int c = luahost_candidate(&src, &cand, &errors, e);
    if (c > 0) {
        err_set(e, 422, "plugin_invalid", "the candidate plugin set is invalid (%zu errors)", json_array_size(errors));
        err_detail(e, "errors", json_incref(errors));
    } else if (c == 0 && process_replay_sets(base, cand, in->region, in->max_examples, &report, e) == 0) {
        reply->status = 200;
        reply->body = report;
        rc = 0;
    }
    json_decref(errors);
    if (cand) luagen_unref(cand);
    luagen_unref(base);
    return rc;
}

void replay_init(const config *cfg) { g_cfg = *cfg; }
