"""What the buffer stores about incomplete records: offsets and times only, never their bytes
(they could hold a secret that only becomes redactable once the record is whole)."""

import json
import os

from conftest import wait_for


def docker_piece(text, final):
    return json.dumps({"log": text + ("\n" if final else ""), "stream": "stdout",
                       "time": "2026-11-23T15:33:52.123456789Z"}) + "\n"


def test_pending_pieces_are_replayed_not_stored(agent, workdir):
    cid = "ab" * 32
    d = workdir / "containers" / cid
    d.mkdir(parents=True)
    log = d / ("%s-json.log" % cid)
    marker = "PENDINGPIECE-%s" % os.urandom(8).hex()
    # One complete record, then the first two 16 KiB pieces of a long line; its end is missing.
    first = "A" * 16384
    second = marker + "B" * (16384 - len(marker))
    log.write_text(docker_piece("complete record", True) + docker_piece(first, False) +
                   docker_piece(second, False))
    agent.write_config([{"name": "docker", "type": "docker",
                         "paths": ["%s/*/*-json.log" % (workdir / "containers")]}])
    agent.start()
    agent.wait_count(1, timeout=30)
    # The offset moves past the pending pieces (they are accounted for)...
    wait_for(lambda: agent.status()["files"][0]["offset"] == log.stat().st_size, 10,
             "the offset to include the pending pieces")
    agent.stop()
    # ...but their bytes are nowhere in the database or its WAL.
    for name in os.listdir(agent.data_dir):
        data = (agent.data_dir / name).read_bytes()
        assert marker.encode() not in data, "pending bytes stored in %s" % name
    # The record completes after a restart, whole and exactly once.
    with open(log, "a") as f:
        f.write(docker_piece("C" * 100, True))
    agent.start()
    agent.wait_count(2, timeout=30)
    agent.stop()
    lines = [r["line"] for r in agent.read_output()]
    assert lines == ["complete record", first + second + "C" * 100]
