"""Tamper evidence of the audit trail. Records are chained with a keyed MAC
and held by checkpoints signed with Ed25519 (the newest also in the anchor
file beside the key); the schema refuses changes. The attacks are made the
way someone with the database file but not the key would: on the SQLite
file, with the server stopped, dropping the triggers first — and `sarye
audit verify` must find every one: the last records removed, every record
removed, a record changed with the chain recomputed, records removed with
their checkpoints."""
import datetime
import glob
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import struct
import tempfile
import unittest

from harness import ORG1, REGION, Server, ServerError, run_cli, unique_hangul

GENESIS = "0" * 64


def kdf(master, subkey_id, context, size=32):
    """libsodium's crypto_kdf_derive_from_key: BLAKE2b keyed with the master
    key, the subkey id as salt and the context as personalisation."""
    return hashlib.blake2b(b"", digest_size=size, key=master, salt=struct.pack("<Q", subkey_id) + bytes(8),
                           person=context + bytes(8)).digest()


def record_mac(key, prev, row):
    """The MAC of an audit record as store/audit.c computes it: each field
    length-prefixed (8 bytes little-endian; all ones for NULL)."""
    h = hashlib.blake2b(digest_size=32, key=key)

    def put(v):
        if v is None:
            h.update(b"\xff" * 8)
        else:
            b = v.encode()
            h.update(struct.pack("<Q", len(b)))
            h.update(b)

    put("sarye audit record v1")
    put(prev)
    put(str(row["seq"]))
    for f in ("at", "actor", "org_id", "role", "action", "person_id", "case_id", "purpose", "request_id"):
        put(row[f])
    put(str(row["status"]))
    return h.hexdigest()


