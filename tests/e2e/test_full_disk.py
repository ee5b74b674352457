"""Relief on a full disk (issue #15, point 5): a 40 MiB tmpfs filled to ~99 % by one live log that a
writer keeps appending to. Compression goes in pieces and releases the source's archived blocks
(punch-hole), so it needs only a little free space; a kill -9 in the middle of it (agent or
`spillway rotate`) loses and duplicates nothing. Relief never acts on a buffer that lives on another
filesystem. The data_dir and the sink output are on the ordinary disk (the test's workdir)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rethelp
from conftest import wait_for
from rethelp import log_records, usage_percent

MiB = 1 << 20
PAD = b"y" * 56
LINE = b"seq=%09d " + PAD + b"\n"   # 71 bytes: the same shape as rethelp's SEQ_LINE expects

WRITER = r'''
import errno, os, sys, time
path, out, seq = sys.argv[1], sys.argv[2], int(sys.argv[3])
pad = b"y" * 56
stop = [False]
import signal
signal.signal(signal.SIGTERM, lambda s, f: stop.__setitem__(0, True))
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
times = open(out + ".times", "w")
while not stop[0]:
    for _ in range(20):                      # a burst of lines, then a short pause
        line = b"seq=%09d " % seq + pad + b"\n"
        t0 = time.monotonic_ns()
        while line:                          # a full disk: finish the line once there is room
            try:
                line = line[os.write(fd, line):]
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                time.sleep(0.01)
        times.write("%d %d %d\n" % (seq, t0, time.monotonic_ns()))
        seq += 1
    time.sleep(0.02)
times.close()
open(out + ".tmp", "w").write(str(seq))
os.rename(out + ".tmp", out)
'''


class SeqWriter:
    """Appends "seq=NNNNNNNNN yyy..." lines to path from seq0 on, ~1000 lines/s in bursts; on
    ENOSPC it waits and completes the line. stop() returns the next seq (lines 0..n-1 exist)."""

    def __init__(self, path, workdir, seq0):
        self.out = Path(workdir) / "seqwriter.count"
        script = Path(workdir) / "seqwriter.py"
        script.write_text(WRITER)
        self.proc = subprocess.Popen([sys.executable, str(script), str(path), str(self.out), str(seq0)],
                                     stdin=subprocess.DEVNULL)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("the writer could not finish its line: the disk stayed full")
        assert self.proc.returncode == 0, "the writer failed"
        return int(self.out.read_text())

    def times(self):
        t = {}
        with open(str(self.out) + ".times") as f:
            for line in f:
                q, a, b = line.split()
                t[int(q)] = (int(a), int(b))
        return t

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def fill_live(path, fs, percent):
    """Writes numbered lines into path until fs is at least percent used; returns the next seq."""
    pct, used, avail = usage_percent(fs)
    want = int((used + avail) * percent / 100) - used
    n = want // len(LINE % 0) + 1
    with open(path, "ab") as f:
        for s0 in range(0, n, 50000):
            f.write(b"".join(LINE % s for s in range(s0, min(n, s0 + 50000))))
        f.flush()
        os.fsync(f.fileno())
    assert usage_percent(fs)[0] >= percent - 0.5, usage_percent(fs)
    return n


def parts(d):
    return sorted(n for n in os.listdir(d) if ".tmp-part-" in n)


def has_hole(path):
    """Has the file released blocks (allocated well below its size)?"""
    st = os.stat(path)
    return st.st_blocks * 512 + MiB < st.st_size


def family_content(d, base):
    """The archives (oldest first, decompressed with zstd -dc) followed by the live file."""
    names = [n for n in os.listdir(d) if re.fullmatch(re.escape(base) + r"\.\d+\.zst", n)]
    names.sort(key=lambda n: -int(n.split(".")[-2]))
    data = b""
    for n in names:
        data += subprocess.run(["zstd", "-dc", str(Path(d) / n)], capture_output=True, check=True).stdout
    return names, data + (Path(d) / base).read_bytes()


def assert_exactly_once(data, n, lost_ok=frozenset()):
    """data is lines seq=0..n-1, each once, in order: no loss, no duplicate, no zero bytes. A
    line in lost_ok (written inside a logged truncation window: copytruncate's documented race)
    may be missing."""
    assert b"\0" not in data, "a zero-filled hole in the archived or live content (offset %d)" % data.index(b"\0")
    lines = data.split(b"\n")
    assert lines[-1] == b"", "the content does not end with a whole line"
    seqs = []
    for i, line in enumerate(lines[:-1]):
        m = re.match(rb"^seq=(\d{9}) y{56}$", line)
        assert m, "line %d is not a whole writer line: %r" % (i, line[:100])
        seqs.append(int(m.group(1)))
    lost = set(range(n)) - set(seqs)
    if lost <= set(lost_ok) and seqs == sorted(set(seqs)) and max(seqs, default=-1) < n:
        return lost
    raise AssertionError("lines: %d of %d, missing %s..., %d duplicates, in order: %s"
                         % (len(seqs), n, sorted(lost)[:10], len(seqs) - len(set(seqs)), seqs == sorted(seqs)))


def assert_sink_once(agent, n, lost=frozenset()):
    seqs = [int(r["line"][4:13]) for r in agent.read_output()]
    assert len(seqs) == len(set(seqs)), "the sink got a line twice"
    assert set(seqs) == set(range(n)) - set(lost), "the sink misses %d lines" % (n - len(set(seqs)))


def lost_in_windows(agent, writer):
    """Writer lines whose write() overlapped a truncation window any agent run logged."""
    wins = []
    for p in sorted(agent.dir.glob(agent.name + ".run*.stderr")):
        wins += rethelp.windows(log_records(p.read_bytes()))
    return {q for q, (a, b) in writer.times().items() if any(a <= t1 and b >= t0 for t0, t1 in wins)}


def configure(agent, workdir, logs, fs, level=3, pressure=True):
    agent.data_dir = workdir / "data"            # another filesystem than the full one
    agent.write_config(
        [{"name": "app", "type": "file", "paths": [str(logs / "app.log")], "read_from": "head"}],
        buffer={"max_bytes": "1GiB", "when_full": "block",
                "chunk": {"max_records": 5000, "max_bytes": "1MiB", "max_wait": "100ms"}},
        extra={"retention": [{"name": "app", "paths": [str(logs / "app.log")],
                              "rotate": {"max_size": "1GiB", "method": "copytruncate"},
                              "compress": {"codec": "zstd", "level": level}}],
               **({"disk_pressure": {"path": str(fs), "soft_percent": 80, "hard_percent": 90,
                                     "interval": "500ms"}} if pressure else {})})


def relieved(logs, fs):
    return usage_percent(fs)[0] < 80 and (logs / "app.log.1.zst").exists() and not parts(logs)


def check_everything(agent, logs, n, writer):
    names, data = family_content(logs, "app.log")
    assert names, "no archive was made"
    lost = assert_exactly_once(data, n, lost_in_windows(agent, writer))
    subprocess.run(["zstd", "-tq"] + [str(logs / x) for x in names], check=True)
    agent.wait_count(n - len(lost), 120)
    agent.stop()
    assert_sink_once(agent, n, lost)
    print("STATS lines", n, "lost inside a truncation window", len(lost))
    for p in sorted(agent.dir.glob(agent.name + ".run*.stderr")):
        for r in log_records(p.read_bytes()):
            if r.get("component") == "retention":
                print("STATS", p.name, r.get("msg", "")[:300])


def test_relief_converges_from_99_percent_with_one_live_file(agent, workdir):
    """The measured failure: one 40 MB live log on a 40 MiB filesystem. Relief compresses it in
    pieces, releasing what is archived, truncates it, and usage falls below soft_percent while
    the writer goes on; every line is in archive + live file and in the sink exactly once."""
    rethelp.need_root("a full tmpfs")
    with rethelp.tmpfs(workdir / "fs", "40m") as fs:
        logs = fs / "logs"
        logs.mkdir()
        configure(agent, workdir, logs, fs)
        seq0 = fill_live(logs / "app.log", fs, 99)
        agent.start()
        w = SeqWriter(logs / "app.log", workdir, seq0)
        def rotated():  # the action's log line comes once it is done, after the rename; a
            # compression that waited for the reader to catch up ends as a resume
            return [r for r in log_records(agent.stderr_path.read_bytes())
                    if r.get("msg", "").startswith(("action=rotate", "action=resume"))
                    and "method=copytruncate" in r.get("msg", "")]
        try:
            agent.wait_for(lambda: relieved(logs, fs), 120, "usage below soft_percent, the archive finished")
            agent.wait_for(rotated, 30, "the rotation's log line")
        finally:
            n = w.stop()
        recs = log_records(agent.stderr_path.read_bytes())
        assert not any("No space left" in r.get("msg", "") for r in recs), "relief ran out of space"
        rot = rotated()
        assert rot and "pieces=yes punched=yes" in rot[-1]["msg"], rot
        check_everything(agent, logs, n, w)


def test_kill9_agent_in_the_middle_of_a_compression(agent, workdir):
    """kill -9 while the in-progress archive exists and the source already has a hole; the
    restarted agent finishes it (never deletes it): exactly once, in order."""
    rethelp.need_root("a full tmpfs")
    with rethelp.tmpfs(workdir / "fs", "40m") as fs:
        logs = fs / "logs"
        logs.mkdir()
        configure(agent, workdir, logs, fs, level=19)   # slow: a wide window to kill in
        seq0 = fill_live(logs / "app.log", fs, 99)
        agent.start()
        w = SeqWriter(logs / "app.log", workdir, seq0)
        try:
            agent.wait_for(lambda: parts(logs) and has_hole(logs / "app.log"), 120,
                           "an in-progress archive and a hole in the source")
            agent.kill9()
            assert parts(logs), "the in-progress archive went away"
            agent.start()
            agent.wait_for(lambda: relieved(logs, fs), 180, "the compression to be finished after the restart")
        finally:
            n = w.stop()
        recs = log_records(agent.stderr_path.read_bytes())
        assert any(r.get("msg", "").startswith("action=resume") for r in recs), "not resumed"
        check_everything(agent, logs, n, w)


def test_kill9_rotate_command_in_the_middle_of_a_compression(agent, workdir):
    """The same with `spillway rotate`: killed mid-compression, the next run finishes it."""
    rethelp.need_root("a full tmpfs")
    with rethelp.tmpfs(workdir / "fs", "40m") as fs:
        logs = fs / "logs"
        logs.mkdir()
        configure(agent, workdir, logs, fs, level=19)
        seq0 = fill_live(logs / "app.log", fs, 99)
        configure(agent, workdir, logs, fs, level=19, pressure=False)  # the agent only reads
        agent.start()
        agent.wait_count(seq0, 120)
        agent.stop()
        configure(agent, workdir, logs, fs, level=19)
        grown = 0
        for kill in range(4):  # killed at different points: at once, then after more pieces each time
            p = subprocess.Popen([agent.bin, "rotate", "-c", str(agent.config_path)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                if kill == 0:
                    wait_for(lambda: parts(logs), 60, "an in-progress archive", interval=0.001)
                else:
                    wait_for(lambda: parts(logs) and has_hole(logs / "app.log") and
                             os.stat(logs / parts(logs)[0]).st_size > grown + kill * 40000, 120,
                             "the in-progress archive to grow and the source to have a hole")
            finally:
                p.kill()
                p.wait(timeout=10)
            assert p.returncode == -9, "spillway rotate finished before it was killed"
            assert parts(logs), "the in-progress archive went away"
            grown = os.stat(logs / parts(logs)[0]).st_size
        plan, recs, _ = rethelp.rotate(agent.bin, agent.config_path)
        assert any(line.startswith("resume ") for line in plan), plan
        assert not any(r.get("msg", "").startswith("action=drop-tmp") for r in recs), recs
        assert relieved(logs, fs), (usage_percent(fs), os.listdir(logs))
        _, data = family_content(logs, "app.log")
        assert_exactly_once(data, seq0)
        agent.start()                              # nothing re-read from the archive or the holes
        agent.wait_count(seq0, 60)
        agent.stop()
        assert_sink_once(agent, seq0)


def test_relief_leaves_a_buffer_on_another_filesystem_alone(agent, workdir):
    """Hard pressure on the tmpfs, spillway.db elsewhere: no vacuum, no bytes counted for it."""
    rethelp.need_root("a full tmpfs")
    with rethelp.tmpfs(workdir / "fs", "16m") as fs:
        logs = workdir / "logs"
        logs.mkdir()
        agent.data_dir = workdir / "data"
        agent.write_config([{"name": "app", "type": "file", "paths": [str(logs / "*.log")]}],
                           extra={"disk_pressure": {"path": str(fs), "interval": "200ms"}})
        (logs / "a.log").write_bytes(b"".join(LINE % s for s in range(20000)))
        agent.start()
        agent.wait_count(20000, 60)
        with open(fs / "filler.bin", "wb") as f:
            f.write(b"\0" * (15 * MiB))
        agent.wait_for(lambda: b"-> hard" in agent.stderr_path.read_bytes(), 30, "hard pressure")
        agent.wait_for(lambda: b"not vacuumed" in agent.stderr_path.read_bytes(), 30,
                       "the pass to see the buffer is elsewhere")
        agent.stop()
        recs = log_records(agent.stderr_path.read_bytes())
        assert not any(r.get("msg", "").startswith(("action=vacuum", "action=drop-unshipped")) for r in recs)
        st = agent.status()["retention"]
        assert st.get("buffer_vacuums", 0) == 0 and st.get("buffer_vacuumed_bytes", 0) == 0, st


def test_without_punch_hole_support_compression_still_completes(agent, workdir):
    """ramfs has no fallocate (EOPNOTSUPP): under pressure the compression in pieces releases
    nothing but still makes the whole archive and truncates the file, nothing lost."""
    rethelp.need_root("ramfs and a full tmpfs")
    with rethelp.tmpfs(workdir / "fs", "16m") as fs:
        logs = workdir / "ramfs"
        logs.mkdir()
        subprocess.run(["mount", "-t", "ramfs", "ramfs", str(logs)], check=True)
        try:
            (fs / "filler.bin").write_bytes(b"\0" * (15 * MiB))      # hard pressure over there
            (logs / "app.log").write_bytes(b"".join(LINE % q for q in range(100000)))
            agent.data_dir = workdir / "data"
            cfg = agent.config_dict([], extra={
                "retention": [{"name": "app", "paths": [str(logs / "app.log")],
                               "rotate": {"max_size": "1MiB", "method": "copytruncate"},
                               "compress": {"codec": "zstd"}}],
                "disk_pressure": {"path": str(fs)}})
            rethelp.write_config(agent.config_path, cfg)
            plan, recs, _ = rethelp.rotate(agent.bin, agent.config_path)
            rot = [r["msg"] for r in recs if r.get("msg", "").startswith("action=rotate")]
            assert rot and "pieces=yes punched=no" in rot[0], (plan, rot)
            _, data = family_content(logs, "app.log")
            assert_exactly_once(data, 100000)
            assert (logs / "app.log").stat().st_size == 0
        finally:
            subprocess.run(["umount", str(logs)], check=True)
