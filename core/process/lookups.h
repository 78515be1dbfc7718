/*
 * process/lookups.h: who may look a person up outside the organisation that
 * holds their record, and how a referred person is first reached.
 *
 * One-screen (seed 003 원스크린 정보 조회 기간): a local government office
 * (emd, district) looks a person up under their consent with no period
 * limit ("별도의 조회가능 기간 제한은 없으며"); any other organisation within
 * the consent's period (상담안내 1주일, 사례관리 최대 3개월), and a private
 * provider's worker only once the head of the provider approved that
 * person's look-up for them ("사회서비스 제공기관의 장에게 대상자의 정보조회
 * 승인 결재를 받으면, 조회가능 기간동안 권한에 따라 정보조회 가능").
 */
#ifndef SARYE_PROCESS_LOOKUPS_H
#define SARYE_PROCESS_LOOKUPS_H

#include "process/process.h"

/* The head of a provider (supervisor or admin) approves user's look-up of
 * the person under consent_id: 201 the approval. 422 consent_invalid when
 * the consent does not let the organisation see the person today; 404 for
 * an unknown person; 409 not_needed for an organisation that is not a
 * provider. */
int process_lookup_approve(const principal *p, const char *person_id, const char *user, const char *consent_id,
                           store_reply *reply, err_t *e);
/* The approvals of the principal's organisation for the person. */
int process_lookup_approvals(const principal *p, const char *person_id, store_reply *reply, err_t *e);

/* Whether p, which does not hold the person's record, may open their one
 * screen now: the consent it is under in consent (0), or -1 with e (403
 * consent_required or lookup_approval_required). */
/* The answer to whoever may not know that the person exists: another
 * organisation's person without a consent that ever named it is answered
 * exactly as a person that does not exist (no existence oracle). */
#define ONE_SCREEN_HIDDEN(e, person, org)                                                                \
    err_set((e), 404, "not_found",                                                                      \
            "no person '%s' that %s may see (another organisation's person is shown only under the "    \
            "person's valid consent naming %s)",                                                         \
            (person), (org), (org))
int process_one_screen_access(store_tx *tx, const principal *p, const char *person_id, char consent[ID_MAX],
                              err_t *e);

typedef struct {
    const char *contacted_on, *method, *note;
    bool reached;
} referral_contact_in;
/* The receiver records a contact with the referred person before it
 * answers (seed 001 부록3: 14일 이내 유선연락 후 의뢰접수처리): 201 the
 * referral with its contacts; the first one that reached the person clears
 * the first_contact deadline, and a referring agency hears of it. 409
 * referral_answered once answered. */
int process_referral_contact(const principal *p, const char *id, const referral_contact_in *in,
                             const store_idem *idem, store_reply *reply, err_t *e);
/* The contacts of a referral as JSON: {first_contact, contacts} (referrals.c). */
int referral_contacts_json(store_tx *tx, const char *referral_id, json_t *into, err_t *e);

#endif
