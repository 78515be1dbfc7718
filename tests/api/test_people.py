"""People as they are: one person, one record (a number registered twice in
an organisation is a 409 naming the record it has; a look-up by name and
birth date before registering; a referral opens the receiver's case on the
record it has; two records of one person are merged, and the merge can be
undone), and who works a case (assigned on opening, reassigned by a
supervisor, cases and deadlines listed by assignee, each assignment an
event)."""
import datetime
import sqlite3
import unittest

from harness import (ORG1, ORG2, ApiTest, make_rrn, new_style_rrn, unique_hangul, unique_id)


class OnePersonOneRecordTest(ApiTest):
    def register(self, token=None, expect=201, headers=None, **body):
        body.setdefault("name", unique_hangul())
        r = self.client.post("/v1/persons", body, token=token or self.worker1, headers=headers)
        self.assertEqual(r.status, expect, r.text)
        return r

    def named(self, name, token=None):
        r = self.client.get("/v1/persons", token=token or self.worker1, query={"name": name, "match": "exact"})
        self.assertEqual(r.status, 200, r.text)
        return [p["id"] for p in r.json["items"]]

    def test_a_number_registered_here_already_is_409_with_the_record(self):
        for rrn in (make_rrn(datetime.date(1951, 8, 15), "M"), new_style_rrn(datetime.date(2021, 9, 9), "F")):
            with self.subTest(rrn=rrn[:8]):
                first = self.register(rrn=rrn).json
                # the same number again, written without the hyphen, under another name
                name = unique_hangul()
                r = self.client.post("/v1/persons", {"name": name, "rrn": rrn.replace("-", "")}, token=self.worker1)
                err = self.assertError(r, 409, "person_exists", field="rrn")
                self.assertEqual(err["details"]["person_id"], first["id"])
                self.assertNotIn(rrn.replace("-", "")[6:], r.text)
                self.assertEqual(self.named(name), [], "a second record was made")
                # by a supervisor of the same organisation too
                self.assertError(self.client.post("/v1/persons", {"name": name, "rrn": rrn}, token=self.supervisor1),
                                 409, "person_exists")
                # another organisation has its own record (and learns only that one exists elsewhere)
                other = self.register(token=self.worker2, rrn=rrn).json
                self.assertTrue(other["known_elsewhere"])
                self.assertNotEqual(other["id"], first["id"])

    def test_the_same_idempotency_key_answers_the_first_registration(self):
        rrn = make_rrn(datetime.date(1960, 2, 2), "F")
        key = unique_id("idem")
        body = {"name": unique_hangul(), "rrn": rrn}
        first = self.client.post("/v1/persons", body, token=self.worker1, headers={"Idempotency-Key": key})
        self.assertEqual(first.status, 201, first.text)
        again = self.client.post("/v1/persons", body, token=self.worker1, headers={"Idempotency-Key": key})
        self.assertEqual((again.status, again.json["id"]), (201, first.json["id"]))
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        # a new key is a new registration: the number is taken
        self.assertError(self.client.post("/v1/persons", body, token=self.worker1,
                                          headers={"Idempotency-Key": unique_id("idem")}), 409, "person_exists")

    def test_look_up_by_name_and_birth_date_before_registering(self):
        name = unique_hangul(3)
        a = self.make_person(name=name, birth_date="1970-01-01", sex="M")
        self.make_person(name=name, birth_date="1970-01-02", sex="M")
        self.make_person(name=name + "민", birth_date="1970-01-01", sex="M")
        self.make_person(token=self.worker2, name=name, birth_date="1970-01-01", sex="M")
        q = {"name": name, "birth_date": "1970-01-01", "match": "exact"}
        r = self.client.get("/v1/persons", token=self.worker1, query=q)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual([p["id"] for p in r.json["items"]], [a["id"]])
        # without match=exact the name is a prefix, as it always was
        q.pop("match")
        self.assertEqual(len(self.client.get("/v1/persons", token=self.worker1, query=q).json["items"]), 2)
        for bad in ({"name": name, "match": "fuzzy"}, {"match": "exact", "birth_date": "1970-01-01"}):
            with self.subTest(q=bad):
                self.assertError(self.client.get("/v1/persons", token=self.worker1, query=bad), 400, "invalid_query")

    def test_a_referral_opens_the_receivers_case_on_the_record_it_has(self):
        rrn = make_rrn(datetime.date(1966, 3, 3), "F")
        mine = self.register(rrn=rrn, name="한영숙").json
        theirs = self.register(token=self.worker2, rrn=rrn, name="한영숙").json
        consent = self.client.post("/v1/persons/%s/consents" % mine["id"], {"purpose": "referral", "scope": [ORG2]},
                                   token=self.worker1).json
        ref = self.client.post("/v1/referrals", {"person_id": mine["id"], "to_org": ORG2, "to_program": "integrated",
                                                 "reason": "주거 지원", "opinion": "긴급", "consent_id": consent["id"]},
                               token=self.worker1)
        self.assertEqual(ref.status, 201, ref.text)
        r = self.client.post("/v1/referrals/%s/accept" % ref.json["id"], {"note": "기존 대상자"}, token=self.worker2)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json["case"]["person_id"], theirs["id"], "the case opened on a copy")
        found = self.client.get("/v1/persons", token=self.worker2, query={"rrn": rrn}).json["items"]
        self.assertEqual([p["id"] for p in found], [theirs["id"]])
        # a receiver without a record of the person still gets its own copy
        other = self.register(name="문수일", birth_date="1959-09-09", sex="M").json
        consent = self.client.post("/v1/persons/%s/consents" % other["id"], {"purpose": "referral", "scope": [ORG2]},
                                   token=self.worker1).json
        ref = self.client.post("/v1/referrals", {"person_id": other["id"], "to_org": ORG2, "to_program": "integrated",
                                                 "reason": "r", "opinion": "o", "consent_id": consent["id"]},
                               token=self.worker1).json
        r = self.client.post("/v1/referrals/%s/accept" % ref["id"], {"note": "n"}, token=self.worker2)
        copy = r.json["case"]["person_id"]
        self.assertNotIn(copy, (other["id"], theirs["id"]))
        self.assertEqual(self.client.get("/v1/persons/" + copy, token=self.worker2).json["name"], "문수일")


