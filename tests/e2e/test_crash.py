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
from conftest import HOST, SLOW, LineCounter, by_name, poll
from loggen import DockerContainer, Feed

TOTAL = 200_000
CONTAINERS = 4
KILLS = 24
BUDGET_S = 170 * SLOW  # the whole test must stay under 3 minutes (on a normal build)


class Writer(threading.Thread):
    """Feeds every container's log round-robin in random slices (sometimes ending mid-line),
    staying at most `lag` records ahead of the sink so that kills land while data flows."""

    def __init__(self, feeds, out_path, seed, lag=25_000):
        super().__init__(daemon=True)
        self.feeds = feeds
        self.allow = 0  # records the test lets it write so far (spreads ingest over the kills)
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
                ok = poll(lambda: (self.counter.count() >= self.written() - self.lag
                           and self.written() < self.allow) or self.halt.is_set(), timeout=60)
                if not ok:
                    self.error = "no progress for 60 s (written %d, allowed %d, sink %d)" % (
                        self.written(), self.allow, self.counter.count())
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
    writer.allow = TOTAL // KILLS
    agent.start()
    writer.start()
    log = []
    try:
        for i in range(KILLS):
            assert time.monotonic() - t_begin < BUDGET_S - 60, "kill loop too slow: %s" % log
            t_kill = time.monotonic()
            writer.allow = TOTAL * (i + 1) // KILLS
            r = rng.random()
            if r < 0.15:
                how = "once a log file is open"
                agent.wait_for(lambda: any("-json.log" in t for t in agent.fd_targets()), 15,
                               "spillway to open a container log")
            elif r < 0.35:
                base = writer.written()
                step = rng.randint(1, 4000)
                how = "after %d more records written" % step
                agent.wait_for(lambda: writer.written() >= min(base + step, writer.allow)
                               or not writer.is_alive(), 30,
                               "writer progress before kill %d" % (i + 1))
            else:
                base = agent.output_count()
                step = rng.randint(1, 8000)
                how = "after %d more records shipped" % step
                # ...or once it has caught up with everything written so far
                agent.wait_for(lambda: agent.output_count() >= min(base + step, writer.allow)
                               or not writer.is_alive(), 30,
                               "progress before kill %d (%s)" % (i + 1, how))
            agent.kill9()
            log.append((i + 1, how, agent.output_count_full(), writer.written(),
                        round(time.monotonic() - t_kill, 2)))
            assert writer.error is None, writer.error
            exec_kill = rng.random() < 0.15
            if exec_kill:  # and sometimes kill it again before it has even started up
                agent.start(wait_ready=False)
                agent.kill9()
                log.append((i + 1, "right after exec"))
            agent.start()
        writer.allow = TOTAL
        writer.join(timeout=max(10, BUDGET_S - 40 - (time.monotonic() - t_begin)))
        assert not writer.is_alive(), "writer did not finish in time"
        assert writer.error is None, writer.error
        agent.wait_count(TOTAL, timeout=max(10, BUDGET_S - 10 - (time.monotonic() - t_begin)),
                         exact_recount=True, interval=0.25)
        agent.stop()
    finally:
        writer.halt.set()
        writer.join(timeout=10)

    print("kills (n, moment, sink lines, records written, seconds):", log)
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
    assert time.monotonic() - t_begin < 180 * SLOW, "crash test exceeded its 3 minute budget"
