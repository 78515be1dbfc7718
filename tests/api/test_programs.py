"""Every program as a plugin, over HTTP: eligibility refused and accepted
with reasons, program-specific instruments, and people moving between
programs by referral while their first case goes on (seed 001 II)."""
import datetime
import unittest

from harness import ORG1, ApiTest, today_kst


def years_ago(n, extra_days=0):
    t = today_kst()
    try:
        d = t.replace(year=t.year - n)
    except ValueError:  # 29 February
        d = t.replace(year=t.year - n, day=28)
    return (d - datetime.timedelta(days=extra_days)).isoformat()


class ProgramsTest(ApiTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        s.org_create("dj-dreamstart", "동작구 드림스타트", "program", "11590", ["dream_start"])
        s.org_create("dj-mhc", "동작구 정신건강복지센터", "program", "11590", ["mental_health"])
        s.org_create("dj-elderly", "동작노인종합복지관", "provider", "11590", ["elderly_care"])
        s.org_create("kcomwel-seoul", "근로복지공단 서울지역본부", "program", "11590", ["return_to_work"])
        cls.dream = s.token_create("ds-w", "worker", "dj-dreamstart")
        cls.mhc = s.token_create("mhc-w", "worker", "dj-mhc")
        cls.elderly = s.token_create("el-w", "worker", "dj-elderly")
        cls.rtw = s.token_create("rtw-w", "worker", "kcomwel-seoul")

    def test_every_program_is_loaded_with_its_own_stage_names(self):
        r = self.client.get("/v1/programs", token=self.worker1)
        ids = {p["id"] for p in r.json["items"]}
        self.assertEqual(ids, {"integrated", "dream_start", "medical_aid", "self_sufficiency", "elderly_care",
                               "mental_health", "suicide_crisis", "welfare_center", "foster_care",
                               "youth_independence", "care_leaver_housing", "child_protection", "community_care",
                               "visiting_health", "return_to_work"})
        dream = next(p for p in r.json["items"] if p["id"] == "dream_start")
        self.assertEqual(dream["name"], "드림스타트")
        self.assertEqual(dream["stages"][0]["label"], "접수")

    def test_dream_start_child_referred_from_an_integrated_household(self):
        mother = self.make_person(name="윤정미", birth_date="1984-03-03", sex="F")
        child = self.make_person(name="윤서준", birth_date=years_ago(9), sex="M")
        self.make_household(members=[{"person_id": mother["id"], "relation": "본인"},
                                     {"person_id": child["id"], "relation": "자녀"}])
        mcase = self.advance(self.make_case(mother["id"]), "assessment")
        consent = self.client.post("/v1/persons/%s/consents" % child["id"],
                                   {"purpose": "referral", "scope": ["dj-dreamstart"]}, token=self.worker1).json
        r = self.client.post("/v1/referrals", {
            "person_id": child["id"], "to_org": "dj-dreamstart", "to_program": "dream_start",
            "reason": "욕구조사 중 아동 학습·정서 지원 필요 확인 (아동 관련 의뢰 사유)",
            "opinion": "방과후 돌봄 공백, 드림스타트 사례관리 의뢰", "consent_id": consent["id"]}, token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        r = self.client.post("/v1/referrals/%s/accept" % r.json["id"], {"note": "가정방문 예정"}, token=self.dream)
        self.assertEqual(r.status, 200, r.text)
        dcase = r.json["case"]
        self.assertEqual((dcase["program"], dcase["source"], dcase["stage_label"]), ("dream_start", "referral", "접수"))
        # both cases run
        self.assertEqual(self.client.get("/v1/cases/" + mcase["id"], token=self.worker1).json["status"], "open")
        self.assertEqual(self.client.get("/v1/cases/" + dcase["id"], token=self.dream).json["status"], "open")

    def test_who_may_refer_to_whom(self):
        # seed 001 II.2: the dong's integrated case refers a child to Dream Start
        child = self.make_person(name="유아름", birth_date=years_ago(7), sex="F")
        case = self.make_case(child["id"])
        consent = self.client.post("/v1/persons/%s/consents" % child["id"],
                                   {"purpose": "referral", "scope": ["dj-dreamstart", "dj-mhc"]},
                                   token=self.worker1).json
        body = {"person_id": child["id"], "from_case_id": case["id"], "to_org": "dj-dreamstart",
                "to_program": "dream_start", "reason": "학습 지원", "opinion": "드림스타트 의뢰",
                "consent_id": consent["id"]}
        self.assertEqual(self.client.post("/v1/referrals", body, token=self.worker1).status, 201)
        # an elderly-care case is not one of Dream Start's referrers
        old = self.make_person(token=self.elderly, birth_date=years_ago(70), eligibility={"basic_pension": True})
        ecase = self.make_case(old["id"], token=self.elderly, program="elderly_care")
        c2 = self.client.post("/v1/persons/%s/consents" % old["id"], {"purpose": "referral", "scope": ["dj-dreamstart"]},
                              token=self.elderly).json
        r = self.client.post("/v1/referrals", dict(body, person_id=old["id"], from_case_id=ecase["id"],
                                                   consent_id=c2["id"]), token=self.elderly)
        err = self.assertError(r, 422, "referral_not_allowed")
        self.assertEqual(err["details"]["plugin"], "dream_start")
        self.assertIn("integrated", err["details"]["allowed"])

    def test_dream_start_refuses_an_adult(self):
        p = self.make_person(token=self.dream, birth_date=years_ago(20))
        r = self.client.post("/v1/cases", {"person_id": p["id"], "program": "dream_start", "source": "walk_in"},
                             token=self.dream)
        err = self.assertError(r, 422, "not_eligible")
        self.assertEqual(err["details"]["plugin"], "dream_start")
        self.assertIn("12세", err["details"]["reason"])

    def test_elderly_care_refused_for_a_long_term_care_grade(self):
        p = self.make_person(token=self.elderly, birth_date=years_ago(78), sex="F",
                             eligibility={"basic_pension": True, "ltc_grade": 4})
        r = self.client.post("/v1/cases", {"person_id": p["id"], "program": "elderly_care", "source": "walk_in"},
                             token=self.elderly)
        err = self.assertError(r, 422, "not_eligible")
        self.assertEqual(err["details"]["plugin"], "elderly_care")
        self.assertIn("장기요양", err["details"]["reason"])
        # the grade recorded as ended (등급외) and a pension: eligible
        r = self.client.request("PUT", "/v1/persons/%s/eligibility" % p["id"], {"basic_pension": True},
                                token=self.elderly)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json["eligibility"], {"basic_pension": True})
        r = self.client.post("/v1/cases", {"person_id": p["id"], "program": "elderly_care", "source": "walk_in"},
                             token=self.elderly)
        self.assertEqual(r.status, 201, r.text)
        # too young
        young = self.make_person(token=self.elderly, birth_date=years_ago(60), eligibility={"basic_pension": True})
        r = self.client.post("/v1/cases", {"person_id": young["id"], "program": "elderly_care", "source": "walk_in"},
                             token=self.elderly)
        self.assertIn("65", self.assertError(r, 422, "not_eligible")["details"]["reason"])

    def test_mental_health_referral_rejected_with_a_note(self):
        p = self.make_person(name="강우울", birth_date="1991-07-07", sex="M")
        consent = self.client.post("/v1/persons/%s/consents" % p["id"], {"purpose": "referral", "scope": ["dj-mhc"]},
                                   token=self.worker1).json
        r = self.client.post("/v1/referrals", {"person_id": p["id"], "to_org": "dj-mhc", "to_program": "mental_health",
                                               "reason": "우울감 호소", "opinion": "정신건강 평가 필요",
                                               "consent_id": consent["id"]}, token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        r = self.client.post("/v1/referrals/%s/reject" % r.json["id"],
                             {"note": "본인이 센터 이용을 원하지 않음, 1개월 후 재상담 권고"}, token=self.mhc)
        self.assertEqual(r.status, 200, r.text)
        out = self.client.get("/v1/referrals/" + r.json["id"], token=self.worker1).json
        self.assertEqual((out["status"], out["answer_note"]), ("rejected", "본인이 센터 이용을 원하지 않음, 1개월 후 재상담 권고"))

    def test_return_to_work_priority_by_severity(self):
        p = self.make_person(token=self.rtw, name="박산재", birth_date="1972-02-02", sex="M",
                             eligibility={"injured_worker": True, "employer_employees": 45, "wants_original_job": True})
        c = self.make_case(p["id"], token=self.rtw, program="return_to_work")
        self.assertEqual(c["stage_label"], "상담")
        c = self.move(c, "intake", token=self.rtw).json
        c = self.move(c, "assessment", token=self.rtw).json
        r = self.client.post("/v1/cases/%s/assessments" % c["id"],
                             {"kind": "severity", "domains": {"overall": {"score": 4, "note": "척수 손상"}}},
                             token=self.rtw)
        self.assertEqual(r.status, 201, r.text)
        self.assertEqual((r.json["result"]["priority"], r.json["result"]["severity"]), (1, "extreme"))
        big = self.make_person(token=self.rtw, eligibility={"injured_worker": True, "employer_employees": 500,
                                                           "wants_original_job": True})
        r = self.client.post("/v1/cases", {"person_id": big["id"], "program": "return_to_work", "source": "walk_in"},
                             token=self.rtw)
        self.assertIn("300", self.assertError(r, 422, "not_eligible")["details"]["reason"])


if __name__ == "__main__":
    unittest.main()
