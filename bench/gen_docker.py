#!/usr/bin/python3
"""Deterministic docker json-file workload for spillway's benchmarks.

Writes N containers under OUT, as dockerd lays them out:
    OUT/<64-hex id>/<id>-json.log      {"log":"...\\n","stream":"stdout","time":"<RFC3339Nano>"}
    OUT/<64-hex id>/config.v2.json     {"ID": ..., "Name": "/bench-<i>", ...}
with a mix of plain-text and JSON application lines (~250 bytes per physical line on average),
optionally some lines longer than 16 KiB split the way dockerd splits them. The same arguments
always produce the same bytes. Prints the totals as one JSON object on stdout:
    {"dir": ..., "containers": 8, "bytes": ..., "lines": ..., "records": ..., "files": [...]}
("lines" = physical json-file lines, "records" = log records after joining split lines.)

Usage: /usr/bin/python3 bench/gen_docker.py --out /tmp/bench/containers [--containers 8]
       [--size 256MiB] [--avg-line 250] [--json-ratio 0.5] [--long-ratio 0] [--seed 1]
"""

import argparse
import json
import os
import random
import re
import sys
import time

BASE_S = 1_795_448_032  # 2026-11-23T15:33:52Z
SPLIT = 16384
BLOCK = 4 << 20  # write in 4 MiB blocks
POOL = 8192  # distinct payloads per kind

WORDS = ("GET POST PUT DELETE request response handled user session cache miss hit retry "
         "timeout connected closed upstream downstream worker queue job done failed ok started "
         "listening shutdown payload bytes latency db query commit rollback order item cart "
         "checkout auth token refresh health ready status").split()
UNICODE = ["é", "ß", "中文", "Ω", "😀", "€", "naïve"]

_ESC = {i: "\\u%04x" % i for i in range(0x20)}
_ESC.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r",
             ord("\t"): "\\t", ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
             0x2028: "\\u2028", 0x2029: "\\u2029"})


def parse_size(s):
    m = re.fullmatch(r"\s*(\d+)\s*(B|KiB|MiB|GiB)?\s*", s)
    if not m:
        raise argparse.ArgumentTypeError("expected a size like 256MiB, got %r" % s)
    mult = {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m.group(2)]
    return int(m.group(1)) * mult


