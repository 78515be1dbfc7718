"""The process out of memory: its address space limited while it serves.

The server's address-space limit (RLIMIT_AS: what `ulimit -v` or systemd's
LimitAS sets; to the process, the same as a machine with no memory left to
give) is lowered to just above what it uses, while four workers open cases,
move them and read. Memory is then refused wherever it happens to be asked
for: building a plugin VM, laying a question into one, inside plugin code,
in SQLite, in the HTTP layer. Whatever was refused where:

- the server stays up, and every answer is a success or a 503 that says
  what could not be done (never a 500, never a dropped connection);
- the limit bit: something was refused, and /metrics counts the refusals
  of memory (to the plugin VMs, to the case store);
- every case answered 201 is there, and no case that was answered 503; a
  case whose move was answered 200 is in its new stage, one whose move was
  answered 503 in its old one;
- once the limit is lifted, the same server opens and moves cases again;
- after a clean stop, `PRAGMA integrity_check` is ok and `sarye audit
  verify` passes.

Nothing depends on timing: which requests are refused varies from run to
run, and each assertion holds whichever they are.

Only in the release build: AddressSanitizer reserves terabytes of address
space for its shadow memory, so a limit on it cannot run there (ctest
registers this folder without the sanitizer; the unit tests refuse memory
to the plugin VMs and to SQLite in both builds).
"""
import os
import re
import resource
import sqlite3
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))

from harness import REGION, Server, run_cli, unique_hangul  # noqa: E402

ORG = "mem-sangdo"
WORKERS = 4
EACH = 25
ROOMS = (1 << 20, 2 << 20, 3 << 20)  # bytes of address space the server may still take
REFUSALS = {"not_ready", "overloaded", "store_unavailable", "store_busy", "audit_unavailable"}


def address_space(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize for %d" % pid)


class MemoryLimit(unittest.TestCase):
    def setUp(self):
        self.server = Server()
        self.addCleanup(self.server.close)
        self.server.org_create(ORG, "상도3동 행정복지센터", "emd", REGION, ["integrated"])
        self.tokens = [self.server.token_create("mem-w%d" % i, "worker", ORG) for i in range(WORKERS)]
        self.operator = self.server.token_create("mem-op", "operator")
        self.client = self.server.client(token=self.tokens[0])
        self.addCleanup(self.client.close)
        self.persons = []
        for i in range(WORKERS):
            r = self.client.post("/v1/persons", {"name": "메모리" + unique_hangul(3), "birth_date": "1958-03-0%d" % (i + 1),
                                                 "sex": "F"})
            self.assertEqual(r.status, 201, r.text)
            self.persons.append(r.json["id"])

    def set_limit(self, soft):
        resource.prlimit(self.server.proc.pid, resource.RLIMIT_AS, (soft, resource.RLIM_INFINITY))

    def work(self, n, opened, moved, stayed, refused, problems):
        client = self.server.client(token=self.tokens[n], retry=False)  # one request, one attempt
        person = self.persons[n]

        def answered(r, what, ok):
            if r.status in ok:
                return True
            if r.status == 503 and r.json and r.json.get("error", {}).get("code") in REFUSALS:
                refused.append((what, r.json["error"]["code"]))
                return False
            problems.append("%s: %d %s" % (what, r.status, r.text[:300]))
            return False

        try:
            for i in range(EACH):
                r = client.post("/v1/cases", {"person_id": person, "program": "integrated", "source": "walk_in"})
                if answered(r, "open", (201,)):
                    case = r.json
                    opened.append(case["id"])
                    r = client.post("/v1/cases/%s/transitions" % case["id"],
                                    {"to": "initial_counseling", "version": case["version"]})
                    (moved if answered(r, "move", (200, 201)) else stayed).append(case["id"])
                answered(client.get("/v1/persons/" + person), "read a person", (200,))
                answered(client.get("/v1/cases", query={"limit": "5"}), "list cases", (200,))
        except Exception as e:  # noqa: BLE001 -- reported below, with the rest
            problems.append("worker %d: %r" % (n, e))
        finally:
            client.close()

    def test_refusals_of_memory_are_503s_and_keep_every_answer_true(self):
        server = self.server
        opened, moved, stayed, refused, problems = [], [], [], [], []
        for room in ROOMS:  # where memory runs out moves with the room left
            self.set_limit(address_space(server.proc.pid) + room)
            workers = [threading.Thread(target=self.work, args=(n, opened, moved, stayed, refused, problems))
                       for n in range(WORKERS)]
            for t in workers:
                t.start()
            for t in workers:
                t.join()
            alive = server.alive()
            self.set_limit(resource.RLIM_INFINITY)
            self.assertTrue(alive, "the server died out of memory:\n" + server.log[-3000:])
            self.assertEqual(problems, [], "with %d KiB of room" % (room >> 10))
        self.assertGreater(len(refused), 0, "the limit refused nothing")
        m = self.client.get("/metrics", token=self.operator)
        self.assertEqual(m.status, 200, m.text)
        counted = [int(v) for v in re.findall(r"^sarye_(?:plugin|store)_memory_refused_total (\d+)$", m.text, re.M)]
        self.assertEqual(len(counted), 2, m.text[:3000])
        self.assertGreater(sum(counted), 0, "refusals %s, none counted" % sorted(set(refused)))

        # Memory again: the same server opens and moves a case.
        r = self.client.post("/v1/cases", {"person_id": self.persons[0], "program": "integrated",
                                           "source": "walk_in"})
        self.assertEqual(r.status, 201, r.text)
        opened.append(r.json["id"])
        r = self.client.post("/v1/cases/%s/transitions" % r.json["id"],
                             {"to": "initial_counseling", "version": r.json["version"]})
        self.assertIn(r.status, (200, 201), r.text)
        moved.append(r.json["id"])

        self.assertEqual(server.stop(), 0, server.log[-3000:])
        db = sqlite3.connect(server.db)
        try:
            self.assertEqual([row[0] for row in db.execute("PRAGMA integrity_check")], ["ok"])
            stages = dict(db.execute("SELECT id, stage FROM cases"))
        finally:
            db.close()
        # Every case answered 201 is there, and no other: none answered 503.
        self.assertEqual(sorted(stages), sorted(opened))
        self.assertEqual([c for c in moved if stages[c] != "initial_counseling"], [])
        self.assertEqual([c for c in stayed if stages[c] != "discovery"], [])
        p = run_cli("audit", "verify", db=server.db, check=False, cwd=server.dir)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
