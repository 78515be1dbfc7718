/* rows.c: the rows of records.h where no SQL is involved — releasing them,
 * a referral's row before it is stored, and the consent check, which reads
 * a consent row and nothing else (another backend would share this file). */
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

void org_row_free(org_row *o)
{
    free(o->mem);
    free(o->programs);
    memset(o, 0, sizeof *o);
}

void person_row_free(person_row *p)
{
    free(p->mem);
    json_decref(p->tags);
    json_decref(p->eligibility);
    memset(p, 0, sizeof *p);
}

static void person_drop(void *row) { person_row_free(row); }

void person_list_free(person_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, person_drop);
    memset(l, 0, sizeof *l);
}

void merge_row_free(merge_row *m)
{
    free(m->mem);
    json_decref(m->moved);
    json_decref(m->filled);
    memset(m, 0, sizeof *m);
}

static void merge_drop(void *row) { merge_row_free(row); }

void merge_list_free(merge_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, merge_drop);
    memset(l, 0, sizeof *l);
}

void household_row_free(household_row *h)
{
    for (size_t i = 0; i < h->n_members; i++) free(h->members[i].mem);
    free(h->members);
    free(h->mem);
    memset(h, 0, sizeof *h);
}

void case_list_free(case_list *l)
{
    free(l->items);
    memset(l, 0, sizeof *l);
}

void case_export_row_free(case_export_row *x)
{
    free(x->mem);
    memset(x, 0, sizeof *x);
}

static void export_drop(void *row) { case_export_row_free(row); }

void case_export_list_free(case_export_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, export_drop);
    memset(l, 0, sizeof *l);
}

void event_row_free(event_row *ev)
{
    free(ev->mem);
    json_decref(ev->data);
    memset(ev, 0, sizeof *ev);
}

static void event_drop(void *row) { event_row_free(row); }

void event_list_free(event_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, event_drop);
    memset(l, 0, sizeof *l);
}

void deadline_row_free(deadline_row *d)
{
    free(d->mem);
    memset(d, 0, sizeof *d);
}

static void deadline_drop(void *row) { deadline_row_free(row); }

void deadline_list_free(deadline_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, deadline_drop);
    memset(l, 0, sizeof *l);
}

void record_row_free(record_row *r)
{
    free(r->mem);
    json_decref(r->data);
    json_decref(r->result);
    memset(r, 0, sizeof *r);
}

static void record_drop(void *row) { record_row_free(row); }

void record_list_free(record_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, record_drop);
    memset(l, 0, sizeof *l);
}

void meeting_row_free(meeting_row *m)
{
    free(m->mem);
    free(m->case_ids);
    json_decref(m->participants);
    json_decref(m->decisions);
    memset(m, 0, sizeof *m);
}

static void meeting_drop(void *row) { meeting_row_free(row); }

void meeting_list_free(meeting_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, meeting_drop);
    memset(l, 0, sizeof *l);
}

void consent_row_free(consent_row *c)
{
    free(c->mem);
    json_decref(c->scope);
    memset(c, 0, sizeof *c);
}

static void consent_drop(void *row) { consent_row_free(row); }

void consent_list_free(consent_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, consent_drop);
    memset(l, 0, sizeof *l);
}

void referral_row_free(referral_row *r)
{
    free(r->mem);
    json_decref(r->snapshot);
    memset(r, 0, sizeof *r);
}

static void referral_drop(void *row) { referral_row_free(row); }

void referral_list_free(referral_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, referral_drop);
    memset(l, 0, sizeof *l);
}

void referral_row_of(const referral_in *in, const char *id, const char *created_at, referral_row *out)
{
    *out = (referral_row){.id = id, .person_id = in->person_id, .from_org = in->from_org, .to_org = in->to_org,
                          .reason = in->reason, .opinion = in->opinion, .status = "pending",
                          .created_at = created_at, .created_by = in->by, .from_case_id = in->from_case_id,
                          .to_program = in->to_program, .consent_id = in->consent_id,
                          .agency_ref = in->agency_ref, .snapshot = in->snapshot};
}

void sharing_right_row_free(sharing_right_row *s)
{
    free(s->mem);
    memset(s, 0, sizeof *s);
}

void outbox_row_free(outbox_row *m)
{
    free(m->mem);
    json_decref(m->payload);
    memset(m, 0, sizeof *m);
}

static void outbox_drop(void *row) { outbox_row_free(row); }

void outbox_list_free(outbox_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, outbox_drop);
    memset(l, 0, sizeof *l);
}

void audit_row_free(audit_row *a)
{
    free(a->mem);
    memset(a, 0, sizeof *a);
}

static void audit_drop(void *row) { audit_row_free(row); }

void audit_list_free(audit_list *l)
{
    store_rows_free(l->items, l->n, sizeof *l->items, audit_drop);
    memset(l, 0, sizeof *l);
}

const char *store_consent_refusal(const consent_row *c, const char *party, const char *const *purposes,
                                  const char *today)
{
    bool in_scope = false, purpose_ok = !purposes;
    size_t i;
    json_t *o;
    json_array_foreach(c->scope, i, o) in_scope |= json_is_string(o) && !strcmp(json_string_value(o), party);
    for (const char *const *pp = purposes; pp && *pp && !purpose_ok; pp++) purpose_ok = !strcmp(*pp, c->purpose);
    if (c->revoked_at) return "it was revoked";
    if (strcmp(today, c->valid_from) < 0) return "it is not valid yet";
    if (strcmp(today, c->valid_until) > 0) return "it has expired";
    if (!purpose_ok) return "its purpose does not cover this use";
    if (!in_scope) return "its scope does not name the organisation";
    return NULL;
}
