"""
test_foundation.py: the foundation of the HTTP API, against a real server:
operations endpoints, request ids and framing, the error shape, tokens and
roles, persons (Korean text, ages, RRNs), search, households, cases, org
isolation, pagination, Idempotency-Key, body limits and parsing,
configuration errors, graceful shutdown and durability settings.

Run: cd tests/api && SARYE_TEST_BIN=../../build/sarye python3 -m unittest -v test_foundation
"""
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unicodedata
import unittest

from harness import (ORG1, ORG2, REGION, SCALE, ApiTest, Client, Server, ServerError,
                     clean_env, foreign_rrn, make_rrn, new_style_rrn, raw_request, rrn_check_digit,
                     rrn_with_bad_check, run_cli, today_kst, unique_hangul, unique_id, BIN, SOURCE)

STAGES = ["discovery", "initial_counseling", "intake", "assessment", "selection", "planning",
          "delivery", "monitoring", "closure", "follow_up"]
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def intl_age(birth, today):
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def years_before(d, n):
    try:
        return d.replace(year=d.year - n)
    except ValueError:  # 29 February
        return d.replace(year=d.year - n, day=28)


def rrn_from_parts(yymmdd, s7, serial="12345"):
    first12 = yymmdd + str(s7) + serial
    full = first12 + str(rrn_check_digit(first12))
    return full[:6] + "-" + full[6:]


def single_raw(test, port, request_bytes):
    """One request with Connection: close over a plain socket; returns
    (status, headers, body) where body is everything after the header block
    up to EOF, so Content-Length can be compared with what really came."""
    res = raw_request("127.0.0.1", port, request_bytes)
    data = res.data
    head, sep, body = data.partition(b"\r\n\r\n")
    test.assertTrue(sep, "no complete response: %r" % data[:300])
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode("latin-1")
    return status, headers, body


# ---------------------------------------------------------------------------
class OpsTest(ApiTest):
    """/healthz, /readyz, /metrics, /openapi.json, request ids, framing."""

    def test_healthz_without_auth(self):
        for hdrs in ({}, {"Authorization": "Bearer not-a-token"}):
            r = self.client.get("/healthz", headers=hdrs)
            self.assertEqual(r.status, 200, r.text)
            self.assertEqual(r.json, {"status": "ok"})
            self.assertTrue(r.header("Content-Type").startswith("application/json"))

    def test_readyz(self):
        r = self.client.get("/readyz")
        self.assertEqual(r.status, 200, r.text)
        self.assertIsInstance(r.json, dict)

    @staticmethod
    def parse_metrics(text):
        samples = {}
        line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = line_re.match(line)
            assert m, "not a Prometheus sample line: %r" % line
            labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or "")))
            samples[(m.group(1), labels)] = float(m.group(4))
        return samples

    def metric(self, samples, name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def test_metrics_prometheus_text_with_route_labels(self):
        r = self.client.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/plain"), r.header("Content-Type"))
        self.assertIn("# TYPE sarye_http_requests_total counter", r.text)
        self.assertIn("# TYPE sarye_http_request_duration_seconds histogram", r.text)
        before = self.parse_metrics(r.text)
        for _ in range(3):
            self.assertEqual(self.client.get("/healthz").status, 200)
        # a parameterised route is labelled with its pattern, not the raw path
        missing = self.client.get("/v1/persons/per_does_not_exist", token=self.worker1)
        self.assertEqual(missing.status, 404)
        r = self.client.get("/metrics")
        after = self.parse_metrics(r.text)
        self.assertIn("sarye_http_requests_total{", r.text)
        self.assertIn("sarye_http_request_duration_seconds_bucket{", r.text)
        hz = dict(method="GET", route="/healthz", status="200")
        self.assertEqual(self.metric(after, "sarye_http_requests_total", **hz)
                         - self.metric(before, "sarye_http_requests_total", **hz), 3)
        pz = dict(method="GET", route="/v1/persons/{id}", status="404")
        self.assertEqual(self.metric(after, "sarye_http_requests_total", **pz)
                         - self.metric(before, "sarye_http_requests_total", **pz), 1)
        self.assertNotIn("per_does_not_exist", r.text)
        inf = dict(method="GET", route="/healthz", le="+Inf")
        self.assertEqual(self.metric(after, "sarye_http_request_duration_seconds_bucket", **inf)
                         - self.metric(before, "sarye_http_request_duration_seconds_bucket", **inf), 3)
        cnt = dict(method="GET", route="/healthz")
        self.assertEqual(self.metric(after, "sarye_http_request_duration_seconds_count", **cnt),
                         self.metric(after, "sarye_http_request_duration_seconds_bucket", **inf))
        # buckets are cumulative
        buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in after.items()
                          if k[0] == "sarye_http_request_duration_seconds_bucket"
                          and dict(k[1]).get("route") == "/healthz"), key=lambda x: x[0])
        self.assertGreater(len(buckets), 3)
        values = [v for _, v in buckets]
        self.assertEqual(values, sorted(values), "histogram buckets are not cumulative")

    def test_openapi_is_31(self):
        r = self.client.get("/openapi.json")
        self.assertEqual(r.status, 200)
        doc = json.loads(r.body.decode("utf-8"))
        self.assertIsInstance(doc.get("openapi"), str)
        self.assertTrue(doc["openapi"].startswith("3.1"), doc.get("openapi"))
        self.assertIsInstance(doc.get("paths"), dict)

    def test_openapi_describes_every_served_route(self):
        """API.md: the served description must match what the server does."""
        doc = self.client.get("/openapi.json").json
        served = [("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"),
                  ("get", "/openapi.json"), ("post", "/v1/orgs"), ("post", "/v1/tokens"),
                  ("post", "/v1/households"), ("get", "/v1/households/{id}"),
                  ("post", "/v1/persons"), ("get", "/v1/persons"), ("get", "/v1/persons/{id}"),
                  ("post", "/v1/cases"), ("get", "/v1/cases"), ("get", "/v1/cases/{id}"),
                  ("get", "/v1/cases/{id}/events")]
        paths = doc.get("paths") or {}
        missing = [m.upper() + " " + p for m, p in served if m not in (paths.get(p) or {})]
        self.assertEqual(missing, [], "routes the server serves but /openapi.json does not describe")

    def test_every_response_has_request_id(self):
        c = self.client
        responses = [
            c.get("/healthz"), c.get("/readyz"), c.get("/metrics"), c.get("/openapi.json"),
            c.get("/nope"), c.post("/healthz", {}), c.get("/v1/persons"),
            c.get("/v1/persons", token="bogus"), c.post("/v1/orgs", {"name": "x"}, token=self.worker1),
            c.post("/v1/persons", raw=b"{", headers={"Content-Type": "application/json"},
                   token=self.worker1),
            c.post("/v1/persons", {"name": "x", "birth_date": "1990-01-01", "sex": "M"},
                   token=self.worker1),
            c.get("/v1/persons/nope", token=self.worker1),
        ]
        ids = []
        for r in responses:
            rid = r.header("X-Request-Id")
            self.assertTrue(rid, "no X-Request-Id on %d %s" % (r.status, r.text[:100]))
            ids.append(rid)
        self.assertEqual(len(set(ids)), len(ids), "request ids repeat: %s" % ids)

    def test_client_request_id_is_echoed_and_logged(self):
        for rid in ("abc-123_DEF.456", "r" * 71):
            r = self.client.get("/healthz", headers={"X-Request-Id": rid})
            self.assertEqual(r.header("X-Request-Id"), rid)
        rid = unique_id("req")
        r = self.client.get("/v1/persons/per_nope", token=self.worker1, headers={"X-Request-Id": rid})
        self.assertEqual(r.status, 404)
        self.assertEqual(r.header("X-Request-Id"), rid)
        self.assertTrue(self.server.wait_for_log("req=%s " % rid), "request id not in the access log")

    def test_unsafe_request_id_is_replaced(self):
        for bad in ("has space", "semi;colon", "quote\"", "x" * 200, "비밀".encode().decode("latin-1")):
            r = self.client.get("/healthz", headers={"X-Request-Id": bad})
            self.assertEqual(r.status, 200)
            rid = r.header("X-Request-Id")
            self.assertTrue(rid)
            self.assertNotEqual(rid, bad)
            self.assertRegex(rid, r"^[A-Za-z0-9._-]+$")

    def test_content_length_is_exact(self):
        body = json.dumps({"name": "홍길동", "birth_date": "1960-05-05", "sex": "M",
                           "address": "서울특별시 동작구 상도로 369"}, ensure_ascii=False).encode()
        requests = [
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            b"GET /openapi.json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            b"GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            b"GET /no/such/thing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            b"DELETE /v1/persons HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            b"GET /v1/persons HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            ("POST /v1/persons HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n\r\n"
             % (self.worker1, len(body))).encode() + body,
        ]
        for req in requests:
            with self.subTest(req=req[:40]):
                status, headers, got = single_raw(self, self.server.port, req)
                self.assertIn("content-length", headers)
                self.assertEqual(int(headers["content-length"]), len(got),
                                 "Content-Length %s but %d bytes came" % (headers["content-length"], len(got)))
                self.assertIn("x-request-id", headers)
                if req.startswith(b"POST"):
                    self.assertEqual(status, 201, got)
                    self.assertEqual(json.loads(got.decode("utf-8"))["name"], "홍길동")

    def test_protocol_errors_use_the_error_shape(self):
        """API.md: errors always have the JSON shape and every response has
        X-Request-Id, also when the request is not even valid HTTP."""
        cases = [
            b"GARBAGE\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20000 + b"\r\nConnection: close\r\n\r\n",
        ]
        for req in cases:
            with self.subTest(req=req[:30]):
                res = raw_request("127.0.0.1", self.server.port, req)
                self.assertTrue(res, "no response at all")
                status, headers, body = res[0]
                self.assertGreaterEqual(status, 400)
                self.assertIn("x-request-id", headers, "no X-Request-Id: %r" % res.data[:400])
                self.assertTrue(headers.get("content-type", "").startswith("application/json"),
                                "not JSON: %r" % res.data[:400])
                doc = json.loads(body.decode("utf-8"))
                self.assertEqual(set(doc["error"]), {"code", "message", "details"})
        self.assertEqual(self.client.get("/healthz").status, 200)


