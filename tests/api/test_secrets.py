"""Secrets that hold without the key: no digest of personal data that can be
tested against guesses without the key (Idempotency-Key records included),
stored answers sealed, files the owner's alone; the key is identified, a
missing or different one refuses to start, and `sarye key rotate` seals
everything again under a new one."""
import datetime
import glob
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import unittest

from harness import ORG1, ORG2, REGION, ApiTest, Server, ServerError, make_rrn, unique_hangul


def digests(data):
    """Unkeyed digests an attacker would try, hex and raw."""
    out = set()
    for algo in ("sha256", "sha1", "md5", "sha512", "blake2b", "blake2s", "sha3_256"):
        h = hashlib.new(algo, data)
        out.add(h.hexdigest())
        out.add(h.digest())
    out.add(hashlib.blake2b(data, digest_size=32).hexdigest())
    return out


def every_value(path):
    """Every value of every row of every table."""
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for t in tables:
            for row in con.execute('SELECT * FROM "%s"' % t):
                for v in row:
                    if v is not None:
                        yield t, v
    finally:
        con.close()


class SecretsTest(ApiTest):
    def test_no_unkeyed_digest_of_personal_data_and_answers_kept_sealed(self):
        rrn = make_rrn(datetime.date(1958, 7, 14), "M")
        digits = rrn.replace("-", "")
        name, phone, address = "홍비밀" + unique_hangul(2), "010-2345-6789", "서울특별시 동작구 비밀로 7"
        body = json.dumps({"name": name, "rrn": rrn, "phone": phone, "address": address},
                          ensure_ascii=False).encode()
        headers = {"Idempotency-Key": "secret-1", "Content-Type": "application/json"}
        r = self.client.post("/v1/persons", raw=body, headers=headers, token=self.worker1)
        self.assertEqual(r.status, 201, r.text)
        # what a guess could be tested against: the request, the number, with and without the path
        guesses = set()
        for data in (b"POST /v1/persons\n" + body, body, digits.encode(), rrn.encode(),
                     b"POST /v1/persons " + body):
            guesses |= digests(data)
        for table, v in every_value(self.server.db):
            self.assertNotIn(v, guesses, "an unkeyed digest of personal data in %s" % table)
            if table == "idempotency" and isinstance(v, str):
                for secret in (name, phone, address, digits, r.json["id"]):
                    self.assertNotIn(secret, v, "the idempotency record keeps personal data in clear")
        con = sqlite3.connect(self.server.db)
        stored = con.execute("SELECT request_hash, body FROM idempotency WHERE key = 'secret-1'").fetchone()
        con.close()
        self.assertRegex(stored[0], r"^[0-9a-f]{64}$")
        self.assertTrue(stored[1].startswith("s1."), stored[1][:20])
        # replays still answer what was answered; another request with the key is refused
        again = self.client.post("/v1/persons", raw=body, headers=headers, token=self.worker1)
        self.assertEqual((again.status, again.json), (201, r.json))
        other = body.replace(b"010-2345-6789", b"010-2345-6780")
        self.assertError(self.client.post("/v1/persons", raw=other, headers=headers, token=self.worker1), 409,
                         "idempotency_key_reused")

    def test_the_database_and_its_files_are_the_owners_alone(self):
        self.make_person()
        for suffix in ("", "-wal", "-shm"):
            path = self.server.db + suffix
            self.assertTrue(os.path.exists(path), path)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, path)
        key = os.path.join(self.server.dir, "sarye.key")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)

    def test_the_database_names_its_key_by_an_id_that_does_not_reveal_it(self):
        con = sqlite3.connect(self.server.db)
        rows = con.execute("SELECT epoch, key_id, public_key FROM keyring").fetchall()
        con.close()
        self.assertEqual(len(rows), 1)
        self.assertRegex(rows[0][1], r"^[0-9a-f]{16}$")
        with open(os.path.join(self.server.dir, "sarye.key"), "rb") as f:
            key = f.read()
        self.assertNotIn(key.hex()[:16], rows[0][1] + rows[0][2])