class MergeTest(ApiTest):
    def merge(self, kept, dup, token=None, expect=200, **body):
        r = self.client.post("/v1/persons/%s/merge" % kept, dict(body, duplicate_id=dup),
                             token=token or self.supervisor1)
        self.assertEqual(r.status, expect, r.text)
        return r

    def events(self, case_id):
        return self.list_all("/v1/cases/%s/events" % case_id, self.worker1)

    def test_merge_moves_everything_and_unmerge_puts_it_back(self):
        name = unique_hangul(3)
        rrn = make_rrn(datetime.date(1948, 12, 1), "M")
        # the 약식 record first (no number), then the full one
        dup = self.make_person(name=name, birth_date="1948-12-01", sex="M", phone="010-1234-5678",
                               tags=["독거"], eligibility={"basic_livelihood": True})
        kept = self.client.post("/v1/persons", {"name": name, "rrn": rrn, "address": "서울 동작구 상도로 2",
                                                "tags": ["기초연금"]}, token=self.worker1).json
        hh = self.make_household(members=[{"person_id": dup["id"], "relation": "본인"}])
        case = self.make_case(dup["id"])
        consent = self.client.post("/v1/persons/%s/consents" % dup["id"], {"purpose": "referral", "scope": [ORG2]},
                                   token=self.worker1).json
        ref = self.client.post("/v1/referrals", {"person_id": dup["id"], "to_org": ORG2, "reason": "r", "opinion": "o",
                                                 "consent_id": consent["id"]}, token=self.worker1).json
        key = unique_id("idem")
        r = self.client.post("/v1/persons/%s/merge" % kept["id"], {"duplicate_id": dup["id"], "note": "중복 등록"},
                             token=self.supervisor1, headers={"Idempotency-Key": key})
        self.assertEqual(r.status, 200, r.text)
        m = r.json["merge"]
        self.assertEqual((m["kept_id"], m["merged_id"], m["created_by"], m["note"], m["undone_at"]),
                         (kept["id"], dup["id"], "supervisor1", "중복 등록", None))
        self.assertEqual(m["moved"], {"cases": [case["id"]], "consents": [consent["id"]], "referrals": [ref["id"]]})
        self.assertEqual(set(m["filled"]), {"phone", "household_id", "relation", "tags", "eligibility"})
        p = r.json["person"]
        self.assertEqual((p["id"], p["phone"], p["address"], p["household_id"], p["relation"], p["rrn"]),
                         (kept["id"], "010-1234-5678", "서울 동작구 상도로 2", hh["id"], "본인", "481201-1******"))
        self.assertEqual(p["tags"], ["기초연금", "독거"])
        self.assertEqual(p["eligibility"], {"basic_livelihood": True})
        # the same request again answers the same and does nothing more
        again = self.client.post("/v1/persons/%s/merge" % kept["id"], {"duplicate_id": dup["id"], "note": "중복 등록"},
                                 token=self.supervisor1, headers={"Idempotency-Key": key})
        self.assertEqual((again.status, again.json["merge"]["id"]), (200, m["id"]))
        # everything is on the kept record now
        c = self.client.get("/v1/cases/" + case["id"], token=self.worker1).json
        self.assertEqual((c["person_id"], c["version"]), (kept["id"], case["version"] + 1))
        self.assertEqual([x["id"] for x in self.client.get("/v1/persons/%s/consents" % kept["id"],
                                                           token=self.worker1).json["items"]], [consent["id"]])
        self.assertEqual(self.client.get("/v1/referrals/" + ref["id"], token=self.worker1).json["person_id"],
                         kept["id"])
        members = self.client.get("/v1/households/" + hh["id"], token=self.worker1).json["members"]
        self.assertEqual([x["person_id"] for x in members], [kept["id"]])
        screen = self.client.get("/v1/persons/%s/one-screen" % kept["id"], token=self.worker1).json
        self.assertEqual([x["id"] for x in screen["cases"]], [case["id"]])
        ev = self.events(case["id"])[-1]
        self.assertEqual((ev["type"], ev["actor"], ev["data"]),
                         ("person_merged", "supervisor1",
                          {"merge_id": m["id"], "from_person": dup["id"], "to_person": kept["id"]}))
        # the merged record is not lost, but it is no longer a record one works on
        g = self.client.get("/v1/persons/" + dup["id"], token=self.worker1)
        err = self.assertError(g, 404, "person_merged")
        self.assertEqual((err["details"]["merged_into"], err["details"]["merge_id"]), (kept["id"], m["id"]))
        self.assertEqual([x["id"] for x in self.client.get("/v1/persons", token=self.worker1,
                                                           query={"name": name}).json["items"]], [kept["id"]])
        self.assertError(self.client.post("/v1/cases", {"person_id": dup["id"], "program": "integrated",
                                                        "source": "walk_in"}, token=self.worker1), 422,
                         "unknown_person")
        # the number now finds the kept record, and registering it again is refused
        self.assertEqual([x["id"] for x in self.client.get("/v1/persons", token=self.worker1,
                                                           query={"rrn": rrn}).json["items"]], [kept["id"]])
        # both records name the merge: in their lists of merges, and in the audit trail
        for pid in (kept["id"], dup["id"]):
            ms = self.client.get("/v1/persons/%s/merges" % pid, token=self.worker1).json["items"]
            self.assertEqual([x["id"] for x in ms], [m["id"]])
            audit = self.client.get("/v1/audit", token=self.auditor1, query={"person_id": pid}).json["items"]
            merged = [a for a in audit if a["request_id"] == r.header("X-Request-Id")]
            self.assertEqual([(a["action"], a["actor"], a["purpose"]) for a in merged],
                             [("POST /v1/persons/{id}/merge", "supervisor1", m["id"])], audit)

        # undone, from what the merge recorded
        u = self.client.post("/v1/persons/%s/unmerge" % kept["id"], {"merge_id": m["id"]}, token=self.supervisor1)
        self.assertEqual(u.status, 200, u.text)
        self.assertEqual(u.json["merge"]["undone_by"], "supervisor1")
        self.assertEqual(u.json["moved_back"], m["moved"])
        k, d = u.json["person"], u.json["restored"]
        self.assertEqual((k["phone"], k["household_id"], k["relation"], k["rrn"], k["tags"], k["eligibility"]),
                         (None, None, None, "481201-1******", ["기초연금"], {}))
        self.assertEqual((d["id"], d["phone"], d["household_id"]), (dup["id"], "010-1234-5678", hh["id"]))
        self.assertEqual(self.client.get("/v1/cases/" + case["id"], token=self.worker1).json["person_id"], dup["id"])
        self.assertEqual(self.client.get("/v1/referrals/" + ref["id"], token=self.worker1).json["person_id"],
                         dup["id"])
        self.assertEqual([x["id"] for x in self.client.get("/v1/persons/%s/consents" % dup["id"],
                                                           token=self.worker1).json["items"]], [consent["id"]])
        members = self.client.get("/v1/households/" + hh["id"], token=self.worker1).json["members"]
        self.assertEqual([x["person_id"] for x in members], [dup["id"]])
        self.assertEqual(self.events(case["id"])[-1]["type"], "person_unmerged")
        self.assertError(self.client.post("/v1/persons/%s/unmerge" % kept["id"], {"merge_id": m["id"]},
                                          token=self.supervisor1), 409, "merge_undone")

    def test_a_number_taken_in_a_merge_goes_back_on_unmerge(self):
        rrn = make_rrn(datetime.date(1955, 5, 5), "F")
        kept = self.make_person(name="박순자", birth_date="1955-05-05", sex="F")
        dup = self.client.post("/v1/persons", {"name": "박순자", "rrn": rrn}, token=self.worker1).json
        m = self.merge(kept["id"], dup["id"]).json
        self.assertEqual(m["person"]["rrn"], "550505-2******")
        self.assertIn("rrn", m["merge"]["filled"])
        self.assertEqual([x["id"] for x in self.client.get("/v1/persons", token=self.worker1,
                                                           query={"rrn": rrn}).json["items"]], [kept["id"]])
        self.assertError(self.client.post("/v1/persons", {"name": "박순자", "rrn": rrn}, token=self.worker1), 409,
                         "person_exists")
        u = self.client.post("/v1/persons/%s/unmerge" % kept["id"], {"merge_id": m["merge"]["id"]},
                             token=self.supervisor1)
        self.assertEqual(u.status, 200, u.text)
        self.assertIsNone(u.json["person"]["rrn"])
        self.assertEqual([x["id"] for x in self.client.get("/v1/persons", token=self.worker1,
                                                           query={"rrn": rrn}).json["items"]], [dup["id"]])

    def test_records_that_disagree_are_not_merged(self):
        def conflicts(kept, dup):
            err = self.assertError(self.client.post("/v1/persons/%s/merge" % kept["id"], {"duplicate_id": dup["id"]},
                                                    token=self.supervisor1), 409, "merge_conflict")
            return sorted(c["field"] for c in err["details"]["conflicts"])

        a = self.client.post("/v1/persons", {"name": "이중", "rrn": make_rrn(datetime.date(1980, 1, 1), "M")},
                             token=self.worker1).json
        b = self.client.post("/v1/persons", {"name": "이중", "rrn": make_rrn(datetime.date(1980, 1, 1), "M")},
                             token=self.worker1).json
        self.assertEqual(conflicts(a, b), ["rrn"])
        c = self.make_person(name="이중", birth_date="1980-01-02", sex="F")
        self.assertEqual(conflicts(a, c), ["birth_date", "sex"])
        # both with a live case of one program: close one first
        d = self.make_person(name="사례중복", birth_date="1990-09-09", sex="F")
        e = self.make_person(name="사례중복", birth_date="1990-09-09", sex="F")
        self.make_case(d["id"])
        self.make_case(e["id"])
        self.assertEqual(conflicts(d, e), ["cases"])
        # two households
        f = self.make_person(name="두가구", birth_date="1991-01-01", sex="M")
        g = self.make_person(name="두가구", birth_date="1991-01-01", sex="M")
        self.make_household(members=[{"person_id": f["id"]}])
        self.make_household(members=[{"person_id": g["id"]}])
        self.assertEqual(conflicts(f, g), ["household_id"])
        # nothing moved
        self.assertEqual(self.client.get("/v1/persons/" + g["id"], token=self.worker1).status, 200)

    def test_who_may_merge_and_what(self):
        a = self.make_person(name="권한", birth_date="1970-07-07", sex="M")
        b = self.make_person(name="권한", birth_date="1970-07-07", sex="M")
        self.assertError(self.client.post("/v1/persons/%s/merge" % a["id"], {"duplicate_id": b["id"]},
                                          token=self.worker1), 403)
        self.assertError(self.client.post("/v1/persons/%s/merge" % a["id"], {"duplicate_id": b["id"]},
                                          token=self.admin2), 404)
        other = self.make_person(token=self.worker2, name="권한", birth_date="1970-07-07", sex="M")
        self.assertError(self.client.post("/v1/persons/%s/merge" % a["id"], {"duplicate_id": other["id"]},
                                          token=self.supervisor1), 422, "unknown_person", field="duplicate_id")
        self.assertError(self.client.post("/v1/persons/%s/merge" % a["id"], {"duplicate_id": a["id"]},
                                          token=self.supervisor1), 422, field="duplicate_id")
        self.assertError(self.client.post("/v1/persons/%s/merge" % a["id"], {}, token=self.supervisor1), 400)
        # an admin of the organisation may merge too; a merged record is not merged twice
        self.merge(a["id"], b["id"], token=self.admin1)
        c = self.make_person(name="권한", birth_date="1970-07-07", sex="M")
        self.assertError(self.client.post("/v1/persons/%s/merge" % c["id"], {"duplicate_id": b["id"]},
                                          token=self.supervisor1), 409, "merge_conflict")
        self.assertError(self.client.post("/v1/persons/%s/unmerge" % c["id"], {"merge_id": "mrg_nope"},
                                          token=self.supervisor1), 404)

    def test_an_unmerge_waits_for_a_later_merge_of_the_kept_record(self):
        a, b, c = (self.make_person(name="연쇄", birth_date="1960-06-06", sex="F") for _ in range(3))
        first = self.merge(b["id"], c["id"]).json["merge"]
        self.merge(a["id"], b["id"])
        err = self.assertError(self.client.post("/v1/persons/%s/unmerge" % b["id"], {"merge_id": first["id"]},
                                                token=self.supervisor1), 409, "merge_conflict")
        self.assertEqual(err["details"]["merged_into"], a["id"])


