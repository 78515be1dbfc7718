"""Look-ups of agencies (a plugin's lookup and prepare, before any
transaction): they send a person's data only under the person's consent
naming the agency, whatever the plugin asks; and a slow agency holds no
more HTTP workers than its concurrency — past it a look-up answers 503
agency_busy with Retry-After at once, so other organisations' requests stay
served."""
import os
import shutil
import tempfile
import threading
import unittest

from harness import REGION, Server, SOURCE
from test_agencies import MockAgency, wait_until

HOSTILE = r'''
-- A region's program whose prepare sends the person's identifiers to an
-- agency without asking ctx.consent_allows first; with swallow it hides
-- the refusal from the move.
return {
  id = "hostile_lookup", kind = "program", version = "0.1.0", api = 1, name = "동의 없는 조회",
  stages = { { id = "discovery", label = "발굴" }, { id = "intake", label = "접수" } },
  transitions = { discovery = { "intake" } },
  prepare = {
    intake = function(case, input, ctx)
      local body = { person_id = case.person_id, note = "no consent asked" }
      if input.data.swallow then
        local ok = pcall(sarye.http.post, "ssis", "/lookup", body)
        return { sent = ok }
      end
      return sarye.http.post("ssis", "/lookup", body)
    end,
  },
}
'''


class ConsentBeforeLookupTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = MockAgency()
        cls.plugdir = tempfile.mkdtemp(prefix="sarye-hostile-")
        shutil.copytree(os.path.join(SOURCE, "plugins"), cls.plugdir, dirs_exist_ok=True)
        with open(os.path.join(cls.plugdir, "programs", "hostile_lookup.lua"), "w") as f:
            f.write(HOSTILE)
        cls.server = Server(extra_args=("--plugins", cls.plugdir),
                            env={"SARYE_AGENCY_SSIS_URL": cls.mock.url, "SARYE_AGENCY_SSIS_TIMEOUT_MS": "2000"})
        s = cls.server
        s.org_create("o1", "상도1동", "emd", REGION, ["hostile_lookup"])
        s.org_create("ssis", "사회보장정보원 (행복e음)", "agency", REGION)
        cls.client = s.client(token=s.token_create("w", "worker", "o1"))

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        try:
            rc = cls.server.stop()
            reports = cls.server.sanitizer_reports(cls.server.logs[-1] if cls.server.logs else "")
        finally:
            cls.server.close()
            cls.mock.close()
            shutil.rmtree(cls.plugdir, ignore_errors=True)
        assert rc == 0 and not reports, (rc, reports)

    def case(self, consent_to=None):
        p = self.client.post("/v1/persons", {"name": "조회대상", "birth_date": "1950-01-01", "sex": "F"}).json
        if consent_to:
            r = self.client.post("/v1/persons/%s/consents" % p["id"], {"purpose": "case_management",
                                                                        "scope": [consent_to]})
            self.assertEqual(r.status, 201, r.text)
        c = self.client.post("/v1/cases", {"person_id": p["id"], "program": "hostile_lookup", "source": "walk_in"})
        self.assertEqual(c.status, 201, c.text)
        return c.json

    def move(self, c, **data):
        return self.client.post("/v1/cases/%s/transitions" % c["id"], {"to": "intake", "version": 1, "data": data})

    def test_a_prepare_without_consent_sends_nothing(self):
        self.mock.call("POST", "/_reset")
        self.mock.mode("up", lookup={"ok": True})
        for consent_to in (None, "o1"):  # none, or one that does not name the agency
            c = self.case(consent_to)
            r = self.move(c)
            self.assertEqual(r.status, 422, r.text)
            self.assertEqual(r.json["error"]["code"], "consent_required")
            self.assertEqual(r.json["error"]["details"]["agency"], "ssis")
            now = self.client.get("/v1/cases/" + c["id"]).json
            self.assertEqual((now["stage"], now["version"]), ("discovery", 1))
        # swallowing the refusal changes nothing of what left the server
        r = self.move(self.case(), swallow=True)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(self.mock.state()["attempts"], 0)
        # with the person's consent naming the agency, the same look-up goes
        r = self.move(self.case("ssis"))
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(self.mock.state()["attempts"], 1)


