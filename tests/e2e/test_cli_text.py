"""What the command line prints for people: `--db FILE` names the file it was given, `check`
names every path it tried, counts read right, status sizes are in binary units, and log content
or file names cannot drive the terminal (`search` text and `status` escape control characters;
`--output raw` keeps the bytes; JSON stays exact)."""

import json
import re


def text(p):
    return p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def test_search_db_names_a_missing_file(agent, workdir):
    nope = workdir / "nope.db"
    p = agent.cli("search", "--db", nope, "x")
    out, err = text(p)
    assert p.returncode == 2, (out, err)
    assert str(nope) in err and "spillway.db" not in err, err
    assert "No such file" in err, err


def test_search_db_takes_a_file_or_a_directory(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    (d / "a.log").write_text("alpha 1\nbeta 2\nalpha 3\n")
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}],
                       buffer={"max_bytes": "64MiB", "when_full": "block",
                               "keep_shipped": {"max_age": "1h", "max_bytes": "16MiB"},
                               "chunk": {"max_records": 5000, "max_bytes": "1MiB",
                                         "max_wait": "100ms"}})
    agent.start()
    agent.wait_count(3, 30)
    agent.stop()
    for where in (agent.data_dir, agent.data_dir / "spillway.db"):
        p = agent.cli("search", "--db", where, "--count", "alpha")
        assert p.returncode == 0 and p.stdout.strip() == b"2", text(p)


def test_check_without_c_names_every_path_tried(agent, workdir):
    empty = workdir / "nowhere"
    empty.mkdir()
    agent.cwd = str(empty)
    p = agent.cli("check")
    out, err = text(p)
    assert p.returncode == 1, (out, err)
    assert "./spillway.yaml" in err and "/etc/spillway/spillway.yaml" in err, err
    assert "-c FILE" in err, err


def test_check_counts_in_words(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}])
    out, err = text(agent.cli("check", "-c", agent.config_path))
    assert out.strip().endswith("ok (1 source, 1 sink)"), out
    agent.write_config([{"name": "a", "type": "file", "paths": ["%s/*.log" % d]},
                        {"name": "b", "type": "file", "paths": ["%s/*.txt" % d]}],
                       sinks=[{"name": "x", "type": "file", "path": str(workdir / "x.ndjson")},
                              {"name": "y", "type": "file", "path": str(workdir / "y.ndjson")}])
    out, err = text(agent.cli("check", "-c", agent.config_path))
    assert out.strip().endswith("ok (2 sources, 2 sinks)"), out
    agent.start(wait_ready=False)
    agent.wait_for(lambda: "running: 2 sources, 2 sinks" in agent.stderr_path.read_text(), 20,
                   "the start line")
    agent.stop()


def test_status_sizes_for_people_and_bytes_in_json(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    (d / "a.log").write_text("".join("line %06d %s\n" % (i, "x" * 200) for i in range(3000)))
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}],
                       buffer={"max_bytes": "256MiB", "when_full": "block",
                               "chunk": {"max_records": 5000, "max_bytes": "1MiB",
                                         "max_wait": "100ms"}})
    agent.start()
    agent.wait_count(3000, 30)
    agent.stop()
    out, err = text(agent.cli("status", "-c", agent.config_path))
    assert re.search(r"bytes [0-9.]+ (B|KiB|MiB) / max 256\.0 MiB", out), out
    size = (d / "a.log").stat().st_size
    assert re.search(r"%.1f KiB +[-0-9.]+ *\S* +%.1f KiB +0 B +%s" % (
        size / 1024, size / 1024, re.escape(str(d / "a.log"))), out), out
    st = agent.status()
    assert st["buffer"]["max_bytes"] == 256 << 20
    f = [x for x in st["files"] if x["path"] == str(d / "a.log")][0]
    assert f["offset"] == size and f["size"] == size


EVIL = ("\x1b[2J\x1b]0;owned\x07 \x1b]52;c;ZXZpbA==\x07 ok\rFAKE bs\b\b csi\u009b31m "
        "rtl\u202egnp tab\tend")


def test_search_text_escapes_what_a_terminal_would_obey(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    name = d / "evil\nname\x1b[31m.log"
    name.write_bytes(("marker " + EVIL + "\nmarker second\nline\n").encode())
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}],
                       buffer={"max_bytes": "64MiB", "when_full": "block",
                               "keep_shipped": {"max_age": "1h", "max_bytes": "16MiB"},
                               "chunk": {"max_records": 5000, "max_bytes": "1MiB",
                                         "max_wait": "100ms"}})
    agent.start()
    agent.wait_count(3, 30)
    p = agent.cli("search", "-c", agent.config_path, "marker")
    out = p.stdout
    assert p.returncode == 0, p.stderr
    for bad in (b"\x1b", b"\x07", b"\r", b"\b", "\u009b".encode(), "\u202e".encode()):
        assert bad not in out, (bad, out)
    lines = out.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 3, out  # a newline in a file name fakes no line
    first = lines[0].decode()
    assert "filename=%s" % str(name).replace("\n", "\\n").replace("\x1b", "\\e") in first, first
    assert "\\e[2J\\e]0;owned\\a \\e]52;c;ZXZpbA==\\a ok\\rFAKE bs\\b\\b csi\\u009b31m " \
           "rtl\\u202egnp tab\tend" in first, first

    raw = agent.cli("search", "-c", agent.config_path, "--output", "raw", "marker").stdout
    assert ("marker " + EVIL).encode() in raw and str(name).encode() in raw

    js = [json.loads(l) for l in
          agent.cli("search", "-c", agent.config_path, "--output", "json", "marker")
          .stdout.splitlines()]
    assert js[0]["line"] == "marker " + EVIL and js[0]["labels"]["filename"] == str(name)

    st = agent.cli("status", "-c", agent.config_path).stdout
    for bad in (b"\x1b", b"\n" + b"name"):
        assert bad not in st, st
    assert b"evil\\nname\\e[31m.log" in st, st
    agent.stop()
