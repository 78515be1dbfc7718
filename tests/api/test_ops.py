"""
test_ops.py: the operations kit, against real servers and the real command
line: backup while writers run and restore (every write acknowledged before
the backup is back, integrity and the audit chain hold, the wrong key or a
running server is refused), `config check`, `--help` on every command, JSON
log lines, trusted proxies and X-Forwarded-For, Korean error messages,
Location on 201, Retry-After on 503, a command beside a live server and a
long reader (it does not wait for the reader), the limit on open files (the soft one
raised at start, one too low said in the log and met with 503s), the systemd
unit, and W^X (the unit's
MemoryDenyWriteExecute) under the kernel's own enforcement.
"""
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (ApiTest, BIN, ORG1, REGION, SCALE, SOURCE, Server, clean_env, make_rrn, run_cli,
                     unique_hangul)
import datetime


def commands_from_usage():
    """Every command line of `sarye help`: [(cmd, sub or None)]."""
    out = run_cli("help").stdout
    cmds = []
    for line in out.splitlines():
        m = re.match(r"^  ([a-z]+)(?: ([a-z]+))?\b", line)
        if m:
            sub = m.group(2)
            # "backup FILE", "serve [--config", "plugin test [DIR": the second word is a subcommand
            # only when it is lower case and not an argument
            if sub and not re.match(r"^  [a-z]+ [a-z]+( |$)", line):
                sub = None
            cmds.append((m.group(1), sub))
    return cmds


