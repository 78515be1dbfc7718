"""The authorization matrix: every route x every role x organisations of two
regions.

The routes, and the roles each lets in, come from the API description
(core/http/openapi.json, `x-roles`, which test_openapi holds equal to the
server's route table), so a route the server gains is probed here at once.
What a principal whose role is let in may then reach is its organisation's
scope, written here once per route (SCOPE): a route without a scope rule
fails the test. Every probe is a real request on the records of one dong
centre (ORG1, region 11590) — a person, their household, case, plan,
consents, referrals, an outbox message, a token — made by the principals of
every role in six organisations of two regions (two dong centres, their
district and a provider in 11590; a dong centre and its district in 11680),
an agency and a system operator.

Outcomes: "ok" (let through to the record: any answer but 401, 403 and 404;
for a list, the record is in it), "hidden" (404, as if the record did not
exist; for a list, it is not in it) and "denied" (403).
"""
import collections
import json
import os
import unittest

from harness import ORG1, ORG2, REGION, SOURCE, ApiTest, unique_hangul

R1, R2 = REGION, "11680"
D1, P1, B1, D2, AG = "az-district-1", "az-provider-1", "az-dong-2", "az-district-2", "microfinance"
ORGS = {ORG1: ("emd", R1), ORG2: ("emd", R1), D1: ("district", R1), P1: ("provider", R1),
        B1: ("emd", R2), D2: ("district", R2)}
STAFF_ROLES = ("worker", "supervisor", "auditor", "admin")

Principal = collections.namedtuple("Principal", "name role org type region token")


def spec_routes():
    with open(os.path.join(SOURCE, "core", "http", "openapi.json"), encoding="utf-8") as f:
        spec = json.load(f)
    out = {}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            out[(method.upper(), path)] = op.get("x-roles")
    return out


# ---- who reaches ORG1's records ----
def own(p):
    return p.org == ORG1


def sees(p):
    """A person's, household's or case's data: its organisation, and the district of its region."""
    return own(p) or (p.type == "district" and p.region == R1)


def oversees(p):
    """Administration and audit of ORG1: a system operator, ORG1, the district of its region."""
    return p.role == "operator" or sees(p)


def ok_if(pred, otherwise="hidden"):
    return lambda p: "ok" if pred(p) else otherwise


ANY = lambda p: "ok"  # noqa: E731  (a route with no organisation to reach)


