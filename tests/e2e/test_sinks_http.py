"""Loki and Elasticsearch sinks against strict receivers (receivers.py): every record arrives
exactly once (after dedup by (stream, ts, line) / by _id) through faults, kill -9 and restarts;
refused data goes to dead letters and comes back with `spillway replay-dead-letters`; a down
sink never holds another back."""

import base64
import json
import random
import re
import time

import pytest
import requests

import loggen
from conftest import HOST
from loggen import DockerContainer, Feed, parse_ts
from receivers import Elasticsearch, Loki

FAST = {"max_bytes": "256KiB", "max_wait": "200ms"}
RETRY = {"min_backoff": "50ms", "max_backoff": "400ms"}


@pytest.fixture
def loki():
    r = Loki()
    yield r
    r.stop()


@pytest.fixture
def es():
    r = Elasticsearch()
    yield r
    r.stop()


def loki_sink(r, **kw):
    s = {"name": "loki", "type": "loki", "url": r.url, "batch": FAST, "retry": RETRY,
         "timeout": "2s", "labels": {"job": "spillway"}}
    s.update(kw)
    return s


def es_sink(r, **kw):
    s = {"name": "es", "type": "elasticsearch", "url": r.url, "batch": FAST, "retry": RETRY,
         "timeout": "2s", "index": "logs-%Y.%m.%d"}
    s.update(kw)
    return s


def containers(workdir, rng, n_containers, n_lines, **wl):
    root = workdir / "containers"
    root.mkdir(exist_ok=True)
    out = []
    for i in range(n_containers):
        c = DockerContainer.create(root, rng, "web-%d" % i)
        w = loggen.docker_workload(rng, n_lines, loggen.Clock(rng, loggen.recent_ns()), **wl)
        out.append((c, w, Feed.of(c.path, w)))
    return out


def docker_source(workdir):
    return [{"name": "docker", "type": "docker", "paths": ["%s/containers/*/*-json.log" % workdir]}]


def expected(conts):
    """{(container_id, stream, ts_ns, line)} of every record written."""
    return {(c.id, s, parse_ts(ts), line) for c, w, _ in conts for ts, s, line in w.exp}


def loki_got(r):
    return [(lab.get("container_id"), lab.get("stream"), ts, line) for lab, ts, line in r.lines()]


def es_got(r):
    with r.lock:
        docs = list(r.docs.values())
    return [(d["labels"]["container_id"], d["stream"], parse_ts(d["@timestamp"]), d["message"])
            for d in docs]


def sink_status(agent, name):
    """The sink's entry of `spillway status`, or None while the database does not exist yet."""
    p = agent.cli("status", "-c", agent.config_path, "--output", "json")
    if p.returncode != 0:
        return None
    return [x for x in json.loads(p.stdout)["sinks"] if x["name"] == name][0]


def wait_all(agent, got, want, timeout, what):
    agent.wait_for(lambda: len(set(got())) >= len(want), timeout,
                   "%d records at %s (have %d)" % (len(want), what, len(set(got()))))
    g = got()
    assert len(g) == len(set(g)), "%s holds duplicates" % what
    missing = want - set(g)
    extra = set(g) - want
    assert not missing and not extra, "%s: %d missing (e.g. %r), %d unexpected (e.g. %r)" % (
        what, len(missing), sorted(missing)[:1], len(extra), sorted(extra)[:1])


