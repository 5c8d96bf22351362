"""Rules for this distribution: it uses only ilptx's public API, and its tests state what they pin."""

from pathlib import Path

from ilptx.testing_procs import distribution_problems

HERE = Path(__file__).resolve().parent


def test_distribution_keeps_the_plugin_rules():
    """ilptx_ethereum imports from ilptx only its public plugin API; every test has a docstring; test module names are unique."""
    assert distribution_problems(HERE.parent / "ilptx_ethereum", HERE) == []
