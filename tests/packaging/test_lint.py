"""Lint of every YAML file (yamllint) and every shell script (shellcheck), including the shell in
GitHub workflow steps and in the Kubernetes example; the workflows against GitHub's workflow
schema (npm @action-validator/cli, pinned in tests/packaging/tools) and against .ci/run."""

import re

import pytest
import yaml

from conftest import REPO, run, tracked

VALIDATOR = REPO / "tests/packaging/tools/node_modules/.bin/action-validator"
WORKFLOWS = sorted((REPO / ".github/workflows").glob("*.yml"))


def yaml_files():
    return [p for p in tracked("*.yaml", "*.yml", ".yamllint")
            if "tests/fuzz/corpus" not in str(p.relative_to(REPO))]


def shell_scripts():
    out = set(tracked("*.sh"))
    for p in tracked("*"):
        if p.suffix in ("", ".sh") and p.stat().st_size < 1 << 20:
            with open(p, "rb") as f:
                first = f.readline()
            if re.match(rb"#!\s*(/usr)?/bin/(env )?(ba|da)?sh\b", first):
                out.add(p)
    return sorted(out)


def test_yamllint():
    files = yaml_files()
    assert len(files) >= 20, files
    r = run(["yamllint", "-s", "-c", str(REPO / ".yamllint")] + [str(f) for f in files])
    assert r.returncode == 0, r.stdout + r.stderr


def test_shellcheck():
    files = shell_scripts()
    names = {str(f.relative_to(REPO)) for f in files}
    for must in (".ci/run", "scripts/test.sh", "packaging/docker/mkrootfs.sh",
                 "packaging/deb/postinst", "packaging/deb/postrm", "packaging/deb/prerm"):
        assert must in names, must
    r = run(["shellcheck"] + [str(f) for f in files])
    assert r.returncode == 0, r.stdout + r.stderr


def test_shellcheck_workflow_steps(tmp_path):
    n = 0
    for wf in WORKFLOWS:
        for job, spec in yaml.safe_load(wf.read_text())["jobs"].items():
            for i, step in enumerate(spec.get("steps", [])):
                if "run" not in step:
                    continue
                # Expressions are substituted by GitHub before the shell sees the script.
                script = re.sub(r"\$\{\{[^}]*\}\}", "EXPR", step["run"])
                f = tmp_path / ("%s-%s-%d.sh" % (wf.stem, job, i))
                f.write_text("#!/bin/bash\nset -e\n" + script)
                r = run(["shellcheck", str(f)])
                assert r.returncode == 0, "%s job %s step %d:\n%s" % (wf.name, job, i, r.stdout)
                n += 1
    assert n >= 4


def test_workflows_validate_against_the_schema(tmp_path):
    assert VALIDATOR.exists(), "scripts/bootstrap.sh test installs it"
    assert {w.name for w in WORKFLOWS} >= {"ci.yml", "image.yml"}
    for wf in WORKFLOWS:
        r = run([str(VALIDATOR), str(wf)])
        assert r.returncode == 0, "%s:\n%s%s" % (wf.name, r.stdout, r.stderr)
    bad = tmp_path / "bad.yml"  # the validator really validates
    bad.write_text("name: x\non: push\njobs:\n  a:\n    run-on: ubuntu-24.04\n"
                   "    steps:\n      - run: true\n")
    assert run([str(VALIDATOR), str(bad)]).returncode != 0


def load(name):
    return yaml.safe_load((REPO / ".github/workflows" / name).read_text())


def steps(wf, job):
    return wf["jobs"][job]["steps"]


def test_ci_runs_what_ci_run_runs():
    ci_run = (REPO / ".ci/run").read_text()
    assert re.search(r"^make test$", ci_run, re.M), ".ci/run is the README's `make test`"
    wf = load("ci.yml")
    test = wf["jobs"]["test"]
    runs = [s.get("run", "").strip() for s in test["steps"]]
    assert "bash .ci/run" in runs, runs
    suites = {m["suite"] for m in test["strategy"]["matrix"]["include"]}
    script = (REPO / "scripts/test.sh").read_text()
    m = re.search(r"case \$suite in all \| ([a-z |]+)\)", script)
    assert m, "scripts/test.sh lists its suites"
    assert suites == set(m.group(1).replace(" ", "").split("|")) == {"release", "sanitize",
                                                                      "fuzz"}
    assert any(s.get("run", "").strip() == "make package" for s in steps(wf, "package"))


def test_image_workflow():
    wf = load("image.yml")
    job = wf["jobs"]["image"]
    assert job["permissions"]["id-token"] == "write"
    builds = [s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push-action")]
    assert builds and all(s["with"]["file"] == "packaging/docker/Dockerfile" for s in builds)
    assert any({"linux/amd64", "linux/arm64"} <= set(s["with"]["platforms"].split(","))
               for s in builds), "multi-arch build"
    assert any(s.get("uses", "").startswith("docker/setup-qemu-action") for s in job["steps"])
    trivy = [s for s in job["steps"] if s.get("uses", "").startswith("aquasecurity/trivy-action")]
    gate = [s for s in trivy if str(s["with"].get("exit-code")) == "1"]
    assert gate and gate[0]["with"]["severity"] == "CRITICAL"
    gate_at = job["steps"].index(gate[0])
    push_at = [i for i, s in enumerate(job["steps"]) if s.get("id") == "push"][0]
    assert gate_at < push_at, "scan before pushing"
    sign = [s for s in job["steps"] if "cosign sign" in s.get("run", "")]
    assert sign and "refs/tags/" in sign[0]["if"], "cosign on tags"
    assert "steps.push.outputs.digest" in str(sign[0].get("env", {})), "sign the pushed digest"


def test_shellcheck_container_scripts(tmp_path):
    """Shell embedded in the Kubernetes manifests (`sh -c` container commands)."""
    n = 0
    for f in (REPO / "packaging/k8s").rglob("*.yaml"):
        for doc in yaml.safe_load_all(f.read_text()):
            spec = ((doc or {}).get("spec", {}).get("template", {}) or {}).get("spec", {})
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                if c.get("command", [])[:2] == ["/bin/sh", "-c"]:
                    script = tmp_path / ("%s.sh" % c["name"])
                    script.write_text("#!/bin/sh\n" + c["args"][0])
                    r = run(["shellcheck", "-s", "sh", str(script)])
                    assert r.returncode == 0, "%s/%s:\n%s" % (f.name, c["name"], r.stdout)
                    n += 1
    assert n >= 1
