"""
test_contract.py: the API against its own description, property-based.

A generator reads the served /openapi.json and, for every operation, makes
requests from its schemas with a fixed seed: valid ones (real ids of
persons, cases, referrals ... where a parameter names one; bodies built from
the request schema) and invalid ones (bodies with a field missing, of the
wrong type, unknown, too long; broken JSON; the wrong media type; junk in
the path and the query; no token, a bogus one, each role's). Every answer
must be one the operation declares: its status, its media type, its body
valid against the declared schema (python3-jsonschema), its required headers
present. Every path is also asked with a method it does not have: 405 with
Allow naming exactly the methods the description gives it. Every
disagreement is a failure, listed once per kind.

SARYE_CONTRACT_SEED and SARYE_CONTRACT_CASES change the run (defaults 2027,
16 requests per operation and kind); the run is the same for the same seed.
"""
import datetime
import json
import os
import random
import re
import time
import unittest
import urllib.parse

import jsonschema

from harness import ApiTest, ORG1, REGION, SCALE, Response, Server, make_rrn, raw_request

SEED = int(os.environ.get("SARYE_CONTRACT_SEED", "2027"))
CASES = int(os.environ.get("SARYE_CONTRACT_CASES", "16"))
BUDGET_S = 300 * SCALE  # a bound on the whole run, far above what it takes

METHODS = ("get", "post", "put", "delete", "patch")


class Schemas:
    """$ref resolution and validation against the document."""

    def __init__(self, doc):
        self.doc = doc
        self.resolver = jsonschema.RefResolver(base_uri="", referrer=doc)
        self.cache = {}

    def deref(self, x):
        seen = 0
        while isinstance(x, dict) and "$ref" in x and seen < 20:
            ref = x["$ref"]
            assert ref.startswith("#/"), ref
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            x = node
            seen += 1
        return x

    def errors(self, schema, value):
        key = json.dumps(schema, sort_keys=True)
        v = self.cache.get(key)
        if v is None:
            v = jsonschema.Draft202012Validator(schema, resolver=self.resolver,
                                                format_checker=jsonschema.FormatChecker())
            self.cache[key] = v
        return [("/".join(map(str, e.absolute_path)) or ".") + ": " + e.message for e in v.iter_errors(value)]


