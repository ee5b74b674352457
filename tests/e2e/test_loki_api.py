"""Loki's query API served by the agent over its buffer (docs/loki-api.md), against ground truth.

One corpus for the module: three docker containers and two CRI pods whose records are spread
over ~8 minutes, and a logfmt application file (format: logfmt, so its `ts=` is the record
time). The test knows every record's time, labels and line, evaluates each LogQL query itself
in Python and compares: entries and their order per direction and limit, stream label sets
(extracted labels included), metric values per step, label names and values, series, stats.
Error cases must get Loki's 400 with a plain-text message; the WebSocket tail must deliver
records written after it connected.
"""

import base64
import json
import os
import random
import re
import socket
import struct
import threading
import time
import urllib.parse

import pytest
import requests

import loggen
from conftest import HOST, Agent, wait_for
from loggen import CriContainer, DockerContainer, Feed, parse_ts

NS = loggen.NS
B0 = loggen.BASE_NS
LEVELS = ["debug", "info", "warn", "error"]


class SlowClock(loggen.Clock):
    """Records up to 0.6 s apart: a few minutes per container, so windows of 1m hold a few
    hundred entries and steps differ."""

    def tick(self):
        self.ns += self.rng.randint(1_000_000, 600_000_000)
        return self.ns


class Rec:
    __slots__ = ("ts", "labels", "line")

    def __init__(self, ts, labels, line):
        self.ts, self.labels, self.line = ts, labels, line


def logfmt_lines(rng, n, start):
    out = []
    ts = start
    for i in range(n):
        ts += rng.randint(1_000_000, 500_000_000)
        level = rng.choice(LEVELS)
        status = rng.choice([200, 200, 201, 204, 301, 404, 500, 503])
        dur = rng.randint(1, 400)
        size = rng.randint(1, 40)
        words = " ".join(rng.choice(loggen.WORDS) for _ in range(rng.randint(1, 6)))
        fields = {"ts": loggen.go_rfc3339nano(ts), "level": level, "msg": words, "status": str(status),
                  "duration": "%dms" % dur, "size": "%dKB" % size, "path": "/api/v%d/items" % (i % 3)}
        line = 'ts=%s level=%s msg="%s" status=%d duration=%dms size=%dKB path=%s' % (
            fields["ts"], level, words, status, dur, size, fields["path"])
        out.append((ts, line, fields))
    return out


class Corpus:
    def __init__(self, workdir, binary):
        rng = random.Random(2020)
        self.recs = []
        self.fields = {}  # line -> logfmt fields (app records)
        croot, proot, aroot = workdir / "containers", workdir / "pods", workdir / "app"
        for d in (croot, proot, aroot):
            d.mkdir()
        feeds = []
        for name in ("web-0", "web-1", None):
            c = DockerContainer.create(croot, rng, name)
            wl = loggen.docker_workload(rng, 800, SlowClock(rng), long_ratio=0)
            feeds.append(Feed.of(c.path, wl))
            for ts, s, line in wl.exp:
                self.recs.append(Rec(parse_ts(ts), dict(c.labels(HOST, "docker"), stream=s), line))
        for ns, pod in (("prod", "api-1"), ("dev", "worker-7")):
            c = CriContainer.create(proot, rng, ns, pod, "main")
            wl = loggen.cri_workload(rng, 800, SlowClock(rng), long_ratio=0)
            feeds.append(Feed.of(c.path, wl))
            for ts, s, line in wl.exp:
                self.recs.append(Rec(parse_ts(ts), dict(c.labels(HOST, "pods"), stream=s), line))
        self.app_path = aroot / "app.log"
        app = logfmt_lines(rng, 600, B0)
        self.app_path.write_text("".join(l + "\n" for _, l, _ in app))
        for ts, line, f in app:
            self.recs.append(Rec(ts, {"host": HOST, "source": "app", "filename": str(self.app_path),
                                      "stream": "file"}, line))
            self.fields[line] = f
        for f in feeds:
            f.feed_all()
        self.recs.sort(key=lambda r: r.ts)
        self.first, self.last = self.recs[0].ts, self.recs[-1].ts
        self.croot = croot
        self.agent = Agent(binary, workdir, "lokiapi")
        self.agent.write_config(
            [{"name": "docker", "type": "docker", "paths": ["%s/*/*-json.log" % croot]},
             {"name": "pods", "type": "cri", "paths": ["%s/*/*/*.log" % proot]},
             {"name": "app", "type": "file", "format": "logfmt", "paths": ["%s/*.log" % aroot]}],
            buffer={"max_bytes": "1GiB", "keep_shipped": {"max_age": "24h"},
                    "chunk": {"max_records": 200, "max_bytes": "1MiB", "max_wait": "200ms"}})
        self.agent.start()
        self.agent.wait_count(len(self.recs), 60)
        self.base = "http://127.0.0.1:%d" % self.agent.http_port()


