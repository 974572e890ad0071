"""README.md and docs/: every relative Markdown link names a file that exists and, with #anchor, a
heading of that file (GitHub's anchors); the Quickstart commands that .ci/run repeats are intact."""

import os
import re

import pytest

from conftest import run_main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
PAGES = [os.path.join(ROOT, "README.md")] + sorted(
    os.path.join(DOCS, name) for name in os.listdir(DOCS) if name.endswith(".md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")

QUICKSTART_COMMANDS = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install . && bin/train --model=resnet18",
    "python3 -m venv .venv && . .venv/bin/activate && pip install '.[test]' && "
    "python -m pytest -n 2 tests",
)


def prose_lines(path):
    """The lines outside fenced code blocks."""
    fenced = False
    for line in open(path, encoding="utf-8"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield line


def anchors(path):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -N for repeats."""
    seen = {}
    for line in prose_lines(path):
        match = re.match(r"^#{1,6} (.*)", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            yield slug if count == 0 else f"{slug}-{count}"


@pytest.mark.parametrize("page", PAGES, ids=lambda path: os.path.relpath(path, ROOT))
def test_relative_links_resolve(page):
    broken = []
    for line in prose_lines(page):
        for target in LINK.findall(line):
            if re.match(r"^[a-z]+:", target):   # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
            if not os.path.exists(resolved):
                broken.append(f"{target}: no such file")
            elif anchor and anchor not in set(anchors(resolved)):
                broken.append(f"{target}: no heading with that anchor")
    assert not broken, broken


def test_the_readme_keeps_the_quickstart_commands_ci_runs():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    for command in QUICKSTART_COMMANDS:
        assert f"```sh\n{command}\n```" in readme


if __name__ == "__main__":
    run_main()
