"""Disk pressure on a real small filesystem (a size-limited tmpfs mounted by the test; root only)
and truncate_shipped on docker logs. Each test checks that crossing a threshold triggers exactly
the documented actions, in the documented order, and that usage falls back below it."""

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

import loggen
import rethelp
from conftest import wait_for
from loggen import DockerContainer
from rethelp import actions, log_records, usage_percent

MiB = 1 << 20


def text_lines(tag, nbytes, seq0=0):
    """Compressible numbered lines, about nbytes."""
    out, n, seq = [], 0, seq0
    while n < nbytes:
        line = b"%s seq=%08d GET /api/v1/items?page=%d status=200 latency_ms=%d user=alice\n" % (
            tag, seq, seq % 97, seq % 300)
        out.append(line)
        n += len(line)
        seq += 1
    return b"".join(out), seq


def random_lines(nbytes, seq0=0):
    """Barely compressible numbered lines (hex of random bytes), about nbytes."""
    out, n, seq = [], 0, seq0
    while n < nbytes:
        line = b"seq=%08d %s\n" % (seq, os.urandom(60).hex().encode())
        out.append(line)
        n += len(line)
        seq += 1
    return b"".join(out), seq


def incompressible_zst(path, nbytes, age_s):
    data = os.urandom(nbytes)
    z = subprocess.run(["zstd", "-1", "-q", "-c"], input=data, capture_output=True, check=True).stdout
    path.write_bytes(z)
    t = time.time() - age_s
    os.utime(path, (t, t))
    return len(z)


def fill_to(fs, percent, name="filler.bin"):
    """Grows fs/name (matched by no glob: spillway may not touch it) until usage >= percent."""
    pct, used, avail = usage_percent(fs)
    total = used + avail
    want = int(total * percent / 100) - used
    if want > 0:
        with open(fs / name, "ab") as f:
            f.write(b"\0" * want)  # tmpfs stores zeros too
            f.flush()
            os.fsync(f.fileno())
    return usage_percent(fs)[0]


def agent_actions(agent):
    return actions(log_records(agent.stderr_path.read_bytes()))


def pressure_changes(agent):
    return [r["msg"] for r in log_records(agent.stderr_path.read_bytes())
            if r.get("component") == "retention" and "pressure" in r.get("msg", "") and "->" in r["msg"]]


def test_soft_pressure_rotates_and_compresses_at_once(agent, workdir):
    rethelp.need_root("disk pressure on a tmpfs")
    with rethelp.tmpfs(workdir / "fs", "16m") as fs:
        logs = fs / "logs"
        logs.mkdir()
        agent.data_dir = fs / "data"
        agent.write_config(
            [{"name": "app", "type": "file", "paths": [str(logs / "*.log")]}],
            extra={"retention": [{"name": "app", "paths": [str(logs / "*.log")],
                                  "rotate": {"max_size": "1GiB"}, "keep": {"count": 10}}],
                   "disk_pressure": {"path": str(fs), "soft_percent": 40, "hard_percent": 90,
                                     "interval": "200ms", "rotate_min_size": "256KiB"}})
        agent.start()
        data, nrec = text_lines(b"app", 7 * MiB)
        with open(logs / "app.log", "wb") as f:
            for i in range(0, len(data), MiB):  # in steps, like a writer would
                f.write(data[i:i + MiB])
                f.flush()
        assert usage_percent(fs)[0] >= 40, "the test did not cross soft_percent"
        agent.wait_for(lambda: (logs / "app.log.1.zst").exists(), 30, "the pressure rotation and compression")
        agent.wait_for(lambda: usage_percent(fs)[0] < 40, 30, "usage to fall below soft_percent")
        agent.wait_count(nrec, 30)
        agent.stop()
        acts = [(a["action"], a.get("reason")) for a in agent_actions(agent) if a["action"] != "defer"]
        assert acts == [("rotate", "pressure"), ("compress", "rotated")] or \
            acts == [("rotate", "pressure"), ("compress", "archive")], acts
        assert any("-> soft" in m for m in pressure_changes(agent)), pressure_changes(agent)
        assert rethelp.archive_bytes(logs / "app.log.1.zst") == data
        st = agent.status()["retention"]
        assert st["pressure_soft_events"] >= 1 and st["rotations"] == 1 and st["compressions"] == 1, st
        assert "deletions" not in st


