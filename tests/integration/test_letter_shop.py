"""The letter shop runs from its README commands: the customer prints the letters it bought."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from integration.procs import REPO, Process, wait_for_port

pytestmark = pytest.mark.integration


def readme_commands() -> list[list[str]]:
    """The shell commands of the README's letter shop section, with this interpreter as python."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The letter shop", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = [shlex.split(line) for line in block.splitlines() if line.strip()]
    assert [c[0] for c in commands] == ["python", "python"], commands
    return [[sys.executable] + c[1:] for c in commands]


def test_letter_shop_from_the_readme():
    """The shop starts, the customer buys 40 letters at 100 ms each and prints exactly the text's first 40."""
    shop_cmd, client_cmd = readme_commands()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    shop = Process(shop_cmd, env)
    try:
        wait_for_port(7791, shop)
        result = subprocess.run(client_cmd, capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
        assert result.returncode == 0, result.stderr + shop.output()
        text = (REPO / "examples" / "letter_shop" / "text.txt").read_text(encoding="utf-8").strip()
        letters, summary = result.stdout.rstrip("\n").rsplit("\n", 1)
        assert letters == text[:40]
        assert summary == "bought 40 letters for 40 units"
        assert "the customer owes 40 LTR" in shop.full_output()
    finally:
        shop.close()
