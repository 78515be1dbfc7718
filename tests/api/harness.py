"""
harness.py: a real `sarye serve` on a free loopback port, driven over real
HTTP. Python 3 standard library only.

Environment:
  SARYE_TEST_BIN     the binary (default /work/main/build/sarye)
  SARYE_TEST_SOURCE  the source tree, for plugins/ (default /work/main)
  SARYE_TEST_TIMEOUT_SCALE  multiplies every timeout (default 1; sanitizer
                     builds are slower, and the defaults are already generous)

What it gives:
  Server        one server process on a temp dir: start, stop(sig), restart,
                its log text; CLI helpers (org_create, token_create, run_cli)
  Client        a keep-alive HTTP client: get/post/request -> Response
  raw_request   one request over a plain socket, read to EOF (for exact
                framing checks: Content-Length, what CivetWeb itself answers)
  plugin_dir    a temporary copy of the bundled plugins with files of a
                test's own laid over it
  ApiTest       a unittest base class: one server per test class, two orgs,
                tokens for each role, make_person / make_case helpers and
                error-shape assertions
"""
import datetime
import http.client
import json
import os
import random
import re
import signal
import signal as _signal  # Server.signal() shadows the name in the class body
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

BIN = os.environ.get("SARYE_TEST_BIN", "/work/main/build/sarye")
SOURCE = os.environ.get("SARYE_TEST_SOURCE", "/work/main")


def plugin_dir(prefix, files):
    """A temporary copy of the bundled plugins with files ({path under
    plugins/: Lua text}) written over it; the caller removes it."""
    path = tempfile.mkdtemp(prefix=prefix)
    shutil.copytree(os.path.join(SOURCE, "plugins"), path, dirs_exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(path, name), "w", encoding="utf-8") as f:
            f.write(text)
    return path
SCALE = float(os.environ.get("SARYE_TEST_TIMEOUT_SCALE", "1") or "1")

START_TIMEOUT = 20 * SCALE
STOP_TIMEOUT = 60 * SCALE
HTTP_TIMEOUT = 30 * SCALE
CLI_TIMEOUT = 60 * SCALE

# logfmt (msg="listening" addr=H:P) or JSON ("msg":"listening","addr":"H:P")
LISTEN_RE = re.compile(r'msg"?[=:]"listening"[ ,]"?addr"?[=:]"?([0-9.]+):(\d+)')
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")

KST = datetime.timezone(datetime.timedelta(hours=9))


def today_kst():
    return datetime.datetime.now(KST).date()


