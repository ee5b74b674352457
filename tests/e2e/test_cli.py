"""The command line: version, --help, status (text and JSON), graceful shutdown on SIGTERM and
SIGINT (exit 0 within 5 s, the open chunk flushed and nothing lost or repeated after a restart),
relative paths, and `run` refusing an invalid config."""

import random
import re
import signal
import socket
import subprocess

import pytest

import loggen
from conftest import HOST, REPO as REPO_ROOT, LineCounter, by_name, to_yaml, wait_for
from loggen import DockerContainer


def run_cli(spillway_bin, *args):
    p = subprocess.run([spillway_bin] + list(args), capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def test_version(spillway_bin):
    rc, out, err = run_cli(spillway_bin, "version")
    assert rc == 0, err
    assert re.search(r"spillway", out, re.I) and re.search(r"\b\d+\.\d+\.\d+\b", out), out


def test_help_lists_the_commands(spillway_bin):
    rc, out, err = run_cli(spillway_bin, "--help")
    assert rc == 0, err
    for cmd in ("run", "check", "status", "version"):
        assert re.search(r"\b%s\b" % cmd, out), "--help does not mention %r:\n%s" % (cmd, out)


def test_unknown_command_fails(spillway_bin):
    rc, out, err = run_cli(spillway_bin, "frobnicate")
    assert rc != 0
    assert err.strip(), "an unknown command must say what is wrong on stderr"


def _populated(agent, workdir):
    rng = random.Random(31)
    c = DockerContainer.create(workdir / "containers", rng, "web-1")
    wl = loggen.docker_workload(rng, 1000)
    c.path.write_bytes(b"".join(wl.phys))
    d = workdir / "app"
    d.mkdir()
    app = d / "app.log"
    app.write_text('{"msg":"ok"}\nnot json\n{"msg":"ok again"}\n')
    agent.write_config([
        {"name": "docker", "type": "docker", "paths": ["%s/containers/*/*-json.log" % workdir]},
        {"name": "app", "type": "file", "paths": ["%s/*.log" % d], "format": "json"}])
    return c, wl, app


def test_status_json_and_text_on_a_populated_db(agent, workdir):
    c, wl, app = _populated(agent, workdir)
    agent.start()
    agent.wait_count(1003, timeout=30)
    running = agent.status()  # works while the agent runs (WAL readers)
    assert isinstance(running["agent_id"], str) and running["agent_id"]
    agent.stop()

    st = agent.status()
    assert set(st) >= {"agent_id", "buffer", "files", "sources", "sinks"}, st.keys()
    assert st["agent_id"] == running["agent_id"]
    buf = st["buffer"]
    assert all(isinstance(buf[k], int) for k in ("chunks", "bytes", "max_bytes")), buf
    assert buf["max_bytes"] == 1 << 30 and buf["chunks"] >= 0 and buf["bytes"] >= 0
    files = {f["path"]: f for f in st["files"]}
    for path, source in ((c.path, "docker"), (app, "app")):
        f = files.get(str(path))
        assert f, "status lists no %s: %s" % (path, st["files"])
        size = path.stat().st_size
        assert f["source"] == source and f["offset"] == size and f["size"] == size, f
    d = by_name(st["sources"], "docker")
    a = by_name(st["sources"], "app")
    assert d["records"] == 1000 and d["parse_errors"] == 0 and d["truncated"] == 0, d
    assert a["records"] == 3 and a["parse_errors"] == 1 and a["truncated"] == 0, a
    assert d["bytes"] > 0 and a["bytes"] > 0
    sink = by_name(st["sinks"], "local")
    assert sink["type"] == "file" and isinstance(sink["acked_chunk"], int)
    assert sink["acked_chunk"] > 0 and sink["backlog_chunks"] == 0 \
        and sink["backlog_records"] == 0, sink

    p = agent.cli("status", "-c", agent.config_path)
    assert p.returncode == 0, p.stderr
    text = p.stdout.decode()
    for word in (str(c.path), str(app), "docker", "app", "local"):
        assert word in text, "status text lacks %r:\n%s" % (word, text)

    # The agent id is persisted: the same after a restart.
    agent.start()
    agent.stop()
    assert agent.status()["agent_id"] == st["agent_id"]


def test_sigterm_flushes_the_open_chunk(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    lines = ["record %02d" % i for i in range(12)]
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}],
                       buffer={"max_bytes": "1GiB", "when_full": "block",
                               "chunk": {"max_records": 5, "max_bytes": "1MiB",
                                         "max_wait": "10m"}})
    agent.start()
    (d / "a.log").write_text("".join(x + "\n" for x in lines))
    # Two full chunks (5 + 5) go out at once; the last 2 records were read with them (one
    # 132-byte write) and wait in the open chunk, whose max_wait is far away.
    agent.wait_count(10, timeout=30)
    took = agent.stop(signal.SIGTERM)
    assert took <= 5.0
    # Flushed and committed at shutdown: counted in the buffer, shipped now or after restart.
    assert by_name(agent.status()["sources"], "app")["records"] == 12
    agent.start()
    agent.wait_count(12, timeout=30)
    agent.stop()
    assert [r["line"] for r in agent.read_output()] == lines


