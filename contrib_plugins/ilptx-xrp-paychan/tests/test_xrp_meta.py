"""Rules for this distribution: it uses only ilptx's public API, and its tests state what they pin."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent / "ilptx_xrp_paychan"
#: What a third-party plugin may import from ilptx (the public API for settling plugins).
PUBLIC_API = {"ilptx.interfaces", "ilptx.settlement", "ilptx.settlement.plugin", "ilptx.settlement.server",
              "ilptx.plugins.base",
              "ilptx.plugins.hookspecs", "ilptx.errors", "ilptx.codec.btp", "ilptx.testing"}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


def test_package_imports_only_ilptx_public_api():
    """ilptx_xrp_paychan imports from ilptx only the public API for settling plugins (PUBLIC_API, as ilptx-ethereum)."""
    used = {(p.name, m) for p in PACKAGE.rglob("*.py") for m in _imports(p) if m == "ilptx" or m.startswith("ilptx.")}
    assert {m for _, m in used} - PUBLIC_API == set(), sorted(used)


def test_tests_have_docstrings_and_unique_names():
    """Every test function here has a docstring, and no two test modules share a name."""
    modules = [p for p in HERE.rglob("test_*.py") if "node_modules" not in p.parts]
    assert [n for n, c in Counter(p.name for p in modules).items() if c > 1] == []
    missing = [f"{p.name}::{n.name}" for p in modules for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
               if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test_")
               and not ast.get_docstring(n)]
    assert missing == []


def test_package_does_not_import_the_double():
    """ilptx_xrp_paychan never imports the test double (the client must work against real rippled)."""
    used = {m for p in PACKAGE.rglob("*.py") for m in _imports(p)}
    assert not {m for m in used if m.startswith("rippled_double")}
