"""Personal identifiers: resident registration numbers sealed at rest,
never answered, never logged, found only by a keyed index; another
organisation learns only that a person is known elsewhere."""
import datetime
import glob
import os
import stat
import unittest

from harness import ORG2, ApiTest, Server, make_rrn


class PrivacyTest(ApiTest):
    def test_rrn_is_sealed_at_rest_masked_in_answers_and_absent_from_logs(self):
        rrn = make_rrn(datetime.date(1966, 6, 6), "F")
        digits = rrn.replace("-", "")
        r = self.client.post("/v1/persons", {"name": "비밀순", "rrn": rrn}, token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        self.assertEqual(r.json["rrn"], digits[:6] + "-" + digits[6] + "******")
        self.assertNotIn(digits, r.text)
        self.assertNotIn(rrn, r.text)
        pid = r.json["id"]
        for path in ("/v1/persons/" + pid, "/v1/persons?rrn=" + digits, "/v1/persons/%s/one-screen" % pid):
            got = self.client.get(path, token=self.worker1)
            self.assertEqual(got.status, 200, got.text)
            self.assertNotIn(digits, got.text)
            self.assertNotIn(digits[6:], got.text)
        # a wrong RRN's error does not echo it either (a date that does not exist)
        bad = "660230" + digits[6:]
        r = self.client.post("/v1/persons", {"name": "틀림", "rrn": bad}, token=self.worker1)
        self.assertEqual(r.status, 422)
        self.assertNotIn(bad, r.text)
        # at rest: neither the number nor its tail is anywhere in the database files
        for f in glob.glob(self.server.db + "*"):
            with open(f, "rb") as fh:
                data = fh.read()
            self.assertNotIn(digits.encode(), data, f)
            self.assertNotIn(digits[6:].encode(), data, f)
        self.assertNotIn(digits, self.server.log)
        self.assertNotIn(digits[6:], self.server.log)
        # the key beside the database, readable by its owner only
        key = os.path.join(os.path.dirname(self.server.db), "sarye.key")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)

    def test_known_elsewhere_reveals_only_that(self):
        rrn = make_rrn(datetime.date(1944, 4, 4), "M")
        r = self.client.post("/v1/persons", {"name": "중복씨", "rrn": rrn}, token=self.worker1)
        self.assertFalse(r.json["known_elsewhere"])
        r = self.client.post("/v1/persons", {"name": "중복씨", "rrn": rrn}, token=self.worker2)
        self.assertEqual(r.status, 201, r.text)
        self.assertTrue(r.json["known_elsewhere"])
        found = self.client.get("/v1/persons", token=self.worker2, query={"rrn": rrn})
        self.assertTrue(found.json["known_elsewhere"])
        self.assertEqual([p["org"] for p in found.json["items"]], [ORG2])
        other = make_rrn(datetime.date(1944, 4, 5), "M")
        self.assertFalse(self.client.get("/v1/persons", token=self.worker2,
                                         query={"rrn": other}).json["known_elsewhere"])

    def test_bulk_export_is_de_identified(self):
        rrn = make_rrn(datetime.date(1955, 5, 5), "F")
        p = self.client.post("/v1/persons", {"name": "내보내기", "rrn": rrn, "phone": "010-1234-5678",
                                             "address": "서울 동작구"}, token=self.worker1).json
        c = self.make_case(p["id"])
        self.assertError(self.client.get("/v1/exports/cases", token=self.worker1), 403)
        items = self.list_all("/v1/exports/cases", self.supervisor1)
        mine = [x for x in items if x["case_id"] == c["id"]]
        self.assertEqual(mine[0]["person"], {"birth_date": "1955-05-05", "sex": "F"})
        text = self.client.get("/v1/exports/cases", token=self.supervisor1, query={"limit": 500}).text
        for secret in ("내보내기", rrn.replace("-", ""), rrn[:6] + "-", "010-1234-5678", "동작구", p["id"]):
            self.assertNotIn(secret, text)
        self.assertNotIn(c["id"], [x["case_id"] for x in self.list_all("/v1/exports/cases", self.admin2)])

    def test_a_referred_person_keeps_a_working_rrn_index(self):
        rrn = make_rrn(datetime.date(1977, 7, 7), "M")
        p = self.client.post("/v1/persons", {"name": "의뢰씨", "rrn": rrn}, token=self.worker1).json
        c = self.client.post("/v1/persons/%s/consents" % p["id"], {"purpose": "referral", "scope": [ORG2]},
                             token=self.worker1).json
        ref = self.client.post("/v1/referrals", {"person_id": p["id"], "to_org": ORG2, "to_program": "integrated",
                                                 "reason": "r", "opinion": "o", "consent_id": c["id"]},
                               token=self.worker1).json
        r = self.client.post("/v1/referrals/%s/accept" % ref["id"], {"note": "n"}, token=self.worker2)
        self.assertEqual(r.status, 200, r.text)
        found = self.client.get("/v1/persons", token=self.worker2, query={"rrn": rrn}).json["items"]
        self.assertEqual([x["id"] for x in found], [r.json["case"]["person_id"]])


