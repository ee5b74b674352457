"""A damaged spillway.db (garbage over middle pages, a truncated file): the agent does not
crash-loop; it moves the file aside, logs what was lost, counts it, salvages what it can read and
reads again from their start the files whose unshipped chunks were lost. Every source line
reaches the file sink at least once, and the duplicates are exactly what the re-read accounting
(the log line per file and its byte count) says. `spillway check --db` and `spillway status`
report the damage without starting."""

import os
import random
import re
import socket

import pytest

from conftest import wait_for
from test_metrics import scrape, val

FILES = 4
LINES = 4000
PAGE = 16384

REREAD_RE = re.compile(r'"msg":"salvage: (\S+) \(source [^)]*\) is read again from its start: '
                       r'.*?up to (\d+) bytes')


def write_sources(d, rng):
    d.mkdir()
    paths = []
    for f in range(FILES):
        p = d / ("app%d.log" % f)
        # Poorly compressible lines: the buffer spans many pages.
        p.write_text("".join("f%d-%06d %s\n" % (f, i, rng.randbytes(40).hex()) for i in range(LINES)))
        paths.append(p)
    return paths


def configure(agent, src, dead_port):
    # A second sink that never delivers keeps every chunk unacknowledged by some sink: a lost
    # chunk then matters and its file must be read again.
    agent.write_config(
        [{"name": "app", "type": "file", "paths": [str(src / "*.log")]}],
        buffer={"max_bytes": "1GiB", "when_full": "block",
                "chunk": {"max_records": 300, "max_bytes": "1MiB", "max_wait": "100ms"}},
        sinks=[{"name": "local", "type": "file", "path": str(agent.out_path)},
               {"name": "down", "type": "loki", "url": "http://127.0.0.1:%d" % dead_port,
                "retry": {"min_backoff": "50ms", "max_backoff": "200ms"}}])


def fill_and_stop(agent, workdir):
    rng = random.Random(15)
    src = workdir / "src"
    paths = write_sources(src, rng)
    down = socket.socket()
    down.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    configure(agent, src, down.getsockname()[1])
    agent.start()
    agent.wait_count(FILES * LINES, 60)
    agent.stop()
    down.close()
    db = agent.data_dir / "spillway.db"
    assert not (agent.data_dir / "spillway.db-wal").exists() or \
        (agent.data_dir / "spillway.db-wal").stat().st_size == 0
    return paths, db


def check_damaged_cli(agent, db):
    p = agent.cli("check", "-c", agent.config_path, "--db")
    assert p.returncode != 0, "check --db passed a damaged database: %r" % p.stdout
    assert str(db) in p.stderr.decode(), p.stderr
    assert b"damaged" in p.stderr or b"not a database" in p.stderr or b"malformed" in p.stderr
    s = agent.cli("status", "-c", agent.config_path)
    assert s.returncode != 0, "status exited 0 on a damaged database: %r" % s.stdout[-500:]
    assert str(db) in s.stderr.decode(), s.stderr


def restart_and_check(agent, workdir, paths, db):
    before = agent.read_raw()
    agent.start()
    port = agent.http_port()
    log = lambda: agent.stderr_path.read_text(errors="replace")
    wait_for(lambda: "is damaged" in log(), 30, "the damage to be logged")
    moved = [n for n in os.listdir(agent.data_dir) if n.startswith("spillway.db.damaged-")]
    assert moved, os.listdir(agent.data_dir)
    assert re.search(r'moved aside to \S+spillway\.db\.damaged-\d{8}T\d{6}Z', log())
    rereads = {p: int(n) for p, n in REREAD_RE.findall(log())}
    # The duplicates the accounting allows: the lines of each re-read file before its old offset.
    expect_dups = 0
    for p, n in rereads.items():
        with open(p, "rb") as f:
            expect_dups += f.read(n).count(b"\n")
    total = FILES * LINES
    wait_for(lambda: agent.output_count_full() >= total + expect_dups, 60,
             "every line plus %d re-read duplicates at the sink (have %d)"
             % (expect_dups, agent.output_count_full()))
    m = scrape(port)
    assert val(m, "spillway_buffer_damaged_total") == 1
    assert val(m, "spillway_buffer_salvage_reread_files_total") == len(rereads)
    agent.stop()
    assert agent.read_raw().startswith(before), "output before the damage was rewritten"
    lines = [r["line"] for r in agent.read_output()]
    counts = {}
    for l in lines:
        key = l.split()[0]
        counts[key] = counts.get(key, 0) + 1
    missing = [("f%d-%06d" % (f, i)) for f in range(FILES) for i in range(LINES)
               if ("f%d-%06d" % (f, i)) not in counts]
    assert not missing, "%d lines lost, first %s" % (len(missing), missing[:5])
    dups = len(lines) - len(counts)
    assert dups == expect_dups, "%d duplicates, the re-read accounting says %d (%s)" % (
        dups, expect_dups, rereads)
    # The agent runs on the salvaged database, which is sound.
    p = agent.cli("check", "-c", agent.config_path, "--db")
    assert p.returncode == 0, p.stderr
    return rereads