@pytest.fixture(scope="module")
def corpus(spillway_bin, tmp_path_factory):
    c = Corpus(tmp_path_factory.mktemp("loki_api"), spillway_bin)
    yield c
    c.agent.stop()
    c.agent.cleanup()


def get(c, path, **params):
    return requests.get(c.base + path, params=params, timeout=60)


def ok_json(r):
    assert r.status_code == 200, "%d %s" % (r.status_code, r.text[:500])
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


# ---- ground truth ------------------------------------------------------------------------

def sanitize(name):
    s = re.sub(r"[^A-Za-z0-9_:]", "_", name)
    return "_" + s if s[:1].isdigit() else s


def json_labels(line, labels):
    """`| json`: labels added (or __error__)."""
    out = dict(labels)
    try:
        obj = json.loads(line)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        out["__error__"] = "JSONParserErr"
        return out

    def walk(o, prefix):
        for k, v in o.items():
            name = (prefix + "_" if prefix else "") + sanitize(k)
            if isinstance(v, dict):
                walk(v, name)
                continue
            if isinstance(v, bool):
                v = "true" if v else "false"
            elif isinstance(v, (int, float)):
                v = repr(v) if isinstance(v, float) else str(v)
            elif not isinstance(v, str):
                continue
            if name in labels:
                name += "_extracted"
            if name in out:
                continue
            if v != "":
                out[name] = v
    walk(obj, "")
    return out


def in_range(r, start, end):
    return start <= r.ts < end


def expect_log(c, fn, start, end, limit, backward):
    hits = []
    for r in c.recs:
        if not in_range(r, start, end):
            continue
        got = fn(r)
        if got is not None:
            lab, line = got
            hits.append((r.ts, {k: v for k, v in lab.items() if v != ""}, line))
    hits.sort(key=lambda h: h[0])
    return list(reversed(hits[-limit:])) if backward else hits[:limit]


def actual_log(body, backward):
    data = body["data"]
    assert data["resultType"] == "streams"
    out = []
    for s in data["result"]:
        assert set(s) == {"stream", "values"}
        ts = [int(v[0]) for v in s["values"]]
        assert ts == sorted(ts, reverse=backward), "stream entries out of order"
        for v in s["values"]:
            assert len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], str)
            out.append((int(v[0]), s["stream"], v[1]))
    return out


def key(h):
    return (h[0], json.dumps(h[1], sort_keys=True), h[2])


def run_log(c, query, fn, limit=5000, backward=False, start=None, end=None, post=False):
    start = c.first - NS if start is None else start
    end = c.last + NS if end is None else end
    params = {"query": query, "start": str(start), "end": str(end), "limit": str(limit),
              "direction": "backward" if backward else "forward"}
    if post:
        r = requests.post(c.base + "/loki/api/v1/query_range", data=params, timeout=60)
    else:
        r = get(c, "/loki/api/v1/query_range", **params)
    body = ok_json(r)
    assert body["status"] == "success" and set(body["data"]) == {"resultType", "result", "stats"}
    got = actual_log(body, backward)
    exp = expect_log(c, fn, start, end, limit, backward)
    assert len(got) == len(exp), "%s: %d entries, expected %d" % (query, len(got), len(exp))
    assert sorted(map(key, got)) == sorted(map(key, exp)), query
    # the answer's entries, merged across streams, are the first `limit` in its direction
    assert sorted(h[0] for h in got) == sorted(h[0] for h in exp)
    return body, got


def sel(**want):
    def f(r):
        for k, v in want.items():
            if hasattr(v, "fullmatch"):
                if not v.fullmatch(r.labels.get(k, "")):
                    return None
            elif r.labels.get(k, "") != v:
                return None
        return r.labels, r.line
    return f


def chain(first, *stages):
    def f(r):
        got = first(r)
        for st in stages:
            if got is None:
                return None
            got = st(got[0], got[1])
        return got
    return f


def keep_if(pred):
    return lambda lab, line: (lab, line) if pred(lab, line) else None


def j(lab, line):
    return json_labels(line, lab), line


def logfmt_of(c):
    def st(lab, line):
        out = dict(lab)
        for k, v in c.fields[line].items():
            out[k + "_extracted" if k in lab else k] = v
        return out, line
    return st


# ---- log queries -------------------------------------------------------------------------

DOCKER = sel(source="docker")


