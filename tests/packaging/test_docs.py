"""The documents describe this build: no pointers to issue numbers or to work still to come, and
every repository file or folder they name exists."""

import re
import subprocess

import pytest

from conftest import REPO, tracked

DOCS = [p for p in tracked("*.md") if "node_modules" not in p.parts and ".github" not in p.parts]
TOP = ("agent", "parsers", "redact", "sinks", "search", "common", "tests", "bench", "packaging",
       "docs", "scripts", ".github", ".ci")
STALE = [
    (r"\bissues? #?\d+", "an issue number"),
    (r"\(#\d+\)", "an issue number"),
    (r"not (?:available|supported) (?:in|by) this build", "a feature said to be missing"),
    (r"\bnot built yet\b|\bonce .{0,40} lands\b|\barrives with\b", "work still to come"),
    (r"\bDESIGN\.md\b|\bSTYLE\.md\b|\bPROTOCOLS\.md\b", "a file outside the repository"),
]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_stale_text(doc):
    text = doc.read_text()
    found = []
    for pattern, what in STALE:
        for m in re.finditer(pattern, text, re.I):
            line = text.count("\n", 0, m.start()) + 1
            found.append("%s:%d: %s (%r)" % (doc.relative_to(REPO), line, what, m.group(0)))
    assert not found, "\n".join(found)


def named_paths(text):
    """Repository paths a document names: relative links and `code` spans that start with a
    top-level folder (placeholders and globs are left out)."""
    for m in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if not re.match(r"[a-z]+:", m.group(1)):
            yield m.group(1), True
    for m in re.finditer(r"`([^`\s]+)`", text):
        p = m.group(1).rstrip(".,:;")
        if p.split("/")[0] in TOP and "/" in p and not re.search(r"[*?<>{}$|=]|\.\.\.", p):
            yield p, False


def generated(path):
    """Paths a run creates (the demo's data, build directories): git ignores them."""
    r = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", path])
    return r.returncode == 0


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_named_files_exist(doc):
    missing = []
    for path, relative in named_paths(doc.read_text()):
        base = doc.parent if relative else REPO
        if not (base / path).exists() and not (REPO / path).exists() and not generated(path):
            missing.append(path)
    assert not missing, "%s names files that do not exist: %s" % (doc.relative_to(REPO), missing)