class RegionFlood(unittest.TestCase):
    """A server of WORKERS workers whose agency holds every look-up, at a
    concurrency of CONCURRENCY (default: as many as the workers), and a
    region that opens OPENINGS cases at once (each waits on a look-up). No
    test of its own."""
    WORKERS, OPENINGS, CONCURRENCY = 8, 10, None
    OTHER_REGION = True

    @classmethod
    def setUpClass(cls):
        cls.mock = MockAgency()
        cls.server = Server(env={"SARYE_AGENCY_SSIS_URL": cls.mock.url, "SARYE_AGENCY_SSIS_TIMEOUT_MS": "120000",
                                 "SARYE_AGENCY_SSIS_CONCURRENCY": str(cls.CONCURRENCY or cls.WORKERS),
                                 "SARYE_REQUEST_TIMEOUT_MS": "300000", "SARYE_THREADS": str(cls.WORKERS),
                                 "SARYE_HTTP_MAX_PER_ADDRESS": "0"})
        s = cls.server
        s.org_create("dj-elderly", "동작노인종합복지관", "provider", REGION, ["elderly_care"])
        s.org_create("ssis", "사회보장정보원 (행복e음)", "agency", REGION)
        cls.worker = s.token_create("w", "worker", "dj-elderly")
        if cls.OTHER_REGION:
            s.org_create("gn-dong", "역삼1동", "emd", "11680", ["integrated"])
            cls.other = s.token_create("o", "worker", "gn-dong")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.mock.mode("up", lookup={})
            rc = cls.server.stop()
            reports = cls.server.sanitizer_reports(cls.server.logs[-1] if cls.server.logs else "")
        finally:
            cls.server.close()
            cls.mock.close()
        assert rc == 0 and not reports, (rc, reports)

    def flood(self, during):
        """OPENINGS openings of the region at once, each waiting on the held
        agency; during(answers) runs while they wait; then the agency
        answers. Returns every answer."""
        c = self.server.client(token=self.worker)
        people = []
        for _ in range(self.OPENINGS):
            p = c.post("/v1/persons", {"name": "나노인", "birth_date": "1948-03-03", "sex": "F"}).json
            r = c.post("/v1/persons/%s/consents" % p["id"], {"purpose": "case_management", "scope": ["ssis"]})
            self.assertEqual(r.status, 201, r.text)
            people.append(p["id"])
        c.close()  # an idle kept-alive connection holds a worker: none is left open
        self.mock.call("POST", "/_reset")
        self.mock.mode("hold")
        answers = [None] * self.OPENINGS

        def open_case(i):
            cl = self.server.client(token=self.worker)
            try:
                answers[i] = cl.post("/v1/cases", {"person_id": people[i], "program": "elderly_care",
                                                   "source": "walk_in"})
            finally:
                cl.close()
        threads = [threading.Thread(target=open_case, args=(i,)) for i in range(self.OPENINGS)]
        for t in threads:
            t.start()
        try:
            during(answers)
        finally:
            self.mock.mode("up", lookup={"basic_pension": True})
            for t in threads:
                t.join(120)
        return answers

    def refused_at_once(self, answers, held, code, what):
        """held look-ups wait at the agency, and every other opening is
        answered at once: 503 code, with Retry-After. Returns those."""
        wait_until(lambda: self.mock.state()["inflight"] == held, timeout=60, what="the held look-ups")
        wait_until(lambda: sum(a is not None for a in answers) == self.OPENINGS - held, timeout=60, what=what)
        refused = [a for a in answers if a is not None]
        for a in refused:
            self.assertEqual(a.status, 503, a.text)
            self.assertEqual(a.json["error"]["code"], code)
            self.assertGreaterEqual(int(a.header("Retry-After")), 1)
        return refused

    def assert_served(self, o, person_id):
        """Another organisation's reads and a write are served meanwhile."""
        for _ in range(20):
            r = o.get("/v1/persons/" + person_id)
            self.assertEqual(r.status, 200, r.text)
        r = o.post("/v1/persons", {"name": "또다른", "birth_date": "1981-01-01", "sex": "F"})
        self.assertEqual(r.status, 201, r.text)

    def assert_held_then_opened(self, answers, held):
        done = [a for a in answers if a.status != 503]
        self.assertEqual(len(done), held, [a.text for a in answers])
        for a in done:
            self.assertEqual(a.status, 201, a.text)


