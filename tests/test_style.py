"""The house style, checked: short lines, short functions, imports at the top of each module."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("*.py"), *(ROOT / "minireason").glob("*.py"), *(ROOT / "experiments").glob("*.py"),
                  *(ROOT / "benchmarks").glob("*.py")])
MAX_LINE, MAX_FUNCTION = 120, 50


def test_lines_are_short():
    long = [f"{p.relative_to(ROOT)}:{n}" for p in SOURCES + sorted((ROOT / "tests").glob("*.py"))
            for n, line in enumerate(p.read_text().splitlines(), 1)
            if len(line) > MAX_LINE]
    assert not long, long


def test_functions_are_short():
    long = []
    for p in SOURCES:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION:
                    long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long


DEFERRED = {"matplotlib", "matplotlib.pyplot", "math_verify",  # optional or slow (about a second each) imports,
            "torch.nn.attention.flex_attention"}  # made on first use so that a run without figures, real data or
# row_attention (FlexAttention imports torch._dynamo) does not pay for them at every start


def test_package_imports_only_at_the_top():
    lazy = []
    for p in sorted((ROOT / "minireason").glob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                imports = [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
                lazy += [f"{p.name}:{n.lineno}" for n in imports
                         if ({a.name for a in n.names} if isinstance(n, ast.Import) else {n.module}) - DEFERRED]
    assert not lazy, lazy


def test_every_function_the_readme_and_docs_name_exists():
    import importlib
    import re

    modules = {p.stem for p in (ROOT / "minireason").glob("*.py")}
    docs = "".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    named = [(m, f) for m, f in re.findall(r"`(\w+)\.(\w+)`", docs)
             if m in modules and f not in ("py", "md", "json", "png")]
    missing = [f"{m}.{f}" for m, f in named if not hasattr(importlib.import_module(f"minireason.{m}"), f)]
    assert len(named) > 20 and not missing, missing


def test_each_module_imports_only_modules_above_it_in_the_layout_table():
    """The file table of docs/layout.md is the reading order, from the bottom layer up: a module may import only the
    modules listed before it (no upward imports, hence no cycles), and every module is listed."""
    import re

    order = re.findall(r"^\| `minireason/(\w+)\.py` \|", (ROOT / "docs" / "layout.md").read_text(), re.M)
    package = {p.stem for p in (ROOT / "minireason").glob("*.py")} - {"__init__"}
    assert set(order) == package, package ^ set(order)
    upward = []
    for i, name in enumerate(order):
        tree = ast.parse((ROOT / "minireason" / f"{name}.py").read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1}
        upward += [f"{name} imports {m}" for m in imported if m in order[i:]]
    assert not upward, upward


def test_the_read_first_path_fits_one_sitting():
    """The README's read-first list names six files of at most benchmarks/read_path.py's LIMIT lines in all."""
    from benchmarks.read_path import LIMIT, read_first_files

    files = read_first_files()
    assert len(files) == 6 and all(f.is_file() for f in files)
    assert sum(len(f.read_text().splitlines()) for f in files) <= LIMIT
