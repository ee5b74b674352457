"""A full filesystem under data_dir (a small tmpfs filled with a ballast file; root only): the
agent stops reading, drops nothing, says why on /ready, /metrics and in its log, and once space
returns every line arrives exactly once and the database passes SQLite's integrity check. Also
kill -9 while the disk is full, then a restart after space returns."""

import os
import shutil
import sqlite3
import threading
import time

import requests

import rethelp
from conftest import wait_for
from test_metrics import scrape, val


class Appender(threading.Thread):
    """Appends numbered, poorly compressible lines to path until stopped (a source that keeps
    growing, also while the buffer's disk is full)."""

    def __init__(self, path, per_tick=200):
        super().__init__(daemon=True)
        self.path, self.per_tick = path, per_tick
        self.n = 0
        self.halt = threading.Event()

    def run(self):
        with open(self.path, "a") as f:
            while not self.halt.is_set():
                for _ in range(self.per_tick):
                    f.write("line-%08d %s\n" % (self.n, os.urandom(48).hex()))
                    self.n += 1
                f.flush()
                self.halt.wait(0.02)  # pacing of the producer, not a wait on the agent

    def stop(self):
        self.halt.set()
        self.join(10)
        return self.n


def fill(fs, name="ballast.bin"):
    """Writes a ballast file until the filesystem refuses (ENOSPC)."""
    try:
        with open(fs / name, "wb") as f:
            for _ in range(1 << 16):
                f.write(os.urandom(64 << 10))
                f.flush()
    except OSError:
        pass
    return fs / name


def steady(f, hold):
    """A predicate that is true once f() has returned the same value for hold seconds."""
    seen = {"v": None, "t": 0.0}

    def pred():
        v, now = f(), time.monotonic()
        if v != seen["v"]:
            seen["v"], seen["t"] = v, now
        return now - seen["t"] >= hold
    return pred


def ready(port):
    r = requests.get("http://127.0.0.1:%d/ready" % port, timeout=5)
    return r.status_code, r.text


def check_exactly_once(agent, total):
    lines = [r["line"] for r in agent.read_output()]
    seqs = [int(l.split()[0][5:]) for l in lines]
    dup = len(seqs) - len(set(seqs))
    missing = set(range(total)) - set(seqs)
    assert dup == 0 and not missing, "%d duplicates, %d missing (first %s)" % (
        dup, len(missing), sorted(missing)[:5])
    assert seqs == sorted(seqs), "lines out of order"


def integrity(agent, workdir):
    copy = workdir / "copy"
    copy.mkdir(exist_ok=True)
    for name in os.listdir(agent.data_dir):
        if name.startswith("spillway.db"):
            shutil.copy(agent.data_dir / name, copy / name)
    con = sqlite3.connect(str(copy / "spillway.db"))
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()


def start_full(agent, workdir, fs):
    src = workdir / "src"
    src.mkdir()
    agent.data_dir = fs / "data"
    agent.write_config([{"name": "app", "type": "file", "paths": [str(src / "*.log")]}])
    app = Appender(src / "app.log")
    app.start()
    agent.start()
    port = agent.http_port()
    agent.wait_count(500, 30)
    ballast = fill(fs)
    wait_for(lambda: ready(port) == (503, '{"status":"not ready","reason":"buffer disk full"}\n'),
             60, "/ready to say the buffer's disk is full")
    return app, port, ballast


def test_full_disk_pauses_reading_and_resumes_exactly_once(agent, workdir):
    rethelp.need_root("a full filesystem (tmpfs)")
    with rethelp.tmpfs(workdir / "fs", "8m") as fs:
        app, port, ballast = start_full(agent, workdir, fs)
        m = scrape(port)
        assert val(m, "spillway_buffer_disk_full") == 1
        assert val(m, "spillway_buffer_commit_failures_total", reason="disk_full") >= 1
        assert "buffer disk full under" in agent.stderr_path.read_text(errors="replace")
        # Reading is paused: nothing more is sealed for the writer although the file grows.
        q = lambda: val(scrape(port), "spillway_buffer_queued_bytes")
        wait_for(steady(q, 0.5), 10, "the queue to settle (chunks read before the pause)")
        before, grown = q(), app.n
        agent.assert_never(lambda: q() != before, 1.5, "queued bytes to stay put while full")
        assert app.n > grown, "the source did not grow meanwhile"
        assert before < (8 << 20), "queued %d bytes while full" % before
        total = app.stop()
        os.unlink(ballast)
        wait_for(lambda: ready(port)[0] == 200, 30, "/ready to recover once space returns")
        assert val(scrape(port), "spillway_buffer_disk_full") == 0
        agent.wait_count(total, 60, exact_recount=True)
        agent.stop()
        check_exactly_once(agent, total)
        integrity(agent, workdir)


def test_kill9_while_full_then_restart_exactly_once(agent, workdir):
    rethelp.need_root("a full filesystem (tmpfs)")
    with rethelp.tmpfs(workdir / "fs", "8m") as fs:
        app, port, ballast = start_full(agent, workdir, fs)
        agent.kill9()
        total = app.stop()
        os.unlink(ballast)
        agent.start()
        agent.wait_count(total, 60, exact_recount=True)
        agent.stop()
        check_exactly_once(agent, total)
        integrity(agent, workdir)
