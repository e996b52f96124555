"""Package hygiene: floors (imports run only downward), light imports, no dev tools at run time, notebooks exported.

Every check here walks every module of `aiwb` with `pkgutil.walk_packages`, so a new module is checked the day it
is exported, without anyone adding it to a list."""
import ast
import importlib.util
import os
import pkgutil
import re
import subprocess
import sys

import aiwb
from conftest import ROOT, DATA

# The floors, low to high (STYLE.md section 6, "The house"). A module imports from its own floor or lower ones.
# Each entry is a package or module name; a name stands for itself and everything below it (`aiwb.data` covers
# `aiwb.data.store`). The root package `aiwb` itself (only `__version__`) stands on the lowest floor.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("aiwb.core", "aiwb.text", "aiwb.trace", "aiwb.embeddings")),
    ("data", ("aiwb.data",)),
    ("providers", ("aiwb.providers",)),
    ("reliability", ("aiwb.reliability",)),
    ("tools", ("aiwb.tools",)),
    ("orchestration", ("aiwb.orchestration",)),
    ("eval", ("aiwb.eval",)),
    ("observability", ("aiwb.observability",)),
    ("explorers", ("aiwb.explorers",)),
    ("interfaces", ("aiwb.cli", "aiwb.api")),
]
EXCLUDED = {"aiwb._modidx"}  # nbdev's symbol index: data for doc links, imported by nothing

HEAVY = {"torch", "sentence_transformers", "transformers", "duckdb", "plotly", "numpy", "ipywidgets", "anthropic",
         "openai", "pyarrow", "onnxruntime", "tokenizers", "pypdf"}
DEV_TOOLS = {"nbdev", "fastcore", "execnb"}
LAZY_TARGET = re.compile(r"^(aiwb(?:\.\w+)+):\w+$")  # a "module:attribute" string imported on first use


def all_modules() -> list[str]:
    "Every module and package of `aiwb`, found by walking the package (nbdev's `_modidx` left out)."
    names = ["aiwb"] + [m.name for m in pkgutil.walk_packages(aiwb.__path__, "aiwb.")]
    return sorted(n for n in names if n not in EXCLUDED)


MODULES = all_modules()


def floor_of(name: str) -> int | None:
    "The floor index of module `name` (the most specific match wins), or None when no floor holds it."
    if name == "aiwb":
        return 0
    best, best_len = None, -1
    for i, (_, roots) in enumerate(FLOORS):
        for root in roots:
            if (name == root or name.startswith(root + ".")) and len(root) > best_len:
                best, best_len = i, len(root)
    return best


def source_of(name: str) -> tuple[str, bool]:
    "The source file of module `name` and whether it is a package."
    spec = importlib.util.find_spec(name)
    return spec.origin, spec.submodule_search_locations is not None


def resolve(module: str | None, level: int, importer: str, is_pkg: bool) -> str:
    "The absolute module name of `from <level dots><module> import ...` written in `importer`."
    if level == 0:
        return module
    base = importer if is_pkg else importer.rpartition(".")[0]
    for _ in range(level - 1):
        base = base.rpartition(".")[0]
    return f"{base}.{module}" if module else base


def _is_import_module_call(node: ast.AST) -> bool:
    "Whether `node` calls `importlib.import_module` (or a bare `import_module`) with a constant module name."
    if not isinstance(node, ast.Call) or not node.args:
        return False
    called = getattr(node.func, "attr", getattr(node.func, "id", None))
    first = node.args[0]
    return called == "import_module" and isinstance(first, ast.Constant) and isinstance(first.value, str)


