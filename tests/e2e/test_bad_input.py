"""Bad input never stops the agent: broken docker JSON, random garbage, invalid UTF-8, NUL bytes,
a 10 MiB line, a last line without its newline, a file deleted while being read. Broken lines
are kept as text with a parse_error label and counted; the agent keeps running and exits 0 on
SIGTERM.

Contract decisions used here (see the report):
  - invalid UTF-8: the sink writes each invalid byte as U+FFFD (one per byte, not one per
    maximal subpart) and adds label invalid_utf8="true";
  - a split record's pieces all carry truncated="true" and are at most max_record_bytes each.
"""

import os
import random
import time

import loggen
from conftest import HOST, by_name, is_truncated, strip_flags
from loggen import CriContainer, DockerContainer, fmt_ts, parse_ts

B = loggen.BASE_NS
T0 = loggen.go_rfc3339nano(B)


def text_source(d, name="app", **kw):
    s = {"name": name, "type": "file", "paths": ["%s/*.log" % d]}
    s.update(kw)
    return s


def test_broken_docker_lines_are_kept_as_text_and_counted(agent, workdir):
    rng = random.Random(21)
    c = DockerContainer.create(workdir / "containers", rng, "broken")
    broken = [
        b'{"log":"no closing brace\\n","stream":"stdout","time":"%s"' % T0.encode(),
        b"not json at all",
        b'{"log":123,"stream":"stdout","time":"%s"}' % T0.encode(),
        b'{"stream":"stdout","time":"%s"}' % T0.encode(),
        b'{"log":"bad time\\n","stream":"stdout","time":"yesterday"}',
        b'{"log":"bad escape \\q\\n","stream":"stderr","time":"%s"}' % T0.encode(),
        b"\x00\x00\x00\x00\x00\x00\x00\x00",  # what a host crash leaves in json-file logs
        b'{"log":"unterminated string,"stream":"stdout"}',
    ]
    lines, expect = [], []  # expect: ("ok", tuple) | ("bad", raw text)
    ts = B
    for i, bad in enumerate(broken):
        ts += 1000
        text = "good %d \"q\" \\ é \u0000 nul" % i
        lines.append(loggen.docker_entry(text + "\n", "stdout", ts))
        expect.append(("ok", (fmt_ts(ts), "stdout", text)))
        lines.append(bad + b"\n")
        expect.append(("bad", bad.decode()))
    ts += 1000
    lines.append(loggen.docker_entry("last good\n", "stderr", ts))
    expect.append(("ok", (fmt_ts(ts), "stderr", "last good")))

    agent.write_config([{"name": "docker", "type": "docker",
                         "paths": ["%s/containers/*/*-json.log" % workdir]}])
    t_start = time.time_ns()
    c.path.write_bytes(b"".join(lines))
    agent.start()
    agent.wait_count(len(expect), timeout=30)
    agent.check_alive()
    agent.stop()
    t_end = time.time_ns()
    recs = agent.read_output()
    assert len(recs) == len(expect), [r["line"] for r in recs]
    base = c.labels(HOST, "docker")
    for r, (kind, want) in zip(recs, expect):
        if kind == "ok":
            assert (r["ts"], r["stream"], r["line"]) == want
            assert r["labels"] == base
        else:
            assert r["line"] == want
            assert r["labels"] == dict(base, parse_error="docker"), r["labels"]
            assert r["stream"] in ("stdout", "stderr")
            assert t_start - 10**9 <= parse_ts(r["ts"]) <= t_end + 10**9, \
                "a broken line's ts must be its read time, got %s" % r["ts"]
    src = by_name(agent.status()["sources"], "docker")
    assert src["parse_errors"] == len(broken), src
    assert src["records"] == len(expect), src


