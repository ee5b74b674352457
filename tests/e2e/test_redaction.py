"""Secrets never reach the buffer, its WAL, a sink or the agent's own log.

1 000 distinct secrets of every built-in kind are planted in docker, CRI and JSON-file payloads
(and JSON keys to mask); after ingest every byte of the database file, its WAL, the decompressed
chunks, the sink output and the agent's stderr is scanned: none may contain a planted secret,
and the text around each secret must arrive unchanged."""

import base64
import json
import os
import random
import re
import sqlite3
import string
import subprocess

import zstandard

from conftest import wait_for

N = 1000
ALL = ["email", "bearer_token", "jwt", "aws_access_key", "aws_secret_key", "credit_card",
       "password_kv", "url_credentials", "private_key", "ipv4", "ipv6", "basic_auth", "token_kv",
       "cli_credentials"]


def luhn_complete(digits):
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d)
        if i % 2 == 0:
            n *= 2
            n -= 9 if n > 9 else 0
        total += n
    return digits + str((10 - total % 10) % 10)


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_secrets(rng, i):
    """(kind, text to plant, the secret part that must vanish) for record i."""
    alnum = string.ascii_letters + string.digits
    r = lambda k, alphabet=alnum: "".join(rng.choice(alphabet) for _ in range(k))
    tok = r(40)
    jwt = "eyJ%s.%s.%s" % (b64url(b'{"alg":"HS256","typ":"JWT"}')[3:],
                           b64url(json.dumps({"sub": "u%d" % i, "n": r(12)}).encode()),
                           b64url(os.urandom(32)))
    akid = "AKIA" + r(16, string.ascii_uppercase + string.digits)
    skey = r(40, string.ascii_letters + string.digits + "/+")
    card = luhn_complete("4" + "".join(rng.choice(string.digits) for _ in range(14)))
    card_fmt = "-".join(card[k:k + 4] for k in range(0, 16, 4))
    pw = r(16)
    upw = r(14)
    pem_body = [base64.b64encode(os.urandom(48)).decode() for _ in range(3)]
    ip4 = "10.%d.%d.%d" % (rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))
    ip6 = "2001:db8:%x:%x::%x" % (rng.randrange(65536), rng.randrange(65536), rng.randrange(1, 65536))
    email = "user%d.%s@mail%d.example.com" % (i, r(6).lower(), i)
    basic = base64.b64encode(("ci%d:%s" % (i, r(12))).encode()).decode()
    api_key, cli_pw, enc_pw, env_pw, camel_pw = r(24), r(12), r(14), r(15), r(13)
    email2 = "ops%d@team.example.org" % i
    return [
        ("email", "contact %s now" % email, email),
        ("bearer_token", "Authorization: Bearer %s" % tok, tok),
        ("jwt", "session=%s ok" % jwt, jwt),
        ("aws_access_key", "key id %s used" % akid, akid),
        ("aws_secret_key", "aws_secret_access_key=%s" % skey, skey),
        ("credit_card", "paid with %s today" % card_fmt, card_fmt),
        ("password_kv", "login password=%s accepted" % pw, pw),
        ("url_credentials", "fetch https://bob%d:%s@db%d.example.com/x" % (i, upw, i), upw),
        ("private_key", "-----BEGIN RSA PRIVATE KEY-----\n%s\n-----END RSA PRIVATE KEY-----"
         % "\n".join(pem_body), pem_body[1]),
        ("ipv4", "client %s connected" % ip4, ip4),
        ("ipv6", "client %s connected" % ip6, ip6),
        ("basic_auth", "> Authorization: Basic %s" % basic, basic),
        ("token_kv", "GET /cb?api_key=%s&v=1" % api_key, api_key),
        ("cli_credentials", "exec curl -u deploy%d:%s https://h/x" % (i, cli_pw), cli_pw),
        ("password_kv", "body=user%%3Dbob%%26password%%3D%s%%26x%%3D1" % enc_pw, enc_pw),
        # An environment variable; a camelCase key of a JSON body (escaped again in the JSON
        # file's message: JSON inside a JSON string); an address with a pod name glued on.
        ("password_kv", "exec env PGPASSWORD=%s psql" % env_pw, env_pw),
        ("password_kv", 'request {"user": "u%d", "newPassword": "%s"}' % (i, camel_pw), camel_pw),
        ("email", "notify %s-pod%d" % (email2, i), email2),
    ]


