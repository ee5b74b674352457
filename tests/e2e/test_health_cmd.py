"""`spillway health` (the container image's HEALTHCHECK: no curl in the image) and SIGHUP (the
systemd unit's ExecReload), which must not stop the agent."""

import signal

from conftest import poll


def start(agent, workdir):
    d = workdir / "app"
    d.mkdir(exist_ok=True)
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}])
    agent.start()
    return agent.http_port()


def test_health_command_probes_the_running_agent(agent, workdir):
    port = start(agent, workdir)
    r = agent.cli("health", "--address", "127.0.0.1:%d" % port)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"200 ") and b'"ok"' in r.stdout
    r = agent.cli("health", "--address", "0.0.0.0:%d" % port, "--ready")  # wildcard -> loopback
    assert r.returncode == 0, r.stderr
    assert b'"ready"' in r.stdout
    agent.stop()
    r = agent.cli("health", "--address", "127.0.0.1:%d" % port)
    assert r.returncode == 1
    assert b"refused" in r.stderr


def test_health_command_reads_listen_from_config(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}])
    # Nothing listens on server.listen of this config: the probe must say so and fail.
    text = agent.config_path.read_text().replace('"127.0.0.1:0"', '"127.0.0.1:1"')
    agent.write_config_text(text)
    r = agent.cli("health", "-c", str(agent.config_path))
    assert r.returncode == 1 and b"127.0.0.1:1" in r.stderr
    agent.write_config_text(text.replace('"127.0.0.1:1"', '"0"'))
    r = agent.cli("health", "-c", str(agent.config_path))
    assert r.returncode == 1 and b"turned off" in r.stderr
    r = agent.cli("health", "--address", "localhost:2020")
    assert r.returncode == 1 and b"cannot parse" in r.stderr


def test_sighup_does_not_stop_the_agent(agent, workdir):
    port = start(agent, workdir)
    agent.proc.send_signal(signal.SIGHUP)
    assert poll(lambda: "SIGHUP" in agent.stderr_tail(), 5), agent.stderr_tail()
    agent.check_alive()
    r = agent.cli("health", "--address", "127.0.0.1:%d" % port)
    assert r.returncode == 0, r.stderr
    agent.stop()