def log_cases(c):
    L = logfmt_of(c)
    APP = sel(source="app")
    num = lambda lab, k: float(lab[k]) if k in lab else None
    return [
        ('{container_name="web-0"}', sel(container_name="web-0"), {}),
        ('{source="docker"} |= "timeout"', chain(DOCKER, keep_if(lambda l, s: "timeout" in s)),
         {"backward": True, "limit": 100}),
        ('{source=~"docker|pods"} |~ "retry|rollback" != "cache"',
         chain(sel(source=re.compile("docker|pods")),
               keep_if(lambda l, s: re.search("retry|rollback", s) and "cache" not in s)), {}),
        ('{namespace="prod"} !~ "GET|POST"', chain(sel(namespace="prod"), keep_if(lambda l, s: not re.search("GET|POST", s))), {}),
        ('{stream="stderr", source="pods"}', sel(stream="stderr", source="pods"), {"backward": True, "limit": 777}),
        ('{source="docker", container_name!="web-1"} |= "中文"',
         chain(sel(source="docker"), keep_if(lambda l, s: l.get("container_name") != "web-1" and "中文" in s)), {}),
        ('{source="docker"} | json | level="error"', chain(DOCKER, j, keep_if(lambda l, s: l.get("level") == "error")), {}),
        ('{source="docker"} | json | n > 500000',
         chain(DOCKER, j, keep_if(lambda l, s: "__error__" in l or ("n" in l and float(l["n"]) > 500000))), {}),
        ('{source="docker"} | json | level=~"warn|error" and n < 0',
         chain(DOCKER, j, keep_if(lambda l, s: re.fullmatch("warn|error", l.get("level", "")) and
                                  ("__error__" in l or ("n" in l and float(l["n"]) < 0)))), {}),
        ('{source="docker"} | json | level="info" or level="debug"',
         chain(DOCKER, j, keep_if(lambda l, s: l.get("level") in ("info", "debug"))), {"backward": True, "limit": 1000}),
        ('{source="docker"} |= "level" | json | drop __error__ | line_format "{{.level}}: {{.msg}}"',
         chain(DOCKER, keep_if(lambda l, s: "level" in s), j,
               lambda l, s: ({k: v for k, v in l.items() if k != "__error__"}, "%s: %s" % (l.get("level", ""), l.get("msg", "")))), {}),
        ('{source="docker"} | json | label_format lvl=level | lvl="warn"',
         chain(DOCKER, j, lambda l, s: (dict({k: v for k, v in l.items() if k != "level"}, **({"lvl": l["level"]} if "level" in l else {})), s),
               keep_if(lambda l, s: l.get("lvl") == "warn")), {}),
        ('{source="app"} | logfmt | status >= 500', chain(APP, L, keep_if(lambda l, s: int(l["status"]) >= 500)), {}),
        ('{source="app"} | logfmt | duration > 100ms', chain(APP, L, keep_if(lambda l, s: int(l["duration"][:-2]) > 100)), {}),
        ('{source="app"} | logfmt | size > 10KB', chain(APP, L, keep_if(lambda l, s: int(l["size"][:-2]) * 1000 > 10000)), {}),
        ('{source="app"} | logfmt | level="error" | line_format "{{.status}} {{ .msg }}!"',
         chain(APP, L, keep_if(lambda l, s: l["level"] == "error"), lambda l, s: (l, "%s %s!" % (l["status"], l["msg"]))), {}),
        ('{source="app"} | regexp "status=(?P<code>\\\\d+)" | code="404"',
         chain(APP, lambda l, s: (dict(l, code=re.search(r"status=(\d+)", s).group(1)), s),
               keep_if(lambda l, s: l["code"] == "404")), {}),
        ('{source="app"} | logfmt | drop msg, duration, ts',
         chain(APP, L, lambda l, s: ({k: v for k, v in l.items() if k not in ("msg", "duration", "ts")}, s)), {}),
        ('{source="app"} | logfmt | keep level, status | status="200"',
         chain(APP, L, lambda l, s: ({k: v for k, v in l.items() if k in ("level", "status")}, s),
               keep_if(lambda l, s: l["status"] == "200")), {"backward": True}),
        ('{source="app"} | logfmt | label_format summary="{{.level}}/{{.status}}" | summary=~"error/5.."',
         chain(APP, L, lambda l, s: (dict(l, summary="%s/%s" % (l["level"], l["status"])), s),
               keep_if(lambda l, s: re.fullmatch("error/5..", l["summary"]))), {}),
        ('{source="pods"} |= "timeout" or "retry"',
         chain(sel(source="pods"), keep_if(lambda l, s: "timeout" in s or "retry" in s)), {"limit": 50}),
    ]


def test_log_queries(corpus):
    cases = log_cases(corpus)
    assert len(cases) >= 20
    for q, fn, kw in cases:
        run_log(corpus, q, fn, **kw)


