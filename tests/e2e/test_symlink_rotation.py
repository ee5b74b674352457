"""Kubernetes' layout: the DaemonSet tails /var/log/containers/*.log, symlinks to
/var/log/pods/<ns>_<pod>_<uid>/<ctr>/0.log, and the kubelet rotates by renaming 0.log to
0.log.<timestamp> while the runtime reopens 0.log. Generations created and renamed away between
two scans of the symlinks must still be read, each exactly once."""

import os
import threading
import time

import pytest

import loggen

NS = 10**9


def cri(seq, ts):
    return loggen.cri_line(ts, "stdout", "F", "seq=%07d kubelet-rotated" % seq)


class KubeletWriter(threading.Thread):
    """Writes `total` numbered CRI lines to <dir>/0.log, renaming it to 0.log.<n> every `per`
    lines and about every `every` seconds, like a runtime writing and a kubelet rotating."""

    def __init__(self, d, total, per, every):
        super().__init__(daemon=True)
        self.d, self.total, self.per, self.every = d, total, per, every
        self.generations = 0
        self.pace = threading.Event()  # never set: its wait() paces the writer
        self.error = None

    def run(self):
        try:
            ts = loggen.recent_ns()
            f = open(os.path.join(self.d, "0.log"), "ab")
            for seq in range(self.total):
                f.write(cri(seq, ts + seq * 1000))
                if (seq + 1) % self.per == 0:
                    f.close()
                    self.generations += 1
                    os.rename(os.path.join(self.d, "0.log"),
                              os.path.join(self.d, "0.log.%05d" % self.generations))
                    f = open(os.path.join(self.d, "0.log"), "ab")
                    self.pace.wait(self.every)
            f.close()
        except Exception as e:  # reported by the test
            self.error = e


@pytest.mark.parametrize("per,every", [(975, 0.1), (120, 0.002)], ids=["100ms", "2ms"])
def test_fast_rotation_behind_a_symlink_loses_nothing(agent, workdir, per, every):
    """At 100 ms (the measured case: 8 718 of 25 000 lines were lost) and at 2 ms, faster than
    a rescan can follow the symlink: generations are found in the target directory."""
    pods = workdir / "pods" / "shop_checkout-7d9f_0a1b2c3d-0000-4000-8000-000000000001" / "app"
    pods.mkdir(parents=True)
    (pods / "0.log").write_bytes(b"")
    links = workdir / "containers"
    links.mkdir()
    os.symlink(pods / "0.log", links / "checkout-7d9f_shop_app-0a1b2c3d.log")
    agent.write_config([{"name": "pods", "type": "cri", "paths": ["%s/*.log" % links]}])
    agent.start()
    total = 25000
    w = KubeletWriter(str(pods), total, per, every)
    started = time.monotonic()
    w.start()
    w.join(120)
    assert not w.error, w.error
    assert w.generations == total // per
    agent.wait_count(total, 60)
    agent.wait_for(lambda: agent.status()["sinks"][0]["backlog_records"] == 0, 30, "the ack")
    recs = agent.read_output()
    seqs = [int(r["line"].split()[0][4:]) for r in recs]
    assert len(seqs) == total, "%d records for %d lines" % (len(seqs), total)
    assert sorted(seqs) == list(range(total)), "lost or repeated lines"
    assert all(r["labels"]["pod"] == "checkout-7d9f" and r["labels"]["namespace"] == "shop"
               for r in recs)
    assert time.monotonic() - started < total // per * every + 60
    agent.stop()


def test_old_generations_present_at_start_are_not_read(agent, workdir):
    """Generations rotated before the agent first saw the container are history, not backlog:
    only the live file is read (as for a glob that does not match rotated names)."""
    pods = workdir / "pods" / "ns_pod_0a1b2c3d-0000-4000-8000-000000000002" / "c"
    pods.mkdir(parents=True)
    ts = loggen.recent_ns()
    (pods / "0.log.00001").write_bytes(b"".join(cri(i, ts + i) for i in range(100)))
    (pods / "0.log").write_bytes(b"".join(cri(i, ts + i) for i in range(100, 150)))
    links = workdir / "containers"
    links.mkdir()
    os.symlink(pods / "0.log", links / "pod_ns_c-0a1b2c3d.log")
    agent.write_config([{"name": "pods", "type": "cri", "paths": ["%s/*.log" % links]}])
    agent.start()
    agent.wait_count(50, 30)
    # a rotation after the start is read, the old generation still is not
    os.rename(pods / "0.log", pods / "0.log.00002")
    (pods / "0.log").write_bytes(b"".join(cri(i, ts + i) for i in range(150, 160)))
    agent.wait_count(60, 30)
    agent.assert_never(lambda: agent.output_count() > 60, 1.5, "old generation read")
    seqs = sorted(int(r["line"].split()[0][4:]) for r in agent.read_output())
    assert seqs == list(range(100, 160))
    agent.stop()


def test_generations_rotated_while_the_agent_was_down_are_read(agent, workdir):
    """kill -9, then two rotations (one generation written and renamed away entirely while the
    agent was down), then a restart: every line exactly once."""
    pods = workdir / "pods" / "ns_pod_0a1b2c3d-0000-4000-8000-000000000003" / "c"
    pods.mkdir(parents=True)
    ts = loggen.recent_ns()
    live = pods / "0.log"
    live.write_bytes(b"".join(cri(i, ts + i) for i in range(0, 100)))
    links = workdir / "containers"
    links.mkdir()
    os.symlink(live, links / "pod_ns_c-0a1b2c3d.log")
    agent.write_config([{"name": "pods", "type": "cri", "paths": ["%s/*.log" % links]}])
    agent.start()
    agent.wait_count(100, 30)
    with open(live, "ab") as f:  # read or not before the kill: either way exactly once
        f.write(b"".join(cri(i, ts + i) for i in range(100, 150)))
    agent.kill9()
    os.rename(live, pods / "0.log.00001")
    live.write_bytes(b"".join(cri(i, ts + i) for i in range(150, 220)))
    os.rename(live, pods / "0.log.00002")  # never seen by any agent
    live.write_bytes(b"".join(cri(i, ts + i) for i in range(220, 260)))
    agent.start()
    agent.wait_count(260, 30)
    agent.assert_never(lambda: agent.output_count() > 260, 1.5, "a line read twice")
    seqs = sorted(int(r["line"].split()[0][4:]) for r in agent.read_output())
    assert seqs == list(range(260))
    agent.stop()
