"""Request paths are decoded by sarye, not CivetWeb, and refused when they
hold what no path should: a %00 (which used to cut the path short, so that
/v1/cases/{id}%00/events answered the case itself), newlines and other
control bytes (which could forge access-log lines), an encoded '/',
broken escapes, invalid UTF-8 (a 500 before). The access log shows the
path escaped, with resident-number shapes masked."""
import re
import time
import unittest

from harness import HTTP_TIMEOUT, ApiTest, raw_request


class PathTest(ApiTest):
    def test_bad_paths_are_400_and_name_why(self):
        c = self.make_case(self.make_person()["id"])
        cases = {
            "/v1/cases/%s%%00/events" % c["id"]: "control character",
            "/v1/cases/%s%%0Aforged" % c["id"]: "control character",
            "/v1/cases/%s%%0d%%0a" % c["id"]: "control character",
            "/v1/cases/%s%%2Fevents" % c["id"]: "encoded '/'",
            "/v1/cases/%s%%FF" % c["id"]: "not valid UTF-8",
            "/v1/cases/%s%%ED%%A0%%80" % c["id"]: "not valid UTF-8",  # a surrogate
            "/v1/cases/%s%%4" % c["id"]: "two hex digits",
            "/v1/cases/%s%%zz" % c["id"]: "two hex digits",
        }
        for path, why in cases.items():
            with self.subTest(path=path):
                r = self.client.get(path, token=self.worker1)
                err = self.assertError(r, 400, "invalid_path")
                self.assertIn(why, err["message"])
        # the case itself was never answered in place of its events
        self.assertEqual(self.client.get("/v1/cases/%s/events" % c["id"], token=self.worker1).status, 200)

    def test_korean_in_a_path_is_a_path(self):
        r = self.client.get("/v1/persons/%ED%99%8D%EA%B8%B8%EB%8F%99", token=self.worker1)
        self.assertError(r, 404, "not_found")

    def test_the_log_cannot_be_forged_and_shows_no_resident_number(self):
        forged = 'ts=2026-01-01T00:00:00.000Z level=error msg="forged"'
        self.client.get("/v1/cases/x%0A" + forged.replace(" ", "%20").replace('"', "%22"), token=self.worker1)
        self.client.get("/v1/persons/9001011234568", token=self.worker1)
        self.client.get("/v1/persons/900101-1234568", token=self.worker1)
        # a raw request line with a newline-like byte and a quote is escaped too
        raw_request(self.server.host, self.server.port,
                    b'GET /v1/persons/a"b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
        # each access line is written just after its answer leaves, by the
        # worker that answered: wait for all of them (their order is not the
        # requests' order when a worker is put aside between the two)
        expected = ['path="/v1/persons/*************"', 'path="/v1/persons/******-*******"',
                    'path="/v1/persons/a\\"b"']
        deadline = time.monotonic() + HTTP_TIMEOUT
        while (not all(e in self.server.log for e in expected) or "invalid_path" not in self.server.log) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        log = self.server.log
        self.assertFalse([l for l in log.splitlines() if l.startswith(forged)], "a forged line reached the log")
        self.assertNotIn("9001011234568", log)
        self.assertNotIn("900101-1234568", log)
        self.assertIn('path="/v1/persons/*************"', log)
        self.assertIn('path="/v1/persons/******-*******"', log)
        self.assertIn('path="/v1/persons/a\\"b"', log)
        # ids and ordinary numbers stay readable
        self.assertTrue(re.search(r'path="/v1/cases/x%0A', log))


if __name__ == "__main__":
    unittest.main()
