"""spillway archive list/search/restore against a real S3 server (s3rver) holding what the S3
sink uploaded: results equal the ground truth, restores deliver every record exactly once
(after kill -9 and when repeated), and damaged objects are named."""

import gzip
import json
import os
import random
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import zstandard

import loggen
from conftest import wait_for
from loggen import DockerContainer, Feed, parse_ts
from receivers import Elasticsearch, Loki
from test_metrics import scrape, val
from test_sinks_s3 import MANIFEST, objects, s3, s3_sink, settled, source  # noqa: F401 (fixture)


def make_archive(agent, workdir, s3, conts=4, lines=3000, seed=71, start_ns=loggen.BASE_NS, **sink):
    """Ships a docker workload to S3 (small objects: many of them) and stops the agent.
    Returns the ground truth: [{ts, cid, stream, line}] in time order."""
    rng = random.Random(seed)
    root = workdir / "containers"
    root.mkdir(exist_ok=True)
    truth = []
    for i in range(conts):
        c = DockerContainer.create(root, rng, "app-%d" % i)
        # Containers overlap in time by about half: objects of neighbours interleave.
        w = loggen.docker_workload(rng, lines, loggen.Clock(rng, start_ns + i * lines * 6_000_000), long_ratio=0.0)
        Feed.of(c.path, w).feed_all()
        truth += [{"ts": parse_ts(ts), "cid": c.id, "stream": s, "line": line} for ts, s, line in w.exp]
    kw = {"prefix": "arch ive/{host}/{container_id}/%Y/%m/%d/"}  # listing starts at "arch ive/"
    kw.update(sink)
    agent.write_config(source(workdir), sinks=[s3_sink(s3, workdir, **kw)] + extra_sinks(agent, workdir))
    agent.start(wait_ready=False)
    agent.wait_for(settled(lambda: sum(len(v) for v in objects(s3).values()) >= len(truth)), 90,
                   "%d records in s3" % len(truth))
    agent.wait_for(lambda: manifests_complete(s3), 30, "every object's manifest")
    agent.stop()
    truth.sort(key=lambda r: r["ts"])
    return truth


def keys(s3):
    out = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="logs"):
        out.update(o["Key"] for o in page.get("Contents", []))
    return out


def manifests_complete(s3):
    k = keys(s3)
    data = [x for x in k if not x.endswith(MANIFEST)]
    return data and all(x + MANIFEST in k for x in data)


LOKI, ES = [], []  # receivers the next config should name (set by a test before make_archive)


def extra_sinks(agent, workdir):
    """The restore targets: never fed by the agent itself (match: nothing), only by restores."""
    never = ["source=nothing-has-this-source"]
    out = [{"name": "restored", "type": "file", "path": str(workdir / "restored.ndjson"), "match": never}]
    for lk in LOKI:
        out.append({"name": "loki", "type": "loki", "url": lk.url, "match": never,
                    "batch": {"max_bytes": "64KiB", "max_wait": "200ms"},
                    "retry": {"min_backoff": "50ms", "max_backoff": "500ms"}})
    for e in ES:
        out.append({"name": "es", "type": "elasticsearch", "url": e.url, "index": "restored",
                    "match": never, "batch": {"max_bytes": "64KiB", "max_wait": "200ms"},
                    "retry": {"min_backoff": "50ms", "max_backoff": "500ms"}})
    return out


def run(agent, *args, timeout=120, check=None):
    p = subprocess.run([agent.bin, "archive"] + [str(a) for a in args] + ["-c", str(agent.config_path)],
                       capture_output=True, text=True, timeout=timeout)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    return p


def rfc(ns):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + ".%09dZ" % (ns % 10**9)


def hits(p):
    return [json.loads(l) for l in p.stdout.split("\n") if l]


def key_of(r):
    return (parse_ts(r["ts"]), r["labels"]["container_id"], r["stream"], r["line"])


def truth_key(t):
    return (t["ts"], t["cid"], t["stream"], t["line"])


