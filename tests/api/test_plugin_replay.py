"""Shadow replay: a candidate plugin set is run against the recorded
history of real cases (POST /v1/admin/plugins/replay, `sarye plugin replay
DIR`) and every decision it would make differently from the serving set is
reported — which cases, which moves would be refused or newly allowed,
which deadlines would move, per program and region — before anything is
published; a reload can require a replay with no unexpected difference."""
import datetime
import json
import os
import re
import shutil
import tempfile

from harness import SOURCE, ApiTest, run_cli

REGION_FILE = os.path.join("regions", "kr-11590.lua")
OTHER_REGION = "11680"  # no region plugin: the program's own rules


def day(s):
    return datetime.date.fromisoformat(s)


class ReplayTest(ApiTest):
    # a spinning guard is stopped quickly; its overruns must not count
    # against the region (strikes) — replay is not on the serving budget
    server_env = {"SARYE_LUA_TIMEOUT_MS": "100", "SARYE_LUA_REGION_STRIKES": "2"}

    @classmethod
    def setUpClass(cls):
        cls.plugdir = tempfile.mkdtemp(prefix="sarye-replay-")
        shutil.copytree(os.path.join(SOURCE, "plugins"), cls.plugdir, dirs_exist_ok=True)
        with open(os.path.join(cls.plugdir, REGION_FILE), encoding="utf-8") as f:
            cls.region_text = f.read()
        with open(os.path.join(cls.plugdir, "programs", "integrated.lua"), encoding="utf-8") as f:
            cls.program_text = f.read()
        cls.server_args = ("--plugins", cls.plugdir)
        super().setUpClass()
        cls.history()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.plugdir, ignore_errors=True)

    @classmethod
    def history(cls):
        """Recorded history: three cases at intake (one with a note on each
        move), one walked to delivery (assessment, plan, approval), and a
        case in a region without a region plugin."""
        t = cls("test_what_a_replay_request_may_say")
        t.intake = []
        for note in (None, None, "방문 상담"):
            c = t.make_case(t.make_person()["id"])
            for to in ("initial_counseling", "intake"):
                c = t.move(c, to, **({"note": note} if note else {})).json
            t.intake.append(c)
        c = t.make_case(t.make_person()["id"])
        t.walked = t.advance(c, "delivery")
        oid, tok = t.make_org_with_worker(region=OTHER_REGION)
        p = t.make_person(token=tok)
        c = t.make_case(p["id"], token=tok)
        for to in ("initial_counseling", "intake"):
            c = t.move(c, to, token=tok).json
        t.other = c
        cls.intake, cls.walked, cls.other, cls.other_token = t.intake, t.walked, t.other, tok
        # every decision recorded: opened + 2 moves each (4 cases), the walked
        # one's moves to delivery and its work (assessment, plan, approval)
        cls.recorded = {}
        for c in cls.intake + [cls.walked, cls.other]:
            cls.recorded[c["id"]] = t.list_all("/v1/cases/%s/events" % c["id"],
                                               cls.other_token if c is cls.other else cls.worker1)

    def setUp(self):
        self.write(REGION_FILE, self.region_text)
        self.write("programs/integrated.lua", self.program_text)

    # ---- helpers ----
    def write(self, rel, text):
        with open(os.path.join(self.plugdir, rel), "w", encoding="utf-8") as f:
            f.write(text)

    def replay(self, files, token=None, expect=200, **body):
        body = dict(body, files=[{"path": p, "text": t} for p, t in files.items()])
        r = self.client.post("/v1/admin/plugins/replay", body, token=token or self.operator)
        self.assertEqual(r.status, expect, r.text)
        return r.json

    def region(self, old, new, count=1):
        self.assertEqual(self.region_text.count(old), count, old)
        return self.region_text.replace(old, new)

    def shorter_plan(self):
        """The plan due in 20 days after intake instead of 30 (its test too)."""
        text = self.region("offset = { days = 30 }", "offset = { days = 20 }")
        return text.replace('"2026-02-14"', '"2026-02-04"')

    def decisions(self, case_id=None):
        kinds = ("opened", "transition", "reopened", "record", "plan_approved", "meeting")
        return sum(1 for cid, evs in self.recorded.items() for e in evs
                   if e["type"] in kinds and case_id in (None, cid))

    def moves_to(self, stage, region="11590"):
        return [(cid, e) for cid, evs in self.recorded.items() for e in evs
                if e["type"] == "transition" and e.get("to") == stage
                and (cid != self.other["id"]) == (region == "11590")]

    def intake_moves(self, region="11590"):
        return self.moves_to("intake", region)

    def by_program(self, report, program="integrated", region="11590"):
        rows = [p for p in report["by_program"] if p["program"] == program and p["region"] == region]
        self.assertEqual(len(rows), 1, report["by_program"])
        return rows[0]

    # ---- what a replay reports ----
    def test_a_set_that_decides_the_same_differs_nowhere(self):
        rep = self.replay({REGION_FILE: self.region_text + "\n-- a comment\n"})
        self.assertTrue(rep["complete"])
        self.assertNotEqual(rep["candidate"], rep["baseline"])
        self.assertEqual(rep["cases"], len(self.recorded))
        self.assertEqual(rep["decisions"], self.decisions())
        # the other region's rules come from the same files in both sets: not asked
        other = self.decisions(self.other["id"])
        self.assertEqual((rep["replayed"], rep["same_rules"]), (self.decisions() - other, other))
        self.assertEqual(self.by_program(rep, region=OTHER_REGION)["same_rules"], other)
        self.assertEqual(rep["differences"], 0, rep["examples"])
        self.assertEqual(rep["examples"], [])
        # the serving rules make every recorded decision again, on the facts
        # it was made on (records, plans, deadlines as they were then)
        self.assertEqual(rep["baseline_refused"], 0)
        self.assertRegex(rep["digest"], r"^[0-9a-f]{64}$")
        self.assertGreater(rep["rate_per_s"], 0)

    def test_a_shorter_deadline_moves_each_one_set_on_the_way(self):
        rep = self.replay({REGION_FILE: self.shorter_plan()})
        moves = self.intake_moves()
        self.assertEqual(rep["differences"], len(moves), rep["examples"])
        self.assertEqual(rep["cases_differing"], len(moves))
        row = self.by_program(rep)
        self.assertEqual(row["deadlines_moved"], len(moves))
        self.assertEqual(row["differences"], len(moves))
        self.assertEqual(row["refused_now"], 0)
        self.assertEqual(self.by_program(rep, region=OTHER_REGION)["differences"], 0)
        seen = {}
        for ex in rep["examples"]:
            self.assertEqual((ex["type"], ex["stage"], ex["to"]), ("transition", "initial_counseling", "intake"))
            [ch] = ex["changes"]
            self.assertEqual((ch["change"], ch["kind"]), ("deadline_moved", "plan_due"))
            self.assertEqual(day(ch["from"]) - day(ch["to"]), datetime.timedelta(days=10))
            seen[ex["case_id"]] = ex["seq"]
        self.assertEqual(seen, {cid: e["seq"] for cid, e in moves})
        # the same differences, the same digest; other ones, another
        self.assertEqual(self.replay({REGION_FILE: self.shorter_plan()})["digest"], rep["digest"])
        other = self.shorter_plan().replace("days = 20", "days = 21").replace('"2026-02-04"', '"2026-02-05"')
        self.assertNotEqual(self.replay({REGION_FILE: other})["digest"], rep["digest"])

    def test_a_new_guard_refuses_moves_that_were_made(self):
        # the region's own guard of this move (seed 004) asks first for a note
        guard = '''        ["initial_counseling->intake"] = function(case, input, ctx)
          if not input.note then return false, "동작구: 접수 사유를 적어 주세요" end
'''
        text = self.region('        ["initial_counseling->intake"] = function(case, input, ctx)\n', guard).replace(
            'to = "intake"', 'to = "intake", note = "방문"')  # its own tests give one
        rep = self.replay({REGION_FILE: text})
        refused = [(cid, e) for cid, e in self.intake_moves() if not e.get("note")]
        self.assertEqual(len(refused), 3)  # two intake cases and the walked one moved without a note
        self.assertEqual(rep["differences"], len(refused))
        self.assertEqual(self.by_program(rep)["refused_now"], len(refused))
        for ex in rep["examples"]:
            [ch] = ex["changes"]
            self.assertEqual(ch["change"], "refused_now")
            self.assertEqual(ch["candidate"], {"ok": False, "kind": "refused", "plugin": "kr-11590",
                                               "reason": "동작구: 접수 사유를 적어 주세요"})
        self.assertEqual({ex["case_id"] for ex in rep["examples"]}, {cid for cid, _ in refused})

    def test_moves_offered_and_taken_away(self):
        text = self.region("      case_types = {", "      transitions = { initial_counseling = { \"assessment\" } },\n"
                                                 "      case_types = {")
        rep = self.replay({REGION_FILE: text})
        from_ic = [e for cid, evs in self.recorded.items() if cid != self.other["id"] for e in evs
                   if e["type"] == "transition" and e.get("from") == "initial_counseling"]
        self.assertEqual(self.by_program(rep)["moves_added"], len(from_ic))
        self.assertTrue(all(ex["changes"] == [{"change": "moves_added", "moves": ["assessment"]}]
                            for ex in rep["examples"]), rep["examples"])

    def test_examples_are_bounded_and_a_system_operator_sees_every_region(self):
        # the program's own deadline, in every region: 7 days after initial counseling starts
        text = self.program_text.replace("\n  guards = {", "\n  deadlines = {\n    contact_due = { start = "
                                         "\"initial_counseling\", offset = { days = 7 }, stop = \"intake\", "
                                         "label = \"연락\" },\n  },\n  guards = {", 1)
        self.assertNotEqual(text, self.program_text)
        rep = self.replay({"programs/integrated.lua": text}, examples=1)
        self.assertEqual(self.by_program(rep, region=OTHER_REGION)["deadlines_added"], 1)
        self.assertEqual(self.by_program(rep)["deadlines_added"], len(self.moves_to("initial_counseling")))
        # ... and cleared on entering intake, where nothing was cleared before
        self.assertEqual(self.by_program(rep)["clears_changed"], len(self.intake_moves()))
        self.assertEqual(len(rep["examples"]), 1)
        self.assertTrue(rep["examples_truncated"])
        self.assertIsNone(rep["examples_region"])  # replays are a system operator's: every region's cases
        rep = self.replay({"programs/integrated.lua": text}, examples=100)
        self.assertFalse(rep["examples_truncated"])
        self.assertEqual({ex["region"] for ex in rep["examples"]}, {"11590", OTHER_REGION})
        self.assertIn(self.other["id"], {ex["case_id"] for ex in rep["examples"]})
        changes = {(ch["change"], ch["kind"]) for ex in rep["examples"] for ch in ex["changes"]}
        self.assertEqual(changes, {("deadline_added", "contact_due"), ("clears_changed", "contact_due")})

    def test_the_rules_see_the_day_each_decision_was_made(self):
        hook = '''      hooks = {
        enter = {
          initial_counseling = function(case, input, ctx)
            ctx.set_deadline("decided_on", sarye.date.today(), "day")
          end,'''
        rep = self.replay({REGION_FILE: self.region("      hooks = {\n        enter = {", hook)})
        days = {}
        for cid, e in self.moves_to("initial_counseling"):
            at = datetime.datetime.fromisoformat(e["at"].replace("Z", "+00:00"))
            days[cid] = str((at + datetime.timedelta(hours=9)).date())
        got = {ex["case_id"]: ex["changes"][0]["to"] for ex in rep["examples"]}
        self.assertEqual(got, days)

    def test_a_candidate_that_fails_is_reported_and_costs_the_region_nothing(self):
        # the region's own guard of this move (seed 004) spins first
        spin = '''        ["initial_counseling->intake"] = function(case, input, ctx)
          if case.id ~= "cas_TEST" then while true do end end -- recorded cases only
'''
        text = self.region('        ["initial_counseling->intake"] = function(case, input, ctx)\n', spin)
        rep = self.replay({REGION_FILE: text})
        n = len(self.intake_moves())
        self.assertEqual(self.by_program(rep)["failed_now"], n)
        kinds = {ex["changes"][0]["candidate"]["kind"] for ex in rep["examples"]}
        self.assertEqual(kinds, {"plugin_timeout"})
        # more overruns than lua.region_strikes, on the replay's own VM: the
        # region serves on, unsuspended
        self.assertGreater(n, 2)
        c = self.make_case(self.make_person()["id"])
        self.move(c, "initial_counseling")
        # (recorded history now: the other tests count it too)
        self.recorded[c["id"]] = self.list_all("/v1/cases/%s/events" % c["id"], self.worker1)

    def test_candidates_that_do_not_load_are_refused(self):
        bad = self.region('t.eq(r.effects.set[1].due_on, "2026-02-14")', 't.eq(r.effects.set[1].due_on, "1999-01-01")')
        err = self.assertError(self.client.post("/v1/admin/plugins/replay",
                                                {"files": [{"path": REGION_FILE, "text": bad}]}, token=self.operator),
                               422, "plugin_invalid")
        self.assertTrue(any("1999-01-01" in e["message"] for e in err["details"]["errors"]))
        err = self.assertError(self.client.post("/v1/admin/plugins/replay",
                                                {"files": [{"path": "programs/x.lua", "text": "return {\n = 1"}]},
                                                token=self.operator), 422, "plugin_invalid")
        self.assertEqual(err["details"]["errors"][0]["line"], 2)
        # removing a file is a change too: the region's rules go
        rep = self.replay({REGION_FILE: None})
        self.assertEqual(self.by_program(rep)["deadlines_dropped"], len(self.intake_moves()))

    def test_what_a_replay_request_may_say(self):
        post = self.client.post
        self.assertError(post("/v1/admin/plugins/replay", {"files": []}, token=self.operator), 400, "validation_failed",
                         "files")
        self.assertError(post("/v1/admin/plugins/replay", {}, token=self.operator), 400, "validation_failed", "files")
        for path in ("../etc/passwd", "regions/../x.lua", "regions/x.txt", "lib/x.lua", "regions/.x.lua",
                     "regions/a b.lua"):
            self.assertError(post("/v1/admin/plugins/replay", {"files": [{"path": path, "text": "return {}"}]},
                                  token=self.operator), 400, "validation_failed", "files[0]")
        self.assertError(post("/v1/admin/plugins/replay", {"files": [{"path": REGION_FILE, "text": 3}]},
                              token=self.operator), 400, "validation_failed", "files[0]")
        # a directory on the server is the command line's
        self.assertError(post("/v1/admin/plugins/replay", {"dir": "/etc"}, token=self.operator), 422,
                         "validation_failed", "dir")
        self.assertError(post("/v1/admin/plugins/replay", {"files": [{"path": REGION_FILE, "text": ""}],
                                                           "examples": 5000}, token=self.operator), 400,
                         "validation_failed", "examples")
        self.assertError(post("/v1/admin/plugins/replay", {"files": [{"path": REGION_FILE, "text": ""}],
                                                           "nope": 1}, token=self.operator), 400)
        for tok in (self.worker1, self.supervisor1, self.auditor1):
            self.assertError(post("/v1/admin/plugins/replay", {"files": [{"path": REGION_FILE, "text": ""}]},
                                  token=tok), 403)

    # ---- a reload that requires a clean replay ----
    def reload(self, **body):
        return self.client.post("/v1/admin/plugins/reload", body or None, token=self.operator)

    def generation(self):
        return self.client.get("/v1/admin/plugins", token=self.operator).json["generation"]

    def test_a_reload_can_require_no_unexpected_difference(self):
        g0 = self.generation()
        try:
            self.write(REGION_FILE, self.shorter_plan())
            err = self.assertError(self.reload(require_replay=True), 409, "replay_differs")
            report = err["details"]["replay"]
            self.assertEqual(report["differences"], len(self.intake_moves()))
            self.assertEqual(self.generation(), g0, "nothing is published")
            err = self.assertError(self.reload(require_replay=True, expected_digest="0" * 64), 409, "replay_differs")
            self.assertIn("not the ones expected", err["message"])
            self.assertEqual(self.generation(), g0)
            self.assertError(self.reload(expected_digest=report["digest"]), 400, "validation_failed",
                             "expected_digest")
            # the differences reviewed (their digest): published
            r = self.reload(require_replay=True, expected_digest=report["digest"])
            self.assertEqual(r.status, 200, r.text)
            self.assertTrue(r.json["changed"])
            self.assertEqual(r.json["replay"]["digest"], report["digest"])
            self.assertNotEqual(self.generation(), g0)
            # a set that decides the same passes as it is
            self.write(REGION_FILE, self.shorter_plan() + "\n-- reviewed\n")
            r = self.reload(require_replay=True)
            self.assertEqual(r.status, 200, r.text)
            self.assertEqual(r.json["replay"]["differences"], 0)
        finally:
            self.write(REGION_FILE, self.region_text)
            self.assertEqual(self.reload().status, 200)

    # ---- the command line ----
    def test_plugin_replay_on_the_command_line(self):
        cand = tempfile.mkdtemp(prefix="sarye-cand-")
        self.addCleanup(shutil.rmtree, cand, True)
        shutil.copytree(self.plugdir, cand, dirs_exist_ok=True)
        args = ("plugin", "replay", cand, "--plugins", self.plugdir)
        p = run_cli(*args, db=self.server.db, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("0 decisions differ", p.stdout)
        self.assertIn("replayed 0 of %d recorded decisions" % self.decisions(), p.stdout)
        with open(os.path.join(cand, REGION_FILE), "w", encoding="utf-8") as f:
            f.write(self.shorter_plan())
        p = run_cli(*args, db=self.server.db, check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        n = len(self.intake_moves())
        other = self.decisions(self.other["id"])
        self.assertIn("replayed %d of %d recorded decisions on %d cases (%d under rules the same in both sets"
                      % (self.decisions() - other, self.decisions(), len(self.recorded), other), p.stdout)
        self.assertIn("%d decisions differ, on %d cases" % (n, n), p.stdout)
        self.assertIn("integrated in 11590: %d of" % n, p.stdout)
        self.assertRegex(p.stdout, r"deadline_moved plan_due: \d{4}-\d\d-\d\d -> \d{4}-\d\d-\d\d")
        p = run_cli(*args, "--json", "--examples", "0", db=self.server.db, check=False)
        rep = json.loads(p.stdout)
        self.assertEqual(rep["differences"], n)
        self.assertEqual(rep["examples"], [])
        self.assertTrue(rep["examples_truncated"])
        # the same digest as over HTTP: the same differences
        self.assertEqual(rep["digest"], self.replay({REGION_FILE: self.shorter_plan()})["digest"])
        p = run_cli("plugin", "replay", os.path.join(cand, "nowhere"), db=self.server.db, check=False)
        self.assertEqual(p.returncode, 1)
        p = run_cli("plugin", "replay", db=self.server.db, check=False)
        self.assertEqual(p.returncode, 2)
        with open(os.path.join(cand, REGION_FILE), "w", encoding="utf-8") as f:
            f.write("return {")
        p = run_cli(*args, db=self.server.db, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"regions/kr-11590\.lua:\d+: ")


if __name__ == "__main__":
    import unittest
    unittest.main()