def test_loki_records_labels_and_protocol(agent, workdir, loki):
    rng = random.Random(41)
    conts = containers(workdir, rng, 3, 3000, long_ratio=0.0)
    loki.tenant = "team-a"
    (workdir / "pw").write_text("s3cret-pw\n")
    agent.write_config(docker_source(workdir),
                       sinks=[loki_sink(loki, tenant="team-a", structured_metadata=["container_name"],
                                        username="shipper", password_file=str(workdir / "pw"))])
    for _, _, f in conts:
        f.feed_all()
    agent.start(wait_ready=False)
    wait_all(agent, lambda: loki_got(loki), expected(conts), 60, "loki")
    labels = {frozenset(lab.items()) for lab, _, _ in loki.lines()}
    c0 = conts[0][0]
    want = {"host": HOST, "source": "docker", "container_id": c0.id, "stream": "stdout",
            "job": "spillway"}
    assert frozenset(want.items()) in labels, sorted(labels)[:3]
    assert all(h.get("X-Scope-OrgID") == "team-a" and h.get("Content-Encoding") == "gzip"
               and h.get("Authorization") == "Basic " + base64.b64encode(b"shipper:s3cret-pw").decode()
               for h in loki.headers_seen)
    assert "s3cret-pw" not in agent.stderr_tail(10**6)
    # container_name travelled as structured metadata, not as a stream label
    metas = loki.metas()
    assert json.dumps({"container_name": c0.name}) in metas
    st = agent.status()
    sink = [s for s in st["sinks"] if s["name"] == "loki"][0]
    assert sink["backlog_records"] == 0 and sink["dead_letters"] == 0, sink
    assert sink["sent_records"] == len(expected(conts))
    agent.stop()


def test_loki_faults_and_kill9_exactly_once(agent, workdir, loki):
    rng = random.Random(42)
    conts = containers(workdir, rng, 2, 6000, long_ratio=0.0)
    loki.faults.extend(["429", "500", "reset", "503", "timeout", "slow", "500"])
    agent.write_config(docker_source(workdir), sinks=[loki_sink(loki, concurrency=3)])
    agent.start(wait_ready=False)
    for rnd in range(6):
        for _, _, f in conts:
            f.feed(1000)
        time.sleep(0.3)
        if rnd in (2, 4):
            agent.kill9()
            loki.faults.extend(["503", "reset"])
            agent.start(wait_ready=False)
    wait_all(agent, lambda: loki_got(loki), expected(conts), 90, "loki")
    assert 429 in loki.statuses and 500 in loki.statuses and 503 in loki.statuses
    agent.stop()


def test_loki_long_line_is_split_under_the_entry_limit(agent, workdir, loki):
    path = workdir / "big.log"
    big = "".join("%07d " % i for i in range(80000))  # 640 000 bytes
    path.write_text("before\n" + big + "\nafter\n")
    agent.write_config([{"name": "app", "type": "file", "paths": [str(path)], "max_record_bytes": "1MiB"}],
                       sinks=[loki_sink(loki)])
    agent.start(wait_ready=False)
    agent.wait_for(lambda: any(l == "after" for _, _, l in loki.lines()), 30, "the last line")
    got = sorted(loki.lines(), key=lambda x: x[1])
    pieces = [l for _, _, l in got if l not in ("before", "after")]
    assert all(len(p.encode()) <= 262144 for p in pieces) and len(pieces) == 3, [len(p) for p in pieces]
    assert "".join(pieces) == big
    agent.stop()


def test_loki_refusal_goes_to_dead_letters_and_replays(agent, workdir, loki):
    rng = random.Random(43)
    conts = containers(workdir, rng, 1, 500, long_ratio=0.0)
    poison = conts[0][1].exp[250][2]
    loki.reject_line = poison
    agent.write_config(docker_source(workdir), sinks=[loki_sink(loki)])
    conts[0][2].feed_all()
    agent.start(wait_ready=False)

    def dead():
        s = sink_status(agent, "loki")
        return s if s and s["dead_letters"] >= 1 and s["backlog_records"] == 0 else None
    agent.wait_for(dead, 30, "the refused batch to be dead-lettered")
    s = dead()
    assert "rejected by the test" in s["last_error"], s
    got = set(loki_got(loki))
    assert not any(g[3] == poison for g in got)
    assert len(got) + s["dead_letter_records"] >= 500
    loki.reject_line = None  # the operator fixed the server
    p = agent.cli("replay-dead-letters", "-c", agent.config_path, "loki")
    assert p.returncode == 0, p.stderr
    assert b"queued for resending" in p.stdout
    wait_all(agent, lambda: loki_got(loki), expected(conts), 30, "loki")
    agent.wait_for(lambda: sink_status(agent, "loki")["dead_letters"] == 0,
                   15, "the replayed dead letter to be deleted")
    agent.stop()