def recompute_chain(db, key, change=None):
    """Rewrites every record's links and MACs with key (after change(rows))."""
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM audit ORDER BY seq")]
    if change:
        change(rows)
    prev = GENESIS
    for r in rows:
        r["prev_hash"] = prev
        r["hash"] = record_mac(key, prev, r)
        prev = r["hash"]
        db.execute("UPDATE audit SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                   (r["actor"], r["prev_hash"], r["hash"], r["seq"]))


DROP_TRIGGERS = ["DROP TRIGGER IF EXISTS audit_no_update", "DROP TRIGGER IF EXISTS audit_no_delete",
                 "DROP TRIGGER IF EXISTS audit_checkpoints_no_update",
                 "DROP TRIGGER IF EXISTS audit_checkpoints_no_delete",
                 "DROP TRIGGER IF EXISTS audit_archives_no_update", "DROP TRIGGER IF EXISTS audit_archives_no_delete"]


class TamperTest(unittest.TestCase):
    """A trail of a few dozen records, the server stopped (which signs a
    checkpoint at its head); each attack on a fresh copy of its files."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        try:
            srv = cls.server
            srv.org_create(ORG1, "상도1동 행정복지센터", "emd", REGION, ["integrated"])
            c = srv.client(token=srv.token_create("w1", "worker", ORG1))
            for _ in range(8):
                p = c.post("/v1/persons", {"name": unique_hangul(3), "birth_date": "1970-01-01", "sex": "F"})
                assert p.status == 201, p.text
                for _ in range(2):
                    assert c.get("/v1/persons/" + p.json["id"]).status == 200
            c.close()
            assert srv.stop() == 0, srv.log
            db = sqlite3.connect(srv.db)
            cls.records = db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
            cls.last_checkpoint = db.execute(
                "SELECT through_seq, reason FROM audit_checkpoints ORDER BY id DESC LIMIT 1").fetchone()
            db.close()
            with open(os.path.join(srv.dir, "sarye.key"), "rb") as f:
                cls.master = f.read()
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def copy(self):
        """The stopped server's database, key and anchor in a fresh folder."""
        d = tempfile.mkdtemp(prefix="sarye-tamper-")
        self.addCleanup(shutil.rmtree, d, True)
        for f in glob.glob(os.path.join(self.server.dir, "t.db*")) + glob.glob(
                os.path.join(self.server.dir, "sarye.key*")):
            shutil.copy2(f, d)
        return os.path.join(d, "t.db")

    def verify(self, db, *args):
        return run_cli("audit", "verify", *args, db=db, check=False, cwd=os.path.dirname(db))

    def attack(self, db, *statements):
        con = sqlite3.connect(db)
        try:
            for s in DROP_TRIGGERS:
                con.execute(s)
            for s in statements:
                con.execute(s)
            con.commit()
        finally:
            con.close()

    def assertVerifies(self, db, *args):
        p = self.verify(db, *args)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"audit trail verified: \d+ records")
        return p

    def assertFound(self, db, pattern, *args):
        p = self.verify(db, *args)
        self.assertEqual(p.returncode, 1, "verify passed a tampered trail: " + p.stdout + p.stderr)
        self.assertIn("NOT verified", p.stderr)
        self.assertRegex(p.stderr, pattern)
        return p

    def test_the_server_signed_a_checkpoint_at_its_head_and_a_copy_verifies(self):
        self.assertEqual(self.last_checkpoint, (self.records, "shutdown"))
        db = self.copy()
        p = self.assertVerifies(db, "--full")
        self.assertIn("%d checked (1 to %d)" % (self.records, self.records), p.stdout)
        self.assertIn("the anchor agrees", p.stdout)
        # the second run starts from the checkpoint the first one signed
        p = self.assertVerifies(db)
        self.assertIn("0 checked", p.stdout)
        self.assertIn("from the last verified checkpoint", p.stdout)

    def test_removing_the_last_records_is_found(self):
        db = self.copy()
        self.attack(db, "DELETE FROM audit WHERE seq > %d" % (self.records - 3))
        self.assertFound(db, r"ends at record %d, but checkpoint \d+ .* covers records up to %d"
                         % (self.records - 3, self.records))
        self.assertFound(db, r"ends at record %d" % (self.records - 3), "--full")

    def test_removing_the_last_records_after_a_verify_is_found(self):
        db = self.copy()
        self.assertVerifies(db)  # signs a "verify" checkpoint at the head
        self.attack(db, "DELETE FROM audit WHERE seq = %d" % self.records)
        self.assertFound(db, r"record %d, which checkpoint \d+ .* covers, is missing" % self.records)

    def test_removing_every_record_is_found(self):
        db = self.copy()
        self.attack(db, "DELETE FROM audit")
        self.assertFound(db, r"holds no records after 0, but checkpoint \d+ .* covers records up to %d"
                         % self.records)

    def test_changing_a_record_and_recomputing_the_chain_is_found(self):
        def change(rows):
            rows[4]["actor"] = "nobody"

        # without the key: any other key gives other MACs
        db = self.copy()
        con = sqlite3.connect(db)
        for s in DROP_TRIGGERS:
            con.execute(s)
        recompute_chain(con, os.urandom(32), change)
        con.commit()
        con.close()
        self.assertFound(db, r"record 1 was changed", "--full")
        self.assertFound(db, r"record %d does not have the MAC that checkpoint|record 1 was changed" % self.records)

        # even with the key, the signed checkpoint holds the old head
        db = self.copy()
        con = sqlite3.connect(db)
        for s in DROP_TRIGGERS:
            con.execute(s)
        recompute_chain(con, kdf(self.master, 6, b"sryaudit"), change)
        con.commit()
        con.close()
        self.assertFound(db, r"record %d does not have the MAC that checkpoint \d+ .* holds: the chain was rewritten"
                         % self.records, "--full")

    def test_the_python_reimplementation_matches(self):
        """The record MAC is documented well enough to recompute outside
        sarye (with the key): what a small independent check needs."""
        con = sqlite3.connect(self.copy())
        con.row_factory = sqlite3.Row
        key = kdf(self.master, 6, b"sryaudit")
        prev = GENESIS
        for r in con.execute("SELECT * FROM audit ORDER BY seq"):
            self.assertEqual(r["prev_hash"], prev)
            self.assertEqual(record_mac(key, prev, r), r["hash"], "record %d" % r["seq"])
            prev = r["hash"]
        con.close()

    def test_changing_a_record_without_recomputing_is_found_by_a_full_verify(self):
        db = self.copy()
        self.attack(db, "UPDATE audit SET action = 'GET /v1/nothing' WHERE seq = 3")
        self.assertFound(db, r"record 3 was changed: its MAC does not match", "--full")

    def test_removing_records_with_their_checkpoints_is_found_by_the_anchor_and_by_an_export(self):
        db = self.copy()
        export = os.path.join(os.path.dirname(db), "kept-elsewhere.jsonl")
        p = run_cli("audit", "checkpoints", "export", "--out", export, db=db, check=False, cwd=os.path.dirname(db))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.attack(db, "DELETE FROM audit WHERE seq > 5", "DELETE FROM audit_checkpoints")
        self.assertFound(db, r"checkpoint \d+ \(records to %d, signed at [^)]+\), held in .*anchor, is not in the"
                         r" database: checkpoints were removed" % self.records)
        os.unlink(db.replace("t.db", "sarye.key.anchor"))
        self.assertFound(db, r"checkpoint \d+ \(records to %d, signed at [^)]+\), held in .*kept-elsewhere.jsonl, is"
                         r" not in the database" % self.records, "--checkpoints", export)
        # with the anchor gone too, and no export, nothing left says so: keep exports elsewhere
        self.assertVerifies(db)

    def test_a_changed_checkpoint_is_found(self):
        db = self.copy()
        self.attack(db, "UPDATE audit_checkpoints SET through_seq = through_seq - 1")
        self.assertFound(db, r"checkpoint \d+ \(signed at [^)]+\) does not carry a valid signature")

    def test_a_forged_archive_record_does_not_let_records_go(self):
        db = self.copy()
        # with the triggers in place, an archive row would let the delete through
        con = sqlite3.connect(db)
        con.execute("INSERT INTO audit_archives VALUES (5, 1, ?, 'x', 5, 1, '2020-01-01', 'f', 'sig')", (GENESIS,))
        con.execute("DELETE FROM audit WHERE seq <= 5")
        con.commit()
        con.close()
        self.assertFound(db, r"the archive of records 1 to 5 does not carry a valid signature")

    def test_a_database_with_another_key_file_is_refused_not_verified(self):
        db = self.copy()
        with open(db.replace("t.db", "sarye.key"), "wb") as f:
            f.write(os.urandom(32))
        p = self.verify(db)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"the key file '.*sarye.key' holds key [0-9a-f]{16}, but the database .* is sealed"
                                   r" with key [0-9a-f]{16}")