def imports_of(name: str) -> list[tuple[str, int]]:
    """Every `aiwb` module that module `name` imports, with its line: module level and inside functions, relative
    imports resolved, `from pkg import submodule` counted as the submodule, and `importlib.import_module("aiwb...")`
    or a `"aiwb.x:attr"` string (imported on first use) counted as an import."""
    path, is_pkg = source_of(name)
    tree = ast.parse(open(path, encoding="utf-8").read(), filename=path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = resolve(node.module, node.level, name, is_pkg)
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.append((sub if sub in MODULES else target, node.lineno))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and LAZY_TARGET.match(node.value):
            found.append((LAZY_TARGET.match(node.value).group(1), node.lineno))
        elif _is_import_module_call(node):
            found.append((node.args[0].value, node.lineno))
    return sorted({(t, line) for t, line in found if t == "aiwb" or t.startswith("aiwb.")}, key=lambda x: x[1])


def floor_violations() -> tuple[list[str], set[tuple[str, str]]]:
    "Messages for every module on no floor and every upward arrow; and every upward pair seen."
    problems, upward = [], set()
    for name in MODULES:
        here = floor_of(name)
        if here is None:
            problems.append(f"{name}: on no floor (add it to FLOORS in tests/test_package.py)")
            continue
        for target, line in imports_of(name):
            there = floor_of(target)
            if target not in MODULES or there is None:
                problems.append(f"{name}:{line} imports {target}, which is no module on any floor")
            elif there > here:
                upward.add((name, target))
                problems.append(f"{name}:{line} ({FLOORS[here][0]}) imports {target} ({FLOORS[there][0]}): "
                                "an arrow upward")
    return problems, upward


def test_the_walk_finds_every_floor_we_have():
    "The walk sees subpackages and their modules, not only the top level."
    expected = {"aiwb.core", "aiwb.cli", "aiwb.data.store", "aiwb.providers.base", "aiwb.orchestration.pipeline"}
    assert expected <= set(MODULES)
    assert "aiwb._modidx" not in MODULES


def test_floor_of():
    assert FLOORS[floor_of("aiwb.core")][0] == "core"
    assert FLOORS[floor_of("aiwb.data.store")][0] == "data"
    assert FLOORS[floor_of("aiwb.eval")][0] == "eval"
    assert FLOORS[floor_of("aiwb.api.rest")][0] == "interfaces"
    assert floor_of("aiwb.evaluation") is None  # a prefix of letters is not a subpackage
    assert floor_of("aiwb.somewhere") is None


def test_resolve_relative_imports():
    assert resolve("core", 1, "aiwb.cli", False) == "aiwb.core"
    assert resolve("core", 2, "aiwb.data.store", False) == "aiwb.core"
    assert resolve("store", 1, "aiwb.data.pgvector", False) == "aiwb.data.store"
    assert resolve(None, 1, "aiwb.data", True) == "aiwb.data"
    assert resolve("aiwb.core", 0, "aiwb.cli", False) == "aiwb.core"


def test_imports_run_only_downward():
    "No module imports from a floor above its own, at module level or inside a function."
    problems, _ = floor_violations()
    assert not problems, "floor rule broken (STYLE.md section 6):\n" + "\n".join(problems)


def _modules_after(code: str) -> set[str]:
    "Top-level names of every module in `sys.modules` after running `code` in a fresh interpreter."
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return {m.split(".")[0] for m in done.stdout.split()}


def test_importing_any_module_is_light():
    "Importing every module of aiwb loads none of the heavy libraries: each command imports what it needs."
    mods = _modules_after("\n".join(f"import {m}" for m in MODULES))
    assert not HEAVY & mods, f"imported eagerly: {sorted(HEAVY & mods)}"


def test_runtime_imports_no_dev_tools():
    "No module of aiwb imports nbdev, execnb or fastcore: those are dev tools, not run-time dependencies."
    mods = _modules_after("\n".join(f"import {m}" for m in MODULES))
    assert not DEV_TOOLS & mods, f"dev tools at run time: {sorted(DEV_TOOLS & mods)}"
    for name in MODULES:
        for target, line in imports_of(name):
            assert target.split(".")[0] not in DEV_TOOLS, f"{name}:{line} imports {target}"


def test_every_exported_module_comes_from_a_notebook():
    for name in MODULES:
        path, is_pkg = source_of(name)
        if is_pkg:
            continue
        head = open(path, encoding="utf-8").read().splitlines()[:4]
        assert any("AUTOGENERATED! DO NOT EDIT! File to edit: ../" in line and "nbs/" in line for line in head), path


def test_bundled_golden_set_is_valid():
    from aiwb.eval import load_cases
    cases = load_cases(DATA / "golden.jsonl").cases
    assert len(cases) >= 20 and sum(c.expect_abstain for c in cases) >= 2
    for c in cases:
        for doc in c.relevant_docs:
            assert (DATA / "corpus" / doc).is_file(), doc
