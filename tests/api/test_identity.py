"""Who is asking, and what the trail says of it: tokens that end (an expiry,
revocation by the API and the command line, 401 with WWW-Authenticate at
once), system operators apart from administrators, the outbox and the audit
trail within their scope, every disclosure naming its persons, denied
attempts recorded, and no answer that tells a person exists elsewhere."""
import datetime
import re
import sqlite3
import time
import unittest

from harness import ORG1, ORG2, REGION, SCALE, ApiTest, Server, unique_hangul

ISO = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_time(s):
    return datetime.datetime.strptime(s, ISO).replace(tzinfo=datetime.timezone.utc)


def wait_until(cond, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout * SCALE
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class TokenTest(ApiTest):
    def audit(self, **query):
        r = self.client.get("/v1/audit", token=self.auditor1, query=dict(query, limit=500))
        self.assertEqual(r.status, 200, r.text)
        return r.json["items"]

    def test_a_token_expires_after_its_days_and_lists_never_show_it(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        r = self.client.post("/v1/tokens", {"user": "기간제", "role": "worker", "org": ORG1, "ttl_days": 30},
                             token=self.admin1)
        self.assertEqual(r.status, 201, r.text)
        tok = r.json
        self.assertTrue(tok["token"].startswith(tok["prefix"]), tok)
        self.assertEqual(len(tok["prefix"]), 9)
        left = parse_time(tok["expires_at"]) - now
        self.assertTrue(datetime.timedelta(days=29, hours=23) < left < datetime.timedelta(days=30, hours=1), left)
        # the default: auth.token_ttl_days (90)
        d = self.client.post("/v1/tokens", {"user": "기본", "role": "worker", "org": ORG1}, token=self.admin1).json
        left = parse_time(d["expires_at"]) - now
        self.assertTrue(datetime.timedelta(days=89, hours=23) < left < datetime.timedelta(days=90, hours=1), left)
        for bad in (0, 3651, "30", 1.5):
            self.assertError(self.client.post("/v1/tokens", {"user": "x", "role": "worker", "org": ORG1, "ttl_days": bad},
                                              token=self.admin1), 400, field="ttl_days")
        # listed by id and prefix, never whole, never its hash
        page = self.client.get("/v1/tokens", token=self.admin1, query={"org": ORG1, "limit": 500})
        self.assertEqual(page.status, 200, page.text)
        mine = [t for t in page.json["items"] if t["id"] == tok["id"]][0]
        self.assertEqual((mine["prefix"], mine["user"], mine["role"], mine["org"], mine["status"], mine["created_by"]),
                         (tok["prefix"], "기간제", "worker", ORG1, "active", "admin1"))
        self.assertEqual(mine["expires_at"], tok["expires_at"])
        self.assertNotIn("token", mine)
        self.assertNotIn(tok["token"], page.text)
        self.assertNotIn(tok["token"][9:], page.text)
        # an organisation's admin lists its own organisation's tokens only
        others = self.client.get("/v1/tokens", token=self.admin2, query={"limit": 500}).json["items"]
        self.assertEqual({t["org"] for t in others}, {ORG2})
        self.assertEqual(self.client.get("/v1/tokens", token=self.admin2, query={"org": ORG1}).json["items"], [])

    def test_revoked_at_once_with_a_challenge_and_audited(self):
        r = self.client.post("/v1/tokens", {"user": "퇴사자", "role": "worker", "org": ORG1}, token=self.admin1)
        created_rid = r.header("X-Request-Id")
        tok = r.json
        c = self.new_client(token=tok["token"])
        # used once, so the server holds it in its one-second cache of resolved tokens
        self.assertEqual(c.get("/v1/persons").status, 200)
        rv = self.client.post("/v1/tokens/%s/revoke" % tok["id"], token=self.admin1)
        self.assertEqual(rv.status, 200, rv.text)
        self.assertEqual((rv.json["status"], rv.json["revoked_by"]), ("revoked", "admin1"))
        # refused on the very next request, cache or not
        r = c.get("/v1/persons")
        self.assertError(r, 401, "unauthorized")
        self.assertIn("revoked", r.json["error"]["message"])
        self.assertRegex(r.header("WWW-Authenticate"), r'^Bearer realm="sarye", error="invalid_token", '
                                                       r'error_description="[^"]*revoked[^"]*"$')
        self.assertError(self.client.post("/v1/tokens/%s/revoke" % tok["id"], token=self.admin1), 409, "token_revoked")
        # another organisation's admin does not know it exists
        self.assertError(self.client.post("/v1/tokens/%s/revoke" % tok["id"], token=self.admin2), 404)
        self.assertError(self.client.post("/v1/tokens/tok_nothing/revoke", token=self.admin1), 404)
        # both recorded: who, what, which token
        rows = [x for x in self.audit(actor="admin1") if x["purpose"] == tok["id"]]
        self.assertEqual([(x["action"], x["status"]) for x in rows],
                         [("POST /v1/tokens", 201), ("POST /v1/tokens/{id}/revoke", 200)])
        self.assertEqual(rows[0]["request_id"], created_rid)
        self.assertEqual(rows[1]["request_id"], rv.header("X-Request-Id"))

    def test_missing_unknown_and_expired_tokens_are_challenged(self):
        r = self.client.get("/v1/cases", headers={"Authorization": None})
        self.assertError(r, 401, "unauthorized")
        self.assertEqual(r.header("WWW-Authenticate"), 'Bearer realm="sarye"')
        r = self.client.get("/v1/cases", token="sy_" + "A" * 43)
        self.assertError(r, 401, "unauthorized")
        self.assertEqual(r.header("WWW-Authenticate"),
                         'Bearer realm="sarye", error="invalid_token", error_description="unknown bearer token"')
        # an expired token: its expiry moved into the past in the database (the server's
        # cache of resolved tokens holds it at most a second, with the expiry it read)
        tok = self.client.post("/v1/tokens", {"user": "만료", "role": "worker", "org": ORG1}, token=self.admin1).json
        c = self.new_client(token=tok["token"])
        self.assertEqual(c.get("/v1/cases").status, 200)
        db = sqlite3.connect(self.server.db)
        try:
            db.execute("UPDATE tokens SET expires_at = '2020-01-01T00:00:00.000Z' WHERE id = ?", (tok["id"],))
            db.commit()
        finally:
            db.close()
        r = wait_until(lambda: (lambda x: x if x.status == 401 else None)(c.get("/v1/cases")), what="the expiry")
        self.assertError(r, 401, "unauthorized")
        self.assertIn("expired at 2020-01-01T00:00:00.000Z", r.json["error"]["message"])
        self.assertIn('error="invalid_token"', r.header("WWW-Authenticate"))
        listed = [t for t in self.client.get("/v1/tokens", token=self.admin1, query={"limit": 500}).json["items"]
                  if t["id"] == tok["id"]]
        self.assertEqual(listed[0]["status"], "expired")

    def test_the_command_line_lists_and_revokes(self):
        tok = self.client.post("/v1/tokens", {"user": "cli-victim", "role": "auditor", "org": ORG1},
                               token=self.admin1).json
        c = self.new_client(token=tok["token"])
        self.assertEqual(c.get("/v1/audit").status, 200)
        out = self.server.run_cli("token", "list", "--org", ORG1).stdout
        line = [x for x in out.splitlines() if x.startswith(tok["id"] + "\t")]
        self.assertEqual(len(line), 1, out)
        self.assertEqual(line[0].split("\t")[:6], [tok["id"], tok["prefix"], "cli-victim", "auditor", ORG1, "active"])
        self.assertNotIn(tok["token"], out)
        rv = self.server.run_cli("token", "revoke", "--id", tok["id"])
        self.assertRegex(rv.stdout.strip(), r"^\d{4}-\d\d-\d\dT")
        # another process: the server's one-second cache lets it through at most that long
        r = wait_until(lambda: (lambda x: x if x.status == 401 else None)(c.get("/v1/audit")), what="the revocation")
        self.assertIn("revoked", r.json["error"]["message"])
        again = self.server.run_cli("token", "revoke", "--id", tok["id"], check=False)
        self.assertEqual(again.returncode, 1)
        self.assertIn("already revoked", again.stderr)
        self.assertEqual(self.server.run_cli("token", "revoke", check=False).returncode, 2)
        # recorded, as the command line's doing
        rows = [x for x in self.audit(actor="cli") if x["purpose"] == tok["id"]]
        self.assertEqual([(x["action"], x["role"], x["org"]) for x in rows],
                         [("POST /v1/tokens/{id}/revoke", "operator", "")])

    def test_system_operators_are_bootstrapped_and_kept_apart(self):
        op = self.server.token_create("root", "operator")
        bad = self.server.run_cli("token", "create", "--user", "x", "--role", "operator", "--org", ORG1, check=False)
        self.assertEqual(bad.returncode, 2)
        self.assertEqual(self.server.run_cli("token", "create", "--user", "x", "--role", "admin",
                                             check=False).returncode, 2)
        # an operator mints operators; nobody else does
        r = self.client.post("/v1/tokens", {"user": "root2", "role": "operator"}, token=op)
        self.assertEqual(r.status, 201, r.text)
        self.assertIsNone(r.json["org"])
        self.assertError(self.client.post("/v1/tokens", {"user": "x", "role": "operator"}, token=self.admin1), 403)
        self.assertError(self.client.post("/v1/tokens", {"user": "x", "role": "operator", "org": ORG1}, token=op),
                         400, field="org")
        self.assertError(self.client.post("/v1/tokens", {"user": "x", "role": "worker"}, token=op), 400, field="org")
        self.assertError(self.client.post("/v1/tokens", {"user": "x", "role": "agency", "org": ORG1}, token=op),
                         422, field="role")
        # operators run the system, and see no personal data
        for path in ("/v1/persons", "/v1/cases", "/v1/audit", "/v1/deadlines", "/v1/exports/cases"):
            self.assertError(self.client.get(path, token=op), 403, "forbidden")
        # only operators see operators' tokens
        ops = [t for t in self.client.get("/v1/tokens", token=op, query={"limit": 500}).json["items"]
               if t["role"] == "operator"]
        self.assertTrue(ops and all(t["org"] is None for t in ops))
        self.assertFalse([t for t in self.client.get("/v1/tokens", token=self.admin1, query={"limit": 500}).json["items"]
                          if t["role"] == "operator"])
        # an org admin administers its organisation only: no organisations, no other organisation's tokens
        self.assertError(self.client.post("/v1/orgs", {"name": "x", "type": "emd", "region": REGION}, token=self.admin1),
                         403, "forbidden")
        self.assertError(self.client.post("/v1/tokens", {"user": "x", "role": "worker", "org": ORG2},
                                          token=self.admin1), 403, "forbidden")
        r = self.client.post("/v1/tokens", {"user": "동료", "role": "supervisor", "org": ORG1}, token=self.admin1)
        self.assertEqual(r.status, 201, r.text)


class ConfiguredTtlTest(unittest.TestCase):
    def test_the_configured_default_and_never(self):
        srv = Server(env={"SARYE_AUTH_TOKEN_TTL_DAYS": "7"})
        try:
            srv.org_create("o1", "x", "emd", REGION, ["integrated"])
            op = srv.token_create("op", "operator")
            c = srv.client(token=op)
            now = datetime.datetime.now(datetime.timezone.utc)
            t = c.post("/v1/tokens", {"user": "u", "role": "worker", "org": "o1"}).json
            left = parse_time(t["expires_at"]) - now
            self.assertTrue(datetime.timedelta(days=6, hours=23) < left < datetime.timedelta(days=7, hours=1), left)
            never = srv.run_cli("token", "create", "--user", "u", "--role", "worker", "--org", "o1",
                                env={"SARYE_AUTH_TOKEN_TTL_DAYS": "0"}).stdout.strip()
            self.assertEqual(srv.client(token=never).get("/v1/persons").status, 200)
            listed = srv.run_cli("token", "list", env={"SARYE_AUTH_TOKEN_TTL_DAYS": "0"}).stdout.splitlines()
            self.assertIn("-", [x.split("\t")[6] for x in listed])  # never expires
            c.close()
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.close()


class ScopeAndDisclosureTest(ApiTest):
    """The outbox and the audit trail within their scope; every disclosure
    names its persons; denied attempts are recorded."""
    server_env = {"SARYE_AGENCY_MICROFINANCE_URL": "http://127.0.0.1:9/refer",
                  "SARYE_OUTBOX_RETRY_BASE_MS": "600000", "SARYE_OUTBOX_RETRY_MAX_MS": "600000"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        s.org_create("microfinance", "서민금융진흥원", "agency", REGION)
        s.org_create("dist-a", "동작구청", "district", REGION, ["integrated"])
        s.org_create("dong-b", "역삼1동", "emd", "11680", ["integrated"])
        cls.auditor2 = s.token_create("auditor2", "auditor", ORG2)
        cls.auditor_district = s.token_create("auditor-d", "auditor", "dist-a")
        cls.auditor_b = s.token_create("auditor-b", "auditor", "dong-b")
        cls.admin_district = s.token_create("admin-d", "admin", "dist-a")

    def audit(self, token=None, **query):
        query = {k: v for k, v in query.items() if v is not None}
        r = self.client.get("/v1/audit", token=token or self.auditor1, query=dict(query, limit=500))
        self.assertEqual(r.status, 200, r.text)
        return r.json["items"]

    def named(self, person_id, request_id, token=None):
        rows = [x for x in self.audit(token, person_id=person_id) if x["request_id"] == request_id]
        self.assertEqual(len(rows), 1, "no one record of request %s names %s" % (request_id, person_id))
        return rows[0]

    def test_lists_name_every_person_they_disclose(self):
        prefix = unique_hangul(3)
        people = [self.make_person(name=prefix + unique_hangul(1)) for _ in range(3)]
        ids = sorted(p["id"] for p in people)
        r = self.client.get("/v1/persons", token=self.worker1, query={"name": prefix})
        self.assertEqual(sorted(x["id"] for x in r.json["items"]), ids)
        for pid in ids:
            row = self.named(pid, r.header("X-Request-Id"))
            self.assertEqual(sorted(row["persons"]), ids)
            self.assertEqual((row["action"], row["actor"], row["status"]), ("GET /v1/persons", "worker1", 200))
        # a household names its members; a case list, a referral list, exports their persons
        hh = self.make_household(members=[{"person_id": ids[0]}, {"person_id": ids[1]}])
        r = self.client.get("/v1/households/" + hh["id"], token=self.supervisor1)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(sorted(self.named(ids[1], r.header("X-Request-Id"))["persons"]), ids[:2])
        cases = [self.make_case(pid) for pid in ids]
        r = self.client.get("/v1/cases", token=self.worker1, query={"limit": 500})
        for c in cases:
            self.named(c["person_id"], r.header("X-Request-Id"))
        r = self.client.get("/v1/exports/cases", token=self.supervisor1, query={"limit": 500})
        for pid in ids:
            self.assertNotIn(pid, r.text)  # de-identified, yet the trail knows whom it disclosed
            self.named(pid, r.header("X-Request-Id"))
        consent = self.client.post("/v1/persons/%s/consents" % ids[2], {"purpose": "referral", "scope": [ORG2]},
                                   token=self.worker1).json
        ref = self.client.post("/v1/referrals", {"person_id": ids[2], "to_org": ORG2, "to_program": "integrated",
                                                 "reason": "r", "opinion": "o", "consent_id": consent["id"]},
                               token=self.worker1)
        self.assertEqual(ref.status, 201, ref.text)
        r = self.client.get("/v1/referrals", token=self.worker2, query={"direction": "in", "limit": 500})
        self.named(ids[2], r.header("X-Request-Id"))
        # a case's history does not name its person; the trail does
        r = self.client.get("/v1/cases/%s/events" % cases[0]["id"], token=self.worker1)
        self.assertEqual(self.named(ids[0], r.header("X-Request-Id"))["case_id"], cases[0]["id"])

    def test_denied_attempts_are_recorded_with_actor_and_target(self):
        p = self.make_person()
        c = self.make_case(p["id"])
        attempts = [
            (self.client.get("/v1/cases/" + c["id"], token=self.worker2), 404, None, c["id"]),
            (self.client.get("/v1/persons/%s/one-screen" % p["id"], token=self.worker2), 404, p["id"], None),
            (self.client.post("/v1/cases", {"person_id": p["id"], "program": "integrated", "source": "walk_in"},
                              token=self.worker2), 422, p["id"], None),
            (self.client.get("/v1/persons/" + p["id"], token=self.operator), 403, p["id"], None),
        ]
        for r, status, person, case in attempts:
            self.assertEqual(r.status, status, r.text)
            rows = [x for x in self.audit(actor=None) if x["request_id"] == r.header("X-Request-Id")]
            self.assertEqual(len(rows), 1, r.text)
            self.assertEqual((rows[0]["status"], rows[0]["person_id"], rows[0]["case_id"]), (status, person, case))
        # found by the person they were after, by whoever oversees either side
        worker2 = [x for x in self.audit(person_id=p["id"]) if x["actor"] == "worker2"]
        self.assertEqual({x["status"] for x in worker2}, {404, 422})
        self.assertTrue([x for x in self.audit(self.auditor2, actor="worker2") if x["person_id"] == p["id"]])
        # nothing was disclosed by them: no 2xx of worker2 names the person
        self.assertFalse([x for x in worker2 if x["status"] < 300])

    def test_auditors_read_their_own_region_only(self):
        p = self.make_person()
        r = self.client.get("/v1/persons/" + p["id"], token=self.worker1)
        rid = r.header("X-Request-Id")
        self.named(p["id"], rid)                                 # ORG1's auditor
        self.named(p["id"], rid, token=self.auditor_district)    # its district's auditor
        for tok in (self.auditor2, self.auditor_b):              # another dong centre, another region
            self.assertFalse([x for x in self.audit(tok, person_id=p["id"])])
            self.assertFalse([x for x in self.audit(tok) if x["request_id"] == rid])
        # ORG2's own records stay ORG2's
        q = self.make_person(token=self.worker2)
        mine = [x for x in self.audit(self.auditor2, person_id=q["id"])]
        self.assertEqual([x["action"] for x in mine], ["POST /v1/persons"])
        self.assertFalse(self.audit(person_id=q["id"]))
        self.assertTrue(self.audit(self.auditor_district, person_id=q["id"]))

    def test_outbox_payloads_are_scoped_and_their_reading_audited(self):
        p = self.make_person(name="연계대상", phone="010-2222-3333")
        consent = self.client.post("/v1/persons/%s/consents" % p["id"], {"purpose": "referral", "scope": ["microfinance"]},
                                   token=self.worker1).json
        ref = self.client.post("/v1/referrals", {"person_id": p["id"], "to_agency": "microfinance", "reason": "채무",
                                                 "opinion": "상담 연계", "consent_id": consent["id"]}, token=self.worker1)
        self.assertEqual(ref.status, 201, ref.text)
        mine = lambda tok: [m for m in self.client.get("/v1/admin/outbox", token=tok,  # noqa: E731
                                                       query={"limit": 500}).json["items"]
                            if m["topic"] == ref.json["id"]]
        r = self.client.get("/v1/admin/outbox", token=self.admin1, query={"limit": 500})
        msg = [m for m in r.json["items"] if m["topic"] == ref.json["id"]][0]
        self.assertEqual((msg["org"], msg["person_id"]), (ORG1, p["id"]))
        self.assertEqual(msg["payload"]["person"]["name"], "연계대상")
        row = self.named(p["id"], r.header("X-Request-Id"))
        self.assertEqual((row["action"], row["actor"]), ("GET /v1/admin/outbox", "admin1"))
        self.assertEqual(len(mine(self.admin_district)), 1)        # the district administers its region
        self.assertEqual(mine(self.admin2), [])                    # another dong centre sees none of it
        op = mine(self.operator)[0]                                # an operator: every message, no personal data
        self.assertEqual((op["id"], op["payload"], op["person_id"]), (msg["id"], None, None))
        self.assertNotIn("연계대상", self.client.get("/v1/admin/outbox", token=self.operator,
                                                  query={"limit": 500}).text)
        self.assertError(self.client.post("/v1/admin/outbox/%s/retry" % msg["id"], token=self.admin2), 404)
        self.assertError(self.client.post("/v1/admin/outbox/%s/retry" % msg["id"], token=self.admin1), 409, "not_dead")


class ExistenceOracleTest(ApiTest):
    """A person of another organisation, seen by one with no right to it, is
    answered exactly as a person that does not exist."""

    def test_another_organisations_person_and_a_made_up_id_answer_the_same(self):
        p = self.make_person(token=self.worker1)
        made_up = "per_" + "0" * 26
        probes = [
            ("GET", "/v1/persons/{id}", None), ("GET", "/v1/persons/{id}/one-screen", None),
            ("GET", "/v1/persons/{id}/consents", None), ("PUT", "/v1/persons/{id}/eligibility", {}),
            ("POST", "/v1/persons/{id}/consents", {"purpose": "counseling", "scope": [ORG2]}),
            ("POST", "/v1/persons/{id}/consents/cns_x/revoke", None),
            ("POST", "/v1/cases", {"person_id": "{id}", "program": "integrated", "source": "walk_in"}),
            ("POST", "/v1/households", {"address": "x", "members": [{"person_id": "{id}"}]}),
            ("POST", "/v1/referrals", {"person_id": "{id}", "to_org": ORG1, "reason": "r", "opinion": "o",
                                       "consent_id": "cns_x"}),
        ]
        # one-screen under a consent that does not open it (a referral consent naming ORG2) too
        self.client.post("/v1/persons/%s/consents" % p["id"], {"purpose": "referral", "scope": [ORG2]}, token=self.worker1)
        for method, path, body in probes:
            answers = []
            for pid in (p["id"], made_up):
                b = None if body is None else {k: (v.replace("{id}", pid) if isinstance(v, str) else
                                                   [{kk: vv.replace("{id}", pid) for kk, vv in m.items()} for m in v]
                                                   if isinstance(v, list) and v and isinstance(v[0], dict) else v)
                                               for k, v in body.items()}
                r = self.client.request(method, path.replace("{id}", pid), body=b, token=self.worker2)
                answers.append((r.status, re.sub(re.escape(pid), "<id>", r.text)))
            with self.subTest(route="%s %s" % (method, path)):
                self.assertIn(answers[0][0], (404, 422), answers[0])
                self.assertEqual(answers[0], answers[1])


if __name__ == "__main__":
    unittest.main()