def clean_env(extra=None):
    """The test's environment without any SARYE_* setting (so the caller's
    shell cannot change what the server does), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SARYE_")}
    env.setdefault("LANG", "C.UTF-8")
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


class ServerError(Exception):
    pass


class Server:
    """`sarye serve --listen 127.0.0.1:0 --db <tmp>/t.db --plugins <source>/plugins`.

    extra_args are appended to the command line, env is added to a clean
    environment. The server runs with its cwd in the temp dir, so a stray
    config/sarye.conf in the test's cwd is never picked up.
    """

    def __init__(self, extra_args=(), env=None, db=None, plugins=None, start=True, tmpdir=None):
        self._tmp = None
        if tmpdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sarye-api-")
            tmpdir = self._tmp.name
        self.dir = tmpdir
        self.db = db or os.path.join(self.dir, "t.db")
        self.plugins = plugins or os.path.join(SOURCE, "plugins")
        self.extra_args = list(extra_args)
        # Tests drive one token hard; the rate limit has its own test.
        self.env = dict({"SARYE_RATE_LIMIT_PER_MINUTE": "0"}, **(env or {}))
        self.proc = None
        self.port = None
        self.host = "127.0.0.1"
        self._lines = []
        self._lock = threading.Lock()
        self._reader = None
        self.logs = []  # the log text of every run so far, oldest first
        if start:
            try:
                self.start()
            except BaseException:
                self.close()
                raise

    # ---- lifecycle ----
    def command(self):
        return [BIN, "serve", "--listen", "127.0.0.1:0", "--db", self.db,
                "--plugins", self.plugins] + self.extra_args

    def start(self):
        if self.proc is not None and self.proc.poll() is None:
            raise ServerError("already running")
        self._lines = []
        listening = threading.Event()
        self.proc = subprocess.Popen(self.command(), cwd=self.dir, env=clean_env(self.env),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        found = {}

        def drain(proc=self.proc, lines=self._lines):
            for raw in iter(proc.stderr.readline, b""):
                line = raw.decode("utf-8", "replace")
                with self._lock:
                    lines.append(line)
                if not listening.is_set():
                    m = LISTEN_RE.search(line)
                    if m:
                        found["port"] = int(m.group(2))
                        listening.set()
            proc.stderr.close()
            listening.set()  # EOF: wake the waiter, it looks at found/poll()

        self._reader = threading.Thread(target=drain, name="sarye-stderr", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not listening.wait(0.05):
            if time.monotonic() > deadline:
                break
            if self.proc.poll() is not None:
                # exited; let the reader catch the last lines
                self._reader.join(2)
                break
        if "port" not in found:
            try:
                rc = self.proc.wait(2 if listening.is_set() else 0.01)
            except subprocess.TimeoutExpired:
                rc = None
            if rc is None:
                self.proc.kill()
                self.proc.wait(10)
                why = "did not log msg=\"listening\" within %.0f s" % START_TIMEOUT
            else:
                why = "exited with %d before listening" % rc
            self._reader.join(5)
            text = self.log
            self.logs.append(text)
            raise ServerError("sarye serve %s\ncommand: %s\nstderr:\n%s"
                              % (why, " ".join(self.command()), text))
        self.port = found["port"]
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=_signal.SIGTERM, timeout=None):
        """Sends sig, waits for the exit and returns the exit code. A server
        that does not exit in time is killed and the test fails."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout or STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            self._reader.join(5)
            self.logs.append(self.log)
            raise ServerError("sarye did not exit within %.0f s of signal %s\nstderr:\n%s"
                              % (timeout or STOP_TIMEOUT, sig, self.log))
        self._reader.join(10)
        self.logs.append(self.log)
        return rc

    def wait_exit(self, timeout=None):
        rc = self.proc.wait(timeout or STOP_TIMEOUT)
        self._reader.join(10)
        return rc

    def restart(self):
        """Stops (if running) and starts again on the same db; returns the
        exit code of the stop (None if it was not running)."""
        rc = None
        if self.alive():
            rc = self.stop()
        self.start()
        return rc

    def close(self):
        """Stops without asserting anything and removes the temp dir."""
        try:
            if self.alive():
                self.stop(signal.SIGKILL, timeout=10)
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    @property
    def log(self):
        with self._lock:
            return "".join(self._lines)

    def sanitizer_reports(self, text=None):
        text = self.log if text is None else text
        return [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKS)]

    def wait_for_log(self, needle, timeout=10):
        deadline = time.monotonic() + timeout * SCALE
        while time.monotonic() < deadline:
            if needle in self.log:
                return True
            time.sleep(0.02)
        return False

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def client(self, **kw):
        """A Client that follows this server across restarts (the port is
        looked up at each connect)."""
        return Client(self.host, lambda: self.port, **kw)

    # ---- CLI ----
    def run_cli(self, *args, env=None, check=True, timeout=None):
        return run_cli(*args, db=self.db, env=env, check=check, timeout=timeout, cwd=self.dir)

    def org_create(self, id, name, type, region, programs=()):
        args = ["org", "create", "--id", id, "--name", name, "--type", type, "--region", str(region)]
        for p in programs:
            args += ["--program", p]
        return json.loads(self.run_cli(*args).stdout)

    def token_create(self, user, role, org=None, ttl_days=None):
        """A token from the command line (org None: a system operator's)."""
        args = ["token", "create", "--user", user, "--role", role]
        if org is not None:
            args += ["--org", org]
        if ttl_days is not None:
            args += ["--ttl-days", str(ttl_days)]
        out = self.run_cli(*args).stdout
        token = out.strip()
        if not token or "\n" in token:
            raise ServerError("token create printed %r" % out)
        return token


