"""Rotation of tailed files while a writer thread keeps appending: rename+create (rotated name
matched by the glob or not), copytruncate (copy matched by the glob), inode reuse, and deletion
(the descriptor must be closed once drained). No loss and no duplicate is ever acceptable."""

import os
import random
import re
import shutil
import threading

import pytest

from conftest import HOST, LineCounter, by_name, poll, wait_for

SEQ_RE = re.compile(r"^seq=(\d{7}) ")


class SeqWriter(threading.Thread):
    """Appends numbered lines "seq=NNNNNNN gen=G <payload>" to path, in batches, never more than
    `lag` lines ahead of what the sink has shipped (so rotations happen while the agent is busy
    reading). Rotations run in the test's thread under self.lock. gens[g] lists the seqs of
    physical-file generation g in write order (a rename keeps the generation: the bytes stay in
    the same file; a truncate starts a new one)."""

    def __init__(self, path, out_path, total, seed, batch=100, lag=3000, rotate_at=()):
        super().__init__(daemon=True)
        # The writer never runs more than 5 batches past a rotation point before the test
        # has rotated, so every rotation lands while lines are still being written.
        self.rotate_at = list(rotate_at)
        self.rotations = 0
        self.path = path
        self.total = total
        self.batch = batch
        self.lag = lag
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.seq = 0
        self.lines = {}
        self.gens = [[]]
        self.counter = LineCounter(out_path)
        self.f = open(path, "ab")  # O_APPEND, as loggers open their files
        self.error = None
        self.halt = threading.Event()

    def _write(self, n):
        buf = []
        for _ in range(n):
            if self.seq >= self.total:
                break
            pay = "x" * self.rng.randint(20, 300)
            line = "seq=%07d gen=%d %s" % (self.seq, len(self.gens) - 1, pay)
            self.lines[self.seq] = line
            self.gens[-1].append(self.seq)
            buf.append(line + "\n")
            self.seq += 1
        self.f.write("".join(buf).encode())
        self.f.flush()

    def run(self):
        try:
            for _ in range(self.total // self.batch + 10):
                if self.seq >= self.total or self.halt.is_set():
                    break
                if not poll(lambda: self.counter.count() >= self.seq - self.lag
                            or self.halt.is_set(), timeout=60):
                    self.error = "the sink made no progress for 60 s (at seq %d)" % self.seq
                    return
                if not poll(lambda: self.rotations >= len(self.rotate_at)
                            or self.seq < self.rotate_at[self.rotations] + 5 * self.batch
                            or self.halt.is_set(), timeout=60):
                    self.error = "rotation %d never happened" % (self.rotations + 1)
                    return
                with self.lock:
                    self._write(self.batch)
        except Exception as e:  # reported by the test
            self.error = repr(e)
        finally:
            self.f.close()

    # ---- rotations (called from the test thread)

    def rename_create(self, new_name, late_lines=5):
        """logrotate 'create': rename, the app still writes a few lines to the old file, then
        reopens (creating a new file at the path)."""
        with self.lock:
            os.rename(self.path, new_name)
            self._write(late_lines)
            self.f.close()
            self.gens.append([])
            self.f = open(self.path, "ab")
            self.rotations += 1

    def copytruncate(self, copy_name):
        """logrotate 'copytruncate': copy to the rotated name, then truncate in place; the app
        keeps its O_APPEND descriptor."""
        with self.lock:
            shutil.copyfile(self.path, copy_name)
            os.truncate(self.path, 0)
            self.gens.append([])
            self.rotations += 1


def run_rotations(agent, workdir, method, glob_suffix, rotations=6, total=30000):
    d = workdir / "app"
    d.mkdir()
    path = d / "app.log"
    agent.write_config([{"name": "app", "type": "file", "paths": [str(d) + glob_suffix]}],
                       buffer={"max_bytes": "1GiB", "when_full": "block",
                               "chunk": {"max_records": 500, "max_bytes": "1MiB",
                                         "max_wait": "200ms"}})
    points = [k * total // (rotations + 1) for k in range(1, rotations + 1)]
    w = SeqWriter(path, agent.out_path, total, seed=len(method) * 100 + len(glob_suffix),
                  rotate_at=points)
    agent.start()
    w.start()
    rotated = []
    try:
        for k in range(1, rotations + 1):
            wait_for(lambda: w.seq >= points[k - 1] or w.error or not w.is_alive(),
                     60, "writer progress before rotation %d" % k, alive=agent.check_alive)
            assert w.error is None, w.error
            new = d / ("app.log.%d" % k)
            if method == "rename":
                w.rename_create(new)
            else:
                w.copytruncate(new)
            rotated.append(new)
        w.join(timeout=120)
        assert not w.is_alive(), "writer did not finish"
        assert w.error is None, w.error
        agent.wait_count(total, timeout=60)
    finally:
        w.halt.set()
        w.join(timeout=10)
    return w, rotated


def check_seq_output(agent, w, allowed_names):
    agent.stop()
    recs = agent.read_output()
    seqs = []
    problems = []
    for r in recs:
        m = SEQ_RE.match(r["line"])
        if not m:
            problems.append("unexpected line %.120r" % r["line"])
            continue
        s = int(m.group(1))
        seqs.append(s)
        if r["line"] != w.lines.get(s):
            problems.append("seq %d: line differs: %.120r" % (s, r["line"]))
        lab = dict(r["labels"])
        fn = lab.pop("filename", None)
        if lab != {"host": HOST, "source": "app"} or fn not in allowed_names:
            problems.append("seq %d: labels %r" % (s, r["labels"]))
        if r["stream"] != "file":
            problems.append("seq %d: stream %r" % (s, r["stream"]))
        if len(problems) > 10:
            break
    assert not problems, "\n".join(problems)
    counts = {}
    for s in seqs:
        counts[s] = counts.get(s, 0) + 1
    lost = [s for s in range(w.total) if s not in counts]
    dup = sorted(s for s, c in counts.items() if c > 1)
    assert not lost and not dup, "%d lost (e.g. %s), %d duplicated (e.g. %s), gens %s" % (
        len(lost), lost[:10], len(dup), dup[:10], [(g[0], g[-1]) for g in w.gens if g])
    pos = {s: i for i, s in enumerate(seqs)}
    for g, gseqs in enumerate(w.gens):
        order = [pos[s] for s in gseqs]
        bad = [gseqs[i] for i in range(1, len(order)) if order[i] < order[i - 1]]
        assert not bad, "file generation %d delivered out of order around seq %s" % (g, bad[:5])
    assert len(recs) == w.total


@pytest.mark.parametrize("glob_suffix", ["/app.log", "/app.log*"],
                         ids=["rotated-name-unmatched", "rotated-name-matched"])
def test_rename_and_create_during_ingest(agent, workdir, glob_suffix):
    w, rotated = run_rotations(agent, workdir, "rename", glob_suffix)
    assert len(w.gens) == 7
    if glob_suffix == "/app.log":
        # Drained rotated files must be released, not kept open forever.
        names = set(str(p) for p in rotated)
        agent.wait_for(lambda: not [t for t in agent.fd_targets() if t in names], 15,
                       "descriptors of drained, rotated-away files to be closed")
    allowed = {str(workdir / "app" / "app.log")} | {str(p) for p in rotated}
    check_seq_output(agent, w, allowed)


def test_copytruncate_with_copy_matched_by_glob(agent, workdir):
    w, rotated = run_rotations(agent, workdir, "copytruncate", "/app.log*")
    allowed = {str(workdir / "app" / "app.log")} | {str(p) for p in rotated}
    check_seq_output(agent, w, allowed)


def _lines(tag, n, width):
    return ["%s line %05d %s" % (tag, i, "y" * width) for i in range(n)]


def _expect_exactly(agent, path, lines):
    recs = agent.read_output()
    got = [r["line"] for r in recs]
    assert got == lines, "expected %d lines (old then new), got %d; first difference: %r" % (
        len(lines), len(got),
        next(((i, a, b) for i, (a, b) in enumerate(zip(lines, got)) if a != b), None))
    for r in recs:
        assert r["labels"] == {"host": HOST, "source": "app", "filename": str(path)}


def test_inode_reuse_new_file_is_read_from_its_start(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    path = d / "app.log"
    old = _lines("old", 200, 40)
    path.write_text("".join(x + "\n" for x in old))
    agent.write_config([{"name": "app", "type": "file", "paths": [str(d / "*.log")]}])
    agent.start()
    agent.wait_count(len(old), timeout=30)
    ino = os.stat(path).st_ino
    os.unlink(path)
    agent.wait_for(lambda: not agent.deleted_fds(d), 5,
                   "the descriptor of the deleted, drained file to be closed")

    new = _lines("new", 400, 60)  # larger than the old offset: must not resume at it
    data = "".join(x + "\n" for x in new).encode()
    reused = False
    probes = []
    try:
        for i in range(200):  # keep failed probes so each attempt gets a fresh inode
            tmp = d / ("probe-%03d.tmp" % i)  # not matched by *.log
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            try:
                if os.fstat(fd).st_ino == ino:
                    os.write(fd, data)
                    reused = True
            finally:
                os.close(fd)
            if reused:
                os.rename(tmp, path)  # appears at once, complete, with the old inode
                break
            probes.append(tmp)
    finally:
        for p in probes:
            p.unlink()

    expected = old + new
    print("inode %d reused by a new file: %s" % (ino, reused))
    if not reused:
        # The filesystem would not hand the inode back within 200 tries: take the fingerprint
        # path instead. Deliver `new` from a fresh file, then, agent stopped, give that inode
        # different and longer content: after the restart it must be read from its start.
        path.write_bytes(data)
        agent.wait_count(len(old) + len(new), timeout=30)
        agent.stop()
        ino = os.stat(path).st_ino
        newer = _lines("newer", 600, 70)
        with open(path, "r+b") as f:
            f.truncate(0)
            f.write("".join(x + "\n" for x in newer).encode())
        assert os.stat(path).st_ino == ino
        agent.start()
        expected += newer
    agent.wait_count(len(expected), timeout=30)
    agent.stop()
    _expect_exactly(agent, path, expected)
    assert os.stat(path).st_ino == ino


def test_same_inode_rewritten_while_stopped_is_read_from_start(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    path = d / "app.log"
    old = _lines("old", 300, 50)
    path.write_text("".join(x + "\n" for x in old))
    agent.write_config([{"name": "app", "type": "file", "paths": [str(d / "*.log")]}])
    agent.start()
    agent.wait_count(len(old), timeout=30)
    agent.stop()
    ino = os.stat(path).st_ino
    new = _lines("NEW", 500, 70)
    with open(path, "r+b") as f:  # same inode, new content, larger than the stored offset
        f.truncate(0)
        f.write("".join(x + "\n" for x in new).encode())
    assert os.stat(path).st_ino == ino
    agent.start()
    agent.wait_count(len(old) + len(new), timeout=30)
    agent.stop()
    _expect_exactly(agent, path, old + new)


def test_deleted_file_descriptor_is_closed_once_drained(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    paths = [d / ("f%d.log" % i) for i in range(3)]
    for i, p in enumerate(paths):
        p.write_text("".join("file %d line %d\n" % (i, j) for j in range(1000)))
    agent.write_config([{"name": "app", "type": "file", "paths": [str(d / "*.log")]}])
    agent.start()
    agent.wait_count(3000, timeout=30)
    for p in paths[:2]:
        p.unlink()
    agent.wait_for(lambda: not agent.deleted_fds(d), 5,
                   "no descriptor left on deleted files (have %s)" % agent.deleted_fds(d))
    # The survivor is still tailed.
    with open(paths[2], "a") as f:
        f.write("file 2 line after\n")
    agent.wait_count(3001, timeout=10)
    agent.stop()
    recs = agent.read_output()
    assert len(recs) == 3001
    for i in range(3):
        got = [r["line"] for r in recs if r["labels"]["filename"] == str(paths[i])]
        want = ["file %d line %d" % (i, j) for j in range(1000)]
        if i == 2:
            want.append("file 2 line after")
        assert got == want
    st = agent.status()
    assert by_name(st["sources"], "app")["records"] == 3001


@pytest.mark.parametrize("method", ["rename", "copytruncate"])
def test_rotation_while_stopped_is_continued_after_restart(agent, workdir, method):
    """Rotated while the agent is down (glob matches the rotated name): after the restart the
    rotated file is recognised by its fingerprint and continued from the stored offset, and the
    new file is read from its start. Exactly once."""
    d = workdir / "app"
    d.mkdir()
    path = d / "app.log"
    first = _lines("first", 300, 30)
    path.write_text("".join(x + "\n" for x in first))
    agent.write_config([{"name": "app", "type": "file", "paths": [str(d / "app.log*")]}])
    agent.start()
    agent.wait_count(300, timeout=30)
    agent.stop()
    unread = _lines("unread", 200, 30)  # appended while the agent is down, then rotated
    with open(path, "a") as f:
        f.write("".join(x + "\n" for x in unread))
    rotated = d / "app.log.1"
    if method == "rename":
        os.rename(path, rotated)
    else:
        shutil.copyfile(path, rotated)
        os.truncate(path, 0)
    fresh = _lines("fresh", 250, 30)
    with open(path, "a") as f:
        f.write("".join(x + "\n" for x in fresh))
    agent.start()
    agent.wait_count(750, timeout=30)
    agent.assert_never(lambda: agent.output_count() > 750, 1.0, "records were read twice")
    agent.stop()
    got = [r["line"] for r in agent.read_output()]
    assert sorted(got) == sorted(first + unread + fresh) and len(got) == 750, \
        "lost %d, duplicated %d" % (len(set(first + unread + fresh) - set(got)),
                                    len(got) - len(set(got)))
    assert got[:300] == first
    assert [x for x in got if x.startswith("unread")] == unread
    assert [x for x in got if x.startswith("fresh")] == fresh