class TrailTest(unittest.TestCase):
    """The append-only schema, checkpoints every N records, incremental
    verification, exports and archives, on a running server."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(env={"SARYE_AUDIT_CHECKPOINT_EVERY": "10"})
        try:
            cls.server.org_create(ORG1, "상도1동 행정복지센터", "emd", REGION, ["integrated"])
            cls.client = cls.server.client(token=cls.server.token_create("w1", "worker", ORG1))
            p = cls.client.post("/v1/persons", {"name": "감사대상", "birth_date": "1960-01-01", "sex": "F"})
            assert p.status == 201, p.text
            cls.person = p.json["id"]
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        try:
            rc = cls.server.stop()
            log = cls.server.logs[-1]
        finally:
            cls.server.close()
        if rc != 0 or cls.server.sanitizer_reports(log):
            raise AssertionError("the server exited with %r\n%s" % (rc, log[-3000:]))

    def reads(self, n):
        for _ in range(n):
            self.assertEqual(self.client.get("/v1/persons/" + self.person).status, 200)

    def cli(self, *args, env=None):
        return self.server.run_cli(*args, check=False, env=env)

    def db(self):
        # autocommit: a refused statement must not leave a write lock behind
        con = sqlite3.connect(self.server.db, timeout=30, isolation_level=None)
        self.addCleanup(con.close)
        return con

    def test_the_schema_refuses_to_change_or_remove_the_trail(self):
        self.reads(1)
        con = self.db()
        last = "(SELECT MAX(seq) FROM audit)"
        for sql in ("UPDATE audit SET actor = 'x' WHERE seq = " + last, "DELETE FROM audit WHERE seq = " + last,
                    "DELETE FROM audit"):
            with self.assertRaisesRegex(sqlite3.IntegrityError, "append-only"):
                con.execute(sql)
        self.reads(10)  # at least one checkpoint
        for sql in ("UPDATE audit_checkpoints SET head = 'x'", "DELETE FROM audit_checkpoints"):
            with self.assertRaisesRegex(sqlite3.IntegrityError, "append-only"):
                con.execute(sql)
        with self.assertRaisesRegex(sqlite3.IntegrityError, "append-only"):
            con.execute("DELETE FROM keyring")
        with self.assertRaisesRegex(sqlite3.IntegrityError, "does not change"):
            con.execute("UPDATE keyring SET public_key = 'x'")

    def test_checkpoints_every_n_records_and_the_anchor_beside_the_key(self):
        before = self.db().execute("SELECT COUNT(*) FROM audit_checkpoints WHERE reason = 'interval'").fetchone()[0]
        self.reads(25)
        rows = self.db().execute(
            "SELECT through_seq FROM audit_checkpoints WHERE reason = 'interval' ORDER BY id").fetchall()
        self.assertGreaterEqual(len(rows) - before, 2, rows)
        gaps = [b[0] - a[0] for a, b in zip(rows, rows[1:])]
        self.assertTrue(all(g >= 10 for g in gaps), gaps)
        m = re.search(r"^sarye_audit_checkpoints_total (\d+)$", self.client.get("/metrics").text, re.M)
        self.assertGreaterEqual(int(m.group(1)), 2)
        anchor = os.path.join(self.server.dir, "sarye.key.anchor")
        self.assertEqual(stat.S_IMODE(os.stat(anchor).st_mode), 0o600)
        with open(anchor) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual(lines[0]["format"], "sarye-audit-checkpoints/1")
        self.assertEqual(len(lines[0]["keys"][0]["public_key"]), 64)
        newest = self.db().execute("SELECT MAX(id) FROM audit_checkpoints").fetchone()[0]
        self.assertEqual(lines[1]["checkpoint"]["id"], newest)

    def test_verify_goes_on_from_the_last_verified_checkpoint_in_short_transactions(self):
        self.reads(30)
        full = self.cli("audit", "verify", "--full")
        self.assertEqual(full.returncode, 0, full.stderr)
        n = int(re.search(r"(\d+) checked", full.stdout).group(1))
        records = self.db().execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        self.assertGreaterEqual(n, records - 5)  # the server may append while it runs
        print("\n  verify --full: " + full.stdout.strip())
        self.reads(3)
        inc = self.cli("audit", "verify")
        self.assertEqual(inc.returncode, 0, inc.stderr)
        self.assertIn("from the last verified checkpoint", inc.stdout)
        checked = int(re.search(r"(\d+) checked", inc.stdout).group(1))
        self.assertTrue(3 <= checked < n, inc.stdout)
        print("  verify (incremental): " + inc.stdout.strip())

    def test_an_export_verifies_the_database_and_a_forged_one_is_refused(self):
        self.reads(12)
        out = os.path.join(self.server.dir, "checkpoints.jsonl")
        p = self.cli("audit", "checkpoints", "export", "--out", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"\d+ signed checkpoints and the public keys written to")
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600)
        ok = self.cli("audit", "verify", "--checkpoints", out)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn("the export agrees", ok.stdout)
        with open(out) as f:
            lines = [json.loads(line) for line in f]
        cp = next(x for x in lines if "checkpoint" in x)["checkpoint"]
        cp["head"] = "f" * 64
        forged = os.path.join(self.server.dir, "forged.jsonl")
        with open(forged, "w") as f:
            f.write("\n".join(json.dumps(x) for x in lines) + "\n")
        bad = self.cli("audit", "verify", "--checkpoints", forged)
        self.assertEqual(bad.returncode, 1)
        self.assertRegex(bad.stderr, r"checkpoint %d in .*forged.jsonl does not carry a valid signature" % cp["id"])
        # another database's checkpoints, signed by another key
        other = Server()
        try:
            other.org_create(ORG1, "x", "emd", REGION, ["integrated"])
            self.assertEqual(other.stop(), 0)
            theirs = os.path.join(other.dir, "theirs.jsonl")
            run_cli("audit", "checkpoints", "export", "--out", theirs, db=other.db, cwd=other.dir)
            bad = self.cli("audit", "verify", "--checkpoints", theirs)
            self.assertEqual(bad.returncode, 1)
            self.assertIn("which is not a key of this database", bad.stderr)
        finally:
            other.close()

    def test_archive_moves_old_records_to_a_verified_file_and_removes_them(self):
        self.reads(15)
        out = os.path.join(self.server.dir, "archive-1.jsonl")
        # records stay for retention.audit_days (ten years by default)
        p = self.cli("audit", "archive", "--before", datetime.date.today().isoformat(), "--out", out)
        self.assertEqual(p.returncode, 1)
        self.assertIn("retention.audit_days (3650 days)", p.stderr)
        self.assertFalse(os.path.exists(out))
        p = self.cli("audit", "archive", "--before", "yesterday", "--out", out, env={"SARYE_RETENTION_AUDIT_DAYS": 0})
        self.assertEqual(p.returncode, 1)
        self.assertIn("is not a date", p.stderr)
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        last = self.db().execute("SELECT MAX(seq) FROM audit WHERE at < ?", (now,)).fetchone()[0]
        p = self.cli("audit", "archive", "--before", now, "--out", out, env={"SARYE_RETENTION_AUDIT_DAYS": 0})
        self.assertEqual(p.returncode, 0, p.stderr)
        m = re.search(r"archived records (\d+) to (\d+) \((\d+)\) to .*, verified; (\d+) removed", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        first, through, n, removed = map(int, m.groups())
        self.assertGreaterEqual(through, last)
        self.assertEqual(n, through - first + 1)
        self.assertEqual(removed, n)
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600)
        lowest = self.db().execute("SELECT MIN(seq) FROM audit").fetchone()[0]
        self.assertTrue(lowest is None or lowest > through, (lowest, through))
        # the trail goes on after the archive, and still verifies
        self.reads(3)
        for args in ((), ("--full",)):
            v = self.cli("audit", "verify", *args)
            self.assertEqual(v.returncode, 0, v.stderr)
        a = self.cli("audit", "verify", "--archive", out)
        self.assertEqual(a.returncode, 0, a.stderr)
        self.assertIn("archive verified: %d records (%d to %d)" % (n, first, through), a.stdout)
        # a record changed in the archive file is found
        with open(out) as f:
            lines = f.read().splitlines()
        i = next(i for i, line in enumerate(lines) if '"record"' in line)
        rec = json.loads(lines[i])
        rec["record"]["actor"] = "nobody"
        lines[i] = json.dumps(rec, ensure_ascii=False)
        bad = os.path.join(self.server.dir, "archive-bad.jsonl")
        with open(bad, "w") as f:
            f.write("\n".join(lines) + "\n")
        b = self.cli("audit", "verify", "--archive", bad)
        self.assertEqual(b.returncode, 1)
        self.assertIn("was changed", b.stderr)
        # nothing older is left to archive
        p = self.cli("audit", "archive", "--before", now, "--out", out + ".2", env={"SARYE_RETENTION_AUDIT_DAYS": 0})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("nothing to archive", p.stdout)


if __name__ == "__main__":
    unittest.main()
