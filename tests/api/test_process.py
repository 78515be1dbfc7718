"""The standard process over HTTP: transitions, core invariants, program and
region rules (integrated + Dongjak-gu kr-11590), events and deadlines, and
the programs endpoints."""
import datetime
import threading
import unittest

from harness import ApiTest, today_kst


def add_months(d, n):
    y, m = divmod(d.month - 1 + n, 12)
    y += d.year
    m += 1
    day = d.day
    while True:
        try:
            return datetime.date(y, m, day)
        except ValueError:
            day -= 1


class ProcessTest(ApiTest):
    def new_case(self, token=None):
        p = self.make_person(token=token)
        return self.make_case(p["id"], token=token)

    def walk(self, case, stages, **extra):
        for s in stages:
            data = extra.get(s)
            r = self.move(case, s, **({"data": data} if data else {}))
            case = r.json
        return case

    def test_opens_in_the_programs_first_stage_with_its_label(self):
        c = self.new_case()
        self.assertEqual(c["stage"], "discovery")
        self.assertEqual(c["stage_label"], "대상자 발굴")
        self.assertEqual(c["status"], "open")
        self.assertEqual(c["version"], 1)
        self.assertEqual(c["region"], "11590")
        self.assertEqual(len(c["plugin_generation"]), 16)
        self.assertEqual(c["due"], [])

    def test_full_walk_from_discovery_to_end_with_events(self):
        c = self.new_case()
        notice = (today_kst() - datetime.timedelta(days=40)).isoformat()
        c = self.advance(c, "planning")
        self.assertEqual(c["stage_label"], "서비스 제공계획 수립")
        c = self.advance(c, "monitoring")
        self.assertEqual(c["stage_label"], "서비스 제공 및 점검")
        c = self.move(c, "closure", data={"reason": "goal_achieved", "notice_given_on": notice},
                      note="목표 달성으로 종결").json
        self.assertEqual(c["status"], "open")
        c = self.move(c, "follow_up").json
        self.assertEqual(c["status"], "follow_up")
        c = self.move(c, "end").json
        self.assertEqual(c["status"], "ended")
        self.assertEqual(c["stage"], "follow_up")
        self.assertEqual(c["due"], [], "an ended case has nothing due")
        r = self.client.get("/v1/cases/%s/events" % c["id"], token=self.worker1)
        self.assertEqual(r.status, 200)
        ev = r.json["items"]
        ev = [e for e in ev if e["type"] not in ("record", "plan_approved", "meeting")]
        self.assertEqual([e["type"] for e in ev],
                         ["opened"] + ["transition"] * 9 + ["ended"])
        self.assertEqual(sorted(e["seq"] for e in ev), [e["seq"] for e in ev])
        self.assertEqual(ev[8]["to"], "closure")
        self.assertEqual(ev[8]["from"], "monitoring")
        self.assertEqual(ev[8]["note"], "목표 달성으로 종결")
        self.assertEqual(ev[8]["data"]["reason"], "goal_achieved")
        self.assertEqual(ev[8]["actor"], "worker1")
        for e in ev:
            self.assertEqual(e["plugin_generation"], c["plugin_generation"])

    def test_transition_not_allowed_lists_allowed(self):
        c = self.new_case()
        r = self.move(c, "planning", expect=409)
        err = self.assertError(r, 409, "transition_not_allowed")
        self.assertEqual(err["details"]["allowed"], ["initial_counseling", "closure"])
        self.assertEqual(self.client.get("/v1/cases/" + c["id"], token=self.worker1).json["version"], 1)

    def test_stale_version_is_412_and_changes_nothing(self):
        c = self.new_case()
        self.move(c, "initial_counseling")
        r = self.move(c, "intake", expect=412)
        self.assertError(r, 412, "version_mismatch")
        now = self.client.get("/v1/cases/" + c["id"], token=self.worker1).json
        self.assertEqual((now["stage"], now["version"]), ("initial_counseling", 2))

    def test_concurrent_transitions_one_wins(self):
        c = self.new_case()
        results = []

        def go():
            cl = self.new_client()
            r = cl.post("/v1/cases/%s/transitions" % c["id"], {"to": "initial_counseling", "version": 1},
                        token=self.worker1)
            results.append((r.status, r.json))
            cl.close()
        ts = [threading.Thread(target=go) for _ in range(8)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        self.assertEqual(sorted(s for s, _ in results), [200] + [412] * 7)
        # Whether a loser found the case moved when deciding or only when
        # its write was applied, it is told the version the case is at.
        for status, body in results:
            if status == 412:
                self.assertEqual(body["error"]["code"], "version_mismatch")
                self.assertEqual(body["error"]["details"]["version"], 2)
        ev = self.client.get("/v1/cases/%s/events" % c["id"], token=self.worker1).json["items"]
        self.assertEqual(len(ev), 2)

    def test_unknown_stage_is_400(self):
        c = self.new_case()
        r = self.move(c, "nowhere", expect=400)
        err = self.assertError(r, 400, "validation_failed", field="to")
        self.assertIn("discovery", err["details"]["allowed"])

    def test_closure_needs_a_reason(self):
        c = self.new_case()
        r = self.move(c, "closure", expect=422)
        err = self.assertError(r, 422, "reason_required")
        self.assertEqual(err["details"]["plugin"], "core")

    def test_guard_refusal_names_plugin_and_reason(self):
        c = self.advance(self.new_case(), "selection")
        r = self.move(c, "planning", expect=422, data={"selection": "service_linkage"})
        err = self.assertError(r, 422, "guard_refused")
        self.assertEqual(err["details"]["plugin"], "integrated")
        self.assertRegex(err["details"]["version"], r"^\d+\.\d+\.\d+$")
        self.assertIn("사례관리 가구", err["details"]["reason"])

    def test_dongjak_closure_needs_a_month_of_notice(self):
        c = self.walk(self.new_case(), ["initial_counseling"])
        r = self.move(c, "closure", expect=422, data={"reason": "goal_achieved"})
        err = self.assertError(r, 422, "guard_refused")
        self.assertEqual(err["details"]["plugin"], "kr-11590")
        recent = (today_kst() - datetime.timedelta(days=5)).isoformat()
        r = self.move(c, "closure", expect=422, data={"reason": "goal_achieved", "notice_given_on": recent})
        self.assertEqual(r.json["error"]["details"]["plugin"], "kr-11590")
        # death needs no notice
        c2 = self.move(c, "closure", data={"reason": "death"}).json
        self.assertEqual(c2["stage"], "closure")

    def test_dongjak_plan_due_30_days_after_intake(self):
        c = self.walk(self.new_case(), ["initial_counseling", "intake"])
        due = {d["kind"]: d for d in c["due"]}
        self.assertIn("plan_due", due)
        self.assertEqual(due["plan_due"]["due_on"], (today_kst() + datetime.timedelta(days=30)).isoformat())
        self.assertEqual(due["plan_due"]["plugin"], "kr-11590")
        self.assertFalse(due["plan_due"]["overdue"])
        self.assertIn("30일", due["plan_due"]["label"])
        c = self.advance(c, "planning")
        self.assertIn("plan_due", [d["kind"] for d in c["due"]])
        c = self.advance(c, "delivery")
        self.assertNotIn("plan_due", [d["kind"] for d in c["due"]])

    def test_dongjak_two_follow_ups_six_months_apart(self):
        c = self.walk(self.new_case(), ["initial_counseling"])
        c = self.move(c, "closure", data={"reason": "moved"}).json
        c = self.move(c, "follow_up").json
        due = {d["kind"]: d["due_on"] for d in c["due"]}
        self.assertEqual(due["follow_up_1"], add_months(today_kst(), 6).isoformat())
        self.assertEqual(due["follow_up_2"], add_months(today_kst(), 12).isoformat())

    def test_closure_notice_deadline_from_planned_closure(self):
        c = self.advance(self.new_case(), "delivery")
        planned = add_months(today_kst(), 3)
        c = self.move(c, "monitoring", data={"planned_closure_on": planned.isoformat()}).json
        due = {d["kind"]: d["due_on"] for d in c["due"]}
        self.assertEqual(due["closure_notice"], add_months(planned, -1).isoformat())

    def test_ended_case_moves_only_by_reopen(self):
        c = self.walk(self.new_case(), ["initial_counseling"])
        c = self.move(c, "closure", data={"reason": "refused"}).json
        c = self.move(c, "end").json
        r = self.move(c, "intake", expect=409)
        self.assertError(r, 409, "case_ended")
        r = self.move(c, "discovery", expect=409, reopen=True)
        err = self.assertError(r, 409, "transition_not_allowed")
        self.assertEqual(err["details"]["allowed"], ["intake", "assessment"])
        c = self.move(c, "intake", reopen=True).json
        self.assertEqual((c["stage"], c["status"]), ("intake", "open"))
        ev = self.client.get("/v1/cases/%s/events" % c["id"], token=self.worker1).json["items"]
        self.assertEqual(ev[-1]["type"], "reopened")

    def test_open_case_cannot_be_reopened_or_ended_midway(self):
        c = self.walk(self.new_case(), ["initial_counseling"])
        self.assertError(self.move(c, "intake", expect=409, reopen=True), 409, "transition_not_allowed")
        self.assertError(self.move(c, "end", expect=409), 409, "transition_not_allowed")

    def test_transition_validation(self):
        c = self.new_case()
        url = "/v1/cases/%s/transitions" % c["id"]
        for body, field in [({"version": 1}, "to"), ({"to": "intake"}, None), ({"to": 3, "version": 1}, "to"),
                            ({"to": "intake", "version": "1"}, None),
                            ({"to": "intake", "version": 1, "data": [1]}, None),
                            ({"to": "intake", "version": 1, "bogus": 1}, "bogus")]:
            r = self.client.post(url, body, token=self.worker1)
            self.assertError(r, 400, field=field)
        self.assertError(self.client.post("/v1/cases/cas_nope/transitions", {"to": "intake", "version": 1},
                                          token=self.worker1), 404, "not_found")

    def test_other_org_cannot_move_a_case(self):
        c = self.new_case()
        r = self.client.post("/v1/cases/%s/transitions" % c["id"], {"to": "initial_counseling", "version": 1},
                             token=self.worker2)
        self.assertError(r, 404)

    def test_auditor_cannot_move(self):
        c = self.new_case()
        r = self.client.post("/v1/cases/%s/transitions" % c["id"], {"to": "initial_counseling", "version": 1},
                             token=self.auditor1)
        self.assertError(r, 403)

    def test_idempotent_transition(self):
        c = self.new_case()
        url = "/v1/cases/%s/transitions" % c["id"]
        h = {"Idempotency-Key": "move-" + c["id"]}
        a = self.client.post(url, {"to": "initial_counseling", "version": 1}, token=self.worker1, headers=h)
        b = self.client.post(url, {"to": "initial_counseling", "version": 1}, token=self.worker1, headers=h)
        self.assertEqual((a.status, b.status), (200, 200))
        self.assertEqual(a.json, b.json)
        self.assertEqual(b.header("Idempotent-Replayed"), "true")
        ev = self.client.get("/v1/cases/%s/events" % c["id"], token=self.worker1).json["items"]
        self.assertEqual(len(ev), 2)

    def test_programs_listing_and_effective_rules(self):
        r = self.client.get("/v1/programs", token=self.worker1)
        self.assertEqual(r.status, 200)
        ids = [p["id"] for p in r.json["items"]]
        self.assertIn("integrated", ids)
        prog = next(p for p in r.json["items"] if p["id"] == "integrated")
        self.assertEqual(prog["name"], "통합사례관리")
        self.assertEqual([s["id"] for s in prog["stages"]][:3], ["discovery", "initial_counseling", "intake"])
        self.assertEqual(prog["transitions"]["discovery"], ["initial_counseling", "closure"])
        r = self.client.get("/v1/programs/integrated", token=self.worker1, query={"region": "11590"})
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json["region_plugin"], "kr-11590")
        kinds = {d["kind"]: d for d in r.json["deadlines"]}
        self.assertEqual(kinds["plan_due"]["offset"], {"days": 30})
        self.assertEqual([l["plugin"] for l in r.json["layers"]], ["integrated", "kr-11590"])
        r = self.client.get("/v1/programs/integrated", token=self.worker1, query={"region": "11110"})
        self.assertEqual(r.json["deadlines"], [])
        self.assertError(self.client.get("/v1/programs/nope", token=self.worker1), 404)
        self.assertError(self.client.get("/v1/programs/integrated?region=abc", token=self.worker1), 400)

    def test_case_with_program_without_plugin_is_422(self):
        oid, tok = self.make_org_with_worker(programs=("integrated", "no_such_program"))
        p = self.make_person(token=tok)
        r = self.client.post("/v1/cases", {"person_id": p["id"], "program": "no_such_program",
                                           "source": "walk_in"}, token=tok)
        self.assertError(r, 422, "unknown_program")

    def test_list_shows_labels_and_filters_by_stage(self):
        oid, tok = self.make_org_with_worker()
        p = self.make_person(token=tok)
        a = self.make_case(p["id"], token=tok)
        b = self.make_case(p["id"], token=tok)
        self.move(b, "initial_counseling", token=tok)
        r = self.client.get("/v1/cases", token=tok, query={"stage": "initial_counseling"})
        self.assertEqual([c["id"] for c in r.json["items"]], [b["id"]])
        self.assertEqual(r.json["items"][0]["stage_label"], "초기상담")
        r = self.client.get("/v1/cases", token=tok)
        self.assertEqual({c["id"] for c in r.json["items"]}, {a["id"], b["id"]})


if __name__ == "__main__":
    unittest.main()