def run_cli(*args, db=None, env=None, check=True, timeout=None, cwd=None):
    """Runs `sarye args... [--db db]`; returns the CompletedProcess (text)."""
    cmd = [BIN] + list(args) + (["--db", db] if db else [])
    p = subprocess.run(cmd, env=clean_env(env), cwd=cwd or tempfile.gettempdir(),
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout or CLI_TIMEOUT)
    p.stdout = p.stdout.decode("utf-8", "replace")
    p.stderr = p.stderr.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise ServerError("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                          % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p


# ---- HTTP ----
class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage (case-insensitive get)
        self.body = body        # bytes
        self.text = body.decode("utf-8", "replace")
        self.json = None
        ctype = (headers.get("Content-Type") or "").lower()
        if body and "json" in ctype:
            try:
                self.json = json.loads(body.decode("utf-8"))
            except ValueError:
                self.json = None

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return "<Response %d %s>" % (self.status, self.text[:300])


class Client:
    """A keep-alive HTTP/1.1 client. A request on a reused connection that
    the server had closed meanwhile is sent again on a new connection (only
    when nothing of the answer was received); retry=False turns that off.
    `connects` counts the TCP connections opened."""

    RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                 http.client.CannotSendRequest, http.client.BadStatusLine,
                 ConnectionAbortedError)

    def __init__(self, host, port, token=None, timeout=None, retry=True):
        self.host, self.port = host, port
        self.token = token
        self.timeout = timeout or HTTP_TIMEOUT
        self.retry = retry
        self.conn = None
        self.connects = 0
        self._last = 0.0
        self._reused = False

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _connect(self):
        self.close()
        port = self.port() if callable(self.port) else self.port
        self.conn = http.client.HTTPConnection(self.host, port, timeout=self.timeout)
        self.conn.connect()
        self.connects += 1
        self._reused = False

    def request(self, method, path, body=None, token=None, headers=None, raw=None,
                query=None, chunked=False):
        """body: a JSON value (sent as UTF-8 JSON); raw: bytes sent as is
        (Content-Type only if headers give one); chunked: send raw/body as
        Transfer-Encoding: chunked (raw may then be an iterable of bytes)."""
        if query:
            path = path + ("&" if "?" in path else "?") + urllib.parse.urlencode(query)
        hdrs = {}
        tok = token if token is not None else self.token
        if tok:
            hdrs["Authorization"] = "Bearer " + tok
        data = None
        if raw is not None:
            data = raw
        elif body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            hdrs["Content-Type"] = "application/json; charset=utf-8"
        if headers:
            for k, v in headers.items():
                if v is None:
                    hdrs.pop(k, None)
                else:
                    hdrs[k] = v
        # The server closes idle keep-alive connections after 5 s.
        if self.conn is not None and time.monotonic() - self._last > 4.0:
            self.close()
        for attempt in (0, 1):
            if self.conn is None:
                self._connect()
            try:
                if chunked:
                    chunks = [data] if isinstance(data, (bytes, bytearray)) else data
                    self.conn.request(method, path, body=chunks, headers=hdrs, encode_chunked=True)
                else:
                    self.conn.request(method, path, body=data, headers=hdrs)
                resp = self.conn.getresponse()
                payload = resp.read()
            except self.RETRYABLE:
                reused = self._reused
                self.close()
                if attempt == 0 and self.retry and reused:
                    continue
                raise
            except Exception:
                self.close()
                raise
            self._reused = True
            self._last = time.monotonic()
            if resp.will_close:
                self.close()
            return Response(resp.status, resp.reason, resp.headers, payload)
        raise AssertionError("unreachable")

    def get(self, path, body=None, token=None, headers=None, raw=None, query=None):
        return self.request("GET", path, body=body, token=token, headers=headers, raw=raw, query=query)

    def post(self, path, body=None, token=None, headers=None, raw=None, query=None, chunked=False):
        return self.request("POST", path, body=body, token=token, headers=headers, raw=raw,
                            query=query, chunked=chunked)


def raw_request(host, port, data, timeout=None, shut_write=False):
    """Sends bytes on a fresh socket and reads until EOF (or timeout).
    Returns the list of parsed responses: (status, headers{lower: value},
    body bytes), plus whatever could not be parsed as .rest on the list.
    Response bodies are delimited by Content-Length only; a response without
    one takes the rest of the stream."""
    s = socket.create_connection((host, port), timeout=timeout or HTTP_TIMEOUT)
    out = b""
    try:
        try:
            s.sendall(data)
            if shut_write:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return parse_responses(out)


