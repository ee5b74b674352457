"""One agent per data_dir: `spillway run` holds an flock on data_dir/spillway.lock for its whole
life. A second agent on the same data_dir exits at once with the holder's PID, or with
--wait-lock waits (serving /health 200 and /ready 503 "waiting for the data_dir lock") and
takes over when the first exits, without repeating a record. status, search and check do not
take the lock and work beside a running agent."""

import subprocess
import time

import requests

from conftest import LineCounter


def twin(agents, first, name):
    """A second Agent object on the first one's config, data_dir and sink output."""
    b = agents(name)
    b.config_path, b.data_dir, b.out_path = first.config_path, first.data_dir, first.out_path
    b.counter = LineCounter(b.out_path)
    return b


def write_lines(path, start, n):
    with open(path, "a") as f:
        f.write("".join("line %05d\n" % i for i in range(start, start + n)))


def test_second_agent_is_refused_with_the_holders_pid(agents, workdir):
    a = agents()
    d = workdir / "app"
    d.mkdir()
    write_lines(d / "app.log", 0, 100)
    a.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}])
    a.start()
    a.wait_count(100, 20)
    lock = a.data_dir / "spillway.lock"
    assert lock.read_text().split("\n")[0] == str(a.pid)
    b = twin(agents, a, "second")
    t0 = time.monotonic()
    b.start(wait_ready=False)
    rc = b.proc.wait(timeout=10)
    assert rc == 1 and time.monotonic() - t0 < 5, rc
    err = b.stderr_tail()
    assert "pid %d" % a.pid in err and "--wait-lock" in err and str(a.data_dir) in err, err
    # The refused agent touched nothing: the first goes on, and nothing was read twice.
    write_lines(d / "app.log", 100, 50)
    a.wait_count(150, 20)
    a.stop()
    assert [r["line"] for r in a.read_output()] == ["line %05d" % i for i in range(150)]


def test_wait_lock_waits_for_the_first_agent_then_takes_over(agents, workdir):
    a = agents()
    d = workdir / "app"
    d.mkdir()
    write_lines(d / "app.log", 0, 1000)
    a.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}])
    a.start()
    a.wait_count(1000, 20)
    b = twin(agents, a, "second")
    b.start(wait_ready=False, args=["--wait-lock", "60s"])
    base = "http://127.0.0.1:%d" % b.http_port()
    r = requests.get(base + "/ready", timeout=5)  # the port is logged once the server listens
    assert r.status_code == 503 and r.json()["reason"] == "waiting for the data_dir lock", r.text
    assert requests.get(base + "/health", timeout=5).status_code == 200
    assert "pid %d" % a.pid in b.stderr_tail()
    write_lines(d / "app.log", 1000, 1000)  # read by the first agent, or else by the second
    b.assert_never(lambda: requests.get(base + "/ready", timeout=5).status_code != 503, 1.0,
                   "the second agent became ready while the first held the lock")
    a.stop()
    b.wait_for(lambda: requests.get(base + "/ready", timeout=5).status_code == 200, 20,
               "the second agent to take over")
    assert (a.data_dir / "spillway.lock").read_text().split("\n")[0] == str(b.pid)
    write_lines(d / "app.log", 2000, 1000)
    b.wait_count(3000, 30, exact_recount=True)
    b.stop()
    assert [r["line"] for r in b.read_output()] == ["line %05d" % i for i in range(3000)]


def test_wait_lock_gives_up_after_its_duration(agents, workdir):
    a = agents()
    (workdir / "app").mkdir()
    a.write_config([{"name": "app", "type": "file", "paths": ["%s/app/*.log" % workdir]}])
    a.start()
    b = twin(agents, a, "second")
    t0 = time.monotonic()
    b.start(wait_ready=False, args=["--wait-lock", "1s"])
    rc = b.proc.wait(timeout=15)
    took = time.monotonic() - t0
    assert rc == 1 and 0.9 <= took < 10, (rc, took)
    assert "gave up waiting for the data_dir lock" in b.stderr_tail()
    assert "pid %d" % a.pid in b.stderr_tail()
    a.stop()


def test_status_search_and_check_work_beside_a_running_agent(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    write_lines(d / "app.log", 0, 200)
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}])
    agent.start()
    agent.wait_count(200, 20)
    st = agent.status()
    assert [f["offset"] for f in st["files"]] == [(d / "app.log").stat().st_size]
    p = agent.cli("search", "-c", agent.config_path, "--output", "json", "line 0019[0-9]")
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.decode().strip().splitlines()) == 10
    p = agent.cli("check", "-c", agent.config_path)
    assert p.returncode == 0, p.stderr
    agent.check_alive()
    agent.stop()


def test_the_lock_is_held_across_a_live_reload(agents, workdir):
    a = agents()
    (workdir / "app").mkdir()
    a.write_config([{"name": "app", "type": "file", "paths": ["%s/app/*.log" % workdir]}])
    a.start()
    a.proc.send_signal(1)  # SIGHUP: stop the pipeline, start it again with the file's config
    a.wait_for(lambda: a.stderr_tail(100000).count("running: 1 source, ") >= 2, 20, "the reload")
    b = twin(agents, a, "second")
    b.start(wait_ready=False)
    assert b.proc.wait(timeout=10) == 1 and "pid %d" % a.pid in b.stderr_tail()
    a.stop()
