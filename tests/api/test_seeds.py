"""A second reading of the seeds over HTTP: each test names the passage it
checks. The lead organisation of a case and its change by a conference
(seed 004), ambiguous cases decided with the district team, how households
are classified and how each class leaves the process (seed 004 II.4), the
follow-up schedule and the planning deadline (II.8, III.2), the solution
conference and closure conferences (II.3, II.7), the person's part in the
plan (IV), one-screen periods and look-up approvals (seed 003), the first
contact and the closure of a government-wide referral (seed 001 부록3), and
programs describing themselves."""
import datetime
import unittest

from harness import ApiTest, REGION, today_kst
from test_agencies import WithMockAgency, wait_until

DONG_CODE = "1159052000"


def add_months(d, n):
    y, m = divmod(d.month - 1 + n, 12)
    y += d.year
    day = d.day
    while True:
        try:
            return datetime.date(y, m + 1, day)
        except ValueError:
            day -= 1


class SeedsTest(WithMockAgency, ApiTest):
    @classmethod
    def mock_env(cls, url):
        return {"SARYE_CLOCK_ADJUSTABLE": "on",
                "SARYE_AGENCY_PENSION_URL": url + "/pension/answers",
                "SARYE_AGENCY_PENSION_TIMEOUT_MS": "1000",
                "SARYE_OUTBOX_RETRY_BASE_MS": "50", "SARYE_OUTBOX_RETRY_MAX_MS": "300"}

    @classmethod
    def set_up_server(cls):
        s = cls.server
        s.org_create("dj-hope", "동작구 희망복지지원단", "district", REGION, ["integrated"])
        s.org_create("sangdo-welfare", "상도종합사회복지관", "provider", REGION, ["integrated"])
        s.org_create("pension", "국민연금공단", "agency", REGION)
        s.run_cli("org", "create", "--id", "dj-sangdo2", "--name", "상도2동 주민센터", "--type", "emd",
                  "--region", REGION, "--program", "integrated", "--area", DONG_CODE)
        t = s.token_create
        cls.hope = t("hope-w", "worker", "dj-hope")
        cls.hope_lead = t("hope-s", "supervisor", "dj-hope")
        cls.welfare = t("sw-w", "worker", "sangdo-welfare")
        cls.welfare_head = t("sw-head", "supervisor", "sangdo-welfare")
        cls.pension = t("nps", "agency", "pension")
        cls.dong2 = t("d2-w", "worker", "dj-sangdo2")

    def setUp(self):
        self.day = today_kst()
        self.today(self.day.isoformat())

    # ---- helpers ----
    def today(self, date):
        r = self.client.request("PUT", "/v1/admin/clock", {"today": date}, token=self.operator)
        self.assertEqual(r.status, 200, r.text)

    def post(self, case, what, body, expect=201, token=None):
        r = self.client.post("/v1/cases/%s/%s" % (case["id"], what), body, token=token or self.worker1)
        self.assertEqual(r.status, expect, r.text)
        return r.json

    def get(self, case, token=None):
        r = self.client.get("/v1/cases/" + case["id"], token=token or self.worker1)
        self.assertEqual(r.status, 200, r.text)
        return r.json

    def meeting(self, case, mtype, decisions=(), expect=201, token=None, held_on=None, roles=("case_worker",)):
        body = {"type": mtype, "case_ids": [case["id"]], "held_on": held_on or self.day.isoformat(),
                "participants": [{"org": case["org"], "role": r} for r in roles], "decisions": list(decisions)}
        r = self.client.post("/v1/meetings", body, token=token or self.worker1)
        self.assertEqual(r.status, expect, r.text)
        return r.json["cases"][0] if expect == 201 else r

    def counseled(self, case_type=None, token=None, household=False, **extra):
        p = self.make_person()
        if household:
            self.make_household(members=[{"person_id": p["id"], "relation": "본인"}])
        c = self.move(self.make_case(p["id"]), "initial_counseling").json
        body = {"domains": {"safety": "퇴거 위기"}, "main_problems": ["safety"], "opinion": "긴급 개입 필요"}
        if case_type:
            body["case_type"] = case_type
        body.update(extra)
        return self.post(c, "counseling", body, token=token)

    def assessed(self, months):
        c = self.advance(self.make_case(self.make_person()["id"]), "assessment")
        c = self.post(c, "assessments", {"kind": "needs", "domains": {"economy": {"note": "생계 곤란"}},
                                         "expected_intervention_months": months})["case"]
        return self.move(c, "selection").json

    def events(self, case, token=None):
        return self.list_all("/v1/cases/%s/events" % case["id"], token or self.worker1)

    # ---- the lead organisation (seed 004) ----
    def test_case_type_hands_the_case_to_its_lead_and_the_integrated_conference_may_change_it(self):
        # I 과정 표 "위기사례 … 수행 기관: 희망복지지원단 등"; II.1 "초기상담을 바탕으로 일반사례,
        # 위기사례로 구분하여 해당 기관이 담당 하도록 분배"
        rec = self.counseled("crisis", household=True)
        self.assertEqual(rec["result"]["lead"]["org"], "dj-hope")
        case = rec["case"]
        self.assertEqual((case["org"], case["lead_org"]), ("dj-sangdo1", "dj-hope"))
        ev = [e for e in self.events(case) if e["type"] == "lead_changed"]
        self.assertEqual((ev[0]["data"]["from"], ev[0]["data"]["to"]), ("dj-sangdo1", "dj-hope"))
        # the lead works the case; the dong that handed it over does not
        err = self.assertError(self.move(case, "intake", expect=422), 422, "guard_refused")
        self.assertIn("주 사례관리기관", err["details"]["reason"])
        case = self.move(case, "intake", token=self.hope).json
        self.assertEqual(case["stage"], "intake")
        # its deadlines are the lead's
        dl = self.client.get("/v1/deadlines", token=self.hope, query={"kind": "plan_due"}).json["items"]
        self.assertIn(case["id"], [d["case_id"] for d in dl])
        dl = self.client.get("/v1/deadlines", token=self.worker1, query={"kind": "plan_due"}).json["items"]
        self.assertNotIn(case["id"], [d["case_id"] for d in dl])
        # I 착안사항 "사례유형별 주 사례기관 선정은, 역할구분(안)과 별개로 통합사례회의 내부 합의를 존중한다"
        r = self.meeting(case, "internal", [{"lead_org": "sangdo-welfare"}], expect=422, token=self.hope)
        self.assertEqual(r.json["error"]["details"]["plugin"], "kr-11590")
        case = self.meeting(case, "integrated", [{"lead_org": "sangdo-welfare", "text": "복지관이 주 사례관리"}],
                            token=self.hope, roles=("case_worker", "expert"))
        self.assertEqual(case["lead_org"], "sangdo-welfare")
        # the new lead sees the case and the person, and works it
        self.assertEqual(self.get(case, token=self.welfare)["lead_org"], "sangdo-welfare")
        self.assertEqual(self.client.get("/v1/persons/" + case["person_id"], token=self.welfare).status, 200)
        case = self.move(case, "assessment", token=self.welfare).json
        self.assertEqual(case["stage"], "assessment")
        listed = self.list_all("/v1/cases", self.welfare)
        self.assertIn(case["id"], [c["id"] for c in listed])
        right = "/v1/orgs/sangdo-welfare/sharing-rights/sw-w"  # its worker's right to use one-screen at all
        self.client.request("PUT", right, {"training_on": "2026-01-10", "pledge_on": "2026-01-10"},
                            token=self.welfare_head)
        self.assertEqual(self.client.post(right + "/approve", token=self.hope_lead).status, 200)
        one = self.client.get("/v1/persons/%s/one-screen" % case["person_id"], token=self.welfare)
        self.assertEqual(one.status, 200, one.text)
        self.assertEqual([c["id"] for c in one.json["cases"]], [case["id"]])
        self.assertEqual(one.json["household"]["members"][0]["person_id"], case["person_id"])
        # the former leads keep seeing it and take part in its conferences (seed 001 II.1:
        # 통합사례회의 (필수) … 해당 읍·면·동 사례관리 담당자), but do not work it
        self.assertEqual(self.get(case)["stage"], "assessment")
        self.assertError(self.move(case, "selection", token=self.hope, expect=422), 422, "guard_refused")
        self.meeting(case, "integrated", [], token=self.worker1)
        # another dong sees none of it
        self.assertError(self.client.get("/v1/cases/" + case["id"], token=self.worker2), 404)
        # a lead that is no organisation of the district is refused
        r = self.meeting(case, "integrated", [{"lead_org": "nowhere"}], expect=422, token=self.welfare)
        self.assertEqual(r.json["error"]["code"], "unknown_org")

    def test_a_specialist_case_goes_to_the_provider_named(self):
        rec = self.counseled("specialist", lead_org="sangdo-welfare")
        self.assertEqual(rec["case"]["lead_org"], "sangdo-welfare")
        r = self.client.post("/v1/cases/%s/counseling" % rec["case"]["id"], {
            "case_type": "specialist", "lead_org": "dj-hope", "domains": {"health": "우울"},
            "main_problems": ["health"], "opinion": "x"}, token=self.welfare)
        self.assertError(r, 422, "validation_failed", field="lead_org")
        general = self.counseled("general")
        self.assertEqual(general["case"]["lead_org"], "dj-sangdo1")

    def test_an_ambiguous_case_is_decided_with_the_district_team(self):
        # II.1 "기타 모호한 대상은 희망복지지원팀과의 사전 협의를 통해 결정"
        case = self.counseled()["case"]
        err = self.assertError(self.move(case, "intake", expect=422), 422, "guard_refused")
        self.assertIn("희망복지지원팀", err["details"]["reason"])
        r = self.client.post("/v1/cases/%s/consultations" % case["id"], {
            "held_on": self.day.isoformat(), "with_org": "dj-sangdo2", "content": "사례 유형 협의"}, token=self.worker1)
        self.assertError(r, 422, "guard_refused")
        rec = self.post(case, "consultations", {"held_on": self.day.isoformat(), "with_org": "dj-hope",
                                               "content": "동 주민센터가 일반사례로 수행", "case_type": "general"})
        self.assertEqual(rec["result"]["case_type"]["id"], "general")
        case = self.move(rec["case"], "intake").json
        self.assertEqual((case["stage"], case["lead_org"]), ("intake", "dj-sangdo1"))
        self.assertError(self.client.post("/v1/cases/%s/consultations" % case["id"], {"held_on": "x"},
                                          token=self.worker1), 400)

    # ---- classes of households (seed 004 II.4) ----
    def test_the_class_rests_on_a_conference_and_each_class_leaves_its_own_way(self):
        # II.4 "사례회의 결과를 바탕으로 대상자 가구를 사례관리, 서비스 연계, 미선정 가구로 구분 - …
        # 개입 기간을 기준으로 1개월 이상 예상 시 사례관리 가구, 1개월 미만 예상 시 서비스 연계 가구로 구분"
        case = self.assessed(0.5)
        err = self.assertError(self.move(case, "planning", expect=422, data={"selection": "case_management"}), 422)
        self.assertIn("사례회의 결과를 바탕으로", err["details"]["reason"])
        r = self.meeting(case, "internal", [{"selection": "case_management", "expected_intervention_months": 0.5}],
                         expect=422)
        self.assertIn("1개월", r.json["error"]["details"]["reason"])
        case = self.meeting(case, "internal", [{"selection": "service_linkage", "expected_intervention_months": 0.5,
                                                "text": "서비스 연계 가구"}])
        self.assertError(self.move(case, "planning", expect=422), 422, "guard_refused")
        self.assertError(self.move(case, "closure", expect=422, data={"reason": "not_selected"}), 422)
        self.assertError(self.move(case, "closure", expect=422, data={"reason": "goal_achieved"}), 422)
        # a service-linkage household closes as linked, with no month's notice and no follow-ups
        done = self.post(case, "closure", {"reason": "service_linkage", "evaluation": "긴급복지 연계 완료"})
        self.assertEqual(done["result"]["reason_label"], "서비스 연계 완료 (서비스 연계 가구)")
        self.assertEqual([d["kind"] for d in done["case"]["due"]], [])
        # a household not selected leaves as such
        other = self.assessed(0)
        other = self.meeting(other, "integrated", [{"selection": "not_selected"}])
        other = self.move(other, "closure", data={"reason": "not_selected"}).json
        self.assertEqual(other["stage"], "closure")

    def test_follow_ups_count_from_the_closure(self):
        # II.8 "종결 후 6개월 단위로 1회씩 2회 실시"
        case = self.advance(self.make_case(self.make_person()["id"]), "monitoring")
        notice = (self.day - datetime.timedelta(days=40)).isoformat()
        case = self.post(case, "closure", {"reason": "goal_achieved", "evaluation": "목표 달성",
                                           "notice_given_on": notice})["case"]
        due = {d["kind"]: d["due_on"] for d in case["due"]}
        self.assertEqual(due["follow_up_1"], add_months(self.day, 6).isoformat())
        self.today((self.day + datetime.timedelta(days=20)).isoformat())
        case = self.move(case, "follow_up").json
        due = {d["kind"]: d["due_on"] for d in case["due"]}
        self.assertEqual((due["follow_up_1"], due["follow_up_2"]),
                         (add_months(self.day, 6).isoformat(), add_months(self.day, 12).isoformat()))

    def test_the_planning_deadline_is_met_by_the_plan_drawn_up(self):
        # III.2 "대상자 접수일로부터 30일내 서비스제공계획 수립"
        case = self.advance(self.make_case(self.make_person()["id"]), "planning")
        self.assertIn("plan_due", [d["kind"] for d in case["due"]])
        plan = self.post(case, "plans", {"goals": [{"term": "short", "text": "체납 공과금 해소", "services": [
            {"type": "cash", "method": "linkage", "content": "긴급지원", "start": "2026-01-01", "end": "2026-03-31"}]}]})
        self.assertEqual(plan["status"], "draft")
        self.assertNotIn("plan_due", [d["kind"] for d in plan["case"]["due"]])

    # ---- conferences (seed 004 II.3, II.7) ----
    def test_solution_conference_after_two_conferences_with_an_expert_supervisor(self):
        # II.3 "사례회의를 2회 이상 진행 후에도 개입이 어렵거나 변화가 없어 전문적 수퍼비전과 지식을
        # 필요로 하는 경우 - 참석대상 : 내부사례회의 참석자, 민간협력기관, 전문 수퍼바이저"
        case = self.advance(self.make_case(self.make_person()["id"]), "delivery")  # one internal conference
        r = self.meeting(case, "solution", roles=("case_worker", "supervisor"), expect=422)
        self.assertIn("2회 이상", r.json["error"]["details"]["reason"])
        case = self.meeting(case, "integrated", roles=("case_worker", "team_lead"))
        r = self.meeting(case, "solution", roles=("case_worker", "team_lead"), expect=422)
        self.assertIn("수퍼바이저", r.json["error"]["details"]["reason"])
        case = self.meeting(case, "solution", roles=("case_worker", "supervisor"))
        self.assertEqual(case["stage"], "delivery")

    def test_a_closure_says_which_conference_decided_it(self):
        # II.7 "가급적 사례회의를 통해 종결여부 및 사후관리 계획 결정"
        notice = (self.day - datetime.timedelta(days=40)).isoformat()
        a = self.advance(self.make_case(self.make_person()["id"]), "monitoring")
        a = self.meeting(a, "closure", [{"closure": True, "text": "목표 달성으로 종결, 6개월 후 사후관리"}])
        rec = self.post(a, "closure", {"reason": "goal_achieved", "evaluation": "목표 달성", "notice_given_on": notice})
        self.assertEqual(rec["result"]["closure_conference"]["type"], "closure")
        b = self.advance(self.make_case(self.make_person()["id"]), "monitoring")
        rec = self.post(b, "closure", {"reason": "goal_achieved", "evaluation": "목표 달성", "notice_given_on": notice})
        self.assertIsNone(rec["result"]["closure_conference"].get("meeting_id"))
        self.assertIn("가급적 사례회의", rec["result"]["closure_conference"]["note"])

    # ---- the person's part in the plan (seed 004 IV) ----
    def test_the_plan_records_participation_and_consent(self):
        # IV 대상자의 권리: "사례관리계획수립에 참여할 권리, 자기결정권, 서비스 동의, 서비스 변경을 요청할 권리"
        case = self.advance(self.make_case(self.make_person()["id"]), "planning")
        body = {"goals": [{"term": "short", "text": "월세 체납 해소", "services": [
            {"type": "cash", "method": "linkage", "content": "긴급복지 생계지원", "start": "2026-01-01",
             "end": "2026-03-31"}]}],
            "participation": {"took_part": True, "how": "가정방문 면담으로 함께 수립", "own_words": "집에서 계속 살고 싶다"},
            "consent": {"given": False, "on": self.day.isoformat(), "by": "self", "note": "도시락 배달 거부"}}
        plan = self.post(case, "plans", body)
        self.assertEqual(plan["data"]["participation"]["own_words"], "집에서 계속 살고 싶다")
        r = self.client.post("/v1/cases/%s/plans/%s/approve" % (case["id"], plan["id"]), token=self.supervisor1)
        err = self.assertError(r, 422, "guard_refused")
        self.assertIn("서비스 동의", err["details"]["reason"])
        body["consent"] = {"given": True, "on": self.day.isoformat(), "by": "self"}
        plan = self.post(case, "plans", body)
        r = self.client.post("/v1/cases/%s/plans/%s/approve" % (case["id"], plan["id"]), token=self.supervisor1)
        self.assertEqual(r.status, 200, r.text)
        plans = self.client.get("/v1/cases/%s/plans" % case["id"], token=self.worker1).json["items"]
        self.assertEqual(plans[-1]["data"]["consent"]["given"], True)
        for bad, field in [({"participation": {"how": "x"}}, "participation"),
                           ({"consent": {"given": "yes"}}, "consent.given"),
                           ({"consent": {"given": True, "by": "cat"}}, "consent.by")]:
            b = dict(body, **bad)
            self.assertError(self.client.post("/v1/cases/%s/plans" % case["id"], b, token=self.worker1), 400,
                             field=field)

    # ---- one-screen (seed 003) ----
    def test_one_screen_periods_by_kind_of_organisation_and_the_heads_approval(self):
        # 원스크린 정보 조회 기간: "< 지자체 > 별도의 조회가능 기간 제한은 없으며" / "< 사회서비스
        # 제공기관 > … 최대 3개월까지 조회 가능"; 정보공유 절차: "사회서비스 제공기관의 장에게 대상자의
        # 정보조회 승인 결재를 받으면, 조회가능 기간동안 권한에 따라 정보조회 가능"
        p = self.make_person(name="원스크린대상")
        until = (self.day + datetime.timedelta(days=10)).isoformat()
        consent = self.client.post("/v1/persons/%s/consents" % p["id"], {
            "purpose": "case_management", "scope": ["dj-sangdo2", "sangdo-welfare"], "valid_until": until},
            token=self.worker1).json
        url = "/v1/persons/%s/one-screen" % p["id"]
        right = "/v1/orgs/sangdo-welfare/sharing-rights/sw-w"
        self.client.request("PUT", right, {"training_on": "2026-01-10", "pledge_on": "2026-01-10"},
                            token=self.welfare_head)
        self.assertEqual(self.client.post(right + "/approve", token=self.hope_lead).status, 200)
        self.assertEqual(self.client.get(url, token=self.dong2).status, 200)
        self.assertError(self.client.get(url, token=self.welfare), 403, "lookup_approval_required")
        # only the head approves, under a valid consent naming the provider
        ap = "/v1/persons/%s/lookup-approvals" % p["id"]
        self.assertError(self.client.post(ap, {"user": "sw-w", "consent_id": consent["id"]}, token=self.welfare), 403)
        self.assertError(self.client.post(ap, {"user": "sw-w", "consent_id": "cns_nope"}, token=self.welfare_head),
                         422, "consent_invalid")
        r = self.client.post(ap, {"user": "sw-w", "consent_id": consent["id"]}, token=self.welfare_head)
        self.assertEqual(r.status, 201, r.text)
        self.assertEqual((r.json["user"], r.json["approved_by"]), ("sw-w", "sw-head"))
        self.assertEqual(self.client.get(ap, token=self.welfare).json["items"][0]["id"], r.json["id"])
        r = self.client.get(url, token=self.welfare)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual((r.json["person"]["name"], r.json["consent_id"]), ("원스크린대상", consent["id"]))
        # after the period the person wrote on the form: the provider must ask again, the dong need not
        self.today((self.day + datetime.timedelta(days=11)).isoformat())
        self.assertError(self.client.get(url, token=self.welfare), 403, "consent_required")
        self.assertEqual(self.client.get(url, token=self.dong2).status, 200)
        self.assertError(self.client.post(ap, {"user": "x", "consent_id": consent["id"]}, token=self.hope_lead), 409,
                         "not_needed")

    # ---- the government-wide referral (seed 001 부록3) ----
    def test_phone_first_contact_then_the_answer_then_the_closure_reach_the_agency(self):
        # "(지자체 역할) 서비스 의뢰 건에 대해 가능한 14일 이내 유선연락 후 의뢰접수처리"
        self.mock.call("POST", "/_reset")
        r = self.client.post("/v1/referrals", {
            "person": {"name": "정순례", "birth_date": "1950-04-05", "sex": "F"}, "dong_code": DONG_CODE,
            "region": REGION, "reason": "생계 곤란", "opinion": "긴급복지 검토", "agency_ref": "NPS-7"},
            token=self.pension)
        self.assertEqual(r.status, 201, r.text)
        ref = r.json
        self.assertEqual((ref["first_contact"], ref["contacts"]), (None, []))
        url = "/v1/referrals/%s/contacts" % ref["id"]
        r = self.client.post(url, {"contacted_on": self.day.isoformat(), "method": "phone", "reached": False,
                                   "note": "부재중"}, token=self.dong2)
        self.assertEqual(r.status, 201, r.text)
        self.assertIsNone(r.json["first_contact"])
        dl = self.client.get("/v1/deadlines", token=self.dong2, query={"kind": "first_contact"}).json["items"]
        self.assertIn(ref["id"], [d["referral_id"] for d in dl])
        r = self.client.post(url, {"contacted_on": self.day.isoformat(), "method": "phone", "reached": True,
                                   "note": "생계비 지원 희망"}, token=self.dong2)
        self.assertEqual(r.status, 201, r.text)
        self.assertEqual((r.json["first_contact"]["method"], len(r.json["contacts"])), ("phone", 2))
        dl = self.client.get("/v1/deadlines", token=self.dong2, query={"kind": "first_contact"}).json["items"]
        self.assertNotIn(ref["id"], [d["referral_id"] for d in dl])
        self.assertError(self.client.post(url, {"contacted_on": self.day.isoformat(), "method": "fax",
                                                "reached": True}, token=self.dong2), 400, field="method")
        self.assertError(self.client.post(url, {"contacted_on": self.day.isoformat(), "method": "phone",
                                                "reached": True}, token=self.pension), 403)
        # then the answer (접수) opens the case; after it no more contacts
        r = self.client.post("/v1/referrals/%s/accept" % ref["id"], {"program": "integrated", "note": "접수"},
                             token=self.dong2)
        self.assertEqual(r.status, 200, r.text)
        case = r.json["case"]
        self.assertError(self.client.post(url, {"contacted_on": self.day.isoformat(), "method": "phone",
                                                "reached": True}, token=self.dong2), 409, "referral_answered")
        # the case closes: closed_at on the referral, and 완료 with its time to the agency
        c = self.client.post("/v1/cases/%s/transitions" % case["id"],
                             {"to": "closure", "version": case["version"], "data": {"reason": "moved"}},
                             token=self.dong2)
        self.assertEqual(c.status, 200, c.text)
        got = self.client.get("/v1/referrals/" + ref["id"], token=self.dong2).json
        self.assertIsNotNone(got["closed_at"])
        msgs = wait_until(lambda: (lambda m: m if len(m) >= 3 else None)(
            [x["body"] for x in self.mock.state()["received"] if x["body"].get("referral_id") == ref["id"]]),
            what="the agency's messages")
        self.assertEqual([m.get("stage") for m in msgs if m["type"] == "referral_progress"], ["first_contact", "closure"])
        self.assertEqual(msgs[0]["contacted_on"], self.day.isoformat())
        last = msgs[-1]
        self.assertEqual((last["stage"], last["result"]), ("closure", "완료"))
        self.assertEqual(last["closed_at"], got["closed_at"])

    # ---- programs describe themselves ----
    def test_programs_describe_their_facts_instruments_reasons_and_case_types(self):
        r = self.client.get("/v1/programs/elderly_care", token=self.worker1)
        self.assertEqual(r.status, 200, r.text)
        facts = {f["key"]: f["meaning"] for f in r.json["eligibility"]["facts"]}
        self.assertTrue(r.json["eligibility"]["rules"])
        self.assertIn("장기요양", facts["ltc_grade"])
        self.assertIn("basic_pension", facts)
        r = self.client.get("/v1/programs/integrated", token=self.worker1, query={"region": REGION})
        p = r.json
        self.assertEqual({i["id"] for i in p["instruments"]}, {"needs", "crisis"})
        crisis = next(i for i in p["instruments"] if i["id"] == "crisis")
        self.assertEqual(crisis["scale"], {"min": 1, "max": 3})
        reasons = {x["id"]: x["label"] for x in p["closure_reasons"]}
        self.assertIn("service_linkage", reasons)
        self.assertEqual(reasons["death"], "사망")
        types = {x["id"]: x["lead"] for x in p["case_types"]}
        self.assertEqual(types, {"general": "emd", "specialist": "provider", "crisis": "district"})
        self.assertIn("counseling", {x["kind"] for x in p["records"]})
        self.assertEqual(p["waitlist"]["priority_plugins"], ["kr-11590"])
        # seed 003's overview: 자산형성 is folded into 자활 사례관리, and says why
        items = self.client.get("/v1/programs", token=self.worker1).json["items"]
        covered = {c["name"]: (p["id"], c["why"]) for p in items for c in p["covers"]}
        self.assertEqual(covered["자산형성"][0], "self_sufficiency")
        self.assertIn("IAP", covered["자산형성"][1])
        self.assertEqual(covered["중독관리통합지원 (중독사례관리)"][0], "mental_health")


if __name__ == "__main__":
    unittest.main()
