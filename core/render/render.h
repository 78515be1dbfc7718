/*
 * render: the one rendering of the store's rows as the API shows them —
 * field names, nulls for what is absent, and what is derived on the way
 * out (a person's age, whether a deadline is overdue, whether a sharing
 * right is complete) — and the opaque cursors of its pages. HTTP answers
 * are built from these, and the plugin views (rules/views.c) show plugins
 * the same objects. Each function returns a new reference.
 */
#ifndef SARYE_RENDER_H
#define SARYE_RENDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "store/records.h"

json_t *render_org(const org_row *o);
/* The only answer that shows the token itself. */
json_t *render_token(const token_row *t);
/* A token as lists show it (never the secret), with its status at now (an
 * RFC 3339 time): active, expired or revoked. */
json_t *render_token_info(const token_info *t, const char *now);
/* With the person's age today (international age; null without a valid birth date). */
json_t *render_person(const person_row *p);
/* org: the organisation the answer names: the viewer's, as the API has
 * always shown it (the row's own is h->org). */
json_t *render_household(const household_row *h, const char *org);
/* The row alone: no stage label, no deadlines (engine_render adds them). */
json_t *render_case(const case_row *c);
/* What a list of a person's cases shows: id, program, org, stage, status, opened_at. */
json_t *render_case_brief(const case_row *c);
json_t *render_case_export(const case_export_row *x);
json_t *render_event(const event_row *ev);
/* A case's open deadline (kind, label, due_on, plugin, overdue on today). */
json_t *render_due(const deadline_row *d, const char *today);
/* An organisation's deadline, with its case or referral (overdue on today). */
json_t *render_deadline(const deadline_row *d, const char *today);
json_t *render_record(const record_row *r);
json_t *render_meeting(const meeting_row *m);
json_t *render_consent(const consent_row *c);
json_t *render_referral(const referral_row *r);
json_t *render_sharing_right(const sharing_right_row *s);
/* personal false: without the payload and the person (null), as a system
 * operator sees it. */
json_t *render_outbox(const outbox_row *m, bool personal);
json_t *render_audit(const audit_row *a);
/* The keyring's epochs, checkpoints and archives, as the files of `sarye
 * audit` hold them (checkpoint exports, the anchor, archives). */
json_t *render_audit_epoch(const audit_epoch *ep);
json_t *render_audit_checkpoint(const audit_checkpoint *c);
json_t *render_audit_archive(const audit_archive *a);
/* A merge of two records of a person: what moved, which fields the kept
 * record took (their names), who, when, and whether it was undone. */
json_t *render_merge(const merge_row *m);

/* Lists as JSON arrays. */
json_t *render_persons(const person_list *l);
json_t *render_cases(const case_list *l);
json_t *render_case_briefs(const case_list *l);
json_t *render_case_exports(const case_export_list *l);
json_t *render_events(const event_list *l);
json_t *render_dues(const deadline_list *l, const char *today);
json_t *render_deadlines(const deadline_list *l, const char *today);
json_t *render_records(const record_list *l);
json_t *render_meetings(const meeting_list *l);
json_t *render_consents(const consent_list *l);
json_t *render_referrals(const referral_list *l);
json_t *render_audits(const audit_list *l);
json_t *render_merges(const merge_list *l);

/* A page as the API answers it: {items, next_cursor}, next_cursor the
 * cursor of last when more follows, else null. Steals items. */
json_t *render_page(json_t *items, bool more, const char *last);

/* Cursors are opaque to clients: base64url of the key a next page starts
 * after (a list's `last`). */
void cursor_encode(const char *last, char *out, size_t outlen);
/* Returns 0 and the key, or -1 for a malformed cursor. */
int cursor_decode(const char *cursor, char *key, size_t keylen);

#endif
