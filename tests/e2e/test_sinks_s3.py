"""The S3 sink against a real S3-compatible server: s3rver (npm, pinned in tests/servers), which
verifies SigV4 signatures. Objects are listed and read back with boto3, decompressed and
compared record by record with what was written; kill -9 never duplicates a record (a range cut
before a crash is uploaded again under the same key)."""

import gzip
import hashlib
import json
import random
import socket
import subprocess
import time
from pathlib import Path

import boto3
import pytest
import zstandard
from botocore.config import Config

import loggen
from conftest import HOST, free_port, wait_for
from loggen import DockerContainer, Feed, parse_ts

SERVERS = Path(__file__).resolve().parent.parent / "servers"
KEY = "S3RVER"  # s3rver's built-in credentials


@pytest.fixture
def s3(workdir):
    port = free_port()
    data = workdir / "s3rver"
    data.mkdir()
    log = open(workdir / "s3rver.log", "wb")
    proc = subprocess.Popen(["node", str(SERVERS / "node_modules" / "s3rver" / "bin" / "s3rver.js"),
                             "-d", str(data), "-a", "127.0.0.1", "-p", str(port),
                             "--configure-bucket", "logs"],
                            stdout=log, stderr=subprocess.STDOUT)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return False
    wait_for(up, 20, "s3rver to listen")
    client = boto3.client("s3", endpoint_url="http://127.0.0.1:%d" % port, region_name="us-east-1",
                          aws_access_key_id=KEY, aws_secret_access_key=KEY,
                          config=Config(s3={"addressing_style": "path"}))
    client.endpoint = "http://127.0.0.1:%d" % port
    yield client
    proc.terminate()
    proc.wait(10)
    log.close()


def s3_sink(s3, workdir, **kw):
    (workdir / "s3-id").write_text(KEY + "\n")
    (workdir / "s3-key").write_text(KEY + "\n")
    s = {"name": "archive", "type": "s3", "endpoint": s3.endpoint, "bucket": "logs",
         "region": "us-east-1", "prefix": "{host}/{source}/%Y/%m/%d/",
         "access_key_file": str(workdir / "s3-id"), "secret_key_file": str(workdir / "s3-key"),
         "object": {"max_bytes": "1MiB", "max_wait": "1s", "compression": "zstd"},
         "retry": {"min_backoff": "50ms", "max_backoff": "500ms"}}
    s.update(kw)
    return s


MANIFEST = ".manifest.json"


def objects(s3):
    """{key: [records]} of every data object in the bucket. Each one's manifest, once there
    (it is uploaded after its object), must describe it exactly."""
    out = {}
    keys = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="logs"):
        keys.update(o["Key"] for o in page.get("Contents", []))
    for key in sorted(k for k in keys if not k.endswith(MANIFEST)):
        packed = s3.get_object(Bucket="logs", Key=key)["Body"].read()
        if key.endswith(".zst"):
            body = zstandard.ZstdDecompressor().decompressobj().decompress(packed)
        else:
            body = gzip.decompress(packed)
        text = body.decode("utf-8")
        assert text.endswith("\n"), "object %s is cut short (%d bytes)" % (key, len(body))
        recs = [json.loads(l) for l in text.split("\n")[:-1]]
        out[key] = recs
        if key + MANIFEST in keys:
            check_manifest(s3, key, packed, body, recs)
    return out


def check_manifest(s3, key, packed, body, recs):
    m = json.loads(s3.get_object(Bucket="logs", Key=key + MANIFEST)["Body"].read())
    assert m["object"] == key and m["format"] == 1
    assert m["object_bytes"] == len(packed)
    assert m["object_sha256"] == hashlib.sha256(packed).hexdigest()
    assert m["ndjson_bytes"] == len(body) and m["ndjson_sha256"] == hashlib.sha256(body).hexdigest()
    assert m["records"] == len(recs)
    ts = [parse_ts(r["ts"]) for r in recs]
    assert (parse_ts(m["ts_min"]), parse_ts(m["ts_max"])) == (min(ts), max(ts))
    sets = {json.dumps(r["labels"], sort_keys=True) for r in recs}
    if m["label_sets_complete"]:
        assert {json.dumps(x, sort_keys=True) for x in m["label_sets"]} == sets
    assert m["first_chunk"] <= m["last_chunk"] and m["agent_id"]
    assert key.endswith("%020d-%020d.ndjson.%s" % (m["first_chunk"], m["last_chunk"],
                                                   "zst" if m["compression"] == "zstd" else "gz"))


def rec_key(r):
    return (r["labels"]["container_id"], r["stream"], parse_ts(r["ts"]), r["line"])


def containers(workdir, rng, n, lines):
    root = workdir / "containers"
    root.mkdir(exist_ok=True)
    out = []
    for i in range(n):
        c = DockerContainer.create(root, rng, "app-%d" % i)
        w = loggen.docker_workload(rng, lines, loggen.Clock(rng), long_ratio=0.0)
        out.append((c, w, Feed.of(c.path, w)))
    return out


