"""Regions cannot stall each other: a region whose plugin keeps running past
its CPU budget is suspended by the governor (503 region_suspended with
Retry-After, counted in /metrics), while a canary region's cases keep
moving under their own rules. Counts, not timings: three calls past the
budget suspend the region, whatever the machine's speed."""
import http.client
import json
import os
import shutil
import threading
import time
import unittest

from harness import ApiTest, plugin_dir

# A region plugin whose guard never ends when asked to.
BURNER = r'''
return {
  id = "burner", kind = "region", version = "1.0.0", api = 1, name = "폭주 지역",
  regions = { "99990", "99992" },
  programs = { integrated = { guards = { ["*->initial_counseling"] = function(case, input)
    if input.data.burn then while true do end end
    return true
  end } } },
}
'''

# A region plugin whose hook asks the writer for as much as it is told to:
# deadlines, messages to an agency, a message's size.
FLOOD = r'''
return {
  id = "flood", kind = "region", version = "1.0.0", api = 1, name = "범람 지역",
  regions = { "99993" },
  programs = { integrated = { hooks = { enter = { initial_counseling = function(case, input, ctx)
    for i = 1, input.data.deadlines or 0 do ctx.set_deadline("flood_" .. i, "2031-01-01", "범람 " .. i) end
    for i = 1, input.data.messages or 0 do ctx.enqueue("pension", { n = i }) end
    if input.data.bytes then ctx.enqueue("pension", { blob = string.rep("x", input.data.bytes) }) end
  end } } } },
}
'''

# A region plugin that keeps 4 MiB more from each call to the next, in a
# table at the top of its file (a VM serves every region in turn).
HOARD = r'''
local hoard = {}
return {
  id = "hoard", kind = "region", version = "1.0.0", api = 1, name = "독점 지역",
  regions = { "99994" },
  programs = { integrated = { guards = { ["*->initial_counseling"] = function(case, input)
    hoard[#hoard + 1] = string.rep(tostring(#hoard), 4 * 1024 * 1024)
    return true
  end } } },
}
'''


class PluginsTest(ApiTest):
    """A server over the bundled plugins and this file's hostile regions;
    a small budget so that three strikes are quick (they are counted)."""
    server_env = {"SARYE_LUA_TIMEOUT_MS": "100", "SARYE_LUA_REGION_STRIKES": "3"}

    @classmethod
    def setUpClass(cls):
        cls.plugdir = plugin_dir("sarye-isolation-", {"regions/burner.lua": BURNER, "regions/flood.lua": FLOOD,
                                                      "regions/hoard.lua": HOARD})
        cls.server_args = ("--plugins", cls.plugdir)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.plugdir, ignore_errors=True)