class RawResponses(list):
    rest = b""
    data = b""


def parse_responses(data):
    res = RawResponses()
    res.data = data
    buf = data
    while buf:
        head, sep, tail = buf.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            break
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        if "content-length" in headers:
            n = int(headers["content-length"])
            body, buf = tail[:n], tail[n:]
            headers["_actual_body_length"] = str(len(body))
        else:
            body, buf = tail, b""
        res.append((status, headers, body))
    res.rest = buf
    return res


# ---- RRNs ----
RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def rrn_check_digit(first12):
    s = sum(int(d) * w for d, w in zip(first12, RRN_WEIGHTS))
    return (11 - s % 11) % 10


def make_rrn(birth, sex="M", serial=None, hyphen=True):
    """A valid RRN for a datetime.date birth and sex 'M'/'F'."""
    if birth.year < 1900:
        s7 = 9 if sex == "M" else 0
    elif birth.year < 2000:
        s7 = 1 if sex == "M" else 2
    else:
        s7 = 3 if sex == "M" else 4
    serial = serial if serial is not None else "%05d" % random.randrange(100000)
    first12 = birth.strftime("%y%m%d") + str(s7) + serial
    full = first12 + str(rrn_check_digit(first12))
    return full[:6] + "-" + full[6:] if hyphen else full


def new_style_rrn(birth, sex="M", foreign=False, hyphen=True):
    """A number as issued since 2020-10-05: random digits after the sex
    digit, the last one chosen so that the old check digit does NOT hold
    (the numbers sarye once refused). foreign: a foreign resident's (5-8)."""
    s7 = (1 if sex == "M" else 2) + (0 if birth.year < 2000 else 2) + (4 if foreign else 0)
    first12 = birth.strftime("%y%m%d") + str(s7) + "%05d" % random.randrange(100000)
    full = first12 + str((rrn_check_digit(first12) + 1 + random.randrange(9)) % 10)
    return full[:6] + "-" + full[6:] if hyphen else full


def foreign_rrn(birth, sex="M", hyphen=True):
    """A foreign resident's registration number issued before 2020-10-05:
    sex digit 5/6 (1900s) or 7/8 (2000s), and its own variant of the check
    digit ((13 - sum % 11) % 10)."""
    s7 = (5 if sex == "M" else 6) + (0 if birth.year < 2000 else 2)
    first12 = birth.strftime("%y%m%d") + str(s7) + "%05d" % random.randrange(100000)
    s = sum(int(d) * w for d, w in zip(first12, RRN_WEIGHTS))
    full = first12 + str((13 - s % 11) % 10)
    return full[:6] + "-" + full[6:] if hyphen else full


def rrn_with_bad_check(rrn):
    digits = rrn.replace("-", "")
    bad = digits[:12] + str((int(digits[12]) + 1) % 10)
    return bad[:6] + "-" + bad[6:]


# ---- unique test data ----
_uniq_lock = threading.Lock()
_uniq_n = [0]


def unique_hangul(n=4):
    """n random Hangul syllables, different on every call (a prefix that no
    other test shares, for name searches)."""
    with _uniq_lock:
        _uniq_n[0] += 1
        k = _uniq_n[0]
    rnd = random.Random((os.getpid() << 20) ^ (k * 7919) ^ time.monotonic_ns())
    return "".join(chr(0xAC00 + rnd.randrange(11172)) for _ in range(n))


def unique_id(prefix="t"):
    with _uniq_lock:
        _uniq_n[0] += 1
        k = _uniq_n[0]
    return "%s-%d-%d-%04x" % (prefix, os.getpid(), k, random.randrange(1 << 16))


# ---- the base test class ----
ORG1 = "dj-sangdo1"
ORG2 = "dj-noryangjin"
REGION = "11590"

ERROR_CODE_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


