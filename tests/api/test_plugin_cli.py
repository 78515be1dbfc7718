"""`sarye plugin check` and `sarye plugin test`: a plugin author's one
command, in the real sandbox, exactly as a reload would load the set."""
import os
import re
import shutil
import tempfile
import unittest

from harness import SOURCE, run_cli

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.M)


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
