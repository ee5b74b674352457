#!/usr/bin/python3
"""Soak: ingest of docker json-file and Kubernetes CRI logs with rotation, shipped to Loki,
Elasticsearch, S3 and a file sink at once, with `kill -9` of the agent at random moments. It
ends with every record exactly once at every receiver, or says what is missing or doubled.

Receivers: the strict Loki (which, like a real Loki, keeps a resent entry whose head block was
cut) and Elasticsearch receivers of the end-to-end tests, and a real S3 server (s3rver, from
`make test`'s bootstrap). Not part of CI (minutes long):

  /usr/bin/python3 bench/soak.py [--kills 100] [--containers 3] [--pods 3] [--seed 1]

Prints per sink: records expected, stored, missing, duplicated; the kills; the duration.
"""
import argparse, json, os, random, shutil, signal, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import loggen  # noqa: E402
from receivers import Elasticsearch, Loki  # noqa: E402

WORK = os.path.join(ROOT, "bench", ".work", "soak")
BIN = os.environ.get("SPILLWAY_BIN", os.path.join(ROOT, "build", "spillway"))
S3RVER = os.path.join(ROOT, "tests", "servers", "node_modules", "s3rver", "bin", "s3rver.js")
KEY = "S3RVER"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    print("soak: timed out after %ds waiting for %s" % (timeout, what), file=sys.stderr)
    return False


class Stream:
    """One container's log: docker json-file (rotated like dockerd: NAME -> NAME.1) or CRI behind
    a symlink (rotated like the kubelet: 0.log -> 0.log.<n>). Lines carry "soak key=<k> seq=<n>"."""

    def __init__(self, kind, key, path, link=None):
        self.kind, self.key, self.path, self.link = kind, key, path, link
        self.seq, self.gen = 0, 0
        self.ts = loggen.recent_ns(600)

    def write(self, n, rng):
        with open(self.path, "ab") as f:
            for _ in range(n):
                line = "soak key=%s seq=%07d %s" % (self.key, self.seq, "x" * rng.randrange(0, 300))
                stream = "stderr" if rng.random() < 0.2 else "stdout"
                self.ts += rng.randrange(1000, 2000000)
                if self.kind == "docker":
                    f.write(loggen.docker_entry(line + "\n", stream, self.ts))
                else:
                    f.write(loggen.cri_line(self.ts, stream, "F", line))
                self.seq += 1

    def rotate(self):
        self.gen += 1
        if self.kind == "docker":  # dockerd with max-file: NAME.1 is the newest, nothing deleted
            for g in range(self.gen - 1, 0, -1):
                os.rename("%s.%d" % (self.path, g), "%s.%d" % (self.path, g + 1))
            os.rename(self.path, self.path + ".1")
        else:
            os.rename(self.path, "%s.%05d" % (self.path, self.gen))
        open(self.path, "ab").close()


def setup_streams(args, rng):
    streams = []
    for i in range(args.containers):
        cid = "%064x" % rng.getrandbits(256)
        d = os.path.join(WORK, "containers", cid)
        os.makedirs(d)
        with open(os.path.join(d, "config.v2.json"), "w") as f:
            json.dump({"ID": cid, "Name": "/web-%d" % i}, f)
        streams.append(Stream("docker", "d%d" % i, os.path.join(d, cid + "-json.log")))
    for i in range(args.pods):
        d = os.path.join(WORK, "pods", "shop_pod-%d_%08x-0000-4000-8000-%012x" % (
            i, rng.getrandbits(32), rng.getrandbits(48)), "app")
        os.makedirs(d)
        target = os.path.join(d, "0.log")
        open(target, "ab").close()
        link = os.path.join(WORK, "links", "pod-%d_shop_app-x.log" % i)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(target, link)
        streams.append(Stream("cri", "p%d" % i, target, link))
    return streams


