"""The disk fails the server's fsyncs while it writes.

The server runs with a library preloaded (tests/limits/fsync_fault.c) that,
while a trigger file exists, fails every fsync of the write-ahead log, or of
the database, with EIO: what a disk that cannot write back what it was
given answers. Four workers open cases throughout.

The write-ahead log's fsyncs failing (each batch's commit):

- before the fault, every opening is answered 201;
- during it, every answer is a 201 (a batch made durable before the fault
  began) or a 503 `store_unavailable` with Retry-After: never a 500, never
  a dropped connection, and the server stays up;
- once the fault is lifted, the same server opens cases again;
- the fault comes back, and the server is killed (`kill -9`) while its
  last batches fail. SQLite leaves a failed batch's frames whole in the
  log; restarted, the server must not bring any of them back (each of
  those writes was answered "not kept, retry": a client's retry would make
  it twice). The cases in the database are exactly those answered 201,
  `PRAGMA integrity_check` is ok and `sarye audit verify` passes.

The database's fsyncs failing (the checkpoints that fold the log into it):
every opening is still answered 201, /metrics counts the failed
checkpoints and the log says so; once the disk mends, checkpoints succeed
and none fails; killed while they fail again, the server restarts with
every case answered 201.

Nothing depends on timing: which openings fail varies from run to run, and
each assertion holds whichever they are.

Only in the release build: the sanitizers' runtime must come first of all
preloaded libraries (ctest registers this folder without the sanitizer;
unit_store fails the log's writes and fsyncs through a VFS in both builds).
"""
import os
import re
import signal
import sqlite3
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))

from harness import REGION, Server, run_cli, unique_hangul  # noqa: E402

ORG = "disk-sangdo"
WORKERS = 4
EACH = 12
LIB = os.environ.get("SARYE_TEST_FSYNC_FAULT_LIB", "")