class ApiTest(unittest.TestCase):
    """One server per test class, bootstrapped with two orgs (dj-sangdo1 and
    dj-noryangjin, both emd in 11590 running "integrated") and tokens:
    admin1, worker1, supervisor1, auditor1 (org 1), admin2, worker2 (org 2),
    and operator (a system operator: organisations, tokens of any
    organisation, plugins, the clock). Subclasses may set server_env /
    server_args."""

    server_env = {}
    server_args = ()
    server_class = Server  # tests/valgrind runs it under memcheck
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls.server = cls.server_class(extra_args=cls.server_args, env=cls.server_env)
        try:
            cls.server.org_create(ORG1, "상도1동 행정복지센터", "emd", REGION, ["integrated"])
            cls.server.org_create(ORG2, "노량진1동 행정복지센터", "emd", REGION, ["integrated"])
            t = cls.server.token_create
            cls.admin1 = t("admin1", "admin", ORG1)
            cls.worker1 = t("worker1", "worker", ORG1)
            cls.supervisor1 = t("supervisor1", "supervisor", ORG1)
            cls.auditor1 = t("auditor1", "auditor", ORG1)
            cls.admin2 = t("admin2", "admin", ORG2)
            cls.worker2 = t("worker2", "worker", ORG2)
            cls.operator = t("operator", "operator")
        except BaseException:
            cls.server.close()
            raise
        cls.client = cls.server.client()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        try:
            rc = cls.server.stop()
            log = cls.server.logs[-1] if cls.server.logs else ""
            reports = cls.server.sanitizer_reports(log)
        finally:
            cls.server.close()
        if rc != 0 or reports:
            raise AssertionError("the server exited with %r on SIGTERM (expected 0); sanitizer "
                                 "reports: %s\nlog tail:\n%s"
                                 % (rc, reports, "".join(log.splitlines(True)[-60:])))

    # ---- helpers ----
    def new_client(self, **kw):
        return self.server.client(**kw)

    def make_person(self, token=None, expect=201, **fields):
        body = {"name": fields.pop("name", None) or unique_hangul(3),
                "birth_date": fields.pop("birth_date", "1985-03-14"),
                "sex": fields.pop("sex", "F")}
        body.update(fields)
        body = {k: v for k, v in body.items() if v is not None}
        r = self.client.post("/v1/persons", body, token=token or self.worker1)
        self.assertEqual(r.status, expect, r.text)
        return r.json

    def make_household(self, token=None, expect=201, **fields):
        body = {"address": "서울특별시 동작구 상도로 1"}
        body.update(fields)
        r = self.client.post("/v1/households", body, token=token or self.worker1)
        self.assertEqual(r.status, expect, r.text)
        return r.json

    def make_case(self, person_id, token=None, expect=201, **fields):
        body = {"person_id": person_id, "program": "integrated", "source": "walk_in"}
        body.update(fields)
        r = self.client.post("/v1/cases", body, token=token or self.worker1)
        self.assertEqual(r.status, expect, r.text)
        return r.json

    def make_org_with_worker(self, programs=("integrated",), region=REGION):
        """A fresh org (through the API, by the system operator) and a worker token for it."""
        oid = unique_id("org")
        r = self.client.post("/v1/orgs", {"id": oid, "name": "테스트 기관 " + oid, "type": "emd",
                                          "region": region, "programs": list(programs)},
                             token=self.operator)
        self.assertEqual(r.status, 201, r.text)
        r = self.client.post("/v1/tokens", {"user": "w-" + oid, "role": "worker", "org": oid},
                             token=self.operator)
        self.assertEqual(r.status, 201, r.text)
        return oid, r.json["token"]

    def make_org_with_staff(self, programs=("integrated",), region=REGION):
        """A fresh org with a worker and a supervisor token: (org, worker, supervisor)."""
        oid, worker = self.make_org_with_worker(programs, region)
        r = self.client.post("/v1/tokens", {"user": "s-" + oid, "role": "supervisor", "org": oid},
                             token=self.operator)
        self.assertEqual(r.status, 201, r.text)
        return oid, worker, r.json["token"]

    INTEGRATED_PATH = ["discovery", "initial_counseling", "intake", "assessment", "selection", "planning",
                       "delivery", "monitoring"]

    def move(self, case, to, expect=200, token=None, **body):
        """One transition from the version the case is at; returns the response."""
        body = dict(body)
        body.setdefault("version", case["version"])
        body["to"] = to
        r = self.client.post("/v1/cases/%s/transitions" % case["id"], body, token=token or self.worker1)
        self.assertEqual(r.status, expect, r.text)
        return r

    def advance(self, case, target, token=None, supervisor=None):
        """Walks an integrated case forward to `target`, doing the work each
        step asks for: an assessment before selection, an internal conference
        classifying it as a case-management household, an approved plan
        before delivery."""
        token = token or self.worker1
        supervisor = supervisor or self.supervisor1
        path = self.INTEGRATED_PATH
        for to in path[path.index(case["stage"]) + 1:path.index(target) + 1]:
            data = None
            if to == "selection":
                r = self.client.post("/v1/cases/%s/assessments" % case["id"],
                                     {"kind": "needs", "domains": {"economy": {"note": "생계 곤란"}},
                                      "expected_intervention_months": 3}, token=token)
                self.assertEqual(r.status, 201, r.text)
                case = r.json["case"]  # every record bumps the case's version
            if to == "planning":
                # seed 004 II.4: the class rests on a conference (사례회의 결과를 바탕으로)
                r = self.client.post("/v1/meetings", {
                    "type": "internal", "case_ids": [case["id"]], "held_on": today_kst().isoformat(),
                    "participants": [{"org": case["org"], "role": "case_worker"}],
                    "decisions": [{"case_id": case["id"], "selection": "case_management"}]}, token=token)
                self.assertEqual(r.status, 201, r.text)
                case = r.json["cases"][0]
                data = {"selection": "case_management"}
            if to == "delivery":
                r = self.client.post("/v1/cases/%s/plans" % case["id"], {"goals": [
                    {"term": "short", "text": "체납 공과금 해소", "services": [
                        {"type": "cash", "method": "linkage", "content": "긴급지원 연계",
                         "start": "2026-01-01", "end": "2026-03-31"}]}]}, token=token)
                self.assertEqual(r.status, 201, r.text)
                a = self.client.post("/v1/cases/%s/plans/%s/approve" % (case["id"], r.json["id"]), token=supervisor)
                self.assertEqual(a.status, 200, a.text)
                case = a.json["case"]
            case = self.move(case, to, token=token, **({"data": data} if data else {})).json
        return case

    def list_all(self, path, token, limit=500, query=None):
        """Walks every page of a list; returns the items."""
        items, cursor = [], None
        for _ in range(10000):
            q = dict(query or {}, limit=limit)
            if cursor:
                q["cursor"] = cursor
            r = self.client.get(path, token=token, query=q)
            self.assertEqual(r.status, 200, r.text)
            items += r.json["items"]
            cursor = r.json["next_cursor"]
            if cursor is None:
                return items
        self.fail("list %s did not end" % path)

    def assertError(self, r, status, code=None, field=None):
        """The response is the contract's error: the status, a JSON body
        {"error": {"code", "message", "details"}} and nothing else, an
        X-Request-Id; code and details.field if given."""
        self.assertEqual(r.status, status, "expected %d, got %d: %s" % (status, r.status, r.text))
        self.assertTrue((r.header("Content-Type") or "").startswith("application/json"),
                        "error Content-Type %r" % r.header("Content-Type"))
        self.assertTrue(r.header("X-Request-Id"), "error without X-Request-Id")
        self.assertIsInstance(r.json, dict, "error body is not a JSON object: %r" % r.text)
        self.assertEqual(set(r.json), {"error"}, r.text)
        err = r.json["error"]
        self.assertIsInstance(err, dict, r.text)
        self.assertEqual(set(err), {"code", "message", "details"}, r.text)
        self.assertIsInstance(err["code"], str, r.text)
        self.assertRegex(err["code"], ERROR_CODE_RE)
        self.assertIsInstance(err["message"], str, r.text)
        self.assertTrue(err["message"], r.text)
        self.assertIsInstance(err["details"], dict, r.text)
        if code is not None:
            self.assertEqual(err["code"], code, r.text)
        if field is not None:
            self.assertEqual(err["details"].get("field"), field, r.text)
        return err
