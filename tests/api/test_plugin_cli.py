"""The plugin kit on the command line: `sarye plugin new|check|test|lint`,
a plugin author's commands, in the real sandbox, exactly as a reload would
load the set (`plugin replay` is in test_plugin_replay)."""
import os
import re
import shutil
import tempfile
import unittest

from harness import SOURCE, run_cli

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.M)

# A region file outside any set: its kind is in its text. Its guard logs
# (print and sarye.log), one test fails.
LOOSE_REGION = """return {
  id = "kr-11111", kind = "region", version = "0.1.0", api = 1, name = "x", regions = { "11111" },
  programs = { integrated = { guards = { ["discovery->initial_counseling"] = function(case, input, ctx)
    print("guard sees", case.stage, input.note)
    if input.note == nil then sarye.log("warn", "no note") return false, "note please" end
    return true
  end } } },
  tests = {
    { name = "says hello", run = function(t) print("hello from a test", 42) sarye.log("info", string.rep("x", 2500)) end },
    { name = "the guard refuses a move without a note", run = function(t)
        t.eq(t.guard { plugin = "kr-11111", on = "discovery->initial_counseling", program = "integrated", region = "11111" }.ok, false)
      end },
    { name = "the guard lets a move without a note through", run = function(t)
        local v = t.guard { plugin = "kr-11111", on = "discovery->initial_counseling", program = "integrated", region = "11111" }
        t.eq(v.ok, true, "the guard")
      end },
  },
}
"""


class PluginCliTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sarye-plugins-")
        shutil.copytree(os.path.join(SOURCE, "plugins"), self.dir, dirs_exist_ok=True)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, rel, text):
        with open(os.path.join(self.dir, rel), "w", encoding="utf-8") as f:
            f.write(text)

    def test_bundled_plugins_pass_their_tests(self):
        p = run_cli("plugin", "test", self.dir, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        m = SUMMARY.search(p.stdout)
        self.assertTrue(m, p.stdout)
        self.assertGreater(int(m.group(1)), 5)
        self.assertEqual(m.group(2), "0")
        self.assertRegex(p.stdout, r"ok \d+ - integrated: ")
        self.assertIn("kr-11590:", p.stdout)

    def test_one_file_runs_only_its_tests_with_its_set_loaded(self):
        p = run_cli("plugin", "test", os.path.join(self.dir, "regions", "kr-11590.lua"), check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        lines = [l for l in p.stdout.splitlines() if l.startswith("ok ")]
        self.assertTrue(lines)
        self.assertTrue(all("kr-11590:" in l for l in lines), lines)

    def test_failing_test_exits_1_with_its_message(self):
        with open(os.path.join(self.dir, "regions", "kr-11590.lua"), encoding="utf-8") as f:
            text = f.read()
        self.write("regions/kr-11590.lua", text.replace('"2027-02-28"', '"2027-03-01"'))
        p = run_cli("plugin", "test", self.dir, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stdout, r"not ok \d+ - kr-11590: follow-up twice")
        self.assertIn('expected "2027-03-01", got "2027-02-28"', p.stdout)
        self.assertRegex(p.stdout, re.compile(r"^\d+ passed, 1 failed$", re.M))

    def test_check_valid_and_invalid(self):
        p = run_cli("plugin", "check", self.dir, check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.write("programs/broken.lua", "return {\n  id = 'broken',\n  kind = 'program' version = '1'\n}\n")
        p = run_cli("plugin", "check", self.dir, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"programs/broken\.lua:3: broken: .*'}' expected")

    def test_check_reports_every_error(self):
        self.write("programs/a.lua", "return { id = 'a', kind = 'program', version = 'x', api = 1 }")
        self.write("regions/kr-1.lua", "return { id = 'kr-1', kind = 'region', version = '1.0.0', api = 1, "
                                       "name = 'x', regions = {'1'}, programs = { nope = {} } }")
        p = run_cli("plugin", "check", self.dir, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"programs/a\.lua:1: a: version must be semver")
        self.assertRegex(p.stderr, r"regions/kr-1\.lua:1: kr-1: programs\.nope: overlay of an unknown program")

    def test_check_names_each_bad_rule(self):
        self.write("programs/bad.lua", """return { id = 'bad', kind = 'program', version = '1.0.0', api = 1, name = 'x',
  stages = { { id = 'discovery', label = '발굴' }, { id = 'intake', label = '접수' }, { id = 'closure', label = '종결' } },
  transitions = { discovery = { 'intake', 'planning' }, intake = 'closure' },
  labels = 'no',
  guards = { ['intake'] = function() end, ['*->nowhere'] = function() end },
  hooks = { enter = { intake = 1 }, during = {} },
  prepare = { closure = 'f' },
  deadlines = { Bad = {}, late = { start = 'intake', offset = { weeks = 1 }, stop = 7 } },
  records = { plan = 3, gossip = {} },
  instruments = { needs = { domains = {} } },
  closure_reasons = { [1] = 'x' },
  case_types = { a = { label = 'x' } },
}""")
        p = run_cli("plugin", "check", self.dir, check=False)
        self.assertEqual(p.returncode, 1)
        for msg in ["transitions.discovery: stage 'planning' is not used by program 'bad'",
                    "transitions.intake must be a list",
                    "labels must be a table",
                    "guards: key 'intake' must be 'from->to' or '*->to'",
                    "guards: 'nowhere' is not a standard stage",
                    "hooks.enter.intake must be a function",
                    "hooks.during: only 'enter' and 'leave' hooks exist",
                    "prepare.closure must be a function",
                    "deadlines: 'Bad' is not a deadline kind (lower_snake_case)",
                    "deadlines.late.offset must be {days = n} or {months = n}",
                    "deadlines.late.stop must be a stage or a list",
                    "records.plan must be a table",
                    "records: 'gossip' is not a record kind",
                    "instruments.needs.domains must be a non-empty list of domain ids",
                    "closure_reasons: id and label must be strings",
                    "case_types.a must be {label = string, lead = org type}"]:
            # every structural error says where: file and line
            self.assertRegex(p.stderr, r"programs/bad\.lua:\d+: bad: " + re.escape(msg))
        self.assertRegex(p.stderr, r"programs/bad\.lua:4: bad: labels must be a table")
        self.assertRegex(p.stderr, r"programs/bad\.lua:8: bad: deadlines\.late\.offset\.weeks: unknown key\n")

    def test_misspelt_keys_are_errors_with_a_suggestion_and_a_line(self):
        with open(os.path.join(self.dir, "regions", "kr-11590.lua"), encoding="utf-8") as f:
            text = f.read()
        text = text.replace('  regions = { "11590" },', '  regions = { "11590" },\n  programms = {},', 1)
        text = text.replace("      case_types = {", "      lables = { intake = '접수' },\n      case_types = {", 1)
        self.write("regions/kr-11590.lua", text)
        lines = text.splitlines()
        p = run_cli("plugin", "check", self.dir, check=False)
        self.assertEqual(p.returncode, 1)
        at = lines.index("  programms = {},") + 1
        self.assertIn("regions/kr-11590.lua:%d: kr-11590: programms: unknown key (did you mean 'programs'?)" % at,
                      p.stderr)
        at = lines.index("      lables = { intake = '접수' },") + 1
        self.assertIn("regions/kr-11590.lua:%d: kr-11590: programs.integrated.lables: unknown key "
                      "(did you mean 'labels'?)" % at, p.stderr)
        # a key far from any known one gets no guess
        self.write("regions/kr-11590.lua", text.replace("  programms = {},", "  zzzzzz = 1,"))
        p = run_cli("plugin", "check", self.dir, check=False)
        self.assertRegex(p.stderr, r"kr-11590: zzzzzz: unknown key\n")

    def test_extends_unknown_program(self):
        self.write("programs/child.lua", "return { id = 'child', kind = 'program', version = '1.0.0', api = 1, "
                                         "name = 'x', extends = 'nothing_here' }")
        p = run_cli("plugin", "check", self.dir, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"programs/child\.lua:1: child: extends: 'nothing_here' is not a loaded program")

    # ---- plugin new ----
    def new(self, *args, cwd=None):
        return run_cli("plugin", "new", *args, "--plugins", self.dir, check=False, cwd=cwd)

    def test_new_region_in_a_work_dir_passes_check_test_and_lint_as_written(self):
        work = os.path.join(self.dir, "..", os.path.basename(self.dir) + "-work")
        self.addCleanup(shutil.rmtree, work, True)
        p = self.new("region", "kr-11680", "--dir", work)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        path = os.path.join(work, "regions", "kr-11680.lua")
        self.assertIn("wrote %s (region kr-11680): its 2 tests pass" % path, p.stdout)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        self.assertIn('regions = { "11680" }', text)
        # the program most regions overlay, a guard and a deadline of its own
        self.assertIn("    integrated = {", text)
        self.assertIn("region_review_due", text)
        # the region file alone, laid over the bundled set: no program copied
        self.assertFalse(os.path.exists(os.path.join(work, "programs")))
        p = run_cli("plugin", "check", path, "--plugins", self.dir, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("is valid, with the plugin set", p.stdout)
        p = run_cli("plugin", "test", path, "--plugins", self.dir, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"ok 1 - kr-11680: discovery->initial_counseling needs a reason")
        self.assertIn("2 passed, 0 failed", p.stdout)
        p = run_cli("plugin", "lint", path, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # a program and an agency beside it: each passes with the region there too
        for kind, pid, tests in (("program", "new_program", 3), ("agency", "new_agency", 1)):
            p = self.new(kind, pid, "--dir", work)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("its %d tests pass" % tests, p.stdout)
        p = run_cli("plugin", "test", os.path.join(work, "programs", "new_program.lua"), "--plugins", self.dir,
                    check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("3 passed, 0 failed", p.stdout)
        p = run_cli("plugin", "lint", work, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_new_into_the_set_and_its_refusals(self):
        p = self.new("region", "kr-26110", "--dir", self.dir)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = run_cli("plugin", "test", self.dir, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("kr-26110: the review deadline is this region's", p.stdout)
        p = self.new("region", "kr-26110", "--dir", self.dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("kr-26110.lua exists already (--force writes over it)", p.stderr)
        # the same id in another file of the set
        p = self.new("region", "kr-11590", "--dir", self.dir + "-elsewhere")
        self.addCleanup(shutil.rmtree, self.dir + "-elsewhere", True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("the set has a region 'kr-11590' already (regions/kr-11590.lua)", p.stderr)
        p = self.new("region", "dongjak-again", "--region", "11590", "--dir", self.dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("region code 11590 is claimed by 'kr-11590'", p.stderr)
        p = self.new("region", "seoul", "--dir", self.dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--region CODE", p.stderr)
        p = self.new("region", "gangnam", "--region", "11680", "--program", "dream_start", "--dir", self.dir)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(os.path.join(self.dir, "regions", "gangnam.lua"), encoding="utf-8") as f:
            self.assertIn("dream_start = {", f.read())
        p = self.new("region", "x1", "--program", "nothing_here", "--region", "99", "--dir", self.dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no program 'nothing_here'", p.stderr)
        p = self.new("widget", "x")
        self.assertEqual(p.returncode, 2)
        p = self.new("program", "bad id")
        self.assertEqual(p.returncode, 1)
        self.assertIn("an id is letters, digits", p.stderr)
        # a file there already is not written over without --force
        os.remove(os.path.join(self.dir, "regions", "gangnam.lua"))
        self.write("regions/kr-11710.lua", "-- mine\n")
        p = self.new("region", "kr-11710", "--dir", self.dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("exists already", p.stderr)

    # ---- check and test of one file ----
    def test_a_loose_file_is_laid_over_the_bundled_set_by_its_kind(self):
        loose = os.path.join(self.dir, "..", os.path.basename(self.dir) + "-loose.lua")
        self.addCleanup(lambda: os.path.exists(loose) and os.remove(loose))
        with open(loose, "w", encoding="utf-8") as f:
            f.write(LOOSE_REGION)
        p = run_cli("plugin", "test", loose, "--plugins", self.dir, check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        lines = [l for l in p.stdout.splitlines() if l.startswith(("ok ", "not ok "))]
        self.assertEqual(len(lines), 3, p.stdout)
        self.assertTrue(all("kr-11111:" in l for l in lines), lines)
        # the failing test: its file:line and message, and what it logged
        self.assertRegex(p.stdout, r"not ok 3 - kr-11111: the guard lets a move without a note through\n"
                                   r"  # regions/[^ ]+\.lua:15: the guard: expected true, got false\n"
                                   r"  # log: guard sees\tdiscovery\tnil\n"
                                   r"  # log: \[warn\] no note")
        # a passing test's log shows only with --verbose, with each test's time
        self.assertNotIn("hello from a test", p.stdout)
        p = run_cli("plugin", "test", loose, "--plugins", self.dir, "--verbose", "--filter", "hello", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"^ok 1 - kr-11111: says hello \(\d+\.\d\d ms\)\n  # log: hello from a test\t42\n"
                                   r"  # log: \[info\] x{1993} \.\.\.\[2507 bytes\]\n1 passed, 0 failed$")
        # --filter: test names containing the text, and none is an error
        p = run_cli("plugin", "test", loose, "--plugins", self.dir, "--filter", "guard", check=False)
        self.assertEqual(len([l for l in p.stdout.splitlines() if " - kr-11111: " in l]), 2, p.stdout)
        p = run_cli("plugin", "test", loose, "--plugins", self.dir, "--filter", "no such test", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no test name contains 'no such test'", p.stderr)
        p = run_cli("plugin", "check", loose, "--plugins", self.dir, check=False)
        self.assertEqual(p.returncode, 1)  # its failing test refuses the set, as a reload would
        self.assertIn("test 'the guard lets a move without a note through' failed", p.stderr)
        # without the bundled set it cannot be placed
        p = run_cli("plugin", "test", loose, "--plugins", os.path.join(self.dir, "nowhere"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--plugins DIR", p.stderr)

    def test_filter_and_verbose_on_a_set(self):
        p = run_cli("plugin", "test", self.dir, "--filter", "follow-up", "-v", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        names = re.findall(r"^ok \d+ - [^:]+: (.*) \(\d+\.\d\d ms\)$", p.stdout, re.M)
        self.assertTrue(names, p.stdout)
        self.assertTrue(all("follow-up" in n for n in names), names)

    # ---- lint ----
    def test_lint_catches_what_check_accepts(self):
        p = run_cli("plugin", "lint", self.dir, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("0 warnings / 0 errors", p.stdout)
        with open(os.path.join(self.dir, "regions", "kr-11590.lua"), encoding="utf-8") as f:
            text = f.read()
        self.write("regions/kr-11590.lua", text.replace("local NO_NOTICE =", "NO_NOTICE =", 1))
        p = run_cli("plugin", "check", self.dir, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = run_cli("plugin", "lint", self.dir, check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"kr-11590\.lua:\d+:\d+: \(W111\) setting non-standard global variable 'NO_NOTICE'")
        p = run_cli("plugin", "lint", os.path.join(self.dir, "programs", "integrated.lua"), check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_help_and_usage(self):
        for args in (("plugin", "--help"), ("plugin", "help"), ("plugin", "-h")):
            p = run_cli(*args, check=False)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(p.stdout.startswith("usage: sarye plugin <command>"), p.stdout)
            for cmd in ("new", "check", "test", "lint", "replay"):
                self.assertIn("  %s " % cmd, p.stdout)
        p = run_cli("plugin", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage: sarye plugin <command>", p.stderr)
        self.assertNotIn("unknown command", p.stderr)
        p = run_cli("--help", check=False)
        self.assertIn("sarye plugin --help", p.stdout)
        p = run_cli("plugin", "test", self.dir, "--frobnicate", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown or incomplete option '--frobnicate'", p.stderr)

    def test_usage_errors(self):
        p = run_cli("plugin", "test", self.dir, "extra", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage:", p.stderr)
        p = run_cli("plugin", "check", os.path.join(self.dir, "nowhere"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("nowhere", p.stderr)
        p = run_cli("plugin", "frobnicate", check=False)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    unittest.main()
