"""The audit trail: every read and write of personal data is recorded
before the data leaves, chained with a keyed MAC; auditors ask who looked at
a person; the schema refuses to change the trail and `sarye audit verify`
passes it (the attacks it finds are in test_tamper)."""
import sqlite3
import unittest

from harness import ApiTest


class AuditTest(ApiTest):
    def test_reads_and_writes_are_recorded_with_request_ids(self):
        p = self.client.post("/v1/persons", {"name": "감사대상", "birth_date": "1960-01-01", "sex": "F"},
                             token=self.worker1)
        c = self.make_case(p.json["id"])
        g = self.client.get("/v1/persons/" + p.json["id"], token=self.supervisor1)
        self.client.get("/v1/cases/" + c["id"], token=self.worker1)
        r = self.client.get("/v1/audit", token=self.auditor1, query={"person_id": p.json["id"]})
        self.assertEqual(r.status, 200, r.text)
        rows = r.json["items"]
        self.assertEqual([x["action"] for x in rows],
                         ["POST /v1/persons", "POST /v1/cases", "GET /v1/persons/{id}", "GET /v1/cases/{id}"])
        self.assertEqual(rows[0]["request_id"], p.header("X-Request-Id"))
        self.assertEqual((rows[2]["actor"], rows[2]["role"], rows[2]["request_id"]),
                         ("supervisor1", "supervisor", g.header("X-Request-Id")))
        self.assertEqual(rows[3]["case_id"], c["id"])
        self.assertEqual(rows[3]["purpose"], c["id"])
        by_actor = self.client.get("/v1/audit", token=self.auditor1, query={"actor": "supervisor1"}).json["items"]
        self.assertTrue(all(x["actor"] == "supervisor1" for x in by_actor))
        self.assertIn(g.header("X-Request-Id"), [x["request_id"] for x in by_actor])
        # a refused request discloses nothing, and the attempt is recorded: who, and whom it was after
        d = self.client.get("/v1/persons/" + p.json["id"], token=self.worker2)
        self.assertEqual(d.status, 404)
        rows2 = self.client.get("/v1/audit", token=self.auditor1, query={"person_id": p.json["id"]}).json["items"]
        self.assertEqual(len(rows2), 5)
        self.assertEqual((rows2[4]["actor"], rows2[4]["status"], rows2[4]["action"], rows2[4]["request_id"]),
                         ("worker2", 404, "GET /v1/persons/{id}", d.header("X-Request-Id")))

    def test_only_auditors_read_the_trail(self):
        for tok in (self.worker1, self.supervisor1, self.admin1):
            self.assertError(self.client.get("/v1/audit", token=tok), 403)
        self.assertError(self.client.get("/v1/audit?since=yesterday", token=self.auditor1), 400)

    def test_verify_passes_and_the_trail_cannot_be_changed(self):
        """The attacks on the file itself (triggers dropped, chain recomputed,
        records and checkpoints removed) are in test_tamper."""
        p = self.make_person()
        for _ in range(3):
            self.client.get("/v1/persons/" + p["id"], token=self.worker1)
        ok = self.server.run_cli("audit", "verify", check=False)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertRegex(ok.stdout, r"audit trail verified: \d+ records")
        db = sqlite3.connect(self.server.db, isolation_level=None)
        try:
            seq = db.execute("SELECT MAX(seq) FROM audit").fetchone()[0] - 1
            with self.assertRaisesRegex(sqlite3.IntegrityError, "audit is append-only"):
                db.execute("UPDATE audit SET actor = 'nobody' WHERE seq = ?", (seq,))
            with self.assertRaisesRegex(sqlite3.IntegrityError, "audit is append-only"):
                db.execute("DELETE FROM audit WHERE seq = ?", (seq,))
        finally:
            db.close()
        self.assertEqual(self.server.run_cli("audit", "verify", check=False).returncode, 0)


if __name__ == "__main__":
    unittest.main()
