"""A full disk: the case store cannot grow, then can again.

The server's file-size limit (RLIMIT_FSIZE: what `ulimit -f` or systemd's
LimitFSIZE sets; to the process, the same as a disk with no room left) is
lowered to just above its files while it runs, and four writers add persons
until the write-ahead log cannot grow. Then:

- the server stays up (a write past the limit is an error, not a SIGXFSZ
  that kills it with every request in flight);
- every write answers 503 store_unavailable with Retry-After, and the failed
  commits are counted in /metrics;
- an audited read whose audit record cannot be written discloses nothing
  (503 audit_unavailable);
- a move refused then leaves the case as it was, and its Idempotency-Key
  is not spent: the same request, once there is room, moves the case once;
- once the limit is lifted, writes succeed again without a restart;
- every write that got a 201 is there, none that got a 503 is;
- after a clean stop, `PRAGMA integrity_check` is ok and `sarye audit verify`
  passes.

Nothing here depends on timing: the writers stop at their own first
refusals, and each assertion holds whichever writes got in before the log
was full.
"""
import os
import re
import resource
import sqlite3
import threading
import unittest

from harness import REGION, Server, run_cli, unique_hangul

ORG = "full-sangdo"
WRITERS = 4
ROOM = 384 * 1024      # bytes a file may grow past the largest one now
MAX_ATTEMPTS = 400     # per writer: the log is full long before