def test_log_query_time_window_and_post(corpus):
    c = corpus
    mid = c.recs[len(c.recs) // 2].ts
    start, end = mid - 30 * NS, mid + 30 * NS
    body, got = run_log(c, '{source=~".+"}', sel(source=re.compile(".+")), start=start, end=end, limit=5000)
    assert got and all(start <= h[0] < end for h in got)
    # a POSTed form answers the same
    _, got2 = run_log(c, '{source=~".+"}', sel(source=re.compile(".+")), start=start, end=end, limit=5000, post=True)
    assert sorted(map(key, got)) == sorted(map(key, got2))
    # RFC 3339 and float seconds bounds, as Loki accepts them
    t0 = loggen.go_rfc3339nano(start)
    r = ok_json(get(c, "/loki/api/v1/query_range", query='{source="docker"}', start=t0,
                    end="%d.%03d" % (end // NS, (end % NS) // 1000000), limit="5000", direction="forward"))
    n = sum(len(s["values"]) for s in r["data"]["result"])
    end_ms = end // 1000000 * 1000000
    assert n == sum(1 for x in c.recs if x.labels["source"] == "docker" and start <= x.ts < end_ms)
    # interval: at most one entry per 10 s, the first of each, forward
    r = ok_json(get(c, "/loki/api/v1/query_range", query='{container_name="web-1"}', start=str(start), end=str(end),
                    limit="5000", direction="forward", interval="10s"))
    got_ts = [int(v[0]) for s in r["data"]["result"] for v in s["values"]]
    exp_ts, last = [], None
    for x in c.recs:
        if x.labels.get("container_name") == "web-1" and start <= x.ts < end and (last is None or x.ts >= last + 10 * NS):
            exp_ts.append(x.ts)
            last = x.ts
    assert sorted(got_ts) == exp_ts and len(exp_ts) >= 3
    st = body["data"]["stats"]["summary"]
    assert st["totalEntriesReturned"] == len(got) and st["totalLinesProcessed"] >= len(got)


# ---- metric queries ----------------------------------------------------------------------

def steps(start, end, step):
    t, out = start, []
    while t <= end:
        out.append(t)
        t += step
    return out


def range_series(c, fn, rng_ns, ts_list, kind="count", offset=0):
    """{labels json: {t: value}} for count_over_time/rate/bytes_over_time/bytes_rate."""
    ent = []
    for r in c.recs:
        got = fn(r)
        if got is not None:
            ent.append((r.ts, json.dumps({k: v for k, v in got[0].items() if v != ""}, sort_keys=True),
                        len(got[1].encode())))
    out = {}
    for t in ts_list:
        lo, hi = t - offset - rng_ns, t - offset
        acc = {}
        for ts, k, b in ent:
            if lo < ts <= hi:
                n, by = acc.get(k, (0, 0))
                acc[k] = (n + 1, by + b)
        for k, (n, by) in acc.items():
            v = {"count": n, "rate": n / (rng_ns / NS), "bytes": by, "bytes_rate": by / (rng_ns / NS)}[kind]
            out.setdefault(k, {})[t] = float(v)
    return out


def agg(series, ts_list, by=None, op="sum"):
    out = {}
    for k, pts in series.items():
        lab = json.loads(k)
        g = json.dumps({n: lab[n] for n in (by or []) if n in lab}, sort_keys=True)
        for t, v in pts.items():
            out.setdefault(g, {}).setdefault(t, []).append(v)
    res = {}
    for g, pts in out.items():
        for t, vs in pts.items():
            res.setdefault(g, {})[t] = {"sum": sum(vs), "count": float(len(vs)), "max": max(vs), "min": min(vs),
                                        "avg": sum(vs) / len(vs)}[op]
    return res


def actual_matrix(body):
    data = body["data"]
    assert data["resultType"] == "matrix" and set(data) == {"resultType", "result", "stats"}
    out = {}
    for s in data["result"]:
        assert set(s) == {"metric", "values"}
        k = json.dumps(s["metric"], sort_keys=True)
        assert k not in out, "series listed twice"
        out[k] = {}
        for t, v in s["values"]:
            assert isinstance(t, (int, float)) and isinstance(v, str)
            out[k][int(round(t * 1000)) * 1000000] = float(v)
    return out


def topk_check(k, top):
    """topk/bottomk with ties: per step, the values picked are the k best of the groups', and
    each picked series carries its own value there."""
    def check(got, groups, ts_list):
        for t in ts_list:
            have = sorted((pts[t] for pts in groups.values() if t in pts), reverse=top)[:k]
            picked = sorted((pts[t] for pts in got.values() if t in pts), reverse=top)
            assert picked == have, (t, picked, have)
        for s, pts in got.items():
            for t, v in pts.items():
                assert groups[s][t] == v
        assert got
    return check


def close(a, b):
    assert set(a) == set(b), "series differ: %s" % (set(a) ^ set(b))
    for k in a:
        assert set(a[k]) == set(b[k]), "steps of %s differ" % k
        for t in a[k]:
            assert abs(a[k][t] - b[k][t]) <= 1e-9 * max(1.0, abs(b[k][t])), (k, t, a[k][t], b[k][t])


def test_metric_queries(corpus):
    c = corpus
    start = (c.first // NS) * NS
    end = start + 480 * NS
    step = 30 * NS
    ts = steps(start, end, step)
    M = 60 * NS
    ALL = sel(source=re.compile(".+"))
    D = sel(source="docker")
    P = sel(source="pods")
    cases = [
        ('count_over_time({source="docker"}[1m])', range_series(c, D, M, ts)),
        ('sum by (container_name) (count_over_time({source="docker"}[1m]))', agg(range_series(c, D, M, ts), ts, ["container_name"])),
        ('sum(count_over_time({source="docker"}[1m])) by (stream)', agg(range_series(c, D, M, ts), ts, ["stream"])),
        ('sum(rate({source="pods"} |= "timeout" [2m]))',
         agg(range_series(c, chain(P, keep_if(lambda l, s: "timeout" in s)), 2 * M, ts, "rate"), ts)),
        ('bytes_over_time({namespace="prod"}[1m])', range_series(c, sel(namespace="prod"), M, ts, "bytes")),
        ('sum by (stream) (bytes_rate({source="docker"}[30s]))', agg(range_series(c, D, M // 2, ts, "bytes_rate"), ts, ["stream"])),
        ('topk(2, sum by (container_id) (count_over_time({source=~".+"}[1m])))',
         (topk_check(2, True), agg(range_series(c, ALL, M, ts), ts, ["container_id"]))),
        ('bottomk(1, sum by (pod) (count_over_time({source="pods"}[1m])))',
         (topk_check(1, False), agg(range_series(c, P, M, ts), ts, ["pod"]))),
        ('count(sum by (container_id) (count_over_time({source="docker"}[1m])))',
         agg(agg(range_series(c, D, M, ts), ts, ["container_id"]), ts, op="count")),
        ('max by (stream) (count_over_time({source="docker"}[1m]))', agg(range_series(c, D, M, ts), ts, ["stream"], "max")),
        ('min without (container_id, container_name, stream) (count_over_time({source="docker"}[1m]))',
         agg(range_series(c, D, M, ts), ts, ["host", "source"], "min")),
        ('avg by (source) (count_over_time({source=~"docker|pods"}[1m]))',
         agg(range_series(c, sel(source=re.compile("docker|pods")), M, ts), ts, ["source"], "avg")),
        ('sum(count_over_time({source="docker"}[1m])) * 2',
         {k: {t: v * 2 for t, v in p.items()} for k, p in agg(range_series(c, D, M, ts), ts).items()}),
        ('sum(count_over_time({source="docker"}[1m])) / 60',
         {k: {t: v / 60 for t, v in p.items()} for k, p in agg(range_series(c, D, M, ts), ts).items()}),
        ('sum by (level, detected_level) (count_over_time({source="docker"} | drop __error__[1m]))',
         agg(range_series(c, D, M, ts), ts)),
        ('sum by (level) (count_over_time({source="docker"} | json | level=~"warn|error" [2m]))',
         agg(range_series(c, chain(D, j, keep_if(lambda l, s: re.fullmatch("warn|error", l.get("level", "")))), 2 * M, ts),
             ts, ["level"])),
        ('count_over_time({container_name="web-0"}[1m] offset 1m)', range_series(c, sel(container_name="web-0"), M, ts, offset=M)),
        ('sum by (status) (count_over_time({source="app"} | logfmt | status >= 400 [1m]))',
         agg(range_series(c, chain(sel(source="app"), logfmt_of(c), keep_if(lambda l, s: int(l["status"]) >= 400)), M, ts),
             ts, ["status"])),
    ]
    for q, exp in cases:
        body = ok_json(get(c, "/loki/api/v1/query_range", query=q, start=str(start), end=str(end), step="30s"))
        assert body["status"] == "success"
        if isinstance(exp, tuple):
            exp[0](actual_matrix(body), exp[1], ts)
            continue
        close(actual_matrix(body), exp)
        assert exp, "query %s has no data: the case tests nothing" % q


def test_metric_queries_counted_from_chunk_columns(corpus):
    """`sum [by (file labels)] (count_over_time|rate)` takes chunks that fall within one window
    set from their columns without reading them: the answers must not change, and the stats
    show chunks referenced but not read."""
    c = corpus
    start = (c.first // NS) * NS
    step = 300 * NS
    end = start + 6 * step
    ts = steps(start, end, step)
    R = 300 * NS
    D = sel(source="docker")
    cases = [
        ('sum(count_over_time({source="docker"}[5m]))', agg(range_series(c, D, R, ts), ts)),
        ('sum by (container_name) (rate({source="docker"}[5m]))',
         agg(range_series(c, D, R, ts, "rate"), ts, ["container_name"])),
        ('sum by (level, detected_level) (count_over_time({source=~"docker|pods"} | drop __error__[5m]))',
         agg(range_series(c, sel(source=re.compile("docker|pods")), R, ts), ts)),
        ('sum by (namespace) (count_over_time({source="pods"}[5m]))',
         agg(range_series(c, sel(source="pods"), R, ts), ts, ["namespace"])),
    ]
    read = []
    for q, exp in cases:
        body = ok_json(get(c, "/loki/api/v1/query_range", query=q, start=str(start), end=str(end), step="5m"))
        close(actual_matrix(body), exp)
        read.append(body["data"]["stats"]["querier"]["store"]["totalChunksDownloaded"])
    # the same with the stream label in the grouping needs each record: same answer, every
    # docker chunk read
    body = ok_json(get(c, "/loki/api/v1/query_range", query='sum by (stream) (count_over_time({source="docker"}[5m]))',
                       start=str(start), end=str(end), step="5m"))
    close(actual_matrix(body), agg(range_series(c, D, R, ts), ts, ["stream"]))
    all_docker = body["data"]["stats"]["querier"]["store"]["totalChunksDownloaded"]
    assert all_docker >= 6 and read[0] <= all_docker // 2, (read, all_docker)


def test_instant_queries(corpus):
    c = corpus
    t = c.recs[len(c.recs) // 2].ts
    body = ok_json(get(c, "/loki/api/v1/query", query='sum by (source) (count_over_time({source=~".+"}[10m]))',
                       time=str(t)))
    data = body["data"]
    assert data["resultType"] == "vector" and set(data) == {"resultType", "result", "stats"}
    got = {}
    for s in data["result"]:
        assert set(s) == {"metric", "value"} and isinstance(s["value"][0], (int, float))
        assert s["value"][0] == pytest.approx(t / NS, abs=1e-3)
        got[s["metric"]["source"]] = float(s["value"][1])
    exp = {}
    for r in c.recs:
        if t - 600 * NS < r.ts <= t:
            exp[r.labels["source"]] = exp.get(r.labels["source"], 0) + 1
    assert got == exp
    # Grafana's "Save & test": an instant vector(1)+vector(1) whose one sample is "2"
    body = ok_json(get(c, "/loki/api/v1/query", query="vector(1)+vector(1)", time="4000000000", direction="backward"))
    assert body["data"]["result"] == [{"metric": {}, "value": [4000000000, "2"]}]


# ---- labels, series, stats ---------------------------------------------------------------

def test_labels_values_series_stats(corpus):
    c = corpus
    rng = {"start": str(c.first - NS), "end": str(c.last + NS)}
    names = sorted({k for r in c.recs for k in r.labels})
    body = ok_json(get(c, "/loki/api/v1/labels", **rng))
    assert body == {"status": "success", "data": names}
    body = ok_json(get(c, "/loki/api/v1/labels", query='{source="pods"}', **rng))
    assert body["data"] == sorted({k for r in c.recs if r.labels["source"] == "pods" for k in r.labels})
    body = ok_json(get(c, "/loki/api/v1/label/container_name/values", **rng))
    assert body == {"status": "success", "data": ["web-0", "web-1"]}
    body = ok_json(get(c, "/loki/api/v1/label/stream/values", query='{source="docker"}', **rng))
    assert body["data"] == ["stderr", "stdout"]
    r = requests.get(c.base + "/loki/api/v1/series", params=[("match[]", '{source="pods"}'), ("match[]", '{container_name="web-0"}'),
                                                             ("start", rng["start"]), ("end", rng["end"])], timeout=30)
    body = ok_json(r)
    exp = {json.dumps(r.labels, sort_keys=True) for r in c.recs
           if r.labels["source"] == "pods" or r.labels.get("container_name") == "web-0"}
    got = [json.dumps(s, sort_keys=True) for s in body["data"]]
    assert len(got) == len(set(got)) and set(got) == exp
    body = ok_json(get(c, "/loki/api/v1/index/stats", query='{source="docker"}', **rng))
    dock = [r for r in c.recs if r.labels["source"] == "docker"]
    assert body["streams"] == len({json.dumps(r.labels, sort_keys=True) for r in dock})
    assert body["entries"] == len(dock) and body["bytes"] == sum(len(r.line.encode()) for r in dock)
    assert body["chunks"] >= 1
    body = ok_json(get(c, "/loki/api/v1/status/buildinfo"))
    assert {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"} <= set(body)


# ---- errors ------------------------------------------------------------------------------

BAD = [
    ('{', "parse error"), ('{app="x"', "parse error"), ('{}', "parse error"), ('{app=~".*"}', "parse error"),
    ('{app="x"} |= ', "parse error"), ('count_over_time({app="x"})', "parse error"),
    ('rate({app="x"}[5x])', "parse error"), ('sum(count_over_time({app="x"}[1m]) by (', "parse error"),
    ('topk(x, count_over_time({app="x"}[1m]))', "parse error"), ('{app="x"} |~ "("', "parse error"),
    ('{app="x"} | json | status > "x"', "parse error"), ('{app="x"} | regexp "no names"', "parse error"),
    ('{app="x"} | label_format a=b, a=c', "parse error"), ('sum({app="x"})', "parse error"),
    ('sum_over_time({app="x"} | unwrap n [1m])', "not supported"), ('{app="x"} | unwrap n', "not supported"),
    ('{app="x"} | pattern "<a> <b>"', "not supported"), ('{app="x"} | line_format "{{ printf \\"%s\\" .a }}"', "not supported"),
    ('count_over_time({app="x"}[1m]) > 1', "not supported"), ('1 + 1', "not supported"),
]


def bad(r, want):
    assert r.status_code == 400, "%d %s" % (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("text/plain")
    assert want in r.text, r.text


def test_errors_are_loki_400s(corpus):
    c = corpus
    for q, want in BAD:
        bad(get(c, "/loki/api/v1/query_range", query=q), want)
    r = get(c, "/loki/api/v1/query_range", query='{app="x"')
    assert re.match(r"parse error at line 1, col \d+: syntax error", r.text), r.text
    bad(get(c, "/loki/api/v1/query", query='{source="docker"}'), "log queries are not supported as an instant query")
    bad(get(c, "/loki/api/v1/query_range"), "query parameter is required")
    bad(get(c, "/loki/api/v1/query_range", query='{source="docker"}', limit="0"), "limit must be a positive value")
    bad(get(c, "/loki/api/v1/query_range", query='{source="docker"}', limit="6000"), "max entries limit")
    bad(get(c, "/loki/api/v1/query_range", query='{source="docker"}', start="20", end="10"), "end timestamp must not be before")
    bad(get(c, "/loki/api/v1/query_range", query='count_over_time({source="docker"}[1m])', step="0"), "zero or negative")
    bad(get(c, "/loki/api/v1/query_range", query='count_over_time({source="docker"}[1m])', start="0",
            end="100000", step="1"), "exceeded maximum resolution")
    bad(get(c, "/loki/api/v1/query_range", query='{source="docker"}', start="yesterday"), "cannot parse")
    bad(get(c, "/loki/api/v1/series"), "match[]")
    bad(get(c, "/loki/api/v1/series", **{"match[]": 'count_over_time({a="b"}[1m])'}), "only log selectors")
    assert get(c, "/loki/api/v1/label/x/other").status_code == 404
    # too many series for one metric query: Loki's limit, not a huge answer
    r = get(c, "/loki/api/v1/query_range", query='count_over_time({source="docker"} | json [1m])',
            start=str(c.first), end=str(c.last), step="60s")
    bad(r, "maximum of series (500)")


# ---- the WebSocket tail ------------------------------------------------------------------

class WS:
    def __init__(self, port, path):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            assert chunk, "connection closed during the handshake"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ")[1])
        self.head = head.decode()

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        b0, b1 = self._need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._need(8))[0]
        assert not b1 & 0x80, "server frames are not masked"
        return b0 & 0x0F, self._need(n)

    def close(self):
        mask = os.urandom(4)
        payload = struct.pack(">H", 1000)
        try:
            self.s.sendall(bytes([0x88, 0x80 | len(payload)]) + mask + bytes(p ^ mask[i % 4] for i, p in enumerate(payload)))
        except OSError:
            pass  # an answer that was not a WebSocket (429) may be closed already
        self.s.close()


def tail_values(ws, want, timeout=30):
    got = []
    deadline = time.time() + timeout
    while len(got) < want and time.time() < deadline:
        op, payload = ws.recv()
        assert op == 1
        msg = json.loads(payload)
        assert set(msg) == {"streams", "dropped_entries"} and msg["dropped_entries"] is None
        for s in msg["streams"]:
            got += [(s["stream"], int(v[0]), v[1]) for v in s["values"]]
    return got


def test_tail_sends_the_last_limit_older_entries_first(corpus):
    """Like Loki: of the entries before the connection, the most recent `limit`, oldest first,
    then the new ones."""
    c = corpus
    cid = [r.labels["container_id"] for r in c.recs if r.labels.get("container_name") == "web-0"][0]
    path = c.croot / cid / ("%s-json.log" % cid)
    past = time.time_ns() - 600 * NS
    with open(path, "ab") as f:
        for i in range(15):
            f.write(loggen.docker_entry("HIST %d\n" % i, "stderr", past + i * NS, False, None))
    wait_for(lambda: sum(len(s["values"]) for s in ok_json(get(c, "/loki/api/v1/query_range", query='{container_name="web-0"} |= "HIST"',
                                                                 limit="100"))["data"]["result"]) == 15, 30, "the HIST lines")
    ws = WS(c.agent.http_port(), "/loki/api/v1/tail?query=%s&limit=5" % urllib.parse.quote('{container_name="web-0"} |= "HIST"'))
    assert ws.status == 101, ws.head
    got = tail_values(ws, 5)
    assert [v[2] for v in got] == ["HIST %d" % i for i in range(10, 15)]
    assert [v[1] for v in got] == [past + i * NS for i in range(10, 15)]
    assert all(v[0]["stream"] == "stderr" and v[0]["container_name"] == "web-0" for v in got)
    with open(path, "ab") as f:
        f.write(loggen.docker_entry("HIST new\n", "stderr", time.time_ns(), False, None))
    assert [v[2] for v in tail_values(ws, 1)] == ["HIST new"]
    ws.close()


def test_tail_delivers_new_records(corpus):
    c = corpus
    q = urllib.parse.quote('{container_name="web-1"} |= "TAILME"')
    ws = WS(c.agent.http_port(), "/loki/api/v1/tail?query=%s&limit=10" % q)
    assert ws.status == 101, ws.head
    cid = [r.labels["container_id"] for r in c.recs if r.labels.get("container_name") == "web-1"][0]
    path = c.croot / cid / ("%s-json.log" % cid)
    now = time.time_ns()
    lines = ["TAILME %d %s" % (i, "x" * i) for i in range(30)] + ["not for the tail"]
    with open(path, "ab") as f:
        for i, l in enumerate(lines):
            f.write(loggen.docker_entry(l + "\n", "stdout", now + i * 1000, False, None))
    got = []
    deadline = time.time() + 30
    while len(got) < 30 and time.time() < deadline:
        op, payload = ws.recv()
        assert op == 1
        msg = json.loads(payload)
        assert set(msg) == {"streams", "dropped_entries"}
        for s in msg["streams"]:
            assert s["stream"]["container_name"] == "web-1" and s["stream"]["stream"] == "stdout"
            got += [v[1] for v in s["values"]]
    assert got == lines[:30]
    # 4 tails at once are served, a 5th gets 429
    others = [WS(c.agent.http_port(), "/loki/api/v1/tail?query=%s" % q) for _ in range(3)]
    assert all(o.status == 101 for o in others)
    extra = WS(c.agent.http_port(), "/loki/api/v1/tail?query=%s" % q)
    assert extra.status == 429
    for o in others + [ws]:
        o.close()
    # once they are gone, a new tail is accepted again
    def slot_free():
        w = WS(c.agent.http_port(), "/loki/api/v1/tail?query=%s" % q)
        w.close()
        return w.status == 101
    wait_for(slot_free, 10, "a tail slot to free up")
    r = get(c, "/loki/api/v1/tail", query='count_over_time({a="b"}[1m])')
    assert r.status_code == 400


def test_concurrency_limit_is_429(spillway_bin, tmp_path):
    """At most 4 queries run at once: a 5th gets Loki's 429 (checked only after it parsed: a
    bad one is still 400), and once they are done queries are served again. The agent holds
    each query for 3 s with a test knob, so that 4 are surely running when the 5th comes."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("".join("line %d\n" % i for i in range(50)))
    a = Agent(spillway_bin, tmp_path, "limit")
    a.env = dict(os.environ, SPILLWAY_TEST_LOKI_DELAY_MS="3000")
    a.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % logs]}],
                   buffer={"max_bytes": "64MiB", "keep_shipped": {"max_age": "24h"},
                           "chunk": {"max_records": 100, "max_bytes": "1MiB", "max_wait": "200ms"}})
    a.start()
    try:
        a.wait_count(50, 30)
        base = "http://127.0.0.1:%d" % a.http_port()
        q = {"query": '{source="app"}', "limit": "100", "start": str(time.time_ns() - 3600 * NS)}
        answers = []

        def one():
            answers.append(requests.get(base + "/loki/api/v1/query_range", params=q, timeout=60))
        # 5 at once: each is held 3 s, far longer than it takes them all to arrive
        threads = [threading.Thread(target=one) for _ in range(5)]
        for t in threads:
            t.start()
        r = requests.get(base + "/loki/api/v1/query_range", params={"query": "{"}, timeout=10)
        assert r.status_code == 400  # parsed before the limit is looked at
        for t in threads:
            t.join()
        assert sorted(r.status_code for r in answers) == [200, 200, 200, 200, 429]
        refused = [r for r in answers if r.status_code == 429][0]
        assert refused.headers["Content-Type"].startswith("text/plain") and "too many queries" in refused.text
        assert all(sum(len(s["values"]) for s in r.json()["data"]["result"]) == 50
                   for r in answers if r.status_code == 200)
        r = requests.get(base + "/loki/api/v1/query_range", params=q, timeout=30)
        assert r.status_code == 200
    finally:
        a.stop()
        a.cleanup()