@pytest.fixture
def targets():
    LOKI.clear()
    ES.clear()
    yield
    LOKI.clear()
    ES.clear()


def test_list_and_search_equal_the_ground_truth(agent, workdir, s3, targets):
    truth = make_archive(agent, workdir, s3)
    # Not the sink's: outside its prefix, and not an archive object inside it.
    s3.put_object(Bucket="logs", Key="other/00000000000000000001-00000000000000000002.ndjson.zst", Body=b"x")
    s3.put_object(Bucket="logs", Key="arch ive/README.txt", Body=b"x")
    listing = [json.loads(l) for l in run(agent, "list", "--sink", "archive", "--output", "json", check=0).stdout.splitlines()]
    assert all(o["object"].startswith("arch ive/testhost/") for o in listing)
    assert len(listing) >= 4 and all(o["manifest"] for o in listing)
    assert sum(o["records"] for o in listing) == len(truth)
    # Time bounds: only objects that can hold records in them, and every such object.
    lo, hi = truth[len(truth) * 5 // 100]["ts"], truth[len(truth) * 10 // 100]["ts"]
    sub = [json.loads(l) for l in run(agent, "list", "--sink", "archive", "--since", rfc(lo), "--until", rfc(hi),
                                      "--output", "json", check=0).stdout.splitlines()]
    want = {o["object"] for o in listing if parse_ts(o["ts_max"]) >= lo and parse_ts(o["ts_min"]) < hi}
    assert {o["object"] for o in sub} == want and len(want) < len(listing), ([(o["ts_min"], o["ts_max"]) for o in listing], rfc(lo), rfc(hi))
    # Search: grep over the ground truth, in time order.
    pat = r"[0-9a-f]{3}7"
    p = run(agent, "search", "--sink", "archive", "--output", "json", pat, check=0)
    got = [key_of(r) for r in hits(p)]
    exp = [truth_key(t) for t in truth if re.search(pat, t["line"])]
    assert sorted(got) == sorted(exp) and len(got) == len(set(got))
    assert [g[0] for g in got] == sorted(g[0] for g in got)  # time order
    # --since/--until/--label select exactly.
    cid = truth[0]["cid"]
    p = run(agent, "search", "--sink", "archive", "--output", "json", "--since", rfc(lo), "--until", rfc(hi),
            "--label", "container_id=" + cid, "", check=0)
    exp = [truth_key(t) for t in truth if lo <= t["ts"] < hi and t["cid"] == cid]
    assert sorted(key_of(r) for r in hits(p)) == sorted(exp) and exp
    p = run(agent, "search", "--sink", "archive", "--count", "-i", "ERROR", check=0)
    assert int(p.stdout) == sum(1 for t in truth if re.search("(?i)error", t["line"]))
    p = run(agent, "search", "--sink", "archive", "--output", "json", "--limit", "25", "", check=0)
    assert [key_of(r)[0] for r in hits(p)] == [t["ts"] for t in truth[:25]]
    assert run(agent, "search", "--sink", "archive", "no such text anywhere").returncode == 1
    # The monthly drill: a clean --verify-only shows in the agent's /metrics.
    before = time.time()
    p = run(agent, "restore", "--sink", "archive", "--verify-only", check=0)
    assert "verified %d objects (%d records" % (len(listing), len(truth)) in p.stdout and ": 0 failed" in p.stdout
    agent.start(wait_ready=False)
    series = scrape(agent.http_port())
    assert val(series, "spillway_archive_last_verified_timestamp_seconds", sink="archive") >= int(before)
    assert val(series, "spillway_archive_verify_failed_objects", sink="archive") == 0
    agent.stop()


def restored_file(workdir):
    p = workdir / "restored.ndjson"
    return [json.loads(l) for l in p.read_text().split("\n") if l] if p.exists() else []


def test_restore_into_the_file_sink_exactly_once_and_again_sends_nothing(agent, workdir, s3, targets):
    truth = make_archive(agent, workdir, s3)
    p = run(agent, "restore", "--sink", "archive", "--to", "restored", "--dry-run", check=0)
    assert "plan: %d objects, at most %d records" % (len(keys(s3)) // 2, len(truth)) in p.stdout
    assert restored_file(workdir) == []  # the agent made it, empty: its match let nothing in
    p = run(agent, "restore", "--sink", "archive", "--to", "restored", check=0)
    assert re.search(r"restored %d records \([0-9.]+ MB of NDJSON\) from \d+ objects into restored in [0-9.]+ s: "
                     r"[0-9.]+ MB/s" % len(truth), p.stdout), p.stdout
    got = restored_file(workdir)
    assert sorted(key_of(r) for r in got) == sorted(truth_key(t) for t in truth)
    # The very lines the archive holds: time, labels and stream as archived.
    archived = sorted(json.dumps(r, sort_keys=True) for v in objects(s3).values() for r in v)
    assert sorted(json.dumps(r, sort_keys=True) for r in got) == archived
    size = (workdir / "restored.ndjson").stat().st_size
    p = run(agent, "restore", "--sink", "archive", "--to", "restored", check=0)
    assert "restored 0 records" in p.stdout and "objects were restored before" in p.stdout
    assert (workdir / "restored.ndjson").stat().st_size == size
    # A narrower plan is a restore of its own: exactly its records, appended.
    cid = truth[-1]["cid"]
    mine = [t for t in truth if t["cid"] == cid]
    lo, hi = mine[len(mine) // 4]["ts"], mine[len(mine) // 2]["ts"]
    p = run(agent, "restore", "--sink", "archive", "--to", "restored", "--label", "container_id=" + cid,
            "--since", rfc(lo), "--until", rfc(hi), check=0)
    extra = restored_file(workdir)[len(got):]
    want = sorted(truth_key(t) for t in mine if lo <= t["ts"] < hi)
    assert sorted(key_of(r) for r in extra) == want and "restored %d records" % len(want) in p.stdout


class SlowProxy:
    """A TCP proxy to s3rver that hands on at most `rate` bytes per second of answers: an S3
    that is slow to download from, so that a restore lasts long enough to be killed in it."""

    def __init__(self, port, rate):
        self.rate = rate
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.target = port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(c, u, 0), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, self.rate), daemon=True).start()

    def _pipe(self, a, b, rate):
        try:
            while True:
                d = a.recv(16384)
                if not d:
                    break
                b.sendall(d)
                if rate:
                    time.sleep(len(d) / rate)
        except OSError:
            pass
        finally:
            for x in (a, b):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.srv.close()


def restore_with_kills(agent, target, kills, received, total, config=None):
    """Runs the restore into target, kill -9 each time `received()` passes the next mark in
    kills (fractions of total), then once more to the end."""
    cmd = [agent.bin, "archive", "restore", "--sink", "archive", "--to", target, "-c",
           str(config or agent.config_path)]
    for frac in kills:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: received() >= frac * total or proc.poll() is not None, 60,
                     "%.0f%% of the records restored" % (frac * 100))
            assert proc.poll() is None, "the restore ended before it could be killed"
            proc.kill()  # SIGKILL
        finally:
            proc.wait(10)
            proc.stdout.close()
            proc.stderr.close()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, (p.stdout, p.stderr[-2000:])
    return p