def test_random_garbage_in_every_format_never_crashes(agent, workdir):
    rng = random.Random(22)
    c = DockerContainer.create(workdir / "containers", rng, "garbage")
    p = CriContainer.create(workdir / "pods", rng, "default", "garbage-0", "main")
    dj, dl = workdir / "json", workdir / "logfmt"
    dj.mkdir()
    dl.mkdir()

    def garbage_lines(n):
        out = []
        for _ in range(n):
            b = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
            b = b.replace(b"\n", b"#")
            if b[:1] in (b"{", b"[") or b.strip() == b"":
                b = b"!" + b
            out.append(b)
        return out

    g = {k: garbage_lines(300) for k in ("docker", "pods", "j", "l")}
    # logfmt would accept many printable runs as bare keys; make every line invalid for it
    g["l"] = [b'"' + x for x in g["l"]]
    agent.write_config([
        {"name": "docker", "type": "docker", "paths": ["%s/containers/*/*-json.log" % workdir]},
        {"name": "pods", "type": "cri", "paths": ["%s/pods/*/*/*.log" % workdir]},
        text_source(dj, "j", format="json"), text_source(dl, "l", format="logfmt")])
    agent.start()
    for path, key in ((c.path, "docker"), (p.path, "pods"), (dj / "a.log", "j"),
                      (dl / "a.log", "l")):
        with open(path, "ab") as f:
            f.write(b"\n".join(g[key]) + b"\n")
    total = sum(len(v) for v in g.values())
    agent.wait_count(total, timeout=30)
    agent.stop()
    recs = agent.read_output()
    assert len(recs) == total
    fmt = {"docker": "docker", "pods": "cri", "j": "json", "l": "logfmt"}
    for key, lines in g.items():
        got = [r for r in recs if r["labels"]["source"] == key]
        assert [r["line"] for r in got] == [loggen.invalid_utf8_replaced(x) for x in lines]
        for r, raw in zip(got, lines):
            assert r["labels"]["parse_error"] == fmt[key], r["labels"]
            bad_utf8 = raw.decode("utf-8", "replace") != raw.decode("utf-8", "ignore")
            assert (r["labels"].get("invalid_utf8") == "true") == bad_utf8, (raw, r["labels"])
    st = agent.status()
    for key, lines in g.items():
        assert by_name(st["sources"], key)["parse_errors"] == len(lines)


# Lone bytes that can never start a sequence, lone continuation bytes, overlongs, surrogates,
# code points above U+10FFFF, sequences cut short (by another byte or by the end of the line).
BAD_UTF8 = [b"abc\xffdef", b"\xfe\xfe", b"lone \x80 cont", b"overlong \xc0\xaf slash",
            b"surrogate \xed\xa0\x80 here", b"too big \xf5\x80\x80\x80", b"cut \xe2A here",
            b"cut2 \xe2\x82A", b"\xe9t\xe9 latin-1", b"mixed \xc3\xa9 ok \xff bad",
            b"ends cut \xf0\x9f\x98"]


def test_invalid_utf8_becomes_replacement_chars_and_is_flagged(agent, workdir):
    rng = random.Random(23)
    d = workdir / "app"
    d.mkdir()
    p = CriContainer.create(workdir / "pods", rng, "default", "utf8-0", "main")
    text = [b"valid \xc3\xa9 line"] + BAD_UTF8 + [b"valid again"]
    (d / "a.log").write_bytes(b"\n".join(text) + b"\n")
    cri = [b"%s stdout F %s\n" % (T0.encode(), x) for x in text]
    p.path.write_bytes(b"".join(cri))
    agent.write_config([text_source(d),
                        {"name": "pods", "type": "cri", "paths": ["%s/pods/*/*/*.log" % workdir]}])
    agent.start()
    agent.wait_count(2 * len(text), timeout=30)
    agent.stop()
    recs = agent.read_output()
    assert len(recs) == 2 * len(text)
    for source, base in (("app", {"host": HOST, "source": "app", "filename": str(d / "a.log")}),
                         ("pods", p.labels(HOST, "pods"))):
        got = [r for r in recs if r["labels"]["source"] == source]
        assert [r["line"] for r in got] == [loggen.invalid_utf8_replaced(x) for x in text]
        for r, raw in zip(got, text):
            bad = raw in BAD_UTF8
            want = dict(base, invalid_utf8="true") if bad else base
            assert r["labels"] == want, (raw, r["labels"])
        if source == "pods":
            assert all(r["ts"] == fmt_ts(B) and r["stream"] == "stdout" for r in got)
    for s in agent.status()["sources"]:
        assert s["parse_errors"] == 0, s