def test_garbage_over_middle_pages(agent, workdir):
    paths, db = fill_and_stop(agent, workdir)
    size = db.stat().st_size
    assert size >= 16 * PAGE, "database too small to damage its middle (%d bytes)" % size
    pages = size // PAGE
    rng = random.Random(3)
    with open(db, "r+b") as f:
        for pg in range(pages // 2 - 2, pages // 2 + 2):
            f.seek(pg * PAGE)
            f.write(rng.randbytes(PAGE))
    check_damaged_cli(agent, db)
    restart_and_check(agent, workdir, paths, db)


def test_truncated_to_half(agent, workdir):
    paths, db = fill_and_stop(agent, workdir)
    size = db.stat().st_size
    with open(db, "r+b") as f:
        f.truncate(size // 2 // PAGE * PAGE)
    check_damaged_cli(agent, db)
    rereads = restart_and_check(agent, workdir, paths, db)
    assert rereads, "half the chunks are gone yet no file was read again"


def test_garbage_over_the_header_starts_empty_and_rereads(agent, workdir):
    """Nothing can be read (page 1 is garbage): the agent still starts, on a new database."""
    paths, db = fill_and_stop(agent, workdir)
    with open(db, "r+b") as f:
        f.write(os.urandom(PAGE))
    check_damaged_cli(agent, db)
    agent.start()
    wait_for(lambda: "is damaged" in agent.stderr_path.read_text(errors="replace"), 30,
             "the damage to be logged")
    agent.stop()
    assert any(n.startswith("spillway.db.damaged-") for n in os.listdir(agent.data_dir))


def test_kill9_then_garbage_runs_on_salvage(agent, workdir):
    """`spillway run` after a crash: the WAL of the killed agent sits beside the damaged file."""
    rng = random.Random(16)
    src = workdir / "src"
    write_sources(src, rng)
    down = socket.socket()
    down.bind(("127.0.0.1", 0))
    configure(agent, src, down.getsockname()[1])
    agent.start()
    agent.wait_count(FILES * LINES, 60)
    agent.stop()  # the bulk checkpointed into spillway.db; the WAL of the next run is small
    with open(src / "app0.log", "a") as f:
        f.write("".join("f0-%06d %s\n" % (i, rng.randbytes(40).hex()) for i in range(LINES, LINES + 100)))
    agent.start()
    agent.wait_count(FILES * LINES + 100, 60)
    agent.kill9()
    assert (agent.data_dir / "spillway.db-wal").stat().st_size > 0
    db = agent.data_dir / "spillway.db"
    pages = db.stat().st_size // PAGE
    assert pages >= 16, "database too small to damage its middle (%d pages)" % pages
    with open(db, "r+b") as f:
        f.seek(pages // 2 * PAGE)
        f.write(rng.randbytes(2 * PAGE))
    agent.start()
    log = lambda: agent.stderr_path.read_text(errors="replace")
    wait_for(lambda: " open (agent id" in log(), 30, "the buffer to open")
    rereads = {p: int(n) for p, n in REREAD_RE.findall(log())}
    bound = 0
    for p, n in rereads.items():
        with open(p, "rb") as f:
            bound += f.read(n).count(b"\n")
    assert "is damaged" in log(), "the damage was not detected (masked by the WAL?)"
    total = FILES * LINES + 100
    keys = lambda: {r["line"].split()[0] for r in agent.read_output()}
    wait_for(lambda: len(keys()) == total, 60, "every line at the sink at least once")
    agent.stop()
    lines = [r["line"] for r in agent.read_output()]
    # After a crash the file sink may not have had every lost chunk: those lines come once.
    assert len(lines) - total <= bound, "%d duplicates, the re-read accounting allows %d" % (
        len(lines) - total, bound)
    down.close()
