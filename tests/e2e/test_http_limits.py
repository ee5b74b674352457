"""The control server under hostile or sloppy clients, with raw sockets: strict request heads
(400 at once), reason phrases, /health while idle connections fill every slot, and /metrics
during a reload."""

import socket
import threading
import time

import requests

from conftest import SLOW
from test_http import raw, sockets, start
from test_metrics import check_exposition


def first_line(data):
    return data.split(b"\r\n", 1)[0]


def test_malformed_heads_get_400_at_once(agent, workdir):
    """Anything the head parser refuses is answered 400 as soon as it is seen, without waiting
    for the rest of the head or the 5 s head timeout."""
    start(agent, workdir)
    port = agent.http_port()
    complete = [
        b"GET /health HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"GET /health HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\n folded: continuation\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\n\tfolded\r\n\r\n",
        b"GET /health HTTP/1.1\r\nthis line has no colon\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n",
    ]
    # Incomplete heads that are already wrong: the answer must not wait for more.
    incomplete = [b"GET /health HTTP/1.1\nHost: x\n", b"GET /he\x00alth HTTP/1.1\r\n",
                  b"GET /health HTTP/1.1\r\nX: \x00", b"GET /health HTTP/1.1\r\nHost: x\n"]
    for req in complete + incomplete:
        t0 = time.monotonic()
        s = raw(port, req, read=False)
        s.settimeout(10)
        got = b""
        while True:  # until the server closes: the answer is all there is
            b = s.recv(4096)
            if not b:
                break
            got += b
        s.close()
        took = time.monotonic() - t0
        assert first_line(got) == b"HTTP/1.1 400 Bad Request", (req, got[:200])
        assert took < 2.0 * SLOW, (req, took)  # not the 5 s head timeout's 408
    # Still serving, and a well-formed head with an empty header value is fine.
    assert first_line(raw(port, b"GET /health HTTP/1.1\r\nX-Empty:\r\n\r\n")) == \
        b"HTTP/1.1 200 OK"
    agent.stop()


def test_reason_phrases(agent, workdir):
    """Each status the server uses carries its own reason phrase (202 is "Accepted")."""
    d = workdir / "app"
    d.mkdir()
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}],
                       extra={"server": {"listen": "127.0.0.1:0", "enable_reload": True}})
    agent.start()
    port = agent.http_port()
    want = {
        b"POST /-/reload HTTP/1.1\r\nContent-Length: 0\r\n\r\n": b"202 Accepted",
        b"GET /health HTTP/1.1\r\n\r\n": b"200 OK",
        b"GET /nope HTTP/1.1\r\n\r\n": b"404 Not Found",
        b"POST /health HTTP/1.1\r\n\r\n": b"405 Method Not Allowed",
        b"POST /-/reload HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello": b"413 Content Too Large",
        b"GET / HTTP/1.1\r\nX: " + b"a" * 9000: b"431 Request Header Fields Too Large",
        b"GET /api/v1/search HTTP/1.1\r\n\r\n": b"400 Bad Request",
    }
    for req, status in want.items():
        assert first_line(raw(port, req)) == b"HTTP/1.1 " + status, req[:60]
    agent.stop()


def idle_sockets(port, n):
    out = []
    for _ in range(n):
        out.append(socket.create_connection(("127.0.0.1", port), timeout=10))
    return out


def test_health_answers_when_idle_connections_fill_the_server(agent, workdir):
    """160 sockets that never send a byte (more than the 128 regular slots plus the probe
    slots): /health still answers 200 at once, fresh and after the idle ones have waited a
    second (then they are evicted to make room, and /metrics is served too); the agent never
    holds more than the cap plus the probe slots."""
    base = start(agent, workdir)
    port = agent.http_port()
    fds0 = sockets(agent)
    idle = idle_sockets(port, 160)
    agent.wait_for(lambda: sockets(agent) - fds0 >= 128, 5 * SLOW, "the idle sockets held")
    try:
        for _ in range(5):  # fresh idle connections: the probe slots serve /health
            t0 = time.monotonic()
            r = requests.get(base + "/health", timeout=5)
            assert r.status_code == 200 and time.monotonic() - t0 < 1.0 * SLOW
        assert sockets(agent) - fds0 <= 128 + 16
        # Once they have been idle for a second, a newcomer evicts the oldest idle one, so any
        # route is served again, and the evicted client is told why.
        agent.wait_for(lambda: requests.get(base + "/metrics", timeout=5).status_code == 200,
                       5 * SLOW, "/metrics served by evicting an idle connection")
        idle[0].settimeout(5)
        assert first_line(idle[0].recv(4096)) == b"HTTP/1.1 503 Service Unavailable"
        for _ in range(5):
            assert requests.get(base + "/health", timeout=5).status_code == 200
        assert sockets(agent) - fds0 <= 128 + 16
    finally:
        for s in idle:
            s.close()
    agent.stop()


def test_metrics_answer_during_reload(agent, workdir):
    """A reload stops one pipeline and opens the next (here about 1.5 s, a network sink whose
    server is down using its shutdown allowance): /metrics keeps answering 200 with a valid
    exposition from the figures held when the reload began, while /ready says reloading."""
    d = workdir / "app"
    d.mkdir()
    down = socket.socket()
    down.bind(("127.0.0.1", 0))  # nobody listens: connection refused
    agent.write_config(
        [{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}],
        sinks=[{"name": "loki", "type": "loki", "url": "http://127.0.0.1:%d" % down.getsockname()[1],
                "batch": {"max_bytes": "64KiB", "max_wait": "100ms"},
                "retry": {"min_backoff": "50ms", "max_backoff": "100ms"}}],
        extra={"server": {"listen": "127.0.0.1:0", "enable_reload": True}})
    agent.start(wait_ready=False)
    base = "http://127.0.0.1:%d" % agent.http_port()
    agent.wait_for(lambda: requests.get(base + "/ready", timeout=5).status_code == 200, 15 * SLOW,
                   "/ready")
    (d / "a.log").write_bytes(b"".join(b"line %d\n" % i for i in range(100)))
    agent.wait_for(lambda: b"request failed" in agent.stderr_path.read_bytes(), 10 * SLOW,
                   "the sink to fail against the closed port")
    assert requests.get(base + "/metrics", timeout=5).status_code == 200
    seen, done = [], threading.Event()

    def probe():
        while not done.is_set():
            ready = requests.get(base + "/ready", timeout=5)
            m = requests.get(base + "/metrics", timeout=5)
            seen.append((ready.status_code, ready.text, m.status_code, m.text))
    t = threading.Thread(target=probe, daemon=True)
    t.start()
    try:
        assert requests.post(base + "/-/reload", timeout=5).status_code == 202
        agent.wait_for(lambda: any(b"reloading" in s[1].encode() for s in seen), 10 * SLOW,
                       "/ready to say reloading")
        agent.wait_for(lambda: seen and seen[-1][0] == 200 and
                       agent.stderr_tail(100000).count("running:") >= 2, 20 * SLOW,
                       "the reloaded pipeline to run")
    finally:
        done.set()
        t.join(10)
        down.close()
    during = [s for s in seen if s[0] == 503]
    assert during, "no probe during the reload"
    assert all(s[2] == 200 for s in seen), [(s[0], s[2], s[3][:100]) for s in seen if s[2] != 200]
    for s in during:
        assert "spillway_build_info" in s[3], s[3][:200]
        check_exposition(s[3])
    agent.stop()