class AuthzTest(ApiTest):
    server_env = {"SARYE_AGENCY_MICROFINANCE_URL": "http://127.0.0.1:9/refer",  # nobody answers: it stays queued
                  "SARYE_OUTBOX_RETRY_BASE_MS": "600000", "SARYE_OUTBOX_RETRY_MAX_MS": "600000"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s, c = cls.server, cls.client
        for org, (kind, region) in ORGS.items():
            if org not in (ORG1, ORG2):
                s.org_create(org, "기관 " + org, kind, region, ["integrated"])
        s.org_create(AG, "서민금융진흥원", "agency", R1)
        cls.principals = [Principal(None, None, None, None, None, None)]
        for org, (kind, region) in ORGS.items():
            for role in STAFF_ROLES:
                name = "%s-%s" % (role, org)
                cls.principals.append(Principal(name, role, org, kind, region, s.token_create(name, role, org)))
        cls.principals.append(Principal("mf", "agency", AG, "agency", R1, s.token_create("mf", "agency", AG)))
        cls.principals.append(Principal("op", "operator", None, None, None, cls.operator))

        # ORG1's records, which the matrix probes
        w, sup = cls.worker1, cls.supervisor1

        def ok(r, status=(200, 201)):
            assert r.status in ((status,) if isinstance(status, int) else status), r.text
            return r.json
        cls.name = unique_hangul(4)
        r = c.post("/v1/persons", {"name": cls.name, "birth_date": "1961-02-03", "sex": "F"}, token=w)
        cls.person = ok(r)["id"]
        cls.person_rid = r.header("X-Request-Id")
        cls.household = ok(c.post("/v1/households", {"address": "서울특별시 동작구 상도로 1",
                                                     "members": [{"person_id": cls.person}]}, token=w))["id"]
        consent = lambda purpose, scope: ok(c.post("/v1/persons/%s/consents" % cls.person,  # noqa: E731
                                                   {"purpose": purpose, "scope": scope}, token=w))["id"]
        cls.consent = consent("referral", [ORG2])
        cls.consent_to_revoke = consent("counseling", [ORG1])
        cls.consent_agency = consent("referral", [AG])
        # a merge of two records of one person, for unmerge to find
        keep, dup = (ok(c.post("/v1/persons", {"name": "병합 " + cls.name, "birth_date": "1950-05-05", "sex": "M"},
                               token=w))["id"] for _ in range(2))
        cls.merge = ok(c.post("/v1/persons/%s/merge" % keep, {"duplicate_id": dup}, token=sup))["merge"]["id"]
        cls.merge_kept = keep
        case = ok(c.post("/v1/cases", {"person_id": cls.person, "program": "integrated", "source": "walk_in"}, token=w))
        for to in ("initial_counseling", "intake", "assessment", "selection", "planning"):
            if to == "selection":
                case = ok(c.post("/v1/cases/%s/assessments" % case["id"], {
                    "kind": "needs", "domains": {"economy": {"note": "생계 곤란"}},
                    "expected_intervention_months": 3}, token=w))["case"]
            body = {"to": to, "version": case["version"]}
            if to == "planning":
                body["data"] = {"selection": "case_management"}
            case = ok(c.post("/v1/cases/%s/transitions" % case["id"], body, token=w))
        cls.case = case["id"]
        cls.plan = ok(c.post("/v1/cases/%s/plans" % cls.case, {"goals": [{"term": "short", "text": "체납 공과금 해소"}]},
                             token=w))["id"]
        refer = {"person_id": cls.person, "reason": "상담 필요", "opinion": "연계 희망"}
        cls.referral = ok(c.post("/v1/referrals", dict(refer, to_org=ORG2, to_program="integrated",
                                                       consent_id=cls.consent), token=w))["id"]
        cls.referral_agency = ok(c.post("/v1/referrals", dict(refer, to_agency=AG, consent_id=cls.consent_agency),
                                        token=w))["id"]
        msgs = ok(c.get("/v1/admin/outbox", token=cls.operator))["items"]
        cls.message = [m["id"] for m in msgs if m["topic"] == cls.referral_agency][0]
        # a welfare resource of ORG1's alone, its one seat taken by the case, a second case waiting for it
        cls.resource = ok(c.post("/v1/resources", {
            "name": "탐침 자원", "provider": {"name": "탐침 복지관", "type": "facility"}, "kind": "goods",
            "domains": ["probe"], "targets": ["elderly"], "capacity": 1, "share_scope": "none"}, token=w))["id"]
        cls.allocation = ok(c.post("/v1/resources/%s/reservations" % cls.resource,
                                   {"case_id": cls.case, "need": "탐침"}, token=w))["allocation"]["id"]
        waiting = ok(c.post("/v1/cases", {"person_id": cls.merge_kept, "program": "integrated", "source": "walk_in"},
                            token=w))
        cls.waiting = ok(c.post("/v1/resources/%s/reservations" % cls.resource,
                                {"case_id": waiting["id"], "need": "탐침"}, token=w))["waitlist"]["id"]
        # a case of ORG1's with an open deadline once every fixture is made (the plan met the first one)
        for to in ("initial_counseling", "intake"):  # intake: its plan is due within 30 days
            waiting = ok(c.post("/v1/cases/%s/transitions" % waiting["id"], {"to": to, "version": waiting["version"]},
                                token=w))
        dues = [x for x in (cls.case, waiting["id"]) if ok(c.get("/v1/cases/" + x, token=w))["due"]]
        assert dues, "no case of the fixture has a deadline to list"
        cls.deadline_case = dues[0]
        cls.token_victim = ok(c.post("/v1/tokens", {"user": "victim", "role": "worker", "org": ORG1},
                                     token=cls.admin1))["id"]
        ok(c.request("PUT", "/v1/orgs/%s/sharing-rights/worker1" % ORG1,
                     {"training_on": "2026-01-02", "pledge_on": "2026-01-02"}, token=sup))
        cls.sup = sup

    # ---- what each route is asked, and who reaches ORG1 through it ----
    def scope(self):
        P, C, H, R, RA = self.person, self.case, self.household, self.referral, self.referral_agency
        items = lambda key, want: lambda r: any(x.get(key) == want for x in r.json["items"])  # noqa: E731
        date = "2026-06-01"
        return {
            # organisations and tokens: a system operator, or the administrator of ORG1 (its own, its district)
            ("POST", "/v1/orgs"): dict(body={"name": "탐침", "type": "emd", "region": R1},
                                       rule=lambda p: "ok" if p.role == "operator" or (p.type == "district" and p.region == R1)
                                       else "denied"),
            ("POST", "/v1/tokens"): dict(body={"user": "probe", "role": "worker", "org": ORG1},
                                         rule=ok_if(oversees, "denied")),
            ("GET", "/v1/tokens"): dict(shows=items("id", self.token_victim), rule=ok_if(oversees)),
            ("POST", "/v1/tokens/{id}/revoke"): dict(ids={"id": self.token_victim}, rule=ok_if(oversees)),
            # sharing rights of ORG1's workers: ORG1 records them, its district approves
            ("GET", "/v1/orgs/{id}/sharing-rights/{user}"): dict(ids={"id": ORG1, "user": "worker1"},
                                                                rule=ok_if(sees, "denied")),
            ("PUT", "/v1/orgs/{id}/sharing-rights/{user}"): dict(
                ids={"id": ORG1, "user": "worker1"}, body={"training_on": date, "pledge_on": date},
                rule=ok_if(own, "denied")),
            ("POST", "/v1/orgs/{id}/sharing-rights/{user}/approve"): dict(
                ids={"id": ORG1, "user": "worker1"}, rule=ok_if(lambda p: p.type == "district" and p.region == R1,
                                                                "denied")),
            # persons and households of ORG1: ORG1 and its district read; ORG1 writes
            ("POST", "/v1/households"): dict(body={"address": "탐침로 1", "members": [{"person_id": P}]},
                                             rule=ok_if(own)),
            ("GET", "/v1/households/{id}"): dict(ids={"id": H}, rule=ok_if(sees)),
            ("POST", "/v1/persons"): dict(body={"name": "탐침", "birth_date": "1990-01-01", "sex": "M"}, rule=ANY),
            ("GET", "/v1/persons"): dict(query={"name": self.name}, shows=items("id", P), rule=ok_if(sees)),
            ("GET", "/v1/persons/{id}"): dict(ids={"id": P}, rule=ok_if(sees)),
            ("PUT", "/v1/persons/{id}/eligibility"): dict(ids={"id": P}, body={"기초연금": True}, rule=ok_if(own)),
            # one person, one record: ORG1's supervisors and admins merge its records (P into itself: 422)
            ("POST", "/v1/persons/{id}/merge"): dict(ids={"id": P}, body={"duplicate_id": P}, rule=self.merge_rule),
            ("POST", "/v1/persons/{id}/unmerge"): dict(ids={"id": self.merge_kept}, body={"merge_id": self.merge},
                                                       rule=self.merge_rule),
            ("GET", "/v1/persons/{id}/merges"): dict(ids={"id": P}, rule=ok_if(sees)),
            ("POST", "/v1/persons/{id}/consents"): dict(ids={"id": P}, body={"purpose": "counseling", "scope": [ORG1]},
                                                        rule=ok_if(sees)),
            ("GET", "/v1/persons/{id}/consents"): dict(ids={"id": P}, rule=ok_if(sees)),
            ("POST", "/v1/persons/{id}/consents/{consent_id}/revoke"): dict(
                ids={"id": P, "consent_id": self.consent_to_revoke}, rule=ok_if(sees)),
            ("GET", "/v1/persons/{id}/one-screen"): dict(
                ids={"id": P}, rule=lambda p: "denied" if p.type == "provider" else "ok" if sees(p) else "hidden"),
            # referrals: the two ends of ORG1's referral to ORG2 (the agency's: its own referral)
            ("POST", "/v1/referrals"): dict(body={"person_id": P, "to_org": ORG2, "to_program": "integrated",
                                                  "reason": "탐침", "opinion": "탐침", "consent_id": self.consent},
                                            rule=lambda p: "ok" if sees(p) or p.role == "agency" else "hidden"),
            ("GET", "/v1/referrals"): dict(shows=lambda r: any(x["id"] == R for x in r.json["items"]),
                                           query_both=True, rule=ok_if(lambda p: p.org in (ORG1, ORG2))),
            ("GET", "/v1/referrals/{id}"): dict(ids={"id": R}, rule=ok_if(lambda p: p.org in (ORG1, ORG2))),
            ("POST", "/v1/referrals/{id}/accept"): dict(
                ids={"id": R}, body={"note": "탐침"},
                rule=lambda p: "ok" if p.org == ORG2 else "denied" if p.org == ORG1 else "hidden"),
            ("POST", "/v1/referrals/{id}/reject"): dict(
                ids={"id": R}, body={"note": "탐침"},
                rule=lambda p: "ok" if p.org == ORG2 else "denied" if p.org == ORG1 else "hidden"),
            ("POST", "/v1/referrals/{id}/closure-review"): dict(
                ids={"id": R}, body={"appropriate": True, "note": "탐침"},
                rule=lambda p: "ok" if own(p) else "denied" if p.org == ORG2 else "hidden"),
            ("POST", "/v1/referrals/{id}/agency-status"): dict(ids={"id": RA}, body={"status": "RECEIVED"},
                                                               rule=ok_if(lambda p: p.org == AG)),
            # ORG1's case: ORG1 and its district
            ("POST", "/v1/cases"): dict(body={"person_id": P, "program": "integrated", "source": "walk_in"},
                                        rule=ok_if(sees)),
            ("GET", "/v1/cases"): dict(shows=items("id", C), rule=ok_if(sees)),
            ("GET", "/v1/cases/{id}"): dict(ids={"id": C}, rule=ok_if(sees)),
            ("GET", "/v1/cases/{id}/events"): dict(ids={"id": C}, rule=ok_if(sees)),
            # reassignment by ORG1's supervisors and admins (an old version: 412, nothing changes)
            ("POST", "/v1/cases/{id}/assignment"): dict(ids={"id": C}, body={"assigned_to": "worker1", "version": 1},
                                                        rule=self.merge_rule),
            ("POST", "/v1/cases/{id}/transitions"): dict(ids={"id": C}, body={"to": "delivery", "version": 99999},
                                                         rule=ok_if(sees)),
            ("POST", "/v1/cases/{id}/counseling"): dict(ids={"id": C}, body={"case_type": "general"},
                                                        rule=ok_if(sees)),
            ("POST", "/v1/cases/{id}/assessments"): dict(
                ids={"id": C}, body={"kind": "needs", "domains": {"economy": {"note": "탐침"}}}, rule=ok_if(sees)),
            ("POST", "/v1/cases/{id}/plans"): dict(ids={"id": C},
                                                   body={"goals": [{"term": "short", "text": "탐침 목표"}]},
                                                   rule=ok_if(sees)),
            ("GET", "/v1/cases/{id}/plans"): dict(ids={"id": C}, rule=ok_if(sees)),
            ("POST", "/v1/cases/{id}/plans/{plan_id}/approve"): dict(ids={"id": C, "plan_id": self.plan},
                                                                     rule=ok_if(sees)),
            ("POST", "/v1/cases/{id}/services"): dict(ids={"id": C},
                                                      body={"date": date, "provider": "탐침", "content": "탐침"},
                                                      rule=ok_if(sees)),
            ("POST", "/v1/cases/{id}/checks"): dict(ids={"id": C}, body={"date": date, "with": "본인", "content": "탐침"},
                                                    rule=ok_if(sees)),
            ("POST", "/v1/cases/{id}/closure"): dict(ids={"id": C}, body={"reason": "탐침", "evaluation": "탐침"},
                                                     rule=ok_if(sees)),
            ("POST", "/v1/cases/{id}/follow-ups"): dict(ids={"id": C}, body={"date": date, "content": "탐침"},
                                                        rule=ok_if(sees)),
            ("GET", "/v1/cases/{id}/records"): dict(ids={"id": C}, rule=ok_if(sees)),
            ("POST", "/v1/meetings"): dict(body={"type": "internal", "case_ids": [C], "held_on": date,
                                                 "participants": [{"org": ORG1, "role": "사례관리자"}]},
                                           rule=ok_if(sees)),
            # a case's consultations, like its other records
            ("POST", "/v1/cases/{id}/consultations"): dict(
                ids={"id": C}, body={"held_on": date, "with_org": D1, "content": "탐침"}, rule=ok_if(sees)),
            # a provider head's approval of a look-up
            # (a provider's head approves its worker's look-up of a person it does not see yet: its consent
            # decides; any other organisation is told no approval is needed, which says nothing of the person)
            ("POST", "/v1/persons/{id}/lookup-approvals"): dict(
                ids={"id": P}, body={"user": "worker1", "consent_id": self.consent}, rule=ANY),
            ("GET", "/v1/persons/{id}/lookup-approvals"): dict(ids={"id": P}, rule=ok_if(sees)),
            # the first contact of a referral: by its receiver
            ("POST", "/v1/referrals/{id}/contacts"): dict(
                ids={"id": R}, body={"contacted_on": date, "method": "phone", "reached": True},
                rule=lambda p: "ok" if p.org == ORG2 else "denied" if p.org == ORG1 else "hidden"),
            # welfare resources: ORG1's, shared with nobody; anyone registers its own
            ("POST", "/v1/resources"): dict(body={}, rule=ANY),
            ("GET", "/v1/resources"): dict(shows=items("id", self.resource), rule=ok_if(own)),
            ("GET", "/v1/resources/{id}"): dict(ids={"id": self.resource}, rule=ok_if(own)),
            ("PUT", "/v1/resources/{id}/capacity"): dict(ids={"id": self.resource}, body={"capacity": 1, "version": 999},
                                                         rule=ok_if(own)),
            ("POST", "/v1/resources/{id}/reservations"): dict(ids={"id": self.resource},
                                                              body={"case_id": C, "need": "탐침"}, rule=ok_if(own)),
            ("GET", "/v1/resources/{id}/waitlist"): dict(ids={"id": self.resource}, rule=ok_if(own)),
            ("POST", "/v1/resources/{id}/allocations/{allocation_id}/release"): dict(
                ids={"id": self.resource, "allocation_id": self.allocation}, rule=ok_if(own)),
            # the waitlist: of ORG1's case
            ("POST", "/v1/waitlist"): dict(body={"case_id": C, "need": "탐침", "domain": "probe"}, rule=ok_if(sees)),
            ("GET", "/v1/waitlist"): dict(shows=items("id", self.waiting), rule=ok_if(own)),  # an organisation's own
            ("GET", "/v1/waitlist/{id}"): dict(ids={"id": self.waiting}, rule=ok_if(sees)),
            ("POST", "/v1/waitlist/{id}/accept"): dict(ids={"id": self.waiting}, rule=ok_if(sees)),
            ("POST", "/v1/waitlist/{id}/decline"): dict(ids={"id": self.waiting}, body={"note": "탐침"}, rule=ok_if(sees)),
            ("POST", "/v1/waitlist/{id}/end"): dict(ids={"id": self.waiting}, body={"reason": "cancelled"}, rule=ok_if(sees)),
            # an organisation's own deadlines only (its district has its own)
            ("GET", "/v1/deadlines"): dict(shows=items("case_id", self.deadline_case), rule=ok_if(own)),
            ("GET", "/v1/exports/cases"): dict(shows=items("case_id", C), rule=ok_if(sees)),
            # global: no organisation to reach
            ("GET", "/v1/admin/clock"): dict(rule=ANY),
            ("PUT", "/v1/admin/clock"): dict(body={"today": date}, rule=lambda p: "denied"),  # not adjustable here
            ("GET", "/v1/programs"): dict(rule=ANY),
            ("GET", "/v1/programs/{id}"): dict(ids={"id": "integrated"}, rule=ANY),
            ("GET", "/v1/admin/plugins"): dict(rule=ANY),
            ("POST", "/v1/admin/plugins/reload"): dict(rule=ANY),
            ("GET", "/v1/admin/plugins/candidate"): dict(rule=ANY),
            ("POST", "/v1/admin/plugins/replay"): dict(body={"files": []}, rule=ANY),
            # the outbox (personal data): the administrators of ORG1; a system operator without the data
            ("GET", "/v1/admin/outbox"): dict(shows=items("id", self.message), rule=ok_if(oversees)),
            ("POST", "/v1/admin/outbox/{id}/retry"): dict(ids={"id": self.message}, rule=ok_if(oversees)),
            # the audit trail: the auditors overseeing ORG1 see what its workers did
            ("GET", "/v1/audit"): dict(query={"person_id": P}, shows=items("request_id", self.person_rid),
                                       rule=ok_if(oversees)),
        }

    @staticmethod
    def merge_rule(p):
        """ORG1's own records: its district sees them but may not change them."""
        return "ok" if own(p) else "denied" if sees(p) else "hidden"

    def probe(self, method, pattern, rule, p):
        path = pattern
        for k, v in rule.get("ids", {}).items():
            path = path.replace("{%s}" % k, v)
        body = rule.get("body", {} if method in ("POST", "PUT") else None)
        hdrs = {"Authorization": None} if p.token is None else None
        if not rule.get("query_both"):
            return self.client.request(method, path, body=body, token=p.token, headers=hdrs, query=rule.get("query")), None
        a = self.client.request(method, path, token=p.token, headers=hdrs, query={"direction": "out"})
        b = self.client.request(method, path, token=p.token, headers=hdrs, query={"direction": "in"})
        return a, b

    def test_every_route_has_roles_and_a_scope_rule(self):
        routes, scope = spec_routes(), self.scope()
        public = {k for k, roles in routes.items() if not k[1].startswith("/v1/")}
        missing_roles = sorted(k for k, roles in routes.items() if roles is None)
        self.assertEqual(missing_roles, [], "routes without x-roles in openapi.json")
        self.assertEqual(sorted(set(routes) - public - set(scope)), [], "routes without a scope rule in SCOPE")
        self.assertEqual(sorted(set(scope) - set(routes)), [], "scope rules for routes that do not exist")

    def test_every_route_with_every_role_in_every_organisation(self):
        routes, scope = spec_routes(), self.scope()
        for (method, pattern), roles in sorted(routes.items()):
            if not pattern.startswith("/v1/"):
                for p in self.principals[:2]:
                    r = self.client.request(method, pattern.replace("{file}", "app.js"), token=p.token,
                                            headers={"Authorization": None} if p.token is None else None)
                    self.assertEqual(r.status, 200, "%s %s is public: %s" % (method, pattern, r.text))
                continue
            rule = scope[(method, pattern)]
            for p in self.principals:
                with self.subTest(route="%s %s" % (method, pattern), who=p.name):
                    r, r2 = self.probe(method, pattern, rule, p)
                    where = "%s %s as %s: %d %s" % (method, pattern, p.name, r.status, r.text[:300])
                    if p.token is None:
                        self.assertError(r, 401, "unauthorized")
                        self.assertEqual(r.header("WWW-Authenticate"), 'Bearer realm="sarye"', where)
                        continue
                    if p.role not in roles:
                        self.assertError(r, 403, "forbidden")
                        continue
                    want = rule["rule"](p)
                    if "shows" in rule:
                        self.assertEqual(r.status, 200, where)
                        shown = rule["shows"](r) or (r2 is not None and rule["shows"](r2))
                        self.assertEqual("ok" if shown else "hidden", want, where)
                    elif want == "ok":
                        self.assertNotIn(r.status, (401, 403, 404), where)
                    elif want == "hidden":  # 404, or a body's reference to it unknown (422 unknown_person ...)
                        self.assertTrue(r.status == 404 or (r.status == 422 and r.json["error"]["code"].startswith(
                            "unknown_")), where)
                    else:
                        self.assertEqual(r.status, 403, where)

    def test_administrators_of_another_region_reach_nothing_of_this_one(self):
        """The attack of issue 11: an admin of region 11680 mints a supervisor token for a dong
        centre of 11590 and reads its persons; creates a fake district in 11590."""
        admin_b = [p for p in self.principals if p.role == "admin" and p.org == D2][0].token
        r = self.client.post("/v1/tokens", {"user": "spy", "role": "supervisor", "org": ORG1}, token=admin_b)
        self.assertError(r, 403, "forbidden")
        r = self.client.post("/v1/orgs", {"id": "fake-district", "name": "가짜 구청", "type": "district",
                                          "region": R1}, token=admin_b)
        self.assertError(r, 403, "forbidden")
        r = self.client.post("/v1/orgs", {"id": "fake-district", "name": "가짜 구청", "type": "district",
                                          "region": R2}, token=admin_b)
        self.assertError(r, 403, "forbidden")  # districts and agencies are a system operator's
        self.assertError(self.client.get("/v1/persons/" + self.person, token=admin_b), 404)
        self.assertEqual(self.client.get("/v1/persons", token=admin_b, query={"name": self.name}).json["items"], [])
        # in its own region it administers what is there
        r = self.client.post("/v1/orgs", {"name": "신사동 주민센터", "type": "emd", "region": R2,
                                          "programs": ["integrated"]}, token=admin_b)
        self.assertEqual(r.status, 201, r.text)
        r = self.client.post("/v1/tokens", {"user": "new", "role": "worker", "org": r.json["id"]}, token=admin_b)
        self.assertEqual(r.status, 201, r.text)
        # and a district's administrator never mints a system operator
        r = self.client.post("/v1/tokens", {"user": "root", "role": "operator"}, token=admin_b)
        self.assertError(r, 403, "forbidden")


if __name__ == "__main__":
    unittest.main()