def test_hard_pressure_deletes_oldest_archives_shipped_first(agent, workdir):
    """Archives of a family no source reads (already "shipped": nothing of them ever will be)
    go first, oldest first; then the tailed family's archive whose data is not acknowledged
    yet (the sink's filesystem is full), although it is the oldest of all; then nothing more."""
    rethelp.need_root("disk pressure on a tmpfs")
    with rethelp.tmpfs(workdir / "fs", "16m") as fs, rethelp.tmpfs(workdir / "sinkfs", "8m") as sinkfs:
        logs = fs / "logs"
        logs.mkdir()
        agent.data_dir = fs / "data"
        agent.out_path = sinkfs / "out.ndjson"
        agent.counter = type(agent.counter)(agent.out_path)
        agent.write_config(
            [{"name": "app", "type": "file", "paths": [str(logs / "app.log")]}],
            sinks=[{"name": "out", "type": "file", "path": str(agent.out_path)}],
            extra={"retention": [{"name": "app", "paths": [str(logs / "app.log")], "keep": {"count": 10}},
                                 {"name": "other", "paths": [str(logs / "other.log")], "keep": {"count": 10}}],
                   "disk_pressure": {"path": str(fs), "soft_percent": 60, "hard_percent": 70,
                                     "interval": "200ms", "rotate_min_size": "1GiB"}})
        subprocess.run(["dd", "if=/dev/zero", "of=%s" % (sinkfs / "full"), "bs=64k"], capture_output=True)
        agent.start()
        data, nrec = random_lines(256 * 1024)
        (logs / "app.log").write_bytes(data)
        agent.wait_for(lambda: agent.status()["buffer"]["records"] >= nrec, 30, "the records to be buffered")
        sizes = {}
        for name, age_h in (("other.log.1.zst", 1), ("other.log.2.zst", 2), ("other.log.3.zst", 3),
                            ("app.log.1.zst", 5)):
            sizes[name] = incompressible_zst(logs / name, MiB, age_h * 3600)
        (logs / "notes.txt").write_bytes(b"not a log of any entry\n")  # never touched
        (logs / "other.log.zst").write_bytes(b"not an archive name\n")
        expected = ["other.log.3.zst", "other.log.2.zst", "other.log.1.zst", "app.log.1.zst"]
        # 3.5 archives over the relief target (65%, between soft and hard): all four must go,
        # in that order, and nothing else
        pct, used, avail = usage_percent(fs)
        target = (0.65 * (used + avail) + 3.5 * MiB) / (used + avail) * 100
        assert target > 70
        fill_to(fs, target)
        agent.wait_for(lambda: usage_percent(fs)[0] < 65, 30, "usage to fall below the relief target")
        agent.assert_never(lambda: usage_percent(fs)[0] >= 70, 1.0, "usage rose again")
        acts = agent_actions(agent)
        deletes = [(os.path.basename(a["path"]), a["reason"]) for a in acts if a["action"] == "delete"]
        assert deletes == [(n, "pressure-shipped") for n in expected[:3]] + [(expected[3], "pressure-unshipped")], \
            deletes
        assert not [a for a in acts if a["action"] not in ("delete", "defer")], acts
        assert sum(int(a["freed"]) for a in acts if a["action"] == "delete") == sum(sizes.values())
        assert any("-> hard" in m for m in pressure_changes(agent)), pressure_changes(agent)
        assert sorted(os.listdir(logs)) == ["app.log", "notes.txt", "other.log.zst"]
        assert (fs / "filler.bin").exists(), "a file outside every glob was removed"
        agent.stop()
        st = agent.status()["retention"]
        assert st["pressure_deletions"] == 4 and st["pressure_hard_events"] >= 1, st


def test_hard_pressure_vacuums_the_buffer_then_drops_unshipped(agent, workdir):
    """No archive to delete: the buffer gives its free pages back (chunks shipped and deleted
    earlier), and since that is not enough, drops its oldest unshipped chunks (drop_unshipped),
    counted. Usage falls below hard_percent. When the sink recovers, every record is either
    shipped once or counted as dropped."""
    rethelp.need_root("disk pressure on a tmpfs")
    with rethelp.tmpfs(workdir / "fs", "16m") as fs, rethelp.tmpfs(workdir / "sinkfs", "64m") as sinkfs:
        logs = fs / "logs"
        logs.mkdir()
        agent.data_dir = fs / "data"
        agent.out_path = sinkfs / "out.ndjson"
        agent.counter = type(agent.counter)(agent.out_path)
        agent.write_config(
            [{"name": "app", "type": "file", "paths": [str(logs / "a.log")]}],
            sinks=[{"name": "out", "type": "file", "path": str(agent.out_path)}],
            buffer={"max_bytes": "1GiB", "when_full": "block",
                    "chunk": {"max_records": 2000, "max_bytes": "256KiB", "max_wait": "100ms"}},
            extra={"disk_pressure": {"path": str(fs), "soft_percent": 60, "hard_percent": 70,
                                     "interval": "200ms", "drop_unshipped": True}})
        agent.start()
        d1, n1 = random_lines(300 * 1024)
        with open(logs / "a.log", "wb") as f:
            f.write(d1)
        agent.wait_count(n1, 30)                      # shipped; GC deletes the chunks, pages stay
        agent.wait_for(lambda: agent.status()["buffer"]["chunks"] == 0, 30, "GC of the shipped chunks")
        subprocess.run(["dd", "if=/dev/zero", "of=%s" % (sinkfs / "full"), "bs=64k"], capture_output=True)
        d2, n2 = random_lines(2500 * 1024, n1)
        with open(logs / "a.log", "ab") as f:
            f.write(d2)
        agent.wait_for(lambda: agent.status()["buffer"]["records"] >= n2 - n1, 30, "the new records buffered")
        # The buffer's files take T bytes, L of them chunks that must stay (unshipped): returning
        # free pages and the WAL frees at most T - L. Over the relief target (65%, between soft
        # and hard) by T - L/2, that alone cannot be enough; dropping unshipped chunks can.
        db = sum(os.stat(p).st_blocks * 512 for p in (fs / "data").glob("spillway.db*"))
        live = agent.status()["buffer"]["bytes"]
        pct, used, avail = usage_percent(fs)
        target = max(72, 65 + 100.0 * (db - live / 2) / (used + avail))
        assert target < 93, "the buffer is too big for this filesystem (%d bytes)" % db
        fill_to(fs, target)
        agent.wait_for(lambda: usage_percent(fs)[0] < 70, 30, "usage to fall below hard_percent")
        agent.assert_never(lambda: usage_percent(fs)[0] >= 70, 1.0, "usage rose over hard_percent again")
        acts = [a for a in agent_actions(agent) if a["action"] != "defer"]
        kinds = [a["action"] for a in acts]
        assert kinds[:2] == ["vacuum", "drop-unshipped"], kinds
        assert int(acts[0]["freed"]) > 0, acts[0]
        assert int(acts[1]["chunks"]) > 0 and int(acts[1]["freed"]) > 0, acts[1]
        (sinkfs / "full").unlink()
        (fs / "filler.bin").unlink()
        st = agent.status()
        dropped = st["retention"]["pressure_dropped_records"]
        assert dropped > 0
        agent.wait_count(n2 - dropped, 90)
        agent.stop()
        seqs = [int(r["line"][4:12]) for r in agent.read_output()]
        assert len(seqs) == len(set(seqs)), "a record was shipped twice"
        assert len(seqs) + dropped == n2, (len(seqs), dropped, n2)
        assert set(range(n1)) <= set(seqs), "a record shipped before the pressure is missing"


