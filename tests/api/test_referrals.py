"""Consents and referrals between organisations and programs (seed 001 II:
a referral carries the person, the referrer, a reason and an opinion, needs
the person's consent; the receiver accepts and runs its own case while the
referring case goes on, or rejects with a note; when the referred case
closes the referrer is told and reviews it)."""
import unittest

from harness import ORG1, ORG2, ApiTest


class ReferralTest(ApiTest):
    server_env = {"SARYE_CLOCK_ADJUSTABLE": "on"}

    def today(self, date):
        r = self.client.request("PUT", "/v1/admin/clock", {"today": date}, token=self.operator)
        self.assertEqual(r.status, 200, r.text)

    def consent(self, person, expect=201, token=None, **body):
        body.setdefault("purpose", "referral")
        body.setdefault("scope", [ORG2])
        r = self.client.post("/v1/persons/%s/consents" % person["id"], body, token=token or self.worker1)
        self.assertEqual(r.status, expect, r.text)
        return r.json

    def refer(self, person, consent, expect=201, **body):
        body = dict({"person_id": person["id"], "to_org": ORG2, "to_program": "integrated",
                     "reason": "정신건강 상담이 필요해 보임", "opinion": "우울감 호소, 전문 상담 연계 희망",
                     "consent_id": consent["id"]}, **body)
        r = self.client.post("/v1/referrals", body, token=self.worker1)
        self.assertEqual(r.status, expect, r.text)
        return r

    def test_referral_accepted_both_cases_run_and_closure_is_reviewed(self):
        self.today("2026-06-01")
        person = self.make_person(name="최영희", birth_date="1968-02-03", sex="F")
        case = self.make_case(person["id"])
        case = self.advance(case, "intake")
        self.client.post("/v1/cases/%s/counseling" % case["id"], {
            "case_type": "specialist", "domains": {"health": "우울감"}, "main_problems": ["health"],
            "opinion": "전문 상담 필요"}, token=self.worker1)
        c = self.consent(person)
        self.assertEqual((c["valid_from"], c["valid_until"]), ("2026-06-01", "2026-09-01"))
        ref = self.refer(person, c, from_case_id=case["id"], attach=["counseling"]).json
        self.assertEqual(ref["status"], "pending")
        self.assertEqual(ref["person"]["person"]["name"], "최영희")
        self.assertEqual(ref["person"]["counseling"][0]["data"]["opinion"], "전문 상담 필요")
        # the receiver sees it in its inbox, and the deadline to answer
        inbox = self.client.get("/v1/referrals", token=self.worker2, query={"direction": "in", "status": "pending"})
        self.assertIn(ref["id"], [x["id"] for x in inbox.json["items"]])
        dl = self.client.get("/v1/deadlines", token=self.worker2, query={"kind": "referral_answer"}).json["items"]
        mine = [d for d in dl if d["referral_id"] == ref["id"]]
        self.assertEqual(mine[0]["due_on"], "2026-06-15")
        # but not the person itself
        self.assertError(self.client.get("/v1/persons/" + person["id"], token=self.worker2), 404)
        # accepting opens the receiver's own case, from the referral
        r = self.client.post("/v1/referrals/%s/accept" % ref["id"], {"note": "초기상담 예정"}, token=self.worker2)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json["status"], "accepted")
        new_case = r.json["case"]
        self.assertEqual((new_case["org"], new_case["source"], new_case["referral_id"], new_case["stage"]),
                         (ORG2, "referral", ref["id"], "discovery"))
        p2 = self.client.get("/v1/persons/" + new_case["person_id"], token=self.worker2).json
        self.assertEqual(p2["name"], "최영희")
        self.assertNotIn(ref["id"], [d["referral_id"] for d in self.client.get(
            "/v1/deadlines", token=self.worker2, query={"kind": "referral_answer"}).json["items"]])
        # the referring case goes on
        c1 = self.client.get("/v1/cases/" + case["id"], token=self.worker1).json
        self.assertEqual((c1["status"], c1["stage"]), ("open", "intake"))
        ev = [e["type"] for e in self.list_all("/v1/cases/%s/events" % case["id"], self.worker1)]
        self.assertIn("referred", ev)
        self.assertIn("referral_accepted", ev)
        # a second answer is refused
        self.assertError(self.client.post("/v1/referrals/%s/reject" % ref["id"], {"note": "x"}, token=self.worker2),
                         409, "referral_answered")
        # the referred case closes: the referrer is told and reviews it
        self.today("2026-07-01")
        r = self.client.post("/v1/cases/%s/closure" % new_case["id"], {"reason": "refused", "evaluation": "상담 거부"},
                             token=self.worker2)
        self.assertEqual(r.status, 201, r.text)
        out = self.client.get("/v1/referrals/" + ref["id"], token=self.worker1).json
        self.assertIsNotNone(out["closed_at"])
        ev = [e["type"] for e in self.list_all("/v1/cases/%s/events" % case["id"], self.worker1)]
        self.assertIn("referred_case_closed", ev)
        dl = self.client.get("/v1/deadlines", token=self.worker1, query={"kind": "referral_closure_review"}).json["items"]
        self.assertEqual([d["due_on"] for d in dl if d["referral_id"] == ref["id"]], ["2026-07-15"])
        self.assertError(self.client.post("/v1/referrals/%s/closure-review" % ref["id"], {"appropriate": True},
                                          token=self.worker2), 403)
        r = self.client.post("/v1/referrals/%s/closure-review" % ref["id"],
                             {"appropriate": False, "note": "재연계 필요"}, token=self.worker1)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual((r.json["closure_review"], r.json["closure_note"]), ("inappropriate", "재연계 필요"))
        dl = self.client.get("/v1/deadlines", token=self.worker1, query={"kind": "referral_closure_review"}).json["items"]
        self.assertNotIn(ref["id"], [d["referral_id"] for d in dl])

    def test_rejection_needs_a_note_the_sender_sees(self):
        self.today("2026-06-01")
        person = self.make_person()
        ref = self.refer(person, self.consent(person)).json
        self.assertError(self.client.post("/v1/referrals/%s/reject" % ref["id"], {}, token=self.worker2), 400,
                         field="note")
        self.assertError(self.client.post("/v1/referrals/%s/reject" % ref["id"], {"note": "x"}, token=self.worker1),
                         403)
        r = self.client.post("/v1/referrals/%s/reject" % ref["id"], {"note": "관할 지역이 아님"}, token=self.worker2)
        self.assertEqual(r.status, 200, r.text)
        out = self.client.get("/v1/referrals", token=self.worker1, query={"direction": "out", "status": "rejected"})
        mine = [x for x in out.json["items"] if x["id"] == ref["id"]]
        self.assertEqual(mine[0]["answer_note"], "관할 지역이 아님")

    def test_consent_missing_expired_revoked_or_out_of_scope(self):
        self.today("2026-06-01")
        person = self.make_person()
        r = self.refer(person, {"id": "cns_nope"}, expect=422)
        self.assertError(r, 422, "consent_invalid", field="consent_id")
        counseling = self.consent(person, purpose="counseling")
        self.assertEqual(counseling["valid_until"], "2026-06-08")
        self.assertIn("purpose", self.assertError(self.refer(person, counseling, expect=422), 422,
                                                  "consent_invalid")["details"]["reason"])
        narrow = self.consent(person, scope=[ORG1])
        self.assertIn("scope", self.assertError(self.refer(person, narrow, expect=422), 422,
                                                "consent_invalid")["details"]["reason"])
        ok = self.consent(person)
        self.today("2026-09-02")
        self.assertIn("expired", self.assertError(self.refer(person, ok, expect=422), 422,
                                                  "consent_invalid")["details"]["reason"])
        self.today("2026-06-02")
        r = self.client.post("/v1/persons/%s/consents/%s/revoke" % (person["id"], ok["id"]), token=self.worker1)
        self.assertEqual(r.status, 200, r.text)
        self.assertIsNotNone(r.json["revoked_at"])
        self.assertIn("revoked", self.assertError(self.refer(person, ok, expect=422), 422,
                                                  "consent_invalid")["details"]["reason"])
        r = self.client.post("/v1/persons/%s/consents/%s/revoke" % (person["id"], ok["id"]), token=self.worker1)
        self.assertError(r, 409, "consent_revoked")
        consents = self.client.get("/v1/persons/%s/consents" % person["id"], token=self.worker1).json["items"]
        self.assertEqual(len(consents), 3)
        # nothing was referred
        out = self.client.get("/v1/referrals", token=self.worker1, query={"direction": "out"}).json["items"]
        self.assertNotIn(person["id"], [x["person_id"] for x in out])

    def test_consent_periods_by_purpose(self):
        self.today("2026-06-01")
        person = self.make_person()
        r = self.client.post("/v1/persons/%s/consents" % person["id"],
                             {"purpose": "case_management", "scope": [ORG2], "valid_until": "2026-12-31"},
                             token=self.worker1)
        self.assertError(r, 422, "validation_failed", field="valid_until")
        r = self.client.post("/v1/persons/%s/consents" % person["id"],
                             {"purpose": "case_management", "scope": ["no-such-org"]}, token=self.worker1)
        self.assertError(r, 422, "unknown_org")
        r = self.client.post("/v1/persons/%s/consents" % person["id"], {"purpose": "gossip", "scope": [ORG2]},
                             token=self.worker1)
        self.assertError(r, 400, field="purpose")
        r = self.client.post("/v1/persons/%s/consents" % person["id"], {"purpose": "referral", "scope": [ORG2]},
                             token=self.worker2)
        self.assertError(r, 404)

    def test_referral_validation(self):
        self.today("2026-06-01")
        person = self.make_person()
        c = self.consent(person)
        self.assertError(self.refer(person, c, expect=422, to_program="dream_start"), 422, "program_not_offered")
        self.assertError(self.refer(person, c, expect=422, to_org="nowhere"), 422, "unknown_org")
        self.assertError(self.refer(person, c, expect=422, from_case_id="cas_nope"), 422, "unknown_case")
        self.assertError(self.refer(person, c, expect=400, attach=["counseling"]), 400, field="attach")
        r = self.client.post("/v1/referrals", {"person_id": person["id"], "to_org": ORG2, "reason": "x",
                                               "consent_id": c["id"]}, token=self.worker1)
        self.assertError(r, 400, field="opinion")
        self.assertError(self.client.get("/v1/referrals?direction=sideways", token=self.worker1), 400)
        ref = self.refer(person, c).json
        # a third organisation does not know it exists
        oid, tok = self.make_org_with_worker()
        self.assertError(self.client.get("/v1/referrals/" + ref["id"], token=tok), 404)

    def test_one_screen_for_another_org_only_under_consent(self):
        self.today("2026-06-01")
        person = self.make_person(name="공유씨")
        case = self.make_case(person["id"])
        url = "/v1/persons/%s/one-screen" % person["id"]
        # without a consent naming org 2, the person is as unknown to it as a made-up id
        self.assertError(self.client.get(url, token=self.worker2), 404, "not_found")
        self.assertError(self.client.get("/v1/persons/cas_nobody/one-screen", token=self.worker2), 404)
        c = self.consent(person, purpose="counseling")  # a week, naming org 2
        r = self.client.get(url, token=self.worker2)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json["consent_id"], c["id"])
        self.assertEqual(r.json["person"]["name"], "공유씨")
        self.assertEqual([x["id"] for x in r.json["cases"]], [case["id"]])
        # the audit says why org 2 looked: the consent
        rows = self.client.get("/v1/audit", token=self.auditor1, query={"person_id": person["id"]}).json["items"]
        self.assertEqual(rows[-1]["purpose"], c["id"])
        self.assertEqual(rows[-1]["org"], ORG2)
        # the consent's week has passed: a local government office (org 2 is a dong) is held to no
        # viewing period (seed 003 원스크린 정보 조회 기간: "< 지자체 > 별도의 조회가능 기간 제한은
        # 없으며"); a provider is (test_seeds)
        self.today("2026-06-09")
        self.assertEqual(self.client.get(url, token=self.worker2).status, 200)
        self.today("2026-06-02")
        self.assertEqual(self.client.get(url, token=self.worker2).status, 200)
        self.client.post("/v1/persons/%s/consents/%s/revoke" % (person["id"], c["id"]), token=self.worker1)
        self.assertError(self.client.get(url, token=self.worker2), 404, "not_found")
        # a referral consent does not open the one-screen
        self.consent(person, purpose="referral")
        self.assertError(self.client.get(url, token=self.worker2), 404, "not_found")

    def test_unanswered_referral_is_overdue(self):
        self.today("2026-06-01")
        person = self.make_person()
        ref = self.refer(person, self.consent(person)).json
        self.today("2026-06-16")
        dl = self.client.get("/v1/deadlines", token=self.worker2, query={"kind": "referral_answer"}).json["items"]
        mine = [d for d in dl if d["referral_id"] == ref["id"]]
        self.assertTrue(mine[0]["overdue"])


if __name__ == "__main__":
    unittest.main()