class AgencyBusyTest(RegionFlood):
    """Case openings whose look-up waits on a held agency: at most its
    concurrency (3) wait; the rest answer 503 agency_busy at once; another
    organisation's reads are served meanwhile, on a server of 8 workers."""
    OPENINGS, CONCURRENCY = 8, 3

    def test_a_slow_agency_holds_no_more_than_its_concurrency(self):
        cap = self.CONCURRENCY
        o = self.server.client(token=self.other)
        mine = o.post("/v1/persons", {"name": "다른기관", "birth_date": "1980-01-01", "sex": "M"}).json

        def during(answers):
            # the agency holds cap look-ups; every other opening is answered, busy, without waiting for it
            for a in self.refused_at_once(answers, cap, "agency_busy", "the openings past the agency's concurrency"):
                self.assertEqual(a.json["error"]["details"]["agency"], "ssis")
            self.assert_served(o, mine["id"])
            st = self.mock.state()
            self.assertEqual((st["inflight"], st["max_inflight"]), (cap, cap))
            metrics = o.get("/metrics").text
            self.assertIn('sarye_agency_lookups_inflight{agency="ssis"} %d' % cap, metrics)
            self.assertIn('sarye_agency_lookups_busy_total{agency="ssis"} %d' % (self.OPENINGS - cap), metrics)
        answers = self.flood(during)
        o.close()
        self.assert_held_then_opened(answers, cap)


class RegionShareTest(RegionFlood):
    """One region's requests cannot hold every worker: its openings hold all
    the workers but a reserve (8 / 8 = 1); its next requests answer 503
    region_busy at once, and another region's requests are served by the
    reserve meanwhile (on the old code the eighth opening took the last
    worker, and the other region waited for the agency)."""

    def test_a_region_leaves_the_reserve_to_the_others(self):
        o = self.server.client(token=self.other)
        mine = o.post("/v1/persons", {"name": "다른지역", "birth_date": "1980-01-01", "sex": "M"}).json
        o.close()  # the other region comes back while the openings wait
        held = self.WORKERS - 1

        def during(answers):
            for a in self.refused_at_once(answers, held, "region_busy", "the openings past the region's share"):
                self.assertEqual(a.json["error"]["details"]["region"], REGION)
            # the other region is served by the reserve while the look-ups wait
            o = self.server.client(token=self.other)
            self.assert_served(o, mine["id"])
            self.assertIn("sarye_http_region_busy_total %d" % (self.OPENINGS - held), o.get("/metrics").text)
            self.assertEqual(self.mock.state()["max_inflight"], held)
            o.close()
        answers = self.flood(during)
        self.assert_held_then_opened(answers, held)


class RegionAloneTest(RegionFlood):
    """A server whose only region is busy keeps no reserve for anyone: its
    openings take every worker (the eighth too) and the rest wait their
    turn; none is refused."""
    OTHER_REGION = False

    def test_a_region_alone_uses_every_worker(self):
        def during(answers):
            wait_until(lambda: self.mock.state()["inflight"] == self.WORKERS, timeout=60,
                       what="a look-up held on every worker")
            self.assertEqual([a for a in answers if a is not None], [])
        answers = self.flood(during)
        self.assertEqual([a.status for a in answers], [201] * self.OPENINGS, [a.text for a in answers])
        c = self.server.client(token=self.worker)
        self.assertIn("sarye_http_region_busy_total 0", c.get("/metrics").text)
        c.close()

if __name__ == "__main__":
    unittest.main()
