"""ilptx.testing_procs' distribution rules: what a plugin's meta test relies on."""

from ilptx.testing_procs import LogLines, distribution_problems, free_ports


def _tree(tmp_path, source: str, test_source: str, twice: bool = False):
    package, tests = tmp_path / "my_plugin", tmp_path / "tests"
    package.mkdir()
    tests.mkdir()
    (package / "__init__.py").write_text(source)
    (tests / "test_mine.py").write_text(test_source)
    if twice:
        (tests / "sub").mkdir()
        (tests / "sub" / "test_mine.py").write_text(test_source)
    return package, tests


def test_a_distribution_that_keeps_the_rules_has_no_problems(tmp_path):
    """Public imports only (absolute and relative), documented tests, unique names: []."""
    package, tests = _tree(tmp_path, "from ilptx.settlement.plugin import settling_plugin_factory\nfrom . import x\n",
                           'def test_x():\n    """Pins x."""\n')
    assert distribution_problems(package, tests) == []


def test_each_broken_rule_is_one_named_problem(tmp_path):
    """A private ilptx import, a test without a docstring and a repeated module name: three problems, named."""
    package, tests = _tree(tmp_path, "import ilptx.core.switch\n", "def test_y():\n    pass\n", twice=True)
    problems = distribution_problems(package, tests)
    assert problems == ["__init__.py imports ilptx.core.switch (not in ilptx's public plugin API)",
                        "test_mine.py::test_y: no docstring", "test_mine.py::test_y: no docstring",
                        "test_mine.py: more than one test module of that name"]


def test_log_lines_keep_warnings_only_while_observing():
    """LogLines collects warn and above while entered, nothing at info, nothing after exit."""
    from twisted.logger import Logger

    log = Logger(namespace="test.procs")
    with LogLines() as lines:
        log.info("quiet {x}", x=1)
        log.warn("loud {x}", x=2)
    log.warn("after")
    assert lines == ["loud 2"]


def test_free_ports_are_distinct():
    """free_ports(5) gives five different ports."""
    assert len(set(free_ports(5))) == 5
