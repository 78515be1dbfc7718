"""
test_nginx.py: sarye behind nginx with TLS, as docs/nginx.md says. The
nginx configuration is the block that page marks for this test; a
self-signed certificate is made with the openssl command line; Debian's
nginx runs in front of a real sarye (http.trusted_proxies = 127.0.0.1), and
requests go over HTTPS through it: the answers and their headers arrive
whole, the client's address in sarye's log is the one nginx saw (a forged
X-Forwarded-For is not believed), plain HTTP is redirected.
"""
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import ApiTest, SCALE, SOURCE

DOC = os.path.join(SOURCE, "docs", "nginx.md")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def doc_block():
    """The nginx block docs/nginx.md marks for this test."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"<!-- test: nginx\.conf[^>]*-->\s*```nginx\n(.*?)```", text, re.S)
    if not m:
        raise AssertionError("docs/nginx.md has no nginx block marked <!-- test: nginx.conf -->")
    return m.group(1)


class NginxTest(ApiTest):
    server_env = {"SARYE_HTTP_TRUSTED_PROXIES": "127.0.0.1"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.start_nginx()
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def start_nginx(cls):
        cls.nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        cls.nginx = None
        if not os.path.exists(cls.nginx_bin) or not shutil.which("openssl"):
            return
        cls.tmp = tempfile.mkdtemp(prefix="sarye-nginx-")
        os.chmod(cls.tmp, 0o755)  # nginx's workers may run as another user
        t = cls.tmp
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-keyout", t + "/tls.key", "-out", t + "/tls.crt",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60 * SCALE)
        cls.https_port, cls.http_port = free_port(), free_port()
        block = doc_block()
        block = block.replace("server 127.0.0.1:8080;", "server 127.0.0.1:%d;" % cls.server.port)
        block = block.replace("listen 443 ssl http2;", "listen 127.0.0.1:%d ssl http2;" % cls.https_port)
        block = block.replace("listen 80;", "listen 127.0.0.1:%d;" % cls.http_port)
        block = block.replace("/etc/ssl/certs/sarye.crt.pem", t + "/tls.crt")
        block = block.replace("/etc/ssl/private/sarye.key.pem", t + "/tls.key")
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(t, d), mode=0o777, exist_ok=True)
            os.chmod(os.path.join(t, d), 0o777)
        conf = ("pid %(t)s/nginx.pid;\nerror_log %(t)s/error.log info;\nworker_processes 1;\n"
                "events { worker_connections 64; }\n"
                "http {\n  access_log %(t)s/access.log;\n  client_body_temp_path %(t)s/body;\n"
                "  proxy_temp_path %(t)s/proxy;\n  fastcgi_temp_path %(t)s/fastcgi;\n"
                "  uwsgi_temp_path %(t)s/uwsgi;\n  scgi_temp_path %(t)s/scgi;\n%(block)s\n}\n"
                % {"t": t, "block": block})
        with open(t + "/nginx.conf", "w", encoding="utf-8") as f:
            f.write(conf)
        args = [cls.nginx_bin, "-p", t, "-e", t + "/error.log", "-c", t + "/nginx.conf"]
        check = subprocess.run(args + ["-t"], capture_output=True, text=True, timeout=60 * SCALE)
        if check.returncode != 0:
            raise AssertionError("nginx -t refuses the configuration of docs/nginx.md:\n" + check.stderr)
        cls.nginx = subprocess.Popen(args + ["-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30 * SCALE
        while True:
            try:
                socket.create_connection(("127.0.0.1", cls.https_port), timeout=1).close()
                break
            except OSError:
                if cls.nginx.poll() is not None or time.monotonic() > deadline:
                    err = cls.nginx.stderr.read().decode() if cls.nginx.poll() is not None else ""
                    raise AssertionError("nginx did not listen: %s" % err)
                time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.nginx is not None:
                cls.nginx.terminate()
                cls.nginx.wait(30 * SCALE)
                cls.nginx.stderr.close()
        finally:
            if getattr(cls, "tmp", None):
                shutil.rmtree(cls.tmp, ignore_errors=True)
            super().tearDownClass()

    def setUp(self):
        if self.nginx is None:
            if os.environ.get("SARYE_TEST_ALLOW_NO_NGINX") == "1":
                self.skipTest("nginx or openssl is not installed")
            self.fail("nginx or openssl is not installed: run scripts/setup with SARYE_SETUP_TEST=1")

    def https(self, method, path, body=None, token=None, headers=None):
        ctx = ssl.create_default_context(cafile=os.path.join(self.tmp, "tls.crt"))
        conn = http.client.HTTPSConnection("localhost", self.https_port, context=ctx, timeout=30 * SCALE)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
            h["Content-Type"] = "application/json; charset=utf-8"
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            payload = r.read()
            self.assertIn(conn.sock.version(), ("TLSv1.2", "TLSv1.3"))
            return r.status, r.headers, payload
        finally:
            conn.close()

    def test_api_over_https(self):
        status, h, body = self.https("GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"status": "ok"})
        self.assertIn("max-age", h["Strict-Transport-Security"])
        status, h, body = self.https("POST", "/v1/persons", {"name": "김철수", "birth_date": "1970-01-01", "sex": "M"},
                                     token=self.worker1, headers={"X-Request-Id": "via-nginx-1"})
        self.assertEqual(status, 201, body)
        person = json.loads(body)
        self.assertEqual(person["name"], "김철수")
        self.assertEqual(h["X-Request-Id"], "via-nginx-1")
        self.assertEqual(h["Location"], "/v1/persons/" + person["id"])
        status, h, body = self.https("GET", h["Location"], token=self.worker1)
        self.assertEqual(status, 200)
        # errors, in Korean when asked, with their headers
        status, h, body = self.https("GET", "/v1/cases", headers={"Accept-Language": "ko"})
        self.assertEqual(status, 401)
        self.assertEqual(json.loads(body)["error"]["message"], "인증 토큰이 없거나 유효하지 않습니다")
        status, h, body = self.https("DELETE", "/v1/persons")
        self.assertEqual(status, 405)
        self.assertEqual(sorted(x.strip() for x in h["Allow"].split(",")), ["GET", "POST"])
        # the console, with its policy
        status, h, body = self.https("GET", "/")
        self.assertEqual(status, 200)
        self.assertIn("default-src 'none'", h["Content-Security-Policy"])
        self.assertIn(b"/console/app.js", body)

    def test_client_address_is_what_nginx_saw(self):
        status, _, _ = self.https("GET", "/healthz", headers={"X-Request-Id": "via-nginx-forged",
                                                             "X-Forwarded-For": "203.0.113.9"})
        self.assertEqual(status, 200)
        self.assertTrue(self.server.wait_for_log("req=via-nginx-forged "))
        line = [l for l in self.server.log.splitlines() if "req=via-nginx-forged " in l][0]
        self.assertIn(" client=127.0.0.1 ", line)
        self.assertNotIn("203.0.113.9", line)

    def test_plain_http_is_redirected(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30 * SCALE)
        try:
            conn.request("GET", "/v1/cases?x=1", headers={"Host": "localhost"})
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 301)
            self.assertEqual(r.headers["Location"], "https://localhost/v1/cases?x=1")
        finally:
            conn.close()

    def test_untrusted_certificate_is_refused(self):
        conn = http.client.HTTPSConnection("localhost", self.https_port, context=ssl.create_default_context(),
                                           timeout=30 * SCALE)
        with self.assertRaises(ssl.SSLError):
            conn.request("GET", "/healthz")
        conn.close()


if __name__ == "__main__":
    unittest.main()
