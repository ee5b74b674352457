#!/usr/bin/python3
"""Writes a small, realistic set of container logs for the demo, then keeps appending.

Layout under DIR: containers/<id>/<id>-json.log (+ config.v2.json), pods/<ns>_<pod>_<uid>/<c>/0.log,
app/app.log (JSON lines). With --follow it appends a few lines a second until killed.
"""
import argparse, json, os, random, time
from datetime import datetime, timezone

WORDS = "GET POST /api/v1/orders /healthz user=alice user=bob status=200 status=500 took=12ms cache miss retry".split()

def ts():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"

# Lines a real service writes when something goes wrong, so that the README's search example
# (`'timeout|failed'`) has something to find.
ERRORS = ["upstream request timeout after 3000ms (GET /api/v1/orders)",
          "connect to db-1:5432 failed: connection refused, retry in 2s",
          "payment for order 81723 failed: card declined",
          "context deadline exceeded: read timeout on cache-0:6379"]

def line(rng):
    if rng.random() < 0.05:
        return rng.choice(ERRORS)
    if rng.random() < 0.4:
        return json.dumps({"level": rng.choice(["info", "warn", "error"]), "msg": " ".join(rng.choices(WORDS, k=6)), "req": rng.randrange(10**6)})
    return " ".join(rng.choices(WORDS, k=rng.randrange(4, 14)))

def setup(root, rng):
    files = []
    for name in ("web-1", "worker-1", "db-1"):
        cid = "%064x" % rng.getrandbits(256)
        d = os.path.join(root, "containers", cid)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.v2.json"), "w") as f:
            json.dump({"ID": cid, "Name": "/" + name}, f)
        files.append(("docker", os.path.join(d, cid + "-json.log")))
    for ns, pod, ctr in (("shop", "checkout-7d9f", "app"), ("kube-system", "coredns-5d78", "coredns")):
        d = os.path.join(root, "pods", "%s_%s_%s" % (ns, pod, "%08x-0000-4000-8000-%012x" % (rng.getrandbits(32), rng.getrandbits(48))), ctr)
        os.makedirs(d, exist_ok=True)
        files.append(("cri", os.path.join(d, "0.log")))
    os.makedirs(os.path.join(root, "app"), exist_ok=True)
    files.append(("json", os.path.join(root, "app", "app.log")))
    return files

def write(kind, path, rng, n):
    with open(path, "a") as f:
        for _ in range(n):
            text = line(rng)
            stream = "stderr" if rng.random() < 0.1 else "stdout"
            if kind == "docker":
                f.write(json.dumps({"log": text + "\n", "stream": stream, "time": ts()}) + "\n")
            elif kind == "cri":
                f.write("%s %s F %s\n" % (ts(), stream, text))
            else:
                f.write(json.dumps({"time": ts(), "level": "info", "msg": text}) + "\n")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--follow", action="store_true")
    a = ap.parse_args()
    rng = random.Random(42)
    files = setup(a.dir, rng)
    for kind, path in files:
        write(kind, path, rng, a.lines)
    while a.follow:
        kind, path = rng.choice(files)
        write(kind, path, rng, rng.randrange(1, 5))
        time.sleep(0.3)

if __name__ == "__main__":
    main()
