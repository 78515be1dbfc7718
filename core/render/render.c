/*
 * render.c: the store's rows as the API shows them (render/render.h).
 * Absent values are null, never missing keys; JSON the row holds (a
 * record's data, a person's tags) is shared, not copied.
 */
#include "render/render.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"

/* Text, or null when absent. */
static json_t *str(const char *s) { return s ? json_string(s) : json_null(); }
/* A fixed-size field of a case row: empty means absent. */
static json_t *opt(const char *s) { return s && *s ? json_string(s) : json_null(); }
/* JSON the row holds, or the given default when it has none. */
static json_t *held(json_t *j, json_t *otherwise)
{
    if (j) {
        json_decref(otherwise);
        return json_incref(j);
    }
    return otherwise;
}

static void set(json_t *o, const char *key, json_t *v) { json_object_set_new(o, key, v ? v : json_null()); }

json_t *render_org(const org_row *o)
{
    json_t *j = json_object(), *programs = json_array();
    set(j, "id", str(o->id));
    set(j, "name", str(o->name));
    set(j, "type", str(o->type));
    set(j, "region", str(o->region));
    set(j, "created_at", str(o->created_at));
    set(j, "area", str(o->area));
    for (size_t i = 0; i < o->n_programs; i++) json_array_append_new(programs, json_string(o->programs[i]));
    set(j, "programs", programs);
    return j;
}

json_t *render_token(const token_row *t)
{
    json_t *j = json_object();
    set(j, "id", json_string(t->id));
    set(j, "token", json_string(t->token));
    set(j, "prefix", json_string(t->prefix));
    set(j, "user", json_string(t->user));
    set(j, "role", json_string(t->role));
    set(j, "org", opt(t->org));
    set(j, "created_at", json_string(t->created_at));
    set(j, "expires_at", opt(t->expires_at));
    return j;
}

json_t *render_token_info(const token_info *t, const char *now)
{
    json_t *j = json_object();
    set(j, "id", str(t->id));
    set(j, "prefix", str(t->prefix));
    set(j, "user", str(t->user));
    set(j, "role", str(t->role));
    set(j, "org", str(t->org));
    set(j, "created_at", str(t->created_at));
    set(j, "created_by", str(t->created_by));
    set(j, "expires_at", str(t->expires_at));
    set(j, "revoked_at", str(t->revoked_at));
    set(j, "revoked_by", str(t->revoked_by));
    const char *status = t->revoked_at ? "revoked" : t->expires_at && strcmp(t->expires_at, now) <= 0 ? "expired" : "active";
    set(j, "status", json_string(status));
    return j;
}

json_t *render_person(const person_row *p)
{
    json_t *j = json_object(), *age = json_null();
    int by, bm, bd, y, m, d;
    if (p->birth_date && date_parse(p->birth_date, &by, &bm, &bd)) {
        date_today_kst(&y, &m, &d);
        json_decref(age);
        age = json_integer(age_on(by, bm, bd, y, m, d));
    }
    set(j, "id", str(p->id));
    set(j, "org", str(p->org));
    set(j, "name", str(p->name));
    set(j, "birth_date", str(p->birth_date));
    set(j, "sex", str(p->sex));
    set(j, "age", age);
    set(j, "rrn", str(p->rrn_masked));
    set(j, "phone", str(p->phone));
    set(j, "address", str(p->address));
    set(j, "household_id", str(p->household_id));
    set(j, "relation", str(p->relation));
    set(j, "tags", held(p->tags, json_array()));
    set(j, "created_at", str(p->created_at));
    set(j, "updated_at", str(p->updated_at));
    set(j, "eligibility", held(p->eligibility, json_object()));
    return j;
}

json_t *render_merge(const merge_row *m)
{
    json_t *j = json_object(), *filled = json_array();
    const char *k;
    json_t *v;
    set(j, "id", str(m->id));
    set(j, "org", str(m->org));
    set(j, "kept_id", str(m->kept_id));
    set(j, "merged_id", str(m->merged_id));
    set(j, "moved", held(m->moved, json_object()));
    json_object_foreach(m->filled, k, v) json_array_append_new(filled, json_string(k));
    set(j, "filled", filled);
    set(j, "note", str(m->note));
    set(j, "created_at", str(m->created_at));
    set(j, "created_by", str(m->created_by));
    set(j, "undone_at", str(m->undone_at));
    set(j, "undone_by", str(m->undone_by));
    return j;
}

