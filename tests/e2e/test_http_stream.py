"""Streamed search answers (GET /api/v1/search) whose clients stop reading: the answer's
state must outlive every write queued for it, whatever the order in which the search's
deadline, the client's disappearance and the other searches come.

The agent runs with SPILLWAY_TEST_SEARCH_TIMEOUT_MS (a test knob for the 30 s scan deadline)
so the deadline is reached in a couple of seconds."""

import os
import socket
import threading
import time

import requests

from conftest import SLOW

DEADLINE_MS = 2000
SEARCH = b"GET /api/v1/search?q=&limit=100000 HTTP/1.1\r\nHost: x\r\n\r\n"


def start_with_history(agent, workdir, nlines=40000):
    """An agent that keeps shipped chunks searchable, with nlines records of ~150 bytes
    buffered (about 12 MB of NDJSON answer: far more than socket buffers and the 1 MiB queue)."""
    d = workdir / "app"
    d.mkdir(exist_ok=True)
    log = d / "a.log"
    with open(log, "wb") as f:
        for i in range(nlines):
            f.write(b"line %06d %s\n" % (i, b"x" * 140))
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}],
                       buffer={"max_bytes": "1GiB", "keep_shipped": {"max_age": "24h"},
                               "chunk": {"max_records": 2000, "max_bytes": "1MiB",
                                         "max_wait": "200ms"}})
    agent.env = dict(os.environ, SPILLWAY_TEST_SEARCH_TIMEOUT_MS=str(DEADLINE_MS))
    agent.start()
    agent.wait_count(nlines, 60 * SLOW)
    return log, agent.http_port()


def stalled_client(port):
    """A client with a tiny receive buffer that asks for everything and never reads."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # before connect: small window
    s.connect(("127.0.0.1", port))
    s.sendall(SEARCH)
    return s


class Searcher(threading.Thread):
    """Runs searches back to back (reading every answer) until stopped; counts outcomes."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.ok, self.busy, self.errors = port, 0, 0, []
        self.stop = threading.Event()

    def run(self):
        url = "http://127.0.0.1:%d/api/v1/search?q=line%%200000&limit=50" % self.port
        while not self.stop.is_set():
            try:
                r = requests.get(url, timeout=30)
                if r.status_code == 200:
                    assert b'"summary"' in r.content.splitlines()[-1], r.content[-200:]
                    self.ok += 1
                elif r.status_code == 429:
                    self.busy += 1
                    self.stop.wait(0.05)  # spacing of retries, not a wait for the agent
                else:
                    self.errors.append(r.status_code)
            except Exception as e:  # noqa: BLE001 -- recorded and asserted on below
                self.errors.append(repr(e))


def agent_sockets(agent):
    return sum(1 for t in agent.fd_targets() if t.startswith("socket:"))


def assert_healthy(agent, log, port, nlines):
    """The loop answers at once and ingest goes on."""
    t0 = time.monotonic()
    r = requests.get("http://127.0.0.1:%d/health" % port, timeout=5)
    assert r.status_code == 200 and time.monotonic() - t0 < 2 * SLOW
    with open(log, "ab") as f:
        f.write(b"after the stalled clients\n")
    agent.wait_count(nlines + 1, 15 * SLOW)


def test_stalled_searches_past_the_deadline_then_closed(agent, workdir):
    """Two searches whose clients never read, held past the scan deadline while other searches
    run, then closed: the agent neither crashes (a write callback on a freed answer) nor hangs
    (signalling a destroyed condition variable); /health answers and ingest goes on; the stop
    is clean (under ASan: no use after free, no leak)."""
    nlines = 40000
    log, port = start_with_history(agent, workdir, nlines)
    base_socks = agent_sockets(agent)
    stalled = [stalled_client(port) for _ in range(2)]
    bg = [Searcher(port) for _ in range(2)]
    t0 = time.monotonic()
    for b in bg:
        b.start()
    try:
        # The stalled searches hold both search slots until their deadline; the others get 429
        # until then, and 200 once the stalled ones have ended their scans.
        agent.wait_for(lambda: sum(b.ok for b in bg) >= 2, 30 * SLOW,
                       "searches to be served again after the stalled ones' deadline")
        assert time.monotonic() - t0 >= DEADLINE_MS / 1000.0 * 0.9
        assert agent_sockets(agent) >= base_socks + 2, "the stalled answers are still pending"
        for s in stalled:  # unread data: the kernel resets the connection
            s.close()
        ok_at_close = sum(b.ok for b in bg)
        agent.wait_for(lambda: sum(b.ok for b in bg) >= ok_at_close + 4, 30 * SLOW,
                       "searches to go on after the stalled clients closed")
    finally:
        for b in bg:
            b.stop.set()
        for b in bg:
            b.join(40)
    assert not [e for b in bg for e in b.errors], [b.errors for b in bg]
    assert_healthy(agent, log, port, nlines)
    agent.stop()


def test_stalled_search_closed_while_scanning(agent, workdir):
    """The other order: a client that never reads goes away while its scan still waits for
    room (before the deadline); another that stops reading is dropped by the agent after the
    write stall timeout (10 s without progress), which frees its slot."""
    nlines = 40000
    log, port = start_with_history(agent, workdir, nlines)
    base_socks = agent_sockets(agent)
    gone = stalled_client(port)
    kept = stalled_client(port)
    agent.wait_for(lambda: agent_sockets(agent) >= base_socks + 2, 10 * SLOW,
                   "both searches to be answering")
    gone.close()  # while its scan waits for the client
    agent.wait_for(lambda: agent_sockets(agent) <= base_socks + 1, 10 * SLOW,
                   "the closed client's connection to go")
    # `kept` never reads: after its scan's deadline nothing is written for 10 s, and the
    # agent closes it.
    agent.wait_for(lambda: agent_sockets(agent) <= base_socks, (10 + 5) * SLOW + 5,
                   "the stalled connection to be closed by the agent")
    kept.close()
    r = requests.get("http://127.0.0.1:%d/api/v1/search?q=line%%20000001&limit=5" % port,
                     timeout=30)
    assert r.status_code == 200 and b'"matches":1,' in r.content, r.content[-300:]
    assert_healthy(agent, log, port, nlines)
    agent.stop()
