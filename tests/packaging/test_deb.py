"""The Debian package (`make package`): contents, control fields, the packaged binary and
default config, the generated man page, and the maintainer scripts (run against a scratch
DPKG_ROOT with stub commands, so the test machine is never changed)."""

import gzip
import os
import re
import stat

import yaml

from conftest import REPO, project_version, run

EXPECTED = {
    "./usr/bin/spillway",
    "./etc/spillway/spillway.yaml",
    "./lib/systemd/system/spillway.service",
    "./usr/share/man/man8/spillway.8.gz",
    "./usr/share/doc/spillway/README.md",
    "./usr/share/doc/spillway/configuration.md",
    "./usr/share/doc/spillway/deploy.md",
    "./usr/share/doc/spillway/runbook.md",
    "./usr/share/doc/spillway/troubleshooting.md",
}


def control(deb):
    r = run(["dpkg-deb", "-f", str(deb)], check=True)
    fields, key = {}, None
    for line in r.stdout.splitlines():
        if line.startswith(" ") and key:
            fields[key] += "\n" + line
        else:
            key, _, v = line.partition(":")
            fields[key] = v.strip()
    return fields


def test_contents(deb):
    r = run(["dpkg-deb", "-c", str(deb)], check=True)
    files = {}
    for line in r.stdout.splitlines():
        perms, owner, _size, _date, _time, path = line.split(None, 5)
        if not perms.startswith("d"):
            files[path.split(" -> ")[0]] = (perms, owner)
    assert set(files) == EXPECTED, "unexpected: %s, missing: %s" % (
        sorted(set(files) - EXPECTED), sorted(EXPECTED - set(files)))
    assert files["./usr/bin/spillway"] == ("-rwxr-xr-x", "root/root")
    for p, (perms, owner) in files.items():
        assert owner == "root/root", p
        if p != "./usr/bin/spillway":
            assert perms == "-rw-r--r--", p


def test_control_fields(deb, spillway_bin):
    f = control(deb)
    assert f["Package"] == "spillway"
    assert f["Version"] == project_version() + "-1"
    assert f["Architecture"] == run(["dpkg", "--print-architecture"]).stdout.strip()
    deps = {d.strip().split(" ")[0] for d in f["Depends"].split(",")}
    assert "adduser" in deps, "postinst runs adduser"
    # dpkg-shlibdeps found the package of every library the binary links directly (DT_NEEDED;
    # their own dependencies come with those packages).
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]",
                        run(["readelf", "-d", str(spillway_bin)], check=True).stdout)
    resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", run(["ldd", str(spillway_bin)],
                                                         check=True).stdout, re.M))
    assert len(needed) >= 7 and set(needed) <= set(resolved), (needed, resolved)
    for lib in (resolved[n] for n in needed):
        owner = None
        for cand in (lib, lib.replace("/usr/lib/", "/lib/", 1) if lib.startswith("/usr/")
                     else "/usr" + lib, os.path.realpath(lib)):
            r = run(["dpkg", "-S", cand])
            if r.returncode == 0:
                owner = r.stdout.split(":")[0]
                break
        assert owner, "no package owns %s" % lib
        assert owner in deps, "%s (for %s) missing from Depends: %s" % (owner, lib, f["Depends"])
    ctrl = run(["sh", "-c", "dpkg-deb --ctrl-tarfile '%s' | tar -tvf -" % deb], check=True).stdout
    for script in ("postinst", "prerm", "postrm"):
        assert re.search(r"^-rwxr-xr-x .* \./%s$" % script, ctrl, re.M), script
    conffiles = run(["sh", "-c", "dpkg-deb --ctrl-tarfile '%s' | tar -xOf - ./conffiles" % deb],
                    check=True).stdout.split()
    assert conffiles == ["/etc/spillway/spillway.yaml"]


def test_packaged_binary_and_config(deb_root):
    binary = deb_root / "usr/bin/spillway"
    r = run([str(binary), "version"], check=True)
    assert r.stdout.strip() == "spillway " + project_version()
    conf = deb_root / "etc/spillway/spillway.yaml"
    env = {k: v for k, v in os.environ.items() if k != "SPILLWAY_LISTEN"}
    r = run([str(binary), "check", "-c", str(conf)], env=env)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout
    cfg = yaml.safe_load(conf.read_text())
    assert cfg["data_dir"] == "/var/lib/spillway"
    # Works as shipped: only sink types this build has, and its own output is kept bounded.
    assert [s["type"] for s in cfg["sinks"]] == ["file"]
    out = cfg["sinks"][0]["path"]
    assert out.startswith("/var/log/spillway/")
    assert any(out in r["paths"] for r in cfg["retention"]), "the local output is rotated"
    assert cfg["server"]["listen"].startswith("${SPILLWAY_LISTEN:-127.0.0.1:")


