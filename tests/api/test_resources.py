"""Welfare resources and their waitlist over HTTP (seed 003 2-4 민관협업 지원 /
III 민관협력 - 3. 자원관리): a registry searchable by need domain, region and
target; seats never overbooked under concurrent requests; the waitlist in
order, with the case and the need; offers to the next people when a seat
frees or a matching resource is registered (an event and a deadline for the
worker); waiting time visible; a region's priority hook (Dongjak: crisis
cases first)."""
import datetime
import threading
import unittest

from harness import ApiTest, REGION, today_kst, unique_hangul, unique_id


class ResourceTest(ApiTest):
    server_env = {"SARYE_CLOCK_ADJUSTABLE": "on"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        s.org_create("gn-dong", "역삼1동 행정복지센터", "emd", "11680", ["integrated"])
        s.org_create("sangdo-welfare", "상도종합사회복지관", "provider", REGION, ["integrated"])
        cls.gn_worker = s.token_create("gn-w", "worker", "gn-dong")
        cls.provider = s.token_create("pw", "worker", "sangdo-welfare")

    def setUp(self):
        self.today(today_kst().isoformat())
        # a need domain of this test's own: resources registered by other tests
        # would be offered to its waiting cases otherwise (as they should)
        self.dom = unique_id("need").replace("-", "_").lower()

    # ---- helpers ----
    def today(self, date):
        r = self.client.request("PUT", "/v1/admin/clock", {"today": date}, token=self.operator)
        self.assertEqual(r.status, 200, r.text)

    def resource(self, token=None, expect=201, **fields):
        body = {"name": "밑반찬 지원 " + unique_hangul(2), "provider": {"name": "상도종합사회복지관", "type": "facility"},
                "kind": "goods", "domains": [self.dom], "targets": ["elderly"], "capacity": 2,
                "contact": "02-000-0000", "period": {"start": "2026-01-01", "end": "2099-12-31"}}
        body.update(fields)
        r = self.client.post("/v1/resources", body, token=token or self.worker1)
        self.assertEqual(r.status, expect, r.text)
        return r.json

    def new_case(self, token=None):
        p = self.make_person(token=token)
        return self.make_case(p["id"], token=token)

    def reserve(self, res, case, token=None, need="식사 준비 어려움", client=None, **extra):
        body = dict({"case_id": case["id"], "need": need}, **extra)
        return (client or self.client).post("/v1/resources/%s/reservations" % res["id"], body,
                                            token=token or self.worker1)

    def waitlist(self, res, token=None, **query):
        r = self.client.get("/v1/resources/%s/waitlist" % res["id"], token=token or self.worker1, query=query)
        self.assertEqual(r.status, 200, r.text)
        return r.json["items"]

    def get(self, res, token=None):
        r = self.client.get("/v1/resources/" + res["id"], token=token or self.worker1)
        self.assertEqual(r.status, 200, r.text)
        return r.json

    def events(self, case, token=None):
        return [e for e in self.list_all("/v1/cases/%s/events" % case["id"], token or self.worker1)]

    def due(self, case, token=None):
        c = self.client.get("/v1/cases/" + case["id"], token=token or self.worker1).json
        return {d["kind"]: d for d in c["due"]}

    # ---- the registry ----
    def test_register_and_search_by_domain_region_target(self):
        food = self.resource(domains=[self.dom, "health"], targets=["elderly", "disabled"], kind="goods",
                             distributor="동작구 지역사회보장협의체", cost="무료", description="주 1회 밑반찬 배달")
        self.assertEqual(food["provider"], {"name": "상도종합사회복지관", "type": "facility"})
        self.assertEqual((food["capacity"], food["available"], food["confirmed"], food["waiting"]), (2, 2, 0, 0))
        self.assertEqual(food["share_scope"], "district")
        self.assertEqual((food["org"], food["region"]), ("dj-sangdo1", REGION))
        self.assertEqual(food["distributor"], "동작구 지역사회보장협의체")
        cash = self.resource(kind="cash", domains=["economy"], targets=["single_parent"], capacity=None)
        self.assertIsNone(cash["capacity"])
        self.assertIsNone(cash["available"])
        # search: by need domain, target, kind, region; another dong of the district sees a district resource
        ids = lambda q, tok=None: [x["id"] for x in self.list_all("/v1/resources", tok or self.worker2, query=q)]
        self.assertIn(food["id"], ids({"domain": "health"}))
        self.assertNotIn(cash["id"], ids({"domain": "health"}))
        self.assertIn(food["id"], ids({"target": "disabled"}))
        self.assertNotIn(food["id"], ids({"target": "single_parent"}))
        self.assertIn(cash["id"], ids({"kind": "cash", "region": REGION}))
        self.assertNotIn(food["id"], ids({"kind": "cash"}))
        # another district does not see it; nobody else sees a resource shared with none (공유안함)
        self.assertNotIn(food["id"], ids({}, self.gn_worker))
        self.assertError(self.client.get("/v1/resources/" + food["id"], token=self.gn_worker), 404)
        mine = self.resource(share_scope="none")
        self.assertNotIn(mine["id"], ids({}))
        self.assertIn(mine["id"], ids({}, self.worker1))
        wide = self.resource(share_scope="region")  # 시·도: Seoul, 11xxx
        self.assertIn(wide["id"], ids({}, self.gn_worker))
        # Korean text round-trips
        self.assertEqual(self.get(food, self.worker2)["description"], "주 1회 밑반찬 배달")

    def test_registration_is_validated(self):
        bad = [({"kind": "money"}, "kind"), ({"domains": []}, "domains"), ({"domains": ["Economy!"]}, "domains"),
               ({"capacity": -1}, "capacity"), ({"capacity": "2"}, "capacity"), ({"share_scope": "world"}, "share_scope"),
               ({"provider": {"name": "x", "type": "alien"}}, "provider.type"), ({"provider": "x"}, "provider"),
               ({"period": {"start": "2026-05-01", "end": "2026-04-01"}}, "period.end"), ({"bogus": 1}, "bogus"),
               ({"name": ""}, "name")]
        for fields, field in bad:
            r = self.client.post("/v1/resources", dict({"name": "자원", "provider": {"name": "p", "type": "group"},
                                                        "kind": "service", "domains": ["health"]}, **fields),
                                 token=self.worker1)
            self.assertError(r, 400, "validation_failed", field=field)
        self.assertError(self.client.post("/v1/resources", {"name": "x"}, token=self.auditor1), 403)
        self.assertError(self.client.get("/v1/resources", token=self.worker1, query={"available": "maybe"}), 400)
        self.assertError(self.client.get("/v1/resources/rsc_nope", token=self.worker1), 404)

    # ---- seats and the waitlist ----
    def test_full_resource_puts_cases_on_its_waitlist_in_order_with_the_need(self):
        res = self.resource(capacity=2)
        cases = [self.new_case() for _ in range(4)]
        got = [self.reserve(res, c, need="식사 준비 어려움 %d" % i) for i, c in enumerate(cases)]
        self.assertEqual([r.status for r in got], [201] * 4)
        self.assertEqual([r.json["status"] for r in got], ["confirmed", "confirmed", "waitlisted", "waitlisted"])
        w = [r.json["waitlist"] for r in got[2:]]
        self.assertEqual([x["position"] for x in w], [1, 2])
        self.assertEqual([x["case_id"] for x in w], [cases[2]["id"], cases[3]["id"]])
        self.assertEqual(w[0]["need"], "식사 준비 어려움 2")
        self.assertEqual(w[0]["person_id"], cases[2]["person_id"])
        self.assertEqual(w[0]["waited_days"], 0)
        now = self.get(res)
        self.assertEqual((now["confirmed"], now["available"], now["waiting"]), (2, 0, 2))
        # the same case cannot reserve twice
        self.assertError(self.reserve(res, cases[0]), 409, "already_reserved")
        self.assertError(self.reserve(res, cases[2]), 409, "already_reserved")
        # each case's history tells it
        self.assertIn("resource_reserved", [e["type"] for e in self.events(cases[0])])
        self.assertIn("resource_waitlisted", [e["type"] for e in self.events(cases[3])])
        # waiting time is visible and grows with the days
        self.today((today_kst() + datetime.timedelta(days=9)).isoformat())
        items = self.waitlist(res)
        self.assertEqual([(x["position"], x["waited_days"]) for x in items], [(1, 9), (2, 9)])
        # another organisation sees the line, not whose case it is
        other = self.waitlist(res, token=self.worker2)
        self.assertEqual([(x["position"], x["case_id"], x["need"]) for x in other], [(1, None, None), (2, None, None)])

    def test_concurrent_reservations_never_overbook(self):
        capacity, n = 5, 24
        res = self.resource(capacity=capacity)
        cases = [self.new_case() for _ in range(n)]
        results = [None] * n
        start = threading.Barrier(8)

        def go(k):
            cl = self.new_client()
            try:
                start.wait()
                for i in range(k, n, 8):
                    r = self.reserve(res, cases[i], client=cl)
                    results[i] = (r.status, r.json)
            finally:
                cl.close()
        ts = [threading.Thread(target=go, args=(k,)) for k in range(8)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        self.assertEqual({s for s, _ in results}, {201})
        confirmed = [b for _, b in results if b["status"] == "confirmed"]
        waiting = [b for _, b in results if b["status"] == "waitlisted"]
        self.assertEqual(len(confirmed), capacity)
        self.assertEqual(len(waiting), n - capacity)
        now = self.get(res)
        self.assertEqual((now["confirmed"], now["held"], now["available"], now["waiting"]), (capacity, 0, 0, n - capacity))
        # the waitlist is in order of arrival: positions 1..n-capacity, each once,
        # in the order the list gives them
        items = self.list_all("/v1/resources/%s/waitlist" % res["id"], self.worker1, limit=7)
        self.assertEqual([x["position"] for x in items], list(range(1, n - capacity + 1)))
        self.assertEqual(sorted(x["id"] for x in items), sorted(b["waitlist"]["id"] for b in waiting))
        created = [x["created_at"] for x in items]
        self.assertEqual(created, sorted(created))
        # releasing a seat under a burst of new requests still never overbooks
        seat = confirmed[0]["allocation"]
        more = [self.new_case() for _ in range(6)]
        out = []

        def burst(c):
            cl = self.new_client()
            try:
                out.append(self.reserve(res, c, client=cl).json["status"])
            finally:
                cl.close()
        ts = [threading.Thread(target=burst, args=(c,)) for c in more]
        [t.start() for t in ts]
        r = self.client.post("/v1/resources/%s/allocations/%s/release" % (res["id"], seat["id"]), token=self.worker1)
        [t.join() for t in ts]
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(out, ["waitlisted"] * 6, "the freed seat goes to the head of the line, not to a newcomer")
        now = self.get(res)
        self.assertEqual((now["confirmed"], now["held"]), (capacity - 1, 1))
        head = self.waitlist(res, status="offered")
        self.assertEqual([x["id"] for x in head], [items[0]["id"]])

    def test_a_freed_seat_is_offered_to_the_next_with_a_deadline_then_accepted(self):
        res = self.resource(capacity=1)
        a, b, c = self.new_case(), self.new_case(), self.new_case()
        seat = self.reserve(res, a).json["allocation"]
        wb = self.reserve(res, b, need="도시락 필요").json["waitlist"]
        wc = self.reserve(res, c).json["waitlist"]
        # a's worker gives the seat back: b, first in line, is offered it
        r = self.client.post("/v1/resources/%s/allocations/%s/release" % (res["id"], seat["id"]), token=self.worker1)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual((r.json["allocation"]["status"], r.json["resource"]["offered"]), ("released", 1))
        ev = self.events(b)
        offered = [e for e in ev if e["type"] == "resource_offered"]
        self.assertEqual(len(offered), 1)
        self.assertEqual(offered[0]["data"]["resource_id"], res["id"])
        due_on = (today_kst() + datetime.timedelta(days=7)).isoformat()
        self.assertEqual(self.due(b)["resource_offer"]["due_on"], due_on)
        dl = self.client.get("/v1/deadlines", token=self.worker1, query={"kind": "resource_offer"}).json["items"]
        self.assertIn(b["id"], [d["case_id"] for d in dl])
        got = self.client.get("/v1/waitlist/" + wb["id"], token=self.worker1).json
        self.assertEqual((got["status"], got["offer"]["resource_id"], got["offer"]["due_on"]),
                         ("offered", res["id"], due_on))
        # the offer holds the seat: c (still waiting) cannot take it, nor can a newcomer
        self.assertEqual(self.get(res)["held"], 1)
        self.assertEqual(self.reserve(res, self.new_case()).json["status"], "waitlisted")
        # the worker accepts: the seat is b's, the need met, the entry ends, the deadline goes
        r = self.client.post("/v1/waitlist/%s/accept" % wb["id"], token=self.worker1)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual((r.json["status"], r.json["end_reason"], r.json["allocation"]["status"]),
                         ("ended", "met", "confirmed"))
        self.assertNotIn("resource_offer", self.due(b))
        self.assertEqual((self.get(res)["confirmed"], self.get(res)["held"]), (1, 0))
        self.assertEqual(self.waitlist(res)[0]["case_id"], c["id"])
        self.assertError(self.client.post("/v1/waitlist/%s/accept" % wb["id"], token=self.worker1), 409, "no_offer")
        self.assertIn("resource_offer_accepted", [e["type"] for e in self.events(b)])
        # one screen: the person's resources waited for and held
        one = self.client.get("/v1/persons/%s/one-screen" % b["person_id"], token=self.worker1).json
        res_b = one["cases"][0]["resources"]
        self.assertEqual([x["status"] for x in res_b["allocations"]], ["confirmed"])
        self.assertEqual([x["end_reason"] for x in res_b["waitlist"]], ["met"])
        one = self.client.get("/v1/persons/%s/one-screen" % c["person_id"], token=self.worker1).json
        self.assertEqual([x["status"] for x in one["cases"][0]["resources"]["waitlist"]], ["waiting"])
        self.assertEqual(wc["position"], 2)

    def test_a_declined_or_expired_offer_goes_to_the_next(self):
        res = self.resource(capacity=1)
        a, b, c = self.new_case(), self.new_case(), self.new_case()
        seat = self.reserve(res, a).json["allocation"]
        wb = self.reserve(res, b).json["waitlist"]
        wc = self.reserve(res, c).json["waitlist"]
        self.client.post("/v1/resources/%s/allocations/%s/release" % (res["id"], seat["id"]), token=self.worker1)
        r = self.client.post("/v1/waitlist/%s/decline" % wb["id"], {"note": "대상자 입원으로 이용 불가"}, token=self.worker1)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual((r.json["status"], r.json["end_reason"]), ("ended", "declined"))
        self.assertEqual(self.client.get("/v1/waitlist/" + wc["id"], token=self.worker1).json["status"], "offered")
        # nobody answers c's offer within its 7 days: it expires at the next write and the seat waits for the next
        d = self.new_case()
        wd = self.reserve(res, d).json["waitlist"]
        self.today((today_kst() + datetime.timedelta(days=8)).isoformat())
        self.assertTrue(self.due(c)["resource_offer"]["overdue"])
        self.assertError(self.client.post("/v1/waitlist/%s/accept" % wc["id"], token=self.worker1), 409, "offer_expired")
        self.reserve(res, self.new_case())  # any write on the waitlist sweeps the expired offers
        got = self.client.get("/v1/waitlist/" + wc["id"], token=self.worker1).json
        self.assertEqual((got["status"], got["end_reason"]), ("ended", "expired"))
        self.assertNotIn("resource_offer", self.due(c))
        self.assertIn("resource_offer_expired", [e["type"] for e in self.events(c)])
        self.assertEqual(self.client.get("/v1/waitlist/" + wd["id"], token=self.worker1).json["status"], "offered")

    def test_a_case_that_ended_is_offered_nothing(self):
        res = self.resource(capacity=1)
        a, b, c = self.new_case(), self.new_case(), self.new_case()
        seat = self.reserve(res, a).json["allocation"]
        wb = self.reserve(res, b).json["waitlist"]
        wc = self.reserve(res, c).json["waitlist"]
        b = self.move(b, "closure", data={"reason": "death"}).json
        self.move(b, "end")
        self.client.post("/v1/resources/%s/allocations/%s/release" % (res["id"], seat["id"]), token=self.worker1)
        self.assertEqual(self.client.get("/v1/waitlist/" + wb["id"], token=self.worker1).json["status"], "waiting")
        self.assertEqual(self.client.get("/v1/waitlist/" + wc["id"], token=self.worker1).json["status"], "offered")

    def test_capacity_raised_offers_the_new_seats(self):
        res = self.resource(capacity=0)
        cases = [self.new_case() for _ in range(3)]
        ws = [self.reserve(res, c).json["waitlist"] for c in cases]
        r = self.client.request("PUT", "/v1/resources/%s/capacity" % res["id"], {"capacity": 2, "version": 1},
                                token=self.worker1)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual((r.json["capacity"], r.json["held"], r.json["offered"]), (2, 2, 2))
        self.assertEqual([self.client.get("/v1/waitlist/" + w["id"], token=self.worker1).json["status"] for w in ws],
                         ["offered", "offered", "waiting"])
        r = self.client.request("PUT", "/v1/resources/%s/capacity" % res["id"], {"capacity": 1}, token=self.worker1)
        self.assertError(r, 409, "capacity_below_use")
        r = self.client.request("PUT", "/v1/resources/%s/capacity" % res["id"], {"capacity": 5, "version": 1},
                                token=self.worker1)
        self.assertError(r, 412, "version_mismatch")
        r = self.client.request("PUT", "/v1/resources/%s/capacity" % res["id"], {"capacity": 5}, token=self.worker2)
        self.assertError(r, 403)

    def test_a_matching_new_resource_is_offered_to_those_waiting_for_its_kind(self):
        # 자원대기자: the need is met by no resource yet
        econ = self.dom + "_economy"
        need = self.new_case()
        other_need = self.new_case()
        far = self.new_case(token=self.gn_worker)
        r = self.client.post("/v1/waitlist", {"case_id": need["id"], "need": "겨울철 난방비 부족", "domain": econ,
                                              "kind": "cash"}, token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        entry = r.json
        self.assertEqual((entry["resource_id"], entry["status"], entry["position"]), (None, "waiting", 1))
        self.client.post("/v1/waitlist", {"case_id": other_need["id"], "need": "병원 동행", "domain": self.dom},
                         token=self.worker1)
        self.client.post("/v1/waitlist", {"case_id": far["id"], "need": "난방비", "domain": econ},
                         token=self.gn_worker)
        # a resource of another kind does not match; the matching one is offered to the waiting person
        self.resource(kind="goods", domains=[econ], capacity=3)
        self.assertEqual(self.client.get("/v1/waitlist/" + entry["id"], token=self.worker1).json["status"], "waiting")
        fuel = self.resource(name="난방비 지원", kind="cash", domains=[econ], capacity=3,
                             provider={"name": "동작구 사회복지협의회", "type": "group"})
        self.assertEqual(fuel["offered"], 1, "one person of the district waits for it")
        got = self.client.get("/v1/waitlist/" + entry["id"], token=self.worker1).json
        self.assertEqual((got["status"], got["offer"]["resource_id"]), ("offered", fuel["id"]))
        self.assertIn("resource_offer", self.due(need))
        ev = [e for e in self.events(need) if e["type"] == "resource_offered"]
        self.assertEqual(ev[0]["data"]["resource_name"], "난방비 지원")
        # a case of another district is not offered a district resource
        far_list = self.client.get("/v1/waitlist", token=self.gn_worker).json["items"]
        self.assertEqual([x["status"] for x in far_list], ["waiting"])
        # declining keeps the person waiting for another such resource, never offered this one again
        r = self.client.post("/v1/waitlist/%s/decline" % entry["id"], {}, token=self.worker1)
        self.assertEqual(r.json["status"], "waiting")
        self.assertEqual(self.get(fuel)["held"], 0)
        # the need met otherwise: the entry leaves the list
        r = self.client.post("/v1/waitlist/%s/end" % entry["id"], {"reason": "met", "note": "긴급복지로 지원"},
                             token=self.worker1)
        self.assertEqual((r.json["status"], r.json["end_reason"]), ("ended", "met"))
        self.assertError(self.client.post("/v1/waitlist/%s/end" % entry["id"], {"reason": "met"}, token=self.worker1),
                         409, "waitlist_ended")
        mine = self.client.get("/v1/waitlist", token=self.worker1, query={"case_id": need["id"]}).json["items"]
        self.assertEqual([x["id"] for x in mine], [entry["id"]])
        self.assertError(self.client.get("/v1/waitlist/" + entry["id"], token=self.worker2), 404)

    def test_dongjak_crisis_cases_go_first(self):
        res = self.resource(capacity=0)
        plain = [self.new_case() for _ in range(2)]
        crisis = self.new_case()
        r = self.client.post("/v1/cases/%s/transitions" % crisis["id"], {"to": "initial_counseling", "version": 1},
                             token=self.worker1)
        r = self.client.post("/v1/cases/%s/counseling" % crisis["id"], {
            "case_type": "crisis", "domains": {"safety": "퇴거 위기"}, "main_problems": ["safety"],
            "opinion": "위기 안정화 필요"}, token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        for c in plain:
            self.reserve(res, c)
        w = self.reserve(res, crisis).json["waitlist"]
        self.assertEqual((w["position"], w["priority"]), (1, 10))
        self.assertIn("위기사례", w["priority_reason"])
        order = [x["case_id"] for x in self.waitlist(res)]
        self.assertEqual(order, [crisis["id"], plain[0]["id"], plain[1]["id"]])
        r = self.client.request("PUT", "/v1/resources/%s/capacity" % res["id"], {"capacity": 1}, token=self.worker1)
        self.assertEqual(self.waitlist(res, status="offered")[0]["case_id"], crisis["id"])

    def test_a_plan_service_names_a_resource(self):
        res = self.resource()
        c = self.advance(self.new_case(), "planning")
        body = {"goals": [{"term": "short", "text": "끼니 해결", "services": [
            {"type": "goods", "method": "linkage", "content": "밑반찬 지원", "resource_id": res["id"],
             "start": "2026-01-01", "end": "2026-03-31"}]}]}
        r = self.client.post("/v1/cases/%s/plans" % c["id"], body, token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        self.assertEqual(r.json["data"]["goals"][0]["services"][0]["resource_id"], res["id"])
        body["goals"][0]["services"][0]["resource_id"] = "rsc_nope"
        r = self.client.post("/v1/cases/%s/plans" % c["id"], body, token=self.worker1)
        self.assertError(r, 422, "unknown_resource", field="goals[0].services[0].resource_id")

    def test_reservation_input_is_checked(self):
        res = self.resource()
        c = self.new_case()
        url = "/v1/resources/%s/reservations" % res["id"]
        for body, field in [({"need": "x"}, "case_id"), ({"case_id": c["id"]}, "need"),
                            ({"case_id": c["id"], "need": "x", "kind": "cash"}, "kind"),
                            ({"case_id": c["id"], "need": "x", "extra": 1}, "extra")]:
            self.assertError(self.client.post(url, body, token=self.worker1), 400, field=field)
        self.assertError(self.client.post(url, {"case_id": c["id"], "need": "x", "domain": "economy"},
                                          token=self.worker1), 422, "validation_failed", field="domain")
        self.assertError(self.client.post(url, {"case_id": "cas_nope", "need": "x"}, token=self.worker1), 422,
                         "unknown_case")
        other = self.new_case(token=self.worker2)
        self.assertError(self.client.post(url, {"case_id": other["id"], "need": "x"}, token=self.worker1), 422,
                         "unknown_case")
        self.assertError(self.client.post("/v1/resources/rsc_nope/reservations", {"case_id": c["id"], "need": "x"},
                                          token=self.worker1), 404)
        self.assertError(self.client.post("/v1/waitlist", {"case_id": c["id"], "need": "x"}, token=self.worker1),
                         400, field="domain")
        self.assertError(self.client.post("/v1/waitlist/wl_nope/accept", token=self.worker1), 404)
        self.assertError(self.client.get("/v1/waitlist", token=self.worker1, query={"status": "x"}), 400)


if __name__ == "__main__":
    unittest.main()
