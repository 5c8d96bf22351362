"""The ``ilptx`` command's own logic: its failure line and its ``pay`` options (no processes)."""

from __future__ import annotations

import pytest

from ilptx.cli import _explain, build_parser
from ilptx.stream.sender import DEFAULT_LIQUIDITY_TIMEOUT, StreamPaymentError


def test_liquidity_failure_is_one_line_saying_each_thing_once():
    """Out of liquidity: what happened, the sender's details, sent and delivered once, what to do."""
    error = StreamPaymentError("liquidity", "every packet was rejected for 5 s of retries (insufficient funds.)",
                               0, 0, "T04")
    assert _explain(error) == ("the path is out of liquidity (T04): every packet was rejected for 5 s of retries "
                               "(insufficient funds.); sent 0, delivered 0; try again later or with a smaller amount")


def test_failure_without_advice_ends_with_what_moved():
    """A kind with no advice ends with what was sent and delivered."""
    error = StreamPaymentError("timeout", "gave up after 3 tries: no answer", 700, 690)
    assert _explain(error) == ("the receiver or the path did not answer in time: gave up after 3 tries: no answer; "
                               "sent 700, delivered 690")


def test_liquidity_timeout_option(capsys):
    """--liquidity-timeout takes seconds >= 0; absent, the sender's default applies (and --help says it)."""
    parser = build_parser()
    base = ["pay", "$x.example/y", "10", "--uplink", "btp+ws://:t@127.0.0.1:1"]
    assert parser.parse_args(base).liquidity_timeout is None
    assert parser.parse_args(base + ["--liquidity-timeout", "0.5"]).liquidity_timeout == 0.5
    for bad in ("-1", "nan", "soon"):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(base + ["--liquidity-timeout", bad])
        assert exit_info.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit):
        parser.parse_args(["pay", "--help"])
    assert f"out of liquidity (T04) before giving up (default {DEFAULT_LIQUIDITY_TIMEOUT:g})" in \
        " ".join(capsys.readouterr().out.split())


def test_max_in_flight_option(capsys):
    """--max-in-flight takes a whole number >= 1; absent, the sender's default cap applies (and --help says it)."""
    from ilptx.stream.sender import DEFAULT_MAX_IN_FLIGHT

    parser = build_parser()
    base = ["pay", "$x.example/y", "10", "--uplink", "btp+ws://:t@127.0.0.1:1"]
    assert parser.parse_args(base).max_in_flight is None
    assert parser.parse_args(base + ["--max-in-flight", "1"]).max_in_flight == 1
    for bad in ("0", "-3", "2.5", "many"):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(base + ["--max-in-flight", bad])
        assert exit_info.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit):
        parser.parse_args(["pay", "--help"])
    assert f"default {DEFAULT_MAX_IN_FLIGHT})" in " ".join(capsys.readouterr().out.split())