def expected(conts):
    return {(c.id, s, parse_ts(ts), line) for c, w, _ in conts for ts, s, line in w.exp}


def source(workdir):
    return [{"name": "docker", "type": "docker", "paths": ["%s/containers/*/*-json.log" % workdir]}]


def all_records(s3):
    objs = objects(s3)
    return objs, [rec_key(r) for recs in objs.values() for r in recs]


def settled(fn):
    """fn() for a wait loop: s3rver writes an object in place, so one read while it is being
    written may see it cut short; that counts as "not yet" (the final reads are strict)."""
    def probe():
        try:
            return fn()
        except (AssertionError, ValueError, EOFError, OSError, zstandard.ZstdError):
            return False
    return probe


def test_s3_objects_hold_every_record_once_with_keys_from_the_prefix(agent, workdir, s3):
    rng = random.Random(51)
    conts = containers(workdir, rng, 3, 4000)
    agent.write_config(source(workdir), sinks=[s3_sink(s3, workdir)])
    for _, _, f in conts:
        f.feed_all()
    agent.start(wait_ready=False)
    want = expected(conts)
    agent.wait_for(settled(lambda: len(all_records(s3)[1]) >= len(want)), 60, "%d records in s3" % len(want))
    objs, got = all_records(s3)
    assert len(got) == len(set(got)) and set(got) == want
    for key in objs:
        parts = key.split("/")
        assert parts[0] == HOST and parts[1] == "docker" and parts[2:5] == ["2026", "11", "23"], key
        first, last = parts[5][:-len(".ndjson.zst")].split("-")
        assert len(first) == len(last) == 20 and int(first) <= int(last), key
    assert all(r["labels"]["host"] == HOST for recs in objs.values() for r in recs)
    agent.stop()


def test_s3_gzip_and_kill9_never_duplicate(agent, workdir, s3):
    rng = random.Random(52)
    conts = containers(workdir, rng, 2, 6000)
    agent.write_config(source(workdir), sinks=[s3_sink(s3, workdir, prefix="spill/",
                       object={"max_bytes": "1MiB", "max_wait": "1s", "compression": "gzip"})])
    agent.start(wait_ready=False)
    for rnd in range(6):
        for _, _, f in conts:
            f.feed(1000)
        time.sleep(0.7)
        if rnd in (1, 3):
            agent.kill9()
            agent.start(wait_ready=False)
    want = expected(conts)
    agent.wait_for(settled(lambda: len(set(all_records(s3)[1])) >= len(want)), 60, "every record in s3")
    time.sleep(1.5)
    objs, got = all_records(s3)
    assert all(k.startswith("spill/") and k.endswith(".ndjson.gz") for k in objs)
    dups = len(got) - len(set(got))
    assert dups == 0, "%d records in two objects: %s" % (dups, sorted(objs))
    assert set(got) == want
    agent.stop()


