#!/usr/bin/python3
"""Loki query API benchmark: LogQL over the buffer, against `spillway search` on the same data.

Uses bench_search.py's buffer (the deterministic docker workload, default 1 GiB, ingested once
and cached in bench/.work), starts the agent on it with only its HTTP server doing work, and
times each query over the whole time range from a warm page cache (each once untimed first):
wall seconds of the HTTP answer, the agent's CPU seconds (utime + stime from /proc), MB/s of
the buffered record text, and the agent's peak RSS (VmHWM) after the queries.

  /usr/bin/python3 bench/bench_lokiapi.py [--mib 1024] [--containers 8]
"""
import argparse, json, os, re, sqlite3, subprocess, sys, time, urllib.parse, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import bench_search  # noqa: E402
from bench import generate, proc_stats  # noqa: E402

BIN = bench_search.BIN
WORK = bench_search.WORK
REGEX = bench_search.REGEX


def query(port, path, params):
    url = "http://127.0.0.1:%d%s?%s" % (port, path, urllib.parse.urlencode(params))
    with urllib.request.urlopen(url, timeout=600) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--containers", type=int, default=8)
    a = ap.parse_args()
    if not os.access(BIN, os.X_OK):
        sys.exit("build first: %s is missing" % BIN)
    os.makedirs(WORK, exist_ok=True)
    src, _ = generate("search-%d" % a.mib, a.mib, a.containers)
    data_dir = os.path.join(WORK, "search-%d-data" % a.mib)
    if not os.path.exists(os.path.join(data_dir, "ready")):
        print("ingesting ...", flush=True)
        bench_search.ingest(src, data_dir)
        open(os.path.join(data_dir, "ready"), "w").close()
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "spillway.db"), uri=True)
    text, nrec, lo, hi, nchunks = db.execute(
        "SELECT SUM(raw_bytes), SUM(records), MIN(ts_min), MAX(ts_max), COUNT(*) FROM chunks").fetchone()
    db.close()
    cfg = os.path.join(WORK, "lokiapi.yaml")
    with open(cfg, "w") as f:  # the same source (its files are read to the end already), no sinks
        f.write("data_dir: %s\nbuffer: { max_bytes: 8GiB }\nsources:\n"
                "  - { name: docker, type: docker, paths: [\"%s/*/*-json.log\"] }\nsinks: []\n"
                "server: { listen: \"127.0.0.1:0\" }\nlog: { level: info }\n" % (data_dir, src))
    env = dict(os.environ, SPILLWAY_TEST_SEARCH_TIMEOUT_MS="600000")
    log = os.path.join(WORK, "lokiapi.log")
    proc = subprocess.Popen([BIN, "run", "-c", cfg], env=env, stderr=open(log, "w"))
    try:
        t0, port = time.monotonic(), None
        while port is None:  # the port it picked, from its log; then /ready
            m = re.search(r"\(port (\d+)\)", open(log).read())
            try:
                if m:
                    urllib.request.urlopen("http://127.0.0.1:%s/ready" % m.group(1), timeout=2).read()
                    port = int(m.group(1))
            except OSError:
                pass
            if port is None and time.monotonic() - t0 > 60:
                sys.exit("the agent did not get ready: see %s" % log)
            time.sleep(0.2)
        rng = {"start": str(lo), "end": str(hi + 1)}
        step = max(60, (hi - lo) // 10**9 // 1000)
        cases = [
            ("log, rare regex (trigram skip)", "/loki/api/v1/query_range",
             dict(rng, query='{source="docker"} |~ "%s"' % REGEX, limit="1000", direction="forward")),
            ("log, caseless regex (full scan)", "/loki/api/v1/query_range",
             dict(rng, query='{source="docker"} |~ "(?i)%s"' % REGEX, limit="1000", direction="forward")),
            ("log, |= \"GET\" backward 1000", "/loki/api/v1/query_range",
             dict(rng, query='{source="docker"} |= "GET"', limit="1000", direction="backward")),
            ("sum(count_over_time [1m])", "/loki/api/v1/query_range",
             dict(rng, query='sum(count_over_time({source="docker"}[1m]))', step="%ds" % step)),
            ("sum by (stream) (bytes_over_time [5m])", "/loki/api/v1/query_range",
             dict(rng, query='sum by (stream) (bytes_over_time({source="docker"}[5m]))', step="%ds" % step)),
            ("volume: sum by (level) (| json)", "/loki/api/v1/query_range",
             dict(rng, query='sum by (level) (count_over_time({source="docker"} | json | drop __error__ [5m]))',
                  step="%ds" % step)),
        ]
        rows = []
        for name, path, params in cases:
            query(port, path, params)  # warm
            c0, w0 = proc_stats(proc.pid)[0], time.monotonic()
            body = query(port, path, params)
            w, c = time.monotonic() - w0, proc_stats(proc.pid)[0] - c0
            res = body["data"]["result"]
            n = sum(len(s.get("values", [])) for s in res)
            rows.append((name, w, c, n))
        subprocess.run([BIN, "search", "--db", os.path.join(data_dir, "spillway.db"), "--count", "-i", REGEX],
                       capture_output=True)  # warm
        r0 = os.times()
        sw0 = time.monotonic()
        subprocess.run([BIN, "search", "--db", os.path.join(data_dir, "spillway.db"), "--count", "-i", REGEX],
                       capture_output=True)
        sw = time.monotonic() - sw0
        r1 = os.times()
        swc = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
        peak = proc_stats(proc.pid)[1] / 2**20
    finally:
        proc.terminate()
        proc.wait(60)
    print("Loki query API bench: %d chunks, %d records, %.0f MB of record text, %.0f h of logs, %d CPUs" % (
        nchunks, nrec, text / 1e6, (hi - lo) / 3.6e12, os.cpu_count()))
    print("%-40s %8s %8s %10s %9s" % ("query", "wall s", "cpu s", "MB/s text", "results"))
    for name, w, c, n in rows:
        print("%-40s %8.3f %8.2f %10.0f %9d" % (name, w, c, text / 1e6 / w, n))
    print("%-40s %8.3f %8.2f %10.0f %9s" % ("spillway search --count -i (CLI)", sw, swc, text / 1e6 / sw, "-"))
    print("agent peak RSS after the queries: %.0f MiB" % peak)


if __name__ == "__main__":
    main()
