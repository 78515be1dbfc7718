/*
 * merges.c: one person, one record (seed 003: the 중복 확인 beside the
 * number on the 희망이음 form). When an organisation finds it registered
 * one person twice, a supervisor or an admin merges the two records: the
 * cases, consents and referrals of the duplicate move to the record kept,
 * which fills in what it lacked (number, phone, address, household, tags,
 * eligibility facts) from the duplicate. Nothing is deleted: the duplicate
 * stays as a row merged into the other, the merge records what it moved and
 * what it filled, every moved case gets an event, and the audit trail names
 * both records. An unmerge puts back exactly what the merge recorded.
 *
 * Two records are not merged when they disagree on who the person is (two
 * different numbers, birth dates or sexes), belong to two households, or
 * both have a case of one program that has not ended (two live cases of
 * one program would be a duplicate case: close one first). The answer is a
 * 409 merge_conflict listing every reason.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "process/process.h"
#include "render/render.h"
#include "store/store.h"

typedef struct {
    const principal *p;
    const char *kept_id, *other_id, *note;
} merge_arg;

/* A record p sees; for the duplicate, a 422 naming the field (or a 409 when
 * it was merged into another already). */
static int load_person(store_tx *tx, const principal *p, const char *id, const char *field, person_row *out, err_t *e)
{
    store_err se = {0};
    if (!store_person_get(tx, p, id, out, &se)) return 0;
    if (se.kind != STORE_NOT_FOUND) return process_store_fail(&se, e);
    char into[ID_MAX], merge_id[ID_MAX];
    store_err me = {0};
    if (!store_person_merged_into(tx, p, id, into, merge_id, &me)) {
        err_set(e, 409, "merge_conflict", "person %s was merged into %s already", id, into);
        err_detail(e, "merged_into", json_string(into));
        err_detail(e, "field", json_string(field ? field : "id"));
        return -1;
    }
    if (me.kind != STORE_NOT_FOUND) return process_store_fail(&me, e);
    if (!field) {
        err_set(e, 404, "not_found", "no person '%s'", id);
        return -1;
    }
    err_set(e, 422, "unknown_person", "%s: no person '%s'", field, id);
    err_detail(e, "field", json_string(field));
    return -1;
}