json_t *render_household(const household_row *h, const char *org)
{
    json_t *j = json_object(), *members = json_array();
    set(j, "id", str(h->id));
    set(j, "org", str(org));
    set(j, "address", str(h->address));
    set(j, "created_at", str(h->created_at));
    for (size_t i = 0; i < h->n_members; i++) {
        const household_member *m = &h->members[i];
        json_t *mj = json_object();
        set(mj, "person_id", str(m->person_id));
        set(mj, "name", str(m->name));
        set(mj, "relation", str(m->relation));
        json_array_append_new(members, mj);
    }
    set(j, "members", members);
    return j;
}

json_t *render_case(const case_row *c)
{
    json_t *j = json_object();
    set(j, "id", json_string(c->id));
    set(j, "person_id", json_string(c->person_id));
    set(j, "program", json_string(c->program));
    set(j, "org", json_string(c->org));
    set(j, "region", json_string(c->region));
    set(j, "source", json_string(c->source));
    set(j, "referral_id", opt(c->referral_id));
    set(j, "stage", json_string(c->stage));
    set(j, "status", json_string(c->status));
    set(j, "version", json_integer(c->version));
    set(j, "assigned_to", opt(c->assigned_to));
    set(j, "opened_at", json_string(c->opened_at));
    set(j, "plugin_generation", opt(c->generation));
    set(j, "lead_org", json_string(c->lead_org[0] ? c->lead_org : c->org));
    return j;
}

json_t *render_case_brief(const case_row *c)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", c->id, "program", c->program, "org", c->org, "stage",
                     c->stage, "status", c->status, "opened_at", c->opened_at);
}

/* A bulk export de-identifies: the person is their birth date and sex,
 * nothing that names them (seed 003). */
json_t *render_case_export(const case_export_row *x)
{
    json_t *j = json_object(), *person = json_object();
    set(j, "case_id", str(x->case_id));
    set(j, "program", str(x->program));
    set(j, "org", str(x->org));
    set(j, "region", str(x->region));
    set(j, "source", str(x->source));
    set(j, "stage", str(x->stage));
    set(j, "status", str(x->status));
    set(j, "opened_at", str(x->opened_at));
    set(person, "birth_date", str(x->birth_date));
    set(person, "sex", str(x->sex));
    set(j, "person", person);
    return j;
}

json_t *render_event(const event_row *ev)
{
    json_t *j = json_object();
    set(j, "id", str(ev->id));
    set(j, "seq", json_integer(ev->seq));
    set(j, "at", str(ev->at));
    set(j, "actor", str(ev->actor));
    set(j, "type", str(ev->type));
    set(j, "from", str(ev->from_stage));
    set(j, "to", str(ev->to_stage));
    set(j, "data", held(ev->data, json_object()));
    set(j, "note", str(ev->note));
    set(j, "plugin_generation", str(ev->generation));
    return j;
}

json_t *render_due(const deadline_row *d, const char *today)
{
    json_t *j = json_object();
    set(j, "kind", str(d->kind));
    set(j, "label", str(d->label));
    set(j, "due_on", str(d->due_on));
    set(j, "plugin", str(d->plugin));
    set(j, "overdue", json_boolean(d->due_on && strcmp(d->due_on, today) < 0));
    return j;
}

json_t *render_deadline(const deadline_row *d, const char *today)
{
    json_t *j = json_object();
    set(j, "id", str(d->id));
    set(j, "case_id", str(d->case_id));
    set(j, "referral_id", str(d->referral_id));
    set(j, "kind", str(d->kind));
    set(j, "label", str(d->label));
    set(j, "due_on", str(d->due_on));
    set(j, "plugin", str(d->plugin));
    set(j, "person_id", str(d->person_id));
    set(j, "program", str(d->program));
    set(j, "stage", str(d->stage));
    set(j, "overdue", json_boolean(d->due_on && strcmp(d->due_on, today) < 0));
    return j;
}

json_t *render_record(const record_row *r)
{
    json_t *j = json_object();
    set(j, "id", str(r->id));
    set(j, "case_id", str(r->case_id));
    set(j, "kind", str(r->kind));
    set(j, "subkind", str(r->subkind));
    set(j, "status", str(r->status));
    set(j, "data", held(r->data, json_null()));
    set(j, "result", held(r->result, json_null()));
    set(j, "supersedes", str(r->supersedes));
    set(j, "created_at", str(r->created_at));
    set(j, "created_by", str(r->created_by));
    set(j, "decided_at", str(r->decided_at));
    set(j, "decided_by", str(r->decided_by));
    set(j, "recorded_on", str(r->recorded_on));
    set(j, "decided_on", str(r->decided_on));
    return j;
}

