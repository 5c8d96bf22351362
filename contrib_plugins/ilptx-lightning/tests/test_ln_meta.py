"""Rules for this distribution: it uses only ilptx's public API, and its tests state what they pin."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent / "ilptx_lightning"
#: What a third-party plugin may import from ilptx: the public API for settling plugins as the
#: README documents it ("Plugins", "Settlement framework"): the interfaces, the settlement
#: package and its plugin factory, the plugin toolkit and hook marker, ConfigError for bad
#: options, and the BTP protocol-data entry a sub-protocol handler answers with.
PUBLIC_API = {"ilptx.interfaces", "ilptx.settlement", "ilptx.settlement.plugin", "ilptx.plugins.base",
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
    """ilptx_lightning imports from ilptx only the documented public API (PUBLIC_API)."""
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
