"""Rules for this distribution: it uses only ilptx's public API, and its tests state what they pin."""

from pathlib import Path

from ilptx.testing_procs import distribution_problems, module_imports

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent / "ilptx_xrp_paychan"


def test_distribution_keeps_the_plugin_rules():
    """ilptx_xrp_paychan imports from ilptx only its public plugin API; every test has a docstring; names are unique."""
    assert distribution_problems(PACKAGE, HERE) == []


def test_package_does_not_import_the_double():
    """ilptx_xrp_paychan never imports the test double (the client must work against real rippled)."""
    used = {m for _, m in module_imports(PACKAGE)}
    assert not {m for m in used if m.startswith("rippled_double")}
