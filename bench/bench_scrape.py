#!/usr/bin/python3
"""What scraping /metrics every second costs the agent.

Two measurements on the bench's docker workload (bench/gen_docker.py, file sink):
  1. full ingest: the whole workload from a cold start, without and with a scraper at 1 s
     (runs alternate, --rounds times each); CPU seconds of the agent per GB of input, and the
     CPU of the libuv pool threads, which here run nothing but the metrics snapshots;
  2. per scrape: the agent idle after the ingest with its buffer and files open, its CPU over
     --idle-seconds without scrapes and then with one scrape a second: CPU milliseconds per
     scrape (the loop's rendering plus the snapshot job on the pool), set against the agent's
     CPU per second at full ingest.

  /usr/bin/python3 bench/bench_scrape.py [--mib 512] [--rounds 2] [--idle-seconds 30]
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (generate, proc_stats, shipped, WORK, BIN)


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        return len(r.read())


def start(name, wl):
    state = os.path.join(bench.WORK, name + "-state")
    out = os.path.join(bench.WORK, name + "-out.ndjson")
    shutil.rmtree(state, ignore_errors=True)
    if os.path.exists(out):
        os.unlink(out)
    cfg = os.path.join(bench.WORK, name + ".yaml")
    with open(cfg, "w") as f:
        f.write("data_dir: %s\nhostname: bench\n"
                "buffer: { max_bytes: 4GiB, chunk: { max_records: 5000, max_bytes: 1MiB, max_wait: 1s } }\n"
                "sources:\n  - { name: docker, type: docker, paths: [\"%s/*/*-json.log\"] }\n"
                "sinks:\n  - { name: out, type: file, path: %s }\n"
                "log: { level: info }\nserver: { listen: \"127.0.0.1:0\" }\n" % (state, wl, out))
    err = open(os.path.join(bench.WORK, name + ".stderr"), "w+b")
    p = subprocess.Popen([bench.BIN, "run", "-c", cfg], stderr=err)
    deadline = time.monotonic() + 10
    port = None
    while port is None and time.monotonic() < deadline:
        err.seek(0)
        m = re.search(rb"\(port (\d+)\)", err.read())
        port = int(m.group(1)) if m else None
        time.sleep(0.01)  # polling for the log line, bounded by the deadline
    if port is None:
        p.kill()
        raise SystemExit("agent did not start")
    return p, port, os.path.join(state, "spillway.db")


def ingest(name, wl, meta, scraped):
    p, port, db = start(name, wl)
    stop = threading.Event()
    n = [0]

    def scraper():
        while not stop.wait(1.0):
            scrape(port)
            n[0] += 1
    t = threading.Thread(target=scraper, daemon=True)
    t0 = time.monotonic()
    if scraped:
        t.start()
    while bench.shipped(db) < meta["records"]:
        if time.monotonic() - t0 > 900:
            raise SystemExit("ingest did not finish")
        time.sleep(0.05)  # progress probe interval
    elapsed = time.monotonic() - t0
    cpu, _ = bench.proc_stats(p.pid)
    threads = thread_cpu(p.pid)
    stop.set()
    print("  CPU s by thread: %s (pool: libuv's threads, which here run only the buffer opening "
          "at start and the metrics snapshots)" % ", ".join("%s %.2f" % kv for kv in sorted(threads.items())),
          flush=True)
    return p, port, cpu, elapsed, n[0]


def thread_cpu(pid):
    """CPU seconds per kind of thread: "loop" (the main thread), the writer and file sink
    threads (named sw-*), and "pool": every other thread still named like the process, i.e.
    libuv's thread pool."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kind = "loop" if int(tid) == pid else comm if comm.startswith("sw-") else "pool"
        out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / bench.CLK
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--containers", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--idle-seconds", type=int, default=30)
    a = ap.parse_args()
    os.makedirs(bench.WORK, exist_ok=True)
    wl, meta = bench.generate("wl-%dc-%dm" % (a.containers, a.mib), a.mib, a.containers)
    gb = meta["bytes"] / 1e9
    runs = {False: [], True: []}
    for r in range(a.rounds):
        # Alternate which goes first: the second run of a pair may inherit the first's
        # writeback and page cache.
        for scraped in ((False, True) if r % 2 == 0 else (True, False)):
            p, port, cpu, elapsed, n = ingest("scrape-%d" % int(scraped), wl, meta, scraped)
            runs[scraped].append((cpu, elapsed, n))
            print("ingest scraped=%s: %.2f CPU s in %.2f s (%.2f CPU s/GB, %d scrapes)"
                  % (scraped, cpu, elapsed, cpu / gb, n), flush=True)
            if r == a.rounds - 1 and scraped:
                idle = idle_cost(p, port, a.idle_seconds) if a.idle_seconds else 0.0
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)
    plain = min(c for c, _, _ in runs[False])
    with_s = min(c for c, _, _ in runs[True])
    full_rate = sum(c / e for c, e, _ in runs[False]) / len(runs[False])  # CPU s per s at full ingest
    print("full ingest: best %.2f CPU s/GB without scrapes, %.2f with (%+.2f %%)"
          % (plain / gb, with_s / gb, (with_s - plain) / plain * 100))
    print("scraping once a second (idle agent, %d files): %.2f ms CPU per second, %.3f %% of the "
          "agent's %.2f CPU s/s at full ingest" % (len(meta["files"]), idle * 1e3,
                                                    idle / full_rate * 100, full_rate))


def idle_cost(p, port, seconds):
    """CPU seconds that one scrape a second costs per second: the idle agent for `seconds`
    without scrapes, then as long with one scrape a second (each one renders; the snapshot job
    runs every second while scraped), then with ten a second (rendering alone, per scrape)."""
    time.sleep(3)  # let the last commits and GC settle (bounded, a measurement pause)
    c0, _ = bench.proc_stats(p.pid)
    time.sleep(seconds)
    c1, _ = bench.proc_stats(p.pid)
    base = c1 - c0
    size = 0
    for _ in range(seconds):
        size = scrape(port)
        time.sleep(1.0)
    c2, _ = bench.proc_stats(p.pid)
    for _ in range(seconds * 10):
        scrape(port)
        time.sleep(0.1)
    c3, _ = bench.proc_stats(p.pid)
    print("idle: %.2f CPU s in %d s without scrapes; %.2f with 1 scrape/s (%d bytes each); "
          "%.2f with 10 scrapes/s" % (base, seconds, c2 - c1, size, c3 - c2))
    print("rendering alone: %.2f ms per scrape" % (max(0.0, (c3 - c2) - (c2 - c1)) / (seconds * 9) * 1e3))
    return max(0.0, (c2 - c1) - base) / seconds


if __name__ == "__main__":
    main()
