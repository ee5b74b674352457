"""Things that used to go unsaid: a secret file others can read (named by key and path, never
its content), glob matches that are not regular files (FIFOs, directories, sockets, devices),
and a source whose globs match nothing (a warning at start and at every reload, 0 files in
`status` and in /metrics)."""

import json
import os
import socket

import pytest
import requests

from conftest import by_name, free_port

SECRET = "pepper-7f3a9c-never-printed"


def warn_lines(text, needle):
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("level") == "warn" and needle in rec.get("msg", ""):
            out.append(rec["msg"])
    return out


def salted(agent, workdir, mode, uid=-1, gid=-1):
    salt = workdir / "salt"
    salt.write_text(SECRET + "\n")
    os.chmod(salt, mode)
    os.chown(salt, uid, gid)
    (workdir / "app").mkdir(exist_ok=True)
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/app/*.log" % workdir]}],
                       extra={"redact": {"fields": {"keys": ["password"], "action": "hash"},
                                         "hash_salt_file": str(salt)}})
    return salt


@pytest.mark.parametrize("mode,uid,gid,who", [
    (0o644, -1, -1, "every user"),
    (0o640, -1, 65534, "its group (gid 65534)"),
    (0o640, -1, -1, "its group (gid %d)" % os.getegid()),  # ours: the group adds nobody needed
    # Owned by another user, group read is how the agent reads it (root:spillway 0640 on a
    # host, fsGroup 0440 in a pod): not reported.
    (0o640, 65534, os.getegid(), None),
    (0o600, -1, -1, None),
])
def test_secret_file_readable_by_others_is_warned_about(agent, workdir, mode, uid, gid, who):
    salt = salted(agent, workdir, mode, uid, gid)
    p = agent.cli("check", "-c", agent.config_path)
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert SECRET not in err and SECRET not in p.stdout.decode()
    hits = warn_lines(err, "secret file")
    if who is None:
        assert hits == [], hits
        return
    assert len(hits) == 1, err
    assert hits[0].startswith("%s: redact.hash_salt_file: secret file \"%s\" is readable by %s "
                              "(mode %04o)" % (agent.config_path, salt, who, mode)), hits[0]
    agent.start()  # the running agent says it too, at start
    agent.wait_for(lambda: warn_lines(agent.stderr_tail(100000), "secret file"), 10,
                   "the warning in the agent's log")
    agent.stop()
    assert SECRET not in agent.stderr_tail(1 << 20)


def test_non_regular_files_matched_by_a_glob_are_warned_about_once(agent, workdir):
    d = workdir / "logs"
    d.mkdir()
    (d / "real.log").write_text("one\ntwo\n")
    os.mkfifo(d / "fifo.log")
    (d / "dir.log").mkdir()
    os.symlink("/dev/null", d / "null.log")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(d / "sock.log"))
    try:
        agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}])
        agent.start()
        agent.wait_count(2, 20)
        kinds = {"fifo.log": "a FIFO", "dir.log": "a directory", "null.log": "a symlink to a device",
                 "sock.log": "a socket"}
        agent.wait_for(lambda: len(warn_lines(agent.stderr_tail(100000), "not a regular file")) >= 4,
                       10, "four warnings")
        # Rescans find them every second: still one line each after several of them.
        agent.assert_never(lambda: len(warn_lines(agent.stderr_tail(100000), "not a regular file")) > 4,
                           2.5, "a skipped file was warned about twice")
        agent.stop()
    finally:
        sock.close()
    hits = warn_lines(agent.stderr_tail(1 << 20), "not a regular file")
    for name, kind in kinds.items():
        mine = [h for h in hits if h.startswith("skipping %s/%s " % (d, name))]
        assert len(mine) == 1 and kind in mine[0] and "source app" in mine[0], (name, hits)
    assert [r["line"] for r in agent.read_output()] == ["one", "two"]


def test_a_source_that_matches_no_file_is_warned_listed_and_counted(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    (d / "a.log").write_text("one\ntwo\n")
    ghost_globs = ["%s/nowhere/*.log" % workdir, "%s/app/*.txt" % workdir]
    port = free_port()
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]},
                        {"name": "ghost", "type": "file", "paths": ghost_globs}],
                       extra={"server": {"listen": "127.0.0.1:%d" % port, "enable_reload": True}})
    agent.start()
    agent.wait_count(2, 20)
    want = "source ghost matches no file (paths: [%s])" % ", ".join('"%s"' % g for g in ghost_globs)
    agent.wait_for(lambda: len(warn_lines(agent.stderr_tail(100000), want)) == 1, 10, want)
    assert not warn_lines(agent.stderr_tail(100000), "source app matches no file")

    # /metrics: the source is there with 0 files
    base = "http://127.0.0.1:%d" % port
    metrics = agent.wait_for(lambda: requests.get(base + "/metrics", timeout=5).text, 10, "/metrics")
    assert 'spillway_source_files{source="ghost"} 0\n' in metrics
    assert 'spillway_source_files{source="app"} 1\n' in metrics

    # status, with the running agent's figures and without
    st = agent.status()
    assert st["agent"]["running"] is True, st["agent"]
    assert by_name(st["sources"], "ghost")["files"] == 0 and by_name(st["sources"], "app")["files"] == 1
    assert by_name(st["sources"], "ghost")["records"] == 0
    text = agent.cli("status", "-c", agent.config_path).stdout.decode()
    rows = [l.split() for l in text.splitlines() if l.startswith("ghost ")]
    assert rows and rows[0][:3] == ["ghost", "0", "0"], text

    # every reload says it again (SIGHUP, and POST /-/reload)
    agent.proc.send_signal(1)
    agent.wait_for(lambda: len(warn_lines(agent.stderr_tail(100000), want)) == 2, 20, "after SIGHUP")
    assert requests.post(base + "/-/reload", timeout=5).status_code == 202
    agent.wait_for(lambda: len(warn_lines(agent.stderr_tail(100000), want)) == 3, 20, "after POST")
    # a file that appears later is picked up, and counted
    (d / "late.txt").write_text("late\n")
    agent.wait_count(3, 20)
    agent.stop()
    st = agent.status()
    assert by_name(st["sources"], "ghost")["files"] == 1 and by_name(st["sources"], "ghost")["records"] == 1
