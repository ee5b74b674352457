"""Ingest: docker json-file and CRI logs (with 16 KiB splits and P/F partials), files that
appear while running, read_from: tail, and plain-file formats json/logfmt/text.

Every test compares the file sink's output with the generator's expected records: exactly
once, byte-exact, in file order, with exact labels and timestamps."""

import random
import time

import loggen
from conftest import HOST, by_name
from loggen import CriContainer, DockerContainer, Feed, fmt_ts, parse_ts


B0 = loggen.BASE_NS


def container_sources(workdir, read_from="head"):
    return [
        {"name": "docker", "type": "docker", "paths": ["%s/containers/*/*-json.log" % workdir],
         "read_from": read_from},
        {"name": "pods", "type": "cri", "paths": ["%s/pods/*/*/*.log" % workdir]},
    ]


def test_100k_docker_and_cri_lines_exactly_once_in_order(agent, workdir):
    rng = random.Random(20261123)
    croot, proot = workdir / "containers", workdir / "pods"
    croot.mkdir()
    proot.mkdir()
    files = []  # (container, source name, workload, feed)

    def add_docker(name, n):
        c = DockerContainer.create(croot, rng, name)
        wl = loggen.docker_workload(rng, n, loggen.Clock(rng), long_ratio=0.004)
        files.append((c, "docker", wl, Feed.of(c.path, wl)))

    def add_cri(ns, pod, container, n):
        c = CriContainer.create(proot, rng, ns, pod, container)
        wl = loggen.cri_workload(rng, n, loggen.Clock(rng), long_ratio=0.004)
        files.append((c, "pods", wl, Feed.of(c.path, wl)))

    for i in range(5):
        add_docker("web-%d" % (i + 1), 9000)
    add_docker(None, 9000)  # no config.v2.json: no container_name label
    add_cri("default", "api-7d9f8b-x2k4p", "api", 9000)
    add_cri("default", "api-7d9f8b-x2k4p", "sidecar", 9000)
    add_cri("kube-system", "coredns-5d78c9869d-abcde", "coredns", 9000)
    add_cri("shop", "cart-0", "cart", 9000)
    total = 10 * 9000 + 2 * 5000

    # Some content exists before the agent starts, some of it ending in a half-written line.
    for _, _, _, f in files:
        f.feed(1800, rng, cut_ratio=0.5)
    agent.write_config(container_sources(workdir))
    agent.start()

    for rnd in range(500):
        if rnd == 3:  # new container and pod (new directories too) while running
            add_docker("late-1", 5000)
            add_cri("late", "late-pod-1", "app", 5000)
        active = [f for _, _, _, f in files if not f.done]
        if not active and rnd > 3:
            break
        for f in active:
            f.feed(rng.randint(200, 900), rng, cut_ratio=0.25)
        # Keep the agent busy but never far behind the writers.
        done = sum(f.records_done for _, _, _, f in files)
        agent.wait_count(done // 2, timeout=60)
    assert all(f.done for _, _, _, f in files)

    agent.wait_count(total, timeout=120)
    agent.stop()
    recs = agent.read_output()
    expected = {c.key(): wl.exp for c, _, wl, _ in files}
    labels = {c.key(): c.labels(HOST, src) for c, src, _, _ in files}
    loggen.check_exactly_once(expected, labels, recs)
    assert len(recs) == total

    st = agent.status()
    n_docker = sum(len(wl.exp) for _, s, wl, _ in files if s == "docker")
    assert by_name(st["sources"], "docker")["records"] == n_docker
    assert by_name(st["sources"], "pods")["records"] == total - n_docker
    for s in st["sources"]:
        assert s["parse_errors"] == 0 and s["truncated"] == 0, s
    sink = by_name(st["sinks"], "local")
    assert sink["type"] == "file" and sink["backlog_chunks"] == 0 and sink["backlog_records"] == 0
    sizes = {str(c.path): c.path.stat().st_size for c, _, _, _ in files}
    got = {f["path"]: f for f in st["files"]}
    for path, size in sizes.items():
        assert path in got, "status lists no entry for %s" % path
        assert got[path]["offset"] == size and got[path]["size"] == size, got[path]


def test_files_created_while_running_are_picked_up_within_about_a_second(agent, workdir):
    rng = random.Random(11)
    for d in ("containers", "pods", "app"):
        (workdir / d).mkdir()
    sources = container_sources(workdir) + [
        {"name": "app", "type": "file", "paths": ["%s/app/*.log" % workdir]}]
    agent.write_config(sources)
    agent.start()

    # Warm-up: the agent is up and tailing once a first file's record shows.
    croot = workdir / "containers"
    first = DockerContainer.create(croot, rng, "first")
    first.path.write_bytes(loggen.docker_entry("warm-up\n", "stdout", loggen.BASE_NS))
    agent.wait_count(1, timeout=15)

    expected, labels, latencies = {}, {}, {}
    n = 1
    for kind in ("docker", "cri", "file", "docker-2"):
        if kind.startswith("docker"):
            # dockerd writes config.v2.json before the container logs anything
            c = DockerContainer.create(croot, rng, "new-" + kind, create_log=False)
            wl = loggen.docker_workload(rng, 3)
            key, lab, path, exp = c.key(), c.labels(HOST, "docker"), c.path, wl.exp
        elif kind == "cri":
            # the pod and container directories appear together with the log
            c = CriContainer(workdir / "pods", "ns1", "newpod-1",
                             "0b5c1f5e-3a44-4c8e-9d5e-1f2e3d4c5b6a", "c1")
            wl = loggen.cri_workload(rng, 3)
            key, lab, path, exp = c.key(), c.labels(HOST, "pods"), c.path, wl.exp
        else:
            path = workdir / "app" / "new.log"
            wl = None
            key = ("file", str(path))
            lab = {"host": HOST, "source": "app", "filename": str(path)}
            exp = None
        data = b"".join(wl.phys) if wl else b"new file line 1\nnew file line 2\nnew file line 3\n"
        t0 = time.monotonic()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        n += 3
        agent.wait_count(n, timeout=15)
        latencies[kind] = time.monotonic() - t0
        expected[key], labels[key] = exp, lab
    print("pick-up latencies:", {k: round(v, 2) for k, v in latencies.items()})
    slow = {k: round(v, 2) for k, v in latencies.items() if v > 3.0}
    assert not slow, "new files took too long to show up in the sink (contract: ~1 s): %s" % slow

    agent.stop()
    recs = agent.read_output()
    assert len(recs) == n
    file_recs = [r for r in recs if r["labels"].get("source") == "app"]
    assert [r["line"] for r in file_recs] == ["new file line 1", "new file line 2",
                                              "new file line 3"]
    assert all(r["stream"] == "file" for r in file_recs)
    expected[("file", str(workdir / "app" / "new.log"))] = [
        (r["ts"], "file", r["line"]) for r in file_recs]
    expected[first.key()] = [(fmt_ts(loggen.BASE_NS), "stdout", "warm-up")]
    labels[first.key()] = first.labels(HOST, "docker")
    loggen.check_exactly_once(expected, labels, recs)


def test_read_from_tail_skips_existing_content(agent, workdir):
    rng = random.Random(12)
    croot = workdir / "containers"
    c = DockerContainer.create(croot, rng, "tailed")
    old = loggen.docker_workload(rng, 500, loggen.Clock(rng))
    c.path.write_bytes(b"".join(old.phys))
    agent.write_config(container_sources(workdir, read_from="tail"))
    agent.start()

    # We cannot see when the agent has positioned itself at the end, so append probes until
    # one arrives; from then on nothing may be skipped.
    clock = loggen.Clock(rng, loggen.BASE_NS + 10**12)
    probes = []
    seen = None
    for i in range(100):
        ts = clock.tick()
        probes.append((fmt_ts(ts), "stdout", "probe %d" % i))
        with open(c.path, "ab") as f:
            f.write(loggen.docker_entry("probe %d\n" % i, "stdout", ts))
        seen = agent.poll(lambda: agent.output_count() > 0, timeout=0.5)
        if seen:
            break
    assert seen, "no probe line appended after start ever reached the sink"
    new = loggen.docker_workload(rng, 300, clock)
    with open(c.path, "ab") as f:
        f.write(b"".join(new.phys))
    last = new.exp[-1][2]
    agent.wait_for(lambda: any(r["line"] == last for r in agent.read_output()), 30,
                   "the last appended line")
    agent.stop()
    recs = agent.read_output()
    lines = [r["line"] for r in recs]
    old_lines = set(e[2] for e in old.exp) - set(e[2] for e in new.exp)
    leaked = [x for x in lines if x in old_lines]
    assert not leaked, "read_from: tail delivered %d pre-existing lines, e.g. %.200r" % (
        len(leaked), leaked[0])
    first_probe = [i for i, p in enumerate(probes) if p[2] == lines[0]]
    assert first_probe, "first record is not a probe: %.200r" % lines[0]
    k = first_probe[0]
    loggen.check_exactly_once({c.key(): probes[k:] + new.exp},
                              {c.key(): c.labels(HOST, "docker")}, recs)


JSON_LINES = [
    # (line, valid, expected ts ns or None for read time)
    ('{"time":"2026-11-23T15:33:52.123456789Z","level":"info","msg":"hello"}', True,
     loggen.BASE_NS + 123456789),
    ('{"msg":"unterminated', False, None),
    ('{"ts":1795448032.5,"msg":"epoch seconds"}', True, loggen.BASE_NS + 500_000_000),
    ('plain text, not json', False, None),
    ('{"timestamp":1795448032250,"msg":"epoch ms"}', True, loggen.BASE_NS + 250_000_000),
    ('[1,2,3]', False, None),
    ('{"@timestamp":"2026-11-23T17:33:52+02:00","msg":"offset"}', True, loggen.BASE_NS),
    ('{"a":1} trailing', False, None),
    ('{"ts":1795448032123456768,"msg":"epoch ns"}', True, 1795448032123456768),
    ('{"a":tru}', False, None),
    ('  {"msg":"no time key", "nested":{"a":[1,{"b":null}],"c":-1.5e3}}  ', True, None),
    ('{"a":1,}', False, None),
    ('{"msg":"esc \\u00e9 \\ud83d\\ude00 \\" \\\\ \\/ é 😀 中文","x":"\\t"}', True, None),
    ("{'single':'quotes'}", False, None),
    ('{"time":"2026-11-23T15:33:52.5Z","level":"warn"}', True, loggen.BASE_NS + 500_000_000),
]

LOGFMT_LINES = [
    ('ts=2026-11-23T15:33:52.000000001Z level=info msg="hello \\"world\\"" dur=1.5ms', True,
     loggen.BASE_NS + 1),
    ('msg="unterminated', False, None),
    ('time="2026-11-23T15:33:53Z" msg=quoted_time', True, loggen.BASE_NS + 10**9),
    ('=value', False, None),
    ('level=warn msg=bare key_only other=1', True, None),
    ('"quoted"=key', False, None),
    ('a=1 b="with = sign and spaces é" c=', True, None),
    ('a="b" c="d', False, None),
    ('timestamp=2026-11-23T16:33:52+01:00 x=y', True, loggen.BASE_NS),
]

TEXT_LINES = ['plain text line', 'with "quotes" and \\ backslash', 'unicode é 中文 😀 Привет',
              '\ttab-led and trailing spaces  ', '{"looks":"like json"}', 'key=value',
              '<html>&amp;</html>', '\x1b[31mred\x1b[0m']


def test_file_sources_json_logfmt_text(agent, workdir):
    srcs = []
    files = {}
    for name, fmt in (("j", "json"), ("l", "logfmt"), ("t", "text"), ("plain", None)):
        d = workdir / name
        d.mkdir()
        s = {"name": name, "type": "file", "paths": ["%s/*.log" % d]}
        if fmt:
            s["format"] = fmt
        srcs.append(s)
        files[name] = d / "app.log"
    agent.write_config(srcs)
    t_start = time.time_ns()
    files["j"].write_text("".join(x[0] + "\n" for x in JSON_LINES))
    files["l"].write_text("".join(x[0] + "\n" for x in LOGFMT_LINES))
    files["t"].write_text("".join(x + "\n" for x in TEXT_LINES))
    files["plain"].write_text("".join(x + "\n" for x in TEXT_LINES))
    agent.start()
    total = len(JSON_LINES) + len(LOGFMT_LINES) + 2 * len(TEXT_LINES)
    agent.wait_count(total, timeout=30)
    agent.stop()
    t_end = time.time_ns()
    recs = agent.read_output()
    assert len(recs) == total, [r["line"] for r in recs]

    def check(name, spec, fmt):
        path = str(files[name])
        got = [r for r in recs if r["labels"]["source"] == name]
        assert [r["line"] for r in got] == [s[0] for s in spec], "source %s lines" % name
        for r, (line, valid, ts) in zip(got, spec):
            lab = {"host": HOST, "source": name, "filename": path}
            if not valid:
                lab["parse_error"] = fmt
            assert r["labels"] == lab, (line, r["labels"])
            assert r["stream"] == "file"
            if ts is not None:
                assert r["ts"] == fmt_ts(ts), (line, r["ts"])
            else:
                t = parse_ts(r["ts"])
                assert t_start - 10**9 <= t <= t_end + 10**9, \
                    "%r: ts %s is not the read time" % (line, r["ts"])

    check("j", JSON_LINES, "json")
    check("l", LOGFMT_LINES, "logfmt")
    check("t", [(x, True, None) for x in TEXT_LINES], "text")
    check("plain", [(x, True, None) for x in TEXT_LINES], "text")

    st = agent.status()
    exp_err = {"j": sum(1 for x in JSON_LINES if not x[1]),
               "l": sum(1 for x in LOGFMT_LINES if not x[1]), "t": 0, "plain": 0}
    for name, n in exp_err.items():
        s = by_name(st["sources"], name)
        assert s["parse_errors"] == n, s
        assert s["records"] == sum(1 for r in recs if r["labels"]["source"] == name), s


def test_partials_join_per_stream_when_streams_interleave(agent, workdir):
    rng = random.Random(13)
    c = DockerContainer.create(workdir / "containers", rng, "inter")
    p = CriContainer.create(workdir / "pods", rng, "default", "inter-0", "main")
    B = loggen.BASE_NS
    docker = [("A1-", "stdout", B + 1), ("E1\n", "stderr", B + 2), ("A2-", "stdout", B + 3),
              ("E2 partial ", "stderr", B + 4), ("A3\n", "stdout", B + 5),
              ("E2 end\n", "stderr", B + 6), ("\n", "stdout", B + 7)]
    c.path.write_bytes(b"".join(loggen.docker_entry(t, s, ts) for t, s, ts in docker))
    cri = [(B + 11, "stdout", "P", "a"), (B + 12, "stderr", "F", "e1"),
           (B + 13, "stdout", "P", "b"), (B + 14, "stderr", "P", "e2-"),
           (B + 15, "stdout", "F", "c"), (B + 16, "stderr", "F", "end"),
           (B + 17, "stdout", "F", "")]
    p.path.write_bytes(b"".join(loggen.cri_line(*x) for x in cri))
    agent.write_config(container_sources(workdir))
    agent.start()
    agent.wait_count(8, timeout=30)
    agent.stop()
    recs = agent.read_output()
    assert len(recs) == 8, [r["line"] for r in recs]

    def per_stream(key):
        out = {}
        for r in recs:
            if loggen.file_key(r) == key:
                out.setdefault(r["stream"], []).append((r["ts"], r["line"]))
        return out

    assert per_stream(c.key()) == {
        "stdout": [(fmt_ts(B + 1), "A1-A2-A3"), (fmt_ts(B + 7), "")],
        "stderr": [(fmt_ts(B + 2), "E1"), (fmt_ts(B + 4), "E2 partial E2 end")]}
    assert per_stream(p.key()) == {
        "stdout": [(fmt_ts(B + 11), "abc"), (fmt_ts(B + 17), "")],
        "stderr": [(fmt_ts(B + 12), "e1"), (fmt_ts(B + 14), "e2-end")]}
    for r in recs:
        want = c.labels(HOST, "docker") if "container_id" in r["labels"] else p.labels(HOST,
                                                                                      "pods")
        assert r["labels"] == want


def test_partial_lines_pending_across_a_restart(agent, workdir):
    """Pieces of a docker/CRI line written before a graceful stop, the rest after the restart:
    one record, with the first piece's ts, exactly once."""
    rng = random.Random(14)
    c = DockerContainer.create(workdir / "containers", rng, "pending")
    p = CriContainer.create(workdir / "pods", rng, "default", "pending-0", "main")
    big = loggen.long_ascii(rng, 40000)
    pieces = loggen.docker_pieces(big)  # 3 pieces, the last with "\n"
    c.path.write_bytes(loggen.docker_entry("before\n", "stdout", B0) +
                       b"".join(loggen.docker_entry(x, "stdout", B0 + 1 + i)
                                for i, x in enumerate(pieces[:2])))
    p.path.write_bytes(loggen.cri_line(B0, "stderr", "F", "before") +
                       loggen.cri_line(B0 + 1, "stderr", "P", "part one, ") +
                       loggen.cri_line(B0 + 2, "stderr", "P", "part two, "))
    agent.write_config(container_sources(workdir))
    agent.start()
    agent.wait_count(2, timeout=30)
    agent.assert_never(lambda: agent.output_count() > 2, 0.5, "an incomplete line was emitted")
    agent.stop()
    agent.start()
    with open(c.path, "ab") as f:
        f.write(loggen.docker_entry(pieces[2], "stdout", B0 + 3))
        f.write(loggen.docker_entry("after\n", "stdout", B0 + 4))
    with open(p.path, "ab") as f:
        f.write(loggen.cri_line(B0 + 3, "stderr", "F", "end"))
        f.write(loggen.cri_line(B0 + 4, "stderr", "F", "after"))
    agent.wait_count(6, timeout=30)
    agent.stop()
    loggen.check_exactly_once(
        {c.key(): [(fmt_ts(B0), "stdout", "before"), (fmt_ts(B0 + 1), "stdout", big),
                   (fmt_ts(B0 + 4), "stdout", "after")],
         p.key(): [(fmt_ts(B0), "stderr", "before"),
                   (fmt_ts(B0 + 1), "stderr", "part one, part two, end"),
                   (fmt_ts(B0 + 4), "stderr", "after")]},
        {c.key(): c.labels(HOST, "docker"), p.key(): p.labels(HOST, "pods")},
        agent.read_output())


def test_odd_file_names_and_many_files(agent, workdir):
    d = workdir / "app dir ü"
    d.mkdir()
    names = ["plain.log", "with space.log", "ünïcödé-日本.log", 'quote"back\\slash.log']
    names += ["many-%03d.log" % i for i in range(300)]
    for i, n in enumerate(names):
        (d / n).write_text("".join("%s #%d\n" % (n, j) for j in range(20)))
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}])
    agent.start()
    agent.wait_count(20 * len(names), timeout=60)
    agent.stop()
    recs = agent.read_output()
    assert len(recs) == 20 * len(names)
    by_file = {}
    for r in recs:
        by_file.setdefault(r["labels"]["filename"], []).append(r["line"])
    assert set(by_file) == {str(d / n) for n in names}
    for n in names:
        assert by_file[str(d / n)] == ["%s #%d" % (n, j) for j in range(20)], n


def test_small_buffer_blocks_reading_but_loses_nothing(agent, workdir):
    """buffer.max_bytes far below the input size with when_full: block: reading pauses while
    the buffer is full and resumes as the sink drains it; everything arrives exactly once."""
    rng = random.Random(15)
    c = DockerContainer.create(workdir / "containers", rng, "small-buffer")
    wl = loggen.docker_workload(rng, 40_000, loggen.Clock(rng), long_ratio=0.002)
    c.path.write_bytes(b"".join(wl.phys))
    assert c.path.stat().st_size > 10 * (1 << 20)
    agent.write_config(container_sources(workdir),
                       buffer={"max_bytes": "1MiB", "when_full": "block",
                               "chunk": {"max_records": 500, "max_bytes": "256KiB",
                                         "max_wait": "200ms"}})
    agent.start()
    agent.wait_count(len(wl.exp), timeout=90)
    agent.stop()
    loggen.check_exactly_once({c.key(): wl.exp}, {c.key(): c.labels(HOST, "docker")},
                              agent.read_output())
    st = agent.status()
    assert st["buffer"]["max_bytes"] == 1 << 20
