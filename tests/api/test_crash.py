"""Crash safety: writers on several connections, `kill -9` of the server at
random points (12 times), restart on the same file, at durability full and
again at normal. Every write that got a
2xx before the kill is there after it (persons, cases, transitions, case
work records, and the audit record of each), the case rows and their event
logs agree, `PRAGMA integrity_check` is ok and `sarye audit verify` passes.

The kill points are random (seeded: SARYE_TEST_CRASH_SEED=N repeats the
choices of a failed run; thread timing still differs), so each run does
different work, but every assertion holds whatever was in flight: a request
whose answer never arrived is not acknowledged and may or may not be there;
one that got a 2xx must be."""
import collections
import http.client
import json
import os
import random
import shutil
import signal
import sqlite3
import sys
import threading
import time
import traceback
import unittest
import urllib.parse

from harness import HTTP_TIMEOUT, REGION, Server, run_cli

ROUNDS = 12
WRITERS = 5
LOAD_SECONDS = (0.2, 1.5)  # load after the round's first acknowledged write
ORG = "crash-sangdo"
# A case walks these steps; past the last one it only gets counseling records.
NEXT_STAGE = {"discovery": "initial_counseling", "initial_counseling": "intake", "intake": "assessment"}
# No answer: the connection was refused, reset or closed before a full answer.
NO_ANSWER = (OSError, http.client.HTTPException)


def seed_from_env():
    text = os.environ.get("SARYE_TEST_CRASH_SEED", "")
    return int(text) if text.strip() else random.SystemRandom().randrange(1 << 32)


class Writer:
    """One client on its own connection with its own token, doing a mix of
    durable writes and noting every one that got a 2xx (with the
    X-Request-Id, to find its audit record)."""

    def __init__(self, n, token, rng):
        self.user = "crash-w%d" % n
        self.token = token
        self.rng = rng
        self.persons = []  # acknowledged person ids
        self.cases = {}    # acknowledged case id -> {"version", "stage", "sure"}
        self.acks = []     # what the verification looks for
        self.problems = []  # answers a correct server never gives these requests
        self.counts = collections.Counter()
        self.round = 0

    # ---- one round: until stop is set ----
    def run(self, server, stop, first_ack):
        client = server.client(token=self.token, retry=False)  # one request, one attempt
        try:
            while not stop.is_set():
                try:
                    self.step(client, first_ack)
                except NO_ANSWER:
                    # the server is gone (or closed the connection): whatever
                    # was sent is not acknowledged
                    self.counts["no answer"] += 1
                    client.close()
                    time.sleep(0.005)
        except Exception:
            self.problems.append("round %d %s: %s" % (self.round, self.user, traceback.format_exc()))
        finally:
            client.close()

    def ack(self, first_ack, r, kind, **what):
        what.update(kind=kind, round=self.round, writer=self.user, request_id=r.header("X-Request-Id"),
                    status=r.status)
        self.acks.append(what)
        self.counts[kind] += 1
        first_ack.set()

    def unexpected(self, what, r):
        # 503 is the server refusing work it could not take on (busy, a
        # suspended region): not acknowledged, not wrong. Anything else
        # that is not a 2xx is an answer these valid requests never get.
        if r.status == 503:
            self.counts["503"] += 1
        else:
            self.problems.append("round %d %s: %s answered %d: %s" % (self.round, self.user, what, r.status,
                                                                      r.text[:300]))

    def step(self, client, first_ack):
        rng = self.rng
        x = rng.random()
        if not self.persons or x < 0.15:
            return self.new_person(client, first_ack)
        movable = [c for c, s in self.cases.items() if s["stage"] in NEXT_STAGE]
        if not self.cases or x < 0.35 or (x < 0.8 and not movable):
            return self.new_case(client, first_ack)
        if x < 0.8:
            return self.move(client, rng.choice(movable), first_ack)
        return self.counseling(client, rng.choice(sorted(self.cases)), first_ack)

    def new_person(self, client, first_ack):
        rng = self.rng
        body = {"name": "".join(chr(0xAC00 + rng.randrange(11172)) for _ in range(3)),
                "birth_date": "%04d-%02d-%02d" % (rng.randrange(1940, 2010), rng.randrange(1, 13),
                                                  rng.randrange(1, 29)),
                "sex": rng.choice("FM")}
        r = client.post("/v1/persons", body)
        if r.status == 201:
            self.persons.append(r.json["id"])
            self.ack(first_ack, r, "person", id=r.json["id"], name=body["name"], birth_date=body["birth_date"],
                     action="POST /v1/persons")
        else:
            self.unexpected("POST /v1/persons", r)

    def new_case(self, client, first_ack):
        person = self.rng.choice(self.persons)
        r = client.post("/v1/cases", {"person_id": person, "program": "integrated", "source": "walk_in"})
        if r.status == 201:
            c = r.json
            self.cases[c["id"]] = {"version": c["version"], "stage": c["stage"], "sure": True}
            self.ack(first_ack, r, "case", id=c["id"], person_id=person, version=c["version"],
                     action="POST /v1/cases")
        else:
            self.unexpected("POST /v1/cases", r)

    def refresh(self, client, case_id):
        """A write on this case went unanswered: it may or may not have been
        committed, so read where the case is before the next write."""
        r = client.get("/v1/cases/" + case_id)
        if r.status != 200:
            self.unexpected("GET /v1/cases/%s (an acknowledged case)" % case_id, r)
            return False
        s = self.cases[case_id]
        s.update(version=r.json["version"], stage=r.json["stage"], sure=True)
        return True

    def on_case(self, client, case_id):
        s = self.cases[case_id]
        if not s["sure"] and not self.refresh(client, case_id):
            return None
        s["sure"] = False  # until an answer says where the case is
        return s

    def move(self, client, case_id, first_ack):
        s = self.on_case(client, case_id)
        if s is None or s["stage"] not in NEXT_STAGE:
            return
        to = NEXT_STAGE[s["stage"]]
        r = client.post("/v1/cases/%s/transitions" % case_id, {"to": to, "version": s["version"]})
        if r.status == 200:
            s.update(version=r.json["version"], stage=r.json["stage"], sure=True)
            if r.json["stage"] != to:
                self.problems.append("round %d %s: moved %s to %s, the answer is at %s"
                                     % (self.round, self.user, case_id, to, r.json["stage"]))
            self.ack(first_ack, r, "transition", case_id=case_id, to=to, version=r.json["version"],
                     action="POST /v1/cases/{id}/transitions")
        elif r.status in (409, 412):
            # only after a write whose answer was lost; read the case again
            self.counts["stale %d" % r.status] += 1
        else:
            self.unexpected("POST /v1/cases/%s/transitions" % case_id, r)

    def counseling(self, client, case_id, first_ack):
        s = self.on_case(client, case_id)
        if s is None:
            return
        domain = self.rng.choice(["economy", "health", "safety"])
        r = client.post("/v1/cases/%s/counseling" % case_id, {
            "case_type": "general", "domains": {domain: "상담 %d" % self.rng.randrange(1000)},
            "main_problems": [domain], "opinion": "정기 상담"})
        if r.status == 201:
            c = r.json["case"]
            s.update(version=c["version"], stage=c["stage"], sure=True)
            self.ack(first_ack, r, "record", id=r.json["id"], case_id=case_id, version=c["version"],
                     action="POST /v1/cases/{id}/counseling")
        elif r.status in (409, 412):
            self.counts["stale %d" % r.status] += 1
        else:
            self.unexpected("POST /v1/cases/%s/counseling" % case_id, r)