def test_restore_into_loki_survives_two_kill9_and_stores_each_entry_once(agent, workdir, s3, targets):
    loki = Loki()
    loki.answer_delay = 0.03  # slow enough to be killed in the middle
    LOKI.append(loki)
    truth = make_archive(agent, workdir, s3, start_ns=time.time_ns() - 2 * 3600 * 10**9)
    restore_with_kills(agent, "loki", [0.25, 0.6], lambda: loki.entries_received, len(truth))
    got = [(ts, lb["container_id"], lb.get("stream", ""), line) for lb, ts, line in loki.lines()]
    assert len(got) == len(set(got)), "Loki holds %d entries twice" % (len(got) - len(set(got)))
    assert sorted((g[0], g[1], g[3]) for g in got) == sorted((t["ts"], t["cid"], t["line"]) for t in truth)
    n = len(got)
    run(agent, "restore", "--sink", "archive", "--to", "loki", check=0)  # done before: nothing sent
    assert len(loki.lines()) == n
    loki.stop()


def test_restore_into_elasticsearch_with_two_kill9_and_a_repeat_has_no_duplicates(agent, workdir, s3, targets):
    es = Elasticsearch()
    es.answer_delay = 0.03
    ES.append(es)
    truth = make_archive(agent, workdir, s3)
    restore_with_kills(agent, "es", [0.3, 0.6], lambda: len(es.docs), len(truth))
    docs = list(es.docs.values())
    assert len(docs) == len(truth)
    # (time, container) is unique in the workload (each container's clock only grows); JSON
    # lines are merged into their documents, so the text is compared where it is a message.
    got = sorted((parse_ts(d["@timestamp"]), d["labels"]["container_id"]) for d in docs)
    assert got == sorted((t["ts"], t["cid"]) for t in truth)
    texts = {(parse_ts(d["@timestamp"]), d["message"]) for d in docs if "message" in d}
    assert texts <= {(t["ts"], t["line"]) for t in truth} and len(texts) > len(truth) // 3
    run(agent, "restore", "--sink", "archive", "--to", "es", check=0)
    assert len(es.docs) == len(truth)
    es.stop()