json_t *render_meeting(const meeting_row *m)
{
    json_t *j = json_object(), *ids = json_array();
    set(j, "id", str(m->id));
    set(j, "org", str(m->org));
    set(j, "type", str(m->type));
    set(j, "held_on", str(m->held_on));
    set(j, "written", json_boolean(m->written));
    set(j, "participants", held(m->participants, json_null()));
    set(j, "decisions", held(m->decisions, json_null()));
    for (size_t i = 0; i < m->n_case_ids; i++) json_array_append_new(ids, json_string(m->case_ids[i]));
    set(j, "case_ids", ids);
    set(j, "created_at", str(m->created_at));
    set(j, "created_by", str(m->created_by));
    return j;
}

json_t *render_consent(const consent_row *c)
{
    json_t *j = json_object();
    set(j, "id", str(c->id));
    set(j, "person_id", str(c->person_id));
    set(j, "purpose", str(c->purpose));
    set(j, "scope", held(c->scope, json_null()));
    set(j, "valid_from", str(c->valid_from));
    set(j, "valid_until", str(c->valid_until));
    set(j, "created_at", str(c->created_at));
    set(j, "created_by", str(c->created_by));
    set(j, "revoked_at", str(c->revoked_at));
    set(j, "revoked_by", str(c->revoked_by));
    return j;
}

json_t *render_referral(const referral_row *r)
{
    json_t *j = json_object();
    set(j, "id", str(r->id));
    set(j, "person_id", str(r->person_id));
    set(j, "from_org", str(r->from_org));
    set(j, "from_case_id", str(r->from_case_id));
    set(j, "to_org", str(r->to_org));
    set(j, "to_program", str(r->to_program));
    set(j, "reason", str(r->reason));
    set(j, "opinion", str(r->opinion));
    set(j, "consent_id", str(r->consent_id));
    set(j, "person", held(r->snapshot, json_null()));
    set(j, "status", str(r->status));
    set(j, "answer_note", str(r->answer_note));
    set(j, "answered_at", str(r->answered_at));
    set(j, "answered_by", str(r->answered_by));
    set(j, "case_id", str(r->case_id));
    set(j, "closed_at", str(r->closed_at));
    set(j, "closure_review", str(r->closure_review));
    set(j, "closure_note", str(r->closure_note));
    set(j, "created_at", str(r->created_at));
    set(j, "created_by", str(r->created_by));
    set(j, "agency_ref", str(r->agency_ref));
    set(j, "agency_status", str(r->agency_status));
    return j;
}

json_t *render_sharing_right(const sharing_right_row *s)
{
    json_t *j = json_object();
    set(j, "org", str(s->org));
    set(j, "user", str(s->user));
    set(j, "training_on", str(s->training_on));
    set(j, "pledge_on", str(s->pledge_on));
    set(j, "org_approved_by", str(s->org_approved_by));
    set(j, "org_approved_at", str(s->org_approved_at));
    set(j, "district_approved_by", str(s->district_approved_by));
    set(j, "district_approved_at", str(s->district_approved_at));
    set(j, "complete", json_boolean(s->district_approved_by != NULL));
    return j;
}

json_t *render_outbox(const outbox_row *m, bool personal)
{
    json_t *j = json_object();
    set(j, "id", str(m->id));
    set(j, "seq", json_integer(m->seq));
    set(j, "agency", str(m->agency));
    set(j, "topic", str(m->topic));
    set(j, "kind", str(m->kind));
    set(j, "idempotency_key", str(m->idempotency_key));
    set(j, "org", str(m->org));
    set(j, "person_id", personal ? str(m->person_id) : json_null());
    set(j, "payload", personal ? held(m->payload, json_null()) : json_null());
    set(j, "status", str(m->status));
    set(j, "attempts", json_integer(m->attempts));
    set(j, "next_at_ms", json_integer(m->next_at_ms));
    set(j, "last_status", m->last_status ? json_integer(m->last_status) : json_null());
    set(j, "last_error", str(m->last_error));
    set(j, "created_at", str(m->created_at));
    set(j, "delivered_at", str(m->delivered_at));
    return j;
}

json_t *render_audit(const audit_row *a)
{
    json_t *j = json_object();
    set(j, "seq", json_integer(a->seq));
    set(j, "at", str(a->at));
    set(j, "actor", str(a->actor));
    set(j, "org", str(a->org));
    set(j, "role", str(a->role));
    set(j, "action", str(a->action));
    set(j, "person_id", str(a->person_id));
    json_t *persons = json_array();
    if (a->persons) {
        for (const char *s = a->persons; *s;) {
            const char *sp = strchr(s, ' ');
            size_t n = sp ? (size_t)(sp - s) : strlen(s);
            if (n) json_array_append_new(persons, json_stringn(s, n));
            s += n + (sp ? 1 : 0);
        }
    } else if (a->person_id) {
        json_array_append_new(persons, json_string(a->person_id));
    }
    set(j, "persons", persons);
    set(j, "case_id", str(a->case_id));
    set(j, "purpose", str(a->purpose));
    set(j, "request_id", str(a->request_id));
    set(j, "status", json_integer(a->status));
    set(j, "hash", str(a->hash));
    return j;
}

