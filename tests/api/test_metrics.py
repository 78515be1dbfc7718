"""/metrics at a constant cost: the outbox messages by agency and status and
the overdue deadlines by kind are kept by the server as it changes them (no
COUNT(*) per scrape), so here they are checked against what a COUNT(*) of
the server's own database file says, after every kind of change: deadlines
set, moved and cleared, the business date moving on, deliveries, dead
letters and retries, and a restart (the counts are read again at start)."""
import re
import sqlite3
import unittest

from harness import ApiTest, today_kst
from test_agencies import WithMockAgency, wait_until

METRIC_RE = re.compile(r'^(sarye_outbox_messages|sarye_deadlines_overdue)\{([^}]*)\} (-?\d+)$', re.M)


class MetricsTest(WithMockAgency, ApiTest):
    @classmethod
    def mock_env(cls, url):
        return {
            "SARYE_CLOCK_ADJUSTABLE": "on",
            "SARYE_AGENCY_MICROFINANCE_URL": url + "/microfinance/referrals",
            "SARYE_AGENCY_MICROFINANCE_TIMEOUT_MS": "1000",
            "SARYE_OUTBOX_RETRY_BASE_MS": "50",
            "SARYE_OUTBOX_RETRY_MAX_MS": "200",
        }

    @classmethod
    def set_up_server(cls):
        cls.server.org_create("microfinance", "서민금융진흥원", "agency", "11590")

    def setUp(self):
        self.mock.call("POST", "/_reset")
        self.today(today_kst().isoformat())  # the date a test before may have moved

    # ---- helpers ----
    def today(self, date):
        r = self.client.request("PUT", "/v1/admin/clock", {"today": date}, token=self.operator)
        self.assertEqual(r.status, 200, r.text)
        self.today_is = date

    def scraped(self):
        """(outbox {(agency, status): n}, overdue {kind: n}) from /metrics."""
        r = self.client.get("/metrics")
        self.assertEqual(r.status, 200, r.text)
        outbox, overdue = {}, {}
        for name, labels, value in METRIC_RE.findall(r.text):
            lab = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            if name == "sarye_outbox_messages":
                outbox[(lab["agency"], lab["status"])] = int(value)
            else:
                overdue[lab["kind"]] = int(value)
        return outbox, overdue

    def counted(self):
        """The same, counted in the server's database file."""
        db = sqlite3.connect("file:%s?mode=ro" % self.server.db, uri=True, timeout=30)
        try:
            outbox = {(a, s): n for a, s, n in
                      db.execute("SELECT agency, status, COUNT(*) FROM outbox GROUP BY agency, status")}
            overdue = dict(db.execute("SELECT kind, COUNT(*) FROM deadlines WHERE cleared_at IS NULL AND due_on < ?"
                                      " GROUP BY kind", (self.today_is,)))
        finally:
            db.close()
        return outbox, overdue

    @staticmethod
    def same(shown, counted):
        """Equal, a line shown at 0 standing for no rows."""
        keys = set(shown) | set(counted)
        return all(shown.get(k, 0) == counted.get(k, 0) for k in keys)

    def assertCountsRight(self):
        """/metrics says what COUNT(*) says (the writer applies a commit's
        counts just after it: a bounded wait for the two to meet)."""
        last = {}

        def agree():
            last["shown"], last["counted"] = self.scraped(), self.counted()
            return self.same(last["shown"][0], last["counted"][0]) and self.same(last["shown"][1], last["counted"][1])
        try:
            wait_until(agree, what="/metrics to agree with COUNT(*)")
        except AssertionError:
            self.fail("shown %r, counted %r" % (last.get("shown"), last.get("counted")))
        return last["shown"]

    def refer(self):
        p = self.make_person(name="김민수", birth_date="1975-01-01", sex="M")
        c = self.client.post("/v1/persons/%s/consents" % p["id"], {"purpose": "referral", "scope": ["microfinance"]},
                             token=self.worker1)
        self.assertEqual(c.status, 201, c.text)
        r = self.client.post("/v1/referrals", {"person_id": p["id"], "to_agency": "microfinance",
                                               "reason": "고금리 대출 상환 곤란", "opinion": "채무조정 상담 필요",
                                               "consent_id": c.json["id"]}, token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        return r.json

    def message_of(self, referral, status):
        r = self.client.get("/v1/admin/outbox", token=self.admin1, query={"status": status, "limit": 500})
        self.assertEqual(r.status, 200, r.text)
        return [m for m in r.json["items"] if m["topic"] == referral["id"]]

    # ---- tests ----
    def test_overdue_follows_deadlines_and_the_business_date(self):
        self.today("2026-05-01")
        base = self.assertCountsRight()[1].get("plan_due", 0)
        cases = [self.advance(self.make_case(self.make_person()["id"]), "intake") for _ in range(3)]
        # due 2026-05-31: not yet overdue
        self.assertEqual(self.assertCountsRight()[1].get("plan_due", 0), base)
        self.today("2026-06-01")
        self.assertEqual(self.assertCountsRight()[1]["plan_due"], base + 3)
        # an approved plan and delivery clear the deadline of one case
        self.advance(cases[0], "delivery")
        self.assertEqual(self.assertCountsRight()[1]["plan_due"], base + 2)
        # back in time: nothing of today's is overdue
        self.today("2026-05-15")
        self.assertEqual(self.assertCountsRight()[1].get("plan_due", 0), base)
        self.today("2026-06-01")
        self.assertEqual(self.assertCountsRight()[1]["plan_due"], base + 2)

    def wal_counts(self):
        r = self.client.get("/metrics")
        self.assertEqual(r.status, 200, r.text)
        got = dict(re.findall(r"^(sarye_store_wal_writes_total|sarye_store_wal_write_calls_total) (\d+)$", r.text,
                              re.M))
        self.assertEqual(len(got), 2, r.text)
        return int(got["sarye_store_wal_writes_total"]), int(got["sarye_store_wal_write_calls_total"])

    def test_write_ahead_log_takes_a_transaction_in_few_writes(self):
        writes0, calls0 = self.wal_counts()
        for _ in range(5):  # each a transaction of several pages: case, event, deadlines, audit
            self.advance(self.make_case(self.make_person()["id"]), "intake")
        writes, calls = self.wal_counts()
        self.assertGreater(writes - writes0, 20, "SQLite wrote frames")
        self.assertGreater(calls - calls0, 0)
        # a frame is two writes from SQLite (header, page); gathered, a
        # transaction is about one write call
        self.assertLessEqual(4 * (calls - calls0), writes - writes0, (writes - writes0, calls - calls0))

    def commit_histogram(self):
        r = self.client.get("/metrics")
        self.assertEqual(r.status, 200, r.text)
        buckets = [(float(le), int(n)) for le, n in
                   re.findall(r'^sarye_store_commit_seconds_bucket\{le="([0-9.e+-]+)"\} (\d+)$', r.text, re.M)]
        inf = re.search(r'^sarye_store_commit_seconds_bucket\{le="\+Inf"\} (\d+)$', r.text, re.M)
        count = re.search(r"^sarye_store_commit_seconds_count (\d+)$", r.text, re.M)
        total = re.search(r"^sarye_store_commit_seconds_sum ([0-9.]+)$", r.text, re.M)
        self.assertTrue(buckets and inf and count and total, r.text)
        self.assertEqual([le for le, _ in buckets], sorted(le for le, _ in buckets))
        self.assertEqual([n for _, n in buckets], sorted(n for _, n in buckets), "cumulative")
        self.assertLessEqual(buckets[-1][1], int(inf.group(1)))
        self.assertEqual(int(inf.group(1)), int(count.group(1)))
        return int(count.group(1)), float(total.group(1))

    def test_commit_times_are_counted(self):
        count0, sum0 = self.commit_histogram()
        for _ in range(3):  # each a write of its own: a commit at least
            self.advance(self.make_case(self.make_person()["id"]), "intake")
        count, total = self.commit_histogram()
        self.assertGreaterEqual(count - count0, 3)
        self.assertGreater(total, sum0)

    def test_outbox_follows_deliveries_dead_letters_and_retries(self):
        before = self.assertCountsRight()[0]
        self.mock.mode("status", status=400)  # refused: a dead letter at once
        ref = self.refer()
        wait_until(lambda: self.message_of(ref, "dead"), what="the dead letter")
        shown = self.assertCountsRight()[0]
        self.assertEqual(shown[("microfinance", "dead")], before.get(("microfinance", "dead"), 0) + 1)
        self.mock.mode("up")
        msg = self.message_of(ref, "dead")[0]
        r = self.client.post("/v1/admin/outbox/%s/retry" % msg["id"], token=self.admin1)
        self.assertEqual(r.status, 200, r.text)
        wait_until(lambda: self.message_of(ref, "delivered"), what="the retried delivery")
        shown = self.assertCountsRight()[0]
        self.assertEqual(shown[("microfinance", "dead")], before.get(("microfinance", "dead"), 0))
        self.assertEqual(shown[("microfinance", "delivered")], before.get(("microfinance", "delivered"), 0) + 1)
        self.assertEqual(shown.get(("microfinance", "queued"), 0), 0)
        # the agency down: retried, queued until it answers
        self.mock.mode("down")
        ref2 = self.refer()
        wait_until(lambda: self.mock.state()["attempts"] >= 2, what="retries")
        self.assertEqual(self.assertCountsRight()[0][("microfinance", "queued")], 1)
        self.mock.mode("up")
        wait_until(lambda: self.message_of(ref2, "delivered"), what="the delivery after the agency came back")
        self.assertCountsRight()

    def test_counts_are_read_again_at_start(self):
        self.today("2026-07-01")
        self.advance(self.make_case(self.make_person()["id"]), "intake")
        self.refer()
        wait_until(lambda: not self.message_of_any("queued"), what="the outbox to drain")
        shown = self.assertCountsRight()
        self.server.restart()
        self.client.close()
        type(self).client = self.server.client()
        self.today("2026-07-01")  # the clock's offset lives in the process
        again = self.assertCountsRight()
        self.assertTrue(self.same(again[0], shown[0]) and self.same(again[1], shown[1]), (again, shown))
        self.today("2026-09-01")
        self.assertGreaterEqual(self.assertCountsRight()[1]["plan_due"], 1)

    def message_of_any(self, status):
        r = self.client.get("/v1/admin/outbox", token=self.admin1, query={"status": status, "limit": 500})
        self.assertEqual(r.status, 200, r.text)
        return r.json["items"]


if __name__ == "__main__":
    unittest.main()
