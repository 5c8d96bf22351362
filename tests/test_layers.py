"""Layering rules, checked by reading the source (``ast``), not by importing it.

* ``ilptx.codec`` is sans-IO: bytes in, values out. It must not import an I/O or plugin
  framework (Twisted, Autobahn, Klein, pluggy, treq, zope), nor sockets, event loops, threads
  or processes, nor read a clock; and within ilptx it depends only on itself.
* ``ilptx.core`` is the connector's logic. It may use Twisted's Deferreds, logger and
  interfaces, but not a web or WebSocket stack (Autobahn, Klein, treq): those belong to the
  transports.

This module imports nothing from Twisted or from the packages it checks.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ilptx"
CODEC = PACKAGE / "codec"
CORE = PACKAGE / "core"

FRAMEWORKS = {"twisted", "autobahn", "klein", "pluggy", "treq", "zope"}
CODEC_FORBIDDEN = FRAMEWORKS | {
    # I/O, concurrency and clocks
    "socket", "ssl", "select", "selectors", "asyncio", "threading", "multiprocessing",
    "subprocess", "time",
}
CORE_FORBIDDEN = {"autobahn", "klein", "treq"}
#: Calls that read the wall clock.
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imported_modules(source: str, package: str) -> set[str]:
    """Every module ``source`` (code in ``package``) imports, anywhere, as absolute dotted names.

    Covers ``import a.b``, ``from a.b import c`` (also as ``a.b.c``), relative imports, and
    ``importlib.import_module("x")`` / ``__import__("x")`` with a literal name.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def imports_of(path: Path) -> set[str]:
    """:returns: :func:`imported_modules` of the file at ``path``."""
    return imported_modules(path.read_text(encoding="utf-8"), _package_of(path))


def _sources(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.py"))


def _violations(directory: Path, forbidden: set[str]) -> dict[str, list[str]]:
    bad = {}
    for path in _sources(directory):
        hits = sorted(m for m in imports_of(path) if m.split(".")[0] in forbidden)
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    return bad


def test_codec_has_modules_to_check():
    """The codec package exists and the checker sees its modules (so the rules are not vacuous)."""
    names = {p.name for p in _sources(CODEC)}
    assert {"oer.py", "address.py", "ilp.py", "btp.py", "ildcp.py"} <= names


def test_import_scanner_finds_imports():
    """imported_modules sees plain, from-, relative, nested and importlib imports."""
    assert "struct" in imports_of(CODEC / "oer.py")
    source = (
        "import a.b\nfrom c import d\nfrom . import sib\nfrom .. import up\n"
        "def f():\n    import twisted.internet\n    importlib.import_module('klein')\n"
    )
    found = imported_modules(source, "ilptx.codec")
    assert {"a.b", "c", "c.d", "ilptx.codec", "ilptx.codec.sib", "ilptx", "ilptx.up", "twisted.internet", "klein"} <= found


def test_codec_imports_no_framework_or_io():
    """No module in ilptx/codec imports Twisted, Autobahn, Klein, pluggy, treq, zope, sockets, threads or time."""
    assert _violations(CODEC, CODEC_FORBIDDEN) == {}


def test_codec_depends_only_on_itself_within_ilptx():
    """ilptx/codec imports from ilptx only ilptx.codec.* (the other layers depend on it, not vice versa)."""
    bad = {}
    for path in _sources(CODEC):
        hits = sorted(
            m for m in imports_of(path)
            if m.split(".")[0] == "ilptx" and m != "ilptx" and not m.startswith("ilptx.codec")
        )
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    assert bad == {}


def test_codec_reads_no_clock():
    """No module in ilptx/codec calls now()/utcnow()/today()/time() -- time is always passed in."""
    bad = []
    for path in _sources(CODEC):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_CALLS:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.func.attr}()")
    assert bad == []


def test_core_imports_no_web_stack():
    """No module in ilptx/core imports autobahn, klein or treq (core may use twisted.internet.defer etc.)."""
    if not CORE.is_dir():
        pytest.skip("ilptx/core does not exist yet")
    assert _violations(CORE, CORE_FORBIDDEN) == {}


def test_importing_the_codec_loads_no_framework():
    """In a fresh interpreter, importing every ilptx.codec module loads none of the forbidden frameworks."""
    modules = ", ".join(sorted(_module_name(p) for p in _sources(CODEC)))
    script = (
        "import sys\n"
        f"import {modules}\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FRAMEWORKS)!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""
