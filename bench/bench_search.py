#!/usr/bin/python3
"""spillway search benchmark: scan rate over buffered logs against grep.

Generates the deterministic docker json-file workload (bench/gen_docker.py, default 1 GiB),
ingests it into a buffer (no sinks: everything stays), then times, in one run and from a warm
page cache (each command once untimed first):

  spillway search --count REGEX            the whole buffer
  spillway search --count --since T REGEX  the last 5 % of the time range
  the same two with -i                     caseless: every chunk decompressed and scanned
  zstdcat FILES | grep -E -c REGEX         the same logs as zstd archives (level 3)
  grep -E -c REGEX FILES                   the raw json-file logs

REGEX matches rarely (it is not in the generated vocabulary). It has a literal, so each
chunk's trigram filter rules it out without decompressing; the `-i` rows (caseless: no filter)
show the rate of a full decompress-and-scan. Rates are MB/s of the raw
json-file logs (1 MB = 10^6 bytes) so the four numbers compare like for like; the buffered
record text (what search actually scans, without docker's JSON wrapper) is printed too.

  /usr/bin/python3 bench/bench_search.py [--mib 1024] [--containers 8] [--threads 0] [--keep]
"""
import argparse, json, os, resource, shutil, sqlite3, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "bench", ".work")
BIN = os.environ.get("SPILLWAY_BIN", os.path.join(ROOT, "build", "spillway"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from bench import generate  # noqa: E402  (same cached workload as bench.py)

REGEX = "connection refused by [0-9]+"


def timed(cmd, shell=False, env=None):
    """Runs cmd once to warm up, then once timed: (wall s, child CPU s, stdout)."""
    subprocess.run(cmd, shell=shell, capture_output=True, env=env)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(cmd, shell=shell, capture_output=True, env=env)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if p.returncode not in (0, 1):
        sys.exit("%s failed (%d): %s" % (cmd, p.returncode, p.stderr.decode()[-500:]))
    return wall, cpu, p.stdout.decode().strip()


def ingest(src, data_dir):
    cfg = os.path.join(WORK, "search.yaml")
    with open(cfg, "w") as f:
        f.write("data_dir: %s\nbuffer: { max_bytes: 8GiB }\nsources:\n"
                "  - { name: docker, type: docker, paths: [\"%s/*/*-json.log\"] }\nsinks: []\n"
                "server: { listen: \"\" }\nlog: { level: warn }\n" % (data_dir, src))
    proc = subprocess.Popen([BIN, "run", "-c", cfg], stderr=subprocess.PIPE)
    db = os.path.join(data_dir, "spillway.db")
    want = None
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1800:
        time.sleep(0.5)
        try:
            c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
            n = c.execute("SELECT COALESCE(SUM(records),0) FROM chunks").fetchone()[0]
            c.close()
        except sqlite3.Error:
            continue
        if want is None:
            want = json.load(open(src + ".json"))["records"]
        if n >= want:
            break
    proc.terminate()
    proc.wait(30)
    return cfg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--containers", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="search threads (0: one per CPU)")
    ap.add_argument("--keep", action="store_true", help="keep bench/.work")
    a = ap.parse_args()
    if not os.access(BIN, os.X_OK):
        sys.exit("build first: %s is missing" % BIN)
    os.makedirs(WORK, exist_ok=True)
    src, meta = generate("search-%d" % a.mib, a.mib, a.containers)
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs if f.endswith("-json.log"))
    raw = sum(os.path.getsize(f) for f in files)
    data_dir = os.path.join(WORK, "search-%d-data" % a.mib)
    if not os.path.exists(os.path.join(data_dir, "ready")):
        shutil.rmtree(data_dir, ignore_errors=True)
        print("ingesting %.0f MB ..." % (raw / 1e6), flush=True)
        ingest(src, data_dir)
        open(os.path.join(data_dir, "ready"), "w").close()
    cfg = os.path.join(WORK, "search.yaml")
    zdir = os.path.join(WORK, "search-%d-zst" % a.mib)
    if not os.path.isdir(zdir):
        os.makedirs(zdir + ".tmp", exist_ok=True)
        for i, f in enumerate(files):
            subprocess.run(["zstd", "-q", "-3", "-f", f, "-o", os.path.join(zdir + ".tmp", "%d.log.zst" % i)], check=True)
        os.rename(zdir + ".tmp", zdir)
    zfiles = sorted(os.path.join(zdir, f) for f in os.listdir(zdir))

    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "spillway.db"), uri=True)
    text, stored, lo, hi, nchunks = db.execute(
        "SELECT SUM(raw_bytes), SUM(stored_bytes), MIN(ts_min), MAX(ts_max), COUNT(*) FROM chunks").fetchone()
    db.close()
    since_ns = hi - (hi - lo) // 20
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since_ns // 10**9)) + ".%09dZ" % (since_ns % 10**9)
    env = dict(os.environ, LC_ALL="C")
    thr = ["--threads", str(a.threads)] if a.threads else []

    rows = []
    w, c, out = timed([BIN, "search", "-c", cfg, "--count"] + thr + [REGEX])
    rows.append(("spillway search (all)", w, c, out))
    w, c, out = timed([BIN, "search", "-c", cfg, "--count", "--since", since] + thr + [REGEX])
    rows.append(("spillway search --since (last 5%)", w, c, out))
    # -i: caseless, so the trigram filter cannot rule chunks out: every chunk is decompressed
    # and scanned (the rate of the scan itself)
    w, c, out = timed([BIN, "search", "-c", cfg, "--count", "-i"] + thr + [REGEX])
    rows.append(("spillway search -i (full scan)", w, c, out))
    w, c, out = timed([BIN, "search", "-c", cfg, "--count", "-i", "--since", since] + thr + [REGEX])
    rows.append(("spillway search -i --since (last 5%)", w, c, out))
    w, c, out = timed("zstdcat %s | grep -E -c '%s'" % (" ".join(zfiles), REGEX), shell=True, env=env)
    rows.append(("zstdcat | grep -E -c", w, c, out))
    w, c, out = timed(["grep", "-E", "-c", "-h", REGEX] + files, env=env)
    rows.append(("grep -E -c (raw files)", w, c, out.replace("\n", "+")))

    print("spillway search bench: %d containers, %.0f MB json-file logs (%.0f MB record text, "
          "%.0f MB stored in %d chunks), %d CPUs, regex %r" % (
              a.containers, raw / 1e6, text / 1e6, stored / 1e6, nchunks, os.cpu_count(), REGEX))
    print("%-36s %8s %8s %10s %12s  %s" % ("command", "wall s", "cpu s", "MB/s raw", "MB/s text", "matches"))
    for name, w, c, out in rows:
        print("%-36s %8.3f %8.2f %10.0f %12s  %s" % (name, w, c, raw / 1e6 / w,
                                                    "%.0f" % (text / 1e6 / w) if name.startswith("spillway") else "-", out))
    s_all, s_since, f_all, f_since, zgrep = rows[0][1], rows[1][1], rows[2][1], rows[3][1], rows[4][1]
    print("search vs zstdcat|grep: %.1fx faster (full scan: %.1fx); --since 5%% vs whole: %.1fx faster "
          "(full scan: %.1fx)" % (zgrep / s_all, zgrep / f_all, s_all / s_since, f_all / f_since))
    if not a.keep:
        pass  # the workload and buffer are cached in bench/.work for the next run (make clean removes them)


if __name__ == "__main__":
    main()
