"""buffer.max_bytes: `block` stops reading and loses nothing; `drop_oldest` keeps the newest
records, bounds the buffer and counts what it dropped. Also: Kubernetes-style symlinked paths."""

import os
import random

from conftest import by_name

MAX = 1024 * 1024


def write_lines(path, n, seed):
    rng = random.Random(seed)
    # Random hex compresses poorly, so ~12 MB really overflow a 1 MiB buffer.
    lines = ["%06d %s" % (i, "%032x" % rng.getrandbits(128) * 3) for i in range(n)]
    path.write_text("".join(l + "\n" for l in lines))
    return lines


def start_without_sink(agent):
    """No sink output to wait on: wait until status can read the agent's database."""
    agent.start(wait_ready=False)
    agent.wait_for(lambda: agent.cli("status", "-c", agent.config_path).returncode == 0, 15,
                   "the agent to create its database")


def settled(agent, key, timeout):
    """Waits until status()[key-path] stops changing for a second; returns the last status."""
    last = {"v": None, "n": 0, "st": None}

    def stable():
        st = agent.status()
        v = key(st)
        if v == last["v"]:
            last["n"] += 1
        else:
            last["v"], last["n"] = v, 0
        last["st"] = st
        return last["n"] >= 10
    agent.wait_for(stable, timeout, "status to settle", interval=0.1)
    return last["st"]


def config(agent, d, when_full, sinks):
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}],
                       buffer={"max_bytes": "1MiB", "when_full": when_full,
                               "chunk": {"max_records": 1000, "max_bytes": "64KiB",
                                         "max_wait": "100ms"}},
                       sinks=sinks)


def test_block_stops_reading_and_loses_nothing(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    lines = write_lines(d / "a.log", 60000, 1)
    size = (d / "a.log").stat().st_size
    config(agent, d, "block", [])
    start_without_sink(agent)
    st = settled(agent, lambda s: (s["buffer"]["bytes"], sum(f["offset"] for f in s["files"])), 30)
    agent.stop()
    assert 0 < st["buffer"]["bytes"] <= MAX + 64 * 1024, st["buffer"]
    offset = sum(f["offset"] for f in st["files"])
    assert 0 < offset < size, "reading must stop while the buffer is full"
    assert st["buffer"]["dropped_records"] == 0
    # A sink appears: everything drains, nothing was lost, nothing repeated.
    config(agent, d, "block", None)
    agent.start()
    agent.wait_count(len(lines), timeout=60)
    agent.stop()
    assert [r["line"] for r in agent.read_output()] == lines


def test_drop_oldest_bounds_buffer_and_counts(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    lines = write_lines(d / "a.log", 60000, 2)
    size = (d / "a.log").stat().st_size
    config(agent, d, "drop_oldest", [])
    start_without_sink(agent)
    agent.wait_for(lambda: sum(f["offset"] for f in agent.status()["files"]) == size, 60,
                   "the whole file to be read")
    agent.stop()
    st = agent.status()
    b = st["buffer"]
    assert b["bytes"] <= MAX, b
    assert b["dropped_records"] > 0 and b["dropped_chunks"] > 0, b
    assert b["records"] + b["dropped_records"] == len(lines), b
    assert by_name(st["sources"], "app")["records"] == len(lines)
    config(agent, d, "drop_oldest", None)
    agent.start()
    agent.wait_count(b["records"], timeout=60)
    agent.stop()
    got = [r["line"] for r in agent.read_output()]
    assert got == lines[len(lines) - len(got):], "the newest records are kept, in order"
    assert len(got) == b["records"]


def test_symlinked_paths_use_the_target(agent, workdir):
    """/var/log/containers/*.log are symlinks into /var/log/pods/: labels and identity come
    from the target, and each line arrives once."""
    pod = workdir / "pods" / "shop_web-5c7d_1f2e3d4c-0000-4000-8000-000000000001" / "nginx"
    pod.mkdir(parents=True)
    target = pod / "0.log"
    n = 500
    target.write_text("".join("2026-11-23T15:33:52.%09dZ stdout F hello %d\n" % (i, i)
                              for i in range(n)))
    links = workdir / "containers"
    links.mkdir()
    os.symlink(target, links / "web-5c7d_shop_nginx-abc.log")
    agent.write_config([{"name": "k8s", "type": "cri", "paths": ["%s/*.log" % links]}])
    agent.start()
    agent.wait_count(n, timeout=30)
    agent.stop()
    recs = agent.read_output()
    assert [r["line"] for r in recs] == ["hello %d" % i for i in range(n)]
    lab = recs[0]["labels"]
    assert (lab["namespace"], lab["pod"], lab["container"]) == ("shop", "web-5c7d", "nginx")
    assert lab["pod_uid"] == "1f2e3d4c-0000-4000-8000-000000000001"
    assert [f["path"] for f in agent.status()["files"]] == [os.path.realpath(target)]