def test_planted_secrets_never_stored_or_shipped(agent, workdir):
    rng = random.Random(7)
    cid = "cd" * 32
    ddir = workdir / "containers" / cid
    ddir.mkdir(parents=True)
    pdir = workdir / "pods" / "ns_pod_0000-1111" / "app"
    pdir.mkdir(parents=True)
    jdir = workdir / "json"
    jdir.mkdir()
    secrets, expect = [], []  # expect: (prefix, suffix) that must survive around each secret
    with open(ddir / ("%s-json.log" % cid), "w") as dk, open(pdir / "0.log", "w") as cri, \
            open(jdir / "app.log", "w") as js:
        for i in range(N):
            for kind, text, secret in make_secrets(rng, i):
                secrets.append(secret)
                head, tail = "<%s-%d-d> " % (kind, i), " </%s-%d-d>" % (kind, i)
                # docker: one log entry per record (a PEM block inside one entry).
                dk.write(json.dumps({"log": head + text + tail + "\n", "stream": "stdout",
                                     "time": "2026-11-23T15:33:52.000000001Z"}) + "\n")
                expect.append((head, tail))
                if "\n" not in text:
                    h2, t2 = "<%s-%d-c> " % (kind, i), " </%s-%d-c>" % (kind, i)
                    cri.write("2026-11-23T15:33:52.000000001Z stdout F %s%s%s\n" % (h2, text, t2))
                    expect.append((h2, t2))
                # JSON file: the secret in a message and under keys that must be masked.
                msg = {"time": "2026-11-23T15:33:52Z", "msg": "<j> %s </j>" % text.replace("\n", " "),
                       "password": "pw-%s-%d" % (kind, i), "nested": {"Api_Key": "k-%d-%s" % (i, kind)}}
                secrets += [msg["password"], msg["nested"]["Api_Key"]]
                js.write(json.dumps(msg) + "\n")
    total = sum(1 for _ in open(ddir / ("%s-json.log" % cid))) + \
        sum(1 for _ in open(pdir / "0.log")) + sum(1 for _ in open(jdir / "app.log"))
    agent.write_config(
        [{"name": "docker", "type": "docker", "paths": ["%s/*/*-json.log" % (workdir / "containers")]},
         {"name": "pods", "type": "cri", "paths": ["%s/*/*/*.log" % (workdir / "pods")]},
         {"name": "app", "type": "file", "format": "json", "paths": ["%s/*.log" % jdir]}],
        extra={"redact": {"builtin": ALL,
                          "fields": {"keys": ["password", "api_key"], "action": "mask"}}})
    agent.start()
    agent.wait_count(total, timeout=120)
    agent.stop()
    recs = agent.read_output()
    assert len(recs) == total
    out = agent.out_path.read_bytes()
    # Every byte the agent wrote anywhere, plus the decompressed chunks still buffered.
    blobs = {"sink": out, "stderr": b"".join(p.read_bytes() for p in workdir.glob("*.stderr"))}
    for name in os.listdir(agent.data_dir):
        blobs[name] = (agent.data_dir / name).read_bytes()
    db = sqlite3.connect(str(agent.data_dir / "spillway.db"))
    dctx = zstandard.ZstdDecompressor()
    blobs["chunks"] = b"".join(dctx.decompress(row[0]) for row in db.execute("SELECT data FROM chunks"))
    db.close()
    # grep -F matches all secrets in one pass (Aho-Corasick style), byte-wise (-a).
    secfile = workdir / "secrets.txt"
    secfile.write_text("".join(s + "\n" for s in secrets))
    for where, data in blobs.items():
        blob = workdir / ("scan-%s.bin" % where.replace("/", "_"))
        blob.write_bytes(data)
        p = subprocess.run(["grep", "-a", "-o", "-F", "-f", str(secfile), str(blob)],
                           capture_output=True)
        assert p.returncode == 1, "planted secrets found in %s, e.g. %r" % (where, p.stdout[:300])
    # The text around each secret arrives unchanged.
    lines = [r["line"] for r in recs]
    joined = "\n".join(lines)
    heads = set(re.findall(r"<[a-z0-9_]+-\d+-[dc]> ", joined))
    tails = set(re.findall(r" </[a-z0-9_]+-\d+-[dc]>", joined))
    missing = [(h, t) for h, t in expect if h not in heads or t not in tails]
    assert not missing, "context lost around %d secrets, e.g. %r" % (len(missing), missing[:3])
    js_lines = [json.loads(l) for l in lines if l.startswith("{")]
    assert len(js_lines) == N * len(make_secrets(random.Random(0), 0))
    assert all(j["password"] != "" and "pw-" not in j["password"] for j in js_lines)
    st = agent.status()
    counts = st.get("redactions", {})
    for kind in ALL:
        assert counts.get(kind, 0) >= N, (kind, counts)


