"""The authorization matrix: every endpoint with every role (and none).
This table is written independently of the server's route table: a route
added, removed or opened to another role fails here until both agree."""
import json
import os
import unittest

from harness import ORG1, SOURCE, ApiTest

W, S, G, A, D = "worker", "supervisor", "agency", "auditor", "admin"
STAFF = {W, S, D}
ALL = {W, S, G, A, D}
PUBLIC = None

MATRIX = {
    ("GET", "/healthz"): PUBLIC, ("GET", "/readyz"): PUBLIC, ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("POST", "/v1/orgs"): {D}, ("POST", "/v1/tokens"): {D},
    ("GET", "/v1/orgs/{id}/sharing-rights/{user}"): {S, D}, ("PUT", "/v1/orgs/{id}/sharing-rights/{user}"): {S, D},
    ("POST", "/v1/orgs/{id}/sharing-rights/{user}/approve"): {S, D},
    ("POST", "/v1/households"): STAFF, ("GET", "/v1/households/{id}"): STAFF | {A},
    ("POST", "/v1/persons"): STAFF, ("GET", "/v1/persons"): STAFF | {A},
    ("GET", "/v1/persons/{id}"): STAFF | {A}, ("PUT", "/v1/persons/{id}/eligibility"): STAFF,
    ("POST", "/v1/persons/{id}/consents"): STAFF, ("GET", "/v1/persons/{id}/consents"): STAFF | {A},
    ("POST", "/v1/persons/{id}/consents/{consent_id}/revoke"): STAFF,
    ("POST", "/v1/referrals"): STAFF | {G}, ("GET", "/v1/referrals"): STAFF | {A},
    ("GET", "/v1/referrals/{id}"): STAFF | {A}, ("POST", "/v1/referrals/{id}/accept"): STAFF,
    ("POST", "/v1/referrals/{id}/reject"): STAFF, ("POST", "/v1/referrals/{id}/closure-review"): STAFF,
    ("POST", "/v1/referrals/{id}/agency-status"): {G},
    ("POST", "/v1/cases"): STAFF, ("GET", "/v1/cases"): STAFF | {A}, ("GET", "/v1/cases/{id}"): STAFF | {A},
    ("GET", "/v1/cases/{id}/events"): STAFF | {A}, ("POST", "/v1/cases/{id}/transitions"): STAFF,
    ("POST", "/v1/cases/{id}/counseling"): STAFF, ("POST", "/v1/cases/{id}/assessments"): STAFF,
    ("POST", "/v1/cases/{id}/plans"): STAFF, ("GET", "/v1/cases/{id}/plans"): STAFF | {A},
    ("POST", "/v1/cases/{id}/plans/{plan_id}/approve"): {S},
    ("POST", "/v1/cases/{id}/services"): STAFF, ("POST", "/v1/cases/{id}/checks"): STAFF,
    ("POST", "/v1/cases/{id}/closure"): STAFF, ("POST", "/v1/cases/{id}/follow-ups"): STAFF,
    ("GET", "/v1/cases/{id}/records"): STAFF | {A}, ("POST", "/v1/meetings"): STAFF,
    ("GET", "/v1/deadlines"): STAFF | {A}, ("GET", "/v1/persons/{id}/one-screen"): STAFF | {A},
    ("GET", "/v1/admin/clock"): {D}, ("PUT", "/v1/admin/clock"): {D},
    ("GET", "/v1/programs"): ALL, ("GET", "/v1/programs/{id}"): ALL,
    ("GET", "/v1/admin/plugins"): {D}, ("POST", "/v1/admin/plugins/reload"): {D},
    ("POST", "/v1/admin/plugins/replay"): {D},
    ("GET", "/v1/admin/outbox"): {D}, ("POST", "/v1/admin/outbox/{id}/retry"): {D},
    ("GET", "/v1/audit"): {A}, ("GET", "/v1/exports/cases"): {S, A, D},
}


class AuthzTest(ApiTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server.org_create("microfinance", "서민금융진흥원", "agency", "11590")
        cls.tokens = {W: cls.worker1, S: cls.supervisor1, A: cls.auditor1, D: cls.admin1,
                      G: cls.server.token_create("mf", "agency", "microfinance")}

    def test_the_matrix_covers_every_described_route(self):
        with open(os.path.join(SOURCE, "core", "http", "openapi.json"), encoding="utf-8") as f:
            spec = json.load(f)
        described = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
        self.assertEqual(described, set(MATRIX))

    def test_every_route_with_every_role(self):
        for (method, pattern), allowed in sorted(MATRIX.items()):
            path = pattern.replace("{id}", "x_nonexistent").replace("{plan_id}", "x_plan").replace(
                "{consent_id}", "x_consent").replace("{user}", "x_user")
            body = {} if method in ("POST", "PUT") else None
            for role in [None] + sorted(ALL):
                with self.subTest(route="%s %s" % (method, pattern), role=role):
                    r = self.client.request(method, path, body=body, token=self.tokens.get(role, "") or None,
                                            headers={"Authorization": None} if role is None else None)
                    if allowed is PUBLIC:
                        self.assertEqual(r.status, 200, r.text)
                    elif role is None:
                        self.assertError(r, 401, "unauthorized")
                    elif role not in allowed:
                        self.assertError(r, 403, "forbidden")
                    else:
                        # allowed through: whatever the fake id or empty body earns, never 401/403
                        # (but the test clock, which stays fixed on this server)
                        if (method, pattern) == ("PUT", "/v1/admin/clock"):
                            self.assertError(r, 403, "clock_not_adjustable")
                        else:
                            self.assertNotIn(r.status, (401, 403), r.text)


if __name__ == "__main__":
    unittest.main()