static void conflict(json_t *list, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void conflict(json_t *list, const char *field, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_array_append_new(list, json_pack("{s:s, s:s}", "field", field, "reason", msg));
}

/* Why the two records cannot be merged, as a list of {field, reason}. */
static int merge_conflicts(store_tx *tx, const person_row *k, const person_row *d, json_t *out, err_t *e)
{
    person_numbers nums;
    store_err se = {0};
    if (store_person_numbers(tx, k->id, d->id, &nums, &se)) return process_store_fail(&se, e);
    if (nums.a_has && nums.b_has && !nums.same)
        conflict(out, "rrn", "the two records have different resident registration numbers");
    if (strcmp(k->birth_date, d->birth_date))
        conflict(out, "birth_date", "the birth dates differ (%s and %s)", k->birth_date, d->birth_date);
    if (strcmp(k->sex, d->sex)) conflict(out, "sex", "the sexes differ (%s and %s)", k->sex, d->sex);
    if (k->household_id && d->household_id && strcmp(k->household_id, d->household_id))
        conflict(out, "household_id", "the records belong to two households (%s and %s)", k->household_id,
                 d->household_id);
    const char **kp = NULL, **dp = NULL;
    size_t kn = 0, dn = 0;
    if (store_person_live_programs(tx, k->id, &kp, &kn, &se) || store_person_live_programs(tx, d->id, &dp, &dn, &se)) {
        free(kp);
        return process_store_fail(&se, e);
    }
    for (size_t i = 0; i < kn; i++)
        for (size_t j = 0; j < dn; j++)
            if (!strcmp(kp[i], dp[j]))
                conflict(out, "cases", "both records have a case of %s that has not ended: close one first", kp[i]);
    free(kp);
    free(dp);
    return 0;
}

/* Records that field changes from before to after (new references). */
static void changed(json_t *filled, const char *field, json_t *before, json_t *after)
{
    json_object_set_new(filled, field, json_pack("{s:o, s:o}", "before", before ? before : json_null(), "after",
                                                 after ? after : json_null()));
}

static json_t *text_or_null(const char *s) { return s ? json_string(s) : json_null(); }

/* A text field the kept record takes when it has none. */
static const char *fill_text(json_t *filled, const char *field, const char *kept, const char *other)
{
    if (kept || !other) return kept;
    changed(filled, field, NULL, json_string(other));
    return other;
}

/* The kept record's fields after taking from the other what it lacks
 * (tags and eligibility facts are new references in f); filled records
 * each change as {before, after}. */
static void fill_fields(const person_row *k, const person_row *d, person_fields *f, json_t *filled)
{
    f->phone = fill_text(filled, "phone", k->phone, d->phone);
    f->address = fill_text(filled, "address", k->address, d->address);
    f->household_id = k->household_id;
    f->relation = k->relation;
    if (!k->household_id && d->household_id) { /* the household, with the relation in it */
        f->household_id = fill_text(filled, "household_id", NULL, d->household_id);
        f->relation = d->relation;
        changed(filled, "relation", text_or_null(k->relation), text_or_null(d->relation));
    }
    json_t *tags = k->tags ? json_deep_copy(k->tags) : json_array();
    size_t i, j;
    json_t *t, *u;
    json_array_foreach(d->tags, i, t) {
        bool have = false;
        json_array_foreach(tags, j, u) have |= json_equal(t, u);
        if (!have) json_array_append(tags, t);
    }
    if (json_array_size(tags) != json_array_size(k->tags))
        changed(filled, "tags", k->tags ? json_incref(k->tags) : json_array(), json_deep_copy(tags));
    f->tags = tags;
    json_t *elig = k->eligibility ? json_deep_copy(k->eligibility) : json_object();
    const char *key;
    json_t *v;
    bool took = false;
    json_object_foreach(d->eligibility, key, v) {
        if (json_object_get(elig, key)) continue; /* the kept record's own facts win */
        json_object_set(elig, key, v);
        took = true;
    }
    if (took)
        changed(filled, "eligibility", k->eligibility ? json_incref(k->eligibility) : json_object(),
                json_deep_copy(elig));
    f->eligibility = elig;
}

/* Each moved case is told, in its history. */
static int case_events(store_tx *tx, const principal *p, json_t *case_ids, const char *type, const merge_row *m,
                       err_t *e)
{
    size_t i;
    json_t *id;
    json_array_foreach(case_ids, i, id) {
        bool back = !strcmp(type, "person_unmerged");
        json_t *data = json_pack("{s:s, s:s, s:s}", "merge_id", m->id, "from_person", back ? m->kept_id : m->merged_id,
                                 "to_person", back ? m->merged_id : m->kept_id);
        event_in ev = {.case_id = json_string_value(id), .actor = p->user, .type = type, .data = data};
        store_err se = {0};
        int rc = store_event_append(tx, &ev, &se);
        json_decref(data);
        if (rc) return process_store_fail(&se, e);
    }
    return 0;
}

/* {merge, person[, restored]} as the answer shows them. */
static int merge_answer(store_tx *tx, const principal *p, const merge_row *m, bool restored, store_reply *reply,
                        err_t *e)
{
    person_row kept, other;
    store_err se = {0};
    if (store_person_get(tx, p, m->kept_id, &kept, &se)) return process_store_fail(&se, e);
    json_t *body = json_pack("{s:o, s:o}", "merge", render_merge(m), "person", render_person(&kept));
    person_row_free(&kept);
    if (restored) {
        if (store_person_get(tx, p, m->merged_id, &other, &se)) {
            json_decref(body);
            return process_store_fail(&se, e);
        }
        json_object_set_new(body, "restored", render_person(&other));
        person_row_free(&other);
    }
    reply->status = 200;
    reply->body = body;
    return 0;
}

static int work_merge(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    merge_arg *a = arg;
    person_row k = {0}, d = {0};
    person_fields f = {0};
    json_t *conflicts = json_array(), *filled = json_object();
    merge_row m = {0};
    store_err se = {0};
    int rc = -1;
    if (load_person(tx, a->p, a->kept_id, NULL, &k, e) || load_person(tx, a->p, a->other_id, "duplicate_id", &d, e))
        goto done;
    if (strcmp(k.org, a->p->org) || strcmp(d.org, a->p->org)) {
        err_set(e, 403, "forbidden", "only the organisation that registered both records (%s) merges them",
                strcmp(k.org, a->p->org) ? k.org : d.org);
        goto done;
    }
    if (!strcmp(k.id, d.id)) {
        err_set(e, 422, "validation_failed", "duplicate_id: a record is not merged into itself");
        err_detail(e, "field", json_string("duplicate_id"));
        goto done;
    }
    if (merge_conflicts(tx, &k, &d, conflicts, e)) goto done;
    if (json_array_size(conflicts)) {
        err_set(e, 409, "merge_conflict", "%s and %s cannot be merged: %s", k.id, d.id,
                json_string_value(json_object_get(json_array_get(conflicts, 0), "reason")));
        err_detail(e, "conflicts", json_incref(conflicts));
        goto done;
    }
    person_numbers nums;
    if (store_person_numbers(tx, k.id, d.id, &nums, &se)) {
        process_store_fail(&se, e);
        goto done;
    }
    fill_fields(&k, &d, &f, filled);
    if (!nums.a_has && nums.b_has) {
        if (store_person_take_number(tx, k.id, d.id, &se)) {
            process_store_fail(&se, e);
            goto done;
        }
        json_object_set_new(filled, "rrn", json_pack("{s:s}", "from", d.id)); /* never the number */
    }
    if (store_person_set_fields(tx, k.id, &f, &se)) {
        process_store_fail(&se, e);
        goto done;
    }
    merge_in in = {.kept_id = k.id, .merged_id = d.id, .org = a->p->org, .by = a->p->user, .note = a->note,
                   .filled = filled};
    if (store_person_merge(tx, &in, &m, &se)) {
        process_store_error(&se, e, STORE_CONFLICT, 409, "merge_conflict", "%s", se.message);
        goto done;
    }
    if (case_events(tx, a->p, json_object_get(m.moved, "cases"), "person_merged", &m, e)) goto done;
    rc = merge_answer(tx, a->p, &m, false, reply, e);
done:
    person_row_free(&k);
    person_row_free(&d);
    merge_row_free(&m);
    json_decref(f.tags);
    json_decref(f.eligibility);
    json_decref(conflicts);
    json_decref(filled);
    return rc;
}

int process_person_merge(const principal *p, const char *kept_id, const char *duplicate_id, const char *note,
                         const store_idem *idem, store_reply *reply, err_t *e)
{
    merge_arg a = {.p = p, .kept_id = kept_id, .other_id = duplicate_id, .note = note};
    return process_write(idem, work_merge, &a, reply, e);
}

/* A field the merge filled goes back to what it was, if it still holds what
 * the merge put there (a change made since is kept). */
static const char *restore_text(json_t *filled, const char *field, const char *now)
{
    json_t *ch = json_object_get(filled, field);
    if (!ch) return now;
    json_t *cur = text_or_null(now);
    bool unchanged = json_equal(cur, json_object_get(ch, "after"));
    json_decref(cur);
    return unchanged ? json_string_value(json_object_get(ch, "before")) : now;
}

static json_t *restore_json(json_t *filled, const char *field, json_t *now, json_t *none)
{
    json_t *ch = json_object_get(filled, field);
    json_t *v = now;
    if (ch && json_equal(now, json_object_get(ch, "after"))) v = json_object_get(ch, "before");
    if (!v || json_is_null(v)) return none;
    json_decref(none);
    return json_deep_copy(v);
}

static int work_unmerge(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    merge_arg *a = arg; /* other_id: the merge */
    merge_row m = {0};
    person_row k = {0};
    json_t *back = json_object();
    store_err se = {0};
    int rc = -1;
    /* Who may undo it first, as for a merge: a record the caller cannot see
     * is 404, one of another organisation it sees (its district) 403. */
    if (load_person(tx, a->p, a->kept_id, NULL, &k, e)) {
        if (e->status != 409) goto done;
        err_clear(e); /* merged into another since: said below */
    } else if (strcmp(k.org, a->p->org)) {
        err_set(e, 403, "forbidden", "only the organisation that registered the records (%s) undoes their merge",
                k.org);
        goto done;
    }
    person_row_free(&k);
    memset(&k, 0, sizeof k);
    if (store_merge_get(tx, a->p, a->kept_id, a->other_id, &m, &se)) {
        process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no merge '%s' into person '%s'",
                            a->other_id, a->kept_id);
        goto done;
    }
    if (m.undone_at) {
        err_set(e, 409, "merge_undone", "merge %s was undone at %s", m.id, m.undone_at);
        goto done;
    }
    if (load_person(tx, a->p, m.kept_id, NULL, &k, e)) {
        if (e->status == 409) { /* the kept record was merged into another since */
            char into[ID_MAX];
            str_copy(into, sizeof into, json_string_value(json_object_get(e->details, "merged_into")));
            err_set(e, 409, "merge_conflict", "person %s was merged into %s since: undo that merge first", m.kept_id,
                    into);
            err_detail(e, "merged_into", json_string(into));
        }
        goto done;
    }
    /* what the kept record took goes back, unless it changed since */
    json_t *filled = m.filled;
    person_fields f = {
        .phone = restore_text(filled, "phone", k.phone),
        .address = restore_text(filled, "address", k.address),
        .household_id = restore_text(filled, "household_id", k.household_id),
        .relation = restore_text(filled, "relation", k.relation),
        .tags = restore_json(filled, "tags", k.tags, json_array()),
        .eligibility = restore_json(filled, "eligibility", k.eligibility, json_object()),
    };
    int frc = store_person_set_fields(tx, k.id, &f, &se);
    json_decref(f.tags);
    json_decref(f.eligibility);
    if (frc) {
        process_store_fail(&se, e);
        goto done;
    }
    if (json_object_get(filled, "rrn")) { /* the number it took, if it still has that one */
        person_numbers nums;
        if (store_person_numbers(tx, k.id, m.merged_id, &nums, &se) ||
            (nums.same && store_person_drop_number(tx, k.id, &se))) {
            process_store_fail(&se, e);
            goto done;
        }
    }
    if (store_person_unmerge(tx, &m, a->p->user, back, &se)) {
        process_store_error(&se, e, STORE_CONFLICT, 409, "merge_conflict", "%s", se.message);
        goto done;
    }
    if (case_events(tx, a->p, json_object_get(back, "cases"), "person_unmerged", &m, e)) goto done;
    merge_row after;
    if (store_merge_get(tx, a->p, m.kept_id, m.id, &after, &se)) {
        process_store_fail(&se, e);
        goto done;
    }
    rc = merge_answer(tx, a->p, &after, true, reply, e);
    if (!rc) json_object_set_new(reply->body, "moved_back", json_incref(back));
    merge_row_free(&after);
done:
    merge_row_free(&m);
    person_row_free(&k);
    json_decref(back);
    return rc;
}