/* ---- the trail's keys, checkpoints and archives (files of sarye audit) ---- */
json_t *render_audit_epoch(const audit_epoch *ep)
{
    json_t *j = json_object();
    set(j, "epoch", json_integer(ep->epoch));
    set(j, "key_id", str(ep->key_id));
    set(j, "first_seq", json_integer(ep->first_seq));
    set(j, "public_key", str(ep->public_key));
    set(j, "endorsement", opt(ep->endorsement));
    set(j, "created_at", str(ep->created_at));
    set(j, "retired_at", opt(ep->retired_at));
    return j;
}

json_t *render_audit_checkpoint(const audit_checkpoint *c)
{
    json_t *j = json_object();
    set(j, "id", json_integer(c->id));
    set(j, "epoch", json_integer(c->epoch));
    set(j, "through_seq", json_integer(c->through_seq));
    set(j, "head", str(c->head));
    set(j, "archived_through", json_integer(c->archived_through));
    set(j, "at", str(c->at));
    set(j, "reason", str(c->reason));
    set(j, "signature", str(c->signature));
    return j;
}

json_t *render_audit_archive(const audit_archive *a)
{
    json_t *j = json_object();
    set(j, "from_seq", json_integer(a->from_seq));
    set(j, "through_seq", json_integer(a->through_seq));
    set(j, "records", json_integer(a->records));
    set(j, "prev", str(a->prev));
    set(j, "head", str(a->head));
    set(j, "epoch", json_integer(a->epoch));
    set(j, "at", str(a->at));
    set(j, "file", str(a->file));
    set(j, "signature", str(a->signature));
    return j;
}

/* ---- lists ---- */
json_t *render_persons(const person_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) json_array_append_new(a, render_person(&l->items[i]));
    return a;
}

json_t *render_cases(const case_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) json_array_append_new(a, render_case(&l->items[i]));
    return a;
}

json_t *render_case_briefs(const case_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) json_array_append_new(a, render_case_brief(&l->items[i]));
    return a;
}

json_t *render_case_exports(const case_export_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) json_array_append_new(a, render_case_export(&l->items[i]));
    return a;
}

json_t *render_events(const event_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) json_array_append_new(a, render_event(&l->items[i]));
    return a;
}

json_t *render_dues(const deadline_list *l, const char *today)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) json_array_append_new(a, render_due(&l->items[i], today));
    return a;
}

json_t *render_deadlines(const deadline_list *l, const char *today)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) json_array_append_new(a, render_deadline(&l->items[i], today));
    return a;
}

json_t *render_records(const record_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) json_array_append_new(a, render_record(&l->items[i]));
    return a;
}

json_t *render_meetings(const meeting_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) json_array_append_new(a, render_meeting(&l->items[i]));
    return a;
}

json_t *render_consents(const consent_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) json_array_append_new(a, render_consent(&l->items[i]));
    return a;
}

json_t *render_referrals(const referral_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) json_array_append_new(a, render_referral(&l->items[i]));
    return a;
}

json_t *render_audits(const audit_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) json_array_append_new(a, render_audit(&l->items[i]));
    return a;
}

json_t *render_merges(const merge_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) json_array_append_new(a, render_merge(&l->items[i]));
    return a;
}

json_t *render_page(json_t *items, bool more, const char *last)
{
    json_t *next = json_null();
    if (more && last && *last) {
        char cur[4 * STORE_KEY_MAX / 3 + 8];
        cursor_encode(last, cur, sizeof cur);
        json_decref(next);
        next = json_string(cur);
    }
    return json_pack("{s:o, s:o}", "items", items, "next_cursor", next);
}

/* ---- cursors ---- */
void cursor_encode(const char *last, char *out, size_t outlen)
{
    sodium_bin2base64(out, outlen, (const unsigned char *)last, strlen(last),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int cursor_decode(const char *cursor, char *key, size_t keylen)
{
    size_t n = 0;
    if (!cursor || !*cursor ||
        sodium_base642bin((unsigned char *)key, keylen - 1, cursor, strlen(cursor), NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING))
        return -1;
    key[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (!(key[i] == '_' || (key[i] >= '0' && key[i] <= '9') || (key[i] >= 'A' && key[i] <= 'Z') ||
              (key[i] >= 'a' && key[i] <= 'z') || key[i] == '-' || key[i] == '.'))
            return -1;
    return n ? 0 : -1;
}