class DiskFailing(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.path.exists(LIB), "SARYE_TEST_FSYNC_FAULT_LIB names no library: %r (ctest sets it)" % LIB)
        self.server = Server(start=False)
        self.addCleanup(self.server.close)
        self.trigger = os.path.join(self.server.dir, "disk-fails")
        self.server.env.update({"LD_PRELOAD": LIB, "SARYE_TEST_FSYNC_FAULT": self.trigger})
        self.server.start()
        self.server.org_create(ORG, "상도4동 행정복지센터", "emd", REGION, ["integrated"])
        self.tokens = [self.server.token_create("disk-w%d" % i, "worker", ORG) for i in range(WORKERS)]
        client = self.server.client(token=self.tokens[0])
        self.addCleanup(client.close)
        self.persons = []
        for i in range(WORKERS):
            r = client.post("/v1/persons", {"name": "디스크" + unique_hangul(3), "birth_date": "1961-05-0%d" % (i + 1),
                                            "sex": "M"})
            self.assertEqual(r.status, 201, r.text)
            self.persons.append(r.json["id"])
        self.opened, self.refused, self.problems = [], [], []

    def fault(self, on, suffix=""):
        """Fails the fsyncs of the files whose name ends in suffix ("": the log)."""
        if on:
            with open(self.trigger, "w") as f:
                f.write(suffix)
        elif os.path.exists(self.trigger):
            os.unlink(self.trigger)

    def metric(self, name):
        client = self.server.client()
        try:
            r = client.get("/metrics")
        finally:
            client.close()
        self.assertEqual(r.status, 200, r.text)
        m = re.search(r"^%s (\d+)$" % re.escape(name), r.text, re.M)
        self.assertIsNotNone(m, name)
        return int(m.group(1))

    def until(self, name, changed_from, what):
        """Opens cases, ten a worker at a time, until the metric moves."""
        for _ in range(60):
            if self.metric(name) != changed_from:
                return
            self.round(10)
        self.fail("%s: %s stayed at %d through %d openings" % (what, name, changed_from, len(self.opened)))

    def check_restart_keeps_exactly_what_was_answered(self):
        server = self.server
        server.start()  # recovers from the log as it was left
        self.assertEqual(server.stop(), 0, server.log[-3000:])
        db = sqlite3.connect(server.db)
        try:
            self.assertEqual([row[0] for row in db.execute("PRAGMA integrity_check")], ["ok"])
            kept = [row[0] for row in db.execute("SELECT id FROM cases")]
        finally:
            db.close()
        # Every case answered 201 is there, and no other: none answered 503.
        self.assertEqual(sorted(kept), sorted(self.opened),
                         "%d answered 201, %d refused; kept %d" % (len(self.opened), len(self.refused), len(kept)))
        p = run_cli("audit", "verify", db=server.db, check=False, cwd=server.dir)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def work(self, n, each):
        client = self.server.client(token=self.tokens[n], retry=False)  # one request, one attempt
        try:
            for _ in range(each):
                r = client.post("/v1/cases", {"person_id": self.persons[n], "program": "integrated",
                                              "source": "walk_in"})
                code = (r.json or {}).get("error", {}).get("code") if r.status >= 400 else None
                if r.status == 201:
                    self.opened.append(r.json["id"])
                elif r.status == 503 and code == "store_unavailable" and r.headers.get("Retry-After"):
                    self.refused.append(n)
                else:
                    self.problems.append("open: %d %s" % (r.status, r.text[:300]))
        except Exception as e:  # noqa: BLE001 -- reported with the rest
            self.problems.append("worker %d: %r" % (n, e))
        finally:
            client.close()

    def round(self, each=EACH):
        workers = [threading.Thread(target=self.work, args=(n, each)) for n in range(WORKERS)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        self.assertEqual(self.problems, [], self.server.log[-3000:])
        self.assertTrue(self.server.alive(), "the server died:\n" + self.server.log[-3000:])

    def test_failed_fsyncs_keep_nothing_and_never_come_back(self):
        server = self.server
        self.round()
        self.assertEqual(len(self.refused), 0, "refused with a healthy disk")
        before = len(self.opened)

        self.fault(True)
        self.round()
        self.assertGreater(len(self.refused), 0, "the disk failed, and no opening was refused")
        self.assertTrue(server.wait_for_log("store: statement failed"), server.log[-3000:])

        self.fault(False)  # the same server writes again
        self.round(2)
        self.assertGreater(len(self.opened), before)

        self.fault(True)  # and dies while its batches fail
        refused = len(self.refused)
        self.round(3)
        self.assertGreater(len(self.refused), refused)
        server.stop(signal.SIGKILL)
        self.fault(False)
        self.check_restart_keeps_exactly_what_was_answered()

    def test_failed_checkpoints_keep_the_log_and_lose_nothing(self):
        server = self.server
        failures = "sarye_store_log_checkpoint_failures_total"
        passes = 'sarye_store_log_checkpoints_total{by="checkpointer"}'
        self.fault(True, ".db")
        self.until(failures, 0, "the database's fsyncs failing")
        self.assertEqual(len(self.refused), 0, "writes refused while only checkpoints failed")
        self.assertTrue(server.wait_for_log("store: checkpoints of the log failed"), server.log[-3000:])

        self.fault(False)  # the disk mends: passes succeed, and none fails
        # Passes run one at a time: once one has ended since, the one that
        # may have been under way when the disk mended has ended too.
        self.until(passes, self.metric(passes), "the disk mended")
        mended = self.metric(failures)
        self.round(10)
        self.assertEqual(self.metric(failures), mended)

        self.fault(True, ".db")  # and fails again, and the server is killed
        failed = self.metric(failures)
        self.until(failures, failed, "the database's fsyncs failing again")
        self.assertEqual(len(self.refused), 0, "writes refused while only checkpoints failed")
        server.stop(signal.SIGKILL)
        self.fault(False)
        self.check_restart_keeps_exactly_what_was_answered()


if __name__ == "__main__":
    unittest.main()
