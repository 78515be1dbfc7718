"""Open cases under new rules, explicitly: each case records the plugin
generation it runs under; on a reload the administrator chooses to migrate
the open cases (their declared deadlines move with the new rules; a dry run
lists which cases' deadlines and allowed moves change) or to let them stay
on the generation they started with until they close (the server keeps it
loaded, across restarts, retires it when no open case uses it, and bounds
how many it keeps). Both paths, and the audit of the choice."""
import datetime
import os
import shutil
import signal
import tempfile
import time
import unittest

from harness import SCALE, SOURCE, Server

REGION_FILE = os.path.join("regions", "kr-11590.lua")
ORG = "dj-sangdo1"

# A region rule new cases meet: intake -> assessment needs a note.
NOTE_GUARD = '''      guards = {
        ["intake->assessment"] = function(case, input, ctx)
          if not input.note then return false, "동작구: 조사 전에 접수 메모가 필요합니다" end
          return true
        end,'''


def day(s):
    return datetime.date.fromisoformat(s)


class GenerationsTest(unittest.TestCase):
    """A fresh server (and plugin directory) for each test: which cases are
    open decides which generations stay loaded."""
    env = {"SARYE_PLUGINS_MAX_GENERATIONS": "2"}

    def setUp(self):
        self.plugdir = tempfile.mkdtemp(prefix="sarye-gens-")
        self.addCleanup(shutil.rmtree, self.plugdir, True)
        shutil.copytree(os.path.join(SOURCE, "plugins"), self.plugdir, dirs_exist_ok=True)
        with open(os.path.join(self.plugdir, REGION_FILE), encoding="utf-8") as f:
            self.region_text = f.read()
        self.server = Server(extra_args=("--plugins", self.plugdir), env=self.env)
        self.addCleanup(self.server.close)
        self.server.org_create(ORG, "상도1동", "emd", "11590", ["integrated"])
        self.admin = self.server.token_create("op1", "operator")  # plugins are a system operator's
        self.worker = self.server.token_create("worker1", "worker", ORG)
        self.auditor = self.server.token_create("auditor1", "auditor", ORG)
        self.client = self.server.client()
        self.addCleanup(self.client.close)

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0)
        self.assertEqual(self.server.sanitizer_reports(), [])

    # ---- helpers ----
    def write_region(self, text):
        with open(os.path.join(self.plugdir, REGION_FILE), "w", encoding="utf-8") as f:
            f.write(text)

    def region(self, old, new):
        self.assertIn(old, self.region_text)
        return self.region_text.replace(old, new)

    def reload(self, expect=200, **body):
        r = self.client.post("/v1/admin/plugins/reload", body or None, token=self.admin)
        self.assertEqual(r.status, expect, r.text)
        return r.json

    def listing(self):
        r = self.client.get("/v1/admin/plugins", token=self.admin)
        self.assertEqual(r.status, 200, r.text)
        return r.json

    def generations(self):
        return {g["id"]: g for g in self.listing()["generations"]}

    def case(self, to=("initial_counseling", "intake")):
        p = self.client.post("/v1/persons", {"name": "김민지", "birth_date": "1980-02-03", "sex": "F"},
                             token=self.worker).json
        c = self.client.post("/v1/cases", {"person_id": p["id"], "program": "integrated", "source": "walk_in"},
                             token=self.worker).json
        for stage in to:
            c = self.move(c, stage)
        return c

    def move(self, c, to, expect=200, **body):
        body = dict(body, to=to, version=c["version"])
        r = self.client.post("/v1/cases/%s/transitions" % c["id"], body, token=self.worker)
        self.assertEqual(r.status, expect, r.text)
        return r.json

    def get(self, c):
        return self.client.get("/v1/cases/" + c["id"], token=self.worker).json

    def due(self, c):
        return {d["kind"]: d["due_on"] for d in self.get(c)["due"]}

    def audit(self, needle):
        r = self.client.get("/v1/audit", token=self.auditor, query={"limit": 500})
        self.assertEqual(r.status, 200, r.text)
        return [a for a in r.json["items"] if a["action"] == "POST /v1/admin/plugins/reload"
                and needle in (a.get("purpose") or "")]

    def shorter_plan(self):
        return self.region("offset = { days = 30 }", "offset = { days = 20 }").replace('"2026-02-14"', '"2026-02-04"')

    # ---- migrate ----
    def test_migrate_dry_run_lists_what_changes_then_moves_the_deadlines(self):
        a, b = self.case(), self.case()
        e = self.case(("initial_counseling",))
        d0 = self.case(())  # at discovery: nothing of its changes
        due_a = self.due(a)["plan_due"]
        g0 = self.listing()["generation"]
        self.assertEqual({self.get(c)["plugin_generation"] for c in (a, b, e, d0)}, {g0})
        # plan due 20 days after intake; from initial counseling, assessment may follow too
        text = self.shorter_plan().replace("      case_types = {", "      transitions = { initial_counseling = "
                                           "{ \"assessment\" } },\n      case_types = {")
        self.write_region(text)
        dry = self.reload(open_cases="migrate", dry_run=True)
        self.assertTrue(dry["dry_run"])
        self.assertTrue(dry["changed"])
        self.assertEqual(dry["serving"], g0)
        g1 = dry["generation"]
        m = dry["migration"]
        self.assertEqual((m["open_cases"], m["changing"], m["deadlines_moved"], m["moves_changed"]), (4, 3, 2, 1))
        cases = {x["case_id"]: x for x in m["cases"]}
        self.assertEqual(set(cases), {a["id"], b["id"], e["id"]})
        self.assertEqual(cases[a["id"]]["deadlines"], [{
            "kind": "plan_due", "due_on": due_a, "new_due_on": str(day(due_a) - datetime.timedelta(days=10)),
            "label": "서비스 제공계획 수립 기한 (접수일로부터 30일)"}])
        self.assertEqual(cases[a["id"]]["from_generation"], g0)
        self.assertEqual((cases[e["id"]]["moves_added"], cases[e["id"]]["moves_removed"]), (["assessment"], []))
        self.assertEqual(m["by_program"], [{"program": "integrated", "region": "11590", "changing": 3,
                                            "deadlines_moved": 2, "deadlines_dropped": 0, "moves_changed": 1}])
        # a dry run publishes nothing and changes nothing
        self.assertEqual(self.listing()["generation"], g0)
        self.assertEqual(self.due(a)["plan_due"], due_a)
        self.move(e, "assessment", expect=409)
        # the migration itself
        r = self.reload(open_cases="migrate")
        self.assertFalse(r["dry_run"])
        self.assertEqual(r["generation"], g1)
        self.assertEqual(r["cases_switched"], 4)
        self.assertEqual(self.due(a)["plan_due"], str(day(due_a) - datetime.timedelta(days=10)))
        self.assertEqual({self.get(c)["plugin_generation"] for c in (a, b, e, d0)}, {g1})
        events = self.client.get("/v1/cases/%s/events" % a["id"], token=self.worker).json["items"]
        last = events[-1]
        self.assertEqual((last["type"], last["actor"], last["plugin_generation"]), ("rules_migrated", "op1", g1))
        self.assertEqual(last["data"]["from_generation"], g0)
        self.assertEqual(last["data"]["deadlines"][0]["new_due_on"], self.due(a)["plan_due"])
        self.assertNotEqual(self.client.get("/v1/cases/%s/events" % d0["id"], token=self.worker).json["items"][-1]
                            ["type"], "rules_migrated")
        self.move(e, "assessment")  # the new rules' move, for a case that was open before them
        self.assertEqual(list(self.generations()), [g1])
        [entry] = self.audit("open_cases=migrate generation=%s from=%s" % (g1, g0))
        self.assertEqual((entry["actor"], entry["role"]), ("op1", "operator"))
        self.assertIn("cases=3", entry["purpose"])

    def test_migrate_drops_a_deadline_the_new_rules_no_longer_declare(self):
        a = self.case()
        self.assertIn("plan_due", self.due(a))
        self.write_region(self.region_text.replace("plan_due", "plan_deadline"))
        dry = self.reload(dry_run=True)  # plugins.open_cases: migrate
        self.assertEqual(dry["open_cases"], "migrate")
        [x] = dry["migration"]["cases"]
        self.assertEqual((x["deadlines"][0]["kind"], x["deadlines"][0]["new_due_on"]), ("plan_due", None))
        self.assertEqual(dry["migration"]["deadlines_dropped"], 1)
        self.reload()
        self.assertNotIn("plan_due", self.due(a))
        # the next case gets the new kind on entering intake
        self.assertIn("plan_deadline", self.due(self.case()))

    # ---- stay ----
    def test_stay_keeps_open_cases_on_their_rules_until_they_close(self):
        a = self.case()
        g0 = self.listing()["generation"]
        self.write_region(self.region("      guards = {", NOTE_GUARD))
        r = self.reload(open_cases="stay")
        g1 = r["generation"]
        self.assertEqual(r["stay"]["generations"], [{"id": g0, "serving": True, "open_cases": 1}])
        self.assertEqual(r["stay"]["loaded_after"], 2)
        self.assertEqual(r["cases_switched"], 0)  # already on g0: nothing to pin
        gens = self.generations()
        self.assertEqual(list(gens), [g1, g0])
        self.assertEqual((gens[g0]["serving"], gens[g0]["open_cases"]), (False, 1))
        self.assertEqual((gens[g1]["serving"], gens[g1]["open_cases"]), (True, 0))
        # the open case decides by its generation's rules: no note needed
        a = self.move(a, "assessment")
        self.assertEqual(a["plugin_generation"], g0)
        self.assertEqual(self.client.get("/v1/cases/%s/events" % a["id"], token=self.worker).json["items"][-1]
                         ["plugin_generation"], g0)
        # a case opened now meets the new rule
        b = self.case()
        self.assertEqual(b["plugin_generation"], g1)
        r = self.client.post("/v1/cases/%s/transitions" % b["id"], {"to": "assessment", "version": b["version"]},
                             token=self.worker)
        self.assertEqual(r.status, 422, r.text)
        self.assertEqual(r.json["error"]["details"]["reason"], "동작구: 조사 전에 접수 메모가 필요합니다")
        self.assertEqual(len(self.audit("open_cases=stay generation=%s from=%s" % (g1, g0))), 1)
        # closed, it leaves the generation with no open case: retired
        a = self.move(a, "closure", data={"reason": "moved"})
        self.assertEqual(list(self.generations()), [g1, g0])
        self.move(a, "end")
        self.assertEqual(list(self.generations()), [g1])

    def test_stay_is_bounded_and_migrate_gathers_everything(self):
        a = self.case()
        g0 = self.listing()["generation"]
        self.write_region(self.region("      guards = {", NOTE_GUARD))
        g1 = self.reload(open_cases="stay")["generation"]
        b = self.case()
        self.write_region(self.shorter_plan())
        err = self.client.post("/v1/admin/plugins/reload", {"open_cases": "stay"}, token=self.admin)
        self.assertEqual(err.status, 409, err.text)
        e = err.json["error"]
        self.assertEqual(e["code"], "too_many_generations")
        self.assertEqual(e["details"]["max_generations"], 2)
        self.assertEqual({(g["id"], g["open_cases"]) for g in e["details"]["generations"]}, {(g1, 1), (g0, 1)})
        self.assertEqual(self.listing()["generation"], g1, "nothing published")
        r = self.reload(open_cases="migrate")
        g2 = r["generation"]
        self.assertEqual(r["cases_switched"], 2)
        self.assertEqual(list(self.generations()), [g2])
        self.assertEqual({self.get(a)["plugin_generation"], self.get(b)["plugin_generation"]}, {g2})
        # a case back on the serving rules after a stay: the new rules' plan due
        self.assertEqual(r["migration"]["deadlines_moved"], 2)

    def test_stay_survives_a_restart(self):
        a = self.case()
        g0 = self.listing()["generation"]
        self.write_region(self.region("      guards = {", NOTE_GUARD))
        g1 = self.reload(open_cases="stay")["generation"]
        self.assertEqual(self.server.restart(), 0)
        gens = self.generations()
        self.assertEqual(list(gens), [g1, g0])
        self.assertEqual(gens[g0]["open_cases"], 1)
        self.assertEqual(self.move(a, "assessment")["plugin_generation"], g0)
        b = self.case()
        self.move(b, "assessment", expect=422)

    def test_a_reopened_case_takes_the_serving_rules(self):
        a = self.case()
        a = self.move(a, "closure", data={"reason": "moved"})
        a = self.move(a, "end")
        g0 = self.listing()["generation"]
        self.write_region(self.region("      guards = {", NOTE_GUARD))
        g1 = self.reload(open_cases="stay")["generation"]
        self.assertEqual(list(self.generations()), [g1])  # no open case stayed on g0
        a = self.move(a, "intake", reopen=True)
        self.assertEqual(a["plugin_generation"], g1)
        self.move(a, "assessment", expect=422)
        self.assertNotEqual(g0, g1)

    # ---- what a reload may say ----
    def test_reload_body(self):
        post = self.client.post
        for body, field in (({"open_cases": "sideways"}, "open_cases"), ({"dry_run": "yes"}, "dry_run"),
                            ({"require_replay": 1}, "require_replay"), ({"expected_digest": "ab"}, "expected_digest"),
                            ({"open_cases": 3}, "open_cases")):
            r = post("/v1/admin/plugins/reload", body, token=self.admin)
            self.assertEqual(r.status, 400, r.text)
            self.assertEqual(r.json["error"]["details"].get("field"), field, r.text)
        r = post("/v1/admin/plugins/reload", {"nope": True}, token=self.admin)
        self.assertEqual(r.status, 400, r.text)
        r = post("/v1/admin/plugins/reload", raw=b"{", headers={"Content-Type": "application/json"}, token=self.admin)
        self.assertEqual(r.status, 400, r.text)
        r = post("/v1/admin/plugins/reload", {"open_cases": "stay"}, token=self.worker)
        self.assertEqual(r.status, 403, r.text)
        # unchanged: nothing to choose
        r = self.reload(open_cases="stay")
        self.assertFalse(r["changed"])
        self.assertEqual(r["open_cases"], "stay")


class ConfiguredStayTest(GenerationsTest):
    """plugins.open_cases = stay: what SIGHUP and the file watch do."""
    env = dict(GenerationsTest.env, SARYE_PLUGINS_OPEN_CASES="stay")

    def test_sighup_keeps_open_cases_where_they_are(self):
        a = self.case()
        g0 = self.listing()["generation"]
        self.assertEqual(self.listing()["open_cases_default"], "stay")
        self.write_region(self.region("      guards = {", NOTE_GUARD))
        self.server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10 * SCALE
        while time.monotonic() < deadline and self.listing()["generation"] == g0:
            time.sleep(0.05)
        g1 = self.listing()["generation"]
        self.assertNotEqual(g1, g0)
        self.assertEqual(list(self.generations()), [g1, g0])
        self.assertEqual(self.move(a, "assessment")["plugin_generation"], g0)
        [entry] = self.audit("open_cases=stay generation=%s" % g1)
        self.assertEqual((entry["actor"], entry["role"]), ("system", "system"))

    # the inherited tests run with this default too, except where a test
    # relies on migrate being the default
    def test_migrate_drops_a_deadline_the_new_rules_no_longer_declare(self):
        pass


if __name__ == "__main__":
    unittest.main()
