"""The release server under valgrind's memcheck, over real HTTP.

Every path a day of case work takes, once: a person with a sealed resident
number, a case from discovery to its end with the records each stage asks
for, a referral to another organisation answered, a referral to an agency
delivered through libcurl to the mock agency, audited reads, refusals of bad
input, a plugin reload and /metrics; then SIGTERM. memcheck must report no
invalid read or write, no use of an uninitialised value, and no block
definitely lost (`--errors-for-leak-kinds=definite`), in the server's own
code or in what it drives (LuaJIT, SQLite, CivetWeb, libcurl, jansson).

The server runs some twenty times slower under valgrind:
SARYE_TEST_TIMEOUT_SCALE (20, set by ctest) stretches every wait of the
harness, and nothing here depends on speed.
"""
import datetime
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))

import harness  # noqa: E402
import test_agencies  # noqa: E402  (its mock agency; none of its tests run here)
from harness import ORG2, ApiTest, Server, make_rrn, today_kst  # noqa: E402


class ValgrindServer(Server):
    def command(self):
        self.vg_log = os.path.join(self.dir, "memcheck.log")
        return ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite", "--track-origins=yes",
                "--log-file=" + self.vg_log] + super().command()

    def memcheck(self):
        try:
            with open(self.vg_log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Memcheck:
    """Mixed into an ApiTest: its server runs under memcheck, and the class
    fails if memcheck reported anything by the server's exit."""
    server_class = ValgrindServer

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()  # SIGTERM: exit 0, or memcheck's 99
        except AssertionError as e:
            raise AssertionError("%s\nmemcheck:\n%s" % (e, cls.server.memcheck()[-12000:])) from None
        report = cls.server.memcheck()
        if report.strip():
            raise AssertionError("memcheck reported:\n" + report[-12000:])


class UnderValgrind(Memcheck, test_agencies.WithMockAgency, ApiTest):
    @classmethod
    def mock_env(cls, url):
        return {
            "SARYE_AGENCY_MICROFINANCE_URL": url + "/microfinance/referrals",
            "SARYE_AGENCY_MICROFINANCE_TOKEN": "mf-secret",
            "SARYE_AGENCY_MICROFINANCE_TIMEOUT_MS": str(int(1000 * harness.SCALE)),
            "SARYE_OUTBOX_RETRY_BASE_MS": "50",
        }

    @classmethod
    def set_up_server(cls):
        cls.server.org_create("microfinance", "서민금융진흥원", "agency", "11590")

    def test_the_server_runs_under_memcheck(self):
        self.assertIn("memcheck", os.readlink("/proc/%d/exe" % self.server.proc.pid))

    def test_a_case_from_discovery_to_its_end(self):
        p = self.make_person(name="김수연", birth_date="1972-05-17", sex="F",
                             rrn=make_rrn(datetime.date(1972, 5, 17), "F"))
        self.assertTrue(p["rrn"].endswith("******"), p["rrn"])
        c = self.make_case(p["id"])
        c = self.advance(c, "monitoring")
        self.assertEqual(c["stage"], "monitoring")
        notice = (today_kst() - datetime.timedelta(days=40)).isoformat()
        c = self.move(c, "closure", data={"reason": "goal_achieved", "notice_given_on": notice},
                      note="목표 달성으로 종결").json
        c = self.move(c, "follow_up").json
        c = self.move(c, "end").json
        self.assertEqual((c["status"], c["due"]), ("ended", []))
        events = self.list_all("/v1/cases/%s/events" % c["id"], self.worker1)
        self.assertEqual(events[-1]["to"], "follow_up")
        r = self.client.get("/v1/persons/" + p["id"], token=self.worker1)
        self.assertEqual((r.status, r.json["name"]), (200, "김수연"))

    def test_referrals_to_an_organisation_and_to_an_agency(self):
        p = self.make_person(name="최영희", birth_date="1968-02-03", sex="F")
        consent = self.client.post("/v1/persons/%s/consents" % p["id"],
                                   {"purpose": "referral", "scope": [ORG2, "microfinance"]}, token=self.worker1)
        self.assertEqual(consent.status, 201, consent.text)
        r = self.client.post("/v1/referrals", {"person_id": p["id"], "to_org": ORG2, "to_program": "integrated",
                                               "reason": "정신건강 상담이 필요해 보임", "opinion": "전문 상담 연계 희망",
                                               "consent_id": consent.json["id"]}, token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        a = self.client.post("/v1/referrals/%s/accept" % r.json["id"], {"note": "초기상담 예정"}, token=self.worker2)
        self.assertEqual((a.status, a.json["case"]["stage"]), (200, "discovery"), a.text)

        r = self.client.post("/v1/referrals", {"person_id": p["id"], "to_agency": "microfinance",
                                               "reason": "고금리 대출 상환 곤란", "opinion": "채무조정 상담 필요",
                                               "consent_id": consent.json["id"]}, token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        test_agencies.wait_until(
            lambda: [m for m in self.mock.state()["received"] if m["path"].startswith("/microfinance/")],
            timeout=30, what="the agency to receive the referral")

    def test_bad_input_is_refused_and_changes_nothing(self):
        r = self.client.post("/v1/persons", raw=b'{"name": "\xea\xb9', token=self.worker1,
                             headers={"Content-Type": "application/json"})
        self.assertError(r, 400)
        self.assertError(self.client.post("/v1/persons", {"name": "", "birth_date": "1999-02-30", "sex": "X"},
                                          token=self.worker1), 400)
        self.assertError(self.client.get("/v1/cases/cas_nope", token=self.worker1), 404)
        self.assertError(self.client.get("/v1/cases", token="sy_not-a-token"), 401)

    def test_reload_metrics_and_the_description(self):
        r = self.client.post("/v1/admin/plugins/reload", {}, token=self.operator)
        self.assertEqual(r.status, 200, r.text)
        self.assertIn("sarye_http_requests_total", self.client.get("/metrics", token=self.operator).text)
        self.assertEqual(self.client.get("/openapi.json").status, 200)


if __name__ == "__main__":
    unittest.main()
