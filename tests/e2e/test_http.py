"""The agent's HTTP control server: /health, /ready and its limits."""

import socket
import sqlite3
import threading
import time

import requests

from conftest import wait_for


def start(agent, workdir):
    d = workdir / "app"
    d.mkdir(exist_ok=True)
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}])
    agent.start()
    return "http://127.0.0.1:%d" % agent.http_port()


def raw(port, data, read=True, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return s
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out
            out += b
    finally:
        if read:
            s.close()


def test_health_ready_and_errors(agent, workdir):
    base = start(agent, workdir)
    r = requests.get(base + "/health", timeout=5)
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    assert r.headers["Connection"] == "close"
    r = requests.get(base + "/ready", timeout=5)
    assert (r.status_code, r.json()["status"]) == (200, "ready")
    assert requests.head(base + "/health", timeout=5).status_code == 200
    assert requests.get(base + "/nope", timeout=5).status_code == 404
    assert requests.post(base + "/health", timeout=5).status_code == 405
    assert requests.post(base + "/health", data=b"x" * 10, timeout=5).status_code == 413
    port = agent.http_port()
    assert raw(port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(port, b"GET /health HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 431 ")
    agent.stop()


def test_slow_client_does_not_delay_health(agent, workdir):
    base = start(agent, workdir)
    port = agent.http_port()
    slow = raw(port, b"GET /he", read=False)
    stop = threading.Event()

    def dribble():  # one byte a second, never finishing the head
        for ch in b"alth HTTP/1.1\r\nHost: x\r\n":
            if stop.wait(1.0):
                return
            try:
                slow.send(bytes([ch]))
            except OSError:
                return
    t = threading.Thread(target=dribble, daemon=True)
    t.start()
    t0 = time.monotonic()
    for _ in range(20):
        assert requests.get(base + "/health", timeout=2).status_code == 200
    assert time.monotonic() - t0 < 2.0, "health answers must not wait for a slow client"
    # The slow client is cut off after the head timeout with 408.
    slow.settimeout(10)
    got = slow.recv(1024)
    stop.set()
    assert got.startswith(b"HTTP/1.1 408 ")
    slow.close()
    agent.stop()


def answers(socks, statuses):
    for s in socks:
        try:
            s.settimeout(15)
            data = s.recv(64)
            statuses.append(data.split(b" ")[1].decode() if data else "closed")
        except OSError:
            statuses.append("reset")
        finally:
            s.close()


def test_thousand_connections_are_served_or_refused(agent, workdir):
    """1000 clients at once, each sending its request as soon as it is connected (all 1000
    stay open until every one is connected): each is answered 200 or, over the connection cap,
    503; the agent survives and answers afterwards. (Connects beyond the listen backlog wait for
    the kernel's SYN retries, so this takes a few seconds.)"""
    base = start(agent, workdir)
    port = agent.http_port()
    socks, statuses = [], []
    for _ in range(1000):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=15)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        except OSError:
            statuses.append("refused")
    answers(socks, statuses)
    assert len(statuses) == 1000
    assert set(statuses) <= {"200", "503", "refused"}, set(statuses)
    assert statuses.count("200") >= 100
    assert agent.running()
    assert requests.get(base + "/health", timeout=5).status_code == 200
    agent.stop()


HELD_MAX = 128 + 16  # the connection cap plus the probe slots (/health only)


def test_thousand_idle_connections_hold_at_most_the_cap(agent, workdir):
    """1000 connections that send nothing: the agent keeps at most the cap plus the probe slots
    and answers every other one 503 at once (idle ones it evicts to make room get 503 too);
    the ones it keeps get 408 after the 5 s head timeout; memory stays bounded and /health
    answers again once they are gone."""
    base = start(agent, workdir)
    port = agent.http_port()
    rss0, fds0 = rss_kib(agent.pid), sockets(agent)
    socks, statuses = [], []
    t0 = time.monotonic()
    for i in range(1000):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=15))
        except OSError:
            statuses.append("refused")
    # Connections the agent holds: at most the cap, once those it answered 503 are closed (a
    # burst of accepts is answered and closed on the next turn of the loop).
    agent.wait_for(lambda: sockets(agent) - fds0 <= HELD_MAX, 3,
                   "at most %d connections held" % HELD_MAX)
    assert rss_kib(agent.pid) - rss0 < 16 * 1024  # 144 connections of ~17 KiB at most
    answers(socks, statuses)
    assert time.monotonic() - t0 < 60
    assert len(statuses) == 1000
    assert set(statuses) <= {"408", "503", "refused"}, set(statuses)
    # Each held connection is cut at the head timeout (408), which frees its slot: a slow
    # connect phase (sanitizers, SYN retries) lets more than one round be held.
    n408 = statuses.count("408")
    assert 0 < n408 <= HELD_MAX * (1 + int((time.monotonic() - t0) / 5)), n408
    assert statuses.count("503") >= 1000 - n408 - statuses.count("refused")
    assert agent.running()
    agent.wait_for(lambda: requests.get(base + "/health", timeout=5).status_code == 200, 10,
                   "/health once the idle connections are gone")
    agent.stop()