def test_sigint_stops_gracefully(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    (d / "a.log").write_text("one\ntwo\n")
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}])
    agent.start()
    agent.wait_count(2, timeout=30)
    agent.stop(signal.SIGINT)
    assert [r["line"] for r in agent.read_output()] == ["one", "two"]


@pytest.mark.slow
def test_sigterm_under_load_exits_within_5s_and_loses_nothing(agent, workdir):
    rng = random.Random(32)
    conts, wls = [], []
    for i in range(3):
        c = DockerContainer.create(workdir / "containers", rng, "busy-%d" % i)
        wl = loggen.docker_workload(rng, 60_000, loggen.Clock(rng), long_ratio=0.001)
        c.path.write_bytes(b"".join(wl.phys))
        conts.append(c)
        wls.append(wl)
    agent.write_config([{"name": "docker", "type": "docker",
                         "paths": ["%s/containers/*/*-json.log" % workdir]}])
    agent.start()
    agent.wait_count(1, timeout=30)
    took = agent.stop(signal.SIGTERM)
    assert took <= 5.0
    shipped_at_stop = agent.output_count_full()
    print("SIGTERM took %.2fs with %d of 180000 records shipped" % (took, shipped_at_stop))
    agent.start()
    agent.wait_count(180_000, timeout=90, exact_recount=True, interval=0.25)
    agent.stop()
    recs = agent.read_output()
    loggen.check_exactly_once({c.key(): wl.exp for c, wl in zip(conts, wls)},
                              {c.key(): c.labels(HOST, "docker") for c in conts}, recs)
    assert len(recs) == 180_000, "shipped %d before the stop" % shipped_at_stop


def test_relative_paths_resolve_against_the_config_dir(agent, workdir):
    conf = workdir / "conf"
    (conf / "logs").mkdir(parents=True)
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    (conf / "logs" / "a.log").write_text("relative one\nrelative two\n")
    cfg = {"data_dir": "data", "hostname": HOST,
           "sources": [{"name": "app", "type": "file", "paths": ["logs/*.log"]}],
           "sinks": [{"name": "local", "type": "file", "path": "out.ndjson"}]}
    agent.config_path = conf / "spillway.yaml"
    agent.out_path = conf / "out.ndjson"
    agent.counter = LineCounter(agent.out_path)
    (conf / "data").mkdir()
    agent.write_config_text(to_yaml(cfg))
    agent.cwd = str(elsewhere)
    agent.start()
    agent.wait_count(2, timeout=30)
    agent.stop()
    recs = agent.read_output()
    assert [r["line"] for r in recs] == ["relative one", "relative two"]
    assert recs[0]["labels"]["filename"] == str(conf / "logs" / "a.log")
    assert (conf / "data" / "spillway.db").exists()
    assert not list(elsewhere.iterdir()), "files created relative to the cwd: %s" % list(
        elsewhere.iterdir())


def test_run_refuses_an_invalid_config(agent, workdir):
    cfg = agent.config_dict([{"name": "app", "type": "file", "paths": ["%s/*.log" % workdir]}])
    cfg["buffer"]["max_bytes"] = "12XB"
    agent.write_config_text(to_yaml(cfg))
    agent.start(wait_ready=False)
    try:
        rc = agent.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        raise AssertionError("spillway run kept running with an invalid config")
    err = agent.stderr_tail(10000)
    assert rc != 0, err
    assert "%s: buffer.max_bytes: " % agent.config_path in err, err


def test_host_label_defaults_to_the_hostname(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    (d / "a.log").write_text("hello\n")
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}],
                       hostname=None)
    agent.start()
    agent.wait_count(1, timeout=30)
    agent.stop()
    rec = agent.read_output()[0]
    assert rec["labels"]["host"] == socket.gethostname(), rec["labels"]


def test_sigterm_during_startup_exits_cleanly(agent, workdir):
    """SIGTERM can arrive at any moment (a rolling restart right after a start): even before
    the agent is up it must exit 0 within 5 s, and the next run must be unharmed."""
    d = workdir / "app"
    d.mkdir()
    (d / "a.log").write_text("".join("line %d\n" % i for i in range(1000)))
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}])
    def reached_main(pid):
        # Before main() runs (exec, dynamic loading) no program can catch a signal; from main()
        # on, SIGTERM is blocked or handled and must mean a clean exit.
        with open("/proc/%d/status" % pid) as f:
            masks = dict(l.split(":", 1) for l in f if l.startswith(("SigBlk", "SigCgt")))
        bit = 1 << (signal.SIGTERM - 1)
        return any(int(v.strip(), 16) & bit for v in masks.values())

    for _ in range(3):
        agent.start(wait_ready=False)
        wait_for(lambda: reached_main(agent.proc.pid), 5, "spillway reaching main()")
        agent.stop(signal.SIGTERM)
    agent.start()
    agent.wait_count(1000, timeout=30)
    agent.stop()
    assert [r["line"] for r in agent.read_output()] == ["line %d" % i for i in range(1000)]


def test_configuration_reference_is_generated_from_the_schema(spillway_bin):
    """docs/configuration.md is the output of `spillway config-docs` (make docs): the rows that
    validate configs also document them, so the reference cannot drift."""
    p = subprocess.run([str(spillway_bin), "config-docs"], capture_output=True, check=True)
    doc = (REPO_ROOT / "docs" / "configuration.md").read_bytes()
    assert p.stdout == doc, "docs/configuration.md is stale: run `make docs`"
