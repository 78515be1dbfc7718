"""External agencies over real HTTP: sarye's outbox delivers through libcurl
to a mock agency the test starts (scripts/mock-agency), which can be down,
slow, hanging or answer any status. Nothing is lost, each message has one
effect per Idempotency-Key, and the API never waits for an agency."""
import json
import os
import re
import shutil
import tempfile
import signal
import subprocess
import threading
import time
import unittest
import urllib.request

import datetime

from harness import ORG1, SCALE, SOURCE, ApiTest, Server, make_rrn, new_style_rrn, plugin_dir, rrn_with_bad_check

DONG_CODE = "1159051000"  # 상도1동


class MockAgency:
    def __init__(self):
        self.proc = subprocess.Popen(["python3", os.path.join(SOURCE, "scripts", "mock-agency"), "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        m = re.search(r"listening on ([0-9.]+):(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError("mock agency did not start: %r" % line)
        self.url = "http://%s:%s" % m.groups()

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def mode(self, mode, **kw):
        self.call("POST", "/_control", dict(kw, mode=mode))

    def state(self):
        return self.call("GET", "/_state")

    def close(self):
        self.proc.kill()
        self.proc.wait(10)


class WithMockAgency:
    """Mixed in before ApiTest: a mock agency (cls.mock) that lives as long as
    the class's server. mock_env(url) is the server's environment; what the
    class sets up once the server runs goes in set_up_server()."""

    @classmethod
    def mock_env(cls, url):
        return {}

    @classmethod
    def set_up_server(cls):
        pass

    @classmethod
    def setUpClass(cls):
        cls.mock = MockAgency()
        cls.server_env = cls.mock_env(cls.mock.url)
        try:
            super().setUpClass()
            cls.set_up_server()
        except BaseException:
            cls.mock.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.mock.close()


def wait_until(cond, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout * SCALE
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class AgencyTest(WithMockAgency, ApiTest):
    @classmethod
    def mock_env(cls, url):
        return {
            "SARYE_CLOCK_ADJUSTABLE": "on",
            "SARYE_AGENCY_MICROFINANCE_URL": url + "/microfinance/referrals",
            "SARYE_AGENCY_MICROFINANCE_TOKEN": "mf-secret",
            "SARYE_AGENCY_MICROFINANCE_TIMEOUT_MS": "1000",
            "SARYE_AGENCY_PENSION_URL": url + "/pension/answers",
            "SARYE_AGENCY_PENSION_TIMEOUT_MS": "1000",
            "SARYE_OUTBOX_RETRY_BASE_MS": "50",
            "SARYE_OUTBOX_RETRY_MAX_MS": "300",
            "SARYE_OUTBOX_BREAKER_FAILURES": "3",
            "SARYE_OUTBOX_BREAKER_OPEN_MS": "200",
        }

    @classmethod
    def set_up_server(cls):
        s = cls.server
        s.org_create("microfinance", "서민금융진흥원", "agency", "11590")
        s.org_create("pension", "국민연금공단", "agency", "11590")
        s.run_cli("org", "create", "--id", "dj-sangdo1-area", "--name", "상도1동 (행정동)", "--type", "emd",
                  "--region", "11590", "--program", "integrated", "--area", DONG_CODE)
        cls.dong_worker = s.token_create("dong-w", "worker", "dj-sangdo1-area")
        cls.mf_token = s.token_create("mf", "agency", "microfinance")
        cls.pension_token = s.token_create("nps", "agency", "pension")

    def setUp(self):
        self.mock.call("POST", "/_reset")
        # each test starts with the agencies answering and nothing left in flight from the one before,
        # so what the mock counts is this test's traffic
        wait_until(lambda: not self.outbox("queued"), what="the outbox to drain from the previous test")
        self.mock.call("POST", "/_reset")

    # ---- helpers ----
    def refer_to_microfinance(self, token=None):
        token = token or self.worker1
        p = self.make_person(token=token, name="김민수", birth_date="1975-01-01", sex="M")
        c = self.client.post("/v1/persons/%s/consents" % p["id"], {"purpose": "referral", "scope": ["microfinance"]},
                             token=token)
        self.assertEqual(c.status, 201, c.text)
        r = self.client.post("/v1/referrals", {"person_id": p["id"], "to_agency": "microfinance",
                                               "reason": "고금리 대출 상환 곤란", "opinion": "채무조정 상담 필요",
                                               "consent_id": c.json["id"]}, token=token)
        self.assertEqual(r.status, 201, r.text)
        return r.json

    def outbox(self, status=None):
        q = {"limit": 500}
        if status:
            q["status"] = status
        r = self.client.get("/v1/admin/outbox", token=self.admin1, query=q)
        self.assertEqual(r.status, 200, r.text)
        return r.json["items"]

    def delivered_keys(self):
        return set(self.mock.state()["effects"])

    # ---- tests ----
    def test_referral_delivered_with_a_stable_idempotency_key(self):
        ref = self.refer_to_microfinance()
        st = wait_until(lambda: (lambda s: s if s["received"] else None)(self.mock.state()), what="delivery")
        msg = st["received"][0]
        self.assertEqual(msg["path"], "/microfinance/referrals")
        self.assertEqual(msg["authorization"], "Bearer mf-secret")
        self.assertEqual(msg["kind"], "referral")
        self.assertEqual(msg["body"]["type"], "service_referral")
        self.assertEqual(msg["body"]["referral_id"], ref["id"])
        self.assertEqual(msg["body"]["person"]["name"], "김민수")
        out = [m for m in self.outbox() if m["topic"] == ref["id"]]
        self.assertEqual(len(out), 1)
        self.assertEqual(out[0]["idempotency_key"], msg["key"])
        wait_until(lambda: [m for m in self.outbox("delivered") if m["topic"] == ref["id"]], what="delivered status")

    def test_agency_down_then_up_delivers_everything_once(self):
        self.mock.mode("down")
        refs = [self.refer_to_microfinance() for _ in range(5)]
        wait_until(lambda: self.mock.state()["attempts"] >= 10, what="retries")
        self.assertEqual(self.mock.state()["effects"], {})
        metrics = self.client.get("/metrics").text
        self.assertRegex(metrics, r'sarye_outbox_retried_total\{agency="microfinance"\} [1-9]')
        self.mock.mode("up")
        ids = {r["id"] for r in refs}
        wait_until(lambda: ids <= {m["body"]["referral_id"] for m in self.mock.state()["received"]}, timeout=30,
                   what="all delivered after the agency came back")
        st = self.mock.state()
        self.assertTrue(all(n == 1 for n in st["effects"].values()), st["effects"])
        wait_until(lambda: ids <= {m["topic"] for m in self.outbox("delivered")}, what="delivered status")

    def breaker_state(self, agency):
        m = re.search(r'sarye_outbox_breaker_state\{agency="%s"\} (\d)' % agency, self.client.get("/metrics").text)
        return int(m.group(1)) if m else None

    def test_circuit_opens_while_the_agency_is_down_and_closes_when_it_answers(self):
        self.mock.mode("down")
        ref = self.refer_to_microfinance()
        # three failures in a row (SARYE_OUTBOX_BREAKER_FAILURES) open the circuit
        wait_until(lambda: self.breaker_state("microfinance") == 1, what="circuit open")
        self.assertGreaterEqual(self.mock.state()["attempts"], 3)
        self.assertEqual(self.mock.state()["effects"], {})
        self.mock.mode("up")
        # after the open window one probe goes through; its success closes the circuit
        wait_until(lambda: self.breaker_state("microfinance") == 0, what="circuit closed again")
        wait_until(lambda: [m for m in self.outbox("delivered") if m["topic"] == ref["id"]], what="delivered")
        self.assertEqual(list(self.mock.state()["effects"].values()), [1])

    def test_client_error_is_dead_lettered_and_retried_by_an_admin(self):
        self.mock.mode("status", status=400)
        ref = self.refer_to_microfinance()
        dead = wait_until(lambda: [m for m in self.outbox("dead") if m["topic"] == ref["id"]], what="dead letter")
        self.assertEqual(dead[0]["last_status"], 400)
        self.assertEqual(self.mock.state()["effects"], {})
        self.mock.mode("up")
        self.assertError(self.client.post("/v1/admin/outbox/%s/retry" % dead[0]["id"], token=self.worker1), 403)
        r = self.client.post("/v1/admin/outbox/%s/retry" % dead[0]["id"], token=self.admin1)
        self.assertEqual(r.status, 200, r.text)
        wait_until(lambda: dead[0]["idempotency_key"] in self.delivered_keys(), what="sent again")
        r = self.client.post("/v1/admin/outbox/%s/retry" % dead[0]["id"], token=self.admin1)
        self.assertError(r, 409, "not_dead")

    def test_retry_after_is_honoured_and_429_retried(self):
        self.mock.mode("status", status=429, retry_after="1")
        ref = self.refer_to_microfinance()
        wait_until(lambda: self.mock.state()["attempts"] >= 1, what="first attempt")
        time.sleep(0.3)
        st = self.mock.state()
        self.assertEqual(st["attempts"], 1, "Retry-After: 1 was not waited for: %r" % st)
        self.mock.mode("up")
        wait_until(lambda: ref["id"] in {m["body"]["referral_id"] for m in self.mock.state()["received"]},
                   what="delivery after Retry-After")

    def test_api_keeps_answering_while_an_agency_hangs(self):
        self.mock.mode("hang")
        self.refer_to_microfinance()
        wait_until(lambda: self.mock.state()["attempts"] >= 1, what="a hanging attempt")
        statuses = []
        for i in range(20):
            r = self.client.post("/v1/persons", {"name": "이영희", "birth_date": "1990-01-01", "sex": "F"},
                                 token=self.worker1)
            statuses.append(r.status)
        self.assertEqual(set(statuses), {201})
        self.mock.mode("up")

    def test_inbound_government_referral_first_contact_and_answers(self):
        self.client.request("PUT", "/v1/admin/clock", {"today": "2026-10-01"}, token=self.operator)
        body = {"person": {"name": "정순례", "birth_date": "1950-04-05", "sex": "F", "address": "서울 동작구 상도동"},
                "dong_code": DONG_CODE, "region": "11590", "reason": "연금 수급 상담 중 생계 곤란 확인",
                "opinion": "긴급복지 검토 요청", "agency_ref": "NPS-2026-0001"}
        r = self.client.post("/v1/referrals", body, token=self.pension_token)
        self.assertEqual(r.status, 201, r.text)
        ref = r.json
        self.assertEqual((ref["to_org"], ref["from_org"], ref["agency_ref"]), ("dj-sangdo1-area", "pension",
                                                                              "NPS-2026-0001"))
        dl = self.client.get("/v1/deadlines", token=self.dong_worker, query={"kind": "first_contact"}).json["items"]
        self.assertEqual([d["due_on"] for d in dl if d["referral_id"] == ref["id"]], ["2026-10-15"])
        # nobody registers it: overdue (the 53 % problem of seed 003)
        self.client.request("PUT", "/v1/admin/clock", {"today": "2026-10-16"}, token=self.operator)
        dl = self.client.get("/v1/deadlines", token=self.dong_worker, query={"kind": "first_contact"}).json["items"]
        self.assertTrue([d for d in dl if d["referral_id"] == ref["id"]][0]["overdue"])
        # the agency cannot see what it did not send, nor answer for the dong
        self.assertError(self.client.post("/v1/referrals/%s/accept" % ref["id"], {"note": "x"},
                                          token=self.pension_token), 403)
        self.mock.mode("down")
        r = self.client.post("/v1/referrals/%s/accept" % ref["id"], {"program": "integrated", "note": "유선 연락 완료"},
                             token=self.dong_worker)
        self.assertEqual(r.status, 200, r.text)
        case = r.json["case"]
        self.assertEqual(case["source"], "gov_referral")
        # on the record the referral registered at the dong, not on a copy of it
        self.assertEqual(case["person_id"], ref["person_id"])
        same = self.client.get("/v1/persons", token=self.dong_worker,
                               query={"name": "정순례", "birth_date": "1950-04-05", "match": "exact"}).json["items"]
        self.assertEqual([p["id"] for p in same], [ref["person_id"]])
        c = self.client.post("/v1/cases/%s/transitions" % case["id"], {"to": "initial_counseling", "version": 1},
                             token=self.dong_worker)
        self.assertEqual(c.status, 200, c.text)
        c = self.client.post("/v1/cases/%s/transitions" % case["id"], {"to": "intake", "version": 2},
                             token=self.dong_worker)
        self.assertEqual(c.status, 200, c.text)
        # the agency comes back: the answer, then each step, in order
        self.mock.mode("up")
        got = wait_until(lambda: (lambda m: m if len(m) >= 3 else None)(
            [x for x in self.mock.state()["received"] if x["path"] == "/pension/answers"]), what="answers in order")
        self.assertEqual([m["body"]["type"] for m in got], ["referral_answer", "referral_progress", "referral_progress"])
        self.assertEqual(got[0]["body"]["result"], "접수")
        self.assertEqual(got[0]["body"]["agency_ref"], "NPS-2026-0001")
        self.assertEqual([m["body"].get("stage") for m in got[1:]], ["initial_counseling", "intake"])
        self.assertError(self.client.post("/v1/referrals", {"person_id": "x", "to_agency": "pension", "reason": "r",
                                                            "opinion": "o", "consent_id": "c"}, token=self.worker1),
                         422)

    def test_inbound_referrals_carry_numbers_as_issued_today_onto_one_record(self):
        """A child born since 2020-10-05 has a number with random digits and
        no check digit: the agency's referral is accepted, the dong finds
        the child by it, and the same child referred again lands on the
        record the dong has."""
        rrn = new_style_rrn(datetime.date(2022, 5, 20), "M")
        body = {"person": {"name": "오하준", "rrn": rrn, "address": "서울 동작구 상도동"}, "dong_code": DONG_CODE,
                "reason": "보호자 입원으로 양육 공백", "opinion": "드림스타트 연계 검토", "agency_ref": "NPS-2026-0101"}
        r = self.client.post("/v1/referrals", body, token=self.pension_token)
        self.assertEqual(r.status, 201, r.text)
        child = r.json["person"]["person"]
        self.assertEqual((child["birth_date"], child["sex"], child["rrn"]), ("2022-05-20", "M", "220520-3******"))
        self.assertNotIn("warnings", r.json)
        self.assertNotIn(rrn.replace("-", "")[6:], r.text)
        pid = r.json["person_id"]
        found = self.client.get("/v1/persons", token=self.dong_worker, query={"rrn": rrn}).json["items"]
        self.assertEqual([p["id"] for p in found], [pid])
        # referred again (by another agency, with a newer phone number): the record the dong has
        again = dict(body, agency_ref="MMA-2026-7", person=dict(body["person"], phone="010-2222-3333"))
        r2 = self.client.post("/v1/referrals", again, token=self.mf_token)
        self.assertEqual(r2.status, 201, r2.text)
        self.assertEqual(r2.json["person_id"], pid)
        self.assertEqual(r2.json["person"]["person_sent"]["phone"], "010-2222-3333")
        self.assertEqual(len(self.client.get("/v1/persons", token=self.dong_worker, query={"rrn": rrn}).json["items"]),
                         1)
        acc = self.client.post("/v1/referrals/%s/accept" % r2.json["id"], {"program": "integrated", "note": "연락 완료"},
                               token=self.dong_worker)
        self.assertEqual(acc.status, 200, acc.text)
        self.assertEqual(acc.json["case"]["person_id"], pid)
        # an old number whose check digit fails is taken, with the warning in the answer
        old = rrn_with_bad_check(make_rrn(datetime.date(1949, 3, 1), "F"))
        r3 = self.client.post("/v1/referrals", dict(body, person={"name": "노정자", "rrn": old}, agency_ref="x-3"),
                              token=self.pension_token)
        self.assertEqual(r3.status, 201, r3.text)
        self.assertEqual([w["code"] for w in r3.json["warnings"]], ["rrn_check_digit"])
        # a birth date that disagrees with the number names the field
        bad = dict(body, person={"name": "오하준", "rrn": rrn, "birth_date": "2012-05-20"}, agency_ref="x-4")
        self.assertError(self.client.post("/v1/referrals", bad, token=self.pension_token), 422,
                         "validation_failed", field="person.birth_date")

    def test_agency_status_reply_reaches_the_worker(self):
        p = self.make_person()
        case = self.make_case(p["id"])
        c = self.client.post("/v1/persons/%s/consents" % p["id"], {"purpose": "referral", "scope": ["microfinance"]},
                             token=self.worker1).json
        ref = self.client.post("/v1/referrals", {"person_id": p["id"], "from_case_id": case["id"],
                                                 "to_agency": "microfinance", "reason": "채무", "opinion": "상담 필요",
                                                 "consent_id": c["id"]}, token=self.worker1).json
        out = self.mock.call("POST", "/_reply", {"sarye": self.server.url, "token": self.mf_token,
                                                "referral_id": ref["id"], "status": "접수"})
        self.assertEqual(out["status"], 200, out)
        self.assertEqual((out["body"]["agency_status"], out["body"]["status"]), ("received", "accepted"))
        out = self.mock.call("POST", "/_reply", {"sarye": self.server.url, "token": self.mf_token,
                                                "referral_id": ref["id"], "status": "완료"})
        self.assertEqual(out["body"]["agency_status"], "completed")
        ev = self.list_all("/v1/cases/%s/events" % case["id"], self.worker1)
        self.assertEqual([e["data"]["status"] for e in ev if e["type"] == "agency_status"], ["received", "completed"])
        out = self.mock.call("POST", "/_reply", {"sarye": self.server.url, "token": self.mf_token,
                                                "referral_id": ref["id"], "status": "weird"})
        self.assertEqual(out["status"], 422)
        out = self.mock.call("POST", "/_reply", {"sarye": self.server.url, "token": self.pension_token,
                                                "referral_id": ref["id"], "status": "접수"})
        self.assertEqual(out["status"], 404)

    def test_sigkill_with_messages_in_flight_loses_nothing(self):
        self.mock.mode("slow", delay_ms=1500)
        refs = [self.refer_to_microfinance() for _ in range(3)]
        wait_until(lambda: self.mock.state()["attempts"] >= 1, what="messages in flight")
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.proc.wait(30)
        self.mock.mode("up")
        self.server.start()
        self.client.close()
        ids = {r["id"] for r in refs}
        wait_until(lambda: ids <= {m["body"]["referral_id"] for m in self.mock.state()["received"]}, timeout=30,
                   what="every message after the restart")
        st = self.mock.state()
        self.assertTrue(all(n == 1 for n in st["effects"].values()), st["effects"])


LOOKUP_PROBE = r'''
-- A program whose intake asks the eligibility agency (ssis) first.
return {
  id = "lookup_probe", kind = "program", version = "0.1.0", api = 1, name = "자격 조회 시험",
  stages = { { id = "discovery", label = "발굴" }, { id = "intake", label = "접수" } },
  transitions = { discovery = { "intake" } },
  prepare = {
    intake = function(case, input, ctx)
      if input.data.elsewhere then return sarye.http.post(input.data.elsewhere, "/x", {}) end
      return sarye.http.post("ssis", "/lookup", { person_id = case.person_id })
    end,
  },
  guards = {
    ["discovery->intake"] = function(case, input, ctx)
      local facts = input.prepared.lookup_probe
      if not facts.basic_pension then return false, "기초연금 수급자가 아님 (행복e음 조회)" end
      return true
    end,
  },
  hooks = { enter = { intake = function(case, input, ctx)
    if input.data.http_in_tx then sarye.http.post("ssis", "/lookup", {}) end
    if input.data.notify then ctx.enqueue("microfinance", { type = "notice", case_id = case.id }) end
  end } },
}
'''


class LookupTest(unittest.TestCase):
    """sarye.http: a synchronous look-up before the transaction, bounded,
    only to configured agencies."""

    @classmethod
    def setUpClass(cls):
        cls.mock = MockAgency()
        cls.plugdir = tempfile.mkdtemp(prefix="sarye-lookup-")
        shutil.copytree(os.path.join(SOURCE, "plugins"), cls.plugdir, dirs_exist_ok=True)
        with open(os.path.join(cls.plugdir, "programs", "lookup_probe.lua"), "w") as f:
            f.write(LOOKUP_PROBE)
        cls.server = Server(extra_args=("--plugins", cls.plugdir),
                            env={"SARYE_AGENCY_SSIS_URL": cls.mock.url, "SARYE_AGENCY_SSIS_TIMEOUT_MS": "500",
                                 "SARYE_AGENCY_MICROFINANCE_URL": cls.mock.url + "/notices"})
        cls.server.org_create("o1", "상도1동", "emd", "11590", ["lookup_probe"])
        cls.server.org_create("ssis", "사회보장정보원 (행복e음)", "agency", "11590")
        cls.tok = cls.server.token_create("w", "worker", "o1")
        cls.client = cls.server.client(token=cls.tok)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        try:
            rc = cls.server.stop()
        finally:
            cls.server.close()
            cls.mock.close()
            shutil.rmtree(cls.plugdir, ignore_errors=True)
        assert rc == 0, rc

    def case(self, consent=True):
        """A case whose person consents to sharing with ssis (a look-up sends their data)."""
        p = self.client.post("/v1/persons", {"name": "한노인", "birth_date": "1950-01-01", "sex": "F"}).json
        if consent:
            r = self.client.post("/v1/persons/%s/consents" % p["id"], {"purpose": "case_management", "scope": ["ssis"]})
            assert r.status == 201, r.text
        return self.client.post("/v1/cases", {"person_id": p["id"], "program": "lookup_probe", "source": "walk_in"}).json

    def move(self, c, data=None):
        return self.client.post("/v1/cases/%s/transitions" % c["id"], {"to": "intake", "version": 1, "data": data or {}})

    def test_lookup_answers_reach_the_guard(self):
        self.mock.call("POST", "/_reset")
        self.mock.mode("up", lookup={"basic_pension": True, "livelihood_recipient": False})
        r = self.move(self.case())
        self.assertEqual(r.status, 200, r.text)
        self.mock.mode("up", lookup={"basic_pension": False})
        r = self.move(self.case())
        self.assertEqual(r.status, 422, r.text)
        self.assertIn("행복e음", r.json["error"]["details"]["reason"])

    def test_agency_timeout_is_503_and_changes_nothing(self):
        self.mock.mode("hang")
        c = self.case()
        r = self.move(c)
        self.assertEqual(r.status, 503, r.text)
        self.assertEqual(r.json["error"]["code"], "agency_unavailable")
        self.assertEqual(r.json["error"]["details"]["agency"], "ssis")
        now = self.client.get("/v1/cases/" + c["id"]).json
        self.assertEqual((now["stage"], now["version"]), ("discovery", 1))
        self.mock.mode("up", lookup={"basic_pension": True})

    def test_a_host_outside_the_configuration_is_refused(self):
        for target in ("http://127.0.0.1:9/steal", "nowhere"):
            r = self.move(self.case(), {"elsewhere": target})
            self.assertEqual(r.status, 422, r.text)
            self.assertEqual(r.json["error"]["code"], "agency_unavailable")

    def test_a_hook_queues_a_message_with_its_transaction(self):
        self.mock.call("POST", "/_reset")
        self.mock.mode("up", lookup={"basic_pension": True})
        c = self.case()
        r = self.move(c, {"notify": True})
        self.assertEqual(r.status, 200, r.text)
        got = wait_until(lambda: [m for m in self.mock.state()["received"] if m["path"] == "/notices"],
                         what="the hook's message")
        self.assertEqual((got[0]["kind"], got[0]["body"]), ("rule", {"type": "notice", "case_id": c["id"]}))
        # a refused move queues nothing
        self.mock.mode("up", lookup={"basic_pension": False})
        c2 = self.case()
        self.assertEqual(self.move(c2, {"notify": True}).status, 422)
        self.mock.mode("up", lookup={"basic_pension": True})
        time.sleep(0.3)
        self.assertFalse([m for m in self.mock.state()["received"] if m["body"].get("case_id") == c2["id"]])

    def test_no_lookups_inside_the_transaction(self):
        self.mock.mode("up", lookup={"basic_pension": True})
        r = self.move(self.case(), {"http_in_tx": True})
        self.assertEqual(r.status, 500, r.text)
        self.assertIn("sarye.http.post cannot be called in a hook (only in: lookup, prepare)", r.json["error"]["message"])


class ElderlyCareLookupTest(unittest.TestCase):
    """노인맞춤돌봄: eligibility from the national qualification data (ssis),
    asked before the case opens when the person's consent allows, cached on
    the person with its date; the agency down is a 503 and nothing changes."""

    @classmethod
    def setUpClass(cls):
        cls.mock = MockAgency()
        cls.server = Server(env={"SARYE_AGENCY_SSIS_URL": cls.mock.url, "SARYE_AGENCY_SSIS_TIMEOUT_MS": "500",
                                 "SARYE_CLOCK_ADJUSTABLE": "on"})
        s = cls.server
        s.org_create("dj-elderly", "동작노인종합복지관", "provider", "11590", ["elderly_care"])
        s.org_create("ssis", "사회보장정보원 (행복e음)", "agency", "11590")
        cls.client = s.client(token=s.token_create("w", "worker", "dj-elderly"))
        cls.admin = s.client(token=s.token_create("op", "operator"))
        cls.admin.request("PUT", "/v1/admin/clock", {"today": "2026-06-01"})

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.admin.close()
        try:
            rc = cls.server.stop()
        finally:
            cls.server.close()
            cls.mock.close()
        assert rc == 0, rc

    def person(self, consent=True):
        p = self.client.post("/v1/persons", {"name": "나노인", "birth_date": "1948-03-03", "sex": "F"}).json
        if consent:
            r = self.client.post("/v1/persons/%s/consents" % p["id"], {"purpose": "case_management", "scope": ["ssis"]})
            assert r.status == 201, r.text
        return p

    def open(self, p):
        return self.client.post("/v1/cases", {"person_id": p["id"], "program": "elderly_care", "source": "walk_in"})

    def test_eligible_by_the_national_data_and_cached(self):
        self.mock.call("POST", "/_reset")
        self.mock.mode("up", lookup={"basic_pension": True, "ltc_grade": None})
        p = self.person()
        r = self.open(p)
        self.assertEqual(r.status, 201, r.text)
        person = self.client.get("/v1/persons/" + p["id"]).json
        self.assertEqual(person["eligibility"]["ssis"]["basic_pension"], True)
        self.assertEqual(person["eligibility"]["ssis"]["checked_on"], "2026-06-01")
        # a second case within 30 days uses the cached answer: no new call
        self.mock.mode("hang")
        r = self.open(p)
        self.assertEqual(r.status, 201, r.text)
        self.mock.mode("up", lookup={})

    def test_without_consent_only_recorded_facts_count(self):
        self.mock.mode("up", lookup={"basic_pension": True})
        p = self.person(consent=False)
        r = self.open(p)
        self.assertEqual(r.status, 422, r.text)
        self.assertEqual(r.json["error"]["code"], "not_eligible")

    def test_national_data_showing_a_care_grade_refuses(self):
        self.mock.mode("up", lookup={"basic_pension": True, "ltc_grade": 2})
        r = self.open(self.person())
        self.assertEqual(r.status, 422, r.text)
        self.assertIn("장기요양", r.json["error"]["details"]["reason"])

    def test_agency_down_is_503_and_nothing_changes(self):
        self.mock.mode("hang")
        p = self.person()
        r = self.open(p)
        self.assertEqual(r.status, 503, r.text)
        self.assertEqual(r.json["error"]["details"]["agency"], "ssis")
        cases = self.client.get("/v1/cases", query={"limit": 500}).json["items"]
        self.assertEqual([c for c in cases if c["person_id"] == p["id"]], [])
        self.assertNotIn("ssis", self.client.get("/v1/persons/" + p["id"]).json["eligibility"])
        self.mock.mode("up", lookup={})


# A region plugin whose hook queues as many messages as it is told, to the
# agency it is told.
COURIER = r'''
return {
  id = "courier", kind = "region", version = "1.0.0", api = 1, name = "전령 지역",
  regions = { "99995", "99996" },
  programs = { integrated = { hooks = { enter = { initial_counseling = function(case, input, ctx)
    for i = 1, input.data.messages do ctx.enqueue(input.data.agency, { case_id = case.id, n = i }) end
  end } } } },
}
'''


class CourierTest(unittest.TestCase):
    """A server whose region plugin queues as many messages as it is told,
    to the agency it is told, for a worker of region 99995 or 99996; each
    agency of AGENCIES ({agency: attribute}) a mock of its own, which holds
    nothing back once the class is done."""
    AGENCIES = {}
    CONCURRENCY = 4

    @classmethod
    def setUpClass(cls):
        cls.plugdir = plugin_dir("sarye-courier-", {"regions/courier.lua": COURIER})
        env = {"SARYE_OUTBOX_CONCURRENCY": str(cls.CONCURRENCY)}
        cls.mocks = []
        for agency, attr in cls.AGENCIES.items():
            mock = MockAgency()
            cls.mocks.append(mock)
            setattr(cls, attr, mock)
            env["SARYE_AGENCY_%s_URL" % agency.upper()] = mock.url + "/" + agency
            env["SARYE_AGENCY_%s_TIMEOUT_MS" % agency.upper()] = "60000"
        cls.server = Server(extra_args=("--plugins", cls.plugdir), env=env)
        cls.server.org_create("a1", "전령 동 가", "emd", "99995", ["integrated"])
        cls.server.org_create("b1", "전령 동 나", "emd", "99996", ["integrated"])
        cls.tok_a = cls.server.token_create("wa", "worker", "a1")
        cls.tok_b = cls.server.token_create("wb", "worker", "b1")
        cls.client = cls.server.client()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        try:
            for mock in cls.mocks:
                mock.mode("up")  # the held requests are answered
            rc = cls.server.stop()
        finally:
            cls.server.close()
            for mock in cls.mocks:
                mock.close()
            shutil.rmtree(cls.plugdir, ignore_errors=True)
        assert rc == 0, rc

    def queue(self, agency, token=None):
        """A case of the token's region (99995 by default) moved with one message to agency; its id."""
        token = token or self.tok_a
        p = self.client.post("/v1/persons", {"name": "전령", "birth_date": "1960-01-01", "sex": "M"}, token=token).json
        c = self.client.post("/v1/cases", {"person_id": p["id"], "program": "integrated", "source": "walk_in"},
                             token=token).json
        r = self.client.post("/v1/cases/%s/transitions" % c["id"],
                             {"to": "initial_counseling", "version": c["version"],
                              "data": {"agency": agency, "messages": 1}}, token=token)
        self.assertEqual(r.status, 200, r.text)
        return c["id"]


class OutboxShareTest(CourierTest):
    """One agency slow to answer does not hold the others' messages: it
    keeps at most three quarters of the deliveries in flight, and the
    agencies take turns in the queue. With outbox.concurrency 4, four
    messages to an agency that holds every request, then one to another:
    that one is delivered while the three others are held (before, the
    four held every slot until the slow agency's timeout)."""
    AGENCIES = {"microfinance": "slow", "pension": "fast"}

    def test_a_slow_agency_leaves_room_for_the_others(self):
        self.slow.mode("hold")
        for _ in range(4):  # four cases: the messages of one case go one at a time, in order
            self.queue("microfinance")
        wait_until(lambda: self.slow.state()["inflight"] == 3, what="three deliveries held by the slow agency")
        case_id = self.queue("pension")
        got = wait_until(lambda: self.fast.state()["received"], timeout=30, what="the other agency's message")
        self.assertEqual(got[0]["body"], {"case_id": case_id, "n": 1})
        # ... while the slow agency still holds three, and the fourth waits its turn
        st = self.slow.state()
        self.assertEqual((st["inflight"], st["max_inflight"], len(st["received"])), (3, 3, 0))


class OutboxLinesTest(CourierTest):
    """Messages to one agency wait on a line per region, and the lines take
    turns: of their oldest messages, the line served longest ago goes first.
    With one delivery to the agency at a time (outbox.concurrency 2: one
    agency keeps at most one), region 99995 queues three messages, the first
    held by the agency; then region 99996 queues one. Once the agency
    answers, 99996's goes next, before 99995's second (before, the oldest
    went first: 99995's whole pile)."""
    AGENCIES = {"pension": "agency"}
    CONCURRENCY = 2

    def test_a_region_pile_does_not_hold_another_regions_message(self):
        self.agency.mode("hold")
        a = [self.queue("pension")]
        wait_until(lambda: self.agency.state()["inflight"] == 1, what="the first message held")
        a += [self.queue("pension"), self.queue("pension")]
        b = self.queue("pension", token=self.tok_b)
        self.agency.mode("up")
        got = wait_until(lambda: len(self.agency.state()["received"]) >= 4 and self.agency.state()["received"],
                         timeout=30, what="the four messages")
        self.assertEqual([m["body"]["case_id"] for m in got], [a[0], b, a[1], a[2]])
        self.assertEqual(self.agency.state()["max_inflight"], 1)


if __name__ == "__main__":
    unittest.main()
