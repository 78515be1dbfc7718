"""
test_console.py: the operations console. Its static files over HTTP (types,
the Content-Security-Policy, nothing but the compiled-in files: no
traversal, no listing), then the console itself in a real headless
Chromium (Debian's chromium + chromium-driver, driven by python3-selenium):
log in with a token, reload a broken plugin set and see its error with
file:line (in Korean), diff the candidate, see an overdue deadline appear
when the business date moves, the agencies and the audit pages. Every wait
is for an element or a text, bounded; screenshots go to SARYE_TEST_OUTPUT
(build/test-output under ctest) and their paths are printed.
"""
import datetime
import os
import re
import shutil
import sys
import tempfile
import time
import unittest

from harness import ApiTest, SCALE, SOURCE, Server, raw_request

CONSOLE_DIR = os.path.join(SOURCE, "console")
WAIT = 60 * SCALE


class ConsoleStaticTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def get(self, path, method="GET"):
        res = raw_request(self.server.host, self.server.port,
                          ("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (method, path)).encode())
        self.assertEqual(len(res), 1, res.data[:300])
        return res[0]

    def assert_strict_csp(self, headers):
        csp = headers.get("content-security-policy", "")
        for part in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
                     "frame-ancestors 'none'", "base-uri 'none'", "require-trusted-types-for 'script'"):
            self.assertIn(part, csp)
        self.assertNotIn("unsafe", csp)
        self.assertEqual(headers.get("x-content-type-options"), "nosniff")

    def test_every_file_served_as_is_with_its_type(self):
        types = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
        names = sorted(os.listdir(CONSOLE_DIR))
        self.assertIn("index.html", names)
        for name in names:
            with self.subTest(name=name):
                status, headers, body = self.get("/console/" + name)
                self.assertEqual(status, 200)
                self.assertEqual(headers["content-type"], types[os.path.splitext(name)[1]])
                with open(os.path.join(CONSOLE_DIR, name), "rb") as f:
                    self.assertEqual(body, f.read())
                self.assert_strict_csp(headers)
        status, headers, body = self.get("/")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        self.assert_strict_csp(headers)
        with open(os.path.join(CONSOLE_DIR, "index.html"), "rb") as f:
            self.assertEqual(body, f.read())
        # what the page loads is served, from /console/, and nothing inline
        html = body.decode("utf-8")
        refs = re.findall(r'(?:src|href)="(/[^"]*)"', html)
        self.assertIn("/console/app.js", refs)
        for ref in refs:
            self.assertEqual(self.get(ref)[0], 200, ref)
        self.assertNotRegex(html, r"<script>|<style|\sstyle=\"|\son[a-z]+=\"")

    def test_nothing_else_is_served(self):
        with open(os.path.join(SOURCE, "CMakeLists.txt"), "rb") as f:
            outside = f.read()[:200]
        for path in ("/console/", "/console", "/console/index.html/", "/console/../CMakeLists.txt",
                     "/console/../../../../../etc/passwd", "/console/%2e%2e/CMakeLists.txt",
                     "/console/..%2fCMakeLists.txt", "/console/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                     "/console/.%2e/README.md", "/console/app.js%00.html", "/console//etc/passwd",
                     "/console/./app.js/..", "/console/nope.js", "/console/.gitignore", "/console/app.js.map",
                     "/console/..\\..\\etc\\passwd", "/console/app%2ejs%2f"):
            with self.subTest(path=path):
                status, headers, body = self.get(path)
                self.assertIn(status, (400, 404), body[:200])
                self.assertTrue(headers["content-type"].startswith("application/json"))
                self.assertNotIn(b"root:", body)
                self.assertNotIn(outside, body)
        status, headers, _ = self.get("/console/app.js", method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET")
        status, headers, _ = self.get("/", method="DELETE")
        self.assertEqual(status, 405)


def chromium():
    """A headless Chromium driven by Debian's chromedriver, or the reason
    there is none."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        return None, "python3-selenium is missing (%s): run scripts/setup with SARYE_SETUP_TEST=1" % e
    binary = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not os.path.exists(binary) or not os.path.exists(driver):
        return None, "chromium or chromedriver is missing: run scripts/setup with SARYE_SETUP_TEST=1"
    profile = tempfile.mkdtemp(prefix="sarye-chromium-")
    o = Options()
    o.binary_location = binary
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
              "--disable-extensions", "--disable-background-networking", "--window-size=1280,1000",
              "--lang=ko-KR", "--user-data-dir=" + profile):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(driver), options=o)
    d.set_page_load_timeout(WAIT)
    d.sarye_profile = profile
    return d, None


class ConsoleBrowserTest(ApiTest):
    server_env = {"SARYE_CLOCK_ADJUSTABLE": "on"}

    @classmethod
    def setUpClass(cls):
        # a copy of the plugins, to break one and mend it
        cls.plugins_tmp = tempfile.TemporaryDirectory(prefix="sarye-console-plugins-")
        cls.plugins = os.path.join(cls.plugins_tmp.name, "plugins")
        shutil.copytree(os.path.join(SOURCE, "plugins"), cls.plugins)
        cls.server_args = ("--plugins", cls.plugins)
        cls.out = os.environ.get("SARYE_TEST_OUTPUT") or tempfile.mkdtemp(prefix="sarye-shots-")
        os.makedirs(cls.out, exist_ok=True)
        super().setUpClass()
        # one browser for the class (a start costs seconds on a busy machine)
        cls.d, cls.no_browser = chromium()

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.d is not None:
                cls.d.quit()
                shutil.rmtree(cls.d.sarye_profile, ignore_errors=True)
            super().tearDownClass()
        finally:
            cls.plugins_tmp.cleanup()

    def setUp(self):
        if self.d is None:
            if os.environ.get("SARYE_TEST_ALLOW_NO_BROWSER") == "1":
                self.skipTest(self.no_browser)
            self.fail(self.no_browser)
        # a fresh tab state: nothing kept from the test before
        self.d.get(self.server.url + "/console/favicon.svg")
        self.d.execute_script("sessionStorage.clear()")
        self.d.get_log("browser")
        self.addCleanup(self.check_browser_log)

    def check_browser_log(self):
        # No policy violation and no script error; a 4xx the console asked
        # for on purpose (probing the role) is the only thing logged.
        logs = self.d.get_log("browser")
        bad = [l["message"] for l in logs
               if "Refused to" in l["message"] or "Uncaught" in l["message"]
               or (l["level"] == "SEVERE" and "Failed to load resource" not in l["message"])]
        self.assertEqual(bad, [])

    # ---- helpers ----
    def wait(self, cond, what):
        from selenium.webdriver.support.ui import WebDriverWait
        from selenium.common.exceptions import TimeoutException
        try:
            return WebDriverWait(self.d, WAIT, poll_frequency=0.1).until(lambda d: cond(d) or None)
        except TimeoutException:
            shot = self.shot("failed-" + re.sub(r"[^a-z0-9]+", "-", what.lower())[:40])
            self.fail("waited %.0f s for %s (screenshot %s)" % (WAIT, what, shot))

    def el(self, css):
        from selenium.webdriver.common.by import By
        return self.wait(lambda d: (d.find_elements(By.CSS_SELECTOR, css) or [None])[0], css)

    def text_of(self, css):
        from selenium.webdriver.common.by import By
        found = self.d.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else None

    def wait_text(self, css, pred, what):
        def ok(d):
            try:
                t = self.text_of(css)
            except Exception:  # replaced while read
                return None
            return t is not None and pred(t)
        self.wait(ok, what)
        return self.text_of(css)

    def shot(self, name):
        path = os.path.join(self.out, "console-%s.png" % name)
        self.d.save_screenshot(path)
        print("screenshot: %s" % path, file=sys.stderr)
        return path

    def login(self, token):
        self.d.get(self.server.url + "/")
        self.el("#token").send_keys(token)
        self.el("#login-button").click()
        self.el("#nav:not([hidden])")

    def go(self, page):
        self.d.get(self.server.url + "/#/" + page)
        self.el("#page-" + page)

    def set_today(self, date):
        r = self.client.request("PUT", "/v1/admin/clock", {"today": date}, token=self.operator)
        self.assertEqual(r.status, 200, r.text)

    # ---- the tests ----
    def test_login_is_refused_with_a_bad_token(self):
        self.d.get(self.server.url + "/")
        self.el("#token").send_keys("sy_not-a-token")
        self.el("#login-button").click()
        msg = self.wait_text("#login-status .error", lambda t: "인증 토큰" in t, "the Korean 401 message")
        self.assertIn("unauthorized", msg)
        self.assertIsNone(self.d.execute_script("return sessionStorage.getItem('sarye.token')"))

    def test_plugins_broken_reload_shows_file_and_line(self):
        self.login(self.operator)  # plugins are a system operator's
        self.assertEqual(self.d.execute_script("return sessionStorage.getItem('sarye.token')"), self.operator)
        self.assertEqual(self.d.get_cookies(), [])
        live = self.wait_text("#live-generation", lambda t: re.fullmatch(r"[0-9a-f]{16}", t), "the live generation")
        self.el("#plugin-table tbody tr")
        self.shot("plugins")

        path = os.path.join(self.plugins, "regions", "kr-11590.lua")
        with open(path, encoding="utf-8") as f:
            good = f.read()
        broken_line = good.count("\n") + 2
        with open(path, "w", encoding="utf-8") as f:
            f.write(good + "\nlocal broken = = 1\n")
        try:
            self.el("#reload-button").click()
            where = self.wait_text("#plugin-action-result .plugin-error .where",
                                   lambda t: t.startswith("regions/kr-11590.lua:"), "the reload error")
            self.assertEqual(where, "regions/kr-11590.lua:%d" % broken_line)
            # the console asks for Korean: the server's message is Korean, the code the English id
            box = self.text_of("#plugin-action-result .error")
            self.assertIn("플러그인 묶음에 오류가 있어 적용하지 않았습니다", box)
            self.assertIn("plugin_invalid", box)
            # the live generation is still the one serving
            self.wait_text("#live-generation", lambda t: t == live, "the unchanged generation")
            self.el("#last-reload-errors .plugin-error")
            self.shot("reload-error")

            self.el("#candidate-button").click()
            row = self.wait_text('#candidate-files tr[data-file="regions/kr-11590.lua"]', lambda t: "바뀜" in t,
                                 "the changed file in the candidate")
            self.assertIn("regions/kr-11590.lua", row)
            added = self.wait_text("#candidate .diff .add", lambda t: "local broken = = 1" in t, "the diff")
            self.assertIn(str(broken_line), added)
            self.assertIn("regions/kr-11590.lua:%d" % broken_line, self.text_of("#candidate .error"))
            self.d.execute_script("document.getElementById('candidate').scrollIntoView()")
            self.shot("candidate-diff")
        finally:
            with open(path, "w", encoding="utf-8") as f:
                f.write(good)
        self.el("#reload-button").click()
        self.wait_text("#reload-ok", lambda t: "바뀐 파일이 없습니다" in t, "the mended set")
        # the mended set is the live one again: the refused reload's errors no longer stand
        self.wait(lambda d: not d.find_elements("css selector", "#last-reload-errors .plugin-error"),
                  "the refused reload's errors cleared")

        # the shadow replay of the set on disk: nothing to replay while it is the live one ...
        self.el("#replay-button").click()
        self.el("#replay-same")
        # ... and a report once a file differs (a comment: every recorded decision the same)
        with open(path, "w", encoding="utf-8") as f:
            f.write(good + "\n-- 검토 중\n")
        try:
            self.el("#replay-button").click()
            self.wait_text("#replay-report", lambda t: "differences" in t, "the replay report")
            got = self.d.execute_script(
                "const dt = [...document.querySelectorAll('#replay-report > .json > dl > dt')]"
                ".find((x) => x.textContent === 'differences'); return dt && dt.nextElementSibling.textContent")
            self.assertEqual(got, "0")
            self.shot("replay-report")
        finally:
            with open(path, "w", encoding="utf-8") as f:
                f.write(good)

    def test_overdue_deadline_appears_when_the_clock_moves(self):
        today = datetime.date.fromisoformat(self.client.get("/v1/admin/clock", token=self.admin1).json["today"])
        person = self.make_person()
        case = self.make_case(person["id"])
        case = self.advance(case, "intake")  # kr-11590: the plan is due within 30 days of intake
        due = [d for d in case["due"] if d["kind"] == "plan_due"]
        self.assertTrue(due, case)
        due_on = datetime.date.fromisoformat(due[0]["due_on"])

        self.login(self.admin1)
        self.go("deadlines")
        self.wait_text("#business-date", lambda t: t == today.isoformat(), "today's business date")
        self.wait_text("#open-count", lambda t: int(t) >= 1, "an open deadline")
        self.assertEqual(self.text_of("#overdue-count"), "0")
        self.el("#no-overdue")
        self.el("#deadline-chart rect.bar-due")
        self.shot("deadlines-due")

        self.set_today((due_on + datetime.timedelta(days=1)).isoformat())
        self.el("#refresh-button").click()
        self.wait_text("#overdue-count", lambda t: t == "1", "one overdue deadline")
        row = self.el("#overdue-table tr.overdue-row").text
        self.assertIn(due_on.isoformat(), row)
        self.assertIn(case["id"], row)
        self.assertIn("1일", row)
        bars = self.el("#deadline-chart rect.bar-overdue")
        self.assertEqual(bars.get_attribute("data-date"), due_on.isoformat())
        self.el("#by-org tbody tr")
        self.shot("deadlines-overdue")
        self.set_today(today.isoformat())

    def test_agencies_and_audit_pages(self):
        person = self.make_person()
        self.assertEqual(self.client.get("/v1/persons/" + person["id"], token=self.worker1).status, 200)
        self.login(self.admin1)
        self.go("agencies")
        self.wait(lambda d: self.text_of("#page-agencies h3"), "the agencies page")
        self.assertIn("기관별 회로 상태", self.text_of("#page-agencies"))
        self.shot("agencies")
        # an admin is not an auditor: the audit page says so, in Korean
        self.go("audit")
        self.wait_text("#audit-result .error", lambda t: "forbidden" in t, "the 403 for an admin")
        self.el("#logout").click()
        self.el("#token")
        self.assertIsNone(self.d.execute_script("return sessionStorage.getItem('sarye.token')"))

        self.login(self.auditor1)
        self.go("audit")
        row = self.wait_text('#readers-table tr[data-person="%s"]' % person["id"], lambda t: "worker1" in t,
                             "who read the person")
        self.assertIn(person["id"], row)
        self.el("#audit-table tbody tr")
        self.shot("audit")


if __name__ == "__main__":
    unittest.main()
