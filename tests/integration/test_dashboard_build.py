"""The dashboard's shipped static files are the build of its sources and pinned libraries."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from integration.procs import REPO

pytestmark = pytest.mark.integration

UI = REPO / "ilptx" / "admin" / "ui"


def test_committed_static_files_are_the_build_of_src(tmp_path):
    """node build.mjs (esbuild, the libraries of package-lock.json) writes exactly the committed static/ files."""
    node = shutil.which("node")
    assert node is not None, "the dashboard build needs node"
    assert (UI / "node_modules" / ".bin" / "esbuild").exists(), \
        f"no {UI}/node_modules: run `make npm` (npm ci in ilptx/admin/ui)"
    out = tmp_path / "static"
    result = subprocess.run([node, "build.mjs", str(out)], cwd=UI, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    shipped = sorted(p.name for p in (UI / "static").iterdir())
    assert sorted(p.name for p in out.iterdir()) == shipped
    for name in shipped:
        assert (out / name).read_bytes() == (UI / "static" / name).read_bytes(), \
            f"static/{name} is stale: run ilptx/admin/ui/build.sh and commit static/"