def secret(rng):
    """A secret-looking token of a random kind (for redaction benchmarks)."""
    k = rng.randrange(6)
    if k == 0:
        return "user%d@example.com" % rng.randrange(10**6)
    if k == 1:
        return "Authorization: Bearer %032x" % rng.getrandbits(128)
    if k == 2:
        return "password=%012x" % rng.getrandbits(48)
    if k == 3:
        digits = [4] + [rng.randrange(10) for _ in range(14)]
        total = sum((d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 0 else d
                    for i, d in enumerate(reversed(digits)))
        return "card " + "".join(map(str, digits)) + str((10 - total % 10) % 10)
    if k == 4:
        return "client 10.%d.%d.%d" % (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    return "key AKIA%016X" % rng.getrandbits(64)


def text_payload(rng, n, secret_ratio=0.0):
    parts, size = [], 0
    if secret_ratio and rng.random() < secret_ratio:
        w = secret(rng)
        parts.append(w)
        size += len(w) + 1
    while size < n:
        w = rng.choice(WORDS) if rng.random() < 0.93 else rng.choice(UNICODE)
        if rng.random() < 0.05:
            w = '"%s"' % w
        parts.append(w)
        size += len(w) + 1
    return " ".join(parts)[:n]


def json_payload(rng, n, secret_ratio=0.0):
    obj = {"level": rng.choice(["debug", "info", "info", "info", "warn", "error"]),
           "ts": "2026-11-23T15:%02d:%02d.%06dZ" % (rng.randint(0, 59), rng.randint(0, 59),
                                                    rng.randint(0, 999999)),
           "logger": rng.choice(["http", "db", "worker", "auth"]),
           "status": rng.choice([200, 200, 200, 201, 204, 301, 404, 500]),
           "duration_ms": round(rng.random() * 500, 3),
           "msg": ""}
    head = len(json.dumps(obj, ensure_ascii=False))
    obj["msg"] = text_payload(rng, max(5, n - head), secret_ratio)
    return json.dumps(obj, ensure_ascii=False)


def make_pool(rng, avg_payload, json_ratio, secret_ratio=0.0):
    """Docker-escaped payloads (without the trailing \\n), their UTF-8 byte lengths and the
    raw text (what a CRI line carries)."""
    pool = []
    for _ in range(POOL):
        n = max(1, int(rng.expovariate(1.0 / avg_payload))) if rng.random() < 0.3 else \
            rng.randint(max(1, avg_payload // 2), avg_payload * 3 // 2)
        n = min(n, 8 * avg_payload)
        s = json_payload(rng, n, secret_ratio) if rng.random() < json_ratio else \
            text_payload(rng, n, secret_ratio)
        e = s.translate(_ESC)
        pool.append((e, len(e.encode("utf-8")), s.replace("\n", " ")))
    return pool


def fmt_time(ns):
    s, frac = divmod(ns, 1_000_000_000)
    t = time.gmtime(s)
    out = "%04d-%02d-%02dT%02d:%02d:%02d" % t[:6]
    if frac:
        out += ("." + "%09d" % frac).rstrip("0")
    return out + "Z"


class BlockWriter(object):
    """Lines collected and written in BLOCK-sized pieces; `total` counts bytes written or held."""

    def __init__(self, f):
        self.f, self.buf, self.held, self.written = f, [], 0, 0

    @property
    def total(self):
        return self.written + self.held

    def add(self, line):
        self.buf.append(line)
        self.held += len(line) if line.isascii() else len(line.encode("utf-8"))
        if self.held >= BLOCK:
            self.flush()

    def flush(self):
        if self.buf:
            self.f.write("".join(self.buf).encode("utf-8"))
            self.written += self.held
            self.buf, self.held = [], 0


def write_container(path, rng, pool, target, long_ratio):
    """Appends lines until target bytes; returns (bytes, lines, records)."""
    lines = records = 0
    ns = BASE_S * 1_000_000_000 + rng.randrange(10**9)
    cur_s = -1
    prefix = ""
    with open(path, "wb") as f:
        out = BlockWriter(f)
        while out.total < target:
            if long_ratio and rng.random() < long_ratio:
                text = ("L%d " % records) + "x" * rng.randint(SPLIT, 4 * SPLIT)
                pieces = [text[i:i + SPLIT] for i in range(0, len(text), SPLIT)]
                pieces[-1] += "\\n"
                if len(text) % SPLIT == 0:
                    pieces.append("\\n")
                    pieces[-2] = pieces[-2][:-2]
                plist = pieces
            else:
                e = pool[rng.getrandbits(13)][0]
                plist = (e + "\\n",)
            stream = "stderr" if rng.getrandbits(3) == 0 else "stdout"
            for p in plist:
                ns += rng.randint(1000, 2_000_000)
                s, frac = divmod(ns, 1_000_000_000)
                if s != cur_s:
                    cur_s = s
                    prefix = "%04d-%02d-%02dT%02d:%02d:%02d" % time.gmtime(s)[:6]
                ts = prefix + (("." + "%09d" % frac).rstrip("0") if frac else "") + "Z"
                out.add('{"log":"%s","stream":"%s","time":"%s"}\n' % (p, stream, ts))
                lines += 1
            records += 1
        out.flush()
    written = out.written
    return written, lines, records


def java_trace(rng, n):
    """A Java stack trace as the lines a JVM prints (header, frames, a cause)."""
    out = ["java.lang.IllegalStateException: request %d failed: upstream closed" % n]
    out += ["\tat com.example.shop.Service%d.handle(Service%d.java:%d)" % (i, i, rng.randint(10, 900))
            for i in range(rng.randint(6, 14))]
    out.append("Caused by: java.io.IOException: connection reset by peer")
    out += ["\tat sun.nio.ch.SocketDispatcher.read(SocketDispatcher.java:%d)" % rng.randint(10, 99),
            "\t... %d more" % rng.randint(3, 20)]
    return out


def write_cri(path, rng, pool, target, trace_ratio):
    """A CRI log (kubelet's /var/log/pods/<ns>_<pod>_<uid>/<container>/0.log) until target bytes;
    trace_ratio of the records are Java stack traces, one CRI line per trace line. Returns
    (bytes, lines, records as lines, records with traces joined)."""
    lines = records = joined = 0
    ns = BASE_S * 1_000_000_000 + rng.randrange(10**9)
    with open(path, "wb") as f:
        out = BlockWriter(f)
        while out.total < target:
            if trace_ratio and rng.random() < trace_ratio:
                texts, stream = java_trace(rng, joined), "stderr"
            else:
                texts, stream = [pool[rng.getrandbits(13)][2].lstrip()], "stderr" if rng.getrandbits(3) == 0 else "stdout"
            for t in texts:
                ns += rng.randint(1000, 2_000_000)
                s, frac = divmod(ns, 1_000_000_000)
                out.add("%04d-%02d-%02dT%02d:%02d:%02d.%09dZ %s F %s\n" % (
                    time.gmtime(s)[:6] + (frac, stream, t)))
                lines += 1
            records += len(texts)
            joined += 1
        out.flush()
    written = out.written
    return written, lines, records, joined


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="containers directory to create/fill")
    ap.add_argument("--containers", type=int, default=8)
    ap.add_argument("--size", type=parse_size, default=parse_size("256MiB"),
                    help="total bytes over all containers (default 256MiB)")
    ap.add_argument("--avg-line", type=int, default=250, help="average physical line bytes")
    ap.add_argument("--json-ratio", type=float, default=0.5)
    ap.add_argument("--long-ratio", type=float, default=0.0,
                    help="fraction of records longer than 16 KiB (split like dockerd)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cri", action="store_true",
                    help="Kubernetes CRI logs (OUT/bench_bench-<i>_<uid>/app/0.log) instead of docker's")
    ap.add_argument("--trace-ratio", type=float, default=0.0,
                    help="--cri: share of records that are Java stack traces (one line per frame)")
    ap.add_argument("--secret-ratio", type=float, default=0.0,
                    help="share of payloads that carry a secret (email, token, card, ip, ...)")
    args = ap.parse_args(argv)
    if args.containers < 1 or args.avg_line < 100:
        ap.error("--containers must be >= 1 and --avg-line >= 100")

    t0 = time.monotonic()
    rng = random.Random(args.seed)
    wrapper = len('{"log":"\\n","stream":"stdout","time":"2026-11-23T15:33:52.1234567Z"}\n')
    # Escaping and JSON framing make payloads a little longer than asked: calibrate once.
    want = args.avg_line - wrapper
    pool_seed = rng.getrandbits(64)
    pool = make_pool(random.Random(pool_seed), want, args.json_ratio, args.secret_ratio)
    mean = sum(p[1] for p in pool) / len(pool)
    pool = make_pool(random.Random(pool_seed), max(10, int(want * want / mean)), args.json_ratio,
                     args.secret_ratio)
    os.makedirs(args.out, exist_ok=True)
    total_b = total_l = total_r = 0
    files = []
    per = args.size // args.containers
    total_j = 0
    for i in range(args.containers if args.cri else 0):
        uid = "%08x-0000-4000-8000-%012x" % (i, rng.getrandbits(48))
        d = os.path.join(args.out, "bench_bench-%d_%s" % (i, uid), "app")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "0.log")
        target = per if i < args.containers - 1 else args.size - per * (args.containers - 1)
        b, l, r, j = write_cri(path, random.Random(rng.getrandbits(64)), pool, target, args.trace_ratio)
        total_b, total_l, total_r, total_j = total_b + b, total_l + l, total_r + r, total_j + j
        files.append(path)
    for i in range(0 if args.cri else args.containers):
        cid = "%064x" % rng.getrandbits(256)
        d = os.path.join(args.out, cid)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.v2.json"), "w") as f:
            json.dump({"ID": cid, "Name": "/bench-%d" % i, "Config": {"Image": "bench:1"},
                       "State": {"Running": True}}, f)
        path = os.path.join(d, cid + "-json.log")
        target = per if i < args.containers - 1 else args.size - per * (args.containers - 1)
        b, l, r = write_container(path, random.Random(rng.getrandbits(64)), pool, target,
                                  args.long_ratio)
        total_b += b
        total_l += l
        total_r += r
        files.append(path)
    json.dump({"dir": os.path.abspath(args.out), "containers": args.containers,
               "bytes": total_b, "lines": total_l, "records": total_r,
               "records_joined": total_j if args.cri else total_r,
               "seconds": round(time.monotonic() - t0, 2), "files": files}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