int process_person_unmerge(const principal *p, const char *kept_id, const char *merge_id, const store_idem *idem,
                           store_reply *reply, err_t *e)
{
    merge_arg a = {.p = p, .kept_id = kept_id, .other_id = merge_id};
    return process_write(idem, work_unmerge, &a, reply, e);
}

static int work_merges(store_tx *tx, void *arg, store_reply *reply, err_t *e)
{
    merge_arg *a = arg;
    store_err se = {0};
    if (store_person_visible(tx, a->p, a->kept_id, &se)) {
        char into[ID_MAX], merge_id[ID_MAX];
        store_err me = {0};
        if (se.kind != STORE_NOT_FOUND || store_person_merged_into(tx, a->p, a->kept_id, into, merge_id, &me))
            return process_store_error(&se, e, STORE_NOT_FOUND, 404, "not_found", "no person '%s'", a->kept_id);
    }
    merge_list list;
    if (store_person_merges(tx, a->p, a->kept_id, &list, &se)) return process_store_fail(&se, e);
    reply->status = 200;
    reply->body = render_page(render_merges(&list), false, NULL);
    merge_list_free(&list);
    return 0;
}

int process_person_merges(const principal *p, const char *person_id, store_reply *reply, err_t *e)
{
    merge_arg a = {.p = p, .kept_id = person_id};
    return process_read(work_merges, &a, reply, e);
}