def test_es_documents_ids_partial_failures_and_dead_letters(agent, workdir, es):
    rng = random.Random(44)
    conts = containers(workdir, rng, 2, 3000, long_ratio=0.0)
    bad = conts[1][1].exp[100][2]
    # every 10th record of container 0 gets a transient per-item failure once
    (workdir / "es-key").write_text("VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==\n")
    agent.write_config(docker_source(workdir), sinks=[es_sink(es, merge_json=False,
                                                              api_key_file=str(workdir / "es-key"))])
    for _, _, f in conts:
        f.feed_all()
    es.item_faults = {conts[0][1].exp[i][2]: (429 if i % 20 else 503) for i in range(0, 3000, 10)}
    es.item_faults[bad] = 400
    agent.start(wait_ready=False)
    want = expected(conts)
    want_delivered = {w for w in want if w[3] != bad}
    agent.wait_for(lambda: len(es.docs) >= len(want_delivered), 60, "documents in elasticsearch")
    got = es_got(es)
    assert set(got) == want_delivered and len(got) == len(want_delivered)
    assert all(h.get("Authorization") == "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
               and h.get("Content-Type") == "application/x-ndjson" for h in es.headers_seen)
    ids = {k[1] for k in es.docs}
    st = agent.status()
    assert all(i.startswith(st["agent_id"] + "-") for i in ids)
    assert all(k[0].startswith("logs-20") for k in es.docs)
    agent.wait_for(lambda: sink_status(agent, "es")["dead_letters"] == 1,
                   20, "one dead letter")
    s = sink_status(agent, "es")
    assert s["dead_letter_records"] == 1 and "injected 400" in s["last_error"], s
    assert s["sent_records"] == len(want_delivered)
    del es.item_faults[bad]
    assert agent.cli("replay-dead-letters", "-c", agent.config_path, "es").returncode == 0
    agent.wait_for(lambda: len(es.docs) == len(want), 20, "the replayed document")
    assert set(es_got(es)) == want
    agent.stop()


def test_es_json_merge_413_split_and_kill9(agent, workdir):
    es = Elasticsearch(max_body=60000)  # bigger requests get 413 and must be split
    try:
        path = workdir / "app.log"
        lines = []
        for i in range(4000):
            if i % 2:
                lines.append(json.dumps({"level": "info", "n": i, "msg": "json %d" % i}))
            else:
                lines.append("plain line %d %s" % (i, "x" * (i % 50)))
        with open(path, "w") as f:
            f.write("".join(l + "\n" for l in lines[:2000]))
        agent.write_config([{"name": "app", "type": "file", "format": "json", "paths": [str(path)]}],
                           sinks=[es_sink(es, batch={"max_bytes": "512KiB", "max_wait": "200ms"})])
        agent.start(wait_ready=False)
        agent.wait_for(lambda: len(es.docs) > 500, 30, "some documents")
        agent.kill9()
        with open(path, "a") as f:
            f.write("".join(l + "\n" for l in lines[2000:]))
        agent.start(wait_ready=False)
        agent.wait_for(lambda: len(es.docs) >= 4000, 60, "4000 documents")
        time.sleep(0.5)
        assert len(es.docs) == 4000
        assert 413 in es.statuses
        got = {}
        for d in es.docs.values():
            if "n" in d:
                assert d["level"] == "info" and d["msg"] == "json %d" % d["n"] and "message" not in d
                got[d["n"]] = d
            else:
                got[int(d["message"].split()[2])] = d
            assert d["labels"]["source"] == "app" and "@timestamp" in d and d["stream"] == "file"
        assert sorted(got) == list(range(4000))
        agent.stop()
    finally:
        es.stop()