class KeyTest(unittest.TestCase):
    """A server stopped and started on one database with its key, without
    it, with another, and through a rotation."""

    def setUp(self):
        self.server = Server()
        self.addCleanup(self.server.close)
        srv = self.server
        srv.org_create(ORG1, "상도1동 행정복지센터", "emd", REGION, ["integrated"])
        srv.org_create(ORG2, "노량진1동 행정복지센터", "emd", REGION, ["integrated"])
        self.w1 = srv.token_create("w1", "worker", ORG1)
        self.w2 = srv.token_create("w2", "worker", ORG2)
        self.key = os.path.join(srv.dir, "sarye.key")
        self.client = srv.client()
        self.addCleanup(self.client.close)

    def key_id(self):
        con = sqlite3.connect(self.server.db)
        try:
            return con.execute("SELECT key_id FROM keyring ORDER BY epoch DESC LIMIT 1").fetchone()[0]
        finally:
            con.close()

    def refused(self):
        with self.assertRaises(ServerError) as cm:
            self.server.start()
        return str(cm.exception)

    def test_a_missing_or_different_key_file_refuses_to_start_and_is_never_replaced(self):
        rrn = make_rrn(datetime.date(1970, 3, 3), "F")
        self.assertEqual(self.client.post("/v1/persons", {"name": "열쇠", "rrn": rrn}, token=self.w1).status, 201)
        self.assertEqual(self.server.stop(), 0)
        kid = self.key_id()
        shutil.move(self.key, self.key + ".kept")
        log = self.refused()
        self.assertRegex(log, r"the key file '.*sarye.key' does not exist, but the database '.*t.db' is sealed with"
                              r" key %s" % kid)
        self.assertFalse(os.path.exists(self.key), "a new key was made for a database that has one")
        with open(self.key, "wb") as f:
            f.write(os.urandom(32))
        log = self.refused()
        m = re.search(r"the key file '.*sarye.key' holds key ([0-9a-f]{16}), but the database '.*t.db' is sealed with"
                      r" key %s" % kid, log)
        self.assertIsNotNone(m, log)
        self.assertNotEqual(m.group(1), kid)
        # the command line refuses too
        p = self.server.run_cli("audit", "verify", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("is sealed with key " + kid, p.stderr)
        shutil.move(self.key + ".kept", self.key)
        self.server.start()
        found = self.client.get("/v1/persons", token=self.w1, query={"rrn": rrn})
        self.assertEqual(len(found.json["items"]), 1, found.text)

    def test_rotation_seals_everything_again_and_the_old_key_is_refused(self):
        numbers = [make_rrn(datetime.date(1950 + i, 1 + i, 1 + i), "MF"[i % 2]) for i in range(6)]
        ids = []
        for i, rrn in enumerate(numbers):
            r = self.client.post("/v1/persons", {"name": "회전%d" % i, "rrn": rrn}, token=self.w1,
                                 headers={"Idempotency-Key": "rot-%d" % i})
            self.assertEqual(r.status, 201, r.text)
            ids.append(r.json)
        # not beside a running server
        p = self.server.run_cli("key", "rotate", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("stop it first", p.stderr)
        self.assertEqual(self.server.stop(), 0)
        old = self.key_id()
        con = sqlite3.connect(self.server.db)
        before = dict(con.execute("SELECT id, rrn_hash FROM persons WHERE rrn_hash IS NOT NULL"))
        sealed = dict(con.execute("SELECT id, rrn_sealed FROM persons WHERE rrn_sealed IS NOT NULL"))
        con.close()
        p = self.server.run_cli("key", "rotate", check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        new = self.key_id()
        self.assertNotEqual(new, old)
        self.assertIn("key rotated: %s -> %s" % (old, new), p.stdout)
        self.assertIn("6 resident numbers and 6 stored answers sealed again", p.stdout)
        retired = self.key + ".retired-" + old
        self.assertTrue(os.path.exists(retired))
        self.assertEqual(stat.S_IMODE(os.stat(self.key).st_mode), 0o600)
        con = sqlite3.connect(self.server.db)
        after = dict(con.execute("SELECT id, rrn_hash FROM persons WHERE rrn_hash IS NOT NULL"))
        resealed = dict(con.execute("SELECT id, rrn_sealed FROM persons WHERE rrn_sealed IS NOT NULL"))
        epochs = con.execute("SELECT epoch, key_id, retired_at IS NOT NULL FROM keyring ORDER BY epoch").fetchall()
        con.close()
        self.assertEqual(set(after), set(before))
        self.assertTrue(all(after[k] != before[k] for k in after), "a blind index under the old key is left")
        self.assertTrue(all(resealed[k] != sealed[k] for k in sealed))
        self.assertEqual(epochs, [(1, old, 1), (2, new, 0)])
        # what was sealed under the old key is not left in the files' free pages
        for f in glob.glob(self.server.db + "*"):
            with open(f, "rb") as fh:
                data = fh.read()
            for k in sealed:
                self.assertNotIn(sealed[k].encode(), data, f)
                self.assertNotIn(before[k].encode(), data, f)
        # every number is found again, by its organisation and as known elsewhere
        self.server.start()
        for rrn, person in zip(numbers, ids):
            found = self.client.get("/v1/persons", token=self.w1, query={"rrn": rrn})
            self.assertEqual([x["id"] for x in found.json["items"]], [person["id"]], found.text)
            elsewhere = self.client.get("/v1/persons", token=self.w2, query={"rrn": rrn})
            self.assertTrue(elsewhere.json["known_elsewhere"], elsewhere.text)
        # a retry of a request made before the rotation gets its answer
        again = self.client.post("/v1/persons", {"name": "회전0", "rrn": numbers[0]}, token=self.w1,
                                 headers={"Idempotency-Key": "rot-0"})
        self.assertEqual((again.status, again.json), (201, ids[0]))
        self.assertEqual(self.server.stop(), 0)
        # the trail, across both keys
        v = self.server.run_cli("audit", "verify", "--full", check=False)
        self.assertEqual(v.returncode, 0, v.stderr)
        # the old key is refused, by name
        shutil.copy(self.key, self.key + ".current")
        shutil.copy(retired, self.key)
        log = self.refused()
        self.assertRegex(log, r"holds key %s, but the database .* is sealed with key %s; key %s was retired by"
                              r" `sarye key rotate`" % (old, new, old))
        shutil.copy(self.key + ".current", self.key)
        self.server.start()
        self.assertEqual(self.client.get("/v1/persons", token=self.w1, query={"rrn": numbers[3]}).status, 200)

    def test_an_interrupted_rotation_says_where_the_key_is(self):
        self.assertEqual(self.client.post("/v1/persons", {"name": "중단", "rrn": make_rrn(
            datetime.date(1980, 8, 8), "M")}, token=self.w1).status, 201)
        self.assertEqual(self.server.stop(), 0)
        old = self.key_id()
        self.assertEqual(self.server.run_cli("key", "rotate", check=False).returncode, 0)
        # as if the process had died after the commit, before moving the files
        shutil.move(self.key, self.key + ".new")
        shutil.move(self.key + ".retired-" + old, self.key)
        log = self.refused()
        self.assertRegex(log, r"a key rotation was interrupted after it committed: '.*sarye.key.new' holds key"
                              r" [0-9a-f]{16}, move it to '.*sarye.key'")
        shutil.move(self.key + ".new", self.key)
        self.server.start()


if __name__ == "__main__":
    unittest.main()
