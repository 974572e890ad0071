"""README.md and docs/: every relative Markdown link names a file that exists and, with #anchor, a
heading of that file (GitHub's anchors); the Quickstart commands that .ci/run repeats are intact;
every flag a command in them gives is one its program defines (and not a deprecated name), and
every other flag they name is some program's; every output file they name is one the code
writes."""

import functools
import glob
import os
import re
import subprocess
import sys
import xml.etree.ElementTree

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


PROGRAMS = sorted(os.path.basename(path) for path in glob.glob(os.path.join(ROOT, "bin", "*"))
                  if os.path.islink(path))
# Flags of other tools the pages quote: TensorBoard, pytest-xdist, saved_model_cli, benchmarks;
# and absl's --flagfile.
OTHER_TOOLS_FLAGS = {"logdir", "dist", "dir", "all", "student", "clips", "flagfile"}
FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9_]*)")
PROGRAM = re.compile(r"\b(?:bin/|vb_)([a-z_]+)\b")


@functools.lru_cache(maxsize=None)
def program_flags(name) -> dict:
    """{flag: deprecated} of every flag program `name` defines, from its --helpxml (quick: --help
    imports no TensorFlow)."""
    process = subprocess.run([sys.executable, os.path.join(ROOT, "bin", f"{name}.py"), "--helpxml"],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": ROOT})
    assert process.returncode == 0, process.stderr[-2000:]
    flags = {}
    for flag in xml.etree.ElementTree.fromstring(process.stdout).iter("flag"):
        meaning = flag.findtext("meaning") or ""
        flags[flag.findtext("name")] = meaning.startswith("Deprecated")
        if flag.findtext("type") == "bool":
            flags["no" + flag.findtext("name")] = flags[flag.findtext("name")]
    return flags


def commands(path):
    """(program, text of the command after its name) of every command line in code blocks (lines
    ending in a backslash joined), inline code and table rows of `path` that names a program."""
    text = open(path, encoding="utf-8").read().replace("\\\n", " ")
    pieces = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    prose = re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.S)
    pieces += re.findall(r"`([^`\n]+)`", prose)
    for row in prose.splitlines():   # a table row of a program: its flags, whatever else it names
        match = re.match(r"\| `bin/(\w+)` \|", row)
        if match and match.group(1) in PROGRAMS:
            yield match.group(1), row[match.end():]
    for piece in pieces:
        for line in piece.splitlines():
            found = [match for match in PROGRAM.finditer(line) if match.group(1) in PROGRAMS]
            for match, following in zip(found, found[1:] + [None]):
                yield match.group(1), line[match.end():following.start() if following else None]


@pytest.mark.parametrize("page", PAGES, ids=lambda path: os.path.relpath(path, ROOT))
def test_the_commands_give_only_flags_their_programs_define(page):
    wrong = []
    for name, command in commands(page):
        for flag in FLAG.findall(command):
            defined = program_flags(name)
            if flag not in defined:
                wrong.append(f"bin/{name} has no --{flag}")
            elif defined[flag]:
                wrong.append(f"bin/{name}: --{flag} is deprecated")
    assert not wrong, sorted(set(wrong))


@pytest.mark.parametrize("page", PAGES, ids=lambda path: os.path.relpath(path, ROOT))
def test_every_flag_named_is_a_programs(page):
    known = set(OTHER_TOOLS_FLAGS).union(*(program_flags(name) for name in PROGRAMS))
    unknown = set(FLAG.findall(open(page, encoding="utf-8").read())) - known
    assert not unknown, sorted(unknown)


# Output files as the pages name them (`history.csv`, `best.weights.h5.json`); names with a
# placeholder (`eval_<split>.json`) are left out.
OUTPUT_FILE = re.compile(r"`([A-Za-z0-9_.-]+\.(?:csv|json|h5|keras|png|npz|txt|tfrecord))`")


@pytest.mark.parametrize("page", PAGES, ids=lambda path: os.path.relpath(path, ROOT))
def test_every_output_file_named_is_one_the_code_writes(page):
    code = "".join(open(path, encoding="utf-8").read() for path in
                   glob.glob(os.path.join(ROOT, "vb_keras", "**", "*.py"), recursive=True)
                   + glob.glob(os.path.join(ROOT, "bin", "*.py")))
    named = set(OUTPUT_FILE.findall(open(page, encoding="utf-8").read()))
    # A name is in the code as it is, or built from its stem and extension (best.weights.h5 +
    # ".json").
    missing = [name for name in named if name not in code and not any(
        name == stem + extension for stem in re.findall(r'"([\w.-]+)"', code)
        for extension in (".json", ".csv")) and not os.path.exists(os.path.join(ROOT, name))]
    assert not missing, sorted(missing)


if __name__ == "__main__":
    run_main()
