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


def test_check_refuses_globs_over_data_dir_and_sink_output(agent, workdir):
    """The configuration of the report: the agent followed its own sink output and spillway.db
    (-wal, -shm) and grew its output without end. `check` (and `run`) refuse it, naming the
    key path of each glob and why."""
    cfg = workdir / "spillway.yaml"
    cfg.write_text(to_yaml({
        "data_dir": "./data", "hostname": "h",
        "sources": [{"name": "all", "type": "file", "paths": ["./out/*", "./data/*", "./app/*.log"]}],
        "sinks": [{"name": "local", "type": "file", "path": "./out/shipped.ndjson"}],
        "server": {"listen": ""}}))
    rc, out, err = check(agent.bin, cfg)
    assert rc == 1, (rc, out, err)
    lines = err.strip().splitlines()
    assert lines == [
        '%s: sources[0].paths[0]: matches "%s/out/shipped.ndjson", the output of file sink '
        '"local": the agent would read what it writes; narrow the glob or add the file to exclude'
        % (cfg, workdir),
        '%s: sources[0].paths[1]: matches files under data_dir "%s/data" (spillway.db, its -wal '
        'and -shm: the agent\'s own buffer); narrow the glob or move data_dir' % (cfg, workdir)], err
    p = subprocess.run([agent.bin, "run", "-c", str(cfg)], capture_output=True, timeout=30,
                       stdin=subprocess.DEVNULL, cwd=str(workdir))
    assert p.returncode == 1 and p.stderr.decode().strip().splitlines() == lines
    assert not (workdir / "out" / "shipped.ndjson").exists()


def test_symlinks_into_data_dir_and_to_the_sink_output_are_skipped(agent, workdir):
    """What a lexical check cannot see: symlinks in a tailed directory that lead into data_dir
    and to the sink's output. They are skipped at run time, each said once; the real log is
    read exactly once and the output does not grow by itself."""
    d = workdir / "logs"
    d.mkdir()
    (d / "app.log").write_text("".join("line %d\n" % i for i in range(100)))
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*" % d]}])
    os.symlink(agent.data_dir / "spillway.db", d / "db")
    os.symlink(agent.data_dir / "spillway.db-wal", d / "db-wal")
    agent.out_path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(agent.out_path, d / "out")
    agent.start()
    agent.wait_count(100, 20)
    agent.wait_for(lambda: agent.stderr_tail(100000).count("skipping") >= 3, 10,
                   "the three symlinks to be skipped")
    size = agent.out_path.stat().st_size
    agent.assert_never(lambda: agent.out_path.stat().st_size != size, 2.5,
                       "the output grew: the agent read its own files")
    agent.stop()
    log = agent.stderr_tail(1 << 20)
    for name, why in (("db", "under data_dir"), ("db-wal", "under data_dir"),
                      ("out", "the output of a file sink")):
        hits = [l for l in log.splitlines() if "skipping %s/%s " % (d, name) in l]
        assert len(hits) == 1 and why in hits[0] and '"level":"warn"' in hits[0], (name, hits)
    recs = agent.read_output()
    assert [r["line"] for r in recs] == ["line %d" % i for i in range(100)]
    assert {r["labels"]["filename"] for r in recs} == {str(d / "app.log")}


def test_retention_archives_and_temporaries_are_not_tailed(agent, workdir):
    """`app/*.log*` follows app.log through its rotations (app.log.1) while retention compresses
    the archives beside it: NAME.N.zst.tmp-XXXXXX while it writes, NAME.N.zst after. Neither is
    ever read as log text (nor other compressed files or temporaries the glob finds), and every
    line written reaches the sink exactly once."""
    d = workdir / "app"
    d.mkdir()
    (d / "other.log.1.zst.tmp-AbC123").write_text("FAKE temporary\n" * 10)
    (d / "other.log.2.gz").write_text("FAKE gz\n" * 10)
    (d / "other.log.3.zst").write_text("FAKE zst\n" * 10)
    agent.write_config(
        [{"name": "app", "type": "file", "paths": ["%s/*.log*" % d]}],
        extra={"retention": [{"name": "app", "paths": [str(d / "app.log")],
                              "rotate": {"max_size": "32KiB"}, "keep": {"count": 50}}],
               "disk_pressure": {"path": str(workdir), "interval": "200ms", "soft_percent": 98,
                                 "hard_percent": 99}})
    agent.start()
    expected = []
    live = d / "app.log"
    for batch in range(8):  # each batch is bigger than max_size: one rotation each
        lines = ["batch %d line %04d %s" % (batch, i, "y" * 40) for i in range(600)]
        with open(live, "a") as f:  # reopened per batch, as a writer reopens after a rotation
            f.write("".join(l + "\n" for l in lines))
        expected += lines
        ino = os.stat(live).st_ino
        agent.wait_for(lambda: not live.exists() or os.stat(live).st_ino != ino, 20,
                       "app.log to be rotated (batch %d)" % batch)
    agent.wait_count(len(expected), 60)
    agent.wait_for(lambda: len(list(d.glob("app.log.*.zst"))) >= 6, 30, "the archives compressed")
    agent.stop()
    recs = agent.read_output()
    assert sorted(r["line"] for r in recs) == sorted(expected)
    files = {r["labels"]["filename"] for r in recs}
    assert not [f for f in files if f.endswith((".zst", ".gz")) or ".tmp-" in f], files
    log = agent.stderr_tail(1 << 22)
    assert "following %s/other" % d not in log and ".zst from offset" not in log
    assert "tmp-" not in "".join(l for l in log.splitlines() if "following" in l)
    for name in ("other.log.1.zst.tmp-AbC123", "other.log.2.gz", "other.log.3.zst"):
        assert log.count("skipping %s/%s " % (d, name)) == 1, name
    assert agent.status()["retention"]["compressions"] >= 6


def test_reload_refuses_a_glob_over_the_sink_output(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    (d / "a.log").write_text("one\n")
    src = [{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}]
    agent.write_config(src)
    agent.start()
    agent.wait_count(1, 20)
    agent.write_config(src + [{"name": "out", "type": "file",
                               "paths": ["%s/*" % agent.out_path.parent]}])
    agent.proc.send_signal(1)  # SIGHUP
    want = "reload refused: %s: sources[1].paths[0]: matches \"%s\", the output of file sink" % (
        agent.config_path, agent.out_path)
    def refused():
        msgs = [json.loads(l).get("msg", "") for l in agent.stderr_tail(100000).splitlines()
                if l.startswith("{")]
        return any(m.startswith(want) for m in msgs)

    agent.wait_for(refused, 20, "the reload to be refused")
    with open(d / "a.log", "a") as f:
        f.write("two\n")
    agent.wait_count(2, 20)
    agent.stop()
    assert [r["line"] for r in agent.read_output()] == ["one", "two"]
