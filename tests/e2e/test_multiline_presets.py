"""Multiline presets (sources[].multiline.preset): real stack traces collected from public
projects' issue trackers (tests/e2e/data/stacktraces, SOURCES.md says where each is from) are
written between ordinary log lines of the same runtime; every trace must arrive as exactly one
record, byte for byte, and every ordinary line as a record of its own, in order."""

import random
from pathlib import Path

import pytest

import loggen

DATA = Path(__file__).parent / "data" / "stacktraces"
LANGS = ["java", "python", "go", "ruby", "dotnet"]
# Lines at the head of a fixture that are ordinary records printed before the trace (a logger's
# header line, Rails' request lines): they must stay records of their own.
LEAD = {
    "java/05-logback-chain-common-frames-omitted.txt": 1,
    "python/02-logging-header-task-never-retrieved.txt": 2,
    "ruby/05-rails-request-with-template-error.txt": 8,
    "dotnet/03-logged-aggregate-inner-exception.txt": 1,
}
ORDINARY = {
    "java": ["java-logback.log", "java-spring-boot-default.log"],
    "python": ["python-logging.log", "python-basicconfig-uvicorn.log"],
    "go": ["go-stdlog.log", "go-logfmt-slog.log"],
    "ruby": ["ruby-logger.log", "ruby-rails-production.log", "ruby-rails-development.log"],
    "dotnet": ["dotnet-serilog.log", "dotnet-console.log"],
}


def ordinary_entries(lang):
    """Ordinary records of a runtime: one per line, except .NET's console logger whose entry is
    its header line and the 6-space indented message under it."""
    out = []
    for name in ORDINARY[lang]:
        for line in (DATA / "ordinary" / name).read_text().splitlines():
            if name == "dotnet-console.log" and line.startswith("      ") and out:
                out[-1] += "\n" + line
            else:
                out.append(line)
    return out


def trace_records(path):
    lines = path.read_text().splitlines()
    lead = LEAD.get("%s/%s" % (path.parent.name, path.name), 0)
    return lines[:lead] + ["\n".join(lines[lead:])]


def workload(lang, rng):
    """(text lines, expected records): the traces spread between ordinary entries, each placed
    before an entry that starts unindented (as a logger's next line does)."""
    entries = ordinary_entries(lang)
    traces = sorted((DATA / lang).glob("*.txt"))
    assert len(traces) >= 4, "fixtures for %s are missing" % lang
    slots = [i for i, e in enumerate(entries) if not e[:1].isspace()]
    at = sorted(rng.sample(slots, len(traces)) if len(slots) >= len(traces) else slots * len(traces))
    expected, pos = [], 0
    for t, i in zip(traces, at):
        expected += entries[pos:i]
        expected += trace_records(t)
        pos = i
    expected += entries[pos:]
    lines = [l for rec in expected for l in rec.split("\n")]
    return lines, expected


def run_until(agent, n):
    """Runs the agent until n records are out (or it stays short for 15 s: a wrong grouping
    then shows as a diff rather than a timeout), stops it, returns the records."""
    agent.start()
    agent.poll(lambda: agent.output_count() >= n, 15)
    agent.stop()
    return agent.read_output()


@pytest.mark.parametrize("lang", LANGS)
def test_each_trace_is_one_record_in_a_file(agent, workdir, lang):
    rng = random.Random(17)
    lines, expected = workload(lang, rng)
    d = workdir / "logs"
    d.mkdir()
    (d / "app.log").write_text("\n".join(lines) + "\n")
    agent.write_config([{"name": "app", "type": "file", "paths": [str(d / "*.log")],
                         "multiline": {"preset": lang, "timeout": "300ms"}}])
    got = [r["line"] for r in run_until(agent, len(expected))]
    diff = loggen.diff_sequences(expected, got, "%s records" % lang)
    assert diff is None, diff


def test_traces_in_cri_partials_and_interleaved_streams(agent, workdir):
    """CRI: a long frame line split into P pieces is joined before the preset sees it; a trace on
    stderr is one record while stdout lines keep their own records."""
    rng = random.Random(5)
    lines, expected = workload("java", rng)
    d = workdir / "pods" / "shop_api-7d9f8b6c5d-x2x9k_0a1b2c3d-0000-4000-8000-000000000001" / "api"
    d.mkdir(parents=True)
    ts = loggen.recent_ns(600)
    out = []
    for i, line in enumerate(lines):
        ts += 1000
        if len(line) > 60 and i % 3 == 0:  # runtime split: P pieces, then the F piece
            out.append(loggen.cri_line(ts, "stderr", "P", line[:25]))
            out.append(loggen.cri_line(ts, "stderr", "P", line[25:50]))
            out.append(loggen.cri_line(ts, "stderr", "F", line[50:]))
        else:
            out.append(loggen.cri_line(ts, "stderr", "F", line))
    (d / "0.log").write_bytes(b"".join(out))
    agent.write_config([{"name": "pods", "type": "cri", "paths": [str(workdir / "pods/*/*/*.log")],
                         "multiline": {"preset": "java", "timeout": "300ms"}}])
    recs = run_until(agent, len(expected))
    diff = loggen.diff_sequences(expected, [r["line"] for r in recs], "java records from CRI")
    assert diff is None, diff
    assert {r["stream"] for r in recs} == {"stderr"}


def test_check_refuses_start_with_preset_and_unknown_preset(agent, workdir):
    d = workdir / "logs"
    d.mkdir()
    agent.write_config([{"name": "app", "type": "file", "paths": [str(d / "*.log")],
                         "multiline": {"preset": "java", "start": "^\\d"}}])
    r = agent.cli("check", "-c", agent.config_path)
    assert r.returncode == 1
    assert b"sources[0].multiline: set either start or preset, not both" in r.stderr, r.stderr
    agent.write_config([{"name": "app", "type": "file", "paths": [str(d / "*.log")],
                         "multiline": {"preset": "kotlin"}}])
    r = agent.cli("check", "-c", agent.config_path)
    assert r.returncode == 1
    assert b"sources[0].multiline.preset" in r.stderr and b"java" in r.stderr, r.stderr