def test_nul_bytes_are_kept(agent, workdir):
    rng = random.Random(24)
    d = workdir / "app"
    d.mkdir()
    c = DockerContainer.create(workdir / "containers", rng, "nul")
    (d / "a.log").write_bytes(b"before\x00after\n\x00\n\x00\x00x\x00\n")
    c.path.write_bytes(loggen.docker_entry("nul\x00inside\n", "stdout", B) +
                       loggen.docker_entry("\x00\n", "stderr", B + 1))
    agent.write_config([text_source(d), {"name": "docker", "type": "docker",
                                         "paths": ["%s/containers/*/*-json.log" % workdir]}])
    agent.start()
    agent.wait_count(5, timeout=30)
    agent.stop()
    recs = agent.read_output()
    assert [r["line"] for r in recs if r["labels"]["source"] == "app"] == [
        "before\x00after", "\x00", "\x00\x00x\x00"]
    assert [(r["ts"], r["stream"], r["line"]) for r in recs
            if r["labels"]["source"] == "docker"] == [
        (fmt_ts(B), "stdout", "nul\x00inside"), (fmt_ts(B + 1), "stderr", "\x00")]
    for r in recs:
        assert "parse_error" not in r["labels"] and "invalid_utf8" not in r["labels"], r
    assert b"\x00" not in agent.read_raw(), "NUL must be JSON-escaped in the sink output"


