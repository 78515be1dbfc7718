"""Hot reload of the plugin set on a live server: valid sets publish a new
generation, broken sets are refused whole with every error and the old
generation keeps serving, SIGHUP and the file watch reload too, and
transitions sent while sets are reloaded many times never fail."""
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import unittest

from harness import SCALE, SOURCE, ApiTest, Server, unique_id

REGION_FILE = os.path.join("regions", "kr-11590.lua")


def metric(client, name):
    text = client.get("/metrics").text
    m = re.search(r"^%s (\d+)" % re.escape(name), text, re.M)
    return int(m.group(1))


def rss(client):
    return metric(client, "sarye_process_resident_bytes")


class ReloadTest(ApiTest):
    server_env = {"SARYE_RELOAD_TIMEOUT_MS": "2000"}

    @classmethod
    def setUpClass(cls):
        cls.plugdir = tempfile.mkdtemp(prefix="sarye-reload-")
        shutil.copytree(os.path.join(SOURCE, "plugins"), cls.plugdir, dirs_exist_ok=True)
        with open(os.path.join(cls.plugdir, REGION_FILE), encoding="utf-8") as f:
            cls.region_text = f.read()
        cls.server_args = ("--plugins", cls.plugdir)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.plugdir, ignore_errors=True)

    def setUp(self):
        self.restore()
        r = self.reload()
        self.assertEqual(r.status, 200, r.text)

    # ---- helpers ----
    def write(self, rel, text):
        path = os.path.join(self.plugdir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def restore(self):
        for kind in ("programs", "regions", "agencies"):
            d = os.path.join(self.plugdir, kind)
            if os.path.isdir(d):
                for name in os.listdir(d):
                    if not os.path.exists(os.path.join(SOURCE, "plugins", kind, name)):
                        os.remove(os.path.join(d, name))
        shutil.copytree(os.path.join(SOURCE, "plugins"), self.plugdir, dirs_exist_ok=True)

    def reload(self, client=None, token=None):
        return (client or self.client).post("/v1/admin/plugins/reload", token=token or self.operator)

    def generation(self):
        r = self.client.get("/v1/admin/plugins", token=self.operator)
        self.assertEqual(r.status, 200, r.text)
        return r.json["generation"]

    def variant(self, n):
        """A valid region file that differs from the bundled one."""
        return self.region_text + "\n-- variant %d\n" % n

    # ---- tests ----
    def test_unchanged_set_is_a_noop(self):
        g = self.generation()
        r = self.reload()
        self.assertEqual(r.status, 200)
        self.assertFalse(r.json["changed"])
        self.assertEqual(r.json["generation"], g)

    def test_valid_change_publishes_and_serves_the_new_rules(self):
        g0 = self.generation()
        new_label = "계획 수립 기한 (새 규칙)"
        text = self.region_text.replace('"서비스 제공계획 수립 기한 (접수일로부터 30일)"', '"%s"' % new_label)
        self.assertNotEqual(text, self.region_text)
        self.write(REGION_FILE, text)
        r = self.reload()
        self.assertEqual(r.status, 200, r.text)
        self.assertTrue(r.json["changed"])
        g1 = r.json["generation"]
        self.assertNotEqual(g0, g1)
        self.assertEqual(self.generation(), g1)
        rules = self.client.get("/v1/programs/integrated", token=self.worker1, query={"region": "11590"}).json
        self.assertEqual({d["kind"]: d["label"] for d in rules["deadlines"]}["plan_due"], new_label)
        p = self.make_person()
        c = self.make_case(p["id"])
        self.assertEqual(c["plugin_generation"], g1)
        r = self.client.post("/v1/cases/%s/transitions" % c["id"], {"to": "initial_counseling", "version": 1},
                             token=self.worker1)
        self.assertEqual(r.json["plugin_generation"], g1)

    def test_admin_listing(self):
        r = self.client.get("/v1/admin/plugins", token=self.operator)
        items = {p["id"]: p for p in r.json["items"]}
        self.assertEqual(items["integrated"]["kind"], "program")
        self.assertEqual(items["kr-11590"]["file"], "regions/kr-11590.lua")
        self.assertEqual(len(items["kr-11590"]["content_hash"]), 64)
        self.assertEqual(items["kr-11590"]["generation"], r.json["generation"])
        self.assertIsNone(items["kr-11590"]["last_load_error"])
        self.assertError(self.client.get("/v1/admin/plugins", token=self.worker1), 403)
        self.assertError(self.reload(token=self.worker1), 403)

    def assertRefused(self, files, expect):
        """Writes files, reloads, expects 422 with an error per (file, substring)."""
        g0 = self.generation()
        for rel, text in files.items():
            self.write(rel, text)
        r = self.reload()
        err = self.assertError(r, 422, "plugin_invalid")
        errors = err["details"]["errors"]
        for rel, needle in expect:
            self.assertTrue(any(e["file"] == rel and needle in e["message"] for e in errors),
                            "no error for %s containing %r in %s" % (rel, needle, errors))
        self.assertEqual(self.generation(), g0, "a refused set must not change the serving generation")
        return errors

    def test_syntax_error_names_file_and_line(self):
        errors = self.assertRefused({"programs/bad.lua": "return {\n  id = 'bad',\n  kind = = 'program'\n}\n"},
                                    [("programs/bad.lua", "")])
        bad = next(e for e in errors if e["file"] == "programs/bad.lua")
        self.assertEqual(bad["line"], 3)
        # the listing shows the last load error of the file it belongs to
        r = self.client.get("/v1/admin/plugins", token=self.operator)
        self.assertTrue(any(e["file"] == "programs/bad.lua" for e in r.json["last_reload_errors"]))

    def test_structural_errors_are_all_reported(self):
        bad_prog = '''return { id = "integrated", kind = "program", version = "2.0.0", api = 1, name = "x",
  stages = { { id = "discovery", label = "a" }, { id = "outer_space", label = "b" } },
  transitions = { discovery = { "intake" } } }'''
        overlay = '''return { id = "kr-99999", kind = "region", version = "1.0.0", api = 1, name = "y",
  regions = { "99999" }, programs = { ghost = { labels = { intake = "z" } } } }'''
        errors = self.assertRefused({"programs/dup.lua": bad_prog, "regions/kr-99999.lua": overlay},
                                    [("programs/dup.lua", "not a standard stage"),
                                     ("programs/integrated.lua", "duplicate program id 'integrated'"),
                                     ("regions/kr-99999.lua", "overlay of an unknown program")])
        self.assertGreaterEqual(len(errors), 3)

    def test_unknown_stage_and_unused_stage_transitions(self):
        prog = '''return { id = "mini", kind = "program", version = "1.0.0", api = 1, name = "작은",
  stages = { { id = "discovery", label = "a" }, { id = "outer_space", label = "b" } },
  transitions = { discovery = { "closure" } } }'''
        self.assertRefused({"programs/mini.lua": prog}, [("programs/mini.lua", "not a standard stage")])
        prog2 = '''return { id = "mini", kind = "program", version = "1.0.0", api = 1, name = "작은",
  stages = { { id = "discovery", label = "a" }, { id = "intake", label = "b" } },
  transitions = { discovery = { "closure" } } }'''
        self.assertRefused({"programs/mini.lua": prog2}, [("programs/mini.lua", "not used by program")])

    def test_failing_plugin_test_refuses_the_set(self):
        text = self.region_text.replace('t.eq(r.effects.set[1].due_on, "2026-02-14")',
                                        't.eq(r.effects.set[1].due_on, "1999-01-01")')
        self.assertNotEqual(text, self.region_text)
        errors = self.assertRefused({REGION_FILE: text}, [(REGION_FILE, "test '")])
        self.assertTrue(any("1999-01-01" in e["message"] for e in errors))

    def test_plugin_tests_log_apart_from_the_server_log(self):
        marker = unique_id("marker")
        text = self.region_text.replace("  tests = {", "  tests = {\n    { name = \"logs\", run = function(t) "
                                        "print(\"%s print\") sarye.log(\"warn\", \"%s log\") end },"
                                        % (marker, marker), 1)
        self.assertNotEqual(text, self.region_text)
        self.write(REGION_FILE, text)
        r = self.reload()
        self.assertEqual(r.status, 200, r.text)
        self.assertNotIn(marker, self.server.log)
        # a replay runs the rules on recorded cases: what they log is dropped too
        p = self.make_person()
        c = self.make_case(p["id"])
        self.move(c, "initial_counseling")
        guard = text.replace("      guards = {", "      guards = {\n        [\"discovery->initial_counseling\"] = "
                             "function(case, input, ctx) sarye.log(\"warn\", \"%s guard\") return true end," % marker, 1)
        r = self.client.post("/v1/admin/plugins/replay", {"files": [{"path": "regions/kr-11590.lua", "text": guard}]},
                             token=self.operator)
        self.assertEqual(r.status, 200, r.text)
        self.assertGreater(r.json["replayed"], 0)
        self.assertNotIn(marker, self.server.log)

    def test_bytecode_is_refused(self):
        self.assertRefused({"programs/bin.lua": "\x1bLJ\x02\x00garbage"}, [("programs/bin.lua", "")])

    def test_load_time_attacks_are_refused(self):
        self.assertRefused({"programs/evil.lua": 'io.open("/tmp/x", "w") return {}'},
                           [("programs/evil.lua", "io")])
        self.restore()
        errors = self.assertRefused({"programs/spin.lua": "while true do end return {}"},
                                    [("programs/spin.lua", "CPU budget")])
        self.assertTrue(errors)
        self.restore()
        # Top-level code runs again in every VM the server builds: slow top
        # level is stopped at its allowance and refused at validation (the
        # loop is far past the allowance on any machine, and stopped there,
        # so no slower machine meets the load's whole budget instead) ...
        self.assertRefused({"programs/slow.lua": "local x = 0 for i = 1, 3e8 do x = x + i end return {}"},
                           [("programs/slow.lua", "top-level code took more than 100 ms")])
        self.restore()
        # ... one that catches being stopped, and spins on, meets the load's
        # budget, and is still the file named
        self.assertRefused({"programs/sly.lua": "for i = 1, 1e9 do pcall(function() while true do end end) end"
                                                " return {}"},
                           [("programs/sly.lua", "exceeded its CPU budget")])
        self.restore()
        # ... and so is top-level code that could load differently later
        # (armed by a timer, or random).
        self.assertRefused({"programs/timer.lua": "if os.time() > 0 then return {} end"},
                           [("programs/timer.lua", "os.time cannot be called in a plugin file's top-level code")])
        self.restore()
        self.assertRefused({"programs/dice.lua": "local n = math.random(6) return {}"},
                           [("programs/dice.lua", "math.random cannot be called in a plugin file's top-level code")])

    def test_sighup_reloads(self):
        g0 = self.generation()
        self.write(REGION_FILE, self.variant(1))
        self.server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10 * SCALE
        while time.monotonic() < deadline and self.generation() == g0:
            time.sleep(0.05)
        self.assertNotEqual(self.generation(), g0)

    def test_reload_under_load_never_fails_a_request(self):
        self.write(REGION_FILE, self.variant(100))
        g_a = self.reload().json["generation"]
        self.write(REGION_FILE, self.variant(200))
        g_b = self.reload().json["generation"]
        oid, tok, sup = self.make_org_with_staff()
        stop = threading.Event()
        failures, served = [], []
        case_ids = []

        def worker():
            cl = self.new_client()
            try:
                p = cl.post("/v1/persons", {"name": "이순신", "birth_date": "1970-04-28", "sex": "M"},
                            token=tok).json
                c = cl.post("/v1/cases", {"person_id": p["id"], "program": "integrated", "source": "walk_in"},
                            token=tok).json
                case_ids.append(c["id"])
                plan = [("initial_counseling", None), ("intake", None), ("assessment", None), ("selection", None),
                        ("planning", {"selection": "case_management"}), ("delivery", None)]
                i = 0
                work = {
                    "selection": ("/assessments", {"kind": "crisis", "domains": {"safety": {"score": 3}}}, tok),
                    "delivery": ("/plans", {"goals": [{"term": "short", "text": "주거 안정"}]}, tok),
                }
                while not stop.is_set() or i < len(plan):
                    to, data = plan[i] if i < len(plan) else (("monitoring", None) if c["stage"] == "delivery"
                                                               else ("delivery", None))
                    if i < len(plan) and to in work:
                        path, wbody, wtok = work[to]
                        w = cl.post("/v1/cases/%s%s" % (c["id"], path), wbody, token=wtok)
                        if w.status != 201:
                            failures.append((w.status, w.text))
                            return
                        if path == "/plans":
                            a = cl.post("/v1/cases/%s/plans/%s/approve" % (c["id"], w.json["id"]), token=sup)
                            if a.status != 200:
                                failures.append((a.status, a.text))
                                return
                            w = a  # approving is work on the case too: its version moves on
                        c["version"] = w.json["case"]["version"]
                    body = {"to": to, "version": c["version"]}
                    if data:
                        body["data"] = data
                    r = cl.post("/v1/cases/%s/transitions" % c["id"], body, token=tok)
                    if r.status != 200:
                        failures.append((r.status, r.text))
                        return
                    c = r.json
                    served.append(c["plugin_generation"])
                    i += 1
            except Exception as e:  # a connection error is a failed request too
                failures.append(("exception", repr(e)))
            finally:
                cl.close()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        [t.start() for t in threads]
        published = {g_a, g_b}
        try:
            for n in range(60):
                kind = n % 3
                if kind == 2:
                    self.write("programs/broken.lua", "return {")
                    r = self.reload()
                    self.assertEqual(r.status, 422, r.text)
                    os.remove(os.path.join(self.plugdir, "programs", "broken.lua"))
                else:
                    self.write(REGION_FILE, self.variant(100 if kind == 0 else 200))
                    r = self.reload()
                    self.assertEqual(r.status, 200, r.text)
                    published.add(r.json["generation"])
                time.sleep(0.01)
        finally:
            stop.set()
            [t.join() for t in threads]
        self.assertEqual(failures, [])
        self.assertGreater(len(served), 50)
        self.assertTrue(set(served) <= published, set(served) - published)
        self.assertEqual(published, {g_a, g_b})
        # every event names a published generation
        for cid in case_ids:
            ev = self.list_all("/v1/cases/%s/events" % cid, tok)
            self.assertTrue({e["plugin_generation"] for e in ev} <= published)

    def test_memory_does_not_grow_across_1000_reloads(self):
        p = self.make_person()
        for n in range(50):  # warm up: allocator arenas, caches
            self.write(REGION_FILE, self.variant(n % 2))
            self.assertEqual(self.reload().status, 200)
            self.client.get("/v1/persons/" + p["id"], token=self.worker1)
        before = rss(self.client)
        gens_before = metric(self.client, "sarye_plugin_generations_live")
        vms_before = metric(self.client, "sarye_plugin_vms_live")
        for n in range(1000):
            self.write(REGION_FILE, self.variant(n % 2))
            r = self.reload()
            self.assertEqual(r.status, 200, r.text)
            self.assertTrue(r.json["changed"])
            c = self.make_case(p["id"]) if n % 50 == 0 else None  # rebuilds this thread's VM
            if c:
                self.assertEqual(c["plugin_generation"], r.json["generation"])
        after = rss(self.client)
        # What reloads allocate is released: each thread holds at most the one
        # VM (and generation) it last served with, the serving generation is
        # one more, and the throwaway validation VMs are all closed — so
        # neither count grows with the 1000 reloads, only with the few worker
        # threads this class's clients happened to use.
        gens, vms = metric(self.client, "sarye_plugin_generations_live"), metric(self.client, "sarye_plugin_vms_live")
        self.assertLessEqual(gens, vms + 1)
        self.assertLessEqual(vms, max(vms_before, gens_before) + 8)
        # ASan keeps freed memory in quarantine: scripts/test caps it (4 MiB).
        self.assertLess(after - before, 16 * 1024 * 1024,
                        "resident memory grew by %d bytes over 1000 reloads" % (after - before))


class WatchTest(unittest.TestCase):
    def test_file_watch_reloads(self):
        plugdir = tempfile.mkdtemp(prefix="sarye-watch-")
        try:
            shutil.copytree(os.path.join(SOURCE, "plugins"), plugdir, dirs_exist_ok=True)
            srv = Server(extra_args=("--plugins", plugdir), env={"SARYE_PLUGINS_WATCH": "on"})
            try:
                srv.org_create("o1", "x", "emd", "11590", ["integrated"])
                tok = srv.token_create("op", "operator")
                cl = srv.client(token=tok)
                g0 = cl.get("/v1/admin/plugins").json["generation"]
                path = os.path.join(plugdir, REGION_FILE)
                with open(path, "a", encoding="utf-8") as f:
                    f.write("\n-- edited %s\n" % unique_id())
                deadline = time.monotonic() + 10 * SCALE
                g = g0
                while time.monotonic() < deadline and g == g0:
                    time.sleep(0.1)
                    g = cl.get("/v1/admin/plugins").json["generation"]
                self.assertNotEqual(g, g0)
                cl.close()
                self.assertEqual(srv.stop(), 0)
            finally:
                srv.close()
        finally:
            shutil.rmtree(plugdir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
