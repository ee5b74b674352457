"""Crash safety: kill -9 the agent at random (seeded) moments while a writer thread keeps
appending docker logs, restart it each time, and at the end require the sink output to equal
the input exactly once, in order per file; the persisted counters must agree and the database
must pass SQLite's integrity check."""

import random
import sqlite3
import threading
import time

import pytest

import loggen
from conftest import HOST, LineCounter, by_name, poll
from loggen import DockerContainer, Feed

TOTAL = 200_000
CONTAINERS = 4
KILLS = 24
BUDGET_S = 170  # the whole test must stay under 3 minutes


class Writer(threading.Thread):
    """Feeds every container's log round-robin in random slices (sometimes ending mid-line),
    staying at most `lag` records ahead of the sink so that kills land while data flows."""

    def __init__(self, feeds, out_path, seed, lag=25_000):
        super().__init__(daemon=True)
        self.feeds = feeds
        self.rng = random.Random(seed)
        self.counter = LineCounter(out_path)
        self.lag = lag
        self.halt = threading.Event()
        self.error = None

    def written(self):
        return sum(f.records_done for f in self.feeds)

    def run(self):
        try:
            for _ in range(100_000):
                active = [f for f in self.feeds if not f.done]
                if not active or self.halt.is_set():
                    return
                ok = poll(lambda: self.counter.count() >= self.written() - self.lag
                          or self.halt.is_set(), timeout=60)
                if not ok:
                    self.error = "the sink made no progress for 60 s"
                    return
                f = self.rng.choice(active)
                f.feed(self.rng.randint(50, 1500), self.rng, cut_ratio=0.3)
            self.error = "writer loop bound reached"
        except Exception as e:
            self.error = repr(e)


@pytest.mark.slow
def test_kill9_at_random_moments_loses_and_duplicates_nothing(agent, workdir):
    t_begin = time.monotonic()
    rng = random.Random(9_000_009)
    croot = workdir / "containers"
    conts, wls, feeds = [], [], []
    for i in range(CONTAINERS):
        c = DockerContainer.create(croot, rng, "crash-%d" % i)
        wl = loggen.docker_workload(rng, TOTAL // CONTAINERS, loggen.Clock(rng), long_ratio=0.001)
        conts.append(c)
        wls.append(wl)
        feeds.append(Feed.of(c.path, wl))

    agent.write_config(
        [{"name": "docker", "type": "docker", "paths": ["%s/*/*-json.log" % croot]}],
        buffer={"max_bytes": "1GiB", "when_full": "block",
                "chunk": {"max_records": 2000, "max_bytes": "1MiB", "max_wait": "200ms"}})
    writer = Writer(feeds, agent.out_path, seed=77)
    agent.start()
    writer.start()
    log = []
    try:
        for i in range(KILLS):
            assert time.monotonic() - t_begin < BUDGET_S - 60, "kill loop too slow: %s" % log
            r = rng.random()
            if r < 0.15:
                how = "right after exec"
            elif r < 0.30:
                how = "once a log file is open"
                agent.wait_for(lambda: any("-json.log" in t for t in agent.fd_targets()), 15,
                               "spillway to open a container log")
            else:
                base = agent.output_count()
                step = rng.randint(1, 12_000)
                how = "after %d more records shipped" % step
                agent.wait_for(lambda: agent.output_count() >= base + step
                               or (not writer.is_alive()
                                   and agent.output_count() >= TOTAL), 30,
                               "progress before kill %d (%s)" % (i + 1, how))
            agent.kill9()
            log.append((i + 1, how, agent.output_count_full()))
            assert writer.error is None, writer.error
            agent.start()
        writer.join(timeout=max(10, BUDGET_S - 40 - (time.monotonic() - t_begin)))
        assert not writer.is_alive(), "writer did not finish in time"
        assert writer.error is None, writer.error
        agent.wait_count(TOTAL, timeout=max(10, BUDGET_S - 10 - (time.monotonic() - t_begin)),
                         exact_recount=True, interval=0.25)
        agent.stop()
    finally:
        writer.halt.set()
        writer.join(timeout=10)

    recs = agent.read_output()
    expected = {c.key(): wl.exp for c, wl in zip(conts, wls)}
    labels = {c.key(): c.labels(HOST, "docker") for c in conts}
    loggen.check_exactly_once(expected, labels, recs)
    assert len(recs) == TOTAL

    # Counters are committed with the chunks: a replay after a crash must not count twice.
    st = agent.status()
    src = by_name(st["sources"], "docker")
    assert src["records"] == TOTAL, (src, log)
    assert src["parse_errors"] == 0 and src["truncated"] == 0, src
    raw_bytes = sum(c.path.stat().st_size for c in conts)
    line_bytes = sum(len(e[2].encode()) for wl in wls for e in wl.exp)
    assert src["bytes"] in (raw_bytes, line_bytes), \
        "source bytes %d is neither the bytes read (%d) nor the line bytes (%d)" % (
            src["bytes"], raw_bytes, line_bytes)
    sink = by_name(st["sinks"], "local")
    assert sink["backlog_chunks"] == 0 and sink["backlog_records"] == 0, sink
    for f in st["files"]:
        assert f["offset"] == f["size"], f

    db = sqlite3.connect("file:%s?mode=ro" % (agent.data_dir / "spillway.db"), uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db.close()
    assert time.monotonic() - t_begin < 180, "crash test exceeded its 3 minute budget"
