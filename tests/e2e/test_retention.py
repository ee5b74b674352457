"""Retention (`spillway rotate` and the agent's pass): the same outcome as logrotate on the same
directory, no line lost while a writer keeps appending during rotation and compression,
kill -9 at any point of a compression, --dry-run that changes nothing and equals the real run,
and files a source still reads are never deleted."""

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import rethelp
from conftest import wait_for
from rethelp import ACTION_RE, Writer, actions, archive_bytes, family, rotate, seqs_in, temporaries

LOGROTATE = shutil.which("logrotate") or "/usr/sbin/logrotate"
ZSTD_DIRECTIVES = """  compress
  compresscmd /usr/bin/zstd
  uncompresscmd /usr/bin/unzstd
  compressext .zst
  compressoptions -3 -q
"""


def logrotate(conf_text, workdir, state=None, force=False):
    conf = workdir / "logrotate.conf"
    conf.write_text(conf_text)
    st = workdir / "logrotate.state"
    if state is not None:
        st.write_text("logrotate state -- version 2\n" + "".join('"%s" %s\n' % kv for kv in state.items()))
    args = [LOGROTATE, "-s", str(st)] + (["-f"] if force else []) + [str(conf)]
    p = subprocess.run(args, capture_output=True, timeout=60)
    assert p.returncode == 0, "logrotate failed: %s" % p.stderr.decode()


def same_outcome(a, b, bases):
    """Directories a (spillway) and b (logrotate): same names, same (decompressed) contents."""
    na = sorted(os.listdir(a))
    nb = sorted(os.listdir(b))
    assert na == nb, "file names differ:\n spillway:  %s\n logrotate: %s" % (na, nb)
    for n in na:
        ca, cb = archive_bytes(a / n), archive_bytes(b / n)
        assert ca == cb, "%s differs: spillway %d bytes, logrotate %d bytes" % (n, len(ca), len(cb))
        if n.endswith(".zst"):
            ok, err = rethelp.zstd_test(a / n)
            assert ok, "%s fails zstd -t: %s" % (n, err)


def twin_dirs(workdir):
    a, b = workdir / "spillway", workdir / "logrotate"
    a.mkdir()
    b.mkdir()
    return a, b


def put(dirs, name, data, age_s=0):
    for d in dirs:
        p = d / name
        p.write_bytes(data)
        if age_s:
            t = time.time() - age_s
            os.utime(p, (t, t))


def zst_of(data):
    p = subprocess.run(["zstd", "-3", "-q", "-c"], input=data, capture_output=True, check=True)
    return p.stdout


def lines(tag, n, width=80):
    return b"".join(b"%s %06d %s\n" % (tag.encode(), i, b"y" * width) for i in range(n))


# --------------------------------------------------------------------------------------------
# against logrotate


def test_size_and_count_like_logrotate(spillway_bin, workdir):
    """Size rotation, shifting, compression and `rotate 3` / keep.count 3 over five rounds."""
    a, b = twin_dirs(workdir)
    cfg = rethelp.write_config(workdir / "s.yaml", {
        "data_dir": str(workdir / "data"),
        "retention": [{"name": "app", "paths": [str(a / "*.log")],
                       "rotate": {"max_size": "4KiB", "method": "rename"},
                       "compress": {"codec": "zstd", "level": 3}, "keep": {"count": 3}}]})
    conf = "%s/*.log {\n  size 4k\n  rotate 3\n%s  nocreate\n  notifempty\n  missingok\n}\n" % (b, ZSTD_DIRECTIVES)
    put([a, b], "small.log", lines("small", 10))
    for rnd in range(5):
        put([a, b], "app.log", lines("round%d" % rnd, 60 + rnd))  # ~5.6 KiB: over 4 KiB
        if rnd == 3:
            put([a, b], "exact.log", b"e" * 4095 + b"\n")  # exactly 4 KiB: rotated by both
        plan, _, _ = rotate(spillway_bin, cfg)
        logrotate(conf, workdir)
        assert any(l.startswith("rotate %s/app.log " % a) for l in plan), plan
        same_outcome(a, b, ["app.log"])
    assert family(a, "app.log") == ["app.log.1.zst", "app.log.2.zst", "app.log.3.zst"]
    assert archive_bytes(a / "app.log.1.zst").startswith(b"round4 ")
    assert archive_bytes(a / "app.log.3.zst").startswith(b"round2 ")