def test_sigv4_signature_checks_out_with_botocore(agent, workdir):
    """s3rver accepts any signature, so the SigV4 header of every request of a multipart upload
    (query strings included) is recomputed independently with botocore's signer from what was
    captured on the wire, together with the payload hash and the session token."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    captured = []

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_PUT(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            captured.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            out = b""
            if self.path.endswith("?uploads="):
                out = b"<InitiateMultipartUploadResult><UploadId>up-1.x_Y~z</UploadId></InitiateMultipartUploadResult>"
            self.send_response(200)
            self.send_header("ETag", '"etag-%d"' % len(captured))
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_POST = do_PUT

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        secret, token = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "FQoGZXIvYXdzEXAMPLETOKEN"
        (workdir / "id").write_text("AKIDEXAMPLE")
        (workdir / "secret").write_text(secret)
        (workdir / "token").write_text(token)
        log = workdir / "a.log"
        rng = random.Random(54)  # incompressible enough for two 5 MiB parts
        log.write_text("".join("%06d %x\n" % (i, rng.getrandbits(400)) for i in range(100000)))
        url = "http://127.0.0.1:%d" % srv.server_address[1]
        agent.write_config([{"name": "app", "type": "file", "paths": [str(log)]}], sinks=[{
            "name": "s3", "type": "s3", "endpoint": url, "bucket": "logs", "region": "eu-west-3",
            "prefix": "x/", "access_key_file": str(workdir / "id"),
            "secret_key_file": str(workdir / "secret"), "session_token_file": str(workdir / "token"),
            "object": {"max_bytes": "64MiB", "max_wait": "1s", "part_size": "5MiB"}}])
        agent.start(wait_ready=False)
        agent.wait_for(lambda: any(c[1].endswith(MANIFEST) for c in captured), 30,
                       "a completed multipart upload and its manifest")
        agent.stop()
    finally:
        srv.shutdown()
        srv.server_close()
    kinds = [(m, p.split("?")[1].split("=")[0] if "?" in p else "") for m, p, _, _ in captured]
    assert kinds[0] == ("POST", "uploads") and kinds[-2] == ("POST", "uploadId"), kinds
    assert kinds[-1] == ("PUT", "") and captured[-1][1].endswith(".ndjson.zst" + MANIFEST)  # after the object
    assert ("PUT", "partNumber") in kinds
    for method, path, headers, body in captured:
        check_sigv4(url, method, path, headers, body, secret, token)
    parts = [c for c in captured if "partNumber" in c[1]]
    assert b"".join(c[3] for c in parts)[:4] == b"\x28\xb5\x2f\xfd"  # one zstd object, in parts
    assert "<ETag>\"etag-2\"</ETag>" in captured[-2][3].decode()


def check_sigv4(url, method, path, headers, body, secret, token):

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    assert path.startswith("/logs/x/"), path
    assert headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
    assert headers["x-amz-security-token"] == token
    auth = headers["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), auth
    fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    signed = fields["SignedHeaders"].split(";")
    assert {"host", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"} <= set(signed), signed
    assert fields["Credential"].endswith("/eu-west-3/s3/aws4_request")
    req = AWSRequest(method=method, url=url + path, data=body, headers={h: headers[h] for h in signed})
    req.context["timestamp"] = headers["x-amz-date"]
    signer = S3SigV4Auth(Credentials("AKIDEXAMPLE", secret, token), "s3", "eu-west-3")
    want = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
    assert fields["Signature"] == want, (method, path)


def test_s3_big_object_goes_multipart(agent, workdir, s3):
    """An object bigger than object.part_size is uploaded in parts (random text compresses
    little, so 24 MB of it makes a compressed object of several parts of 5 MiB)."""
    rng = random.Random(53)
    log = workdir / "big.log"
    lines = ["%06d %s" % (i, "%x" % rng.getrandbits(400)) for i in range(200000)]
    log.write_text("".join(l + "\n" for l in lines))
    agent.write_config([{"name": "app", "type": "file", "paths": [str(log)]}], sinks=[s3_sink(
        s3, workdir, object={"max_bytes": "64MiB", "max_wait": "1s", "part_size": "5MiB"})])
    agent.start(wait_ready=False)

    def got():
        objs = objects(s3)
        return sum(len(v) for v in objs.values()) >= len(lines) and objs
    agent.wait_for(settled(got), 90, "every line in s3")
    time.sleep(0.5)
    objs = got()
    listing = [o for o in s3.list_objects_v2(Bucket="logs")["Contents"] if not o["Key"].endswith(MANIFEST)]
    assert max(o["Size"] for o in listing) > 5 * 2**20  # at least one object needed parts
    log = (workdir / "s3rver.log").read_text()
    big = max(listing, key=lambda o: o["Size"])
    parts = -(-big["Size"] // (5 * 2**20))
    assert "Stored part %d of " % parts in log and "Stored part %d of " % (parts + 1) not in log, log[-2000:]
    recs = [r["line"] for v in objs.values() for r in v]
    assert sorted(recs) == sorted(lines)
    agent.stop()


def test_s3_prefix_labels_and_match(agent, workdir, s3):
    """prefix with {label}s (an extracted one among them): each record goes to the object of
    its labels, a missing label is `unknown`; match keeps the rest out."""
    logs = workdir / "logs"
    logs.mkdir()
    rng = random.Random(53)
    lines, want = [], {}
    for i in range(3000):
        lv = rng.choice(["info", "ERROR", "debug", None])
        line = json.dumps({"level": lv, "n": i}) if lv else "plain %d" % i
        lines.append(line)
        norm = {"info": "info", "ERROR": "error", "debug": "debug", None: None}[lv]
        if norm != "debug":
            want[line] = norm or "unknown"
    (logs / "app.log").write_text("\n".join(lines) + "\n")
    agent.write_config([{"name": "app", "type": "file", "paths": [str(logs / "*.log")],
                         "extract": {"format": "json", "fields": {"level": "level"}, "normalize_level": True}}],
                       sinks=[s3_sink(s3, workdir, prefix="x/{source}/{level}/", match=["level!=debug"])])
    agent.start(wait_ready=False)
    agent.wait_for(settled(lambda: sum(len(v) for v in objects(s3).values()) >= len(want)), 60,
                   "%d records in s3" % len(want))
    objs = objects(s3)
    got = {}
    for key, recs in objs.items():
        parts = key.split("/")
        assert parts[0] == "x" and parts[1] == "app", key
        for r in recs:
            assert r["line"] not in got
            got[r["line"]] = parts[2]
            assert r["labels"].get("level", "unknown") == parts[2], (key, r)
    assert got == want
    assert {k.split("/")[2] for k in objs} == {"info", "error", "unknown"}
    agent.stop()