def sockets(agent):
    return sum(1 for t in agent.fd_targets() if t.startswith("socket:"))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def status_of(base, path):
    try:
        r = requests.get(base + path, timeout=2)
        return r.status_code, r.json() if r.headers.get("Content-Type", "").startswith(
            "application/json") else None
    except requests.RequestException:
        return "refused", None


def test_ready_is_503_while_the_buffer_opens_then_200(agent, workdir):
    """The buffer is opened off the loop: while another process holds spillway.db, /health
    answers 200 and /ready and /metrics 503 "starting"; once it lets go, /ready turns 200."""
    d = workdir / "app"
    d.mkdir()
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}])
    agent.start()  # creates the database
    agent.stop()
    db = sqlite3.connect(str(agent.data_dir / "spillway.db"), isolation_level=None)
    db.execute("PRAGMA locking_mode=EXCLUSIVE")
    db.execute("BEGIN EXCLUSIVE")  # held until ROLLBACK: the agent's open waits (busy timeout)
    try:
        agent.start(wait_ready=False)
        base = "http://127.0.0.1:%d" % agent.http_port()
        for _ in range(10):  # over about half a second, the answers do not change
            assert status_of(base, "/health")[0] == 200
            assert status_of(base, "/ready") == (503, {"status": "not ready", "reason": "starting"})
            assert status_of(base, "/metrics")[0] == 503
            time.sleep(0.05)  # spacing of the probes, not a wait for the agent
    finally:
        db.execute("ROLLBACK")
        db.close()
    agent.wait_for(lambda: status_of(base, "/ready")[0] == 200, 10, "/ready to turn 200")
    assert status_of(base, "/ready")[1] == {"status": "ready"}
    assert status_of(base, "/metrics")[0] == 200
    agent.stop()


def test_ready_is_503_during_shutdown(agent, workdir):
    """While the sinks finish at shutdown (a network sink whose server is down keeps trying for
    its 1.5 s), /ready answers 503 "shutting down" and /health still 200; then the port closes
    and the agent exits 0 within 5 s."""
    d = workdir / "app"
    d.mkdir()
    down = socket.socket()
    down.bind(("127.0.0.1", 0))  # a port nobody listens on: connection refused
    port_down = down.getsockname()[1]
    agent.write_config(
        [{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}],
        sinks=[{"name": "loki", "type": "loki", "url": "http://127.0.0.1:%d" % port_down,
                "batch": {"max_bytes": "64KiB", "max_wait": "100ms"},
                "retry": {"min_backoff": "50ms", "max_backoff": "100ms"}}])
    agent.start(wait_ready=False)
    base = "http://127.0.0.1:%d" % agent.http_port()
    agent.wait_for(lambda: status_of(base, "/ready")[0] == 200, 10, "/ready to turn 200")
    (d / "a.log").write_bytes(b"".join(b"line %d\n" % i for i in range(100)))
    agent.wait_for(lambda: b"request failed" in agent.stderr_path.read_bytes(), 10,
                   "the sink to fail against the closed port")
    seen = []
    done = threading.Event()

    def probe():
        while not done.is_set():
            seen.append((status_of(base, "/ready"), status_of(base, "/health")[0]))
            if seen[-1][0][0] == "refused":
                return
    t = threading.Thread(target=probe, daemon=True)
    t.start()
    took = agent.stop()
    done.set()
    t.join(5)
    down.close()
    assert took < 5.0
    ready = [r for r, _ in seen]
    assert ((503, {"status": "not ready", "reason": "shutting down"}) in ready), ready[-5:]
    # Once 503 was answered, never 200 again; /health kept answering 200 until the port closed.
    first = ready.index((503, {"status": "not ready", "reason": "shutting down"}))
    assert all(r[0] != 200 for r in ready[first:]), ready[first:]
    assert all(h in (200, "refused") for _, h in seen)
    assert sum(1 for r, h in seen[first:] if r[0] == 503 and h == 200) >= 3