def test_redact_command_and_check(spillway_bin, workdir):
    """`spillway redact` tries the configured rules on stdin; `check` reports a bad pattern with
    the PCRE2 message and its offset."""
    cfg = workdir / "r.yaml"
    cfg.write_text(
        "data_dir: %s\nsources:\n  - {name: a, type: file, paths: [\"%s/*.log\"]}\n"
        "redact:\n  builtin: [email, credit_card, password_kv]\n"
        "  rules: [{name: ssn, pattern: '\\b(\\d{3})-\\d{2}-\\d{4}\\b', replace: '$1-**-****'}]\n"
        "  fields: {keys: [token], action: mask}\n" % (workdir / "d", workdir))
    inp = (b"mail bob@example.com ssn 123-45-6789 order 1234567812345678\n"
           b'{"token":"abc","n":1}\n'
           b"password_policy=strict password=hunter2 \xff\x00 tail")
    p = subprocess.run([str(spillway_bin), "redact", "-c", str(cfg)], input=inp,
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout == (b"mail [REDACTED:email] ssn 123-**-**** order 1234567812345678\n"
                        b'{"token":"***","n":1}\n'
                        b"password_policy=strict password=[REDACTED:password_kv] \xff\x00 tail")
    assert b"email: 1" in p.stderr and b"ssn: 1" in p.stderr
    bad = workdir / "bad.yaml"
    bad.write_text(cfg.read_text().replace("'\\b(\\d{3})-", "'\\b((\\d{3})-"))
    p = subprocess.run([str(spillway_bin), "check", "-c", str(bad)], capture_output=True, timeout=30)
    assert p.returncode == 1
    err = p.stderr.decode()
    assert "%s: redact.rules[0].pattern: bad pattern at offset" % bad in err, err
    assert "missing closing parenthesis" in err, err


def test_redact_command_new_packs(spillway_bin, workdir):
    """basic_auth, token_kv, cli_credentials and the URL-encoded / flag forms of password_kv mask
    what users paste into logs (curl command lines, Authorization headers, encoded form bodies);
    the near misses next to them come out byte for byte."""
    cfg = workdir / "r.yaml"
    cfg.write_text(
        "data_dir: %s\nsources:\n  - {name: a, type: file, paths: [\"%s/*.log\"]}\n"
        "redact:\n  builtin: [password_kv, basic_auth, token_kv, cli_credentials]\n"
        % (workdir / "d", workdir))
    cases = [
        (b"curl -u ci:s3cr3t https://h/x", b"curl -u ci:[REDACTED:cli_credentials] https://h/x"),
        (b"wget --user=bob:pw1 --password=pw2 x",
         b"wget --user=bob:[REDACTED:cli_credentials] --password=[REDACTED:password_kv] x"),
        (b"> Authorization: Basic Ym9iOmh1bnRlcjI=", b"> Authorization: Basic [REDACTED:basic_auth]"),
        (b"body=user%3Dbob%26password%3Dhunter2%26x%3D1",
         b"body=user%3Dbob%26password%3D[REDACTED:password_kv]%26x%3D1"),
        (b"token=t1 access_token: \"t2\" api_key=k1 apikey='k2' secret_key=k3",
         b"token=[REDACTED:token_kv] access_token: \"[REDACTED:token_kv]\" api_key=[REDACTED:token_kv] "
         b"apikey='[REDACTED:token_kv]' secret_key=[REDACTED:token_kv]"),
        (b"client_secret=cs1", b"client_secret=[REDACTED:password_kv]"),
    ]
    near = [b"tokenizer=bert token_count=5 max_tokens=512 keyboard=us monkey=3 key=value",
            b"Basic auth failed; basic setup done",
            b"sort -u file; ulimit -u 100; git push -u origin main; docker run -u 1000:1000 img"]
    inp = b"\n".join([c[0] for c in cases] + near) + b"\n"
    want = b"\n".join([c[1] for c in cases] + near) + b"\n"
    p = subprocess.run([str(spillway_bin), "redact", "-c", str(cfg)], input=inp,
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout == want
    for secret in (b"s3cr3t", b"pw1", b"pw2", b"Ym9iOmh1bnRlcjI", b"hunter2", b"t1", b"t2", b"k1",
                   b"k2", b"k3", b"cs1"):
        assert secret not in p.stdout


def test_labels_and_self_log_redacted(agent, workdir):
    """An e-mail in a file name and in a CRI pod name never leaves the agent: not in the labels
    the sink writes, not in `spillway search` or `spillway status`, not in the agent's own log
    (which quotes followed paths), and not in /metrics. Identity and offsets keep using the real
    path: every record arrives exactly once, also across a restart."""
    mail_file, mail_pod = "alice.smith@example.com", "bob.jones@example.org"
    adir = workdir / "app"
    adir.mkdir()
    app_log = adir / ("export-%s.log" % mail_file)
    pdir = workdir / "pods" / ("shop_%s_0a1b-22" % mail_pod) / "ctr"
    pdir.mkdir(parents=True)
    cri_log = pdir / "0.log"
    n = 200
    with open(app_log, "w") as f:
        f.writelines("app line %d\n" % i for i in range(n))
    with open(cri_log, "w") as f:
        f.writelines("2026-11-23T15:33:52.%09dZ stdout F pod line %d\n" % (i, i) for i in range(n))
    agent.write_config(
        [{"name": "app", "type": "file", "paths": ["%s/*.log" % adir],
          "labels": {"owner": "carol@example.net"}},
         {"name": "pods", "type": "cri", "paths": ["%s/*/*/*.log" % (workdir / "pods")]}],
        buffer={"max_bytes": "1GiB", "keep_shipped": {"max_age": "1h"},
                "chunk": {"max_records": 5000, "max_bytes": "1MiB", "max_wait": "200ms"}},
        extra={"redact": {"builtin": ["email"]}})
    agent.start()
    agent.wait_count(2 * n, timeout=60)
    port = agent.http_port()
    import urllib.request
    metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read()
    agent.stop()
    assert b'spillway_file_records_total{source="app",path="' in metrics
    # A restart resumes from the stored (real-path) offsets: nothing is read twice.
    with open(app_log, "a") as f:
        f.write("app line %d\n" % n)
    agent.start()
    agent.wait_count(2 * n + 1, timeout=60)
    agent.stop()
    recs = agent.read_output()
    lines = sorted(r["line"] for r in recs)
    assert lines == sorted(["app line %d" % i for i in range(n + 1)] +
                           ["pod line %d" % i for i in range(n)])
    app = [r for r in recs if r["labels"]["source"] == "app"]
    pod = [r for r in recs if r["labels"]["source"] == "pods"]
    assert app[0]["labels"]["filename"] == str(adir / "[REDACTED:email]")  # the local part takes "export-"
    assert app[0]["labels"]["owner"] == "[REDACTED:email]"
    assert pod[0]["labels"]["pod"] == "[REDACTED:email]"
    assert pod[0]["labels"]["namespace"] == "shop" and pod[0]["labels"]["container"] == "ctr"
    p = agent.cli("search", "-c", agent.config_path, "--output", "json", "line")
    assert p.returncode == 0, p.stderr
    found = [json.loads(l) for l in p.stdout.decode().splitlines() if l]
    assert len(found) == 2 * n + 1
    status = agent.status()
    assert len(status["files"]) == 2
    assert all("[REDACTED:email]" in f["path"] for f in status["files"]), status["files"]
    stderr = b"".join(pth.read_bytes() for pth in workdir.glob("*.stderr"))
    assert b"following " in stderr and b"[REDACTED:email]" in stderr
    blobs = {"sink": agent.read_raw(), "search": p.stdout, "status": json.dumps(status).encode(),
             "stderr": stderr, "metrics": metrics}
    for where, data in blobs.items():
        for mail in (mail_file, mail_pod, "carol@example.net"):
            assert mail.encode() not in data, "%s leaked into %s" % (mail, where)


def test_retention_log_paths_redacted(agent, workdir):
    """The retention pass logs every action with the file's path ("action=rotate path=P to=T");
    a file name holding an e-mail is shown redacted there too."""
    mail = "dana.white@example.com"
    logs = workdir / "logs"
    logs.mkdir()
    live = logs / ("%s.log" % mail)
    live.write_bytes(b"x" * 4096 + b"\n")
    other = workdir / "other"
    other.mkdir()
    agent.write_config(
        [{"name": "other", "type": "file", "paths": [str(other / "*.log")]}],
        extra={"redact": {"builtin": ["email"]},
               "retention": [{"name": "app", "paths": [str(logs / "*.log")],
                              "rotate": {"max_size": "1KiB", "method": "rename"}}],
               "disk_pressure": {"path": str(workdir), "interval": "200ms", "soft_percent": 98,
                                 "hard_percent": 99}})
    agent.start()
    agent.wait_for(lambda: "action=rotate" in agent.stderr_tail(200000), 20, "a rotation to be logged")
    agent.stop()
    assert list(logs.glob("*.log.1*")), list(logs.iterdir())  # NAME.1, or NAME.1.zst once compressed
    err = agent.stderr_path.read_text()
    rot = [l for l in err.splitlines() if "action=rotate" in l]
    assert rot and "path=%s/[REDACTED:email]" % logs in rot[0], rot
    assert mail not in err