class DistrictTest(ApiTest):
    """A district (시·군·구 희망복지지원단) sees the cases of its region's dong
    centres; a dong sees only its own; another region's district sees none."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        s.org_create("dj-hope", "동작구 희망복지지원단", "district", "11590", ["integrated"])
        s.org_create("gn-hope", "강남구 희망복지지원단", "district", "11680", ["integrated"])
        cls.district = s.token_create("hope-w", "worker", "dj-hope")
        cls.other_district = s.token_create("gn-w", "worker", "gn-hope")

    def test_district_sees_its_dongs(self):
        p = self.make_person(name="동주민")
        c = self.make_case(p["id"])
        self.assertEqual(self.client.get("/v1/persons/" + p["id"], token=self.district).status, 200)
        self.assertEqual(self.client.get("/v1/cases/" + c["id"], token=self.district).status, 200)
        listed = self.list_all("/v1/cases", self.district, query={"org": "dj-sangdo1"})
        self.assertIn(c["id"], [x["id"] for x in listed])
        self.assertEqual({x["org"] for x in listed}, {"dj-sangdo1"})
        self.assertError(self.client.get("/v1/persons/" + p["id"], token=self.other_district), 404)
        self.assertError(self.client.get("/v1/cases/" + c["id"], token=self.other_district), 404)
        # the district takes a crisis case of the dong's person as its own
        dc = self.client.post("/v1/cases", {"person_id": p["id"], "program": "integrated", "source": "referral"},
                              token=self.district)
        self.assertEqual(dc.status, 201, dc.text)
        self.assertEqual(dc.json["org"], "dj-hope")
        # the dong does not see the district's case
        self.assertError(self.client.get("/v1/cases/" + dc.json["id"], token=self.worker1), 404)


class SharingRightTest(ApiTest):
    """A private provider's worker sees shared data only with privacy
    training, a security pledge, and the approval of its organisation and
    of the district (seed 003 정보공유 권한)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        s.org_create("sangdo-welfare", "상도종합사회복지관", "provider", "11590", ["integrated"])
        s.org_create("dj-hope", "동작구 희망복지지원단", "district", "11590", ["integrated"])
        s.org_create("gn-hope", "강남구 희망복지지원단", "district", "11680", ["integrated"])
        cls.provider_worker = s.token_create("pw", "worker", "sangdo-welfare")
        cls.provider_lead = s.token_create("pl", "supervisor", "sangdo-welfare")
        cls.district_lead = s.token_create("dl", "supervisor", "dj-hope")
        cls.other_district = s.token_create("gl", "supervisor", "gn-hope")

    def test_one_screen_needs_a_complete_sharing_right(self):
        p = self.make_person(name="공유대상")
        c = self.client.post("/v1/persons/%s/consents" % p["id"], {"purpose": "case_management",
                                                                   "scope": ["sangdo-welfare"]}, token=self.worker1)
        self.assertEqual(c.status, 201, c.text)
        url = "/v1/persons/%s/one-screen" % p["id"]
        self.assertError(self.client.get(url, token=self.provider_worker), 403, "sharing_right_required")
        right = "/v1/orgs/sangdo-welfare/sharing-rights/pw"
        self.assertError(self.client.post(right + "/approve", token=self.district_lead), 409, "sharing_right_incomplete")
        self.assertError(self.client.request("PUT", right, {"training_on": "2026-01-10", "pledge_on": "2026-01-10"},
                                             token=self.provider_worker), 403)
        self.assertError(self.client.request("PUT", right, {"training_on": "2026-01-10", "pledge_on": "2026-01-10"},
                                             token=self.district_lead), 403)
        r = self.client.request("PUT", right, {"training_on": "2026-01-10", "pledge_on": "2026-01-11"},
                                token=self.provider_lead)
        self.assertEqual(r.status, 200, r.text)
        self.assertFalse(r.json["complete"])
        self.assertError(self.client.get(url, token=self.provider_worker), 403, "sharing_right_required")
        self.assertError(self.client.post(right + "/approve", token=self.other_district), 403)
        r = self.client.post(right + "/approve", token=self.district_lead)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual((r.json["complete"], r.json["district_approved_by"]), (True, "dl"))
        # and the head of the provider approves this person's look-up (seed 003: 사회서비스
        # 제공기관의 장에게 대상자의 정보조회 승인 결재를 받으면 … 정보조회 가능)
        self.assertError(self.client.get(url, token=self.provider_worker), 403, "lookup_approval_required")
        r = self.client.post("/v1/persons/%s/lookup-approvals" % p["id"], {"user": "pw", "consent_id": c.json["id"]},
                             token=self.provider_lead)
        self.assertEqual(r.status, 201, r.text)
        r = self.client.get(url, token=self.provider_worker)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json["person"]["name"], "공유대상")


class RateLimitTest(unittest.TestCase):
    def test_a_token_past_its_rate_gets_429_with_retry_after(self):
        srv = Server(env={"SARYE_RATE_LIMIT_PER_MINUTE": "60", "SARYE_RATE_LIMIT_BURST": "3"})
        try:
            srv.org_create("o1", "x", "emd", "11590", ["integrated"])
            a = srv.client(token=srv.token_create("a", "worker", "o1"))
            b = srv.client(token=srv.token_create("b", "worker", "o1"))
            statuses = [a.get("/v1/cases").status for _ in range(4)]
            self.assertEqual(statuses, [200, 200, 200, 429])
            r = a.get("/v1/cases")
            self.assertEqual(r.json["error"]["code"], "rate_limited")
            self.assertTrue(1 <= int(r.header("Retry-After")) <= 2, r.header("Retry-After"))
            self.assertEqual(b.get("/v1/cases").status, 200, "another token has its own budget")
            self.assertEqual(srv.client().get("/healthz").status, 200)
            a.close()
            b.close()
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.close()


if __name__ == "__main__":
    unittest.main()