class IsolationTest(PluginsTest):
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

    def test_a_plugin_that_hoards_memory_fails_no_one(self):
        """Twenty calls of 4 MiB kept would take a VM past its 64 MiB cap, and
        the call that met it would fail: the hoarding region's, or another
        region's when its call is the one to cross it.
        A VM that holds more than half its cap after a call, once collected,
        is rebuilt: every move of both regions is made, and the log names
        the region it ran for."""
        oid, tok = self.make_org_with_worker(region="99994")
        for _ in range(20):
            c = self.make_case(self.make_person(token=tok)["id"], token=tok)
            self.move(c, "initial_counseling", token=tok)
            canary = self.make_case(self.make_person()["id"])  # region 11590, on the same worker
            self.move(canary, "initial_counseling")
        self.server.wait_for_log("holds memory from call to call")
        lines = [l for l in self.server.log.splitlines() if "holds memory from call to call" in l]
        self.assertTrue(lines and all(" for=99994 " in l for l in lines), lines)

    def test_a_decision_asks_the_shared_writer_for_a_bounded_amount(self):
        """Every region's writes pass one writer: a plugin that sets 20,000
        deadlines or writes a 30 MB message would hold it for everyone. A
        decision sets and clears at most 64 deadlines, writes at most 16
        messages, none larger than the largest request body (1 MiB); past
        that the move fails on the plugin (500 plugin_error naming it), and
        nothing of it is written."""
        oid, tok = self.make_org_with_worker(region="99993")
        cases = [self.make_case(self.make_person(token=tok)["id"], token=tok) for _ in range(4)]
        for case, data, why in (
                (cases[0], {"deadlines": 65}, "ctx.set_deadline: a decision sets at most 64 deadlines"),
                (cases[1], {"messages": 17}, "ctx.enqueue: a decision writes at most 16 messages"),
                (cases[2], {"bytes": 1024 * 1024 + 1}, "the plugin's payload: the value is too large")):
            err = self.assertError(self.move(case, "initial_counseling", expect=500, token=tok, data=data),
                                   500, "plugin_error")
            self.assertIn(why, err["message"])
            self.assertEqual((err["details"]["plugin"], err["details"]["version"]), ("flood", "1.0.0"))
            after = self.client.get("/v1/cases/" + case["id"], token=tok).json
            self.assertEqual((after["stage"], after["version"], after["due"]), ("discovery", case["version"], []))
        # At the bounds, the move is made, with all of it.
        c = self.move(cases[3], "initial_counseling", token=tok,
                      data={"deadlines": 64, "messages": 15, "bytes": 1000}).json
        self.assertEqual(sorted(d["kind"] for d in c["due"]), sorted("flood_%d" % i for i in range(1, 65)))
        self.assertEqual(c["due"][0]["label"][:3], "범람 ")


class WorkersTest(PluginsTest):
    """A suspended region's requests are held a second (so that a client
    retrying in a loop burns nothing), but a held request holds an HTTP
    worker: at most an eighth of the workers are held, the others answered
    at once, so that another region's request still finds a worker. Order,
    not speed: the canary is answered before the held request is."""
    server_env = dict(PluginsTest.server_env, SARYE_THREADS="8")

    def test_a_suspended_region_holds_an_eighth_of_the_workers_at_most(self):
        oid, tok = self.make_org_with_worker(region="99992")
        cases = [self.make_case(self.make_person(token=tok)["id"], token=tok) for _ in range(11)]
        canary = self.make_case(self.make_person()["id"])  # region 11590
        for c in cases[:3]:
            self.assertError(self.move(c, "initial_counseling", expect=500, token=tok, data={"burn": True}),
                             500, "plugin_timeout")
        # As many requests of the suspended region as there are workers, at once.
        port, results, start = self.server.port, [], threading.Barrier(8)

        def suspended(case):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            body = json.dumps({"to": "initial_counseling", "version": case["version"]})
            start.wait()
            t0 = time.monotonic()
            conn.request("POST", "/v1/cases/%s/transitions" % case["id"], body=body,
                         headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json",
                                  "Connection": "close"})
            r = conn.getresponse()
            payload = json.loads(r.read())
            t1 = time.monotonic()
            conn.close()
            results.append((r.status, payload["error"]["code"], t1 - t0, t1))

        threads = [threading.Thread(target=suspended, args=(c,)) for c in cases[3:]]
        for t in threads:
            t.start()
        time.sleep(0.3)
        client = self.new_client()  # a connection of its own: it needs a free worker
        try:
            r = client.post("/v1/cases/%s/transitions" % canary["id"],
                            {"to": "initial_counseling", "version": canary["version"]}, token=self.worker1)
            canary_done = time.monotonic()
        finally:
            client.close()
        for t in threads:
            t.join()
        self.assertEqual(r.status, 200, r.text)
        # Each is refused: suspended, or, when it came while the region's
        # requests held the workers but the reserve, busy (its share of them).
        self.assertEqual([s for s, _, _, _ in results], [503] * 8, results)
        self.assertLessEqual({c for _, c, _, _ in results}, {"region_suspended", "region_busy"}, results)
        held = [(c, done) for _, c, took, done in results if took >= 0.9]
        self.assertEqual(len(held), 1, results)  # SARYE_THREADS 8: one held, seven answered at once
        self.assertEqual(held[0][0], "region_suspended", results)
        self.assertLess(canary_done, held[0][1])


if __name__ == "__main__":
    unittest.main()