def test_damaged_objects_are_named_and_nothing_of_them_is_restored(agent, workdir, s3, targets):
    truth = make_archive(agent, workdir, s3)
    order = [json.loads(l)["object"] for l in
             run(agent, "list", "--sink", "archive", "--output", "json", check=0).stdout.split("\n") if l]
    assert len(order) >= 4
    flipped, cut, miscounted = order[1], order[2], order[3]
    body = bytearray(s3.get_object(Bucket="logs", Key=flipped)["Body"].read())
    body[len(body) // 2] ^= 0x40
    s3.put_object(Bucket="logs", Key=flipped, Body=bytes(body))
    body = s3.get_object(Bucket="logs", Key=cut)["Body"].read()
    s3.put_object(Bucket="logs", Key=cut, Body=body[:len(body) - 100])
    m = json.loads(s3.get_object(Bucket="logs", Key=miscounted + MANIFEST)["Body"].read())
    m["records"] += 1
    s3.put_object(Bucket="logs", Key=miscounted + MANIFEST, Body=json.dumps(m).encode())

    p = run(agent, "restore", "--sink", "archive", "--verify-only", check=2)
    assert re.search(r"^FAILED %s: object SHA-256 \w+\.\.\., manifest says" % re.escape(flipped), p.stdout, re.M), p.stdout
    assert re.search(r"^FAILED %s: object is \d+ bytes, manifest says \d+" % re.escape(cut), p.stdout, re.M)
    assert re.search(r"^FAILED %s: records %d, manifest says %d" % (re.escape(miscounted), m["records"] - 1,
                                                                  m["records"]), p.stdout, re.M)
    assert re.search(r"^ok %s records=" % re.escape(order[0]), p.stdout, re.M)
    assert "3 failed" in p.stdout
    # A restore stops at the first damaged object with its name; what came before is restored
    # whole, nothing of the damaged one is sent.
    p = run(agent, "restore", "--sink", "archive", "--to", "restored", check=2)
    assert "%s: failed its check: object SHA-256" % flipped in p.stderr and "nothing of it was sent" in p.stderr
    packed = s3.get_object(Bucket="logs", Key=order[0])["Body"].read()
    text = zstandard.ZstdDecompressor().decompressobj().decompress(packed).decode()
    first = [json.loads(l) for l in text.split("\n") if l]
    assert sorted(key_of(r) for r in restored_file(workdir)) == sorted(key_of(r) for r in first)
    assert len(first) < len(truth)


def test_files_searches_local_archives_like_grep(agent, workdir):
    """--files: retention's archives (zstd, gzip, plain) of plain and docker json-file logs."""
    rng = random.Random(72)
    plain = ["%06d %s %s" % (i, rng.choice(["GET", "POST", "ERROR", "ok"]), "%x" % rng.getrandbits(64))
             for i in range(5000)]
    d = workdir / "arch"
    d.mkdir()
    (d / "app.log.2").write_text("".join(l + "\n" for l in plain[:1000]))
    (d / "app.log.1").write_text("".join(l + "\n" for l in plain[1000:]))
    subprocess.run(["zstd", "-q", "--rm", str(d / "app.log.1")], check=True)
    w = loggen.docker_workload(rng, 2000, loggen.Clock(rng), long_ratio=0.0)
    (workdir / "containers").mkdir()
    c = DockerContainer.create(workdir / "containers", rng, "x")
    Feed.of(c.path, w).feed_all()
    raw = Path(c.path).read_bytes()
    (d / "c-json.log.1.gz").write_bytes(gzip.compress(raw))
    for path, t in [(d / "app.log.2", 100), (d / "app.log.1.zst", 200), (d / "c-json.log.1.gz", 300)]:
        os.utime(path, (t, t))
    docker_lines = [(parse_ts(ts), line) for ts, _, line in w.exp]
    for pat in ("ERROR", "[0-9a-f]{4}7", ""):
        p = subprocess.run([agent.bin, "archive", "search", "--files", str(d / "*"), "--output", "json", pat],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        got = hits(p)
        want = [l for l in plain if re.search(pat, l)] + [l for _, l in docker_lines if re.search(pat, l)]
        assert [r["line"] for r in got if r["labels"]["file"].endswith(".gz")] == \
            [l for _, l in docker_lines if re.search(pat, l)]
        assert sorted(r["line"] for r in got) == sorted(want)
        # Files oldest first; plain lines in file order.
        assert [r["line"] for r in got if "app.log" in r["labels"]["file"]] == [l for l in plain if re.search(pat, l)]
    lo = docker_lines[500][0]
    p = subprocess.run([agent.bin, "archive", "search", "--files", str(d / "*.gz"), "--since", rfc(lo), "--count", ""],
                       capture_output=True, text=True, timeout=60)
    assert int(p.stdout) == sum(1 for t, _ in docker_lines if t >= lo)


def test_restore_into_the_file_sink_survives_two_kill9(agent, workdir, s3, targets):
    truth = make_archive(agent, workdir, s3)
    # The restore reads through a slow link (about a second for the archive) to be killed in it.
    proxy = SlowProxy(int(s3.endpoint.rsplit(":", 1)[1]), 1_000_000)
    slow = workdir / "restore.yaml"
    slow.write_text(agent.config_path.read_text().replace(s3.endpoint, "http://127.0.0.1:%d" % proxy.port))
    try:
        out = workdir / "restored.ndjson"
        restore_with_kills(agent, "restored", [0.25, 0.5], lambda: out.read_bytes().count(b"\n"), len(truth),
                           config=slow)
    finally:
        proxy.close()
    got = [key_of(r) for r in restored_file(workdir)]
    assert len(got) == len(set(got)) and sorted(got) == sorted(truth_key(t) for t in truth)


def test_usage_errors_and_an_empty_archive(agent, workdir, s3, targets):
    agent.write_config(source(workdir), sinks=[s3_sink(s3, workdir)] + extra_sinks(agent, workdir))
    p = run(agent, "list", "--sink", "archive", check=0)
    assert "0 of 0 objects can hold matching records" in p.stderr
    assert run(agent, "search", "--sink", "archive", "").returncode == 1
    p = run(agent, "restore", "--sink", "archive", "--to", "restored", check=0)
    assert "restored 0 records" in p.stdout
    assert "needs --sink" in run(agent, "list", check=2).stderr
    assert "no such sink" in run(agent, "list", "--sink", "nope", check=2).stderr
    assert "not an s3 sink" in run(agent, "list", "--sink", "restored", check=2).stderr
    assert "restore needs --to SINK" in run(agent, "restore", "--sink", "archive", check=2).stderr
    assert "an s3 sink" in run(agent, "restore", "--sink", "archive", "--to", "archive", check=2).stderr
    assert "missing REGEX" in run(agent, "search", "--sink", "archive", check=2).stderr
    assert "bad REGEX" in run(agent, "search", "--sink", "archive", "(", check=2).stderr
    assert "--since needs" in run(agent, "list", "--sink", "archive", "--since", "soon", check=2).stderr
    assert "not durations" in run(agent, "restore", "--sink", "archive", "--to", "restored", "--since", "2d",
                                  check=2).stderr
    # An endpoint that does not answer: one clear line naming the request, exit 1.
    cfg = workdir / "down.yaml"
    cfg.write_text(agent.config_path.read_text().replace(s3.endpoint, "http://127.0.0.1:9"))
    p = subprocess.run([agent.bin, "archive", "list", "--sink", "archive", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "listing" not in p.stdout
    assert re.search(r"sink archive: GET http://127\.0\.0\.1:9/logs/\?list-type=2&prefix=: Couldn.t connect", p.stderr), p.stderr


def test_gzip_objects_search_and_restore(agent, workdir, s3, targets):
    truth = make_archive(agent, workdir, s3, conts=2, lines=1500,
                         object={"max_bytes": "1MiB", "max_wait": "1s", "compression": "gzip"})
    assert all(k.endswith((".ndjson.gz", ".ndjson.gz" + MANIFEST)) for k in keys(s3))
    p = run(agent, "search", "--sink", "archive", "--output", "json", "GET", check=0)
    assert sorted(key_of(r) for r in hits(p)) == sorted(truth_key(t) for t in truth if "GET" in t["line"])
    run(agent, "restore", "--sink", "archive", "--verify-only", check=0)
    run(agent, "restore", "--sink", "archive", "--to", "restored", check=0)
    assert sorted(key_of(r) for r in restored_file(workdir)) == sorted(truth_key(t) for t in truth)


def test_rebuild_manifests_of_objects_without_one(agent, workdir, s3, targets):
    """Objects uploaded before manifests existed (here: manifests deleted) cannot be checked, so
    restore stops at them; rebuild-manifests writes theirs from the objects as they are."""
    truth = make_archive(agent, workdir, s3)
    order = [json.loads(l)["object"] for l in
             run(agent, "list", "--sink", "archive", "--output", "json", check=0).stdout.split("\n") if l]
    old = {}
    for key in order[1:3]:
        old[key] = json.loads(s3.get_object(Bucket="logs", Key=key + MANIFEST)["Body"].read())
        s3.delete_object(Bucket="logs", Key=key + MANIFEST)
    p = run(agent, "list", "--sink", "archive", check=0)
    assert p.stdout.count("(no manifest uploaded)") == 2
    p = run(agent, "restore", "--sink", "archive", "--to", "restored", check=2)
    assert "no manifest uploaded: it cannot be verified" in p.stderr
    p = run(agent, "rebuild-manifests", "--sink", "archive", check=0)
    assert sorted(re.findall(r"^rebuilt (.+) records=\d+$", p.stdout, re.M)) == sorted(old)
    assert "2 manifests rebuilt, 0 failed" in p.stdout
    for key, m in old.items():
        new = json.loads(s3.get_object(Bucket="logs", Key=key + MANIFEST)["Body"].read())
        assert new["agent_id"] == "" and new["host"] == ""
        for f in ("agent_id", "host"):
            del m[f], new[f]
        assert new == m  # everything the object itself says is the same as the sink wrote
    assert "0 manifests rebuilt" in run(agent, "rebuild-manifests", "--sink", "archive", check=0).stdout
    run(agent, "restore", "--sink", "archive", "--to", "restored", check=0)
    got = sorted(key_of(r) for r in restored_file(workdir))
    assert got == sorted(truth_key(t) for t in truth)
