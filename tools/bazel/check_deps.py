#!/usr/bin/env python3
"""Checks BUILD without running Bazel: every vb_keras module a target's files import (and every
test module's conftest helpers) must be among the srcs of the target's transitive deps, or the test
fails under Bazel with an ImportError. Also: every library and test file belongs to a target.

  python3 tools/bazel/check_deps.py        # from the repository root; exit 1 on a problem
"""

import ast
import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGETS = {}


def _rule(kind):
    def rule(name, srcs=(), deps=(), data=(), **kwargs):
        TARGETS[name] = {"kind": kind, "srcs": list(srcs), "deps": list(deps), "data": list(data),
                         "main": kwargs.get("main")}
    return rule


def _load_build():
    names = {"py_library": _rule("py_library"), "py_test": _rule("py_test"),
             "py_binary": _rule("py_binary"), "package": lambda **kwargs: None,
             "glob": lambda patterns, **kwargs: sorted(
                 path for pattern in patterns for path in glob.glob(os.path.join(ROOT, pattern))),
             "filegroup": _rule("filegroup"), "cc_binary": _rule("cc_binary")}
    with open(os.path.join(ROOT, "BUILD")) as stream:
        exec(compile(stream.read(), "BUILD", "exec"), names)   # BUILD is plain Starlark here


def _closure(name, seen=None):
    seen = set() if seen is None else seen
    if name in seen:
        return seen
    seen.add(name)
    for dep in TARGETS[name]["deps"]:
        _closure(dep.lstrip(":"), seen)
    return seen


def _module_file(module):
    """vb_keras.a.b -> the file that defines it, relative to ROOT (or None)."""
    path = module.replace(".", "/")
    for candidate in (path + ".py", os.path.join(path, "__init__.py")):
        if os.path.isfile(os.path.join(ROOT, candidate)):
            return candidate
    return None


def _imports(path):
    """The vb_keras (and tests/) modules that `path` imports, top-level or not."""
    tree = ast.parse(open(os.path.join(ROOT, path)).read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    wanted = set()
    for module in found:
        if module.startswith("vb_keras"):
            file = _module_file(module)
            if file:
                wanted.add(file)
        elif path.startswith("tests/") and _module_file("tests." + module):
            wanted.add(_module_file("tests." + module))
        elif path.startswith("bin/") and _module_file("bin." + module):
            wanted.add(_module_file("bin." + module))
    return wanted


# Imports that need no dep: conftest imports serving_loaders inside the one fixture that builds the
# C++ loader, and only tests that depend on :serving_loaders use it (a dep would be a cycle).
EXEMPT = {("tests/conftest.py", "tests/serving_loaders.py")}


def main():
    _load_build()
    problems = []
    owned = {}
    for name, target in TARGETS.items():
        for src in target["srcs"]:
            owned.setdefault(src, name)
    for name, target in TARGETS.items():
        if target["kind"] not in ("py_library", "py_test", "py_binary"):
            continue
        available = {src for dep in _closure(name) for src in TARGETS[dep]["srcs"]}
        for src in target["srcs"]:
            for needed in sorted(_imports(src)):
                if needed.endswith("__init__.py") or (src, needed) in EXEMPT:
                    continue   # Bazel creates empty package __init__ files
                if needed not in available:
                    problems.append(f"{name}: {src} imports {needed}, which no dep provides "
                                    f"(it is in :{owned.get(needed, '?')})")
        for label in target["deps"] + target["data"]:
            if label.startswith(":") and label[1:] not in TARGETS:
                problems.append(f"{name}: unknown target {label}")
    for path in sorted(glob.glob(os.path.join(ROOT, "vb_keras", "**", "*.py"), recursive=True)
                       + glob.glob(os.path.join(ROOT, "tests", "*.py"))
                       + glob.glob(os.path.join(ROOT, "bin", "*.py"))):
        relative = os.path.relpath(path, ROOT)
        if relative not in owned and not relative.endswith("__init__.py"):
            problems.append(f"{relative} belongs to no target")
    for problem in problems:
        print(problem)
    print(f"{len(TARGETS)} targets, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