def test_two_sinks_one_down_other_keeps_shipping(agent, workdir, loki, es):
    rng = random.Random(45)
    conts = containers(workdir, rng, 2, 2000, long_ratio=0.0)
    loki.stop()  # Loki is down from the start
    agent.write_config(docker_source(workdir), sinks=[loki_sink(loki), es_sink(es, merge_json=False)])
    agent.start(wait_ready=False)
    for _, _, f in conts:
        f.feed(1000)
    want_half = {w for c, wl, _ in conts for w in expected([(c, wl._replace(exp=wl.exp[:1000]), None)])}
    agent.wait_for(lambda: set(es_got(es)) == want_half, 30, "elasticsearch to get the first half")
    agent.wait_for(lambda: sink_status(agent, "loki")["last_error"], 10, "loki's last error in status")
    s = sink_status(agent, "loki")
    assert s["backlog_records"] == len(want_half) and "onnect" in s["last_error"], s
    for _, _, f in conts:
        f.feed_all()
    agent.wait_for(lambda: len(es.docs) == 4000, 30, "elasticsearch to get everything")
    loki.start()  # Loki is back: it catches up
    wait_all(agent, lambda: loki_got(loki), expected(conts), 60, "loki")
    agent.stop()


def sink_metric(agent, name, sink="loki"):
    """One sample of the running agent's /metrics for the sink, or None."""
    text = requests.get("http://127.0.0.1:%d/metrics" % agent.http_port(), timeout=5).text
    m = re.search(r'^%s\{sink="%s",type="[a-z0-9]+"\} (\S+)$' % (name, sink), text, re.M)
    return float(m.group(1)) if m else None


def kill_while_answering(agent, loki, conts, rng, rounds):
    """Feeds the containers and kill -9s the agent while Loki holds answers to pushes it has
    already stored (answer_delay): each time some batches are stored but not acknowledged."""
    for rnd in range(rounds):
        for _, _, f in conts:
            f.feed(rng.randrange(300, 900))
        stored = loki.entries_received
        agent.wait_for(lambda: loki.entries_received > stored, 30, "a push stored in round %d" % rnd)
        agent.kill9()
        agent.start(wait_ready=False)


def wait_settled(agent, name, what):
    """Until the sink has acknowledged everything buffered (nothing left in flight to resend)."""
    agent.wait_for(lambda: (sink_status(agent, name) or {}).get("backlog_records") == 0, 60,
                   "%s to acknowledge everything" % what)


def test_loki_kill9_resends_only_what_loki_lacks(agent, workdir):
    """Loki keeps an entry resent after its head block was cut (modelled with 16 KiB blocks, so
    that nearly every resend would be stored twice). 12 kill -9 while Loki holds its answers:
    after each restart the sink asks Loki (query_range) and every record is stored once."""
    loki = Loki(head_block_bytes=16 * 1024)
    loki.answer_delay = 0.4
    try:
        rng = random.Random(45)
        conts = containers(workdir, rng, 2, 9000, long_ratio=0.0)
        agent.write_config(docker_source(workdir),
                           sinks=[loki_sink(loki, concurrency=3, tenant="team-a")])
        loki.tenant = "team-a"
        agent.start(wait_ready=False)
        kill_while_answering(agent, loki, conts, rng, 12)
        for _, _, f in conts:
            f.feed_all()
        loki.answer_delay = 0
        agent.wait_for(lambda: set(loki_got(loki)) >= expected(conts), 120, "every record at loki")
        wait_settled(agent, "loki", "loki")
        wait_all(agent, lambda: loki_got(loki), expected(conts), 10, "loki")
        assert loki.queries > 0, "the sink never asked Loki what it holds"
        assert "may have been sent before a restart" in agent.stderr_tail(10**6)
        agent.wait_for(lambda: sink_metric(agent, "spillway_sink_possibly_duplicated_records_total")
                       == 0, 10, "the duplicate counter")
        agent.stop()
    finally:
        loki.stop()


