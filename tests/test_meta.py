"""Rules about the test suite itself."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_module_names_are_unique():
    """Two test modules with one basename break pytest's default (prepend) import mode."""
    names = Counter(p.name for p in TESTS.rglob("test_*.py") if "node_modules" not in p.parts)
    assert [name for name, count in names.items() if count > 1] == []


def test_every_test_has_a_docstring():
    """Every test function states the behaviour it pins in a one-line docstring."""
    import ast

    missing = []
    for path in TESTS.rglob("test_*.py"):
        if "node_modules" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                if not ast.get_docstring(node):
                    missing.append(f"{path.relative_to(TESTS)}::{node.name}")
    assert missing == []