def test_copytruncate_delaycompress_maxage_like_logrotate(spillway_bin, workdir):
    """copytruncate + delaycompress (NAME.1 stays plain) and maxage pruning by mtime."""
    a, b = twin_dirs(workdir)
    cfg = rethelp.write_config(workdir / "s.yaml", {
        "data_dir": str(workdir / "data"),
        "retention": [{"name": "app", "paths": [str(a / "app.log")],
                       "rotate": {"max_size": "1KiB", "method": "copytruncate"},
                       "compress": {"delay_compress": True}, "keep": {"count": 5, "max_age": "1d"}}]})
    conf = ("%s/app.log {\n  size 1k\n  rotate 5\n  maxage 1\n  copytruncate\n  delaycompress\n%s"
            "  notifempty\n  missingok\n}\n" % (b, ZSTD_DIRECTIVES))
    put([a, b], "app.log.2.zst", zst_of(lines("old2", 5)), age_s=36 * 3600)  # older than 1 day
    put([a, b], "app.log.3.zst", zst_of(lines("old3", 5)), age_s=50 * 3600)
    put([a, b], "app.log.1", lines("old1", 5), age_s=3600)
    for rnd in range(3):
        with open(a / "app.log", "ab") as fa, open(b / "app.log", "ab") as fb:
            for f in (fa, fb):
                f.write(lines("r%d" % rnd, 20))
        rotate(spillway_bin, cfg)
        logrotate(conf, workdir)
        same_outcome(a, b, ["app.log"])
    assert (a / "app.log").stat().st_size == 0  # truncated in place, same inode kept
    assert family(a, "app.log") == ["app.log", "app.log.1", "app.log.2.zst", "app.log.3.zst", "app.log.4.zst"]


def test_age_rotation_like_logrotate(spillway_bin, workdir):
    """Age: a file whose content began long enough ago is rotated, a young one is not. logrotate
    learns the age from its state file (hourly, last rotated 3 h ago / this very hour: logrotate's
    `hourly` compares the clock hour, not the elapsed time, so "10 min ago" is due whenever the test
    runs in the first 10 minutes of an hour); spillway from the
    file's birth time and its newest archive's mtime (max_age 3s: the test waits 3.5 s of real
    time for `old.log` to come of age, then creates `young.log`)."""
    a, b = twin_dirs(workdir)
    cfg = rethelp.write_config(workdir / "s.yaml", {
        "data_dir": str(workdir / "data"),
        "retention": [{"name": "app", "paths": [str(a / "*.log")], "rotate": {"max_age": "3s"},
                       "compress": {"codec": "zstd"}, "keep": {"count": 4}}]})
    conf = "%s/*.log {\n  hourly\n  rotate 4\n%s  nocreate\n  notifempty\n  missingok\n}\n" % (b, ZSTD_DIRECTIVES)
    put([a, b], "old.log", lines("old", 10))
    born = time.monotonic()
    wait_for(lambda: time.monotonic() - born > 3.5, 10, "old.log to be 3.5 s old")
    put([a, b], "young.log", lines("young", 10))
    put([a, b], "young.log.1.zst", zst_of(lines("prev", 3)))  # rotated just now: not due
    # spillway first, right after young.log was born: it must still be under 3 s old then (a
    # loaded CI machine once took longer than that for logrotate's run in between).
    plan, _, _ = rotate(spillway_bin, cfg)
    fmt = lambda t: "%d-%d-%d-%d:%d:%d" % time.localtime(t)[:6]
    if time.time() % 3600 > 3590:  # keep "now" and logrotate's run in the same clock hour
        time.sleep(3601 - time.time() % 3600)
    logrotate(conf, workdir, state={str(b / "old.log"): fmt(time.time() - 3 * 3600),
                                    str(b / "young.log"): fmt(time.time())})
    n = len(lines("old", 10))
    assert plan == ["rotate %s/old.log -> %s/old.log.1 bytes=%d frees=0 method=rename reason=age" % (a, a, n),
                    "compress %s/old.log.1 -> %s/old.log.1.zst bytes=%d frees=0..%d reason=rotated"
                    % (a, a, n, n)], plan
    same_outcome(a, b, ["old.log", "young.log"])


# --------------------------------------------------------------------------------------------
# dry run