def test_man_page(deb_root, spillway_bin):
    page = deb_root / "usr/share/man/man8/spillway.8.gz"
    roff = gzip.decompress(page.read_bytes()).decode()
    assert roff.splitlines()[1].startswith('.TH SPILLWAY 8 ')
    assert '"spillway %s"' % project_version() in roff
    r = run(["man", "--warnings", "-l", str(page)], env=dict(os.environ, MANWIDTH="100"))
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    text = r.stdout
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS", "EXIT STATUS",
                    "FILES", "SIGNALS", "SEE ALSO"):
        assert re.search(r"^%s$" % section, text, re.M), section
    # Every command of --help is in the page: it is generated from it.
    helptext = run([str(spillway_bin), "--help"], check=True).stdout
    block = helptext.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    cmds = re.findall(r"^  (\S+)", block, re.M)
    assert len(cmds) >= 7
    for c in cmds:
        assert re.search(r"^\s+%s\b" % re.escape(c), text, re.M), "%s missing from the man page" % c


def stubs(tmp_path):
    """PATH with stub adduser/getent/install/systemctl that log their arguments."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls.log"
    for name, body in (
            ("getent", "exit 2"),  # no such user yet
            ("adduser", ""),
            # The real install, less -o/-g (there is no spillway user on the test machine).
            ("install", 'skip=0\nfor a do\n  shift\n  if [ $skip = 1 ]; then skip=0; continue; fi\n'
                        '  case $a in -o|-g) skip=1; continue ;; esac\n  set -- "$@" "$a"\n'
                        'done\nexec /usr/bin/install "$@"'),
            ("systemctl", "")):
        p = bindir / name
        p.write_text('#!/bin/sh\necho "%s $*" >> "%s"\n%s\n' % (name, log, body))
        p.chmod(0o755)
    return "%s:/usr/bin:/bin" % bindir, log


def test_postinst_creates_user_and_directories(tmp_path):
    path, log = stubs(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    script = REPO / "packaging/deb/postinst"
    r = run(["sh", "-e", str(script), "configure", ""],
            env={"PATH": path, "DPKG_ROOT": str(root)})
    assert r.returncode == 0, r.stderr
    calls = log.read_text().splitlines()
    add = [c for c in calls if c.startswith("adduser ")]
    assert add and "--system" in add[0] and add[0].endswith(" spillway"), calls
    inst = [c for c in calls if c.startswith("install ")]
    for d in ("/var/lib/spillway", "/var/log/spillway"):
        assert any(c.startswith("install -d -o spillway -g spillway -m 0750 ") and c.endswith(
            str(root) + d) for c in inst), calls
        assert (root / d.lstrip("/")).is_dir()
        assert stat.S_IMODE((root / d.lstrip("/")).stat().st_mode) == 0o750
    # Run again (an upgrade): the user exists, the directories are left as they are.
    (tmp_path / "bin" / "getent").write_text('#!/bin/sh\necho "spillway:x:999:999::/:/bin/false"\n')
    log.write_text("")
    r = run(["sh", "-e", str(script), "configure", "0.0.9-1"],
            env={"PATH": path, "DPKG_ROOT": str(root)})
    assert r.returncode == 0, r.stderr
    assert not [c for c in log.read_text().splitlines() if c.startswith(("adduser", "install"))]


def test_postrm_purge_removes_state_only_on_purge(tmp_path):
    path, _ = stubs(tmp_path)
    root = tmp_path / "root"
    for d in ("var/lib/spillway", "var/log/spillway"):
        (root / d).mkdir(parents=True)
        (root / d / "x").write_text("x")
    script = REPO / "packaging/deb/postrm"
    r = run(["sh", "-e", str(script), "remove"], env={"PATH": path, "DPKG_ROOT": str(root)})
    assert r.returncode == 0 and (root / "var/lib/spillway/x").exists()
    r = run(["sh", "-e", str(script), "purge"], env={"PATH": path, "DPKG_ROOT": str(root)})
    assert r.returncode == 0, r.stderr
    assert not (root / "var/lib/spillway").exists() and not (root / "var/log/spillway").exists()
    assert (root / "var/lib").is_dir()