class Gen:
    """Values from JSON Schemas, valid and not."""

    def __init__(self, rnd, schemas, pools):
        self.r = rnd
        self.s = schemas
        self.pools = pools  # name -> [values] (ids of what exists)

    def date(self):
        d = datetime.date(2026, 1, 1) + datetime.timedelta(days=self.r.randrange(-400, 400))
        return d.isoformat()

    def string(self, sch, name=None):
        r = self.r
        pool = self.pools.get(name)
        if pool and r.random() < 0.8:
            return r.choice(pool)
        if "enum" in sch:
            return r.choice(sch["enum"])
        ex = sch.get("examples")
        if ex and r.random() < 0.5:
            return r.choice(ex)
        fmt = sch.get("format")
        if fmt == "date" or (name and name.endswith(("_on", "_date")) or name in ("start", "end", "today")):
            return self.date()
        if fmt == "date-time":
            return self.date() + "T09:00:00Z"
        pat = sch.get("pattern")
        lo, hi = sch.get("minLength", 1), min(sch.get("maxLength", 24), 24)
        candidates = [
            "".join(r.choice("0123456789") for _ in range(max(lo, 5))),
            "".join(r.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(max(lo, 6))).lstrip("_") or "a",
            "".join(chr(0xAC00 + r.randrange(11172)) for _ in range(max(lo, 3))),
        ]
        if pat:
            for c in candidates:
                if re.search(pat, c):
                    return c
            if "[0-9]{6}-?[0-9]{7}" in pat or "rrn" in (name or ""):
                return make_rrn(datetime.date(1980, 1, 1)).replace("-", "") if r.random() < 0.5 else make_rrn(
                    datetime.date(1975, 6, 6))
        s = r.choice(candidates)
        return s[:hi] if len(s) > hi else s

    def value(self, sch, name=None, depth=0):
        r = self.r
        sch = self.s.deref(sch)
        if not isinstance(sch, dict):
            return None
        if "const" in sch:
            return sch["const"]
        if "enum" in sch:
            return r.choice(sch["enum"])
        for comb in ("oneOf", "anyOf"):
            if comb in sch:
                opts = [self.s.deref(o) for o in sch[comb]]
                nonnull = [o for o in opts if o.get("type") != "null"] or opts
                merged = dict(r.choice(nonnull))
                for k, v in sch.items():
                    if k not in (comb,) and k not in merged:
                        merged[k] = v
                return self.value(merged, name, depth)
        if "allOf" in sch:
            merged = {}
            for o in sch["allOf"]:
                o = self.s.deref(o)
                for k, v in o.items():
                    if k == "properties":
                        merged.setdefault("properties", {}).update(v)
                    elif k == "required":
                        merged.setdefault("required", []).extend(v)
                    else:
                        merged.setdefault(k, v)
            return self.value(merged, name, depth)
        t = sch.get("type")
        if isinstance(t, list):
            t = r.choice([x for x in t if x != "null"] or t)
        if t is None:
            t = "object" if "properties" in sch else "string"
        if t == "null":
            return None
        if t == "boolean":
            return r.random() < 0.5
        if t in ("integer", "number"):
            lo = sch.get("minimum", 0)
            hi = sch.get("maximum", lo + 40)
            return r.randint(int(lo), int(hi)) if t == "integer" else round(r.uniform(lo, hi), 2)
        if t == "string":
            return self.string(sch, name)
        if t == "array":
            n = r.randint(sch.get("minItems", 0), max(sch.get("minItems", 0), min(sch.get("maxItems", 3), 3)))
            pool = self.pools.get(name)
            if pool and r.random() < 0.7:
                return r.sample(pool, min(len(pool), max(n, 1)))
            return [self.value(sch.get("items", {}), name, depth + 1) for _ in range(n)] if depth < 5 else []
        if t == "object":
            props = sch.get("properties", {})
            req = set(sch.get("required", []))
            out = {}
            for k, v in props.items():
                if k in req or r.random() < 0.5:
                    out[k] = self.value(v, k, depth + 1) if depth < 6 else None
            return out
        return None

    def invalid(self, sch):
        """A body that breaks the schema one way."""
        r = self.r
        base = self.value(sch)
        sch = self.s.deref(sch)
        props = list((sch.get("properties") or {}).keys())
        kind = r.choice(["drop", "type", "unknown", "long", "array", "null", "nested", "number"])
        if not isinstance(base, dict):
            return kind, base
        if kind == "drop" and sch.get("required"):
            base.pop(r.choice(sch["required"]), None)
        elif kind == "type" and props:
            base[r.choice(props)] = r.choice([123, True, [], {"x": 1}, None, 1.5, "x"])
        elif kind == "unknown":
            base["no_such_field_" + str(r.randrange(100))] = "x"
        elif kind == "long" and props:
            base[r.choice(props)] = "가" * r.choice([300, 5000, 70000])
        elif kind == "array":
            return kind, [base]
        elif kind == "null":
            return kind, None
        elif kind == "nested" and props:
            v = []
            for _ in range(40):
                v = [v]
            base[r.choice(props)] = v
        elif kind == "number" and props:
            base[r.choice(props)] = r.choice([-1, 0, 2 ** 63, -2 ** 63, 1e308])
        return kind, base


class LowerHeaders(dict):
    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


def raw_call(server, method, url, token, headers, data):
    """One request on its own connection, for a body the server may refuse
    before reading it (it answers and closes while the client still sends)."""
    lines = ["%s %s HTTP/1.1" % (method, url), "Host: 127.0.0.1", "Connection: close",
             "Content-Length: %d" % len(data)]
    if token:
        lines.append("Authorization: Bearer " + token)
    lines += ["%s: %s" % (k, v) for k, v in headers.items() if v is not None]
    res = raw_request(server.host, server.port, ("\r\n".join(lines) + "\r\n\r\n").encode() + data)
    status, hdrs, body = res[0]
    return Response(status, "", LowerHeaders(hdrs), body)


