"""The systemd unit, as the Debian package installs it: `systemd-analyze verify` and the offline
`systemd-analyze security` score, its settings, and its agreement with the packaged config
(every path the agent writes is writable under ProtectSystem=strict)."""

import os
import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run

UNIT = "lib/systemd/system/spillway.service"


def settings(text):
    """{(section, key): [values]} of a unit file (empty assignments reset, as systemd does)."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        k, _, v = line.partition("=")
        vals = out.setdefault((section, k.strip()), [])
        if v.strip():
            vals.append(v.strip())
        else:
            vals.clear()
    return out


@pytest.fixture(scope="module")
def unit(deb_root):
    p = deb_root / UNIT
    assert p.read_text() == (REPO / "packaging/systemd/spillway.service").read_text()
    return p


def test_systemd_analyze_verify(unit, deb_root, tmp_path):
    # verify checks that the binaries exist on this machine: point the unit at the packaged
    # binary (the only edit), and man: at the packaged man page.
    text = unit.read_text()
    assert text.count("/usr/bin/spillway ") >= 2
    copy = tmp_path / "spillway.service"
    copy.write_text(text.replace("/usr/bin/spillway ", str(deb_root / "usr/bin/spillway") + " "))
    env = dict(os.environ, MANPATH=str(deb_root / "usr/share/man"))
    r = run(["systemd-analyze", "verify", str(copy)], env=env, cwd=str(tmp_path))
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 0 and not out, "systemd-analyze verify:\n" + out


def test_security_exposure(unit, tmp_path):
    r = run(["systemd-analyze", "security", "--offline=yes", "--man=no", str(unit)],
            cwd=str(tmp_path))
    m = re.search(r"Overall exposure level for spillway\.service: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    # 2.0 today ("OK"); what remains is inherent: network access, reading other users' files
    # (CAP_DAC_READ_SEARCH), no MemoryDenyWriteExecute (PCRE2 JIT).
    assert float(m.group(1)) <= 2.5, r.stdout


def test_settings(unit):
    s = settings(unit.read_text())
    text = unit.read_text()

    def one(sec, key):
        v = s.get((sec, key))
        assert v and len(v) == 1, "%s= in [%s]: %r" % (key, sec, v)
        return v[0]

    # Type=simple, and why: the agent has no sd_notify().
    assert one("Service", "Type") == "simple"
    assert re.search(r"#.*sd_notify", text), "say why Type=simple"
    assert one("Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("Service", "ExecStart") == ("/usr/bin/spillway run -c /etc/spillway/spillway.yaml "
                                           "--wait-lock 60s")
    assert one("Service", "User") == "spillway"
    assert one("Service", "Restart") == "on-failure"
    assert one("Service", "RestartSec")
    assert int(one("Unit", "StartLimitBurst")) > 1 and one("Unit", "StartLimitIntervalSec")
    for key, val in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                     ("PrivateTmp", "yes"), ("ProtectHome", "yes"), ("PrivateDevices", "yes"),
                     ("ProtectKernelTunables", "yes"), ("ProtectControlGroups", "yes"),
                     ("RestrictSUIDSGID", "yes"), ("LockPersonality", "yes")):
        assert one("Service", key) == val, key
    assert one("Service", "CapabilityBoundingSet") == "CAP_DAC_READ_SEARCH"
    assert one("Service", "AmbientCapabilities") == "CAP_DAC_READ_SEARCH"
    assert "MemoryDenyWriteExecute" not in {k for _, k in s}, "PCRE2's JIT needs W+X pages"


def test_packaged_config_writes_only_where_the_unit_allows(unit, deb_root):
    s = settings(unit.read_text())
    writable = []
    for key, base in (("ReadWritePaths", ""), ("StateDirectory", "/var/lib/"),
                      ("LogsDirectory", "/var/log/")):
        for v in s.get(("Service", key), []):
            writable += [base + p.lstrip("-") for p in v.split()]
    cfg = yaml.safe_load((deb_root / "etc/spillway/spillway.yaml").read_text())
    paths = [cfg["data_dir"], cfg["disk_pressure"]["path"]]
    paths += [os.path.dirname(x["path"]) for x in cfg["sinks"] if x["type"] == "file"]
    paths += [os.path.dirname(g) for r in cfg.get("retention", []) for g in r["paths"]]
    for p in paths:
        assert any(p == w or p.startswith(w.rstrip("/") + "/") for w in writable), \
            "%s is written by the default config but read-only under the unit (%s)" % (p, writable)
    state = [v for v in s.get(("Service", "StateDirectory"), [])]
    assert state == ["spillway"] and cfg["data_dir"] == "/var/lib/spillway"