class HelpTest(unittest.TestCase):
    def test_every_command_has_help(self):
        cmds = commands_from_usage()
        names = {c for c, _ in cmds}
        for must in ("serve", "migrate", "org", "token", "audit", "plugin", "backup", "restore", "config",
                     "version", "help"):
            self.assertIn(must, names)
        for cmd, sub in cmds:
            args = [cmd] + ([sub] if sub else [])
            for flag in ("--help", "-h"):
                with self.subTest(args=args, flag=flag):
                    p = run_cli(*(args + [flag]), check=False)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertTrue(p.stdout.startswith("usage: sarye " + " ".join(args)), p.stdout)
                    self.assertEqual(p.stderr, "")
            p = run_cli("help", *args, check=False)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(p.stdout.startswith("usage: sarye " + " ".join(args)), p.stdout)

    def test_serve_help_names_its_options(self):
        p = run_cli("serve", "--help")
        for opt in ("--config", "--listen", "--db", "--plugins"):
            self.assertIn(opt, p.stdout)

    def test_command_alone_lists_its_subcommands(self):
        for cmd, subs in (("plugin", ("check", "test")), ("org", ("create",)), ("token", ("create",)),
                          ("audit", ("verify",)), ("config", ("check",))):
            with self.subTest(cmd=cmd):
                p = run_cli(cmd, check=False)
                self.assertEqual(p.returncode, 2)
                self.assertEqual(p.stdout, "")
                self.assertRegex(p.stderr, r"usage: sarye %s <(sub)?command>" % cmd)
                for s in subs:  # "plugin check", or "  check" in the plugin kit's own list
                    self.assertRegex(p.stderr, r"(%s|\n ) %s " % (cmd, s))
        p = run_cli("plugin", "frobnicate", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown subcommand 'frobnicate'", p.stderr)

    def test_unknown_command_and_option(self):
        p = run_cli("frobnicate", "--help", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command 'frobnicate'", p.stderr)
        p = run_cli("serve", "--frob", check=False)
        self.assertEqual(p.returncode, 2)
        p = run_cli("help", "frobnicate", check=False)
        self.assertEqual(p.returncode, 2)
        p = run_cli("backup", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("needs the FILE", p.stderr)


class ConfigCheckTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sarye-conf-")
        self.addCleanup(self.tmp.cleanup)

    def write(self, text):
        path = os.path.join(self.tmp.name, "s.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_bundled_config_is_valid(self):
        p = run_cli("config", "check", os.path.join(SOURCE, "config", "sarye.conf"))
        self.assertRegex(p.stdout, r"is valid \(\d+ settings\)")

    def test_every_problem_named_with_its_line(self):
        path = self.write("listen = 127.0.0.1:8080\n"
                          "threds = 4\n"            # 2: a typo
                          "log.format = xml\n"      # 3: a bad value
                          "just some words\n"       # 4: not key = value
                          "http.trusted_proxies = 10.0.0.1, ::1\n"
                          "http.trusted_proxies = example.com\n"  # 6: not an address
                          "durabilty = full\n")     # 7: another typo
        p = run_cli("config", "check", path, check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("unknown configuration key 'threds' (did you mean 'threads'?) from %s:2" % path, p.stderr)
        self.assertIn("'log.format': 'xml' (expected json or text) from %s:3" % path, p.stderr)
        self.assertIn("%s:4: expected 'key = value'" % path, p.stderr)
        self.assertIn("'http.trusted_proxies': 'example.com'", p.stderr)
        self.assertIn("from %s:6" % path, p.stderr)
        self.assertIn("(did you mean 'durability'?) from %s:7" % path, p.stderr)
        self.assertIn("5 problems", p.stderr)

    def test_environment_is_checked(self):
        path = self.write("threads = 8\n")
        p = run_cli("config", "check", path, env={"SARYE_THREADS": "0"}, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("environment SARYE_THREADS", p.stderr)
        p = run_cli("config", "check", path, env={"SARYE_LOG_FORMAT": "json"})
        self.assertIn("is valid (1 setting, and the SARYE_* environment)", p.stdout)

    def test_serve_refuses_an_unknown_key_with_a_suggestion(self):
        path = self.write("lisen = 127.0.0.1:0\n")
        p = subprocess.run([BIN, "serve", "--config", path], env=clean_env(), capture_output=True, text=True,
                           timeout=60 * SCALE, cwd=self.tmp.name)
        self.assertEqual(p.returncode, 1)
        self.assertIn("unknown configuration key 'lisen' (did you mean 'listen'?)", p.stderr)


class Writers:
    """Threads creating persons (with a sealed RRN) and a case for each, as
    fast as the server answers; every acknowledged person is recorded with
    the monotonic time its 201 arrived."""

    def __init__(self, server, token, n=4):
        self.server, self.token = server, token
        self.acked = []  # (t, person_id, name)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(n)]

    def run(self, i):
        c = self.server.client(token=self.token)
        k = 0
        try:
            while not self.stop.is_set():
                k += 1
                name = unique_hangul(4)
                birth = datetime.date(1950 + (k % 50), 1 + (k % 12), 1 + (k % 28))
                r = c.post("/v1/persons", {"name": name, "birth_date": birth.isoformat(), "sex": "F",
                                           "rrn": make_rrn(birth, "F", serial="%05d" % (i * 10000 + k % 10000))})
                if r.status != 201:
                    self.errors.append(r)
                    return
                now = time.monotonic()
                with self.lock:
                    self.acked.append((now, r.json["id"], name))
                if k % 3 == 0:
                    r = c.post("/v1/cases", {"person_id": r.json["id"], "program": "integrated", "source": "walk_in"})
                    if r.status != 201:
                        self.errors.append(r)
                        return
        except Exception as e:  # the server stopping under us ends the run
            if not self.stop.is_set():
                self.errors.append(e)
        finally:
            c.close()

    def start(self):
        for t in self.threads:
            t.start()

    def count(self):
        with self.lock:
            return len(self.acked)

    def wait_for(self, n, timeout=120):
        deadline = time.monotonic() + timeout * SCALE
        while self.count() < n:
            if self.errors:
                raise AssertionError("a writer failed: %r" % self.errors[0])
            if time.monotonic() > deadline:
                raise AssertionError("only %d writes acknowledged in %d s" % (self.count(), timeout))
            time.sleep(0.02)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60 * SCALE)


class BackupRestoreTest(unittest.TestCase):
    def setUp(self):
        self.server = Server()
        self.addCleanup(self.server.close)
        s = self.server
        s.org_create(ORG1, "상도1동 행정복지센터", "emd", REGION, ["integrated"])
        self.worker = s.token_create("w", "worker", ORG1)
        self.auditor = s.token_create("a", "auditor", ORG1)
        self.backup = os.path.join(s.dir, "backups", "sarye-backup.db")
        os.makedirs(os.path.dirname(self.backup))

    def cli(self, *args, check=True, db=None):
        return run_cli(*args, db=db or self.server.db, check=check, cwd=self.server.dir)

    def test_backup_under_load_then_restore(self):
        s = self.server
        w = Writers(s, self.worker)
        w.start()
        try:
            w.wait_for(40)
            t0 = time.monotonic()
            with w.lock:
                before = [x for x in w.acked if x[0] < t0]
            p = self.cli("backup", self.backup)
            t1 = time.monotonic()
            # the server keeps serving: writes go on after the backup too
            w.wait_for(w.count() + 20)
        finally:
            w.finish()
        self.assertFalse(w.errors, w.errors[:1])
        self.assertIn("backup written: %s" % self.backup, p.stdout)
        key = os.path.realpath(os.path.join(s.dir, "sarye.key"))
        self.assertIn("the key is NOT in the backup", p.stdout)
        self.assertIn(key, p.stdout)
        self.assertIn("not in the same place", p.stdout)
        self.assertEqual(os.stat(self.backup).st_mode & 0o777, 0o600)
        # the backup is the database alone: no key, no WAL beside it
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.backup))), ["sarye-backup.db"])
        with open(self.backup, "rb") as f, open(key, "rb") as k:
            self.assertNotIn(k.read(), f.read())
        with w.lock:
            after = [x for x in w.acked if x[0] > t1]
        self.assertTrue(after)
        print("backup: %.2f s with %d writers running; %d persons acknowledged before it, %d after"
              % (t1 - t0, len(w.threads), len(before), len(after)))

        # a restore while the server runs is refused
        p = self.cli("restore", self.backup, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("a sarye server is using", p.stderr)
        self.assertEqual(s.stop(), 0)

        p = self.cli("restore", self.backup)
        self.assertIn("restored %s into %s" % (self.backup, s.db), p.stdout)
        self.assertIn("kept as %s.before-restore" % s.db, p.stdout)
        self.assertTrue(os.path.exists(s.db + ".before-restore"))
        # the newer database's audit anchor is kept aside with it: the restored trail verifies
        self.assertIn("audit anchor of the database it replaced is kept as", p.stdout)
        db = sqlite3.connect(s.db)
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        self.assertEqual(db.execute("PRAGMA foreign_key_check").fetchall(), [])  # one consistent snapshot
        db.close()
        self.assertIn("audit trail verified", self.cli("audit", "verify").stdout)

        s.start()
        c = s.client(token=self.worker)
        for _, pid, name in before:  # every write acknowledged before the backup
            r = c.get("/v1/persons/" + pid)
            self.assertEqual(r.status, 200, r.text)
            self.assertEqual(r.json["name"], name)
            self.assertRegex(r.json["rrn"], r"^\d{6}-[1-4]\*{6}$")
        for _, pid, _ in after:  # and nothing written after it ended
            self.assertEqual(c.get("/v1/persons/" + pid).status, 404)
        c.close()
        self.assertEqual(s.stop(), 0)
        self.assertFalse(s.sanitizer_reports(s.logs[-1]))

    def test_restore_refusals(self):
        s = self.server
        c = s.client(token=self.worker)
        birth = datetime.date(1960, 5, 5)
        r = c.post("/v1/persons", {"name": "홍길동", "birth_date": birth.isoformat(), "sex": "M",
                                   "rrn": make_rrn(birth, "M")})
        self.assertEqual(r.status, 201, r.text)
        c.close()
        self.cli("backup", self.backup)
        # never over an existing file
        p = self.cli("backup", self.backup, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("exists already", p.stderr)
        self.assertEqual(s.stop(), 0)

        other = os.path.join(s.dir, "other")
        os.makedirs(other)
        # no key where the restored database will look for it
        p = self.cli("restore", self.backup, db=os.path.join(other, "t.db"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no key file at %s" % os.path.join(other, "sarye.key"), p.stderr)
        # another key: its numbers do not open
        self.cli("migrate", db=os.path.join(other, "fresh.db"))  # makes other/sarye.key
        p = self.cli("restore", self.backup, db=os.path.join(other, "t.db"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("is not the key", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(other, "t.db")))
        # the right key, copied from where it was kept: restored
        shutil.copy(os.path.join(s.dir, "sarye.key"), os.path.join(other, "sarye.key"))
        p = self.cli("restore", self.backup, db=os.path.join(other, "t.db"))
        self.assertNotIn("before-restore", p.stdout)  # nothing was there to replace

        # a newer schema
        newer = os.path.join(s.dir, "newer.db")
        shutil.copy(self.backup, newer)
        db = sqlite3.connect(newer)
        db.execute("INSERT INTO schema_migrations VALUES (999, '2030-01-01T00:00:00Z')")
        db.commit()
        db.close()
        p = self.cli("restore", newer, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("schema version 999", p.stderr)
        # not a database, and a damaged one
        junk = os.path.join(s.dir, "junk.db")
        with open(junk, "wb") as f:
            f.write(b"not a database at all" * 100)
        p = self.cli("restore", junk, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("refused", p.stderr)
        damaged = os.path.join(s.dir, "damaged.db")
        with open(self.backup, "rb") as f:
            data = bytearray(f.read())
        for i in range(4096, min(len(data), 4096 * 3)):  # page 2 and 3 overwritten
            data[i] = 0x5a
        with open(damaged, "wb") as f:
            f.write(data)
        p = self.cli("restore", damaged, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("refused", p.stderr)
        # none of this touched the database
        db = sqlite3.connect(s.db)
        self.assertEqual(db.execute("SELECT COUNT(*) FROM persons").fetchone()[0], 1)
        db.close()

    def test_server_will_not_start_during_a_restore(self):
        # a restore holds the database exclusively while it swaps the file
        self.assertEqual(self.server.stop(), 0)
        import fcntl
        fd = os.open(self.server.db, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            p = subprocess.run(self.server.command(), env=clean_env(), cwd=self.server.dir, capture_output=True,
                               text=True, timeout=60 * SCALE)
            self.assertEqual(p.returncode, 1)
            self.assertIn("is being restored", p.stderr)
        finally:
            os.close(fd)


class LogJsonTest(unittest.TestCase):
    def test_every_line_is_a_json_object(self):
        s = Server(env={"SARYE_LOG_FORMAT": "json"})
        try:
            c = s.client()
            c.get("/healthz", headers={"X-Request-Id": "12345"})
            c.get('/v1/cases/"quoted"x', token="nope")
            c.close()
            self.assertTrue(s.wait_for_log('"req":"12345"'))
            self.assertTrue(s.wait_for_log('"status":401'))
            self.assertEqual(s.stop(), 0)
            lines = [l for l in s.logs[-1].splitlines() if l.strip()]
            self.assertGreater(len(lines), 4)
            for line in lines:
                rec = json.loads(line)
                self.assertIsInstance(rec, dict)
                for k in ("ts", "level", "msg"):
                    self.assertIsInstance(rec[k], str, line)
            reqs = [json.loads(l) for l in lines if '"msg":"request"' in l]
            hz = [r for r in reqs if r["req"] == "12345"][0]
            self.assertEqual(hz["status"], 200)
            self.assertEqual(hz["path"], "/healthz")
            self.assertEqual(hz["route"], "/healthz")
            self.assertIsInstance(hz["dur_ms"], float)
            self.assertEqual(hz["client"], "127.0.0.1")
            bad = [r for r in reqs if r["status"] == 401][0]
            self.assertEqual(bad["error"], "unauthorized")
            self.assertIn('"quoted"', bad["path"])
        finally:
            s.close()


class ProxyTest(unittest.TestCase):
    def client_of(self, server, xff):
        rid = "px-%d" % time.monotonic_ns()
        c = server.client()
        c.get("/healthz", headers={"X-Request-Id": rid, "X-Forwarded-For": xff})
        c.close()
        self.assertTrue(server.wait_for_log("req=%s " % rid))
        line = [l for l in server.log.splitlines() if "req=%s " % rid in l][0]
        return re.search(r" client=(\S+)", line).group(1)

    def test_forwarded_for_believed_only_from_trusted_proxies(self):
        s = Server(env={"SARYE_HTTP_TRUSTED_PROXIES": "127.0.0.1, ::1"})
        try:
            self.assertEqual(self.client_of(s, "198.51.100.7"), "198.51.100.7")
            # the right-most entry that is not a trusted proxy; left of it is the client's own word
            self.assertEqual(self.client_of(s, "203.0.113.9, 198.51.100.7, 127.0.0.1"), "198.51.100.7")
            self.assertEqual(self.client_of(s, "not-an-address"), "127.0.0.1")
            self.assertEqual(self.client_of(s, "2001:db8::1"), "2001:db8::1")
        finally:
            s.close()
        s = Server()
        try:
            self.assertEqual(self.client_of(s, "198.51.100.7"), "127.0.0.1")
        finally:
            s.close()

    def test_trusted_proxy_is_not_held_to_the_per_address_limit(self):
        for trusted, expect_all in (("127.0.0.1", True), (None, False)):
            env = {"SARYE_HTTP_MAX_PER_ADDRESS": "2"}
            if trusted:
                env["SARYE_HTTP_TRUSTED_PROXIES"] = trusted
            s = Server(env=env)
            clients = []
            try:
                ok = 0
                for _ in range(4):
                    c = s.client(retry=False, timeout=5 * SCALE)
                    clients.append(c)
                    try:
                        if c.get("/healthz").status == 200:
                            ok += 1
                    except (OSError, Exception):
                        pass
                if expect_all:
                    self.assertEqual(ok, 4)
                else:
                    self.assertEqual(ok, 2)
            finally:
                for c in clients:
                    c.close()
                s.close()


class CommandBesideServerTest(unittest.TestCase):
    """A command run beside a live server (here `sarye token create`) never
    waits on the server's readers as it closes, nor makes the server's
    writer wait: it folds back only the part of the log no one reads."""

    def test_token_create_beside_a_long_reader(self):
        s = Server()
        reader = None
        try:
            s.org_create("bs-sangdo", "상도4동 행정복지센터", "emd", REGION, ["integrated"])
            client = s.client(token=s.token_create("bs-w", "worker", "bs-sangdo"))
            person = {"birth_date": "1970-01-02", "sex": "M"}
            r = client.post("/v1/persons", dict(person, name="김일번"))
            self.assertEqual(r.status, 201, r.text)
            # A reader (a report, a backup's snapshot) holds the log as it is now.
            reader = sqlite3.connect(s.db, isolation_level=None)
            reader.execute("BEGIN")
            self.assertEqual(reader.execute("SELECT count(*) FROM persons").fetchone()[0], 1)
            r = client.post("/v1/persons", dict(person, name="김이번"))
            self.assertEqual(r.status, 201, r.text)
            # Told to wait ten minutes for a lock, the command would hang
            # here until the reader ends if it waited for readers at all.
            p = s.run_cli("token", "create", "--user", "bs-op", "--role", "operator",
                          env={"SARYE_BUSY_TIMEOUT_MS": "600000"})
            self.assertRegex(p.stdout.strip(), r"^\S+$")
            r = client.post("/v1/persons", dict(person, name="김삼번"))
            self.assertEqual(r.status, 201, r.text)
            self.assertEqual(reader.execute("SELECT count(*) FROM persons").fetchone()[0], 1)
            reader.execute("COMMIT")
            self.assertEqual(client.get("/v1/persons/" + r.json["id"]).status, 200)
            client.close()
        finally:
            if reader is not None:
                reader.close()
            s.close()


class LimitedServer(Server):
    """A server started under `ulimit` options (a shell's, then exec)."""

    def __init__(self, ulimit, **kw):
        self.ulimit = ulimit
        super().__init__(**kw)

    def command(self):
        return ["sh", "-c", 'ulimit %s && exec "$@"' % self.ulimit, "sh"] + super().command()

    def open_files(self):
        with open("/proc/%d/limits" % self.proc.pid) as f:
            line = [l for l in f if l.startswith("Max open files")][0]
        return [int(x) if x.isdigit() else x for x in line.split()[3:5]]


class OpenFilesTest(unittest.TestCase):
    def test_soft_limit_raised_to_the_hard_one(self):
        s = LimitedServer("-Sn 100")
        try:
            soft, hard = s.open_files()
            self.assertEqual(soft, hard)
            self.assertGreater(hard, 100)
            self.assertIn('msg="open files limit raised" from=100 to=%s' % hard, s.log)
            self.assertNotIn("open files limit too low", s.log)
        finally:
            s.close()

    def test_a_limit_too_low_is_said_at_start_and_costs_503s_not_the_server(self):
        s = LimitedServer("-n 100", env={"SARYE_THREADS": "64", "SARYE_HTTP_MAX_PER_ADDRESS": "0"})
        clients = []
        try:
            self.assertEqual(s.open_files(), [100, 100])
            self.assertIn('msg="open files limit too low" limit=100 needed=256 threads=64', s.log)
            s.org_create("of-sangdo", "상도3동 행정복지센터", "emd", REGION, ["integrated"])
            token = s.token_create("of-w", "worker", "of-sangdo")
            c = s.client(token=token)
            clients.append(c)
            r = c.post("/v1/persons", {"name": "김영수", "birth_date": "1970-01-02", "sex": "M"})
            self.assertEqual(r.status, 201, r.text)
            pid = r.json["id"]
            # Forty-five connections held open at once, each on a worker of
            # its own: their sockets and the workers' store connections
            # (two descriptors each) need some 150 descriptors more.
            statuses = []
            for _ in range(45):
                c = s.client(token=token, retry=False)
                clients.append(c)
                r = c.get("/v1/persons/" + pid)
                statuses.append(r.status if r.status == 200 else (r.status, r.json["error"]["code"],
                                                                  r.header("Retry-After")))
            self.assertEqual(set(statuses) - {200, (503, "store_unavailable", "1")}, set(), statuses)
            self.assertIn((503, "store_unavailable", "1"), statuses)
            self.assertTrue(s.alive())
            for c in clients[1:]:
                c.close()
            del clients[1:]
            c = s.client(token=token)
            clients.append(c)
            r = c.get("/v1/persons/" + pid)
            self.assertEqual(r.status, 200, r.text)
            self.assertEqual(s.stop(), 0, s.log[-2000:])
        finally:
            for c in clients:
                c.close()
            s.close()


class MessagesTest(ApiTest):
    def test_korean_when_preferred(self):
        for al, korean in (("ko", True), ("ko-KR,ko;q=0.9,en;q=0.8", True), ("en;q=0.5, ko;q=0.9", True),
                           ("en-US,en;q=0.9,ko;q=0.8", False), (None, False), ("*", False), ("ko;q=0", False)):
            with self.subTest(accept_language=al):
                r = self.client.get("/v1/cases", token="", headers={"Accept-Language": al})
                err = self.assertError(r, 401, "unauthorized")
                if korean:
                    self.assertEqual(err["message"], "인증 토큰이 없거나 유효하지 않습니다")
                    self.assertIn("Bearer", err["details"]["message_en"])
                    self.assertEqual(r.header("Content-Language"), "ko")
                else:
                    self.assertIn("Bearer", err["message"])
                    self.assertNotIn("message_en", err["details"])
                    self.assertIsNone(r.header("Content-Language"))
                self.assertIn("Accept-Language", r.header("Vary"))

    def test_korean_message_names_the_field(self):
        r = self.client.post("/v1/persons", {"name": "가" * 300, "birth_date": "1980-01-01", "sex": "F"},
                             token=self.worker1, headers={"Accept-Language": "ko"})
        err = self.assertError(r, 400, "validation_failed", field="name")
        self.assertEqual(err["message"], "입력값이 올바르지 않습니다 (항목: name)")
        self.assertIn("at most", err["details"]["message_en"])
        r = self.client.request("PATCH", "/v1/persons", token=self.worker1, headers={"Accept-Language": "ko"})
        err = self.assertError(r, 405, "method_not_allowed")
        self.assertEqual(sorted(err["details"]["allowed"]), ["GET", "POST"])
        self.assertEqual(err["message"], "이 주소에서 허용되지 않는 메서드입니다 (허용: %s)"
                         % ", ".join(err["details"]["allowed"]))

    def test_location_on_201(self):
        p = self.make_person()
        r = self.client.post("/v1/persons", {"name": unique_hangul(3), "birth_date": "1990-02-02", "sex": "M"},
                             token=self.worker1)
        self.assertEqual(r.status, 201)
        self.assertEqual(r.header("Location"), "/v1/persons/" + r.json["id"])
        self.assertEqual(self.client.get(r.header("Location"), token=self.worker1).status, 200)
        r = self.client.post("/v1/cases", {"person_id": p["id"], "program": "integrated", "source": "walk_in"},
                             token=self.worker1, headers={"Idempotency-Key": "loc-1"})
        self.assertEqual(r.header("Location"), "/v1/cases/" + r.json["id"])
        again = self.client.post("/v1/cases", {"person_id": p["id"], "program": "integrated", "source": "walk_in"},
                                 token=self.worker1, headers={"Idempotency-Key": "loc-1"})
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        self.assertEqual(again.header("Location"), r.header("Location"))
        # created but not readable on its own: no Location
        r = self.client.post("/v1/tokens", {"user": "x", "role": "worker", "org": ORG1}, token=self.admin1)
        self.assertEqual(r.status, 201)
        self.assertIsNone(r.header("Location"))


class DrainTest(unittest.TestCase):
    def test_503_while_draining_says_when_to_retry(self):
        s = Server()
        try:
            s.org_create(ORG1, "상도1동", "emd", REGION, ["integrated"])
            admin = s.token_create("a", "admin", ORG1)
            # a request in flight (its body not yet sent) keeps the server draining
            slow = socket.create_connection((s.host, s.port), timeout=30 * SCALE)
            slow.sendall(b"POST /v1/orgs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Authorization: Bearer " + admin.encode() + b"\r\nContent-Length: 2\r\n\r\n")
            c = s.client(retry=False)
            deadline = time.monotonic() + 30 * SCALE
            while True:  # in flight: this /metrics and the slow one
                m = re.search(r"^sarye_http_inflight (\d+)", c.get("/metrics").text, re.M)
                if int(m.group(1)) >= 2:
                    break
                self.assertLess(time.monotonic(), deadline, "the slow request never got in flight")
                time.sleep(0.02)
            c.close()
            s.signal(signal.SIGTERM)
            self.assertTrue(s.wait_for_log('msg="draining"'))
            c = s.client(retry=False)
            r = c.get("/readyz", headers={"Accept-Language": "ko"})
            c.close()
            self.assertEqual(r.status, 503)
            self.assertEqual(r.json["error"]["code"], "shutting_down")
            self.assertEqual(r.header("Retry-After"), "1")
            self.assertEqual(r.header("Content-Language"), "ko")
            slow.sendall(b"{}")
            slow.recv(4096)
            slow.close()
            self.assertEqual(s.wait_exit(), 0)
        finally:
            s.close()


PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1


def deny_write_execute():
    """The kernel's W^X for this process and what it executes (Linux 6.3+),
    as systemd's MemoryDenyWriteExecute=yes asks."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        os._exit(77)


class ServiceTest(unittest.TestCase):
    def test_systemd_unit_verifies(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        with open(os.path.join(SOURCE, "config", "sarye.service"), encoding="utf-8") as f:
            unit = f.read()
        for key in ("ProtectSystem=strict", "ReadWritePaths=/var/lib/sarye", "NoNewPrivileges=yes", "PrivateTmp=yes",
                    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service",
                    "MemoryDenyWriteExecute=yes", "User=sarye"):
            self.assertIn("\n" + key + "\n", unit)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "sarye.service")
            with open(path, "w", encoding="utf-8") as f:
                f.write(unit.replace("/usr/local/bin/sarye", BIN))
            p = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                               timeout=120 * SCALE)
            # verify says "ignoring" for what it cannot parse, and still exits 0
            problems = [l for l in (p.stdout + p.stderr).splitlines() if path in l or "sarye.service" in l]
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(problems, [])

    def test_serves_plugins_with_write_execute_denied(self):
        # MemoryDenyWriteExecute=yes in the unit: LuaJIT's compiler is off, so
        # no page is ever made writable and executable. Run the server as the
        # kernel enforces it, and make it run plugins (a transition, a reload).
        probe = subprocess.run(["python3", "-c",
                                "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ|mmap.PROT_WRITE|mmap.PROT_EXEC)"],
                               preexec_fn=deny_write_execute, capture_output=True)
        if probe.returncode == 77:
            self.skipTest("this kernel has no PR_SET_MDWE (Linux 6.3+)")
        self.assertNotEqual(probe.returncode, 0, "W^X is not enforced across exec")
        s = Server(start=False)
        real_popen = subprocess.Popen

        def popen(*a, **kw):
            kw["preexec_fn"] = deny_write_execute
            return real_popen(*a, **kw)

        subprocess.Popen = popen
        try:
            s.start()
        finally:
            subprocess.Popen = real_popen
        try:
            s.org_create("mdwe-org", "W^X 동", "emd", REGION, ["integrated"])
            tok = s.token_create("w", "worker", "mdwe-org")
            adm = s.token_create("op", "operator")
            c = s.client(token=tok)
            p = c.post("/v1/persons", {"name": "가나다", "birth_date": "1970-01-01", "sex": "F"}).json
            case = c.post("/v1/cases", {"person_id": p["id"], "program": "integrated", "source": "walk_in"}).json
            for _ in range(200):  # hot enough that a JIT would compile it
                r = c.get("/v1/programs/integrated?region=11590")
                self.assertEqual(r.status, 200)
            r = c.post("/v1/cases/%s/transitions" % case["id"], {"to": "initial_counseling", "version": 1})
            self.assertEqual(r.status, 200, r.text)
            r = c.post("/v1/admin/plugins/reload", token=adm)
            self.assertEqual(r.status, 200, r.text)
            c.close()
            self.assertEqual(s.stop(), 0)
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main()
