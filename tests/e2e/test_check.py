"""`spillway check -c FILE`: a valid config prints "FILE: ok" and exits 0; an invalid one exits 1
and prints one line per problem on stderr, "FILE: key.path: reason". We match the
"FILE: key.path:" prefix exactly and only the reason words the contract fixes."""

import copy
import json
import os
import re
import subprocess

import pytest

from conftest import to_yaml


def base_config(d):
    return {
        "data_dir": str(d / "data"),
        "hostname": "testhost",
        "buffer": {"max_bytes": "1GiB", "when_full": "block",
                   "chunk": {"max_records": 5000, "max_bytes": "1MiB", "max_wait": "200ms"}},
        "sources": [
            {"name": "docker", "type": "docker", "paths": [str(d / "containers/*/*-json.log")],
             "read_from": "head"},
            {"name": "pods", "type": "cri", "paths": [str(d / "pods/*/*/*.log")]},
            {"name": "app", "type": "file", "paths": [str(d / "app/*.log")], "format": "json"},
        ],
        "sinks": [{"name": "local", "type": "file", "path": str(d / "out/shipped.ndjson")}],
        "log": {"level": "info"},
    }


def run_check(spillway_bin, path, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPILLWAY_E2E_")}
    env.update(env_extra or {})
    p = subprocess.run([spillway_bin, "check", "-c", str(path)], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=30, env=env)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def assert_ok_line(out, path):
    ok = "%s: ok" % path
    assert any(x == ok or x.startswith(ok + " ") for x in out.splitlines()), \
        "no %r line on stdout:\n%s" % (ok, out)


def mutate(fn):
    def make(d):
        cfg = base_config(d)
        fn(cfg, d)
        return to_yaml(cfg)
    return make


def _set(path, value):
    def f(cfg, d):
        node = cfg
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value(d) if callable(value) else value
    return f


def _del(path):
    def f(cfg, d):
        node = cfg
        for k in path[:-1]:
            node = node[k]
        del node[path[-1]]
    return f


def _dup_name(cfg, d):
    cfg["sources"].append(copy.deepcopy(cfg["sources"][2]))
    cfg["sources"][3]["paths"] = [str(d / "other/*.log")]
    cfg["sources"][3]["name"] = "docker"


def _es_sink(cfg, d):
    cfg["sinks"].insert(0, {"name": "es", "type": "elasticsearch", "url": "http://127.0.0.1:9200",
                            "index": "logs", "api_key_file": str(d / "nope" / "es-key")})


def _many(cfg, d):
    cfg["bufer"] = {"max_bytes": "1GiB"}
    cfg["buffer"]["max_bytes"] = "12XB"
    cfg["buffer"]["when_full"] = "wait"


YAML_SYNTAX = "data_dir: /tmp/x\nhostname: a: b\nsources: []\n"

# (id, config text maker, [(key path, [reason substrings or regexes])], expected problem lines)
CASES = [
    ("unknown-top-level-key", mutate(_set(["bufer"], {"max_bytes": "1GiB"})),
     [("bufer", ['unknown key (did you mean "buffer"?)'])], 1),
    ("unknown-nested-key", mutate(_set(["buffer", "chunk", "max_recs"], 10)),
     [("buffer.chunk.max_recs", ["unknown key"])], 1),
    ("unknown-source-key", mutate(_set(["sources", 1, "pathz"], ["x"])),
     [("sources[1].pathz", ["unknown key"])], 1),
    ("unknown-sink-key", mutate(_set(["sinks", 0, "pth"], "x")),
     [("sinks[0].pth", ["unknown key"])], 1),
    ("bad-size", mutate(_set(["buffer", "max_bytes"], "12XB")),
     [("buffer.max_bytes", ['expected a size like 64KiB, got "12XB"'])], 1),
    ("bad-duration", mutate(_set(["buffer", "chunk", "max_wait"], "5x")),
     [("buffer.chunk.max_wait", [re.compile("duration", re.I), '"5x"'])], 1),
    ("bare-number-duration", mutate(_set(["buffer", "chunk", "max_wait"], 10)),
     [("buffer.chunk.max_wait", [re.compile("duration", re.I)])], 1),
    ("bad-enum", mutate(_set(["buffer", "when_full"], "drop")),
     [("buffer.when_full", ["must be one of: block, drop_oldest"])], 1),
    ("bad-source-type", mutate(_set(["sources", 0, "type"], "syslog")),
     [("sources[0].type", ["must be one of", "docker", "cri", "file", "journald"])], 1),
    ("missing-source-name", mutate(_del(["sources", 0, "name"])),
     [("sources[0].name", [re.compile("required|missing", re.I)])], 1),
    ("duplicate-source-name", mutate(_dup_name),
     [("sources[3].name", [re.compile("duplicate", re.I)])], 1),
    ("bad-glob", mutate(_set(["sources", 2, "paths"], lambda d: [str(d / "[log")])),
     [("sources[2].paths[0]", [lambda d: 'bad glob "%s": unterminated [' % (d / "[log")])], 1),
    ("missing-secret-file", mutate(_es_sink),
     [("sinks[0].api_key_file",
       [lambda d: 'cannot read secret file "%s": No such file or directory'
        % (d / "nope" / "es-key")])], 1),
    ("unset-env-var", mutate(_set(["data_dir"], "${SPILLWAY_E2E_UNSET_VAR}/data")),
     [("data_dir", ["SPILLWAY_E2E_UNSET_VAR"])], 1),
    ("format-on-docker-source", mutate(_set(["sources", 0, "format"], "json")),
     [("sources[0].format", [])], 1),
    ("bad-multiline-regex",
     mutate(_set(["sources", 2, "multiline"], {"start": "(unclosed", "max_lines": 10})),
     [("sources[2].multiline.start",
       ["missing closing parenthesis", re.compile(r"offset\D{0,3}9\b")])], 1),
    ("wrong-type", mutate(_set(["buffer", "chunk", "max_records"], "many")),
     [("buffer.chunk.max_records", [])], 1),
    ("several-problems-all-reported", mutate(_many),
     [("bufer", ["unknown key"]), ("buffer.max_bytes", ['"12XB"']),
      ("buffer.when_full", ["must be one of: block, drop_oldest"])], 3),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_check_reports_problem(spillway_bin, workdir, case):
    _, make, expected, nlines = case
    path = workdir / "spillway.yaml"
    path.write_text(make(workdir))
    rc, out, err = run_check(spillway_bin, path)
    prefix = "%s: " % path
    problems = [x for x in err.splitlines() if x.startswith(prefix)]
    assert rc == 1, "exit %d, stderr:\n%s" % (rc, err)
    for keypath, reasons in expected:
        lead = "%s%s: " % (prefix, keypath)
        hits = [x for x in problems if x.startswith(lead)]
        assert hits, "no line starting with %r in stderr:\n%s" % (lead, err)
        line = hits[0]
        for r in reasons:
            if callable(r) and not isinstance(r, re.Pattern):
                r = r(workdir)
            if isinstance(r, re.Pattern):
                assert r.search(line[len(lead):]), "%r not in %r" % (r.pattern, line)
            else:
                assert r in line, "%r not in %r" % (r, line)
        assert len(line) > len(lead), "empty reason: %r" % line
    assert len(problems) == nlines, "expected %d problem lines, got:\n%s" % (nlines, err)
    assert "ok" not in out.split(), out


def test_check_yaml_syntax_error_has_line_and_column(spillway_bin, workdir):
    path = workdir / "spillway.yaml"
    path.write_text(YAML_SYNTAX)
    rc, out, err = run_check(spillway_bin, path)
    assert rc == 1, err
    lines = [x for x in err.splitlines() if x.startswith("%s: " % path)]
    assert len(lines) == 1, err
    m = re.search(r"line (\d+), column (\d+)", lines[0])
    assert m, lines[0]
    assert int(m.group(1)) == 2 and int(m.group(2)) in (11, 12), lines[0]


def test_check_valid_yaml_with_env_and_relative_paths(spillway_bin, workdir):
    cfg = base_config(workdir)
    cfg["hostname"] = "${SPILLWAY_E2E_HOST}"
    cfg["data_dir"] = "data"
    cfg["sinks"][0]["path"] = "out/shipped.ndjson"
    cfg["sources"][2]["multiline"] = {"start": r"^\d{4}-\d{2}-\d{2}", "max_lines": 500,
                                      "timeout": "2s"}
    path = workdir / "spillway.yaml"
    path.write_text(to_yaml(cfg))
    rc, out, err = run_check(spillway_bin, path, {"SPILLWAY_E2E_HOST": "node-1"})
    assert rc == 0, err
    assert_ok_line(out, path)


def test_check_valid_json_config(spillway_bin, workdir):
    path = workdir / "spillway.json"
    path.write_text(json.dumps(base_config(workdir), indent=2))
    rc, out, err = run_check(spillway_bin, path)
    assert rc == 0, err
    assert_ok_line(out, path)
