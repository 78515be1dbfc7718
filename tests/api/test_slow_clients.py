"""No thread per idle connection to exhaust: connections that send nothing
never reach a worker, and one client address holds at most
http.max_per_address connections; a client from another address is served
all the while. The server runs with few workers and a long I/O timeout, so
without the gate the client's requests would wait for the attackers' time
outs (a minute), not merely be slower: the outcome does not depend on the
machine's speed."""
import socket
import unittest

from harness import ApiTest, Client



class SlowClientTest(ApiTest):
    server_env = {"SARYE_THREADS": "8", "SARYE_HTTP_IO_TIMEOUT_MS": "60000", "SARYE_HTTP_MAX_PER_ADDRESS": "4"}

    def attacker_socket(self, address):
        s = socket.socket()
        s.bind((address, 0))  # each test its own address: counts of one test cannot reach another
        s.settimeout(10)
        s.connect((self.server.host, self.server.port))
        return s

    def test_idle_and_slow_connections_do_not_starve_other_clients(self):
        held = []
        try:
            # seventy connections that send nothing ...
            held += [self.attacker_socket("127.0.0.5") for _ in range(70)]
            # ... and twenty that send half a request line and stall
            for _ in range(20):
                s = self.attacker_socket("127.0.0.5")
                s.sendall(b"GET /v1/cases HTTP/1.1\r\nHost: x\r\n")
                held.append(s)
            # Every request of a client at another address is answered, and
            # quickly enough for a client that waits a third of the attackers'
            # timeout.
            cl = Client(self.server.host, self.server.port, timeout=20)
            try:
                for _ in range(20):
                    r = cl.get("/v1/cases", token=self.worker1)
                    self.assertEqual(r.status, 200, r.text)
            finally:
                cl.close()
            metrics = self.client.get("/metrics").text
            refused = [l for l in metrics.splitlines() if l.startswith("sarye_http_connections_refused_total ")]
            self.assertEqual(len(refused), 1)
            self.assertGreaterEqual(int(refused[0].split()[1]), 16, "20 stalled connections, at most 4 admitted")
        finally:
            for s in held:
                s.close()

    def test_refused_connections_are_closed_not_left_hanging(self):
        socks = []
        try:
            for _ in range(6):
                s = self.attacker_socket("127.0.0.6")
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # incomplete: held by a worker
                socks.append(s)
            closed = 0
            for s in socks:
                try:
                    s.settimeout(2)  # an admitted one is held by the server for a minute
                    if s.recv(100) == b"":
                        closed += 1
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed += 1
            self.assertEqual(closed, 2, "past the limit of 4, the 5th and 6th are closed at the door")
        finally:
            for s in socks:
                s.close()


if __name__ == "__main__":
    unittest.main()
