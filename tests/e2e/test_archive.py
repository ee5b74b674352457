"""spillway archive list/search/restore against a real S3 server (s3rver) holding what the S3
sink uploaded: results equal the ground truth, restores deliver every record exactly once
(after kill -9 and when repeated), and damaged objects are named."""

import json
import random
import re
import subprocess
import time
from pathlib import Path

import pytest
import zstandard

import loggen
from conftest import wait_for
from loggen import DockerContainer, Feed, parse_ts
from receivers import Elasticsearch, Loki
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
    kw = {"prefix": "{host}/{container_id}/%Y/%m/%d/"}
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
    listing = [json.loads(l) for l in run(agent, "list", "--sink", "archive", "--output", "json", check=0).stdout.splitlines()]
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
