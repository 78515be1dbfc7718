"""Integrated case management end to end, as Dongjak-gu runs it (seed 004),
over HTTP with a controllable business date (clock.adjustable = on; the
tests move the date, never sleep)."""
import re
import threading
import unittest

from harness import ApiTest, Server


class CaseworkTest(ApiTest):
    server_env = {"SARYE_CLOCK_ADJUSTABLE": "on"}

    # ---- helpers ----
    def today(self, date):
        r = self.client.request("PUT", "/v1/admin/clock", {"today": date}, token=self.operator)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json["today"], date)

    def post(self, case, what, body, expect=201, token=None):
        r = self.client.post("/v1/cases/%s/%s" % (case["id"], what), body, token=token or self.worker1)
        self.assertEqual(r.status, expect, r.text)
        return r.json

    def due(self, case):
        c = self.client.get("/v1/cases/" + case["id"], token=self.worker1).json
        return {d["kind"]: d for d in c["due"]}

    def fresh_case(self, **kw):
        p = self.make_person()
        return self.make_case(p["id"], **kw)

    def plan_body(self, text="체납 공과금 해소와 주거 안정", start="2026-03-23", end="2026-08-31"):
        return {"goals": [
            {"term": "short", "text": text, "services": [
                {"type": "cash", "method": "linkage", "content": "긴급복지 생계지원", "provider": "동작구청",
                 "start": start, "end": end},
                {"type": "goods", "method": "direct", "content": "밑반찬 지원 (주 1회)", "provider": "상도종합사회복지관",
                 "start": start, "end": end}]},
            {"term": "long", "text": "안정적 일자리 유지", "start": start, "end": "2027-03-31", "services": [
                {"type": "service", "method": "referral", "content": "고용복지플러스센터 취업상담",
                 "start": start, "end": "2027-03-31"}]}]}

    # ---- the seed, start to end ----
    def test_dongjak_flow_from_outreach_to_ended(self):
        self.today("2026-03-02")
        mother = self.make_person(name="박순자", birth_date="1978-05-09", sex="F", address="서울특별시 동작구 상도동")
        child = self.make_person(name="박하늘", birth_date="2015-11-20", sex="F")
        hh = self.make_household(members=[{"person_id": mother["id"], "relation": "본인"},
                                          {"person_id": child["id"], "relation": "자녀"}])
        # 발굴: the 찾아가는 보건복지전담팀 finds the household
        case = self.make_case(mother["id"], source="outreach")
        self.assertEqual(case["stage_label"], "대상자 발굴")
        case = self.move(case, "initial_counseling").json
        # 초기상담: required content, top-2 problems, opinion, case type
        rec = self.post(case, "counseling", {
            "case_type": "crisis", "household": "모녀 2인 가구", "housing": "월세 6개월 체납",
            "family": "이혼 후 연락 두절된 배우자", "health": "우울감 호소",
            "domains": {"economy": "실직 후 소득 없음", "health": "우울감", "safety": "퇴거 위기"},
            "main_problems": ["economy", "safety"], "current_services": ["아동수당"],
            "opinion": "퇴거 위기 가구로 긴급 개입 필요"})
        self.assertEqual(rec["result"]["case_type"], {"id": "crisis", "label": "위기사례", "lead": "district"})
        case = rec["case"]  # every record bumps the case's version
        # 접수: the plan is due in 30 days
        case = self.move(case, "intake").json
        self.assertEqual(self.due(case)["plan_due"]["due_on"], "2026-04-01")
        case = self.move(case, "assessment").json
        # 욕구 및 위기도 조사
        needs = self.post(case, "assessments", {"kind": "needs", "domains": {
            "economy": {"note": "생계비 부족"}, "health": {"note": "정신건강 상담 필요"}},
            "expected_intervention_months": 6})
        self.assertEqual(needs["result"]["recommendation"]["selection"], "case_management")
        case = needs["case"]
        crisis = self.post(case, "assessments", {"kind": "crisis", "domains": {
            "economy": {"score": 3, "note": "퇴거 통보"}, "health": {"score": 2}, "safety": {"score": 2}}})
        rec = crisis["result"]["recommendation"]
        self.assertEqual(rec["selection"], "case_management")
        self.assertIn("동작구", rec["reasons"][0])
        self.assertIn("economy", rec["reasons"][0])
        case = self.move(crisis["case"], "selection").json
        # 내부 사례회의 (day 10) decides case management
        self.today("2026-03-12")
        r = self.client.post("/v1/meetings", {
            "type": "internal", "case_ids": [case["id"]], "held_on": "2026-03-12",
            "participants": [{"org": "dj-sangdo1", "role": "case_worker"}, {"org": "dj-sangdo1", "role": "team_lead"}],
            "decisions": [{"case_id": case["id"], "selection": "case_management", "text": "사례관리 가구로 선정"}]},
            token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        self.assertEqual([c["version"] for c in r.json["cases"]], [case["version"] + 1])
        case = self.move(r.json["cases"][0], "planning", data={"selection": "case_management"}).json
        # day 20: the plan, approved by the team lead
        self.today("2026-03-22")
        plan = self.post(case, "plans", self.plan_body())
        self.assertEqual(plan["status"], "draft")
        case = plan["case"]
        self.assertError(self.move(case, "delivery", expect=422), 422, "guard_refused")
        r = self.client.post("/v1/cases/%s/plans/%s/approve" % (case["id"], plan["id"]), token=self.supervisor1)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual((r.json["status"], r.json["decided_by"]), ("approved", "supervisor1"))
        case = self.move(r.json["case"], "delivery").json
        self.assertNotIn("plan_due", self.due(case))
        # services and checks
        case = self.post(case, "services", {"date": "2026-03-25", "provider": "동작구청",
                                            "content": "긴급복지 생계지원 1개월분"})["case"]
        case = self.post(case, "checks", {"date": "2026-04-20", "with": "대상자", "content": "퇴거 위기 해소, 구직 중"})["case"]
        case = self.move(case, "monitoring", data={"planned_closure_on": "2026-09-30"}).json
        self.assertEqual(self.due(case)["closure_notice"]["due_on"], "2026-08-30")
        # closure with one month's notice
        self.today("2026-09-30")
        self.assertIn("closure_notice", self.due(case))
        r = self.client.get("/v1/deadlines", token=self.worker1, query={"kind": "closure_notice"})
        item = next(d for d in r.json["items"] if d["case_id"] == case["id"])
        self.assertTrue(item["overdue"])
        closure = self.post(case, "closure", {"reason": "goal_achieved", "evaluation": "단기목표 달성, 취업 유지",
                                              "notice_given_on": "2026-08-25"})
        case = closure["case"]
        self.assertEqual((case["stage"], case["status"]), ("closure", "open"))
        self.assertEqual(closure["result"]["reason_label"], "목표달성")
        self.assertNotIn("closure_notice", self.due(case))
        case = self.move(case, "follow_up").json
        due = self.due(case)
        self.assertEqual((due["follow_up_1"]["due_on"], due["follow_up_2"]["due_on"]), ("2027-03-30", "2027-09-30"))
        # two follow-ups, six months apart, with a satisfaction score
        self.today("2027-03-30")
        f1 = self.post(case, "follow-ups", {"date": "2027-03-30", "content": "취업 유지, 체납 없음", "satisfaction": 4})
        self.assertEqual(f1["case"]["status"], "follow_up")
        self.assertEqual([d["kind"] for d in f1["case"]["due"]], ["follow_up_2"])
        self.today("2027-09-30")
        f2 = self.post(case, "follow-ups", {"date": "2027-09-30", "content": "안정적 생활", "satisfaction": 5})
        self.assertEqual(f2["case"]["status"], "ended")
        self.assertEqual(f2["case"]["due"], [])
        # the history tells the story
        ev = self.list_all("/v1/cases/%s/events" % case["id"], self.worker1)
        kinds = [e["data"].get("kind") for e in ev if e["type"] == "record"]
        self.assertEqual(kinds, ["counseling", "assessment", "assessment", "plan", "service", "check", "closure",
                                 "follow_up", "follow_up"])
        self.assertIn("meeting", [e["type"] for e in ev])
        self.assertIn("plan_approved", [e["type"] for e in ev])
        self.assertEqual(ev[-1]["type"], "ended")
        # one screen: person, household, the case with its plan and services
        r = self.client.get("/v1/persons/%s/one-screen" % mother["id"], token=self.worker1)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json["person"]["name"], "박순자")
        self.assertEqual(r.json["household"]["id"], hh["id"])
        self.assertEqual({m["name"] for m in r.json["household"]["members"]}, {"박순자", "박하늘"})
        one = r.json["cases"][0]
        self.assertEqual((one["id"], one["status"]), (case["id"], "ended"))
        self.assertEqual([p["status"] for p in one["plans"]], ["approved"])
        self.assertEqual(len(one["services"]), 1)

    def test_plan_not_approved_by_day_30_is_overdue(self):
        self.today("2026-05-01")
        c = self.advance(self.fresh_case(), "intake")
        self.assertFalse(self.due(c)["plan_due"]["overdue"])
        self.today("2026-06-01")
        d = self.due(c)["plan_due"]
        self.assertEqual(d["due_on"], "2026-05-31")
        self.assertTrue(d["overdue"])
        r = self.client.get("/v1/deadlines", token=self.worker1, query={"kind": "plan_due", "due_before": "2026-06-01"})
        mine = [x for x in r.json["items"] if x["case_id"] == c["id"]]
        self.assertEqual(len(mine), 1)
        self.assertTrue(mine[0]["overdue"])
        self.assertEqual(mine[0]["plugin"], "kr-11590")
        r = self.client.get("/v1/cases", token=self.worker1, query={"overdue": "true", "limit": 500})
        self.assertIn(c["id"], [x["id"] for x in r.json["items"]])
        metrics = self.client.get("/metrics").text
        m = re.search(r'^sarye_deadlines_overdue\{kind="plan_due"\} (\d+)', metrics, re.M)
        self.assertTrue(m and int(m.group(1)) >= 1, metrics[-800:])
        # another org sees none of it
        r = self.client.get("/v1/deadlines", token=self.worker2, query={"kind": "plan_due"})
        self.assertNotIn(c["id"], [x["case_id"] for x in r.json["items"]])

    def test_deadlines_list_is_ordered_and_pages(self):
        oid, tok, sup = self.make_org_with_staff()
        self.today("2026-01-10")
        for day in ("2026-01-10", "2026-01-05", "2026-01-20"):
            self.today(day)
            p = self.make_person(token=tok)
            self.advance(self.make_case(p["id"], token=tok), "intake", token=tok, supervisor=sup)
        items = self.list_all("/v1/deadlines", tok, limit=1)
        self.assertEqual([d["due_on"] for d in items], ["2026-02-04", "2026-02-09", "2026-02-19"])
        self.assertError(self.client.get("/v1/deadlines", token=tok, query={"due_before": "soon"}), 400)

    def test_refusal_closure_needs_no_notice(self):
        self.today("2026-04-01")
        c = self.advance(self.fresh_case(), "delivery")
        r = self.client.post("/v1/cases/%s/closure" % c["id"], {"reason": "goal_achieved", "evaluation": "목표 달성"},
                             token=self.worker1)
        err = self.assertError(r, 422, "guard_refused")
        self.assertEqual(err["details"]["plugin"], "kr-11590")
        self.assertEqual(self.client.get("/v1/cases/" + c["id"], token=self.worker1).json["stage"], "delivery")
        closed = self.post(c, "closure", {"reason": "refused", "evaluation": "서비스 거부 의사 표명"})
        self.assertEqual(closed["case"]["stage"], "closure")
        self.assertEqual(closed["result"]["reason_label"], "거부")

    def test_reassessment_loop_keeps_history(self):
        self.today("2026-04-01")
        c = self.advance(self.fresh_case(), "monitoring")
        r = self.post(c, "checks", {"date": "2026-04-02", "with": "대상자", "content": "새로운 건강 문제",
                                    "needs_reassessment": True})
        self.assertEqual(r["case"]["stage"], "assessment")
        c = r["case"]
        c = self.post(c, "assessments", {"kind": "crisis", "domains": {"health": {"score": 3}}})["case"]
        c = self.move(c, "selection").json
        ev = self.list_all("/v1/cases/%s/events" % c["id"], self.worker1)
        moves = [(e["from"], e["to"]) for e in ev if e["type"] == "transition"]
        self.assertIn(("monitoring", "assessment"), moves)
        self.assertEqual(moves.count(("assessment", "selection")), 2)
        plans = self.client.get("/v1/cases/%s/plans" % c["id"], token=self.worker1).json["items"]
        self.assertEqual([p["status"] for p in plans], ["approved"])

    def test_plan_revision_supersedes(self):
        self.today("2026-04-01")
        c = self.advance(self.fresh_case(), "delivery")
        c = self.move(c, "monitoring").json
        c = self.move(c, "planning").json
        p2 = self.post(c, "plans", self.plan_body(text="주거 이전과 체납 해소"))
        r = self.client.post("/v1/cases/%s/plans/%s/approve" % (c["id"], p2["id"]), token=self.supervisor1)
        self.assertEqual(r.status, 200, r.text)
        plans = self.client.get("/v1/cases/%s/plans" % c["id"], token=self.worker1).json["items"]
        self.assertEqual([p["status"] for p in plans], ["superseded", "approved"])
        r = self.client.post("/v1/cases/%s/plans/%s/approve" % (c["id"], p2["id"]), token=self.supervisor1)
        self.assertError(r, 409, "plan_not_draft")

    def test_reopen_from_follow_up(self):
        self.today("2026-04-01")
        c = self.advance(self.fresh_case(), "intake")
        c = self.post(c, "closure", {"reason": "moved", "evaluation": "타 지역 전출"})["case"]
        c = self.move(c, "follow_up").json
        self.today("2026-07-01")
        c = self.move(c, "assessment", reopen=True).json
        self.assertEqual((c["stage"], c["status"]), ("assessment", "open"))
        self.assertEqual(self.due(c), {}, "reopening leaves no follow-up due")
        ev = self.list_all("/v1/cases/%s/events" % c["id"], self.worker1)
        self.assertEqual(ev[-1]["type"], "reopened")

    def test_solution_conference_after_two_without_plan_change(self):
        self.today("2026-04-01")
        c = self.advance(self.fresh_case(), "delivery")
        meet = {"type": "integrated", "case_ids": [c["id"]],
                "participants": [{"org": "dj-sangdo1", "role": "case_worker"}, {"org": "sangdo-welfare", "role": "expert"}]}
        for day in ("2026-05-01", "2026-06-01"):
            self.today(day)
            r = self.client.post("/v1/meetings", dict(meet, held_on=day), token=self.worker1)
            self.assertEqual(r.status, 201, r.text)
        d = self.due(c)
        self.assertEqual(d["solution_conference"]["due_on"], "2026-06-15")
        r = self.client.post("/v1/meetings", dict(meet, type="solution", held_on="2026-06-10"), token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        self.assertNotIn("solution_conference", self.due(c))

    def test_every_guard_refusal_has_its_reason(self):
        self.today("2026-04-01")
        c = self.advance(self.fresh_case(), "assessment")
        err = self.assertError(self.move(c, "selection", expect=422), 422, "guard_refused")
        self.assertEqual(err["details"]["plugin"], "integrated")
        self.assertIn("조사", err["details"]["reason"])
        # counseling misses what the program requires
        r = self.client.post("/v1/cases/%s/counseling" % c["id"], {"case_type": "general"}, token=self.worker1)
        err = self.assertError(r, 422, "validation_failed")
        self.assertEqual(err["details"]["plugin"], "integrated")
        r = self.client.post("/v1/cases/%s/counseling" % c["id"], {"case_type": "urgent"}, token=self.worker1)
        self.assertError(r, 400, field="case_type")
        # assessment instruments
        r = self.client.post("/v1/cases/%s/assessments" % c["id"], {"kind": "crisis", "domains": {"economy": {"score": 4}}},
                             token=self.worker1)
        self.assertError(r, 422, "validation_failed", field="domains.economy.score")
        r = self.client.post("/v1/cases/%s/assessments" % c["id"], {"kind": "mood", "domains": {"economy": {}}},
                             token=self.worker1)
        err = self.assertError(r, 422, "validation_failed", field="kind")
        self.assertEqual(err["details"]["allowed"], ["crisis", "needs"])
        # plans: vague goals, wrong terms
        c = self.advance(c, "planning")
        r = self.client.post("/v1/cases/%s/plans" % c["id"], {"goals": [{"term": "short", "text": "삶의 질 향상"}]},
                             token=self.worker1)
        err = self.assertError(r, 422, "guard_refused")
        self.assertIn("모호", err["details"]["reason"])
        r = self.client.post("/v1/cases/%s/plans" % c["id"], {"goals": [{"term": "long", "text": "구직",
                             "start": "2026-04-01", "end": "2026-05-01"}]}, token=self.worker1)
        self.assertIn("장기목표", self.assertError(r, 422, "guard_refused")["details"]["reason"])
        r = self.client.post("/v1/cases/%s/plans" % c["id"], {"goals": [{"term": "medium", "text": "구직"}]},
                             token=self.worker1)
        self.assertError(r, 400, field="goals[0].term")
        r = self.client.post("/v1/cases/%s/plans" % c["id"], {"goals": [{"term": "short", "text": "구직", "services": [
            {"type": "x", "method": "y", "content": "z", "start": "2026-05-01", "end": "2026-04-01"}]}]},
            token=self.worker1)
        self.assertError(r, 400, field="goals[0].services[0].end")
        # approval is a supervisor's
        plan = self.post(c, "plans", self.plan_body())
        r = self.client.post("/v1/cases/%s/plans/%s/approve" % (c["id"], plan["id"]), token=self.worker1)
        self.assertError(r, 403)
        # follow-ups belong after closure
        r = self.client.post("/v1/cases/%s/follow-ups" % c["id"], {"date": "2026-04-01", "content": "x", "satisfaction": 3},
                             token=self.worker1)
        self.assertEqual(self.assertError(r, 422, "guard_refused")["details"]["plugin"], "kr-11590")
        r = self.client.post("/v1/cases/%s/follow-ups" % c["id"], {"date": "2026-04-01", "content": "x", "satisfaction": 9},
                             token=self.worker1)
        self.assertError(r, 400, field="satisfaction")
        # closure reasons come from the program
        r = self.client.post("/v1/cases/%s/closure" % c["id"], {"reason": "bored", "evaluation": "x"}, token=self.worker1)
        err = self.assertError(r, 422, "validation_failed", field="reason")
        self.assertIn("goal_achieved", err["details"]["allowed"])
        # nothing of the refused work was written
        kinds = [x["kind"] for x in self.client.get("/v1/cases/%s/records" % c["id"], token=self.worker1).json["items"]]
        self.assertEqual(kinds, ["assessment", "plan"])

    def test_conference_attendance_rules(self):
        self.today("2026-04-01")
        c = self.fresh_case()
        body = {"type": "integrated", "case_ids": [c["id"]], "held_on": "2026-04-01",
                "participants": [{"org": "dj-sangdo1", "role": "case_worker"}]}
        r = self.client.post("/v1/meetings", dict(body, written=True), token=self.worker1)
        self.assertIn("서면", self.assertError(r, 422, "guard_refused")["details"]["reason"])
        r = self.client.post("/v1/meetings", dict(body, decisions=[{"topic": "admission_discharge", "text": "퇴원 결정"}]),
                             token=self.worker1)
        self.assertIn("의료급여관리사", self.assertError(r, 422, "guard_refused")["details"]["reason"])
        ok = dict(body, decisions=[{"topic": "admission_discharge", "text": "퇴원 결정"}],
                  participants=body["participants"] + [{"org": "dongjak-gu", "role": "medical_aid_manager"}])
        self.assertEqual(self.client.post("/v1/meetings", ok, token=self.worker1).status, 201)

    def test_records_on_other_orgs_and_ended_cases(self):
        self.today("2026-04-01")
        c = self.fresh_case()
        r = self.client.post("/v1/cases/%s/checks" % c["id"], {"date": "2026-04-01", "with": "x", "content": "y"},
                             token=self.worker2)
        self.assertError(r, 404)
        r = self.client.post("/v1/meetings", {"type": "internal", "case_ids": [c["id"]], "held_on": "2026-04-01",
                                              "participants": [{"org": "x", "role": "y"}]}, token=self.worker2)
        self.assertError(r, 422, "unknown_case", field="case_ids[0]")
        self.assertError(self.client.get("/v1/persons/%s/one-screen" % c["person_id"], token=self.worker2), 404,
                         "not_found")
        c = self.post(c, "closure", {"reason": "death", "evaluation": "사망"})["case"]
        c = self.move(c, "end").json
        r = self.client.post("/v1/cases/%s/checks" % c["id"], {"date": "2026-04-01", "with": "x", "content": "y"},
                             token=self.worker1)
        self.assertError(r, 409, "case_ended")

    def test_concurrent_records_each_written_once(self):
        """Records posted at once on one case: each decided on a version a
        sibling may have bumped, so their units fail in their batch and run
        again (a batch is rolled back and rerun when one of its units fails).
        Whatever wins, every record answered 201 is there exactly once with
        its event, the version counts exactly those, and a record refused
        left nothing. Five rounds: a round may see no rerun at all."""
        for _ in range(5):
            self.concurrent_records_round()

    def concurrent_records_round(self):
        case = self.fresh_case()
        case = self.move(case, "initial_counseling").json
        v0 = case["version"]
        results = []

        def go(i):
            cl = self.new_client()
            r = cl.post("/v1/cases/%s/counseling" % case["id"], {
                "case_type": "general", "household": "1인 가구 %d" % i, "housing": "월세",
                "domains": {"economy": "실직"}, "main_problems": ["economy"], "opinion": "동시 상담 %d" % i},
                token=self.worker1)
            results.append((r.status, r.json))
            cl.close()
        ts = [threading.Thread(target=go, args=(i,)) for i in range(10)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        made = [body for status, body in results if status == 201]
        for status, body in results:
            self.assertIn(status, (201, 409, 412), body)
        self.assertGreaterEqual(len(made), 1)
        records = self.client.get("/v1/cases/%s/records" % case["id"], token=self.worker1,
                                  query={"limit": 100}).json["items"]
        mine = [r for r in records if r["kind"] == "counseling"]
        self.assertEqual(sorted(r["id"] for r in mine), sorted(b["id"] for b in made))
        self.assertEqual(sorted(r["data"]["household"] for r in mine), sorted(b["data"]["household"] for b in made))
        events = self.client.get("/v1/cases/%s/events" % case["id"], token=self.worker1,
                                 query={"limit": 100}).json["items"]
        self.assertEqual(sorted(e["data"]["record_id"] for e in events if e["type"] == "record"),
                         sorted(b["id"] for b in made))
        now = self.client.get("/v1/cases/" + case["id"], token=self.worker1).json
        self.assertEqual(now["version"], v0 + len(made))


class ClockTest(ApiTest):
    def test_clock_is_fixed_unless_configured(self):
        r = self.client.request("PUT", "/v1/admin/clock", {"today": "2030-01-01"}, token=self.operator)
        self.assertError(r, 403, "clock_not_adjustable")
        r = self.client.get("/v1/admin/clock", token=self.operator)
        self.assertEqual(r.json["offset_days"], 0)
        # every role reads the business date (deadlines are counted from it); only an operator moves it
        r = self.client.get("/v1/admin/clock", token=self.worker1)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json["offset_days"], 0)
        r = self.client.request("PUT", "/v1/admin/clock", {"today": "2030-01-01"}, token=self.admin1)
        self.assertError(r, 403, "forbidden")


if __name__ == "__main__":
    unittest.main()