def config(loki, es, s3port):
    for name in ("s3-id", "s3-key"):
        with open(os.path.join(WORK, name), "w") as f:
            f.write(KEY + "\n")
        os.chmod(os.path.join(WORK, name), 0o600)
    fast = {"max_bytes": "256KiB", "max_wait": "300ms"}
    retry = {"min_backoff": "50ms", "max_backoff": "1s"}
    cfg = {
        "data_dir": os.path.join(WORK, "data"),
        "buffer": {"max_bytes": "1GiB", "when_full": "block",
                   "chunk": {"max_records": 2000, "max_bytes": "256KiB", "max_wait": "200ms"}},
        "sources": [
            {"name": "docker", "type": "docker",
             "paths": [os.path.join(WORK, "containers", "*", "*-json.log")]},
            {"name": "pods", "type": "cri", "paths": [os.path.join(WORK, "links", "*.log")]}],
        "sinks": [
            {"name": "file", "type": "file", "path": os.path.join(WORK, "out", "shipped.ndjson")},
            {"name": "loki", "type": "loki", "url": loki.url, "batch": fast, "retry": retry,
             "concurrency": 3, "timeout": "5s"},
            {"name": "es", "type": "elasticsearch", "url": es.url, "batch": fast, "retry": retry,
             "concurrency": 3, "timeout": "5s"},
            {"name": "s3", "type": "s3", "endpoint": "http://127.0.0.1:%d" % s3port,
             "bucket": "logs", "region": "us-east-1", "prefix": "{source}/",
             "access_key_file": os.path.join(WORK, "s3-id"),
             "secret_key_file": os.path.join(WORK, "s3-key"),
             "object": {"max_bytes": "2MiB", "max_wait": "1s", "compression": "zstd"},
             "retry": retry}],
        "server": {"listen": "0"},
        "log": {"level": "warn"},
    }
    path = os.path.join(WORK, "soak.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def start(cfgpath, runs):
    err = open(os.path.join(WORK, "agent.run%d.stderr" % runs), "wb")
    return subprocess.Popen([BIN, "run", "-c", cfgpath], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)


def key_of(line):
    parts = line.split()
    return (parts[1][4:], int(parts[2][4:])) if len(parts) > 2 and parts[0] == "soak" else None


def s3_lines(port):
    import boto3, zstandard
    from botocore.config import Config
    c = boto3.client("s3", endpoint_url="http://127.0.0.1:%d" % port, region_name="us-east-1",
                     aws_access_key_id=KEY, aws_secret_access_key=KEY,
                     config=Config(s3={"addressing_style": "path"}))
    out = []
    for page in c.get_paginator("list_objects_v2").paginate(Bucket="logs"):
        for o in page.get("Contents", []):
            body = c.get_object(Bucket="logs", Key=o["Key"])["Body"].read()
            text = zstandard.ZstdDecompressor().decompressobj().decompress(body)
            out += [json.loads(l)["line"] for l in text.decode().splitlines() if l]
    return out


def report(name, lines, want):
    got = [k for k in (key_of(l) for l in lines) if k]
    seen = set(got)
    missing, dup = len(want - seen), len(got) - len(seen)
    print("  %-6s expected %8d  stored %8d  missing %6d  duplicated %6d" % (
        name, len(want), len(got), missing, dup))
    return missing == 0 and dup == 0 and seen == want


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--containers", type=int, default=3)
    ap.add_argument("--pods", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    streams = setup_streams(args, rng)
    loki, es = Loki(), Elasticsearch()
    s3port = free_port()
    s3data = os.path.join(WORK, "s3rver")
    os.makedirs(s3data)
    s3 = subprocess.Popen(["node", S3RVER, "-d", s3data, "-a", "127.0.0.1", "-p", str(s3port),
                           "--configure-bucket", "logs"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    def s3_up():
        try:
            socket.create_connection(("127.0.0.1", s3port), 0.5).close()
            return True
        except OSError:
            return False
    if not wait_until(s3_up, 30, "s3rver to listen"):
        return 2
    cfgpath = config(loki, es, s3port)
    t0 = time.monotonic()
    runs = 1
    agent = start(cfgpath, runs)
    # The first writes wait for the agent's buffer: generations rotated before spillway ever ran
    # are history by design, not backlog (see docs/architecture.md, rotation behind symlinks).
    if not wait_until(lambda: os.path.exists(os.path.join(WORK, "out", "shipped.ndjson")), 30,
                      "the agent to start"):
        return 2
    try:
        for k in range(args.kills):
            for s in streams:
                s.write(rng.randrange(50, 400), rng)
                if rng.random() < 0.15:
                    s.rotate()
            time.sleep(rng.uniform(0.05, 1.2))  # a random moment: reading, committing, shipping
            agent.send_signal(signal.SIGKILL)
            agent.wait()
            runs += 1
            agent = start(cfgpath, runs)
            if (k + 1) % 10 == 0:
                print("soak: %d kills, %d records written" % (k + 1, sum(s.seq for s in streams)))
        for s in streams:
            s.write(200, rng)
        want = {(s.key, n) for s in streams for n in range(s.seq)}
        out = os.path.join(WORK, "out", "shipped.ndjson")

        def file_lines():
            try:
                with open(out) as f:
                    return [json.loads(l)["line"] for l in f if l.strip()]
            except (OSError, ValueError):
                return []
        ok = wait_until(lambda: len(file_lines()) >= len(want) and
                        len(loki.lines()) >= len(want) and len(es.docs) >= len(want), 600,
                        "every record at the file sink, Loki and Elasticsearch")
        wait_until(lambda: len(s3_lines(s3port)) >= len(want), 120, "every record at S3")
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
        dur = time.monotonic() - t0
        print("soak: %d kill -9, %d records, %.0f s" % (args.kills, len(want), dur))
        ok &= report("file", file_lines(), want)
        ok &= report("loki", [l for _, _, l in loki.lines()], want)
        with es.lock:
            ok &= report("es", [d["message"] for d in es.docs.values()], want)
        ok &= report("s3", s3_lines(s3port), want)
        print("soak: loki dropped %d resent duplicates in head blocks, answered %d queries" % (
            loki.dropped_duplicates, loki.queries))
        print("soak: %s" % ("every record exactly once at every receiver" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        if agent.poll() is None:
            agent.kill()
        loki.stop()
        es.stop()
        s3.terminate()


if __name__ == "__main__":
    sys.exit(main())