def _check_split(recs, original, base_labels, max_piece):
    pieces = [r for r in recs if is_truncated(r)]
    assert pieces, "no record carries truncated=true"
    assert "".join(r["line"] for r in pieces) == original, \
        "the truncated pieces do not concatenate to the original line (%d pieces, %d vs %d " \
        "bytes)" % (len(pieces), sum(len(r["line"]) for r in pieces), len(original))
    assert len(pieces) >= -(-len(original) // max_piece)
    for r in pieces:
        assert len(r["line"].encode()) <= max_piece, len(r["line"])
        assert strip_flags(r["labels"]) == base_labels, r["labels"]
    return pieces


def test_10mib_line_is_kept_as_truncated_pieces(agent, workdir):
    rng = random.Random(25)
    d = workdir / "app"
    d.mkdir()
    big = loggen.long_ascii(rng, 10 * 1024 * 1024, "-text")
    (d / "a.log").write_text("before\n" + big + "\nafter\n")
    # Docker: a 2.5 MiB line arrives as 160 partial entries, is joined, then split at 1 MiB.
    c = DockerContainer.create(workdir / "containers", rng, "big")
    dbig = loggen.long_ascii(rng, 5 * 512 * 1024, "-docker")
    ents = [loggen.docker_entry(x, "stdout", B + i) for i, x in
            enumerate(["first\n"] + loggen.docker_pieces(dbig) + ["last\n"])]
    c.path.write_bytes(b"".join(ents))
    agent.write_config([text_source(d), {"name": "docker", "type": "docker",
                                         "paths": ["%s/containers/*/*-json.log" % workdir]}])
    agent.start()
    agent.wait_for(lambda: sum(1 for r in agent.read_output() if r["line"] in ("after", "last"))
                   == 2, 60, "the lines after the huge ones", interval=0.25)
    agent.stop()
    recs = agent.read_output()
    app = [r for r in recs if r["labels"]["source"] == "app"]
    base = {"host": HOST, "source": "app", "filename": str(d / "a.log")}
    assert app[0]["line"] == "before" and app[-1]["line"] == "after"
    assert not is_truncated(app[0]) and not is_truncated(app[-1])
    pieces = _check_split(app[1:-1], big, base, 1024 * 1024)
    assert len(pieces) == len(app) - 2
    dock = [r for r in recs if r["labels"]["source"] == "docker"]
    assert dock[0]["line"] == "first" and dock[-1]["line"] == "last"
    dp = _check_split(dock[1:-1], dbig, c.labels(HOST, "docker"), 1024 * 1024)
    assert len(dp) == len(dock) - 2
    assert dp[0]["ts"] == fmt_ts(B + 1), "the first piece keeps the first entry's ts"
    st = agent.status()
    for name, n in (("app", len(pieces)), ("docker", len(dp))):
        s = by_name(st["sources"], name)
        assert s["truncated"] in (1, n), "truncated counter %s (pieces %d)" % (s, n)
        assert s["parse_errors"] == 0


def test_last_line_without_newline_waits_for_completion(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    path = d / "a.log"
    path.write_bytes(b"one\ntwo\npartial-without-newline")
    agent.write_config([text_source(d)])
    agent.start()
    agent.wait_count(2, timeout=30)

    def committed_offset():
        for f in agent.status()["files"]:
            if f["path"] == str(path):
                return f["offset"]
        return None
    agent.wait_for(lambda: committed_offset() == len(b"one\ntwo\n"), 10,
                   "status to show the offset after the last complete line")
    agent.assert_never(lambda: agent.output_count() > 2, 1.0,
                       "a line without its newline was emitted")
    agent.stop()  # shutdown keeps waiting for the newline: nothing more in the output
    assert [r["line"] for r in agent.read_output()] == ["one", "two"]
    agent.start()
    agent.assert_never(lambda: agent.output_count() > 2, 1.0,
                       "the incomplete line was emitted after a restart")
    with open(path, "ab") as f:
        f.write(b"-completed\nthree\n")
    agent.wait_count(4, timeout=30)
    agent.stop()
    assert [r["line"] for r in agent.read_output()] == [
        "one", "two", "partial-without-newline-completed", "three"]


def test_file_deleted_while_being_read_is_fully_delivered(agent, workdir):
    """The app keeps appending (never more than 2000 lines ahead of the sink), the file is
    unlinked while the agent is still behind, and the app writes 500 more lines through its
    open descriptor before closing it. Everything written before the unlink must arrive; of the
    500 later lines any prefix may arrive (the agent may stop at the end it sees); nothing twice,
    nothing out of order, and the descriptor is closed once the file is drained."""
    d = workdir / "app"
    d.mkdir()
    path = d / "app.log"
    lines = ["line %06d %s" % (i, "z" * (i % 150)) for i in range(40_500)]
    agent.write_config([text_source(d)])
    agent.start()
    f = open(path, "ab")
    try:
        written = 0
        for _ in range(1000):
            if written >= 40_000:
                break
            agent.wait_count(written - 2000, timeout=30)
            f.write("".join(x + "\n" for x in lines[written:written + 500]).encode())
            f.flush()
            written += 500
        shipped = agent.output_count()
        os.unlink(path)
        f.write("".join(x + "\n" for x in lines[40_000:]).encode())
        f.flush()
    finally:
        f.close()
    print("unlinked with %d of 40000 lines shipped" % shipped)
    agent.wait_count(40_000, timeout=60)
    agent.wait_for(lambda: not agent.deleted_fds(d), 5,
                   "the deleted, drained file's descriptor to be closed")
    agent.stop()
    got = [r["line"] for r in agent.read_output()]
    assert got[:40_000] == lines[:40_000], "lines written before the unlink: %d of 40000 " \
        "delivered in order" % sum(1 for a, b in zip(got, lines) if a == b)
    assert got == lines[:len(got)], "the lines written after the unlink are not a clean prefix"
