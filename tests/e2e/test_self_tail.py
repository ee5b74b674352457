"""The agent never reads what it writes itself: its data_dir (spillway.db, -wal, -shm), its
file sinks' outputs, and the temporaries and compressed archives retention makes. `check`
refuses a glob that would match data_dir or a sink output; at run time such files are skipped
and said so once. Also the overlong-line regression found while the agent tailed its output:
a line emitting a max_record_bytes piece and its rest into a nearly full chunk lost the rest."""

import json
import os
import subprocess

from conftest import is_truncated, to_yaml


def check(spillway_bin, cfg_path):
    p = subprocess.run([spillway_bin, "check", "-c", str(cfg_path)], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_overlong_line_after_a_nearly_full_chunk_loses_nothing(agent, workdir):
    """950 lines of 1 KiB (under chunk.max_bytes, so not sealed), then one line of 1 MiB +
    214838 bytes: its 1 MiB piece and its 214838-byte rest both enter the open chunk before
    the line ends. The rest was refused by the chunk builder ("chunk builder refused a record
    of 214838 bytes") and lost."""
    d = workdir / "app"
    d.mkdir()
    short = [("short %06d " % i + "x" * 1000) for i in range(950)]
    long_line = "L" * ((1 << 20) + 214838)
    (d / "a.log").write_text("\n".join(short) + "\n" + long_line + "\nafter 1\nafter 2\n")
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}],
                       buffer={"max_bytes": "1GiB", "when_full": "block",
                               "chunk": {"max_records": 5000, "max_bytes": "1MiB",
                                         "max_wait": "5s"}})
    agent.start()
    agent.wait_count(954, timeout=30)
    agent.stop()
    recs = agent.read_output()
    assert "refused" not in agent.stderr_tail(100000)
    lines = [r["line"] for r in recs]
    assert len(lines) == 954, len(lines)
    assert lines[:950] == short
    assert [len(x) for x in lines[950:952]] == [1 << 20, 214838]
    assert "".join(lines[950:952]) == long_line
    assert all(is_truncated(r) for r in recs[950:952])
    assert lines[952:] == ["after 1", "after 2"]