# ---------------------------------------------------------------------------
class AuthAdminTest(ApiTest):
    """401/403, organisations and tokens."""

    def test_401_without_or_with_bad_token(self):
        variants = [
            None,
            {"Authorization": "Bearer sy_unknown_token_value"},
            {"Authorization": "Bearer " + self.worker1[:-1] + ("A" if self.worker1[-1] != "A" else "B")},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer "},
            {"Authorization": "Basic " + self.worker1},
            {"Authorization": self.worker1},
            {"Authorization": "Bearer " + "x" * 5000},
        ]
        calls = [("GET", "/v1/persons", None), ("GET", "/v1/cases/cas_x", None),
                 ("POST", "/v1/persons", {"name": "a", "birth_date": "1990-01-01", "sex": "M"}),
                 ("POST", "/v1/orgs", {"name": "x", "type": "emd", "region": "1"})]
        for hdrs in variants:
            for method, path, body in calls:
                with self.subTest(auth=(hdrs or {}).get("Authorization", "")[:30], path=path):
                    r = self.client.request(method, path, body=body, token="", headers=hdrs)
                    self.assertError(r, 401, "unauthorized")

    def test_403_for_roles_without_the_right(self):
        oid = unique_id("org")
        org = {"id": oid, "name": "기관", "type": "emd", "region": REGION, "programs": ["integrated"]}
        for tok in (self.worker1, self.supervisor1, self.auditor1, self.worker2):
            r = self.client.post("/v1/orgs", org, token=tok)
            self.assertError(r, 403, "forbidden")
            r = self.client.post("/v1/tokens", {"user": "evil", "role": "admin", "org": ORG1}, token=tok)
            self.assertError(r, 403, "forbidden")
        r = self.client.post("/v1/persons", {"name": "감사", "birth_date": "1990-01-01", "sex": "M"},
                             token=self.auditor1)
        self.assertError(r, 403, "forbidden")
        self.assertEqual(self.client.get("/v1/persons", token=self.auditor1).status, 200)
        # the refused org was not created: a system operator can still take its id
        r = self.client.post("/v1/orgs", org, token=self.operator)
        self.assertEqual(r.status, 201, r.text)

    def test_operator_creates_org(self):
        oid = unique_id("org")
        body = {"id": oid, "name": "대방동 행정복지센터", "type": "emd", "region": "11590",
                "programs": ["integrated", "self_sufficiency"]}
        r = self.client.post("/v1/orgs", body, token=self.operator)
        self.assertEqual(r.status, 201, r.text)
        self.assertEqual(r.json["id"], oid)
        self.assertEqual(r.json["name"], "대방동 행정복지센터")
        self.assertEqual(r.json["type"], "emd")
        self.assertEqual(r.json["region"], "11590")
        self.assertEqual(sorted(r.json["programs"]), ["integrated", "self_sufficiency"])
        dup = self.client.post("/v1/orgs", dict(body, name="다른 이름"), token=self.operator)
        self.assertError(dup, 409)
        dup = self.client.post("/v1/orgs", {"id": ORG1, "name": "x", "type": "emd", "region": "11590"},
                               token=self.operator)
        self.assertError(dup, 409)
        # without an id one is generated
        r = self.client.post("/v1/orgs", {"name": "무명", "type": "provider", "region": "11590"},
                             token=self.operator)
        self.assertEqual(r.status, 201, r.text)
        self.assertTrue(r.json["id"])
        self.assertError(self.client.post("/v1/orgs", {"name": "x", "type": "galaxy", "region": "1"},
                                          token=self.operator), 400, field="type")
        self.assertError(self.client.post("/v1/orgs", {"type": "emd", "region": "1"},
                                          token=self.operator), 400, field="name")

    def test_operator_creates_token_that_works(self):
        oid, _ = self.make_org_with_worker()
        r = self.client.post("/v1/tokens", {"user": "새직원", "role": "worker", "org": oid},
                             token=self.operator)
        self.assertEqual(r.status, 201, r.text)
        tok = r.json["token"]
        self.assertIsInstance(tok, str)
        self.assertGreaterEqual(len(tok), 20)
        self.assertEqual(r.json["user"], "새직원")
        self.assertEqual(r.json["role"], "worker")
        self.assertEqual(r.json["org"], oid)
        # it authenticates, as a worker of that org
        p = self.make_person(token=tok, name=unique_hangul())
        self.assertEqual(p["org"], oid)
        self.assertEqual(self.client.get("/v1/persons/" + p["id"], token=tok).status, 200)
        self.assertEqual(self.client.get("/v1/persons/" + p["id"], token=self.worker1).status, 404)
        self.assertError(self.client.post("/v1/orgs", {"name": "x", "type": "emd", "region": "1"},
                                          token=tok), 403)
        # unknown org, bad role, missing user
        r = self.client.post("/v1/tokens", {"user": "u", "role": "worker", "org": "no-such-org"},
                             token=self.operator)
        self.assertError(r, 422)
        self.assertError(self.client.post("/v1/tokens", {"user": "u", "role": "king", "org": ORG1},
                                          token=self.admin1), 400, field="role")
        self.assertError(self.client.post("/v1/tokens", {"role": "worker", "org": ORG1},
                                          token=self.admin1), 400, field="user")

    def test_token_secret_not_logged(self):
        r = self.client.post("/v1/tokens", {"user": "logcheck", "role": "auditor", "org": ORG1},
                             token=self.admin1)
        self.assertEqual(r.status, 201)
        tok = r.json["token"]
        self.assertEqual(self.client.get("/v1/persons", token=tok).status, 200)
        rid = unique_id("req")
        self.assertEqual(self.client.get("/healthz", headers={"X-Request-Id": rid}).status, 200)
        self.assertTrue(self.server.wait_for_log("req=%s " % rid))
        self.assertNotIn(tok, self.server.log)
        self.assertNotIn(self.worker1, self.server.log)


