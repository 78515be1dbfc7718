"""Retention: Idempotency-Key records expire after retention.idempotency_hours
and delivered outbox messages go after retention.outbox_days, purged in
small batches through the writer while the server serves; what is younger,
or not delivered, stays; /metrics counts what went."""
import datetime
import re
import sqlite3
import time
import unittest

from harness import ORG1, REGION, SCALE, Server


def iso(delta):
    t = datetime.datetime.now(datetime.timezone.utc) + delta
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


class RetentionTest(unittest.TestCase):
    def test_expired_records_are_purged_in_batches_and_the_rest_stays(self):
        srv = Server(env={"SARYE_RETENTION_SWEEP_MS": "200", "SARYE_RETENTION_BATCH": "3"})
        try:
            srv.org_create(ORG1, "상도1동 행정복지센터", "emd", REGION, ["integrated"])
            client = srv.client(token=srv.token_create("w1", "worker", ORG1))
            r = client.post("/v1/persons", {"name": "보존", "birth_date": "1970-01-01", "sex": "F"},
                            headers={"Idempotency-Key": "fresh-by-api"})
            self.assertEqual(r.status, 201, r.text)
            con = sqlite3.connect(srv.db, timeout=30, isolation_level=None)
            old, young = iso(-datetime.timedelta(hours=25)), iso(-datetime.timedelta(hours=23))
            for i in range(10):
                con.execute("INSERT INTO idempotency VALUES ('t/x', ?, '', 201, 's1.x', ?)", ("old-%d" % i, old))
            con.execute("INSERT INTO idempotency VALUES ('t/x', 'young', '', 201, 's1.x', ?)", (young,))
            long_ago, lately = iso(-datetime.timedelta(days=31)), iso(-datetime.timedelta(days=29))
            rows = [("msg_old_%d" % i, "delivered", long_ago) for i in range(7)]
            rows += [("msg_lately", "delivered", lately), ("msg_dead", "dead", None)]
            for n, (mid, status, delivered) in enumerate(rows):
                con.execute("INSERT INTO outbox (id, seq, agency, topic, kind, idempotency_key, payload, status,"
                            " attempts, next_at, created_at, delivered_at) VALUES (?, ?, 'nowhere', 't', 'k', ?, '{}',"
                            " ?, 1, 0, ?, ?)", (mid, 100000 + n, mid, status, long_ago, delivered))
            deadline = time.monotonic() + 30 * SCALE
            purged = {}
            while time.monotonic() < deadline:
                text = client.get("/metrics").text
                purged = dict(re.findall(r'^sarye_retention_purged_total\{kind="(\w+)"\} (\d+)$', text, re.M))
                if int(purged.get("idempotency", 0)) >= 10 and int(purged.get("outbox", 0)) >= 7:
                    break
                time.sleep(0.05)
            self.assertEqual((int(purged["idempotency"]), int(purged["outbox"])), (10, 7), purged)
            keys = {k for (k,) in con.execute("SELECT key FROM idempotency")}
            self.assertEqual(keys, {"young", "fresh-by-api"})
            ids = {k for (k,) in con.execute("SELECT id FROM outbox")}
            self.assertEqual(ids, {"msg_lately", "msg_dead"})
            con.close()
            # the server wrote on meanwhile
            self.assertEqual(client.get("/v1/persons/" + r.json["id"]).status, 200)
            client.close()
            self.assertEqual(srv.stop(), 0)
            self.assertEqual(srv.sanitizer_reports(srv.logs[-1]), [])
        finally:
            srv.close()


if __name__ == "__main__":
    unittest.main()