# --------------------------------------------------------------------------------------------
# truncate_shipped


DOCKER_WRITER = r'''
import json, os, sys, time
path, out, bursts = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
times = open(out + ".times", "w")
seq = 0
for b in range(bursts):
    for i in range(300):
        ts = time.time_ns()
        line = json.dumps({"log": "seq=%08d %s\n" % (seq, "p" * 150), "stream": "stdout",
                           "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts // 10**9)) + ".%09dZ" % (ts % 10**9)})
        t0 = time.monotonic_ns()
        os.write(fd, (line + "\n").encode())
        t1 = time.monotonic_ns()
        times.write("%d %d %d\n" % (seq, t0, t1))
        seq += 1
    time.sleep(0.5 if b % 2 else 0.05)
times.close()
open(out, "w").write(str(seq))
'''


def test_truncate_shipped_docker_log(agent, workdir):
    """dockerd without max-size: the container log is truncated in place once every byte of it
    is in the buffer; the reader goes on from 0; no line is lost or repeated (a line written in
    the logged window between the last size check and the truncation could be: none may be lost
    outside it)."""
    rng = random.Random(9)
    c = DockerContainer.create(workdir / "containers", rng, "web-1")
    agent.write_config(
        [{"name": "docker", "type": "docker", "paths": [str(workdir / "containers/*/*-json.log")],
          "truncate_shipped": "64KiB"}],
        buffer={"max_bytes": "1GiB", "when_full": "block",
                "chunk": {"max_records": 5000, "max_bytes": "1MiB", "max_wait": "100ms"}},
        extra={"disk_pressure": {"path": str(workdir), "interval": "100ms", "soft_percent": 98,
                                 "hard_percent": 99}})
    agent.start()
    script = workdir / "dwriter.py"
    script.write_text(DOCKER_WRITER)
    out = workdir / "dwriter.out"
    w = subprocess.Popen([sys.executable, str(script), str(c.path), str(out), "24"])
    try:
        w.wait(timeout=120)
    finally:
        if w.poll() is None:
            w.kill()
    total = int(out.read_text())
    agent.poll(lambda: agent.output_count_full() >= total, 60)  # None if some were lost: judged below
    agent.stop()
    acts = [a for a in agent_actions(agent) if a["action"] == "truncate"]
    assert len(acts) >= 3, "the log was truncated only %d times" % len(acts)
    assert c.path.stat().st_size < total * 150, "the log kept its size"
    seqs = [int(r["line"][4:12]) for r in agent.read_output()]
    assert len(seqs) == len(set(seqs)), "a line was shipped twice"
    missing = sorted(set(range(total)) - set(seqs))
    times = {}
    for line in open(str(out) + ".times"):
        s, a, b = line.split()
        times[int(s)] = (int(a), int(b))
    wins = rethelp.windows(log_records(agent.stderr_path.read_bytes()))
    outside = [s for s in missing if not any(times[s][0] <= t1 and times[s][1] >= t0 for t0, t1 in wins)]
    assert not outside, "%d lines lost outside the truncation windows: %s" % (len(outside), outside[:10])
    assert agent.status()["retention"]["truncations"] >= 1