def metric(text, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


class StoreFull(unittest.TestCase):
    def setUp(self):
        self.server = Server()
        self.addCleanup(self.server.close)
        self.server.org_create(ORG, "상도2동 행정복지센터", "emd", REGION, ["integrated"])
        self.tokens = [self.server.token_create("full-w%d" % i, "worker", ORG) for i in range(WRITERS)]
        # Before the store fills: `sarye token create`, run beside the
        # server, folds the log back into the database as it closes, and the
        # log would start over with room again.
        self.operator = self.server.token_create("full-op", "operator")
        self.client = self.server.client(token=self.tokens[0])
        self.addCleanup(self.client.close)

    def set_file_limit(self, soft):
        resource.prlimit(self.server.proc.pid, resource.RLIMIT_FSIZE, (soft, resource.RLIM_INFINITY))

    def post_person(self, client, name):
        return client.post("/v1/persons", {"name": name, "birth_date": "1961-07-02", "sex": "M"})

    def assert_refused(self, r, code, what):
        self.assertEqual(r.status, 503, "%s: %s" % (what, r.text))
        self.assertEqual(r.json["error"]["code"], code, r.text)
        self.assertEqual(r.header("Retry-After"), "1", what)

    def fill(self, n, acked, refused, problems):
        """One writer: persons until the store refuses two in a row."""
        client = self.server.client(token=self.tokens[n], retry=False)  # one request, one attempt
        try:
            in_a_row = 0
            for i in range(MAX_ATTEMPTS):
                name = "가득%s%d" % (unique_hangul(3), i)
                r = self.post_person(client, name)
                if r.status == 201:
                    acked.append((r.json["id"], name))
                    in_a_row = 0
                elif r.status == 503 and r.json and r.json["error"]["code"] == "store_unavailable" \
                        and r.header("Retry-After") == "1":
                    refused.append(name)
                    in_a_row += 1
                    if in_a_row == 2:
                        return
                else:
                    problems.append("writer %d: %d %s" % (n, r.status, r.text[:300]))
                    return
            problems.append("writer %d: %d writes and the store never refused one" % (n, MAX_ATTEMPTS))
        except Exception as e:  # noqa: BLE001 -- reported below, with the rest
            problems.append("writer %d: %r" % (n, e))
        finally:
            client.close()

    def test_full_store_refuses_writes_keeps_every_acknowledged_one_and_recovers(self):
        server = self.server
        acked, refused, problems = [], [], []
        for i in range(3):
            r = self.post_person(self.client, "가득전%s%d" % (unique_hangul(3), i))
            self.assertEqual(r.status, 201, r.text)
            acked.append((r.json["id"], r.json["name"]))
        r = self.client.post("/v1/cases", {"person_id": acked[0][0], "program": "integrated", "source": "walk_in"})
        self.assertEqual(r.status, 201, r.text)
        case = r.json
        move = {"to": "initial_counseling", "version": case["version"]}
        key = {"Idempotency-Key": "full-move-%d" % os.getpid()}
        files = [server.db + s for s in ("", "-wal", "-shm")]
        largest = max(os.path.getsize(f) for f in files if os.path.exists(f))
        self.set_file_limit(largest + ROOM)

        writers = [threading.Thread(target=self.fill, args=(n, acked, refused, problems)) for n in range(WRITERS)]
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        self.assertEqual(problems, [])
        self.assertGreaterEqual(len(refused), 2 * WRITERS)
        self.assertTrue(server.alive(), "the server died when the store was full:\n" + server.log[-3000:])

        # The log's committed frames now end past `largest`: with the limit
        # there, no write of any size finds room (one smaller than the
        # persons could have fitted under the old limit).
        self.set_file_limit(largest)

        # Full: a write is refused, the server answers, the failure is counted.
        name = "가득중" + unique_hangul(3)
        self.assert_refused(self.post_person(self.client, name), "store_unavailable", "a write while full")
        refused.append(name)
        path = "/v1/cases/%s/transitions" % case["id"]
        self.assert_refused(self.client.post(path, move, headers=key), "store_unavailable", "a move while full")
        self.assertEqual(self.client.get("/healthz").status, 200)
        m = self.client.get("/metrics", token=self.operator)
        self.assertEqual(m.status, 200)
        self.assertGreaterEqual(metric(m.text, "sarye_store_failed_commits_total"), 1, m.text[:2000])

        # A read whose audit record has no room discloses nothing.
        pid, name = acked[0]
        r = self.client.get("/v1/persons/" + pid)
        self.assert_refused(r, "audit_unavailable", "a read whose audit record has no room")
        self.assertNotIn(name, r.text)
        self.assertNotIn(pid, r.text)

        # Room again: the same server takes writes at once.
        self.set_file_limit(resource.RLIM_INFINITY)
        r = self.post_person(self.client, "가득후" + unique_hangul(3))
        self.assertEqual(r.status, 201, r.text)
        acked.append((r.json["id"], r.json["name"]))

        r = self.client.get("/v1/cases/" + case["id"])
        self.assertEqual((r.status, r.json["stage"], r.json["version"]), (200, "discovery", case["version"]), r.text)
        moved = self.client.post(path, move, headers=key)
        self.assertEqual(moved.status, 200, moved.text)
        self.assertEqual(moved.json["stage"], "initial_counseling")
        again = self.client.post(path, move, headers=key)
        self.assertEqual((again.status, again.json), (200, moved.json))
        r = self.client.get("/v1/cases/" + case["id"])
        self.assertEqual((r.json["stage"], r.json["version"]), ("initial_counseling", moved.json["version"]))

        for pid, name in acked:
            r = self.client.get("/v1/persons/" + pid)
            self.assertEqual((r.status, r.json and r.json.get("name")), (200, name), r.text)
        found = []
        for name in refused:
            r = self.client.get("/v1/persons", query={"name": name})
            self.assertEqual(r.status, 200, r.text)
            found += [p["name"] for p in r.json["items"] if p["name"] == name]
        self.assertEqual(found, [], "writes answered 503 were kept")

        self.assertEqual(server.stop(), 0, server.log[-3000:])
        self.assertEqual(server.sanitizer_reports(), [])
        self.assertIn("store: statement failed", server.log)
        db = sqlite3.connect(server.db)
        try:
            self.assertEqual([row[0] for row in db.execute("PRAGMA integrity_check")], ["ok"])
            kept = {row[0] for row in db.execute("SELECT id FROM persons")}
        finally:
            db.close()
        self.assertEqual([p for p, _ in acked if p not in kept], [])
        p = run_cli("audit", "verify", db=server.db, check=False, cwd=server.dir)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