def test_loki_resend_unchecked_when_the_query_is_refused_is_counted(agent, workdir):
    """The same crash with Loki's query API refused (403): the batches in flight are resent
    unchecked; every duplicate Loki then keeps is counted in
    spillway_sink_possibly_duplicated_records_total, and nothing is lost."""
    loki = Loki(head_block_bytes=16 * 1024)
    loki.answer_delay = 0.6
    try:
        rng = random.Random(46)
        conts = containers(workdir, rng, 1, 3000, long_ratio=0.0)
        agent.write_config(docker_source(workdir), sinks=[loki_sink(loki, concurrency=2)])
        agent.start(wait_ready=False)
        for _, _, f in conts:
            f.feed_all()
        agent.wait_for(lambda: loki.entries_received > 0, 30, "a push stored")
        loki.get_faults.extend(["403"] * 50)
        agent.kill9()
        agent.start(wait_ready=False)
        loki.answer_delay = 0
        want = expected(conts)
        agent.wait_for(lambda: set(loki_got(loki)) >= want, 60, "every record at loki")
        wait_settled(agent, "loki", "loki")
        got = loki_got(loki)
        dups = len(got) - len(set(got))
        assert set(got) == want
        assert dups > 0, "the scenario should have produced duplicates (head blocks cut)"
        counted = agent.wait_for(
            lambda: sink_metric(agent, "spillway_sink_possibly_duplicated_records_total"), 20,
            "the duplicate counter")
        assert counted >= dups, (counted, dups)
        assert "may be stored twice" in agent.stderr_tail(10**6)
        agent.stop()
    finally:
        loki.stop()


def recent_reads(agent):
    """(hits, misses) of spillway_buffer_recent_reads_total."""
    text = requests.get("http://127.0.0.1:%d/metrics" % agent.http_port(), timeout=5).text
    got = dict(re.findall(r'^spillway_buffer_recent_reads_total\{result="(hit|miss)"\} (\d+)$', text, re.M))
    return int(got.get("hit", 0)), int(got.get("miss", 0))


@pytest.mark.parametrize("in_memory", ["2MiB", "0"])
def test_sinks_ship_from_memory_when_caught_up(agent, workdir, loki, es, in_memory):
    """Lines written while both sinks keep up are encoded from the chunks the writer just
    committed (no read-back, no decompression); with the cache off the same lines come from
    the buffer. Either way each record arrives exactly once."""
    rng = random.Random(43)
    conts = containers(workdir, rng, 2, 2400, long_ratio=0.0)
    agent.write_config(docker_source(workdir), sinks=[loki_sink(loki), es_sink(es, merge_json=False)],
                       buffer={"recent_in_memory": in_memory,
                               "chunk": {"max_bytes": "256KiB", "max_wait": "100ms"}})
    agent.start(wait_ready=False)
    sent = set()
    for _ in range(6):  # each round waits until both sinks have everything so far: caught up
        for c, w, f in conts:
            f.feed(400)
        sent = {(c.id, s, parse_ts(ts), line) for c, w, f in conts
                for ts, s, line in w.exp[:f.records_done]}
        agent.wait_for(lambda: set(loki_got(loki)) >= sent and set(es_got(es)) >= sent, 30,
                       "%d records at both sinks" % len(sent))
    assert sent == expected(conts)
    wait_all(agent, lambda: loki_got(loki), sent, 30, "loki")
    wait_all(agent, lambda: es_got(es), sent, 30, "elasticsearch")
    hits, misses = recent_reads(agent)
    if in_memory == "0":
        assert hits == 0 and misses >= 12, (hits, misses)  # 2 sinks x >= 6 rounds of chunks
    else:
        # A sink may look at the buffer between a commit and the cache taking the chunk: rare.
        assert hits >= 12 and misses <= hits // 10, (hits, misses)
    agent.stop()


def test_partial_batch_goes_once_quiet(agent, workdir, loki):
    """A batch smaller than batch.max_bytes waits for more only while chunks keep coming: after
    a burst it goes ~200 ms after the last chunk, not after max_wait (here 30 s)."""
    rng = random.Random(44)
    conts = containers(workdir, rng, 2, 300, long_ratio=0.0)
    agent.write_config(docker_source(workdir),
                       sinks=[loki_sink(loki, batch={"max_bytes": "8MiB", "max_wait": "30s"})],
                       buffer={"chunk": {"max_bytes": "256KiB", "max_wait": "100ms"}})
    agent.start(wait_ready=False)
    agent.http_port()  # running
    t0 = time.monotonic()
    for _, _, f in conts:
        f.feed_all()
    wait_all(agent, lambda: loki_got(loki), expected(conts), 10, "loki")
    assert time.monotonic() - t0 < 10
    agent.stop()
