"""Regions cannot stall each other: a region whose plugin keeps running past
its CPU budget is suspended by the governor (503 region_suspended with
Retry-After, counted in /metrics), while a canary region's cases keep
moving under their own rules. Counts, not timings: three calls past the
budget suspend the region, whatever the machine's speed."""
import os
import shutil
import tempfile
import unittest

from harness import SOURCE, ApiTest

# A region plugin whose guard never ends when asked to.
BURNER = r'''
return {
  id = "burner", kind = "region", version = "1.0.0", api = 1, name = "폭주 지역",
  regions = { "99990" },
  programs = { integrated = { guards = { ["*->initial_counseling"] = function(case, input)
    if input.data.burn then while true do end end
    return true
  end } } },
}
'''


class IsolationTest(ApiTest):
    @classmethod
    def setUpClass(cls):
        cls.plugdir = tempfile.mkdtemp(prefix="sarye-isolation-")
        shutil.copytree(os.path.join(SOURCE, "plugins"), cls.plugdir, dirs_exist_ok=True)
        with open(os.path.join(cls.plugdir, "regions", "burner.lua"), "w") as f:
            f.write(BURNER)
        cls.server_args = ("--plugins", cls.plugdir)
        # A small budget so three strikes are quick; the strikes are counted.
        cls.server_env = {"SARYE_LUA_TIMEOUT_MS": "100", "SARYE_LUA_REGION_STRIKES": "3"}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.plugdir, ignore_errors=True)

    def test_a_region_past_its_budget_again_and_again_is_suspended_alone(self):
        oid, tok = self.make_org_with_worker(region="99990")
        cases = [self.make_case(self.make_person(token=tok)["id"], token=tok) for _ in range(5)]
        canary = self.make_case(self.make_person()["id"])  # region 11590, Dongjak's rules
        for c in cases[:3]:
            r = self.move(c, "initial_counseling", expect=500, token=tok, data={"burn": True})
            self.assertError(r, 500, "plugin_timeout")
        # The fourth call does not run at all: the region is suspended.
        r = self.move(cases[3], "initial_counseling", expect=503, token=tok, data={"burn": True})
        err = self.assertError(r, 503, "region_suspended")
        self.assertEqual(err["details"]["region"], "99990")
        self.assertGreaterEqual(int(r.headers["Retry-After"]), 1)
        self.assertEqual(int(r.headers["Retry-After"]), err["details"]["retry_after"])
        # ... even a harmless move of that region waits out the suspension
        self.assertError(self.move(cases[4], "initial_counseling", expect=503, token=tok), 503, "region_suspended")
        # ... while the canary region keeps its rules: it moves, and gets
        # Dongjak's 30-day planning deadline at intake.
        c = self.move(canary, "initial_counseling").json
        c = self.move(c, "intake").json
        self.assertEqual([d["kind"] for d in c["due"]], ["plan_due"])
        metrics = self.client.get("/metrics").text
        self.assertIn('sarye_region_budget_kills_total{region="99990"} 3', metrics)
        self.assertIn('sarye_region_calls_refused_total{region="99990",why="suspended"} 2', metrics)
        self.assertNotIn('region="11590"', metrics)


if __name__ == "__main__":
    unittest.main()
