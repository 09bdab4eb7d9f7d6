"""The import rules of docs/architecture.md, read from the source with ``ast`` (lazy imports too).

* The library never imports the top-level ``configs`` package (an installed wheel has none) nor
  the entry scripts.
* Imports between the subpackages of ``siam_jax`` follow the layer table below, which has no
  cycle: ``common`` -> ``body`` -> ``render``, ``models`` -> ``data``, ``checkpoints`` ->
  ``evaluation`` -> ``training``, ``inference`` -> ``benchmarking``.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "siam_jax"
ENTRY_MODULES = {"configs", "train", "eval", "demo", "benchmark"}

# subpackage -> the subpackages it may import (docs/architecture.md "Packages").
ALLOWED: dict[str, set[str]] = {
    "common": set(),
    "body": {"common"},
    "render": {"common", "body"},
    "models": {"common", "body"},
    "data": {"common", "body", "render", "models"},
    "checkpoints": {"common", "body", "models"},
    "evaluation": {"common", "body", "render", "models", "data", "checkpoints"},
    "training": {"common", "body", "render", "models", "data", "checkpoints", "evaluation"},
    "inference": {"common", "body", "render", "models", "data", "checkpoints", "evaluation"},
    "benchmarking": {
        "common", "body", "render", "models", "data", "checkpoints", "evaluation", "training",
        "inference",
    },
}  # fmt: skip


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        yield path, parts, is_pkg


def _imports(path: pathlib.Path, parts: list[str], is_pkg: bool):
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts if is_pkg else parts[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join([*base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            yield node.lineno, mod
            # ``from siam_jax import data`` names a subpackage too
            if mod == "siam_jax":
                for a in node.names:
                    yield node.lineno, f"siam_jax.{a.name}"


def _edges():
    for path, parts, is_pkg in _modules():
        for line, mod in _imports(path, parts, is_pkg):
            yield path, parts, line, mod


def test_layer_table_has_no_cycle():
    import graphlib

    graphlib.TopologicalSorter(ALLOWED).static_order()  # raises CycleError on a cycle


def test_every_subpackage_is_in_the_layer_table():
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert subpackages == set(ALLOWED), "add new subpackages to ALLOWED (and architecture.md)"


def test_library_never_imports_configs_or_entry_scripts():
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {mod}"
        for path, _, line, mod in _edges()
        if mod.split(".")[0] in ENTRY_MODULES
    ]
    assert not bad, "\n".join(bad)


def test_imports_follow_the_layers():
    bad = []
    for path, parts, line, mod in _edges():
        if len(parts) < 2 or not mod.startswith("siam_jax."):
            continue
        src, dst = parts[1], mod.split(".")[1]
        if src not in ALLOWED:  # a top-level module of siam_jax
            continue
        if dst != src and dst not in ALLOWED[src]:
            bad.append(f"{path.relative_to(ROOT)}:{line}: {src} imports {mod}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    "source, violation",
    [
        ("from siam_jax.training import loop\n", "training"),
        ("def f():\n    from configs import default\n", "configs"),
    ],
)
def test_the_checker_sees_lazy_and_forbidden_imports(tmp_path, source, violation):
    path = tmp_path / "mod.py"
    path.write_text(source)
    mods = [m for _, m in _imports(path, ["siam_jax", "body", "mod"], False)]
    assert any(violation in m for m in mods)
