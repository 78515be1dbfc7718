/*
 * lookups: how a person is reached outside the organisation that holds
 * their record. A provider's head approves each person's look-up through
 * the one-screen view (seed 003 정보공유 절차: "사회서비스 제공기관의 장에게
 * 대상자의 정보조회 승인 결재를 받으면, 조회가능 기간동안 … 정보조회 가능"), and
 * the receiver of a government-wide referral records its first contact
 * with the person (seed 001 부록3: "가능한 14일 이내 유선연락 후 의뢰접수처리").
 * Rows and functions in the manner of store/records.h.
 */
#ifndef SARYE_STORE_LOOKUPS_H
#define SARYE_STORE_LOOKUPS_H

#include "store/records.h"

typedef struct {
    char *mem;
    const char *id, *org, *person_id, *user, *consent_id, *approved_by, *approved_at, *revoked_at;
} lookup_approval_row;
void lookup_approval_row_free(lookup_approval_row *a);

typedef struct {
    lookup_approval_row *items;
    size_t n;
} lookup_approval_list;
void lookup_approval_list_free(lookup_approval_list *l);

int store_lookup_approval_insert(store_tx *tx, const char *org, const char *person_id, const char *user,
                                 const char *consent_id, const char *by, lookup_approval_row *out, store_err *e);
/* The approvals of org for the person (of one user, or all with user NULL), oldest first. */
int store_lookup_approvals(store_tx *tx, const char *org, const char *person_id, const char *user,
                           lookup_approval_list *out, store_err *e);

typedef struct {
    char *mem;
    const char *id, *referral_id, *contacted_on, *method, *note, *created_at, *created_by;
    bool reached;
} referral_contact_row;
void referral_contact_row_free(referral_contact_row *c);

typedef struct {
    referral_contact_row *items;
    size_t n;
} referral_contact_list;
void referral_contact_list_free(referral_contact_list *l);

int store_referral_contact_insert(store_tx *tx, const char *referral_id, const char *contacted_on, const char *method,
                                  bool reached, const char *note, const char *by, store_err *e);
/* The referral's receiving case closed at `at` (RFC 3339), unless it was
 * already (its first closure stands). */
int store_referral_closed_at(store_tx *tx, const char *referral_id, const char *at, store_err *e);

/* Every contact recorded for a referral, oldest first. */
int store_referral_contacts(store_tx *tx, const char *referral_id, referral_contact_list *out, store_err *e);

#endif
