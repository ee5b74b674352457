"""The one capability the deployments grant, CAP_DAC_READ_SEARCH, is both needed and enough to
read other users' logs, under the same restrictions as the deployments (no_new_privs, every
other capability gone from the bounding set):

* systemd unit: user `spillway` (non-root) with AmbientCapabilities=CAP_DAC_READ_SEARCH;
* Kubernetes DaemonSet: user 0 with capabilities drop ALL, add DAC_READ_SEARCH.

Each is run with setpriv against a log only its owner (another user) may read, and compared with
the same identity without the capability, which must read nothing."""

import os
import signal
import subprocess
import time

import pytest

from conftest import need_root, run

OWNER = 4242  # the log's owner: neither the agent's user nor root
AGENT_UID = 10001
LINES = 200


def make_fixture(scratch, agent_uid):
    logs = scratch / "logs"
    logs.mkdir()
    log = logs / "app.log"
    log.write_text("".join("secret line %d of another user\n" % i for i in range(LINES)))
    for p, mode in ((log, 0o600), (logs, 0o700)):
        os.chown(p, OWNER, OWNER)
        os.chmod(p, mode)
    for d in ("state", "out"):
        (scratch / d).mkdir()
        os.chown(scratch / d, agent_uid, agent_uid)
    cfg = scratch / "spillway.yaml"
    cfg.write_text(
        "data_dir: %s/state\n"
        "sources: [ { name: app, type: file, paths: [\"%s/*.log\"] } ]\n"
        "sinks: [ { name: out, type: file, path: %s/out/shipped.ndjson } ]\n"
        "buffer: { chunk: { max_wait: 100ms } }\n"
        "server: { listen: \"0\" }\n" % (scratch, logs, scratch))
    os.chmod(cfg, 0o644)
    return cfg, scratch / "out" / "shipped.ndjson"


def shipped(path):
    try:
        return path.read_text().count("\n")
    except (FileNotFoundError, PermissionError):
        return 0


def run_agent(binary, cfg, out, setpriv_args, expect, wait):
    err = open(str(cfg) + ".stderr", "wb")
    p = subprocess.Popen(["setpriv"] + setpriv_args + ["--", str(binary), "run", "-c", str(cfg)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and shipped(out) < expect:
            assert p.poll() is None, "agent exited %s: %s" % (
                p.returncode, open(str(cfg) + ".stderr").read()[-2000:])
            time.sleep(0.1)  # polling interval of a deadline-bounded wait
        n = shipped(out)
        caps = open("/proc/%d/status" % p.pid).read()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0
        return n, caps
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        err.close()


def cap_line(status, name):
    return int([l for l in status.splitlines() if l.startswith(name + ":")][0].split()[1], 16)


CAP_DAC_READ_SEARCH = 1 << 2


@pytest.fixture(autouse=True)
def root_and_setpriv():
    need_root("setpriv")
    if run(["sh", "-c", "command -v setpriv"]).returncode != 0:
        pytest.fail("setpriv (util-linux) not found")


@pytest.mark.parametrize("granted", [True, False], ids=["ambient-cap", "no-cap"])
def test_systemd_model_non_root_with_ambient_dac_read_search(spillway_bin, scratch, granted):
    cfg, out = make_fixture(scratch, AGENT_UID)
    caps = "+dac_read_search" if granted else "-all"
    args = ["--reuid=%d" % AGENT_UID, "--regid=%d" % AGENT_UID, "--clear-groups",
            "--inh-caps=" + ("-all," + caps if granted else caps),
            "--bounding-set=-all" + ("," + caps if granted else "")] + \
        (["--ambient-caps=" + caps] if granted else []) + ["--no-new-privs"]
    n, status = run_agent(spillway_bin, cfg, out, args, LINES, 15 if granted else 3)
    if granted:
        assert cap_line(status, "CapEff") == CAP_DAC_READ_SEARCH, status
        assert n == LINES
    else:
        assert cap_line(status, "CapEff") == 0
        assert n == 0, "read another user's 0600 log without the capability"


@pytest.mark.parametrize("granted", [True, False], ids=["dac_read_search", "no-cap"])
def test_daemonset_model_root_with_only_dac_read_search(spillway_bin, scratch, granted):
    cfg, out = make_fixture(scratch, 0)
    caps = "-all,+dac_read_search" if granted else "-all"
    args = ["--reuid=0", "--regid=0", "--clear-groups", "--bounding-set=" + caps,
            "--inh-caps=" + caps, "--no-new-privs"]
    n, status = run_agent(spillway_bin, cfg, out, args, LINES, 15 if granted else 3)
    assert cap_line(status, "CapBnd") == (CAP_DAC_READ_SEARCH if granted else 0), status
    assert cap_line(status, "CapEff") == (CAP_DAC_READ_SEARCH if granted else 0)
    if granted:
        assert n == LINES
    else:
        assert n == 0, "root without capabilities read another user's 0600 log"