class AssignmentTest(ApiTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        t = cls.server.token_create
        cls.worker1b = t("worker1b", "worker", ORG1)

    def assign(self, case, who, token=None, expect=200, **body):
        r = self.client.post("/v1/cases/%s/assignment" % case["id"], dict(body, assigned_to=who),
                             token=token or self.supervisor1)
        self.assertEqual(r.status, expect, r.text)
        return r

    def assigned(self, token, who="me", path="/v1/cases", **query):
        return [x["id"] for x in self.list_all(path, token, query=dict(query, assigned_to=who))]

    def test_a_case_is_assigned_on_opening_and_reassigned_by_a_supervisor(self):
        p = self.make_person()
        case = self.make_case(p["id"])
        self.assertEqual(case["assigned_to"], "worker1")
        opened = self.list_all("/v1/cases/%s/events" % case["id"], self.worker1)[0]
        self.assertEqual((opened["type"], opened["data"]["assigned_to"]), ("opened", "worker1"))
        named = self.make_case(self.make_person()["id"], assigned_to="worker1b")
        self.assertEqual(named["assigned_to"], "worker1b")
        for who in ("nobody", "auditor1", "worker2"):  # not someone who works cases here
            with self.subTest(who=who):
                self.assertError(self.client.post("/v1/cases", {"person_id": p["id"], "program": "integrated",
                                                                "source": "walk_in", "assigned_to": who},
                                                  token=self.worker1), 422, "unknown_assignee", field="assigned_to")
        r = self.assign(case, "worker1b", note="담당자 변경: 휴직", version=case["version"])
        after = r.json
        self.assertEqual((after["assigned_to"], after["version"], after["stage"]),
                         ("worker1b", case["version"] + 1, "discovery"))
        self.assertEqual(after["stage_label"], case["stage_label"])
        ev = self.list_all("/v1/cases/%s/events" % case["id"], self.worker1)[-1]
        self.assertEqual((ev["type"], ev["actor"], ev["data"], ev["note"]),
                         ("assigned", "supervisor1", {"from": "worker1", "to": "worker1b"}, "담당자 변경: 휴직"))
        # to the one who has it already: nothing happens
        same = self.assign(after, "worker1b").json
        self.assertEqual(same["version"], after["version"])
        self.assertEqual(len(self.list_all("/v1/cases/%s/events" % case["id"], self.worker1)), 2)
        # a stale version, a worker, another organisation, an unknown user
        self.assign(after, "worker1", expect=412, version=case["version"])
        self.assertError(self.client.post("/v1/cases/%s/assignment" % case["id"], {"assigned_to": "worker1"},
                                          token=self.worker1), 403)
        self.assertError(self.client.post("/v1/cases/%s/assignment" % case["id"], {"assigned_to": "worker2"},
                                          token=self.admin2), 404)
        self.assertError(self.client.post("/v1/cases/%s/assignment" % case["id"], {"assigned_to": "ghost"},
                                          token=self.supervisor1), 422, "unknown_assignee")
        self.assertError(self.client.post("/v1/cases/%s/assignment" % case["id"], {"assigned_to": "worker1",
                                                                                     "version": "2"},
                                          token=self.supervisor1), 400)
        # an admin of the organisation reassigns too
        self.assertEqual(self.assign(after, "worker1", token=self.admin1).json["assigned_to"], "worker1")

    def test_cases_and_deadlines_by_assignee(self):
        mine = [self.make_case(self.make_person()["id"]) for _ in range(3)]
        theirs = [self.make_case(self.make_person()["id"], token=self.worker1b) for _ in range(2)]
        ids = lambda cs: {c["id"] for c in cs}
        self.assertTrue(ids(mine) <= set(self.assigned(self.worker1)))
        self.assertFalse(ids(theirs) & set(self.assigned(self.worker1)))
        self.assertTrue(ids(theirs) <= set(self.assigned(self.worker1b)))
        self.assertEqual(set(self.assigned(self.supervisor1, "worker1b")) & ids(mine + theirs), ids(theirs))
        # with other filters, and page by page
        self.assertTrue(ids(mine) <= set(self.assigned(self.worker1, status="open", program="integrated")))
        self.assertFalse(ids(mine) & set(self.assigned(self.worker1, status="ended")))
        paged = []
        cursor = None
        while True:
            q = {"assigned_to": "me", "limit": 1}
            if cursor:
                q["cursor"] = cursor
            r = self.client.get("/v1/cases", token=self.worker1b, query=q).json
            paged += [x["id"] for x in r["items"]]
            cursor = r["next_cursor"]
            if not cursor:
                break
        self.assertEqual(paged, sorted(paged))
        self.assertTrue(ids(theirs) <= set(paged))
        self.assertTrue(ids(mine + theirs) <= set(self.assigned(self.worker1, "")))  # empty: no filter
        # the deadlines of a worker's cases: Dongjak-gu's plan is due 30 days after intake
        case = self.advance(theirs[0], "intake", token=self.worker1b)
        dl = self.list_all("/v1/deadlines", self.worker1b, query={"assigned_to": "me"})
        self.assertIn((case["id"], "plan_due"), [(d["case_id"], d["kind"]) for d in dl])
        self.assertNotIn(case["id"], [d["case_id"] for d in self.list_all("/v1/deadlines", self.worker1,
                                                                          query={"assigned_to": "me"})])
        # reassigned, the deadline follows the case
        self.assign(case, "worker1")
        self.assertIn(case["id"], [d["case_id"] for d in self.list_all("/v1/deadlines", self.worker1,
                                                                       query={"assigned_to": "me"})])
        self.assertNotIn(case["id"], [d["case_id"] for d in self.list_all("/v1/deadlines", self.worker1b,
                                                                          query={"assigned_to": "me"})])

    def test_the_assignee_list_uses_its_index(self):
        """A list by assignee walks cases_assignee, not the organisation's
        cases: the server's own file has the index, and SQLite plans the
        shape of WHERE the store builds for that filter with it."""
        self.make_case(self.make_person()["id"])
        db = sqlite3.connect("file:%s?mode=ro" % self.server.db, uri=True)
        try:
            names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
            self.assertIn("cases_assignee", names)
            plan = " ".join(str(r[-1]) for r in db.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM cases WHERE (org_id = ?1 OR (?2 = 1 AND org_id IN "
                "(SELECT id FROM orgs WHERE type = 'emd' AND region = ?3))) AND assigned_to = ?4 "
                "ORDER BY id LIMIT 51", (ORG1, 0, "11590", "worker1")))
        finally:
            db.close()
        self.assertIn("cases_assignee", plan)


if __name__ == "__main__":
    unittest.main()