# ---------------------------------------------------------------------------
class PersonsTest(ApiTest):

    def test_korean_text_round_trips(self):
        names = ["홍길동", "김철수", "뷁", "똠방각하", "햏쏼뙑", "洪吉童", "남궁 민수",
                 unicodedata.normalize("NFD", "홍길동"), "이🙂희", "ㄱㄴㄷ"]
        address = "서울특별시 동작구 상도로 369 (상도동, 숭실대학교) 101동 1203호"
        for name in names:
            with self.subTest(name=name):
                body = {"name": name, "birth_date": "1971-12-31", "sex": "M", "address": address,
                        "phone": "010-1234-5678", "tags": ["기초생활수급", "독거노인"],
                        "relation": "본인"}
                r = self.client.post("/v1/persons", body, token=self.worker1)
                self.assertEqual(r.status, 201, r.text)
                self.assertTrue(r.header("Content-Type").lower().startswith("application/json"))
                r.body.decode("utf-8")  # strict: the body is UTF-8
                created = r.json
                got = self.client.get("/v1/persons/" + created["id"], token=self.worker1)
                self.assertEqual(got.status, 200, got.text)
                for doc in (created, got.json):
                    self.assertEqual(doc["name"], name)
                    self.assertEqual(doc["name"].encode("utf-8"), name.encode("utf-8"))
                    self.assertEqual(doc["address"], address)
                    self.assertEqual(doc["tags"], ["기초생활수급", "독거노인"])
                    self.assertEqual(doc["relation"], "본인")
                    self.assertEqual(doc["phone"], "010-1234-5678")
                    self.assertEqual(doc["birth_date"], "1971-12-31")
                    self.assertEqual(doc["sex"], "M")
                    self.assertEqual(doc["org"], ORG1)
                    self.assertIsNone(doc["rrn"])
                self.assertEqual(created, got.json)

    def test_age_is_international_age_in_korea(self):
        t0 = today_kst()
        births = [years_before(t0, 30), years_before(t0, 30) + datetime.timedelta(days=1),
                  years_before(t0, 30) - datetime.timedelta(days=1), t0, t0 - datetime.timedelta(days=1),
                  datetime.date(1950, 1, 1), datetime.date(1949, 12, 31), datetime.date(2000, 2, 29),
                  datetime.date(1988, 3, 1), years_before(t0, 65)]
        got = []
        for b in births:
            p = self.make_person(name=unique_hangul(), birth_date=b.isoformat())
            r = self.client.get("/v1/persons/" + p["id"], token=self.worker1)
            got.append((b, p["age"], r.json["age"]))
        t1 = today_kst()
        if t0 != t1:
            self.skipTest("the date in Korea changed during the test")
        for b, created_age, get_age in got:
            with self.subTest(birth=b.isoformat()):
                self.assertEqual(created_age, intl_age(b, t0))
                self.assertEqual(get_age, intl_age(b, t0))

    def assertNoRrn(self, text, rrn):
        digits = rrn.replace("-", "")
        self.assertNotIn(digits, text)
        self.assertNotIn(digits[:6] + "-" + digits[6:], text)
        self.assertNotIn(digits[6:], text, "the back part of the RRN appears")

    def test_rrn_is_only_returned_masked(self):
        birth = datetime.date(1990, 1, 1)
        rrn = make_rrn(birth, "M")
        name = unique_hangul()
        r = self.client.post("/v1/persons", {"name": name, "birth_date": "1990-01-01", "sex": "M",
                                             "rrn": rrn}, token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        self.assertEqual(r.json["rrn"], "900101-1******")
        texts = [r.text]
        g = self.client.get("/v1/persons/" + r.json["id"], token=self.worker1)
        self.assertEqual(g.json["rrn"], "900101-1******")
        texts.append(g.text)
        s = self.client.get("/v1/persons", token=self.worker1, query={"rrn": rrn})
        self.assertEqual([p["id"] for p in s.json["items"]], [r.json["id"]])
        texts.append(s.text)
        s = self.client.get("/v1/persons", token=self.worker1, query={"name": name})
        self.assertEqual(s.json["items"][0]["rrn"], "900101-1******")
        texts.append(s.text)
        for t in texts:
            self.assertNoRrn(t, rrn)
        self.assertNoRrn(self.server.log, rrn)

    def test_rrn_alone_gives_birth_date_and_sex(self):
        cases = [(datetime.date(2003, 5, 6), "F", "030506-4******"),
                 (datetime.date(1899, 12, 31), "M", "991231-9******"),
                 (datetime.date(1964, 2, 29), "F", "640229-2******")]
        for birth, sex, masked in cases:
            with self.subTest(birth=birth):
                rrn = make_rrn(birth, sex, hyphen=False)
                p = self.make_person(name=unique_hangul(), rrn=rrn, birth_date=None, sex=None)
                self.assertEqual(p["birth_date"], birth.isoformat())
                self.assertEqual(p["sex"], sex)
                self.assertEqual(p["rrn"], masked)

    def assertNothingNamed(self, name, token=None):
        s = self.client.get("/v1/persons", token=token or self.worker1, query={"name": name})
        self.assertEqual(s.status, 200, s.text)
        self.assertEqual(s.json["items"], [], "a refused request created a person")

    def test_invalid_rrn_is_422(self):
        good = make_rrn(datetime.date(1985, 7, 20), "F")
        self.assertTrue(good)
        bad = {
            "too short": "850720-212345",
            "too long": "850720-21234567",
            "letters": "85O720-2123456",
            "hyphen misplaced": "8507202-123456",
            "two hyphens": "850720--2123456",
            "space": "850720 2123456",
            "month 13": rrn_from_parts("851320", 2),
            "30 February": rrn_from_parts("850230", 2),
            "29 February 1985": rrn_from_parts("850229", 2),
            "day 00": rrn_from_parts("850700", 2),
            "empty": "",
        }
        for why, rrn in bad.items():
            with self.subTest(why=why, rrn=rrn):
                name = unique_hangul()
                r = self.client.post("/v1/persons", {"name": name, "birth_date": "1985-07-20",
                                                     "sex": "F", "rrn": rrn}, token=self.worker1)
                self.assertError(r, 422, field="rrn")
                if len(rrn) >= 13:
                    self.assertNoRrn(r.text, rrn)
                self.assertNothingNamed(name)

    def test_eligibility_null_is_no_facts(self):
        """The description allows "eligibility": null; it once answered 500
        "out of memory"."""
        name = unique_hangul()
        r = self.client.post("/v1/persons", {"name": name, "birth_date": "1950-05-05", "sex": "M",
                                             "eligibility": None}, token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        self.assertEqual(r.json["eligibility"], {})
        self.assertEqual(self.client.get("/v1/persons/" + r.json["id"], token=self.worker1).json["eligibility"], {})

    def test_rrn_must_agree_with_birth_date_and_sex(self):
        rrn = make_rrn(datetime.date(1985, 7, 20), "F")
        for body, field in (({"birth_date": "1985-07-21", "sex": "F"}, "birth_date"),
                            ({"birth_date": "1985-07-20", "sex": "M"}, "sex"),
                            ({"birth_date": "2085-07-20", "sex": "F"}, "birth_date")):
            with self.subTest(body=body):
                name = unique_hangul()
                r = self.client.post("/v1/persons", dict(body, name=name, rrn=rrn), token=self.worker1)
                self.assertError(r, 422, field=field)
                self.assertNoRrn(r.text, rrn)
                self.assertNothingNamed(name)
        # an RRN whose date lies in the future (2000s digit, 2099)
        name = unique_hangul()
        r = self.client.post("/v1/persons", {"name": name, "rrn": rrn_from_parts("991231", 3)},
                             token=self.worker1)
        self.assertError(r, 422)
        self.assertNothingNamed(name)

    def test_search_finds_numbers_of_every_shape(self):
        """A search by number takes every number that can be real: a child's
        of today, a foreign resident's, an old one whose check digit fails."""
        for rrn in (new_style_rrn(datetime.date(2022, 2, 2), "M"), foreign_rrn(datetime.date(1979, 9, 9), "F"),
                    rrn_with_bad_check(make_rrn(datetime.date(1961, 1, 6), "M"))):
            with self.subTest(rrn=rrn[:8]):
                p = self.make_person(name=unique_hangul(), rrn=rrn, birth_date=None, sex=None)
                r = self.client.get("/v1/persons", token=self.worker1, query={"rrn": rrn})
                self.assertEqual([x["id"] for x in r.json["items"]], [p["id"]], r.text)

    def test_birth_date_in_the_future_is_422(self):
        t0 = today_kst()
        for d in (t0 + datetime.timedelta(days=1), datetime.date(t0.year + 1, 1, 1),
                  datetime.date(2999, 12, 31)):
            with self.subTest(birth=d):
                name = unique_hangul()
                r = self.client.post("/v1/persons", {"name": name, "birth_date": d.isoformat(),
                                                     "sex": "F"}, token=self.worker1)
                if today_kst() != t0:
                    self.skipTest("the date in Korea changed during the test")
                self.assertError(r, 422, field="birth_date")
                self.assertNothingNamed(name)
        # today (in Korea) is not the future
        p = self.make_person(name=unique_hangul(), birth_date=today_kst().isoformat())
        self.assertEqual(p["age"], 0)

    def test_bad_person_bodies_are_400(self):
        ok = {"birth_date": "1990-01-01", "sex": "M"}
        cases = {
            "missing name": (dict(ok), "name"),
            "empty name": (dict(ok, name=""), "name"),
            "null name": (dict(ok, name=None), "name"),
            "name number": (dict(ok, name=5), "name"),
            "name array": (dict(ok, name=["홍"]), "name"),
            "name object": (dict(ok, name={"k": "v"}), "name"),
            "name NUL": (dict(ok, name="홍\u0000길동"), None),
            "name too long": (dict(ok, name="가" * 1000), "name"),
            "birth_date number": (dict(ok, name="이름", birth_date=19900101), "birth_date"),
            "birth_date format": (dict(ok, name="이름", birth_date="01/01/1990"), "birth_date"),
            "birth_date not a day": (dict(ok, name="이름", birth_date="1990-02-30"), "birth_date"),
            "birth_date month 13": (dict(ok, name="이름", birth_date="1990-13-01"), "birth_date"),
            "missing birth_date": ({"name": "이름", "sex": "M"}, "birth_date"),
            "sex": (dict(ok, name="이름", sex="X"), "sex"),
            "sex lower": (dict(ok, name="이름", sex="m"), "sex"),
            "missing sex": ({"name": "이름", "birth_date": "1990-01-01"}, "sex"),
            "tags string": (dict(ok, name="이름", tags="독거"), "tags"),
            "tags numbers": (dict(ok, name="이름", tags=[1, 2]), "tags"),
            "rrn number": (dict(ok, name="이름", rrn=9001011234567), "rrn"),
            "phone bool": (dict(ok, name="이름", phone=True), "phone"),
            "unknown field": (dict(ok, name="이름", nickname="길동이"), "nickname"),
        }
        for why, (body, field) in cases.items():
            with self.subTest(why=why):
                r = self.client.post("/v1/persons", body, token=self.worker1)
                self.assertError(r, 400, field=field)
        self.assertNothingNamed("이름")

    def test_unknown_person_is_404(self):
        self.assertError(self.client.get("/v1/persons/per_00000000000000000000000000",
                                         token=self.worker1), 404, "not_found")


# ---------------------------------------------------------------------------
class SearchTest(ApiTest):

    def ids(self, r):
        self.assertEqual(r.status, 200, r.text)
        self.assertIn("next_cursor", r.json)
        return [p["id"] for p in r.json["items"]]

    def search(self, token=None, **q):
        return self.client.get("/v1/persons", token=token or self.worker1, query=q)

    def test_search_by_name_birth_date_rrn(self):
        pre = unique_hangul(3)
        bday = datetime.date(1931, 4, 17)
        rrn = make_rrn(bday, "M")
        p1 = self.make_person(name=pre + "길동", birth_date=bday.isoformat(), sex="M", rrn=rrn)
        p2 = self.make_person(name=pre + "길순", birth_date="1932-08-01")
        p3 = self.make_person(name="김" + pre, birth_date=bday.isoformat(), sex="F")
        other = self.make_person(token=self.worker2, name=pre + "길동", birth_date=bday.isoformat(),
                                 sex="M", rrn=rrn)

        self.assertEqual(sorted(self.ids(self.search(name=pre))), sorted([p1["id"], p2["id"]]))
        self.assertEqual(sorted(self.ids(self.search(name=pre + "길"))), sorted([p1["id"], p2["id"]]))
        self.assertEqual(self.ids(self.search(name=pre + "길동")), [p1["id"]])
        self.assertEqual(self.ids(self.search(name=pre + "길동이")), [])
        self.assertEqual(self.ids(self.search(name="김" + pre)), [p3["id"]])
        self.assertNotIn(p1["id"], self.ids(self.search(name=pre[1:])), "name search is a prefix search")

        r = self.search(birth_date=bday.isoformat())
        found = self.ids(r)
        self.assertIn(p1["id"], found)
        self.assertIn(p3["id"], found)
        self.assertNotIn(p2["id"], found)
        self.assertNotIn(other["id"], found)
        for item in r.json["items"]:
            self.assertEqual(item["birth_date"], bday.isoformat())
            self.assertEqual(item["org"], ORG1)
        self.assertEqual(self.ids(self.search(birth_date=bday.isoformat(), name=pre)), [p1["id"]])

        for form in (rrn, rrn.replace("-", "")):
            with self.subTest(rrn_form=form):
                r = self.search(rrn=form)
                self.assertEqual(self.ids(r), [p1["id"]])
                self.assertNotIn(rrn.replace("-", ""), r.text)
                self.assertEqual(self.ids(self.search(token=self.worker2, rrn=form)), [other["id"]])
        self.assertEqual(self.ids(self.search(rrn=rrn, name=pre + "길순")), [])

        # org 2 sees only its own
        self.assertEqual(self.ids(self.search(token=self.worker2, name=pre)), [other["id"]])
        self.assertEqual(self.ids(self.search(token=self.worker2, name="김" + pre)), [])

    def test_search_escapes_like_wildcards(self):
        pre = unique_hangul(3)
        a = self.make_person(name=pre + "_가")
        b = self.make_person(name=pre + "x가")
        c = self.make_person(name=pre + "%나")
        d = self.make_person(name=pre + "\\다")
        self.assertEqual(self.ids(self.search(name=pre + "_")), [a["id"]])
        self.assertEqual(self.ids(self.search(name=pre + "%")), [c["id"]])
        self.assertEqual(self.ids(self.search(name=pre + "\\")), [d["id"]])
        self.assertEqual(sorted(self.ids(self.search(name=pre))), sorted(x["id"] for x in (a, b, c, d)))

    def test_bad_search_queries_are_400(self):
        for q in ({"birth_date": "1990-13-01"}, {"birth_date": "yesterday"},
                  {"rrn": "12345"}, {"rrn": "900230-1234567"}, {"rrn": "991231-3123456"},
                  {"limit": "0"}):
            with self.subTest(q=q):
                self.assertError(self.search(**q), 400)


# ---------------------------------------------------------------------------
class ResidentNumbersTest(ApiTest):
    """Numbers as they are issued today (seed 003, DOMAIN.md): since
    2020-10-05 the six digits after the sex digit are random and there is no
    check digit; foreign residents' numbers have sex digits 5 to 8. A number
    is refused only when it cannot be real; the old check digit only warns."""

    def register(self, expect=201, **body):
        body.setdefault("name", unique_hangul())
        r = self.client.post("/v1/persons", body, token=self.worker1)
        self.assertEqual(r.status, expect, r.text)
        return r

    def assertRefusedWithout(self, r, name, field):
        err = self.assertError(r, 422, field=field)
        s = self.client.get("/v1/persons", token=self.worker1, query={"name": name})
        self.assertEqual(s.json["items"], [], "a refused number registered a person")
        return err

    def test_a_child_born_in_2021_with_a_new_style_number(self):
        rrn = new_style_rrn(datetime.date(2021, 3, 15), "F")  # fails the old check digit, on purpose
        r = self.register(rrn=rrn)
        self.assertEqual((r.json["birth_date"], r.json["sex"], r.json["rrn"]),
                         ("2021-03-15", "F", "210315-4******"))
        self.assertNotIn("warnings", r.json)  # nothing to check on a number issued since 2020-10-05
        # with birth date and sex given, they agree
        r = self.register(rrn=new_style_rrn(datetime.date(2024, 11, 30), "M"), birth_date="2024-11-30", sex="M")
        self.assertEqual(r.json["rrn"], "241130-3******")
        # the day the change took effect: no check digit from then on
        self.assertNotIn("warnings", self.register(rrn=new_style_rrn(datetime.date(2020, 10, 5), "M")).json)

    def test_foreign_residents_numbers(self):
        for birth, sex, masked in ((datetime.date(1988, 6, 17), "F", "880617-6******"),
                                   (datetime.date(1965, 1, 31), "M", "650131-5******"),
                                   (datetime.date(2012, 4, 1), "M", "120401-7******"),
                                   (datetime.date(2009, 12, 25), "F", "091225-8******")):
            with self.subTest(birth=birth, sex=sex):
                r = self.register(rrn=foreign_rrn(birth, sex))
                self.assertEqual((r.json["birth_date"], r.json["sex"], r.json["rrn"]),
                                 (birth.isoformat(), sex, masked))
                self.assertNotIn("warnings", r.json)
        # and one issued since the change, random digits and all
        r = self.register(rrn=new_style_rrn(datetime.date(2023, 7, 7), "F", foreign=True))
        self.assertEqual((r.json["birth_date"], r.json["sex"], r.json["rrn"]), ("2023-07-07", "F", "230707-8******"))

    def test_an_old_number_with_a_wrong_check_digit_is_accepted_with_a_warning(self):
        rrn = rrn_with_bad_check(make_rrn(datetime.date(1985, 7, 20), "F"))
        key = unique_id("idem")
        body = {"name": unique_hangul(), "rrn": rrn}
        r = self.client.post("/v1/persons", body, token=self.worker1, headers={"Idempotency-Key": key})
        self.assertEqual(r.status, 201, r.text)
        self.assertEqual(r.json["birth_date"], "1985-07-20")
        [w] = r.json["warnings"]
        self.assertEqual((w["field"], w["code"]), ("rrn", "rrn_check_digit"))
        self.assertIn("2020-10-05", w["message"])
        self.assertNotIn(rrn.replace("-", "")[6:], r.text)
        # the warning belongs to the answer, not to the person
        self.assertNotIn("warnings", self.client.get("/v1/persons/" + r.json["id"], token=self.worker1).json)
        # the same request again answers the same, warning included
        again = self.client.post("/v1/persons", body, token=self.worker1, headers={"Idempotency-Key": key})
        self.assertEqual((again.status, again.json), (201, r.json))
        # a foreign resident's old number with a wrong check digit warns the same way
        f = foreign_rrn(datetime.date(1977, 3, 3), "M")
        r = self.register(rrn=rrn_with_bad_check(f))
        self.assertEqual([w["code"] for w in r.json["warnings"]], ["rrn_check_digit"])

    def test_a_birth_date_or_sex_that_disagrees_is_422_naming_the_field(self):
        rrn = new_style_rrn(datetime.date(2021, 3, 15), "M")
        for body, field, says in (
                ({"birth_date": "2021-03-16"}, "birth_date", "gives 2021-03-15 (a man born in the 2000s)"),
                # the sex digit gives the century: 3 is the 2000s, so not 1921
                ({"birth_date": "1921-03-15"}, "birth_date", "gives 2021-03-15 (a man born in the 2000s)"),
                ({"sex": "F"}, "sex", "seventh digit: a man born in the 2000s")):
            with self.subTest(body=body):
                name = unique_hangul()
                r = self.client.post("/v1/persons", dict(body, name=name, rrn=rrn), token=self.worker1)
                err = self.assertRefusedWithout(r, name, field)
                self.assertIn(says, err["message"])
                self.assertIn("disagrees", err["message"])
                self.assertNotIn(rrn.replace("-", "")[6:], r.text)
        # a foreign resident's number says so
        name = unique_hangul()
        r = self.client.post("/v1/persons", {"name": name, "rrn": foreign_rrn(datetime.date(1990, 5, 5), "F"),
                                             "sex": "M"}, token=self.worker1)
        self.assertIn("a foreign resident, a woman born in the 1900s", self.assertRefusedWithout(r, name, "sex")["message"])

    def test_a_number_of_someone_not_yet_born_is_422(self):
        later = today_kst() + datetime.timedelta(days=40)
        name = unique_hangul()
        r = self.client.post("/v1/persons", {"name": name, "rrn": new_style_rrn(later, "F")}, token=self.worker1)
        err = self.assertRefusedWithout(r, name, "rrn")
        self.assertIn("after today", err["message"])


# ---------------------------------------------------------------------------
class HouseholdsTest(ApiTest):

    def test_household_with_members(self):
        p1 = self.make_person(name="박" + unique_hangul(2))
        p2 = self.make_person(name="최" + unique_hangul(2))
        address = "서울특별시 동작구 노량진로 10, 3층"
        r = self.client.post("/v1/households", {"address": address, "members": [
            {"person_id": p1["id"], "relation": "본인"}, {"person_id": p2["id"], "relation": "배우자"}]},
            token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        hh = r.json
        self.assertTrue(hh["id"])
        self.assertEqual(hh["address"], address)
        g = self.client.get("/v1/households/" + hh["id"], token=self.worker1)
        self.assertEqual(g.status, 200, g.text)
        self.assertEqual(g.json["address"], address)
        members = {m["person_id"]: m for m in g.json["members"]}
        self.assertEqual(set(members), {p1["id"], p2["id"]})
        self.assertEqual(members[p1["id"]]["relation"], "본인")
        self.assertEqual(members[p2["id"]]["relation"], "배우자")
        self.assertEqual(members[p2["id"]]["name"], p2["name"])
        self.assertEqual(sorted(m["person_id"] for m in hh["members"]), sorted(members))
        pg = self.client.get("/v1/persons/" + p1["id"], token=self.worker1).json
        self.assertEqual(pg["household_id"], hh["id"])
        self.assertEqual(pg["relation"], "본인")
        # a person created into the household joins it
        p3 = self.make_person(name="정" + unique_hangul(2), household_id=hh["id"], relation="자녀")
        g = self.client.get("/v1/households/" + hh["id"], token=self.worker1)
        self.assertIn(p3["id"], [m["person_id"] for m in g.json["members"]])
        # the auditor may read it
        self.assertEqual(self.client.get("/v1/households/" + hh["id"], token=self.auditor1).status, 200)

    def test_household_without_members(self):
        hh = self.make_household(address="서울 동작구 흑석로 84")
        g = self.client.get("/v1/households/" + hh["id"], token=self.worker1)
        self.assertEqual(g.json["members"], [])

    def test_unknown_member_creates_nothing(self):
        p = self.make_person(name=unique_hangul())
        foreign = self.make_person(token=self.worker2, name=unique_hangul())
        for bad in ("per_00000000000000000000000000", foreign["id"]):
            with self.subTest(member=bad):
                r = self.client.post("/v1/households", {"address": "주소", "members": [
                    {"person_id": p["id"], "relation": "본인"}, {"person_id": bad, "relation": "자녀"}]},
                    token=self.worker1)
                self.assertError(r, 422)
                # the first member's update was rolled back with the household
                pg = self.client.get("/v1/persons/" + p["id"], token=self.worker1).json
                self.assertIsNone(pg["household_id"])
                self.assertIsNone(pg["relation"])
        fg = self.client.get("/v1/persons/" + foreign["id"], token=self.worker2).json
        self.assertIsNone(fg["household_id"])

    def test_bad_households(self):
        self.assertError(self.client.post("/v1/households", {"members": []}, token=self.worker1),
                         400, field="address")
        self.assertError(self.client.post("/v1/households", {"address": "a", "members": "p"},
                                          token=self.worker1), 400)
        self.assertError(self.client.post("/v1/households", {"address": "a", "members": [{"relation": "x"}]},
                                          token=self.worker1), 400)
        self.assertError(self.client.post("/v1/households", {"address": "a", "pets": 2},
                                          token=self.worker1), 400, field="pets")
        r = self.client.post("/v1/persons", {"name": unique_hangul(), "birth_date": "1990-01-01", "sex": "F",
                                             "household_id": "hh_nope"}, token=self.worker1)
        self.assertError(r, 422, field="household_id")
        self.assertError(self.client.get("/v1/households/hh_nope", token=self.worker1), 404)


# ---------------------------------------------------------------------------
class CasesTest(ApiTest):

    def count_cases(self, token=None):
        return len(self.list_all("/v1/cases", token or self.worker1))

    def test_open_case(self):
        p = self.make_person(name=unique_hangul())
        r = self.client.post("/v1/cases", {"person_id": p["id"], "program": "integrated",
                                           "source": "walk_in"}, token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        c = r.json
        self.assertIsInstance(c["id"], str)
        self.assertTrue(c["id"])
        self.assertEqual(c["person_id"], p["id"])
        self.assertEqual(c["program"], "integrated")
        self.assertEqual(c["org"], ORG1)
        self.assertEqual(c["region"], REGION)
        self.assertIn(c["stage"], STAGES)
        self.assertEqual(c["status"], "open")
        self.assertEqual(c["version"], 1)
        self.assertRegex(c["opened_at"], RFC3339_UTC)
        g = self.client.get("/v1/cases/" + c["id"], token=self.worker1)
        self.assertEqual(g.status, 200, g.text)
        self.assertEqual(g.json, c)
        self.assertEqual(self.client.get("/v1/cases/" + c["id"], token=self.auditor1).json, c)
        ev = self.client.get("/v1/cases/%s/events" % c["id"], token=self.worker1)
        self.assertEqual(ev.status, 200, ev.text)
        self.assertEqual(len(ev.json["items"]), 1, ev.text)
        self.assertIsNone(ev.json["next_cursor"])
        e = ev.json["items"][0]
        self.assertEqual(e["type"], "opened")
        self.assertEqual(e["to"], c["stage"])
        self.assertIsNone(e["from"])
        self.assertEqual(e["actor"], "worker1")
        self.assertRegex(e["at"], RFC3339_UTC)
        # listed, with the filters
        ids = [x["id"] for x in self.list_all("/v1/cases", self.worker1, query={"status": "open"})]
        self.assertIn(c["id"], ids)
        for q in ({"status": "ended"}, {"program": "no_such_program"}):
            self.assertNotIn(c["id"], [x["id"] for x in self.list_all("/v1/cases", self.worker1, query=q)])
        ids = [x["id"] for x in self.list_all("/v1/cases", self.worker1,
                                              query={"stage": c["stage"], "program": "integrated"})]
        self.assertIn(c["id"], ids)
        self.assertError(self.client.get("/v1/cases?stage=nowhere", token=self.worker1), 400)
        self.assertError(self.client.get("/v1/cases?status=maybe", token=self.worker1), 400)

    def test_case_has_contract_fields(self):
        """API.md: GET /v1/cases/{id} -> {id, person_id, program, org, region,
        stage, stage_label, status, version, assigned_to, opened_at, due: [...],
        plugin_generation}."""
        p = self.make_person(name=unique_hangul())
        c = self.make_case(p["id"])
        g = self.client.get("/v1/cases/" + c["id"], token=self.worker1).json
        missing = [k for k in ("id", "person_id", "program", "org", "region", "stage", "stage_label",
                               "status", "version", "assigned_to", "opened_at", "due",
                               "plugin_generation") if k not in g]
        self.assertEqual(missing, [], "GET /v1/cases/{id} lacks contract fields")
        self.assertIsInstance(g["due"], list)

    def test_refused_cases_create_nothing(self):
        p = self.make_person(name=unique_hangul())
        foreign = self.make_person(token=self.worker2, name=unique_hangul())
        before = self.count_cases()
        base = {"person_id": p["id"], "program": "integrated", "source": "walk_in"}
        self.assertError(self.client.post("/v1/cases", dict(base, program="youth_support"),
                                          token=self.worker1), 422, field="program")
        self.assertError(self.client.post("/v1/cases", dict(base, person_id="per_nope"),
                                          token=self.worker1), 422, field="person_id")
        self.assertError(self.client.post("/v1/cases", dict(base, person_id=foreign["id"]),
                                          token=self.worker1), 422, field="person_id")
        self.assertError(self.client.post("/v1/cases", dict(base, org=ORG2), token=self.worker1), 403)
        self.assertError(self.client.post("/v1/cases", dict(base, source="telepathy"),
                                          token=self.worker1), 400, field="source")
        for k in ("person_id", "program", "source"):
            body = dict(base)
            del body[k]
            self.assertError(self.client.post("/v1/cases", body, token=self.worker1), 400, field=k)
        self.assertError(self.client.post("/v1/cases", dict(base, program=7), token=self.worker1),
                         400, field="program")
        self.assertError(self.client.post("/v1/cases", dict(base, stage="closure"), token=self.worker1),
                         400, field="stage")
        self.assertError(self.client.post("/v1/cases", base, token=self.auditor1), 403)
        self.assertEqual(self.count_cases(), before, "a refused request opened a case")
        # the same org named explicitly is fine, and a supervisor may open
        self.make_case(p["id"], org=ORG1)
        self.make_case(p["id"], token=self.supervisor1, source="outreach")
        self.assertEqual(self.count_cases(), before + 2)

    def test_unknown_case_is_404(self):
        self.assertError(self.client.get("/v1/cases/cas_nope", token=self.worker1), 404, "not_found")
        self.assertError(self.client.get("/v1/cases/cas_nope/events", token=self.worker1), 404)


# ---------------------------------------------------------------------------
class IsolationTest(ApiTest):

    def test_other_org_sees_nothing(self):
        name = unique_hangul()
        rrn = make_rrn(datetime.date(1977, 11, 3), "F")
        p = self.make_person(name=name, birth_date="1977-11-03", sex="F", rrn=rrn)
        c = self.make_case(p["id"])
        hh = self.make_household(members=[{"person_id": p["id"], "relation": "본인"}])
        for tok in (self.worker2, self.admin2):
            for path in ("/v1/persons/" + p["id"], "/v1/cases/" + c["id"],
                         "/v1/cases/%s/events" % c["id"], "/v1/households/" + hh["id"]):
                with self.subTest(path=path):
                    r = self.client.get(path, token=tok)
                    self.assertError(r, 404, "not_found")
                    self.assertNotIn(name, r.text)
            for q in ({"name": name}, {"rrn": rrn}, {"birth_date": "1977-11-03"}, {}):
                found = self.list_all("/v1/persons", tok, query=q)
                self.assertNotIn(p["id"], [x["id"] for x in found])
                self.assertTrue(all(x["org"] == ORG2 for x in found))
            cases = self.list_all("/v1/cases", tok)
            self.assertNotIn(c["id"], [x["id"] for x in cases])
            self.assertTrue(all(x["org"] == ORG2 for x in cases))
            self.assertEqual(self.list_all("/v1/cases", tok, query={"org": ORG1}), [])
        # an invisible id answers like one that does not exist
        a = self.client.get("/v1/persons/" + p["id"], token=self.worker2).json["error"]["code"]
        b = self.client.get("/v1/persons/per_00000000000000000000000000", token=self.worker2).json["error"]["code"]
        self.assertEqual(a, b)
        # and cannot be used
        self.assertError(self.client.post("/v1/cases", {"person_id": p["id"], "program": "integrated",
                                                        "source": "walk_in"}, token=self.worker2), 422)
        self.assertError(self.client.post("/v1/households", {"address": "x", "members": [
            {"person_id": p["id"], "relation": "본인"}]}, token=self.worker2), 422)
        self.assertError(self.client.post("/v1/persons", {"name": "x", "birth_date": "1990-01-01", "sex": "M",
                                                          "household_id": hh["id"]}, token=self.worker2), 422)
        g = self.client.get("/v1/persons/" + p["id"], token=self.worker1).json
        self.assertEqual(g["household_id"], hh["id"])
        self.assertEqual(len(self.client.get("/v1/cases/%s/events" % c["id"], token=self.worker1)
                             .json["items"]), 1)


# ---------------------------------------------------------------------------
class PaginationTest(ApiTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.fill()
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def fill(cls):
        # a fresh org holds exactly the rows of this class
        c = cls.client
        cls.org = unique_id("org")
        r = c.post("/v1/orgs", {"id": cls.org, "name": "페이지", "type": "emd", "region": REGION,
                                "programs": ["integrated"]}, token=cls.operator)
        assert r.status == 201, r.text
        cls.tok = c.post("/v1/tokens", {"user": "pager", "role": "worker", "org": cls.org},
                         token=cls.operator).json["token"]
        cls.person = c.post("/v1/persons", {"name": "페이지", "birth_date": "1990-01-01", "sex": "M"},
                            token=cls.tok).json
        cls.case_ids = []
        lock = threading.Lock()
        errors = []

        def work(n):
            cl = cls.server.client(token=cls.tok)
            for _ in range(n):
                r = cl.post("/v1/cases", {"person_id": cls.person["id"], "program": "integrated",
                                          "source": "outreach"})
                with lock:
                    if r.status == 201:
                        cls.case_ids.append(r.json["id"])
                    else:
                        errors.append(r.text)
            cl.close()
        threads = [threading.Thread(target=work, args=(30,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        assert len(cls.case_ids) == 120

    def walk(self, limit, path="/v1/cases", token=None, query=None, between_pages=None):
        pages, cursor = [], None
        while True:
            q = dict(query or {}, limit=limit)
            if cursor is not None:
                q["cursor"] = cursor
            r = self.client.get(path, token=token or self.tok, query=q)
            self.assertEqual(r.status, 200, r.text)
            self.assertEqual(set(r.json), {"items", "next_cursor"})
            pages.append([x["id"] for x in r.json["items"]])
            cursor = r.json["next_cursor"]
            if cursor is None:
                return pages
            self.assertIsInstance(cursor, str)
            self.assertTrue(cursor)
            self.assertLessEqual(len(pages), 100, "pagination does not end")
            if between_pages:
                between_pages(len(pages))

    def test_walk_all_pages(self):
        one = self.client.get("/v1/cases", token=self.tok, query={"limit": 500})
        self.assertIsNone(one.json["next_cursor"])
        order = [x["id"] for x in one.json["items"]]
        self.assertEqual(sorted(order), sorted(self.case_ids))
        pages = self.walk(50)
        self.assertEqual([len(p) for p in pages], [50, 50, 20])
        flat = [i for p in pages for i in p]
        self.assertEqual(len(flat), len(set(flat)), "a row was seen twice")
        self.assertEqual(flat, order, "the pages are not the one-page order")
        # an exact multiple: the last full page says there is no next one
        self.assertEqual([len(p) for p in self.walk(40)], [40, 40, 40])
        self.assertEqual([len(p) for p in self.walk(120)], [120])
        self.assertEqual([len(p) for p in self.walk(7)], [7] * 17 + [1])
        # default limit is 50
        r = self.client.get("/v1/cases", token=self.tok)
        self.assertEqual(len(r.json["items"]), 50)
        self.assertIsNotNone(r.json["next_cursor"])

    def test_rows_added_while_walking(self):
        pre = unique_hangul(3)
        made = [self.make_person(token=self.tok, name=pre + "%02d" % i)["id"] for i in range(10)]
        added = []

        def add(n):
            if n in (1, 2):
                added.append(self.make_person(token=self.tok, name=pre + "new%d" % n)["id"])
        pages = self.walk(3, path="/v1/persons", query={"name": pre}, between_pages=add)
        flat = [i for p in pages for i in p]
        self.assertEqual(len(flat), len(set(flat)), "a row was seen twice")
        self.assertTrue(set(made) <= set(flat), "a row present all along was skipped")
        self.assertTrue(set(flat) <= set(made) | set(added))

    def test_person_search_pages(self):
        pre = unique_hangul(3)
        made = [self.make_person(token=self.tok, name=pre + str(i))["id"] for i in range(7)]
        pages = self.walk(3, path="/v1/persons", query={"name": pre})
        self.assertEqual([len(p) for p in pages], [3, 3, 1])
        self.assertEqual(sorted(i for p in pages for i in p), sorted(made))

    def test_event_pages(self):
        pages = self.walk(1, path="/v1/cases/%s/events" % self.case_ids[0])
        self.assertEqual([len(p) for p in pages], [1])

    def test_bad_limit_and_cursor(self):
        for limit in ("0", "501", "abc", "-1", "1.5", "1e2", "5x", "99999999999999999999"):
            with self.subTest(limit=limit):
                self.assertError(self.client.get("/v1/cases", token=self.tok, query={"limit": limit}), 400)
                self.assertError(self.client.get("/v1/persons", token=self.tok, query={"limit": limit}), 400)
        self.assertEqual(self.client.get("/v1/cases", token=self.tok, query={"limit": "500"}).status, 200)
        self.assertEqual(self.client.get("/v1/cases", token=self.tok, query={"limit": "1"}).status, 200)
        for cursor in ("!!!!", "not a cursor", "%%%", "a" * 300, "Zm9vIGJhcg", "___", "=", "\u00ff"):
            with self.subTest(cursor=cursor[:20]):
                self.assertError(self.client.get("/v1/cases", token=self.tok, query={"cursor": cursor}),
                                 400)
                self.assertError(self.client.get("/v1/persons", token=self.tok, query={"cursor": cursor}),
                                 400)


# ---------------------------------------------------------------------------
class IdempotencyTest(ApiTest):

    def count_named(self, name, token=None):
        return len(self.list_all("/v1/persons", token or self.worker1, query={"name": name}))

    def person_body(self, name):
        return {"name": name, "birth_date": "1959-09-09", "sex": "M", "address": "동작구"}

    def test_replay_returns_first_result(self):
        name = unique_hangul()
        key = unique_id("idem")
        first = self.client.post("/v1/persons", self.person_body(name), token=self.worker1,
                                 headers={"Idempotency-Key": key})
        self.assertEqual(first.status, 201, first.text)
        self.assertIsNone(first.header("Idempotent-Replayed"))
        for _ in range(2):
            again = self.client.post("/v1/persons", self.person_body(name), token=self.worker1,
                                     headers={"Idempotency-Key": key})
            self.assertEqual(again.status, 201, again.text)
            self.assertEqual(again.body, first.body)
            self.assertEqual((again.header("Idempotent-Replayed") or "").lower(), "true")
            self.assertNotEqual(again.header("X-Request-Id"), first.header("X-Request-Id"))
        self.assertEqual(self.count_named(name), 1)

    def test_same_key_other_body_is_409(self):
        name, other = unique_hangul(), unique_hangul()
        key = unique_id("idem")
        self.assertEqual(self.client.post("/v1/persons", self.person_body(name), token=self.worker1,
                                          headers={"Idempotency-Key": key}).status, 201)
        r = self.client.post("/v1/persons", self.person_body(other), token=self.worker1,
                             headers={"Idempotency-Key": key})
        self.assertError(r, 409, "idempotency_key_reused")
        self.assertEqual(self.count_named(other), 0)
        self.assertEqual(self.count_named(name), 1)

    def test_different_keys_make_two(self):
        name = unique_hangul()
        for _ in range(2):
            r = self.client.post("/v1/persons", self.person_body(name), token=self.worker1,
                                 headers={"Idempotency-Key": unique_id("idem")})
            self.assertEqual(r.status, 201)
            self.assertIsNone(r.header("Idempotent-Replayed"))
        self.assertEqual(self.count_named(name), 2)
        # without a key, every request is new
        for _ in range(2):
            self.assertEqual(self.client.post("/v1/persons", self.person_body(name),
                                              token=self.worker1).status, 201)
        self.assertEqual(self.count_named(name), 4)

    def test_key_is_not_shared_with_another_org(self):
        name = unique_hangul()
        key = unique_id("idem")
        a = self.client.post("/v1/persons", self.person_body(name), token=self.worker1,
                             headers={"Idempotency-Key": key})
        b = self.client.post("/v1/persons", self.person_body(name), token=self.worker2,
                             headers={"Idempotency-Key": key})
        self.assertEqual(a.status, 201)
        self.assertEqual(b.status, 201, b.text)
        self.assertIsNone(b.header("Idempotent-Replayed"), "org 2 was given org 1's record")
        self.assertNotEqual(a.json["id"], b.json["id"])
        self.assertEqual(b.json["org"], ORG2)
        self.assertEqual(self.count_named(name, self.worker2), 1)

    def test_concurrent_same_key_creates_one(self):
        name = unique_hangul()
        key = unique_id("idem")
        n = 8
        barrier = threading.Barrier(n)
        results = [None] * n

        def go(i):
            c = self.new_client(token=self.worker1)
            c.get("/healthz")  # connected before the barrier
            barrier.wait()
            try:
                results[i] = c.post("/v1/persons", self.person_body(name), headers={"Idempotency-Key": key})
            except Exception as e:  # noqa: BLE001 - reported below
                results[i] = e
            finally:
                c.close()
        threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = [getattr(r, "status", r) for r in results]
        self.assertEqual(statuses, [201] * n, [getattr(r, "text", r) for r in results])
        self.assertEqual(len({r.body for r in results}), 1, "the answers differ")
        replayed = [r for r in results if (r.header("Idempotent-Replayed") or "").lower() == "true"]
        self.assertEqual(len(replayed), n - 1)
        self.assertEqual(self.count_named(name), 1)

    def test_cases_are_idempotent_too(self):
        p = self.make_person(name=unique_hangul())
        key = unique_id("idem")
        body = {"person_id": p["id"], "program": "integrated", "source": "walk_in"}
        a = self.client.post("/v1/cases", body, token=self.worker1, headers={"Idempotency-Key": key})
        b = self.client.post("/v1/cases", body, token=self.worker1, headers={"Idempotency-Key": key})
        self.assertEqual(a.status, 201, a.text)
        self.assertEqual(b.status, 201, b.text)
        self.assertEqual(a.body, b.body)
        ids = [c["id"] for c in self.list_all("/v1/cases", self.worker1) if c["person_id"] == p["id"]]
        self.assertEqual(ids, [a.json["id"]])
        ev = self.client.get("/v1/cases/%s/events" % a.json["id"], token=self.worker1).json["items"]
        self.assertEqual(len(ev), 1)

    def test_bad_keys_are_400(self):
        name = unique_hangul()
        for key in ("x" * 300, "has space", "탭"):
            with self.subTest(key=key[:20]):
                hdr_key = key.encode("utf-8").decode("latin-1")
                r = self.client.post("/v1/persons", self.person_body(name), token=self.worker1,
                                     headers={"Idempotency-Key": hdr_key})
                self.assertError(r, 400)
        self.assertEqual(self.count_named(name), 0)


# ---------------------------------------------------------------------------
class BodyTest(ApiTest):
    """What a body must be: JSON object, application/json, not empty."""

    def post_raw(self, raw, ctype="application/json; charset=utf-8", path="/v1/persons", token=None):
        hdrs = {"Content-Type": ctype} if ctype else {}
        return self.client.post(path, raw=raw, headers=hdrs, token=token or self.worker1)

    def test_malformed_json(self):
        for raw in (b'{"name": ', b"{name: 1}", b"{'name': 'x'}", b'{"a":1} trailing', b"nul",
                    b'{"name":"\xff\xfe"}', b'{"name":"a","name":"b","birth_date":"1990-01-01","sex":"M"}',
                    b"\xef\xbb\xbf{}", b'{"a":1,}'):
            with self.subTest(raw=raw):
                self.assertError(self.post_raw(raw), 400, "malformed_json")

    def test_json_that_is_not_an_object(self):
        for raw in (b"[]", b'[{"name":"x"}]', b'"x"', b"42", b"null", b"true"):
            with self.subTest(raw=raw):
                self.assertError(self.post_raw(raw), 400)

    def test_wrong_content_type_is_415(self):
        good = json.dumps({"name": "x", "birth_date": "1990-01-01", "sex": "M"}).encode()
        for ctype in ("text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
                      "application/jsonp", "application/json-patch+json", "multipart/form-data", None):
            with self.subTest(ctype=ctype):
                self.assertError(self.post_raw(good, ctype=ctype), 415)
        for ctype in ("application/json", "application/json;charset=utf-8", "Application/JSON; charset=UTF-8"):
            with self.subTest(ctype=ctype):
                self.assertEqual(self.post_raw(good, ctype=ctype).status, 201)

    def test_empty_body_is_400(self):
        self.assertError(self.post_raw(b""), 400)
        self.assertError(self.client.post("/v1/persons", token=self.worker1), 400)
        self.assertError(self.client.post("/v1/orgs", raw=b"", token=self.admin1,
                                          headers={"Content-Type": "application/json"}), 400)

    def test_unknown_path_is_404_json(self):
        # (GET / is the operations console: test_console)
        for method, path in (("GET", "/console/nothing.html"), ("GET", "/v1"), ("GET", "/v1/nothing"), ("POST", "/v1/nothing"),
                             ("GET", "/v1/persons/a/b"), ("GET", "/v1/persons/"), ("GET", "/healthz/x"),
                             ("GET", "/v2/persons")):
            with self.subTest(path=path):
                r = self.client.request(method, path, token=self.worker1,
                                        body={} if method == "POST" else None)
                self.assertError(r, 404, "not_found")

    def test_wrong_method_is_405_json(self):
        for method, path in (("DELETE", "/v1/persons"), ("PUT", "/v1/persons/x"), ("GET", "/v1/orgs"),
                             ("POST", "/healthz"), ("PATCH", "/v1/cases/x"), ("DELETE", "/v1/tokens"),
                             ("DELETE", "/v1/cases/x/events")):
            with self.subTest(method=method, path=path):
                r = self.client.request(method, path, token=self.worker1)
                self.assertError(r, 405, "method_not_allowed")

    def test_405_names_the_allowed_methods(self):
        """RFC 9110 15.5.6: a 405 MUST carry Allow."""
        r = self.client.request("DELETE", "/v1/persons", token=self.worker1)
        self.assertEqual(r.status, 405)
        allow = {m.strip() for m in (r.header("Allow") or "").split(",") if m.strip()}
        self.assertEqual(allow, {"GET", "POST"})

    def test_errors_keep_the_connection_usable(self):
        c = self.new_client(token=self.worker1)
        body = b'{"name":"x","birth_date":"1990-01-01","sex":"M"}'
        seq = [
            (lambda: c.post("/v1/persons", raw=body, headers={"Content-Type": "text/plain"}), 415),
            (lambda: c.post("/v1/persons", raw=body, token="nope",
                            headers={"Content-Type": "application/json"}), 401),
            (lambda: c.post("/v1/orgs", raw=body, headers={"Content-Type": "application/json"}), 403),
            (lambda: c.post("/v1/persons", raw=b'{"name":', headers={"Content-Type": "application/json"}), 400),
            (lambda: c.post("/v1/nowhere", raw=body, headers={"Content-Type": "application/json"}), 404),
            (lambda: c.request("PUT", "/v1/persons", raw=body, headers={"Content-Type": "application/json"}), 405),
            (lambda: c.post("/v1/persons", raw=body, headers={"Content-Type": "application/json"}), 201),
            (lambda: c.get("/healthz"), 200),
        ]
        for call, status in seq:
            r = call()
            self.assertEqual(r.status, status, r.text)
        self.assertEqual(c.connects, 1, "the server closed a keep-alive connection after an error")
        c.close()
        # pipelined: an unread body is not taken for the next request
        res = raw_request("127.0.0.1", self.server.port,
                          b"POST /v1/persons HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body +
                          b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        self.assertEqual([s for s, _, _ in res], [401, 200], res.data[:500])


# ---------------------------------------------------------------------------
class BodyLimitTest(ApiTest):
    server_env = {"SARYE_MAX_BODY_BYTES": "1024"}

    def sized_body(self, size, name=None):
        """A valid person body of exactly `size` bytes (padded with JSON
        whitespace)."""
        body = {"name": name or unique_hangul(), "birth_date": "1990-01-01", "sex": "M"}
        raw = json.dumps(body, ensure_ascii=False).encode()
        assert len(raw) <= size
        return raw[:-1] + b" " * (size - len(raw)) + b"}"

    def post(self, raw, **kw):
        return self.client.post("/v1/persons", raw=raw, token=self.worker1,
                                headers={"Content-Type": "application/json"}, **kw)

    def test_limit_boundary(self):
        self.assertEqual(self.post(self.sized_body(1024)).status, 201)
        for size in (1025, 2000, 200000):
            with self.subTest(size=size):
                name = unique_hangul()
                r = self.post(self.sized_body(size, name))
                self.assertError(r, 413, "body_too_large")
                self.assertEqual(self.client.get("/healthz").status, 200)
                self.assertEqual(self.list_all("/v1/persons", self.worker1, query={"name": name}), [])
        self.assertEqual(self.post(self.sized_body(500)).status, 201)

    def test_large_body_over_raw_socket(self):
        raw = self.sized_body(300000)
        res = raw_request("127.0.0.1", self.server.port,
                          b"POST /v1/persons HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " +
                          self.worker1.encode() + b"\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(raw) + raw)
        self.assertTrue(res, "no response to an oversized body")
        self.assertEqual(res[0][0], 413)
        self.assertIn("x-request-id", res[0][1])
        self.assertEqual(res[0][1]["_actual_body_length"], res[0][1]["content-length"])
        self.assertEqual(len(res), 1, res.data[:600])
        self.assertEqual(res.rest, b"")
        self.assertEqual(json.loads(res[0][2])["error"]["code"], "body_too_large")
        self.assertEqual(self.client.get("/healthz").status, 200)

    def test_chunked(self):
        small = self.sized_body(700)
        r = self.post([small[:100], small[100:400], small[400:]], chunked=True)
        self.assertEqual(r.status, 201, r.text)
        name = unique_hangul()
        big = self.sized_body(4000, name)
        r = self.post([big[i:i + 256] for i in range(0, len(big), 256)], chunked=True)
        self.assertError(r, 413, "body_too_large")
        self.assertEqual(self.list_all("/v1/persons", self.worker1, query={"name": name}), [])
        exact = self.sized_body(1024)
        self.assertEqual(self.post([exact[:512], exact[512:]], chunked=True).status, 201)
        self.assertEqual(self.post(self.sized_body(800)).status, 201)


# ---------------------------------------------------------------------------
class ConfigTest(unittest.TestCase):
    """Bad settings refuse to start, quickly and naming what is wrong."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sarye-cfg-")
        self.db = os.path.join(self.tmp.name, "t.db")

    def tearDown(self):
        self.tmp.cleanup()

    def serve(self, *args, env=None, timeout=15):
        cmd = [BIN, "serve"] + list(args)
        if "--db" not in args:
            cmd += ["--db", self.db]
        if "--listen" not in args:
            cmd += ["--listen", "127.0.0.1:0"]
        if "--plugins" not in args:
            cmd += ["--plugins", os.path.join(SOURCE, "plugins")]
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, cwd=self.tmp.name, env=clean_env(env), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=timeout * SCALE)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            self.fail("sarye serve %s did not exit; stderr:\n%s" % (args, err.decode()))
        return p.returncode, err.decode("utf-8", "replace"), time.monotonic() - t0

    def assertRefused(self, rc, err, *names):
        self.assertNotEqual(rc, 0, err)
        for n in names:
            self.assertIn(n, err)
        self.assertNotIn('msg="listening"', err)

    def test_invalid_values_refuse_to_start(self):
        cases = [
            ({"SARYE_THREADS": "abc"}, (), ("threads", "abc")),
            ({"SARYE_THREADS": "0"}, (), ("threads", "0")),
            ({"SARYE_MAX_BODY_BYTES": "10"}, (), ("max_body_bytes", "10")),
            ({"SARYE_DURABILITY": "sometimes"}, (), ("durability", "sometimes")),
            ({"SARYE_LOG_LEVEL": "chatty"}, (), ("log_level", "chatty")),
            ({"SARYE_REQUEST_TIMEOUT_MS": "-5"}, (), ("request_timeout_ms", "-5")),
            ({}, ("--listen", "nonsense"), ("listen", "nonsense")),
            ({}, ("--listen", "127.0.0.1:99999"), ("listen", "127.0.0.1:99999")),
            ({"SARYE_LISTEN": "no port"}, (), ("listen", "no port")),
        ]
        for env, args, names in cases:
            with self.subTest(env=env, args=args):
                rc, err, took = self.serve(*args, env=env)
                self.assertRefused(rc, err, *names)
                self.assertLess(took, 10 * SCALE)

    def test_config_file_errors(self):
        bad = os.path.join(self.tmp.name, "bad.conf")
        for text, names in (("threads = many\n", ("threads", "many", "bad.conf")),
                            ("# ok\nno_such_key = 1\n", ("no_such_key",)),
                            ("listen 127.0.0.1:0\n", ("bad.conf:1",))):
            with self.subTest(text=text):
                with open(bad, "w") as f:
                    f.write(text)
                rc, err, _ = self.serve("--config", bad)
                self.assertRefused(rc, err, *names)
        missing = os.path.join(self.tmp.name, "missing.conf")
        rc, err, _ = self.serve("--config", missing)
        self.assertRefused(rc, err, "missing.conf")

    def test_harness_reports_a_failed_start(self):
        with self.assertRaises(ServerError) as cm:
            Server(env={"SARYE_THREADS": "abc"})
        self.assertIn("threads", str(cm.exception))
        self.assertIn("abc", str(cm.exception))

    def test_port_in_use_refuses_to_start(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            rc, err, took = self.serve("--listen", "127.0.0.1:%d" % port)
        finally:
            s.close()
        self.assertRefused(rc, err, str(port))
        self.assertLess(took, 10 * SCALE)

    def test_usage_errors_exit_2(self):
        for args in (["frobnicate"], [], ["serve", "--bogus"], ["serve", "--listen"],
                     ["serve", "extra-arg"], ["org", "create", "--bogus", "x"],
                     ["org", "create", "--id", "x"], ["token", "create", "--user", "u"],
                     ["token"], ["migrate", "--listen", "127.0.0.1:0"]):
            with self.subTest(args=args):
                p = subprocess.run([BIN] + args, cwd=self.tmp.name, env=clean_env(),
                                   capture_output=True, timeout=30 * SCALE, stdin=subprocess.DEVNULL)
                err = p.stderr.decode("utf-8", "replace")
                self.assertEqual(p.returncode, 2, err)
                self.assertIn("usage:", err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "data")),
                         "a usage error still created a database")

    def test_cli_refusals(self):
        run_cli("migrate", db=self.db)
        p = run_cli("token", "create", "--user", "u", "--role", "worker", "--org", "no-such-org",
                    db=self.db, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no-such-org", p.stderr)
        self.assertEqual(p.stdout.strip(), "")
        run_cli("org", "create", "--id", "o1", "--name", "가", "--type", "emd", "--region", "11590",
                db=self.db)
        p = run_cli("org", "create", "--id", "o1", "--name", "가", "--type", "emd", "--region", "11590",
                    db=self.db, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("o1", p.stderr)
        for bad in (["--type", "planet", "--region", "11590"], ["--type", "emd", "--region", "dongjak"]):
            p = run_cli("org", "create", "--id", "o2", "--name", "나", *bad, db=self.db, check=False)
            self.assertEqual(p.returncode, 2, p.stderr)

    def test_precedence_file_env_option(self):
        """defaults < file < environment < options."""
        conf = os.path.join(self.tmp.name, "s.conf")
        with open(conf, "w") as f:
            f.write("max_body_bytes = 1024\nlisten = 127.0.0.1:1\nthreads = 4\n")
        body = {"name": "가", "birth_date": "1990-01-01", "sex": "M", "tags": ["x" * 60] * 25}
        for env, status in (({}, 413),                                   # the file beats the default
                            ({"SARYE_MAX_BODY_BYTES": "100000"}, 201)):  # the environment beats the file
            with self.subTest(env=env):
                srv = Server(extra_args=["--config", conf], env=env)
                try:
                    srv.org_create("o", "가", "emd", "11590", ["integrated"])
                    c = srv.client(token=srv.token_create("w", "worker", "o"))
                    r = c.post("/v1/persons", body)
                    self.assertEqual(r.status, status, r.text)
                    self.assertNotEqual(srv.port, 1)  # the option beats the file
                    c.close()
                    self.assertEqual(srv.stop(), 0)
                finally:
                    srv.close()


# ---------------------------------------------------------------------------
class ShutdownTest(unittest.TestCase):

    def setUp(self):
        self.srv = Server(env={"SARYE_DRAIN_TIMEOUT_MS": "10000"})
        self.srv.org_create("o", "상도1동", "emd", "11590", ["integrated"])
        self.tok = self.srv.token_create("w", "worker", "o")

    def tearDown(self):
        self.srv.close()

    def test_sigterm_under_load_loses_nothing(self):
        srv, tok = self.srv, self.tok
        pre = unique_hangul(3)
        lock = threading.Lock()
        acked = {}          # id -> name, every 2xx
        statuses = []       # (status, after_sigterm)
        conn_errors = []
        bad = []
        sigterm_at = [None]
        stop = threading.Event()

        def worker(i):
            c = Client("127.0.0.1", srv.port, token=tok, retry=False, timeout=30 * SCALE)
            n = 0
            refused = 0
            while not stop.is_set():
                name = "%s%d-%d" % (pre, i, n)
                n += 1
                started_after = sigterm_at[0] is not None
                try:
                    r = c.post("/v1/persons", {"name": name, "birth_date": "1990-01-01", "sex": "F"})
                except (OSError, Exception) as e:  # noqa: BLE001 - connection errors are allowed
                    with lock:
                        conn_errors.append((repr(e), started_after))
                    c.close()
                    if isinstance(e, ConnectionRefusedError):
                        refused += 1
                        if refused > 3:
                            break
                    time.sleep(0.01)
                    continue
                refused = 0
                with lock:
                    statuses.append((r.status, started_after))
                    if 200 <= r.status < 300:
                        acked[r.json["id"]] = name
                    elif r.status == 503:
                        err = (r.json or {}).get("error", {})
                        if not r.header("X-Request-Id") or set(err) != {"code", "message", "details"}:
                            bad.append(r.text)
                        elif not started_after and err["code"] != "shutting_down":
                            bad.append(("503 under load before SIGTERM", r.text))
                    else:
                        bad.append((r.status, r.text))
                if r.status == 503:
                    time.sleep(0.005)
            c.close()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20 * SCALE
        while time.monotonic() < deadline:
            with lock:
                if len(acked) >= 150:
                    break
            time.sleep(0.01)
        sigterm_at[0] = time.monotonic()
        srv.signal(signal.SIGTERM)
        rc = srv.wait_exit(60 * SCALE)
        stop.set()
        for t in threads:
            t.join(30 * SCALE)
        self.assertEqual(rc, 0, srv.log[-3000:])
        self.assertEqual(bad, [], "answers other than 2xx/503, or a 503 without the error shape")
        self.assertGreater(len(acked), 50, "the load did not get going")
        after = [s for s, a in statuses if a]
        self.assertTrue(after or [e for e, a in conn_errors if a], "nothing was sent after SIGTERM")
        self.assertIn('msg="draining"', srv.log)
        self.assertEqual(srv.sanitizer_reports(), [])

        srv.start()
        c = srv.client(token=tok)
        missing = []
        for pid, name in acked.items():
            r = c.get("/v1/persons/" + pid)
            if r.status != 200 or r.json.get("name") != name:
                missing.append((pid, r.status))
        self.assertEqual(missing, [], "answered 2xx but lost after a graceful shutdown")
        stored = self.list_all_persons(c, pre)
        self.assertGreaterEqual(len(stored), len(acked))
        c.close()
        self.assertEqual(srv.stop(), 0)

    @staticmethod
    def list_all_persons(c, name):
        items, cursor = [], None
        while True:
            q = {"name": name, "limit": 500}
            if cursor:
                q["cursor"] = cursor
            r = c.get("/v1/persons", query=q)
            items += r.json["items"]
            cursor = r.json["next_cursor"]
            if not cursor:
                return items

    def test_requests_after_sigterm_never_get_a_lost_2xx(self):
        srv, tok = self.srv, self.tok
        idle = srv.client(token=tok, retry=False)
        self.assertEqual(idle.get("/healthz").status, 200)  # a keep-alive connection, now idle
        srv.signal(signal.SIGTERM)
        acked = {}
        results = []
        t_end = time.monotonic() + 10 * SCALE
        i = 0
        while srv.alive() and time.monotonic() < t_end:
            name = "종료후%d" % i
            i += 1
            for c in (idle, srv.client(token=tok, retry=False)):
                try:
                    r = c.post("/v1/persons", {"name": name, "birth_date": "1990-01-01", "sex": "M"})
                    results.append(r.status)
                    if 200 <= r.status < 300:
                        acked[r.json["id"]] = name
                    else:
                        self.assertError503(r)
                except OSError as e:
                    results.append(type(e).__name__)
                finally:
                    c.close()
        rc = srv.wait_exit(60 * SCALE)
        self.assertEqual(rc, 0)
        self.assertTrue(results)
        srv.start()
        c = srv.client(token=tok)
        for pid, name in acked.items():
            r = c.get("/v1/persons/" + pid)
            self.assertEqual(r.status, 200, "a 2xx after SIGTERM was lost")
        c.close()
        self.assertEqual(srv.stop(), 0)

    def assertError503(self, r):
        self.assertEqual(r.status, 503, r.text)
        self.assertEqual(set(r.json["error"]), {"code", "message", "details"})
        self.assertTrue(r.header("X-Request-Id"))

    def test_sigint_also_exits_cleanly(self):
        c = self.srv.client(token=self.tok)
        self.assertEqual(c.post("/v1/persons", {"name": "가", "birth_date": "1990-01-01",
                                                "sex": "M"}).status, 201)
        c.close()
        self.assertEqual(self.srv.stop(signal.SIGINT), 0)


# ---------------------------------------------------------------------------
class DurabilityTest(ApiTest):
    server_env = {"SARYE_DURABILITY": "normal"}

    def test_normal_durability_serves_writes_that_survive_a_restart(self):
        key = unique_id("idem")
        name = unique_hangul()
        body = {"name": name, "birth_date": "1944-04-04", "sex": "F"}
        r = self.client.post("/v1/persons", body, token=self.worker1, headers={"Idempotency-Key": key})
        self.assertEqual(r.status, 201, r.text)
        c = self.make_case(r.json["id"])
        self.assertEqual(self.client.get("/v1/persons/" + r.json["id"], token=self.worker1).status, 200)
        self.client.close()
        self.assertEqual(self.server.restart(), 0)
        self.assertEqual(self.client.get("/v1/persons/" + r.json["id"], token=self.worker1).json["name"], name)
        self.assertEqual(self.client.get("/v1/cases/" + c["id"], token=self.worker1).json, c)
        again = self.client.post("/v1/persons", body, token=self.worker1, headers={"Idempotency-Key": key})
        self.assertEqual(again.status, 201)
        self.assertEqual(again.body, r.body)
        self.assertEqual((again.header("Idempotent-Replayed") or "").lower(), "true")


if __name__ == "__main__":
    unittest.main()