class ContractTest(ApiTest):
    server_env = {"SARYE_CLOCK_ADJUSTABLE": "on"}
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.client
        cls.doc = c.get("/openapi.json").json
        # an agency organisation and its token, for the agency's operations
        cls.server.org_create("microfinance", "서민금융진흥원", "agency", REGION)
        cls.agency = cls.server.token_create("agency1", "agency", "microfinance")

    def make_fixtures(self):
        """Real things for parameters that name them."""
        pools = {"person_id": [], "case_id": [], "referral_id": [], "consent_id": [], "plan_id": [],
                 "household_id": [], "id": [], "case_ids": [], "to_org": [ORG1, "dj-noryangjin"],
                 "org": [ORG1, "dj-noryangjin", "microfinance"], "program": ["integrated"],
                 "region": [REGION], "role": ["worker", "supervisor", "auditor", "admin", "agency"],
                 "user": ["worker1", "supervisor1", "nobody"], "file": ["app.js", "index.html", "style.css", "nope.js"],
                 "to_program": ["integrated"], "to_agency": ["microfinance"], "dong_code": ["1159051000"],
                 "scope": [["microfinance"], ["dj-noryangjin"]]}
        hh = self.make_household()
        pools["household_id"].append(hh["id"])
        for i in range(3):
            birth = datetime.date(1950 + i * 10, 3, 3)
            p = self.make_person(rrn=make_rrn(birth, "F"), birth_date=birth.isoformat(), sex="F")
            pools["person_id"].append(p["id"])
            case = self.make_case(p["id"])
            if i == 1:
                case = self.advance(case, "intake")
            if i == 2:
                case = self.advance(case, "planning")
                r = self.client.post("/v1/cases/%s/plans" % case["id"], {"goals": [
                    {"term": "short", "text": "목표", "services": []}]}, token=self.worker1)
                self.assertEqual(r.status, 201, r.text)
                pools["plan_id"].append(r.json["id"])
            pools["case_id"].append(case["id"])
            r = self.client.post("/v1/persons/%s/consents" % p["id"],
                                 {"scope": ["dj-noryangjin", "microfinance"], "purpose": "referral"}, token=self.worker1)
            self.assertEqual(r.status, 201, r.text)
            pools["consent_id"].append(r.json["id"])
            r = self.client.post("/v1/referrals", {"person_id": p["id"], "to_org": "dj-noryangjin",
                                                   "to_program": "integrated", "consent_id": r.json["id"],
                                                   "reason": "이사", "opinion": "연계 필요"}, token=self.worker1)
            self.assertEqual(r.status, 201, r.text)
            pools["referral_id"].append(r.json["id"])
        pools["case_ids"] = list(pools["case_id"])
        pools["id"] = pools["person_id"] + pools["case_id"] + pools["referral_id"]
        return pools

    def path_value(self, rnd, path, name, pools):
        """A path parameter: a real id of the kind the path names, or junk."""
        if rnd.random() < 0.25:
            v = rnd.choice(["x", "per_00000000000000000000000000", "가나다", "a" * 127, "%00", "..",
                            "%2F", "a%20b", "%E0%A4", "-", "0", "cas_" + "Z" * 26, "a" * 300])
            return v if "%" in v else urllib.parse.quote(v)
        if name == "id":
            kind = path.split("/")[2] if path.startswith("/v1/") else ""
            pool = {"persons": "person_id", "cases": "case_id", "referrals": "referral_id",
                    "households": "household_id", "orgs": "org", "programs": "program"}.get(kind)
            vals = pools.get(pool) or ["x"]
        elif name == "plan_id":
            vals = pools["plan_id"] or ["pln_x"]
        else:
            vals = pools.get(name) or pools.get(name + "_id") or ["x"]
        v = rnd.choice(vals)
        return urllib.parse.quote(v, safe="%") if not v.startswith("%") else v

    def check(self, failures, op_name, op, method, url, r, how):
        """Every answer one the operation declares."""
        responses = op["responses"]
        st = str(r.status)
        declared = responses.get(st) or responses.get(st[0] + "XX") or responses.get("default")
        if declared is None:
            failures.setdefault((op_name, st, "undeclared status"), []).append(
                "%s %s (%s) -> %d %s" % (method.upper(), url, how, r.status, r.text[:200]))
            return
        declared = self.schemas.deref(declared)
        for hname, h in (declared.get("headers") or {}).items():
            h = self.schemas.deref(h)
            val = r.header(hname)
            if h.get("required") and val is None:
                failures.setdefault((op_name, st, "missing header " + hname), []).append(
                    "%s %s (%s)" % (method.upper(), url, how))
            if val is not None and "schema" in h:
                sch = self.schemas.deref(h["schema"])
                v = int(val) if sch.get("type") == "integer" and re.fullmatch(r"-?\d+", val) else val
                errs = self.schemas.errors(h["schema"], v)
                if errs:
                    failures.setdefault((op_name, st, "header %s: %s" % (hname, errs[0])), []).append(url)
        if r.header("X-Request-Id") is None:
            failures.setdefault((op_name, st, "no X-Request-Id"), []).append(url)
        content = declared.get("content")
        if not content:
            return
        ctype = (r.header("Content-Type") or "").split(";")[0].strip()
        if ctype not in content:
            failures.setdefault((op_name, st, "media type %s not declared" % ctype), []).append(url)
            return
        schema = content[ctype].get("schema")
        if schema is None or ctype != "application/json":
            return
        try:
            body = json.loads(r.body.decode("utf-8"))
        except ValueError as e:
            failures.setdefault((op_name, st, "body is not JSON"), []).append("%s: %s" % (url, e))
            return
        errs = self.schemas.errors(schema, body)
        if errs:
            failures.setdefault((op_name, st, "body: " + errs[0][:160]), []).append(
                "%s %s (%s): %s" % (method.upper(), url, how, json.dumps(body, ensure_ascii=False)[:300]))

    def test_every_answer_is_declared(self):
        rnd = random.Random(SEED)
        self.schemas = Schemas(self.doc)
        pools = self.make_fixtures()
        gen = Gen(rnd, self.schemas, pools)
        tokens = {"admin": self.admin1, "worker": self.worker1, "supervisor": self.supervisor1,
                  "auditor": self.auditor1, "agency": self.agency, "operator": self.operator,
                  "other-org": self.worker2,
                  "bogus": "sy_" + "A" * 43, "none": None}
        failures = {}
        seen = {}
        sent = 0
        started = time.monotonic()
        ops = [(p, m, o) for p, item in sorted(self.doc["paths"].items()) for m, o in sorted(item.items())
               if m in METHODS]
        self.assertGreater(len(ops), 50)
        for path, method, op in ops:
            op_name = "%s %s" % (method.upper(), path)
            params = [self.schemas.deref(p) for p in op.get("parameters", [])]
            body_schema = None
            rb = self.schemas.deref(op.get("requestBody") or {})
            if rb:
                body_schema = (rb.get("content") or {}).get("application/json", {}).get("schema")
            for i in range(CASES * 2):
                if time.monotonic() - started > BUDGET_S:
                    self.fail("the contract run took over %d s (%d requests)" % (BUDGET_S, sent))
                valid = i % 2 == 0
                url = path
                for p in params:
                    if p.get("in") == "path":
                        url = url.replace("{%s}" % p["name"], self.path_value(rnd, path, p["name"], pools))
                query = {}
                for p in params:
                    if p.get("in") != "query" or rnd.random() < 0.5:
                        continue
                    if valid or rnd.random() < 0.5:
                        v = gen.value(p.get("schema", {}), p["name"])
                    else:
                        v = rnd.choice(["", "x" * 600, "-1", "0", "99999", "가", "true", "2026-13-45", "%zz", "null"])
                    query[p["name"]] = "true" if v is True else "false" if v is False else str(v)
                if query:
                    url += "?" + urllib.parse.urlencode(query)
                headers = {"Accept-Language": rnd.choice([None, "ko", "en", "ko;q=0.1, en"])}
                if method == "post" and rnd.random() < 0.3:
                    headers["Idempotency-Key"] = rnd.choice(["k-%d" % rnd.randrange(5), "x" * 300, " "])
                if rnd.random() < 0.1:
                    headers["X-Request-Id"] = rnd.choice(["contract-%d" % i, "bad id with spaces"])
                if op.get("security") == []:
                    who = rnd.choice(["none", "admin"])
                else:
                    # a valid request mostly comes from a role the operation lets in (x-roles)
                    allowed = [r for r in op.get("x-roles") or [] if r in tokens] or \
                        ["admin", "worker", "supervisor", "auditor", "agency"]
                    who = rnd.choice(list(tokens)) if not valid or rnd.random() < 0.3 else rnd.choice(allowed)
                body, raw, how = None, None, "valid" if valid else "invalid"
                if body_schema is not None:
                    if valid:
                        body = gen.value(body_schema)
                    else:
                        k = rnd.random()
                        if k < 0.6:
                            kind, body = gen.invalid(body_schema)
                            how = "invalid body (%s)" % kind
                            if body is None:
                                raw, body = b"null", None
                                headers["Content-Type"] = "application/json"
                        elif k < 0.7:
                            raw = b'{"a": '
                            headers["Content-Type"] = "application/json"
                            how = "broken JSON"
                        elif k < 0.8:
                            raw = b"name=x"
                            headers["Content-Type"] = "application/x-www-form-urlencoded"
                            how = "form body"
                        elif k < 0.9:
                            raw = b""
                            how = "no body"
                        else:
                            raw = json.dumps({"x": "가" * 300000}).encode()
                            headers["Content-Type"] = "application/json"
                            how = "large body"
                elif not valid and method in ("post", "put") and rnd.random() < 0.3:
                    raw = b'{"unexpected": true}'
                    headers["Content-Type"] = "application/json"
                    how = "a body where none is read"
                if how == "large body":
                    r = raw_call(self.server, method.upper(), url, tokens[who], headers, raw)
                else:
                    r = self.client.request(method.upper(), url, body=body, raw=raw, token=tokens[who] or "",
                                            headers=headers)
                sent += 1
                seen.setdefault(op_name, set()).add(r.status)
                self.check(failures, op_name, op, method, url, r, how + " as " + who)

        # every path, with a method it does not have
        for path, item in sorted(self.doc["paths"].items()):
            have = {m.upper() for m in item if m in METHODS}
            url = path
            for name in re.findall(r"{([a-z_]+)}", path):
                url = url.replace("{%s}" % name, self.path_value(random.Random(1), path, name, pools))
            for m in sorted(set(x.upper() for x in METHODS) - have):
                r = self.client.request(m, url, token=self.admin1)
                sent += 1
                if r.status != 405:
                    failures.setdefault(("%s %s" % (m, path), str(r.status), "not 405"), []).append(url)
                    continue
                mna = {"responses": {"405": {"$ref": "#/components/responses/MethodNotAllowed"}}}
                self.check(failures, "%s %s" % (m, path), mna, m.lower(), url, r, "method not allowed")
                allow = {x.strip() for x in (r.header("Allow") or "").split(",") if x.strip()}
                if allow != have:
                    failures.setdefault(("%s %s" % (m, path), "405", "Allow %s, described %s"
                                         % (sorted(allow), sorted(have))), []).append(url)
        took = time.monotonic() - started
        ok = sorted(op for op, st in seen.items() if any(200 <= x < 300 for x in st))
        statuses = sorted({x for st in seen.values() for x in st})
        print("contract: %d requests in %.1f s, seed %d; %d of %d operations answered 2xx; statuses seen %s; "
              "%d disagreement kinds" % (sent, took, SEED, len(ok), len(seen), statuses, len(failures)))
        print("contract: no 2xx from " + ", ".join(sorted(set(seen) - set(ok))))
        def short(x):
            return re.sub(r"([A-Za-z가-힣])\1{20,}", lambda m: m.group(1) * 3 + "...", x)[:400]
        report = ["%s -> %s: %s (%d times), e.g. %s" % (k[0], k[1], k[2], len(v), short(v[0])) for k, v in
                  sorted(failures.items())]
        if report:
            self.fail("%d disagreements with the description:\n%s" % (len(report), "\n".join(report)))


    def test_the_checker_sees_disagreements(self):
        # the check itself, on answers that break the description
        self.schemas = Schemas(self.doc)
        op = self.doc["paths"]["/v1/persons/{id}"]["get"]
        failures = {}

        def answer(status, body, headers):
            h = LowerHeaders({k.lower(): v for k, v in headers.items()})
            return Response(status, "", h, json.dumps(body).encode())

        j = {"Content-Type": "application/json", "X-Request-Id": "x"}
        self.check(failures, "op", op, "get", "/u", answer(418, {}, j), "t")               # undeclared status
        self.check(failures, "op", op, "get", "/u", answer(404, {"error": {}}, j), "t")   # body off its schema
        self.check(failures, "op", op, "get", "/u", answer(200, {"id": 1}, j), "t")        # 200 body off its schema
        self.check(failures, "op", op, "get", "/u", answer(429, {"error": {"code": "rate_limited", "message": "m",
                                                                           "details": {}}}, j), "t")  # no Retry-After
        self.check(failures, "op", op, "get", "/u",
                   answer(404, {"error": {"code": "not_found", "message": "m", "details": {}}},
                          {"Content-Type": "text/plain", "X-Request-Id": "x"}), "t")  # media type
        kinds = sorted(k[2].split(":")[0] for k in failures)
        self.assertEqual(kinds, ["body", "body", "media type text/plain not declared", "missing header Retry-After",
                                 "undeclared status"], failures)

    def test_rate_limited_answers_are_declared(self):
        # every authenticated operation may answer 429: a server with a budget of one
        s = Server(env={"SARYE_RATE_LIMIT_PER_MINUTE": "1", "SARYE_RATE_LIMIT_BURST": "1"})
        try:
            s.org_create(ORG1, "상도1동", "emd", REGION, ["integrated"])
            self.schemas = Schemas(self.doc)
            failures = {}
            c = s.client()
            n = 0
            for path, item in sorted(self.doc["paths"].items()):
                op = item.get("get")
                if not op or op.get("security") == [] or "{" in path:
                    continue
                tok = s.token_create("u%d" % n, "admin", ORG1)  # a fresh budget each
                n += 1
                first = c.get(path, token=tok)
                r = c.get(path, token=tok)
                self.assertEqual(r.status, 429, "%s: %s then %s" % (path, first, r))
                self.check(failures, "GET " + path, op, "get", path, r, "over budget")
            c.close()
            self.assertGreater(n, 5)
            self.assertEqual(failures, {})
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main()