def rich_state(d):
    """Every kind of action: rotation (size), shifts, count deletes, compressions, recovery."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "app.log").write_bytes(lines("live", 100))
    for i in range(1, 4):
        (d / ("app.log.%d.zst" % i)).write_bytes(zst_of(lines("arch%d" % i, 20)))
    (d / "app.log.4").write_bytes(lines("plain4", 20))           # beyond count: deleted
    (d / "web.log").write_bytes(lines("web", 10))                 # under the size: stays
    (d / "web.log.1").write_bytes(lines("web1", 30))              # plain: compressed
    (d / "web.log.2").write_bytes(lines("web2", 30))              # compressed + renamed, crash:
    (d / "web.log.2.zst").write_bytes(zst_of(lines("web2", 30)))  # ... finish
    (d / "web.log.3.zst.tmp-Ab3dE9").write_bytes(b"half")         # interrupted: dropped
    t = time.time() - 7200
    for n in os.listdir(d):
        os.utime(d / n, (t, t))


def test_dry_run_changes_nothing_and_equals_the_real_run(spillway_bin, workdir):
    """On a strictatime tmpfs (when root) even a read of a file would show in its atime."""
    cfg_dict = lambda d: {"data_dir": str(workdir / "data"),
                          "retention": [{"name": "app", "paths": [str(d / "*.log")],
                                         "rotate": {"max_size": "4KiB"}, "keep": {"count": 3}}]}
    ctx = rethelp.tmpfs(workdir / "mnt", "16m", "strictatime") if os.geteuid() == 0 else None
    d = (ctx.__enter__() if ctx else workdir / "mnt") / "logs"
    try:
        rich_state(d)
        cfg = rethelp.write_config(workdir / "s.yaml", cfg_dict(d))
        before = rethelp.snapshot(d)
        plans = [rotate(spillway_bin, cfg, dry_run=True)[0] for _ in range(2)]
        after = rethelp.snapshot(d, with_content=False)
        for n, st in before.items():
            assert n in after, "%s disappeared in a dry run" % n
            assert after[n][:5] == st[:5], "dry run changed %s: (size, ino, atime, mtime, ctime) %s -> %s" % (
                n, st[:5], after[n][:5])
        assert set(after) == set(before), "dry run created %s" % (set(after) - set(before))
        assert {n: v[5] for n, v in rethelp.snapshot(d).items()} == {n: v[5] for n, v in before.items()}
        assert not (workdir / "data" / "spillway.db").exists(), "a dry run must not create the buffer"
        assert plans[0] == plans[1]
        kinds = {l.split(" ")[0] for l in plans[0]}
        assert kinds >= {"rotate", "rename", "compress", "delete", "finish", "drop-tmp"}, plans[0]

        real, logs, _ = rotate(spillway_bin, cfg)
        assert real == plans[0], "the real run's plan differs:\n dry:  %s\n real: %s" % (plans[0], real)
        # ... and it did exactly that: replay the plan on the names
        names = set(before) - {"."}
        for line in real:
            m = ACTION_RE.match(line)
            kind, p, to = m.group("kind"), os.path.basename(m.group("path")), m.group("to")
            if kind in ("delete", "drop-tmp", "finish"):
                names.discard(p)
            elif kind in ("rename", "rotate", "compress"):
                names.discard(p)
                names.add(os.path.basename(to))
        assert sorted(os.listdir(d)) == sorted(names)
        done = [(x["action"], x["path"]) for x in actions(logs)]
        assert done == [(l.split(" ")[0], l.split(" ")[1]) for l in real], done
    finally:
        if ctx:
            ctx.__exit__(None, None, None)


# --------------------------------------------------------------------------------------------
# a writer keeps appending


def run_rotations(spillway_bin, cfg, seconds):
    logs = []
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        plan, recs, _ = rotate(spillway_bin, cfg)
        logs += recs
        n += any(l.startswith("rotate ") for l in plan)
    return n, logs


@pytest.mark.parametrize("method", ["rename", "copytruncate"])
def test_no_line_lost_while_writing(spillway_bin, workdir, method):
    """Every line the writer wrote is in exactly one of the live file and the archives. For
    copytruncate, a line written inside the logged truncation window (between the last read
    of the file's end and the truncation: two system calls) may be lost; any other loss fails."""
    d = workdir / "logs"
    d.mkdir()
    live = d / "app.log"
    w = Writer(live, workdir, "reopen" if method == "rename" else "keep", rate=3000)
    rot = {"max_size": "32KiB", "method": method}
    if method == "rename":
        rot["postrotate_signal"] = {"pid_file": str(w.pid_file), "signal": "HUP"}
    cfg = rethelp.write_config(workdir / "s.yaml", {
        "data_dir": str(workdir / "data"),
        "retention": [{"name": "app", "paths": [str(live)], "rotate": rot,
                       "compress": {"level": 1}, "keep": {"count": 100000}}]})
    try:
        wait_for(lambda: live.exists() and live.stat().st_size > 40000, 20, "the writer to start")
        rotations, logs = run_rotations(spillway_bin, cfg, 6)
    finally:
        total = w.stop()
    print("STATS", method, "rotations", rotations, "total", total)
    assert rotations >= 5, "only %d rotations happened" % rotations
    assert not temporaries(d)
    counts = seqs_in(d, "app.log")
    dups = sorted(s for s, c in counts.items() if c > 1)
    assert not dups, "lines present twice: %s" % dups[:20]
    missing = [s for s in range(total) if s not in counts]
    assert not [s for s in counts if s >= total], "lines nobody wrote"
    if method == "rename":
        assert not missing, "%d lines lost, first %s" % (len(missing), missing[:10])
        assert sum(1 for x in actions(logs) if x["action"] == "signal") >= rotations
    else:
        wins = rethelp.windows(logs)
        assert len(wins) >= rotations
        times = w.times()
        outside = [s for s in missing if not any(times[s][0] <= t1 and times[s][1] >= t0 for t0, t1 in wins)]
        assert not outside, "%d lines lost outside any truncation window: %s" % (len(outside), outside[:10])
        print("STATS missing", len(missing), "windows", len(wins), "max window us", max((b - a) for a, b in wins) // 1000)
        assert len(missing) <= len(wins), "more lines lost than truncations: %d" % len(missing)
    for n in family(d, "app.log"):
        if n.endswith(".zst"):
            assert rethelp.zstd_test(d / n)[0], n


# --------------------------------------------------------------------------------------------
# kill -9


@pytest.mark.slow
@pytest.mark.parametrize("method", ["rename", "copytruncate"])
def test_kill9_during_compression(spillway_bin, workdir, method):
    """`spillway rotate` killed at random points while compressing 24 MiB files, then run once
    more: no file lost, every archive passes zstd -t, no temporary left, every line present
    (rename: exactly once; copytruncate: a crash between the archive's rename and the
    truncation leaves those lines in both, never in neither)."""
    d = workdir / "logs"
    d.mkdir()
    live = d / "app.log"
    cfg = rethelp.write_config(workdir / "s.yaml", {
        "data_dir": str(workdir / "data"),
        "retention": [{"name": "app", "paths": [str(live)], "rotate": {"max_size": "1MiB", "method": method},
                       "compress": {"level": 9}, "keep": {"count": 1000}}]})
    rng = random.Random(5)
    seq = 0
    kills = 0
    full = None  # seconds an uninterrupted run takes: kills land uniformly inside it
    for it in range(12):
        with open(live, "ab") as f:
            chunk = []
            for _ in range(200000):  # ~24 MiB per round
                chunk.append(b"seq=%09d %s\n" % (seq, b"z" * (40 + seq % 90)))
                seq += 1
            f.write(b"".join(chunk))
        t0 = time.monotonic()
        err = open(workdir / ("run%d.stderr" % it), "wb")
        p = subprocess.Popen([spillway_bin, "rotate", "-c", str(cfg)], stdout=subprocess.DEVNULL, stderr=err)
        if full is not None:
            time.sleep(rng.uniform(0.0, 0.8 * full))  # the random instant of the crash (not a wait)
            if p.poll() is None:
                p.kill()
                kills += 1
        p.wait(timeout=120)
        err.close()
        if full is None:
            full = time.monotonic() - t0
    assert kills >= 4, "the rotations finished too fast to be interrupted (%d kills)" % kills
    _, logs, _ = rotate(spillway_bin, cfg)  # recovery, then whatever is due
    rotate(spillway_bin, cfg)
    for it in range(12):
        logs += rethelp.log_records((workdir / ("run%d.stderr" % it)).read_bytes())
    repairs = [a for a in actions(logs) if a["action"] in ("drop-tmp", "finish", "cut")]
    assert repairs, "no run found a half-done step to repair: the kills missed the compressions"
    assert not temporaries(d), temporaries(d)
    for n in family(d, "app.log"):
        if n.endswith(".zst"):
            ok, err = rethelp.zstd_test(d / n)
            assert ok, "%s: %s" % (n, err)
    counts = seqs_in(d, "app.log")
    missing = [s for s in range(seq) if s not in counts]
    assert not missing, "%d lines lost, first %s" % (len(missing), missing[:10])
    if method == "rename":
        dups = [s for s, c in counts.items() if c > 1]
        assert not dups, "%d lines twice" % len(dups)
    plan, _, _ = rotate(spillway_bin, cfg, dry_run=True)
    assert not [l for l in plan if not l.startswith(("rotate", "compress"))], plan  # nothing to repair


# --------------------------------------------------------------------------------------------
# with the agent: a file a source still reads is never deleted


def test_agent_never_deletes_unread_files(agent, workdir):
    """The sink cannot write (its filesystem is full) and the buffer is small (when_full: block):
    the reader stops partway through app.log. The agent still rotates it (a rename loses
    nothing) but never compresses away or deletes the renamed file while it is unread. Once the
    sink has room, the reader finishes, the archive is compressed, and every record ships."""
    d = workdir / "logs"
    d.mkdir()
    data = b"".join(b"rec %07d %s\n" % (i, os.urandom(48).hex().encode()) for i in range(40000))
    (d / "app.log").write_bytes(data)  # ~4.4 MiB of barely compressible text
    with rethelp.tmpfs(workdir / "sinkfs", "64m") as sinkfs:
        agent.out_path = sinkfs / "out.ndjson"
        agent.counter = type(agent.counter)(agent.out_path)
        filler = sinkfs / "filler"
        agent.write_config(
            [{"name": "app", "type": "file", "paths": [str(d / "*.log")]}],
            sinks=[{"name": "out", "type": "file", "path": str(agent.out_path)}],
            buffer={"max_bytes": "1MiB", "when_full": "block",
                    "chunk": {"max_records": 5000, "max_bytes": "256KiB", "max_wait": "100ms"}},
            extra={"retention": [{"name": "app", "paths": [str(d / "app.log")], "rotate": {"max_size": "64KiB"},
                                  "keep": {"count": 1}}],
                   "disk_pressure": {"path": str(workdir), "interval": "200ms", "soft_percent": 98,
                                     "hard_percent": 99}})
        subprocess.run(["dd", "if=/dev/zero", "of=%s" % filler, "bs=64k"], capture_output=True)  # full
        agent.start()
        agent.wait_for(lambda: (d / "app.log.1").exists(), 20, "the live file to be rotated")
        agent.wait_for(lambda: "being-read" in agent.stderr_tail(200000), 20, "a deferral to be logged")
        agent.assert_never(lambda: not (d / "app.log.1").exists(), 3.0, "the unread archive was removed")
        assert "action=compress" not in agent.stderr_tail(1 << 20)
        filler.unlink()  # room again: the sink ships (after its retry backoff), the reader goes on
        agent.wait_count(40000, 90)
        agent.wait_for(lambda: (d / "app.log.1.zst").exists(), 30, "the archive to be compressed once read")
        agent.stop()
        recs = agent.read_output()
        assert [r["line"] for r in recs] == [l.decode() for l in data.splitlines()]
        assert archive_bytes(d / "app.log.1.zst") == data
        ret = agent.status()["retention"]
        assert ret["rotations"] == 1 and ret["compressions"] == 1 and ret["deferred"] >= 1, ret


def test_restart_drains_a_file_renamed_while_stopped(agent, workdir):
    """The reader stopped partway through app.log (buffer full, no sink); while the agent was
    down the file was rotated to app.log.1, a name the glob does not match. After the restart
    the reader finds it by device and inode and reads it to its end: nothing is lost."""
    d = workdir / "logs"
    d.mkdir()
    data = b"".join(b"rec %07d %s\n" % (i, os.urandom(48).hex().encode()) for i in range(40000))
    (d / "app.log").write_bytes(data)
    src = [{"name": "app", "type": "file", "paths": [str(d / "*.log")]}]
    agent.write_config(src, sinks=[], buffer={"max_bytes": "1MiB", "when_full": "block",
                                              "chunk": {"max_records": 5000, "max_bytes": "256KiB",
                                                        "max_wait": "100ms"}})
    agent.start(wait_ready=False)  # no sink to wait for: the database may not exist yet

    def buffered():
        p = agent.cli("status", "-c", agent.config_path, "--output", "json")
        return p.returncode == 0 and json.loads(p.stdout)["buffer"]["records"] > 1000

    agent.wait_for(buffered, 30, "some records buffered")
    agent.stop()
    off = [f for f in agent.status()["files"] if f["path"].endswith("app.log")][0]["offset"]
    assert 0 < off < len(data)
    os.rename(d / "app.log", d / "app.log.1")
    (d / "app.log").write_bytes(b"after the rotation\n")
    agent.write_config(src)
    agent.start()
    agent.wait_count(40001, 60)
    agent.stop()
    lines = sorted(r["line"] for r in agent.read_output())
    assert lines == sorted([l.decode() for l in data.splitlines()] + ["after the rotation"])
    assert "renamed to %s while stopped" % (d / "app.log.1") in agent.stderr_tail(1 << 20)