class CrashTest(unittest.TestCase):
    maxDiff = 4000
    server_env = {}  # durability = full, the default

    def setUp(self):
        self.seed = seed_from_env()
        self.rng = random.Random(self.seed)
        self.server = Server(start=False, env=self.server_env)
        self.addCleanup(self.server.close)
        self.server.org_create(ORG, "상도1동 행정복지센터", "emd", REGION, ["integrated"])
        self.writers = [Writer(i, self.server.token_create("crash-w%d" % i, "worker", ORG),
                               random.Random(self.rng.randrange(1 << 63)))
                        for i in range(1, WRITERS + 1)]

    def where(self, rnd):
        return "seed %d (SARYE_TEST_CRASH_SEED=%d repeats it), round %s" % (self.seed, self.seed, rnd)

    def fail_with(self, rnd, what, problems, log=None):
        shown = problems[:25]
        more = "\n... and %d more" % (len(problems) - len(shown)) if len(problems) > len(shown) else ""
        tail = "\nserver log tail:\n" + "".join(log.splitlines(True)[-40:]) if log else ""
        self.fail("%s: %s:\n%s%s%s" % (self.where(rnd), what, "\n".join(shown), more, tail))

    # ---- the rounds ----
    def test_acknowledged_writes_survive_kill_9(self):
        started = time.monotonic()
        for rnd in range(1, ROUNDS + 1):
            self.load_and_kill(rnd)
            self.verify_file(rnd)
        # A last start on the crashed file: the server comes back, serves what
        # was acknowledged to the users who wrote it, and stops cleanly.
        self.server.start()
        self.verify_over_http()
        rc = self.server.stop()
        log = self.server.logs[-1]
        if rc != 0:
            self.fail_with("final", "the server exited with %r on SIGTERM (expected 0)" % rc, [], log)
        reports = [line for text in self.server.logs for line in self.server.sanitizer_reports(text)]
        if reports:
            self.fail_with("final", "sanitizer reports", reports, log)
        self.verify_file("final")
        total = collections.Counter()
        for w in self.writers:
            total.update(w.counts)
        sys.stderr.write("\ncrash: seed %d, %d rounds in %.1f s: %s\n"
                         % (self.seed, ROUNDS, time.monotonic() - started,
                            ", ".join("%s %d" % kv for kv in sorted(total.items()))))

    def load_and_kill(self, rnd):
        self.server.start()
        stop, first_ack = threading.Event(), threading.Event()
        threads = []
        for w in self.writers:
            w.round = rnd
            threads.append(threading.Thread(target=w.run, args=(self.server, stop, first_ack),
                                            name=w.user, daemon=True))
        try:
            for t in threads:
                t.start()
            # The load runs for a random time after the first write of the
            # round is acknowledged, so every kill has acknowledged writes
            # (of this round and before) to lose.
            got = first_ack.wait(HTTP_TIMEOUT)
            if got:
                time.sleep(self.rng.uniform(*LOAD_SECONDS))
            died_before = self.server.proc.poll()
            self.server.signal(signal.SIGKILL)
        finally:
            # Writers stop at once: the freed port could go to another
            # test's server before this one starts again.
            stop.set()
            rc = self.server.stop(signal.SIGKILL)
            for t in threads:
                t.join(HTTP_TIMEOUT + 10)
        log = self.server.logs[-1]
        if died_before is not None or rc != -signal.SIGKILL:
            self.fail_with(rnd, "the server exited by itself (%r) before the kill" % rc, [], log)
        if any(t.is_alive() for t in threads):
            self.fail_with(rnd, "a writer did not stop after the kill", [t.name for t in threads if t.is_alive()])
        problems = [p for w in self.writers for p in w.problems]
        if problems:
            self.fail_with(rnd, "answers a correct server does not give", problems, log)
        reports = self.server.sanitizer_reports(log)
        if reports:
            self.fail_with(rnd, "sanitizer reports", reports, log)
        if not got:
            self.fail_with(rnd, "no write was acknowledged within %.0f s of the start" % HTTP_TIMEOUT, [], log)

    # ---- verification ----
    def snapshot(self):
        """A copy of the file as the kill left it (the database and its WAL;
        the shared-memory index is rebuilt from the WAL), so that checking
        it never changes what the next start recovers from."""
        folder = os.path.join(self.server.dir, "check")
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        copy = os.path.join(folder, "copy.db")
        shutil.copyfile(self.server.db, copy)
        if os.path.exists(self.server.db + "-wal"):
            shutil.copyfile(self.server.db + "-wal", copy + "-wal")
        # the key the database is sealed with (and its anchor) go with it
        for name in ("sarye.key", "sarye.key.anchor"):
            src = os.path.join(os.path.dirname(self.server.db), name)
            if os.path.exists(src):
                shutil.copyfile(src, os.path.join(folder, name))
        return copy

    def verify_file(self, rnd):
        path = self.snapshot()
        db = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(path), uri=True)
        try:
            integrity = [row[0] for row in db.execute("PRAGMA integrity_check")]
            if integrity != ["ok"]:
                self.fail_with(rnd, "PRAGMA integrity_check is not ok", integrity)
            fk = db.execute("PRAGMA foreign_key_check").fetchall()
            if fk:
                self.fail_with(rnd, "PRAGMA foreign_key_check found rows", [repr(row) for row in fk])
            persons = {r[0]: r[1:] for r in db.execute("SELECT id, name, birth_date, created_by FROM persons")}
            cases = {r[0]: r[1:] for r in db.execute("SELECT id, person_id, version, stage FROM cases")}
            events = {(r[0], r[1]): r[2:] for r in db.execute(
                "SELECT case_id, seq, type, to_stage, data FROM case_events")}
            records = {r[0]: r[1:] for r in db.execute("SELECT id, case_id, kind FROM case_records")}
            audit = {r[0]: r[1:] for r in db.execute("SELECT request_id, action, status FROM audit")}
        finally:
            db.close()

        missing = []
        for a in (a for w in self.writers for a in w.acks):
            who = "%s (acknowledged in round %d by %s, request %s)" % (a["kind"], a["round"], a["writer"],
                                                                       a["request_id"])
            if a["kind"] == "person":
                if a["id"] not in persons:
                    missing.append("person %s missing: %s" % (a["id"], who))
                elif persons[a["id"]] != (a["name"], a["birth_date"], a["writer"]):
                    missing.append("person %s is %r, was written as %r: %s"
                                   % (a["id"], persons[a["id"]], (a["name"], a["birth_date"], a["writer"]), who))
            elif a["kind"] == "case":
                if a["id"] not in cases:
                    missing.append("case %s missing: %s" % (a["id"], who))
                elif cases[a["id"]][0] != a["person_id"]:
                    missing.append("case %s belongs to %s, was opened for %s: %s"
                                   % (a["id"], cases[a["id"]][0], a["person_id"], who))
                elif (events.get((a["id"], 1)) or ("none",))[0] != "opened":
                    missing.append("case %s has no opened event at seq 1 (%r): %s"
                                   % (a["id"], events.get((a["id"], 1)), who))
            else:
                cid, v = a["case_id"], a["version"]
                ev = events.get((cid, v))
                if cid not in cases:
                    missing.append("case %s missing (its %s to version %d): %s" % (cid, a["kind"], v, who))
                elif cases[cid][1] < v:
                    missing.append("case %s is at version %d, the %s reached %d: %s"
                                   % (cid, cases[cid][1], a["kind"], v, who))
                elif a["kind"] == "transition" and (ev is None or ev[:2] != ("transition", a["to"])):
                    missing.append("case %s event %d is %r, not the transition to %s: %s"
                                   % (cid, v, ev and ev[:2], a["to"], who))
                elif a["kind"] == "record":
                    if records.get(a["id"]) != (cid, "counseling"):
                        missing.append("record %s of case %s is %r: %s" % (a["id"], cid, records.get(a["id"]), who))
                    elif ev is None or ev[0] != "record" or json.loads(ev[2]).get("record_id") != a["id"]:
                        missing.append("case %s event %d is %r, not the record %s: %s"
                                       % (cid, v, ev, a["id"], who))
            # the audit record of a write is committed with the write
            if audit.get(a["request_id"]) != (a["action"], a["status"]):
                missing.append("audit record of request %s is %r, expected %r: %s"
                               % (a["request_id"], audit.get(a["request_id"]), (a["action"], a["status"]), who))
        if missing:
            self.fail_with(rnd, "%d acknowledged writes are not (all) there after kill -9" % len(missing), missing)

        # Whatever was in flight: a case row and its event log were written
        # together, so the log is 1..version with no gap and nothing beyond.
        seqs = collections.defaultdict(list)
        for cid, seq in events:
            seqs[cid].append(seq)
        torn = ["case %s at version %d has events %s" % (cid, c[1], sorted(seqs.get(cid, []))[-5:])
                for cid, c in sorted(cases.items()) if sorted(seqs.get(cid, [])) != list(range(1, c[1] + 1))]
        torn += ["events of case %s, which is not there" % cid for cid in sorted(set(seqs) - set(cases))]
        if torn:
            self.fail_with(rnd, "case rows and event logs disagree", torn)

        p = run_cli("audit", "verify", db=path, check=False, cwd=os.path.dirname(path))
        if p.returncode != 0:
            self.fail_with(rnd, "`sarye audit verify` exited %d" % p.returncode,
                           (p.stdout + p.stderr).splitlines())
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)

    def verify_over_http(self):
        """A sample of the acknowledged writes read back by the users who
        made them (reading all would be slow under the sanitizers)."""
        acks = [a for w in self.writers for a in w.acks]
        tokens = {w.user: w.token for w in self.writers}
        latest = {}
        for a in acks:
            if a["kind"] in ("case", "transition", "record"):
                cid = a["id"] if a["kind"] == "case" else a["case_id"]
                latest[cid] = max(latest.get(cid, 0), a["version"])
        sample = self.rng.sample(acks, min(60, len(acks)))
        client = self.server.client()
        wrong = []
        try:
            for a in sample:
                if a["kind"] == "person":
                    r = client.get("/v1/persons/" + a["id"], token=tokens[a["writer"]])
                    if r.status != 200 or r.json["name"] != a["name"]:
                        wrong.append("GET person %s (round %d, %s): %d %s"
                                     % (a["id"], a["round"], a["writer"], r.status, r.text[:200]))
                else:
                    cid = a["id"] if a["kind"] == "case" else a["case_id"]
                    r = client.get("/v1/cases/" + cid, token=tokens[a["writer"]])
                    if r.status != 200 or r.json["version"] < latest[cid]:
                        wrong.append("GET case %s (acknowledged at version %d, last in round %d by %s): %d %s"
                                     % (cid, latest[cid], a["round"], a["writer"], r.status, r.text[:200]))
        finally:
            client.close()
        if wrong:
            self.fail_with("final", "acknowledged writes not served after the restart", wrong, self.server.log)


class CrashNormalDurabilityTest(CrashTest):
    """The same at durability = normal: nothing is synced at commit, so an
    acknowledged write survives a kill -9 only because its transaction was
    handed to the kernel before SQLite returned (the store's write-ahead log
    gathers a transaction's frames and writes them at its commit frame)."""
    server_env = {"SARYE_DURABILITY": "normal"}


if __name__ == "__main__":
    unittest.main()
