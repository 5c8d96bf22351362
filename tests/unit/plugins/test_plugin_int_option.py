"""ilptx.plugins.base.int_option: the whole-number option parser the settling plugins share."""

import pytest

from ilptx.errors import ConfigError
from ilptx.plugins.base import int_option


def where(name: str) -> str:
    return f"accounts.a.options.{name}"


def test_ints_and_decimal_strings_are_taken_and_the_default_when_absent():
    """An int, a digit string (spaces trimmed), the default when absent, None when the default is None."""
    assert int_option({"n": 7}, "n", 1, where) == 7
    assert int_option({"n": " 12 "}, "n", 1, where) == 12
    assert int_option({}, "n", 5, where) == 5
    assert int_option({}, "n", None, where) is None


@pytest.mark.parametrize("bad", [True, 1.5, "-3", "1e3", "١٢", "x", 0])
def test_anything_else_is_a_config_error_naming_the_key(bad):
    """A bool, a float, a negative / exponent / non-ASCII-digit / non-numeric string, a value below minimum."""
    with pytest.raises(ConfigError) as info:
        int_option({"n": bad}, "n", 1, where, minimum=1)
    assert str(info.value).startswith("accounts.a.options.n: must be an integer >= 1")
